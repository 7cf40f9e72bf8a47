//! Shamir secret sharing, byte-wise over GF(2^8), k-of-n.
//!
//! Every byte of the secret is the constant term of its own random polynomial of
//! degree `k - 1`; share `i` is that polynomial evaluated at a public, distinct,
//! non-zero `x_i`. Any `k` shares rebuild the secret by Lagrange interpolation at
//! zero; `k - 1` shares are consistent with every possible secret.
//!
//! Timing does not depend on secret data: secret bytes are only multiplied by public
//! constants, through the constant-time kernels of [`crate::gf256`] (AVX2 chosen at
//! run time, portable otherwise).
//!
//! Randomness: for small secrets (up to [`DIRECT_RNG_MAX`] random bytes) every
//! coefficient comes straight from the caller's RNG. For bulk secrets the caller's RNG
//! seeds an AES-256-CTR keystream that supplies the coefficients: reading megabytes
//! through a general RNG costs more than the sharing itself.
//!
//! The `*_into` variants write into caller-provided buffers: at 16 MiB, page-faulting
//! fresh output buffers costs more than the arithmetic.

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::gf256::{self, Backend, MulBy};
use crate::keystream::AesCtr;
use crate::{Error, Result, Threshold};

/// Secrets whose coefficients need at most this many random bytes draw them
/// directly from the caller's RNG.
pub const DIRECT_RNG_MAX: usize = 4096;

/// Bytes of secret processed per step (at most): the chunk's coefficients are
/// generated into a buffer that stays in L1 cache, and the fused kernel reads them
/// (and the secret) once for all n outputs.
const CHUNK: usize = 8 * 1024;

/// Cap on the coefficient bytes of one chunk (`(k - 1) * chunk`), unless that would
/// make the chunk smaller than 4 KiB.
const COEFF_BUDGET: usize = 16 * 1024;

/// From this size on, `combine` writes its output with non-temporal stores: it no
/// longer fits in cache, and skipping the read-for-ownership of every output line
/// cuts the memory traffic. (`split` writes n outputs interleaved, where plain
/// stores measured faster.)
const STREAM_MIN: usize = 256 * 1024;

/// One share: a public x coordinate and the polynomial values at x.
///
/// The values are zeroized on drop; `Debug` shows only `x` and the length.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    /// The x coordinate, `1..=255`.
    pub x: u8,
    /// The share bytes, as long as the secret.
    pub y: Vec<u8>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("x", &self.x)
            .field("len", &self.y.len())
            .finish_non_exhaustive()
    }
}

/// The default x coordinates `1..=n`.
/// Every buffer must be `expected` bytes long; the first that is not is named by length.
fn check_lengths(expected: usize, lens: impl IntoIterator<Item = usize>) -> Result<()> {
    match lens.into_iter().find(|&got| got != expected) {
        Some(got) => Err(Error::LengthMismatch { expected, got }),
        None => Ok(()),
    }
}

fn default_xs(n: usize) -> Vec<u8> {
    (1..=n).map(|i| i as u8).collect()
}

fn check_xs(xs: &[u8]) -> Result<()> {
    let mut seen = [false; 256];
    for &x in xs {
        if x == 0 {
            return Err(Error::ZeroX);
        }
        if seen[x as usize] {
            return Err(Error::DuplicateX(x));
        }
        seen[x as usize] = true;
    }
    Ok(())
}

/// Splits `secret` into `t.n()` shares at x = 1..=n, any `t.k()` of which rebuild it.
pub fn split<R: CryptoRng + ?Sized>(
    t: Threshold,
    secret: &[u8],
    rng: &mut R,
) -> Result<Vec<Share>> {
    let xs = default_xs(t.n());
    let mut ys: Vec<Vec<u8>> = (0..t.n()).map(|_| vec![0u8; secret.len()]).collect();
    {
        let mut outs: Vec<&mut [u8]> = ys.iter_mut().map(|v| v.as_mut_slice()).collect();
        split_into_at(t, &xs, secret, &mut outs, rng)?;
    }
    Ok(xs
        .into_iter()
        .zip(ys)
        .map(|(x, y)| Share { x, y })
        .collect())
}

/// Splits `secret` into the `t.n()` caller-provided buffers; `outs[i]` gets x = i + 1.
///
/// Every buffer must be exactly `secret.len()` bytes.
pub fn split_into<R: CryptoRng + ?Sized>(
    t: Threshold,
    secret: &[u8],
    outs: &mut [&mut [u8]],
    rng: &mut R,
) -> Result<()> {
    split_into_at(t, &default_xs(t.n()), secret, outs, rng)
}

/// Splits `secret` into `outs`, evaluating at the given distinct, non-zero `xs`.
///
/// `xs.len()` and `outs.len()` must equal `t.n()`; every buffer must be exactly
/// `secret.len()` bytes.
pub fn split_into_at<R: CryptoRng + ?Sized>(
    t: Threshold,
    xs: &[u8],
    secret: &[u8],
    outs: &mut [&mut [u8]],
    rng: &mut R,
) -> Result<()> {
    split_with(Backend::detect(), t, xs, secret, outs, rng)
}

/// [`split_into_at`] with an explicit kernel (tests compare the kernels).
pub(crate) fn split_with<R: CryptoRng + ?Sized>(
    backend: Backend,
    t: Threshold,
    xs: &[u8],
    secret: &[u8],
    outs: &mut [&mut [u8]],
    rng: &mut R,
) -> Result<()> {
    Error::check_share_count(t.n(), xs.len())?;
    Error::check_share_count(t.n(), outs.len())?;
    check_xs(xs)?;
    check_lengths(secret.len(), outs.iter().map(|o| o.len()))?;
    if secret.is_empty() {
        return Ok(());
    }
    let backend = backend.or_portable();
    let degree = t.k() - 1;
    let muls: Vec<MulBy> = xs.iter().map(|&x| MulBy::new(x)).collect();

    let direct = secret.len().saturating_mul(degree) <= DIRECT_RNG_MAX;
    let mut stream = if direct {
        None
    } else {
        let mut key = Zeroizing::new([0u8; 32]);
        let mut iv = [0u8; 16];
        rng.fill_bytes(key.as_mut_slice());
        rng.fill_bytes(&mut iv);
        Some(AesCtr::new(&key, &iv))
    };

    // A multiple of 64: whole kernel columns, and whole keystream blocks per call.
    let chunk = secret
        .len()
        .min(CHUNK.min((COEFF_BUDGET / degree).max(4096)) & !63);
    let mut coeffs = Zeroizing::new(vec![0u8; degree * chunk]);
    let mut start = 0;
    while start < secret.len() {
        let len = chunk.min(secret.len() - start);
        let c = &mut coeffs[..degree * len];
        match stream.as_mut() {
            Some(s) => s.fill(c),
            None => rng.fill_bytes(c),
        }
        let s = &secret[start..start + len];
        gf256::horner_all(backend, &muls, c, s, outs, start);
        start += len;
    }
    Ok(())
}

/// Lagrange coefficients at zero for the given distinct, non-zero xs (public values).
fn lagrange_at_zero(xs: &[u8]) -> Vec<MulBy> {
    xs.iter()
        .enumerate()
        .map(|(i, &xi)| {
            let mut num = 1u8;
            let mut den = 1u8;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    // (0 - xj) / (xi - xj); subtraction is XOR in GF(2^8).
                    num = gf256::mul(num, xj);
                    den = gf256::mul(den, xi ^ xj);
                }
            }
            MulBy::new(gf256::mul(num, gf256::inv(den)))
        })
        .collect()
}

/// Rebuilds a secret from at least `t.k()` shares (the first `k` are used).
///
/// Every share given is validated: non-zero, distinct x and equal lengths.
pub fn combine(t: Threshold, shares: &[Share]) -> Result<Zeroizing<Vec<u8>>> {
    let refs: Vec<(u8, &[u8])> = shares.iter().map(|s| (s.x, s.y.as_slice())).collect();
    let len = refs.first().map_or(0, |s| s.1.len());
    let mut out = Zeroizing::new(vec![0u8; len]);
    combine_into(t, &refs, &mut out)?;
    Ok(out)
}

/// Rebuilds a secret into `out` from at least `t.k()` `(x, y)` shares.
///
/// `out` and every `y` must have the same length.
pub fn combine_into(t: Threshold, shares: &[(u8, &[u8])], out: &mut [u8]) -> Result<()> {
    combine_with(Backend::detect(), t, shares, out)
}

/// [`combine_into`] with an explicit kernel.
pub(crate) fn combine_with(
    backend: Backend,
    t: Threshold,
    shares: &[(u8, &[u8])],
    out: &mut [u8],
) -> Result<()> {
    if shares.len() < t.k() {
        return Err(Error::NotEnoughShares {
            got: shares.len(),
            needed: t.k(),
        });
    }
    let xs: Vec<u8> = shares.iter().map(|s| s.0).collect();
    check_xs(&xs)?;
    check_lengths(out.len(), shares.iter().map(|(_, y)| y.len()))?;
    if out.is_empty() {
        return Ok(());
    }
    let backend = backend.or_portable();
    let used = &shares[..t.k()];
    let coeffs = lagrange_at_zero(&xs[..t.k()]);
    let inputs: Vec<&[u8]> = used.iter().map(|s| s.1).collect();
    // Chunked so the k inputs and the output stream through cache together.
    let stream_out = out.len() >= STREAM_MIN;
    let mut start = 0;
    while start < out.len() {
        let end = (start + 64 * 1024).min(out.len());
        let ins: Vec<&[u8]> = inputs.iter().map(|s| &s[start..end]).collect();
        gf256::lincomb(backend, &coeffs, &ins, &mut out[start..end], stream_out);
        start = end;
    }
    if stream_out {
        gf256::store_fence();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn th(k: usize, n: usize) -> Threshold {
        Threshold::new(k, n).unwrap()
    }

    /// Picks `k` distinct indices out of `n` using `seed`.
    fn pick(n: usize, k: usize, seed: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        let mut s = seed;
        for i in (1..n).rev() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            idx.swap(i, (s >> 33) as usize % (i + 1));
        }
        idx.truncate(k);
        idx
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_k_of_n_rebuild(
            secret in proptest::collection::vec(any::<u8>(), 0..3000),
            k in 2usize..8,
            extra in 0usize..6,
            seed in any::<u64>(),
            bulk in any::<bool>(),
        ) {
            let n = k + extra;
            let t = th(k, n);
            // `bulk` pads past DIRECT_RNG_MAX to exercise the keystream path too.
            let secret = if bulk { [secret.as_slice(), &[7u8; 5000]].concat() } else { secret };
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let shares = split(t, &secret, &mut rng).unwrap();
            prop_assert_eq!(shares.len(), n);
            let chosen: Vec<Share> = pick(n, k, seed).into_iter().map(|i| shares[i].clone()).collect();
            let back = combine(t, &chosen).unwrap();
            prop_assert_eq!(back.as_slice(), secret.as_slice());
        }

        #[test]
        fn avx2_and_portable_agree(
            secret in proptest::collection::vec(any::<u8>(), 1..5000),
            k in 2usize..6,
            extra in 0usize..4,
            seed in any::<u64>(),
        ) {
            prop_assume!(Backend::Avx2.is_available());
            let n = k + extra;
            let t = th(k, n);
            let xs = default_xs(n);
            let mut a: Vec<Vec<u8>> = vec![vec![0; secret.len()]; n];
            let mut b = a.clone();
            {
                let mut oa: Vec<&mut [u8]> = a.iter_mut().map(|v| v.as_mut_slice()).collect();
                split_with(Backend::Avx2, t, &xs, &secret, &mut oa, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
                let mut ob: Vec<&mut [u8]> = b.iter_mut().map(|v| v.as_mut_slice()).collect();
                split_with(Backend::Portable, t, &xs, &secret, &mut ob, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
            }
            prop_assert_eq!(&a, &b);
            let refs: Vec<(u8, &[u8])> = pick(n, k, seed).into_iter().map(|i| (xs[i], a[i].as_slice())).collect();
            let mut ca = vec![0u8; secret.len()];
            let mut cb = vec![0u8; secret.len()];
            combine_with(Backend::Avx2, t, &refs, &mut ca).unwrap();
            combine_with(Backend::Portable, t, &refs, &mut cb).unwrap();
            prop_assert_eq!(&ca, &cb);
            prop_assert_eq!(&ca, &secret);
        }

        /// k - 1 shares of a 1-byte secret are consistent with every candidate secret:
        /// for each s in 0..=255 there is exactly one polynomial of degree < k through
        /// (0, s) and the k - 1 shares, and the k - 1 points alone never pin s down.
        #[test]
        fn k_minus_one_shares_fit_every_secret(
            secret in any::<u8>(),
            k in 2usize..6,
            extra in 0usize..4,
            seed in any::<u64>(),
        ) {
            let n = k + extra;
            let t = th(k, n);
            let shares = split(t, &[secret], &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
            let known: Vec<&Share> = pick(n, k - 1, seed).into_iter().map(|i| &shares[i]).collect();
            // A share we did not use: its value under each candidate polynomial.
            let probe = (1..=255u8).find(|x| known.iter().all(|s| s.x != *x)).unwrap();
            let mut probe_values = std::collections::BTreeSet::new();
            for s in 0..=255u8 {
                // Points: (0, s) plus the k - 1 known shares: k points, degree k - 1.
                let mut xs = vec![0u8];
                let mut ys = vec![s];
                for sh in &known {
                    xs.push(sh.x);
                    ys.push(sh.y[0]);
                }
                // The interpolating polynomial passes through every point by
                // construction; evaluate it at 0 (must give s) and at the probe.
                let eval = |at: u8| -> u8 {
                    let mut acc = 0u8;
                    for i in 0..xs.len() {
                        let mut l = 1u8;
                        for j in 0..xs.len() {
                            if i != j {
                                l = gf256::mul(l, gf256::mul(at ^ xs[j], gf256::inv(xs[i] ^ xs[j])));
                            }
                        }
                        acc ^= gf256::mul(l, ys[i]);
                    }
                    acc
                };
                prop_assert_eq!(eval(0), s);
                for sh in &known {
                    prop_assert_eq!(eval(sh.x), sh.y[0]);
                }
                probe_values.insert(eval(probe));
            }
            // 256 candidate secrets give 256 distinct polynomials: nothing excluded.
            prop_assert_eq!(probe_values.len(), 256);
        }
    }

    /// Large secrets take the keystream and non-temporal-store paths; both kernels
    /// must still agree byte for byte, including ragged ends and unaligned buffers.
    #[test]
    fn large_secret_backends_agree() {
        let len = STREAM_MIN + 4096 * 3 + 17;
        let secret: Vec<u8> = (0..len).map(|i| (i * 131 % 256) as u8).collect();
        let t = th(3, 5);
        let xs = default_xs(5);
        let mut per_backend = Vec::new();
        for backend in [Backend::Portable, Backend::Avx2] {
            if !backend.is_available() {
                continue;
            }
            // One spare byte in front so the outputs start unaligned.
            let mut bufs = vec![vec![0u8; len + 1]; 5];
            let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|v| &mut v[1..]).collect();
            let mut rng = ChaCha20Rng::seed_from_u64(11);
            split_with(backend, t, &xs, &secret, &mut outs, &mut rng).unwrap();
            let refs: Vec<(u8, &[u8])> = [4usize, 0, 2]
                .iter()
                .map(|&i| (xs[i], &bufs[i][1..]))
                .collect();
            let mut out = vec![0u8; len + 1];
            combine_with(backend, t, &refs, &mut out[1..]).unwrap();
            assert!(out[1..] == secret[..], "{backend:?}");
            per_backend.push(bufs);
        }
        if per_backend.len() == 2 {
            assert!(per_backend[0] == per_backend[1]);
        }
    }

    /// An RNG that replays a fixed byte, to enumerate every coefficient.
    struct Fixed(u8);
    impl rand_core::TryRng for Fixed {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(u32::from_ne_bytes([self.0; 4]))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from_ne_bytes([self.0; 8]))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(self.0);
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Fixed {}

    /// Perfect secrecy through the real code path (2-of-n, 1-byte secret): over all
    /// 256 values of the random coefficient, every single share takes every value
    /// exactly once, whatever the secret.
    #[test]
    fn one_share_is_uniform_for_every_secret() {
        let t = th(2, 4);
        for secret in [0u8, 1, 0x80, 0xff] {
            let mut seen = [[0u16; 256]; 4];
            for a in 0..=255u8 {
                let shares = split(t, &[secret], &mut Fixed(a)).unwrap();
                for (i, s) in shares.iter().enumerate() {
                    seen[i][s.y[0] as usize] += 1;
                }
            }
            for counts in seen {
                assert!(counts.iter().all(|&c| c == 1));
            }
        }
    }

    #[test]
    fn invalid_inputs_give_clear_errors() {
        let t = th(3, 5);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let secret = [1u8, 2, 3];
        let mut bufs = vec![vec![0u8; 3]; 5];
        let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|v| v.as_mut_slice()).collect();
        assert!(matches!(
            split_into_at(t, &[1, 2, 3, 4, 0], &secret, &mut outs, &mut rng),
            Err(Error::ZeroX)
        ));
        assert!(matches!(
            split_into_at(t, &[1, 2, 3, 2, 5], &secret, &mut outs, &mut rng),
            Err(Error::DuplicateX(2))
        ));
        assert!(matches!(
            split_into_at(t, &[1, 2, 3], &secret, &mut outs, &mut rng),
            Err(Error::ShareCount {
                expected: 5,
                got: 3
            })
        ));
        assert!(matches!(
            split_into(t, &secret, &mut outs[..4], &mut rng),
            Err(Error::ShareCount {
                expected: 5,
                got: 4
            })
        ));
        let mut short = vec![0u8; 2];
        outs[4] = &mut short;
        assert!(matches!(
            split_into(t, &secret, &mut outs, &mut rng),
            Err(Error::LengthMismatch {
                expected: 3,
                got: 2
            })
        ));
        assert!(matches!(
            Threshold::new(6, 5).map_err(Error::from),
            Err(Error::Threshold(_))
        ));
        assert!(matches!(
            Threshold::new(1, 5).map_err(Error::from),
            Err(Error::Threshold(_))
        ));

        let shares = split(t, &secret, &mut rng).unwrap();
        assert!(matches!(
            combine(t, &shares[..2]),
            Err(Error::NotEnoughShares { got: 2, needed: 3 })
        ));
        let mut dup = shares[..3].to_vec();
        dup[2].x = dup[0].x;
        assert!(matches!(combine(t, &dup), Err(Error::DuplicateX(1))));
        let mut zero = shares[..3].to_vec();
        zero[1].x = 0;
        assert!(matches!(combine(t, &zero), Err(Error::ZeroX)));
        let mut uneven = shares[..3].to_vec();
        uneven[2].y.pop();
        assert!(matches!(
            combine(t, &uneven),
            Err(Error::LengthMismatch { .. })
        ));
        // Empty secrets are fine.
        let empty = split(t, &[], &mut rng).unwrap();
        assert!(combine(t, &empty).unwrap().is_empty());
    }
}
