//! `secure-ehr chain …` and `secure-ehr gas`: deploy, inspect and verify the registry.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ehr_chain::{
    Address, ChainConfig, EmbeddedChain, PrivateKeySigner, Registry, RpcRegistry, U256,
};

#[derive(Subcommand)]
pub enum ChainCmd {
    /// Deploy the contract on a JSON-RPC network; prints its address.
    Deploy {
        /// The node's JSON-RPC URL.
        #[arg(long, env = "SECURE_EHR_CHAIN_RPC")]
        chain_rpc: String,
        /// File holding the admin's hex private key (a funded account).
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Backend, chain id, head block and contract address.
    Info {
        /// A JSON-RPC node instead of the embedded chain.
        #[arg(long, env = "SECURE_EHR_CHAIN_RPC", requires = "contract")]
        chain_rpc: Option<String>,
        /// The contract address on that node.
        #[arg(long, env = "SECURE_EHR_CONTRACT")]
        contract: Option<Address>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The consortium admin puts the node set on chain for every organisation: each node's
    /// address and key, asked from the node (`GET /node/info`).
    SetNodes(crate::org_cmd::SetNodesArgs),
    /// Re-walk the embedded chain: hash links, signatures, re-execution of every block;
    /// with --from-nodes, the ledger archive on the nodes instead (nothing is written).
    Verify(crate::restore_cmd::FromNodesArgs),
}

#[derive(Args)]
pub struct GasArgs {
    /// Print one JSON object: function name → gas.
    #[arg(long)]
    json: bool,
    /// Measure on this JSON-RPC node instead of a fresh embedded chain.
    #[arg(long, env = "SECURE_EHR_CHAIN_RPC", requires = "key_file")]
    chain_rpc: Option<String>,
    /// A funded account's hex private key (with --chain-rpc).
    #[arg(long)]
    key_file: Option<PathBuf>,
}

/// Opens (creating on first use) the embedded chain of `data_dir`; its admin key lives beside it.
pub fn open_embedded(data_dir: &Path) -> anyhow::Result<EmbeddedChain> {
    let (chain, _) = ehr_records::deployment::open_embedded_chain(data_dir).with_context(|| {
        format!(
            "opening the embedded chain in {}",
            ehr_records::deployment::chain_dir(data_dir).display()
        )
    })?;
    Ok(chain)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn now() -> u64 {
    ehr_primitives::unix_now()
}

pub fn run(cmd: ChainCmd, data_dir: &Path) -> anyhow::Result<()> {
    let rt = runtime()?;
    match cmd {
        ChainCmd::Deploy {
            chain_rpc,
            key_file,
        } => rt.block_on(async {
            let admin = ehr_records::deployment::read_signer(&key_file)?;
            let reg = RpcRegistry::deploy(&chain_rpc, &admin)
                .await
                .context("deploying EhrRegistry")?;
            println!("{}", reg.contract());
            eprintln!(
                "deployed EhrRegistry at {} on chain {} (admin {})",
                reg.contract(),
                reg.chain_id(),
                admin.address()
            );
            Ok(())
        }),
        ChainCmd::Info {
            chain_rpc,
            contract,
            json,
        } => rt.block_on(async {
            let info = match (chain_rpc, contract) {
                (Some(url), Some(addr)) => RpcRegistry::connect(&url, addr).await?.info().await?,
                _ => open_embedded(data_dir)?.info().await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("backend:   {}", info.backend);
                println!("chain id:  {}", info.chain_id);
                println!("head:      block {} ({})", info.head_block, info.head_hash);
                println!("contract:  {}", info.contract);
            }
            Ok(())
        }),
        ChainCmd::SetNodes(args) => crate::org_cmd::set_nodes(args, data_dir),
        ChainCmd::Verify(args) if args.from_nodes => crate::restore_cmd::verify(args, data_dir),
        ChainCmd::Verify(args) => {
            let dir = ehr_records::deployment::chain_dir(data_dir);
            let report = match EmbeddedChain::verify(&dir, ChainConfig::default().chain_id) {
                // Pruned (`serve --keep-blocks`): the old bodies come from the archive.
                Err(ehr_chain::Error::Pruned { block }) => {
                    println!(
                        "block {block} on are pruned here: reading their bodies from the ledger archive"
                    );
                    crate::restore_cmd::verify_pruned(args, data_dir)?
                }
                other => other?,
            };
            println!(
                "ok: {} blocks, {} transactions re-executed; head {}",
                report.blocks, report.transactions, report.head_hash
            );
            Ok(())
        }
    }
}

pub fn gas(args: GasArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let gas = rt.block_on(async {
        let patient = PrivateKeySigner::random();
        let provider = PrivateKeySigner::random();
        let registrar = PrivateKeySigner::random();
        match (&args.chain_rpc, &args.key_file) {
            (Some(url), Some(key_file)) => {
                let admin = ehr_records::deployment::read_signer(key_file)?;
                let reg = RpcRegistry::deploy(url, &admin)
                    .await
                    .context("deploying EhrRegistry")?;
                // The fresh accounts need ether for gas on a real network.
                let wei = U256::from(10u64.pow(17));
                reg.transfer(&admin, patient.address(), wei)
                    .await
                    .context("funding the patient account")?;
                reg.transfer(&admin, provider.address(), wei)
                    .await
                    .context("funding the provider account")?;
                reg.transfer(&admin, registrar.address(), wei)
                    .await
                    .context("funding the registrar account")?;
                Ok::<_, anyhow::Error>(
                    ehr_chain::gas::measure(&reg, &admin, &registrar, &patient, &provider, now())
                        .await?,
                )
            }
            _ => {
                let dir = tempdir()?;
                let admin = PrivateKeySigner::random();
                let chain = EmbeddedChain::open(&dir, ChainConfig::default(), &admin)?;
                let gas =
                    ehr_chain::gas::measure(&chain, &admin, &registrar, &patient, &provider, now())
                        .await?;
                drop(chain);
                std::fs::remove_dir_all(&dir).ok();
                Ok(gas)
            }
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&gas)?);
    } else {
        for name in ehr_chain::gas::OPERATIONS {
            println!("{name:<20} {:>8}", gas[name]);
        }
    }
    Ok(())
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("secure-ehr-gas-{}-{}", std::process::id(), now()));
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    Ok(dir)
}
