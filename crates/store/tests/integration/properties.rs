//! Property tests: for any bytes, `get(put(b)) == b` on the fs store; the segment store
//! agrees with a set after any sequence of puts, deletes and reopens; `cat(add(b)) == b`;
//! the streaming, in-place and block-emitting importers agree; a CAR round trip keeps the
//! roots and the file.

use std::collections::HashSet;

use ehr_store::testing::test_bytes;
use ehr_store::{
    BlobStore, FsStore, MemoryStore, Profile, SegmentOptions, SegmentStore, car, raw_cid,
};
use proptest::prelude::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![Just(Profile::KuboV1), Just(Profile::KuboV0)]
}

/// One step against the segment store: put or delete one of a few blocks, or reopen.
#[derive(Clone, Debug)]
enum Step {
    Put(u8),
    Delete(u8),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..6).prop_map(Step::Put),
        2 => (0u8..6).prop_map(Step::Delete),
        1 => Just(Step::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn segment_store_agrees_with_a_set(steps in proptest::collection::vec(step(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        // 2 KiB segments: the blocks below (up to ~1.3 KB) rotate often.
        let opts = SegmentOptions { segment_size: 2048, ..SegmentOptions::default() };
        let block = |i: u8| test_bytes(200 * usize::from(i) + 1, u64::from(i));
        let rt = rt();
        let mut store = SegmentStore::open_with(dir.path(), opts.clone()).unwrap();
        let mut model = HashSet::new();
        for step in steps {
            match step {
                Step::Put(i) => {
                    rt.block_on(store.put(&block(i))).unwrap();
                    model.insert(i);
                }
                Step::Delete(i) => {
                    rt.block_on(store.delete(&raw_cid(&block(i)))).unwrap();
                    model.remove(&i);
                }
                Step::Reopen => {
                    drop(store);
                    store = SegmentStore::open_with(dir.path(), opts.clone()).unwrap();
                }
            }
            prop_assert_eq!(store.len(), model.len());
            for i in 0..6 {
                let cid = raw_cid(&block(i));
                prop_assert_eq!(rt.block_on(store.has(&cid)).unwrap(), model.contains(&i));
                if model.contains(&i) {
                    prop_assert_eq!(rt.block_on(store.get(&cid)).unwrap(), block(i));
                }
            }
        }
    }

    #[test]
    fn fs_get_put_roundtrip(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let rt = rt();
        let cid = rt.block_on(store.put(&data)).unwrap();
        prop_assert_eq!(rt.block_on(store.get(&cid)).unwrap(), data);
    }

    #[test]
    fn importers_agree_and_cat_add_roundtrips(
        len in 0usize..(3 * 256 * 1024),
        seed in any::<u64>(),
        profile in profile(),
    ) {
        let data = ehr_store::testing::test_bytes(len, seed);
        let streamed = ehr_store::cid_of(&data[..], profile).unwrap();
        prop_assert_eq!(ehr_store::cid_of_bytes(&data, profile), streamed);
        let rt = rt();
        let store = MemoryStore::new();
        let root = rt.block_on(ehr_store::add(&store, &data[..], profile)).unwrap();
        prop_assert_eq!(root, streamed);
        let mut out = Vec::new();
        rt.block_on(ehr_store::cat(&store, &root, &mut out)).unwrap();
        prop_assert!(out == data);

        let mut bytes = Vec::new();
        rt.block_on(car::export(&store, &root, &mut bytes)).unwrap();
        let copy = MemoryStore::new();
        let roots = rt.block_on(car::import(&mut &bytes[..], &copy)).unwrap();
        prop_assert_eq!(roots, vec![root]);
        prop_assert_eq!(copy.len(), store.len());
    }
}
