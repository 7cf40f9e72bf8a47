//! Break-glass reasons. The chain keeps only a salted digest of each reason; the text,
//! which may be personal data, stays in this append-only file (mode 0600) so the patient
//! can read why their record was opened.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use alloy::primitives::{Address, B256, keccak256};
use ehr_fs_util::JsonlLog;
use serde::{Deserialize, Serialize};

use crate::Result;

const FILE: &str = "emergency-reasons.jsonl";

#[derive(Serialize, Deserialize)]
struct Line {
    digest: B256,
    provider: Address,
    patient: Address,
    reason: String,
}

/// The reasons file.
pub(crate) struct ReasonLog {
    log: JsonlLog,
    reasons: Mutex<HashMap<B256, String>>,
}

impl ReasonLog {
    /// Opens (creating, mode 0600) the file in `dir`. A torn last line (a crash mid-write
    /// of an unacknowledged reason) is cut off.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let (log, lines) = JsonlLog::open::<Line>(&dir.join(FILE))?;
        let reasons = lines.into_iter().map(|l| (l.digest, l.reason)).collect();
        Ok(Self {
            log,
            reasons: Mutex::new(reasons),
        })
    }

    /// Appends a reason durably and returns its salted digest for the chain.
    pub(crate) fn add(&self, provider: Address, patient: Address, reason: &str) -> Result<B256> {
        let mut salt = [0u8; 16];
        ehr_crypto::fill_random(&mut salt);
        let digest = reason_digest(&salt, reason);
        let line = Line {
            digest,
            provider,
            patient,
            reason: reason.to_owned(),
        };
        let mut reasons = self.reasons.lock().unwrap_or_else(|p| p.into_inner());
        self.log.append(&line, true)?;
        reasons.insert(digest, line.reason);
        Ok(digest)
    }

    /// The reason behind a digest, if it was given here.
    pub(crate) fn get(&self, digest: B256) -> Option<String> {
        let reasons = self.reasons.lock().unwrap_or_else(|p| p.into_inner());
        reasons.get(&digest).cloned()
    }
}

/// A salted digest of a break-glass reason (the chain sees only this).
fn reason_digest(salt: &[u8; 16], reason: &str) -> B256 {
    let mut buf = Vec::with_capacity(16 + reason.len());
    buf.extend_from_slice(salt);
    buf.extend_from_slice(reason.as_bytes());
    keccak256(&buf)
}
