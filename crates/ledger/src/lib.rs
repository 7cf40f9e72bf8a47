#![doc = include_str!("../README.md")]

mod archiver;
mod error;
mod fetch;
pub mod format;
mod progress;
mod reader;
pub mod seal;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use alloy::primitives::B256;
pub use alloy::signers::local::PrivateKeySigner;
pub use archiver::{Archiver, ArchiverHandle, adopt};
pub use error::{Error, Result, Shortfall};
pub use fetch::fetch;
pub use reader::ArchiveReader;

/// One block as the embedded chain stores it: `ehr_chain::embedded::Block::encode()` bytes
/// and the block's encoded receipts (`EmbeddedChain::raw_block(n)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawBlock {
    /// The block number.
    pub number: u64,
    /// The canonical block bytes.
    pub block: Vec<u8>,
    /// The canonical receipts bytes.
    pub receipts: Vec<u8>,
}

/// Where the archiver reads blocks from.
pub trait LedgerSource: Send + Sync + 'static {
    /// The newest block number (None: no block yet).
    fn head(&self) -> Result<Option<u64>, ehr_chain::Error>;
    /// Block `n` (None: not there).
    fn block(&self, n: u64) -> Result<Option<RawBlock>, ehr_chain::Error>;
}

/// A boxed error of a state part.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A piece of the server's own state archived with the ledger (accounts, reasons).
pub trait StatePart: Send + Sync + 'static {
    /// Its name in the archive ("accounts", "reasons").
    fn name(&self) -> &str;
    /// A consistent snapshot of everything, and the cursor it is at.
    fn snapshot(&self) -> Result<(u64, Vec<u8>), BoxError>;
    /// What changed after `cursor` and the new cursor; `None` if nothing changed.
    fn changes_since(&self, cursor: u64) -> Result<Option<(u64, Vec<u8>)>, BoxError>;
}

/// When an open epoch is sealed: whichever comes first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochPolicy {
    /// Raw bytes (blocks + receipts) at which the open epoch is sealed (at most 48 MiB).
    pub max_bytes: usize,
    /// Age of the oldest unsealed block at which the open epoch is sealed.
    pub max_age: Duration,
}

impl Default for EpochPolicy {
    /// 4 MiB or 5 s.
    fn default() -> Self {
        Self {
            max_bytes: 4 << 20,
            max_age: Duration::from_secs(5),
        }
    }
}

/// A state part gets a whole snapshot in epoch 0, in the first epoch after it appears, and
/// then every this many epochs; the epochs in between carry its changes.
pub const SNAPSHOT_EVERY: u64 = 64;

/// The archive of one deployment over its nodes.
#[derive(Clone)]
pub struct ArchiveConfig {
    /// The chain archived.
    pub chain_id: u64,
    /// k of n, the deployment's.
    pub threshold: ehr_primitives::Threshold,
    /// Custodian X25519 keys, node order.
    pub custodians: Vec<B256>,
    /// The nodes, in the same order.
    pub nodes: Vec<Arc<dyn ehr_node::Node>>,
    /// Signs epoch heads and ledger-share requests; a restore needs only this key and k nodes.
    pub admin: PrivateKeySigner,
    /// `<data-dir>/archive`: local progress (resume after a crash) and epochs not yet on
    /// every node.
    pub dir: PathBuf,
    /// When to seal.
    pub policy: EpochPolicy,
}

/// What the archiver has done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveStatus {
    /// Epochs archived (each on at least min(k + 1, n) nodes, and all before it too).
    pub epochs: u64,
    /// The newest block archived so (None: none yet).
    pub archived_through: Option<u64>,
    /// Epochs sealed (archived or still short of nodes).
    pub sealed_epochs: u64,
    /// Names of the nodes still missing parts of a sealed epoch.
    pub pending_nodes: Vec<String>,
    /// Bytes of archive blocks (headers, fragments, shares) stored on each node, node order.
    pub bytes_per_node: Vec<u64>,
    /// Bytes of the raw blocks + receipts sealed.
    pub ledger_bytes: u64,
    /// Bytes of state-part entries sealed.
    pub state_bytes: u64,
    /// The last failure of the archiver, if its last attempt failed (it retries).
    pub last_error: Option<String>,
}

/// What [`fetch`] read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Per epoch: its blocks, the fragments found good, and the problems read around.
    pub epochs: Vec<EpochReport>,
    /// Blocks 0..=head in order, checked against the epoch commitments.
    pub blocks: Vec<RawBlock>,
    /// Per state part: newest snapshot + the changes after it, in order.
    pub parts: Vec<PartHistory>,
    /// Problems outside any epoch (heads refused, headers unreadable on some node).
    pub problems: Vec<String>,
    /// The head used.
    pub head: ehr_node::ArchiveHead,
    /// The epoch headers, from epoch 0 to the head's.
    pub headers: Vec<format::EpochHeader>,
}

/// One state part's history as archived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartHistory {
    /// Its name.
    pub name: String,
    /// The cursor its newest snapshot is at.
    pub snapshot_cursor: u64,
    /// The newest snapshot.
    pub snapshot: Vec<u8>,
    /// The changes after it, in order.
    pub changes: Vec<Vec<u8>>,
    /// The cursor after the last change.
    pub cursor: u64,
}

/// One epoch as fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochReport {
    /// Its number.
    pub number: u64,
    /// Its first block (the next block, if it holds none).
    pub first_block: u64,
    /// Its last block (`first_block - 1` if it holds none).
    pub last_block: u64,
    /// How many blocks it holds.
    pub blocks: u64,
    /// Good fragments used.
    pub fragments_ok: usize,
    /// Fragments or shares read around, with their node ("node 3: fragment of epoch 7
    /// fails its hash").
    pub problems: Vec<String>,
}
