//! Share recovery on nodes: re-issuing a replaced custodian's key shares (of record versions
//! and of ledger epochs) from `k` helper custodians, each running its own step of
//! [`ehr_crypto::recovery`] (see docs/share-recovery.md, "On the node protocol").
//!
//! 1. [`LocalNode::recovery_contribute`]: a helper unwraps *its own* share of every item of
//!    the [`RecoveryOrder`] (its share block, through its share index), makes its masked
//!    pieces, keeps its own (zeroized, in memory) and returns, for every other helper, one
//!    HPKE message to that helper's custodian key with its pieces for all items.
//! 2. [`LocalNode::recovery_relay`]: a helper opens the `k − 1` messages addressed to it,
//!    sums them with its kept piece per item into its σ, and returns one HPKE message to the
//!    target's (new) custodian key.
//! 3. [`LocalNode::recovery_assemble`]: the target opens the `k` σ messages, assembles its
//!    share per item, checks it against the item's key-share digest, wraps it to its own key
//!    and stores it as its own share block, recorded in its share index (the replicated
//!    manifest or epoch header names the old block).
//!
//! Whoever carries the messages (`secure-ehr node replace`) sees only ciphertexts: no piece,
//! σ or share, and never a data key. Here the parties are nodes in one process (the embedded
//! default) or `secure-ehr node` processes reached over HTTP (the `/node/recovery/*`
//! routes, [`RemoteNode`]).
//!
//! Every step takes a [`SignedRecoveryOrder`]: the order signed by the deployment's admin
//! key with an expiry (at most [`MAX_REQUEST_TTL`] ahead). A node refuses an order not
//! signed by the admin address its ledger custody keeps ([`NodeError::Denied`]), an expired
//! one ([`NodeError::Expired`]) and a replayed one ([`NodeError::Replayed`]: a helper
//! contributes to a plan id once and relays it once, a target assembles it once).

use std::collections::HashMap;
use std::sync::Mutex;

use alloy::primitives::{Address, B128, B256, Signature, keccak256};
use alloy::signers::local::PrivateKeySigner;
use ehr_crypto::dispersal::{self, key_share_digest};
use ehr_crypto::recovery::{self as rec, RecoveryPlan};
use ehr_crypto::wrap::{self, PublicKey, Wrapped};
use ehr_crypto::{KeyShare, RecordContext, Threshold};
use ehr_primitives::unix_now;
use ehr_store::Cid;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ledger::{LEDGER_CUSTODIAN_AAD, decode_wrapped, encode_wrapped, epoch_context};
use crate::manifest::{ShareRef, parse_share_block, share_block};
use crate::*;

/// Bytes of one share (every item's pieces and σ are this long).
const SHARE_LEN: usize = 32;

/// One key share to re-issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecoveryItem {
    /// A record version: its manifest.
    Record {
        /// The manifest's CID.
        #[serde(with = "crate::ledger::cid_text")]
        manifest: Cid,
        /// The manifest block, for a helper that does not keep it (a manifest is on
        /// `n − k + 1` nodes); checked against `manifest`, so it is not part of the order's
        /// hash.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block: Option<alloy::primitives::Bytes>,
    },
    /// A ledger epoch, described by its header (which ehr-node does not parse).
    LedgerEpoch {
        /// [`ledger::epoch_id`].
        epoch_id: B256,
        /// The share blocks the header names, in node order.
        #[serde(with = "crate::ledger::cid_list")]
        shares: Vec<Cid>,
        /// The header's key-share digests, in node order.
        key_share_digests: Vec<[u8; 32]>,
    },
}

/// What every party of one recovery agrees on. In JSON: `plan_id` (hex), `k`, `n`,
/// `helpers`, `target`, `custodians` (hex), `items`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "OrderWire", try_from = "OrderWire")]
pub struct RecoveryOrder {
    /// Fresh random bytes: a helper takes part in a plan once.
    pub plan_id: [u8; 16],
    /// The deployment's threshold.
    pub threshold: Threshold,
    /// The helpers' x coordinates (`k` of them, sorted).
    pub helpers: Vec<u8>,
    /// The replaced custodian's x.
    pub target: u8,
    /// Every custodian's X25519 key in node order, the target's being its new key.
    pub custodians: Vec<B256>,
    /// The shares to re-issue, in this order in every message.
    pub items: Vec<RecoveryItem>,
}

impl RecoveryOrder {
    /// The plan ([`RecoveryPlan::new`] checks the helpers and the target).
    pub fn plan(&self) -> Result<RecoveryPlan, NodeError> {
        if self.custodians.len() != self.threshold.n() {
            return Err(NodeError::BadRequest(
                "the order lists another number of custodians than n".into(),
            ));
        }
        RecoveryPlan::new(self.threshold, &self.helpers, self.target)
            .map_err(|e| NodeError::BadRequest(format!("recovery plan: {e}")))
    }

    /// What every message is bound to (its associated data): sha256 of
    /// `"SEHR recovery order v1" ‖ plan id ‖ k ‖ n ‖ helpers ‖ target ‖ custodians ‖ items`.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        h.update(b"SEHR recovery order v1");
        h.update(self.plan_id);
        h.update([self.threshold.k() as u8, self.threshold.n() as u8]);
        h.update([self.helpers.len() as u8]);
        h.update(&self.helpers);
        h.update([self.target]);
        for c in &self.custodians {
            h.update(c);
        }
        h.update((self.items.len() as u64).to_be_bytes());
        let cid = |h: &mut sha2::Sha256, c: &Cid| {
            let b = c.to_bytes();
            h.update((b.len() as u16).to_be_bytes());
            h.update(b);
        };
        for item in &self.items {
            match item {
                RecoveryItem::Record { manifest, .. } => {
                    h.update([1]);
                    cid(&mut h, manifest);
                }
                RecoveryItem::LedgerEpoch {
                    epoch_id,
                    shares,
                    key_share_digests,
                } => {
                    h.update([2]);
                    h.update(epoch_id);
                    h.update([shares.len() as u8]);
                    for s in shares {
                        cid(&mut h, s);
                    }
                    for d in key_share_digests {
                        h.update(d);
                    }
                }
            }
        }
        h.finalize().into()
    }

    /// The x of the custodian with `key`, if the order lists it.
    fn x_of(&self, key: &PublicKey) -> Option<u8> {
        let key = B256::from(key.0);
        self.custodians
            .iter()
            .position(|c| *c == key)
            .and_then(|i| u8::try_from(i + 1).ok())
    }

    fn key_of(&self, x: u8) -> PublicKey {
        PublicKey(self.custodians[usize::from(x) - 1].0)
    }
}

/// [`RecoveryOrder`] on the wire.
#[derive(Serialize, Deserialize)]
struct OrderWire {
    plan_id: B128,
    k: u8,
    n: u8,
    helpers: Vec<u8>,
    target: u8,
    custodians: Vec<B256>,
    items: Vec<RecoveryItem>,
}

impl From<RecoveryOrder> for OrderWire {
    fn from(o: RecoveryOrder) -> Self {
        Self {
            plan_id: B128::from(o.plan_id),
            k: o.threshold.k() as u8,
            n: o.threshold.n() as u8,
            helpers: o.helpers,
            target: o.target,
            custodians: o.custodians,
            items: o.items,
        }
    }
}

impl TryFrom<OrderWire> for RecoveryOrder {
    type Error = String;
    fn try_from(w: OrderWire) -> Result<Self, String> {
        Ok(Self {
            plan_id: w.plan_id.0,
            threshold: Threshold::new(usize::from(w.k), usize::from(w.n))
                .map_err(|e| e.to_string())?,
            helpers: w.helpers,
            target: w.target,
            custodians: w.custodians,
            items: w.items,
        })
    }
}

/// A [`RecoveryOrder`] signed by the deployment's admin key, valid until `expiry`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedRecoveryOrder {
    /// The order.
    pub order: RecoveryOrder,
    /// Unix seconds after which nodes refuse it (at most [`MAX_REQUEST_TTL`] ahead).
    pub expiry: u64,
    /// The admin's signature over [`signing_hash`](Self::signing_hash) (65 bytes).
    pub signature: Signature,
}

impl SignedRecoveryOrder {
    /// Signs `order` with the admin key.
    pub fn sign(
        admin: &PrivateKeySigner,
        order: RecoveryOrder,
        expiry: u64,
    ) -> crate::Result<Self> {
        let mut signed = Self {
            order,
            expiry,
            signature: Signature::test_signature(),
        };
        signed.signature =
            ehr_chain::signing::sign_hash(admin, &signed.signing_hash()).map_err(Error::Signing)?;
        Ok(signed)
    }

    /// The hash that is signed: keccak256 of `"SEHR recovery order signature v1" ‖`
    /// [`RecoveryOrder::hash`] `‖ expiry (8 bytes BE)`.
    pub fn signing_hash(&self) -> B256 {
        let mut buf = b"SEHR recovery order signature v1".to_vec();
        buf.extend_from_slice(&self.order.hash());
        buf.extend_from_slice(&self.expiry.to_be_bytes());
        keccak256(buf)
    }

    /// Who signed it.
    pub fn signer(&self) -> Result<Address, NodeError> {
        self.signature
            .recover_address_from_prehash(&self.signing_hash())
            .map_err(|_| NodeError::BadSignature)
    }

    /// The order, if `admin` signed it and it has not expired.
    fn checked(&self, admin: Address) -> Result<&RecoveryOrder, NodeError> {
        let now = unix_now();
        if self.expiry <= now || self.expiry > now + MAX_REQUEST_TTL {
            return Err(NodeError::Expired);
        }
        if self.signer()? != admin {
            return Err(NodeError::Denied);
        }
        Ok(&self.order)
    }
}

/// The body of `POST /node/recovery/{contribute,relay,assemble}`: the signed order and, for
/// relay and assemble, the messages addressed to the node (pieces, or σ).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryStep {
    /// The admin-signed order.
    pub order: SignedRecoveryOrder,
    /// Pieces (relay) or σ (assemble); empty for contribute.
    #[serde(default)]
    pub messages: Vec<RecoveryMessage>,
}

/// One HPKE message of a recovery: pieces from helper to helper, or a σ from helper to
/// target. Its plaintext is 32 bytes per item of the order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryMessage {
    /// Who made it.
    pub from: u8,
    /// Whom it is wrapped to.
    pub to: u8,
    /// The ciphertext.
    pub wrapped: Wrapped,
}

/// What the target did with each item.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryOutcome {
    /// Items whose share was checked and stored.
    pub stored: usize,
    /// Indices (in the order's items) whose assembled share failed its digest: some helper
    /// sent a wrong piece or σ; retry those with another helper set.
    pub failed: Vec<usize>,
}

/// A helper's own pieces of one plan (32 bytes per item), from step 1 until step 2 takes
/// them (`None` after: the plan id stays spent).
type Kept = Option<Zeroizing<Vec<u8>>>;

/// A helper's own pieces, kept between steps 1 and 2, by plan id.
#[derive(Default)]
pub(crate) struct KeptPieces(Mutex<HashMap<[u8; 16], Kept>>);

fn piece_info(plan_id: &[u8; 16], from: u8, to: u8) -> Vec<u8> {
    [b"SEHR recovery piece v1".as_slice(), plan_id, &[from, to]].concat()
}

fn sigma_info(plan_id: &[u8; 16], from: u8, to: u8) -> Vec<u8> {
    [b"SEHR recovery sigma v1".as_slice(), plan_id, &[from, to]].concat()
}

/// An item as one custodian sees it: what names its share, where the share block is by
/// default, what it is bound to, and the digest it must match.
struct Resolved {
    /// The share index's key: the manifest CID, or the header's share CID for this x.
    of: Cid,
    /// The replicated link to this custodian's share (`Inline` for a format-1 manifest).
    link: ShareRef,
    ctx: RecordContext,
    aad: &'static [u8],
    digest: [u8; 32],
}

impl LocalNode {
    async fn resolve(&self, item: &RecoveryItem, x: u8) -> Result<Resolved, NodeError> {
        let i = usize::from(x) - 1;
        match item {
            RecoveryItem::Record { manifest, block } => {
                let m = crate::custodian::manifest_from(
                    self.store.as_ref(),
                    manifest,
                    block.as_ref().map(|b| &b[..]),
                )
                .await
                .map_err(|e| match e {
                    NodeError::NotFound(m) => NodeError::NotFound(format!("{m} on {}", self.name)),
                    other => other,
                })?;
                let (Some(link), Some(digest)) =
                    (m.shares.get(i), m.dispersal.key_share_digests.get(i))
                else {
                    return Err(NodeError::BadRequest(format!(
                        "manifest {manifest} has no share {x}"
                    )));
                };
                Ok(Resolved {
                    of: *manifest,
                    link: link.clone(),
                    ctx: m.context(),
                    aad: CUSTODIAN_AAD,
                    digest: *digest,
                })
            }
            RecoveryItem::LedgerEpoch {
                epoch_id,
                shares,
                key_share_digests,
            } => {
                let (Some(share), Some(digest)) = (shares.get(i), key_share_digests.get(i)) else {
                    return Err(NodeError::BadRequest(format!(
                        "the epoch lists no share {x}"
                    )));
                };
                Ok(Resolved {
                    of: *share,
                    link: ShareRef::Block(*share),
                    ctx: epoch_context(*epoch_id),
                    aad: LEDGER_CUSTODIAN_AAD,
                    digest: *digest,
                })
            }
        }
    }

    /// This custodian's own share `x` of `item`, unwrapped and checked: from the block its
    /// share index names, else the replicated link.
    async fn own_item_share(&self, r: &Resolved, x: u8) -> Result<KeyShare, NodeError> {
        let indexed = self
            .share_index
            .as_ref()
            .and_then(|idx| idx.get(&r.of))
            .filter(|(ix, _)| *ix == x)
            .map(|(_, block)| block);
        let wrapped = match (indexed, &r.link) {
            (None, ShareRef::Inline(w)) => w.clone(),
            (Some(block), _) | (None, &ShareRef::Block(block)) => {
                let bytes = self.store.get(&block).await.map_err(|e| {
                    NodeError::NotFound(format!("{}: its share block {block}: {e}", self.name))
                })?;
                parse_share_block(&bytes)
                    .ok()
                    .or_else(|| decode_wrapped(&bytes))
                    .ok_or_else(|| NodeError::Internal(format!("share block {block}")))?
            }
        };
        let share = wrap::unwrap_key_share(&self.key.secret, &r.ctx, x, r.aad, &wrapped)
            .map_err(|_| NodeError::Internal(format!("{}: cannot unwrap its share", self.name)))?;
        if !bool::from(key_share_digest(x, &share.share).ct_eq(&r.digest)) {
            return Err(NodeError::Internal(format!(
                "{}: its share fails its digest",
                self.name
            )));
        }
        Ok(share)
    }

    fn my_x(&self, order: &RecoveryOrder) -> Result<u8, NodeError> {
        order
            .x_of(&self.key.public)
            .ok_or_else(|| NodeError::BadRequest(format!("{} is not in the order", self.name)))
    }

    /// Step 1 (a helper): its masked pieces for every other helper, one HPKE message each.
    /// Its own piece stays here until [`recovery_relay`](Self::recovery_relay).
    pub async fn recovery_contribute(
        &self,
        signed: &SignedRecoveryOrder,
    ) -> Result<Vec<RecoveryMessage>, NodeError> {
        let order = signed.checked(self.ledger.admin()?)?;
        let plan = order.plan()?;
        let x = self.my_x(order)?;
        if !plan.helpers().contains(&x) {
            return Err(NodeError::BadRequest(format!(
                "{} is not a helper",
                self.name
            )));
        }
        {
            let mut kept = self.kept_pieces.0.lock().unwrap_or_else(|p| p.into_inner());
            if kept.contains_key(&order.plan_id) {
                return Err(NodeError::Replayed);
            }
            kept.insert(order.plan_id, None);
        }
        let others: Vec<u8> = plan.helpers().iter().copied().filter(|&h| h != x).collect();
        let items = order.items.len();
        let mut own = Zeroizing::new(Vec::with_capacity(items * SHARE_LEN));
        let mut out: Vec<Zeroizing<Vec<u8>>> = others
            .iter()
            .map(|_| Zeroizing::new(Vec::with_capacity(items * SHARE_LEN)))
            .collect();
        let mut rng = ehr_crypto::rng();
        for item in &order.items {
            let r = self.resolve(item, x).await?;
            let share = self.own_item_share(&r, x).await?;
            let pieces = rec::contribute(&plan, x, &share.share, &mut rng)
                .map_err(|e| NodeError::Internal(e.to_string()))?;
            for p in pieces {
                if p.to == x {
                    own.extend_from_slice(p.bytes());
                } else if let Some(j) = others.iter().position(|&h| h == p.to) {
                    out[j].extend_from_slice(p.bytes());
                }
            }
        }
        let aad = order.hash();
        let mut messages = Vec::with_capacity(others.len());
        for (&to, plain) in others.iter().zip(&out) {
            let wrapped = wrap::wrap(
                &order.key_of(to),
                &piece_info(&order.plan_id, x, to),
                &aad,
                plain,
                &mut rng,
            )
            .map_err(|_| NodeError::BadRequest(format!("custodian {to}'s key is not valid")))?;
            messages.push(RecoveryMessage {
                from: x,
                to,
                wrapped,
            });
        }
        self.kept_pieces
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(order.plan_id, Some(own));
        Ok(messages)
    }

    /// Step 2 (a helper): opens the pieces the other helpers sent it (`messages` may hold
    /// others' too; those addressed to it are taken), adds its own and returns its σ for
    /// every item, one HPKE message to the target.
    pub async fn recovery_relay(
        &self,
        signed: &SignedRecoveryOrder,
        messages: &[RecoveryMessage],
    ) -> Result<RecoveryMessage, NodeError> {
        let order = signed.checked(self.ledger.admin()?)?;
        let plan = order.plan()?;
        let x = self.my_x(order)?;
        let own = {
            let mut kept = self.kept_pieces.0.lock().unwrap_or_else(|p| p.into_inner());
            match kept.get_mut(&order.plan_id) {
                // Relayed already (or contributed to and failed): spent.
                Some(slot) => slot.take().ok_or(NodeError::Replayed)?,
                None => {
                    return Err(NodeError::BadRequest(format!(
                        "{} kept no pieces of this plan",
                        self.name
                    )));
                }
            }
        };
        let aad = order.hash();
        let len = order.items.len() * SHARE_LEN;
        let mut received: Vec<(u8, Zeroizing<Vec<u8>>)> = vec![(x, own)];
        for m in messages.iter().filter(|m| m.to == x) {
            let plain = wrap::unwrap(
                &self.key.secret,
                &piece_info(&order.plan_id, m.from, x),
                &aad,
                &m.wrapped,
            )
            .map_err(|_| NodeError::BadRequest(format!("pieces from {} do not open", m.from)))?;
            if plain.len() != len {
                return Err(NodeError::BadRequest(format!(
                    "pieces from {} of the wrong length",
                    m.from
                )));
            }
            received.push((m.from, plain));
        }
        let mut sigmas = Zeroizing::new(Vec::with_capacity(len));
        for j in 0..order.items.len() {
            let slices: Vec<(u8, &[u8])> = received
                .iter()
                .map(|(from, b)| (*from, &b[j * SHARE_LEN..(j + 1) * SHARE_LEN]))
                .collect();
            let sigma = rec::relay(&plan, x, &slices)
                .map_err(|e| NodeError::BadRequest(format!("pieces: {e}")))?;
            sigmas.extend_from_slice(sigma.bytes());
        }
        let target = order.target;
        let wrapped = wrap::wrap(
            &order.key_of(target),
            &sigma_info(&order.plan_id, x, target),
            &aad,
            &sigmas,
            &mut ehr_crypto::rng(),
        )
        .map_err(|_| NodeError::BadRequest("the target's key is not valid".into()))?;
        Ok(RecoveryMessage {
            from: x,
            to: target,
            wrapped,
        })
    }

    /// Step 3 (the target): assembles its share of every item from the helpers' σ, checks
    /// each against its digest, and stores those that match as its own share blocks (in
    /// its share index, which must be open: [`with_archive_dir`](Self::with_archive_dir)).
    /// The manifests of record items must be in its store already.
    pub async fn recovery_assemble(
        &self,
        signed: &SignedRecoveryOrder,
        sigmas: &[RecoveryMessage],
    ) -> Result<RecoveryOutcome, NodeError> {
        let order = signed.checked(self.ledger.admin()?)?;
        let plan = order.plan()?;
        let x = self.my_x(order)?;
        if x != order.target {
            return Err(NodeError::BadRequest(format!(
                "{} is not the target",
                self.name
            )));
        }
        // A plan is assembled once (marked spent below, once its σ assembled).
        if self
            .kept_pieces
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&order.plan_id)
        {
            return Err(NodeError::Replayed);
        }
        let index = self.share_index.as_ref().ok_or_else(|| {
            NodeError::Internal("this node keeps no share index (no directory)".into())
        })?;
        let aad = order.hash();
        let len = order.items.len() * SHARE_LEN;
        let mut received: Vec<(u8, Zeroizing<Vec<u8>>)> = Vec::with_capacity(sigmas.len());
        for m in sigmas.iter().filter(|m| m.to == x) {
            let plain = wrap::unwrap(
                &self.key.secret,
                &sigma_info(&order.plan_id, m.from, x),
                &aad,
                &m.wrapped,
            )
            .map_err(|_| NodeError::BadRequest(format!("σ from {} does not open", m.from)))?;
            if plain.len() != len {
                return Err(NodeError::BadRequest(format!(
                    "σ from {} of the wrong length",
                    m.from
                )));
            }
            received.push((m.from, plain));
        }
        let mut outcome = RecoveryOutcome::default();
        let mut rng = ehr_crypto::rng();
        for (j, item) in order.items.iter().enumerate() {
            let slices: Vec<(u8, &[u8])> = received
                .iter()
                .map(|(from, b)| (*from, &b[j * SHARE_LEN..(j + 1) * SHARE_LEN]))
                .collect();
            let share = dispersal::assemble_key_share(&plan, &slices)
                .map_err(|e| NodeError::BadRequest(format!("σ: {e}")))?;
            let r = self.resolve(item, x).await?;
            if !bool::from(key_share_digest(x, &share.share).ct_eq(&r.digest)) {
                outcome.failed.push(j);
                continue;
            }
            let wrapped = wrap::wrap_key_share(&self.key.public, &r.ctx, &share, r.aad, &mut rng)
                .map_err(|e| NodeError::Internal(e.to_string()))?;
            let block = match item {
                RecoveryItem::Record { .. } => share_block(&wrapped),
                RecoveryItem::LedgerEpoch { .. } => encode_wrapped(&wrapped),
            };
            let cid = ehr_store::cids::raw_cid(&block);
            self.store
                .put_block(&cid, &block)
                .await
                .map_err(|e| NodeError::Internal(e.to_string()))?;
            index
                .insert(r.of, x, cid)
                .map_err(|e| NodeError::Internal(e.to_string()))?;
            outcome.stored += 1;
        }
        self.kept_pieces
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(order.plan_id, None);
        Ok(outcome)
    }
}
