//! Known-answer CIDs: every row of `tests/data/cid-vectors.tsv` (from real `ipfs add`
//! runs; bytes `data[i] = i % 251`) for the v0, v1 and v1-2025 profiles, plus dag-pb
//! canonical-form checks of the blocks our importer writes.

use ehr_store::{Cid, Profile, cid_of, import};

fn rows() -> Vec<(String, usize, [String; 3])> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cid-vectors.tsv");
    let text = std::fs::read_to_string(path).expect("read cid-vectors.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("file\t") && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "row {l:?}");
            let len = f[1].parse().expect("len");
            (
                f[0].to_string(),
                len,
                [f[3].into(), f[4].into(), f[5].into()],
            )
        })
        .collect()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn every_vector_row_matches_for_every_profile() {
    let rows = rows();
    assert!(!rows.is_empty());
    for (name, len, [v0, v1, v1_2025]) in rows {
        let data = pattern(len);
        for (profile, want) in [
            (Profile::KuboV0, v0),
            (Profile::KuboV1, v1),
            (Profile::V1_2025, v1_2025),
        ] {
            let got = cid_of(&data[..], profile).expect("cid_of");
            assert_eq!(got.to_string(), want, "{name} ({len} B) {profile:?}");
            assert_eq!(ehr_store::cid_of_bytes(&data, profile), got);
            // The importer that emits blocks agrees with the hash-only paths.
            let emitted = import(&data[..], profile, |_, _| Ok(())).expect("import");
            assert_eq!(emitted, got);
        }
    }
}

#[test]
fn blocks_are_canonical_dag_pb_and_hash_to_their_cids() {
    let data = pattern(3 * 256 * 1024 + 5);
    for profile in [Profile::KuboV0, Profile::KuboV1] {
        let mut n = 0;
        import(&data[..], profile, |cid: &Cid, block: &[u8]| {
            ehr_store::verify(cid, block, None)?;
            if cid.codec() == 0x70 {
                let node = ipld_dagpb::PbNode::from_bytes(block.to_vec().into())
                    .expect("decodes as dag-pb");
                assert_eq!(node.into_bytes(), block, "canonical dag-pb");
            }
            n += 1;
            Ok(())
        })
        .expect("import");
        assert_eq!(n, 5, "4 leaves + 1 root");
    }
}
