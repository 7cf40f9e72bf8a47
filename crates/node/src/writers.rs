//! Who may store and delete blocks on a node shared by a network of organisations.
//!
//! A server writes with a request signature instead of a shared token:
//! `Authorization: SEHR-Org <expiry>.<signature>` on `PUT` and `DELETE /node/blocks/{cid}`,
//! the signature (65 bytes, hex) by its organisation's registrar key (or the consortium
//! admin's, organisation 0) over [`write_hash`]: the operation, the CID, the node's own
//! address (so a request for one node is worth nothing at another) and an expiry at most
//! [`WRITE_TTL`] ahead. The node recovers the signer and asks the chain which organisation
//! it is the registrar of ([`Writers`]; answers kept [`ORG_CACHE_TTL`]). A signer that is
//! neither the admin nor a current registrar is refused.
//!
//! The node remembers who stored each block ([`Owners`], `block-owners.log` in its data
//! directory) and deletes a block only for an organisation that stored it: another
//! organisation's `DELETE` is refused; when two stored the same bytes, each `DELETE`
//! drops only its own claim and the block goes with the last. The node token, when one is
//! set, is the node operator's: it stores and deletes anything.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Signature, keccak256};
use alloy::signers::local::PrivateKeySigner;
use ehr_chain::{Registry, RegistryExt};
use ehr_primitives::unix_now;
use ehr_store::Cid;

use crate::NodeError;

/// The longest a write signature may be valid for, in seconds.
pub const WRITE_TTL: u64 = 300;
/// How long a node keeps what the chain said of a signer.
pub const ORG_CACHE_TTL: Duration = Duration::from_secs(10);
/// The owners file in a node's data directory.
pub const OWNERS_FILE: &str = "block-owners.log";
/// The `Authorization` scheme of a signed write.
pub const SCHEME: &str = "SEHR-Org ";

/// What a signed write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// `PUT /node/blocks/{cid}`.
    Put,
    /// `DELETE /node/blocks/{cid}`.
    Delete,
}

/// Who wrote: the node's operator (its token) or an organisation (its signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Writer {
    /// The node token's holder.
    Operator,
    /// Organisation `id` (0: the consortium admin).
    Organisation(u32),
}

/// The hash a write signature signs: keccak256 of `"SEHR node write v1" ‖ op (1 PUT, 2
/// DELETE) ‖ the node's address ‖ the CID's bytes ‖ expiry (8 bytes BE)`.
pub fn write_hash(op: WriteOp, node: Address, cid: &Cid, expiry: u64) -> B256 {
    let mut buf = b"SEHR node write v1".to_vec();
    buf.push(match op {
        WriteOp::Put => 1,
        WriteOp::Delete => 2,
    });
    buf.extend_from_slice(node.as_slice());
    buf.extend_from_slice(&cid.to_bytes());
    buf.extend_from_slice(&expiry.to_be_bytes());
    keccak256(buf)
}

/// The `Authorization` header value of a write to node `node`, signed by `signer`, valid
/// for [`WRITE_TTL`] from now.
pub fn authorization(
    signer: &PrivateKeySigner,
    op: WriteOp,
    node: Address,
    cid: &Cid,
) -> Result<String, NodeError> {
    let expiry = unix_now() + WRITE_TTL;
    let sig = ehr_chain::signing::sign_hash(signer, &write_hash(op, node, cid, expiry))
        .map_err(|e| NodeError::Internal(e.to_string()))?;
    Ok(format!(
        "{SCHEME}{expiry}.{}",
        alloy::primitives::hex::encode(sig.as_bytes())
    ))
}

/// The signer of a write's `Authorization` value (after [`SCHEME`]), if it is well formed
/// and not expired.
pub fn signer_of(value: &str, op: WriteOp, node: Address, cid: &Cid) -> Result<Address, NodeError> {
    let (expiry, sig) = value.split_once('.').ok_or(NodeError::BadSignature)?;
    let expiry: u64 = expiry.parse().map_err(|_| NodeError::BadSignature)?;
    let now = unix_now();
    if expiry <= now || expiry > now + WRITE_TTL {
        return Err(NodeError::Expired);
    }
    let bytes = alloy::primitives::hex::decode(sig).map_err(|_| NodeError::BadSignature)?;
    let sig = Signature::try_from(bytes.as_slice()).map_err(|_| NodeError::BadSignature)?;
    sig.recover_address_from_prehash(&write_hash(op, node, cid, expiry))
        .map_err(|_| NodeError::BadSignature)
}

/// The chain's word on signers: which organisation each is the registrar of.
pub struct Writers {
    registry: Arc<dyn Registry>,
    /// The node's own address (what signatures must name).
    node: Address,
    ttl: Duration,
    cache: Mutex<HashMap<Address, (Option<u32>, Instant)>>,
}

impl Writers {
    /// Signers checked against `registry`, for the node whose address is `node`.
    pub fn new(registry: Arc<dyn Registry>, node: Address) -> Self {
        Self::with_ttl(registry, node, ORG_CACHE_TTL)
    }

    /// [`new`](Self::new), keeping the chain's answers for `ttl`.
    pub fn with_ttl(registry: Arc<dyn Registry>, node: Address, ttl: Duration) -> Self {
        Self {
            registry,
            node,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The organisation a signed write comes from: the admin is organisation 0, a current
    /// registrar its organisation; anyone else is refused ([`NodeError::Denied`]).
    pub async fn check(&self, value: &str, op: WriteOp, cid: &Cid) -> Result<Writer, NodeError> {
        let signer = signer_of(value, op, self.node, cid)?;
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&signer)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(org, _)| *org);
        let org = match cached {
            Some(org) => org,
            None => {
                let chain = |e: ehr_chain::Error| NodeError::Unreachable(format!("chain: {e}"));
                let org = if self.registry.admin().await.map_err(chain)? == signer {
                    Some(0)
                } else {
                    self.registry
                        .registrar_organisation(signer)
                        .await
                        .map_err(chain)?
                };
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(signer, (org, Instant::now()));
                org
            }
        };
        org.map(Writer::Organisation).ok_or(NodeError::Denied)
    }
}

/// Who stored which block: an append-only log, `+ OWNER CID` and `- OWNER CID` lines
/// (`OWNER` is `op` or an organisation id), replayed at open (a torn last line is
/// ignored) and synced after each append.
pub struct Owners {
    file: Mutex<File>,
    claims: Mutex<HashMap<Cid, Vec<Writer>>>,
}

fn owner_text(w: Writer) -> String {
    match w {
        Writer::Operator => "op".into(),
        Writer::Organisation(id) => id.to_string(),
    }
}

fn parse_owner(s: &str) -> Option<Writer> {
    if s == "op" {
        return Some(Writer::Operator);
    }
    s.parse().ok().map(Writer::Organisation)
}

impl Owners {
    /// Opens (creating) `dir/block-owners.log`.
    pub fn open(dir: &Path) -> Result<Self, NodeError> {
        let path = dir.join(OWNERS_FILE);
        let io = |e: std::io::Error| NodeError::Internal(format!("{}: {e}", path.display()));
        let mut claims: HashMap<Cid, Vec<Writer>> = HashMap::new();
        if path.exists() {
            for line in BufReader::new(File::open(&path).map_err(io)?).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                let (Some(sign), Some(owner), Some(cid), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let (Some(owner), Ok(cid)) = (parse_owner(owner), ehr_store::parse_cid(cid)) else {
                    continue;
                };
                let list = claims.entry(cid).or_default();
                match sign {
                    "+" if !list.contains(&owner) => list.push(owner),
                    "-" => list.retain(|w| *w != owner),
                    _ => {}
                }
            }
            claims.retain(|_, l| !l.is_empty());
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        Ok(Self {
            file: Mutex::new(file),
            claims: Mutex::new(claims),
        })
    }

    fn append(&self, sign: char, owner: Writer, cid: &Cid) -> Result<(), NodeError> {
        let line = format!("{sign} {} {cid}\n", owner_text(owner));
        let file = {
            let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
            f.write_all(line.as_bytes())
                .map_err(|e| NodeError::Internal(format!("{OWNERS_FILE}: {e}")))?;
            f.try_clone()
                .map_err(|e| NodeError::Internal(format!("{OWNERS_FILE}: {e}")))?
        };
        file.sync_data()
            .map_err(|e| NodeError::Internal(format!("{OWNERS_FILE}: {e}")))
    }

    /// Notes that `owner` stored `cid` (once per owner).
    pub fn claim(&self, cid: &Cid, owner: Writer) -> Result<(), NodeError> {
        {
            let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
            let list = claims.entry(*cid).or_default();
            if list.contains(&owner) {
                return Ok(());
            }
            list.push(owner);
        }
        self.append('+', owner, cid)
    }

    /// Who stored `cid`.
    pub fn owners(&self, cid: &Cid) -> Vec<Writer> {
        self.claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(cid)
            .cloned()
            .unwrap_or_default()
    }

    /// Drops `owner`'s claim on `cid` (every claim for the operator); whether the block
    /// may go now (nobody else holds it). Refused ([`NodeError::Denied`]) when an
    /// organisation that did not store it asks.
    pub fn release(&self, cid: &Cid, owner: Writer) -> Result<bool, NodeError> {
        let (dropped, gone) = {
            let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = match (owner, claims.get_mut(cid)) {
                (Writer::Operator, Some(list)) => std::mem::take(list),
                (Writer::Operator, None) => Vec::new(),
                (org, Some(list)) if list.contains(&org) => {
                    list.retain(|w| *w != org);
                    vec![org]
                }
                _ => return Err(NodeError::Denied),
            };
            let gone = claims.get(cid).is_none_or(Vec::is_empty);
            if gone {
                claims.remove(cid);
            }
            (dropped, gone)
        };
        for w in dropped {
            self.append('-', w, cid)?;
        }
        Ok(gone)
    }
}
