//! Reed–Solomon recovery fragments, byte for byte those of `reed-solomon-simd`.
//!
//! `reed-solomon-simd` (Leopard-style, GF(2^16)) computes recovery shards with an
//! FFT whose steps are XORs and multiplications by constants, so every recovery
//! shard is a GF(2)-linear function of the originals, and the same function at
//! every 16-bit element position (a 64-byte chunk of a shard holds 32 elements:
//! their low bytes, then their high bytes). For large fragments and a few shards
//! this module asks the encoder for that map once per call (one encode of
//! `16 k` unit elements) and applies it directly with AVX2 nibble shuffles: per
//! (recovery, original) pair, 8 `vpshufb` per 32 elements, reading each original
//! once. Elsewhere (small fragments, many shards, no AVX2) the encoder runs as is.
//! Decoding is linear the same way: with a given set of `k` surviving shards, each
//! lost original is a GF(2)-linear function of them, so [`decode_lost`] asks the
//! decoder for that map (one decode of `16 k` unit elements) and applies it with the
//! same kernel: a read with lost fragments costs about what an encode does.
//! The tests compare both paths on random data.
//!
//! The originals are ciphertext, public once stored, so table lookups indexed by
//! their bytes leak nothing; the kernel uses in-register shuffles anyway.

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::{Error, Result};

/// Most originals, and most recovery shards, the direct kernel takes.
const MAX_SHARDS: usize = 16;

/// Smallest fragment for which probing the map pays off.
const MIN_DIRECT: usize = 64 * 1024;

fn rs_err(e: reed_solomon_simd::Error) -> Error {
    Error::ErasureCode(e.to_string())
}

/// The `recovery` recovery fragments for `k` originals of `frag_len` bytes
/// (a multiple of 64) stored back to back in `originals`, returned back to back.
pub(crate) fn encode_recovery(
    originals: &[u8],
    k: usize,
    recovery: usize,
    frag_len: usize,
) -> Result<Vec<u8>> {
    #[cfg(target_arch = "x86_64")]
    if frag_len >= MIN_DIRECT
        && frag_len.is_multiple_of(64)
        && k <= MAX_SHARDS
        && recovery <= MAX_SHARDS
        && originals.len() == k * frag_len
        && std::is_x86_feature_detected!("avx2")
    {
        let tables = nibble_tables(k, recovery)?;
        let mut out = vec![0u8; recovery * frag_len];
        let inputs: Vec<&[u8]> = originals.chunks_exact(frag_len).collect();
        avx2::encode_entry(&tables, &inputs, frag_len, &mut out);
        return Ok(out);
    }
    encode_with_encoder(originals, k, recovery, frag_len)
}

/// The plain `reed-solomon-simd` encoder.
fn encode_with_encoder(
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

/// Byte offsets of element `e`'s low and high bytes within a shard.
fn element(e: usize) -> (usize, usize) {
    let (chunk, pos) = (e / 32, e % 32);
    (64 * chunk + pos, 64 * chunk + 32 + pos)
}

/// The encoder's map as nibble tables: entry `((j * k + i) * 4 + q) * 2 + h` is,
/// for each value `v` of nibble `q` (bits `4q..4q + 4`) of an element of original
/// `i`, byte `h` (0 low, 1 high) of its contribution to recovery shard `j`.
fn nibble_tables(k: usize, recovery: usize) -> Result<Vec<[u8; 16]>> {
    // Probe (i, b) sets bit b of element 16 i + b of original i; all else is zero.
    let elements = 16 * k;
    let shard_bytes = elements.div_ceil(32) * 64;
    let mut enc = ReedSolomonEncoder::new(k, recovery, shard_bytes).map_err(rs_err)?;
    for i in 0..k {
        enc.add_original_shard(probe_shard(i, shard_bytes))
            .map_err(rs_err)?;
    }
    let result = enc.encode().map_err(rs_err)?;
    let outputs: Vec<&[u8]> = result.recovery_iter().collect();
    Ok(tables_from_probes(&outputs, k))
}

/// The nibble tables of a linear map probed at unit elements: `outputs[j]` is output
/// `j`'s shard when input `i`'s element `16 i + b` was `1 << b` (all else zero).
fn tables_from_probes(outputs: &[&[u8]], k: usize) -> Vec<[u8; 16]> {
    let mut tables = vec![[0u8; 16]; outputs.len() * k * 8];
    for (j, rec) in outputs.iter().enumerate() {
        for i in 0..k {
            // The image of each single bit of an element of input i.
            let column: Vec<u16> = (0..16)
                .map(|b| {
                    let (lo, hi) = element(16 * i + b);
                    u16::from_le_bytes([rec[lo], rec[hi]])
                })
                .collect();
            for q in 0..4 {
                let image: [u16; 16] = core::array::from_fn(|v| {
                    (0..4)
                        .filter(|t| v >> t & 1 == 1)
                        .fold(0u16, |acc, t| acc ^ column[4 * q + t])
                });
                let at = ((j * k + i) * 4 + q) * 2;
                tables[at] = image.map(|e| e as u8);
                tables[at + 1] = image.map(|e| (e >> 8) as u8);
            }
        }
    }
    tables
}

/// The probe shard of input `i`: bit `b` of its element `16 i + b`, for every `b`.
fn probe_shard(i: usize, shard_bytes: usize) -> Vec<u8> {
    let mut shard = vec![0u8; shard_bytes];
    for b in 0..16 {
        let (lo, hi) = element(16 * i + b);
        let v = 1u16 << b;
        shard[lo] = v as u8;
        shard[hi] = (v >> 8) as u8;
    }
    shard
}

/// The decoder's map for these survivors as nibble tables (outputs: `lost`, in order;
/// inputs: `survivors`, in order).
fn decode_tables(k: usize, n: usize, survivors: &[usize], lost: &[usize]) -> Result<Vec<[u8; 16]>> {
    let shard_bytes = (16 * k).div_ceil(32) * 64;
    let mut dec = ReedSolomonDecoder::new(k, n - k, shard_bytes).map_err(rs_err)?;
    for (pos, &index) in survivors.iter().enumerate() {
        let shard = probe_shard(pos, shard_bytes);
        if index < k {
            dec.add_original_shard(index, &shard).map_err(rs_err)?;
        } else {
            dec.add_recovery_shard(index - k, &shard).map_err(rs_err)?;
        }
    }
    let result = dec.decode().map_err(rs_err)?;
    let outputs = lost
        .iter()
        .map(|&i| {
            result
                .restored_original(i)
                .ok_or_else(|| Error::ErasureCode("decoder did not restore a fragment".into()))
        })
        .collect::<Result<Vec<&[u8]>>>()?;
    Ok(tables_from_probes(&outputs, k))
}

/// The lost originals (`lost`, each `< k`) rebuilt from exactly `k` surviving shards
/// (`survivors`: shard index in `0..n` and its `frag_len` bytes, a multiple of 64),
/// back to back in `lost`'s order — by the direct kernel when it applies, else `None`
/// (the caller runs the decoder).
pub(crate) fn decode_lost(
    k: usize,
    n: usize,
    frag_len: usize,
    survivors: &[(usize, &[u8])],
    lost: &[usize],
) -> Result<Option<Vec<u8>>> {
    #[cfg(target_arch = "x86_64")]
    if frag_len >= MIN_DIRECT
        && frag_len.is_multiple_of(64)
        && k <= MAX_SHARDS
        && lost.len() <= MAX_SHARDS
        && survivors.len() == k
        && survivors.iter().all(|(_, f)| f.len() == frag_len)
        && std::is_x86_feature_detected!("avx2")
    {
        let indices: Vec<usize> = survivors.iter().map(|&(i, _)| i).collect();
        let tables = decode_tables(k, n, &indices, lost)?;
        let inputs: Vec<&[u8]> = survivors.iter().map(|&(_, f)| f).collect();
        let mut out = vec![0u8; lost.len() * frag_len];
        avx2::encode_entry(&tables, &inputs, frag_len, &mut out);
        return Ok(Some(out));
    }
    let _ = (k, n, frag_len, survivors, lost);
    Ok(None)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! The direct kernel: one 64-byte chunk (32 elements) of every shard per step.

    use super::MAX_SHARDS;
    use std::arch::x86_64::*;

    /// Runs the kernel: `inputs` are `k` shards of `frag_len` bytes (a multiple of
    /// 64), `out` gets the `out.len() / frag_len` outputs back to back; both counts
    /// at most `MAX_SHARDS`.
    pub(super) fn encode_entry(
        tables: &[[u8; 16]],
        inputs: &[&[u8]],
        frag_len: usize,
        out: &mut [u8],
    ) {
        let (k, recovery) = (inputs.len(), out.len() / frag_len);
        assert!(std::is_x86_feature_detected!("avx2"));
        assert!(k <= MAX_SHARDS && recovery <= MAX_SHARDS && frag_len.is_multiple_of(64));
        assert!(inputs.iter().all(|i| i.len() == frag_len) && out.len() == recovery * frag_len);
        assert!(tables.len() == recovery * k * 8);
        // SAFETY: AVX2 support and the buffer sizes were just checked.
        unsafe { encode(tables, inputs, frag_len, out) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn encode(tables: &[[u8; 16]], inputs: &[&[u8]], frag_len: usize, out: &mut [u8]) {
        let k = inputs.len();
        let tabs: Vec<__m256i> = tables
            .iter()
            // SAFETY: each table is 16 bytes; the unaligned load reads exactly it.
            .map(|t| _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(t.as_ptr().cast()) }))
            .collect();
        let mask = _mm256_set1_epi8(0x0f);
        let dst = out.as_mut_ptr();
        let mut nibbles = [[mask; 4]; MAX_SHARDS];
        let mut c = 0;
        while c < frag_len {
            for (input, n) in inputs.iter().zip(nibbles[..k].iter_mut()) {
                // SAFETY: each input is frag_len bytes long and c + 64 <= frag_len.
                let (lo, hi) = unsafe {
                    let p = input.as_ptr().add(c);
                    (
                        _mm256_loadu_si256(p.cast()),
                        _mm256_loadu_si256(p.add(32).cast()),
                    )
                };
                *n = [
                    _mm256_and_si256(lo, mask),
                    _mm256_and_si256(_mm256_srli_epi64(lo, 4), mask),
                    _mm256_and_si256(hi, mask),
                    _mm256_and_si256(_mm256_srli_epi64(hi, 4), mask),
                ];
            }
            for (j, per_j) in tabs.chunks_exact(k * 8).enumerate() {
                let mut lo = _mm256_setzero_si256();
                let mut hi = _mm256_setzero_si256();
                for (t, n) in per_j.chunks_exact(8).zip(&nibbles[..k]) {
                    for q in 0..4 {
                        lo = _mm256_xor_si256(lo, _mm256_shuffle_epi8(t[2 * q], n[q]));
                        hi = _mm256_xor_si256(hi, _mm256_shuffle_epi8(t[2 * q + 1], n[q]));
                    }
                }
                // SAFETY: recovery j spans [j * frag_len, (j + 1) * frag_len) of
                // `out` and c + 64 <= frag_len.
                unsafe {
                    let p = dst.add(j * frag_len + c);
                    _mm256_storeu_si256(p.cast(), lo);
                    _mm256_storeu_si256(p.add(32).cast(), hi);
                }
            }
            c += 64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` pseudo-random bytes from the xorshift state `x`.
    fn xorshift(x: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *x ^= *x << 13;
                *x ^= *x >> 7;
                *x ^= *x << 17;
                *x as u8
            })
            .collect()
    }

    /// The direct kernel reproduces the encoder exactly, for several shapes.
    #[test]
    fn direct_kernel_matches_encoder() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for (k, r) in [(3, 2), (1, 1), (2, 5), (5, 5), (4, 12), (16, 16)] {
            let frag_len = MIN_DIRECT + 64 * 3;
            let originals = xorshift(&mut x, k * frag_len);
            let want = encode_with_encoder(&originals, k, r, frag_len).unwrap();
            let got = encode_recovery(&originals, k, r, frag_len).unwrap();
            assert!(got == want, "k {k} recovery {r}");
        }
    }

    /// The direct decode rebuilds exactly the lost originals, for every way of losing
    /// up to `n - k` shards (originals and recovery alike) of several shapes.
    #[test]
    fn direct_decode_restores_every_lost_original() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for (k, r) in [(3, 2), (2, 3), (4, 4), (1, 2)] {
            let n = k + r;
            let frag_len = MIN_DIRECT + 64 * 5;
            let originals = xorshift(&mut x, k * frag_len);
            let recovery = encode_with_encoder(&originals, k, r, frag_len).unwrap();
            let shard = |i: usize| -> &[u8] {
                if i < k {
                    &originals[i * frag_len..(i + 1) * frag_len]
                } else {
                    &recovery[(i - k) * frag_len..(i - k + 1) * frag_len]
                }
            };
            for mask in 0u32..(1 << n) {
                let survivors: Vec<(usize, &[u8])> = (0..n)
                    .filter(|i| mask >> i & 1 == 1)
                    .map(|i| (i, shard(i)))
                    .collect();
                if survivors.len() != k {
                    continue;
                }
                let lost: Vec<usize> = (0..k).filter(|i| mask >> i & 1 == 0).collect();
                let got = decode_lost(k, n, frag_len, &survivors, &lost).unwrap();
                if !std::is_x86_feature_detected!("avx2") {
                    assert!(got.is_none());
                    continue;
                }
                let got = got.expect("the direct path applies");
                for (pos, &i) in lost.iter().enumerate() {
                    assert!(
                        got[pos * frag_len..(pos + 1) * frag_len] == *shard(i),
                        "k {k} r {r} survivors {mask:b}: original {i}"
                    );
                }
            }
        }
    }
}
