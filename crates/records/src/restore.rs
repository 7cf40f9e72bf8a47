//! Rebuilding a lost server from its nodes: `secure-ehr restore --from-nodes` and
//! `secure-ehr chain verify --from-nodes`.
//!
//! Any k nodes and the admin key file are enough: the ledger archive
//! ([`ehr_ledger::fetch`]) gives back every block (each epoch's fragments checked, a bad or
//! missing one named with its node and read around, the epochs' hash links and the admin's
//! signature on the newest checked), the chain is rebuilt by re-executing every block
//! ([`EmbeddedChain::restore`]: links, signatures, the same receipts and state), and the
//! accounts and the break-glass reasons are written back from their snapshots and changes.
//! Nothing is written into a data directory that still holds a chain or accounts.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::signers::local::PrivateKeySigner;
use ehr_accounts::AccountStore;
use ehr_chain::{ChainConfig, EmbeddedChain};
use ehr_node::{LocalNode, Node, NodeKey};
use ehr_store::BlobStore;

use crate::deployment::{accounts_dir, chain_dir, node_dir, node_store};
use crate::{Error, Result};

/// What a restore (or a check) found and did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RestoreReport {
    /// Epochs read.
    pub epochs: usize,
    /// Blocks rebuilt (genesis included).
    pub blocks: u64,
    /// Transactions re-executed.
    pub transactions: u64,
    /// The head block's hash.
    pub head_hash: alloy::primitives::B256,
    /// What was wrong on which node (read around), per epoch.
    pub problems: Vec<String>,
    /// Accounts written back (none for a check).
    pub accounts: usize,
    /// Bytes of blocks and receipts fetched.
    pub ledger_bytes: u64,
    /// Time fetching and opening the epochs.
    pub fetch_time: Duration,
    /// Time re-executing every block.
    pub replay_time: Duration,
}

/// The nodes of a data directory with no chain: `<data-dir>/nodes/node-N`, in order, each
/// opened without a chain (it only hands back blocks and, to the admin, ledger shares). A
/// node whose directory is gone is absent: the archive reads around it.
pub async fn local_nodes_without_chain(
    data_dir: &Path,
    admin: alloy::primitives::Address,
) -> Result<Vec<Arc<dyn Node>>> {
    let mut last = 0;
    if let Ok(entries) = std::fs::read_dir(data_dir.join("nodes")) {
        for e in entries.flatten() {
            if let Some(i) = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("node-"))
                .and_then(|i| i.parse::<usize>().ok())
            {
                last = last.max(i);
            }
        }
    }
    let mut nodes: Vec<Arc<dyn Node>> = Vec::with_capacity(last);
    for i in 1..=last {
        let dir = node_dir(data_dir, i);
        let key_file = dir.join("node.key");
        if !key_file.exists() {
            nodes.push(Arc::new(crate::deployment::AbsentNode {
                name: format!("node {i}"),
                dir,
            }));
            continue;
        }
        let key = NodeKey::load_or_create(&key_file)?;
        let store: Arc<dyn BlobStore> = Arc::new(node_store(&dir).await?);
        nodes.push(Arc::new(
            LocalNode::without_chain(format!("node {i}"), key, store, admin)
                .with_archive_dir(&dir)?,
        ));
    }
    // Trailing nodes may be gone too: the archive's own header says how many there were.
    let mut n = nodes.len();
    for node in &nodes {
        let Ok(head) = node.archive_head().await else {
            continue;
        };
        if let Ok(block) = node.get_block(&head.header).await
            && let Ok(header) = ehr_ledger::format::EpochHeader::decode(&block)
        {
            n = n.max(usize::from(header.n));
        }
    }
    for i in nodes.len() + 1..=n {
        nodes.push(Arc::new(crate::deployment::AbsentNode {
            name: format!("node {i}"),
            dir: node_dir(data_dir, i),
        }));
    }
    Ok(nodes)
}

/// Reads and checks the whole archive and re-executes every block in a scratch directory,
/// writing nothing to the data directory.
pub async fn verify_from_nodes(
    nodes: &[Arc<dyn Node>],
    admin: &PrivateKeySigner,
    chain_id: u64,
) -> Result<RestoreReport> {
    let scratch = tempfile_dir()?;
    let report = rebuild(nodes, admin, chain_id, scratch.path(), None).await;
    let _ = std::fs::remove_dir_all(scratch.path());
    report
}

/// Restores `data_dir` from the archive on `nodes`: the chain, the accounts and the
/// break-glass reasons. Refuses a data directory that still holds a chain or accounts.
pub async fn restore_from_nodes(
    data_dir: &Path,
    nodes: &[Arc<dyn Node>],
    admin: &PrivateKeySigner,
) -> Result<RestoreReport> {
    let chain_file = chain_dir(data_dir).join("chain.redb");
    let accounts = accounts_dir(data_dir);
    for existing in [&chain_file, &accounts.join(ehr_accounts::ACCOUNTS_DB)] {
        if existing.exists() {
            return Err(Error::InvalidInput {
                field: "data-dir",
                message: format!(
                    "{} exists: restore writes only into a data directory that lost it",
                    existing.display()
                ),
            });
        }
    }
    rebuild(
        nodes,
        admin,
        ChainConfig::default().chain_id,
        &chain_dir(data_dir),
        Some(data_dir),
    )
    .await
}

async fn rebuild(
    nodes: &[Arc<dyn Node>],
    admin: &PrivateKeySigner,
    chain_id: u64,
    chain_at: &Path,
    state_to: Option<&Path>,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let fetched = ehr_ledger::fetch(nodes, admin, chain_id).await?;
    let fetch_time = started.elapsed();
    let problems: Vec<String> = fetched
        .problems
        .iter()
        .cloned()
        .chain(fetched.epochs.iter().flat_map(|e| {
            e.problems
                .iter()
                .map(move |p| format!("epoch {}: {p}", e.number))
        }))
        .collect();
    let ledger_bytes = fetched
        .blocks
        .iter()
        .map(|b| (b.block.len() + b.receipts.len()) as u64)
        .sum();
    let epochs = fetched.epochs.len();
    let blocks: Vec<(Vec<u8>, Vec<u8>)> = fetched
        .blocks
        .iter()
        .map(|b| (b.block.clone(), b.receipts.clone()))
        .collect();
    let replay_started = Instant::now();
    let dir = chain_at.to_path_buf();
    let verified =
        tokio::task::spawn_blocking(move || EmbeddedChain::restore(&dir, chain_id, blocks))
            .await
            .map_err(|e| Error::io(chain_at, std::io::Error::other(e.to_string())))??;
    let replay_time = replay_started.elapsed();
    let mut accounts = 0;
    if let Some(data_dir) = state_to {
        for part in &fetched.parts {
            match part.name.as_str() {
                "accounts" => {
                    accounts = AccountStore::restore_archive(
                        accounts_dir(data_dir),
                        &part.snapshot,
                        &part.changes,
                    )?;
                }
                "reasons" => {
                    crate::reasons::ReasonLog::restore(data_dir, &part.snapshot, &part.changes)?;
                }
                other => {
                    return Err(Error::InvalidInput {
                        field: "archive",
                        message: format!("the archive holds an unknown part {other:?}"),
                    });
                }
            }
        }
        // The archive carries on from the head it was restored from.
        let head = fetched
            .headers
            .last()
            .expect("a fetched archive has a head epoch");
        let threshold = ehr_primitives::Threshold::new(usize::from(head.k), usize::from(head.n))
            .map_err(|e| Error::InvalidInput {
                field: "archive",
                message: e.to_string(),
            })?;
        let config = ehr_ledger::ArchiveConfig {
            chain_id,
            threshold,
            custodians: head.custodians.clone(),
            nodes: nodes.to_vec(),
            admin: admin.clone(),
            dir: crate::deployment::archive_dir(data_dir),
            policy: ehr_ledger::EpochPolicy::default(),
        };
        ehr_ledger::adopt(&config, &fetched)?;
    }
    Ok(RestoreReport {
        epochs,
        blocks: verified.blocks,
        transactions: verified.transactions,
        head_hash: verified.head_hash,
        problems,
        accounts,
        ledger_bytes,
        fetch_time,
        replay_time,
    })
}

/// A scratch directory for a check's re-execution, removed afterwards.
fn tempfile_dir() -> Result<ScratchDir> {
    let mut name = [0u8; 8];
    ehr_crypto::fill_random(&mut name);
    let path = std::env::temp_dir().join(format!("secure-ehr-verify-{}", hex_of(&name)));
    std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
    Ok(ScratchDir(path))
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `chain verify` of a pruned embedded chain: the bodies it no longer keeps come from the
/// archive on `nodes`, each checked against the header kept, and everything is re-executed.
pub fn verify_pruned_chain(
    data_dir: &Path,
    nodes: Vec<Arc<dyn Node>>,
    admin: &PrivateKeySigner,
) -> Result<ehr_chain::VerifyReport> {
    let chain_id = ChainConfig::default().chain_id;
    let reader = ehr_ledger::ArchiveReader::new(nodes, admin.clone(), chain_id);
    let bodies = crate::service::ArchiveBodies::new(reader).map_err(|e| Error::io(data_dir, e))?;
    Ok(EmbeddedChain::verify_with(
        &chain_dir(data_dir),
        chain_id,
        Some(&bodies),
    )?)
}
