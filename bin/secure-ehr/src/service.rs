//! Opening the records service the way `serve` and `bench` need it: the embedded chain or
//! a JSON-RPC one, local nodes or remote ones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use ehr_chain::{Address, PrivateKeySigner, Registry, RpcRegistry};
use ehr_node::RemoteNode;
use ehr_records::accounts::AccountParams;
use ehr_records::{Node, Service, ServiceParts, embedded};

use crate::{chain_cmd, keys};

/// Where the chain and the nodes are.
#[derive(Args, Clone, Debug)]
pub struct DeploymentArgs {
    /// Remote nodes (`secure-ehr node`), comma-separated URLs in node-set order; without,
    /// the nodes run in this process under the data directory.
    #[arg(long, value_delimiter = ',', env = "SECURE_EHR_NODES")]
    pub nodes: Vec<String>,
    /// The remote nodes' shared token for storing and deleting blocks.
    #[arg(long, env = "SECURE_EHR_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,
    /// A JSON-RPC Ethereum node instead of the embedded chain.
    #[arg(long, env = "SECURE_EHR_CHAIN_RPC", requires_all = ["contract", "admin_key_file"])]
    pub chain_rpc: Option<String>,
    /// The registry contract's address there.
    #[arg(long, env = "SECURE_EHR_CONTRACT")]
    pub contract: Option<Address>,
    /// The contract admin's hex key file (a funded account) for the JSON-RPC chain.
    #[arg(long, env = "SECURE_EHR_ADMIN_KEY_FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Shares (and fragments) needed to read, for a new deployment.
    #[arg(short, default_value_t = 3)]
    pub k: u8,
    /// Local nodes, for a new embedded deployment.
    #[arg(short, default_value_t = 5)]
    pub n: usize,
}

/// The chain and its admin key.
pub async fn open_chain(
    data_dir: &Path,
    args: &DeploymentArgs,
) -> anyhow::Result<(Arc<dyn Registry>, PrivateKeySigner)> {
    match &args.chain_rpc {
        None => {
            let chain = chain_cmd::open_embedded(data_dir)?;
            let admin = keys::read_key(&chain_cmd::chain_dir(data_dir).join("admin.key"))?;
            Ok((Arc::new(chain), admin))
        }
        Some(url) => {
            let contract = args
                .contract
                .context("--contract is required with --chain-rpc")?;
            let key_file = args
                .admin_key_file
                .as_ref()
                .context("--admin-key-file is required with --chain-rpc")?;
            let admin = keys::read_key(key_file)?;
            let rpc = RpcRegistry::connect(url, contract)
                .await
                .with_context(|| format!("connecting to the chain at {url}"))?;
            Ok((Arc::new(rpc), admin))
        }
    }
}

/// The whole service for `data_dir`.
pub async fn open(
    data_dir: &Path,
    args: &DeploymentArgs,
    params: AccountParams,
) -> anyhow::Result<Service> {
    let (registry, admin) = open_chain(data_dir, args).await?;
    let nodes: Vec<Arc<dyn Node>> = if args.nodes.is_empty() {
        embedded::nodes(data_dir, args.n, &registry).await?
    } else {
        let mut nodes: Vec<Arc<dyn Node>> = Vec::new();
        for (i, url) in args.nodes.iter().enumerate() {
            nodes.push(Arc::new(RemoteNode::new(
                i + 1,
                url,
                args.node_token.clone(),
            )?));
        }
        nodes
    };
    if nodes.len() < 2 {
        bail!("at least 2 nodes are needed");
    }
    let service = Service::new(ServiceParts {
        accounts: embedded::accounts(data_dir, params)?,
        registry,
        contract_admin: admin,
        nodes,
        k: args.k,
        data_dir: data_dir.to_path_buf(),
    })
    .await
    .context("starting the records service")?;
    Ok(service)
}

/// Holds `<data-dir>/serve.lock` while a server runs, so offline admin commands cannot
/// write the accounts file under it.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "a SecureEHR server is running on {}; stop it first",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the data directory"),
    }
}

/// Binds `addr`, printing where it listens (port 0 picks a free port).
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!("{what} listening on http://{}", listener.local_addr()?);
    Ok(listener)
}

/// A multi-threaded runtime for servers and the benchmark.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
