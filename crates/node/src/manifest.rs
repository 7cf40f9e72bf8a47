//! The record manifest: the public block that describes one stored record version.
//!
//! Its CID is the record version's "hash code"; its sha2-256 digest goes on chain with
//! `addRecord`/`updateRecord`, with its codec. It holds no personal data: the dispersal
//! manifest (fragment links, nonce, lengths, key-share digests), the node-set epoch whose
//! custodians the key shares are wrapped to, and a link to each custodian's wrapped share.
//!
//! Format 2 (written now) is a DAG-CBOR block (codec `dag-cbor`, [`CODEC`]; the format
//! number also names the suite: AES-256-GCM, Reed–Solomon over GF(2^16)): fragments and
//! share blocks are IPLD links, so IPFS tools walk a record (`ipfs dag get <cid>/fragments/0`).
//! Share `x = i + 1` is its own small raw block ([`share_block`]) stored only on node `i`,
//! so a custodian alone holds its share and deleting that block destroys it.
//!
//! A manifest is kept by [`manifest_copies`] nodes (`n − k + 1`: the same loss budget as the
//! fragments), chosen by its digest ([`manifest_order`]), not by every node. A custodian that
//! does not hold it gets it with the share request and checks it against the chain's digest.
//!
//! Format 1 (written before; still read) is JSON in a `raw` block ([`LEGACY_CODEC`]) that
//! copies the custodians' keys and holds every wrapped share inline.

use alloy::primitives::{Address, B256};
use ehr_crypto::dispersal::{ERASURE_CODE, FragmentInfo, MANIFEST_VERSION};
use ehr_crypto::seal::SUITE;
use ehr_crypto::stream::StreamContext;
use ehr_crypto::wrap::Wrapped;
use ehr_crypto::{Manifest, RecordContext};
use ehr_store::cids::{DAG_CBOR, RAW, SHA2_256};
use ehr_store::{Cid, cid_from_sha256};
use serde::{Deserialize, Serialize};

use crate::dagcbor::{ARRAY, MAP, Reader, Writer};
use crate::{Error, Result};

/// Format version written by this crate (DAG-CBOR).
pub const FORMAT: u32 = 2;
/// The format of manifests written before: JSON in a raw block.
pub const LEGACY_FORMAT: u32 = 1;
/// The multicodec of manifest blocks written now: `dag-cbor`.
pub const CODEC: u64 = DAG_CBOR;
/// The multicodec of format-1 manifests (and of fragments and share blocks): `raw`.
pub const LEGACY_CODEC: u64 = RAW;
/// Manifests larger than this are refused before parsing.
pub const MAX_MANIFEST_LEN: usize = 64 * 1024;
/// A share block: the HPKE encapsulated key (32 bytes) ‖ the wrapped 32-byte share and its
/// 16-byte tag.
pub const SHARE_BLOCK_LEN: usize = 32 + 32 + 16;

/// Whose keys the key shares are wrapped to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Custodians {
    /// The custodians of the contract's node set at this epoch (`nodeSetEpoch`), in node
    /// order: share `x = i + 1` is wrapped to node `i`'s key (format 2).
    NodeSetEpoch(u32),
    /// The keys themselves, copied into the manifest (format 1).
    Keys(Vec<B256>),
}

/// Where custodian `i`'s wrapped share is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShareRef {
    /// In its own raw block ([`share_block`]), stored only on node `i` (format 2).
    Block(Cid),
    /// In the manifest itself, replicated with it (format 1).
    Inline(Wrapped),
}

/// One record version, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordManifest {
    /// [`FORMAT`], or [`LEGACY_FORMAT`] for a manifest written before.
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
    /// Whose keys share `x = i + 1` is wrapped to (custodian `i`).
    pub custodians: Custodians,
    /// Key share `x = i + 1`, wrapped to custodian `i` under [`crate::CUSTODIAN_AAD`].
    pub shares: Vec<ShareRef>,
    /// Fragments, thresholds, nonce and digests.
    pub dispersal: Manifest,
    /// The documents stored beside the record (issue 19): attachment `j + 1` is entry `j`.
    /// A new version carries its predecessor's entries forward and may add one. Written
    /// only when there are some, so a manifest without any has the bytes it always had.
    pub attachments: Vec<AttachmentRef>,
}

/// One attachment of a record version: a payload sealed in segments (STREAM,
/// [`ehr_crypto::stream`]) and dispersed segment by segment, node `i` keeping the UnixFS
/// file of fragment `i` of every segment (leaf `j` is segment `j`'s fragment), and its own
/// key shared k-of-n like the record's. No personal data: its type, title and hash are in
/// the sealed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentRef {
    /// The version it was sealed under (its STREAM context: this one or an earlier one).
    pub version: u32,
    /// Plaintext bytes.
    pub len: u64,
    /// The STREAM nonce prefix.
    pub prefix: [u8; ehr_crypto::stream::PREFIX_LEN],
    /// Node `i`'s fragment file: a dag-pb UnixFS root, or a raw leaf for one segment.
    pub roots: Vec<Cid>,
    /// Key share `x = i + 1`, wrapped to custodian `i` under [`attachment_aad`], in its own
    /// raw block on node `i` alone.
    pub shares: Vec<Cid>,
    /// The [`ehr_crypto::dispersal::key_share_digest`] of each share.
    pub share_digests: Vec<[u8; 32]>,
}

impl AttachmentRef {
    /// What its stream is bound to: the record version it was sealed under and its index
    /// (attachment `index + 1`).
    pub fn stream_context(&self, patient: Address, uid: B256, index: u32) -> StreamContext {
        StreamContext {
            record: RecordContext {
                patient: patient.0.0,
                record_id: uid.0,
                version: self.version,
            },
            attachment: index,
        }
    }

    /// Its segments.
    pub fn segments(&self) -> u64 {
        ehr_crypto::stream::segment_count(self.len)
    }

    /// The sealed length of segment `j` (its plaintext and tag).
    pub fn sealed_segment_len(&self, j: u64) -> usize {
        let seg = ehr_crypto::stream::SEGMENT_LEN as u64;
        let body = if j + 1 < self.segments() {
            seg
        } else {
            self.len - (self.segments() - 1) * seg
        };
        body as usize + ehr_crypto::seal::TAG_LEN
    }
}

/// The associated data attachment `index + 1`'s key shares are wrapped under (a record
/// key's share is under [`crate::CUSTODIAN_AAD`]).
pub fn attachment_aad(index: u32) -> Vec<u8> {
    let mut aad = crate::CUSTODIAN_AAD.to_vec();
    aad.extend_from_slice(b" attachment ");
    aad.extend_from_slice(&index.to_be_bytes());
    aad
}

/// Format 1 as it was written (field names and order are the stored JSON's).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyJson {
    format: u32,
    patient: Address,
    uid: B256,
    version: u32,
    created_at: u64,
    custodians: Vec<B256>,
    wrapped_shares: Vec<Wrapped>,
    dispersal: Manifest,
}

/// The format-2 map keys, in DAG-CBOR order (shorter first, then bytewise).
mod key {
    pub const K: &str = "k";
    pub const N: &str = "n";
    pub const UID: &str = "uid";
    pub const EPOCH: &str = "epoch";
    pub const NONCE: &str = "nonce";
    pub const FORMAT: &str = "format";
    pub const SHARES: &str = "shares";
    pub const CREATED: &str = "created";
    pub const PATIENT: &str = "patient";
    pub const VERSION: &str = "version";
    pub const FRAGMENTS: &str = "fragments";
    pub const ATTACHMENTS: &str = "attachments";
    pub const FRAGMENT_LEN: &str = "fragment_len";
    pub const SHARE_DIGESTS: &str = "share_digests";
    pub const CIPHERTEXT_LEN: &str = "ciphertext_len";
    pub const COUNT: u64 = 14;

    /// An attachment entry's keys, in DAG-CBOR order.
    pub mod att {
        pub const LEN: &str = "len";
        pub const ROOTS: &str = "roots";
        pub const PREFIX: &str = "prefix";
        pub const SHARES: &str = "shares";
        pub const VERSION: &str = "version";
        pub const SHARE_DIGESTS: &str = "share_digests";
        pub const COUNT: u64 = 6;
    }
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

    /// The codec of this manifest's block: [`CODEC`], or [`LEGACY_CODEC`] for format 1.
    pub fn codec(&self) -> u64 {
        if self.format == LEGACY_FORMAT {
            LEGACY_CODEC
        } else {
            CODEC
        }
    }

    /// The manifest block's bytes (DAG-CBOR; JSON for a format-1 manifest). Refuses a
    /// manifest whose parts do not fit its format or its `n`.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.check()?;
        match (self.format, &self.custodians) {
            (LEGACY_FORMAT, Custodians::Keys(keys)) => {
                let wrapped_shares = self
                    .shares
                    .iter()
                    .map(|s| match s {
                        ShareRef::Inline(w) => Ok(w.clone()),
                        ShareRef::Block(_) => Err(Error::ManifestInconsistent),
                    })
                    .collect::<Result<_>>()?;
                Ok(serde_json::to_vec(&LegacyJson {
                    format: self.format,
                    patient: self.patient,
                    uid: self.uid,
                    version: self.version,
                    created_at: self.created_at,
                    custodians: keys.clone(),
                    wrapped_shares,
                    dispersal: self.dispersal.clone(),
                })
                .expect("manifest serializes"))
            }
            (FORMAT, Custodians::NodeSetEpoch(epoch)) => self.encode_cbor(*epoch),
            _ => Err(Error::ManifestInconsistent),
        }
    }

    fn encode_cbor(&self, epoch: u32) -> Result<Vec<u8>> {
        let d = &self.dispersal;
        // Format 2 names its suite by its number: AES-256-GCM, Reed–Solomon (leopard GF(2^16)).
        if d.version != MANIFEST_VERSION || d.aead != SUITE || d.erasure_code != ERASURE_CODE {
            return Err(Error::ManifestInconsistent);
        }
        let mut w = Writer::default();
        w.head(MAP, key::COUNT + u64::from(!self.attachments.is_empty()));
        w.text(key::K);
        w.uint(d.k.into());
        w.text(key::N);
        w.uint(d.n.into());
        w.text(key::UID);
        w.bytes(self.uid.as_slice());
        w.text(key::EPOCH);
        w.uint(epoch.into());
        w.text(key::NONCE);
        w.bytes(&d.nonce);
        w.text(key::FORMAT);
        w.uint(self.format.into());
        w.text(key::SHARES);
        w.head(ARRAY, self.shares.len() as u64);
        for s in &self.shares {
            match s {
                ShareRef::Block(cid) => w.link(cid),
                ShareRef::Inline(_) => return Err(Error::ManifestInconsistent),
            }
        }
        w.text(key::CREATED);
        w.uint(self.created_at);
        w.text(key::PATIENT);
        w.bytes(self.patient.as_slice());
        w.text(key::VERSION);
        w.uint(self.version.into());
        w.text(key::FRAGMENTS);
        w.head(ARRAY, d.fragments.len() as u64);
        for f in &d.fragments {
            w.link(&cid_from_sha256(RAW, &f.sha256));
        }
        if !self.attachments.is_empty() {
            w.text(key::ATTACHMENTS);
            w.head(ARRAY, self.attachments.len() as u64);
            for a in &self.attachments {
                use key::att;
                w.head(MAP, att::COUNT);
                w.text(att::LEN);
                w.uint(a.len);
                w.text(att::ROOTS);
                w.head(ARRAY, a.roots.len() as u64);
                a.roots.iter().for_each(|c| w.link(c));
                w.text(att::PREFIX);
                w.bytes(&a.prefix);
                w.text(att::SHARES);
                w.head(ARRAY, a.shares.len() as u64);
                a.shares.iter().for_each(|c| w.link(c));
                w.text(att::VERSION);
                w.uint(a.version.into());
                w.text(att::SHARE_DIGESTS);
                w.head(ARRAY, a.share_digests.len() as u64);
                a.share_digests.iter().for_each(|d| w.bytes(d));
            }
        }
        w.text(key::FRAGMENT_LEN);
        w.uint(d.fragment_len);
        w.text(key::SHARE_DIGESTS);
        w.head(ARRAY, d.key_share_digests.len() as u64);
        for digest in &d.key_share_digests {
            w.bytes(digest);
        }
        w.text(key::CIPHERTEXT_LEN);
        w.uint(d.ciphertext_len);
        Ok(w.buf)
    }

    /// The lists match `n`, fragments are in index order, share blocks are raw sha2-256.
    fn check(&self) -> Result<()> {
        let d = &self.dispersal;
        let n = usize::from(d.n);
        let lists_ok = self.shares.len() == n
            && d.fragments.len() == n
            && d.key_share_digests.len() == n
            && d.fragments
                .iter()
                .enumerate()
                .all(|(i, f)| usize::from(f.index) == i)
            && match &self.custodians {
                Custodians::Keys(keys) => keys.len() == n,
                Custodians::NodeSetEpoch(_) => true,
            };
        let shares_ok = self.shares.iter().all(|s| match s {
            ShareRef::Block(cid) => is_raw_sha256(cid),
            ShareRef::Inline(_) => true,
        });
        let attachments_ok = self.attachments.iter().all(|a| {
            a.roots.len() == n
                && a.shares.len() == n
                && a.share_digests.len() == n
                && a.version >= 1
                && a.version <= self.version
                && a.shares.iter().all(is_raw_sha256)
                && a.roots.iter().all(is_file_root)
                && a.segments() <= ehr_crypto::stream::MAX_SEGMENTS
        });
        let attachments_ok =
            attachments_ok && (self.attachments.is_empty() || self.format == FORMAT);
        if !lists_ok || !shares_ok || !attachments_ok || d.k == 0 || d.k > d.n {
            return Err(Error::ManifestInconsistent);
        }
        Ok(())
    }

    /// Parses a manifest block of multicodec `codec` (the CID's, or the chain's), checking
    /// its shape. A DAG-CBOR block must be in canonical form: decoding and encoding again
    /// gives the same bytes.
    pub fn decode(codec: u64, block: &[u8]) -> Result<Self> {
        if block.len() > MAX_MANIFEST_LEN {
            return Err(Error::ManifestTooLarge);
        }
        let m = match codec {
            CODEC => Self::decode_cbor(block).map_err(Error::ManifestCbor)?,
            LEGACY_CODEC => Self::decode_json(block)?,
            other => return Err(Error::ManifestCodec(other)),
        };
        m.check()?;
        if codec == CODEC && m.encode()? != block {
            return Err(Error::ManifestCbor("not in canonical form".into()));
        }
        Ok(m)
    }

    /// [`decode`](Self::decode) with the codec of the block's CID.
    pub fn decode_block(cid: &Cid, block: &[u8]) -> Result<Self> {
        Self::decode(cid.codec(), block)
    }

    fn decode_json(block: &[u8]) -> Result<Self> {
        let j: LegacyJson = serde_json::from_slice(block).map_err(Error::ManifestJson)?;
        if j.format != LEGACY_FORMAT {
            return Err(Error::ManifestInconsistent);
        }
        Ok(Self {
            format: j.format,
            patient: j.patient,
            uid: j.uid,
            version: j.version,
            created_at: j.created_at,
            custodians: Custodians::Keys(j.custodians),
            shares: j.wrapped_shares.into_iter().map(ShareRef::Inline).collect(),
            dispersal: j.dispersal,
            attachments: Vec::new(),
        })
    }

    fn decode_cbor(block: &[u8]) -> std::result::Result<Self, String> {
        let mut r = Reader::new(block);
        let entries = r.head(MAP, "manifest")?;
        if entries != key::COUNT && entries != key::COUNT + 1 {
            return Err(format!(
                "the manifest map must have {} or {} entries",
                key::COUNT,
                key::COUNT + 1
            ));
        }
        let small = |v: u64, what: &str| -> std::result::Result<u8, String> {
            u8::try_from(v).map_err(|_| format!("{what} out of range"))
        };
        let word = |v: u64, what: &str| -> std::result::Result<u32, String> {
            u32::try_from(v).map_err(|_| format!("{what} out of range"))
        };
        r.key(key::K)?;
        let k = small(r.uint("k")?, "k")?;
        r.key(key::N)?;
        let n = small(r.uint("n")?, "n")?;
        let list = |r: &mut Reader<'_>, what: &str| -> std::result::Result<(), String> {
            if r.head(ARRAY, what)? != u64::from(n) {
                return Err(format!("{what}: not n = {n} entries"));
            }
            Ok(())
        };
        r.key(key::UID)?;
        let uid = B256::from(r.array_of::<32>("uid")?);
        r.key(key::EPOCH)?;
        let epoch = word(r.uint("epoch")?, "epoch")?;
        r.key(key::NONCE)?;
        let nonce = r.array_of("nonce")?;
        r.key(key::FORMAT)?;
        let format = word(r.uint("format")?, "format")?;
        if format != FORMAT {
            return Err(format!("format {format}, expected {FORMAT}"));
        }
        r.key(key::SHARES)?;
        list(&mut r, "shares")?;
        let mut shares = Vec::with_capacity(n.into());
        for _ in 0..n {
            let cid = r.link("share link")?;
            if !is_raw_sha256(&cid) {
                return Err("a share link is not a raw sha2-256 CID".into());
            }
            shares.push(ShareRef::Block(cid));
        }
        r.key(key::CREATED)?;
        let created_at = r.uint("created")?;
        r.key(key::PATIENT)?;
        let patient = Address::from(r.array_of::<20>("patient")?);
        r.key(key::VERSION)?;
        let version = word(r.uint("version")?, "version")?;
        r.key(key::FRAGMENTS)?;
        list(&mut r, "fragments")?;
        let mut fragments = Vec::with_capacity(n.into());
        for index in 0..u16::from(n) {
            let cid = r.link("fragment link")?;
            if !is_raw_sha256(&cid) {
                return Err("a fragment link is not a raw sha2-256 CID".into());
            }
            let sha256 = cid.hash().digest().try_into().expect("checked: 32 bytes");
            fragments.push(FragmentInfo { index, sha256 });
        }
        let mut attachments = Vec::new();
        if entries > key::COUNT {
            r.key(key::ATTACHMENTS)?;
            let count = r.head(ARRAY, "attachments")?;
            if count == 0 {
                return Err("an empty attachments list is written as none".into());
            }
            for _ in 0..count {
                attachments.push(decode_attachment(&mut r, n)?);
            }
        }
        r.key(key::FRAGMENT_LEN)?;
        let fragment_len = r.uint("fragment_len")?;
        r.key(key::SHARE_DIGESTS)?;
        list(&mut r, "share_digests")?;
        let key_share_digests = (0..n)
            .map(|_| r.array_of::<32>("share digest"))
            .collect::<std::result::Result<_, _>>()?;
        r.key(key::CIPHERTEXT_LEN)?;
        let ciphertext_len = r.uint("ciphertext_len")?;
        r.finish()?;
        Ok(Self {
            format,
            patient,
            uid,
            version,
            created_at,
            custodians: Custodians::NodeSetEpoch(epoch),
            shares,
            dispersal: Manifest {
                version: MANIFEST_VERSION,
                aead: SUITE.to_owned(),
                erasure_code: ERASURE_CODE.to_owned(),
                k,
                n,
                nonce,
                ciphertext_len,
                fragment_len,
                fragments,
                key_share_digests,
            },
            attachments,
        })
    }

    /// The CID of fragment `i` (a raw block).
    pub fn fragment_cid(&self, i: usize) -> Cid {
        cid_from_sha256(RAW, &self.dispersal.fragments[i].sha256)
    }

    /// The CID of custodian `i`'s share block (`None`: format 1, the share is inline).
    pub fn share_cid(&self, i: usize) -> Option<Cid> {
        match self.shares.get(i)? {
            ShareRef::Block(cid) => Some(*cid),
            ShareRef::Inline(_) => None,
        }
    }

    /// Every block the manifest links: the fragments, then the share blocks, then each
    /// attachment's file roots and share blocks (the blocks under a root are found by
    /// walking it).
    pub fn links(&self) -> Vec<Cid> {
        (0..self.dispersal.fragments.len())
            .map(|i| self.fragment_cid(i))
            .chain((0..self.shares.len()).filter_map(|i| self.share_cid(i)))
            .chain(
                self.attachments
                    .iter()
                    .flat_map(|a| a.roots.iter().chain(&a.shares).copied()),
            )
            .collect()
    }
}

fn decode_attachment(r: &mut Reader<'_>, n: u8) -> std::result::Result<AttachmentRef, String> {
    use key::att;
    if r.head(MAP, "attachment")? != att::COUNT {
        return Err(format!(
            "an attachment map must have {} entries",
            att::COUNT
        ));
    }
    let list = |r: &mut Reader<'_>, what: &str| -> std::result::Result<(), String> {
        if r.head(ARRAY, what)? != u64::from(n) {
            return Err(format!("{what}: not n = {n} entries"));
        }
        Ok(())
    };
    r.key(att::LEN)?;
    let len = r.uint("attachment len")?;
    r.key(att::ROOTS)?;
    list(r, "attachment roots")?;
    let roots = (0..n)
        .map(|_| r.link("attachment root"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    r.key(att::PREFIX)?;
    let prefix = r.array_of("attachment prefix")?;
    r.key(att::SHARES)?;
    list(r, "attachment shares")?;
    let shares = (0..n)
        .map(|_| r.link("attachment share"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    r.key(att::VERSION)?;
    let version = u32::try_from(r.uint("attachment version")?)
        .map_err(|_| "attachment version out of range".to_string())?;
    r.key(att::SHARE_DIGESTS)?;
    list(r, "attachment share_digests")?;
    let share_digests = (0..n)
        .map(|_| r.array_of::<32>("attachment share digest"))
        .collect::<std::result::Result<_, _>>()?;
    Ok(AttachmentRef {
        version,
        len,
        prefix,
        roots,
        shares,
        share_digests,
    })
}

/// A UnixFS file root as this crate writes them: a dag-pb node, or a raw leaf (one
/// chunk), sha2-256 either way.
fn is_file_root(cid: &Cid) -> bool {
    u64::from(cid.version()) == 1
        && (cid.codec() == RAW || cid.codec() == ehr_store::cids::DAG_PB)
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32
}

fn is_raw_sha256(cid: &Cid) -> bool {
    u64::from(cid.version()) == 1
        && cid.codec() == RAW
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32
}

/// The CID of a format-2 manifest block (`dag-cbor`, sha2-256).
pub fn block_cid(block: &[u8]) -> Cid {
    Cid::new_v1(CODEC, ehr_store::cids::sha256_multihash(block))
}

/// A share block's bytes: `enc ‖ ciphertext` of one wrapped share.
pub fn share_block(wrapped: &Wrapped) -> Vec<u8> {
    let mut b = Vec::with_capacity(SHARE_BLOCK_LEN);
    b.extend_from_slice(&wrapped.enc);
    b.extend_from_slice(&wrapped.ciphertext);
    b
}

/// Parses a share block ([`SHARE_BLOCK_LEN`] bytes).
pub fn parse_share_block(block: &[u8]) -> Result<Wrapped> {
    if block.len() != SHARE_BLOCK_LEN {
        return Err(Error::ShareBlock(block.len()));
    }
    let (enc, ciphertext) = block.split_at(32);
    Ok(Wrapped {
        enc: enc.try_into().expect("32 bytes"),
        ciphertext: ciphertext.to_vec(),
    })
}

/// How many nodes keep a record's manifest: `n − k + 1`, so that any `n − k` nodes can be
/// lost (as with the fragments) and one copy is left.
pub fn manifest_copies(k: usize, n: usize) -> usize {
    n.saturating_sub(k).saturating_add(1).clamp(1, n.max(1))
}

/// The nodes a manifest goes to, in the order readers ask them: all `n` node indices,
/// starting at one chosen by the manifest's digest (so manifests spread evenly over the
/// nodes); the first [`manifest_copies`] are its holders. A node whose put failed is
/// replaced by the next in this order, so a reader asking in this order finds it soonest.
pub fn manifest_order(cid: &Cid, n: usize) -> impl Iterator<Item = usize> + use<> {
    let digest = cid.hash().digest();
    let mut tail = [0u8; 8];
    let take = digest.len().min(8);
    tail[..take].copy_from_slice(&digest[digest.len() - take..]);
    let n = n.max(1);
    let start = (u64::from_be_bytes(tail) % n as u64) as usize;
    (0..n).map(move |i| (start + i) % n)
}

/// The manifest CID a chain digest and codec stand for (`dag-cbor`, or `raw` for a
/// record stored before).
pub fn manifest_cid(digest: B256, codec: u64) -> Result<Cid> {
    if codec != CODEC && codec != LEGACY_CODEC {
        return Err(Error::ManifestCodec(codec));
    }
    Ok(cid_from_sha256(codec, &digest.0))
}

#[cfg(test)]
mod tests;
