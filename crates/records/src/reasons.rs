//! Break-glass reasons. The chain keeps only a salted digest of each reason; the text,
//! which may be personal data, stays in this append-only file (mode 0600) so the patient
//! can read why their record was opened.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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
    path: PathBuf,
    inner: Mutex<(File, HashMap<B256, String>)>,
}

impl ReasonLog {
    /// Opens (creating) the file in `dir`. A torn last line (a crash mid-write of an
    /// unacknowledged reason) is ignored.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(FILE);
        let mut map = HashMap::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| Error::io(&path, e))?;
                if let Ok(l) = serde_json::from_str::<Line>(&line) {
                    map.insert(l.digest, l.reason);
                }
            }
        }
        let mut opts = OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            path,
            inner: Mutex::new((file, map)),
        })
    }

    /// Appends a reason durably and returns its salted digest for the chain.
    pub(crate) fn add(&self, provider: Address, patient: Address, reason: &str) -> Result<B256> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).expect("the OS random source works");
        let digest = crate::flows::reason_digest(&salt, reason);
        let mut line = serde_json::to_vec(&Line {
            digest,
            provider,
            patient,
            reason: reason.to_owned(),
        })
        .expect("reason serializes");
        line.push(b'\n');
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .0
            .write_all(&line)
            .and_then(|_| inner.0.sync_data())
            .map_err(|e| Error::io(&self.path, e))?;
        inner.1.insert(digest, reason.to_owned());
        Ok(digest)
    }

    /// The reason behind a digest, if it was given here.
    pub(crate) fn get(&self, digest: B256) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.1.get(&digest).cloned()
    }
}
