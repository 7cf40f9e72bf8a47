//! Property tests: for any bytes, `get(put(b)) == b` on the fs store; `cat(add(b)) == b`;
//! the streaming, in-place and block-emitting importers agree; a CAR round trip keeps the
//! roots and the file.

use ehr_store::{BlobStore, FsStore, MemoryStore, Profile, car};
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

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
