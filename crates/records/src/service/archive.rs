//! The ledger archive of an embedded deployment (the design's own proposal): the chain's
//! blocks, the accounts and the break-glass reasons, sealed in epochs and dispersed k-of-n
//! over the deployment's own nodes by [`ehr_ledger::Archiver`], in the background. On a
//! JSON-RPC chain the Ethereum nodes keep the ledger, and nothing is archived here.

use std::sync::Arc;

use ehr_accounts::AccountStore;
use ehr_chain::EmbeddedChain;
use ehr_ledger::{
    ArchiveConfig, ArchiveStatus, Archiver, ArchiverHandle, BoxError, EpochPolicy, LedgerSource,
    RawBlock, StatePart,
};

use super::*;
use crate::reasons::ReasonLog;

/// The embedded chain, as the archiver reads it.
pub struct ChainSource(pub Arc<EmbeddedChain>);

impl LedgerSource for ChainSource {
    fn head(&self) -> std::result::Result<Option<u64>, ehr_chain::Error> {
        Ok(Some(self.0.head_number()))
    }
    fn block(&self, n: u64) -> std::result::Result<Option<RawBlock>, ehr_chain::Error> {
        Ok(self.0.raw_block(n)?.map(|(block, receipts)| RawBlock {
            number: n,
            block,
            receipts,
        }))
    }
}

/// The accounts (with the patients' keystores, still encrypted under their passwords).
struct AccountsPart(Arc<AccountStore>);

impl StatePart for AccountsPart {
    fn name(&self) -> &str {
        "accounts"
    }
    fn snapshot(&self) -> std::result::Result<(u64, Vec<u8>), BoxError> {
        Ok(self.0.archive_snapshot()?)
    }
    fn changes_since(&self, cursor: u64) -> std::result::Result<Option<(u64, Vec<u8>)>, BoxError> {
        // The archiver asks only from the cursor of an epoch it has archived: the changes
        // up to it are in the archive, and their entries can go.
        self.0.archive_forget_until(cursor)?;
        Ok(self.0.archive_changes_since(cursor)?)
    }
}

/// The break-glass reasons (personal data: sealed like everything else).
struct ReasonsPart(Arc<ReasonLog>);

impl StatePart for ReasonsPart {
    fn name(&self) -> &str {
        "reasons"
    }
    fn snapshot(&self) -> std::result::Result<(u64, Vec<u8>), BoxError> {
        Ok(self.0.snapshot()?)
    }
    fn changes_since(&self, cursor: u64) -> std::result::Result<Option<(u64, Vec<u8>)>, BoxError> {
        Ok(self.0.changes_since(cursor)?)
    }
}

impl Service {
    /// Starts archiving the ledger and the server's state over the nodes (embedded chain
    /// only; a no-op on a JSON-RPC chain). Resumes after the last sealed epoch.
    pub fn start_archive(&self, policy: EpochPolicy) -> Result<bool> {
        let Some(chain) = self.embedded.clone() else {
            return Ok(false);
        };
        let mut slot = self.archiver.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return Ok(true);
        }
        let config = ArchiveConfig {
            chain_id: chain.chain_id(),
            threshold: self.threshold,
            custodians: self.custodians.clone(),
            nodes: self.nodes.clone(),
            admin: self.admin.clone(),
            dir: crate::deployment::archive_dir(&self.data_dir),
            policy,
        };
        let parts: Vec<Arc<dyn StatePart>> = vec![
            Arc::new(AccountsPart(self.accounts.clone())),
            Arc::new(ReasonsPart(self.reasons.clone())),
        ];
        self.read_pruned_from_archive(&chain)?;
        let archiver = Archiver::open(config, Arc::new(ChainSource(chain)), parts)?;
        *slot = Some(archiver.spawn());
        Ok(true)
    }

    /// The archive's progress, when archiving runs.
    pub fn archive_status(&self) -> Option<ArchiveStatus> {
        let slot = self.archiver.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(ArchiverHandle::status)
    }

    /// The clean stop: seals the open epoch and disperses it, then stops archiving.
    pub async fn seal_archive(&self) -> Result<Option<ArchiveStatus>> {
        let handle = {
            let mut slot = self.archiver.lock().unwrap_or_else(|p| p.into_inner());
            slot.take()
        };
        match handle {
            Some(h) => Ok(Some(h.seal_and_stop().await?)),
            None => Ok(None),
        }
    }
}

/// Pruned blocks' bodies from the ledger archive, for the embedded chain (which asks from
/// whatever thread answers a query): one thread with its own runtime reads the archive, so
/// a caller on an async worker or a blocking thread alike just waits for its answer.
pub struct ArchiveBodies {
    requests: std::sync::Mutex<std::sync::mpsc::Sender<BodyRequest>>,
}

type BodyRequest = (
    u64,
    std::sync::mpsc::Sender<std::result::Result<Option<ehr_chain::embedded::RawBody>, String>>,
);

impl ArchiveBodies {
    /// Reads from `reader` on a thread of its own.
    pub fn new(reader: ehr_ledger::ArchiveReader) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<BodyRequest>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("ehr-archive-reader".into())
            .spawn(move || {
                for (n, answer) in rx {
                    let got = runtime
                        .block_on(reader.block(n))
                        .map(|b| b.map(|b| (b.block, b.receipts)))
                        .map_err(|e| e.to_string());
                    let _ = answer.send(got);
                }
            })?;
        Ok(Self {
            requests: std::sync::Mutex::new(tx),
        })
    }
}

impl ehr_chain::BodySource for ArchiveBodies {
    fn body(&self, n: u64) -> std::result::Result<Option<ehr_chain::embedded::RawBody>, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((n, tx))
            .map_err(|_| "the archive reader has stopped".to_owned())?;
        rx.recv()
            .map_err(|_| "the archive reader has stopped".to_owned())?
    }
}

impl Service {
    /// Pruned blocks' bodies from now on come from the archive on this service's nodes.
    fn read_pruned_from_archive(&self, chain: &EmbeddedChain) -> Result<()> {
        let reader = ehr_ledger::ArchiveReader::new(
            self.nodes.clone(),
            self.admin.clone(),
            chain.chain_id(),
        );
        let bodies = ArchiveBodies::new(reader).map_err(|e| Error::io(&self.data_dir, e))?;
        chain.set_body_source(Arc::new(bodies));
        Ok(())
    }

    /// Keeps only the newest `keep_blocks` blocks' bodies (and every header, the state and
    /// the indexes): every ten seconds, blocks older than that which the archive holds (on
    /// at least min(k + 1, n) nodes) lose their bodies. Needs the archive running.
    pub fn start_pruning(self: &Arc<Self>, keep_blocks: u64) -> Result<()> {
        if self.embedded.is_none() || self.archive_status().is_none() {
            return Err(Error::InvalidInput {
                field: "keep-blocks",
                message: "pruning needs the embedded chain and its ledger archive".into(),
            });
        }
        let svc = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
            loop {
                every.tick().await;
                let Some(svc) = svc.upgrade() else { return };
                if let Err(e) = svc.prune_archived(keep_blocks).await {
                    tracing::warn!(error = %e, "pruning archived blocks");
                }
            }
        });
        Ok(())
    }

    /// One round of [`start_pruning`](Self::start_pruning); returns the blocks pruned.
    pub async fn prune_archived(&self, keep_blocks: u64) -> Result<u64> {
        let (Some(chain), Some(status)) = (self.embedded.clone(), self.archive_status()) else {
            return Ok(0);
        };
        let Some(archived) = status.archived_through else {
            return Ok(0);
        };
        let head = chain.head_number();
        let below = (archived + 1).min((head + 1).saturating_sub(keep_blocks));
        if below <= chain.pruned_below()? {
            return Ok(0);
        }
        let pruned = tokio::task::spawn_blocking(move || chain.prune_below(below))
            .await
            .map_err(|e| Error::io(&self.data_dir, std::io::Error::other(e.to_string())))??;
        if pruned > 0 {
            tracing::info!(
                blocks = pruned,
                below,
                "pruned block bodies the archive holds"
            );
        }
        Ok(pruned)
    }
}
