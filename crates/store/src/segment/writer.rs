//! The one writer thread: appends batches, one `fdatasync` per batch, then acknowledges.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};

use super::*;
use crate::{Error, Result};

/// The longest CID [`scrub_at`] looks for in front of a block's data.
const MAX_CID_LEN: usize = 128;

/// The writer thread's state: the active segment and where it ends.
pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) rx: mpsc::Receiver<Op>,
    /// Held (locked) until the writer exits.
    pub(super) _lock: File,
    pub(super) active_id: u32,
    pub(super) active: Arc<File>,
    pub(super) end: u64,
    /// The active segment's records so far, for its hint when it is sealed.
    pub(super) hint: HintLog,
    /// Set after a failed sync: why writes are refused until reopen.
    pub(super) failed: Option<String>,
}

impl Writer {
    pub(super) fn run(mut self) {
        let cap = self
            .shared
            .opts
            .max_batch
            .min(usize::try_from(self.shared.opts.segment_size).unwrap_or(usize::MAX));
        let mut carry = None;
        loop {
            let first = match carry.take() {
                Some(op) => op,
                None => match self.rx.recv() {
                    Ok(op) => op,
                    // Every handle is gone.
                    Err(_) => return,
                },
            };
            let mut bytes = first.record.len();
            let mut ops = vec![first];
            while bytes < cap {
                match self.rx.try_recv() {
                    Ok(op) if bytes + op.record.len() > cap => {
                        carry = Some(op);
                        break;
                    }
                    Ok(op) => {
                        bytes += op.record.len();
                        ops.push(op);
                    }
                    Err(_) => break,
                }
            }
            self.commit(ops);
        }
    }

    /// Writes and syncs one batch, then indexes it and answers every waiter.
    pub(super) fn commit(&mut self, ops: Vec<Op>) {
        if let Some(why) = &self.failed {
            let msg = format!("writes refused after a failed sync ({why}); reopen the store");
            for op in ops {
                op.reply.send(Err(Error::io(
                    &self.shared.root,
                    std::io::Error::other(msg.clone()),
                )));
            }
            return;
        }
        // The state of each key the batch changes: where its data will lie in `buf`, or
        // `None` if the batch deletes it. Later ops see earlier ones of the same batch.
        let mut changes: HashMap<&[u8], Option<(u64, u32)>> = HashMap::new();
        // The records written, in order, with the offset of their data in `buf`.
        let mut written: Vec<(&[u8], u8, usize, u32)> = Vec::new();
        let mut buf = Vec::with_capacity(ops.iter().map(|op| op.record.len()).sum());
        {
            let state = self.shared.read();
            for op in &ops {
                let present = match changes.get(&*op.key) {
                    Some(change) => change.is_some(),
                    None => state.index.contains_key(&op.key),
                };
                match op.data {
                    Some((off, len)) if !present => {
                        changes.insert(&op.key, Some(((buf.len() + off) as u64, len)));
                        written.push((&op.key, KIND_BLOCK, buf.len() + off, len));
                        buf.extend_from_slice(&op.record);
                    }
                    None if present => {
                        changes.insert(&op.key, None);
                        // As a scan notes a tombstone: its (empty) data ends before the CRC.
                        let off = op.record.len() - CRC_LEN;
                        written.push((&op.key, KIND_TOMBSTONE, buf.len() + off, 0));
                        buf.extend_from_slice(&op.record);
                    }
                    _ => {}
                }
            }
        }
        if !buf.is_empty() {
            let base = match self.append(&buf) {
                Ok(base) => base,
                Err((path, e)) => {
                    for op in ops {
                        op.reply.send(Err(Error::io(
                            &path,
                            std::io::Error::new(e.kind(), e.to_string()),
                        )));
                    }
                    return;
                }
            };
            let seg = self.active_id;
            // A block this very batch writes and then deletes goes too.
            let mut deleted: Vec<Loc> = written
                .iter()
                .filter(|(key, kind, _, _)| {
                    *kind == KIND_BLOCK && matches!(changes.get(key), Some(None))
                })
                .map(|&(_, _, off, len)| Loc {
                    seg,
                    off: base + off as u64,
                    len,
                })
                .collect();
            for (key, kind, off, len) in written {
                self.hint.push(kind, key, base + off as u64, len);
            }
            let mut state = self.shared.write();
            for (key, change) in changes {
                match change {
                    Some((off, len)) => {
                        state.index.insert(
                            key.into(),
                            Loc {
                                seg,
                                off: base + off,
                                len,
                            },
                        );
                    }
                    None => {
                        deleted.extend(state.index.remove(key));
                    }
                }
            }
            drop(state);
            // The tombstones are durable: now the deleted blocks' bytes go too.
            for loc in deleted {
                if let Err(e) = self.scrub(loc) {
                    tracing::warn!(
                        segment = loc.seg,
                        offset = loc.off,
                        error = %e,
                        "could not overwrite a deleted block; its bytes stay until compaction"
                    );
                }
            }
        }
        for op in ops {
            op.reply.send(Ok(()));
        }
    }

    /// Overwrites the deleted block at `loc` with zeros ([`scrub_at`]).
    fn scrub(&self, loc: Loc) -> std::io::Result<()> {
        scrub_at(&self.shared.root, self.active_id, &self.active, loc)
    }

    /// Appends `buf` durably to the active segment (rotating first if it would grow past
    /// the limit) and returns the offset it starts at.
    pub(super) fn append(&mut self, buf: &[u8]) -> Result<u64, (PathBuf, std::io::Error)> {
        if self.end > 0 && self.end + buf.len() as u64 > self.shared.opts.segment_size {
            self.rotate()?;
        }
        let path = segment_path(&self.shared.root, self.active_id);
        let base = self.end;
        if let Err(e) = self.active.write_all_at(buf, base) {
            // Cut off what part of the batch got written (e.g. on ENOSPC) so that the next
            // batch starts at a record boundary.
            if let Err(e2) = self.active.set_len(base) {
                self.failed = Some(format!("truncating after a failed write: {e2}"));
            }
            return Err((path, e));
        }
        if let Err(e) = self.active.sync_data() {
            self.failed = Some(e.to_string());
            return Err((path, e));
        }
        self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        self.end += buf.len() as u64;
        Ok(base)
    }

    pub(super) fn rotate(&mut self) -> Result<(), (PathBuf, std::io::Error)> {
        let old = segment_path(&self.shared.root, self.active_id);
        self.active.sync_all().map_err(|e| (old, e))?;
        let id = self.active_id + 1;
        let file = create_segment(&self.shared.root, id)?;
        let file = Arc::new(file);
        self.shared.write().files.insert(id, file.clone());
        // The old segment is synced and will never change again: its hint, after the new
        // segment exists (so that a crash in between leaves a sealed segment without a
        // hint, which open scans, never an active one with a hint).
        let hint = std::mem::take(&mut self.hint).encode(self.active_id, self.end, 0);
        write_hint(&self.shared.root, self.active_id, &hint);
        self.active = file;
        self.active_id = id;
        self.end = 0;
        Ok(())
    }
}

/// The file of segment `loc.seg`: the writer's active one, or opened for writing.
fn segment_file(
    root: &Path,
    active_id: u32,
    active: &Arc<File>,
    loc: Loc,
) -> std::io::Result<Arc<File>> {
    if loc.seg == active_id {
        Ok(active.clone())
    } else {
        let path = segment_path(root, loc.seg);
        Ok(Arc::new(
            OpenOptions::new().read(true).write(true).open(&path)?,
        ))
    }
}

/// Overwrites the data of the deleted block at `loc` with zeros in place, with the record's
/// CRC made valid again, and syncs it: a deleted block (a custodian's key share, say) does
/// not stay readable on disk until a compaction. The record still parses and indexes as
/// before, and the tombstone after it still deletes it, so open, scans and hints see no
/// damage. A crash before the overwrite leaves the bytes until the next open
/// ([`scrub_leftover`]); one during it leaves a record whose CRC fails, which open skips as
/// mid-file damage since the tombstone follows it.
pub(super) fn scrub_at(
    root: &Path,
    active_id: u32,
    active: &Arc<File>,
    loc: Loc,
) -> std::io::Result<()> {
    let file = segment_file(root, active_id, active, loc)?;
    // The record is header ‖ CID ‖ data ‖ CRC and its CID length is in the header: try
    // the lengths a CID can have (a supported one has 34 or 36 bytes), and take the one
    // whose header, then CRC, check out.
    let len = loc.len as usize;
    let found = (2..=MAX_CID_LEN).find_map(|cid_len| {
        let start = loc.off.checked_sub((HEADER_LEN + cid_len) as u64)?;
        let mut header = [0; HEADER_LEN];
        file.read_exact_at(&mut header, start).ok()?;
        if header[..4] != MAGIC
            || header[4] != KIND_BLOCK
            || usize::from(u16::from_le_bytes([header[5], header[6]])) != cid_len
            || u32::from_le_bytes([header[7], header[8], header[9], header[10]]) != loc.len
        {
            return None;
        }
        let mut rec = vec![0; HEADER_LEN + cid_len + len + CRC_LEN];
        file.read_exact_at(&mut rec, start).ok()?;
        let crc_at = rec.len() - CRC_LEN;
        (crc32fast::hash(&rec[..crc_at]).to_le_bytes() == rec[crc_at..])
            .then_some((rec, HEADER_LEN + cid_len))
    });
    let Some((mut rec, data_at)) = found else {
        return Err(std::io::Error::other(
            "no block record at the indexed offset",
        ));
    };
    let crc_at = rec.len() - CRC_LEN;
    rec[data_at..crc_at].fill(0);
    let crc = crc32fast::hash(&rec[..crc_at]).to_le_bytes();
    rec[crc_at..].copy_from_slice(&crc);
    file.write_all_at(&rec[data_at..], loc.off)?;
    file.sync_data()
}

/// At open, for a block a tombstone of the active segment deleted: overwrites its data
/// (see [`scrub_at`]) unless it is all zeros already. `true` if it had to.
pub(super) fn scrub_leftover(
    root: &Path,
    active_id: u32,
    active: &Arc<File>,
    loc: Loc,
) -> std::io::Result<bool> {
    let file = segment_file(root, active_id, active, loc)?;
    let mut data = vec![0; loc.len as usize];
    file.read_exact_at(&mut data, loc.off)?;
    if data.iter().all(|&b| b == 0) {
        return Ok(false);
    }
    scrub_at(root, active_id, active, loc)?;
    Ok(true)
}
