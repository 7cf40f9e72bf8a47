//! Test support shared by every backend (feature `test-utils`): the table of boundary sizes,
//! deterministic test bytes, and the one conformance suite each [`BlobStore`] must pass.

use cid::Cid;

use crate::cids::{DAG_PB, raw_cid, sha256_multihash};
use crate::{BlobStore, Error, Profile, cid_of, unixfs};

/// Kubo's chunk size (256 KiB).
pub const CHUNK: usize = 256 * 1024;
/// Kubo's most links per node.
pub const LINKS: usize = 174;

/// File sizes where the UnixFS DAG changes shape (iroh-blobs style).
pub const INTERESTING_SIZES: &[usize] = &[
    0,                 // empty file: one empty leaf (raw in v1, a dag-pb node in v0)
    1,                 // smallest non-empty: the leaf is the root
    1024,              // a typical small record
    CHUNK - 1,         // one short chunk
    CHUNK,             // exactly one chunk: still a single leaf, no parent
    CHUNK + 1,         // two leaves: first internal node
    LINKS * CHUNK - 1, // 174 leaves, the last one short: one full depth-1 node
    LINKS * CHUNK,     // exactly 174 full leaves: the root is one full depth-1 node
    LINKS * CHUNK + 1, // 175 leaves: depth 2, root over [full node, node with one leaf]
];

/// Block sizes for the block-level conformance checks (IPFS nodes refuse blocks over
/// 1 MiB, and js-ipfs counts the multipart envelope too, so the largest is 512 KiB).
pub const BLOCK_SIZES: &[usize] = &[0, 1, 1024, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK];

/// `len` deterministic pseudo-random bytes (xorshift64*), different per `seed`.
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The conformance suite: every [`BlobStore`] must pass it. Files up to `max_file_size`
/// bytes from [`INTERESTING_SIZES`] are also imported and read back. Panics on failure.
pub async fn conformance(store: &dyn BlobStore, max_file_size: usize) {
    // get(put(b)) == b, has, idempotent put, for each boundary size.
    for (i, &size) in BLOCK_SIZES.iter().enumerate() {
        let data = test_bytes(size, 1000 + i as u64);
        let cid = store.put(&data).await.expect("put");
        assert_eq!(cid, raw_cid(&data), "put returns the raw CIDv1");
        assert!(
            store.has(&cid).await.expect("has"),
            "has after put ({size} B)"
        );
        assert_eq!(
            store.get(&cid).await.expect("get"),
            data,
            "get(put(b)) == b"
        );
        assert_eq!(
            store.put(&data).await.expect("second put"),
            cid,
            "idempotent put"
        );
        assert_eq!(store.get(&cid).await.expect("get"), data);
    }

    // A dag-pb block under its CIDv0.
    let leaf = crate::pb::encode_leaf(Some(b"dag-pb leaf"));
    let v0 = Cid::new_v0(sha256_multihash(&leaf)).expect("v0");
    store.put_block(&v0, &leaf).await.expect("put dag-pb block");
    assert_eq!(store.get(&v0).await.expect("get v0"), leaf);
    let v1 = Cid::new_v1(DAG_PB, *v0.hash());
    assert_eq!(
        store.get(&v1).await.expect("get v1"),
        leaf,
        "v0 and v1 name one block"
    );

    // Wrong bytes are refused, naming the CID, and nothing is stored.
    let claimed = raw_cid(b"the bytes the CID names");
    let err = store
        .put_block(&claimed, b"other bytes")
        .await
        .expect_err("wrong bytes must be refused");
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&claimed.to_string()), "{err}");
    assert!(
        !store.has(&claimed).await.expect("has"),
        "refused block not stored"
    );

    // A missing CID is NotFound, naming it.
    let missing = raw_cid(b"never stored");
    let err = store.get(&missing).await.expect_err("missing");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    assert!(!store.has(&missing).await.expect("has"));

    // An unsupported codec is refused.
    let odd = Cid::new_v1(0x0129, sha256_multihash(b"{}"));
    let err = store.put_block(&odd, b"{}").await.expect_err("dag-json");
    assert!(matches!(err, Error::UnsupportedCodec { .. }), "{err}");

    // delete: gone afterwards, and deleting again is fine.
    let data = test_bytes(100, 7);
    let cid = store.put(&data).await.expect("put");
    store.delete(&cid).await.expect("delete");
    assert!(!store.has(&cid).await.expect("has"), "has after delete");
    assert!(matches!(store.get(&cid).await, Err(Error::NotFound { .. })));
    store.delete(&cid).await.expect("delete twice");
    store
        .pin(&raw_cid(&test_bytes(1024, 1002)))
        .await
        .expect("pin");

    // Files: add then cat gives the bytes back, under the CID `ipfs add` computes.
    for (i, &size) in INTERESTING_SIZES.iter().enumerate() {
        if size > max_file_size {
            continue;
        }
        let data = test_bytes(size, 2000 + i as u64);
        for profile in [Profile::KuboV1, Profile::KuboV0] {
            let root = unixfs::add(store, &data[..], profile).await.expect("add");
            assert_eq!(
                root,
                cid_of(&data[..], profile).expect("cid_of"),
                "{size} B"
            );
            let mut out = Vec::new();
            unixfs::cat(store, &root, &mut out).await.expect("cat");
            assert!(out == data, "cat(add(b)) == b for {size} B ({profile:?})");
        }
    }
}
