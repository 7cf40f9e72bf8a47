//! What the contract's operations return: records, grants, the node set, the access log,
//! organisations and providers, as plain values.

use alloy::primitives::{Address, B256, U256};

/// Why [`RegistryExt::access_status`](crate::RegistryExt::access_status) allows or denies a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessStatus {
    /// Allowed (owner, live grant or break-glass).
    Allowed,
    /// No such record.
    UnknownRecord,
    /// The reader is neither the owner nor a registered provider.
    NotProvider,
    /// Never granted.
    NoGrant,
    /// The grant expired.
    Expired,
    /// The grant was revoked.
    Revoked,
    /// The record was erased with its owner's account.
    Erased,
}

impl AccessStatus {
    /// The contract's decision code (`ALLOWED` = 0 … `REVOKED` = 5, `ERASED` = 6).
    pub fn from_code(code: u8) -> crate::Result<Self> {
        Ok(match code {
            0 => Self::Allowed,
            1 => Self::UnknownRecord,
            2 => Self::NotProvider,
            3 => Self::NoGrant,
            4 => Self::Expired,
            5 => Self::Revoked,
            6 => Self::Erased,
            other => return Err(crate::Error::Abi(format!("unknown access status {other}"))),
        })
    }
}

/// A write grant as stored (0 where unset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteGrantInfo {
    /// When writing ends.
    pub expires_at: u64,
    /// When it was revoked (0: not revoked).
    pub revoked_at: u64,
}

impl WriteGrantInfo {
    /// Whether it allows writing at `now`.
    pub fn live(&self, now: u64) -> bool {
        self.revoked_at == 0 && self.expires_at > now
    }
}

/// A record as the chain knows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordInfo {
    /// Sequential record id (from 1).
    pub id: u64,
    /// The patient who owns it.
    pub owner: Address,
    /// The current version (from 1).
    pub version: u32,
    /// Unix time of the last change.
    pub updated_at: u64,
    /// The current manifest's sha2-256 digest.
    pub digest: B256,
    /// The current manifest's multicodec.
    pub codec: u64,
}

/// One version of a record, from its `RecordVersion` event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordVersion {
    /// Record id.
    pub record_id: u64,
    /// The owner who stored it.
    pub owner: Address,
    /// Version number (from 1).
    pub version: u32,
    /// Manifest digest.
    pub digest: B256,
    /// Manifest multicodec.
    pub codec: u64,
    /// Unix time it was stored.
    pub timestamp: u64,
    /// Who wrote it: the owner, or a provider with write access.
    pub author: Address,
    /// Block it was mined in.
    pub block_number: u64,
    /// Transaction that stored it.
    pub tx_hash: B256,
}

/// A grant as stored (0 where unset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GrantInfo {
    /// When the grant ends.
    pub expires_at: u64,
    /// When it was revoked (0: not revoked).
    pub revoked_at: u64,
    /// When break-glass access ends (record grants only).
    pub emergency_until: u64,
}

/// The custodian/storage node set.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeSet {
    /// Any `k` nodes rebuild a record.
    pub k: u8,
    /// Node addresses with their X25519 public keys.
    pub nodes: Vec<(Address, B256)>,
    /// Increases with every change.
    pub epoch: u32,
}

/// One logged read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccessEntry {
    /// The record read.
    pub record_id: u64,
    /// Who read it.
    pub reader: Address,
    /// The request nonce the custodians check.
    pub nonce: U256,
    /// Unix time of the read.
    pub timestamp: u64,
    /// Block it was logged in.
    pub block_number: u64,
    /// The `logAccess`/`emergencyAccess` transaction.
    pub tx_hash: B256,
    /// Only a break-glass window allowed this read.
    pub emergency: bool,
}

/// One break-glass access.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EmergencyEntry {
    /// The record opened.
    pub record_id: u64,
    /// The provider who opened it.
    pub provider: Address,
    /// The patient who owns it.
    pub patient: Address,
    /// Digest of the written reason.
    pub reason_digest: B256,
    /// When the break-glass window ends.
    pub until: u64,
    /// Block it was logged in.
    pub block_number: u64,
    /// The transaction.
    pub tx_hash: B256,
}

/// An organisation of the network (ids from 1), from its `OrganisationAdded` event and its
/// current state.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Organisation {
    /// Its id (from 1).
    pub id: u32,
    /// The name the admin gave it.
    pub name: String,
    /// The address that registers its providers now.
    pub registrar: Address,
    /// Providers registered in it now.
    pub providers: u32,
    /// Not removed.
    pub active: bool,
}

/// A provider registration, from its `ProviderRegistered` event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProviderRegistration {
    /// The provider's address.
    pub provider: Address,
    /// Its organisation (0: registered by the admin itself).
    pub organisation: u32,
    /// The sha2-256 digest of its directory entry (zero: none).
    pub profile: B256,
    /// Block it was mined in.
    pub block_number: u64,
}
