//! The manifest's DAG-CBOR form: round trips, canonical bytes, strict refusals, and the
//! format-1 JSON still read.

use super::*;
use ehr_crypto::wrap;
use ehr_crypto::{RecordContext, Threshold, dispersal};

/// A real 3-of-5 manifest of a 10 KB record, its shares wrapped to five fresh keys.
fn sample(format: u32) -> RecordManifest {
    let mut rng = ehr_crypto::rng();
    let ctx = RecordContext {
        patient: [7; 20],
        record_id: [9; 32],
        version: 3,
    };
    let t = Threshold::new(3, 5).unwrap();
    let d = dispersal::disperse(t, &ctx, vec![42; 10_240], &mut rng).unwrap();
    let keys: Vec<_> = (0..5).map(|_| wrap::generate_keypair(&mut rng).1).collect();
    let wrapped: Vec<Wrapped> = d
        .key_shares
        .iter()
        .zip(&keys)
        .map(|(s, k)| wrap::wrap_key_share(k, &ctx, s, crate::CUSTODIAN_AAD, &mut rng).unwrap())
        .collect();
    let (custodians, shares) = if format == FORMAT {
        (
            Custodians::NodeSetEpoch(1),
            wrapped
                .iter()
                .map(|w| ShareRef::Block(ehr_store::raw_cid(&share_block(w))))
                .collect(),
        )
    } else {
        (
            Custodians::Keys(keys.iter().map(|k| B256::from(k.0)).collect()),
            wrapped.into_iter().map(ShareRef::Inline).collect(),
        )
    };
    RecordManifest {
        format,
        patient: Address::from([7; 20]),
        uid: B256::from([9; 32]),
        version: 3,
        created_at: 1_764_000_000,
        custodians,
        shares,
        dispersal: d.manifest,
        attachments: Vec::new(),
    }
}

fn refusal(block: &[u8]) -> String {
    match RecordManifest::decode(CODEC, block) {
        Ok(_) => panic!("accepted a bad manifest"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_manifest_round_trips_in_canonical_dag_cbor() {
    let m = sample(FORMAT);
    let block = m.encode().unwrap();
    let back = RecordManifest::decode(CODEC, &block).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.encode().unwrap(), block, "encoding is not canonical");
    assert_eq!(back.codec(), CODEC);
    let cid = block_cid(&block);
    assert_eq!(cid.codec(), 0x71);
    assert!(cid.to_string().starts_with("bafyrei"), "{cid}");
    assert_eq!(RecordManifest::decode_block(&cid, &block).unwrap(), m);
    assert_eq!(
        manifest_cid(B256::from_slice(cid.hash().digest()), CODEC).unwrap(),
        cid
    );
    // The links: the five fragments, then the five share blocks.
    let links = m.links();
    assert_eq!(links.len(), 10);
    assert_eq!(links[0], m.fragment_cid(0));
    assert_eq!(Some(links[5]), m.share_cid(0));
    // The format-1 JSON of the same record was 3.6 KB; this is under a fourth of it.
    assert!(block.len() < 800, "{} bytes", block.len());
    let json = sample(LEGACY_FORMAT).encode().unwrap();
    assert!(
        json.len() > 3 * block.len(),
        "json {} cbor {}",
        json.len(),
        block.len()
    );
}

#[test]
fn the_map_starts_with_its_keys_in_dag_cbor_order() {
    let block = sample(FORMAT).encode().unwrap();
    // map(14), "k" 3, "n" 5, "uid" bytes(32)
    assert_eq!(&block[..6], &[0xae, 0x61, b'k', 3, 0x61, b'n']);
    assert_eq!(&block[6..11], &[5, 0x63, b'u', b'i', b'd']);
    assert_eq!(&block[11..13], &[0x58, 32]);
}

/// `block` with the first occurrence of `from` replaced by `to`.
fn patch(block: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = block
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in block");
    let mut out = block[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&block[at + from.len()..]);
    out
}

#[test]
fn decoding_is_strict() {
    let m = sample(FORMAT);
    let block = m.encode().unwrap();

    // Every truncation, and a byte after the end.
    for len in 0..block.len() {
        refusal(&block[..len]);
    }
    let mut longer = block.clone();
    longer.push(0);
    assert!(refusal(&longer).contains("after the manifest"));

    // k = 3 written in two bytes (valid CBOR, not DAG-CBOR).
    let wide = patch(&block, &[0x61, b'k', 3], &[0x61, b'k', 0x18, 3]);
    assert!(refusal(&wide).contains("shortest"), "{}", refusal(&wide));
    // An indefinite-length map.
    let mut indef = block.clone();
    indef[0] = 0xbf;
    assert!(refusal(&indef).contains("indefinite"));
    // One key fewer announced, or one more.
    let mut fewer = block.clone();
    fewer[0] = 0xad;
    refusal(&fewer);
    // Keys out of DAG-CBOR order: "n" before "k".
    let swapped = patch(
        &block,
        &[0x61, b'k', 3, 0x61, b'n', 5],
        &[0x61, b'n', 5, 0x61, b'k', 3],
    );
    assert!(refusal(&swapped).contains("expected key"));
    // An unknown key where a known one belongs ("uid" renamed "uix").
    let renamed = patch(&block, b"uid", b"uix");
    assert!(refusal(&renamed).contains("uix"));
    // The uid one byte short.
    let short = patch(
        &block,
        &[0x63, b'u', b'i', b'd', 0x58, 32],
        &[0x63, b'u', b'i', b'd', 0x58, 31],
    );
    refusal(&short);
    // n that does not match the lists.
    let n4 = patch(&block, &[0x61, b'n', 5], &[0x61, b'n', 4]);
    assert!(refusal(&n4).contains("n = 4"));
    // k above n.
    let k9 = patch(&block, &[0x61, b'k', 3], &[0x61, b'k', 9]);
    assert!(refusal(&k9).contains("inconsistent"));
    // A fragment link that is not a raw block's (dag-cbor codec 0x71 instead of raw 0x55).
    let frag = m.fragment_cid(0).to_bytes();
    let mut other = frag.clone();
    other[1] = 0x71;
    let relinked = patch(&block, &frag, &other);
    assert!(refusal(&relinked).contains("fragment link"));
    // An unknown format.
    let f3 = patch(
        &block,
        &[0x66, b'f', b'o', b'r', b'm', b'a', b't', 2],
        &[0x66, b'f', b'o', b'r', b'm', b'a', b't', 3],
    );
    assert!(refusal(&f3).contains("format 3"));
    // JSON under the dag-cbor codec, and DAG-CBOR under raw.
    let json = sample(LEGACY_FORMAT).encode().unwrap();
    refusal(&json);
    assert!(RecordManifest::decode(LEGACY_CODEC, &block).is_err());
    // Another codec altogether.
    assert!(matches!(
        RecordManifest::decode(0x70, &block),
        Err(Error::ManifestCodec(0x70))
    ));
    assert!(matches!(
        manifest_cid(B256::ZERO, 0x70),
        Err(Error::ManifestCodec(0x70))
    ));
    // Too large, before any parsing.
    assert!(matches!(
        RecordManifest::decode(CODEC, &vec![0; MAX_MANIFEST_LEN + 1]),
        Err(Error::ManifestTooLarge)
    ));
}

#[test]
fn a_format_1_json_manifest_still_reads() {
    let m = sample(LEGACY_FORMAT);
    let block = m.encode().unwrap();
    // The bytes the earlier code wrote: JSON, every byte array a list of numbers.
    assert!(block.starts_with(b"{\"format\":1,\"patient\":\"0x0707"));
    assert!(String::from_utf8_lossy(&block).contains("\"wrapped_shares\":[{\"enc\":["));
    assert_eq!(m.codec(), LEGACY_CODEC);
    let back = RecordManifest::decode(LEGACY_CODEC, &block).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.share_cid(0), None);
    assert!(matches!(back.custodians, Custodians::Keys(ref k) if k.len() == 5));
    assert_eq!(
        manifest_cid(B256::ZERO, LEGACY_CODEC).unwrap().codec(),
        LEGACY_CODEC
    );
}

#[test]
fn parts_that_do_not_fit_the_format_are_not_encoded() {
    let mut m = sample(FORMAT);
    m.custodians = Custodians::Keys(vec![B256::ZERO; 5]);
    assert!(m.encode().is_err());
    let mut m = sample(FORMAT);
    m.shares.pop();
    assert!(m.encode().is_err());
    let mut m = sample(LEGACY_FORMAT);
    m.shares[0] = ShareRef::Block(ehr_store::raw_cid(b"x"));
    assert!(m.encode().is_err());
}

#[test]
fn share_blocks_hold_exactly_one_wrapped_share() {
    let m = sample(LEGACY_FORMAT);
    let ShareRef::Inline(w) = &m.shares[0] else {
        unreachable!()
    };
    let block = share_block(w);
    assert_eq!(block.len(), SHARE_BLOCK_LEN);
    assert_eq!(&parse_share_block(&block).unwrap(), w);
    assert!(matches!(
        parse_share_block(&block[1..]),
        Err(Error::ShareBlock(79))
    ));
}

#[test]
fn a_manifest_is_kept_by_n_minus_k_plus_one_nodes_spread_by_its_digest() {
    assert_eq!(manifest_copies(3, 5), 3);
    assert_eq!(manifest_copies(1, 5), 5);
    assert_eq!(manifest_copies(5, 5), 1);
    assert_eq!(manifest_copies(2, 2), 1);
    let mut first = [0usize; 5];
    for i in 0u32..1000 {
        let cid = block_cid(&i.to_be_bytes());
        let order: Vec<usize> = manifest_order(&cid, 5).collect();
        // Every node once, consecutive from the start the digest picks.
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3, 4]);
        assert!(order.windows(2).all(|w| w[1] == (w[0] + 1) % 5));
        assert_eq!(order, manifest_order(&cid, 5).collect::<Vec<_>>());
        first[order[0]] += 1;
    }
    // Spread: each node starts about a fifth of the orders.
    assert!(first.iter().all(|&c| (150..=250).contains(&c)), "{first:?}");
}

fn with_attachment(mut m: RecordManifest) -> RecordManifest {
    let leaf = |b: u8| ehr_store::raw_cid(&[b; 40]);
    let tree = Cid::new_v1(
        ehr_store::cids::DAG_PB,
        ehr_store::cids::sha256_multihash(b"x"),
    );
    m.attachments.push(AttachmentRef {
        version: 2,
        len: 3 * (1 << 20) + 5,
        prefix: [1, 2, 3, 4, 5, 6, 7],
        roots: vec![tree, leaf(1), tree, tree, tree],
        shares: (0..5).map(|i| leaf(10 + i)).collect(),
        share_digests: (0..5).map(|i| [i; 32]).collect(),
    });
    m
}

#[test]
fn attachments_round_trip_and_a_manifest_without_any_keeps_its_bytes() {
    let plain = sample(FORMAT);
    let block = plain.encode().unwrap();
    // No attachments: the 14-entry map of before.
    assert_eq!(block[0], 0xa0 | 14);
    let m = with_attachment(plain.clone());
    let with = m.encode().unwrap();
    assert_eq!(with[0], 0xa0 | 15);
    let back = RecordManifest::decode(CODEC, &with).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.attachments[0].segments(), 4);
    assert_eq!(back.attachments[0].sealed_segment_len(0), (1 << 20) + 16);
    assert_eq!(back.attachments[0].sealed_segment_len(3), 5 + 16);
    // The roots and share blocks are links, the blocks under a root are not.
    let links = back.links();
    assert_eq!(links.len(), plain.links().len() + 10);
    assert!(links.contains(&m.attachments[0].shares[4]));
}

#[test]
fn attachments_that_do_not_fit_are_refused() {
    let good = with_attachment(sample(FORMAT));
    let mut later = good.clone();
    later.attachments[0].version = good.version + 1;
    assert!(later.encode().is_err(), "sealed under a later version");
    let mut short = good.clone();
    short.attachments[0].roots.pop();
    assert!(short.encode().is_err(), "not n roots");
    let mut cbor_share = good.clone();
    cbor_share.attachments[0].shares[0] = good.attachments[0].roots[0];
    assert!(
        cbor_share.encode().is_err(),
        "a share block that is not raw"
    );
    // An empty list is written as none, so one on the wire is refused.
    let block = sample(FORMAT).encode().unwrap();
    let mut patched = block.clone();
    patched[0] = 0xa0 | 15;
    let at = patched
        .windows(b"fragment_len".len() + 1)
        .position(|w| &w[1..] == b"fragment_len")
        .unwrap();
    let mut empty = vec![0x6b];
    empty.extend_from_slice(b"attachments");
    empty.push(0x80);
    patched.splice(at..at, empty);
    assert!(refusal(&patched).contains("empty attachments"));
}
