//! The crate's one error type.

use alloy::primitives::Address;

/// One epoch that could not be rebuilt: fewer than `needed` good fragments (or key shares)
/// were found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    /// The epoch.
    pub epoch: u64,
    /// `"fragments"` or `"key shares"`.
    pub what: &'static str,
    /// How many good ones were found.
    pub found: usize,
    /// How many are needed (k).
    pub needed: usize,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "epoch {}: {} of {} {} needed",
            self.epoch, self.found, self.needed, self.what
        )
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What can go wrong archiving the ledger or reading it back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive's settings do not fit together (counts of nodes, keys, threshold).
    #[error("archive configuration: {0}")]
    Config(String),
    /// The local progress in the archive directory is not this archive's or is damaged.
    #[error("archive progress: {0}")]
    Progress(String),
    /// A block that does not decode as the archive's encoding.
    #[error("archive format: {0}")]
    Format(String),
    /// No node answered with an archive head the admin signed.
    #[error("no node holds an archive head signed by the admin {admin}: {}", list(.problems))]
    NoHead {
        /// The admin address looked for.
        admin: Address,
        /// What each node answered.
        problems: Vec<String>,
    },
    /// Some epochs could not be rebuilt: too few good fragments or key shares.
    #[error("too few good parts to rebuild {} epoch(s): {}; {}", .shortfalls.len(), list(.shortfalls), list(.problems))]
    NotEnough {
        /// Per epoch that failed: how many were found and needed.
        shortfalls: Vec<Shortfall>,
        /// Which nodes failed how ("node 3: fragment of epoch 7 fails its hash").
        problems: Vec<String>,
    },
    /// The archive does not check out (hash links, block links, digests, signatures).
    #[error("the archive does not check out: {0}")]
    Invalid(String),
    /// A state part failed to snapshot or to report its changes.
    #[error("state part {name}: {source}")]
    Part {
        /// The part's name.
        name: String,
        /// Why.
        source: crate::BoxError,
    },
    /// Reading the chain failed.
    #[error("chain: {0}")]
    Chain(#[from] ehr_chain::Error),
    /// Sealing or opening failed.
    #[error("crypto: {0}")]
    Crypto(#[from] ehr_crypto::Error),
    /// Signing a head or a share request failed.
    #[error(transparent)]
    Node(#[from] ehr_node::Error),
    /// A local file could not be read or written.
    #[error(transparent)]
    File(#[from] ehr_fs_util::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
