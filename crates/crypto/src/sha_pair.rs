//! SHA-256 of two equally long fragments at once, with the x86 SHA extensions.
//!
//! `sha256rnds2` has a latency of several cycles and each SHA-256 block is one long
//! dependency chain, so one message at a time leaves the SHA unit mostly idle. Two
//! independent messages compressed in lockstep fill it. Fragments are a multiple
//! of 64 bytes long, so both messages end with the same single padding block.
//! Without the SHA extensions (or for other lengths) `sha2` hashes them one by one.
//! The tests compare against `sha2`.

use sha2::{Digest, Sha256};

/// SHA-256 of `a` and of `b`.
pub(crate) fn sha256_pair(a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
    #[cfg(target_arch = "x86_64")]
    if a.len() == b.len() && a.len().is_multiple_of(64) && shani::available() {
        return shani::pair_entry(a, b);
    }
    (Sha256::digest(a).into(), Sha256::digest(b).into())
}

/// SHA-256 of every `frag_len`-byte chunk of `data`, two at a time.
pub(crate) fn sha256_chunks(data: &[u8], frag_len: usize) -> Vec<[u8; 32]> {
    let chunks: Vec<&[u8]> = data.chunks_exact(frag_len).collect();
    let mut out = Vec::with_capacity(chunks.len());
    for two in chunks.chunks(2) {
        match two {
            [a, b] => {
                let (da, db) = sha256_pair(a, b);
                out.extend([da, db]);
            }
            _ => out.extend(two.iter().map(|c| <[u8; 32]>::from(Sha256::digest(c)))),
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod shani {
    //! Two-lane SHA-256 compression, after `sha2`'s `x86_sha` backend.

    use std::arch::x86_64::*;

    const K32: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    const H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse4.1")
            && std::is_x86_feature_detected!("ssse3")
    }

    /// The caller has checked `a.len() == b.len()`, a multiple of 64.
    pub(super) fn pair_entry(a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
        assert!(available() && a.len() == b.len() && a.len().is_multiple_of(64));
        // SAFETY: the SHA extensions, SSSE3 and SSE4.1 were just checked at run time.
        unsafe { pair(a, b) }
    }

    /// Lane state in the `sha256rnds2` layout: (ABEF, CDGH).
    type State = (__m128i, __m128i);

    #[target_feature(enable = "sha,sse4.1,ssse3")]
    #[inline]
    fn rounds4(r: usize, s: &mut State, w: __m128i) {
        // SAFETY: `K32` has 64 entries and r < 16, so 4 r + 4 <= 64.
        let rk = unsafe { _mm_loadu_si128(K32.as_ptr().add(4 * r).cast()) };
        let t1 = _mm_add_epi32(w, rk);
        s.1 = _mm_sha256rnds2_epu32(s.1, s.0, t1);
        s.0 = _mm_sha256rnds2_epu32(s.0, s.1, _mm_shuffle_epi32(t1, 0x0e));
    }

    #[target_feature(enable = "sha,sse4.1,ssse3")]
    #[inline]
    fn next_w(w: &[__m128i; 4], i: usize) -> __m128i {
        let t1 = _mm_sha256msg1_epu32(w[i], w[(i + 1) % 4]);
        let t2 = _mm_alignr_epi8(w[(i + 3) % 4], w[(i + 2) % 4], 4);
        _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), w[(i + 3) % 4])
    }

    #[target_feature(enable = "sha,sse4.1,ssse3")]
    #[inline]
    fn load_block(block: &[u8]) -> [__m128i; 4] {
        let mask = _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203);
        // SAFETY: `block` is 64 bytes (from `chunks_exact(64)` or a 64-byte array).
        core::array::from_fn(|i| unsafe {
            _mm_shuffle_epi8(_mm_loadu_si128(block.as_ptr().add(16 * i).cast()), mask)
        })
    }

    /// Compresses one block into each lane, the two chains interleaved.
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    #[inline]
    fn compress2(sa: &mut State, sb: &mut State, a: &[u8], b: &[u8]) {
        let (save_a, save_b) = (*sa, *sb);
        let mut wa = load_block(a);
        let mut wb = load_block(b);
        for r in 0..16 {
            let i = r % 4;
            if r >= 4 {
                wa[i] = next_w(&wa, i);
                wb[i] = next_w(&wb, i);
            }
            rounds4(r, sa, wa[i]);
            rounds4(r, sb, wb[i]);
        }
        *sa = (_mm_add_epi32(sa.0, save_a.0), _mm_add_epi32(sa.1, save_a.1));
        *sb = (_mm_add_epi32(sb.0, save_b.0), _mm_add_epi32(sb.1, save_b.1));
    }

    #[target_feature(enable = "sha,sse4.1,ssse3")]
    #[inline]
    fn initial() -> State {
        // SAFETY: `H0` is 8 words: two 16-byte loads read exactly it.
        let (dcba, hgfe) = unsafe {
            (
                _mm_loadu_si128(H0.as_ptr().cast()),
                _mm_loadu_si128(H0.as_ptr().add(4).cast()),
            )
        };
        let cdab = _mm_shuffle_epi32(dcba, 0xb1);
        let efgh = _mm_shuffle_epi32(hgfe, 0x1b);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xf0),
        )
    }

    #[target_feature(enable = "sha,sse4.1,ssse3")]
    #[inline]
    fn digest((abef, cdgh): State) -> [u8; 32] {
        let feba = _mm_shuffle_epi32(abef, 0x1b);
        let dchg = _mm_shuffle_epi32(cdgh, 0xb1);
        let mut words = [0u32; 8];
        // SAFETY: `words` is 32 bytes: two 16-byte stores write exactly it.
        unsafe {
            _mm_storeu_si128(words.as_mut_ptr().cast(), _mm_blend_epi16(feba, dchg, 0xf0));
            _mm_storeu_si128(
                words.as_mut_ptr().add(4).cast(),
                _mm_alignr_epi8(dchg, feba, 8),
            );
        }
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    #[target_feature(enable = "sha,sse4.1,ssse3")]
    fn pair(a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
        let (mut sa, mut sb) = (initial(), initial());
        for (ba, bb) in a.chunks_exact(64).zip(b.chunks_exact(64)) {
            compress2(&mut sa, &mut sb, ba, bb);
        }
        // Both lengths are the same multiple of 64: one shared padding block.
        let mut pad = [0u8; 64];
        pad[0] = 0x80;
        pad[56..].copy_from_slice(&((a.len() as u64) * 8).to_be_bytes());
        compress2(&mut sa, &mut sb, &pad, &pad);
        (digest(sa), digest(sb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha2() {
        let data: Vec<u8> = (0..64 * 70 + 5).map(|i| (i * 131 + i / 7) as u8).collect();
        for len in [0, 64, 128, 64 * 17, 64 * 70, 1, 63, 65, 100] {
            let (a, b) = (&data[..len], &data[5..5 + len]);
            let (da, db) = sha256_pair(a, b);
            assert_eq!(da, <[u8; 32]>::from(Sha256::digest(a)), "len {len}");
            assert_eq!(db, <[u8; 32]>::from(Sha256::digest(b)), "len {len}");
        }
        for (count, frag_len) in [(1, 64), (2, 128), (3, 64 * 9), (5, 64 * 3), (4, 7)] {
            let d = &data[..count * frag_len];
            let want: Vec<[u8; 32]> = d
                .chunks_exact(frag_len)
                .map(|c| Sha256::digest(c).into())
                .collect();
            assert_eq!(sha256_chunks(d, frag_len), want);
        }
    }
}
