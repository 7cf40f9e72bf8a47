//! A node's share index: where this node keeps its own share of a record version or a
//! ledger epoch when that share is not the block the replicated manifest (or epoch header)
//! names.
//!
//! A replaced node (`secure-ehr node replace N`) gets its key shares re-issued to its new
//! key; a re-wrapped share block has a new CID, while the manifests and epoch headers every
//! node keeps still name the old one. The index maps what names the share (a record
//! manifest's CID, or the share CID an epoch header names for this node) to this node's
//! share block and its x coordinate. The custodian consults it before the manifest's link.
//!
//! It is kept in `<node dir>/share-index.jsonl`, one entry a line, each appended and synced
//! after its share block is stored: a crash leaves at most a block no entry names (a rerun
//! stores it again) and a torn last line, which is cut off at the next open.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use ehr_fs_util::JsonlLog;
use ehr_store::Cid;
use serde::{Deserialize, Serialize};

/// The index file in a node's directory.
pub const SHARE_INDEX_FILE: &str = "share-index.jsonl";

#[derive(Serialize, Deserialize)]
struct Entry {
    /// What names the share: a manifest CID, or an epoch header's share CID.
    of: String,
    /// The share's x coordinate.
    x: u8,
    /// This node's share block.
    block: String,
}

/// The share index of one node (see the module docs). Shared between its custodian and its
/// ledger custody.
pub(crate) struct ShareIndex {
    log: JsonlLog,
    map: RwLock<HashMap<Cid, (u8, Cid)>>,
}

impl ShareIndex {
    /// Opens (or creates) the index in the node's directory `dir`.
    pub(crate) fn open(dir: &Path) -> crate::Result<Self> {
        let (log, entries) = JsonlLog::open::<Entry>(&dir.join(SHARE_INDEX_FILE))?;
        let mut map = HashMap::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let (Ok(of), Ok(block)) = (ehr_store::parse_cid(&e.of), ehr_store::parse_cid(&e.block))
            else {
                // Every line is one entry (the log skips none but empty ones).
                return Err(crate::Error::File(ehr_fs_util::Error::CorruptLog {
                    path: log.path().to_path_buf(),
                    line: i + 1,
                }));
            };
            map.insert(of, (e.x, block));
        }
        Ok(Self {
            log,
            map: RwLock::new(map),
        })
    }

    /// This node's share block for `of` and its x, if the index has one.
    pub(crate) fn get(&self, of: &Cid) -> Option<(u8, Cid)> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(of)
            .copied()
    }

    /// Records that share `x` named by `of` is in `block` (on disk when this returns).
    pub(crate) fn insert(&self, of: Cid, x: u8, block: Cid) -> crate::Result<()> {
        let entry = Entry {
            of: of.to_string(),
            x,
            block: block.to_string(),
        };
        self.log.append(&entry, true)?;
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(of, (x, block));
        Ok(())
    }
}
