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

/// Horner evaluation at several public points, byte-wise: for every `j`,
/// `outs[j][at..at + len] = ((c_0 * x_j ^ c_1) * x_j ^ ... ^ c_{m-1}) * x_j ^ last`.
///
/// `coeffs` holds `m >= 1` rows of `len = last.len()` bytes back to back, highest
/// degree first; `last` is the constant term. Every output must hold at least
/// `at + len` bytes. The AVX2 kernel reads each 32-byte column of the coefficients
/// and of `last` once and computes all outputs from registers.
pub(crate) fn horner_all(
    backend: Backend,
    xs: &[MulBy],
    coeffs: &[u8],
    last: &[u8],
    outs: &mut [&mut [u8]],
    at: usize,
) {
    let len = last.len();
    assert!(len > 0 && coeffs.len().is_multiple_of(len) && coeffs.len() >= len);
    assert!(xs.len() == outs.len() && outs.iter().all(|o| o.len() >= at + len));
    let done = match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => avx2::horner_entry(xs, coeffs, last, outs, at),
        _ => 0,
    };
    for (x, out) in xs.iter().zip(outs.iter_mut()) {
        horner_portable(x, coeffs, last, &mut out[at..at + len], done);
    }
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
    //! The AVX2 kernels: 32 bytes (`lincomb`) or 64 bytes (`horner`, for every
    //! output) per step, nibble tables in registers.
    //!
    //! Each kernel handles a prefix of the output and returns its length; the caller
    //! finishes the tail with the portable kernel. `lincomb` with `stream` stores
    //! non-temporally (`vmovntdq`) on 32-byte aligned addresses, after one unaligned
    //! store covering the unaligned head; outputs are pure functions of inputs that
    //! never alias them, so the overlap is harmless.
    //! The kernels do not fence (an `sfence` per call stalls until the stores
    //! drain); callers run [`super::store_fence`] once after a batch.

    use super::MulBy;
    use std::arch::x86_64::*;

    /// Runs the AVX2 Horner kernel; returns how many bytes of each output it handled.
    pub(super) fn horner_entry(
        xs: &[MulBy],
        coeffs: &[u8],
        last: &[u8],
        outs: &mut [&mut [u8]],
        at: usize,
    ) -> usize {
        if !std::is_x86_feature_detected!("avx2") {
            return 0;
        }
        // SAFETY: AVX2 support was just checked at run time.
        unsafe { horner(xs, coeffs, last, outs, at) }
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

    /// The offsets of the `W`-byte columns to compute: `(nt, first, end)`, where
    /// `first` is 0 or, when streaming, the first `W`-byte aligned offset (the
    /// unaligned head is covered by one unaligned column at offset 0 when
    /// `first > 0`). A ragged tail after `end` may be covered by one column at
    /// `len - W`.
    fn plan<const W: usize>(out: *const u8, len: usize, stream: bool) -> (bool, usize, usize) {
        if len < W {
            return (false, 0, 0);
        }
        if !stream || len < 2 * W {
            return (false, 0, len & !(W - 1));
        }
        let head = out.align_offset(W);
        let end = head + ((len - head) & !(W - 1));
        (true, head, end)
    }

    /// Runs `column(i, nt)` for the `W`-byte columns of a `full`-byte output as
    /// [`plan`] laid them out (`nt`: store non-temporally, the address is aligned).
    /// With `tail`, a ragged end is covered by a column at `full - W`. Returns the
    /// bytes handled.
    #[inline(always)]
    fn columns<const W: usize>(
        (nt, first, end): (bool, usize, usize),
        full: usize,
        tail: bool,
        mut column: impl FnMut(usize, bool),
    ) -> usize {
        let mut i = 0;
        if nt {
            if first > 0 {
                column(0, false);
            }
            i = first;
            while i < end {
                column(i, true);
                i += W;
            }
        } else {
            while i < end {
                column(i, false);
                i += W;
            }
        }
        if tail && end >= W && end < full {
            column(full - W, false);
            return full;
        }
        end
    }

    /// Stores `v` at `p`, non-temporally with `nt`.
    ///
    /// # Safety
    /// `p..p + 32` must be writable; with `nt`, `p` must be 32-byte aligned.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn store(p: *mut u8, v: __m256i, nt: bool) {
        // SAFETY: guaranteed by the caller.
        unsafe {
            if nt {
                _mm256_stream_si256(p.cast(), v);
            } else {
                _mm256_storeu_si256(p.cast(), v);
            }
        }
    }

    /// Outputs evaluated per pass over a column (their tables stay in registers).
    const GROUP: usize = 8;

    #[target_feature(enable = "avx2")]
    unsafe fn horner(
        xs: &[MulBy],
        coeffs: &[u8],
        last: &[u8],
        outs: &mut [&mut [u8]],
        at: usize,
    ) -> usize {
        let full = last.len();
        let rows = coeffs.len() / full;
        let mask = _mm256_set1_epi8(0x0f);
        let src = coeffs.as_ptr();
        let mut done = 0;
        for (gx, gouts) in xs.chunks(GROUP).zip(outs.chunks_mut(GROUP)) {
            let mut tabs = [(mask, mask); GROUP];
            let mut dst = [std::ptr::null_mut::<u8>(); GROUP];
            for ((t, d), (x, o)) in tabs.iter_mut().zip(&mut dst).zip(gx.iter().zip(gouts)) {
                *t = tables(x);
                *d = o[at..at + full].as_mut_ptr();
            }
            let g = gx.len();
            let plan = plan::<64>(dst[0], full, false);
            // SAFETY: `coeffs` holds `rows` rows of `full` bytes, `last` holds `full`
            // bytes and `dst[..g]` point at `full` writable bytes (asserted by the
            // caller); `columns` passes i with i + 64 <= full (and never `nt`: n
            // interleaved output streams measured faster with plain stores).
            done = columns::<64>(plan, full, true, |i, nt| unsafe {
                let load = |at: usize| _mm256_loadu_si256(src.add(at).cast());
                let s0 = _mm256_loadu_si256(last.as_ptr().add(i).cast());
                let s1 = _mm256_loadu_si256(last.as_ptr().add(i + 32).cast());
                for (&(lo, hi), &d) in tabs[..g].iter().zip(&dst) {
                    let (mut a0, mut a1) = (load(i), load(i + 32));
                    for r in 1..rows {
                        a0 = _mm256_xor_si256(mul(a0, lo, hi, mask), load(r * full + i));
                        a1 = _mm256_xor_si256(mul(a1, lo, hi, mask), load(r * full + i + 32));
                    }
                    store(d.add(i), _mm256_xor_si256(mul(a0, lo, hi, mask), s0), nt);
                    store(
                        d.add(i + 32),
                        _mm256_xor_si256(mul(a1, lo, hi, mask), s1),
                        nt,
                    );
                }
            });
        }
        done
    }

    #[target_feature(enable = "avx2")]
    unsafe fn lincomb(coeffs: &[MulBy], inputs: &[&[u8]], out: &mut [u8], stream: bool) -> usize {
        let mask = _mm256_set1_epi8(0x0f);
        let dst = out.as_mut_ptr();
        let full = out.len();
        // Up to 16 coefficient tables live in registers/stack; the usual k is small.
        // More inputs are folded in over several passes (no streaming then).
        let single = inputs.len() <= 16;
        let plan = plan::<32>(dst, full, stream && single);
        let mut tabs = [(mask, mask); 16];
        let mut done = 0;
        for (pass, (cs, group)) in coeffs.chunks(16).zip(inputs.chunks(16)).enumerate() {
            for (t, c) in tabs.iter_mut().zip(cs) {
                *t = tables(c);
            }
            let accumulate = pass > 0;
            // SAFETY: every input and `out` hold `full` bytes and `columns` passes i
            // with i + 32 <= full, and `nt` only where dst + i is 32-byte aligned.
            // Only a single pass covers the ragged tail: it recomputes those bytes
            // from the inputs alone.
            done = columns::<32>(plan, full, single, |i, nt| unsafe {
                let mut acc = if accumulate {
                    _mm256_loadu_si256(dst.add(i).cast())
                } else {
                    _mm256_setzero_si256()
                };
                for (&(lo, hi), inp) in tabs.iter().zip(group) {
                    let v = _mm256_loadu_si256(inp.as_ptr().add(i).cast());
                    acc = _mm256_xor_si256(acc, mul(v, lo, hi, mask));
                }
                store(dst.add(i), acc, nt);
            });
        }
        done
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
            for len in [
                0, 1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 256,
            ] {
                let rows = [&data[..len], &data2[..len]];
                if len > 0 {
                    // Two coefficient rows and a constant term: (a * x ^ b) * x ^ a.
                    let coeffs = [&data[..len], &data2[..len]].concat();
                    let want: Vec<u8> = (0..len)
                        .map(|i| mul(mul(data[i], c) ^ data2[i], c) ^ data[i])
                        .collect();
                    for backend in [Backend::Portable, Backend::Avx2] {
                        if backend.is_available() {
                            // Offset by one byte: an unaligned output.
                            let mut buf = vec![0u8; len + 1];
                            let out = &mut buf[1..];
                            horner_all(backend, &[m], &coeffs, &data[..len], &mut [out], 0);
                            assert_eq!(&buf[1..], &want[..], "{backend:?} len {len}");
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

    /// The fused kernel evaluates many points at once (more than one register
    /// group of them), at an offset into differently aligned outputs.
    #[test]
    fn horner_all_many_points_at_an_offset() {
        let len = 200;
        let coeffs: Vec<u8> = (0..3 * len).map(|i| (i * 29 + 11) as u8).collect();
        let last: Vec<u8> = (0..len).map(|i| (i * 5 + 1) as u8).collect();
        let xs: Vec<u8> = (1..=11).map(|x| x * 23).collect();
        let muls: Vec<MulBy> = xs.iter().map(|&x| MulBy::new(x)).collect();
        let want: Vec<Vec<u8>> = xs
            .iter()
            .map(|&x| {
                (0..len)
                    .map(|i| {
                        let a = mul(coeffs[i], x) ^ coeffs[len + i];
                        let a = mul(a, x) ^ coeffs[2 * len + i];
                        mul(a, x) ^ last[i]
                    })
                    .collect()
            })
            .collect();
        for backend in [Backend::Portable, Backend::Avx2] {
            if backend.is_available() {
                let mut bufs: Vec<Vec<u8>> =
                    (0..xs.len()).map(|j| vec![0xee; len + 5 + j]).collect();
                let mut outs: Vec<&mut [u8]> = bufs
                    .iter_mut()
                    .enumerate()
                    .map(|(j, b)| &mut b[j..])
                    .collect();
                horner_all(backend, &muls, &coeffs, &last, &mut outs, 5);
                for (j, b) in bufs.iter().enumerate() {
                    assert!(b[j..j + 5].iter().all(|&v| v == 0xee), "{backend:?}");
                    assert_eq!(&b[j + 5..], &want[j][..], "{backend:?} x {}", xs[j]);
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
