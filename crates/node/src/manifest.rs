//! The record manifest: the public block that describes one stored record version.
//!
//! Its CID is the record version's "hash code"; its sha2-256 digest goes on chain with
//! `addRecord`/`updateRecord`. It holds no personal data: the dispersal manifest
//! (fragment digests, nonce, lengths), the custodians' public keys and each custodian's
//! key share, HPKE-wrapped to that custodian alone.

use alloy::primitives::{Address, B256};
use ehr_crypto::wrap::Wrapped;
use ehr_crypto::{Manifest, RecordContext};
use ehr_store::{Cid, cid_from_sha256};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Format version written by this crate.
pub const FORMAT: u32 = 1;
/// The multicodec of manifest blocks (and of fragments): `raw`.
pub const CODEC: u64 = ehr_store::cids::RAW;
/// Manifests larger than this are refused before parsing.
pub const MAX_MANIFEST_LEN: usize = 64 * 1024;

/// One record version, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordManifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The owning patient's address.
    pub patient: Address,
    /// The record's 32-byte uid, fixed at creation and bound into every version's
    /// ciphertext. (The chain's sequential record id is assigned only after the first
    /// version is sealed, so the uid stands in for it; the chain binds id → manifest.)
    pub uid: B256,
    /// The record version (from 1).
    pub version: u32,
    /// Unix seconds when sealed.
    pub created_at: u64,
    /// Custodian `i`'s X25519 public key; share `x = i + 1` is wrapped to it.
    pub custodians: Vec<B256>,
    /// Key share `x = i + 1`, wrapped to custodian `i` under [`crate::CUSTODIAN_AAD`].
    pub wrapped_shares: Vec<Wrapped>,
    /// Fragments, thresholds, nonce and digests.
    pub dispersal: Manifest,
}

impl RecordManifest {
    /// What the ciphertext is bound to.
    pub fn context(&self) -> RecordContext {
        RecordContext {
            patient: self.patient.0.0,
            record_id: self.uid.0,
            version: self.version,
        }
    }

    /// The manifest block's bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serializes")
    }

    /// Parses a manifest block, checking its shape.
    pub fn decode(block: &[u8]) -> Result<Self> {
        if block.len() > MAX_MANIFEST_LEN {
            return Err(Error::ManifestTooLarge);
        }
        let m: Self = serde_json::from_slice(block).map_err(Error::ManifestJson)?;
        let n = usize::from(m.dispersal.n);
        if m.format != FORMAT
            || m.custodians.len() != n
            || m.wrapped_shares.len() != n
            || m.dispersal.fragments.len() != n
            || m.dispersal.key_share_digests.len() != n
        {
            return Err(Error::ManifestInconsistent);
        }
        Ok(m)
    }

    /// The CID of fragment `i` (a raw block).
    pub fn fragment_cid(&self, i: usize) -> Cid {
        cid_from_sha256(CODEC, &self.dispersal.fragments[i].sha256)
    }
}

/// The manifest CID a chain digest and codec stand for.
pub fn manifest_cid(digest: B256, codec: u64) -> Result<Cid> {
    if codec != CODEC {
        return Err(Error::ManifestCodec(codec));
    }
    Ok(cid_from_sha256(codec, &digest.0))
}
