//! Rebuilding an embedded chain from its archived blocks (`EmbeddedChain::raw_block` →
//! `EmbeddedChain::restore`): every block is re-checked and re-executed, and only a chain
//! that checks out is put in place.

use ehr_chain::contract::codec;
use ehr_chain::{B256, ChainConfig, EmbeddedChain, Error, PrivateKeySigner, RegistryExt};

const CHAIN_ID: u64 = 0x5345;

/// A chain with some activity; returns its raw blocks, the patient and the record id.
async fn archived(dir: &std::path::Path) -> (Vec<(Vec<u8>, Vec<u8>)>, PrivateKeySigner, u64) {
    let admin = PrivateKeySigner::random();
    let chain = EmbeddedChain::open(dir, ChainConfig::default(), &admin).unwrap();
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
    let blocks = (0..=chain.head_number())
        .map(|n| chain.raw_block(n).unwrap().expect("block"))
        .collect();
    assert_eq!(chain.raw_block(chain.head_number() + 1).unwrap(), None);
    (blocks, alice, id)
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn a_restored_chain_is_the_same_chain_and_opens_without_replay() {
    let old = tempfile::tempdir().unwrap();
    let (blocks, alice, id) = archived(old.path()).await;
    let head_hash = {
        let report = EmbeddedChain::verify(old.path(), CHAIN_ID).unwrap();
        report.head_hash
    };
    let new = tempfile::tempdir().unwrap();
    let report = EmbeddedChain::restore(new.path(), CHAIN_ID, blocks.clone()).unwrap();
    assert_eq!((report.blocks, report.transactions), (4, 4));
    assert_eq!(report.head_hash, head_hash);
    // It opens from its stored state, verifies, and carries on.
    let chain = EmbeddedChain::open(
        new.path(),
        ChainConfig::default(),
        &PrivateKeySigner::random(),
    )
    .unwrap();
    let rec = chain.record(id).await.unwrap();
    assert_eq!(
        (rec.owner, rec.version, rec.digest),
        (alice.address(), 2, B256::repeat_byte(2))
    );
    for (n, raw) in blocks.iter().enumerate() {
        assert_eq!(chain.raw_block(n as u64).unwrap().as_ref(), Some(raw));
    }
    chain
        .update_record(&alice, id, B256::repeat_byte(3), codec::RAW)
        .await
        .unwrap();
    drop(chain);
    assert_eq!(
        EmbeddedChain::verify(new.path(), CHAIN_ID).unwrap().blocks,
        5
    );
    // A directory that holds a chain is never overwritten.
    let again = EmbeddedChain::restore(new.path(), CHAIN_ID, blocks);
    assert!(
        matches!(again, Err(Error::Store(ref m)) if m.contains("already holds a chain")),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_bad_archived_block_is_named_and_nothing_is_left() {
    let old = tempfile::tempdir().unwrap();
    let (blocks, _, _) = archived(old.path()).await;
    type Damage = fn(&mut Vec<(Vec<u8>, Vec<u8>)>);
    let cases: [(&str, u64, Damage); 4] = [
        ("a flipped bit in a transaction", 2, |b| {
            let n = b[2].0.len();
            b[2].0[n - 40] ^= 1;
        }),
        ("a missing block", 2, |b| {
            b.remove(2);
        }),
        ("altered receipts", 1, |b| {
            let n = b[1].1.len();
            b[1].1[n - 1] ^= 1;
        }),
        ("a different chain id's genesis", 0, |_| {}),
    ];
    for (what, bad, damage) in cases {
        let mut blocks = blocks.clone();
        damage(&mut blocks);
        let chain_id = if bad == 0 { CHAIN_ID + 1 } else { CHAIN_ID };
        let new = tempfile::tempdir().unwrap();
        let dir = new.path().join("chain");
        match EmbeddedChain::restore(&dir, chain_id, blocks) {
            Err(Error::Tampered { block, reason }) => assert_eq!(block, bad, "{what}: {reason}"),
            Err(Error::Corrupt(why)) => {
                assert!(why.contains(&format!("block {bad}")), "{what}: {why}")
            }
            other => panic!("{what}: restore said {other:?}"),
        }
        assert_eq!(leftovers(&dir), Vec::<String>::new(), "{what}");
    }
}
