//! Ledger custody: what a node keeps for the ledger archive (`ehr-ledger`) besides blocks.
//!
//! - Its **ledger-epoch key share**: a block on this node alone (HPKE-wrapped to this
//!   node's X25519 key under [`LEDGER_CUSTODIAN_AAD`], for the epoch's [`epoch_context`]).
//!   The node releases it only to a [`LedgerShareRequest`] signed by the deployment's admin
//!   key, not expired, re-wrapped to the requester's one-time X25519 key with the request's
//!   signing hash as associated data, so the answer opens only for that request. A replayed
//!   request gains nothing: the answer opens only with the one-time secret key of whoever
//!   made the request. Record key shares cannot be asked for this way: they are wrapped
//!   under another associated data and context, and their unwrapping fails.
//! - The newest **archive head** the admin signed ([`ArchiveHead`]): where a restore starts.
//!   A node refuses a head the admin did not sign and ignores one older than the one it
//!   has (by epoch, then last block), so a late retry cannot roll it back.
//!
//! The node learns the admin address from the registry contract (`admin()`) when it starts
//! with a chain, or from its caller ([`LocalNode::without_chain`](crate::LocalNode::without_chain))
//! for a restore. With [`LocalNode::with_archive_dir`](crate::LocalNode::with_archive_dir) it
//! keeps both in that directory (`archive-admin` — the address in hex — and
//! `archive-head.json`, each replaced crash-safely), so it still answers when the chain is
//! the thing that was lost.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alloy::primitives::{Address, B256, Signature, keccak256};
use alloy::signers::local::PrivateKeySigner;
use ehr_crypto::RecordContext;
use ehr_crypto::wrap::{self, PublicKey};
use ehr_primitives::unix_now;
use ehr_store::{BlobStore, Cid};
use serde::{Deserialize, Serialize};

use crate::*;

/// The associated data an epoch key share is wrapped under for its custodian.
pub const LEDGER_CUSTODIAN_AAD: &[u8] = b"SEHR ledger custodian share v1";

/// The largest archive head body a node accepts (a real one is ~250 bytes of JSON).
pub const MAX_ARCHIVE_HEAD: usize = 4 * 1024;

/// The id of ledger epoch `epoch` of chain `chain_id`:
/// `sha256("SEHR ledger epoch" ‖ chain_id (8 bytes BE) ‖ epoch (8 bytes BE))`.
pub fn epoch_id(chain_id: u64, epoch: u64) -> B256 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"SEHR ledger epoch");
    h.update(chain_id.to_be_bytes());
    h.update(epoch.to_be_bytes());
    B256::from(<[u8; 32]>::from(h.finalize()))
}

/// What an epoch's ciphertext and key shares are bound to: no patient (all zero), the
/// epoch id as the record id, version 1.
pub fn epoch_context(epoch_id: B256) -> RecordContext {
    RecordContext {
        patient: [0; 20],
        record_id: epoch_id.0,
        version: 1,
    }
}

/// The admin's request for one custodian's share of one ledger epoch's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerShareRequest {
    /// The epoch ([`epoch_id`]).
    pub epoch_id: B256,
    /// The share's x coordinate (custodian `x - 1`).
    pub x: u8,
    /// The CID of the block holding this custodian's wrapped share (named by the epoch header).
    #[serde(with = "cid_text")]
    pub share: Cid,
    /// Unix seconds after which the node refuses the request (at most [`MAX_REQUEST_TTL`] ahead).
    pub expiry: u64,
    /// The requester's one-time X25519 public key; the share comes back wrapped to it.
    pub requester_key: B256,
    /// The admin's signature over [`signing_hash`](Self::signing_hash) (65 bytes).
    pub signature: Signature,
}

impl LedgerShareRequest {
    /// Signs a request with the admin key.
    pub fn sign(
        admin: &PrivateKeySigner,
        epoch_id: B256,
        x: u8,
        share: Cid,
        expiry: u64,
        requester_key: &PublicKey,
    ) -> Result<Self> {
        let mut req = Self {
            epoch_id,
            x,
            share,
            expiry,
            requester_key: B256::from(requester_key.0),
            signature: Signature::test_signature(),
        };
        req.signature =
            ehr_chain::signing::sign_hash(admin, &req.signing_hash()).map_err(Error::Signing)?;
        Ok(req)
    }

    /// The hash that is signed: keccak256 of
    /// `"SEHR ledger share request v1" ‖ epoch_id ‖ x ‖ len(share CID) (2 bytes BE) ‖ share CID ‖
    /// expiry (8 bytes BE) ‖ requester_key`.
    pub fn signing_hash(&self) -> B256 {
        let cid = self.share.to_bytes();
        let mut buf = Vec::with_capacity(128 + cid.len());
        buf.extend_from_slice(b"SEHR ledger share request v1");
        buf.extend_from_slice(self.epoch_id.as_slice());
        buf.push(self.x);
        buf.extend_from_slice(&(cid.len() as u16).to_be_bytes());
        buf.extend_from_slice(&cid);
        buf.extend_from_slice(&self.expiry.to_be_bytes());
        buf.extend_from_slice(self.requester_key.as_slice());
        keccak256(buf)
    }

    /// Who signed it.
    pub fn signer(&self) -> Result<Address, NodeError> {
        self.signature
            .recover_address_from_prehash(&self.signing_hash())
            .map_err(|_| NodeError::BadSignature)
    }
}

/// The newest sealed epoch of a deployment's ledger archive, signed by the admin key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveHead {
    /// The chain the archive is of.
    pub chain_id: u64,
    /// The newest epoch's number.
    pub epoch: u64,
    /// The newest block that epoch holds (`None`: no block archived yet).
    pub last_block: Option<u64>,
    /// The CID of that epoch's header block.
    #[serde(with = "cid_text")]
    pub header: Cid,
    /// The admin's signature over [`signing_hash`](Self::signing_hash).
    pub signature: Signature,
}

impl ArchiveHead {
    /// Signs a head with the admin key.
    pub fn sign(
        admin: &PrivateKeySigner,
        chain_id: u64,
        epoch: u64,
        last_block: Option<u64>,
        header: Cid,
    ) -> Result<Self> {
        let mut head = Self {
            chain_id,
            epoch,
            last_block,
            header,
            signature: Signature::test_signature(),
        };
        head.signature =
            ehr_chain::signing::sign_hash(admin, &head.signing_hash()).map_err(Error::Signing)?;
        Ok(head)
    }

    /// The hash that is signed: keccak256 of `"SEHR archive head v1" ‖ chain_id ‖ epoch ‖
    /// (last_block + 1, 0 for none) (8 bytes BE each) ‖ header CID bytes`.
    pub fn signing_hash(&self) -> B256 {
        let mut buf = b"SEHR archive head v1".to_vec();
        buf.extend_from_slice(&self.chain_id.to_be_bytes());
        buf.extend_from_slice(&self.epoch.to_be_bytes());
        let last = self.last_block.map_or(0, |b| b.wrapping_add(1));
        buf.extend_from_slice(&last.to_be_bytes());
        buf.extend_from_slice(&self.header.to_bytes());
        keccak256(buf)
    }

    /// Who signed it.
    pub fn signer(&self) -> Result<Address, NodeError> {
        self.signature
            .recover_address_from_prehash(&self.signing_hash())
            .map_err(|_| NodeError::BadSignature)
    }

    /// The order heads are compared in: epoch, then last block.
    fn rank(&self) -> (u64, u64) {
        (self.epoch, self.last_block.map_or(0, |b| b.wrapping_add(1)))
    }
}

/// A node's ledger custody: its key, the admin it answers, the head it keeps.
pub(crate) struct LedgerCustody {
    key: NodeKey,
    admin: Option<Address>,
    head: Mutex<Option<ArchiveHead>>,
    dir: Option<PathBuf>,
    /// Where this node's re-issued epoch shares are (keyed by the share CID the epoch
    /// header names), consulted first.
    index: Option<std::sync::Arc<crate::share_index::ShareIndex>>,
}

const ADMIN_FILE: &str = "archive-admin";
const HEAD_FILE: &str = "archive-head.json";

impl LedgerCustody {
    pub(crate) fn new(key: NodeKey, admin: Option<Address>) -> Self {
        Self {
            key,
            admin,
            head: Mutex::new(None),
            dir: None,
            index: None,
        }
    }

    /// Consults `index` for this node's share of an epoch before the header's link.
    pub(crate) fn set_index(&mut self, index: std::sync::Arc<crate::share_index::ShareIndex>) {
        self.index = Some(index);
    }

    pub(crate) fn key(&self) -> &NodeKey {
        &self.key
    }

    /// Keeps the admin address and the head in `dir`: an admin already known (from the
    /// chain) is written there; one not known is read from there. A head kept there is
    /// loaded if the admin signed it.
    pub(crate) fn with_dir(mut self, dir: &Path) -> crate::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| ehr_fs_util::Error::io(dir, e))?;
        let admin_path = dir.join(ADMIN_FILE);
        match self.admin {
            Some(admin) => {
                let text = format!("{admin:#x}\n");
                let same = std::fs::read_to_string(&admin_path).is_ok_and(|t| t == text);
                if !same {
                    ehr_fs_util::replace(&admin_path, text.as_bytes())?;
                }
            }
            None => {
                if let Ok(text) = std::fs::read_to_string(&admin_path) {
                    self.admin = text.trim().parse().ok();
                }
            }
        }
        let head_path = dir.join(HEAD_FILE);
        if let Ok(bytes) = std::fs::read(&head_path)
            && let Ok(head) = serde_json::from_slice::<ArchiveHead>(&bytes)
            && self.admin.is_some_and(|a| head.signer().ok() == Some(a))
        {
            *self.head.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(head);
        }
        self.dir = Some(dir.to_path_buf());
        Ok(self)
    }

    /// The deployment's admin address this node answers (recovery orders are checked
    /// against it too).
    pub(crate) fn admin(&self) -> Result<Address, NodeError> {
        self.admin.ok_or_else(|| {
            NodeError::BadRequest("this node does not know the deployment's admin".into())
        })
    }

    /// Releases this node's share of a ledger epoch's key to the admin.
    pub(crate) async fn release(
        &self,
        store: &dyn BlobStore,
        req: &LedgerShareRequest,
    ) -> Result<ShareResponse, NodeError> {
        let now = unix_now();
        if req.expiry <= now || req.expiry > now + MAX_REQUEST_TTL {
            return Err(NodeError::Expired);
        }
        let admin = self.admin()?;
        if req.signer()? != admin {
            return Err(NodeError::Denied);
        }
        // A replaced node's share was re-issued into a block the header does not name.
        let share_cid = self
            .index
            .as_ref()
            .and_then(|idx| idx.get(&req.share))
            .filter(|(x, _)| *x == req.x)
            .map_or(req.share, |(_, block)| block);
        let block = store
            .get(&share_cid)
            .await
            .map_err(|e| NodeError::NotFound(format!("ledger share {}: {e}", req.share)))?;
        let wrapped = decode_wrapped(&block).ok_or_else(|| {
            NodeError::NotFound(format!("block {} is not a ledger share", req.share))
        })?;
        let ctx = epoch_context(req.epoch_id);
        let share = wrap::unwrap_key_share(
            &self.key.secret,
            &ctx,
            req.x,
            LEDGER_CUSTODIAN_AAD,
            &wrapped,
        )
        .map_err(|_| {
            NodeError::NotFound("no share of this epoch for this custodian here".into())
        })?;
        let requester = PublicKey(req.requester_key.0);
        let wrapped = wrap::wrap_key_share(
            &requester,
            &ctx,
            &share,
            req.signing_hash().as_slice(),
            &mut ehr_crypto::rng(),
        )
        .map_err(|_| NodeError::BadRequest("requester key is not a valid X25519 key".into()))?;
        Ok(ShareResponse { x: req.x, wrapped })
    }

    /// Keeps `head` if the admin signed it and it is not older than the one kept (an older
    /// one is ignored; one not signed by the admin is refused).
    pub(crate) fn put_head(&self, head: &ArchiveHead) -> Result<(), NodeError> {
        let admin = self.admin()?;
        if head.signer()? != admin {
            return Err(NodeError::BadSignature);
        }
        let mut kept = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = kept.as_ref() {
            if old.chain_id != head.chain_id {
                return Err(NodeError::BadRequest(
                    "the head is of another chain than the one kept".into(),
                ));
            }
            // An older head (a late retry) changes nothing: the newest is kept.
            if old.rank() > head.rank() {
                return Ok(());
            }
        }
        if let Some(dir) = &self.dir {
            let bytes = serde_json::to_vec(head).map_err(|e| NodeError::Internal(e.to_string()))?;
            ehr_fs_util::replace(&dir.join(HEAD_FILE), &bytes)
                .map_err(|e| NodeError::Internal(e.to_string()))?;
        }
        *kept = Some(head.clone());
        Ok(())
    }

    pub(crate) fn head(&self) -> Result<ArchiveHead, NodeError> {
        self.head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| NodeError::NotFound("no archive head".into()))
    }
}

/// The bytes of a block holding one wrapped share: `enc` (32 bytes) ‖ ciphertext.
pub fn encode_wrapped(w: &wrap::Wrapped) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + w.ciphertext.len());
    out.extend_from_slice(&w.enc);
    out.extend_from_slice(&w.ciphertext);
    out
}

/// Reads a block written by [`encode_wrapped`] (a share: 32 + 48 bytes).
pub fn decode_wrapped(block: &[u8]) -> Option<wrap::Wrapped> {
    if block.len() != 32 + 32 + 16 {
        return None;
    }
    let mut enc = [0u8; 32];
    enc.copy_from_slice(&block[..32]);
    Some(wrap::Wrapped {
        enc,
        ciphertext: block[32..].to_vec(),
    })
}

/// CIDs in JSON as their usual text form.
pub(crate) mod cid_text {
    use ehr_store::Cid;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cid: &Cid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&cid.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        let text = String::deserialize(d)?;
        ehr_store::parse_cid(&text).map_err(serde::de::Error::custom)
    }
}

/// Lists of CIDs in JSON as their usual text forms.
pub(crate) mod cid_list {
    use ehr_store::Cid;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cids: &[Cid], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(cids.iter().map(|c| c.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cid>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| ehr_store::parse_cid(t).map_err(serde::de::Error::custom))
            .collect()
    }
}
