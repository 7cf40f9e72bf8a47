#![doc = include_str!("../README.md")]

pub mod dhkem;
pub mod dispersal;
mod erasure;
pub mod gf256;
mod keystream;
pub mod recovery;
pub mod seal;
mod sha_pair;
pub mod shamir;
pub mod share_file;
pub mod stream;
pub mod wrap;

pub use dispersal::{
    Dispersed, FragmentInfo, FragmentReport, Fragments, KeyShare, Manifest, Opened,
};
pub use ehr_primitives::Threshold;
pub use seal::{DataKey, RecordContext, Sealed};
pub use shamir::Share;
pub use wrap::{PublicKey, SecretKey, Wrapped};

/// The one random number generator every SecureEHR crate draws keys, nonces and salts
/// from: ChaCha20 seeded with 32 bytes from the operating system. Panics only if the OS
/// random source fails, which no caller could recover from.
pub fn rng() -> rand_chacha::ChaCha20Rng {
    use rand_core::SeedableRng;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random source works");
    rand_chacha::ChaCha20Rng::from_seed(seed)
}

/// Fills `buf` from the operating system's random source (panics only if it fails).
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS random source works");
}

/// Why a share file or a fragment was set aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Reject {
    /// Not a share file of a known format, or truncated.
    Malformed,
    /// The header checksum does not match the header.
    HeaderDigest,
    /// The payload does not match its SHA-256 digest.
    PayloadDigest,
    /// Well-formed, but from another split (or disagrees with the majority).
    OtherSplit,
    /// Same share index as an earlier good share.
    Duplicate,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reject::Malformed => "malformed or truncated",
            Reject::HeaderDigest => "header checksum mismatch",
            Reject::PayloadDigest => "share data does not match its SHA-256",
            Reject::OtherSplit => "belongs to a different split",
            Reject::Duplicate => "duplicate share index",
        })
    }
}

/// Everything that can go wrong in this crate.
///
/// Errors about secret material are deliberately opaque: [`Error::Decrypt`] never says
/// why decryption failed, and no variant carries key or plaintext bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The threshold is out of range (`2 <= k <= n <= 255`).
    #[error(transparent)]
    Threshold(#[from] ehr_primitives::ThresholdError),
    /// The number of output buffers or x coordinates does not equal `n`.
    #[error("expected {expected} shares, got {got}")]
    ShareCount {
        /// Expected count (`n`).
        expected: usize,
        /// Count given.
        got: usize,
    },
    /// A share's x coordinate was zero (that point *is* the secret).
    #[error("share x coordinate 0 is not allowed")]
    ZeroX,
    /// Two shares have the same x coordinate.
    #[error("duplicate share x coordinate {0}")]
    DuplicateX(u8),
    /// Buffers that must have equal lengths do not.
    #[error("length mismatch: expected {expected} bytes, got {got}")]
    LengthMismatch {
        /// Expected length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// Fewer shares than the threshold.
    #[error("not enough shares: {got} given, {needed} needed")]
    NotEnoughShares {
        /// Shares given.
        got: usize,
        /// Shares needed (`k`).
        needed: usize,
    },
    /// The record is larger than [`seal::MAX_RECORD_LEN`].
    #[error("record of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Authenticated decryption failed (wrong key, wrong context, or tampering).
    #[error("decryption failed")]
    Decrypt,
    /// A stream segment of the wrong length was given to seal ([`stream`]).
    #[error("stream segment: {0}")]
    StreamSegment(&'static str),
    /// HPKE key wrapping or unwrapping failed.
    #[error("key wrapping failed")]
    Wrap,
    /// A public or private key had the wrong encoding.
    #[error("invalid key encoding")]
    InvalidKey,
    /// Fragments whose SHA-256 does not match the manifest (indices, 0-based).
    #[error("corrupt fragments: {0:?}")]
    CorruptFragments(Vec<usize>),
    /// Too few good fragments to rebuild.
    #[error(
        "not enough good fragments: {good} good, {needed} needed (corrupt: {corrupt:?}, missing: {missing:?})"
    )]
    NotEnoughFragments {
        /// Good fragments available.
        good: usize,
        /// Fragments needed (`k`).
        needed: usize,
        /// Indices whose hash did not match.
        corrupt: Vec<usize>,
        /// Indices not supplied.
        missing: Vec<usize>,
    },
    /// Key shares that do not match their digests in the manifest (x coordinates).
    #[error("corrupt key shares (x coordinates): {0:?}")]
    CorruptKeyShares(Vec<u8>),
    /// Too few good key shares to rebuild the data key.
    #[error("not enough good key shares: {good} good, {needed} needed (corrupt x: {corrupt:?})")]
    NotEnoughKeyShares {
        /// Good key shares available.
        good: usize,
        /// Shares needed (`k`).
        needed: usize,
        /// x coordinates whose digest did not match.
        corrupt: Vec<u8>,
    },
    /// The manifest is inconsistent (bad sizes, counts or version).
    #[error("invalid manifest: {0}")]
    Manifest(&'static str),
    /// Too few good share files; every rejected file is listed (input positions).
    #[error("not enough good shares: {good} good, {needed} needed")]
    NotEnoughGoodShares {
        /// Good shares found.
        good: usize,
        /// Shares needed (`k`); 0 if no well-formed share said.
        needed: usize,
        /// Rejected inputs: (position in the input list, reason).
        rejected: Vec<(usize, Reject)>,
    },
    /// The rebuilt secret does not match its embedded checksum.
    #[error("rebuilt secret failed its integrity check")]
    Integrity,
    /// An x coordinate above the sharing's `n`.
    #[error("x coordinate {x} is outside 1..={n}")]
    XOutOfRange {
        /// The x given.
        x: u8,
        /// The sharing's `n`.
        n: usize,
    },
    /// A recovery plan with other than `k` helpers.
    #[error("a recovery plan needs exactly {expected} helpers (k), got {got}")]
    HelperCount {
        /// Helpers needed (`k`).
        expected: usize,
        /// Helpers given.
        got: usize,
    },
    /// A recovery plan whose target is one of its helpers.
    #[error("the recovery target x = {0} is also one of the helpers")]
    TargetIsHelper(u8),
    /// An x coordinate that is not a helper of the recovery plan.
    #[error("x = {0} is not a helper in the recovery plan")]
    NotAHelper(u8),
    /// Two recovery contributions (pieces, sigmas) from the same helper.
    #[error("two {what} from helper x = {from}")]
    DuplicateContribution {
        /// What they were.
        what: &'static str,
        /// The helper.
        from: u8,
    },
    /// Recovery contributions missing from some helpers of the plan.
    #[error("missing {what} from helper(s) x = {missing:?}")]
    MissingContributions {
        /// What is missing.
        what: &'static str,
        /// The helpers it is missing from.
        missing: Vec<u8>,
    },
    /// The erasure coder refused its input.
    #[error("erasure coding failed: {0}")]
    ErasureCode(String),
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// `Ok` when `got` equals the `expected` number of shares, else [`Error::ShareCount`].
    pub(crate) fn check_share_count(expected: usize, got: usize) -> Result<()> {
        if got == expected {
            Ok(())
        } else {
            Err(Error::ShareCount { expected, got })
        }
    }
}
