//! Leaving: a patient deletes their account by destroying keys. The chain erases every
//! record (`eraseAccount`: reads are refused from then on, the access log stays); every
//! node deletes the records' blocks and its key shares ([`ehr_node::erasure`]); the
//! account row, with its keystores, goes last. The erasure journal
//! ([`crate::erasures`]) finishes the nodes that were down.

use alloy::primitives::{Address, B256};
use ehr_chain::{Erasure, RegistryExt};
use ehr_node::EraseOrder;
use zeroize::Zeroizing;

use super::*;
use crate::erasures::{PendingErasure, PendingRecord};
use crate::session::*;
use crate::{Error, Result};

impl Service {
    /// Deletes the patient's account (see the module docs) once `password` is checked as a
    /// login checks it. Returns the receipt: the records and versions erased, and which
    /// nodes confirmed (a node that did not will when it is back; `serve` keeps asking).
    /// Bad input (a wrong password) changes nothing; so does a node set too broken to give
    /// every manifest.
    pub async fn delete_account(
        &self,
        session: &PatientSession,
        password: &str,
        client: &str,
    ) -> Result<ErasureReceipt> {
        let s = session.session().clone();
        let password = Zeroizing::new(password.to_owned());
        let client = client.to_owned();
        let signer = self.kdf(move |a| a.signer(&s, &password, &client)).await?;
        if signer.address() != session.address() {
            return Err(Error::Unauthenticated);
        }
        let patient = session.address();
        let mut pending = self.pending_erasures.lock().await;

        // The manifests first: once the chain has erased the records, only they say which
        // blocks are the records'. A patient erased before (a crash after the chain's
        // erasure) has them in the journal already.
        let entry = match pending.iter().position(|e| e.patient == patient) {
            Some(i) => pending.remove(i),
            None => {
                let entry = PendingErasure {
                    patient,
                    records: self.records_to_erase(patient).await?,
                    nodes: self.nodes.len(),
                    confirmed: Default::default(),
                };
                self.erasures.begin(&entry)?;
                entry
            }
        };
        let chain = if self.registry.patient_id(patient).await?.is_some() {
            let (_, receipt) = self
                .registry
                .erase_account(session.signer())
                .await
                .map_err(user_error)?;
            Some((receipt.tx_hash, receipt.block_number))
        } else {
            None
        };
        let (entry, nodes) = self.erase_on_nodes(entry).await;
        if !entry.outstanding().is_empty() {
            pending.push(entry.clone());
        }
        drop(pending);

        let username = session.session().username.clone();
        self.accounts.remove_patient(&username)?;
        tracing::info!(
            records = entry.records.len(),
            nodes_confirmed = nodes.iter().filter(|n| n.confirmed).count(),
            "a patient account was deleted and its records erased"
        );
        Ok(ErasureReceipt {
            records: entry
                .records
                .iter()
                .map(|r| ErasedRecordView {
                    record_id: r.record_id,
                    versions: r.versions.clone(),
                })
                .collect(),
            nodes,
            tx_hash: chain.map(|c| c.0),
            block_number: chain.map(|c| c.1),
        })
    }

    /// Every record of `patient` with each version's manifest block (from its holders):
    /// [`Error::NodesUnavailable`] if one cannot be had, before anything changes.
    async fn records_to_erase(&self, patient: Address) -> Result<Vec<PendingRecord>> {
        let mut records = Vec::new();
        for record_id in self.registry.records_of(patient).await? {
            let versions = self.registry.record_versions(record_id).await?;
            let mut manifests = Vec::with_capacity(versions.len());
            for v in &versions {
                let (_, block) = self.fetch_manifest_block(v.digest, v.codec).await?;
                manifests.push(block.into());
            }
            records.push(PendingRecord {
                record_id,
                versions: versions.iter().map(|v| v.version).collect(),
                manifests,
            });
        }
        Ok(records)
    }

    /// Sends every outstanding (node, record) order, journals each confirmation and, when
    /// none is left, the entry's end. Returns the entry as it stands and what each node did.
    async fn erase_on_nodes(
        &self,
        mut entry: PendingErasure,
    ) -> (PendingErasure, Vec<NodeErasure>) {
        let outstanding = entry.outstanding();
        let orders = outstanding.iter().map(|&(i, record_id)| {
            let record = entry.records.iter().find(|r| r.record_id == record_id);
            let order = EraseOrder {
                record_id,
                manifests: record.map(|r| r.manifests.clone()).unwrap_or_default(),
            };
            let node = self.nodes.get(i).cloned();
            async move {
                let result = match node {
                    Some(node) => timed(node.erase(&order)).await,
                    None => Err(NodeError::NotFound(format!("node {}", i + 1))),
                };
                (i, record_id, result)
            }
        });
        let mut blocks = vec![0u32; self.nodes.len()];
        let mut errors: Vec<Option<String>> = vec![None; self.nodes.len()];
        for (i, record_id, result) in join_all(orders).await {
            match result {
                Ok(report) => match self.erasures.confirmed(entry.patient, i, record_id) {
                    Ok(()) => {
                        entry.confirmed.insert((i, record_id));
                        if let Some(b) = blocks.get_mut(i) {
                            *b += report.blocks_deleted;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "erasure journal"),
                },
                Err(e) => {
                    let name = self.nodes.get(i).map_or("node", |n| n.name());
                    tracing::warn!(node = name, record = record_id, error = %e, "erasure on a node");
                    if let Some(slot) = errors.get_mut(i) {
                        *slot = Some(e.to_string());
                    }
                }
            }
        }
        let left = entry.outstanding();
        if left.is_empty()
            && let Err(e) = self.erasures.done(entry.patient)
        {
            tracing::error!(error = %e, "erasure journal");
        }
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| NodeErasure {
                node: node.name().to_owned(),
                confirmed: left.iter().all(|&(n, _)| n != i),
                blocks_deleted: blocks[i],
                error: errors[i].clone(),
            })
            .collect();
        (entry, nodes)
    }

    /// Retries the erasures some node has not confirmed (`serve` runs it at start and
    /// periodically). An entry whose records the chain never erased — the server stopped
    /// between journaling and the transaction — is closed: the account still exists.
    /// Returns how many erasures are still open.
    pub async fn settle_erasures(&self) -> Result<usize> {
        let mut pending = self.pending_erasures.lock().await;
        let mut still_open = Vec::new();
        let mut first_error = None;
        for entry in std::mem::take(&mut *pending) {
            // An entry is kept (to be retried) on any error: the chain or the journal being
            // unreachable for a minute must not drop an erasure some node still owes.
            let erased = match entry.records.first() {
                Some(r) => match self.registry.is_erased(r.record_id).await {
                    Ok(erased) => erased,
                    Err(e) => {
                        first_error.get_or_insert(Error::from(e));
                        still_open.push(entry);
                        continue;
                    }
                },
                None => false,
            };
            if !erased {
                if let Err(e) = self.erasures.done(entry.patient) {
                    first_error.get_or_insert(e);
                    still_open.push(entry);
                }
                continue;
            }
            let (entry, _) = self.erase_on_nodes(entry).await;
            if !entry.outstanding().is_empty() {
                still_open.push(entry);
            }
        }
        *pending = still_open;
        match first_error {
            Some(e) => Err(e),
            None => Ok(pending.len()),
        }
    }
}

/// What [`Service::delete_account`] destroyed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ErasureReceipt {
    /// Every record erased, with its versions.
    pub records: Vec<ErasedRecordView>,
    /// Each node, in node-set order, and whether it confirmed destroying its part.
    pub nodes: Vec<NodeErasure>,
    /// The `eraseAccount` transaction (`None`: the patient had no chain identity yet).
    pub tx_hash: Option<B256>,
    /// The block it was mined in.
    pub block_number: Option<u64>,
}

/// One record in an [`ErasureReceipt`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ErasedRecordView {
    /// The record.
    pub record_id: u64,
    /// Its versions, oldest first.
    pub versions: Vec<u32>,
}

/// One node in an [`ErasureReceipt`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeErasure {
    /// The node's name.
    pub node: String,
    /// Whether it confirmed destroying every record's blocks and key shares it held.
    pub confirmed: bool,
    /// Blocks it deleted.
    pub blocks_deleted: u32,
    /// Why it did not confirm (it will be asked again until it does).
    pub error: Option<String>,
}
