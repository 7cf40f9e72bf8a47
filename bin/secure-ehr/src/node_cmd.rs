//! `secure-ehr node`: one storage + custodian node as its own process.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use ehr_chain::{Address, Registry, RpcRegistry};
use ehr_node::{LocalNode, Node, NodeKey};
use ehr_store::{BlobStore, KuboStore};

use crate::service;
use crate::transport::ListenArgs;

/// `secure-ehr node` runs a node; `secure-ehr node replace N` replaces an in-process one.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct NodeCommand {
    #[command(subcommand)]
    cmd: Option<NodeCmd>,
    #[command(flatten)]
    run: NodeArgs,
}

#[derive(clap::Subcommand)]
enum NodeCmd {
    /// Replace a wiped or lost node (offline: stop `serve` first). The new node N gets a
    /// new key, its fragments of every record version and ledger epoch rebuilt from the
    /// other nodes, and its key shares re-issued by share recovery from k surviving
    /// custodians; the admin then puts the new node set on chain. --data-dir is the
    /// deployment's (its embedded chain and admin key). Without --nodes, node N is the
    /// in-process `nodes/node-N`; with --nodes, node N is a fresh `secure-ehr node` (new
    /// data directory, so a new key) already running at the N-th URL.
    Replace {
        /// The node's number (from 1, as in `nodes/node-N` or the order of --nodes).
        node: usize,
        /// Replace it even though it still has the key the chain lists for it (its old
        /// directory is kept aside as `nodes/node-N.replaced-<time>`; in-process nodes only).
        #[arg(long, conflicts_with = "nodes")]
        force: bool,
        /// The deployment's remote nodes, comma-separated, in node order (as `serve
        /// --nodes`); the N-th is the fresh node.
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
        /// The node token (to store the rebuilt blocks on node N).
        #[arg(
            long,
            env = "SECURE_EHR_NODE_TOKEN",
            hide_env_values = true,
            requires = "nodes"
        )]
        node_token: Option<String>,
        /// CA certificates (PEM) to trust, besides the system's, for https:// node URLs.
        #[arg(long, env = "SECURE_EHR_CA_FILE", requires = "nodes")]
        ca_file: Option<std::path::PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct NodeArgs {
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:7001")]
    listen: SocketAddr,
    /// The chain's JSON-RPC URL: the node checks grants and the access log there.
    /// (Required to run a node; `None` only under `node replace`.)
    #[arg(long, env = "SECURE_EHR_CHAIN_RPC", required = true)]
    chain_rpc: Option<String>,
    /// The registry contract's address.
    #[arg(long, env = "SECURE_EHR_CONTRACT", required = true)]
    contract: Option<Address>,
    /// The node operator's token: with it a server stores and deletes any block. Without
    /// one, the node takes writes signed by an organisation on chain (its registrar's key,
    /// or the consortium admin's) and deletes a block only for one that stored it.
    #[arg(long, env = "SECURE_EHR_NODE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Run open: anyone who reaches the node may store blocks in it, unsigned (and nobody
    /// may delete any). For experiments on a private network only.
    #[arg(long, conflicts_with = "token")]
    insecure_open_node: bool,
    /// Requests handled at once; more are answered 503 (busy) without being read.
    #[arg(long, default_value_t = ehr_node::MAX_IN_FLIGHT as u32,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_in_flight: u32,
    /// Bearer token for a --chain-rpc that asks for one (`secure-ehr serve --rpc
    /// --rpc-token`).
    #[arg(long, env = "SECURE_EHR_CHAIN_RPC_TOKEN", hide_env_values = true)]
    chain_rpc_token: Option<String>,
    /// Seconds to keep trying the chain at start (it may start after the node, e.g. the
    /// embedded chain of a `serve --rpc` that waits for its nodes); 0 tries once.
    #[arg(long, default_value_t = 120)]
    chain_wait: u64,
    /// CA certificates (PEM) to trust, besides the system's, for an https:// --chain-rpc.
    #[arg(long, env = "SECURE_EHR_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// Where the node keeps its blocks: `segments` (segment files in DATA_DIR/segments) or
    /// `kubo:http://127.0.0.1:5001`, the RPC API of an IPFS node the organisation runs (the
    /// node's blocks are pinned there; deleting one unpins and removes it). The node key
    /// stays in DATA_DIR either way.
    #[arg(long = "store", env = "SECURE_EHR_NODE_STORE", default_value = "segments",
          value_parser = parse_node_store)]
    store: NodeStore,
    #[command(flatten)]
    listen_args: ListenArgs,
}

pub fn run(command: NodeCommand, data_dir: &Path) -> anyhow::Result<()> {
    match command.cmd {
        Some(NodeCmd::Replace {
            node,
            force,
            json,
            nodes,
            node_token,
            ca_file,
        }) => {
            let remote = if nodes.is_empty() {
                None
            } else {
                Some(Remote {
                    urls: nodes,
                    token: node_token,
                    ca_file,
                })
            };
            replace(node, force, json, remote, data_dir)
        }
        None => run_node(command.run, data_dir),
    }
}

/// `node replace --nodes`: the remote nodes.
struct Remote {
    urls: Vec<String>,
    token: Option<String>,
    ca_file: Option<std::path::PathBuf>,
}

/// `secure-ehr node replace N`.
fn replace(
    node: usize,
    force: bool,
    json: bool,
    remote: Option<Remote>,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let _lock = service::lock_data_dir(data_dir)?;
    let nodes = match remote {
        None => None,
        Some(r) => {
            let token = match r.token {
                Some(t) if !t.is_empty() => t,
                _ => bail!(
                    "--nodes needs --node-token (or SECURE_EHR_NODE_TOKEN): the rebuilt blocks are stored with it"
                ),
            };
            let ca = match &r.ca_file {
                Some(path) => Some(
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
                ),
                None => None,
            };
            let mut nodes: Vec<Arc<dyn Node>> = Vec::with_capacity(r.urls.len());
            for (i, url) in r.urls.iter().enumerate() {
                nodes.push(Arc::new(ehr_node::RemoteNode::with_ca(
                    i + 1,
                    url,
                    Some(token.clone()),
                    ca.as_deref(),
                )?));
            }
            Some(nodes)
        }
    };
    service::runtime()?.block_on(async {
        let report = match nodes {
            None => ehr_records::replace::replace_node(data_dir, node, force).await,
            Some(nodes) => ehr_records::replace::replace_remote_node(data_dir, node, nodes).await,
        }
        .with_context(|| format!("replacing node {node}"))?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        for problem in &report.problems {
            println!("read around: {problem}");
        }
        if let Some(old) = &report.old_dir {
            println!("old directory kept at {}", old.display());
        }
        println!(
            "node {} replaced: address {} custodian key {}; {} record versions and {} ledger epochs rebuilt and their key shares re-issued; node set epoch {}",
            report.node,
            report.address,
            report.public_key,
            report.record_versions,
            report.epochs,
            report.node_set_epoch
        );
        Ok(())
    })
}

fn run_node(args: NodeArgs, data_dir: &Path) -> anyhow::Result<()> {
    let token = match &args.token {
        Some(t) if t.is_empty() => bail!("the node token is empty"),
        t => t.clone(),
    };
    let options = args.listen_args.options()?;
    let ca_pem = match &args.ca_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    service::runtime()?.block_on(async {
        let stop = shutdown();
        let key = NodeKey::load_or_create(&data_dir.join("node.key"))?;
        let store = args.store.open(data_dir).await?;
        let registry: Arc<dyn Registry> = Arc::new(connect_chain(&args, ca_pem.as_deref()).await?);
        let node = LocalNode::new(data_dir.display().to_string(), key, registry.clone(), store)
            .await?
            .with_archive_dir(data_dir)?;
        let info = Node::info(&node).await?;
        println!("node {} custodian key {}", info.address, info.public_key);
        // Records erased while this node was away go before it serves anything.
        let caught_up = node.catch_up_erasures().await?;
        if !caught_up.erased.is_empty() || !caught_up.waiting.is_empty() {
            println!(
                "erased while away: {} record(s) destroyed here now; {} wait for their erase \
                 orders (no block or share is served until they come)",
                caught_up.erased.len(),
                caught_up.waiting.len()
            );
        }
        let writers = (!args.insecure_open_node)
            .then(|| Arc::new(ehr_node::Writers::new(registry.clone(), info.address)));
        let owners = Arc::new(ehr_node::Owners::open(data_dir)?);
        let listener = args.listen_args.bind(args.listen, "node").await?;
        let app = ehr_node::router_with(
            Arc::new(node),
            ehr_node::RouterConfig {
                token,
                max_in_flight: args.max_in_flight as usize,
                writers,
                owners: Some(owners),
            },
        );
        ehr_serve::serve(listener, app, options, stop).await?;
        Ok(())
    })
}

/// Where a node keeps its blocks (`--store`).
#[derive(Clone, Debug)]
enum NodeStore {
    /// Segment files in the node's directory (the default).
    Segments,
    /// An IPFS node's Kubo RPC API.
    Kubo(String),
}

fn parse_node_store(value: &str) -> Result<NodeStore, String> {
    if value == "segments" {
        return Ok(NodeStore::Segments);
    }
    let bad = || {
        format!(
            "unknown store {value:?}: use `segments` (the default) or `kubo:http://HOST:PORT` \
             (an IPFS node's RPC API)"
        )
    };
    let url = value.strip_prefix("kubo:").ok_or_else(bad)?;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad Kubo API URL {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "bad Kubo API URL {url:?}: it must be http:// or https://HOST:PORT"
        ));
    }
    if parsed.path() != "/" || parsed.query().is_some() {
        return Err(format!(
            "bad Kubo API URL {url:?}: give only scheme, host and port (the /api/v0 paths are \
             added)"
        ));
    }
    Ok(NodeStore::Kubo(url.trim_end_matches('/').to_string()))
}

impl NodeStore {
    async fn open(&self, data_dir: &Path) -> anyhow::Result<Arc<dyn BlobStore>> {
        Ok(match self {
            NodeStore::Segments => Arc::new(ehr_records::deployment::node_store(data_dir).await?),
            NodeStore::Kubo(url) => {
                let store = KuboStore::owned(url)?;
                // A wrong address is said at start, not at the first upload.
                let version = store
                    .version()
                    .await
                    .with_context(|| format!("reaching the IPFS node's RPC API at {url}"))?;
                eprintln!("blocks in the IPFS node at {url} ({version})");
                Arc::new(store)
            }
        })
    }
}

/// Connects to the chain. While nothing listens at its address (it may start after the
/// node), tries again each second for `--chain-wait` seconds; a chain that answers wrongly
/// (a TLS failure, a wrong contract, a refused token) is an error at once.
async fn connect_chain(args: &NodeArgs, ca_pem: Option<&[u8]>) -> anyhow::Result<RpcRegistry> {
    let (Some(url), Some(contract)) = (args.chain_rpc.as_deref(), args.contract) else {
        bail!("a node needs --chain-rpc and --contract");
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.chain_wait);
    let mut said = false;
    while let Err(e) = reachable(url).await {
        if std::time::Instant::now() >= deadline {
            break;
        }
        if !said {
            eprintln!(
                "waiting for the chain at {} (up to {} s): {e}",
                url, args.chain_wait
            );
            said = true;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    RpcRegistry::connect_with(url, contract, ca_pem, args.chain_rpc_token.as_deref())
        .await
        .with_context(|| format!("connecting to the chain at {url}"))
}

/// Whether something accepts TCP connections at `url`'s host and port.
async fn reachable(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("bad chain URL {url:?}"))?;
    let host = parsed.host_str().context("the chain URL has no host")?;
    let port = parsed
        .port_or_known_default()
        .context("the chain URL has no port")?;
    // IPv6 literals come bracketed in URLs.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::TcpStream::connect((host, port)).await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called (not when
/// first awaited): call it before the server says it listens, so a signal from then on
/// shuts it down cleanly (its databases closed) instead of killing it.
pub fn shutdown() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (int, term) = signals;
            tokio::select! {
                _ = received(int) => {},
                _ = received(term) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Resolves when `signal` arrives (never, if it could not be installed).
#[cfg(unix)]
async fn received(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
