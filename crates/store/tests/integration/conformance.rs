//! The one conformance suite on the in-process backends (memory, fs, segments), plus what
//! only the filesystem store can show: altered files on disk, concurrent writers, no temp files
//! left behind. The Kubo backend runs the same suite in `kubo`.

use std::sync::Arc;

use ehr_store::testing::{CHUNK, LINKS, conformance, test_bytes};
use ehr_store::{BlobStore, Error, FsStore, MemoryStore, SegmentOptions, SegmentStore, raw_cid};

#[tokio::test]
async fn memory_store_conforms() {
    conformance(&MemoryStore::new(), LINKS * CHUNK + 1).await;
}

#[tokio::test]
async fn fs_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&FsStore::open(dir.path()).unwrap(), LINKS * CHUNK + 1).await;
    assert_no_temp_files(dir.path());
}

#[tokio::test]
async fn segment_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentStore::open(dir.path()).unwrap();
    conformance(&store, LINKS * CHUNK + 1).await;
    assert!(store.syncs() > 0);
}

#[tokio::test]
async fn segment_store_conforms_while_rotating_through_tiny_segments() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SegmentOptions {
        segment_size: 64 << 10, // smaller than the 256 KiB chunks: every batch rotates
        ..SegmentOptions::default()
    };
    let store = SegmentStore::open_with(dir.path(), opts.clone()).unwrap();
    conformance(&store, 4 * CHUNK + 1).await;
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("seg".as_ref()))
        .count();
    assert!(segments > 10, "{segments} segments");
    // The same suite again on the reopened store, whose index came from the segments.
    let before = store.len();
    drop(store);
    let store = SegmentStore::open_with(dir.path(), opts).unwrap();
    assert_eq!(store.len(), before);
    conformance(&store, 4 * CHUNK + 1).await;
}

#[tokio::test]
async fn memory_store_refuses_corrupted_bytes() {
    let store = MemoryStore::new();
    let cid = store.put(b"record").await.unwrap();
    store.corrupt(&cid, b"tampered".to_vec());
    let err = store.get(&cid).await.unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&cid.to_string()), "{err}");
}

#[tokio::test]
async fn fs_store_refuses_a_block_altered_on_disk_naming_cid_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let cid = store.put(&test_bytes(4096, 1)).await.unwrap();
    let path = store.path_of(&cid);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = store.get(&cid).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::HashMismatch { .. }), "{msg}");
    assert!(msg.contains(&cid.to_string()), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    // A torn (shorter) file is repaired by putting the block again.
    std::fs::write(&path, &bytes[..10]).unwrap();
    store.put(&test_bytes(4096, 1)).await.unwrap();
    assert_eq!(store.get(&cid).await.unwrap(), test_bytes(4096, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_store_is_safe_under_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(FsStore::open(dir.path()).unwrap());
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20u64 {
                // Half the blocks are shared by every writer, half are the writer's own.
                let seed = if i % 2 == 0 { i } else { 1000 * (w + 1) + i };
                let data = test_bytes(1024 + i as usize, seed);
                let cid = store.put(&data).await.unwrap();
                assert_eq!(store.get(&cid).await.unwrap(), data);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for i in (0..20u64).step_by(2) {
        let data = test_bytes(1024 + i as usize, i);
        assert_eq!(store.get(&raw_cid(&data)).await.unwrap(), data);
    }
    assert_no_temp_files(dir.path());
}

#[tokio::test]
async fn fs_store_errors_name_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = FsStore::open(file.join("blocks")).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn malformed_cids_and_unknown_codecs_or_hashes_are_clear_errors() {
    for bad in ["", "Qm", "not-a-cid", "bafy!!!", "zzzz"] {
        let err = ehr_store::parse_cid(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidCid { .. }), "{bad}: {err}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    // dag-json (0x0129) is a valid CID but not a codec we store.
    let err = ehr_store::parse_cid("baguqeeraovr4gpt7zwh4scf2t4rnunkobrzqjiiebv7rtxnzx5zgbs3biwxq")
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedCodec { .. }), "{err}");
    // identity multihash (0x00) is not verifiable here.
    let err = ehr_store::parse_cid("bafkqaaa").unwrap_err();
    assert!(matches!(err, Error::UnsupportedHash { .. }), "{err}");
    assert!(err.to_string().contains("bafkqaaa"), "{err}");
}

fn assert_no_temp_files(dir: &std::path::Path) {
    for shard in std::fs::read_dir(dir).unwrap() {
        let shard = shard.unwrap().path();
        if shard.is_dir() {
            for f in std::fs::read_dir(&shard).unwrap() {
                let name = f.unwrap().file_name();
                assert!(
                    !name.to_string_lossy().ends_with(".tmp"),
                    "temp file left: {}",
                    shard.join(name).display()
                );
            }
        }
    }
}
