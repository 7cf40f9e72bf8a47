//! Storage and custodian nodes.
//!
//! A node keeps content-addressed blocks (record fragments and manifests) and holds one
//! X25519 key: the custodian key its Shamir shares of record keys are wrapped to. It
//! releases a share only to a reader who
//! 1. signed a [`ShareRequest`] (EIP-712) that has not expired and was not used before,
//! 2. is allowed by the registry contract now ([`RegistryExt::can_access`]), and
//! 3. has an `AccessLogged` event on chain for exactly that record and nonce, logged in
//!    the last [`MAX_REQUEST_TTL`] seconds,
//!
//! and it releases the share re-wrapped (HPKE) to the reader's one-time X25519 key, bound
//! to the request. No node ever sees a whole key or a whole record.
//!
//! [`Node`] is the boundary: [`LocalNode`] runs in-process (the embedded default); the
//! HTTP client and server for `secure-ehr node` live in the `ehr-node` crate.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, Signature, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};
use async_trait::async_trait;
use ehr_chain::{Registry, RegistryExt};
use ehr_crypto::dispersal::key_share_digest;
use ehr_crypto::wrap::{self, PublicKey, SecretKey, Wrapped};
use ehr_crypto::{KeyShare, RecordContext};
use ehr_store::{BlobStore, Cid};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::manifest::RecordManifest;

/// A share request is valid for at most this long (seconds), and the access it refers to
/// must have been logged at most this long before the node checks it.
pub const MAX_REQUEST_TTL: u64 = 600;

/// The associated data a custodian's share is wrapped under in a manifest.
pub const CUSTODIAN_AAD: &[u8] = b"SEHR custodian share v1";

/// The EIP-712 domain name of share requests.
pub const DOMAIN_NAME: &str = "SecureEHR";

mod typed {
    #![allow(missing_docs)]
    alloy::sol! {
        /// What a reader signs to ask a custodian for its key share (EIP-712).
        struct ShareRequest {
            uint256 recordId;
            uint32 version;
            uint256 nonce;
            uint64 expiry;
            bytes32 readerKey;
        }
    }
}

/// The EIP-712 domain of share requests on one deployment.
pub fn domain(chain_id: u64, contract: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: "1",
        chain_id: chain_id,
        verifying_contract: contract,
    }
}

/// A reader's signed request for key shares of one record version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRequest {
    /// The record.
    pub record_id: u64,
    /// Its version.
    pub version: u32,
    /// The nonce of the reader's `logAccess` (or `emergencyAccess`) transaction.
    pub nonce: U256,
    /// Unix seconds after which custodians refuse the request.
    pub expiry: u64,
    /// The reader's one-time X25519 public key; shares come back wrapped to it.
    pub reader_key: B256,
    /// The reader's EIP-712 signature (65 bytes).
    pub signature: Signature,
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
    ) -> Result<Self, NodeError> {
        let mut req = Self {
            record_id,
            version,
            nonce,
            expiry,
            reader_key: B256::from(reader_key.0),
            signature: Signature::test_signature(),
        };
        req.signature = ehr_chain::signing::sign_hash(signer, &req.signing_hash(domain))
            .map_err(|e| NodeError::BadRequest(e.to_string()))?;
        Ok(req)
    }

    /// The EIP-712 hash that is signed.
    pub fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        typed::ShareRequest {
            recordId: U256::from(self.record_id),
            version: self.version,
            nonce: self.nonce,
            expiry: self.expiry,
            readerKey: self.reader_key,
        }
        .eip712_signing_hash(domain)
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
    /// Returns a block. Callers verify the bytes against `cid` again.
    async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, NodeError>;
    /// Removes a block (orphan collection).
    async fn delete_block(&self, cid: &Cid) -> Result<(), NodeError>;
    /// Releases this custodian's key share for a logged, allowed, signed request.
    async fn release_share(&self, request: &ShareRequest) -> Result<ShareResponse, NodeError>;
}

/// A node's long-term key: a 32-byte seed from which its X25519 custodian key and its
/// identity address are derived. Zeroized on drop.
pub struct NodeKey {
    secret: SecretKey,
    public: PublicKey,
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
        let seed = crate::keyfile::load_or_create(path)?;
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The custodian half of a node: checks requests against the chain and releases shares.
pub struct Custodian {
    key: NodeKey,
    registry: Arc<dyn Registry>,
    store: Arc<dyn BlobStore>,
    domain: Eip712Domain,
    /// (reader, nonce) → request expiry, for refusing replays until they expire anyway.
    used: Mutex<HashMap<(Address, U256), u64>>,
    /// This node's shares already unwrapped, by manifest CID.
    shares: ShareCache,
}

/// What a custodian learns from a manifest once: its share (unwrapped and checked against
/// the manifest's digest) and what the chain's record version must match. Manifests are
/// content-addressed, so an entry never goes stale; the share is zeroized on eviction.
/// Keeping it costs no secrecy: the node's own key, held in the same memory, unwraps it.
struct OwnShare {
    patient: Address,
    version: u32,
    ctx: RecordContext,
    share: KeyShare,
}

/// A bounded map, oldest entry evicted first.
#[derive(Default)]
struct ShareCache {
    inner: Mutex<CacheInner>,
}

/// The entries and their insertion order.
type CacheInner = (HashMap<Cid, Arc<OwnShare>>, VecDeque<Cid>);

impl ShareCache {
    const CAPACITY: usize = 4096;

    fn get(&self, cid: &Cid) -> Option<Arc<OwnShare>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0.get(cid).cloned()
    }

    fn insert(&self, cid: Cid, share: Arc<OwnShare>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *inner;
        if map.insert(cid, share).is_none() {
            order.push_back(cid);
            while order.len() > Self::CAPACITY {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }
}

impl fmt::Debug for Custodian {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Custodian")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Custodian {
    /// A custodian with `key`, checking `registry`, reading manifests from `store`.
    pub async fn new(
        key: NodeKey,
        registry: Arc<dyn Registry>,
        store: Arc<dyn BlobStore>,
    ) -> crate::Result<Self> {
        let info = registry.info().await?;
        Ok(Self {
            key,
            domain: domain(info.chain_id, info.contract),
            registry,
            store,
            used: Mutex::new(HashMap::new()),
            shares: ShareCache::default(),
        })
    }

    /// Its identity and public key.
    pub fn info(&self) -> NodeInfo {
        self.key.info()
    }

    /// The whole check, then the share re-wrapped to the reader.
    pub async fn release(&self, req: &ShareRequest) -> Result<ShareResponse, NodeError> {
        let now = unix_now();
        if req.expiry <= now || req.expiry > now + MAX_REQUEST_TTL {
            return Err(NodeError::Expired);
        }
        if crate::flows::nonce_version(req.nonce) != req.version {
            return Err(NodeError::BadRequest(
                "the nonce does not name the requested version".into(),
            ));
        }
        let reader = req.reader(&self.domain)?;
        if self.is_used(reader, req.nonce) {
            return Err(NodeError::Replayed);
        }
        let internal = |e: ehr_chain::Error| NodeError::Internal(e.to_string());

        // The access must be logged on chain, recently, under this very nonce.
        let logged = self
            .registry
            .access_log(req.record_id, Some(reader), Some(req.nonce))
            .await
            .map_err(internal)?;
        if !logged
            .iter()
            .any(|e| now.saturating_sub(e.timestamp) <= MAX_REQUEST_TTL)
        {
            return Err(NodeError::NotLogged);
        }
        // And the contract must still allow it (a revocation since then wins).
        if !self
            .registry
            .can_access(reader, req.record_id)
            .await
            .map_err(internal)?
        {
            return Err(NodeError::Denied);
        }

        let versions = self
            .registry
            .record_versions(req.record_id)
            .await
            .map_err(internal)?;
        let v = versions
            .iter()
            .find(|v| v.version == req.version)
            .ok_or_else(|| NodeError::NotFound(format!("version {}", req.version)))?;
        let cid = crate::manifest::manifest_cid(v.digest, v.codec)
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let own = match self.shares.get(&cid) {
            Some(own) => own,
            None => {
                let own = Arc::new(self.own_share(&cid).await?);
                self.shares.insert(cid, own.clone());
                own
            }
        };
        if own.patient != v.owner || own.version != req.version {
            return Err(NodeError::Internal(format!(
                "manifest {cid} does not match the chain's record"
            )));
        }
        let (share, ctx, x) = (&own.share, &own.ctx, own.share.x);
        let wrapped = wrap_to_reader(share, ctx, req, &self.domain)?;

        // Only now is the nonce spent: a failed check may be retried.
        if !self.mark_used(reader, req.nonce, req.expiry) {
            return Err(NodeError::Replayed);
        }
        Ok(ShareResponse { x, wrapped })
    }

    /// Reads manifest `cid` from this node's store and unwraps this node's share of it.
    async fn own_share(&self, cid: &Cid) -> Result<OwnShare, NodeError> {
        let block = self
            .store
            .get(cid)
            .await
            .map_err(|e| NodeError::NotFound(format!("manifest {cid}: {e}")))?;
        let manifest = RecordManifest::decode(&block)
            .map_err(|e| NodeError::Internal(format!("manifest {cid}: {e}")))?;
        let ours = B256::from(self.key.public.0);
        let index = manifest
            .custodians
            .iter()
            .position(|k| *k == ours)
            .ok_or_else(|| NodeError::NotFound("no share of this record here".into()))?;
        let x = u8::try_from(index + 1).map_err(|_| NodeError::Internal("index".into()))?;
        let ctx = manifest.context();
        let share = wrap::unwrap_key_share(
            &self.key.secret,
            &ctx,
            x,
            CUSTODIAN_AAD,
            &manifest.wrapped_shares[index],
        )
        .map_err(|_| NodeError::Internal("cannot unwrap this node's share".into()))?;
        if manifest.dispersal.key_share_digests.get(index)
            != Some(&key_share_digest(x, &share.share))
        {
            return Err(NodeError::Internal(
                "this node's share fails its digest".into(),
            ));
        }
        Ok(OwnShare {
            patient: manifest.patient,
            version: manifest.version,
            ctx,
            share,
        })
    }

    fn is_used(&self, reader: Address, nonce: U256) -> bool {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.contains_key(&(reader, nonce))
    }

    /// Records a spent nonce; false if it was spent meanwhile. Forgets expired ones.
    fn mark_used(&self, reader: Address, nonce: U256, expiry: u64) -> bool {
        let now = unix_now();
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.len() > 100_000 {
            used.retain(|_, exp| *exp >= now);
        }
        used.insert((reader, nonce), expiry).is_none()
    }
}

fn wrap_to_reader(
    share: &KeyShare,
    ctx: &RecordContext,
    req: &ShareRequest,
    domain: &Eip712Domain,
) -> Result<Wrapped, NodeError> {
    let reader_key = PublicKey(req.reader_key.0);
    wrap::wrap_key_share(
        &reader_key,
        ctx,
        share,
        &req.response_aad(domain),
        &mut crate::flows::rng(),
    )
    .map_err(|_| NodeError::BadRequest("reader key is not a valid X25519 key".into()))
}

/// A node in this process: a block store and a custodian.
pub struct LocalNode {
    name: String,
    store: Arc<dyn BlobStore>,
    custodian: Custodian,
}

impl fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalNode")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LocalNode {
    /// A node named `name` over `store`, with custodian `key`, checking `registry`.
    pub async fn new(
        name: impl Into<String>,
        key: NodeKey,
        registry: Arc<dyn Registry>,
        store: Arc<dyn BlobStore>,
    ) -> crate::Result<Self> {
        Ok(Self {
            name: name.into(),
            custodian: Custodian::new(key, registry, store.clone()).await?,
            store,
        })
    }

    /// The block store.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }
}

fn store_error(e: ehr_store::Error) -> NodeError {
    match e {
        ehr_store::Error::NotFound { .. } => NodeError::NotFound(e.to_string()),
        other => NodeError::Internal(other.to_string()),
    }
}

#[async_trait]
impl Node for LocalNode {
    fn name(&self) -> &str {
        &self.name
    }
    async fn info(&self) -> Result<NodeInfo, NodeError> {
        Ok(self.custodian.info())
    }
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        self.store.put_block(cid, data).await.map_err(store_error)
    }
    async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, NodeError> {
        self.store.get(cid).await.map_err(store_error)
    }
    async fn delete_block(&self, cid: &Cid) -> Result<(), NodeError> {
        self.store.delete(cid).await.map_err(store_error)
    }
    async fn release_share(&self, request: &ShareRequest) -> Result<ShareResponse, NodeError> {
        self.custodian.release(request).await
    }
}
