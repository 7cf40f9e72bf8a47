//! What only the segment store can show: the index rebuilt from the segments at reopen
//! (deletes and rotation included), a delete's bytes overwritten on disk (and at open, when
//! a crash came between the tombstone and the overwrite), torn tails cut off, mid-file damage skipped without
//! losing later blocks, the directory lock, group commit under concurrent writers, and the
//! import of an `FsStore` directory. The conformance suite runs in `conformance`,
//! the kill -9 test in `segment_crash`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ehr_store::cids::sha256_multihash;
use ehr_store::testing::test_bytes;
use ehr_store::{BlobStore, Cid, Error, FsStore, SegmentOptions, SegmentStore, raw_cid};

/// Bytes of a record before the CID (magic, kind, CID length, data length).
const HEADER_LEN: u64 = 11;

fn tiny(segment_size: u64) -> SegmentOptions {
    SegmentOptions {
        segment_size,
        ..SegmentOptions::default()
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some("seg".as_ref()))
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, at: u64, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

/// Puts `n` blocks one after another (one batch each), returning their bytes and CIDs.
async fn put_each(store: &SegmentStore, n: u64, seed: u64) -> Vec<(Cid, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..n {
        let data = test_bytes(500 + 97 * i as usize, seed + i);
        out.push((store.put(&data).await.unwrap(), data));
    }
    out
}

async fn assert_all_readable(store: &SegmentStore, blocks: &[(Cid, Vec<u8>)]) {
    for (cid, data) in blocks {
        assert_eq!(&store.get(cid).await.unwrap(), data, "{cid}");
        assert!(store.has(cid).await.unwrap());
    }
}

#[tokio::test]
async fn reopen_finds_every_put_and_delete_across_rotated_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open_with(dir.path(), tiny(4096)).unwrap();
    let blocks = put_each(&store, 40, 100).await;
    // Deleted long after they were put: the tombstones land in later segments.
    let (deleted, kept): (Vec<_>, Vec<_>) = blocks
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 4 == 0);
    for (_, (cid, _)) in &deleted {
        store.delete(cid).await.unwrap();
    }
    // Deleting an absent block writes nothing.
    let syncs = store.syncs();
    store.delete(&raw_cid(b"never stored")).await.unwrap();
    assert_eq!(store.syncs(), syncs);
    let files = segments(dir.path());
    assert!(files.len() > 5, "rotated into {} segments", files.len());
    drop(store);

    let store = SegmentStore::open_with(dir.path(), tiny(4096)).unwrap();
    let rec = store.recovery().clone();
    assert_eq!(rec.segments, files.len());
    assert_eq!(rec.records, blocks.len() + deleted.len());
    assert_eq!((rec.skipped_bytes, rec.torn_bytes), (0, 0));
    let kept: Vec<_> = kept.into_iter().map(|(_, b)| b).collect();
    assert_all_readable(&store, &kept).await;
    assert_eq!(store.len(), kept.len());
    for (_, (cid, _)) in &deleted {
        assert!(!store.has(cid).await.unwrap());
        assert!(matches!(store.get(cid).await, Err(Error::NotFound { .. })));
    }
    // A deleted block put again after reopen is back, and stays back.
    let (cid, data) = &deleted[0].1;
    store.put_block(cid, data).await.unwrap();
    drop(store);
    let store = SegmentStore::open_with(dir.path(), tiny(4096)).unwrap();
    assert_eq!(&store.get(cid).await.unwrap(), data);
    assert_all_readable(&store, &kept).await;
    // Writes go on at the end of the last segment (or in later ones), never in older ones.
    let before = segments(dir.path());
    let sizes: Vec<_> = before
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    let more = put_each(&store, 6, 9000).await;
    for (cid, _) in &more {
        assert!(store.location(cid).unwrap().0 >= *before.last().unwrap());
    }
    for (p, size) in before.iter().zip(&sizes).rev().skip(1) {
        assert_eq!(
            std::fs::metadata(p).unwrap().len(),
            *size,
            "{}",
            p.display()
        );
    }
    assert!(
        segments(dir.path()).len() > before.len(),
        "6 more blocks fill 4 KiB"
    );
    drop(store);
    let store = SegmentStore::open_with(dir.path(), tiny(4096)).unwrap();
    assert_all_readable(&store, &more).await;
}

/// Whether `needle` occurs anywhere in the store's segment files.
fn on_disk(dir: &Path, needle: &[u8]) -> bool {
    segments(dir).iter().any(|p| {
        std::fs::read(p)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
    })
}

#[tokio::test]
async fn a_delete_removes_the_blocks_bytes_from_disk_in_sealed_and_active_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open_with(dir.path(), tiny(4096)).unwrap();
    let blocks = put_each(&store, 30, 700).await;
    // One block in a sealed segment (it has a hint), one in the active segment, and one
    // put and deleted by concurrent calls that may share a batch.
    let (old, newest) = (&blocks[0], &blocks[29]);
    assert!(store.location(&old.0).unwrap().0 != store.location(&newest.0).unwrap().0);
    let secret = test_bytes(800, 4242);
    let secret_cid = raw_cid(&secret);
    let (put, del) = tokio::join!(
        store.put_block(&secret_cid, &secret),
        store.delete(&secret_cid)
    );
    put.unwrap();
    del.unwrap();
    store.delete(&secret_cid).await.unwrap();
    for (cid, data) in [old, newest] {
        assert!(on_disk(dir.path(), data));
        store.delete(cid).await.unwrap();
        // Gone from the index at once, and its bytes from every segment file.
        assert!(matches!(store.get(cid).await, Err(Error::NotFound { .. })));
        assert!(!on_disk(dir.path(), data), "{cid} still on disk");
    }
    assert!(
        !on_disk(dir.path(), &secret),
        "a block deleted in its own batch"
    );
    let kept = &blocks[1..29];
    assert_all_readable(&store, kept).await;
    drop(store);

    // Reopened (the sealed segments from their hints): no damage seen, the rest intact.
    let store = SegmentStore::open_with(dir.path(), tiny(4096)).unwrap();
    let rec = store.recovery().clone();
    assert!(rec.from_hints > 0, "{rec:?}");
    assert_eq!((rec.skipped_bytes, rec.torn_bytes), (0, 0));
    assert_all_readable(&store, kept).await;
    assert_eq!(store.len(), kept.len());
    for (cid, _) in [old, newest] {
        assert!(!store.has(cid).await.unwrap());
    }
    // Without the hints (every segment scanned and CRC-checked): the same.
    drop(store);
    for p in std::fs::read_dir(dir.path()).unwrap() {
        let p = p.unwrap().path();
        if p.extension() == Some("hint".as_ref()) {
            std::fs::remove_file(p).unwrap();
        }
    }
    let store = SegmentStore::open_with(dir.path(), tiny(4096)).unwrap();
    let rec = store.recovery().clone();
    assert_eq!(
        (rec.from_hints, rec.skipped_bytes, rec.torn_bytes),
        (0, 0, 0)
    );
    assert_all_readable(&store, kept).await;
    assert_eq!(store.len(), kept.len());
    // A deleted block put again is back.
    store.put_block(&old.0, &old.1).await.unwrap();
    assert_eq!(store.get(&old.0).await.unwrap(), old.1);
}

#[tokio::test]
async fn a_crash_between_a_deletes_tombstone_and_its_overwrite_leaves_the_bytes_only_until_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open(dir.path()).unwrap();
    let secret = test_bytes(900, 77);
    let secret_cid = raw_cid(&secret);
    let kept = test_bytes(500, 78);
    let kept_cid = raw_cid(&kept);
    store.put_block(&secret_cid, &secret).await.unwrap();
    store.put_block(&kept_cid, &kept).await.unwrap();
    drop(store);
    // The crash: the delete's tombstone is durable, the overwrite never ran.
    let seg = segments(dir.path()).pop().unwrap();
    let magic = std::fs::read(&seg).unwrap()[..4].to_vec();
    let cid = secret_cid.to_bytes();
    let mut tombstone = magic;
    tombstone.push(2);
    tombstone.extend_from_slice(&(cid.len() as u16).to_le_bytes());
    tombstone.extend_from_slice(&0u32.to_le_bytes());
    tombstone.extend_from_slice(&cid);
    let crc = crc32fast::hash(&tombstone);
    tombstone.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(tombstone.len() as u64, HEADER_LEN + cid.len() as u64 + 4);
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&tombstone)
        .unwrap();
    assert!(on_disk(dir.path(), &secret));

    let store = SegmentStore::open(dir.path()).unwrap();
    assert_eq!(store.recovery().scrubbed, 1, "{:?}", store.recovery());
    assert_eq!(store.recovery().skipped_bytes, 0);
    assert!(!on_disk(dir.path(), &secret), "the deleted bytes are gone");
    assert!(matches!(
        store.get(&secret_cid).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.get(&kept_cid).await.unwrap(), kept);
    drop(store);
    // Once overwritten, the next open has nothing to do and sees no damage.
    let store = SegmentStore::open(dir.path()).unwrap();
    let rec = store.recovery().clone();
    assert_eq!((rec.scrubbed, rec.skipped_bytes, rec.torn_bytes), (0, 0, 0));
    assert_eq!(store.get(&kept_cid).await.unwrap(), kept);
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_the_store_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open(dir.path()).unwrap();
    let blocks = put_each(&store, 5, 200).await;
    let seg = store.location(&blocks[0].0).unwrap().0;
    drop(store);
    let len = std::fs::metadata(&seg).unwrap().len();

    // What a crash in the middle of a batch leaves: the first 300 bytes of a record (magic
    // and a plausible header) followed by whatever was in the page.
    let partial = std::fs::read(&seg).unwrap()[..300].to_vec();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&partial).unwrap();
    f.write_all(&[0u8; 1000]).unwrap();
    drop(f);

    let store = SegmentStore::open(dir.path()).unwrap();
    assert_eq!(store.recovery().torn_bytes, 1300);
    assert_eq!(store.recovery().skipped_bytes, 0);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len, "truncated");
    assert_all_readable(&store, &blocks).await;
    let more = put_each(&store, 2, 300).await;
    drop(store);
    let store = SegmentStore::open(dir.path()).unwrap();
    assert_eq!(store.recovery().torn_bytes, 0);
    assert_all_readable(&store, &blocks).await;
    assert_all_readable(&store, &more).await;

    // The last record cut in half: that block is gone, and putting it again brings it back.
    let (last, last_data) = more.last().unwrap();
    let (_, off, _) = store.location(last).unwrap();
    drop(store);
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(off + 10)
        .unwrap();
    let store = SegmentStore::open(dir.path()).unwrap();
    assert!(store.recovery().torn_bytes > 0);
    assert!(matches!(store.get(last).await, Err(Error::NotFound { .. })));
    assert_all_readable(&store, &blocks).await;
    store.put_block(last, last_data).await.unwrap();
    drop(store);
    let store = SegmentStore::open(dir.path()).unwrap();
    assert_eq!(&store.get(last).await.unwrap(), last_data);
}

#[tokio::test]
async fn damaged_data_mid_file_is_refused_then_skipped_and_later_blocks_survive() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open(dir.path()).unwrap();
    let blocks = put_each(&store, 6, 400).await;
    let (cid, data) = blocks[2].clone();
    let (seg, off, len) = store.location(&cid).unwrap();
    assert_eq!(len, data.len());
    let seg_len = std::fs::metadata(&seg).unwrap().len();
    flip(&seg, off + len as u64 / 2, 0x10);

    // In this process: HashMismatch naming the CID and the file.
    let err = store.get(&cid).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::HashMismatch { .. }), "{msg}");
    assert!(msg.contains(&cid.to_string()), "{msg}");
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {off}")), "{msg}");
    assert!(
        !store.has(&cid).await.unwrap(),
        "a damaged block is dropped from the index"
    );
    drop(store);

    // After reopen the record's CRC fails: it is skipped (NotFound), the rest is readable.
    let store = SegmentStore::open(dir.path()).unwrap();
    assert!(store.recovery().skipped_bytes > len as u64);
    assert_eq!(store.recovery().torn_bytes, 0);
    assert!(matches!(store.get(&cid).await, Err(Error::NotFound { .. })));
    let others: Vec<_> = blocks.iter().filter(|b| b.0 != cid).cloned().collect();
    assert_all_readable(&store, &others).await;
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        seg_len,
        "nothing cut off"
    );

    // Putting the damaged block again writes it again.
    let syncs = store.syncs();
    store.put_block(&cid, &data).await.unwrap();
    assert_eq!(store.syncs(), syncs + 1);
    assert_eq!(store.get(&cid).await.unwrap(), data);
    drop(store);
    let store = SegmentStore::open(dir.path()).unwrap();
    assert_all_readable(&store, &blocks).await;
}

#[tokio::test]
async fn a_damaged_block_is_repaired_by_a_put_without_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open(dir.path()).unwrap();
    let blocks = put_each(&store, 3, 500).await;
    let (cid, data) = &blocks[1];
    let (seg, off, _) = store.location(cid).unwrap();
    flip(&seg, off, 1);
    assert!(matches!(
        store.get(cid).await,
        Err(Error::HashMismatch { .. })
    ));
    store.put_block(cid, data).await.unwrap();
    assert_eq!(&store.get(cid).await.unwrap(), data);
    assert_ne!(store.location(cid).unwrap().1, off, "written again");
    assert_all_readable(&store, &blocks).await;
}

#[tokio::test]
async fn a_damaged_length_mid_file_does_not_hide_later_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open(dir.path()).unwrap();
    let blocks = put_each(&store, 6, 600).await;
    let (cid, _) = &blocks[1];
    let (seg, off, _) = store.location(cid).unwrap();
    let cid_len = cid.to_bytes().len() as u64;
    // 4 MiB more data length: the record now seems to run far past the file's end.
    flip(&seg, off - cid_len - HEADER_LEN + 7 + 2, 0x40);
    drop(store);

    let store = SegmentStore::open(dir.path()).unwrap();
    assert!(store.recovery().skipped_bytes > 0);
    assert!(matches!(store.get(cid).await, Err(Error::NotFound { .. })));
    let others: Vec<_> = blocks.iter().filter(|b| &b.0 != cid).cloned().collect();
    assert_all_readable(&store, &others).await;
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open(dir.path()).unwrap();
    let cid = store.put(b"held").await.unwrap();
    let err = SegmentStore::open(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Locked { .. }), "{msg}");
    assert!(msg.contains("is in use by another process"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    // A clone is the same store; dropping every handle frees the directory.
    let clone = store.clone();
    drop(store);
    assert!(
        SegmentStore::open(dir.path()).is_err(),
        "a clone still holds it"
    );
    drop(clone);
    let store = SegmentStore::open(dir.path()).unwrap();
    assert_eq!(store.get(&cid).await.unwrap(), b"held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_share_syncs_and_all_survive_reopen() {
    const WRITERS: u64 = 64;
    const EACH: u64 = 16;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SegmentStore::open(dir.path()).unwrap());
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..EACH {
                // Every fourth block is shared by all writers: put 64 times, stored once.
                let seed = if i % 4 == 0 { i } else { 10_000 * (w + 1) + i };
                let data = test_bytes(1000 + 37 * i as usize, seed);
                let cid = store.put(&data).await.unwrap();
                assert_eq!(store.get(&cid).await.unwrap(), data);
                mine.push((cid, data));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let puts = WRITERS * EACH;
    let syncs = store.syncs();
    eprintln!("{puts} puts, {syncs} syncs");
    assert!(
        syncs < puts / 2,
        "{syncs} syncs for {puts} puts: no group commit"
    );
    let distinct = (WRITERS * EACH * 3 / 4 + EACH / 4) as usize;
    assert_eq!(store.len(), distinct);
    drop(store);

    let store = SegmentStore::open(dir.path()).unwrap();
    assert_eq!(store.len(), distinct);
    assert_eq!(
        store.recovery().records,
        distinct,
        "each shared block written once"
    );
    assert_all_readable(&store, &all).await;
}

#[tokio::test]
async fn import_fs_copies_every_block_of_an_fs_store() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FsStore::open(dir.path().join("flatfs")).unwrap();
    let mut blocks = Vec::new();
    for i in 0..20u64 {
        let data = test_bytes(3000 + i as usize, 700 + i);
        blocks.push((fs.put(&data).await.unwrap(), data));
    }
    // A dag-pb block under its CIDv0 (flatfs keys by multihash alone).
    let leaf = ehr_store::pb::encode_leaf(Some(b"dag-pb leaf"));
    let v0 = Cid::new_v0(sha256_multihash(&leaf)).unwrap();
    fs.put_block(&v0, &leaf).await.unwrap();
    blocks.push((v0, leaf));
    // Not blocks: a leftover temp file and a file at the top.
    let shard = fs.path_of(&blocks[0].0).parent().unwrap().to_path_buf();
    std::fs::write(shard.join(".X.data.1.2.tmp"), b"partial").unwrap();
    std::fs::write(
        dir.path().join("flatfs/SHARDING"),
        b"/repo/flatfs/shard/v1/next-to-last/2",
    )
    .unwrap();

    let seg = SegmentStore::open(dir.path().join("segments")).unwrap();
    let (s, root) = (seg.clone(), fs.root().to_path_buf());
    let n = tokio::task::spawn_blocking(move || s.import_fs(&root))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, blocks.len());
    assert_all_readable(&seg, &blocks).await;
    assert!(
        seg.syncs() < blocks.len() as u64 / 2,
        "imports are batched: {}",
        seg.syncs()
    );
    // Again: nothing new to write.
    let syncs = seg.syncs();
    let (s, root) = (seg.clone(), fs.root().to_path_buf());
    let n = tokio::task::spawn_blocking(move || s.import_fs(&root))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((n, seg.syncs()), (blocks.len(), syncs));

    // A flatfs file whose bytes do not match its name stops the import, naming the file.
    let bad = fs.path_of(&blocks[3].0);
    flip(&bad, 0, 1);
    let other = SegmentStore::open(dir.path().join("other")).unwrap();
    let err = other.import_fs(fs.root()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::HashMismatch { .. }), "{msg}");
    assert!(msg.contains(&bad.display().to_string()), "{msg}");
}

#[tokio::test]
async fn an_oversized_block_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open(dir.path()).unwrap();
    let data = vec![7u8; ehr_store::segment::MAX_BLOCK_LEN + 1];
    let err = store.put(&data).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert_eq!(store.syncs(), 0);
    let ok = vec![7u8; ehr_store::segment::MAX_BLOCK_LEN];
    let cid = store.put(&ok).await.unwrap();
    assert_eq!(store.get(&cid).await.unwrap().len(), ok.len());
}

/// `put_own_block` (a block this process just built) skips hashing on the way in, not on
/// the way out: stored under the right CID it reads back; under a wrong one, the read
/// refuses it. `put_block` refuses the wrong one at once.
#[tokio::test]
async fn an_own_block_is_not_hashed_going_in_but_is_coming_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open_with(dir.path(), tiny(4096)).unwrap();
    let good = b"a fragment this process built".to_vec();
    let cid = ehr_store::raw_cid(&good);
    store.put_own_block(&cid, &good).await.unwrap();
    assert_eq!(store.get(&cid).await.unwrap(), good);
    let wrong = ehr_store::raw_cid(b"something else");
    assert!(store.put_block(&wrong, &good).await.is_err());
    store.put_own_block(&wrong, &good).await.unwrap();
    assert!(matches!(
        store.get(&wrong).await,
        Err(ehr_store::Error::HashMismatch { .. })
    ));
}
