//! AES-256-CTR: the keystream that supplies Shamir coefficients for bulk secrets,
//! and the bulk encryption of [`crate::seal`] (GCM counter mode).
//!
//! The output is exactly that of `ctr::Ctr128BE<aes::Aes256>` (128-bit big-endian
//! counter starting at the IV), as long as every call but the last asks for a
//! multiple of 16 bytes. On CPUs with VAES and AVX2 (AMD Zen 3+, Intel Ice Lake+) a
//! hand-pipelined kernel computes 16 blocks per step with the counters built in
//! registers; the `ctr`/`aes` crates' generic path (AES-NI, or the constant-time
//! software AES) runs elsewhere. The tests check the two agree byte for byte.
//!
//! AES-NI/VAES instructions run in constant time; the key schedule is zeroized on
//! drop.

use aes::cipher::{KeyIvInit, StreamCipher};
use zeroize::{Zeroize, Zeroizing};

type Generic = ctr::Ctr128BE<aes::Aes256>;

/// An AES-256-CTR keystream positioned at a block boundary.
pub(crate) struct AesCtr {
    inner: Inner,
    /// A call has asked for a length that is not a multiple of 16: it must have been
    /// the last (checked in debug builds).
    ragged: bool,
}

enum Inner {
    #[cfg(target_arch = "x86_64")]
    Vaes {
        /// The 15 AES-256 round keys.
        round_keys: Box<Zeroizing<[[u8; 16]; 15]>>,
        /// The next counter block, as a number.
        counter: u128,
    },
    Generic(Box<Generic>),
}

impl Drop for AesCtr {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if let Inner::Vaes { counter, .. } = &mut self.inner {
            counter.zeroize();
        }
    }
}

impl AesCtr {
    /// The keystream for `key` and initial counter block `iv`.
    pub(crate) fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        #[cfg(target_arch = "x86_64")]
        if vaes::available() {
            return Self {
                inner: Inner::Vaes {
                    round_keys: Box::new(vaes::expand_key_entry(key)),
                    counter: u128::from_be_bytes(*iv),
                },
                ragged: false,
            };
        }
        Self::generic(key, iv)
    }

    /// Whether [`Self::new`] runs the VAES kernel on this CPU.
    pub(crate) fn accelerated() -> bool {
        #[cfg(target_arch = "x86_64")]
        if vaes::available() {
            return true;
        }
        false
    }

    /// The `ctr`-crate keystream (what [`Self::new`] uses without VAES).
    pub(crate) fn generic(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Self {
            inner: Inner::Generic(Box::new(Generic::new(key.into(), iv.into()))),
            ragged: false,
        }
    }

    /// Overwrites `buf` with the next `buf.len()` keystream bytes. Only the last call
    /// on a stream may ask for a length that is not a multiple of 16.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        self.run(buf, false);
    }

    /// XORs the next `buf.len()` keystream bytes into `buf` (CTR encryption), with
    /// the same rule as [`Self::fill`].
    pub(crate) fn apply(&mut self, buf: &mut [u8]) {
        self.run(buf, true);
    }

    fn run(&mut self, buf: &mut [u8], xor: bool) {
        debug_assert!(!self.ragged, "only the last call may end inside a block");
        self.ragged = !buf.len().is_multiple_of(16);
        match &mut self.inner {
            #[cfg(target_arch = "x86_64")]
            Inner::Vaes {
                round_keys,
                counter,
            } => {
                vaes::run_entry(round_keys, *counter, buf, xor);
                *counter = counter.wrapping_add(buf.len().div_ceil(16) as u128);
            }
            Inner::Generic(g) if xor => g.apply_keystream(buf),
            Inner::Generic(g) => g.write_keystream(buf),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod vaes {
    //! AES-256-CTR with VAES: 8 YMM registers of 2 blocks each in flight, so the
    //! 4-cycle latency of `vaesenc` is hidden behind its 2-per-cycle throughput.

    use std::arch::x86_64::*;
    use zeroize::Zeroizing;

    /// Whether the VAES kernel can run here.
    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("aes")
            && std::is_x86_feature_detected!("vaes")
    }

    /// AES-256 key expansion (FIPS 197), with `aeskeygenassist`.
    pub(super) fn expand_key_entry(key: &[u8; 32]) -> Zeroizing<[[u8; 16]; 15]> {
        assert!(available());
        let mut rk = Zeroizing::new([[0u8; 16]; 15]);
        // SAFETY: AES-NI support was just checked at run time.
        unsafe { expand_key(key, &mut rk) };
        rk
    }

    /// Writes (or with `xor`, XORs) the keystream from counter block `counter` on
    /// into `buf`.
    pub(super) fn run_entry(rk: &[[u8; 16]; 15], counter: u128, buf: &mut [u8], xor: bool) {
        assert!(available());
        // SAFETY: AVX2, AES-NI and VAES support were just checked at run time.
        unsafe { run(rk, counter, buf, xor) };
    }

    /// One key-expansion step: `prev` with each 32-bit word XORed with all words
    /// before it, XORed with `word` (the `aeskeygenassist` word, broadcast).
    #[target_feature(enable = "aes")]
    #[inline]
    fn next_key(prev: __m128i, word: __m128i) -> __m128i {
        let mut t = prev;
        let mut s = _mm_slli_si128(prev, 4);
        t = _mm_xor_si128(t, s);
        s = _mm_slli_si128(s, 4);
        t = _mm_xor_si128(t, s);
        s = _mm_slli_si128(s, 4);
        t = _mm_xor_si128(t, s);
        _mm_xor_si128(t, word)
    }

    #[target_feature(enable = "aes")]
    unsafe fn expand_key(key: &[u8; 32], out: &mut [[u8; 16]; 15]) {
        // SAFETY: `key` is 32 bytes: two unaligned 16-byte loads read exactly it.
        let (mut a, mut b) = unsafe {
            (
                _mm_loadu_si128(key.as_ptr().cast()),
                _mm_loadu_si128(key.as_ptr().add(16).cast()),
            )
        };
        let mut rk = [a; 15];
        rk[1] = b;
        // Even round keys: RotWord(SubWord(w)) ^ rcon of the last word.
        macro_rules! even {
            ($rcon:expr) => {
                next_key(
                    a,
                    _mm_shuffle_epi32(_mm_aeskeygenassist_si128(b, $rcon), 0xff),
                )
            };
        }
        // Odd round keys: SubWord(w) of the last word, no rotation.
        macro_rules! pair {
            ($i:expr, $rcon:expr) => {
                a = even!($rcon);
                rk[$i] = a;
                b = next_key(b, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(a, 0), 0xaa));
                rk[$i + 1] = b;
            };
        }
        pair!(2, 0x01);
        pair!(4, 0x02);
        pair!(6, 0x04);
        pair!(8, 0x08);
        pair!(10, 0x10);
        pair!(12, 0x20);
        rk[14] = even!(0x40);
        for (o, k) in out.iter_mut().zip(rk) {
            // SAFETY: `o` is 16 bytes; the unaligned store writes exactly it.
            unsafe { _mm_storeu_si128(o.as_mut_ptr().cast(), k) };
        }
    }

    /// Blocks per step: 8 registers of 2.
    const STEP: usize = 16;

    #[target_feature(enable = "avx2,aes,vaes")]
    unsafe fn run(rk: &[[u8; 16]; 15], counter: u128, buf: &mut [u8], xor: bool) {
        let mut keys = [_mm256_setzero_si256(); 15];
        for (k, r) in keys.iter_mut().zip(rk) {
            // SAFETY: `r` is 16 bytes; the unaligned load reads exactly it.
            *k = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(r.as_ptr().cast()) });
        }
        // Reverses each 128-bit lane: a little-endian counter becomes big-endian.
        let bswap = _mm256_setr_epi8(
            15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8, 7,
            6, 5, 4, 3, 2, 1, 0,
        );
        let encrypt = |ctr: u128| -> [__m256i; 8] {
            let lo = ctr as u64;
            let mut x = [_mm256_setzero_si256(); 8];
            if lo <= u64::MAX - STEP as u64 {
                // No carry out of the low 64 bits within this step: add in SIMD.
                let base =
                    _mm256_set_epi64x((ctr >> 64) as i64, lo as i64, (ctr >> 64) as i64, lo as i64);
                for (m, v) in x.iter_mut().enumerate() {
                    let inc = _mm256_set_epi64x(0, 2 * m as i64 + 1, 0, 2 * m as i64);
                    *v = _mm256_shuffle_epi8(_mm256_add_epi64(base, inc), bswap);
                }
            } else {
                let mut blocks = [0u8; 16 * STEP];
                for (j, b) in blocks.chunks_exact_mut(16).enumerate() {
                    b.copy_from_slice(&ctr.wrapping_add(j as u128).to_be_bytes());
                }
                for (m, v) in x.iter_mut().enumerate() {
                    // SAFETY: `blocks` holds 8 * 32 bytes; this reads 32 of them.
                    *v = unsafe { _mm256_loadu_si256(blocks.as_ptr().add(32 * m).cast()) };
                }
            }
            for v in x.iter_mut() {
                *v = _mm256_xor_si256(*v, keys[0]);
            }
            for k in &keys[1..14] {
                for v in x.iter_mut() {
                    *v = _mm256_aesenc_epi128(*v, *k);
                }
            }
            for v in x.iter_mut() {
                *v = _mm256_aesenclast_epi128(*v, keys[14]);
            }
            x
        };
        let mut ctr = counter;
        let mut chunks = buf.chunks_exact_mut(16 * STEP);
        for out in &mut chunks {
            let x = encrypt(ctr);
            for (m, v) in x.iter().enumerate() {
                // SAFETY: `out` holds 8 * 32 bytes; this reads and writes 32 of them.
                unsafe {
                    let p = out.as_mut_ptr().add(32 * m).cast();
                    let v = if xor {
                        _mm256_xor_si256(*v, _mm256_loadu_si256(p))
                    } else {
                        *v
                    };
                    _mm256_storeu_si256(p, v);
                }
            }
            ctr = ctr.wrapping_add(STEP as u128);
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let x = encrypt(ctr);
            let mut tmp = Zeroizing::new([0u8; 16 * STEP]);
            for (m, v) in x.iter().enumerate() {
                // SAFETY: `tmp` holds 8 * 32 bytes; this writes 32 of them.
                unsafe { _mm256_storeu_si256(tmp.as_mut_ptr().add(32 * m).cast(), *v) };
            }
            for (r, t) in rest.iter_mut().zip(tmp.iter()) {
                *r = if xor { *r ^ *t } else { *t };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic_bytes(key: &[u8; 32], iv: &[u8; 16], len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        AesCtr::generic(key, iv).fill(&mut out);
        out
    }

    /// FIPS 197 appendix C.3 (AES-256): the first keystream block with the
    /// plaintext as counter block is the known ciphertext.
    #[test]
    fn fips197_known_answer() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let block: [u8; 16] = core::array::from_fn(|i| (i as u8) * 0x11);
        let mut out = [0u8; 16];
        AesCtr::new(&key, &block).fill(&mut out);
        assert_eq!(hex::encode(out), "8ea2b7ca516745bfeafc49904b496089");
    }

    /// The fast kernel reproduces `ctr::Ctr128BE<Aes256>` across lengths, chunked
    /// calls and counters that carry out of the low 64 bits or wrap at 2^128.
    #[test]
    fn matches_ctr_crate() {
        let key: [u8; 32] = core::array::from_fn(|i| (i * 37 + 5) as u8);
        let ivs = [
            [0u8; 16],
            [0x5a; 16],
            {
                let mut iv = [0u8; 16];
                iv[8..].copy_from_slice(&(u64::MAX - 3).to_be_bytes());
                iv
            },
            {
                let mut iv = [0xffu8; 16];
                iv[15] = 0xf0;
                iv
            },
        ];
        for iv in &ivs {
            for len in [0, 1, 15, 16, 17, 255, 256, 257, 1000, 4096 + 48] {
                let want = generic_bytes(&key, iv, len);
                let mut got = vec![0xccu8; len];
                AesCtr::new(&key, iv).fill(&mut got);
                assert_eq!(got, want, "len {len}");
            }
            // Chunked: whole blocks per call, ragged last call.
            let want = generic_bytes(&key, iv, 5000);
            let mut s = AesCtr::new(&key, iv);
            let mut got = vec![0u8; 5000];
            let mut at = 0;
            for step in [16, 256, 48, 1024, 272, 2992] {
                let end = (at + step).min(5000);
                s.fill(&mut got[at..end]);
                at = end;
            }
            s.fill(&mut got[at..]);
            assert_eq!(got, want);
            // XOR mode on data, chunked the same way.
            let data: Vec<u8> = (0..5000).map(|i| (i * 7) as u8).collect();
            let mut enc = data.clone();
            let mut s = AesCtr::new(&key, iv);
            s.apply(&mut enc[..4096]);
            s.apply(&mut enc[4096..]);
            let xored: Vec<u8> = data.iter().zip(&want).map(|(d, k)| d ^ k).collect();
            assert_eq!(enc, xored);
        }
    }
}
