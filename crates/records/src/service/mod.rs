//! The SecureEHR records service: upload, read, sharing, break-glass and the access log,
//! over a [`Registry`] (the contract), [`Node`]s (storage + custodians) and the
//! [`AccountStore`]. One file per job; operations take the role's typed session
//! ([`crate::session`]), so no operation checks a role itself.

mod accounts;
mod archive;
mod attach;
mod audit;
mod directory;
mod erase;
mod offers;
mod read;
mod sharing;
mod status;
mod upload;
mod write;

pub use archive::{ArchiveBodies, ChainSource};
pub use attach::{AttachmentDownload, AttachmentInput, AttachmentStored};
pub use audit::EXPIRY_NOTICE;
pub use directory::{CONSORTIUM, DirectoryEntry, PROFILE_FORMAT, ProfileInput, ProviderProfile};
pub use erase::{ErasedRecordView, ErasureReceipt, NodeErasure};
pub use offers::{OFFER_TTL, OfferView};
pub use status::STATUS_TTL;
pub use write::PROVIDER_SYSTEM;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use ehr_accounts::AccountStore;
use ehr_chain::contract::EhrRegistryErrors as CE;
use ehr_chain::{EmbeddedChain, NodeSet, Registry, RegistryExt};
use ehr_node::{Node, NodeError};
use ehr_primitives::Threshold;
use ehr_store::Cid;
use futures::future::join_all;

use crate::erasures::{ErasureJournal, PendingErasure};
use crate::journal::{Journal, Upload};
use crate::reasons::ReasonLog;
use crate::{Error, OfferRefusal, Result};

/// The latest time the contract stores (its times are 40-bit unix seconds).
pub const MAX_TIME: u64 = (1 << 40) - 1;

/// How long a node may take to answer before it counts as unreachable.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`Service::new`] needs.
pub struct ServiceParts {
    /// The contract.
    pub registry: Arc<dyn Registry>,
    /// The contract admin's key, or an organisation's registrar key: registers and
    /// deregisters this server's providers, pays their gas top-ups; only the admin's puts a
    /// new deployment's node set on chain.
    pub contract_admin: PrivateKeySigner,
    /// Users.
    pub accounts: AccountStore,
    /// Storage + custodian nodes, in node-set order.
    pub nodes: Vec<Arc<dyn Node>>,
    /// Threshold for a new deployment (an existing node set on chain wins).
    pub k: u8,
    /// Where break-glass reasons are kept (they are personal data: never on chain).
    pub data_dir: std::path::PathBuf,
}

/// The SecureEHR records service. Shared by the API, the web pages and the CLI.
pub struct Service {
    registry: Arc<dyn Registry>,
    admin: PrivateKeySigner,
    accounts: Arc<AccountStore>,
    /// Logins and sign-ups waiting for a key-derivation slot (see [`Service::kdf`]).
    kdf: Arc<tokio::sync::Semaphore>,
    nodes: Vec<Arc<dyn Node>>,
    custodians: Vec<B256>,
    /// The chain's `nodeSetEpoch` of `custodians`: manifests reference the keys by it.
    node_set_epoch: u32,
    threshold: Threshold,
    domain: Eip712Domain,
    reasons: Arc<ReasonLog>,
    journal: Journal,
    /// Uploads whose transaction the chain has not decided yet (blocks kept; see
    /// [`settle_uploads`](Self::settle_uploads)).
    pending_uploads: Mutex<Vec<Upload>>,
    /// The erasure journal ([`crate::erasures`]) and the erasures some node has not
    /// confirmed yet; held while an erasure runs.
    erasures: ErasureJournal,
    pending_erasures: tokio::sync::Mutex<Vec<PendingErasure>>,
    /// Updates of one record are serialized: each seals for the version it will get.
    record_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// The last [`Service::status`] and when it was taken (see [`Service::status_cached`]).
    status_cache: status::Cache,
    /// The chain itself when it is the embedded one (`registry` is the same chain).
    embedded: Option<Arc<EmbeddedChain>>,
    /// The data directory (the archive's progress lives in it).
    data_dir: std::path::PathBuf,
    /// The ledger archive, once [`start_archive`](Self::start_archive) started it.
    archiver: Mutex<Option<ehr_ledger::ArchiverHandle>>,
    /// Provider directory entries fetched and checked.
    profiles: directory::ProfileCache,
    /// What may be attached ([`crate::attachments`]).
    attachment_policy: crate::attachments::AttachmentPolicy,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("threshold", &self.threshold)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

pub(crate) async fn timed<T>(
    fut: impl std::future::Future<Output = std::result::Result<T, NodeError>>,
) -> std::result::Result<T, NodeError> {
    match tokio::time::timeout(NODE_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(NodeError::Unreachable("timed out".into())),
    }
}

/// Maps a contract refusal of a user's own transaction to what the user did wrong.
pub(crate) fn user_error(e: ehr_chain::Error) -> Error {
    match e.contract_error() {
        Some(CE::NotRegisteredProvider(_)) => Error::InvalidInput {
            field: "provider",
            message: "not a registered provider".into(),
        },
        Some(CE::ExpiryInPast(_)) => Error::InvalidInput {
            field: "expires_at",
            message: "must be in the future".into(),
        },
        Some(CE::TimeOutOfRange(_)) => Error::InvalidInput {
            field: "expires_at",
            message: format!("must be at most {} (unix seconds)", MAX_TIME),
        },
        Some(CE::UnknownRecord(e)) => Error::NotFound(format!("record {}", e.recordId)),
        Some(CE::RecordIsErased(e)) => Error::Erased(format!("record {}", e.recordId)),
        Some(CE::PatientIsErased(_)) => Error::Erased("every record of this patient".into()),
        Some(CE::NotRecordOwner(_)) => Error::Forbidden("only the record's owner may do this"),
        Some(CE::NotRegisteredPatient(_)) => Error::Forbidden("not a registered patient"),
        Some(CE::NoGrant(_)) => Error::NotFound("grant".into()),
        Some(CE::NoWriteGrant(_) | CE::WriteGrantExpired(_) | CE::WriteGrantRevoked(_)) => {
            Error::Forbidden("the patient's write grant does not allow this (any more)")
        }
        Some(CE::OfferExpired(_)) => Error::Offer(OfferRefusal::Expired),
        Some(CE::OfferUsed(_)) => Error::Offer(OfferRefusal::Used),
        Some(CE::BadOfferSignature(_)) => Error::Offer(OfferRefusal::Forged),
        Some(CE::ZeroReason(_)) => Error::InvalidInput {
            field: "reason",
            message: "required".into(),
        },
        _ => Error::Chain(e),
    }
}

impl Service {
    /// Wires the parts; on a new deployment, registers the node set on chain.
    ///
    /// Every node must answer at first start (their keys go on chain); later, nodes that
    /// answer must still have the key the chain lists for them.
    pub async fn new(parts: ServiceParts) -> Result<Self> {
        let ServiceParts {
            registry,
            contract_admin,
            accounts,
            nodes,
            k,
            data_dir,
        } = parts;
        let n = nodes.len();
        let infos = join_all(nodes.iter().map(|node| timed(node.info()))).await;
        let on_chain = registry.node_set().await?;
        let set = if on_chain.nodes.is_empty() {
            // An organisation's server runs with its registrar key: the node set is the
            // consortium admin's to set, for everyone.
            if registry.admin().await? != contract_admin.address() {
                return Err(Error::InvalidInput {
                    field: "nodes",
                    message: "the chain has no node set yet, and this server's key is not the \
                              contract admin's: the consortium admin sets it with `secure-ehr \
                              chain set-nodes`"
                        .into(),
                });
            }
            let mut keyed = Vec::with_capacity(n);
            for (node, info) in nodes.iter().zip(&infos) {
                let info = info.clone().map_err(|source| Error::Node {
                    node: node.name().to_owned(),
                    source,
                })?;
                keyed.push((info.address, info.public_key));
            }
            let set = NodeSet {
                k,
                nodes: keyed,
                epoch: 0,
            };
            Threshold::new(usize::from(k), n).map_err(|e| Error::InvalidInput {
                field: "k",
                message: e.to_string(),
            })?;
            registry.set_node_set(&contract_admin, &set).await?;
            // The contract numbers the set: manifests reference it by that epoch.
            registry.node_set().await?
        } else {
            if on_chain.nodes.len() != n {
                return Err(Error::InvalidInput {
                    field: "nodes",
                    message: format!(
                        "{n} nodes configured, but the chain's node set has {}",
                        on_chain.nodes.len()
                    ),
                });
            }
            for (i, (node, info)) in nodes.iter().zip(&infos).enumerate() {
                if let Ok(info) = info
                    && info.public_key != on_chain.nodes[i].1
                {
                    return Err(Error::InvalidInput {
                        field: "nodes",
                        message: format!(
                            "{} has not the key the chain's node set lists at position {}",
                            node.name(),
                            i + 1
                        ),
                    });
                }
            }
            on_chain
        };
        let threshold = Threshold::new(usize::from(set.k), n).map_err(|e| Error::InvalidInput {
            field: "k",
            message: e.to_string(),
        })?;
        let info = registry.info().await?;
        let (journal, unfinished) = Journal::open(&data_dir)?;
        let (erasures, open_erasures) = ErasureJournal::open(&data_dir)?;
        let service = Self {
            domain: ehr_node::domain(info.chain_id, info.contract),
            custodians: set.nodes.iter().map(|(_, key)| *key).collect(),
            node_set_epoch: set.epoch,
            registry,
            admin: contract_admin,
            accounts: Arc::new(accounts),
            kdf: Arc::new(tokio::sync::Semaphore::new(ehr_accounts::kdf_slots())),
            nodes,
            threshold,
            reasons: Arc::new(ReasonLog::open(&data_dir)?),
            journal,
            erasures,
            pending_erasures: tokio::sync::Mutex::new(open_erasures),
            pending_uploads: Mutex::new(Vec::new()),
            record_locks: Mutex::new(HashMap::new()),
            status_cache: status::Cache::default(),
            embedded: None,
            data_dir,
            archiver: Mutex::new(None),
            profiles: Default::default(),
            attachment_policy: Default::default(),
        };
        let still_open = service.collect_orphans(unfinished).await?;
        service.journal.compact(&still_open)?;
        *service.pending() = still_open;
        // Nodes that were down when an account was deleted erase it now, if they are back.
        match service.settle_erasures().await {
            Ok(0) => {}
            Ok(open) => tracing::warn!(open, "erasures some node has still to confirm"),
            Err(e) => tracing::warn!(error = %e, "retrying erasures"),
        }
        Ok(service)
    }

    /// Keeps `chain`, the embedded chain this service's registry is, so the server can
    /// offer it over Ethereum JSON-RPC (`serve --rpc`).
    pub fn with_embedded_chain(mut self, chain: Arc<EmbeddedChain>) -> Self {
        self.embedded = Some(chain);
        self
    }

    /// The embedded chain, when the service runs on one (see
    /// [`with_embedded_chain`](Self::with_embedded_chain)); `None` on a JSON-RPC chain.
    pub fn embedded_chain(&self) -> Option<Arc<EmbeddedChain>> {
        self.embedded.clone()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Upload>> {
        self.pending_uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the chain again about uploads whose transaction was not mined in time: a mined
    /// one is finished (its blocks stay), a provably dropped one has its blocks collected,
    /// the rest stay pending. Returns how many are still pending. `serve` calls it
    /// periodically; every start does the same.
    pub async fn settle_uploads(&self) -> Result<usize> {
        let open = std::mem::take(&mut *self.pending());
        let still_open = self.collect_orphans(open).await?;
        let mut pending = self.pending();
        pending.extend(still_open);
        Ok(pending.len())
    }

    /// Settles unfinished uploads by what the chain says of their transaction: mined →
    /// finished, blocks kept; reverted or provably dropped (or never sent) → blocks deleted;
    /// pending or unknown → left open. Returns those left open (pending, or a node down).
    pub(super) async fn collect_orphans(&self, unfinished: Vec<Upload>) -> Result<Vec<Upload>> {
        use ehr_chain::TxStatus;
        if unfinished.is_empty() {
            return Ok(unfinished);
        }
        // Entries of an older version carry no transaction: the chain's records decide.
        let mut legacy_recorded: Option<std::collections::HashSet<B256>> = None;
        let mut still_open = Vec::new();
        let (mut collected, mut finished) = (0, 0);
        for upload in unfinished {
            // An attachment's entry is named by a token: its blocks were never on chain.
            let manifest = ehr_store::parse_cid(&upload.manifest).ok();
            let on_chain = match (&upload.tx, upload.notes_tx) {
                _ if manifest.is_none() => false,
                (Some(tx), _) => match self.registry.tx_status(tx).await {
                    Ok(TxStatus::Mined { success, .. }) => success,
                    Ok(TxStatus::Dropped) => false,
                    Ok(TxStatus::Pending) => {
                        still_open.push(upload);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, tx = %tx.hash, "asking the chain about an upload");
                        still_open.push(upload);
                        continue;
                    }
                },
                // Journaled before sending: no transaction, never sent.
                (None, true) => false,
                (None, false) => {
                    if legacy_recorded.is_none() {
                        legacy_recorded = Some(self.recorded_digests().await?);
                    }
                    legacy_recorded
                        .as_ref()
                        .is_some_and(|r| manifest.is_some_and(|m| r.contains(&digest_of(&m))))
                }
            };
            if on_chain {
                self.journal.done(&upload.manifest);
                finished += 1;
                continue;
            }
            let mut cids: Vec<Cid> = manifest.into_iter().collect();
            cids.extend(
                upload
                    .fragments
                    .iter()
                    .chain(&upload.shares)
                    .filter_map(|c| ehr_store::parse_cid(c).ok()),
            );
            let mut all_gone = true;
            for node in &self.nodes {
                for cid in &cids {
                    if timed(node.delete_block(cid)).await.is_err() {
                        all_gone = false;
                    }
                }
            }
            if all_gone {
                self.journal.done(&upload.manifest);
                collected += 1;
            } else {
                still_open.push(upload);
            }
        }
        if collected + finished > 0 {
            tracing::info!(
                collected,
                finished,
                pending = still_open.len(),
                "settled unfinished uploads"
            );
        }
        Ok(still_open)
    }

    /// Every manifest digest the chain has recorded (for journal entries without a
    /// transaction, from before the journal kept one).
    async fn recorded_digests(&self) -> Result<std::collections::HashSet<B256>> {
        use alloy::sol_types::SolEvent;
        use ehr_chain::contract::EhrRegistry::RecordVersion as Ev;
        Ok(self
            .registry
            .logs(&ehr_chain::LogQuery::event::<Ev>())
            .await?
            .iter()
            .filter_map(|l| Ev::decode_log_data(&l.log.data).ok().map(|e| e.digest))
            .collect())
    }

    /// Runs `f` — an account operation that derives keys (login, sign-up: about a second of
    /// Argon2id and scrypt each) — on the blocking pool, at most
    /// [`ehr_accounts::kdf_slots`] at once; the rest wait here without holding a thread.
    /// The async workers keep serving everything else meanwhile.
    pub(crate) async fn kdf<T: Send + 'static>(
        &self,
        f: impl FnOnce(&AccountStore) -> ehr_accounts::Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .kdf
            .acquire()
            .await
            .expect("the KDF semaphore is never closed");
        let store = Arc::clone(&self.accounts);
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => Ok(r?),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// The accounts (login throttling, sessions, keystore export).
    pub fn accounts(&self) -> &AccountStore {
        &self.accounts
    }

    /// The contract.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// The nodes, in node-set order.
    pub fn nodes(&self) -> &[Arc<dyn Node>] {
        &self.nodes
    }

    /// k-of-n.
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }
}

pub(crate) fn digest_of(cid: &Cid) -> B256 {
    B256::from_slice(cid.hash().digest())
}
