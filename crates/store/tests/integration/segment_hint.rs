//! Hint files of sealed segments: open indexes sealed segments from their hints (and only
//! the active one by a scan) with the same result as scanning every segment, later
//! tombstones still win, and a damaged, truncated, stale, misplaced or missing hint falls
//! back to the scan without losing a block (and is written again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ehr_store::testing::test_bytes;
use ehr_store::{BlobStore, Cid, Recovery, SegmentOptions, SegmentStore};

fn tiny() -> SegmentOptions {
    SegmentOptions {
        segment_size: 4096,
        ..SegmentOptions::default()
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(ext.as_ref()))
        .collect();
    v.sort();
    v
}

fn hint_of(seg: &Path) -> PathBuf {
    seg.with_extension("hint")
}

fn remove_hints(dir: &Path) {
    for h in files(dir, "hint") {
        std::fs::remove_file(h).unwrap();
    }
}

/// A store rotated through many 4 KiB segments: blocks put, some deleted long after (their
/// tombstones in later segments), one of those put again after its delete. Returns the
/// blocks present and the CIDs deleted.
async fn rolled_store(dir: &Path) -> (Vec<(Cid, Vec<u8>)>, Vec<Cid>) {
    let store = SegmentStore::open_with(dir, tiny()).unwrap();
    let mut blocks = Vec::new();
    for i in 0..60u64 {
        let data = test_bytes(300 + 53 * i as usize, 7000 + i);
        blocks.push((store.put(&data).await.unwrap(), data));
    }
    let mut deleted = Vec::new();
    for (i, (cid, _)) in blocks.iter().enumerate() {
        if i % 3 == 0 {
            store.delete(cid).await.unwrap();
            deleted.push(*cid);
        }
    }
    // Put, deleted, put again: present, whichever segments its records landed in.
    let (again, data) = blocks[0].clone();
    store.put_block(&again, &data).await.unwrap();
    deleted.retain(|c| *c != again);
    blocks.retain(|(c, _)| !deleted.contains(c));
    (blocks, deleted)
}

/// Everything open rebuilt: every block's location, plus the count.
async fn index_of(
    store: &SegmentStore,
    blocks: &[(Cid, Vec<u8>)],
    deleted: &[Cid],
) -> BTreeMap<String, (PathBuf, u64, usize)> {
    let mut index = BTreeMap::new();
    for (cid, data) in blocks {
        assert_eq!(&store.get(cid).await.unwrap(), data, "{cid}");
        index.insert(cid.to_string(), store.location(cid).unwrap());
    }
    for cid in deleted {
        assert!(!store.has(cid).await.unwrap(), "{cid} was deleted");
    }
    assert_eq!(store.len(), blocks.len());
    index
}

/// `rec` without the hint counters, to compare with a scan's.
fn scanned_part(rec: &Recovery) -> Recovery {
    Recovery {
        from_hints: 0,
        hints_written: 0,
        ..rec.clone()
    }
}

#[tokio::test]
async fn reopen_after_many_rolls_uses_the_hints_and_finds_what_a_scan_finds() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, deleted) = rolled_store(dir.path()).await;
    let segs = files(dir.path(), "seg");
    assert!(segs.len() > 10, "rotated into {} segments", segs.len());
    for seg in &segs[..segs.len() - 1] {
        assert!(
            hint_of(seg).exists(),
            "sealing {} wrote its hint",
            seg.display()
        );
    }
    assert!(
        !hint_of(segs.last().unwrap()).exists(),
        "the active one has none"
    );
    let written: Vec<_> = files(dir.path(), "hint")
        .iter()
        .map(|h| std::fs::read(h).unwrap())
        .collect();

    let store = SegmentStore::open_with(dir.path(), tiny()).unwrap();
    let hinted = store.recovery().clone();
    assert_eq!(hinted.segments, segs.len());
    assert_eq!(hinted.from_hints, segs.len() - 1, "every sealed segment");
    assert_eq!(hinted.hints_written, 0);
    let from_hints = index_of(&store, &blocks, &deleted).await;
    drop(store);

    // The same directory without hints: every segment scanned, the hints written again,
    // byte for byte what the writer wrote when it sealed them.
    remove_hints(dir.path());
    let store = SegmentStore::open_with(dir.path(), tiny()).unwrap();
    let scanned = store.recovery().clone();
    assert_eq!(
        (scanned.from_hints, scanned.hints_written),
        (0, segs.len() - 1)
    );
    assert_eq!(scanned_part(&hinted), scanned_part(&scanned));
    assert_eq!(index_of(&store, &blocks, &deleted).await, from_hints);
    let rewritten: Vec<_> = files(dir.path(), "hint")
        .iter()
        .map(|h| std::fs::read(h).unwrap())
        .collect();
    assert_eq!(rewritten, written);

    // Writes after a reopen from hints go on in the active segment, and seal into hints.
    let mut more = Vec::new();
    for i in 0..20u64 {
        let data = test_bytes(400 + 11 * i as usize, 90_000 + i);
        more.push((store.put(&data).await.unwrap(), data));
    }
    let (gone, _) = more.remove(3);
    store.delete(&gone).await.unwrap();
    drop(store);
    let store = SegmentStore::open_with(dir.path(), tiny()).unwrap();
    let segs = files(dir.path(), "seg");
    assert_eq!(store.recovery().from_hints, segs.len() - 1);
    let mut deleted = deleted;
    deleted.push(gone);
    let all: Vec<_> = blocks.iter().chain(&more).cloned().collect();
    index_of(&store, &all, &deleted).await;
}

#[tokio::test]
async fn a_bad_or_missing_hint_falls_back_to_the_scan_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, deleted) = rolled_store(dir.path()).await;
    let store = SegmentStore::open_with(dir.path(), tiny()).unwrap();
    let reference = index_of(&store, &blocks, &deleted).await;
    let good = store.recovery().clone();
    drop(store);
    let segs = files(dir.path(), "seg");
    let sealed = segs.len() - 1;

    type Damage = fn(&Path, &Path);
    let damages: [(&str, Damage); 6] = [
        ("a flipped bit", |seg, _| {
            let mut h = std::fs::read(hint_of(seg)).unwrap();
            let mid = h.len() / 2;
            h[mid] ^= 0x04;
            std::fs::write(hint_of(seg), h).unwrap();
        }),
        ("truncated", |seg, _| {
            let h = std::fs::read(hint_of(seg)).unwrap();
            std::fs::write(hint_of(seg), &h[..h.len() - 9]).unwrap();
        }),
        ("empty", |seg, _| std::fs::write(hint_of(seg), b"").unwrap()),
        (
            "missing (a crash between sealing and the hint)",
            |seg, _| std::fs::remove_file(hint_of(seg)).unwrap(),
        ),
        ("another segment's hint", |seg, other| {
            std::fs::copy(hint_of(other), hint_of(seg)).unwrap();
        }),
        ("the segment grew since", |seg, _| {
            // Bytes no record follows at the end of a sealed segment: ignored by the scan.
            let mut s = std::fs::read(seg).unwrap();
            s.extend_from_slice(&[0xab; 100]);
            std::fs::write(seg, s).unwrap();
        }),
    ];
    for (i, (what, damage)) in damages.iter().enumerate() {
        // The tombstones are in the later segments: damage those too.
        let seg = &segs[sealed - 1 - i];
        damage(seg, &segs[0]);
        let store = SegmentStore::open_with(dir.path(), tiny()).unwrap();
        let rec = store.recovery().clone();
        assert_eq!(rec.from_hints, sealed - 1, "{what}: that one is scanned");
        assert_eq!(rec.hints_written, 1, "{what}: and its hint written again");
        assert_eq!(rec.records, good.records, "{what}");
        assert_eq!(
            index_of(&store, &blocks, &deleted).await,
            reference,
            "{what}"
        );
        drop(store);
        let store = SegmentStore::open_with(dir.path(), tiny()).unwrap();
        assert_eq!(store.recovery().from_hints, sealed, "{what}: repaired");
        assert_eq!(
            index_of(&store, &blocks, &deleted).await,
            reference,
            "{what}"
        );
    }
}

#[tokio::test]
async fn the_active_segment_is_always_scanned_and_its_stale_hint_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open_with(dir.path(), tiny()).unwrap();
    let mut blocks = Vec::new();
    while files(dir.path(), "seg").len() < 3 {
        let data = test_bytes(700, 500 + blocks.len() as u64);
        blocks.push((store.put(&data).await.unwrap(), data));
    }
    drop(store);
    // Lose the active segment: the sealed one before it, with a good hint, is last now.
    let segs = files(dir.path(), "seg");
    let (active, now_last) = (&segs[2], &segs[1]);
    std::fs::remove_file(active).unwrap();
    let kept: Vec<_> = {
        let store = SegmentStore::open_with(dir.path(), tiny()).unwrap();
        assert_eq!(store.recovery().from_hints, 1, "only the first");
        assert!(
            !hint_of(now_last).exists(),
            "a hint of the active segment is stale"
        );
        let kept: Vec<_> = blocks
            .iter()
            .filter(|(c, _)| store.location(c).is_some_and(|l| l.0 != *active))
            .cloned()
            .collect();
        for (cid, data) in &kept {
            assert_eq!(&store.get(cid).await.unwrap(), data);
        }
        // It grows again; the next open scans it and finds the new block too.
        let data = test_bytes(100, 99);
        let cid = store.put(&data).await.unwrap();
        assert_eq!(store.location(&cid).unwrap().0, *now_last);
        kept.into_iter().chain([(cid, data)]).collect()
    };
    let store = SegmentStore::open_with(dir.path(), tiny()).unwrap();
    for (cid, data) in &kept {
        assert_eq!(&store.get(cid).await.unwrap(), data);
    }
}
