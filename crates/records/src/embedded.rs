//! The embedded default: every node in this process, each with its own directory under
//! the data directory (`nodes/node-N/segments` and `nodes/node-N/node.key`).

use std::path::Path;
use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use ehr_chain::Registry;
use ehr_store::{BlobStore, SegmentStore};

use crate::accounts::{AccountParams, AccountStore, SystemClock};
use crate::node::{LocalNode, Node, NodeKey};
use crate::{Result, Service, ServiceParts};

/// Where node `i` (from 1) keeps its blocks and key.
pub fn node_dir(data_dir: &Path, i: usize) -> std::path::PathBuf {
    data_dir.join("nodes").join(format!("node-{i}"))
}

/// A node's block store in its directory `dir`: segment files with group commit
/// (`dir/segments`). Blocks an earlier version kept one file per block (`dir/blocks`) are
/// moved in, verified, the first time; a crash midway repeats the move at the next start.
pub async fn node_store(dir: &Path) -> Result<SegmentStore> {
    let store = SegmentStore::open(dir.join("segments"))?;
    let old = dir.join("blocks");
    if old.is_dir() {
        let (s, from) = (store.clone(), old.clone());
        let moved = tokio::task::spawn_blocking(move || s.import_fs(&from))
            .await
            .map_err(|e| crate::Error::io(&old, std::io::Error::other(e.to_string())))??;
        std::fs::remove_dir_all(&old).map_err(|e| crate::Error::io(&old, e))?;
        tracing::info!(blocks = moved, from = %old.display(), "moved blocks into segment files");
    }
    Ok(store)
}

/// Opens `n` in-process nodes in `data_dir`, creating their keys on first use.
pub async fn local_nodes(
    data_dir: &Path,
    n: usize,
    registry: &Arc<dyn Registry>,
) -> Result<Vec<Arc<LocalNode>>> {
    let mut nodes = Vec::with_capacity(n);
    for i in 1..=n {
        let dir = node_dir(data_dir, i);
        let key = NodeKey::load_or_create(&dir.join("node.key"))?;
        let store: Arc<dyn BlobStore> = Arc::new(node_store(&dir).await?);
        nodes.push(Arc::new(
            LocalNode::new(format!("node {i}"), key, registry.clone(), store).await?,
        ));
    }
    Ok(nodes)
}

/// The in-process nodes of `data_dir`: as many as the chain's node set lists, or
/// `default_n` for a new deployment.
pub async fn nodes(
    data_dir: &Path,
    default_n: usize,
    registry: &Arc<dyn Registry>,
) -> Result<Vec<Arc<dyn Node>>> {
    use ehr_chain::RegistryExt;
    let set = registry.node_set().await?;
    let n = if set.nodes.is_empty() {
        default_n
    } else {
        set.nodes.len()
    };
    Ok(local_nodes(data_dir, n, registry)
        .await?
        .into_iter()
        .map(|node| node as Arc<dyn Node>)
        .collect())
}

/// The accounts of `data_dir` (`accounts/accounts.json`).
pub fn accounts(data_dir: &Path, params: AccountParams) -> Result<AccountStore> {
    AccountStore::open(data_dir.join("accounts"), params, Arc::new(SystemClock))
}

/// The whole embedded service over an already opened registry (the embedded chain, or a
/// JSON-RPC one) with `n` local nodes and threshold `k` (for a new deployment).
pub async fn open(
    data_dir: &Path,
    registry: Arc<dyn Registry>,
    contract_admin: PrivateKeySigner,
    k: u8,
    n: usize,
    params: AccountParams,
) -> Result<Service> {
    let nodes = nodes(data_dir, n, &registry).await?;
    Service::new(ServiceParts {
        accounts: accounts(data_dir, params)?,
        registry,
        contract_admin,
        nodes,
        k,
        data_dir: data_dir.to_path_buf(),
    })
    .await
}
