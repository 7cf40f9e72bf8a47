//! A node's long-term key: one seed, from which its X25519 custodian key and its identity
//! address are derived.

use std::fmt;
use std::path::Path;

use alloy::primitives::{Address, B256, keccak256};
use ehr_crypto::wrap::{self, PublicKey, SecretKey};
use zeroize::Zeroizing;

use crate::*;

/// A node's long-term key: a 32-byte seed from which its X25519 custodian key and its
/// identity address are derived. Zeroized on drop.
#[derive(Clone)]
pub struct NodeKey {
    pub(crate) secret: SecretKey,
    pub(crate) public: PublicKey,
    address: Address,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// Derives the key from a seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let (secret, public) = wrap::derive_keypair(seed);
        let mut id = Zeroizing::new([0u8; 64]);
        id[..32].copy_from_slice(seed);
        id[32..].copy_from_slice(&keccak256(b"SEHR node identity v1").0);
        let address = Address::from_word(keccak256(&id[..]));
        Self {
            secret,
            public,
            address,
        }
    }

    /// Loads the seed from `path` (64 hex characters), creating it (mode 0600) if absent.
    pub fn load_or_create(path: &Path) -> crate::Result<Self> {
        let seed = ehr_fs_util::key_file::load_or_create(path)?;
        Ok(Self::from_seed(&seed))
    }

    /// The public part.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            address: self.address,
            public_key: B256::from(self.public.0),
        }
    }
}
