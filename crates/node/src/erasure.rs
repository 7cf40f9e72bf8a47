//! Erasure on a node: destroying an erased record's blocks and this custodian's key shares.
//!
//! A patient who leaves erases their records on chain (`eraseAccount`, a `RecordErased`
//! each). The chain is the authority: a node destroys a record's blocks only once the chain
//! says the record is erased, whoever asks. What it cannot tell alone is *which* of its
//! blocks are the record's: fragments and share blocks carry no record id, and a manifest
//! (which links them) is kept by only `n − k + 1` nodes. So an [`EraseOrder`] carries every
//! version's manifest block; the node checks each against the digests the chain recorded
//! for that record, then deletes every block the manifests link that it holds (its
//! fragments, its share blocks, a re-issued share block its share index names) and the
//! manifests it keeps. Deleting a share block destroys this custodian's share: the key
//! shares exist nowhere else (the manifests hold only their digests).
//!
//! A node that was down when the account was deleted catches up before it serves again
//! ([`LocalNode::catch_up_erasures`], run by `secure-ehr node` at start): it reads every
//! `RecordErased` on chain, erases at once the records whose manifests it keeps, and for the
//! rest refuses to serve blocks and shares ([`NodeError::Erasing`]) until the server's
//! erasure journal delivers their orders.
//!
//! The records erased here are kept in `<node dir>/erased.jsonl` (a record id a line,
//! appended and synced after the deletes): a restart does not erase them again. A crash before the line is written leaves the record to erase
//! again, which deletes what is left and nothing more.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use alloy::primitives::Bytes;
use ehr_chain::{Erasure, RegistryExt};
use ehr_fs_util::JsonlLog;
use ehr_store::Cid;
use serde::{Deserialize, Serialize};

use crate::manifest;
use crate::*;

/// The file of records this node erased, in its directory.
pub const ERASED_FILE: &str = "erased.jsonl";

/// The body of `POST /node/erase`: destroy record `record_id`'s blocks here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseOrder {
    /// The record (erased on chain).
    pub record_id: u64,
    /// Every version's manifest block, each checked against the chain's digest for it. A
    /// version may be left out when this node keeps its manifest itself.
    pub manifests: Vec<Bytes>,
}

/// What a node destroyed for one [`EraseOrder`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseReport {
    /// The record.
    pub record_id: u64,
    /// Its versions (every one the chain recorded).
    pub versions: Vec<u32>,
    /// Blocks this node deleted now (none when it had erased the record before).
    pub blocks_deleted: u32,
}

/// What [`LocalNode::catch_up_erasures`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Records erased now from the manifests this node keeps.
    pub erased: Vec<u64>,
    /// Records whose orders it waits for (it serves no block or share until they come).
    pub waiting: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    record: u64,
}

/// A node's erasure state: the records it erased, and those it waits to erase.
#[derive(Default)]
pub(crate) struct Erasures {
    log: Option<JsonlLog>,
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    done: HashSet<u64>,
    waiting: HashSet<u64>,
}

impl Erasures {
    /// Opens (or creates) `erased.jsonl` in the node's directory `dir`.
    pub(crate) fn open(dir: &Path) -> crate::Result<Self> {
        let (log, entries) = JsonlLog::open::<Entry>(&dir.join(ERASED_FILE))?;
        Ok(Self {
            log: Some(log),
            inner: Mutex::new(State {
                done: entries.into_iter().map(|e| e.record).collect(),
                waiting: HashSet::new(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`NodeError::Erasing`] while records wait for their orders.
    pub(crate) fn gate(&self) -> Result<(), NodeError> {
        let waiting = self.state().waiting.len();
        if waiting == 0 {
            Ok(())
        } else {
            Err(NodeError::Erasing(format!(
                "{waiting} erased record(s) wait for their erase orders before this node serves"
            )))
        }
    }

    fn is_done(&self, record: u64) -> bool {
        self.state().done.contains(&record)
    }

    /// Records `record` as erased here (a line in the log the first time only: an order
    /// sent again, or a catch-up and an order crossing, deletes what is left, if anything).
    fn mark_done(&self, record: u64) -> Result<(), NodeError> {
        if self.is_done(record) {
            self.state().waiting.remove(&record);
            return Ok(());
        }
        if let Some(log) = &self.log {
            log.append(&Entry { record }, true)
                .map_err(|e| NodeError::Internal(e.to_string()))?;
        }
        let mut s = self.state();
        s.done.insert(record);
        s.waiting.remove(&record);
        Ok(())
    }
}

fn internal(e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(e.to_string())
}

impl LocalNode {
    /// Destroys record `order.record_id`'s blocks on this node (see the module docs):
    /// refused unless the chain says the record is erased and every manifest given is one
    /// of its versions'; nothing is deleted unless every version's manifest is at hand.
    pub async fn erase(&self, order: &EraseOrder) -> Result<EraseReport, NodeError> {
        let Some(registry) = self.registry() else {
            return Err(NodeError::BadRequest(
                "this node runs without a chain and erases nothing".into(),
            ));
        };
        let id = order.record_id;
        if !registry.is_erased(id).await.map_err(internal)? {
            return Err(NodeError::BadRequest(format!(
                "record {id} is not erased on chain"
            )));
        }
        // Every version's manifest CID, as the chain recorded it.
        let mut versions: HashMap<Cid, u32> = HashMap::new();
        for v in registry.record_versions(id).await.map_err(internal)? {
            versions.insert(
                manifest::manifest_cid(v.digest, v.codec).map_err(internal)?,
                v.version,
            );
        }
        let mut given: HashMap<Cid, &[u8]> = HashMap::new();
        for block in &order.manifests {
            let found = versions
                .keys()
                .find(|cid| ehr_store::verify(cid, block, None).is_ok())
                .ok_or_else(|| {
                    NodeError::BadRequest(format!(
                        "a manifest sent is not one of record {id}'s versions"
                    ))
                })?;
            given.insert(*found, block);
        }
        let mut manifests = Vec::with_capacity(versions.len());
        let mut missing = Vec::new();
        for (cid, version) in &versions {
            let supplied = given.get(cid).copied();
            match crate::custodian::manifest_from(self.store.as_ref(), cid, supplied).await {
                Ok(m) => manifests.push((*cid, m)),
                Err(NodeError::NotFound(_)) => missing.push(*version),
                Err(e) => return Err(e),
            }
        }
        let mut all: Vec<u32> = versions.values().copied().collect();
        all.sort_unstable();
        if !missing.is_empty() {
            missing.sort_unstable();
            return Err(NodeError::BadRequest(format!(
                "record {id}: the manifests of versions {missing:?} are missing (this node keeps none of them)"
            )));
        }
        let mut deleted = 0u32;
        for (cid, m) in &manifests {
            let mut doomed = m.links();
            // An attachment's fragment file here: its tree nodes and leaves too.
            for root in m.attachments.iter().flat_map(|a| &a.roots) {
                if root.codec() == ehr_store::cids::DAG_PB
                    && self.store.has(root).await.map_err(internal)?
                {
                    let store = &self.store;
                    match ehr_store::unixfs::file_blocks(
                        root,
                        ehr_crypto::stream::MAX_SEGMENTS as usize,
                        |c| async move { store.get(&c).await },
                    )
                    .await
                    {
                        Ok(file) => {
                            doomed.extend(file.nodes.into_iter().skip(1).chain(file.leaves))
                        }
                        // A tree this node holds only part of (it failed during the
                        // upload): what it cannot walk it cannot name.
                        Err(e) => tracing::warn!(node = %self.name, %root, error = %e,
                            "an attachment's file here is incomplete; erasing what it names"),
                    }
                }
            }
            if let Some((_, block)) = self.share_index.as_ref().and_then(|i| i.get(cid)) {
                doomed.push(block);
            }
            doomed.push(*cid);
            for block in doomed {
                if self.store.has(&block).await.map_err(internal)? {
                    match self.store.delete(&block).await {
                        Ok(()) => deleted += 1,
                        Err(ehr_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(internal(e)),
                    }
                }
            }
            if let Some(c) = self.custodian() {
                c.forget(cid);
            }
        }
        self.erasures.mark_done(id)?;
        tracing::info!(node = %self.name, record = id, blocks = deleted, "erased a record's blocks");
        Ok(EraseReport {
            record_id: id,
            versions: all,
            blocks_deleted: deleted,
        })
    }

    /// Catches up with the erasures on chain (run before serving, after being away): each
    /// erased record not erased here yet is erased now if this node keeps all its
    /// manifests; the others wait for their orders, and until they come the node serves no
    /// block and no share ([`NodeError::Erasing`]).
    pub async fn catch_up_erasures(&self) -> Result<CatchUp, NodeError> {
        let Some(registry) = self.registry() else {
            return Ok(CatchUp::default());
        };
        let mut out = CatchUp::default();
        for e in registry.erased_since(0).await.map_err(internal)? {
            if self.erasures.is_done(e.record_id) {
                continue;
            }
            let order = EraseOrder {
                record_id: e.record_id,
                manifests: Vec::new(),
            };
            match self.erase(&order).await {
                Ok(_) => out.erased.push(e.record_id),
                Err(NodeError::BadRequest(_)) => {
                    self.erasures.state().waiting.insert(e.record_id);
                    out.waiting.push(e.record_id);
                }
                Err(other) => return Err(other),
            }
        }
        Ok(out)
    }
}
