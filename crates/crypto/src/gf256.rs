//! Constant-time arithmetic in GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1).
//!
//! Secret bytes are only ever multiplied by *public* constants (x coordinates and
//! Lagrange coefficients derived from them). No memory access is ever indexed by a
//! secret byte:
//!
//! * the AVX2 kernel splits each byte into nibbles and looks them up with
//!   `vpshufb`, an in-register shuffle whose timing does not depend on its operands;
//! * the portable kernel multiplies 8 bytes at once (SWAR in a `u64`): for every bit
//!   of the secret byte it builds an all-ones/all-zeros mask and XORs in the
//!   precomputed `c * 2^b`, with no branch and no lookup.
//!
//! Tables built here are indexed by public constants only.

/// The reduction polynomial without its x^8 term.
const POLY: u8 = 0x1b;

/// `a * b` in GF(2^8), branch-free and table-free (constant time in both operands).
pub(crate) const fn mul(a: u8, b: u8) -> u8 {
    let mut a = a;
    let mut b = b;
    let mut r = 0u8;
    let mut i = 0;
    while i < 8 {
        r ^= a & 0u8.wrapping_sub(b & 1);
        let hi = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (hi & POLY);
        b >>= 1;
        i += 1;
    }
    r
}

/// Multiplicative inverse (`a^254`); `inv(0) == 0`. Constant time.
pub(crate) const fn inv(a: u8) -> u8 {
    // a^254 = a^(2+4+8+16+32+64+128)
    let mut result = 1u8;
    let mut sq = a;
    let mut i = 0;
    while i < 7 {
        sq = mul(sq, sq);
        result = mul(result, sq);
        i += 1;
    }
    result
}

/// Which kernel runs the bulk arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Portable constant-time SWAR kernel (any CPU).
    Portable,
    /// AVX2 `vpshufb` nibble-table kernel (x86-64 with AVX2 only).
    Avx2,
}

impl Backend {
    /// The fastest backend this CPU supports, detected at run time.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                return Backend::Avx2;
            }
        }
        Backend::Portable
    }

    /// Whether this backend can run on the current CPU.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Portable => true,
            Backend::Avx2 => Backend::detect() == Backend::Avx2,
        }
    }

    /// This backend if the current CPU can run it, the portable one otherwise.
    pub fn or_portable(self) -> Self {
        if self.is_available() {
            self
        } else {
            Backend::Portable
        }
    }
}

/// Multiplication by one public constant, precomputed for both kernels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MulBy {
    /// `c * i` for nibble `i` (low nibble table).
    lo: [u8; 16],
    /// `c * (i << 4)` for nibble `i` (high nibble table).
    hi: [u8; 16],
    /// `c * 2^b` broadcast to all 8 bytes of a `u64`.
    bits: [u64; 8],
}

impl MulBy {
    /// Precomputes multiplication by the public constant `c`.
    pub(crate) fn new(c: u8) -> Self {
        let mut lo = [0u8; 16];
        let mut hi = [0u8; 16];
        for i in 0..16u8 {
            lo[i as usize] = mul(c, i);
            hi[i as usize] = mul(c, i << 4);
        }
        let mut bits = [0u64; 8];
        for (b, slot) in bits.iter_mut().enumerate() {
            *slot = u64::from_ne_bytes([mul(c, 1 << b); 8]);
        }
        Self { lo, hi, bits }
    }

    /// `c * v` for each of the 8 bytes in `v`, without branches or lookups.
    #[inline(always)]
    fn mul_u64(&self, v: u64) -> u64 {
        const LSB: u64 = 0x0101_0101_0101_0101;
        let mut r = 0u64;
        let mut b = 0;
        while b < 8 {
            // Each byte of `(v >> b) & LSB` is 0 or 1; times 0xff it is a byte mask.
            let mask = ((v >> b) & LSB).wrapping_mul(0xff);
            r ^= mask & self.bits[b];
            b += 1;
        }
        r
    }
}

#[inline(always)]
fn load_u64(s: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[i..i + 8]);
    u64::from_ne_bytes(b)
}

/// Load up to 8 bytes (tail), zero-padded.
#[inline(always)]
fn load_tail(s: &[u8], i: usize, len: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..len].copy_from_slice(&s[i..i + len]);
    u64::from_ne_bytes(b)
}

#[inline(always)]
fn store_tail(d: &mut [u8], i: usize, len: usize, v: u64) {
    d[i..i + len].copy_from_slice(&v.to_ne_bytes()[..len]);
}

/// Horner evaluation at one public point, byte-wise:
/// `out = ((c_0 * x ^ c_1) * x ^ ... ^ c_{m-1}) * x ^ last`.
///
/// `coeffs` holds `m >= 1` rows of `out.len()` bytes back to back, highest degree
/// first; `last` (the constant term) has `out.len()` bytes. With `stream`, the AVX2
/// kernel writes with non-temporal stores (for outputs far larger than the cache).
pub(crate) fn horner(
    backend: Backend,
    x: &MulBy,
    coeffs: &[u8],
    last: &[u8],
    out: &mut [u8],
    stream: bool,
) {
    let len = out.len();
    assert!(
        last.len() == len && len > 0 && coeffs.len().is_multiple_of(len) && coeffs.len() >= len
    );
    let done = match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => avx2::horner_entry(x, coeffs, last, out, stream),
        _ => 0,
    };
    horner_portable(x, coeffs, last, out, done);
}

fn horner_portable(x: &MulBy, coeffs: &[u8], last: &[u8], out: &mut [u8], start: usize) {
    let len = out.len();
    let rows = coeffs.len() / len;
    let mut i = start;
    while i + 8 <= len {
        let mut acc = load_u64(coeffs, i);
        for r in 1..rows {
            acc = x.mul_u64(acc) ^ load_u64(coeffs, r * len + i);
        }
        acc = x.mul_u64(acc) ^ load_u64(last, i);
        out[i..i + 8].copy_from_slice(&acc.to_ne_bytes());
        i += 8;
    }
    if i < len {
        let t = len - i;
        let mut acc = load_tail(coeffs, i, t);
        for r in 1..rows {
            acc = x.mul_u64(acc) ^ load_tail(coeffs, r * len + i, t);
        }
        acc = x.mul_u64(acc) ^ load_tail(last, i, t);
        store_tail(out, i, t, acc);
    }
}

/// Linear combination: `out = sum_j coeffs[j] * inputs[j]`, byte-wise.
///
/// All inputs and `out` must have the same length; `coeffs.len() == inputs.len() >= 1`.
/// `stream` as for [`horner`].
pub(crate) fn lincomb(
    backend: Backend,
    coeffs: &[MulBy],
    inputs: &[&[u8]],
    out: &mut [u8],
    stream: bool,
) {
    debug_assert_eq!(coeffs.len(), inputs.len());
    debug_assert!(!inputs.is_empty());
    debug_assert!(inputs.iter().all(|r| r.len() == out.len()));
    let done = match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => avx2::lincomb_entry(coeffs, inputs, out, stream),
        _ => 0,
    };
    lincomb_portable(coeffs, inputs, out, done);
}

fn lincomb_portable(coeffs: &[MulBy], inputs: &[&[u8]], out: &mut [u8], start: usize) {
    let len = out.len();
    let mut i = start;
    while i + 8 <= len {
        let mut acc = 0u64;
        for (c, inp) in coeffs.iter().zip(inputs) {
            acc ^= c.mul_u64(load_u64(inp, i));
        }
        out[i..i + 8].copy_from_slice(&acc.to_ne_bytes());
        i += 8;
    }
    if i < len {
        let t = len - i;
        let mut acc = 0u64;
        for (c, inp) in coeffs.iter().zip(inputs) {
            acc ^= c.mul_u64(load_tail(inp, i, t));
        }
        store_tail(out, i, t, acc);
    }
}

/// Orders earlier non-temporal stores before anything that follows: call once after
/// a batch of `stream = true` kernel calls, before handing the output on.
pub(crate) fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: `sfence` is part of SSE, which every x86-64 CPU has; it has no operands.
    unsafe {
        std::arch::x86_64::_mm_sfence();
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! The AVX2 kernels: 32 bytes per step, nibble tables in registers.
    //!
    //! Each kernel handles a prefix of the output and returns its length (a multiple
    //! of 32 past the start); the caller finishes the tail with the portable kernel.
    //! With `stream`, stores are non-temporal (`vmovntdq`) on 32-byte aligned
    //! addresses, after one unaligned store covering the unaligned head; outputs are
    //! pure functions of inputs that never alias them, so the overlap is harmless.
    //! The kernels do not fence (an `sfence` per call stalls until the stores
    //! drain); callers run [`super::store_fence`] once after a batch.

    use super::MulBy;
    use std::arch::x86_64::*;

    /// Runs the AVX2 Horner kernel; returns how many bytes it handled.
    pub(super) fn horner_entry(
        x: &MulBy,
        coeffs: &[u8],
        last: &[u8],
        out: &mut [u8],
        stream: bool,
    ) -> usize {
        if !std::is_x86_feature_detected!("avx2") {
            return 0;
        }
        // SAFETY: AVX2 support was just checked at run time.
        unsafe { horner(x, coeffs, last, out, stream) }
    }

    /// Runs the AVX2 linear-combination kernel; see [`horner_entry`].
    pub(super) fn lincomb_entry(
        coeffs: &[MulBy],
        inputs: &[&[u8]],
        out: &mut [u8],
        stream: bool,
    ) -> usize {
        if !std::is_x86_feature_detected!("avx2") {
            return 0;
        }
        // SAFETY: AVX2 support was just checked at run time.
        unsafe { lincomb(coeffs, inputs, out, stream) }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn tables(m: &MulBy) -> (__m256i, __m256i) {
        // SAFETY: `lo`/`hi` are 16-byte arrays; unaligned 128-bit loads read exactly them.
        let (lo, hi) = unsafe {
            (
                _mm_loadu_si128(m.lo.as_ptr().cast()),
                _mm_loadu_si128(m.hi.as_ptr().cast()),
            )
        };
        (
            _mm256_broadcastsi128_si256(lo),
            _mm256_broadcastsi128_si256(hi),
        )
    }

    /// `c * v` per byte: two in-register nibble lookups (`vpshufb`), no memory access.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn mul(v: __m256i, lo: __m256i, hi: __m256i, mask: __m256i) -> __m256i {
        let l = _mm256_and_si256(v, mask);
        let h = _mm256_and_si256(_mm256_srli_epi64(v, 4), mask);
        _mm256_xor_si256(_mm256_shuffle_epi8(lo, l), _mm256_shuffle_epi8(hi, h))
    }

    /// The offsets to compute: `(nt, first, end)`, where `first` is 0 or, when
    /// streaming, the first 32-byte aligned offset (the unaligned head is covered by
    /// one unaligned store at offset 0 when `first > 0`). A ragged tail after `end`
    /// is covered by one unaligned store at `len - 32`.
    fn plan(out: &[u8], stream: bool) -> (bool, usize, usize) {
        let len = out.len();
        if len < 32 {
            return (false, 0, 0);
        }
        if !stream || len < 64 {
            return (false, 0, len & !31);
        }
        let head = out.as_ptr().align_offset(32);
        let end = head + ((len - head) & !31);
        (true, head, end)
    }

    #[target_feature(enable = "avx2")]
    unsafe fn horner(x: &MulBy, coeffs: &[u8], last: &[u8], out: &mut [u8], stream: bool) -> usize {
        let full = out.len();
        let rows = coeffs.len() / full;
        let (lo, hi) = tables(x);
        let mask = _mm256_set1_epi8(0x0f);
        let dst = out.as_mut_ptr();
        let src = coeffs.as_ptr();
        let (nt, first, end) = plan(out, stream);
        // SAFETY (for `at`): `coeffs` holds `rows` rows of `full` bytes, `last` and
        // `out` hold `full` bytes (asserted by the caller), and every `i` passed has
        // i + 32 <= full; loads are unaligned.
        let at = |i: usize| unsafe {
            let mut acc = _mm256_loadu_si256(src.add(i).cast());
            for r in 1..rows {
                let v = _mm256_loadu_si256(src.add(r * full + i).cast());
                acc = _mm256_xor_si256(mul(acc, lo, hi, mask), v);
            }
            let v = _mm256_loadu_si256(last.as_ptr().add(i).cast());
            _mm256_xor_si256(mul(acc, lo, hi, mask), v)
        };
        if nt {
            // SAFETY: full >= 64, so offset 0..32 is in bounds; from `first` on,
            // dst + i is 32-byte aligned and i + 32 <= end <= full.
            unsafe {
                if first > 0 {
                    _mm256_storeu_si256(dst.cast(), at(0));
                }
                let mut i = first;
                while i < end {
                    _mm256_stream_si256(dst.add(i).cast(), at(i));
                    i += 32;
                }
            }
        } else {
            let mut i = 0;
            while i < end {
                // SAFETY: i + 32 <= end <= full.
                unsafe { _mm256_storeu_si256(dst.add(i).cast(), at(i)) };
                i += 32;
            }
        }
        if end >= 32 && end < full {
            // SAFETY: 32 <= full, so [full - 32, full) is in bounds.
            unsafe { _mm256_storeu_si256(dst.add(full - 32).cast(), at(full - 32)) };
            return full;
        }
        end
    }

    #[target_feature(enable = "avx2")]
    unsafe fn lincomb(coeffs: &[MulBy], inputs: &[&[u8]], out: &mut [u8], stream: bool) -> usize {
        let mask = _mm256_set1_epi8(0x0f);
        let dst = out.as_mut_ptr();
        let full = out.len();
        let single = inputs.len() <= 16;
        let (nt, first, end) = plan(out, stream);
        // Up to 16 coefficient tables live in registers/stack; the usual k is small.
        // More inputs are folded in over several passes (no streaming then).
        let nt = nt && inputs.len() <= 16;
        let mut tabs = [(_mm256_setzero_si256(), _mm256_setzero_si256()); 16];
        let mut start = 0;
        while start < inputs.len() {
            let stop = (start + 16).min(inputs.len());
            for (t, c) in tabs.iter_mut().zip(&coeffs[start..stop]) {
                *t = tables(c);
            }
            let group = &inputs[start..stop];
            let accumulate = start > 0;
            // SAFETY: every input holds `out.len()` bytes and i + 32 <= out.len().
            let at = |i: usize| unsafe {
                let mut acc = if accumulate {
                    _mm256_loadu_si256(dst.add(i).cast())
                } else {
                    _mm256_setzero_si256()
                };
                for (j, inp) in group.iter().enumerate() {
                    let (lo, hi) = tabs[j];
                    let v = _mm256_loadu_si256(inp.as_ptr().add(i).cast());
                    acc = _mm256_xor_si256(acc, mul(v, lo, hi, mask));
                }
                acc
            };
            let last_pass = stop == inputs.len();
            if nt {
                // SAFETY: as in `horner`: aligned in-bounds NT stores after the head.
                unsafe {
                    if first > 0 {
                        _mm256_storeu_si256(dst.cast(), at(0));
                    }
                    let mut i = first;
                    while i < end {
                        _mm256_stream_si256(dst.add(i).cast(), at(i));
                        i += 32;
                    }
                }
            } else {
                let mut i = 0;
                while i < end {
                    // SAFETY: i + 32 <= end <= out.len().
                    unsafe { _mm256_storeu_si256(dst.add(i).cast(), at(i)) };
                    i += 32;
                }
            }
            if single && last_pass && end >= 32 && end < full {
                // SAFETY: 32 <= full, so [full - 32, full) is in bounds; a single pass
                // recomputes those bytes from the inputs alone.
                unsafe { _mm256_storeu_si256(dst.add(full - 32).cast(), at(full - 32)) };
                return full;
            }
            start = stop;
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference multiplication (schoolbook, with reduction), used only in tests.
    fn mul_ref(a: u8, b: u8) -> u8 {
        let mut p: u16 = 0;
        for i in 0..8 {
            if b >> i & 1 == 1 {
                p ^= (a as u16) << i;
            }
        }
        for i in (8..16).rev() {
            if p >> i & 1 == 1 {
                p ^= 0x11b << (i - 8);
            }
        }
        p as u8
    }

    #[test]
    fn mul_matches_reference_and_inverse_works() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), mul_ref(a, b));
            }
            if a != 0 {
                assert_eq!(mul(a, inv(a)), 1, "a = {a}");
            }
        }
        // AES S-box background: {53} * {CA} = {01}.
        assert_eq!(mul(0x53, 0xca), 1);
    }

    #[test]
    fn kernels_agree_on_all_bytes_and_lengths() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let data2: Vec<u8> = (0..300u32).map(|i| (i * 13 + 1) as u8).collect();
        for c in [0u8, 1, 2, 0x53, 0xff] {
            let m = MulBy::new(c);
            for len in [0, 1, 7, 8, 9, 31, 32, 33, 64, 100, 256] {
                let rows = [&data[..len], &data2[..len]];
                if len > 0 {
                    // Two coefficient rows and a constant term: (a * x ^ b) * x ^ a.
                    let coeffs = [&data[..len], &data2[..len]].concat();
                    let want: Vec<u8> = (0..len)
                        .map(|i| mul(mul(data[i], c) ^ data2[i], c) ^ data[i])
                        .collect();
                    for backend in [Backend::Portable, Backend::Avx2] {
                        for stream in [false, true] {
                            if backend.is_available() {
                                // Offset by one byte so streaming meets an unaligned head.
                                let mut buf = vec![0u8; len + 1];
                                let out = &mut buf[1..];
                                horner(backend, &m, &coeffs, &data[..len], out, stream);
                                assert_eq!(out, &want[..], "{backend:?} len {len}");
                            }
                        }
                    }
                }
                let m2 = MulBy::new(c ^ 0x35);
                let want: Vec<u8> = (0..len)
                    .map(|i| mul(data[i], c) ^ mul(data2[i], c ^ 0x35))
                    .collect();
                for backend in [Backend::Portable, Backend::Avx2] {
                    for stream in [false, true] {
                        if backend.is_available() {
                            let mut buf = vec![0xaau8; len + 3];
                            let out = &mut buf[3..];
                            lincomb(backend, &[m, m2], &rows, out, stream);
                            assert_eq!(out, &want[..], "{backend:?} len {len}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn lincomb_with_more_than_sixteen_inputs() {
        let inputs: Vec<Vec<u8>> = (0..20u8).map(|j| vec![j.wrapping_mul(17); 70]).collect();
        let refs: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
        let coeffs: Vec<MulBy> = (0..20u8).map(|j| MulBy::new(j + 1)).collect();
        let want: Vec<u8> = (0..70)
            .map(|i| (0..20).fold(0u8, |a, j| a ^ mul(inputs[j][i], j as u8 + 1)))
            .collect();
        for backend in [Backend::Portable, Backend::Avx2] {
            if backend.is_available() {
                for stream in [false, true] {
                    let mut out = vec![0u8; 70];
                    lincomb(backend, &coeffs, &refs, &mut out, stream);
                    assert_eq!(out, want);
                }
            }
        }
    }
}
