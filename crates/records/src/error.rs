//! The crate's one error type.
//!
//! Messages name what was wrong and never carry secrets or record contents: no passwords,
//! no tokens, no personal data, and no hint of *why* a decryption failed beyond "wrong
//! password or damaged file".

use std::path::PathBuf;
use std::time::Duration;

use crate::fhir::ValidationErrors;

/// Everything that can go wrong in `ehr-records`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record failed FHIR validation; the list names each field's path and the rule broken.
    #[error("invalid record: {0}")]
    InvalidRecord(#[from] ValidationErrors),

    /// A keystore's MAC did not match: the password is wrong or the file was altered.
    #[error("wrong password or damaged keystore")]
    KeystoreMac,

    /// A keystore file this crate cannot read (not v3, unknown cipher or KDF, bad hex, …).
    #[error("unsupported or malformed keystore: {0}")]
    KeystoreFormat(String),

    /// Username or password did not match (which one is deliberately not said).
    #[error("invalid username or password")]
    InvalidCredentials,

    /// Too many failed logins for this username or client.
    #[error("too many failed login attempts; retry in {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// How long until the next attempt is allowed.
        retry_after: Duration,
    },

    /// The bearer token is unknown, revoked or expired.
    #[error("invalid or expired session token")]
    Unauthenticated,

    /// The session is valid but its role may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),

    /// The username is already registered.
    #[error("username already taken")]
    UsernameTaken,

    /// `create_admin` was called although an admin exists.
    #[error("an admin account already exists")]
    AdminExists,

    /// A username that breaks the rules (see [`crate::accounts`]).
    #[error("invalid username: {0}")]
    InvalidUsername(&'static str),

    /// A password that breaks the rules (see [`crate::accounts`]).
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),

    /// Password hashing or key derivation was given parameters it refuses.
    #[error("invalid {0} parameters")]
    InvalidParams(&'static str),

    /// Reading or writing the data directory failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The accounts file exists but cannot be understood.
    #[error("corrupt accounts file {}: {reason}", path.display())]
    CorruptStore {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (structure only, never contents).
        reason: String,
    },

    /// A request field is invalid (not record content: those are
    /// [`InvalidRecord`](Self::InvalidRecord)).
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong (never the value).
        message: String,
    },

    /// No such thing (record, version, patient, provider).
    #[error("not found: {0}")]
    NotFound(String),

    /// The contract does not allow this read.
    #[error("access denied to record {record_id}: {}", access_reason(*reason))]
    AccessDenied {
        /// The record.
        record_id: u64,
        /// Why, as the contract says.
        reason: ehr_chain::AccessStatus,
    },

    /// Too few nodes answered to rebuild a record.
    #[error("{reachable} of the {needed} needed nodes reachable")]
    NodesUnavailable {
        /// Nodes that answered usefully.
        reachable: usize,
        /// Nodes needed (the threshold k, or the write quorum).
        needed: usize,
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

    /// A manifest block is malformed or does not match the chain.
    #[error("bad manifest: {0}")]
    Manifest(String),

    /// A key file does not hold a 32-byte hex key.
    #[error("key file {} does not hold a 32-byte hex key", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
    },

    /// A node failed or refused.
    #[error("{node}: {source}")]
    Node {
        /// The node's name.
        node: String,
        /// What it said.
        #[source]
        source: crate::node::NodeError,
    },
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
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
