//! What the service answers with: plain data, `Serialize`, no secrets. `Debug` of a read
//! record leaves out its contents.

use alloy::primitives::{Address, B256};
use ehr_chain::ChainInfo;
use ehr_fhir::RecordForm;
use serde::Serialize;

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
    /// Where what this write brought begins among the stored bundle's entries: 0 for a
    /// whole bundle, the previous version's entry count for resources added to a record.
    pub added_from: usize,
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
    /// Who wrote it (the chain's `RecordVersion.author`): the owner, or a provider.
    pub author: Address,
    /// The provider's name when a provider wrote it (`None`: the owner itself).
    pub author_name: Option<String>,
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
    /// Unix seconds when revoked, if it was.
    pub revoked_at: Option<u64>,
    /// Whether the grant allows reads now (a break-glass window aside).
    pub active: bool,
    /// The break-glass window open now on this record, if any (record scopes only).
    pub emergency: Option<EmergencyWindow>,
    /// Writing, granted apart with its own expiry and revocation, if it ever was.
    pub write: Option<WriteView>,
}

/// A write grant: the provider may add versions (and, on all records, new records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WriteView {
    /// Unix seconds when writing ends.
    pub expires_at: u64,
    /// Unix seconds when revoked, if it was.
    pub revoked_at: Option<u64>,
    /// Whether it allows writing now.
    pub active: bool,
}

/// A grant the provider holds now: "shared with me".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharedView {
    /// The patient's ID (what the provider enters to read).
    pub patient_id: u64,
    /// One record, or `None` for all the patient's records.
    pub record_id: Option<u64>,
    /// Unix seconds when it ends.
    pub expires_at: u64,
    /// When the provider may also write there (a live write grant on the same scope),
    /// the unix seconds when writing ends.
    pub write_until: Option<u64>,
}

/// A break-glass window open now: a provider opened a record without a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmergencyWindow {
    /// Unix seconds when it ends by itself.
    pub until: u64,
    /// The reason the provider gave, when known here.
    pub reason: Option<String>,
    /// The `emergencyAccess` transaction that opened it.
    pub tx_hash: B256,
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
    /// The reader's username: its account here, or its entry in the network's directory.
    pub reader_username: Option<String>,
    /// The reader's organisation, for a provider of another organisation registered now
    /// (`None`: this server's own provider, the patient itself, or not a provider now).
    pub reader_organisation: Option<String>,
    /// Unix seconds.
    pub timestamp: u64,
    /// The transaction that logged it.
    pub tx_hash: B256,
    /// A break-glass read.
    pub emergency: bool,
    /// The break-glass reason, when known here.
    pub reason: Option<String>,
}

/// What happened since the patient's last visit ([`Service::since_last_visit`](crate::Service::since_last_visit)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SinceLastVisit {
    /// The last visit (unix seconds); `None`: this is the first.
    pub since: Option<u64>,
    /// Reads of the patient's records by others since then, newest first (break-glass
    /// ones marked, with their reasons).
    pub reads: Vec<AccessLogEntry>,
    /// Active grants ending soon, soonest first.
    pub expiring: Vec<GrantView>,
}

impl SinceLastVisit {
    /// Nothing to tell.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty() && self.expiring.is_empty()
    }
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
