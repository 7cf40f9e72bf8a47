//! What only the embedded chain has: persistence across restarts, tamper detection, refusal
//! of bad transactions, and group commit.

use std::sync::Arc;

use ehr_chain::contract::codec;
use ehr_chain::embedded::sign_tx;
use ehr_chain::testing::tamper_block;
use ehr_chain::{
    B256, Bytes, ChainConfig, EmbeddedChain, Error, PrivateKeySigner, Registry, RegistryExt,
};

fn open(dir: &std::path::Path, admin: &PrivateKeySigner) -> Result<EmbeddedChain, Error> {
    EmbeddedChain::open(dir, ChainConfig::default(), admin)
}

/// A chain with a few blocks of real activity; returns the patient and its record id.
async fn populated(dir: &std::path::Path, admin: &PrivateKeySigner) -> (PrivateKeySigner, u64) {
    let chain = open(dir, admin).unwrap();
    let alice = PrivateKeySigner::random();
    chain.register_patient(&alice).await.unwrap();
    let (id, _) = chain
        .add_record(&alice, B256::repeat_byte(1), codec::RAW)
        .await
        .unwrap();
    chain
        .update_record(&alice, id, B256::repeat_byte(2), codec::RAW)
        .await
        .unwrap();
    (alice, id)
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let (alice, id) = populated(dir.path(), &admin).await;
    let chain = open(dir.path(), &admin).unwrap();
    let rec = chain.record(id).await.unwrap();
    assert_eq!(
        (rec.owner, rec.version, rec.digest),
        (alice.address(), 2, B256::repeat_byte(2))
    );
    assert_eq!(chain.head_number(), 3);
    // Nonces continue where they were: the patient can transact after the restart.
    let (id2, _) = chain
        .add_record(&alice, B256::repeat_byte(3), codec::RAW)
        .await
        .unwrap();
    assert_eq!(id2, id + 1);
    // Reopening with another deployer key keeps the same contract (genesis is not redone).
    let contract = chain.contract();
    drop(chain);
    let other = open(dir.path(), &PrivateKeySigner::random()).unwrap();
    assert_eq!(other.contract(), contract);
    assert_eq!(other.admin().await.unwrap(), admin.address());
}

#[tokio::test]
async fn verify_walks_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    populated(dir.path(), &admin).await;
    let report = EmbeddedChain::verify(dir.path(), ChainConfig::default().chain_id).unwrap();
    assert_eq!((report.blocks, report.transactions), (4, 4));
}

/// Each tampering is caught by both `verify` and `open`, naming the first bad block.
#[tokio::test]
async fn tampering_is_caught_and_named() {
    type Tamper = fn(&mut Vec<u8>);
    let cases: [(&str, u64, Tamper); 5] = [
        ("a flipped bit in a transaction's calldata", 2, |b| {
            let n = b.len();
            b[n - 40] ^= 1;
        }),
        ("a changed timestamp", 2, |b| b[47] ^= 1),
        ("a broken parent link", 3, |b| b[0] ^= 1),
        ("a changed state hash", 1, |b| b[150 - 8 - 10] ^= 1),
        ("a truncated block", 2, |b| b.truncate(b.len() - 3)),
    ];
    for (what, n, f) in cases {
        let dir = tempfile::tempdir().unwrap();
        let admin = PrivateKeySigner::random();
        populated(dir.path(), &admin).await;
        tamper_block(dir.path(), n, f).unwrap();
        match EmbeddedChain::verify(dir.path(), ChainConfig::default().chain_id) {
            Err(Error::Tampered { block, reason }) => assert_eq!(block, n, "{what}: {reason}"),
            other => panic!("{what}: verify said {other:?}"),
        }
        match open(dir.path(), &admin) {
            Err(Error::Tampered { block, .. }) => assert_eq!(block, n, "{what}"),
            Err(e) => panic!("{what}: open said {e}"),
            Ok(_) => panic!("{what}: a tampered chain was opened"),
        }
    }
}

#[tokio::test]
async fn a_corrupt_store_file_is_reported_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    populated(dir.path(), &admin).await;
    let file = dir.path().join("chain.redb");
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);
    match open(dir.path(), &admin) {
        Err(Error::Corrupt(_) | Error::Store(_)) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(c) => panic!("a truncated store opened with head {}", c.head_number()),
    }
    let garbage = tempfile::tempdir().unwrap();
    std::fs::write(
        garbage.path().join("chain.redb"),
        b"not a database at all, just text",
    )
    .unwrap();
    assert!(matches!(
        open(garbage.path(), &admin),
        Err(Error::Corrupt(_) | Error::Store(_))
    ));
}

#[tokio::test]
async fn bad_transactions_are_rejected_and_nothing_is_mined() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = open(dir.path(), &admin).unwrap();
    let alice = PrivateKeySigner::random();
    let input = Bytes::from(alloy::sol_types::SolCall::abi_encode(
        &ehr_chain::contract::EhrRegistry::registerPatientCall {},
    ));
    let to = Some(chain.contract());
    let id = chain.chain_id();
    let head = chain.head_number();

    let wrong_chain = sign_tx(&alice, id + 1, 0, to, input.clone()).unwrap();
    let wrong_nonce = sign_tx(&alice, id, 5, to, input.clone()).unwrap();
    // A signature with r = 0 recovers no key at all.
    let bad_sig = {
        use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
        use alloy::eips::eip2718::Encodable2718;
        let tx = TxEip1559 {
            chain_id: id,
            nonce: 0,
            gas_limit: 1_000_000,
            to: alloy::primitives::TxKind::Call(chain.contract()),
            input: input.clone(),
            ..Default::default()
        };
        let sig = alloy::primitives::Signature::new(
            alloy::primitives::U256::ZERO,
            alloy::primitives::U256::from(1),
            false,
        );
        let env: TxEnvelope = tx.into_signed(sig).into();
        env.encoded_2718()
    };
    let garbage = Bytes::from_static(b"\x02\xc0not rlp");

    for (what, raw, expect) in [
        ("wrong chain id", wrong_chain, "chain id"),
        ("nonce too high", wrong_nonce, "nonce"),
        ("bad signature", Bytes::from(bad_sig), "signature"),
        ("garbage", garbage, "undecodable"),
    ] {
        match chain.send_raw_transaction(raw).await {
            Err(Error::Rejected(msg)) => {
                assert!(msg.to_lowercase().contains(expect), "{what}: {msg}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(chain.head_number(), head, "nothing was mined");
    assert_eq!(chain.patient_id(alice.address()).await.unwrap(), None);

    // The good one still goes through with nonce 0.
    let good = sign_tx(&alice, id, 0, to, input).unwrap();
    chain.send_raw_transaction(good).await.unwrap();
    assert_eq!(chain.patient_id(alice.address()).await.unwrap(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transactions_share_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = Arc::new(open(dir.path(), &admin).unwrap());
    let alice = PrivateKeySigner::random();
    chain.register_patient(&alice).await.unwrap();
    let head = chain.head_number();
    let n = 200u64;
    let mut tasks = Vec::new();
    for i in 0..n {
        let (chain, alice) = (chain.clone(), alice.clone());
        tasks.push(tokio::spawn(async move {
            chain
                .add_record(
                    &alice,
                    B256::from(alloy::primitives::U256::from(i + 1)),
                    codec::RAW,
                )
                .await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().0);
    }
    ids.sort();
    assert_eq!(
        ids,
        (1..=n).collect::<Vec<_>>(),
        "every record got its own id"
    );
    let blocks = chain.head_number() - head;
    assert!(
        blocks < n,
        "{n} transactions took {blocks} blocks: no group commit"
    );
    drop(chain);
    let report = EmbeddedChain::verify(dir.path(), ChainConfig::default().chain_id).unwrap();
    assert_eq!(report.transactions, n + 2);
}
