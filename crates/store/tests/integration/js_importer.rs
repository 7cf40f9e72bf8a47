//! Our importer against an independent one (npm ipfs-unixfs-importer@17, configured as
//! `ipfs add` / `ipfs add --cid-version=1` / unixfs-v1-2025): the same root CID for every
//! interesting size and for random sizes and contents.

use crate::js;

use ehr_store::Profile;
use ehr_store::testing::{CHUNK, INTERESTING_SIZES, test_bytes};

fn compare(sizes: &[usize], seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let path = dir.path().join(format!("f{i}-{size}.bin"));
        std::fs::write(&path, test_bytes(size, seed + i as u64)).expect("write");
        files.push(path);
    }
    let args: Vec<&str> = files
        .iter()
        .map(|p| p.to_str().expect("utf-8 path"))
        .collect();
    for (profile, name) in [
        (Profile::KuboV1, "v1"),
        (Profile::KuboV0, "v0"),
        (Profile::V1_2025, "v1_2025"),
    ] {
        let mut cmd = vec![name];
        cmd.extend(args.iter().copied());
        let theirs: Vec<String> = js::node("unixfs-cid.mjs", &cmd)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(theirs.len(), files.len());
        for ((path, size), want) in files.iter().zip(sizes).zip(&theirs) {
            let file = std::fs::File::open(path).expect("open");
            let ours = ehr_store::cid_of(std::io::BufReader::new(file), profile).expect("cid_of");
            assert_eq!(&ours.to_string(), want, "{size} B, {profile:?}");
            let data = std::fs::read(path).expect("read");
            assert_eq!(
                ehr_store::cid_of_bytes(&data, profile),
                ours,
                "{size} B in place"
            );
            let emitted = ehr_store::import(&data[..], profile, |_, _| Ok(())).expect("import");
            assert_eq!(emitted, ours, "{size} B with blocks");
        }
    }
}

#[test]
fn interesting_sizes_match_ipfs_unixfs_importer() {
    compare(INTERESTING_SIZES, 10);
}

#[test]
fn random_sizes_match_ipfs_unixfs_importer() {
    // Sizes drawn from the same deterministic generator: up to 6 MiB, plus the
    // 1 MiB-chunk boundaries of unixfs-v1-2025.
    let raw = test_bytes(8 * 4, 99);
    let mut sizes: Vec<usize> = raw
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize % (6 << 20))
        .collect();
    sizes.extend([4 * CHUNK - 1, 4 * CHUNK, 4 * CHUNK + 1]);
    compare(&sizes, 500);
}

/// Leaves pushed at a length of the caller's (an attachment's fragment file: leaf j is
/// segment j's fragment) make the file `ipfs add --cid-version=1 --chunker=size-N` makes:
/// non-power-of-two lengths, more leaves than one node links (two levels), and the
/// fragment length of a 1 MiB segment at 3-of-5.
#[test]
fn leaves_of_any_length_match_a_fixed_size_chunker_of_that_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (chunk, leaves, tail) in [
        (4160usize, 400usize, 77usize),
        (349_568, 3, 1000),
        (64, 175, 0),
    ] {
        let data = test_bytes(chunk * leaves + tail, chunk as u64);
        let path = dir.path().join(format!("c{chunk}.bin"));
        std::fs::write(&path, &data).expect("write");
        let mut importer = ehr_store::unixfs::Importer::new(Profile::KuboV1);
        let mut blocks = 0usize;
        for leaf in data.chunks(chunk) {
            importer
                .push_chunk(leaf, &mut |_, _| {
                    blocks += 1;
                    Ok(())
                })
                .expect("push");
        }
        let ours = importer.finish(&mut |_, _| Ok(())).expect("finish");
        assert!(blocks >= leaves);
        let profile = format!("v1:{chunk}");
        let theirs = js::node("unixfs-cid.mjs", &[&profile, path.to_str().expect("utf-8")]);
        assert_eq!(
            ours.to_string(),
            theirs.trim(),
            "chunk {chunk}, {leaves} leaves"
        );
    }
}

/// Leaves hashed by the caller ([`Importer::push_raw_leaf`], as an attachment's fragments
/// are: their digests come with them) give the root `push_chunk` gives, and
/// [`file_blocks`] walks the stored tree back to those leaves, in order.
#[tokio::test]
async fn hashed_leaves_give_the_same_tree_and_walk_back_in_order() {
    use ehr_store::unixfs::{Importer, file_blocks};
    use ehr_store::{BlobStore, MemoryStore};
    let store = MemoryStore::new();
    let data = test_bytes(4160 * 400 + 77, 9);
    let (mut by_chunk, mut by_leaf) = (
        Importer::new(Profile::KuboV1),
        Importer::new(Profile::KuboV1),
    );
    let mut nodes = Vec::new();
    let mut leaves = Vec::new();
    for leaf in data.chunks(4160) {
        by_chunk.push_chunk(leaf, &mut |_, _| Ok(())).expect("push");
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(leaf).into();
        leaves.push(ehr_store::cid_from_sha256(ehr_store::cids::RAW, &digest));
        by_leaf
            .push_raw_leaf(&digest, leaf.len(), &mut |cid, block| {
                nodes.push((*cid, block.to_vec()));
                Ok(())
            })
            .expect("push leaf");
    }
    let root = by_chunk.finish(&mut |_, _| Ok(())).expect("finish");
    let same = by_leaf
        .finish(&mut |cid, block| {
            nodes.push((*cid, block.to_vec()));
            Ok(())
        })
        .expect("finish");
    assert_eq!(root, same);
    assert_eq!(nodes.len(), 3 + 1, "two levels: 3 nodes of 174 and a root");
    for (cid, block) in &nodes {
        store.put_block(cid, block).await.expect("put");
    }
    let walked = file_blocks(&root, 10_000, |c| {
        let store = &store;
        async move { store.get(&c).await }
    })
    .await
    .expect("walk");
    assert_eq!(walked.leaves, leaves);
    assert_eq!(walked.nodes[0], root);
    assert_eq!(walked.nodes.len(), 4);
    // A cap below the leaf count refuses the tree.
    assert!(
        file_blocks(&root, 100, |c| {
            let store = &store;
            async move { store.get(&c).await }
        })
        .await
        .is_err()
    );
}
