//! The upload journal: how orphan blocks are found and collected.
//!
//! Before an upload stores any block, its manifest and fragment CIDs are appended here and
//! synced; once the chain has the record (or the upload is abandoned and its blocks removed)
//! a "done" line follows. A crash in between leaves a "begin" without "done": at the next
//! start, [`Service::new`](crate::Service::new) asks the chain whether that manifest was
//! recorded, and if not deletes its blocks from every node. A record is visible only once
//! the chain has it, so a crash never shows a half-stored record either.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens the journal in `dir` and returns the uploads it shows unfinished.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Vec<Upload>)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(FILE);
        let mut open: BTreeMap<String, Upload> = BTreeMap::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| Error::io(&path, e))?;
                // A torn last line was never acknowledged.
                match serde_json::from_str::<Line>(&line) {
                    Ok(Line::Begin(u)) => {
                        open.insert(u.manifest.clone(), u);
                    }
                    Ok(Line::Done { manifest }) => {
                        open.remove(&manifest);
                    }
                    Err(_) => {}
                }
            }
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok((
            Self {
                path,
                file: Mutex::new(file),
            },
            open.into_values().collect(),
        ))
    }

    fn append(&self, line: &Line, sync: bool) -> Result<()> {
        let mut buf = serde_json::to_vec(line).expect("journal line serializes");
        buf.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&buf).map_err(|e| Error::io(&self.path, e))?;
        if sync {
            f.sync_data().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Records (durably) that an upload is about to store these blocks.
    pub(crate) fn begin(&self, upload: &Upload) -> Result<()> {
        self.append(&Line::Begin(upload.clone()), true)
    }

    /// Records that an upload finished (on chain, or its blocks removed). Not synced: if
    /// it is lost, the next start asks the chain.
    pub(crate) fn done(&self, manifest: &str) {
        if let Err(e) = self.append(
            &Line::Done {
                manifest: manifest.to_owned(),
            },
            false,
        ) {
            tracing::warn!(error = %e, "upload journal");
        }
    }

    /// Rewrites the journal with only `open` uploads (at start, after collection).
    pub(crate) fn compact(&self, open: &[Upload]) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut body = Vec::new();
        for u in open {
            body.extend(serde_json::to_vec(&Line::Begin(u.clone())).expect("serializes"));
            body.push(b'\n');
        }
        let write = || -> std::io::Result<File> {
            let mut f = File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            OpenOptions::new().append(true).open(&self.path)
        };
        let file = write().map_err(|e| Error::io(&self.path, e))?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = file;
        Ok(())
    }
}
