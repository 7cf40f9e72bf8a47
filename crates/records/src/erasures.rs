//! The erasure journal: a patient's erasure is finished on every node, even one that is
//! down when the account is deleted.
//!
//! Before the chain is asked to erase a patient's records, every record's id, versions and
//! manifest blocks are appended here and synced ("begin"): once the chain has erased them, a
//! node can tell which blocks are the records' only from their manifests, and the nodes that
//! keep the manifests delete them. Each node's confirmation of each record follows
//! ("confirmed"), and once every node has confirmed every record, a "done" line. An entry
//! still open is retried by [`Service::settle_erasures`](crate::Service::settle_erasures),
//! which `serve` runs at start and periodically; an entry whose records the chain never
//! erased (a crash before the transaction) is closed without touching any node. Done
//! entries are dropped from the file when it is opened.
//!
//! Manifests are public blocks (fragment links and digests, the node-set epoch, links to
//! the custodians' share blocks; no key share and no personal data), so keeping them here
//! until the last node confirms reveals nothing a node did not already hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use alloy::primitives::{Address, Bytes};
use ehr_fs_util::JsonlLog;
use serde::{Deserialize, Serialize};

use crate::Result;

const FILE: &str = "erasures.jsonl";

/// One record to erase on the nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingRecord {
    pub record_id: u64,
    pub versions: Vec<u32>,
    /// Each version's manifest block.
    pub manifests: Vec<Bytes>,
}

/// One patient's erasure, as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingErasure {
    pub patient: Address,
    pub records: Vec<PendingRecord>,
    /// The number of nodes (node-set order) every record goes to.
    pub nodes: usize,
    /// (node index, record id) pairs confirmed so far.
    #[serde(default)]
    pub confirmed: BTreeSet<(usize, u64)>,
}

impl PendingErasure {
    /// The (node, record) pairs still to confirm.
    pub(crate) fn outstanding(&self) -> Vec<(usize, u64)> {
        (0..self.nodes)
            .flat_map(|i| self.records.iter().map(move |r| (i, r.record_id)))
            .filter(|pair| !self.confirmed.contains(pair))
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Line {
    Begin(PendingErasure),
    Confirmed {
        patient: Address,
        node: usize,
        record_id: u64,
    },
    Done {
        patient: Address,
    },
}

pub(crate) struct ErasureJournal {
    log: JsonlLog,
}

impl ErasureJournal {
    /// Opens the journal in `dir`, drops finished entries, returns the open ones.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Vec<PendingErasure>)> {
        let (log, lines) = JsonlLog::open::<Line>(&dir.join(FILE))?;
        let had = lines.len();
        let mut open: BTreeMap<Address, PendingErasure> = BTreeMap::new();
        for line in lines {
            match line {
                Line::Begin(e) => {
                    open.insert(e.patient, e);
                }
                Line::Confirmed {
                    patient,
                    node,
                    record_id,
                } => {
                    if let Some(e) = open.get_mut(&patient) {
                        e.confirmed.insert((node, record_id));
                    }
                }
                Line::Done { patient } => {
                    open.remove(&patient);
                }
            }
        }
        let open: Vec<PendingErasure> = open.into_values().collect();
        let journal = Self { log };
        if had > open.len() {
            journal.compact(&open)?;
        }
        Ok((journal, open))
    }

    /// Records (durably) the records about to be erased and their manifests.
    pub(crate) fn begin(&self, e: &PendingErasure) -> Result<()> {
        Ok(self.log.append(&Line::Begin(e.clone()), true)?)
    }

    /// Records that `node` destroyed `record_id`'s blocks (durably: a receipt says so).
    pub(crate) fn confirmed(&self, patient: Address, node: usize, record_id: u64) -> Result<()> {
        let line = Line::Confirmed {
            patient,
            node,
            record_id,
        };
        Ok(self.log.append(&line, true)?)
    }

    /// Records that an erasure is finished on every node (or was never on chain).
    pub(crate) fn done(&self, patient: Address) -> Result<()> {
        Ok(self.log.append(&Line::Done { patient }, true)?)
    }

    fn compact(&self, open: &[PendingErasure]) -> Result<()> {
        let lines: Vec<Line> = open.iter().cloned().map(Line::Begin).collect();
        Ok(self.log.rewrite(&lines)?)
    }
}
