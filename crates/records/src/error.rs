//! The crate's one error type; the layers below keep their own and are wrapped here.
//!
//! Messages name what was wrong and never carry secrets or record contents: no passwords,
//! no tokens, no personal data, and no hint of *why* a decryption failed.

use ehr_fhir::ValidationErrors;
use ehr_node::NodeError;

/// Everything that can go wrong in `ehr-records`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record failed FHIR validation; the list names each field's path and the rule broken.
    #[error("invalid record: {0}")]
    InvalidRecord(#[from] ValidationErrors),

    /// The ledger archive (sealing, dispersing, restoring) failed.
    #[error("ledger archive: {0}")]
    Archive(#[from] ehr_ledger::Error),

    /// Accounts, sessions or keystores refused or failed.
    #[error(transparent)]
    Accounts(#[from] ehr_accounts::Error),

    /// A session without an unlocked key (never made by a login).
    #[error("invalid or expired session token")]
    Unauthenticated,

    /// The session's role may not do this, or the contract says it is not the caller's to do.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),

    /// A request field is invalid (not record content: those are
    /// [`InvalidRecord`](Self::InvalidRecord)).
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong (never the value).
        message: String,
    },

    /// An attachment larger than the limit (413).
    #[error("the file is larger than the {max}-byte limit")]
    AttachmentTooLarge {
        /// The limit, in bytes.
        max: u64,
    },

    /// A byte range of an attachment that does not exist (416).
    #[error("no byte of the range asked for is in the {size}-byte file")]
    RangeNotSatisfiable {
        /// The file's size.
        size: u64,
    },

    /// No such thing (record, version, patient, provider, attachment).
    #[error("not found: {0}")]
    NotFound(String),

    /// The record — or every record of the patient asked for — was erased with its
    /// owner's account: nobody reads it again (the access log stays).
    #[error("erased: {0} was erased with its owner's account")]
    Erased(String),

    /// A grant offer (share by code) that is refused: forged, used or past its deadline.
    #[error("{0}")]
    Offer(OfferRefusal),

    /// The contract does not allow this read.
    #[error("access denied to record {record_id}: {}", access_reason(*reason))]
    AccessDenied {
        /// The record.
        record_id: u64,
        /// Why, as the contract says.
        reason: ehr_chain::AccessStatus,
    },

    /// The contract does not let this provider write there now (or there is no such
    /// patient or record: one answer, so that ids cannot be probed).
    #[error("write denied: {} of patient {patient_id}: {}", write_scope(*record_id), access_reason(*reason))]
    WriteDenied {
        /// The patient id asked for.
        patient_id: u64,
        /// The record (`None`: adding a new record).
        record_id: Option<u64>,
        /// Why, as the contract says.
        reason: ehr_chain::AccessStatus,
    },

    /// A provider may read no record of this patient now, or there is no such patient: one
    /// answer for both, so that patient ids cannot be probed.
    #[error("no record of patient {patient_id} is open to you")]
    NoAccessToPatient {
        /// The patient id asked for.
        patient_id: u64,
    },

    /// Too few nodes answered to rebuild a record.
    #[error("{reachable} of the {needed} needed nodes reachable")]
    NodesUnavailable {
        /// Nodes that answered usefully.
        reachable: usize,
        /// Nodes needed (the threshold k, or the write quorum).
        needed: usize,
    },

    /// A manifest that does not describe the record version the chain names.
    #[error(
        "bad manifest: manifest of record {record_id} version {version} does not match the chain"
    )]
    ManifestMismatch {
        /// The record.
        record_id: u64,
        /// The version the chain names.
        version: u32,
    },

    /// The chain gave an update another version than the one it was sealed for.
    #[error("record {record_id} got version {got}, expected {expected}")]
    VersionRace {
        /// The record.
        record_id: u64,
        /// The version the chain assigned.
        got: u32,
        /// The version sealed.
        expected: u32,
    },

    /// The record's transaction was sent but the chain has not mined it yet. Its blocks are
    /// kept until the chain decides; if it is mined, the record appears in the list.
    #[error(
        "the chain has not mined transaction {tx_hash} yet: the record appears once it is; \
         do not upload it again before checking your records"
    )]
    UploadPending {
        /// The record's transaction.
        tx_hash: alloy::primitives::B256,
    },

    /// Paying a new account's gas would exceed this hour's funding budget (JSON-RPC chains
    /// that charge gas): sign-ups wait until it frees up.
    #[error(
        "sign-ups are paused: this hour's budget for paying new accounts' gas is spent; \
         retry in {} s",
        retry_after.as_secs().max(1)
    )]
    FundingBudgetSpent {
        /// How long until the budget has room again.
        retry_after: std::time::Duration,
    },

    /// The chain failed or refused in a way the caller could not have prevented.
    #[error("chain: {0}")]
    Chain(#[from] ehr_chain::Error),

    /// A block store failed.
    #[error("store: {0}")]
    Store(#[from] ehr_store::Error),

    /// A cryptographic operation failed (e.g. a record that does not open).
    #[error("crypto: {0}")]
    Crypto(#[from] ehr_crypto::Error),

    /// A manifest, a node key or a share request failed (see [`ehr_node::Error`]).
    #[error(transparent)]
    Protocol(#[from] ehr_node::Error),

    /// Reading or writing the data directory failed.
    #[error(transparent)]
    File(#[from] ehr_fs_util::Error),

    /// A key file that does not hold a secp256k1 private key (its contents are never quoted).
    #[error("key file {} does not hold a hex secp256k1 private key", path.display())]
    SignerKeyFile {
        /// The file.
        path: std::path::PathBuf,
    },

    /// A node failed or refused.
    #[error("{node}: {source}")]
    Node {
        /// The node's name.
        node: String,
        /// What it said.
        #[source]
        source: NodeError,
    },
}

fn write_scope(record_id: Option<u64>) -> String {
    match record_id {
        Some(id) => format!("record {id}"),
        None => "adding a record".into(),
    }
}

fn access_reason(reason: ehr_chain::AccessStatus) -> &'static str {
    use ehr_chain::AccessStatus as S;
    match reason {
        S::Allowed => "allowed",
        S::UnknownRecord => "no such record",
        S::NotProvider => "not a registered provider",
        S::NoGrant => "no grant",
        S::Expired => "the grant expired",
        S::Revoked => "the grant was revoked",
        S::Erased => "the record was erased with its owner's account",
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// [`Error::AccessDenied`] for `reason`, or [`Error::Erased`] when that is the reason.
    pub(crate) fn denied(record_id: u64, reason: ehr_chain::AccessStatus) -> Self {
        match reason {
            ehr_chain::AccessStatus::Erased => Self::Erased(format!("record {record_id}")),
            reason => Self::AccessDenied { record_id, reason },
        }
    }

    /// A chain error, with a spent funding budget told apart.
    pub(crate) fn chain(e: ehr_chain::Error) -> Self {
        match e {
            ehr_chain::Error::FundingBudgetSpent { retry_after } => {
                Self::FundingBudgetSpent { retry_after }
            }
            e => Self::Chain(e),
        }
    }

    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Self::File(ehr_fs_util::Error::io(path, source))
    }
}

/// Why a grant offer is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfferRefusal {
    /// Not signed by the patient it names on this deployment, or altered since.
    #[error(
        "this code is not a valid offer: it was not made by the patient it names, or it was changed"
    )]
    Forged,
    /// Already accepted (an offer is used once).
    #[error("this code was already used: ask the patient for a new one")]
    Used,
    /// Past its ten minutes.
    #[error("this code has expired: ask the patient for a new one")]
    Expired,
}
