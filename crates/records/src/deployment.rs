//! The data directory and the deployments it opens: the one place that knows the layout.
//!
//! ```text
//! <data-dir>/
//!   chain/            the embedded chain (blocks, state) and its admin.key
//!   nodes/node-N/     embedded node N: segments/ (its blocks), node.key, archive-head.json and
//!                     archive-admin (the newest archive head the admin signed, and the admin)
//!   accounts/         accounts.redb (accounts.json.migrated: the older JSON store, kept once moved in)
//!   blocks/           the `secure-ehr add/cat/car` block store (flatfs)
//!   archive/          the ledger archive's progress (sealed epochs, nodes still owed parts)
//!   uploads.journal   unfinished uploads (orphan collection)
//!   emergency-reasons.jsonl
//!   serve.lock        held while a server runs
//! ```
//!
//! [`open`] wires a whole [`Service`] for `serve`, `bench` and the tests: the embedded chain
//! or a JSON-RPC one, local nodes or remote `secure-ehr node`s.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use ehr_accounts::{AccountParams, AccountStore, SystemClock};
use ehr_chain::{
    Address, ChainConfig, EmbeddedChain, FundingPolicy, Registry, RegistryExt, RpcRegistry,
};
use ehr_node::{LocalNode, Node, NodeKey, RemoteNode};
use ehr_store::{BlobStore, SegmentStore};

use crate::{Error, Result, Service, ServiceParts};

/// The embedded chain's directory.
pub fn chain_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("chain")
}

/// The embedded chain's admin key file (the contract admin of the embedded deployment).
pub fn admin_key_file(data_dir: &Path) -> PathBuf {
    chain_dir(data_dir).join("admin.key")
}

/// The accounts directory.
pub fn accounts_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("accounts")
}

/// The ledger archive's local progress (which epochs are sealed, which nodes still wait
/// for their parts).
pub fn archive_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("archive")
}

/// The block store of the `add`/`cat`/`car` commands.
pub fn blocks_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("blocks")
}

/// Reads a secp256k1 private key file (64 hex characters).
pub fn read_signer(path: &Path) -> Result<PrivateKeySigner> {
    let bad = || Error::SignerKeyFile {
        path: path.to_path_buf(),
    };
    let key = match ehr_fs_util::key_file::read(path) {
        Ok(key) => key,
        Err(ehr_fs_util::Error::KeyFile { .. }) => return Err(bad()),
        Err(e) => return Err(e.into()),
    };
    PrivateKeySigner::from_bytes(&(*key).into()).map_err(|_| bad())
}

/// Reads the secp256k1 key at `path`, or creates a fresh one there (mode 0600, synced).
pub fn load_or_create_signer(path: &Path) -> Result<PrivateKeySigner> {
    if path.exists() {
        return read_signer(path);
    }
    let signer = PrivateKeySigner::random();
    ehr_fs_util::key_file::write_new(path, &signer.to_bytes().0)?;
    Ok(signer)
}

/// Opens (creating on first use) the embedded chain of `data_dir`, with its admin key.
pub fn open_embedded_chain(data_dir: &Path) -> Result<(EmbeddedChain, PrivateKeySigner)> {
    let admin = load_or_create_signer(&admin_key_file(data_dir))?;
    let chain = EmbeddedChain::open(&chain_dir(data_dir), ChainConfig::default(), &admin)?;
    Ok((chain, admin))
}

/// The accounts of `data_dir`.
pub fn accounts(data_dir: &Path, params: AccountParams) -> Result<AccountStore> {
    Ok(AccountStore::open(
        accounts_dir(data_dir),
        params,
        Arc::new(SystemClock),
    )?)
}

/// Holds `<data-dir>/serve.lock` while a server runs, so offline admin commands say so
/// plainly (the accounts database is also locked by redb while open). `None` if another process holds it.
pub fn try_lock(data_dir: &Path) -> Result<Option<File>> {
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    let path = data_dir.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Which chain a deployment runs on.
#[derive(Clone, Debug, Default)]
pub enum ChainChoice {
    /// The embedded chain in `<data-dir>/chain` (the default).
    #[default]
    Embedded,
    /// A JSON-RPC Ethereum node.
    Rpc {
        /// Its URL.
        url: String,
        /// The registry contract's address there.
        contract: Address,
        /// The contract admin's key file (a funded account).
        admin_key_file: PathBuf,
        /// A PEM file of CA certificates to trust for an `https://` URL, besides the
        /// system's.
        ca_file: Option<PathBuf>,
        /// How the admin pays other accounts' gas.
        funding: FundingPolicy,
        /// The most blocks one `eth_getLogs` request may span.
        max_log_range: u64,
    },
}

/// Where a deployment's nodes are.
#[derive(Clone, Debug)]
pub enum NodesChoice {
    /// `n` nodes in this process under `<data-dir>/nodes` (for a new deployment; an existing
    /// one opens as many as the chain's node set lists).
    Local {
        /// Nodes of a new deployment.
        n: usize,
    },
    /// `secure-ehr node` processes, in node-set order.
    Remote {
        /// Their URLs.
        urls: Vec<String>,
        /// Their shared token for storing and deleting blocks.
        token: Option<String>,
        /// A PEM file of CA certificates to trust for `https://` nodes, besides the
        /// system's.
        ca_file: Option<PathBuf>,
    },
}

/// What [`open`] opens.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// The chain.
    pub chain: ChainChoice,
    /// The nodes.
    pub nodes: NodesChoice,
    /// Shares needed to read, for a new deployment.
    pub k: u8,
    /// Account hashing and throttling.
    pub params: AccountParams,
    /// Archive the ledger and the server's state over the nodes (embedded chain only; see
    /// [`Service::start_archive`]).
    pub archive: bool,
}

/// The chain of `deployment`, with its admin key.
pub async fn open_chain(
    data_dir: &Path,
    chain: &ChainChoice,
) -> Result<(Arc<dyn Registry>, PrivateKeySigner)> {
    match chain {
        ChainChoice::Embedded => {
            let (chain, admin) = open_embedded_chain(data_dir)?;
            Ok((Arc::new(chain), admin))
        }
        ChainChoice::Rpc {
            url,
            contract,
            admin_key_file,
            ca_file,
            funding,
            max_log_range,
        } => {
            let admin = read_signer(admin_key_file)?;
            let ca_pem = match ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| Error::io(path, e))?),
                None => None,
            };
            let rpc = RpcRegistry::connect_with_ca(url, *contract, ca_pem.as_deref())
                .await?
                .with_max_log_range(*max_log_range)
                .with_funding(admin.clone(), *funding);
            Ok((Arc::new(rpc), admin))
        }
    }
}

/// A deployment's chain, opened: what [`open_on`] runs the service on.
#[derive(Clone)]
pub struct OpenedChain {
    /// The registry contract on it.
    pub registry: Arc<dyn Registry>,
    /// The contract admin's key.
    pub admin: PrivateKeySigner,
    /// The chain itself when it is the embedded one (for `serve --rpc`).
    pub embedded: Option<Arc<EmbeddedChain>>,
}

/// Opens the chain `chain` of `data_dir` (creating the embedded one on first use).
pub async fn open_deployment_chain(data_dir: &Path, chain: &ChainChoice) -> Result<OpenedChain> {
    Ok(match chain {
        ChainChoice::Embedded => {
            let (chain, admin) = open_embedded_chain(data_dir)?;
            let chain = Arc::new(chain);
            OpenedChain {
                registry: chain.clone(),
                admin,
                embedded: Some(chain),
            }
        }
        rpc => {
            let (registry, admin) = open_chain(data_dir, rpc).await?;
            OpenedChain {
                registry,
                admin,
                embedded: None,
            }
        }
    })
}

/// Opens the whole records service of `data_dir`. On the embedded chain the service keeps
/// the chain itself too ([`Service::embedded_chain`]), for `serve --rpc`.
pub async fn open(data_dir: &Path, deployment: &Deployment) -> Result<Service> {
    let chain = open_deployment_chain(data_dir, &deployment.chain).await?;
    open_on(data_dir, deployment, &chain).await
}

/// Opens the records service of `data_dir` on a chain opened already (`serve` opens the
/// chain first, to answer `/rpc` while it waits for remote nodes). A new deployment needs
/// every node to answer: [`Error::Node`] names the first that did not; trying again later
/// is safe.
pub async fn open_on(
    data_dir: &Path,
    deployment: &Deployment,
    chain: &OpenedChain,
) -> Result<Service> {
    let OpenedChain {
        registry,
        admin: contract_admin,
        embedded,
    } = chain.clone();
    let nodes: Vec<Arc<dyn Node>> = match &deployment.nodes {
        NodesChoice::Local { n } => nodes(data_dir, *n, &registry).await?,
        NodesChoice::Remote {
            urls,
            token,
            ca_file,
        } => {
            let ca_pem = match ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| Error::io(path, e))?),
                None => None,
            };
            urls.iter()
                .enumerate()
                .map(|(i, url)| {
                    RemoteNode::with_ca(i + 1, url, token.clone(), ca_pem.as_deref())
                        // Without the operator's token, writes are signed by this server's
                        // organisation (its registrar key, or the consortium admin's).
                        .map(|n| Arc::new(n.with_signer(contract_admin.clone())) as Arc<dyn Node>)
                        .map_err(|source| Error::Node {
                            node: format!("node {}", i + 1),
                            source,
                        })
                })
                .collect::<Result<_>>()?
        }
    };
    if nodes.len() < 2 {
        return Err(Error::InvalidInput {
            field: "nodes",
            message: "at least 2 nodes are needed".into(),
        });
    }
    let service = Service::new(ServiceParts {
        accounts: accounts(data_dir, deployment.params)?,
        registry,
        contract_admin,
        nodes,
        k: deployment.k,
        data_dir: data_dir.to_path_buf(),
    })
    .await?;
    let service = match embedded {
        Some(chain) => service.with_embedded_chain(chain),
        None => service,
    };
    if deployment.archive {
        service.start_archive(ehr_ledger::EpochPolicy::default())?;
    }
    Ok(service)
}

/// Where node `i` (from 1) keeps its blocks and key.
pub fn node_dir(data_dir: &Path, i: usize) -> std::path::PathBuf {
    data_dir.join("nodes").join(format!("node-{i}"))
}

/// A node's block store in its directory `dir`: segment files with group commit
/// (`dir/segments`). Blocks an earlier version kept one file per block (`dir/blocks`) are
/// moved in, verified, the first time; a crash midway repeats the move at the next start.
pub async fn node_store(dir: &Path) -> Result<SegmentStore> {
    let segments = dir.join("segments");
    let store = tokio::task::spawn_blocking(move || SegmentStore::open(segments))
        .await
        .map_err(|e| Error::io(dir, std::io::Error::other(e.to_string())))??;
    let old = dir.join("blocks");
    if old.is_dir() {
        let (s, from) = (store.clone(), old.clone());
        let moved = tokio::task::spawn_blocking(move || s.import_fs(&from))
            .await
            .map_err(|e| Error::io(&old, std::io::Error::other(e.to_string())))??;
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
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
    // Opening a store reads its segments (its index is rebuilt from them): all at once.
    let opened = futures::future::join_all((1..=n).map(|i| async move {
        let dir = node_dir(data_dir, i);
        let key = NodeKey::load_or_create(&dir.join("node.key"))?;
        let store: Arc<dyn BlobStore> = Arc::new(node_store(&dir).await?);
        Ok::<_, Error>((i, key, store))
    }))
    .await;
    let mut nodes = Vec::with_capacity(n);
    for opened in opened {
        let (i, key, store) = opened?;
        nodes.push(Arc::new(
            LocalNode::new(format!("node {i}"), key, registry.clone(), store)
                .await?
                .with_archive_dir(&node_dir(data_dir, i))?,
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
    let set = registry.node_set().await?;
    if set.nodes.is_empty() {
        return Ok(local_nodes(data_dir, default_n, registry)
            .await?
            .into_iter()
            .map(|node| node as Arc<dyn Node>)
            .collect());
    }
    // An existing deployment: a node whose directory (its key) is gone is down — never a
    // new key silently — until it is replaced.
    let mut nodes: Vec<Arc<dyn Node>> = Vec::with_capacity(set.nodes.len());
    for i in 1..=set.nodes.len() {
        let dir = node_dir(data_dir, i);
        if dir.join("node.key").exists() {
            let key = NodeKey::load_or_create(&dir.join("node.key"))?;
            let store: Arc<dyn BlobStore> = Arc::new(node_store(&dir).await?);
            nodes.push(Arc::new(
                LocalNode::new(format!("node {i}"), key, registry.clone(), store)
                    .await?
                    .with_archive_dir(&dir)?,
            ));
        } else {
            tracing::warn!(node = i, dir = %dir.display(), "node directory gone: the node is down");
            nodes.push(Arc::new(AbsentNode {
                name: format!("node {i}"),
                dir,
            }));
        }
    }
    Ok(nodes)
}

/// A node whose directory is gone: every request fails, so the archive reads around it.
pub(crate) struct AbsentNode {
    /// "node N".
    pub(crate) name: String,
    /// Its directory.
    pub(crate) dir: PathBuf,
}

#[async_trait::async_trait]
impl Node for AbsentNode {
    fn name(&self) -> &str {
        &self.name
    }
    async fn info(&self) -> std::result::Result<ehr_node::NodeInfo, ehr_node::NodeError> {
        Err(self.gone())
    }
    async fn put_block(
        &self,
        _: &ehr_store::Cid,
        _: &[u8],
    ) -> std::result::Result<(), ehr_node::NodeError> {
        Err(self.gone())
    }
    async fn get_block(
        &self,
        _: &ehr_store::Cid,
    ) -> std::result::Result<Vec<u8>, ehr_node::NodeError> {
        Err(self.gone())
    }
    async fn delete_block(
        &self,
        _: &ehr_store::Cid,
    ) -> std::result::Result<(), ehr_node::NodeError> {
        Err(self.gone())
    }
    async fn release_share(
        &self,
        _: &ehr_node::ShareRequest,
    ) -> std::result::Result<ehr_node::ShareResponse, ehr_node::NodeError> {
        Err(self.gone())
    }
}

impl AbsentNode {
    fn gone(&self) -> ehr_node::NodeError {
        ehr_node::NodeError::Unreachable(format!("its directory {} is gone", self.dir.display()))
    }
}
