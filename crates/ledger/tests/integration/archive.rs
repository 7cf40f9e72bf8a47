//! Archive and read back: identical blocks, state parts, bytes per node, secrecy of one node.

use std::sync::Arc;

use ehr_ledger::{EpochPolicy, fetch};
use ehr_node::{LocalNode, Node, NodeKey};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_blocks_come_back_identical_with_their_state() {
    let mut w = World::new().await;
    w.transact(12, 3).await;
    w.part.push(b"first entry");
    // Small epochs: several of them, hash-linked.
    let handle = w.archiver(w.nodes.clone(), by_size(2_000));
    w.transact(9, 1).await;
    w.part.push(b"second entry");
    handle.notify();
    let status = handle.seal_and_stop().await.unwrap();
    let blocks = w.blocks();
    assert_eq!(status.archived_through, Some(blocks.len() as u64 - 1));
    assert!(status.epochs >= 3, "{status:?}");
    assert_eq!(status.epochs, status.sealed_epochs);
    assert!(status.pending_nodes.is_empty(), "{status:?}");
    let raw: u64 = blocks
        .iter()
        .map(|b| (b.block.len() + b.receipts.len()) as u64)
        .sum();
    assert_eq!(status.ledger_bytes, raw);

    let fetched = fetch(&w.nodes, &w.admin, w.chain.chain_id()).await.unwrap();
    assert_eq!(fetched.blocks, blocks);
    assert_eq!(fetched.epochs.len() as u64, status.epochs);
    assert!(fetched.epochs.iter().all(|e| e.problems.is_empty()));
    assert_eq!(fetched.parts.len(), 1);
    let log = &fetched.parts[0];
    assert_eq!(log.name, "log");
    // The snapshot of epoch 0 and the changes after it replay to the whole log.
    let mut replayed = log.snapshot.clone();
    for c in &log.changes {
        replayed.extend_from_slice(c);
    }
    assert_eq!(
        replayed,
        concat(&[b"first entry".to_vec(), b"second entry".to_vec()])
    );
    assert_eq!(log.cursor, 2);

    // A second run with nothing new seals nothing.
    let again = w.archiver(w.nodes.clone(), by_size(2_000));
    let status2 = again.seal_and_stop().await.unwrap();
    assert_eq!(status2.sealed_epochs, status.sealed_epochs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_keeps_about_a_kth_and_nothing_readable() {
    let mut w = World::new().await;
    w.transact(240, 8).await;
    let handle = w.archiver(w.nodes.clone(), EpochPolicy::default());
    let status = handle.seal_and_stop().await.unwrap();
    let ratio_goal = 1.0 / K as f64 + 0.05;
    for (i, bytes) in status.bytes_per_node.iter().enumerate() {
        let ratio = *bytes as f64 / status.ledger_bytes as f64;
        println!(
            "node {i}: {bytes} bytes for {} ledger bytes: {ratio:.4}",
            status.ledger_bytes
        );
        assert!(ratio <= ratio_goal, "node {i}: {ratio}");
        // bytes_per_node is what the node's store holds.
        let held: usize = w.stores[i].blocks().iter().map(|(_, d)| d.len()).sum();
        assert_eq!(held as u64, *bytes);
    }
    // No transaction, and no sender address, is in any one node's blocks.
    for (i, store) in w.stores.iter().enumerate() {
        let held = store.blocks();
        for raw in &w.sent {
            let sig = &raw[raw.len() - 40..];
            assert!(
                !held.iter().any(|(_, d)| contains(d, sig)),
                "node {i} holds a transaction's bytes"
            );
        }
    }
    // But the blocks themselves do hold them (the search would find them).
    let blocks = w.blocks();
    let raw = &w.sent[0];
    assert!(
        blocks
            .iter()
            .any(|b| contains(&b.block, &raw[raw.len() - 40..]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_server_continues_the_archive() {
    let mut w = World::new().await;
    w.transact(6, 1).await;
    w.part.push(b"before");
    let first = w
        .archiver(w.nodes.clone(), by_size(1_500))
        .seal_and_stop()
        .await
        .unwrap();
    let fetched = fetch(&w.nodes, &w.admin, w.chain.chain_id()).await.unwrap();

    // The server's disk is lost, its archive directory with it; the restore adopts the
    // archive it read back (once).
    std::fs::remove_dir_all(w.dir.path().join("archive")).unwrap();
    let config = w.config(w.nodes.clone(), by_size(1_500));
    ehr_ledger::adopt(&config, &fetched).unwrap();
    assert!(ehr_ledger::adopt(&config, &fetched).is_err());

    w.transact(4, 1).await;
    w.part.push(b"after");
    let status = w
        .archiver(w.nodes.clone(), by_size(1_500))
        .seal_and_stop()
        .await
        .unwrap();
    assert!(status.sealed_epochs > first.sealed_epochs, "{status:?}");
    assert!(status.bytes_per_node[0] > first.bytes_per_node[0]);
    let again = fetch(&w.nodes, &w.admin, w.chain.chain_id()).await.unwrap();
    assert_eq!(again.head.epoch, status.sealed_epochs - 1);
    assert_eq!(again.blocks, w.blocks());
    // It continues the same hash-linked archive: nothing archived again.
    let old = fetched.headers.len();
    assert_eq!(again.headers[..old], fetched.headers[..]);
    assert_eq!(
        again.headers[old].first_block,
        fetched.blocks.last().unwrap().number + 1
    );
    // The state parts start again from a snapshot of everything.
    let log = &again.parts[0];
    assert_eq!(
        log.snapshot,
        concat(&[b"before".to_vec(), b"after".to_vec()])
    );
    assert!(log.changes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_needs_only_the_node_directories_and_the_admin_key() {
    let mut w = World::new().await;
    w.transact(8, 2).await;
    w.archiver(w.nodes.clone(), by_size(1_500))
        .seal_and_stop()
        .await
        .unwrap();
    let blocks = w.blocks();
    // The server is gone, the chain with it: nodes rebuilt from their key, store and
    // directory alone, with no chain, answering the admin.
    let chain_id = w.chain.chain_id();
    let root = w.dir.path().to_path_buf();
    let nodes: Vec<Arc<dyn Node>> = (0..N)
        .map(|i| {
            let node = LocalNode::without_chain(
                format!("node {i}"),
                NodeKey::from_seed(&[i as u8 + 1; 32]),
                w.stores[i].clone(),
                w.admin.address(),
            )
            .with_archive_dir(&node_dir(&root, i))
            .unwrap();
            Arc::new(node) as Arc<dyn Node>
        })
        .collect();
    drop(w.nodes);
    drop(w.chain);
    let mut some = nodes.clone();
    some[0] = down(0);
    some[3] = down(3);
    let fetched = fetch(&some, &w.admin, chain_id).await.unwrap();
    assert_eq!(fetched.blocks, blocks);
    // Another admin key gets nothing out of them.
    let other = alloy::signers::local::PrivateKeySigner::random();
    assert!(matches!(
        fetch(&nodes, &other, chain_id).await,
        Err(ehr_ledger::Error::NoHead { .. })
    ));
}
