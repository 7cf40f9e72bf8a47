//! The archiver's local progress in `<dir>/progress.json` (replaced crash-safely with
//! `ehr-fs-util` after every change), and the epochs sealed but not yet on every node in
//! `<dir>/pending/epoch-<N>.bin` (header, then every node's fragment and share).
//!
//! Sealing writes the epoch's pending file first, then the progress naming it: a crash
//! before the progress is written forgets the epoch, and the next start seals its blocks
//! again from the first one not archived (the stale file is overwritten). A crash after
//! it resumes delivering the epoch to the nodes that do not have it yet.

use std::path::{Path, PathBuf};

use alloy::primitives::B256;
use ehr_node::ArchiveHead;
use serde::{Deserialize, Serialize};

use crate::seal::{SealedEpoch, decode_pending, encode_pending};
use crate::{Error, Result};

const PROGRESS_FILE: &str = "progress.json";
const PENDING_DIR: &str = "pending";
const FORMAT: u32 = 1;

/// One sealed epoch that some node still lacks, or that is not yet archived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingEpoch {
    pub epoch: u64,
    pub last_block: Option<u64>,
    /// The head signed when it was sealed.
    pub head: ArchiveHead,
    /// Which nodes took their parts.
    pub delivered: Vec<bool>,
}

/// One state part's place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartCursor {
    pub name: String,
    pub cursor: u64,
    pub snapshot_epoch: u64,
}

/// Everything the archiver needs to resume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Progress {
    pub format: u32,
    pub chain_id: u64,
    pub n: usize,
    /// The number the next sealed epoch gets.
    pub next_epoch: u64,
    /// The first block not sealed yet.
    pub next_block: u64,
    /// The hash of the newest block sealed (zero: none).
    pub last_block_hash: B256,
    /// The digest of the newest epoch header (zero: none).
    pub prev_header: B256,
    pub parts: Vec<PartCursor>,
    /// Epochs `>= archived_epochs`, and older ones some node still lacks.
    pub pending: Vec<PendingEpoch>,
    /// Epochs archived (all below this number are).
    pub archived_epochs: u64,
    pub archived_through: Option<u64>,
    pub ledger_bytes: u64,
    pub state_bytes: u64,
    pub bytes_per_node: Vec<u64>,
}

impl Progress {
    pub(crate) fn new(chain_id: u64, n: usize) -> Self {
        Self {
            format: FORMAT,
            chain_id,
            n,
            next_epoch: 0,
            next_block: 0,
            last_block_hash: B256::ZERO,
            prev_header: B256::ZERO,
            parts: Vec::new(),
            pending: Vec::new(),
            archived_epochs: 0,
            archived_through: None,
            ledger_bytes: 0,
            state_bytes: 0,
            bytes_per_node: vec![0; n],
        }
    }

    /// Loads the progress in `dir`, or a fresh one if there is none.
    pub(crate) fn load(dir: &Path, chain_id: u64, n: usize) -> Result<Self> {
        std::fs::create_dir_all(dir.join(PENDING_DIR))
            .map_err(|e| ehr_fs_util::Error::io(dir, e))?;
        let path = dir.join(PROGRESS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::new(chain_id, n));
            }
            Err(e) => return Err(ehr_fs_util::Error::io(&path, e).into()),
        };
        let p: Self = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Progress(format!("{}: {e}", path.display())))?;
        if p.format != FORMAT {
            return Err(Error::Progress(format!("unknown format {}", p.format)));
        }
        if p.chain_id != chain_id || p.n != n || p.bytes_per_node.len() != n {
            return Err(Error::Progress(format!(
                "{} is the archive of chain {} over {} nodes, not chain {chain_id} over {n}",
                path.display(),
                p.chain_id,
                p.n
            )));
        }
        if p.pending.iter().any(|e| e.delivered.len() != n) {
            return Err(Error::Progress("a pending epoch of another n".into()));
        }
        Ok(p)
    }

    /// Whether `dir` holds progress already.
    pub(crate) fn exists(dir: &Path) -> bool {
        dir.join(PROGRESS_FILE).exists()
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Progress(e.to_string()))?;
        ehr_fs_util::replace(&dir.join(PROGRESS_FILE), &bytes)?;
        Ok(())
    }

    /// Moves `archived_epochs` past every epoch on at least `need` nodes, then forgets the
    /// archived epochs every node has (and their files).
    pub(crate) fn settle(&mut self, dir: &Path, need: usize) -> Result<()> {
        self.pending.sort_by_key(|e| e.epoch);
        for e in &self.pending {
            if e.epoch != self.archived_epochs {
                continue;
            }
            if e.delivered.iter().filter(|d| **d).count() < need {
                break;
            }
            self.archived_epochs += 1;
            if e.last_block.is_some() {
                self.archived_through = e.last_block;
            }
        }
        let archived = self.archived_epochs;
        let mut done = Vec::new();
        self.pending.retain(|e| {
            let keep = e.epoch >= archived || e.delivered.iter().any(|d| !d);
            if !keep {
                done.push(e.epoch);
            }
            keep
        });
        for epoch in done {
            let path = pending_path(dir, epoch);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ehr_fs_util::Error::io(&path, e).into()),
            }
        }
        Ok(())
    }
}

fn pending_path(dir: &Path, epoch: u64) -> PathBuf {
    dir.join(PENDING_DIR).join(format!("epoch-{epoch}.bin"))
}

/// Writes epoch `e`'s pending file (crash-safely).
pub(crate) fn write_pending(dir: &Path, e: &SealedEpoch) -> Result<()> {
    ehr_fs_util::replace(&pending_path(dir, e.header.epoch), &encode_pending(e))?;
    Ok(())
}

/// Reads epoch `epoch`'s pending file.
pub(crate) fn read_pending(dir: &Path, epoch: u64) -> Result<SealedEpoch> {
    let path = pending_path(dir, epoch);
    let bytes = std::fs::read(&path).map_err(|e| ehr_fs_util::Error::io(&path, e))?;
    let sealed = decode_pending(&bytes)?;
    if sealed.header.epoch != epoch {
        return Err(Error::Progress(format!(
            "{} holds epoch {}",
            path.display(),
            sealed.header.epoch
        )));
    }
    Ok(sealed)
}
