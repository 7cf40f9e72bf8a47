//! CAR v1 against independent tools: a CAR we write unpacks with @ipld/car +
//! ipfs-unixfs-exporter and with `ipfs-car unpack` to the same bytes; CARs they write
//! (@ipld/car's CarWriter, `ipfs-car pack`) import and verify here. A corrupt or truncated
//! CAR imports nothing.

use crate::js;

use ehr_store::testing::{CHUNK, test_bytes};
use ehr_store::{BlobStore, Error, MemoryStore, Profile, car, cid_of};

async fn cat(store: &dyn BlobStore, root: &ehr_store::Cid) -> Vec<u8> {
    let mut out = Vec::new();
    ehr_store::cat(store, root, &mut out).await.unwrap();
    out
}

#[tokio::test]
async fn our_car_unpacks_with_ipld_car_and_ipfs_car() {
    let dir = tempfile::tempdir().unwrap();
    for (i, size) in [0, 1000, CHUNK + 1, 3 * CHUNK + 17].into_iter().enumerate() {
        let data = test_bytes(size, 300 + i as u64);
        for profile in [Profile::KuboV1, Profile::KuboV0] {
            let store = MemoryStore::new();
            let root = ehr_store::add(&store, &data[..], profile).await.unwrap();
            let mut bytes = Vec::new();
            let n = car::export(&store, &root, &mut bytes).await.unwrap();
            assert_eq!(n as usize, store.len(), "every block exported once");
            let car_path = dir.path().join(format!("{i}-{profile:?}.car"));
            std::fs::write(&car_path, &bytes).unwrap();

            let out = dir.path().join(format!("{i}-{profile:?}.out"));
            let report = js::node(
                "car.mjs",
                &["unpack", car_path.to_str().unwrap(), out.to_str().unwrap()],
            );
            assert!(report.contains(&root.to_string()), "{report}");
            assert!(
                std::fs::read(&out).unwrap() == data,
                "@ipld/car unpack, {size} B"
            );

            let out2 = dir.path().join(format!("{i}-{profile:?}.ipfs-car"));
            js::node(
                "node_modules/ipfs-car/bin.js",
                &[
                    "unpack",
                    car_path.to_str().unwrap(),
                    "--output",
                    out2.to_str().unwrap(),
                ],
            );
            assert!(
                std::fs::read(&out2).unwrap() == data,
                "ipfs-car unpack, {size} B"
            );
        }
    }
}

#[tokio::test]
async fn their_cars_import_and_verify_here() {
    let dir = tempfile::tempdir().unwrap();
    let data = test_bytes(5 * CHUNK + 3, 400);
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &data).unwrap();

    // @ipld/car CarWriter over ipfs-unixfs-importer (`ipfs add --cid-version=1` settings).
    let car_path = dir.path().join("ipld.car");
    let root = js::node(
        "car.mjs",
        &["pack", input.to_str().unwrap(), car_path.to_str().unwrap()],
    );
    let store = MemoryStore::new();
    let bytes = std::fs::read(&car_path).unwrap();
    let roots = car::import(&mut &bytes[..], &store).await.unwrap();
    assert_eq!(roots[0].to_string(), root.trim());
    assert_eq!(roots[0], cid_of(&data[..], Profile::KuboV1).unwrap());
    assert!(cat(&store, &roots[0]).await == data);

    // `ipfs-car pack --no-wrap` (its default: unixfs-v1-2025, 1 MiB chunks).
    let car_path = dir.path().join("ipfs-car.car");
    js::node(
        "node_modules/ipfs-car/bin.js",
        &[
            "pack",
            input.to_str().unwrap(),
            "--no-wrap",
            "--output",
            car_path.to_str().unwrap(),
        ],
    );
    let store = MemoryStore::new();
    let bytes = std::fs::read(&car_path).unwrap();
    let roots = car::import(&mut &bytes[..], &store).await.unwrap();
    assert_eq!(roots, vec![cid_of(&data[..], Profile::V1_2025).unwrap()]);
    assert!(cat(&store, &roots[0]).await == data);
}

#[tokio::test]
async fn corrupt_or_truncated_car_imports_nothing() {
    let src = MemoryStore::new();
    let data = test_bytes(2 * CHUNK + 5, 500);
    let root = ehr_store::add(&src, &data[..], Profile::KuboV1)
        .await
        .unwrap();
    let mut bytes = Vec::new();
    car::export(&src, &root, &mut bytes).await.unwrap();

    // Round trip works.
    let dst = MemoryStore::new();
    assert_eq!(
        car::import(&mut &bytes[..], &dst).await.unwrap(),
        vec![root]
    );
    assert_eq!(dst.len(), src.len());

    // One flipped byte in the last block: a hash mismatch naming the block, nothing stored.
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let dst = MemoryStore::new();
    let err = car::import(&mut &bad[..], &dst).await.unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    assert!(dst.is_empty(), "nothing imported from a corrupt CAR");

    // Truncated anywhere: an error, nothing stored.
    for cut in [0, 1, 10, 60, bytes.len() / 2, bytes.len() - 1] {
        let dst = MemoryStore::new();
        let err = car::import(&mut &bytes[..cut], &dst).await.unwrap_err();
        assert!(matches!(err, Error::Car(_)), "cut at {cut}: {err}");
        assert!(dst.is_empty(), "cut at {cut}: nothing imported");
    }

    // A CARv2 / garbage header is refused.
    let mut v2 = Vec::new();
    let header = [0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02];
    v2.push(header.len() as u8);
    v2.extend(header);
    let err = car::import(&mut &v2[..], &MemoryStore::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[test]
fn header_round_trips() {
    let roots = vec![
        ehr_store::raw_cid(b"a"),
        cid_of(&test_bytes(10, 1)[..], Profile::KuboV0).unwrap(),
    ];
    assert_eq!(
        car::decode_header(&car::encode_header(&roots)).unwrap(),
        roots
    );
}
