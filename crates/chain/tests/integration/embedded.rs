//! What only the embedded chain has: persistence across restarts (a stored state, not a
//! replay), migration of older chain files, tamper detection, refusal of bad transactions,
//! and group commit.

use std::sync::Arc;

use alloy::sol_types::SolEvent;
use ehr_chain::contract::codec;
use ehr_chain::embedded::sign_tx;
use ehr_chain::testing::{
    drop_state_and_indexes, forget_tx, tamper_block, tamper_slot, tamper_state_after,
};
use ehr_chain::{
    B256, Bytes, ChainConfig, EmbeddedChain, Error, PrivateKeySigner, Registry, RegistryExt, U256,
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

/// Each tampering is caught by `verify`, naming the first bad block; `open` (which does
/// not replay) catches those of the head block.
#[tokio::test]
async fn tampering_is_caught_and_named() {
    type Tamper = fn(&mut Vec<u8>);
    let cases: [(&str, u64, Tamper); 7] = [
        ("a flipped bit in a transaction's calldata", 2, |b| {
            let n = b.len();
            b[n - 40] ^= 1;
        }),
        ("a changed timestamp", 2, |b| b[47] ^= 1),
        ("a broken parent link", 3, |b| b[0] ^= 1),
        ("a changed state hash", 1, |b| b[150 - 8 - 10] ^= 1),
        ("a truncated block", 2, |b| b.truncate(b.len() - 3)),
        ("a flipped bit in the head's calldata", 3, |b| {
            let n = b.len();
            b[n - 40] ^= 1;
        }),
        ("a truncated head", 3, |b| b.truncate(b.len() - 3)),
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
        if n == 3 {
            match open(dir.path(), &admin) {
                Err(Error::Tampered { block, .. }) => assert_eq!(block, n, "{what}"),
                Err(e) => panic!("{what}: open said {e}"),
                Ok(_) => panic!("{what}: a tampered head was opened"),
            }
        }
    }
}

/// Opening reads the stored state instead of re-executing history: a chain whose old block
/// was altered (which only a replay would notice) opens and answers from its stored state,
/// while `verify` still re-executes and refuses it.
#[tokio::test]
async fn open_reads_the_stored_state_and_does_not_replay() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let (alice, id) = populated(dir.path(), &admin).await;
    tamper_block(dir.path(), 2, |b| {
        let n = b.len();
        b[n - 40] ^= 1;
    })
    .unwrap();
    let chain = open(dir.path(), &admin).unwrap();
    let rec = chain.record(id).await.unwrap();
    assert_eq!((rec.owner, rec.version), (alice.address(), 2));
    assert_eq!(chain.head_number(), 3);
    drop(chain);
    assert!(matches!(
        EmbeddedChain::verify(dir.path(), ChainConfig::default().chain_id),
        Err(Error::Tampered { block: 2, .. })
    ));
}

/// A stored state that disagrees with re-execution is refused by `verify`, naming the
/// block, the slot and both values.
#[tokio::test]
async fn a_stored_state_that_disagrees_is_refused_by_verify() {
    let chain_id = ChainConfig::default().chain_id;
    for (slot, value) in [
        (U256::ZERO, U256::from(7)),
        (U256::from(12345), U256::from(1)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let admin = PrivateKeySigner::random();
        populated(dir.path(), &admin).await;
        let chain = open(dir.path(), &admin).unwrap();
        let contract = chain.contract();
        let real = chain.storage_at(contract, slot).unwrap();
        drop(chain);
        EmbeddedChain::verify(dir.path(), chain_id).unwrap();
        tamper_slot(dir.path(), contract, slot, value).unwrap();
        match EmbeddedChain::verify(dir.path(), chain_id) {
            Err(Error::Tampered { block, reason }) => {
                assert_eq!(block, 3, "{reason}");
                let want = format!(
                    "stored state disagrees with block 3: storage slot {slot:#x} of {contract} \
                     is {value:#x}, re-execution gives {real:#x}"
                );
                assert_eq!(reason, want);
            }
            other => panic!("verify said {other:?}"),
        }
    }
}

/// Open refuses a stored state that is not the state after the head block, naming it.
#[tokio::test]
async fn open_refuses_a_state_that_is_not_after_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    populated(dir.path(), &admin).await;
    let chain = open(dir.path(), &admin).unwrap();
    let two = chain.block(2).unwrap().unwrap().header.hash();
    drop(chain);
    tamper_state_after(dir.path(), 2, two).unwrap();
    for got in [
        open(dir.path(), &admin).map(|_| ()),
        EmbeddedChain::verify(dir.path(), ChainConfig::default().chain_id).map(|_| ()),
    ] {
        match got {
            Err(Error::Tampered { block, reason }) => {
                assert_eq!(block, 3, "{reason}");
                assert!(
                    reason.contains("after block 2") && reason.contains("head block 3"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

/// `verify` checks the indexes against the blocks.
#[tokio::test]
async fn verify_checks_the_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    populated(dir.path(), &admin).await;
    let chain = open(dir.path(), &admin).unwrap();
    let (_, receipts) = chain.block_with_receipts(2).unwrap().unwrap();
    drop(chain);
    forget_tx(dir.path(), receipts[0].tx_hash).unwrap();
    match EmbeddedChain::verify(dir.path(), ChainConfig::default().chain_id) {
        Err(Error::Tampered { block, reason }) => {
            assert_eq!(block, 2, "{reason}");
            assert!(reason.contains("transaction index"), "{reason}");
        }
        other => panic!("verify said {other:?}"),
    }
}

/// A chain file written before the state and indexes were stored (blocks and receipts
/// only) opens: it is replayed once, its state and indexes written, and answers as before.
#[tokio::test]
async fn a_chain_without_stored_state_is_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let (alice, id) = populated(dir.path(), &admin).await;
    let doc = PrivateKeySigner::random();
    let chain = open(dir.path(), &admin).unwrap();
    chain
        .register_provider(&admin, doc.address(), B256::ZERO)
        .await
        .unwrap();
    chain
        .grant_access(&alice, doc.address(), Some(id), u64::MAX >> 24)
        .await
        .unwrap();
    let answers = |chain: &EmbeddedChain| {
        let head = chain.head_number();
        let contract = chain.contract();
        let blocks: Vec<_> = (0..=head)
            .map(|n| chain.block_with_receipts(n).unwrap().unwrap())
            .collect();
        let locations: Vec<_> = blocks
            .iter()
            .flat_map(|(_, rs)| rs.iter().map(|r| chain.tx_location(r.tx_hash).unwrap()))
            .collect();
        let hashes: Vec<_> = blocks
            .iter()
            .map(|(b, _)| chain.block_number_of(b.header.hash()).unwrap())
            .collect();
        let t0 = ehr_chain::contract::EhrRegistry::RecordVersion::SIGNATURE_HASH;
        let logs = chain
            .logs_by_topic1(t0, B256::from(U256::from(id)), 0, head, 100)
            .unwrap();
        let slots: Vec<_> = (0..8u64)
            .map(|s| chain.storage_at(contract, U256::from(s)).unwrap())
            .collect();
        (
            head,
            locations,
            hashes,
            logs,
            slots,
            chain.account(contract).unwrap(),
            chain.account(alice.address()).unwrap(),
        )
    };
    let before = answers(&chain);
    let access = chain.can_access(doc.address(), id).await.unwrap();
    let versions = chain.record_versions(id).await.unwrap();
    assert!(access);
    assert_eq!(versions.len(), 2);
    drop(chain);

    drop_state_and_indexes(dir.path()).unwrap();
    let chain = open(dir.path(), &admin).unwrap();
    assert_eq!(answers(&chain), before);
    assert!(chain.can_access(doc.address(), id).await.unwrap());
    assert_eq!(chain.record_versions(id).await.unwrap(), versions);
    // And it goes on like any other chain.
    chain
        .update_record(&alice, id, B256::repeat_byte(3), codec::RAW)
        .await
        .unwrap();
    let head = chain.head_number();
    drop(chain);
    let report = EmbeddedChain::verify(dir.path(), ChainConfig::default().chain_id).unwrap();
    assert_eq!(report.blocks, head + 1);
    // Migrated once: the next open reads the stored state (an altered old block, which
    // only a replay would notice, does not stop it).
    tamper_block(dir.path(), 1, |b| {
        let n = b.len();
        b[n - 40] ^= 1;
    })
    .unwrap();
    let chain = open(dir.path(), &admin).unwrap();
    assert_eq!(chain.record(id).await.unwrap().version, 3);
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
