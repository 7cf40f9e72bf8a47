//! The node protocol: the [`Node`] trait, signed share requests and their answers,
//! [`NodeError`] (what crosses the wire), and the read-nonce encoding.

use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};
use async_trait::async_trait;
use ehr_crypto::wrap::{PublicKey, Wrapped};
use ehr_store::Cid;
use serde::{Deserialize, Serialize};

use crate::*;

/// A share request is valid for at most this long (seconds), and the access it refers to
/// must have been logged at most this long before the node checks it.
pub const MAX_REQUEST_TTL: u64 = 600;

/// The associated data a custodian's share is wrapped under in a manifest.
pub const CUSTODIAN_AAD: &[u8] = b"SEHR custodian share v1";

/// The EIP-712 domain name of share requests (and of every SecureEHR signature).
pub use ehr_chain::offers::DOMAIN_NAME;

mod typed {
    #![allow(missing_docs)]
    alloy::sol! {
        /// What a reader signs to ask a custodian for its key share (EIP-712).
        struct ShareRequest {
            uint256 recordId;
            uint32 version;
            uint32 attachment;
            uint256 nonce;
            uint64 expiry;
            bytes32 readerKey;
        }
    }
}

/// The EIP-712 domain of share requests on one deployment: the contract's own (grant
/// offers are signed in it too).
pub fn domain(chain_id: u64, contract: Address) -> Eip712Domain {
    ehr_chain::offers::domain(chain_id, contract)
}

/// A reader's signed request for key shares of one record version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRequest {
    /// The record.
    pub record_id: u64,
    /// Its version.
    pub version: u32,
    /// Whose key share: 0 for the record version's key, `j` for its attachment `j`'s
    /// (the manifest's `attachments[j - 1]`). One logged access releases each once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attachment: u32,
    /// The nonce of the reader's `logAccess` (or `emergencyAccess`) transaction.
    pub nonce: U256,
    /// Unix seconds after which custodians refuse the request.
    pub expiry: u64,
    /// The reader's one-time X25519 public key; shares come back wrapped to it.
    pub reader_key: B256,
    /// The reader's EIP-712 signature (65 bytes).
    pub signature: Signature,
    /// The record version's manifest block, for a custodian that does not keep it (a
    /// manifest is on `n − k + 1` nodes). Not signed: the custodian checks it against the
    /// chain's digest, which names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Bytes>,
}

impl ShareRequest {
    /// Signs a request with the reader's Ethereum key.
    pub fn sign(
        signer: &PrivateKeySigner,
        domain: &Eip712Domain,
        record_id: u64,
        version: u32,
        nonce: U256,
        expiry: u64,
        reader_key: &PublicKey,
    ) -> Result<Self> {
        let mut req = Self {
            record_id,
            version,
            attachment: 0,
            nonce,
            expiry,
            reader_key: B256::from(reader_key.0),
            signature: Signature::test_signature(),
            manifest: None,
        };
        req.signature = ehr_chain::signing::sign_hash(signer, &req.signing_hash(domain))
            .map_err(Error::Signing)?;
        Ok(req)
    }

    /// The same request for the key share of attachment `attachment` (from 1) of the
    /// version, signed again.
    pub fn for_attachment(
        mut self,
        signer: &PrivateKeySigner,
        domain: &Eip712Domain,
        attachment: u32,
    ) -> Result<Self> {
        self.attachment = attachment;
        self.signature = ehr_chain::signing::sign_hash(signer, &self.signing_hash(domain))
            .map_err(Error::Signing)?;
        Ok(self)
    }

    /// The EIP-712 hash that is signed.
    pub fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        typed::ShareRequest {
            recordId: U256::from(self.record_id),
            version: self.version,
            attachment: self.attachment,
            nonce: self.nonce,
            expiry: self.expiry,
            readerKey: self.reader_key,
        }
        .eip712_signing_hash(domain)
    }

    /// The request carrying the manifest block (for custodians that do not keep it).
    pub fn with_manifest(mut self, block: Vec<u8>) -> Self {
        self.manifest = Some(block.into());
        self
    }

    /// Who signed it.
    pub fn reader(&self, domain: &Eip712Domain) -> Result<Address, NodeError> {
        self.signature
            .recover_address_from_prehash(&self.signing_hash(domain))
            .map_err(|_| NodeError::BadSignature)
    }

    /// The associated data a released share is wrapped under: the signing hash, so a
    /// response opens only for the request it answers.
    pub fn response_aad(&self, domain: &Eip712Domain) -> [u8; 32] {
        self.signing_hash(domain).0
    }
}

/// A custodian's answer: its key share, wrapped to the reader's one-time key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareResponse {
    /// The share's x coordinate (custodian `x - 1`).
    pub x: u8,
    /// The share, HPKE-wrapped to the request's `reader_key`.
    pub wrapped: Wrapped,
}

/// What a node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's identity address (derived from its key).
    pub address: Address,
    /// Its X25519 custodian public key.
    pub public_key: B256,
}

/// Why a node did not do what was asked. The first five are the node's refusals; the
/// others are failures to reach it or to understand it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "message", rename_all = "snake_case")]
pub enum NodeError {
    /// The request's signature does not verify.
    #[error("bad signature on the share request")]
    BadSignature,
    /// The request expired (or asks for too long a lifetime).
    #[error("share request expired or too long-lived")]
    Expired,
    /// The same request was already answered.
    #[error("share request replayed")]
    Replayed,
    /// No `AccessLogged` event for this reader, record and nonce, or it is too old.
    #[error("no logged access for this request")]
    NotLogged,
    /// The contract does not allow this reader to read this record now.
    #[error("the contract does not allow this read")]
    Denied,
    /// The block or record is not known to this node.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is malformed or inconsistent.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node could not be reached or answered with an error.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The node failed internally.
    #[error("node error: {0}")]
    Internal(String),
    /// The node is destroying erased records' blocks and serves no block or share until
    /// it is done ([`crate::erasure`]).
    #[error("erasing: {0}")]
    Erasing(String),
}

impl NodeError {
    /// Whether the node refused on purpose (as opposed to being down or broken).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::BadSignature | Self::Expired | Self::Replayed | Self::NotLogged | Self::Denied
        )
    }
}

/// A storage + custodian node, local or remote.
#[async_trait]
pub trait Node: Send + Sync {
    /// A name for logs and errors ("node 2", "node 2 (http://…)").
    fn name(&self) -> &str;
    /// Its identity and custodian key.
    async fn info(&self) -> Result<NodeInfo, NodeError>;
    /// Stores a block (the node checks it hashes to `cid`).
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError>;
    /// Stores a block this process built, its CID computed from these very bytes here: a
    /// node in this process may skip hashing them again (reads re-hash); any other node
    /// checks as [`put_block`](Self::put_block) does.
    async fn put_own_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        self.put_block(cid, data).await
    }
    /// Returns a block. Callers verify the bytes against `cid` again.
    async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, NodeError>;
    /// Removes a block (orphan collection).
    async fn delete_block(&self, cid: &Cid) -> Result<(), NodeError>;
    /// Releases this custodian's key share for a logged, allowed, signed request.
    async fn release_share(&self, request: &ShareRequest) -> Result<ShareResponse, NodeError>;
    /// Destroys an erased record's blocks and this custodian's shares of it
    /// ([`crate::erasure`]).
    async fn erase(&self, _order: &EraseOrder) -> Result<EraseReport, NodeError> {
        Err(NodeError::BadRequest("this node erases nothing".into()))
    }

    // The ledger archive (`ehr-ledger`, [`crate::ledger`]).

    /// Releases this custodian's share of a ledger epoch's key to a request the
    /// deployment's admin signed, re-wrapped to the requester.
    async fn release_ledger_share(
        &self,
        _request: &LedgerShareRequest,
    ) -> Result<ShareResponse, NodeError> {
        Err(NodeError::BadRequest(
            "this node keeps no ledger shares".into(),
        ))
    }
    /// Keeps the newest admin-signed archive head (an older one is ignored, one the admin
    /// did not sign is refused).
    async fn put_archive_head(&self, _head: &ArchiveHead) -> Result<(), NodeError> {
        Err(NodeError::BadRequest(
            "this node keeps no archive head".into(),
        ))
    }
    /// The newest archive head this node keeps ([`NodeError::NotFound`] if none).
    async fn archive_head(&self) -> Result<ArchiveHead, NodeError> {
        Err(NodeError::NotFound("no archive head".into()))
    }

    // Share recovery ([`crate::recovery`]): the three steps of an admin-signed order.

    /// Step 1 (a helper): its masked pieces for the other helpers, one HPKE message each.
    async fn recovery_contribute(
        &self,
        _order: &SignedRecoveryOrder,
    ) -> Result<Vec<RecoveryMessage>, NodeError> {
        Err(no_recovery())
    }
    /// Step 2 (a helper): its σ for the target, from the pieces addressed to it.
    async fn recovery_relay(
        &self,
        _order: &SignedRecoveryOrder,
        _pieces: &[RecoveryMessage],
    ) -> Result<RecoveryMessage, NodeError> {
        Err(no_recovery())
    }
    /// Step 3 (the target): assembles, checks and stores its shares from the helpers' σ.
    async fn recovery_assemble(
        &self,
        _order: &SignedRecoveryOrder,
        _sigmas: &[RecoveryMessage],
    ) -> Result<RecoveryOutcome, NodeError> {
        Err(no_recovery())
    }
}

fn no_recovery() -> NodeError {
    NodeError::BadRequest("this node takes no part in share recovery".into())
}

/// A read nonce: 224 random bits above the version read, so the access log can say
/// which version each read was for and custodians can check the request matches it.
pub fn read_nonce(version: u32) -> U256 {
    let mut bytes = [0u8; 32];
    ehr_crypto::fill_random(&mut bytes[..28]);
    bytes[28..].copy_from_slice(&version.to_be_bytes());
    U256::from_be_bytes(bytes)
}

/// The version a read nonce names.
pub fn nonce_version(nonce: U256) -> u32 {
    let b = nonce.to_be_bytes::<32>();
    u32::from_be_bytes([b[28], b[29], b[30], b[31]])
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}
