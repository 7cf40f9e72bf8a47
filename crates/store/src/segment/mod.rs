//! An embedded backend that appends blocks to a few large segment files with group commit,
//! instead of creating one file per block ([`FsStore`](crate::FsStore)): one `fdatasync`
//! acknowledges every write waiting at that moment, and no inode is created per block.
//!
//! # On disk
//!
//! `<root>/NNNNNNNN.seg` (eight decimal digits, starting at `00000001`) are append-only
//! logs of records; `<root>/NNNNNNNN.hint` is the hint of a sealed segment (see
//! [Index and its cost](#index-and-its-cost)); `<root>/LOCK` is held with an exclusive lock while a store is open, so a
//! second open (in this process or another) fails with [`Error::Locked`]. A record is
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | magic `89 45 48 52` (`\x89EHR`) |
//! | 1 | kind: 1 = block, 2 = tombstone (a delete) |
//! | 2 | CID length, little-endian |
//! | 4 | data length, little-endian (0 for a tombstone; at most [`MAX_BLOCK_LEN`]) |
//! | CID length | the CID's binary form |
//! | data length | the block |
//! | 4 | CRC-32 (IEEE) of everything before it, little-endian |
//!
//! # Writes: one writer thread, group commit
//!
//! `put_block` verifies the bytes against the CID, returns at once if the block is already
//! indexed, and otherwise hands the encoded record to the one writer thread. The writer
//! waits for a record, takes every other one already waiting (up to
//! [`SegmentOptions::max_batch`] bytes), writes them with one `write`, calls `fdatasync`
//! once, then updates the index and answers every waiter. Readers therefore only ever see
//! durable blocks. Puts of one block in one batch are written once. If the write or the
//! sync fails, every waiter of the batch gets the error and nothing is indexed; after a
//! failed sync (whose dirty pages the kernel may have dropped) the writer refuses further
//! writes until the store is reopened, while reads go on. A delete appends a tombstone the
//! same way and drops the index entry after the sync; then the writer overwrites the deleted
//! block's data with zeros in place (fixing the record's CRC, so the record still parses and
//! the tombstone after it still deletes it) and syncs that, before the delete returns: a
//! deleted block (a custodian's key share) does not stay on disk until a compaction. The
//! record's header and CID stay. A crash between the tombstone and the overwrite leaves the
//! bytes only until the next open, which overwrites them ([`Recovery::scrubbed`]): the
//! writer overwrites before it takes its next batch, so such a tombstone is in the active
//! segment, which open reads whole. When a batch would take the active
//! segment past [`SegmentOptions::segment_size`] the writer syncs it, creates the next one
//! and fsyncs the directory; a batch larger than the limit gets a segment of its own.
//!
//! # Crash semantics
//!
//! An acknowledged put or delete has been `fdatasync`ed: it survives `kill -9` and power
//! loss. A crash during a batch leaves a torn tail (a partial record, or records of the
//! unacknowledged batch); at open, a bad record (wrong CRC, impossible lengths, length past
//! the end of the file) that no valid record follows is a torn tail and is cut off by
//! truncating the last segment. A bad record that valid records follow is mid-file damage:
//! its bytes are skipped (a warning names the file, offset and length, nothing else) and
//! every later record is still read, so acknowledged blocks after it stay readable. A
//! skipped or cut-off block is simply absent (`get` is [`Error::NotFound`]) and a later put
//! of it writes it again. Damage that keeps the CRC valid is impossible in practice; damage
//! found by `get` (the bytes no longer hash to the CID) is [`Error::HashMismatch`] naming
//! the CID, the segment file and the offset, and drops the block from the index so that a
//! re-put repairs it (after a reopen the CRC check of the active segment skips it and it is
//! `NotFound`; in a sealed segment indexed from its hint it is `HashMismatch` again).
//!
//! # Index and its cost
//!
//! The index (multihash bytes → segment, offset, length; like flatfs, the same bytes under
//! raw and dag-pb codecs are one block) lives in memory, about 100 bytes per block, and is
//! rebuilt at open, segment by segment in order, so a tombstone in a later segment still
//! deletes a block of an earlier one. Sealed segments (every one but the last) never change,
//! so when the writer seals one (after syncing it and creating the next) it writes
//! `NNNNNNNN.hint` beside it, crash-safely: the segment's length and every record in order
//! (kind, multihash, data offset, length) under a CRC-32; the format is in `hint.rs`. Open
//! applies a sealed segment's hint instead of reading it when the hint's CRC, segment id and
//! length check out; otherwise (no hint: a store of an older version, or a crash between
//! sealing and writing the hint; a damaged, truncated or stale one) it reads and CRC-checks
//! the segment as before and writes its hint for the next open. The last (active) segment is
//! always read whole, since that is where a torn tail can be, and a hint of it is removed.
//! [`Recovery`] says how many segments came from hints. Open therefore reads ~50 bytes per
//! block of the sealed segments plus the active segment (at most
//! [`SegmentOptions::segment_size`]), and memory still grows with the number of blocks;
//! each segment keeps one open file descriptor. A hint does not re-check the sealed
//! segment's CRCs: damage that appears in a sealed segment after it was sealed is found by
//! `get` ([`Error::HashMismatch`], again after a reopen, until the block is put again), not
//! at open. There is no compaction:
//! a deleted block's record (its header, CID and zeroed data) and its tombstone stay in the
//! segments until a future compaction rewrites them. Such a compaction must never drop a tombstone while the record
//! it deletes still exists in an older segment, or the block would come back, and must
//! rewrite or remove the hints of the segments it replaces.

mod files;
mod format;
mod hint;
mod writer;

use files::*;
use format::*;
use hint::*;
use writer::*;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use cid::Cid;
use tokio::sync::oneshot;

use crate::cids::{check_supported, verify};
use crate::{BlobStore, Error, Result};

/// The largest block a record holds (16 MiB: IPFS nodes refuse blocks over 1 MiB or 2 MiB).
pub const MAX_BLOCK_LEN: usize = 16 << 20;

const MAGIC: [u8; 4] = *b"\x89EHR";
const KIND_BLOCK: u8 = 1;
const KIND_TOMBSTONE: u8 = 2;
/// Magic, kind, CID length (u16), data length (u32).
const HEADER_LEN: usize = 4 + 1 + 2 + 4;
const CRC_LEN: usize = 4;
const LOCK_FILE: &str = "LOCK";

/// Tuning of a [`SegmentStore`]; [`Default`] is what [`SegmentStore::open`] uses.
#[derive(Clone, Debug)]
pub struct SegmentOptions {
    /// A new segment file is started when a batch would take the active one past this many
    /// bytes (default 64 MiB).
    pub segment_size: u64,
    /// The most bytes of records one batch (one write, one sync) takes (default 4 MiB); a
    /// single larger record is a batch of its own.
    pub max_batch: usize,
    /// Blocks up to this size are read and re-hashed on the calling task; larger ones on
    /// tokio's blocking pool so that a worker thread is not held for long (default 64 KiB).
    /// Measured (`cargo bench -p ehr-store --bench store -- get_`): a 10 KB get from the
    /// page cache takes ~10 µs inline and ~21 µs through `spawn_blocking`; a 256 KiB one
    /// ~195 µs inline, too long to hold a worker, against ~245 µs.
    pub inline_read_max: usize,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            segment_size: 64 << 20,
            max_batch: 4 << 20,
            inline_read_max: 64 << 10,
        }
    }
}

/// What [`SegmentStore::open`] found while rebuilding the index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files opened (read whole, or indexed from their hint).
    pub segments: usize,
    /// Sealed segments indexed from their hint file instead of being read.
    pub from_hints: usize,
    /// Hint files written at open, for sealed segments that had no good one.
    pub hints_written: usize,
    /// Valid records (blocks and tombstones) read or taken from hints.
    pub records: usize,
    /// Bytes of mid-file damage skipped (their blocks are absent).
    pub skipped_bytes: u64,
    /// Bytes of torn tail cut off the last segment (an unacknowledged batch), or left
    /// unread at the end of an older one.
    pub torn_bytes: u64,
    /// Deleted blocks whose bytes a crash had left on disk (between a delete's tombstone
    /// and its overwrite), overwritten with zeros now.
    pub scrubbed: usize,
}

/// Where a block's data lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc {
    seg: u32,
    off: u64,
    len: u32,
}

/// The index and the read handles, behind one lock.
#[derive(Default)]
struct State {
    index: HashMap<Box<[u8]>, Loc>,
    files: HashMap<u32, Arc<File>>,
}

/// What the writer thread and the readers share.
struct Shared {
    root: PathBuf,
    opts: SegmentOptions,
    state: RwLock<State>,
    syncs: AtomicU64,
    recovery: Recovery,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        // The writer updates the index only after a successful sync and never panics
        // halfway through an update, so a poisoned lock still holds a consistent index.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Owns the channel to the writer; dropping the last handle stops the writer and waits
/// for it, so the directory lock is free again when the store is gone.
struct Inner {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Op>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(writer) = self.writer.take() {
            // The writer syncs what is still queued (ops of cancelled puts) and exits.
            let _ = writer.join();
        }
    }
}

/// Blocks appended to segment files with group commit; see the [module docs](self).
/// Cloning gives another handle to the same store. Dropping the last handle waits for the
/// writer thread to sync what is still queued and exit, so the directory can be opened
/// again as soon as the drop returns.
#[derive(Clone)]
pub struct SegmentStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SegmentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentStore")
            .field("root", &self.inner.shared.root)
            .field("blocks", &self.inner.shared.read().index.len())
            .finish()
    }
}

/// One request to the writer.
struct Op {
    /// Multihash bytes.
    key: Box<[u8]>,
    /// The encoded record.
    record: Vec<u8>,
    /// `Some((offset of the data in the record, length))` for a block, `None` for a
    /// tombstone.
    data: Option<(usize, u32)>,
    reply: Reply,
}

/// Where the writer sends an op's outcome: an async caller or a blocking one.
enum Reply {
    Async(oneshot::Sender<Result<()>>),
    Blocking(mpsc::Sender<Result<()>>),
}

impl Reply {
    fn send(self, result: Result<()>) {
        // A caller that stopped waiting (a dropped future) does not care.
        match self {
            Reply::Async(tx) => drop(tx.send(result)),
            Reply::Blocking(tx) => drop(tx.send(result)),
        }
    }
}

impl SegmentStore {
    /// Opens (creating if needed) a segment store at `root` with default options.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Self::open_with(root, SegmentOptions::default())
    }

    /// Opens (creating if needed) a segment store at `root`: locks it, reads every segment
    /// to rebuild the index (cutting off a torn tail), and starts the writer thread.
    pub fn open_with(root: impl Into<PathBuf>, opts: SegmentOptions) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let lock_path = root.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Error::Locked { path: root }),
            Err(TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }

        let mut ids = segment_ids(&root)?;
        if ids.is_empty() {
            create_segment(&root, 1).map_err(|(path, e)| Error::io(path, e))?;
            ids.push(1);
        }
        let mut state = State::default();
        let mut recovery = Recovery::default();
        let last = *ids.last().expect("at least one segment");
        let mut end = 0;
        let mut active_log = HintLog::default();
        let mut deleted_in_active = Vec::new();
        // One buffer for every segment: a fresh one per segment costs more in zeroed pages
        // than reading it does.
        let mut buf = Vec::new();
        for &id in &ids {
            let path = segment_path(&root, id);
            let file = OpenOptions::new()
                .read(true)
                .write(id == last)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            recovery.segments += 1;
            if id == last {
                remove_hint(&root, id);
            } else {
                let seg_len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
                // An unreadable hint is no worse than a missing one: scan.
                if let Ok(hint) = fs::read(hint_path(&root, id))
                    && apply_hint(&hint, id, seg_len, &mut state.index, &mut recovery)
                {
                    recovery.from_hints += 1;
                    state.files.insert(id, Arc::new(file));
                    continue;
                }
            }
            buf.clear();
            (&file)
                .read_to_end(&mut buf)
                .map_err(|e| Error::io(&path, e))?;
            let mut log = HintLog::default();
            let mut deleted = Vec::new();
            let valid = scan(
                &buf,
                id,
                &path,
                &mut state.index,
                &mut recovery,
                &mut log,
                &mut deleted,
            );
            recovery.torn_bytes += (buf.len() - valid) as u64;
            if id == last {
                if valid < buf.len() {
                    tracing::warn!(
                        segment = %path.display(),
                        offset = valid,
                        len = buf.len() - valid,
                        "cutting off the torn tail of an unacknowledged batch"
                    );
                    file.set_len(valid as u64)
                        .and_then(|()| file.sync_all())
                        .map_err(|e| Error::io(&path, e))?;
                }
                end = valid as u64;
                active_log = log;
                deleted_in_active = deleted;
            } else {
                if valid < buf.len() {
                    tracing::warn!(
                        segment = %path.display(),
                        offset = valid,
                        len = buf.len() - valid,
                        "unreadable bytes at the end of an older segment are ignored"
                    );
                }
                // A sealed segment without a (good) hint: an older version's store, or a
                // crash between sealing it and writing its hint. Write it for next time.
                let hint = log.encode(id, buf.len() as u64, (buf.len() - valid) as u64);
                if write_hint(&root, id, &hint) {
                    recovery.hints_written += 1;
                }
            }
            state.files.insert(id, Arc::new(file));
        }
        let active = state.files[&last].clone();
        // A delete overwrites the block's bytes after its tombstone is durable and before
        // the writer takes the next batch, so a crash in between leaves the tombstone in
        // the active segment: overwrite what such a crash left.
        for loc in deleted_in_active {
            match writer::scrub_leftover(&root, last, &active, loc) {
                Ok(true) => recovery.scrubbed += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    segment = loc.seg,
                    offset = loc.off,
                    error = %e,
                    "could not overwrite a deleted block a crash left on disk"
                ),
            }
        }

        let shared = Arc::new(Shared {
            root,
            opts,
            state: RwLock::new(state),
            syncs: AtomicU64::new(0),
            recovery,
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            shared: shared.clone(),
            rx,
            _lock: lock,
            active_id: last,
            active,
            end,
            hint: active_log,
            failed: None,
        };
        let handle = std::thread::Builder::new()
            .name("segment-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::io(&shared.root, e))?;
        Ok(SegmentStore {
            inner: Arc::new(Inner {
                shared,
                tx: Some(tx),
                writer: Some(handle),
            }),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.shared.root
    }

    /// What the last open found while rebuilding the index.
    pub fn recovery(&self) -> &Recovery {
        &self.inner.shared.recovery
    }

    /// How many `fdatasync`s the writer has made since open (one per batch): fewer than
    /// puts when writes were grouped.
    pub fn syncs(&self) -> u64 {
        self.inner.shared.syncs.load(Ordering::Relaxed)
    }

    /// Number of blocks in the index.
    pub fn len(&self) -> usize {
        self.inner.shared.read().index.len()
    }

    /// Whether the store holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where block `cid`'s data lies: the segment file, the offset of the data in it and
    /// its length (for tools and tests). `None` if the block is not indexed.
    pub fn location(&self, cid: &Cid) -> Option<(PathBuf, u64, usize)> {
        let loc = *self
            .inner
            .shared
            .read()
            .index
            .get(cid.hash().to_bytes().as_slice())?;
        Some((
            segment_path(&self.inner.shared.root, loc.seg),
            loc.off,
            loc.len as usize,
        ))
    }

    /// Copies every block of a flatfs directory written by [`FsStore`](crate::FsStore)
    /// (`<fs_root>/<shard>/<KEY>.data`) into this store, each verified against its key, and
    /// returns how many blocks it found there (already present ones included). Blocks are
    /// stored under the raw-codec CIDv1 of their multihash, which also serves dag-pb reads.
    /// Stops at the first file whose bytes do not match its name, with
    /// [`Error::HashMismatch`] naming the file; running it again skips what it already
    /// copied. Blocking (file reads and waits for the writer): call it from a plain thread
    /// or `spawn_blocking`.
    pub fn import_fs(&self, fs_root: &Path) -> Result<usize> {
        let (tx, rx) = mpsc::channel();
        let (mut batch, mut batch_bytes, mut count) = (Vec::new(), 0usize, 0usize);
        // A batch is read first and then handed over at once, so the writer finds it
        // queued and syncs once for it, however the threads are scheduled meanwhile.
        let flush = |batch: &mut Vec<Op>| -> Result<()> {
            let n = batch.len();
            for op in batch.drain(..) {
                self.send(op)?;
            }
            for _ in 0..n {
                rx.recv()
                    .map_err(|_| Error::Task("segment writer stopped".into()))??;
            }
            Ok(())
        };
        for shard in sorted_dir(fs_root)? {
            if !shard.is_dir() {
                continue;
            }
            for path in sorted_dir(&shard)? {
                let Some(cid) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(crate::fs::key_cid)
                else {
                    continue;
                };
                let data = fs::read(&path).map_err(|e| Error::io(&path, e))?;
                verify(&cid, &data, Some(&path.display()))?;
                count += 1;
                if let Some(op) = self.put_op(&cid, &data, Reply::Blocking(tx.clone()))? {
                    batch_bytes += data.len();
                    batch.push(op);
                }
                if batch_bytes >= self.inner.shared.opts.max_batch {
                    flush(&mut batch)?;
                    batch_bytes = 0;
                }
            }
        }
        flush(&mut batch)?;
        Ok(count)
    }

    fn lookup(&self, cid: &Cid) -> Option<(Loc, Arc<File>)> {
        let state = self.inner.shared.read();
        let loc = *state.index.get(cid.hash().to_bytes().as_slice())?;
        Some((loc, state.files.get(&loc.seg)?.clone()))
    }

    /// The op that stores `data` under `cid` (already verified), or `None` if the block is
    /// already indexed.
    fn put_op(&self, cid: &Cid, data: &[u8], reply: Reply) -> Result<Option<Op>> {
        check_len(cid, data)?;
        let key: Box<[u8]> = cid.hash().to_bytes().into();
        if self.inner.shared.read().index.contains_key(&key) {
            return Ok(None);
        }
        let cid_bytes = cid.to_bytes();
        let record = encode(KIND_BLOCK, &cid_bytes, data);
        Ok(Some(Op {
            key,
            record,
            data: Some((HEADER_LEN + cid_bytes.len(), data.len() as u32)),
            reply,
        }))
    }

    fn send(&self, op: Op) -> Result<()> {
        self.inner
            .tx
            .as_ref()
            .expect("sender lives as long as the store")
            .send(op)
            .map_err(|_| Error::Task("segment writer stopped".into()))
    }

    async fn submit(&self, op: Op, rx: oneshot::Receiver<Result<()>>) -> Result<()> {
        self.send(op)?;
        rx.await
            .map_err(|_| Error::Task("segment writer stopped".into()))?
    }

    fn read_block(&self, cid: &Cid, loc: Loc, file: &File) -> Result<Vec<u8>> {
        let path = segment_path(&self.inner.shared.root, loc.seg);
        let mut data = vec![0; loc.len as usize];
        file.read_exact_at(&mut data, loc.off)
            .map_err(|e| Error::io(&path, e))?;
        let label = format!("{} at offset {}", path.display(), loc.off);
        if let Err(e) = verify(cid, &data, Some(&label)) {
            if matches!(e, Error::HashMismatch { .. }) {
                // Drop the damaged entry (unless a re-put already replaced it) so that a
                // put of the block writes it again.
                let mut state = self.inner.shared.write();
                let key = cid.hash().to_bytes();
                if state.index.get(key.as_slice()) == Some(&loc) {
                    state.index.remove(key.as_slice());
                }
            }
            return Err(e);
        }
        Ok(data)
    }
}

#[async_trait]
impl BlobStore for SegmentStore {
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        verify(cid, data, None)?;
        self.put_own_block(cid, data).await
    }

    async fn put_own_block(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        check_len(cid, data)?;
        check_supported(cid)?;
        let (tx, rx) = oneshot::channel();
        match self.put_op(cid, data, Reply::Async(tx))? {
            Some(op) => self.submit(op, rx).await,
            None => Ok(()),
        }
    }

    async fn get(&self, cid: &Cid) -> Result<Vec<u8>> {
        check_supported(cid)?;
        let (loc, file) = self.lookup(cid).ok_or_else(|| Error::NotFound {
            cid: Box::new(*cid),
        })?;
        if loc.len as usize <= self.inner.shared.opts.inline_read_max {
            return self.read_block(cid, loc, &file);
        }
        let (this, cid) = (self.clone(), *cid);
        tokio::task::spawn_blocking(move || this.read_block(&cid, loc, &file))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self
            .inner
            .shared
            .read()
            .index
            .contains_key(cid.hash().to_bytes().as_slice()))
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        let key: Box<[u8]> = cid.hash().to_bytes().into();
        if !self.inner.shared.read().index.contains_key(&key) {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        let op = Op {
            key,
            record: encode(KIND_TOMBSTONE, &cid.to_bytes(), &[]),
            data: None,
            reply: Reply::Async(tx),
        };
        self.submit(op, rx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_parses_back_and_any_flipped_bit_is_refused() {
        let cid = crate::cids::raw_cid(b"data");
        let rec = encode(KIND_BLOCK, &cid.to_bytes(), b"data");
        let r = parse(&rec, 0).expect("valid record");
        assert_eq!((r.kind, r.cid, r.end), (KIND_BLOCK, cid, rec.len()));
        assert_eq!(&rec[r.data_off..r.data_off + r.data_len as usize], b"data");
        for i in 0..rec.len() * 8 {
            let mut bad = rec.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(parse(&bad, 0).is_none(), "bit {i}");
        }
        assert!(parse(&rec[..rec.len() - 1], 0).is_none(), "short");
    }

    #[test]
    fn scan_skips_damage_that_valid_records_follow_and_stops_at_a_torn_tail() {
        let (a, b) = (crate::cids::raw_cid(b"a"), crate::cids::raw_cid(b"b"));
        let mut seg = encode(KIND_BLOCK, &a.to_bytes(), b"a");
        let damaged = seg.len();
        seg.extend_from_slice(&encode(KIND_BLOCK, &b.to_bytes(), b"b")[..7]);
        seg.extend_from_slice(b"garbage");
        let b_at = seg.len();
        seg.extend_from_slice(&encode(KIND_BLOCK, &b.to_bytes(), b"b"));
        seg.extend_from_slice(&encode(KIND_TOMBSTONE, &a.to_bytes(), b""));
        let tail = seg.len();
        seg.extend_from_slice(&encode(KIND_BLOCK, &a.to_bytes(), b"a")[..20]);

        let (mut index, mut rec) = (HashMap::new(), Recovery::default());
        let end = scan(
            &seg,
            1,
            Path::new("x"),
            &mut index,
            &mut rec,
            &mut HintLog::default(),
            &mut Vec::new(),
        );
        assert_eq!(
            end, tail,
            "the torn tail starts after the last valid record"
        );
        assert_eq!(rec.skipped_bytes, (b_at - damaged) as u64);
        assert_eq!(rec.records, 3);
        assert!(
            !index.contains_key(a.hash().to_bytes().as_slice()),
            "tombstoned"
        );
        let loc = index[b.hash().to_bytes().as_slice()];
        assert_eq!(&seg[loc.off as usize..][..loc.len as usize], b"b");
    }
}
