//! Break-glass reasons. The chain keeps only a salted digest of each reason; the text,
//! which may be personal data, stays in this append-only file (mode 0600) so the patient
//! can read why their record was opened.
//!
//! For the server's archive the file is its own encoding: a [`snapshot`] is the file's
//! whole lines and their byte length (the cursor), [`changes_since`] the whole lines
//! appended after a cursor, and [`restore`] writes a fresh file from a snapshot plus the
//! changes after it, every line checked first.
//!
//! [`snapshot`]: ReasonLog::snapshot
//! [`changes_since`]: ReasonLog::changes_since
//! [`restore`]: ReasonLog::restore

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use alloy::primitives::{Address, B256, keccak256};
use ehr_fs_util::JsonlLog;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The reasons file's name in the data directory.
pub const FILE: &str = "emergency-reasons.jsonl";

#[derive(Serialize, Deserialize)]
struct Line {
    digest: B256,
    provider: Address,
    patient: Address,
    reason: String,
}

/// The reasons file.
pub struct ReasonLog {
    log: JsonlLog,
    /// Also held while appending, so a snapshot never sees half a line being written.
    reasons: Mutex<HashMap<B256, String>>,
}

fn bad(message: String) -> Error {
    Error::InvalidInput {
        field: "reasons archive",
        message,
    }
}

impl ReasonLog {
    /// Opens (creating, mode 0600) the file in `dir`. A torn last line (a crash mid-write
    /// of an unacknowledged reason) is cut off.
    pub fn open(dir: &Path) -> Result<Self> {
        let (log, lines) = JsonlLog::open::<Line>(&dir.join(FILE))?;
        let reasons = lines.into_iter().map(|l| (l.digest, l.reason)).collect();
        Ok(Self {
            log,
            reasons: Mutex::new(reasons),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<B256, String>> {
        self.reasons.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a reason durably and returns its salted digest for the chain.
    pub fn add(&self, provider: Address, patient: Address, reason: &str) -> Result<B256> {
        let mut salt = [0u8; 16];
        ehr_crypto::fill_random(&mut salt);
        let digest = reason_digest(&salt, reason);
        let line = Line {
            digest,
            provider,
            patient,
            reason: reason.to_owned(),
        };
        let mut reasons = self.lock();
        self.log.append(&line, true)?;
        reasons.insert(digest, line.reason);
        Ok(digest)
    }

    /// The reason behind a digest, if it was given here.
    pub fn get(&self, digest: B256) -> Option<String> {
        self.lock().get(&digest).cloned()
    }

    /// Every whole line of the file and their byte length, the cursor for
    /// [`changes_since`](Self::changes_since).
    pub fn snapshot(&self) -> Result<(u64, Vec<u8>)> {
        let _appends = self.lock();
        let bytes = self.read_from(0)?;
        let whole = whole_lines(&bytes);
        Ok((whole as u64, bytes[..whole].to_vec()))
    }

    /// The whole lines appended after byte `cursor` (a cursor this log returned) and the
    /// new cursor; `None` if nothing was appended. A cursor past the end or inside a line
    /// is refused.
    pub fn changes_since(&self, cursor: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let _appends = self.lock();
        // One byte before the cursor, to check that it ends a line.
        let from = cursor.saturating_sub(1);
        let bytes = self.read_from(from)?;
        let whole = whole_lines(&bytes);
        if (from + whole as u64) < cursor || (cursor > 0 && bytes[0] != b'\n') {
            return Err(bad(format!(
                "cursor {cursor} is not the end of a line of the reasons file"
            )));
        }
        let skip = (cursor - from) as usize;
        if whole <= skip {
            return Ok(None);
        }
        Ok(Some((from + whole as u64, bytes[skip..whole].to_vec())))
    }

    fn read_from(&self, offset: u64) -> Result<Vec<u8>> {
        let path = self.log.path();
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| Error::io(path, e))?;
        Ok(bytes)
    }

    /// Writes a fresh reasons file in `dir` (which must not have one) from a snapshot and
    /// the changes after it, in order; returns the number of reasons. Every part must be
    /// whole lines, every line a reason, no reason twice (an overlap); otherwise nothing is
    /// written.
    pub fn restore(dir: &Path, snapshot: &[u8], changes: &[Vec<u8>]) -> Result<usize> {
        let path = dir.join(FILE);
        let mut body = Vec::with_capacity(snapshot.len());
        let mut digests = HashSet::new();
        for (i, part) in std::iter::once(snapshot)
            .chain(changes.iter().map(Vec::as_slice))
            .enumerate()
        {
            let what = if i == 0 {
                "the snapshot".to_string()
            } else {
                format!("change set {i}")
            };
            if whole_lines(part) != part.len() || (i > 0 && part.is_empty()) {
                return Err(bad(format!("{what} is not whole lines")));
            }
            let lines = part
                .strip_suffix(b"\n")
                .map(|body| body.split(|&b| b == b'\n'));
            for (n, line) in lines.into_iter().flatten().enumerate() {
                // Only the position: the text may be personal data.
                let parsed: Line = serde_json::from_slice(line)
                    .map_err(|_| bad(format!("line {} of {what} is not a reason", n + 1)))?;
                if !digests.insert(parsed.digest) {
                    return Err(bad(format!(
                        "line {} of {what} repeats a reason (overlapping changes?)",
                        n + 1
                    )));
                }
            }
            body.extend_from_slice(part);
        }
        if path.exists() {
            return Err(bad(format!(
                "{} exists: restore into a new directory",
                path.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        ehr_fs_util::replace_private(&path, &body)?;
        Ok(digests.len())
    }
}

/// The length of the whole lines at the start of `bytes`.
fn whole_lines(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// A salted digest of a break-glass reason (the chain sees only this).
fn reason_digest(salt: &[u8; 16], reason: &str) -> B256 {
    let mut buf = Vec::with_capacity(16 + reason.len());
    buf.extend_from_slice(salt);
    buf.extend_from_slice(reason.as_bytes());
    keccak256(&buf)
}
