//! The upload journal: how orphan blocks are found and collected — and never collected
//! while the chain may still record them.
//!
//! Before an upload stores any block, its manifest, fragment and share-block CIDs are appended here and
//! synced ("begin"). Once the record's transaction is signed, and before the chain sees it,
//! its hash, sender and nonce follow, synced ("sent"). Once the chain has decided, a "done"
//! line follows: the record is on chain (the blocks stay), or the transaction provably
//! never will be — it reverted, or the sender's nonce moved past it — and the blocks were
//! removed. A transaction not mined in time leaves the entry open, blocks kept:
//! [`Service::settle_uploads`](crate::Service::settle_uploads) and every start ask the
//! chain again, by hash, until it decides. An entry without a "sent" line never reached
//! the chain, so its blocks are collected at the next start. An attachment's upload is an
//! entry named by a token, not a manifest, that grows a segment at a time ("blocks", each
//! line synced before its blocks are stored); once the record version holding it is
//! journaled with those blocks, the token's entry is done. A record is visible only once
//! the chain has it, so a crash never shows a half-stored record either.

use std::collections::BTreeMap;
use std::path::Path;

use ehr_chain::SentTx;
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
    /// Share-block CIDs, share `i` on node `i` alone (none in entries of manifest format 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<String>,
    /// The record's transaction, once signed: the chain's answer about it decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<SentTx>,
    /// Written by a version that journals the transaction before sending it, so an entry
    /// without `tx` never reached the chain. (Older entries are checked by their digest.)
    #[serde(default)]
    pub notes_tx: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Line {
    Begin(Upload),
    Sent {
        manifest: String,
        tx: SentTx,
    },
    /// More blocks of an open entry, about to be stored (an attachment's, a segment at a
    /// time).
    Blocks {
        manifest: String,
        cids: Vec<String>,
    },
    Done {
        manifest: String,
    },
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
                Line::Sent { manifest, tx } => {
                    if let Some(u) = open.get_mut(&manifest) {
                        u.tx = Some(tx);
                    }
                }
                Line::Blocks { manifest, cids } => {
                    if let Some(u) = open.get_mut(&manifest) {
                        u.fragments.extend(cids);
                    }
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

    /// Records (durably) the upload's transaction, before it is handed to the chain.
    pub(crate) fn sent(&self, manifest: &str, tx: &SentTx) -> Result<()> {
        let line = Line::Sent {
            manifest: manifest.to_owned(),
            tx: *tx,
        };
        Ok(self.log.append(&line, true)?)
    }

    /// Records (durably) more blocks of the open entry `manifest`, before they are stored.
    pub(crate) fn blocks(&self, manifest: &str, cids: Vec<String>) -> Result<()> {
        let line = Line::Blocks {
            manifest: manifest.to_owned(),
            cids,
        };
        Ok(self.log.append(&line, true)?)
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
