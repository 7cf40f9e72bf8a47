//! Hint files: `NNNNNNNN.hint` beside a sealed segment lists what a scan of it finds (every
//! valid record in order: kind, multihash, data offset and length), so that open applies
//! that list instead of reading and CRC-checking the whole segment (as Bitcask does).
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | magic `89 45 48 48` (`\x89EHH`) |
//! | 1 | version, 1 |
//! | 4 | segment id, little-endian |
//! | 8 | the segment file's length when the hint was written |
//! | 8 | bytes of mid-file damage the scan skipped |
//! | 8 | bytes left unread at the segment's end |
//! | 8 | number of records |
//! | per record | kind (1 block, 2 tombstone), multihash length (u16), multihash, data offset (u64), data length (u32) |
//! | 4 | CRC-32 (IEEE) of everything before it |
//!
//! A hint is only trusted whole: a bad CRC, a different segment id or length, or any
//! impossible entry and open scans the segment instead, so a damaged or missing hint costs
//! time, never a block.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;

const HINT_MAGIC: [u8; 4] = *b"\x89EHH";
const HINT_VERSION: u8 = 1;
/// Magic, version, id, segment length, skipped, torn, count.
const HINT_HEADER_LEN: usize = 4 + 1 + 4 + 8 + 8 + 8 + 8;

pub(super) fn hint_path(root: &Path, id: u32) -> PathBuf {
    root.join(format!("{id:08}.hint"))
}

/// The records of one segment as they are found (by a scan) or written (by the writer).
#[derive(Default)]
pub(super) struct HintLog {
    entries: Vec<u8>,
    count: u64,
    /// Bytes of mid-file damage skipped so far.
    pub(super) skipped: u64,
}

impl HintLog {
    /// Notes one record: a block whose data lies at `off..off + len`, or a tombstone.
    pub(super) fn push(&mut self, kind: u8, key: &[u8], off: u64, len: u32) {
        self.entries.push(kind);
        self.entries
            .extend_from_slice(&(key.len() as u16).to_le_bytes());
        self.entries.extend_from_slice(key);
        self.entries.extend_from_slice(&off.to_le_bytes());
        self.entries.extend_from_slice(&len.to_le_bytes());
        self.count += 1;
    }

    /// The hint file of segment `id`, `seg_len` bytes long, `torn` of them unread at its end.
    pub(super) fn encode(&self, id: u32, seg_len: u64, torn: u64) -> Vec<u8> {
        let mut h = Vec::with_capacity(HINT_HEADER_LEN + self.entries.len() + CRC_LEN);
        h.extend_from_slice(&HINT_MAGIC);
        h.push(HINT_VERSION);
        h.extend_from_slice(&id.to_le_bytes());
        h.extend_from_slice(&seg_len.to_le_bytes());
        h.extend_from_slice(&self.skipped.to_le_bytes());
        h.extend_from_slice(&torn.to_le_bytes());
        h.extend_from_slice(&self.count.to_le_bytes());
        h.extend_from_slice(&self.entries);
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        h
    }
}

/// Writes segment `id`'s hint crash-safely (temporary file, fsync, rename, directory
/// fsync) and says whether it did. Best effort: a hint that is not written only makes the
/// next open scan.
pub(super) fn write_hint(root: &Path, id: u32, hint: &[u8]) -> bool {
    let path = hint_path(root, id);
    match ehr_fs_util::replace(&path, hint) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(hint = %path.display(), error = %e, "could not write a segment hint");
            false
        }
    }
}

/// Removes segment `id`'s hint, if any (best effort): the active segment's hint would be
/// stale as soon as it is written to.
pub(super) fn remove_hint(root: &Path, id: u32) {
    let path = hint_path(root, id);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::warn!(hint = %path.display(), "removed the hint of the active segment"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(hint = %path.display(), error = %e, "could not remove a hint"),
    }
}

/// One entry of a hint, borrowed from it.
struct Entry<'a> {
    kind: u8,
    key: &'a [u8],
    off: u64,
    len: u32,
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let s = buf.get(*pos..pos.checked_add(n)?)?;
    *pos += n;
    Some(s)
}

fn u64_at(buf: &[u8], pos: &mut usize) -> Option<u64> {
    Some(u64::from_le_bytes(take(buf, pos, 8)?.try_into().ok()?))
}

/// Applies hint `hint` of segment `id` (whose file is `seg_len` bytes long) to `index` and
/// `recovery`, exactly as a scan of the segment would, and returns `true`; or changes
/// nothing and returns `false` if the hint is damaged or does not describe this segment.
pub(super) fn apply_hint(
    hint: &[u8],
    id: u32,
    seg_len: u64,
    index: &mut HashMap<Box<[u8]>, Loc>,
    recovery: &mut Recovery,
) -> bool {
    let Some(entries) = parse_hint(hint, id, seg_len) else {
        return false;
    };
    let (skipped, torn, entries) = entries;
    recovery.records += entries.len();
    recovery.skipped_bytes += skipped;
    recovery.torn_bytes += torn;
    for e in entries {
        if e.kind == KIND_BLOCK {
            let loc = Loc {
                seg: id,
                off: e.off,
                len: e.len,
            };
            index.insert(e.key.into(), loc);
        } else {
            index.remove(e.key);
        }
    }
    true
}

/// The skipped and torn byte counts and the entries of a valid hint for segment `id` of
/// `seg_len` bytes.
fn parse_hint(hint: &[u8], id: u32, seg_len: u64) -> Option<(u64, u64, Vec<Entry<'_>>)> {
    let body_len = hint.len().checked_sub(CRC_LEN)?;
    let (body, crc) = hint.split_at(body_len);
    if body.len() < HINT_HEADER_LEN || crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let mut pos = 0;
    if take(body, &mut pos, 4)? != HINT_MAGIC || take(body, &mut pos, 1)? != [HINT_VERSION] {
        return None;
    }
    let hint_id = u32::from_le_bytes(take(body, &mut pos, 4)?.try_into().ok()?);
    let hint_len = u64_at(body, &mut pos)?;
    if hint_id != id || hint_len != seg_len {
        return None;
    }
    let skipped = u64_at(body, &mut pos)?;
    let torn = u64_at(body, &mut pos)?;
    let count = u64_at(body, &mut pos)?;
    // The smallest entry is 1 + 2 + 8 + 4 bytes: a count past that is a lie.
    if count > (body.len() / 15) as u64 {
        return None;
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let kind = take(body, &mut pos, 1)?[0];
        let key_len = u16::from_le_bytes(take(body, &mut pos, 2)?.try_into().ok()?);
        let key = take(body, &mut pos, usize::from(key_len))?;
        let off = u64_at(body, &mut pos)?;
        let len = u32::from_le_bytes(take(body, &mut pos, 4)?.try_into().ok()?);
        let valid = match kind {
            KIND_BLOCK => len as usize <= MAX_BLOCK_LEN,
            KIND_TOMBSTONE => len == 0,
            _ => false,
        };
        if !valid || key.is_empty() || off.checked_add(u64::from(len))? > seg_len {
            return None;
        }
        entries.push(Entry {
            kind,
            key,
            off,
            len,
        });
    }
    (pos == body.len()).then_some((skipped, torn, entries))
}
