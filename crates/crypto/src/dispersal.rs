//! Dispersal: "secret sharing made short" (Krawczyk, CRYPTO 1993).
//!
//! 1. Seal the block with a fresh [`DataKey`] (AES-256-GCM, bound to its context).
//! 2. Cut the ciphertext into `k` equal original fragments (zero-padded) and add
//!    `n - k` Reed–Solomon recovery fragments (`reed-solomon-simd`): any `k` of the
//!    `n` fragments rebuild it, and each node stores about 1/k of the data.
//! 3. Shamir-share only the 32-byte key, k-of-n ([`crate::shamir`]).
//! 4. A [`Manifest`] lists the SHA-256 of every fragment (the digest an IPFS CIDv1
//!    `raw` block of that fragment carries) and of every key share, so a corrupt
//!    fragment or a wrong key share is detected and its index named.
//!
//! The manifest is public (it goes in a content-addressed block); key shares are
//! secret and are meant to be HPKE-wrapped to custodians ([`crate::wrap`]).
//!
//! For small secrets, or to compare with the seed design, [`share_whole`] is plain
//! Shamir over the whole block (n times the storage).

use rand_core::CryptoRng;
use reed_solomon_simd::ReedSolomonDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::erasure::{decode_lost, encode_recovery};
use crate::recovery::{self, RecoveryPlan};
use crate::seal::{self, DataKey, NONCE_LEN, RecordContext, Sealed};
use crate::sha_pair::sha256_chunks;
use crate::shamir::{self, Share};
use crate::{Error, Result, Threshold};

/// Manifest format version written by this crate.
pub const MANIFEST_VERSION: u32 = 1;
/// Erasure code name recorded in manifests.
pub const ERASURE_CODE: &str = "reed-solomon-simd/leopard-gf16";
/// Fragment sizes are rounded up to a multiple of this (reed-solomon-simd's
/// cross-version compatible shard size).
const SHARD_ALIGN: usize = 64;

/// One fragment as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FragmentInfo {
    /// Fragment index, `0..n`; `0..k` hold the ciphertext, `k..n` recovery data.
    pub index: u16,
    /// SHA-256 of the fragment bytes (the IPFS raw-block CID digest).
    pub sha256: [u8; 32],
}

/// The public description of a dispersed record version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// AEAD suite ([`seal::SUITE`]).
    pub aead: String,
    /// Erasure code ([`ERASURE_CODE`]).
    pub erasure_code: String,
    /// Fragments (and key shares) needed.
    pub k: u8,
    /// Fragments (and key shares) made.
    pub n: u8,
    /// The AEAD nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Length of `ciphertext || tag` before padding.
    pub ciphertext_len: u64,
    /// Length of every fragment.
    pub fragment_len: u64,
    /// All `n` fragments, in index order.
    pub fragments: Vec<FragmentInfo>,
    /// SHA-256 of each key share, `key_share_digest(x, share)`, for x = 1..=n.
    pub key_share_digests: Vec<[u8; 32]>,
}

/// A Shamir share of the 32-byte data key. Zeroized on drop; never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct KeyShare {
    /// The share's x coordinate (`1..=n`; custodian `x - 1` holds it).
    pub x: u8,
    /// The share bytes.
    pub share: [u8; 32],
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyShare {{ x: {}, .. }}", self.x)
    }
}

/// The `n` fragments of a dispersed record, kept in two buffers (the `k` originals
/// back to back, then the `n - k` recovery fragments) so dispersal copies nothing
/// per fragment: the originals are the sealed record itself, padded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragments {
    originals: Vec<u8>,
    recovery: Vec<u8>,
    frag_len: usize,
    k: usize,
    n: usize,
}

impl Fragments {
    /// Number of fragments (`n`).
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: a dispersal has at least two fragments.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Length of every fragment.
    pub fn fragment_len(&self) -> usize {
        self.frag_len
    }

    /// Fragment `i` (`0..n`).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let fl = self.frag_len;
        if i < self.k {
            self.originals.get(i * fl..(i + 1) * fl)
        } else if i < self.n {
            let j = i - self.k;
            self.recovery.get(j * fl..(j + 1) * fl)
        } else {
            None
        }
    }

    /// All fragments in index order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.n).filter_map(|i| self.get(i))
    }

    /// Copies every fragment into its own `Vec`.
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

/// The output of [`disperse`]: a public manifest, `n` fragments for storage nodes
/// and `n` key shares for custodians.
#[derive(Debug)]
pub struct Dispersed {
    /// The public manifest.
    pub manifest: Manifest,
    /// Fragment `i` goes to storage node `i`.
    pub fragments: Fragments,
    /// Key share with `x = i + 1` goes to custodian `i`.
    pub key_shares: Vec<KeyShare>,
}

/// Which fragments were usable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FragmentReport {
    /// Indices present and matching their digest.
    pub good: Vec<usize>,
    /// Indices present but not matching their digest (or of the wrong length).
    pub corrupt: Vec<usize>,
    /// Indices not supplied.
    pub missing: Vec<usize>,
    /// Indices supplied but not needed, hence not checked (read paths verify only
    /// until `k` good fragments are found).
    pub unchecked: Vec<usize>,
}

/// A record rebuilt by [`open_dispersed`], with the parts that had to be set aside.
#[derive(Debug)]
pub struct Opened {
    /// The plaintext record.
    pub plaintext: Vec<u8>,
    /// Fragment indices that were corrupt.
    pub corrupt_fragments: Vec<usize>,
    /// Key share x coordinates that were corrupt.
    pub corrupt_key_shares: Vec<u8>,
}

/// The digest the manifest keeps for a key share:
/// `SHA-256("SEHR-KS1" || x || share)`. A share is 32 uniformly random bytes, so
/// its digest reveals nothing about the key.
pub fn key_share_digest(x: u8, share: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"SEHR-KS1");
    h.update([x]);
    h.update(share);
    h.finalize().into()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn fragment_len(ciphertext_len: usize, k: usize) -> usize {
    let per = ciphertext_len.div_ceil(k).max(1);
    per.div_ceil(SHARD_ALIGN) * SHARD_ALIGN
}

/// Seals `plaintext` for `ctx` under a fresh key and disperses it k-of-n.
///
/// The plaintext buffer is encrypted in place and becomes the original fragments;
/// only the `n - k` recovery fragments are new memory.
pub fn disperse<R: CryptoRng + ?Sized>(
    t: Threshold,
    ctx: &RecordContext,
    plaintext: Vec<u8>,
    rng: &mut R,
) -> Result<Dispersed> {
    let mut buf = plaintext;
    if buf.len() > seal::MAX_RECORD_LEN {
        return Err(Error::TooLarge {
            len: buf.len(),
            max: seal::MAX_RECORD_LEN,
        });
    }
    let key = DataKey::generate(rng);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let tag = seal::encrypt_detached(&key, &nonce, &ctx.associated_data(), &mut buf)?;

    let (k, n) = (t.k(), t.n());
    let ct_len = buf.len() + seal::TAG_LEN;
    let frag_len = fragment_len(ct_len, k);
    buf.reserve_exact(k * frag_len - buf.len());
    buf.extend_from_slice(&tag);
    buf.resize(k * frag_len, 0);
    let (recovery, digests) = encode_and_hash(&buf, k, n, frag_len)?;
    let fragments = Fragments {
        originals: buf,
        recovery,
        frag_len,
        k,
        n,
    };

    let key_shares = split_key(t, &key, rng)?;
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        aead: seal::SUITE.to_owned(),
        erasure_code: ERASURE_CODE.to_owned(),
        k: k as u8,
        n: n as u8,
        nonce,
        ciphertext_len: ct_len as u64,
        fragment_len: frag_len as u64,
        fragments: digests
            .into_iter()
            .enumerate()
            .map(|(i, sha256)| FragmentInfo {
                index: i as u16,
                sha256,
            })
            .collect(),
        key_share_digests: key_shares
            .iter()
            .map(|s| key_share_digest(s.x, &s.share))
            .collect(),
    };
    Ok(Dispersed {
        manifest,
        fragments,
        key_shares,
    })
}

fn hash_chunks(data: &[u8], frag_len: usize) -> Vec<[u8; 32]> {
    sha256_chunks(data, frag_len)
}

/// Reed–Solomon recovery fragments plus the SHA-256 of all `n` fragments.
///
/// Hashing is the costliest step after encryption (fragments are hashed two at a
/// time, [`crate::sha_pair`]), so for large records a helper thread hashes the
/// originals while this one encodes and hashes the recovery fragments (with one
/// free core the work simply runs in turn; the result is the same).
fn encode_and_hash(
    originals: &[u8],
    k: usize,
    n: usize,
    frag_len: usize,
) -> Result<(Vec<u8>, Vec<[u8; 32]>)> {
    let encode = || -> Result<(Vec<u8>, Vec<[u8; 32]>)> {
        if n == k {
            return Ok((Vec::new(), Vec::new()));
        }
        let recovery = encode_recovery(originals, k, n - k, frag_len)?;
        let digests = hash_chunks(&recovery, frag_len);
        Ok((recovery, digests))
    };
    if originals.len() < (1 << 20) {
        let mut digests = hash_chunks(originals, frag_len);
        let (recovery, more) = encode()?;
        digests.extend(more);
        return Ok((recovery, digests));
    }
    std::thread::scope(|s| {
        let helper = s.spawn(|| hash_chunks(originals, frag_len));
        let (recovery, more) = encode()?;
        // The helper cannot panic; should it have, redo its part here.
        let mut digests = helper
            .join()
            .unwrap_or_else(|_| hash_chunks(originals, frag_len));
        digests.extend(more);
        Ok((recovery, digests))
    })
}

fn rs_err(e: reed_solomon_simd::Error) -> Error {
    Error::ErasureCode(e.to_string())
}

fn check_manifest(m: &Manifest) -> Result<Threshold> {
    if m.version != MANIFEST_VERSION {
        return Err(Error::Manifest("unsupported version"));
    }
    let t = Threshold::new(m.k as usize, m.n as usize)?;
    if m.fragments.len() != t.n() || m.key_share_digests.len() != t.n() {
        return Err(Error::Manifest(
            "fragment or key share count differs from n",
        ));
    }
    if m.fragments
        .iter()
        .enumerate()
        .any(|(i, f)| f.index as usize != i)
    {
        return Err(Error::Manifest("fragments out of order"));
    }
    let ct_len = usize::try_from(m.ciphertext_len).map_err(|_| Error::Manifest("too large"))?;
    if !(seal::TAG_LEN..=seal::MAX_RECORD_LEN + seal::TAG_LEN).contains(&ct_len) {
        return Err(Error::Manifest("ciphertext length out of range"));
    }
    if m.fragment_len != fragment_len(ct_len, t.k()) as u64 {
        return Err(Error::Manifest(
            "fragment length does not match ciphertext length",
        ));
    }
    Ok(t)
}

/// Whether fragment `index` matches the manifest (length and SHA-256).
pub fn fragment_ok(manifest: &Manifest, index: usize, data: &[u8]) -> bool {
    manifest
        .fragments
        .get(index)
        .is_some_and(|f| data.len() as u64 == manifest.fragment_len && sha256(data) == f.sha256)
}

/// Checks every supplied fragment (`fragments[i]` is fragment `i`, `None` if absent).
pub fn check_fragments(manifest: &Manifest, fragments: &[Option<&[u8]>]) -> Result<FragmentReport> {
    let t = check_manifest(manifest)?;
    Error::check_share_count(t.n(), fragments.len())?;
    let mut report = FragmentReport::default();
    for (i, f) in fragments.iter().enumerate() {
        match f {
            None => report.missing.push(i),
            Some(d) if fragment_ok(manifest, i, d) => report.good.push(i),
            Some(_) => report.corrupt.push(i),
        }
    }
    Ok(report)
}

/// Checks `batch` fragments against the manifest, two threads sharing the hashing
/// when there is enough of it.
fn verify_batch(digests: &Digests<'_>, fragments: &[Option<&[u8]>], batch: &[usize]) -> Vec<bool> {
    let check = |i: &usize| fragments[*i].is_some_and(|d| digests.ok(*i, d));
    let bytes = batch.len() as u64 * digests.fragment_len;
    if batch.len() < 2 || bytes < (1 << 20) {
        return batch.iter().map(check).collect();
    }
    let (a, b) = batch.split_at(batch.len() / 2);
    std::thread::scope(|s| {
        let helper = s.spawn(|| b.iter().map(check).collect::<Vec<_>>());
        let mut out: Vec<bool> = a.iter().map(check).collect();
        out.extend(
            helper
                .join()
                .unwrap_or_else(|_| b.iter().map(check).collect()),
        );
        out
    })
}

/// What a fragment is checked against: its length and each index's SHA-256.
struct Digests<'a> {
    fragment_len: u64,
    sha256: &'a (dyn Fn(usize) -> Option<[u8; 32]> + Sync),
}

impl Digests<'_> {
    fn ok(&self, index: usize, data: &[u8]) -> bool {
        data.len() as u64 == self.fragment_len
            && (self.sha256)(index).is_some_and(|d| sha256(data) == d)
    }
}

/// Verifies supplied fragments, originals first, until `k` good ones are found.
fn select_good(t: Threshold, digests: &Digests<'_>, fragments: &[Option<&[u8]>]) -> FragmentReport {
    let mut report = FragmentReport::default();
    let mut candidates = Vec::new();
    for (i, f) in fragments.iter().enumerate() {
        match f {
            None => report.missing.push(i),
            Some(_) => candidates.push(i),
        }
    }
    let mut next = 0;
    while report.good.len() < t.k() && next < candidates.len() {
        let want = t.k() - report.good.len();
        let batch = &candidates[next..(next + want).min(candidates.len())];
        next += batch.len();
        for (&i, ok) in batch.iter().zip(verify_batch(digests, fragments, batch)) {
            if ok {
                report.good.push(i);
            } else {
                report.corrupt.push(i);
            }
        }
    }
    report.unchecked = candidates[next..].to_vec();
    report.good.sort_unstable();
    report
}

/// Writes the `k` original fragments back to back into `out` (`k * frag_len`
/// bytes), decoding the missing ones from the good fragments in `report`.
fn rebuild_originals_into(
    t: Threshold,
    frag_len: usize,
    fragments: &[Option<&[u8]>],
    report: &FragmentReport,
    out: &mut Vec<u8>,
) -> Result<()> {
    let k = t.k();
    if report.good.len() < k {
        return Err(Error::NotEnoughFragments {
            good: report.good.len(),
            needed: k,
            corrupt: report.corrupt.clone(),
            missing: report.missing.clone(),
        });
    }
    let good = |i: usize| -> Option<&[u8]> {
        if report.good.contains(&i) {
            fragments[i]
        } else {
            None
        }
    };
    out.clear();
    out.reserve_exact(k * frag_len);
    let mut lost = Vec::new();
    for i in 0..k {
        match good(i) {
            Some(f) => out.extend_from_slice(f),
            None => {
                lost.push(i);
                out.resize(out.len() + frag_len, 0);
            }
        }
    }
    if lost.is_empty() {
        return Ok(());
    }
    let survivors: Vec<(usize, &[u8])> = report
        .good
        .iter()
        .take(k)
        .filter_map(|&i| fragments[i].map(|f| (i, f)))
        .collect();
    if let Some(restored) = decode_lost(k, t.n(), frag_len, &survivors, &lost)? {
        for (pos, &i) in lost.iter().enumerate() {
            out[i * frag_len..(i + 1) * frag_len]
                .copy_from_slice(&restored[pos * frag_len..(pos + 1) * frag_len]);
        }
        return Ok(());
    }
    let mut dec = ReedSolomonDecoder::new(k, t.n() - k, frag_len).map_err(rs_err)?;
    for i in 0..k {
        if let Some(f) = good(i) {
            dec.add_original_shard(i, f).map_err(rs_err)?;
        }
    }
    for i in k..t.n() {
        if let Some(r) = good(i) {
            dec.add_recovery_shard(i - k, r).map_err(rs_err)?;
        }
    }
    let result = dec.decode().map_err(rs_err)?;
    for i in lost {
        let restored = result
            .restored_original(i)
            .ok_or_else(|| Error::ErasureCode("decoder did not restore a fragment".into()))?;
        out[i * frag_len..(i + 1) * frag_len].copy_from_slice(restored);
    }
    Ok(())
}

/// Rebuilds the ciphertext from any `k` good fragments.
///
/// Supplied fragments are verified (originals first) only until `k` good ones are
/// found; corrupt ones are skipped and named in the returned [`FragmentReport`].
pub fn rebuild_ciphertext(
    manifest: &Manifest,
    fragments: &[Option<&[u8]>],
) -> Result<(Sealed, FragmentReport)> {
    let t = check_manifest(manifest)?;
    Error::check_share_count(t.n(), fragments.len())?;
    let of_manifest = |i: usize| manifest.fragments.get(i).map(|f| f.sha256);
    let digests = Digests {
        fragment_len: manifest.fragment_len,
        sha256: &of_manifest,
    };
    let report = select_good(t, &digests, fragments);
    let mut ct = Vec::new();
    rebuild_originals_into(
        t,
        manifest.fragment_len as usize,
        fragments,
        &report,
        &mut ct,
    )?;
    ct.truncate(manifest.ciphertext_len as usize);
    Ok((
        Sealed {
            nonce: manifest.nonce,
            ciphertext: ct,
        },
        report,
    ))
}

/// One sealed stream segment ([`crate::stream`]) dispersed: its `n` fragments and their
/// SHA-256 (each the digest of the fragment's raw-block CID).
#[derive(Debug)]
pub struct DispersedSegment {
    /// The fragments, originals first.
    pub fragments: Fragments,
    /// SHA-256 of each fragment, in index order.
    pub digests: Vec<[u8; 32]>,
}

/// Cuts a sealed segment (its ciphertext and tag) into `k` original fragments, zero-padded
/// to a multiple of 64 bytes, and `n - k` Reed–Solomon recovery fragments. The key is the
/// stream's, shared once for the whole payload: only the ciphertext is dispersed here.
pub fn disperse_segment(t: Threshold, sealed: Vec<u8>) -> Result<DispersedSegment> {
    let (k, n) = (t.k(), t.n());
    let frag_len = fragment_len(sealed.len(), k);
    let mut buf = sealed;
    buf.resize(k * frag_len, 0);
    let (recovery, digests) = encode_and_hash(&buf, k, n, frag_len)?;
    Ok(DispersedSegment {
        fragments: Fragments {
            originals: buf,
            recovery,
            frag_len,
            k,
            n,
        },
        digests,
    })
}

/// The fragment length of a sealed segment of `sealed_len` bytes at threshold `k`.
pub fn segment_fragment_len(sealed_len: usize, k: usize) -> usize {
    fragment_len(sealed_len, k)
}

/// Rebuilds a sealed segment of `sealed_len` bytes from any `k` good fragments
/// (`fragments[i]` is fragment `i`, checked against `digests[i]`; corrupt ones are
/// skipped and named in the report). Too few good ones is
/// [`Error::NotEnoughFragments`]: never a short segment.
pub fn rebuild_segment(
    t: Threshold,
    sealed_len: usize,
    digests: &[[u8; 32]],
    fragments: &[Option<&[u8]>],
) -> Result<(Vec<u8>, FragmentReport)> {
    Error::check_share_count(t.n(), fragments.len())?;
    if digests.len() != t.n() {
        return Err(Error::Manifest("fragment digest count differs from n"));
    }
    let frag_len = fragment_len(sealed_len, t.k());
    let of = |i: usize| digests.get(i).copied();
    let check = Digests {
        fragment_len: frag_len as u64,
        sha256: &of,
    };
    let report = select_good(t, &check, fragments);
    let mut out = Vec::new();
    rebuild_originals_into(t, frag_len, fragments, &report, &mut out)?;
    out.truncate(sealed_len);
    Ok((out, report))
}

/// Regenerates fragments that are missing or corrupt from any `k` good ones.
///
/// Returns `(index, bytes)` for each regenerated fragment; each is checked against
/// its manifest digest before being returned.
pub fn repair(manifest: &Manifest, fragments: &[Option<&[u8]>]) -> Result<Vec<(usize, Vec<u8>)>> {
    let t = check_manifest(manifest)?;
    let report = check_fragments(manifest, fragments)?;
    let frag_len = manifest.fragment_len as usize;
    let lost: Vec<usize> = report
        .missing
        .iter()
        .chain(&report.corrupt)
        .copied()
        .collect();
    if lost.is_empty() {
        return Ok(Vec::new());
    }
    let mut originals = Vec::new();
    rebuild_originals_into(t, frag_len, fragments, &report, &mut originals)?;
    let recovery = if lost.iter().any(|&i| i >= t.k()) {
        encode_recovery(&originals, t.k(), t.n() - t.k(), frag_len)?
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(lost.len());
    let mut bad = Vec::new();
    for i in lost {
        let data = if i < t.k() {
            originals[i * frag_len..(i + 1) * frag_len].to_vec()
        } else {
            let j = i - t.k();
            recovery[j * frag_len..(j + 1) * frag_len].to_vec()
        };
        if fragment_ok(manifest, i, &data) {
            out.push((i, data));
        } else {
            bad.push(i);
        }
    }
    if !bad.is_empty() {
        // The good fragments rebuilt something that disagrees with the manifest.
        return Err(Error::CorruptFragments(bad));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

/// Shamir-splits a data key k-of-n: share `x = i + 1` for custodian `i` (check each
/// later with [`key_share_digest`]). [`disperse`] shares a record's key so; an
/// attachment's stream key is shared the same way.
pub fn split_key<R: CryptoRng + ?Sized>(
    t: Threshold,
    key: &DataKey,
    rng: &mut R,
) -> Result<Vec<KeyShare>> {
    let shares = shamir::split(t, key.as_bytes(), rng)?;
    Ok(shares
        .iter()
        .map(|s| {
            let mut share = [0u8; 32];
            share.copy_from_slice(&s.y);
            KeyShare { x: s.x, share }
        })
        .collect())
}

/// Rebuilds the data key from key shares, checking each against the manifest.
///
/// Shares whose digest does not match are skipped; their x coordinates are returned
/// alongside the key so the caller can name the custodian.
pub fn recover_key(manifest: &Manifest, shares: &[KeyShare]) -> Result<(DataKey, Vec<u8>)> {
    let t = check_manifest(manifest)?;
    recover_key_with(t, &manifest.key_share_digests, shares)
}

/// [`recover_key`] for a key shared apart from a record's dispersal (an attachment's):
/// `digests[x - 1]` is share `x`'s [`key_share_digest`].
pub fn recover_key_with(
    t: Threshold,
    digests: &[[u8; 32]],
    shares: &[KeyShare],
) -> Result<(DataKey, Vec<u8>)> {
    if digests.len() != t.n() {
        return Err(Error::Manifest("key share digest count differs from n"));
    }
    let mut good: Vec<&KeyShare> = Vec::new();
    let mut corrupt = Vec::new();
    for s in shares {
        let ok = s.x >= 1
            && (s.x as usize) <= t.n()
            && bool::from(digests[s.x as usize - 1].ct_eq(&key_share_digest(s.x, &s.share)));
        if !ok {
            corrupt.push(s.x);
        } else if !good.iter().any(|g| g.x == s.x) {
            good.push(s);
        }
    }
    if good.len() < t.k() {
        return Err(Error::NotEnoughKeyShares {
            good: good.len(),
            needed: t.k(),
            corrupt,
        });
    }
    let refs: Vec<(u8, &[u8])> = good.iter().map(|s| (s.x, s.share.as_slice())).collect();
    let mut key = [0u8; 32];
    shamir::combine_into(t, &refs, &mut key)?;
    let dk = DataKey::from_bytes(key);
    key.zeroize();
    Ok((dk, corrupt))
}

/// The whole read path: key from shares, ciphertext from fragments, then open.
///
/// Fragments are verified only until `k` good ones are found (originals first), so
/// a caller may pass every fragment it has, or fetch `k` and retry with more when
/// some are reported corrupt.
pub fn open_dispersed(
    manifest: &Manifest,
    fragments: &[Option<&[u8]>],
    key_shares: &[KeyShare],
    ctx: &RecordContext,
) -> Result<Opened> {
    let (key, corrupt_key_shares) = recover_key(manifest, key_shares)?;
    let (sealed, report) = rebuild_ciphertext(manifest, fragments)?;
    let plaintext = seal::open(&key, ctx, sealed)?;
    Ok(Opened {
        plaintext,
        corrupt_fragments: report.corrupt,
        corrupt_key_shares,
    })
}

/// Checks a key share against the digest the manifest keeps for its x: how a re-issued
/// share ([`assemble_key_share`]) is known to be right before it is stored, since a wrong
/// piece or σ from any helper gives a wrong share. [`Error::CorruptKeyShares`] naming `x`
/// if it does not match (or `x` is not in `1..=n`).
pub fn check_key_share(manifest: &Manifest, share: &KeyShare) -> Result<()> {
    let t = check_manifest(manifest)?;
    let ok = share.x >= 1
        && (share.x as usize) <= t.n()
        && bool::from(
            manifest.key_share_digests[share.x as usize - 1]
                .ct_eq(&key_share_digest(share.x, &share.share)),
        );
    if ok {
        Ok(())
    } else {
        Err(Error::CorruptKeyShares(vec![share.x]))
    }
}

/// Share recovery's step 3 for a data key: the new custodian's [`KeyShare`] (at
/// `plan.target()`) from the σ of every helper of the plan (32 bytes each), as
/// [`recovery::assemble`]. Check it with [`check_key_share`] before keeping it.
pub fn assemble_key_share(plan: &RecoveryPlan, sigmas: &[(u8, &[u8])]) -> Result<KeyShare> {
    key_share_of(recovery::assemble(plan, sigmas)?)
}

/// Re-issues the key share of a lost custodian at `target` from the key shares of `t.k()`
/// helpers (distinct x, none `target`), running the three steps of [`crate::recovery`] in
/// this process: every helper's part is masked, so no buffer ever holds the data key,
/// and the result equals the share [`disperse`] made for `target`. Across hosts each
/// party runs its own step instead ([`recovery::contribute`], [`recovery::relay`],
/// [`assemble_key_share`]).
pub fn reissue_key_share<R: CryptoRng + ?Sized>(
    t: Threshold,
    helpers: &[KeyShare],
    target: u8,
    rng: &mut R,
) -> Result<KeyShare> {
    let xs: Vec<u8> = helpers.iter().map(|h| h.x).collect();
    let plan = RecoveryPlan::new(t, &xs, target)?;
    let refs: Vec<(u8, &[u8])> = helpers.iter().map(|h| (h.x, h.share.as_slice())).collect();
    key_share_of(recovery::recover_in_process(&plan, &refs, rng)?)
}

/// A recovered [`Share`] of a data key as a [`KeyShare`] (it must be 32 bytes).
fn key_share_of(share: Share) -> Result<KeyShare> {
    let bytes: [u8; 32] = share
        .y
        .as_slice()
        .try_into()
        .map_err(|_| Error::LengthMismatch {
            expected: 32,
            got: share.y.len(),
        })?;
    Ok(KeyShare {
        x: share.x,
        share: bytes,
    })
}

/// The seed design: Shamir over the whole block (each share as large as the block).
/// Fine for small secrets; kept for comparison in the benchmark.
pub fn share_whole<R: CryptoRng + ?Sized>(
    t: Threshold,
    block: &[u8],
    rng: &mut R,
) -> Result<Vec<Share>> {
    shamir::split(t, block, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn ctx() -> RecordContext {
        RecordContext {
            patient: [0xab; 20],
            record_id: [0x01; 32],
            version: 4,
        }
    }

    fn opts(frags: &[Vec<u8>]) -> Vec<Option<&[u8]>> {
        frags.iter().map(|f| Some(f.as_slice())).collect()
    }

    /// Boundary sizes around the fragment alignment (ciphertext = plaintext + 16).
    const SIZES: &[usize] = &[0, 1, 47, 48, 49, 64 * 3 - 16, 64 * 3 - 15, 10_000, 100_003];

    #[test]
    fn roundtrip_with_losses_and_corruption() {
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let t = Threshold::new(3, 5).unwrap();
        for &size in SIZES {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let d = disperse(t, &ctx(), data.clone(), &mut rng).unwrap();
            assert_eq!(d.fragments.len(), 5);
            assert!(
                d.fragments
                    .iter()
                    .all(|f| f.len() as u64 == d.manifest.fragment_len)
            );
            let frags = d.fragments.to_vecs();
            // Each fragment is about 1/k of the ciphertext.
            assert!(d.manifest.fragment_len as usize <= (size + 16).div_ceil(3) + 64);

            // Everything present.
            let o = open_dispersed(&d.manifest, &opts(&frags), &d.key_shares, &ctx()).unwrap();
            assert_eq!(o.plaintext, data);

            // Lose two (an original and a recovery), corrupt none: still fine.
            let mut f = opts(&frags);
            f[0] = None;
            f[4] = None;
            let o = open_dispersed(&d.manifest, &f, &d.key_shares[2..], &ctx()).unwrap();
            assert_eq!(o.plaintext, data);

            // Lose one, corrupt one: k = 3 good remain; corrupt one named.
            let mut bad = frags[1].clone();
            bad[0] ^= 1;
            let mut f = opts(&frags);
            f[3] = None;
            f[1] = Some(&bad);
            let o = open_dispersed(&d.manifest, &f, &d.key_shares, &ctx()).unwrap();
            assert_eq!(o.plaintext, data);
            assert_eq!(o.corrupt_fragments, vec![1]);

            // Lose two and corrupt one: not enough, and the error names them.
            f[4] = None;
            match open_dispersed(&d.manifest, &f, &d.key_shares, &ctx()) {
                Err(Error::NotEnoughFragments {
                    good,
                    needed,
                    corrupt,
                    missing,
                }) => {
                    assert_eq!((good, needed), (2, 3));
                    assert_eq!(corrupt, vec![1]);
                    assert_eq!(missing, vec![3, 4]);
                }
                other => panic!("unexpected {other:?}"),
            }

            // Repair regenerates the lost and the corrupt fragment exactly.
            let mut f = opts(&frags);
            f[0] = None;
            f[3] = Some(&bad);
            let fixed = repair(&d.manifest, &f).unwrap();
            assert_eq!(fixed.len(), 2);
            assert_eq!(fixed[0], (0, frags[0].clone()));
            assert_eq!(fixed[1], (3, frags[3].clone()));

            // Wrong context never opens.
            let mut other = ctx();
            other.version += 1;
            assert!(matches!(
                open_dispersed(&d.manifest, &opts(&frags), &d.key_shares, &other),
                Err(Error::Decrypt)
            ));
        }
    }

    #[test]
    fn read_path_checks_only_what_it_needs() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let t = Threshold::new(2, 4).unwrap();
        let d = disperse(t, &ctx(), vec![5u8; 3000], &mut rng).unwrap();
        let frags = d.fragments.to_vecs();
        let mut bad = frags[0].clone();
        bad[10] ^= 1;
        let mut f = opts(&frags);
        f[0] = Some(&bad);
        let (_, report) = rebuild_ciphertext(&d.manifest, &f).unwrap();
        // 0 and 1 checked first; 0 corrupt, so 2 is checked next; 3 is not needed.
        assert_eq!(report.good, vec![1, 2]);
        assert_eq!(report.corrupt, vec![0]);
        assert_eq!(report.unchecked, vec![3]);
        // check_fragments checks everything.
        let full = check_fragments(&d.manifest, &f).unwrap();
        assert_eq!(full.good, vec![1, 2, 3]);
        assert!(full.unchecked.is_empty());
    }

    #[test]
    fn wrong_key_share_is_named() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let t = Threshold::new(3, 5).unwrap();
        let d = disperse(t, &ctx(), b"record".to_vec(), &mut rng).unwrap();
        let frags = d.fragments.to_vecs();
        let mut shares = d.key_shares.clone();
        shares[1].share[5] ^= 0x40;
        let (key, corrupt) = recover_key(&d.manifest, &shares).unwrap();
        assert_eq!(corrupt, vec![2]);
        let sealed = rebuild_ciphertext(&d.manifest, &opts(&frags)).unwrap().0;
        assert_eq!(seal::open(&key, &ctx(), sealed).unwrap(), b"record");
        match recover_key(&d.manifest, &shares[..3]) {
            Err(Error::NotEnoughKeyShares {
                good,
                needed,
                corrupt,
            }) => {
                assert_eq!((good, needed, corrupt), (2, 3, vec![2]));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(format!("{:?}", shares[0]).starts_with("KeyShare { x: 1"));
    }

    #[test]
    fn k_equals_n_and_manifest_checks() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let t = Threshold::new(4, 4).unwrap();
        let d = disperse(t, &ctx(), vec![9u8; 1000], &mut rng).unwrap();
        let frags = d.fragments.to_vecs();
        let o = open_dispersed(&d.manifest, &opts(&frags), &d.key_shares, &ctx()).unwrap();
        assert_eq!(o.plaintext, vec![9u8; 1000]);
        let mut f = opts(&frags);
        f[2] = None;
        assert!(matches!(
            rebuild_ciphertext(&d.manifest, &f),
            Err(Error::NotEnoughFragments {
                good: 3,
                needed: 4,
                ..
            })
        ));
        let mut m = d.manifest.clone();
        m.fragment_len += 64;
        assert!(matches!(check_fragments(&m, &f), Err(Error::Manifest(_))));
        let mut m = d.manifest.clone();
        m.version = 99;
        assert!(matches!(check_fragments(&m, &f), Err(Error::Manifest(_))));
        assert!(matches!(
            check_fragments(&d.manifest, &f[..3]),
            Err(Error::ShareCount { .. })
        ));
    }

    #[test]
    fn fragment_digest_is_plain_sha256() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        // Small records hash on one thread, large ones (>= 1 MiB) on helpers too.
        for (k, n, size) in [
            (2, 3, 200),
            (3, 5, 3 << 20),
            (2, 5, 3 << 20),
            (3, 3, 3 << 20),
        ] {
            let t = Threshold::new(k, n).unwrap();
            let data: Vec<u8> = (0..size).map(|i| (i % 249) as u8).collect();
            let d = disperse(t, &ctx(), data.clone(), &mut rng).unwrap();
            assert_eq!(d.manifest.fragments.len(), n);
            for (i, f) in d.fragments.iter().enumerate() {
                let want: [u8; 32] = Sha256::digest(f).into();
                assert_eq!(d.manifest.fragments[i].sha256, want, "{k}-of-{n} #{i}");
            }
            let all: Vec<Option<&[u8]>> = d.fragments.iter().map(Some).collect();
            let o = open_dispersed(&d.manifest, &all, &d.key_shares, &ctx()).unwrap();
            assert!(o.plaintext == data);
        }
    }

    /// A lost custodian's key share, re-issued from k others by share recovery (in one
    /// process, and step by step as separate parties), is the share `disperse` made: it
    /// passes the manifest's digest and opens the record with k − 1 other shares (not the
    /// helpers where there are enough others), with fragments lost too.
    #[test]
    fn reissued_key_share_opens_the_record() {
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        for (k, n) in [(2, 3), (3, 5), (4, 10)] {
            let t = Threshold::new(k, n).unwrap();
            let data: Vec<u8> = (0..2000).map(|i| (i * 7 % 253) as u8).collect();
            let d = disperse(t, &ctx(), data.clone(), &mut rng).unwrap();
            let frags = d.fragments.to_vecs();
            for target in 1..=n as u8 {
                // Helpers: the k x coordinates after the target, cyclically.
                let helpers: Vec<KeyShare> = (1..=k)
                    .map(|o| d.key_shares[(target as usize - 1 + o) % n].clone())
                    .collect();
                let lost = &d.key_shares[target as usize - 1];
                let got = reissue_key_share(t, &helpers, target, &mut rng).unwrap();
                assert_eq!(&got, lost, "{k}-of-{n}, x = {target}");
                check_key_share(&d.manifest, &got).unwrap();

                // The same as separate parties would run it.
                let xs: Vec<u8> = helpers.iter().map(|h| h.x).collect();
                let plan = RecoveryPlan::new(t, &xs, target).unwrap();
                let pieces: Vec<Vec<recovery::Piece>> = helpers
                    .iter()
                    .map(|h| recovery::contribute(&plan, h.x, &h.share, &mut rng).unwrap())
                    .collect();
                let sigmas: Vec<recovery::Sigma> = plan
                    .helpers()
                    .iter()
                    .map(|&x| {
                        let mine: Vec<(u8, &[u8])> = pieces
                            .iter()
                            .flatten()
                            .filter(|p| p.to == x)
                            .map(|p| (p.from, p.bytes()))
                            .collect();
                        recovery::relay(&plan, x, &mine).unwrap()
                    })
                    .collect();
                let refs: Vec<(u8, &[u8])> = sigmas.iter().map(|s| (s.from, s.bytes())).collect();
                assert_eq!(&assemble_key_share(&plan, &refs).unwrap(), lost);

                // The recovered share and k − 1 others, preferring non-helpers; n − k
                // fragments lost.
                let mut others: Vec<KeyShare> = d
                    .key_shares
                    .iter()
                    .filter(|s| s.x != target && !xs.contains(&s.x))
                    .chain(helpers.iter())
                    .take(k - 1)
                    .cloned()
                    .collect();
                others.insert(0, got.clone());
                let mut f = opts(&frags);
                for i in 0..n - k {
                    f[(target as usize + i) % n] = None;
                }
                let o = open_dispersed(&d.manifest, &f, &others, &ctx()).unwrap();
                assert!(o.plaintext == data);
                assert!(o.corrupt_key_shares.is_empty());

                // One helper's wrong σ gives a wrong share, which the digest catches.
                let mut bad = sigmas[0].bytes().to_vec();
                bad[0] ^= 1;
                let mut refs = refs.clone();
                refs[0].1 = &bad;
                let wrong = assemble_key_share(&plan, &refs).unwrap();
                assert!(matches!(
                    check_key_share(&d.manifest, &wrong),
                    Err(Error::CorruptKeyShares(x)) if x == vec![target]
                ));
            }
        }

        // Bad inputs: a σ of the wrong size, too few helpers, the target among them.
        let t = Threshold::new(3, 5).unwrap();
        let d = disperse(t, &ctx(), b"r".to_vec(), &mut rng).unwrap();
        let plan = RecoveryPlan::new(t, &[1, 2, 3], 4).unwrap();
        let short = [0u8; 31];
        let refs: Vec<(u8, &[u8])> = vec![(1, &short), (2, &short), (3, &short)];
        assert!(matches!(
            assemble_key_share(&plan, &refs),
            Err(Error::LengthMismatch {
                expected: 32,
                got: 31
            })
        ));
        assert!(matches!(
            reissue_key_share(t, &d.key_shares[..2], 4, &mut rng),
            Err(Error::HelperCount {
                expected: 3,
                got: 2
            })
        ));
        assert!(matches!(
            reissue_key_share(t, &d.key_shares[..3], 3, &mut rng),
            Err(Error::TargetIsHelper(3))
        ));
        let mut foreign = d.key_shares[3].clone();
        foreign.x = 6;
        assert!(matches!(
            check_key_share(&d.manifest, &foreign),
            Err(Error::CorruptKeyShares(x)) if x == vec![6]
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_k_fragments_rebuild(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            k in 2usize..6,
            extra in 0usize..4,
            seed in any::<u64>(),
        ) {
            let n = k + extra;
            let t = Threshold::new(k, n).unwrap();
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let d = disperse(t, &ctx(), data.clone(), &mut rng).unwrap();
            let frags = d.fragments.to_vecs();
            // Drop n - k fragments chosen by the seed.
            let mut f = opts(&frags);
            let mut dropped = 0;
            let mut s = seed;
            while dropped < n - k {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                let i = (s >> 33) as usize % n;
                if f[i].is_some() {
                    f[i] = None;
                    dropped += 1;
                }
            }
            let o = open_dispersed(&d.manifest, &f, &d.key_shares[n - k..], &ctx()).unwrap();
            prop_assert_eq!(o.plaintext, data);
        }
    }
}
