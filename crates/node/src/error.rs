//! The crate's error type for setting a node up and for reading manifests. What a node
//! answers over the wire is [`NodeError`](crate::NodeError), not this.

/// What can go wrong opening a node or parsing a manifest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest block over [`MAX_MANIFEST_LEN`](crate::manifest::MAX_MANIFEST_LEN).
    #[error("bad manifest: block too large")]
    ManifestTooLarge,
    /// A format-1 manifest block that is not a manifest's JSON.
    #[error("bad manifest: {0}")]
    ManifestJson(#[source] serde_json::Error),
    /// A DAG-CBOR manifest block that is not one, or not in canonical form: what is wrong.
    #[error("bad manifest: {0}")]
    ManifestCbor(String),
    /// A share block that is not one wrapped share.
    #[error("bad share block: {0} bytes, expected {len}", len = crate::manifest::SHARE_BLOCK_LEN)]
    ShareBlock(usize),
    /// A manifest whose lists do not match its `n`, or of an unknown format version.
    #[error("bad manifest: inconsistent manifest")]
    ManifestInconsistent,
    /// A chain entry naming a manifest codec other than `dag-cbor` or `raw`.
    #[error("bad manifest: unsupported manifest codec {0:#x}")]
    ManifestCodec(u64),
    /// Signing a share request failed.
    #[error("signing the share request failed: {0}")]
    Signing(#[source] ehr_chain::Error),
    /// The chain failed (reading the deployment's chain id and contract).
    #[error("chain: {0}")]
    Chain(#[from] ehr_chain::Error),
    /// A node key file could not be read or written.
    #[error(transparent)]
    File(#[from] ehr_fs_util::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
