//! A node's block store: segment files, with blocks of the one-file-per-block layout an
//! earlier version wrote moved in once.

use ehr_records::deployment::node_store;
use ehr_store::{BlobStore, FsStore};

#[tokio::test]
async fn blocks_of_the_old_layout_are_moved_into_segments_once() {
    let dir = tempfile::tempdir().unwrap();
    let old = FsStore::open(dir.path().join("blocks")).unwrap();
    let mut cids = Vec::new();
    for i in 0..20u32 {
        cids.push((old.put(&i.to_be_bytes().repeat(300)).await.unwrap(), i));
    }
    drop(old);

    let store = node_store(dir.path()).await.unwrap();
    for (cid, i) in &cids {
        assert_eq!(store.get(cid).await.unwrap(), i.to_be_bytes().repeat(300));
    }
    assert!(
        !dir.path().join("blocks").exists(),
        "the old layout is removed"
    );
    let new = store.put(b"after the move").await.unwrap();
    drop(store);

    // Reopened: everything is still there, and nothing is moved again.
    let store = node_store(dir.path()).await.unwrap();
    for (cid, _) in &cids {
        assert!(store.has(cid).await.unwrap());
    }
    assert_eq!(store.get(&new).await.unwrap(), b"after the move");
}

#[tokio::test]
async fn a_corrupt_old_block_stops_the_move_naming_the_file_and_keeps_the_old_layout() {
    let dir = tempfile::tempdir().unwrap();
    let old = FsStore::open(dir.path().join("blocks")).unwrap();
    let cid = old.put(b"a block that will be damaged").await.unwrap();
    let path = old.path_of(&cid);
    std::fs::write(&path, b"something else entirely").unwrap();
    let err = node_store(dir.path()).await.unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(path.exists(), "nothing is deleted when the move fails");
}
