//! The on-disk record format: header, CID, data, CRC; parsing and scanning a segment.

use std::collections::HashMap;
use std::path::Path;

use cid::Cid;

use super::*;
use crate::{Error, Result};

pub(super) fn check_len(cid: &Cid, data: &[u8]) -> Result<()> {
    if data.len() > MAX_BLOCK_LEN {
        return Err(Error::TooLarge {
            cid: Box::new(*cid),
            len: data.len() as u64,
            max: MAX_BLOCK_LEN as u64,
        });
    }
    Ok(())
}

/// Encodes one record.
pub(super) fn encode(kind: u8, cid: &[u8], data: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(HEADER_LEN + cid.len() + data.len() + CRC_LEN);
    r.extend_from_slice(&MAGIC);
    r.push(kind);
    r.extend_from_slice(&(cid.len() as u16).to_le_bytes());
    r.extend_from_slice(&(data.len() as u32).to_le_bytes());
    r.extend_from_slice(cid);
    r.extend_from_slice(data);
    let crc = crc32fast::hash(&r);
    r.extend_from_slice(&crc.to_le_bytes());
    r
}

/// A valid record found in a segment.
pub(super) struct Record {
    pub(super) kind: u8,
    pub(super) cid: Cid,
    /// Offset of the data in the segment.
    pub(super) data_off: usize,
    pub(super) data_len: u32,
    /// Offset just past the record.
    pub(super) end: usize,
}

/// The record at `pos`, if a whole one with a matching CRC and a parsable CID is there.
pub(super) fn parse(buf: &[u8], pos: usize) -> Option<Record> {
    let header = buf.get(pos..pos.checked_add(HEADER_LEN)?)?;
    if header[..4] != MAGIC {
        return None;
    }
    let kind = header[4];
    let cid_len = usize::from(u16::from_le_bytes([header[5], header[6]]));
    let data_len = u32::from_le_bytes([header[7], header[8], header[9], header[10]]);
    let valid_kind = match kind {
        KIND_BLOCK => data_len as usize <= MAX_BLOCK_LEN,
        KIND_TOMBSTONE => data_len == 0,
        _ => false,
    };
    if !valid_kind {
        return None;
    }
    let cid_off = pos + HEADER_LEN;
    let data_off = cid_off + cid_len;
    let crc_off = data_off + data_len as usize;
    let crc = buf.get(crc_off..crc_off + CRC_LEN)?;
    if crc32fast::hash(&buf[pos..crc_off]).to_le_bytes() != crc {
        return None;
    }
    let cid = Cid::try_from(&buf[cid_off..data_off]).ok()?;
    Some(Record {
        kind,
        cid,
        data_off,
        data_len,
        end: crc_off + CRC_LEN,
    })
}

/// The first offset at or after `from` where a valid record starts.
pub(super) fn next_record(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = buf.get(at..)?.windows(MAGIC.len()).position(|w| w == MAGIC) {
        if parse(buf, at + i).is_some() {
            return Some(at + i);
        }
        at += i + 1;
    }
    None
}

/// Applies the records of segment `id` to `index` in order, skipping damaged stretches
/// that valid records follow, and notes them in `log` (the segment's hint); the blocks its
/// tombstones removed from the index go to `deleted`. Returns where the valid part ends
/// (the start of a torn tail, or `buf.len()`).
pub(super) fn scan(
    buf: &[u8],
    id: u32,
    path: &Path,
    index: &mut HashMap<Box<[u8]>, Loc>,
    recovery: &mut Recovery,
    log: &mut HintLog,
    deleted: &mut Vec<Loc>,
) -> usize {
    let mut pos = 0;
    while pos < buf.len() {
        if let Some(r) = parse(buf, pos) {
            let key: Box<[u8]> = r.cid.hash().to_bytes().into();
            log.push(r.kind, &key, r.data_off as u64, r.data_len);
            if r.kind == KIND_BLOCK {
                let loc = Loc {
                    seg: id,
                    off: r.data_off as u64,
                    len: r.data_len,
                };
                index.insert(key, loc);
            } else {
                deleted.extend(index.remove(&key));
            }
            recovery.records += 1;
            pos = r.end;
            continue;
        }
        let Some(next) = next_record(buf, pos + 1) else {
            return pos;
        };
        tracing::warn!(
            segment = %path.display(),
            offset = pos,
            len = next - pos,
            "skipping damaged bytes in a block segment; the blocks there are lost"
        );
        recovery.skipped_bytes += (next - pos) as u64;
        log.skipped += (next - pos) as u64;
        pos = next;
    }
    buf.len()
}
