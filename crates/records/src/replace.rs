//! Replacing a wiped or lost node: `secure-ehr node replace N` (offline, under the data
//! directory's lock, with the embedded chain in it): an in-process node ([`replace_node`])
//! or a remote `secure-ehr node` ([`replace_remote_node`], steps 2 to 4 over HTTP).
//!
//! 1. Node N must be gone (its directory or key file): one that still has the key the
//!    chain lists is refused unless forced. Whatever is left of its directory is kept aside
//!    at the end as `nodes/node-N.replaced-<unix time>`, never deleted.
//! 2. The new node is built in `nodes/node-N.replacing` with a **new** key: for every record
//!    version on chain (the `RecordVersion` events) its manifest and its fragment N (rebuilt
//!    from any k good fragments of the other nodes, checked against the manifest); for every
//!    ledger epoch reachable from the newest archive head its header, its fragment N and the
//!    head itself.
//! 3. Its key shares of all of them are re-issued by share recovery ([`ehr_node::recovery`])
//!    from k surviving custodians: each helper unwraps only its own share, the pieces and σ
//!    travel HPKE-wrapped to their recipient, and only the new node assembles, checks and
//!    stores its shares (in its share index: the manifests name the old share blocks). This
//!    function carries ciphertexts only; no buffer here ever holds a share or a data key.
//! 4. The admin puts the new node set on chain (the same nodes, N with its new address and
//!    key; the contract bumps `nodeSetEpoch`), then the new directory takes node N's place.
//!
//! Until step 4 nothing but the `.replacing` directory has changed, and a failure leaves
//! the deployment as it was. A crash at any point is repaired by running the command again:
//! before the chain changes, node N is as it was (a new attempt starts over in a fresh
//! `.replacing` directory); after it, node N's directory (absent, or with a key that is no
//! longer the chain's) is replaced again.
//! A remote node N is replaced by a fresh `secure-ehr node` the operator starts first (a new
//! key); steps 2 to 4 are the same, through [`Node`]: the blocks are stored on it with the
//! node token and the recovery orders are signed by the admin key.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use ehr_chain::contract::EhrRegistry;
use ehr_chain::{LogQuery, NodeSet, Registry, RegistryExt};
use ehr_crypto::Threshold;
use ehr_crypto::dispersal::{Manifest, repair};
use ehr_ledger::format::EpochHeader;
use ehr_node::ledger::epoch_id;
use ehr_node::{
    ArchiveHead, LocalNode, Node, NodeKey, RecordManifest, RecoveryItem, RecoveryMessage,
    RecoveryOrder, SignedRecoveryOrder,
};
use ehr_store::{BlobStore, Cid};

use crate::deployment::{chain_dir, node_dir, node_store, open_embedded_chain};
use crate::{Error, Result};

/// Items per recovery order (one HPKE message per helper pair carries all of them).
const ORDER_ITEMS: usize = 512;
/// Manifest bytes per recovery order (they travel hex-encoded in every step's body, which a
/// node takes up to [`ehr_node::MAX_RECOVERY_BODY`]).
const ORDER_MANIFEST_BYTES: usize = ehr_node::MAX_RECOVERY_BODY / 4;

/// `items` cut into orders of at most [`ORDER_ITEMS`] items and [`ORDER_MANIFEST_BYTES`]
/// bytes of manifests (an item is never split).
fn orders(items: &[RecoveryItem]) -> Vec<&[RecoveryItem]> {
    let weight = |item: &RecoveryItem| match item {
        RecoveryItem::Record { block, .. } => block.as_ref().map_or(0, |b| b.len()),
        RecoveryItem::LedgerEpoch { .. } => 0,
    };
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let w = weight(item);
        if i > start && (i - start == ORDER_ITEMS || bytes + w > ORDER_MANIFEST_BYTES) {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += w;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// What [`replace_node`] did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReplaceReport {
    /// The node replaced (from 1).
    pub node: usize,
    /// Its new identity address.
    pub address: Address,
    /// Its new X25519 custodian key.
    pub public_key: B256,
    /// The chain's `nodeSetEpoch` after the change.
    pub node_set_epoch: u32,
    /// Record versions whose manifest, fragment and key share it now holds.
    pub record_versions: usize,
    /// Ledger epochs whose header, fragment and key share it now holds.
    pub epochs: usize,
    /// Where the old directory was kept, if there was one.
    pub old_dir: Option<std::path::PathBuf>,
    /// Nodes read around (down, or a bad block), named.
    pub problems: Vec<String>,
}

/// Replaces in-process node `n` (from 1) of `data_dir` (see the module docs). `force`
/// replaces a node that still has its key. The caller holds the data directory's lock.
pub async fn replace_node(data_dir: &Path, n: usize, force: bool) -> Result<ReplaceReport> {
    let Deployment {
        registry,
        admin,
        set,
        threshold,
        target,
    } = deployment(data_dir, n).await?;
    let count = set.nodes.len();

    // 1. Node N must be gone, unless forced.
    let dir = node_dir(data_dir, n);
    let key_file = dir.join("node.key");
    if dir.exists()
        && key_file.exists()
        && NodeKey::load_or_create(&key_file)?.info().public_key == set.nodes[n - 1].1
        && !force
    {
        return Err(Error::InvalidInput {
            field: "node",
            message: format!(
                "node {n} still has its key ({}) and is the chain's node {n}: it is not \
                 lost. --force replaces it anyway (its directory is kept aside)",
                key_file.display()
            ),
        });
    }

    // The surviving nodes: those with the chain's key for their position.
    let mut problems = Vec::new();
    let mut others: Vec<Option<Arc<dyn Node>>> = Vec::with_capacity(count);
    for i in 1..=count {
        let d = node_dir(data_dir, i);
        let kf = d.join("node.key");
        if i == n || !kf.exists() {
            if i != n {
                problems.push(format!("node {i}: {} is gone", d.display()));
            }
            others.push(None);
            continue;
        }
        let key = NodeKey::load_or_create(&kf)?;
        if key.info().public_key != set.nodes[i - 1].1 {
            problems.push(format!("node {i}: its key is not the chain's"));
            others.push(None);
            continue;
        }
        let store: Arc<dyn BlobStore> = Arc::new(node_store(&d).await?);
        others.push(Some(Arc::new(
            LocalNode::new(format!("node {i}"), key, registry.clone(), store)
                .await?
                .with_archive_dir(&d)?,
        ) as Arc<dyn Node>));
    }
    let up = others.iter().flatten().count();
    if up == 0 {
        return Err(Error::InvalidInput {
            field: "node",
            message: format!(
                "{} holds none of the deployment's nodes: for remote nodes give their URLs \
                 (`node replace N --nodes URL1,… --node-token T`)",
                data_dir.join("nodes").display()
            ),
        });
    }
    if up < threshold.k() {
        return Err(Error::NodesUnavailable {
            reachable: up,
            needed: threshold.k(),
        });
    }

    // 2. The new node, in a staging directory.
    let staging = dir.with_file_name(format!("node-{n}.replacing"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let key = NodeKey::load_or_create(&staging.join("node.key"))?;
    let info = key.info();
    let store: Arc<dyn BlobStore> = Arc::new(node_store(&staging).await?);
    let new_node = LocalNode::new(format!("node {n}"), key, registry.clone(), store)
        .await?
        .with_archive_dir(&staging)?;

    let mut custodians: Vec<B256> = set.nodes.iter().map(|(_, k)| *k).collect();
    custodians[n - 1] = info.public_key;
    let (record_versions, epochs) = rebuild(
        &Rebuild {
            registry: &*registry,
            admin: &admin,
            threshold,
            target,
            custodians: &custodians,
            others: &others,
            new_node: &new_node,
        },
        &mut problems,
    )
    .await?;
    drop(new_node);
    drop(others);

    // 4. The node set on chain, then the directory in place.
    let node_set_epoch = put_node_set(&*registry, &admin, &set, n, &info).await?;
    // Whatever is left of the old node (a wiped directory, or one replaced by force) is
    // kept aside, never deleted.
    let mut old_dir = None;
    if dir.exists() {
        let aside = dir.with_file_name(format!("node-{n}.replaced-{}", ehr_primitives::unix_now()));
        std::fs::rename(&dir, &aside).map_err(|e| Error::io(&dir, e))?;
        old_dir = Some(aside);
    }
    std::fs::rename(&staging, &dir).map_err(|e| Error::io(&staging, e))?;
    if let Some(parent) = dir.parent() {
        ehr_fs_util::sync_dir(parent)?;
    }
    Ok(ReplaceReport {
        node: n,
        address: info.address,
        public_key: info.public_key,
        node_set_epoch,
        record_versions,
        epochs,
        old_dir,
        problems,
    })
}

/// Replaces remote node `n` (from 1) of the deployment whose embedded chain is in
/// `data_dir` (`serve` stopped; the caller holds the data directory's lock). `nodes` are the
/// deployment's nodes in order, node `n` being a **fresh** `secure-ehr node` (a new key)
/// already running where the old one was, or wherever the deployment will reach it now.
/// Its fragments, manifests, epoch headers and archive head are rebuilt from the others and
/// stored on it (with the node token), its key shares re-issued through the nodes'
/// `/node/recovery/*` routes by admin-signed orders, then the admin puts the new node set
/// on chain. A node that is down or has another key than the chain's is read around, named
/// in the report's problems.
pub async fn replace_remote_node(
    data_dir: &Path,
    n: usize,
    nodes: Vec<Arc<dyn Node>>,
) -> Result<ReplaceReport> {
    let Deployment {
        registry,
        admin,
        set,
        threshold,
        target,
    } = deployment(data_dir, n).await?;
    let count = set.nodes.len();
    if nodes.len() != count {
        return Err(Error::InvalidInput {
            field: "nodes",
            message: format!(
                "{} node URLs given, the node set has {count} nodes",
                nodes.len()
            ),
        });
    }
    let new_node = nodes[n - 1].clone();
    let info = new_node.info().await.map_err(|source| Error::Node {
        node: new_node.name().to_owned(),
        source,
    })?;
    if info.public_key == set.nodes[n - 1].1 {
        return Err(Error::InvalidInput {
            field: "node",
            message: format!(
                "{} has the key the chain lists for node {n}: it is not lost (start a fresh \
                 `secure-ehr node` with a new data directory there to replace it)",
                new_node.name()
            ),
        });
    }
    if let Some(i) = set.nodes.iter().position(|(_, k)| *k == info.public_key) {
        return Err(Error::InvalidInput {
            field: "nodes",
            message: format!(
                "{} has the key of the chain's node {}: the URLs are out of order",
                new_node.name(),
                i + 1
            ),
        });
    }
    let mut problems = Vec::new();
    let mut others: Vec<Option<Arc<dyn Node>>> = Vec::with_capacity(count);
    for (i, node) in nodes.iter().enumerate() {
        if i == n - 1 {
            others.push(None);
            continue;
        }
        match node.info().await {
            Ok(got) if got.public_key == set.nodes[i].1 => others.push(Some(node.clone())),
            Ok(_) => {
                problems.push(format!("{}: its key is not the chain's", node.name()));
                others.push(None);
            }
            Err(e) => {
                problems.push(format!("{}: {e}", node.name()));
                others.push(None);
            }
        }
    }
    let up = others.iter().flatten().count();
    if up < threshold.k() {
        return Err(Error::NodesUnavailable {
            reachable: up,
            needed: threshold.k(),
        });
    }
    let mut custodians: Vec<B256> = set.nodes.iter().map(|(_, k)| *k).collect();
    custodians[n - 1] = info.public_key;
    let (record_versions, epochs) = rebuild(
        &Rebuild {
            registry: &*registry,
            admin: &admin,
            threshold,
            target,
            custodians: &custodians,
            others: &others,
            new_node: &*new_node,
        },
        &mut problems,
    )
    .await?;
    let node_set_epoch = put_node_set(&*registry, &admin, &set, n, &info).await?;
    Ok(ReplaceReport {
        node: n,
        address: info.address,
        public_key: info.public_key,
        node_set_epoch,
        record_versions,
        epochs,
        old_dir: None,
        problems,
    })
}

/// What rebuilding a node needs.
struct Rebuild<'a> {
    registry: &'a dyn Registry,
    admin: &'a PrivateKeySigner,
    threshold: Threshold,
    target: u8,
    /// Every custodian's key in node order, the target's being its new key.
    custodians: &'a [B256],
    /// The surviving nodes (`None`: down, or the target).
    others: &'a [Option<Arc<dyn Node>>],
    new_node: &'a dyn Node,
}

/// Steps 2 and 3 over any nodes: the new node's manifests, fragments, epoch headers and
/// archive head, then its key shares re-issued. (Record versions, ledger epochs.)
async fn rebuild(r: &Rebuild<'_>, problems: &mut Vec<String>) -> Result<(usize, usize)> {
    let index = usize::from(r.target) - 1;
    let mut items = Vec::new();
    let record_versions = copy_records(r.registry, r.others, r.new_node, index, &mut items).await?;
    let epochs = copy_ledger(r.others, r.new_node, index, &mut items, problems).await?;
    for chunk in orders(&items) {
        reissue(r, chunk, problems).await?;
    }
    Ok((record_versions, epochs))
}

/// Step 4: the node set with node `n`'s new identity, on chain; the new `nodeSetEpoch`.
async fn put_node_set(
    registry: &dyn Registry,
    admin: &PrivateKeySigner,
    set: &NodeSet,
    n: usize,
    info: &ehr_node::NodeInfo,
) -> Result<u32> {
    let mut nodes = set.nodes.clone();
    nodes[n - 1] = (info.address, info.public_key);
    registry
        .set_node_set(
            admin,
            &NodeSet {
                k: set.k,
                nodes,
                epoch: 0,
            },
        )
        .await?;
    Ok(registry.node_set().await?.epoch)
}

/// The embedded chain of a data directory and its node set, with node `n` checked.
struct Deployment {
    registry: Arc<dyn Registry>,
    admin: PrivateKeySigner,
    set: NodeSet,
    threshold: Threshold,
    target: u8,
}

async fn deployment(data_dir: &Path, n: usize) -> Result<Deployment> {
    if !chain_dir(data_dir).join("chain.redb").exists() {
        return Err(Error::InvalidInput {
            field: "data-dir",
            message: format!(
                "{} holds no embedded chain: nothing to replace a node of",
                data_dir.display()
            ),
        });
    }
    let (chain, admin) = open_embedded_chain(data_dir)?;
    let registry: Arc<dyn Registry> = Arc::new(chain);
    let set = registry.node_set().await?;
    let count = set.nodes.len();
    if count == 0 {
        return Err(Error::InvalidInput {
            field: "node",
            message: "the deployment has no node set yet (run serve once)".into(),
        });
    }
    if n == 0 || n > count {
        return Err(Error::InvalidInput {
            field: "node",
            message: format!("node {n}: the node set has nodes 1 to {count}"),
        });
    }
    let threshold = Threshold::new(usize::from(set.k), count).map_err(|e| Error::InvalidInput {
        field: "k",
        message: e.to_string(),
    })?;
    let target = u8::try_from(n).map_err(|_| Error::InvalidInput {
        field: "node",
        message: "too large".into(),
    })?;

    Ok(Deployment {
        registry,
        admin,
        set,
        threshold,
        target,
    })
}

/// A block from the first surviving node that has it with the right bytes.
async fn get_any(others: &[Option<Arc<dyn Node>>], cid: &Cid, what: &str) -> Result<Vec<u8>> {
    for node in others.iter().flatten() {
        if let Ok(data) = node.get_block(cid).await
            && ehr_store::verify(cid, &data, None).is_ok()
        {
            return Ok(data);
        }
    }
    Err(Error::NotFound(format!(
        "{what} {cid} on no surviving node"
    )))
}

/// Fragment `index` of a dispersal, rebuilt from the surviving nodes' fragments.
async fn rebuild_fragment(
    others: &[Option<Arc<dyn Node>>],
    manifest: &Manifest,
    cid_of: impl Fn(usize) -> Cid,
    index: usize,
    what: &str,
) -> Result<Vec<u8>> {
    let mut fragments: Vec<Option<Vec<u8>>> = Vec::with_capacity(others.len());
    for (i, node) in others.iter().enumerate() {
        fragments.push(match node {
            Some(node) if i != index => node.get_block(&cid_of(i)).await.ok(),
            _ => None,
        });
    }
    let refs: Vec<Option<&[u8]>> = fragments.iter().map(|f| f.as_deref()).collect();
    repair(manifest, &refs)
        .map_err(|e| Error::NotFound(format!("{what}: fragment {}: {e}", index + 1)))?
        .into_iter()
        .find(|(i, _)| *i == index)
        .map(|(_, data)| data)
        .ok_or_else(|| Error::NotFound(format!("{what}: fragment {} not rebuilt", index + 1)))
}

/// Every record version on chain: fragment `index` onto the new node, and the manifest if
/// the new node is one of its holders.
async fn copy_records(
    registry: &dyn Registry,
    others: &[Option<Arc<dyn Node>>],
    new_node: &dyn Node,
    index: usize,
    items: &mut Vec<RecoveryItem>,
) -> Result<usize> {
    let logs = registry
        .logs(&LogQuery::event::<EhrRegistry::RecordVersion>())
        .await?;
    let mut seen = HashSet::new();
    for log in logs {
        let ev = EhrRegistry::RecordVersion::decode_log_data(&log.log.data)
            .map_err(|e| Error::Chain(ehr_chain::Error::Abi(e.to_string())))?;
        let cid = ehr_node::manifest::manifest_cid(ev.digest, ev.codec)?;
        if !seen.insert(cid) {
            continue;
        }
        let block = get_any(others, &cid, "manifest").await?;
        let manifest = RecordManifest::decode_block(&cid, &block)?;
        let what = format!("record {} v{}", ev.recordId, ev.version);
        let fragment = rebuild_fragment(
            others,
            &manifest.dispersal,
            |i| manifest.fragment_cid(i),
            index,
            &what,
        )
        .await?;
        let put = |c: Cid, b: Vec<u8>| async move {
            new_node
                .put_block(&c, &b)
                .await
                .map_err(|source| Error::Node {
                    node: new_node.name().to_owned(),
                    source,
                })
        };
        put(manifest.fragment_cid(index), fragment).await?;
        // The manifest goes back only to a node that is one of its holders.
        let copies =
            ehr_node::manifest::manifest_copies(usize::from(manifest.dispersal.k), others.len());
        if ehr_node::manifest::manifest_order(&cid, others.len())
            .take(copies)
            .any(|i| i == index)
        {
            put(cid, block.clone()).await?;
        }
        items.push(RecoveryItem::Record {
            manifest: cid,
            block: Some(block.into()),
        });
    }
    Ok(seen.len())
}

/// Every ledger epoch from the newest archive head back to epoch 0: header and fragment
/// `index` onto the new node, then the head.
async fn copy_ledger(
    others: &[Option<Arc<dyn Node>>],
    new_node: &dyn Node,
    index: usize,
    items: &mut Vec<RecoveryItem>,
    problems: &mut Vec<String>,
) -> Result<usize> {
    let mut head: Option<ArchiveHead> = None;
    for node in others.iter().flatten() {
        if let Ok(h) = node.archive_head().await
            && head.as_ref().is_none_or(|old| {
                (h.epoch, h.last_block.map_or(0, |b| b + 1))
                    > (old.epoch, old.last_block.map_or(0, |b| b + 1))
            })
        {
            head = Some(h);
        }
    }
    let Some(head) = head else {
        return Ok(0);
    };
    let mut cid = head.header;
    let mut epochs = 0;
    loop {
        let bytes = get_any(others, &cid, "epoch header").await?;
        let h = EpochHeader::decode(&bytes)?;
        if usize::from(h.n) != others.len() {
            problems.push(format!(
                "epoch {} was dispersed over {} nodes, not {}: left alone",
                h.epoch,
                h.n,
                others.len()
            ));
        } else {
            let what = format!("ledger epoch {}", h.epoch);
            let fragment =
                rebuild_fragment(others, &h.manifest(), |i| h.fragment_cid(i), index, &what)
                    .await?;
            for (c, b) in [(h.fragment_cid(index), fragment), (cid, bytes)] {
                new_node
                    .put_block(&c, &b)
                    .await
                    .map_err(|source| Error::Node {
                        node: new_node.name().to_owned(),
                        source,
                    })?;
            }
            items.push(RecoveryItem::LedgerEpoch {
                epoch_id: epoch_id(h.chain_id, h.epoch),
                shares: (0..usize::from(h.n)).map(|i| h.share_cid(i)).collect(),
                key_share_digests: h.key_share_digests.clone(),
            });
            epochs += 1;
        }
        if h.epoch == 0 || h.prev == [0; 32] {
            break;
        }
        cid = ehr_store::cid_from_sha256(ehr_ledger::format::CODEC, &h.prev);
    }
    new_node
        .put_archive_head(&head)
        .await
        .map_err(|source| Error::Node {
            node: new_node.name().to_owned(),
            source,
        })?;
    Ok(epochs)
}

/// Re-issues the new node's shares of `items`: one order over the first k surviving
/// custodians; items some helper cannot serve are retried one by one over other helper
/// sets.
async fn reissue(
    r: &Rebuild<'_>,
    items: &[RecoveryItem],
    problems: &mut Vec<String>,
) -> Result<()> {
    let up: Vec<u8> = r
        .others
        .iter()
        .enumerate()
        .filter(|(_, n)| n.is_some())
        .map(|(i, _)| (i + 1) as u8)
        .collect();
    let first: Vec<u8> = up[..r.threshold.k()].to_vec();
    let retry: Vec<RecoveryItem> = match run_order(r, &first, items).await {
        Ok(failed) => failed.iter().map(|&j| items[j].clone()).collect(),
        Err(e) => {
            problems.push(format!(
                "share recovery over custodians {first:?}: {e}; retried item by item"
            ));
            items.to_vec()
        }
    };
    reissue_each(r, &retry, &up, problems).await
}

/// Each item on its own, over every k-subset of the surviving custodians until one works.
async fn reissue_each(
    r: &Rebuild<'_>,
    items: &[RecoveryItem],
    up: &[u8],
    problems: &mut Vec<String>,
) -> Result<()> {
    let sets = subsets(up, r.threshold.k());
    for item in items {
        let mut last = String::new();
        let mut done = false;
        for helpers in &sets {
            let one = std::slice::from_ref(item);
            match run_order(r, helpers, one).await {
                Ok(failed) if failed.is_empty() => {
                    done = true;
                    break;
                }
                Ok(_) => last = format!("helpers {helpers:?} gave a share that fails its digest"),
                Err(e) => last = format!("helpers {helpers:?}: {e}"),
            }
        }
        if !done {
            return Err(Error::NotFound(format!(
                "no {} surviving custodians re-issue the share of {item:?}: {last}",
                r.threshold.k()
            )));
        }
        problems.push(format!("{item:?}: re-issued item by item"));
    }
    Ok(())
}

fn subsets(xs: &[u8], k: usize) -> Vec<Vec<u8>> {
    if k == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for (i, &x) in xs.iter().enumerate() {
        for mut rest in subsets(&xs[i + 1..], k - 1) {
            rest.insert(0, x);
            out.push(rest);
        }
    }
    out
}

/// How long an order is valid: long enough for its three steps over 512 items.
const ORDER_TTL: u64 = 300;

/// One recovery order over `helpers`, signed by the admin and carried through its three
/// steps (each helper gets only the pieces addressed to it): the indices of the items
/// whose share failed its check.
async fn run_order(
    r: &Rebuild<'_>,
    helpers: &[u8],
    items: &[RecoveryItem],
) -> std::result::Result<Vec<usize>, ehr_node::NodeError> {
    let mut plan_id = [0u8; 16];
    ehr_crypto::fill_random(&mut plan_id);
    let order = RecoveryOrder {
        plan_id,
        threshold: r.threshold,
        helpers: helpers.to_vec(),
        target: r.target,
        custodians: r.custodians.to_vec(),
        items: items.to_vec(),
    };
    let order = SignedRecoveryOrder::sign(r.admin, order, ehr_primitives::unix_now() + ORDER_TTL)
        .map_err(|e| ehr_node::NodeError::Internal(e.to_string()))?;
    let helper = |x: u8| {
        r.others[usize::from(x) - 1]
            .as_ref()
            .expect("a surviving node")
    };
    let mut pieces: Vec<RecoveryMessage> = Vec::new();
    for &x in helpers {
        pieces.extend(helper(x).recovery_contribute(&order).await?);
    }
    let mut sigmas = Vec::with_capacity(helpers.len());
    for &x in helpers {
        let mine: Vec<RecoveryMessage> = pieces.iter().filter(|m| m.to == x).cloned().collect();
        sigmas.push(helper(x).recovery_relay(&order, &mine).await?);
    }
    Ok(r.new_node.recovery_assemble(&order, &sigmas).await?.failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(len: usize) -> RecoveryItem {
        RecoveryItem::Record {
            manifest: ehr_store::raw_cid(&len.to_be_bytes()),
            block: Some(vec![0; len].into()),
        }
    }

    #[test]
    fn orders_are_cut_by_items_and_by_manifest_bytes_never_inside_an_item() {
        let many: Vec<_> = (0..ORDER_ITEMS * 2 + 1).map(|_| record(10)).collect();
        let cut = orders(&many);
        assert_eq!(
            cut.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [ORDER_ITEMS, ORDER_ITEMS, 1]
        );
        let big = ORDER_MANIFEST_BYTES / 3 + 1;
        let heavy: Vec<_> = (0..5).map(|_| record(big)).collect();
        let cut = orders(&heavy);
        assert_eq!(cut.iter().map(|c| c.len()).collect::<Vec<_>>(), [2, 2, 1]);
        // One item larger than the budget still goes, alone.
        let huge = [record(ORDER_MANIFEST_BYTES + 1), record(1)];
        assert_eq!(
            orders(&huge).iter().map(|c| c.len()).collect::<Vec<_>>(),
            [1, 1]
        );
        assert!(orders(&[]).is_empty());
    }
}
