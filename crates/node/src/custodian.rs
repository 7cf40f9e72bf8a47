//! The custodian half of a node: checks a share request against the chain and releases
//! this node's key share, re-wrapped to the reader. The share is a block in this node's
//! own store (linked from the record's manifest) that no other node holds.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::manifest::{Custodians, ShareRef, parse_share_block};
use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::Eip712Domain;
use ehr_chain::{Registry, RegistryExt};
use ehr_crypto::dispersal::key_share_digest;
use ehr_crypto::wrap::{self, PublicKey, Wrapped};
use ehr_crypto::{KeyShare, RecordContext};
use ehr_primitives::unix_now;
use ehr_store::{BlobStore, Cid};

use crate::*;

/// The custodian half of a node: checks requests against the chain and releases shares.
pub struct Custodian {
    key: NodeKey,
    registry: Arc<dyn Registry>,
    store: Arc<dyn BlobStore>,
    domain: Eip712Domain,
    /// (reader, nonce, attachment) → request expiry, for refusing replays until they
    /// expire anyway.
    used: Mutex<HashMap<(Address, U256, u32), u64>>,
    /// This node's shares already unwrapped, by manifest CID and attachment (0: the record
    /// key's).
    shares: ShareCache,
    /// This node's position in the node set of each epoch seen current on chain (a set
    /// never changes once numbered, so an entry never goes stale).
    positions: Mutex<HashMap<u32, Option<usize>>>,
    /// Where this node's re-issued shares are (a replaced node's: the manifest names the
    /// old share block), consulted first.
    index: Option<Arc<crate::share_index::ShareIndex>>,
}

/// What a custodian learns from a manifest once: its share (unwrapped and checked against
/// the manifest's digest) and what the chain's record version must match. Manifests are
/// content-addressed, so an entry never goes stale; the share is zeroized on eviction.
/// Keeping it costs no secrecy: the node's own key, held in the same memory, unwraps it.
struct OwnShare {
    /// The share block it came from (`None`: inline in a format-1 manifest). A cached share
    /// is used only while this block is still in the store: deleting it ends the share.
    block: Option<Cid>,
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

/// A manifest and which of its keys (0: the record's, `j`: attachment `j`'s).
type ShareKey = (Cid, u32);

/// The entries and their insertion order.
type CacheInner = (HashMap<ShareKey, Arc<OwnShare>>, VecDeque<ShareKey>);

impl ShareCache {
    const CAPACITY: usize = 4096;

    fn get(&self, key: &ShareKey) -> Option<Arc<OwnShare>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0.get(key).cloned()
    }

    /// Forgets every share of manifest `cid`.
    fn remove(&self, cid: &Cid) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *inner;
        let before = map.len();
        map.retain(|(c, _), _| c != cid);
        if map.len() != before {
            order.retain(|(c, _)| c != cid);
        }
    }

    fn insert(&self, cid: ShareKey, share: Arc<OwnShare>) {
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
            positions: Mutex::new(HashMap::new()),
            index: None,
        })
    }

    /// Consults `index` for this node's share of a manifest before the manifest's link.
    pub(crate) fn set_index(&mut self, index: Arc<crate::share_index::ShareIndex>) {
        self.index = Some(index);
    }

    /// The contract it checks.
    pub(crate) fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// Drops what it learnt from manifest `cid` (its record was erased).
    pub(crate) fn forget(&self, cid: &Cid) {
        self.shares.remove(cid);
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
        if crate::nonce_version(req.nonce) != req.version {
            return Err(NodeError::BadRequest(
                "the nonce does not name the requested version".into(),
            ));
        }
        let reader = req.reader(&self.domain)?;
        if self.is_used(reader, req.nonce, req.attachment) {
            return Err(NodeError::Replayed);
        }
        let internal = |e: ehr_chain::Error| NodeError::Internal(e.to_string());

        // The access must be logged on chain, recently, under this very nonce: only the
        // blocks of the last MAX_REQUEST_TTL seconds are searched.
        let logged = self
            .registry
            .access_log_since(
                req.record_id,
                Some(reader),
                Some(req.nonce),
                now.saturating_sub(MAX_REQUEST_TTL),
            )
            .await
            .map_err(internal)?;
        if logged.is_empty() {
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

        // The current version is found in the blocks of its update alone; an older one
        // needs the record's whole history.
        let current = self
            .registry
            .record(req.record_id)
            .await
            .map_err(internal)?;
        let (owner, digest, codec) = if current.version == req.version {
            (current.owner, current.digest, current.codec)
        } else {
            let versions = self
                .registry
                .record_versions(req.record_id)
                .await
                .map_err(internal)?;
            let v = versions
                .iter()
                .find(|v| v.version == req.version)
                .ok_or_else(|| NodeError::NotFound(format!("version {}", req.version)))?;
            (v.owner, v.digest, v.codec)
        };
        let cid = crate::manifest::manifest_cid(digest, codec)
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let share_key = (cid, req.attachment);
        let cached = match self.shares.get(&share_key) {
            Some(own) => match own.block {
                Some(block) if !self.store.has(&block).await.unwrap_or(false) => {
                    self.shares.remove(&cid);
                    None
                }
                _ => Some(own),
            },
            None => None,
        };
        let own = match cached {
            Some(own) => own,
            None => {
                let own = Arc::new(
                    self.own_share(&cid, req.manifest.as_ref().map(|b| &b[..]), req.attachment)
                        .await?,
                );
                self.shares.insert(share_key, own.clone());
                own
            }
        };
        if own.patient != owner || own.version != req.version {
            return Err(NodeError::Internal(format!(
                "manifest {cid} does not match the chain's record"
            )));
        }
        let (share, ctx, x) = (&own.share, &own.ctx, own.share.x);
        let wrapped = wrap_to_reader(share, ctx, req, &self.domain)?;

        // Only now is the nonce spent: a failed check may be retried.
        if !self.mark_used(reader, req.nonce, req.attachment, req.expiry) {
            return Err(NodeError::Replayed);
        }
        Ok(ShareResponse { x, wrapped })
    }

    /// Reads manifest `cid` (the one the request carries, checked against `cid`, else from
    /// this node's store), then this node's share block (or, in a format-1 manifest, its
    /// inline share), and unwraps it. `attachment` `j > 0`: the share of attachment `j`'s
    /// key instead of the record key's.
    async fn own_share(
        &self,
        cid: &Cid,
        supplied: Option<&[u8]>,
        attachment: u32,
    ) -> Result<OwnShare, NodeError> {
        let manifest = manifest_from(self.store.as_ref(), cid, supplied).await?;
        if attachment > 0 {
            return self.own_attachment_share(cid, &manifest, attachment).await;
        }
        let ours = B256::from(self.key.public.0);
        let reissued = self.index.as_ref().and_then(|idx| idx.get(cid));
        let index = match (&manifest.custodians, reissued) {
            (_, Some((x, _))) => Some(usize::from(x).saturating_sub(1)),
            (Custodians::Keys(keys), None) => keys.iter().position(|k| *k == ours),
            (Custodians::NodeSetEpoch(epoch), None) => self.index_in(*epoch, &manifest).await?,
        }
        .ok_or_else(|| NodeError::NotFound("no share of this record here".into()))?;
        let link = match reissued {
            Some((_, block)) => Some(ShareRef::Block(block)),
            None => manifest.shares.get(index).cloned(),
        }
        .ok_or_else(|| NodeError::NotFound("no share of this record here".into()))?;
        let (wrapped, block) = match &link {
            ShareRef::Inline(w) => (w.clone(), None),
            ShareRef::Block(share) => {
                let block = self.store.get(share).await.map_err(|e| match e {
                    ehr_store::Error::NotFound { .. } => NodeError::NotFound(format!(
                        "this node holds no share of manifest {cid} (share block {share})"
                    )),
                    other => NodeError::Internal(other.to_string()),
                })?;
                let wrapped = parse_share_block(&block)
                    .map_err(|e| NodeError::Internal(format!("share block {share}: {e}")))?;
                (wrapped, Some(*share))
            }
        };
        let x = u8::try_from(index + 1).map_err(|_| NodeError::Internal("index".into()))?;
        let ctx = manifest.context();
        let share = wrap::unwrap_key_share(&self.key.secret, &ctx, x, CUSTODIAN_AAD, &wrapped)
            .map_err(|_| NodeError::Internal("cannot unwrap this node's share".into()))?;
        if manifest.dispersal.key_share_digests.get(index)
            != Some(&key_share_digest(x, &share.share))
        {
            return Err(NodeError::Internal(
                "this node's share fails its digest".into(),
            ));
        }
        Ok(OwnShare {
            block,
            patient: manifest.patient,
            version: manifest.version,
            ctx,
            share,
        })
    }

    /// This node's share of attachment `attachment`'s key (from 1): the share block the
    /// entry names at this node's position, wrapped under the attachment's context.
    async fn own_attachment_share(
        &self,
        cid: &Cid,
        manifest: &RecordManifest,
        attachment: u32,
    ) -> Result<OwnShare, NodeError> {
        let index = attachment - 1;
        let entry = manifest
            .attachments
            .get(index as usize)
            .ok_or_else(|| NodeError::NotFound(format!("attachment {attachment} of {cid}")))?;
        let position = match &manifest.custodians {
            Custodians::NodeSetEpoch(epoch) => self.index_in(*epoch, manifest).await?,
            Custodians::Keys(_) => None,
        }
        .ok_or_else(|| NodeError::NotFound("no share of this record here".into()))?;
        let share_cid = entry.shares[position];
        let block = self.store.get(&share_cid).await.map_err(|e| match e {
            ehr_store::Error::NotFound { .. } => NodeError::NotFound(format!(
                "this node holds no share of attachment {attachment} of {cid}"
            )),
            other => NodeError::Internal(other.to_string()),
        })?;
        let wrapped = parse_share_block(&block)
            .map_err(|e| NodeError::Internal(format!("share block {share_cid}: {e}")))?;
        let x = u8::try_from(position + 1).map_err(|_| NodeError::Internal("index".into()))?;
        let ctx = entry
            .stream_context(manifest.patient, manifest.uid, index)
            .record;
        let share = wrap::unwrap_key_share(
            &self.key.secret,
            &ctx,
            x,
            &crate::manifest::attachment_aad(index),
            &wrapped,
        )
        .map_err(|_| NodeError::Internal("cannot unwrap this node's share".into()))?;
        if entry.share_digests[position] != key_share_digest(x, &share.share) {
            return Err(NodeError::Internal(
                "this node's share fails its digest".into(),
            ));
        }
        Ok(OwnShare {
            block: Some(share_cid),
            patient: manifest.patient,
            version: manifest.version,
            ctx,
            share,
        })
    }

    /// This node's position among the custodians of node-set `epoch`: its key's place in
    /// the chain's node set while that is still the epoch. The contract keeps only the
    /// current set, so after a change the share this node holds is the one in its store.
    async fn index_in(
        &self,
        epoch: u32,
        manifest: &RecordManifest,
    ) -> Result<Option<usize>, NodeError> {
        let known = |p: &Mutex<HashMap<u32, Option<usize>>>| {
            p.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&epoch)
                .copied()
        };
        if let Some(position) = known(&self.positions) {
            return Ok(position);
        }
        let set = self
            .registry
            .node_set()
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        if set.epoch == epoch {
            let ours = B256::from(self.key.public.0);
            let position = set.nodes.iter().position(|(_, key)| *key == ours);
            self.positions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(epoch, position);
            return Ok(position);
        }
        for i in 0..manifest.shares.len() {
            if let Some(share) = manifest.share_cid(i)
                && self.store.has(&share).await.unwrap_or(false)
            {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    fn is_used(&self, reader: Address, nonce: U256, attachment: u32) -> bool {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.contains_key(&(reader, nonce, attachment))
    }

    /// Records a spent nonce (for one key of the version); false if it was spent
    /// meanwhile. Forgets expired ones.
    fn mark_used(&self, reader: Address, nonce: U256, attachment: u32, expiry: u64) -> bool {
        let now = unix_now();
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.len() > 100_000 {
            used.retain(|_, exp| *exp >= now);
        }
        used.insert((reader, nonce, attachment), expiry).is_none()
    }
}

/// Manifest `cid`: the copy a request carries (`supplied`), once it hashes to `cid`, else
/// the one in `store`. Manifests are on `n − k + 1` nodes, so a custodian may not keep the
/// one it needs; a checked copy is as good as its own (and asks the store nothing).
pub(crate) async fn manifest_from(
    store: &dyn BlobStore,
    cid: &Cid,
    supplied: Option<&[u8]>,
) -> Result<RecordManifest, NodeError> {
    let block = match supplied {
        Some(copy) => {
            ehr_store::verify(cid, copy, None).map_err(|_| {
                NodeError::BadRequest(format!(
                    "the manifest sent is not {cid}, the block the chain names"
                ))
            })?;
            copy.to_vec()
        }
        None => store.get(cid).await.map_err(|e| match e {
            ehr_store::Error::NotFound { .. } => NodeError::NotFound(format!(
                "manifest {cid}: {e} (and the request carries none)"
            )),
            other => NodeError::Internal(format!("manifest {cid}: {other}")),
        })?,
    };
    RecordManifest::decode_block(cid, &block)
        .map_err(|e| NodeError::Internal(format!("manifest {cid}: {e}")))
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
        &mut ehr_crypto::rng(),
    )
    .map_err(|_| NodeError::BadRequest("reader key is not a valid X25519 key".into()))
}
