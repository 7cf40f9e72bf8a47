//! The encodings: canonical round trips, and anything else refused.

use alloy::primitives::B256;
use ehr_ledger::RawBlock;
use ehr_ledger::format::{EpochHeader, PartEntry, Payload};

fn header() -> EpochHeader {
    EpochHeader {
        chain_id: 7,
        epoch: 3,
        first_block: 10,
        block_count: 2,
        last_block_hash: B256::repeat_byte(1),
        payload_digest: [2; 32],
        prev: [3; 32],
        k: 3,
        n: 5,
        nonce: [4; 12],
        ciphertext_len: 1000,
        fragment_len: 384,
        fragments: vec![[5; 32]; 5],
        key_share_digests: vec![[6; 32]; 5],
        shares: vec![[7; 32]; 5],
        custodians: vec![B256::repeat_byte(8); 5],
    }
}

fn payload() -> Payload {
    Payload {
        chain_id: 7,
        epoch: 3,
        first_block: 10,
        blocks: vec![
            RawBlock {
                number: 10,
                block: vec![1, 2, 3],
                receipts: vec![],
            },
            RawBlock {
                number: 11,
                block: vec![4; 300],
                receipts: vec![5; 7],
            },
        ],
        parts: vec![
            PartEntry {
                name: "accounts".into(),
                snapshot: true,
                cursor: 9,
                data: b"snap".to_vec(),
            },
            PartEntry {
                name: "reasons".into(),
                snapshot: false,
                cursor: 2,
                data: vec![],
            },
        ],
    }
}

#[test]
fn headers_and_payloads_round_trip_and_refuse_anything_else() {
    let h = header();
    let bytes = h.encode();
    assert_eq!(bytes.len(), 166 + 128 * 5);
    assert_eq!(EpochHeader::decode(&bytes).unwrap(), h);
    assert_eq!(h.last_block(), Some(11));
    let p = payload();
    let pb = p.encode();
    assert_eq!(Payload::decode(&pb).unwrap(), p);

    for (what, b) in [("header", bytes), ("payload", pb)] {
        let decode = |x: &[u8]| match what {
            "header" => EpochHeader::decode(x).map(|_| ()),
            _ => Payload::decode(x).map(|_| ()),
        };
        // Every truncation and any trailing byte is refused, with a clear error.
        for cut in 0..b.len() {
            let err = decode(&b[..cut]).unwrap_err().to_string();
            assert!(
                err.contains("truncated") || err.contains("not an epoch"),
                "{what} cut at {cut}: {err}"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert!(decode(&long).unwrap_err().to_string().contains("trailing"));
        let mut wrong = b.clone();
        wrong[0] ^= 1;
        assert!(decode(&wrong).is_err());
    }

    // A threshold that cannot be.
    let mut bad = header();
    bad.k = 6;
    assert!(EpochHeader::decode(&bad.encode()).is_err());
}
