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
