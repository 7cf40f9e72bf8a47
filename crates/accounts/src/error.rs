//! The crate's one error type.
//!
//! Messages name what was wrong and never carry secrets: no passwords, no tokens, no keys,
//! and no hint of *why* a decryption failed beyond "wrong password or damaged file".

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong with accounts, sessions and keystores.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A keystore's MAC did not match: the password is wrong or the file was altered.
    #[error("wrong password or damaged keystore")]
    KeystoreMac,

    /// A keystore file this crate cannot read (not v3, unknown cipher or KDF, bad hex, …).
    #[error("unsupported or malformed keystore: {0}")]
    KeystoreFormat(String),

    /// Username or password did not match (which one is deliberately not said).
    #[error("invalid username or password")]
    InvalidCredentials,

    /// Too many failed logins for this username from this client, or from this client, or
    /// too many successful logins of this username.
    #[error("too many login attempts; retry in {} s", retry_after.as_secs().max(1))]
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

    /// A key brought at sign-up already belongs to an account here.
    #[error("this key already belongs to an account")]
    KeyInUse,

    /// `create_admin` was called although an admin exists.
    #[error("an admin account already exists")]
    AdminExists,

    /// A username that breaks the rules (see [`crate::normalize_username`]).
    #[error("invalid username: {0}")]
    InvalidUsername(&'static str),

    /// A recovery code that is not 25 characters of Crockford base32.
    #[error("invalid recovery code: {0}")]
    InvalidRecoveryCode(&'static str),

    /// The username and recovery code did not match (which one is deliberately not said),
    /// or the account has no recovery code.
    #[error("invalid username or recovery code")]
    InvalidRecovery,

    /// The provider's key is not escrowed to this admin: it was added before escrow
    /// existed and has not signed in since, or by another admin.
    #[error(
        "this provider's key is not escrowed here yet (it was added before password resets existed): it is escrowed the next time the provider signs in"
    )]
    NoEscrow,

    /// A provider's escrowed key could not be wrapped or opened.
    #[error("provider key escrow: {0}")]
    Escrow(&'static str),

    /// The account signs in with a second factor and none was given.
    #[error(
        "this account signs in with two-factor: enter the code from your authenticator app, or a backup code"
    )]
    TotpRequired,

    /// The authentication code (or backup code) did not match, or was used already.
    #[error("invalid authentication code")]
    InvalidTotp,

    /// Two-factor is already on (enrolling again), or not on (disabling, confirming
    /// without a secret offered).
    #[error("two-factor sign-in: {0}")]
    TotpState(&'static str),

    /// A password that breaks the rules ([`crate::MIN_PASSWORD_CHARS`] and up).
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),

    /// Password hashing or key derivation was given parameters it refuses.
    #[error("invalid {0} parameters")]
    InvalidParams(&'static str),

    /// Reading or writing the accounts directory failed.
    #[error(transparent)]
    File(#[from] ehr_fs_util::Error),

    /// The accounts database failed (I/O below it, or a damaged file).
    #[error("accounts database {}: {reason}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What redb said (structure only, never contents).
        reason: String,
    },

    /// The accounts database is open in another process (or already in this one): redb
    /// locks the file while it is open.
    #[error(
        "accounts database {} is in use by another process (is a server running?)",
        path.display()
    )]
    StoreInUse {
        /// The database file.
        path: PathBuf,
    },

    /// An archive snapshot or change set does not decode, does not follow on from the one
    /// before, or cannot be taken or restored (structure only, never contents).
    #[error("accounts archive: {0}")]
    Archive(String),

    /// The accounts database or the old accounts file holds something it cannot use.
    #[error("corrupt accounts store {}: {reason}", path.display())]
    CorruptStore {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (structure only, never contents).
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::File(ehr_fs_util::Error::io(path, source))
    }
}
