//! Share recovery over nodes (`LocalNode::recovery_*`), 3-of-4: helpers 1–3 re-issue node
//! 4's shares of two ledger epochs to its new key. Every message is opened here with the
//! parties' keys to check that no piece or σ equals any share; the new node stores its
//! shares in its share index and releases them for the header's (old) share CID, also
//! after a restart; a share failing its digest is reported and not stored; a plan is taken
//! part in once. Every step refuses an order the admin did not sign, an expired one and a
//! replayed one; the three steps run the same over HTTP (`/node/recovery/*`, RemoteNode).

use std::sync::Arc;

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use ehr_crypto::dispersal::{self, Dispersed};
use ehr_crypto::wrap::{self, PublicKey};
use ehr_crypto::{KeyShare, Threshold};
use ehr_node::ledger::{LEDGER_CUSTODIAN_AAD, encode_wrapped, epoch_context, epoch_id};
use ehr_node::{
    LedgerShareRequest, LocalNode, Node, NodeError, NodeKey, RecoveryItem, RecoveryMessage,
    RecoveryOrder, RemoteNode, SignedRecoveryOrder,
};
use ehr_primitives::unix_now;
use ehr_store::{BlobStore, MemoryStore};

const CHAIN: u64 = 0x5345;
const NEW_SEED: [u8; 32] = [9; 32];

fn seed(i: usize) -> [u8; 32] {
    [i as u8 + 1; 32]
}

struct Setup {
    admin: PrivateKeySigner,
    helpers: Vec<LocalNode>,
    stores: Vec<Arc<MemoryStore>>,
    /// Per epoch: what was dispersed.
    epochs: Vec<Dispersed>,
    items: Vec<RecoveryItem>,
    custodians: Vec<B256>,
}

async fn setup(dir: &std::path::Path) -> Setup {
    let t = Threshold::new(3, 4).unwrap();
    let admin = PrivateKeySigner::random();
    let keys: Vec<NodeKey> = (0..4).map(|i| NodeKey::from_seed(&seed(i))).collect();
    let stores: Vec<Arc<MemoryStore>> = (0..4).map(|_| Arc::new(MemoryStore::new())).collect();
    let mut epochs = Vec::new();
    let mut items = Vec::new();
    for e in [0u64, 1] {
        let id = epoch_id(CHAIN, e);
        let ctx = epoch_context(id);
        let d = dispersal::disperse(t, &ctx, b"an epoch".to_vec(), &mut ehr_crypto::rng()).unwrap();
        let mut shares = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let w = wrap::wrap_key_share(
                &PublicKey(key.info().public_key.0),
                &ctx,
                &d.key_shares[i],
                LEDGER_CUSTODIAN_AAD,
                &mut ehr_crypto::rng(),
            )
            .unwrap();
            shares.push(stores[i].put(&encode_wrapped(&w)).await.unwrap());
        }
        items.push(RecoveryItem::LedgerEpoch {
            epoch_id: id,
            shares,
            key_share_digests: d.manifest.key_share_digests.clone(),
        });
        epochs.push(d);
    }
    let helpers = (0..3)
        .map(|i| {
            LocalNode::without_chain(
                format!("node {}", i + 1),
                keys[i].clone(),
                stores[i].clone(),
                admin.address(),
            )
            .with_archive_dir(&dir.join(format!("node-{}", i + 1)))
            .unwrap()
        })
        .collect();
    let mut custodians: Vec<B256> = keys.iter().map(|k| k.info().public_key).collect();
    custodians[3] = NodeKey::from_seed(&NEW_SEED).info().public_key;
    Setup {
        admin,
        helpers,
        stores,
        epochs,
        items,
        custodians,
    }
}

fn new_node(s: &Setup, dir: &std::path::Path) -> LocalNode {
    LocalNode::without_chain(
        "node 4",
        NodeKey::from_seed(&NEW_SEED),
        s.stores[3].clone(),
        s.admin.address(),
    )
    .with_archive_dir(&dir.join("node-4"))
    .unwrap()
}

fn unsigned(s: &Setup, items: Vec<RecoveryItem>) -> RecoveryOrder {
    let mut plan_id = [0u8; 16];
    ehr_crypto::fill_random(&mut plan_id);
    RecoveryOrder {
        plan_id,
        threshold: Threshold::new(3, 4).unwrap(),
        helpers: vec![1, 2, 3],
        target: 4,
        custodians: s.custodians.clone(),
        items,
    }
}

/// An order over `items`, signed by the admin.
fn order(s: &Setup, items: Vec<RecoveryItem>) -> SignedRecoveryOrder {
    SignedRecoveryOrder::sign(&s.admin, unsigned(s, items), unix_now() + 300).unwrap()
}

/// Opens `m` with its recipient's key (the test knows every seed).
fn open(order: &RecoveryOrder, m: &RecoveryMessage, sigma: bool) -> Vec<u8> {
    let seed = if m.to == 4 {
        NEW_SEED
    } else {
        seed(usize::from(m.to) - 1)
    };
    let (secret, _) = wrap::derive_keypair(&seed);
    let label: &[u8] = if sigma {
        b"SEHR recovery sigma v1"
    } else {
        b"SEHR recovery piece v1"
    };
    let info = [label, &order.plan_id, &[m.from, m.to]].concat();
    wrap::unwrap(&secret, &info, &order.hash(), &m.wrapped)
        .unwrap()
        .to_vec()
}

/// Asks `node` for its share `x` of epoch `e`, naming the header's share CID.
async fn released(node: &dyn Node, s: &Setup, e: usize, x: u8) -> Result<KeyShare, NodeError> {
    let RecoveryItem::LedgerEpoch {
        epoch_id, shares, ..
    } = &s.items[e]
    else {
        unreachable!()
    };
    let (secret, public) = wrap::generate_keypair(&mut ehr_crypto::rng());
    let req = LedgerShareRequest::sign(
        &s.admin,
        *epoch_id,
        x,
        shares[usize::from(x) - 1],
        unix_now() + 60,
        &public,
    )
    .unwrap();
    let resp = node.release_ledger_share(&req).await?;
    Ok(wrap::unwrap_key_share(
        &secret,
        &epoch_context(*epoch_id),
        x,
        req.signing_hash().as_slice(),
        &resp.wrapped,
    )
    .unwrap())
}

#[tokio::test]
async fn helpers_reissue_a_replaced_custodians_shares_without_revealing_any() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path()).await;
    let target = new_node(&s, dir.path());
    // Before: the new node has no share (its store holds only the old key's blocks).
    assert!(released(&target, &s, 0, 4).await.is_err());

    let order = order(&s, s.items.clone());
    let mut pieces = Vec::new();
    for h in &s.helpers {
        pieces.extend(h.recovery_contribute(&order).await.unwrap());
    }
    assert_eq!(pieces.len(), 3 * 2, "k(k-1) piece messages");
    // A helper takes part in a plan once.
    assert_eq!(
        s.helpers[0].recovery_contribute(&order).await.unwrap_err(),
        NodeError::Replayed
    );
    let mut sigmas = Vec::new();
    for h in &s.helpers {
        sigmas.push(h.recovery_relay(&order, &pieces).await.unwrap());
    }

    // No piece or σ a helper sends equals any share of any item.
    let all_shares: Vec<[u8; 32]> = s
        .epochs
        .iter()
        .flat_map(|d| d.key_shares.iter().map(|k| k.share))
        .collect();
    for (m, sigma) in pieces
        .iter()
        .map(|m| (m, false))
        .chain(sigmas.iter().map(|m| (m, true)))
    {
        let plain = open(&order.order, m, sigma);
        assert_eq!(plain.len(), 32 * 2);
        for chunk in plain.chunks(32) {
            assert!(
                !all_shares.iter().any(|s| s.as_slice() == chunk),
                "a message from {} to {} carries a share",
                m.from,
                m.to
            );
        }
    }

    // Only the target opens the σ; it stores both shares.
    assert!(matches!(
        s.helpers[0].recovery_assemble(&order, &sigmas).await,
        Err(NodeError::BadRequest(_))
    ));
    let outcome = target.recovery_assemble(&order, &sigmas).await.unwrap();
    assert_eq!((outcome.stored, outcome.failed.clone()), (2, vec![]));
    for e in 0..2 {
        let got = released(&target, &s, e, 4).await.unwrap();
        assert_eq!(got, s.epochs[e].key_shares[3], "epoch {e}");
    }
    // The index is on disk: a restarted node still releases its share.
    drop(target);
    let target = new_node(&s, dir.path());
    assert_eq!(
        released(&target, &s, 1, 4).await.unwrap(),
        s.epochs[1].key_shares[3]
    );
    // The helpers' own shares are untouched.
    assert_eq!(
        released(&s.helpers[1], &s, 0, 2).await.unwrap(),
        s.epochs[0].key_shares[1]
    );
}

#[tokio::test]
async fn a_reissued_share_that_fails_its_digest_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path()).await;
    let target = new_node(&s, dir.path());
    // The item's digest for x = 4 is wrong: what the σ sum to cannot match it.
    let mut item = s.items[0].clone();
    if let RecoveryItem::LedgerEpoch {
        key_share_digests, ..
    } = &mut item
    {
        key_share_digests[3][0] ^= 1;
    }
    let order = order(&s, vec![item, s.items[1].clone()]);
    let mut pieces = Vec::new();
    for h in &s.helpers {
        pieces.extend(h.recovery_contribute(&order).await.unwrap());
    }
    let mut sigmas = Vec::new();
    for h in &s.helpers {
        sigmas.push(h.recovery_relay(&order, &pieces).await.unwrap());
    }
    // A σ missing: refused.
    assert!(matches!(
        target.recovery_assemble(&order, &sigmas[..2]).await,
        Err(NodeError::BadRequest(_))
    ));
    let outcome = target.recovery_assemble(&order, &sigmas).await.unwrap();
    assert_eq!((outcome.stored, outcome.failed), (1, vec![0]));
    assert!(released(&target, &s, 0, 4).await.is_err());
    assert_eq!(
        released(&target, &s, 1, 4).await.unwrap(),
        s.epochs[1].key_shares[3]
    );
}

#[tokio::test]
async fn an_order_not_signed_by_the_admin_expired_or_replayed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path()).await;
    let target = new_node(&s, dir.path());
    let other = PrivateKeySigner::random();
    let forged =
        SignedRecoveryOrder::sign(&other, unsigned(&s, s.items.clone()), unix_now() + 300).unwrap();
    assert_eq!(
        s.helpers[0].recovery_contribute(&forged).await.unwrap_err(),
        NodeError::Denied
    );
    assert_eq!(
        target.recovery_assemble(&forged, &[]).await.unwrap_err(),
        NodeError::Denied
    );
    // An admin-signed order whose signed part was changed (another target key) is not the
    // admin's either.
    let mut changed = order(&s, s.items.clone());
    changed.order.custodians[3] = NodeKey::from_seed(&[7; 32]).info().public_key;
    assert_eq!(
        s.helpers[1]
            .recovery_contribute(&changed)
            .await
            .unwrap_err(),
        NodeError::Denied
    );
    for expiry in [unix_now() - 1, unix_now() + 3600] {
        let late =
            SignedRecoveryOrder::sign(&s.admin, unsigned(&s, s.items.clone()), expiry).unwrap();
        assert_eq!(
            s.helpers[0].recovery_contribute(&late).await.unwrap_err(),
            NodeError::Expired
        );
    }

    // The real order still runs (the refusals spent nothing), once per step.
    let order = order(&s, s.items.clone());
    let mut pieces = Vec::new();
    for h in &s.helpers {
        pieces.extend(h.recovery_contribute(&order).await.unwrap());
    }
    let mut sigmas = Vec::new();
    for h in &s.helpers {
        sigmas.push(h.recovery_relay(&order, &pieces).await.unwrap());
    }
    assert_eq!(
        s.helpers[2]
            .recovery_relay(&order, &pieces)
            .await
            .unwrap_err(),
        NodeError::Replayed
    );
    let outcome = target.recovery_assemble(&order, &sigmas).await.unwrap();
    assert_eq!(outcome.stored, 2);
    assert_eq!(
        target.recovery_assemble(&order, &sigmas).await.unwrap_err(),
        NodeError::Replayed
    );
}

/// Serves `node` on a free loopback port; its URL.
async fn serve(node: LocalNode) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = ehr_node::router(Arc::new(node), Some("tok".into()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_three_steps_run_over_http_and_refuse_a_foreign_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path()).await;
    let target = new_node(&s, dir.path());
    let mut remotes: Vec<RemoteNode> = Vec::new();
    for (i, h) in std::mem::take(&mut s.helpers).into_iter().enumerate() {
        remotes.push(RemoteNode::new(i + 1, &serve(h).await, None).unwrap());
    }
    let target = RemoteNode::new(4, &serve(target).await, None).unwrap();

    let other = PrivateKeySigner::random();
    let forged =
        SignedRecoveryOrder::sign(&other, unsigned(&s, s.items.clone()), unix_now() + 300).unwrap();
    assert_eq!(
        remotes[0].recovery_contribute(&forged).await.unwrap_err(),
        NodeError::Denied
    );

    let order = order(&s, s.items.clone());
    let mut pieces = Vec::new();
    for h in &remotes {
        pieces.extend(h.recovery_contribute(&order).await.unwrap());
    }
    assert_eq!(
        remotes[0].recovery_contribute(&order).await.unwrap_err(),
        NodeError::Replayed
    );
    let mut sigmas = Vec::new();
    for (i, h) in remotes.iter().enumerate() {
        let mine: Vec<RecoveryMessage> = pieces
            .iter()
            .filter(|m| usize::from(m.to) == i + 1)
            .cloned()
            .collect();
        sigmas.push(h.recovery_relay(&order, &mine).await.unwrap());
    }
    let outcome = target.recovery_assemble(&order, &sigmas).await.unwrap();
    assert_eq!((outcome.stored, outcome.failed), (2, vec![]));
    for e in 0..2 {
        assert_eq!(
            released(&target, &s, e, 4).await.unwrap(),
            s.epochs[e].key_shares[3],
            "epoch {e}"
        );
    }
}
