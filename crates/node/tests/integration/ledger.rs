//! Ledger custody: epoch key shares released to the admin alone, re-wrapped and bound to
//! the request; the archive head kept newest-first and across restarts; both in process
//! and through `RemoteNode` against the real router.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use ehr_chain::{ChainConfig, EmbeddedChain};
use ehr_crypto::KeyShare;
use ehr_crypto::wrap::{self, PublicKey, SecretKey};
use ehr_node::ledger::{LEDGER_CUSTODIAN_AAD, encode_wrapped, epoch_context, epoch_id};
use ehr_node::{
    ArchiveHead, CUSTODIAN_AAD, LedgerShareRequest, LocalNode, Node, NodeError, NodeKey,
    RemoteNode, ShareRequest,
};
use ehr_primitives::unix_now;
use ehr_store::{BlobStore, Cid, MemoryStore};

const CHAIN: u64 = 0x5345;

/// A node's share of epoch 3 stored on it as the archiver stores it; returns its CID and
/// the share.
async fn store_share(node: &dyn Node, store: &MemoryStore) -> (Cid, KeyShare) {
    let info = node.info().await.unwrap();
    let share = KeyShare {
        x: 2,
        share: [0x5a; 32],
    };
    let ctx = epoch_context(epoch_id(CHAIN, 3));
    let wrapped = wrap::wrap_key_share(
        &PublicKey(info.public_key.0),
        &ctx,
        &share,
        LEDGER_CUSTODIAN_AAD,
        &mut ehr_crypto::rng(),
    )
    .unwrap();
    let cid = store.put(&encode_wrapped(&wrapped)).await.unwrap();
    (cid, share)
}

fn request(signer: &PrivateKeySigner, cid: Cid, expiry: u64) -> (LedgerShareRequest, SecretKey) {
    let (secret, public) = wrap::generate_keypair(&mut ehr_crypto::rng());
    let req =
        LedgerShareRequest::sign(signer, epoch_id(CHAIN, 3), 2, cid, expiry, &public).unwrap();
    (req, secret)
}

/// The checks every transport must give the same answers to.
async fn check_release(node: &dyn Node, cid: Cid, share: &KeyShare, admin: &PrivateKeySigner) {
    let ctx = epoch_context(epoch_id(CHAIN, 3));
    let soon = unix_now() + 60;

    // The admin gets the share, wrapped to its one-time key, bound to its request.
    let (req, secret) = request(admin, cid, soon);
    let resp = node.release_ledger_share(&req).await.unwrap();
    assert_eq!(resp.x, 2);
    let got = wrap::unwrap_key_share(
        &secret,
        &ctx,
        2,
        req.signing_hash().as_slice(),
        &resp.wrapped,
    )
    .unwrap();
    assert_eq!(got, *share);
    // ... and only for that request.
    let (other, _) = request(admin, cid, soon + 1);
    assert!(
        wrap::unwrap_key_share(
            &secret,
            &ctx,
            2,
            other.signing_hash().as_slice(),
            &resp.wrapped
        )
        .is_err()
    );

    // Anyone else is refused, however well-formed the request.
    let (req, _) = request(&PrivateKeySigner::random(), cid, soon);
    assert_eq!(
        node.release_ledger_share(&req).await,
        Err(NodeError::Denied)
    );
    // A request altered after signing recovers another signer.
    let (mut req, _) = request(admin, cid, soon);
    req.x = 3;
    assert_eq!(
        node.release_ledger_share(&req).await,
        Err(NodeError::Denied)
    );
    // Expired, or too long-lived.
    let (req, _) = request(admin, cid, unix_now() - 1);
    assert_eq!(
        node.release_ledger_share(&req).await,
        Err(NodeError::Expired)
    );
    let (req, _) = request(admin, cid, unix_now() + 3600);
    assert_eq!(
        node.release_ledger_share(&req).await,
        Err(NodeError::Expired)
    );
    // A share of another epoch does not open for this one.
    let (public_req, _) = request(admin, cid, soon);
    let mut wrong_epoch = public_req.clone();
    wrong_epoch.epoch_id = epoch_id(CHAIN, 4);
    let wrong_epoch = LedgerShareRequest::sign(
        admin,
        wrong_epoch.epoch_id,
        2,
        cid,
        soon,
        &PublicKey(wrong_epoch.requester_key.0),
    )
    .unwrap();
    assert!(matches!(
        node.release_ledger_share(&wrong_epoch).await,
        Err(NodeError::NotFound(_))
    ));
}

#[tokio::test]
async fn ledger_shares_go_to_the_admin_alone() {
    let admin = PrivateKeySigner::random();
    let store = Arc::new(MemoryStore::new());
    let node = LocalNode::without_chain(
        "node 1",
        NodeKey::from_seed(&[9; 32]),
        store.clone(),
        admin.address(),
    );
    let (cid, share) = store_share(&node, &store).await;
    check_release(&node, cid, &share, &admin).await;

    // A record's key share (wrapped under the record custodian's associated data) cannot
    // be had through this path, even by the admin.
    let info = node.info().await.unwrap();
    let record_ctx = epoch_context(epoch_id(CHAIN, 3));
    let wrapped = wrap::wrap_key_share(
        &PublicKey(info.public_key.0),
        &record_ctx,
        &share,
        CUSTODIAN_AAD,
        &mut ehr_crypto::rng(),
    )
    .unwrap();
    let record_cid = store.put(&encode_wrapped(&wrapped)).await.unwrap();
    let (req, _) = request(&admin, record_cid, unix_now() + 60);
    assert!(matches!(
        node.release_ledger_share(&req).await,
        Err(NodeError::NotFound(_))
    ));

    // Without a chain, record-share requests are refused, clearly.
    let (_, public) = wrap::generate_keypair(&mut ehr_crypto::rng());
    let domain = ehr_node::domain(CHAIN, Address::ZERO);
    let nonce = U256::from(1u64);
    let req = ShareRequest::sign(&admin, &domain, 1, 1, nonce, unix_now() + 60, &public).unwrap();
    match node.release_share(&req).await {
        Err(NodeError::BadRequest(m)) => assert!(m.contains("without a chain"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_a_chain_answers_the_contract_admin() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = Arc::new(EmbeddedChain::open(dir.path(), ChainConfig::default(), &admin).unwrap());
    let store = Arc::new(MemoryStore::new());
    let node = LocalNode::new("node 1", NodeKey::from_seed(&[9; 32]), chain, store.clone())
        .await
        .unwrap()
        .with_archive_dir(&dir.path().join("node"))
        .unwrap();
    let (cid, share) = store_share(&node, &store).await;
    check_release(&node, cid, &share, &admin).await;
    let kept = std::fs::read_to_string(dir.path().join("node/archive-admin")).unwrap();
    assert_eq!(kept.trim().parse::<Address>().unwrap(), admin.address());
}

fn head(admin: &PrivateKeySigner, epoch: u64) -> ArchiveHead {
    let header = ehr_store::raw_cid(format!("header {epoch}").as_bytes());
    ArchiveHead::sign(admin, CHAIN, epoch, Some(epoch * 10), header).unwrap()
}

/// The head checks every transport must give the same answers to.
async fn check_heads(node: &dyn Node, admin: &PrivateKeySigner) {
    assert!(matches!(
        node.archive_head().await,
        Err(NodeError::NotFound(_))
    ));
    node.put_archive_head(&head(admin, 2)).await.unwrap();
    assert_eq!(node.archive_head().await.unwrap(), head(admin, 2));
    // An older one is ignored, a newer one kept.
    node.put_archive_head(&head(admin, 1)).await.unwrap();
    assert_eq!(node.archive_head().await.unwrap(), head(admin, 2));
    node.put_archive_head(&head(admin, 3)).await.unwrap();
    assert_eq!(node.archive_head().await.unwrap(), head(admin, 3));
    // One signed by another key is refused, however new.
    let forged = head(&PrivateKeySigner::random(), 9);
    assert_eq!(
        node.put_archive_head(&forged).await,
        Err(NodeError::BadSignature)
    );
    let mut altered = head(admin, 9);
    altered.epoch = 10;
    assert_eq!(
        node.put_archive_head(&altered).await,
        Err(NodeError::BadSignature)
    );
    assert_eq!(node.archive_head().await.unwrap(), head(admin, 3));
}

#[tokio::test]
async fn the_archive_head_is_the_newest_admin_signed_one_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let store = Arc::new(MemoryStore::new());
    let open = || {
        LocalNode::without_chain(
            "node 0",
            NodeKey::from_seed(&[1; 32]),
            store.clone(),
            admin.address(),
        )
        .with_archive_dir(dir.path())
        .unwrap()
    };
    check_heads(&open(), &admin).await;
    // A restart (no chain at all) still has it.
    assert_eq!(open().archive_head().await.unwrap(), head(&admin, 3));
    // A node without the directory forgets it.
    let bare = LocalNode::without_chain("n", NodeKey::from_seed(&[1; 32]), store, admin.address());
    assert!(matches!(
        bare.archive_head().await,
        Err(NodeError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_routes_through_remote_node() {
    let admin = PrivateKeySigner::random();
    let store = Arc::new(MemoryStore::new());
    let local: Arc<dyn Node> = Arc::new(LocalNode::without_chain(
        "node 1",
        NodeKey::from_seed(&[9; 32]),
        store.clone(),
        admin.address(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = ehr_node::router(local.clone(), Some("secret-token".into()));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let remote = RemoteNode::new(1, &url, Some("secret-token".into())).unwrap();

    let (cid, share) = store_share(&remote, &store).await;
    check_release(&remote, cid, &share, &admin).await;
    check_heads(&remote, &admin).await;

    // PUT needs the token; GET does not.
    let wrong = RemoteNode::new(1, &url, Some("wrong".into())).unwrap();
    assert_eq!(
        wrong.put_archive_head(&head(&admin, 7)).await,
        Err(NodeError::BadSignature)
    );
    let anonymous = RemoteNode::new(1, &url, None).unwrap();
    assert_eq!(anonymous.archive_head().await.unwrap(), head(&admin, 3));
    assert_eq!(
        anonymous.put_archive_head(&head(&admin, 7)).await,
        Err(NodeError::BadSignature)
    );
    assert_eq!(local.archive_head().await.unwrap(), head(&admin, 3));
}
