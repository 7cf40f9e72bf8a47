//! The archive's two encodings, both canonical length-prefixed binary (big-endian integers,
//! fixed-width fields first, decoders refuse truncated or trailing bytes):
//!
//! - the **epoch header** ([`EpochHeader`]), a public block replicated to every node;
//! - the **epoch payload** ([`Payload`]), the plaintext that is sealed and dispersed.

use alloy::primitives::B256;
use ehr_crypto::dispersal::{ERASURE_CODE, MANIFEST_VERSION};
use ehr_crypto::{FragmentInfo, Manifest};
use ehr_store::{Cid, cid_from_sha256};
use sha2::{Digest, Sha256};

use crate::{Error, RawBlock, Result};

/// The multicodec of every archive block (headers, fragments, shares): `raw`.
pub const CODEC: u64 = ehr_store::cids::RAW;

const HEADER_MAGIC: &[u8; 8] = b"SEHRLEH1";
const PAYLOAD_MAGIC: &[u8; 8] = b"SEHRLEP1";

/// One sealed epoch, as every node keeps it (a few hundred bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochHeader {
    /// The chain archived.
    pub chain_id: u64,
    /// The epoch's number, from 0.
    pub epoch: u64,
    /// The first block it holds (the next block to archive when it holds none).
    pub first_block: u64,
    /// How many blocks it holds (possibly 0: an epoch of state changes only).
    pub block_count: u64,
    /// The hash of the newest block archived up to and including this epoch (zero: none).
    pub last_block_hash: B256,
    /// `sha256("SEHR ledger payload v1" ‖ payload)`: the plaintext this epoch seals.
    pub payload_digest: [u8; 32],
    /// The sha2-256 digest (raw CID) of the previous epoch's header block; zero for epoch 0.
    pub prev: [u8; 32],
    /// Fragments (and key shares) needed.
    pub k: u8,
    /// Fragments (and key shares) made, one of each per node.
    pub n: u8,
    /// The AEAD nonce.
    pub nonce: [u8; 12],
    /// Length of the ciphertext with its tag.
    pub ciphertext_len: u64,
    /// Length of every fragment.
    pub fragment_len: u64,
    /// Fragment `i`'s sha2-256 (its raw CID digest); it is stored on node `i`.
    pub fragments: Vec<[u8; 32]>,
    /// The digest of key share `x = i + 1` (`ehr_crypto::dispersal::key_share_digest`).
    pub key_share_digests: Vec<[u8; 32]>,
    /// The sha2-256 (raw CID digest) of the block holding share `i + 1` wrapped to
    /// custodian `i`; it is stored on node `i` alone.
    pub shares: Vec<[u8; 32]>,
    /// Custodian `i`'s X25519 key.
    pub custodians: Vec<B256>,
}

impl EpochHeader {
    /// Canonical bytes: magic, the fixed fields, then per node its fragment digest, key
    /// share digest, share block digest and custodian key.
    pub fn encode(&self) -> Vec<u8> {
        let n = usize::from(self.n);
        let mut w = Vec::with_capacity(8 + 8 * 6 + 32 * 3 + 2 + 12 + 128 * n);
        w.extend_from_slice(HEADER_MAGIC);
        for v in [
            self.chain_id,
            self.epoch,
            self.first_block,
            self.block_count,
        ] {
            w.extend_from_slice(&v.to_be_bytes());
        }
        w.extend_from_slice(self.last_block_hash.as_slice());
        w.extend_from_slice(&self.payload_digest);
        w.extend_from_slice(&self.prev);
        w.push(self.k);
        w.push(self.n);
        w.extend_from_slice(&self.nonce);
        w.extend_from_slice(&self.ciphertext_len.to_be_bytes());
        w.extend_from_slice(&self.fragment_len.to_be_bytes());
        for i in 0..n {
            w.extend_from_slice(&self.fragments[i]);
            w.extend_from_slice(&self.key_share_digests[i]);
            w.extend_from_slice(&self.shares[i]);
            w.extend_from_slice(self.custodians[i].as_slice());
        }
        w
    }

    /// Decodes a header block, refusing anything but the exact encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "epoch header");
        if r.take(8)? != HEADER_MAGIC {
            return Err(Error::Format("not an epoch header".into()));
        }
        let (chain_id, epoch, first_block, block_count) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        let last_block_hash = B256::from(r.array()?);
        let payload_digest = r.array()?;
        let prev = r.array()?;
        let k = r.u8()?;
        let n = r.u8()?;
        let nonce = r.array()?;
        let ciphertext_len = r.u64()?;
        let fragment_len = r.u64()?;
        if k == 0 || k > n {
            return Err(Error::Format("epoch header: bad threshold".into()));
        }
        let mut h = Self {
            chain_id,
            epoch,
            first_block,
            block_count,
            last_block_hash,
            payload_digest,
            prev,
            k,
            n,
            nonce,
            ciphertext_len,
            fragment_len,
            fragments: Vec::with_capacity(n.into()),
            key_share_digests: Vec::with_capacity(n.into()),
            shares: Vec::with_capacity(n.into()),
            custodians: Vec::with_capacity(n.into()),
        };
        for _ in 0..n {
            h.fragments.push(r.array()?);
            h.key_share_digests.push(r.array()?);
            h.shares.push(r.array()?);
            h.custodians.push(B256::from(r.array()?));
        }
        r.finish()?;
        Ok(h)
    }

    /// The last block this epoch holds, `None` if it holds none.
    pub fn last_block(&self) -> Option<u64> {
        (self.block_count > 0).then(|| self.first_block + self.block_count - 1)
    }

    /// The CID of fragment `i`.
    pub fn fragment_cid(&self, i: usize) -> Cid {
        cid_from_sha256(CODEC, &self.fragments[i])
    }

    /// The CID of custodian `i`'s share block.
    pub fn share_cid(&self, i: usize) -> Cid {
        cid_from_sha256(CODEC, &self.shares[i])
    }

    /// The dispersal manifest this header stands for.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            aead: ehr_crypto::seal::SUITE.to_owned(),
            erasure_code: ERASURE_CODE.to_owned(),
            k: self.k,
            n: self.n,
            nonce: self.nonce,
            ciphertext_len: self.ciphertext_len,
            fragment_len: self.fragment_len,
            fragments: self
                .fragments
                .iter()
                .enumerate()
                .map(|(i, sha256)| FragmentInfo {
                    index: i as u16,
                    sha256: *sha256,
                })
                .collect(),
            key_share_digests: self.key_share_digests.clone(),
        }
    }
}

/// What one state part contributes to an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartEntry {
    /// The part's name ("accounts", "reasons").
    pub name: String,
    /// A whole snapshot (true) or the changes since the part's previous entry.
    pub snapshot: bool,
    /// The part's cursor after this entry.
    pub cursor: u64,
    /// The part's bytes.
    pub data: Vec<u8>,
}

/// The plaintext of one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The chain archived.
    pub chain_id: u64,
    /// The epoch's number.
    pub epoch: u64,
    /// The number of the first block (the next one when there is none).
    pub first_block: u64,
    /// The blocks, consecutive from `first_block`.
    pub blocks: Vec<RawBlock>,
    /// The state parts' entries.
    pub parts: Vec<PartEntry>,
}

impl Payload {
    /// Canonical bytes: magic, chain id, epoch, first block, the block count, each block as
    /// (u32 length, bytes, u32 length, receipts), the part count, each part as (u16 length,
    /// name, kind 0 = snapshot / 1 = changes, u64 cursor, u32 length, bytes).
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .blocks
            .iter()
            .map(|b| 8 + b.block.len() + b.receipts.len())
            .chain(self.parts.iter().map(|p| 15 + p.name.len() + p.data.len()))
            .sum();
        let mut w = Vec::with_capacity(40 + size);
        w.extend_from_slice(PAYLOAD_MAGIC);
        w.extend_from_slice(&self.chain_id.to_be_bytes());
        w.extend_from_slice(&self.epoch.to_be_bytes());
        w.extend_from_slice(&self.first_block.to_be_bytes());
        w.extend_from_slice(&(self.blocks.len() as u32).to_be_bytes());
        for b in &self.blocks {
            put_bytes(&mut w, &b.block);
            put_bytes(&mut w, &b.receipts);
        }
        w.extend_from_slice(&(self.parts.len() as u32).to_be_bytes());
        for p in &self.parts {
            w.extend_from_slice(&(p.name.len() as u16).to_be_bytes());
            w.extend_from_slice(p.name.as_bytes());
            w.push(if p.snapshot { 0 } else { 1 });
            w.extend_from_slice(&p.cursor.to_be_bytes());
            put_bytes(&mut w, &p.data);
        }
        w
    }

    /// Decodes a payload, refusing anything but the exact encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "epoch payload");
        if r.take(8)? != PAYLOAD_MAGIC {
            return Err(Error::Format("not an epoch payload".into()));
        }
        let (chain_id, epoch, first_block) = (r.u64()?, r.u64()?, r.u64()?);
        let count = r.u32()?;
        let mut blocks = Vec::new();
        for i in 0..u64::from(count) {
            let block = r.bytes()?.to_vec();
            let receipts = r.bytes()?.to_vec();
            blocks.push(RawBlock {
                number: first_block + i,
                block,
                receipts,
            });
        }
        let count = r.u32()?;
        let mut parts = Vec::new();
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            let name = String::from_utf8(r.take(len)?.to_vec())
                .map_err(|_| Error::Format("epoch payload: a part name is not UTF-8".into()))?;
            let snapshot = match r.u8()? {
                0 => true,
                1 => false,
                _ => return Err(Error::Format("epoch payload: unknown part kind".into())),
            };
            let cursor = r.u64()?;
            let data = r.bytes()?.to_vec();
            parts.push(PartEntry {
                name,
                snapshot,
                cursor,
                data,
            });
        }
        r.finish()?;
        Ok(Self {
            chain_id,
            epoch,
            first_block,
            blocks,
            parts,
        })
    }
}

/// `sha256("SEHR ledger payload v1" ‖ payload)`.
pub fn payload_digest(payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"SEHR ledger payload v1");
    h.update(payload);
    h.finalize().into()
}

/// The sha2-256 of a block (its raw CID digest).
pub fn block_digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub(crate) fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(&(b.len() as u32).to_be_bytes());
    w.extend_from_slice(b);
}

/// A strict reader over one encoded value.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::Format(format!("{}: truncated", self.what)));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Format(format!("{}: trailing bytes", self.what)))
        }
    }
}
