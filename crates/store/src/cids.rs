//! CID helpers: parsing with clear errors, hashing by multihash code, and the one check every
//! read and write goes through ([`verify`]): bytes must hash to the CID they claim.

use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Multicodec code of raw bytes (`bafkr…`).
pub const RAW: u64 = 0x55;
/// Multicodec code of dag-pb (UnixFS nodes, `Qm…`/`bafybei…`).
pub const DAG_PB: u64 = 0x70;
/// Multicodec code of dag-cbor.
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// Codecs a store accepts. Others are refused so that nothing unexpected lands on disk.
pub const SUPPORTED_CODECS: &[u64] = &[RAW, DAG_PB, DAG_CBOR];

/// The sha2-256 multihash of `data`.
pub fn sha256_multihash(data: &[u8]) -> cid::multihash::Multihash<64> {
    let digest = Sha256::digest(data);
    // A 32-byte digest always fits the 64-byte multihash.
    cid::multihash::Multihash::wrap(SHA2_256, &digest).expect("32-byte digest fits")
}

/// The CIDv1 with `codec` whose sha2-256 digest is `digest` (e.g. rebuilt from a digest kept
/// on chain or in a manifest).
pub fn cid_from_sha256(codec: u64, digest: &[u8; 32]) -> Cid {
    // A 32-byte digest always fits the 64-byte multihash.
    Cid::new_v1(
        codec,
        cid::multihash::Multihash::wrap(SHA2_256, digest).expect("32-byte digest fits"),
    )
}

/// The CID `ipfs block put` gives a raw block: CIDv1, raw codec, sha2-256.
pub fn raw_cid(data: &[u8]) -> Cid {
    Cid::new_v1(RAW, sha256_multihash(data))
}

/// Parses a CID string (`Qm…` base58 v0 or any multibase v1), rejecting unsupported codecs
/// and hash functions with an error naming the input.
pub fn parse_cid(s: &str) -> Result<Cid> {
    let cid = Cid::try_from(s.trim()).map_err(|e| Error::InvalidCid {
        input: s.to_string(),
        reason: e.to_string(),
    })?;
    check_supported(&cid)?;
    Ok(cid)
}

/// Errors unless this crate can verify and store blocks under `cid`.
pub fn check_supported(cid: &Cid) -> Result<()> {
    if !SUPPORTED_CODECS.contains(&cid.codec()) {
        return Err(Error::UnsupportedCodec {
            cid: Box::new(*cid),
            code: cid.codec(),
        });
    }
    if Code::try_from(cid.hash().code()).is_err() {
        return Err(Error::UnsupportedHash {
            cid: Box::new(*cid),
            code: cid.hash().code(),
        });
    }
    Ok(())
}

/// Checks that `data` hashes to `cid`; `location` (a path, a URL) goes into the error.
pub fn verify(cid: &Cid, data: &[u8], location: Option<&dyn std::fmt::Display>) -> Result<()> {
    check_supported(cid)?;
    let mh = cid.hash();
    let ok = if mh.code() == SHA2_256 {
        Sha256::digest(data).as_slice() == mh.digest()
    } else {
        let code = Code::try_from(mh.code()).map_err(|_| Error::UnsupportedHash {
            cid: Box::new(*cid),
            code: mh.code(),
        })?;
        // Truncated digests are refused: an empty one would "verify" anything.
        code.digest(data).digest() == mh.digest()
    };
    if ok {
        Ok(())
    } else {
        Err(Error::HashMismatch {
            cid: Box::new(*cid),
            location: location.map(|l| l.to_string()),
        })
    }
}
