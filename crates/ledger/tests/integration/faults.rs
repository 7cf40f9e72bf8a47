//! Faults: nodes down, a corrupt fragment, a forged head, a crash mid-epoch, a node that
//! comes back.

use std::sync::Arc;
use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use ehr_ledger::format::EpochHeader;
use ehr_ledger::{Error, fetch};
use ehr_node::{ArchiveHead, LocalNode, Node, NodeError, NodeKey};

use crate::common::*;

/// A node that serves its blocks with one byte flipped (a lying or failing disk that its
/// store does not catch).
struct Lying(Arc<dyn Node>);

#[async_trait::async_trait]
impl Node for Lying {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn info(&self) -> Result<ehr_node::NodeInfo, NodeError> {
        self.0.info().await
    }
    async fn put_block(&self, cid: &ehr_store::Cid, data: &[u8]) -> Result<(), NodeError> {
        self.0.put_block(cid, data).await
    }
    async fn get_block(&self, cid: &ehr_store::Cid) -> Result<Vec<u8>, NodeError> {
        let mut data = self.0.get_block(cid).await?;
        data[0] ^= 1;
        Ok(data)
    }
    async fn delete_block(&self, cid: &ehr_store::Cid) -> Result<(), NodeError> {
        self.0.delete_block(cid).await
    }
    async fn release_share(
        &self,
        request: &ehr_node::ShareRequest,
    ) -> Result<ehr_node::ShareResponse, NodeError> {
        self.0.release_share(request).await
    }
    async fn release_ledger_share(
        &self,
        request: &ehr_node::LedgerShareRequest,
    ) -> Result<ehr_node::ShareResponse, NodeError> {
        self.0.release_ledger_share(request).await
    }
    async fn archive_head(&self) -> Result<ArchiveHead, NodeError> {
        self.0.archive_head().await
    }
}

/// A world with 20 transactions archived in several epochs.
async fn archived() -> World {
    let mut w = World::new().await;
    w.transact(20, 2).await;
    w.part.push(b"entry");
    let status = w
        .archiver(w.nodes.clone(), by_size(1_500))
        .seal_and_stop()
        .await
        .unwrap();
    assert!(status.epochs >= 3, "{status:?}");
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_k_nodes_rebuild_and_fewer_fail_naming_epochs_and_counts() {
    let w = archived().await;
    let blocks = w.blocks();

    // n - k = 2 nodes down (one holding an original fragment): still everything.
    let mut nodes = w.nodes.clone();
    nodes[1] = down(1);
    nodes[4] = down(4);
    let fetched = fetch(&nodes, &w.admin, w.chain.chain_id()).await.unwrap();
    assert_eq!(fetched.blocks, blocks);
    // The nodes that did not answer for their head are named, and not asked for
    // fragments while others can give them.
    let named = fetched.problems.join("\n");
    for i in [1, 4] {
        assert!(
            named.contains(&format!("{}: archive head: unreachable", nodes[i].name())),
            "{named}"
        );
    }
    assert!(fetched.epochs.iter().all(|e| e.problems.is_empty()));

    // Three down: fails, saying which epochs and how many fragments it found for each.
    nodes[2] = down(2);
    let err = fetch(&nodes, &w.admin, w.chain.chain_id())
        .await
        .unwrap_err();
    let msg = err.to_string();
    match &err {
        Error::NotEnough {
            shortfalls,
            problems,
        } => {
            assert_eq!(shortfalls.len() as u64, fetched.epochs.len() as u64);
            for (e, s) in shortfalls.iter().enumerate() {
                assert_eq!(
                    (s.epoch, s.found, s.needed, s.what),
                    (e as u64, 2, 3, "fragments")
                );
            }
            assert!(problems.iter().any(|p| p.starts_with(nodes[2].name())));
        }
        other => panic!("{other:?}"),
    }
    assert!(msg.contains("epoch 0: 2 of 3 fragments needed"), "{msg}");
    assert!(msg.contains(nodes[2].name()), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_fragment_is_named_and_read_around() {
    let w = archived().await;
    let head = w.nodes[0].archive_head().await.unwrap();
    let header = EpochHeader::decode(&w.nodes[0].get_block(&head.header).await.unwrap()).unwrap();
    // Node 0's fragment (an original) of the newest epoch.
    let cid = header.fragment_cid(0);
    let mut bad = w.stores[0]
        .blocks()
        .into_iter()
        .find(|(c, _)| *c == cid)
        .unwrap()
        .1;
    bad[7] ^= 0x40;
    w.stores[0].corrupt(&cid, bad);

    let fetched = fetch(&w.nodes, &w.admin, w.chain.chain_id()).await.unwrap();
    assert_eq!(fetched.blocks, w.blocks());
    let report = fetched.epochs.last().unwrap();
    assert_eq!(report.number, head.epoch);
    // The node's own store catches the bad bytes (a node that served them would be caught
    // by fetch's own check: "fails its hash").
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    let prefix = format!("node 0: fragment of epoch {}: ", head.epoch);
    assert!(p.starts_with(&prefix), "{p}");
    assert!(p.contains("does not match its CID"), "{p}");

    // A node that serves wrong bytes is caught by fetch itself, in every epoch, and read
    // around (its headers too: they come from the next node).
    let mut nodes = w.nodes.clone();
    nodes[1] = Arc::new(Lying(w.nodes[1].clone()));
    let fetched = fetch(&nodes, &w.admin, w.chain.chain_id()).await.unwrap();
    assert_eq!(fetched.blocks, w.blocks());
    for report in &fetched.epochs {
        let e = report.number;
        assert!(
            report
                .problems
                .contains(&format!("node 1: fragment of epoch {e} fails its hash")),
            "{:?}",
            report.problems
        );
    }
    assert_eq!(report.fragments_ok, K);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_signed_by_another_key_is_refused_and_ignored() {
    let w = archived().await;
    let good = w.nodes[0].archive_head().await.unwrap();
    let forger = PrivateKeySigner::random();
    let forged = ArchiveHead::sign(
        &forger,
        good.chain_id,
        good.epoch + 5,
        Some(9_999),
        good.header,
    )
    .unwrap();
    // A node refuses it and keeps the admin's.
    assert_eq!(
        w.nodes[1].put_archive_head(&forged).await,
        Err(NodeError::BadSignature)
    );
    assert_eq!(w.nodes[1].archive_head().await.unwrap(), good);

    // A node that answers with it (one made to trust the forger) is not trusted by fetch.
    let liar = LocalNode::without_chain(
        "node 2",
        NodeKey::from_seed(&[3; 32]),
        w.stores[2].clone(),
        forger.address(),
    );
    liar.put_archive_head(&forged).await.unwrap();
    let mut nodes = w.nodes.clone();
    nodes[2] = Arc::new(liar);
    let fetched = fetch(&nodes, &w.admin, w.chain.chain_id()).await.unwrap();
    assert_eq!(fetched.head, good);
    assert_eq!(fetched.blocks, w.blocks());
    assert!(
        fetched
            .problems
            .iter()
            .any(|p| p == "node 2: archive head not signed by the admin; ignored"),
        "{:?}",
        fetched.problems
    );

    // With only forged heads around, nothing is fetched.
    let only_liar: Vec<Arc<dyn Node>> = vec![nodes[2].clone(), down(1), down(3), down(4), down(0)];
    match fetch(&only_liar, &w.admin, w.chain.chain_id()).await {
        Err(Error::NoHead { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_epoch_resumes_and_loses_nothing() {
    let mut w = World::new().await;
    w.transact(4, 1).await;
    let first = w
        .archiver(w.nodes.clone(), by_size(1 << 20))
        .seal_and_stop()
        .await
        .unwrap();
    let archived = first.archived_through.unwrap();

    // The next run reads new blocks into its open epoch, then "crashes" (its handle is
    // dropped without sealing).
    let crashing = w.archiver(w.nodes.clone(), by_size(1 << 20));
    w.transact(5, 1).await;
    crashing.notify();
    tokio::time::sleep(Duration::from_millis(600)).await;
    drop(crashing);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let head = w.nodes[0].archive_head().await.unwrap();
    assert_eq!(head.last_block, Some(archived), "nothing more was sealed");

    // A crash while sealing, after the epoch's pending file was written and before the
    // progress named it, leaves a file the progress does not know: it is sealed over.
    let stale = w.dir.path().join("archive/pending/epoch-1.bin");
    std::fs::write(&stale, b"half an epoch").unwrap();

    // The next start seals from the first unarchived block.
    w.transact(3, 1).await;
    let resumed = w.archiver(w.nodes.clone(), by_size(1 << 20));
    let status = resumed.seal_and_stop().await.unwrap();
    assert_eq!(status.sealed_epochs, first.sealed_epochs + 1);
    assert!(!stale.exists(), "every node has epoch 1: its file is gone");
    let fetched = fetch(&w.nodes, &w.admin, w.chain.chain_id()).await.unwrap();
    assert_eq!(fetched.blocks, w.blocks());
    assert_eq!(fetched.epochs[1].first_block, archived + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_was_down_gets_its_parts_when_back() {
    let mut w = World::new().await;
    w.transact(6, 2).await;
    // Node 3 over HTTP (the real router), not listening yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let remote: Arc<dyn Node> =
        Arc::new(ehr_node::RemoteNode::new(3, &url, Some("tok".into())).unwrap());
    let mut nodes = w.nodes.clone();
    nodes[3] = remote.clone();

    // An epoch sealed by age in the background, then one at the clean stop, node 3 down.
    let by_age = ehr_ledger::EpochPolicy {
        max_bytes: 1 << 20,
        max_age: Duration::from_millis(200),
    };
    let handle = w.archiver(nodes.clone(), by_age.clone());
    let mut waited = 0;
    while handle.status().sealed_epochs == 0 {
        assert!(waited < 100, "nothing sealed by age: {:?}", handle.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    w.transact(2, 1).await;
    let status = handle.seal_and_stop().await.unwrap();
    // Four of five took them: archived (k + 1 = 4), node 3 pending.
    assert_eq!(status.sealed_epochs, 2);
    assert_eq!(status.epochs, 2);
    assert_eq!(status.pending_nodes, vec![remote.name().to_owned()]);
    assert_eq!(status.bytes_per_node[3], 0);
    assert!(w.stores[3].is_empty());

    // The next start tries node 3 (still down) and keeps retrying in the background;
    // once it is back it gets both epochs' fragments, shares and headers, and the head.
    let handle = w.archiver(nodes.clone(), by_age);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        handle.status().pending_nodes,
        vec![remote.name().to_owned()]
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let router = ehr_node::router(w.nodes[3].clone(), Some("tok".into()));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut waited = 0;
    while !handle.status().pending_nodes.is_empty() {
        assert!(
            waited < 100,
            "node 3 never got its parts: {:?}",
            handle.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let status = handle.seal_and_stop().await.unwrap();
    assert_eq!(status.bytes_per_node[3], status.bytes_per_node[2]);
    let head = remote.archive_head().await.unwrap();
    assert_eq!(head.epoch, 1);
    let held: Vec<_> = w.stores[3].blocks().into_iter().map(|(c, _)| c).collect();
    let mut cid = head.header;
    for _ in 0..2 {
        let bytes = w.nodes[3].get_block(&cid).await.unwrap();
        let header = EpochHeader::decode(&bytes).unwrap();
        assert!(held.contains(&header.fragment_cid(3)));
        assert!(held.contains(&header.share_cid(3)));
        assert!(!held.contains(&header.share_cid(2)), "only its own share");
        cid = ehr_store::cid_from_sha256(ehr_ledger::format::CODEC, &header.prev);
    }

    // And node 3, over HTTP, serves a restore with two others down.
    nodes[0] = down(0);
    nodes[1] = down(1);
    let fetched = fetch(&nodes, &w.admin, w.chain.chain_id()).await.unwrap();
    assert_eq!(fetched.blocks, w.blocks());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_on_fewer_than_k_plus_one_nodes_is_not_archived_until_they_are_back() {
    let mut w = World::new().await;
    w.transact(4, 2).await;
    let mut nodes = w.nodes.clone();
    nodes[1] = down(1);
    nodes[2] = down(2);
    let status = w
        .archiver(nodes.clone(), by_size(1 << 20))
        .seal_and_stop()
        .await
        .unwrap();
    // Sealed and on three nodes (k = 3: readable), but not archived (k + 1 = 4 needed).
    assert_eq!((status.sealed_epochs, status.epochs), (1, 0));
    assert_eq!(status.archived_through, None);
    assert_eq!(
        status.pending_nodes,
        vec![nodes[1].name().to_owned(), nodes[2].name().to_owned()]
    );
    // The next start, with them back, gives them their parts: archived.
    let status = w
        .archiver(w.nodes.clone(), by_size(1 << 20))
        .seal_and_stop()
        .await
        .unwrap();
    assert_eq!((status.sealed_epochs, status.epochs), (1, 1));
    assert_eq!(status.archived_through, Some(w.chain.head_number()));
    assert!(status.pending_nodes.is_empty());
    assert!(!w.stores[1].is_empty() && !w.stores[2].is_empty());
}
