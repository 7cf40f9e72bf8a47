//! `secure-ehr restore --from-nodes` and `secure-ehr chain verify --from-nodes`: a lost
//! server rebuilt (or its archive checked) from any k nodes and the admin key file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use ehr_node::{Node, RemoteNode};
use ehr_records::restore::{self, RestoreReport};

/// Where the archive is read from.
#[derive(Args, Clone, Debug)]
pub struct FromNodesArgs {
    /// Read the ledger archive from the nodes (for `restore`, the only source there is).
    #[arg(long)]
    pub from_nodes: bool,
    /// Remote nodes (`secure-ehr node`), comma-separated URLs in node-set order; without,
    /// the nodes under the data directory (`nodes/node-N`).
    #[arg(long, value_delimiter = ',', env = "SECURE_EHR_NODES")]
    pub nodes: Vec<String>,
    /// CA certificates (PEM) to trust, besides the system's, for https:// nodes.
    #[arg(long, env = "SECURE_EHR_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// The contract admin's key file (default: the embedded chain's, `chain/admin.key` in
    /// the data directory).
    #[arg(long, env = "SECURE_EHR_ADMIN_KEY_FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl FromNodesArgs {
    async fn nodes(
        &self,
        data_dir: &Path,
        admin: &ehr_chain::PrivateKeySigner,
    ) -> anyhow::Result<Vec<Arc<dyn Node>>> {
        if self.nodes.is_empty() {
            let nodes = restore::local_nodes_without_chain(data_dir, admin.address()).await?;
            if nodes.is_empty() {
                bail!(
                    "no nodes under {} (give --nodes for remote ones)",
                    data_dir.join("nodes").display()
                );
            }
            return Ok(nodes);
        }
        let ca_pem = match &self.ca_file {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        };
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, url)| {
                RemoteNode::with_ca(i + 1, url, None, ca_pem.as_deref())
                    .map(|n| Arc::new(n) as Arc<dyn Node>)
                    .with_context(|| format!("node {} ({url})", i + 1))
            })
            .collect()
    }

    fn admin(&self, data_dir: &Path) -> anyhow::Result<ehr_chain::PrivateKeySigner> {
        let path = self
            .admin_key_file
            .clone()
            .unwrap_or_else(|| ehr_records::deployment::admin_key_file(data_dir));
        if !path.exists() {
            bail!(
                "the admin key file {} is missing: restore needs it (--admin-key-file)",
                path.display()
            );
        }
        ehr_records::deployment::read_signer(&path)
            .with_context(|| format!("reading the admin key {}", path.display()))
    }
}

fn print(report: &RestoreReport, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    for p in &report.problems {
        println!("read around: {p}");
    }
    let fetch = report.fetch_time.as_secs_f64().max(1e-9);
    let replay = report.replay_time.as_secs_f64().max(1e-9);
    println!(
        "{what}: {} epochs, {} blocks, {} transactions re-executed, head {}",
        report.epochs, report.blocks, report.transactions, report.head_hash
    );
    println!(
        "fetched {:.1} MB of blocks in {:.2} s ({:.1} MB/s); re-executed in {:.2} s ({:.0} tx/s)",
        report.ledger_bytes as f64 / 1e6,
        fetch,
        report.ledger_bytes as f64 / 1e6 / fetch,
        replay,
        report.transactions as f64 / replay
    );
    if report.accounts > 0 {
        println!("accounts restored: {}", report.accounts);
    }
    Ok(())
}

/// `secure-ehr restore --from-nodes`.
pub fn restore(args: FromNodesArgs, data_dir: &Path) -> anyhow::Result<()> {
    if !args.from_nodes {
        bail!("restore rebuilds the server from its nodes: give --from-nodes");
    }
    let _lock = crate::service::lock_data_dir(data_dir)?;
    let admin = args.admin(data_dir)?;
    crate::service::runtime()?.block_on(async {
        let nodes = args.nodes(data_dir, &admin).await?;
        let report = restore::restore_from_nodes(data_dir, &nodes, &admin)
            .await
            .context("restoring from the nodes")?;
        print(&report, args.json, "restored")?;
        if !args.json {
            println!(
                "`secure-ehr serve --data-dir {}` opens it; every account logs in as before",
                data_dir.display()
            );
        }
        Ok(())
    })
}

/// `secure-ehr chain verify --from-nodes`.
pub fn verify(args: FromNodesArgs, data_dir: &Path) -> anyhow::Result<()> {
    let admin = args.admin(data_dir)?;
    crate::service::runtime()?.block_on(async {
        let nodes = args.nodes(data_dir, &admin).await?;
        let report =
            restore::verify_from_nodes(&nodes, &admin, ehr_chain::ChainConfig::default().chain_id)
                .await
                .context("checking the archive on the nodes")?;
        print(&report, args.json, "archive verified")
    })
}

/// `secure-ehr chain verify` of a pruned chain: its old bodies from the archive on the nodes.
pub fn verify_pruned(
    args: FromNodesArgs,
    data_dir: &Path,
) -> anyhow::Result<ehr_chain::VerifyReport> {
    let admin = args.admin(data_dir)?;
    crate::service::runtime()?.block_on(async {
        let nodes = args.nodes(data_dir, &admin).await?;
        tokio::task::spawn_blocking({
            let data_dir = data_dir.to_path_buf();
            move || restore::verify_pruned_chain(&data_dir, nodes, &admin)
        })
        .await?
        .context("verifying the pruned chain with the archive")
    })
}
