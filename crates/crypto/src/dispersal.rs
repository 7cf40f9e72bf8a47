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
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::seal::{self, DataKey, NONCE_LEN, RecordContext, Sealed};
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
    let recovery = if n > k {
        encode_recovery(&buf, k, n - k, frag_len)?
    } else {
        Vec::new()
    };
    let fragments = Fragments {
        originals: buf,
        recovery,
        frag_len,
        k,
        n,
    };
    let digests = hash_all(&fragments.iter().collect::<Vec<_>>());

    let shares = shamir::split(t, key.as_bytes(), rng)?;
    let key_shares: Vec<KeyShare> = shares
        .iter()
        .map(|s| {
            let mut share = [0u8; 32];
            share.copy_from_slice(&s.y);
            KeyShare { x: s.x, share }
        })
        .collect();
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

/// SHA-256 of every fragment; two threads share the work when there is enough of
/// it (hashing is the costliest step of dispersal after encryption).
fn hash_all(fragments: &[&[u8]]) -> Vec<[u8; 32]> {
    let total: usize = fragments.iter().map(|f| f.len()).sum();
    if fragments.len() < 2 || total < (1 << 20) {
        return fragments.iter().map(|f| sha256(f)).collect();
    }
    let mid = fragments.len() / 2;
    let (a, b) = fragments.split_at(mid);
    std::thread::scope(|s| {
        let other = s.spawn(|| b.iter().map(|f| sha256(f)).collect::<Vec<_>>());
        let mut out: Vec<[u8; 32]> = a.iter().map(|f| sha256(f)).collect();
        // The helper cannot panic; should it have, hash its half here instead.
        match other.join() {
            Ok(rest) => out.extend(rest),
            Err(_) => out.extend(b.iter().map(|f| sha256(f))),
        }
        out
    })
}

fn rs_err(e: reed_solomon_simd::Error) -> Error {
    Error::ErasureCode(e.to_string())
}

/// Recovery fragments for `k` originals stored back to back in `originals`,
/// returned back to back.
fn encode_recovery(
    originals: &[u8],
    k: usize,
    recovery: usize,
    frag_len: usize,
) -> Result<Vec<u8>> {
    let mut enc = ReedSolomonEncoder::new(k, recovery, frag_len).map_err(rs_err)?;
    for f in originals.chunks_exact(frag_len) {
        enc.add_original_shard(f).map_err(rs_err)?;
    }
    let result = enc.encode().map_err(rs_err)?;
    let mut out = Vec::with_capacity(recovery * frag_len);
    for r in result.recovery_iter() {
        out.extend_from_slice(r);
    }
    Ok(out)
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
    if fragments.len() != t.n() {
        return Err(Error::ShareCount {
            expected: t.n(),
            got: fragments.len(),
        });
    }
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

/// Rebuilds all `k` original fragments from the good ones in `report`.
fn rebuild_originals(
    t: Threshold,
    frag_len: usize,
    fragments: &[Option<&[u8]>],
    report: &FragmentReport,
) -> Result<Vec<Vec<u8>>> {
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
    let mut originals: Vec<Option<Vec<u8>>> = (0..k).map(|i| good(i).map(<[u8]>::to_vec)).collect();
    if originals.iter().any(Option::is_none) {
        let mut dec = ReedSolomonDecoder::new(k, t.n() - k, frag_len).map_err(rs_err)?;
        for (i, o) in originals.iter().enumerate() {
            if let Some(o) = o {
                dec.add_original_shard(i, o).map_err(rs_err)?;
            }
        }
        for i in k..t.n() {
            if let Some(r) = good(i) {
                dec.add_recovery_shard(i - k, r).map_err(rs_err)?;
            }
        }
        let result = dec.decode().map_err(rs_err)?;
        for (i, o) in originals.iter_mut().enumerate() {
            if o.is_none() {
                *o = result.restored_original(i).map(<[u8]>::to_vec);
            }
        }
    }
    originals
        .into_iter()
        .map(|o| {
            o.ok_or(Error::ErasureCode(
                "decoder did not restore a fragment".into(),
            ))
        })
        .collect()
}

/// Rebuilds the ciphertext from any `k` good fragments; bad ones are skipped and
/// reported in the returned [`FragmentReport`].
pub fn rebuild_ciphertext(
    manifest: &Manifest,
    fragments: &[Option<&[u8]>],
) -> Result<(Sealed, FragmentReport)> {
    let t = check_manifest(manifest)?;
    let report = check_fragments(manifest, fragments)?;
    let frag_len = manifest.fragment_len as usize;
    let ct_len = manifest.ciphertext_len as usize;
    let mut ct = Vec::with_capacity(ct_len);
    // Fast path: all originals good, no decoding.
    if (0..t.k()).all(|i| report.good.contains(&i)) {
        for f in fragments.iter().take(t.k()).flatten() {
            ct.extend_from_slice(f);
        }
    } else {
        for o in rebuild_originals(t, frag_len, fragments, &report)? {
            ct.extend_from_slice(&o);
        }
    }
    ct.truncate(ct_len);
    Ok((
        Sealed {
            nonce: manifest.nonce,
            ciphertext: ct,
        },
        report,
    ))
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
    let originals = rebuild_originals(t, frag_len, fragments, &report)?;
    let recovery = if lost.iter().any(|&i| i >= t.k()) {
        encode_recovery(&originals.concat(), t.k(), t.n() - t.k(), frag_len)?
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(lost.len());
    let mut bad = Vec::new();
    for i in lost {
        let data = if i < t.k() {
            originals[i].clone()
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

/// Rebuilds the data key from key shares, checking each against the manifest.
///
/// Shares whose digest does not match are skipped; their x coordinates are returned
/// alongside the key so the caller can name the custodian.
pub fn recover_key(manifest: &Manifest, shares: &[KeyShare]) -> Result<(DataKey, Vec<u8>)> {
    let t = check_manifest(manifest)?;
    let mut good: Vec<&KeyShare> = Vec::new();
    let mut corrupt = Vec::new();
    for s in shares {
        let ok = s.x >= 1
            && (s.x as usize) <= t.n()
            && manifest.key_share_digests[s.x as usize - 1] == key_share_digest(s.x, &s.share);
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
        let t = Threshold::new(2, 3).unwrap();
        let d = disperse(t, &ctx(), vec![1u8; 200], &mut rng).unwrap();
        for (i, f) in d.fragments.iter().enumerate() {
            let want: [u8; 32] = Sha256::digest(f).into();
            assert_eq!(d.manifest.fragments[i].sha256, want);
        }
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
