//! Self-checking share files: the seed's Shamir module, made threshold and verifiable.
//!
//! A file is split k-of-n into `n` share files; any `k` good ones rebuild it, and a
//! corrupt, truncated or foreign share is detected and named. The format is
//! documented in the crate README (section "Share-file format"):
//!
//! ```text
//! offset    size   field
//! 0         8      magic "EHRSHARE"
//! 8         1      format version = 1
//! 9         1      k (threshold)
//! 10        1      n (share count)
//! 11        1      x = share index, 1..=n
//! 12        8      L = secret length, u64 little-endian
//! 20        16     split id: random, the same in all n shares of one split
//! 36        32*n   SHA-256 of the payload of share x', for x' = 1..=n
//! 36+32n    32     SHA-256 of bytes [0, 36+32n) (header checksum)
//! 68+32n    L+32   payload: this share of (secret || SHA-256(secret))
//! ```
//!
//! The secret's own SHA-256 is *inside* the shared payload, so fewer than `k` shares
//! reveal nothing about it (a plain hash in the header would let anyone holding one
//! share test guesses of a low-entropy secret); after rebuilding, it proves the
//! result right.

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::shamir;
use crate::{Error, Reject, Result, Threshold};

/// File magic.
pub const MAGIC: &[u8; 8] = b"EHRSHARE";
/// Format version written by this crate.
pub const FORMAT_VERSION: u8 = 1;
/// Length of the fixed part of the header (before the digest list).
const FIXED: usize = 36;

/// Header length for `n` shares: fixed part, digest list and header checksum.
pub fn header_len(n: usize) -> usize {
    FIXED + 32 * n + 32
}

/// A parsed share file whose header checksum and payload digest both check out.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareFile {
    /// Threshold.
    pub k: u8,
    /// Share count.
    pub n: u8,
    /// This share's index (its x coordinate), `1..=n`.
    pub x: u8,
    /// Length of the secret.
    pub secret_len: u64,
    /// Random id shared by all shares of one split.
    pub split_id: [u8; 16],
    /// SHA-256 of every share's payload, index `x - 1`.
    pub digests: Vec<[u8; 32]>,
    /// This share of `secret || SHA-256(secret)`.
    pub payload: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ShareFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareFile")
            .field("k", &self.k)
            .field("n", &self.n)
            .field("x", &self.x)
            .field("secret_len", &self.secret_len)
            .finish_non_exhaustive()
    }
}

/// Splits `secret` k-of-n and returns the `n` encoded share files, for x = 1..=n.
pub fn split<R: CryptoRng + ?Sized>(
    t: Threshold,
    secret: &[u8],
    rng: &mut R,
) -> Result<Vec<Vec<u8>>> {
    let n = t.n();
    let mut padded = Zeroizing::new(Vec::with_capacity(secret.len() + 32));
    padded.extend_from_slice(secret);
    padded.extend_from_slice(&Sha256::digest(secret));
    let plen = padded.len();
    let hlen = header_len(n);

    let mut files: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; hlen + plen]).collect();
    {
        let mut outs: Vec<&mut [u8]> = files.iter_mut().map(|f| &mut f[hlen..]).collect();
        shamir::split_into(t, &padded, &mut outs, rng)?;
    }
    let digests: Vec<[u8; 32]> = files
        .iter()
        .map(|f| Sha256::digest(&f[hlen..]).into())
        .collect();
    let mut split_id = [0u8; 16];
    rng.fill_bytes(&mut split_id);
    for (i, f) in files.iter_mut().enumerate() {
        f[..8].copy_from_slice(MAGIC);
        f[8] = FORMAT_VERSION;
        f[9] = t.k() as u8;
        f[10] = n as u8;
        f[11] = (i + 1) as u8;
        f[12..20].copy_from_slice(&(secret.len() as u64).to_le_bytes());
        f[20..36].copy_from_slice(&split_id);
        for (j, d) in digests.iter().enumerate() {
            f[FIXED + 32 * j..FIXED + 32 * (j + 1)].copy_from_slice(d);
        }
        let check: [u8; 32] = Sha256::digest(&f[..FIXED + 32 * n]).into();
        f[FIXED + 32 * n..hlen].copy_from_slice(&check);
    }
    Ok(files)
}

/// Parses and verifies one share file; the error says why it was set aside.
pub fn parse(bytes: &[u8]) -> Result<ShareFile, Reject> {
    if bytes.len() < FIXED || &bytes[..8] != MAGIC || bytes[8] != FORMAT_VERSION {
        return Err(Reject::Malformed);
    }
    let (k, n, x) = (bytes[9], bytes[10], bytes[11]);
    let nu = n as usize;
    if Threshold::new(k as usize, nu).is_err() || x == 0 || x > n {
        return Err(Reject::Malformed);
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[12..20]);
    let secret_len = u64::from_le_bytes(len8);
    let hlen = header_len(nu);
    let expected = usize::try_from(secret_len)
        .ok()
        .and_then(|l| l.checked_add(32))
        .and_then(|l| l.checked_add(hlen))
        .ok_or(Reject::Malformed)?;
    if bytes.len() != expected {
        return Err(Reject::Malformed);
    }
    let check: [u8; 32] = Sha256::digest(&bytes[..FIXED + 32 * nu]).into();
    if check[..] != bytes[FIXED + 32 * nu..hlen] {
        return Err(Reject::HeaderDigest);
    }
    let digests: Vec<[u8; 32]> = bytes[FIXED..FIXED + 32 * nu]
        .chunks_exact(32)
        .map(|c| {
            let mut d = [0u8; 32];
            d.copy_from_slice(c);
            d
        })
        .collect();
    let payload = &bytes[hlen..];
    let got: [u8; 32] = Sha256::digest(payload).into();
    if got != digests[x as usize - 1] {
        return Err(Reject::PayloadDigest);
    }
    let mut split_id = [0u8; 16];
    split_id.copy_from_slice(&bytes[20..36]);
    Ok(ShareFile {
        k,
        n,
        x,
        secret_len,
        split_id,
        digests,
        payload: Zeroizing::new(payload.to_vec()),
    })
}

/// A secret rebuilt by [`combine`], with the inputs that were set aside.
#[derive(Debug)]
pub struct Combined {
    /// The verified secret.
    pub secret: Zeroizing<Vec<u8>>,
    /// Inputs not used: (position in the input list, reason).
    pub rejected: Vec<(usize, Reject)>,
}

/// Rebuilds a secret from share files; succeeds when at least `k` good shares of one
/// split are present, whatever else is given.
///
/// Every input that is corrupt, from another split or a duplicate is listed with its
/// position. With too few good shares the error says how many were good and how many
/// are needed. The result is verified against the SHA-256 carried inside the shares.
pub fn combine(files: &[&[u8]]) -> Result<Combined> {
    let mut rejected = Vec::new();
    let mut parsed: Vec<(usize, ShareFile)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        match parse(f) {
            Ok(s) => parsed.push((i, s)),
            Err(r) => rejected.push((i, r)),
        }
    }
    // Group by split (everything the header commits to but x); keep the largest
    // group, the first one seen on a tie.
    let same = |a: &ShareFile, b: &ShareFile| {
        a.split_id == b.split_id
            && a.k == b.k
            && a.n == b.n
            && a.secret_len == b.secret_len
            && a.digests == b.digests
    };
    let mut best: Option<(usize, usize)> = None; // (index into parsed, group size)
    for (i, (_, s)) in parsed.iter().enumerate() {
        let size = parsed.iter().filter(|(_, o)| same(s, o)).count();
        if best.is_none_or(|(_, b)| size > b) {
            best = Some((i, size));
        }
    }
    let Some((lead, _)) = best else {
        rejected.sort_by_key(|r| r.0);
        return Err(Error::NotEnoughGoodShares {
            good: 0,
            needed: 0,
            rejected,
        });
    };
    let lead = parsed[lead].1.clone();
    let mut good: Vec<&ShareFile> = Vec::new();
    for (i, s) in &parsed {
        if !same(&lead, s) {
            rejected.push((*i, Reject::OtherSplit));
        } else if good.iter().any(|g| g.x == s.x) {
            rejected.push((*i, Reject::Duplicate));
        } else {
            good.push(s);
        }
    }
    rejected.sort_by_key(|r| r.0);
    let k = lead.k as usize;
    if good.len() < k {
        return Err(Error::NotEnoughGoodShares {
            good: good.len(),
            needed: k,
            rejected,
        });
    }
    let t = Threshold::new(k, lead.n as usize)?;
    let refs: Vec<(u8, &[u8])> = good.iter().map(|s| (s.x, s.payload.as_slice())).collect();
    let mut out = Zeroizing::new(vec![0u8; lead.payload.len()]);
    shamir::combine_into(t, &refs, &mut out)?;
    let body = out.len() - 32;
    let digest: [u8; 32] = Sha256::digest(&out[..body]).into();
    if digest[..] != out[body..] {
        return Err(Error::Integrity);
    }
    out.truncate(body);
    Ok(Combined {
        secret: out,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn files(k: usize, n: usize, secret: &[u8]) -> Vec<Vec<u8>> {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        split(Threshold::new(k, n).unwrap(), secret, &mut rng).unwrap()
    }

    #[test]
    fn layout_is_as_documented() {
        let f = files(3, 5, b"abc");
        assert_eq!(f.len(), 5);
        for (i, file) in f.iter().enumerate() {
            assert_eq!(&file[..8], b"EHRSHARE");
            assert_eq!(file[8..12], [1, 3, 5, i as u8 + 1]);
            assert_eq!(file[12..20], 3u64.to_le_bytes());
            assert_eq!(file[20..36], f[0][20..36]);
            assert_eq!(file.len(), 36 + 32 * 5 + 32 + 3 + 32);
            let s = parse(file).unwrap();
            assert_eq!((s.k, s.n, s.x, s.secret_len), (3, 5, i as u8 + 1, 3));
        }
    }

    #[test]
    fn combine_names_corrupt_and_needs_k_good() {
        let secret: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let f = files(3, 5, &secret);
        // Any 3 rebuild.
        let all: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
        assert_eq!(
            combine(&all[2..]).unwrap().secret.as_slice(),
            secret.as_slice()
        );

        // Corrupt payload of one of four: still rebuilt, and named.
        let mut bad = f[1].clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let inputs = [&f[0][..], &bad[..], &f[2][..], &f[3][..]];
        let c = combine(&inputs).unwrap();
        assert_eq!(c.secret.as_slice(), secret.as_slice());
        assert_eq!(c.rejected, vec![(1, Reject::PayloadDigest)]);

        // Three inputs, one corrupt: 2 good of 3 needed.
        let inputs = [&f[0][..], &bad[..], &f[2][..]];
        match combine(&inputs) {
            Err(Error::NotEnoughGoodShares {
                good,
                needed,
                rejected,
            }) => {
                assert_eq!((good, needed), (2, 3));
                assert_eq!(rejected, vec![(1, Reject::PayloadDigest)]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_kind_of_damage_is_classified() {
        let f = files(2, 3, b"secret data");
        let mut header = f[0].clone();
        header[13] ^= 1; // secret length byte: header checksum breaks (or length)
        assert!(matches!(
            parse(&header),
            Err(Reject::HeaderDigest | Reject::Malformed)
        ));
        let mut digest = f[0].clone();
        digest[40] ^= 1; // inside the digest list
        assert_eq!(parse(&digest), Err(Reject::HeaderDigest));
        assert_eq!(parse(&f[0][..50]), Err(Reject::Malformed));
        assert_eq!(parse(b"not a share"), Err(Reject::Malformed));
        let mut magic = f[0].clone();
        magic[0] = b'X';
        assert_eq!(parse(&magic), Err(Reject::Malformed));

        // A share of another split of the same secret is set aside, a duplicate too.
        let g = files(2, 3, b"other secret");
        let inputs = [&f[0][..], &g[1][..], &f[0][..], &f[2][..]];
        let c = combine(&inputs).unwrap();
        assert_eq!(c.secret.as_slice(), b"secret data");
        assert_eq!(
            c.rejected,
            vec![(1, Reject::OtherSplit), (2, Reject::Duplicate)]
        );

        // Nothing usable at all.
        match combine(&[b"junk".as_slice()]) {
            Err(Error::NotEnoughGoodShares {
                good: 0,
                needed: 0,
                rejected,
            }) => {
                assert_eq!(rejected, vec![(0, Reject::Malformed)]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_secret_roundtrips() {
        let f = files(2, 2, b"");
        let all: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
        assert!(combine(&all).unwrap().secret.is_empty());
    }
}
