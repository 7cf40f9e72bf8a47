//! The records service: upload, read, grant, revoke, break-glass and the access log, over a
//! [`Registry`] (the contract), [`Node`]s (storage + custodians) and the [`AccountStore`].
//!
//! Upload: validate the FHIR bundle → seal with a fresh key and disperse k-of-n
//! ([`ehr_crypto::dispersal::disperse`]) → wrap key share `i` to custodian `i` → store fragment `i` on
//! node `i` and the manifest on every node → `addRecord(manifest digest)` signed by the
//! patient.
//! Read: `logAccess(record, nonce)` signed by the reader → an EIP-712 [`ShareRequest`] to
//! every custodian → k shares (each checked against the manifest) → k good fragments (each
//! checked against its CID; a bad node is named in the log) → open → validate again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use ehr_chain::contract::EhrRegistryErrors as CE;
use ehr_chain::{AccessStatus, ChainInfo, NodeSet, Registry, RegistryExt};
use ehr_crypto::dispersal::{self, KeyShare};
use ehr_crypto::wrap::{self, Wrapped};
use ehr_primitives::Threshold;
use ehr_store::{Cid, raw_cid};
use futures::future::join_all;
use rand_chacha10::ChaCha20Rng;
use rand_chacha10::rand_core::SeedableRng;
use serde::Serialize;

use crate::accounts::{AccountInfo, AccountStore, Role, Session, Token};
use crate::fhir::{self, RecordForm};
use crate::journal::{Journal, Upload};
use crate::manifest::{self, RecordManifest};
use crate::node::{self, CUSTODIAN_AAD, MAX_REQUEST_TTL, Node, NodeError, ShareRequest};
use crate::reasons::ReasonLog;
use crate::{Error, Result};

/// How long a node may take to answer before it counts as unreachable.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh CSPRNG seeded from the operating system.
pub(crate) fn rng() -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random source works");
    ChaCha20Rng::from_seed(seed)
}

/// A read nonce: 224 random bits above the version read, so the access log can say
/// which version each read was for and custodians can check the request matches it.
pub(crate) fn read_nonce(version: u32) -> U256 {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes[..28]).expect("the OS random source works");
    bytes[28..].copy_from_slice(&version.to_be_bytes());
    U256::from_be_bytes(bytes)
}

/// The version a read nonce names.
pub(crate) fn nonce_version(nonce: U256) -> u32 {
    let b = nonce.to_be_bytes::<32>();
    u32::from_be_bytes([b[28], b[29], b[30], b[31]])
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A newly registered patient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PatientAccount {
    /// Login name.
    pub username: String,
    /// Ethereum address.
    pub address: Address,
    /// The sequential patient id the contract gave (the seed's "patient ID").
    pub patient_id: u64,
}

/// What an upload or update stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// The record id.
    pub record_id: u64,
    /// The version stored.
    pub version: u32,
    /// The manifest's CID: the record version's "hash code".
    pub manifest_cid: String,
    /// The `addRecord`/`updateRecord` transaction.
    pub tx_hash: B256,
    /// The block it was mined in.
    pub block_number: u64,
}

/// One version of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Version number.
    pub version: u32,
    /// Its manifest's CID.
    pub manifest_cid: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// The transaction that stored it.
    pub tx_hash: B256,
}

/// A patient's record with its versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordSummary {
    /// The record id.
    pub record_id: u64,
    /// The current version.
    pub version: u32,
    /// Unix seconds of the last change.
    pub updated_at: u64,
    /// Every version, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// A record as read.
#[derive(Clone, Serialize)]
pub struct ReadRecord {
    /// The record id.
    pub record_id: u64,
    /// The version read.
    pub version: u32,
    /// The owner's address.
    pub owner: Address,
    /// The owner's patient id.
    pub patient_id: u64,
    /// The manifest's CID.
    pub manifest_cid: String,
    /// The FHIR bundle.
    pub bundle: serde_json::Value,
    /// The seed form's fields, when the bundle has that shape.
    pub form: Option<RecordForm>,
    /// The `logAccess`/`emergencyAccess` transaction that logged this read.
    pub access_tx: B256,
    /// Whether it was a break-glass read.
    pub emergency: bool,
}

impl std::fmt::Debug for ReadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadRecord")
            .field("record_id", &self.record_id)
            .field("version", &self.version)
            .field("manifest_cid", &self.manifest_cid)
            .finish_non_exhaustive()
    }
}

/// A grant as the patient sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantView {
    /// The provider's username (when it has an account here).
    pub provider: Option<String>,
    /// The provider's address.
    pub provider_address: Address,
    /// One record, or `None` for all the patient's records.
    pub record_id: Option<u64>,
    /// Unix seconds.
    pub expires_at: u64,
    /// Unix seconds, 0 if not revoked.
    pub revoked_at: u64,
    /// Whether it allows reads now.
    pub active: bool,
}

/// One read in the patient's access log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessLogEntry {
    /// The record read.
    pub record_id: u64,
    /// The version read (from the nonce).
    pub version: Option<u32>,
    /// Who read it.
    pub reader: Address,
    /// The reader's username, when it has an account here.
    pub reader_username: Option<String>,
    /// Unix seconds.
    pub timestamp: u64,
    /// The transaction that logged it.
    pub tx_hash: B256,
    /// A break-glass read.
    pub emergency: bool,
    /// The break-glass reason, when known here.
    pub reason: Option<String>,
}

/// One node's health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// Position in the node set.
    pub index: usize,
    /// Its name (and URL when remote).
    pub name: String,
    /// Its identity address.
    pub address: Address,
    /// Its custodian key.
    pub public_key: B256,
    /// Whether it answered just now.
    pub reachable: bool,
}

/// The deployment's state.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The chain.
    pub chain: ChainInfo,
    /// Shares (and fragments) needed to read.
    pub k: u8,
    /// Nodes.
    pub n: u8,
    /// Each node.
    pub nodes: Vec<NodeStatus>,
}

/// What [`Service::new`] needs.
pub struct ServiceParts {
    /// The contract.
    pub registry: Arc<dyn Registry>,
    /// The contract's admin key (registers providers and the node set).
    pub contract_admin: PrivateKeySigner,
    /// Users.
    pub accounts: AccountStore,
    /// Storage + custodian nodes, in node-set order.
    pub nodes: Vec<Arc<dyn Node>>,
    /// Threshold for a new deployment (an existing node set on chain wins).
    pub k: u8,
    /// Where break-glass reasons are kept (they are personal data: never on chain).
    pub data_dir: PathBuf,
}

/// The SecureEHR records service. Shared by the API, the web pages and the CLI.
pub struct Service {
    registry: Arc<dyn Registry>,
    admin: PrivateKeySigner,
    accounts: AccountStore,
    nodes: Vec<Arc<dyn Node>>,
    custodians: Vec<B256>,
    threshold: Threshold,
    domain: Eip712Domain,
    reasons: ReasonLog,
    journal: Journal,
    /// Updates of one record are serialized: each seals for the version it will get.
    record_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("threshold", &self.threshold)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

async fn timed<T>(
    fut: impl std::future::Future<Output = std::result::Result<T, NodeError>>,
) -> std::result::Result<T, NodeError> {
    match tokio::time::timeout(NODE_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(NodeError::Unreachable("timed out".into())),
    }
}

/// Maps a contract refusal of a user's own transaction to what the user did wrong.
fn user_error(e: ehr_chain::Error) -> Error {
    match e.contract_error() {
        Some(CE::NotRegisteredProvider(_)) => Error::InvalidInput {
            field: "provider",
            message: "not a registered provider".into(),
        },
        Some(CE::ExpiryInPast(_)) => Error::InvalidInput {
            field: "expires_at",
            message: "must be in the future".into(),
        },
        Some(CE::UnknownRecord(e)) => Error::NotFound(format!("record {}", e.recordId)),
        Some(CE::NotRecordOwner(_)) => Error::Forbidden("only the record's owner may do this"),
        Some(CE::NotRegisteredPatient(_)) => Error::Forbidden("not a registered patient"),
        Some(CE::NoGrant(_)) => Error::NotFound("grant".into()),
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
            set
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
        let service = Self {
            domain: node::domain(info.chain_id, info.contract),
            custodians: set.nodes.iter().map(|(_, key)| *key).collect(),
            registry,
            admin: contract_admin,
            accounts,
            nodes,
            threshold,
            reasons: ReasonLog::open(&data_dir)?,
            journal,
            record_locks: Mutex::new(HashMap::new()),
        };
        let still_open = service.collect_orphans(unfinished).await?;
        service.journal.compact(&still_open)?;
        Ok(service)
    }

    /// Deletes the blocks of uploads a crash interrupted before the chain recorded them;
    /// returns those it could not finish (a node down) for the next start.
    async fn collect_orphans(&self, unfinished: Vec<Upload>) -> Result<Vec<Upload>> {
        if unfinished.is_empty() {
            return Ok(unfinished);
        }
        use alloy::sol_types::SolEvent;
        use ehr_chain::contract::EhrRegistry::RecordVersion as Ev;
        let recorded: std::collections::HashSet<B256> = self
            .registry
            .logs(&ehr_chain::LogQuery::event::<Ev>())
            .await?
            .iter()
            .filter_map(|l| Ev::decode_log_data(&l.log.data).ok().map(|e| e.digest))
            .collect();
        let mut still_open = Vec::new();
        let mut collected = 0;
        for upload in unfinished {
            let Ok(manifest) = ehr_store::parse_cid(&upload.manifest) else {
                continue;
            };
            if recorded.contains(&digest_of(&manifest)) {
                continue;
            }
            let mut cids = vec![manifest];
            cids.extend(
                upload
                    .fragments
                    .iter()
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
                collected += 1;
            } else {
                still_open.push(upload);
            }
        }
        if collected > 0 {
            tracing::info!(
                uploads = collected,
                "collected orphan blocks of interrupted uploads"
            );
        }
        Ok(still_open)
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

    // -----------------------------------------------------------------------------------
    // Accounts
    // -----------------------------------------------------------------------------------

    /// Creates the first admin (works once).
    pub fn create_admin(&self, username: &str, password: &str) -> Result<AccountInfo> {
        self.accounts.create_admin(username, password)
    }

    /// Self-service patient sign-up: the account, its key, and its on-chain patient id.
    pub async fn register_patient(&self, username: &str, password: &str) -> Result<PatientAccount> {
        let (info, signer) = self.accounts.create(username, password, Role::Patient)?;
        let patient_id = self.ensure_patient(&signer).await?;
        Ok(PatientAccount {
            username: info.username,
            address: info.address,
            patient_id,
        })
    }

    /// Registers a provider (admin only), on chain too.
    pub async fn add_provider(
        &self,
        admin: &Session,
        username: &str,
        password: &str,
    ) -> Result<AccountInfo> {
        let info = self.accounts.add_provider(admin, username, password)?;
        self.ensure_provider(info.address).await?;
        Ok(info)
    }

    /// Logs in. The user's key is unlocked for the session; a patient or provider whose
    /// on-chain registration was interrupted (a crash after the account was written) is
    /// registered now.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<(Token, Session)> {
        let (token, session) = self.accounts.login(username, password, client)?;
        match session.role {
            Role::Patient => {
                self.ensure_patient(signer(&session)?).await?;
            }
            Role::Provider => self.ensure_provider(session.address).await?,
            Role::Admin => {}
        }
        Ok((token, session))
    }

    /// The session a token belongs to.
    pub fn authenticate(&self, token: &str) -> Result<Session> {
        self.accounts.authenticate(token)
    }

    /// Ends a session.
    pub fn logout(&self, token: &str) {
        self.accounts.logout(token)
    }

    async fn ensure_patient(&self, signer: &PrivateKeySigner) -> Result<u64> {
        if let Some(id) = self.registry.patient_id(signer.address()).await? {
            return Ok(id);
        }
        self.registry
            .fund_account(&self.admin, signer.address())
            .await?;
        match self.registry.register_patient(signer).await {
            Ok((id, _)) => Ok(id),
            Err(e) if matches!(e.contract_error(), Some(CE::AlreadyRegistered(_))) => self
                .registry
                .patient_id(signer.address())
                .await?
                .ok_or(Error::Chain(e)),
            Err(e) => Err(e.into()),
        }
    }

    async fn ensure_provider(&self, address: Address) -> Result<()> {
        if !self.registry.is_provider(address).await? {
            self.registry.fund_account(&self.admin, address).await?;
            match self.registry.register_provider(&self.admin, address).await {
                Ok(_) => {}
                Err(e) if matches!(e.contract_error(), Some(CE::AlreadyRegistered(_))) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Every provider with an account here.
    pub fn providers(&self) -> Vec<AccountInfo> {
        self.accounts
            .list()
            .into_iter()
            .filter(|a| a.role == Role::Provider)
            .collect()
    }

    /// The session patient's on-chain id.
    pub async fn patient_id(&self, session: &Session) -> Result<Option<u64>> {
        Ok(self.registry.patient_id(session.address).await?)
    }

    fn username_of(&self) -> HashMap<Address, String> {
        self.accounts
            .list()
            .into_iter()
            .map(|a| (a.address, a.username))
            .collect()
    }

    fn provider_address(&self, username: &str) -> Result<Address> {
        let not_provider = || Error::InvalidInput {
            field: "provider",
            message: "no such provider".into(),
        };
        let user = crate::accounts::normalize_username(username).map_err(|_| not_provider())?;
        match self.accounts.get(&user) {
            Some(a) if a.role == Role::Provider => Ok(a.address),
            _ => Err(not_provider()),
        }
    }

    // -----------------------------------------------------------------------------------
    // Upload
    // -----------------------------------------------------------------------------------

    /// Stores a new record from a FHIR bundle (JSON), for the session's patient.
    pub async fn put_record(&self, session: &Session, bundle_json: &[u8]) -> Result<Stored> {
        let bundle = fhir::parse(bundle_json)?;
        self.store_new(session, bundle.to_json_vec()).await
    }

    /// Stores a new record from the seed's web form.
    pub async fn put_form(&self, session: &Session, form: &RecordForm) -> Result<Stored> {
        let bundle = form.to_bundle(fhir::Date::today_utc())?;
        self.store_new(session, bundle.to_json_vec()).await
    }

    /// Stores a new version of one of the session patient's records.
    pub async fn update_record(
        &self,
        session: &Session,
        record_id: u64,
        bundle_json: &[u8],
    ) -> Result<Stored> {
        let bundle = fhir::parse(bundle_json)?;
        self.store_version(session, record_id, bundle.to_json_vec())
            .await
    }

    /// Stores a new version from the web form.
    pub async fn update_form(
        &self,
        session: &Session,
        record_id: u64,
        form: &RecordForm,
    ) -> Result<Stored> {
        let bundle = form.to_bundle(fhir::Date::today_utc())?;
        self.store_version(session, record_id, bundle.to_json_vec())
            .await
    }

    fn patient_signer<'s>(&self, session: &'s Session) -> Result<&'s PrivateKeySigner> {
        if session.role != Role::Patient {
            return Err(Error::Forbidden("only patients store records"));
        }
        signer(session)
    }

    async fn store_new(&self, session: &Session, plaintext: Vec<u8>) -> Result<Stored> {
        let signer = self.patient_signer(session)?;
        let mut uid = B256::ZERO;
        getrandom::fill(&mut uid.0).expect("the OS random source works");
        let (manifest, blocks) = self.seal(signer.address(), uid, 1, plaintext)?;
        let cid = self.store_blocks(&manifest, &blocks).await?;
        let codec = manifest::CODEC;
        match self
            .registry
            .add_record(signer, digest_of(&cid), codec)
            .await
        {
            Ok((record_id, receipt)) => {
                self.journal.done(&cid.to_string());
                Ok(Stored {
                    record_id,
                    version: 1,
                    manifest_cid: cid.to_string(),
                    tx_hash: receipt.tx_hash,
                    block_number: receipt.block_number,
                })
            }
            Err(e) => {
                self.discard_blocks(&manifest, &blocks).await;
                Err(user_error(e))
            }
        }
    }

    async fn store_version(
        &self,
        session: &Session,
        record_id: u64,
        plaintext: Vec<u8>,
    ) -> Result<Stored> {
        let signer = self.patient_signer(session)?;
        let lock = {
            let mut locks = self.record_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(record_id).or_default().clone()
        };
        let _guard = lock.lock().await;
        let versions = self.registry.record_versions(record_id).await?;
        let Some(first) = versions.first() else {
            return Err(Error::NotFound(format!("record {record_id}")));
        };
        let record = self.registry.record(record_id).await?;
        if record.owner != signer.address() {
            return Err(Error::Forbidden("only the record's owner may do this"));
        }
        // The uid comes from version 1's manifest.
        let first_manifest = self.fetch_manifest(first.digest, first.codec).await?;
        let version = record.version + 1;
        let (manifest, blocks) =
            self.seal(signer.address(), first_manifest.uid, version, plaintext)?;
        let cid = self.store_blocks(&manifest, &blocks).await?;
        match self
            .registry
            .update_record(signer, record_id, digest_of(&cid), manifest::CODEC)
            .await
        {
            Ok((v, receipt)) if v == version => {
                self.journal.done(&cid.to_string());
                Ok(Stored {
                    record_id,
                    version,
                    manifest_cid: cid.to_string(),
                    tx_hash: receipt.tx_hash,
                    block_number: receipt.block_number,
                })
            }
            Ok((v, _)) => Err(Error::Manifest(format!(
                "record {record_id} got version {v}, expected {version}"
            ))),
            Err(e) => {
                self.discard_blocks(&manifest, &blocks).await;
                Err(user_error(e))
            }
        }
    }

    /// Seals and disperses; returns the manifest and its block plus the fragments.
    fn seal(
        &self,
        patient: Address,
        uid: B256,
        version: u32,
        plaintext: Vec<u8>,
    ) -> Result<(RecordManifest, Blocks)> {
        let mut rng = rng();
        let ctx = ehr_crypto::RecordContext {
            patient: patient.0.0,
            record_id: uid.0,
            version,
        };
        let dispersed = dispersal::disperse(self.threshold, &ctx, plaintext, &mut rng)?;
        let wrapped_shares = dispersed
            .key_shares
            .iter()
            .zip(&self.custodians)
            .map(|(share, key)| {
                wrap::wrap_key_share(
                    &wrap::PublicKey(key.0),
                    &ctx,
                    share,
                    CUSTODIAN_AAD,
                    &mut rng,
                )
            })
            .collect::<std::result::Result<Vec<Wrapped>, _>>()?;
        let manifest = RecordManifest {
            format: manifest::FORMAT,
            patient,
            uid,
            version,
            created_at: unix_now(),
            custodians: self.custodians.clone(),
            wrapped_shares,
            dispersal: dispersed.manifest,
        };
        let fragments = dispersed.fragments.to_vecs();
        let manifest_block = manifest.encode();
        Ok((
            manifest,
            Blocks {
                manifest: manifest_block,
                fragments,
            },
        ))
    }

    /// Fragment `i` to node `i`, the manifest to every node. Succeeds when every node
    /// took its fragment and the manifest, or — with some nodes down — when at least
    /// `k + 1` did (so one more loss is still survivable); otherwise removes what was
    /// stored and fails.
    async fn store_blocks(&self, manifest: &RecordManifest, blocks: &Blocks) -> Result<Cid> {
        let manifest_cid = raw_cid(&blocks.manifest);
        self.journal.begin(&Upload {
            manifest: manifest_cid.to_string(),
            fragments: (0..blocks.fragments.len())
                .map(|i| manifest.fragment_cid(i).to_string())
                .collect(),
        })?;
        let results = join_all(self.nodes.iter().enumerate().map(|(i, node)| {
            let frag_cid = manifest.fragment_cid(i);
            let frag = &blocks.fragments[i];
            let manifest_block = &blocks.manifest;
            async move {
                timed(node.put_block(&frag_cid, frag)).await?;
                timed(node.put_block(&manifest_cid, manifest_block)).await
            }
        }))
        .await;
        let stored = results.iter().filter(|r| r.is_ok()).count();
        let quorum = (self.threshold.k() + 1).min(self.threshold.n());
        for (node, r) in self.nodes.iter().zip(&results) {
            if let Err(e) = r {
                tracing::warn!(node = node.name(), error = %e, "storing a fragment failed");
            }
        }
        if stored < quorum {
            self.discard_blocks(manifest, blocks).await;
            return Err(Error::NodesUnavailable {
                reachable: stored,
                needed: quorum,
            });
        }
        Ok(manifest_cid)
    }

    /// Best-effort removal of an upload that did not make it on chain. What a crash
    /// leaves behind is an orphan that [`collect_orphans`](Self::collect_orphans) removes.
    async fn discard_blocks(&self, manifest: &RecordManifest, blocks: &Blocks) {
        let manifest_cid = raw_cid(&blocks.manifest);
        join_all(self.nodes.iter().enumerate().map(|(i, node)| {
            let frag_cid = manifest.fragment_cid(i);
            async move {
                let _ = timed(node.delete_block(&frag_cid)).await;
                let _ = timed(node.delete_block(&manifest_cid)).await;
            }
        }))
        .await;
        self.journal.done(&manifest_cid.to_string());
    }

    // -----------------------------------------------------------------------------------
    // Read
    // -----------------------------------------------------------------------------------

    async fn fetch_manifest(&self, digest: B256, codec: u64) -> Result<RecordManifest> {
        let cid = manifest::manifest_cid(digest, codec)?;
        let block = self.fetch_block(&cid).await?;
        RecordManifest::decode(&block)
    }

    /// A block from the first node that has it intact (each answer is re-hashed).
    async fn fetch_block(&self, cid: &Cid) -> Result<Vec<u8>> {
        let mut reachable = 0;
        for node in &self.nodes {
            match timed(node.get_block(cid)).await {
                Ok(data) if ehr_store::verify(cid, &data, None).is_ok() => return Ok(data),
                Ok(_) => {
                    reachable += 1;
                    tracing::warn!(node = node.name(), %cid, "node served a corrupt block");
                }
                Err(NodeError::NotFound(_)) => reachable += 1,
                Err(e) => tracing::warn!(node = node.name(), error = %e, "node unreachable"),
            }
        }
        if reachable == 0 {
            return Err(Error::NodesUnavailable {
                reachable: 0,
                needed: 1,
            });
        }
        Err(Error::NotFound(format!("block {cid}")))
    }

    /// Any block by CID (for the trustless gateway: blocks are ciphertext or manifests).
    pub async fn block(&self, cid: &str) -> Result<Vec<u8>> {
        let cid = ehr_store::parse_cid(cid).map_err(|e| Error::InvalidInput {
            field: "cid",
            message: e.to_string(),
        })?;
        self.fetch_block(&cid).await
    }

    /// Reads a record (the current version, or `version`), logging the access on chain
    /// first. The owner may read their own records; a provider needs a live grant.
    pub async fn read_record(
        &self,
        session: &Session,
        record_id: u64,
        version: Option<u32>,
    ) -> Result<ReadRecord> {
        let signer = signer(session)?;
        let versions = self.registry.record_versions(record_id).await?;
        let v = match version {
            None => versions.last(),
            Some(want) => versions.iter().find(|v| v.version == want),
        }
        .ok_or_else(|| match version {
            Some(want) if !versions.is_empty() => {
                Error::NotFound(format!("version {want} of record {record_id}"))
            }
            _ => Error::NotFound(format!("record {record_id}")),
        })?
        .clone();
        let nonce = read_nonce(v.version);
        let receipt = match self.registry.log_access(signer, record_id, nonce).await {
            Ok(r) => r,
            Err(e) if e.contract_error().is_some() => {
                let (reason, _) = self
                    .registry
                    .access_status(signer.address(), record_id)
                    .await?;
                return Err(Error::AccessDenied { record_id, reason });
            }
            Err(e) => return Err(e.into()),
        };
        self.open_version(signer, record_id, &v, nonce, receipt.tx_hash, false)
            .await
    }

    /// Rebuilds a logged read: shares from custodians, fragments from storage, open.
    async fn open_version(
        &self,
        signer: &PrivateKeySigner,
        record_id: u64,
        v: &ehr_chain::RecordVersion,
        nonce: U256,
        access_tx: B256,
        emergency: bool,
    ) -> Result<ReadRecord> {
        let manifest = self.fetch_manifest(v.digest, v.codec).await?;
        if manifest.patient != v.owner || manifest.version != v.version {
            return Err(Error::Manifest(format!(
                "manifest of record {record_id} version {} does not match the chain",
                v.version
            )));
        }
        let ctx = manifest.context();
        let k = self.threshold.k().min(usize::from(manifest.dispersal.k));
        let m_n = usize::from(manifest.dispersal.n);

        // Key shares: ask every custodian at once; keep the first k that check out.
        let (reader_secret, reader_public) = wrap::generate_keypair(&mut rng());
        let request = ShareRequest::sign(
            signer,
            &self.domain,
            record_id,
            v.version,
            nonce,
            unix_now() + MAX_REQUEST_TTL / 2,
            &reader_public,
        )
        .map_err(|source| Error::Node {
            node: "reader".into(),
            source,
        })?;
        let aad = request.response_aad(&self.domain);
        // Ask k custodians; only if some fail, ask the others.
        let mut answers: Vec<Option<std::result::Result<node::ShareResponse, NodeError>>> =
            (0..m_n.min(self.nodes.len())).map(|_| None).collect();
        let first: Vec<usize> = (0..answers.len()).take(k).collect();
        for (i, a) in join_all(
            first
                .iter()
                .map(|&i| timed(self.nodes[i].release_share(&request))),
        )
        .await
        .into_iter()
        .enumerate()
        {
            answers[first[i]] = Some(a);
        }
        if answers.iter().flatten().filter(|a| a.is_ok()).count() < k {
            let rest: Vec<usize> = (k..answers.len()).collect();
            for (i, a) in join_all(
                rest.iter()
                    .map(|&i| timed(self.nodes[i].release_share(&request))),
            )
            .await
            .into_iter()
            .enumerate()
            {
                answers[rest[i]] = Some(a);
            }
        }
        let mut shares: Vec<KeyShare> = Vec::new();
        let mut refused = None;
        for (i, (node, answer)) in self
            .nodes
            .iter()
            .zip(answers)
            .enumerate()
            .filter_map(|(i, (n, a))| Some((i, (n, a?))))
        {
            match answer {
                Ok(resp) if usize::from(resp.x) == i + 1 => {
                    match wrap::unwrap_key_share(&reader_secret, &ctx, resp.x, &aad, &resp.wrapped)
                    {
                        Ok(share)
                            if manifest.dispersal.key_share_digests[i]
                                == dispersal::key_share_digest(share.x, &share.share) =>
                        {
                            shares.push(share)
                        }
                        _ => tracing::warn!(node = node.name(), "node returned a bad key share"),
                    }
                }
                Ok(_) => tracing::warn!(node = node.name(), "node returned a misnumbered share"),
                Err(e) => {
                    tracing::warn!(node = node.name(), error = %e, "node gave no key share");
                    if e.is_refusal() {
                        refused = Some(e);
                    }
                }
            }
        }
        if shares.len() < k {
            if let Some(NodeError::Denied) = refused {
                let (reason, _) = self
                    .registry
                    .access_status(signer.address(), record_id)
                    .await?;
                return Err(Error::AccessDenied { record_id, reason });
            }
            return Err(Error::NodesUnavailable {
                reachable: shares.len(),
                needed: k,
            });
        }
        let (key, _) = dispersal::recover_key(&manifest.dispersal, &shares)?;

        // Fragments: the k originals first (no decoding needed), then recovery ones.
        let mut fragments: Vec<Option<Vec<u8>>> = vec![None; m_n];
        let mut good = 0;
        let mut next = 0;
        while good < k && next < m_n {
            let batch: Vec<usize> = (next..m_n).take(k - good).collect();
            next += batch.len();
            let got = join_all(batch.iter().map(|&i| {
                let cid = manifest.fragment_cid(i);
                let node = &self.nodes[i];
                async move { (i, timed(node.get_block(&cid)).await) }
            }))
            .await;
            for (i, r) in got {
                match r {
                    Ok(data) if dispersal::fragment_ok(&manifest.dispersal, i, &data) => {
                        fragments[i] = Some(data);
                        good += 1;
                    }
                    Ok(_) => tracing::warn!(
                        node = self.nodes[i].name(),
                        fragment = i,
                        "node served a corrupt fragment; using another"
                    ),
                    Err(e) => tracing::warn!(
                        node = self.nodes[i].name(),
                        fragment = i,
                        error = %e,
                        "fragment unavailable; using another"
                    ),
                }
            }
        }
        if good < k {
            return Err(Error::NodesUnavailable {
                reachable: good,
                needed: k,
            });
        }
        let refs: Vec<Option<&[u8]>> = fragments.iter().map(|f| f.as_deref()).collect();
        let (sealed, _) = dispersal::rebuild_ciphertext(&manifest.dispersal, &refs)?;
        let plaintext = ehr_crypto::seal::open(&key, &ctx, sealed)?;
        let bundle = fhir::parse(&plaintext)?;
        let patient_id = self.registry.patient_id(v.owner).await?.unwrap_or(0);
        Ok(ReadRecord {
            record_id,
            version: v.version,
            owner: v.owner,
            patient_id,
            manifest_cid: manifest::manifest_cid(v.digest, v.codec)?.to_string(),
            form: RecordForm::from_bundle(&bundle),
            bundle: serde_json::to_value(&bundle).map_err(|e| Error::Manifest(e.to_string()))?,
            access_tx,
            emergency,
        })
    }

    /// A provider reads every record of patient `patient_id` it may read now; each read
    /// is logged. [`Error::AccessDenied`] when there is none.
    pub async fn patient_records(
        &self,
        session: &Session,
        patient_id: u64,
    ) -> Result<Vec<ReadRecord>> {
        signer(session)?;
        let owner = self
            .registry
            .patient_address(patient_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("patient {patient_id}")))?;
        let ids = self.registry.records_of(owner).await?;
        let mut allowed = Vec::new();
        let mut reason = AccessStatus::NoGrant;
        for id in ids.iter().copied() {
            match self.registry.access_status(session.address, id).await?.0 {
                AccessStatus::Allowed => allowed.push(id),
                other => reason = other,
            }
        }
        if allowed.is_empty() {
            return Err(Error::AccessDenied {
                record_id: ids.first().copied().unwrap_or(0),
                reason,
            });
        }
        let reads = join_all(
            allowed
                .iter()
                .map(|&id| self.read_record(session, id, None)),
        )
        .await;
        reads.into_iter().collect()
    }

    // -----------------------------------------------------------------------------------
    // Sharing
    // -----------------------------------------------------------------------------------

    /// Grants `provider` access to one record or (None) all the patient's records until
    /// `expires_at` (unix seconds).
    pub async fn grant(
        &self,
        session: &Session,
        provider: &str,
        record_id: Option<u64>,
        expires_at: u64,
    ) -> Result<B256> {
        let signer = self.patient_signer(session)?;
        let provider = self.provider_address(provider)?;
        if let Some(id) = record_id {
            self.check_owner(signer.address(), id).await?;
        }
        if expires_at <= unix_now() {
            return Err(Error::InvalidInput {
                field: "expires_at",
                message: "must be in the future".into(),
            });
        }
        let receipt = self
            .registry
            .grant_access(signer, provider, record_id, expires_at)
            .await
            .map_err(user_error)?;
        Ok(receipt.tx_hash)
    }

    /// Revokes a grant; it stops working at once.
    pub async fn revoke(
        &self,
        session: &Session,
        provider: &str,
        record_id: Option<u64>,
    ) -> Result<B256> {
        let signer = self.patient_signer(session)?;
        let provider = self.provider_address(provider)?;
        let receipt = self
            .registry
            .revoke_access(signer, provider, record_id)
            .await
            .map_err(user_error)?;
        Ok(receipt.tx_hash)
    }

    async fn check_owner(&self, patient: Address, record_id: u64) -> Result<()> {
        let owner = self.registry.record(record_id).await.ok().map(|r| r.owner);
        match owner {
            Some(o) if o == patient => Ok(()),
            _ => Err(Error::InvalidInput {
                field: "record_id",
                message: "not one of your records".into(),
            }),
        }
    }

    /// The session patient's grants, current state.
    pub async fn grants(&self, session: &Session) -> Result<Vec<GrantView>> {
        self.patient_signer(session)?;
        let names = self.username_of();
        let now = unix_now();
        let mut out = Vec::new();
        for (provider, record_id) in self.registry.grants_of(session.address).await? {
            let g = self
                .registry
                .grant(session.address, provider, record_id)
                .await?;
            out.push(GrantView {
                provider: names.get(&provider).cloned(),
                provider_address: provider,
                record_id,
                expires_at: g.expires_at,
                revoked_at: g.revoked_at,
                active: g.revoked_at == 0 && g.expires_at > now,
            });
        }
        Ok(out)
    }

    /// Break-glass: a provider opens every record of `patient_id` for the contract's
    /// emergency window, giving a reason the patient will see. Reads them at once.
    pub async fn emergency_access(
        &self,
        session: &Session,
        patient_id: u64,
        reason: &str,
    ) -> Result<Vec<ReadRecord>> {
        let signer = signer(session)?;
        if session.role != Role::Provider {
            return Err(Error::Forbidden("only providers may use emergency access"));
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(Error::InvalidInput {
                field: "reason",
                message: "required, at most 1,000 characters".into(),
            });
        }
        if reason
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(Error::InvalidInput {
                field: "reason",
                message: "contains control characters".into(),
            });
        }
        let owner = self
            .registry
            .patient_address(patient_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("patient {patient_id}")))?;
        let ids = self.registry.records_of(owner).await?;
        if ids.is_empty() {
            return Err(Error::NotFound(format!("records of patient {patient_id}")));
        }
        // The reason is kept here (salted digest on chain), before anything is opened.
        let digest = self.reasons.add(session.address, owner, reason)?;
        let mut out = Vec::new();
        for id in ids {
            let versions = self.registry.record_versions(id).await?;
            let Some(v) = versions.last().cloned() else {
                continue;
            };
            let nonce = read_nonce(v.version);
            let receipt = self
                .registry
                .emergency_access(signer, id, digest, nonce)
                .await
                .map_err(user_error)?;
            out.push(
                self.open_version(signer, id, &v, nonce, receipt.tx_hash, true)
                    .await?,
            );
        }
        Ok(out)
    }

    /// The session patient's records with their versions.
    pub async fn my_records(&self, session: &Session) -> Result<Vec<RecordSummary>> {
        self.patient_signer(session)?;
        let mut out = Vec::new();
        for id in self.registry.records_of(session.address).await? {
            let versions = self.registry.record_versions(id).await?;
            let Some(last) = versions.last() else {
                continue;
            };
            out.push(RecordSummary {
                record_id: id,
                version: last.version,
                updated_at: last.timestamp,
                versions: versions
                    .iter()
                    .map(|v| {
                        Ok(VersionInfo {
                            version: v.version,
                            manifest_cid: manifest::manifest_cid(v.digest, v.codec)?.to_string(),
                            timestamp: v.timestamp,
                            tx_hash: v.tx_hash,
                        })
                    })
                    .collect::<Result<_>>()?,
            });
        }
        out.sort_by_key(|r| r.record_id);
        Ok(out)
    }

    /// Who read the session patient's records, newest first, with every break-glass
    /// access marked and its reason.
    pub async fn access_log(&self, session: &Session) -> Result<Vec<AccessLogEntry>> {
        self.patient_signer(session)?;
        let names = self.username_of();
        let emergencies = self.registry.emergency_log(session.address).await?;
        let mut out = Vec::new();
        for id in self.registry.records_of(session.address).await? {
            for e in self.registry.access_log(id, None, None).await? {
                let emergency = emergencies.iter().find(|x| x.tx_hash == e.tx_hash);
                out.push(AccessLogEntry {
                    record_id: e.record_id,
                    version: Some(nonce_version(e.nonce)).filter(|v| *v != 0),
                    reader: e.reader,
                    reader_username: names.get(&e.reader).cloned(),
                    timestamp: e.timestamp,
                    tx_hash: e.tx_hash,
                    emergency: emergency.is_some(),
                    reason: emergency.and_then(|x| self.reasons.get(x.reason_digest)),
                });
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse((e.timestamp, e.record_id)));
        Ok(out)
    }

    /// Chain and node health.
    pub async fn status(&self) -> Result<Status> {
        let chain = self.registry.info().await?;
        let infos = join_all(self.nodes.iter().map(|n| timed(n.info()))).await;
        let nodes = self
            .nodes
            .iter()
            .zip(infos)
            .enumerate()
            .map(|(i, (node, info))| NodeStatus {
                index: i,
                name: node.name().to_owned(),
                address: info.as_ref().map(|x| x.address).unwrap_or_default(),
                public_key: self.custodians[i],
                reachable: info.is_ok_and(|x| x.public_key == self.custodians[i]),
            })
            .collect();
        Ok(Status {
            chain,
            k: self.threshold.k() as u8,
            n: self.threshold.n() as u8,
            nodes,
        })
    }
}

/// A sealed upload's blocks.
struct Blocks {
    manifest: Vec<u8>,
    fragments: Vec<Vec<u8>>,
}

fn digest_of(cid: &Cid) -> B256 {
    B256::from_slice(cid.hash().digest())
}

fn signer(session: &Session) -> Result<&PrivateKeySigner> {
    session.signer().ok_or(Error::Unauthenticated)
}

/// A salted digest of a break-glass reason (the chain sees only this).
pub(crate) fn reason_digest(salt: &[u8; 16], reason: &str) -> B256 {
    let mut buf = Vec::with_capacity(16 + reason.len());
    buf.extend_from_slice(salt);
    buf.extend_from_slice(reason.as_bytes());
    keccak256(&buf)
}
