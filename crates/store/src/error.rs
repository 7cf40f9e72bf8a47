//! The crate's one error type. Every variant that concerns a block names its CID (and, for
//! the filesystem store, the file), so an operator can find the offending object.

use std::path::PathBuf;

use cid::Cid;

/// Everything that can go wrong in `ehr-store`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A string or byte sequence is not a valid CID.
    #[error("invalid CID {input:?}: {reason}")]
    InvalidCid {
        /// The text (or hex of the bytes) that failed to parse.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The CID uses a hash function this crate cannot verify.
    #[error("CID {cid}: unsupported hash function 0x{code:x}")]
    UnsupportedHash {
        /// The offending CID.
        cid: Box<Cid>,
        /// Its multihash code.
        code: u64,
    },
    /// The CID uses a codec this crate does not store.
    #[error("CID {cid}: unsupported codec 0x{code:x}")]
    UnsupportedCodec {
        /// The offending CID.
        cid: Box<Cid>,
        /// Its multicodec code.
        code: u64,
    },
    /// No block with this CID exists in the store.
    #[error("block {cid} not found")]
    NotFound {
        /// The missing block.
        cid: Box<Cid>,
    },
    /// Bytes do not hash to the CID they were offered or stored under.
    #[error("block {cid}: content does not match its CID{}", .location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default())]
    HashMismatch {
        /// The CID the bytes claimed to be.
        cid: Box<Cid>,
        /// Where the bytes came from (a file path, a URL), if known.
        location: Option<String>,
    },
    /// A dag-pb or UnixFS block could not be decoded.
    #[error("block {cid}: malformed {what}: {reason}")]
    Malformed {
        /// The block.
        cid: Box<Cid>,
        /// Which format ("dag-pb", "UnixFS").
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A CAR file is truncated or malformed.
    #[error("invalid CAR: {0}")]
    Car(String),
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A stream (reader/writer) failed.
    #[error(transparent)]
    Stream(#[from] std::io::Error),
    /// The Kubo RPC API answered with an error.
    #[error("Kubo RPC {endpoint}: {message}")]
    Kubo {
        /// The API path, e.g. `/api/v0/block/get`.
        endpoint: String,
        /// The node's message (or HTTP status).
        message: String,
    },
    /// The HTTP request to a Kubo node failed.
    #[error("Kubo RPC request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// A store directory is locked by another open store (this process or another one).
    #[error("{path} is in use by another process (or another open store in this one)")]
    Locked {
        /// The store's root directory.
        path: PathBuf,
    },
    /// A block is larger than the backend can hold in one record.
    #[error("block {cid}: {len} bytes is larger than the {max}-byte limit")]
    TooLarge {
        /// The block.
        cid: Box<Cid>,
        /// Its size.
        len: u64,
        /// The largest size accepted.
        max: u64,
    },
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
