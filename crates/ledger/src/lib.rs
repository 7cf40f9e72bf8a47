//! STUB of the interface in /work/brief/plan14.md (lead's branch only).
#![allow(missing_docs, unused_variables)]
use ehr_chain::{B256, PrivateKeySigner};
use std::path::PathBuf;
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct Error;
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub struct RawBlock {
    pub number: u64,
    pub block: Vec<u8>,
    pub receipts: Vec<u8>,
}
pub trait LedgerSource: Send + Sync + 'static {
    fn head(&self) -> Result<Option<u64>, ehr_chain::Error>;
    fn block(&self, n: u64) -> Result<Option<RawBlock>, ehr_chain::Error>;
}
pub trait StatePart: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn snapshot(&self) -> Result<(u64, Vec<u8>), BoxError>;
    fn changes_since(&self, cursor: u64) -> Result<Option<(u64, Vec<u8>)>, BoxError>;
}
pub struct EpochPolicy {
    pub max_bytes: usize,
    pub max_age: std::time::Duration,
}
impl Default for EpochPolicy {
    fn default() -> Self {
        todo!()
    }
}
pub struct ArchiveConfig {
    pub chain_id: u64,
    pub threshold: ehr_primitives::Threshold,
    pub custodians: Vec<B256>,
    pub nodes: Vec<Arc<dyn ehr_node::Node>>,
    pub admin: PrivateKeySigner,
    pub dir: PathBuf,
    pub policy: EpochPolicy,
}
pub struct Archiver;
impl Archiver {
    pub fn open(
        config: ArchiveConfig,
        source: Arc<dyn LedgerSource>,
        parts: Vec<Arc<dyn StatePart>>,
    ) -> Result<Self> {
        todo!()
    }
    pub fn spawn(self) -> ArchiverHandle {
        todo!()
    }
}
#[derive(Clone)]
pub struct ArchiverHandle;
impl ArchiverHandle {
    pub fn notify(&self) {}
    pub async fn seal_and_stop(&self) -> Result<ArchiveStatus> {
        todo!()
    }
    pub fn status(&self) -> ArchiveStatus {
        todo!()
    }
}
#[derive(Clone, Debug)]
pub struct ArchiveStatus {
    pub epochs: u64,
    pub archived_through: Option<u64>,
    pub pending_nodes: Vec<String>,
    pub bytes_per_node: Vec<u64>,
    pub ledger_bytes: u64,
}
pub async fn fetch(
    nodes: &[Arc<dyn ehr_node::Node>],
    admin: &PrivateKeySigner,
    chain_id: u64,
) -> Result<Fetched> {
    todo!()
}
pub struct Fetched {
    pub epochs: Vec<EpochReport>,
    pub blocks: Vec<RawBlock>,
    pub parts: Vec<PartHistory>,
}
pub struct PartHistory {
    pub name: String,
    pub snapshot: Vec<u8>,
    pub changes: Vec<Vec<u8>>,
}
pub struct EpochReport {
    pub number: u64,
    pub first_block: u64,
    pub last_block: u64,
    pub problems: Vec<String>,
}
