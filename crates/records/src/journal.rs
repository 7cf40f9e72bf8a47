//! The upload journal: how orphan blocks are found and collected.
//!
//! Before an upload stores any block, its manifest and fragment CIDs are appended here and
//! synced; once the chain has the record (or the upload is abandoned and its blocks removed)
//! a "done" line follows. A crash in between leaves a "begin" without "done": at the next
//! start, [`Service::new`](crate::Service::new) asks the chain whether that manifest was
//! recorded, and if not deletes its blocks from every node. A record is visible only once
//! the chain has it, so a crash never shows a half-stored record either.

use std::collections::BTreeMap;
use std::path::Path;

use ehr_fs_util::JsonlLog;
use serde::{Deserialize, Serialize};

use crate::Result;

const FILE: &str = "uploads.journal";

/// One upload's blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Upload {
    /// The manifest's CID.
    pub manifest: String,
    /// Fragment CIDs, fragment `i` on node `i`.
    pub fragments: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Line {
    Begin(Upload),
    Done { manifest: String },
}

pub(crate) struct Journal {
    log: JsonlLog,
}

impl Journal {
    /// Opens the journal in `dir` and returns the uploads it shows unfinished.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Vec<Upload>)> {
        let (log, lines) = JsonlLog::open::<Line>(&dir.join(FILE))?;
        let mut open: BTreeMap<String, Upload> = BTreeMap::new();
        for line in lines {
            match line {
                Line::Begin(u) => {
                    open.insert(u.manifest.clone(), u);
                }
                Line::Done { manifest } => {
                    open.remove(&manifest);
                }
            }
        }
        Ok((Self { log }, open.into_values().collect()))
    }

    /// Records (durably) that an upload is about to store these blocks.
    pub(crate) fn begin(&self, upload: &Upload) -> Result<()> {
        Ok(self.log.append(&Line::Begin(upload.clone()), true)?)
    }

    /// Records that an upload finished (on chain, or its blocks removed). Not synced: if
    /// it is lost, the next start asks the chain.
    pub(crate) fn done(&self, manifest: &str) {
        let line = Line::Done {
            manifest: manifest.to_owned(),
        };
        if let Err(e) = self.log.append(&line, false) {
            tracing::warn!(error = %e, "upload journal");
        }
    }

    /// Rewrites the journal with only `open` uploads (at start, after collection).
    pub(crate) fn compact(&self, open: &[Upload]) -> Result<()> {
        let lines: Vec<Line> = open.iter().cloned().map(Line::Begin).collect();
        Ok(self.log.rewrite(&lines)?)
    }
}
