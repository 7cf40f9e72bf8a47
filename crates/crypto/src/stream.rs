//! Online sealing of large payloads (attachments): the STREAM construction (Hoang,
//! Reyhanitabar, Rogaway and Vizár, "Online Authenticated-Encryption and its
//! Nonce-Reuse Misuse-Resistance", CRYPTO 2015) over AES-256-GCM.
//!
//! The plaintext is cut into segments of [`SEGMENT_LEN`] bytes (the last one shorter,
//! possibly empty); segment `i` is sealed under the payload's fresh [`DataKey`] with the
//! nonce `prefix ‖ i (u32, big-endian) ‖ last` — a random 7-byte prefix per payload, and
//! `last` 1 on the final segment only — and the associated data of its
//! [`StreamContext`], and carries its own 16-byte tag. So:
//!
//! - **reordering** fails: segment `i` opens only at position `i`;
//! - **truncation** fails: the segment that would then end the stream was sealed with
//!   `last = 0`, and opening it as the last one fails (as does any segment after a last);
//! - **splicing** fails: another payload's segments have another key (and prefix), and a
//!   segment moved to another record, version or attachment has other associated data.
//!
//! Each segment is opened on its own ([`StreamKey::open_segment`]), so a download
//! verifies as it goes and a range request opens only the segments it covers. Memory
//! is one segment at a time.

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::seal::{self, DataKey, NONCE_LEN, RecordContext, TAG_LEN};
use crate::{Error, Result};

/// Plaintext bytes per segment (1 MiB): the unit of sealing, dispersal and range reads.
pub const SEGMENT_LEN: usize = 1 << 20;
/// Length of the random nonce prefix.
pub const PREFIX_LEN: usize = NONCE_LEN - 5;
/// Most segments a payload may have (the counter is 32 bits).
pub const MAX_SEGMENTS: u64 = u32::MAX as u64;

/// What a sealed stream is bound to: a record version, and which attachment of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamContext {
    /// The record version it belongs to.
    pub record: RecordContext,
    /// Which attachment of that version (from 0).
    pub attachment: u32,
}

/// Domain separation prefix of a stream's associated data (format version 1).
const AD_PREFIX: &[u8; 8] = b"SEHR-ST1";

impl StreamContext {
    /// `"SEHR-ST1" ‖ patient ‖ record_id ‖ version (BE) ‖ attachment (BE)`: fixed-width
    /// fields, and a prefix no record's associated data has.
    pub fn associated_data(&self) -> [u8; 8 + 20 + 32 + 4 + 4] {
        let mut ad = [0u8; 68];
        ad[..8].copy_from_slice(AD_PREFIX);
        ad[8..28].copy_from_slice(&self.record.patient);
        ad[28..60].copy_from_slice(&self.record.record_id);
        ad[60..64].copy_from_slice(&self.record.version.to_be_bytes());
        ad[64..].copy_from_slice(&self.attachment.to_be_bytes());
        ad
    }
}

/// How many segments a payload of `len` bytes has (an empty one has one, empty).
pub fn segment_count(len: u64) -> u64 {
    len.div_ceil(SEGMENT_LEN as u64).max(1)
}

/// The sealed length of a payload of `len` bytes: each segment gains a tag.
pub fn sealed_len(len: u64) -> u64 {
    len + segment_count(len) * TAG_LEN as u64
}

/// A stream's key, prefix and context: seals or opens any of its segments.
pub struct StreamKey {
    key: DataKey,
    prefix: [u8; PREFIX_LEN],
    ad: [u8; 68],
}

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamKey")
            .field("key", &"<redacted>")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl StreamKey {
    /// A new stream under `key` (fresh for this payload) with a random prefix.
    pub fn new<R: CryptoRng + ?Sized>(key: DataKey, ctx: &StreamContext, rng: &mut R) -> Self {
        let mut prefix = [0u8; PREFIX_LEN];
        rng.fill_bytes(&mut prefix);
        Self::with_prefix(key, ctx, prefix)
    }

    /// The stream whose prefix is `prefix` (stored with it), to open it.
    pub fn with_prefix(key: DataKey, ctx: &StreamContext, prefix: [u8; PREFIX_LEN]) -> Self {
        Self {
            key,
            prefix,
            ad: ctx.associated_data(),
        }
    }

    /// The nonce prefix, which is public and stored beside the segments.
    pub fn prefix(&self) -> [u8; PREFIX_LEN] {
        self.prefix
    }

    fn nonce(&self, index: u64, last: bool) -> Result<[u8; NONCE_LEN]> {
        let index = u32::try_from(index).map_err(|_| Error::TooLarge {
            len: usize::try_from(index).unwrap_or(usize::MAX),
            max: u32::MAX as usize,
        })?;
        let mut n = [0u8; NONCE_LEN];
        n[..PREFIX_LEN].copy_from_slice(&self.prefix);
        n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&index.to_be_bytes());
        n[NONCE_LEN - 1] = u8::from(last);
        Ok(n)
    }

    /// Seals segment `index` in place (`buf` gains its tag). Every segment but the last
    /// must be exactly [`SEGMENT_LEN`] bytes; the last at most that.
    pub fn seal_segment(&self, index: u64, last: bool, buf: &mut Vec<u8>) -> Result<()> {
        if buf.len() > SEGMENT_LEN || (!last && buf.len() != SEGMENT_LEN) {
            return Err(Error::StreamSegment(if last {
                "the last segment is longer than a segment"
            } else {
                "a segment before the last must be exactly SEGMENT_LEN bytes"
            }));
        }
        let nonce = self.nonce(index, last)?;
        let tag = seal::encrypt_detached(&self.key, &nonce, &self.ad, buf)?;
        buf.reserve_exact(TAG_LEN);
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens segment `index` (`last`: whether the stream ends with it) in place: `buf`
    /// loses its tag and becomes the plaintext. Fails opaquely ([`Error::Decrypt`]) on
    /// a wrong key, context, position or last flag, or any tampering.
    pub fn open_segment(&self, index: u64, last: bool, buf: &mut Vec<u8>) -> Result<()> {
        let body = buf.len().checked_sub(TAG_LEN).ok_or(Error::Decrypt)?;
        if body > SEGMENT_LEN || (!last && body != SEGMENT_LEN) {
            return Err(Error::Decrypt);
        }
        let nonce = self.nonce(index, last)?;
        let (data, tag) = buf.split_at_mut(body);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| Error::Decrypt)?;
        seal::decrypt_detached(&self.key, &nonce, &self.ad, data, &tag)?;
        buf.truncate(body);
        Ok(())
    }
}

/// What an upload's [`StreamDisperser`] sealed, once it is finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    /// Plaintext bytes.
    pub size: u64,
    /// SHA-256 of the plaintext (the DocumentReference's hash).
    pub sha256: [u8; 32],
    /// Segments sealed.
    pub segments: u64,
    /// The STREAM nonce prefix.
    pub prefix: [u8; PREFIX_LEN],
}

/// Seals and disperses a payload as it arrives: bytes go in with
/// [`push`](Self::push) in pieces of any size, and each full segment is sealed, cut into
/// its `n` fragments ([`crate::dispersal::disperse_segment`]) and handed to the sink
/// before more is read — so memory is one segment and its fragments, whatever the size.
/// [`finish`](Self::finish) seals the last segment (flagged last; empty if the payload
/// ends on a segment boundary or is empty).
pub struct StreamDisperser {
    key: StreamKey,
    t: crate::Threshold,
    buf: Vec<u8>,
    index: u64,
    size: u64,
    hash: sha2::Sha256,
}

impl std::fmt::Debug for StreamDisperser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDisperser")
            .field("index", &self.index)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Where a [`StreamDisperser`] hands each segment: its index and its fragments.
pub type SegmentSink<'a> = dyn FnMut(u64, crate::dispersal::DispersedSegment) -> Result<()> + 'a;

impl StreamDisperser {
    /// A disperser sealing under `key` at threshold `t`.
    pub fn new(key: StreamKey, t: crate::Threshold) -> Self {
        Self {
            key,
            t,
            buf: Vec::with_capacity(SEGMENT_LEN + TAG_LEN),
            index: 0,
            size: 0,
            hash: sha2::Digest::new(),
        }
    }

    /// Takes more of the payload; every segment it completes goes to `sink`. A segment
    /// is sealed only once a byte after it has arrived, so that the last one is known.
    pub fn push(&mut self, mut data: &[u8], sink: &mut SegmentSink<'_>) -> Result<()> {
        sha2::Digest::update(&mut self.hash, data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            if self.buf.len() == SEGMENT_LEN {
                self.emit(false, sink)?;
            }
            let take = (SEGMENT_LEN - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    fn emit(&mut self, last: bool, sink: &mut SegmentSink<'_>) -> Result<()> {
        if self.index >= MAX_SEGMENTS {
            return Err(Error::TooLarge {
                len: usize::MAX,
                max: (MAX_SEGMENTS as usize).saturating_mul(SEGMENT_LEN),
            });
        }
        let mut seg = std::mem::replace(&mut self.buf, Vec::with_capacity(SEGMENT_LEN + TAG_LEN));
        self.key.seal_segment(self.index, last, &mut seg)?;
        let dispersed = crate::dispersal::disperse_segment(self.t, seg)?;
        sink(self.index, dispersed)?;
        self.index += 1;
        Ok(())
    }

    /// Seals the last segment and says what was sealed.
    pub fn finish(mut self, sink: &mut SegmentSink<'_>) -> Result<StreamSummary> {
        self.emit(true, sink)?;
        Ok(StreamSummary {
            size: self.size,
            sha256: sha2::Digest::finalize(self.hash.clone()).into(),
            segments: self.index,
            prefix: self.key.prefix(),
        })
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    fn ctx(attachment: u32) -> StreamContext {
        StreamContext {
            record: RecordContext {
                patient: [7; 20],
                record_id: [1; 32],
                version: 2,
            },
            attachment,
        }
    }

    /// Seals `data` as a stream: its segments, sealed.
    fn seal_all(k: &StreamKey, data: &[u8]) -> Vec<Vec<u8>> {
        let count = segment_count(data.len() as u64) as usize;
        (0..count)
            .map(|i| {
                let end = ((i + 1) * SEGMENT_LEN).min(data.len());
                let mut seg = data[i * SEGMENT_LEN..end].to_vec();
                k.seal_segment(i as u64, i + 1 == count, &mut seg).unwrap();
                seg
            })
            .collect()
    }

    /// Opens segments as a reader does: in order, the last one as the last.
    fn open_all(k: &StreamKey, segments: &[Vec<u8>]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            let mut s = s.clone();
            k.open_segment(i as u64, i + 1 == segments.len(), &mut s)?;
            out.extend_from_slice(&s);
        }
        Ok(out)
    }

    fn data(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut v = vec![0u8; len];
        rand_core::Rng::fill_bytes(&mut rng, &mut v);
        v
    }

    #[test]
    fn round_trips_at_every_interesting_length() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for len in [
            0,
            1,
            SEGMENT_LEN - 1,
            SEGMENT_LEN,
            SEGMENT_LEN + 1,
            3 * SEGMENT_LEN + 77,
        ] {
            let key = StreamKey::new(DataKey::generate(&mut rng), &ctx(0), &mut rng);
            let d = data(len, len as u64);
            let sealed = seal_all(&key, &d);
            assert_eq!(sealed.len() as u64, segment_count(len as u64));
            assert_eq!(
                sealed.iter().map(|s| s.len() as u64).sum::<u64>(),
                sealed_len(len as u64)
            );
            assert_eq!(open_all(&key, &sealed).unwrap(), d, "len {len}");
            // Any one segment opens alone at its position (range reads).
            let last = sealed.len() - 1;
            let mut s = sealed[last].clone();
            key.open_segment(last as u64, true, &mut s).unwrap();
            assert_eq!(s, d[last * SEGMENT_LEN..]);
        }
    }

    #[test]
    fn truncation_reordering_splicing_and_tampering_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let raw = DataKey::generate(&mut rng);
        let key = StreamKey::new(raw.clone(), &ctx(0), &mut rng);
        let d = data(3 * SEGMENT_LEN + 10, 3);
        let sealed = seal_all(&key, &d);

        // Truncated: the stream now ends with a segment sealed as not the last.
        assert!(matches!(open_all(&key, &sealed[..3]), Err(Error::Decrypt)));
        assert!(matches!(open_all(&key, &sealed[..1]), Err(Error::Decrypt)));
        // A segment after the last.
        let mut longer = sealed.clone();
        longer.push(sealed[3].clone());
        assert!(open_all(&key, &longer).is_err());
        // Reordered.
        let mut swapped = sealed.clone();
        swapped.swap(0, 1);
        assert!(matches!(open_all(&key, &swapped), Err(Error::Decrypt)));
        // Spliced from another stream under the same key but another prefix, or of
        // another attachment of the same version.
        let other = StreamKey::new(raw.clone(), &ctx(0), &mut rng);
        let mut spliced = sealed.clone();
        spliced[1] = seal_all(&other, &d)[1].clone();
        assert!(matches!(open_all(&key, &spliced), Err(Error::Decrypt)));
        let moved = StreamKey::with_prefix(raw, &ctx(1), key.prefix());
        assert!(matches!(open_all(&moved, &sealed), Err(Error::Decrypt)));
        // One flipped bit anywhere.
        for at in [0, SEGMENT_LEN / 2, SEGMENT_LEN + TAG_LEN - 1] {
            let mut bad = sealed.clone();
            bad[0][at] ^= 1;
            assert!(
                matches!(open_all(&key, &bad), Err(Error::Decrypt)),
                "at {at}"
            );
        }
        assert_eq!(open_all(&key, &sealed).unwrap(), d);
    }

    /// Each sealed segment dispersed 3-of-5, then read back around lost and corrupt
    /// fragments; with too few good ones the read fails, never short.
    #[test]
    fn segments_disperse_and_rebuild_around_lost_and_corrupt_fragments() {
        use crate::Threshold;
        use crate::dispersal::{disperse_segment, rebuild_segment};
        let t = Threshold::new(3, 5).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let key = StreamKey::new(DataKey::generate(&mut rng), &ctx(0), &mut rng);
        let d = data(2 * SEGMENT_LEN + 4321, 6);
        let sealed = seal_all(&key, &d);
        let count = sealed.len();
        let mut out = Vec::new();
        for (i, seg) in sealed.iter().enumerate() {
            let len = seg.len();
            let dispersed = disperse_segment(t, seg.clone()).unwrap();
            let mut frags: Vec<Option<Vec<u8>>> = dispersed
                .fragments
                .iter()
                .map(|f| Some(f.to_vec()))
                .collect();
            // A different pair of nodes lost for each segment; on the first, one more
            // fragment corrupted leaves two good ones, and the read fails.
            frags[i % 5] = None;
            frags[(i + 2) % 5] = None;
            let refs: Vec<Option<&[u8]>> = frags.iter().map(|x| x.as_deref()).collect();
            let (mut rebuilt, report) = rebuild_segment(t, len, &dispersed.digests, &refs).unwrap();
            assert_eq!(report.good.len(), 3);
            key.open_segment(i as u64, i + 1 == count, &mut rebuilt)
                .unwrap();
            out.extend_from_slice(&rebuilt);
            if i == 0 {
                let mut bad = frags.clone();
                let at = (0..5).find(|j| bad[*j].is_some()).unwrap();
                bad[at].as_mut().unwrap()[7] ^= 1;
                let refs: Vec<Option<&[u8]>> = bad.iter().map(|x| x.as_deref()).collect();
                let e = rebuild_segment(t, len, &dispersed.digests, &refs).unwrap_err();
                assert!(
                    matches!(
                        e,
                        Error::NotEnoughFragments {
                            good: 2,
                            needed: 3,
                            ..
                        }
                    ),
                    "{e}"
                );
            }
        }
        assert_eq!(out, d);
    }

    /// Pushed in pieces of any size, the disperser gives what sealing the whole payload
    /// segment by segment gives; a reader rebuilds it from any 3 fragments per segment.
    #[test]
    fn the_disperser_streams_segments_as_they_fill_whatever_the_pieces() {
        use crate::Threshold;
        use crate::dispersal::rebuild_segment;
        let t = Threshold::new(3, 5).unwrap();
        for len in [0, 5, SEGMENT_LEN, 2 * SEGMENT_LEN + 999] {
            let d = data(len, 11 + len as u64);
            let raw = DataKey::from_bytes([9; 32]);
            let prefix = [3; PREFIX_LEN];
            let mut disperser =
                StreamDisperser::new(StreamKey::with_prefix(raw.clone(), &ctx(0), prefix), t);
            let mut got: Vec<(u64, crate::dispersal::DispersedSegment)> = Vec::new();
            let mut sink = |i: u64, s: crate::dispersal::DispersedSegment| {
                got.push((i, s));
                Ok(())
            };
            let mut rest = &d[..];
            let mut step = 1;
            while !rest.is_empty() {
                let take = step.min(rest.len());
                disperser.push(&rest[..take], &mut sink).unwrap();
                rest = &rest[take..];
                step = step * 7 + 3;
            }
            let summary = disperser.finish(&mut sink).unwrap();
            assert_eq!(summary.segments, segment_count(len as u64));
            assert_eq!(summary.size, len as u64);
            assert_eq!(
                summary.sha256,
                <[u8; 32]>::from(<sha2::Sha256 as sha2::Digest>::digest(&d))
            );
            assert_eq!(got.len() as u64, summary.segments);
            let key = StreamKey::with_prefix(raw, &ctx(0), prefix);
            let whole = seal_all(&key, &d);
            let mut out = Vec::new();
            for (j, (i, dispersed)) in got.iter().enumerate() {
                assert_eq!(*i, j as u64);
                let refs: Vec<Option<&[u8]>> = (0..5)
                    .map(|f| dispersed.fragments.get(f).filter(|_| f >= 2))
                    .collect();
                let (mut seg, _) =
                    rebuild_segment(t, whole[j].len(), &dispersed.digests, &refs).unwrap();
                assert_eq!(seg, whole[j], "segment {j} as sealed whole");
                key.open_segment(*i, j + 1 == got.len(), &mut seg).unwrap();
                out.extend_from_slice(&seg);
            }
            assert_eq!(out, d, "len {len}");
        }
    }

    #[test]
    fn sealing_refuses_segments_of_the_wrong_length() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let key = StreamKey::new(DataKey::generate(&mut rng), &ctx(0), &mut rng);
        let mut short = vec![0u8; 10];
        assert!(key.seal_segment(0, false, &mut short).is_err());
        let mut long = vec![0u8; SEGMENT_LEN + 1];
        assert!(key.seal_segment(0, true, &mut long).is_err());
        assert_eq!(short.len(), 10, "nothing sealed");
    }
}
