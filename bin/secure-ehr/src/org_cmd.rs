//! `secure-ehr org …` and `secure-ehr chain set-nodes`: the consortium admin's operations on
//! the network — organisations with their registrars, and the one node set for everyone.
//! On a JSON-RPC chain (`--chain-rpc --contract --key-file`), or without those flags on the
//! data directory's embedded chain with its admin key (`chain/admin.key`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ehr_chain::{Address, NodeSet, PrivateKeySigner, Registry, RegistryExt, RpcRegistry};
use ehr_node::Node;

/// Which chain, and (for changes) whose key.
#[derive(Args, Clone)]
pub struct ChainTarget {
    /// A JSON-RPC Ethereum node instead of the data directory's embedded chain.
    #[arg(long, env = "SECURE_EHR_CHAIN_RPC", requires = "contract")]
    chain_rpc: Option<String>,
    /// The registry contract's address there.
    #[arg(long, env = "SECURE_EHR_CONTRACT")]
    contract: Option<Address>,
    /// The consortium admin's hex key file (with --chain-rpc; the embedded chain's is
    /// `chain/admin.key`).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust, besides the system's, for an https:// --chain-rpc
    /// and https:// node URLs.
    #[arg(long, env = "SECURE_EHR_CA_FILE")]
    ca_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum OrgCmd {
    /// Add an organisation whose registrar (its server's `--admin-key-file`) registers and
    /// deregisters its own providers; prints its id.
    Add {
        /// Its name (1 to 64 bytes; on chain, so an organisation's name only).
        name: String,
        /// The registrar's address.
        #[arg(long)]
        registrar: Address,
        #[command(flatten)]
        chain: ChainTarget,
    },
    /// Every organisation: id, name, registrar, providers, current or removed.
    List {
        #[command(flatten)]
        chain: ChainTarget,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an organisation (by id or name); its registrar must have deregistered its
    /// providers first.
    Remove {
        /// Its id or name.
        org: String,
        #[command(flatten)]
        chain: ChainTarget,
    },
    /// Give an organisation (by id or name) a new registrar; the old one loses the role at
    /// once.
    SetRegistrar {
        /// Its id or name.
        org: String,
        /// The new registrar's address.
        #[arg(long)]
        registrar: Address,
        #[command(flatten)]
        chain: ChainTarget,
    },
}

/// `chain set-nodes`.
#[derive(Args)]
pub struct SetNodesArgs {
    /// The nodes (`secure-ehr node`), comma-separated URLs in node order.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// Shares (and fragments) needed to read.
    #[arg(short, default_value_t = 3)]
    k: u8,
    #[command(flatten)]
    chain: ChainTarget,
}

/// The chain and the admin key (`None` when not needed and not given).
async fn open(
    t: &ChainTarget,
    data_dir: &Path,
    need_key: bool,
) -> anyhow::Result<(Arc<dyn Registry>, Option<PrivateKeySigner>)> {
    match (&t.chain_rpc, t.contract) {
        (Some(url), Some(contract)) => {
            let ca = read_ca(t)?;
            let reg = RpcRegistry::connect_with_ca(url, contract, ca.as_deref())
                .await
                .with_context(|| format!("connecting to {url}"))?;
            let key = match &t.key_file {
                Some(f) => Some(ehr_records::deployment::read_signer(f)?),
                None if need_key => bail!("--key-file (the consortium admin's key) is required"),
                None => None,
            };
            Ok((Arc::new(reg), key))
        }
        _ => {
            if t.key_file.is_some() {
                bail!(
                    "--key-file goes with --chain-rpc; the embedded chain's admin key is its own"
                );
            }
            let (chain, admin) = ehr_records::deployment::open_embedded_chain(data_dir)
                .with_context(|| {
                    format!(
                        "opening the embedded chain in {}",
                        ehr_records::deployment::chain_dir(data_dir).display()
                    )
                })?;
            Ok((Arc::new(chain), Some(admin)))
        }
    }
}

fn read_ca(t: &ChainTarget) -> anyhow::Result<Option<Vec<u8>>> {
    t.ca_file
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The id of the organisation `org` names (an id, or a current organisation's name).
async fn resolve(reg: &dyn Registry, org: &str) -> anyhow::Result<u32> {
    if let Ok(id) = org.parse::<u32>() {
        return Ok(id);
    }
    let orgs = reg.organisations().await?;
    let mut named = orgs.iter().filter(|o| o.active && o.name == org);
    match (named.next(), named.next()) {
        (Some(o), None) => Ok(o.id),
        (None, _) => bail!("no current organisation is named {org:?} (`org list`)"),
        (Some(_), Some(_)) => bail!("more than one organisation is named {org:?}: give its id"),
    }
}

pub fn run(cmd: OrgCmd, data_dir: &Path) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        match cmd {
            OrgCmd::Add {
                name,
                registrar,
                chain,
            } => {
                let (reg, admin) = open(&chain, data_dir, true).await?;
                let admin = admin.expect("open asked for the key");
                let (id, receipt) = reg
                    .add_organisation(&admin, registrar, &name)
                    .await
                    .with_context(|| format!("adding organisation {name:?}"))?;
                println!("{id}");
                eprintln!(
                    "added organisation {id} {name:?} with registrar {registrar} (tx {})",
                    receipt.tx_hash
                );
            }
            OrgCmd::List { chain, json } => {
                let (reg, _) = open(&chain, data_dir, false).await?;
                let orgs = reg.organisations().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&orgs)?);
                } else if orgs.is_empty() {
                    println!("no organisations (the admin adds them with `org add`)");
                } else {
                    for o in orgs {
                        println!(
                            "{:>4}  {:<32} registrar {}  {} providers{}",
                            o.id,
                            o.name,
                            o.registrar,
                            o.providers,
                            if o.active { "" } else { "  (removed)" }
                        );
                    }
                }
            }
            OrgCmd::Remove { org, chain } => {
                let (reg, admin) = open(&chain, data_dir, true).await?;
                let admin = admin.expect("open asked for the key");
                let id = resolve(&*reg, &org).await?;
                let receipt = reg
                    .remove_organisation(&admin, id)
                    .await
                    .with_context(|| format!("removing organisation {id}"))?;
                println!("removed organisation {id} (tx {})", receipt.tx_hash);
            }
            OrgCmd::SetRegistrar {
                org,
                registrar,
                chain,
            } => {
                let (reg, admin) = open(&chain, data_dir, true).await?;
                let admin = admin.expect("open asked for the key");
                let id = resolve(&*reg, &org).await?;
                let receipt = reg
                    .set_registrar(&admin, id, registrar)
                    .await
                    .with_context(|| format!("changing organisation {id}'s registrar"))?;
                println!(
                    "organisation {id}'s registrar is now {registrar} (tx {})",
                    receipt.tx_hash
                );
            }
        }
        Ok(())
    })
}

/// `secure-ehr chain set-nodes`: asks every node its address and key (`GET /node/info`)
/// and puts the set on chain for everyone.
pub fn set_nodes(args: SetNodesArgs, data_dir: &Path) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let ca = read_ca(&args.chain)?;
        let mut nodes = Vec::with_capacity(args.nodes.len());
        for (i, url) in args.nodes.iter().enumerate() {
            let node = ehr_node::RemoteNode::with_ca(i + 1, url, None, ca.as_deref())?;
            let info = node
                .info()
                .await
                .with_context(|| format!("asking node {} ({url}) for its key", i + 1))?;
            nodes.push((info.address, info.public_key));
        }
        ehr_crypto::Threshold::new(usize::from(args.k), nodes.len())
            .map_err(|e| anyhow::anyhow!("-k {} with {} nodes: {e}", args.k, nodes.len()))?;
        let (reg, admin) = open(&args.chain, data_dir, true).await?;
        let admin = admin.expect("open asked for the key");
        let old = reg.node_set().await?;
        reg.set_node_set(
            &admin,
            &NodeSet {
                k: args.k,
                nodes,
                epoch: 0,
            },
        )
        .await
        .context("putting the node set on chain")?;
        let now = reg.node_set().await?;
        println!(
            "node set epoch {}: {}-of-{} (was epoch {}, {} nodes)",
            now.epoch,
            now.k,
            now.nodes.len(),
            old.epoch,
            old.nodes.len()
        );
        Ok(())
    })
}
