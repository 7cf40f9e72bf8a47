//! Attachments (issue 19): a file streamed into a record's next version and back out —
//! whole, by range, around lost and corrupt nodes — by its owner and a granted provider
//! only; a failed upload stores nothing; erasure takes every block; a crash midway leaves
//! a journal that the next start collects.

use std::collections::BTreeSet;

use ehr_records::attachments::{AttachmentPolicy, ByteRange, Known};
use ehr_records::{AttachmentDownload, AttachmentInput};
use futures::StreamExt;

use super::*;

/// A PDF of `len` bytes (a real header, then bytes that do not repeat).
fn pdf(len: usize) -> Vec<u8> {
    let mut data = b"%PDF-1.7\n".to_vec();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

fn png(len: usize) -> Vec<u8> {
    let mut d = b"\x89PNG\r\n\x1a\n".to_vec();
    d.resize(len, 7);
    d
}

/// `data` as a request body arrives: pieces of 64 KiB.
fn body(data: &[u8]) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Unpin {
    let pieces: Vec<_> = data.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    futures::stream::iter(pieces)
}

fn input<'a>(content_type: &'a str, len: usize) -> AttachmentInput<'a> {
    AttachmentInput {
        content_type,
        title: Some("scan.pdf"),
        declared_len: Some(len as u64),
    }
}

/// The whole body, or the error that ended it.
async fn collect(d: AttachmentDownload) -> Result<Vec<u8>, Error> {
    let mut body = d.body;
    let mut out = Vec::new();
    while let Some(piece) = body.next().await {
        out.extend_from_slice(&piece?);
    }
    Ok(out)
}

fn holdings(fx: &Fx) -> Vec<BTreeSet<Cid>> {
    held(&fx.stores)
}

fn held(stores: &[Arc<MemoryStore>]) -> Vec<BTreeSet<Cid>> {
    stores
        .iter()
        .map(|s| s.blocks().into_iter().map(|(c, _)| c).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_streams_into_the_next_version_and_back_whole_by_range_and_around_lost_nodes() {
    let fx = fixture().await;
    let (alice, alice_id) = fx.patient("alice").await;
    let first = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let id = first.record_id;
    // Three full segments and a part: the last segment is short.
    let file = pdf(3 * (1 << 20) + 12_345);
    let stored = fx
        .svc
        .attach(
            &alice,
            id,
            input("application/pdf", file.len()),
            body(&file),
        )
        .await
        .unwrap();
    assert_eq!((stored.stored.version, stored.attachment), (2, 1));
    assert_eq!(stored.size, file.len() as u64);
    assert_eq!(
        stored.sha256,
        alloy::hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&file))
    );

    // The version lists it; the one before stays as it was.
    let v2 = fx.svc.read_record(&alice, id, None).await.unwrap();
    let docs = ehr_records::fhir::documents(&v2.bundle);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].content_type, "application/pdf");
    assert_eq!(docs[0].title.as_deref(), Some("scan.pdf"));
    let v1 = fx.svc.read_record(&alice, id, Some(1)).await.unwrap();
    assert!(ehr_records::fhir::documents(&v1.bundle).is_empty());
    assert!(matches!(
        fx.svc.attachment(&alice, id, Some(1), 1, None).await,
        Err(Error::NotFound(_))
    ));

    let whole = fx.svc.attachment(&alice, id, None, 1, None).await.unwrap();
    assert_eq!(whole.content_type, "application/pdf");
    assert_eq!(whole.range, 0..file.len() as u64);
    assert!(collect(whole).await.unwrap() == file, "the bytes back");

    // A range across a segment boundary, and the tail.
    for (range, want) in [
        (
            ByteRange::From {
                first: (1 << 20) - 10,
                last: Some((2 << 20) + 9),
            },
            (1 << 20) - 10..(2 << 20) + 10,
        ),
        (ByteRange::Suffix(100), file.len() - 100..file.len()),
    ] {
        let d = fx
            .svc
            .attachment(&alice, id, None, 1, Some(range))
            .await
            .unwrap();
        assert_eq!(d.range, want.start as u64..want.end as u64);
        assert!(collect(d).await.unwrap() == file[want], "{range:?}");
    }
    assert!(matches!(
        fx.svc
            .attachment(
                &alice,
                id,
                None,
                1,
                Some(ByteRange::From {
                    first: file.len() as u64,
                    last: None
                })
            )
            .await,
        Err(Error::RangeNotSatisfiable { .. })
    ));

    // Another version (resources added) keeps it; a second attachment is number 2.
    let obs = super::writes::observation(&format!("Patient/{alice_id}"));
    fx.svc.add_to_own_record(&alice, id, &obs).await.unwrap();
    let image = png(5000);
    let second = fx
        .svc
        .attach(&alice, id, input("image/png", image.len()), body(&image))
        .await
        .unwrap();
    assert_eq!((second.stored.version, second.attachment), (4, 2));
    let d = fx.svc.attachment(&alice, id, None, 1, None).await.unwrap();
    assert!(collect(d).await.unwrap() == file, "carried to version 4");
    let d = fx.svc.attachment(&alice, id, None, 2, None).await.unwrap();
    assert_eq!(d.content_type, "image/png");
    assert!(collect(d).await.unwrap() == image);

    // Node 1 corrupt and node 5 down: still read around them.
    let originals = fx.stores[0].blocks();
    for (cid, data) in originals.clone() {
        let mut bad = data.clone();
        bad[0] ^= 1;
        fx.stores[0].corrupt(&cid, bad);
    }
    fx.nodes[4].down.store(true, Ordering::SeqCst);
    let d = fx.svc.attachment(&alice, id, None, 1, None).await.unwrap();
    assert!(collect(d).await.unwrap() == file, "around two lost nodes");
    // A third lost node (node 4 loses the file's full-segment fragments, ~350 KB each,
    // nothing else): the body ends with an error, never short.
    let fragments: Vec<Cid> = fx.stores[3]
        .blocks()
        .into_iter()
        .filter(|(_, b)| b.len() > 100_000)
        .map(|(c, _)| c)
        .collect();
    for c in fragments {
        fx.stores[3].delete(&c).await.unwrap();
    }
    let d = fx.svc.attachment(&alice, id, None, 1, None).await.unwrap();
    match collect(d).await {
        Err(Error::NodesUnavailable { needed: 3, .. }) => {}
        other => panic!("expected the body to end with an error, got {other:?}"),
    }
    for (cid, data) in originals {
        fx.stores[0].corrupt(&cid, data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_readers_the_contract_allows_get_an_attachment_and_each_read_is_logged() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let bob = fx.provider("drbob").await;
    let id = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap()
        .record_id;
    let file = pdf(200_000);
    fx.svc
        .attach(
            &alice,
            id,
            input("application/pdf", file.len()),
            body(&file),
        )
        .await
        .unwrap();
    assert!(matches!(
        fx.svc.attachment(&bob, id, None, 1, None).await,
        Err(Error::AccessDenied { .. })
    ));
    fx.svc
        .grant(&alice, "drbob", Some(id), now() + 3600)
        .await
        .unwrap();
    let before = fx.reads_by(&alice, bob.address()).await;
    let d = fx.svc.attachment(&bob, id, None, 1, None).await.unwrap();
    assert!(collect(d).await.unwrap() == file);
    assert_eq!(fx.reads_by(&alice, bob.address()).await, before + 1);
    // No such attachment.
    assert!(matches!(
        fx.svc.attachment(&bob, id, None, 2, None).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_stores_nothing_and_changes_no_version() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let id = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap()
        .record_id;
    let before = holdings(&fx);
    let version = || async { fx.chain.current_version(id).await.unwrap().version };
    assert_eq!(version().await, 1);
    let file = pdf(2 * (1 << 20) + 100);

    // Declared PDF, bytes PNG.
    let image = png(3 << 20);
    match fx
        .svc
        .attach(
            &alice,
            id,
            input("application/pdf", image.len()),
            body(&image),
        )
        .await
    {
        Err(Error::InvalidInput { field: "body", .. }) => {}
        other => panic!("{other:?}"),
    }
    // A type not allowed, before anything is read.
    assert!(matches!(
        fx.svc
            .attach(&alice, id, input("text/html", 10), body(b"<html></html>"))
            .await,
        Err(Error::InvalidInput {
            field: "content_type",
            ..
        })
    ));
    // The body breaks off after two segments.
    let mut pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        file.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    pieces.truncate(40);
    pieces.push(Err(std::io::Error::other("connection reset")));
    match fx
        .svc
        .attach(
            &alice,
            id,
            input("application/pdf", file.len()),
            futures::stream::iter(pieces),
        )
        .await
    {
        Err(Error::InvalidInput {
            field: "body",
            message,
        }) => {
            assert!(message.contains("connection reset"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Fewer bytes than declared.
    assert!(matches!(
        fx.svc
            .attach(
                &alice,
                id,
                input("application/pdf", file.len() + 1),
                body(&file)
            )
            .await,
        Err(Error::InvalidInput { field: "body", .. })
    ));
    // Three nodes down midway: fewer than k + 1 left.
    fx.nodes[2].down.store(true, Ordering::SeqCst);
    fx.nodes[3].down.store(true, Ordering::SeqCst);
    fx.nodes[4].down.store(true, Ordering::SeqCst);
    let r = fx
        .svc
        .attach(
            &alice,
            id,
            input("application/pdf", file.len()),
            body(&file),
        )
        .await;
    assert!(matches!(r, Err(Error::NodesUnavailable { .. })), "{r:?}");
    for n in &fx.nodes {
        n.down.store(false, Ordering::SeqCst);
    }
    assert_eq!(holdings(&fx), before, "no block left behind");
    assert_eq!(version().await, 1);

    // Over the limit, as the bytes come (no length declared).
    drop(fx.svc);
    let small = Service::with_attachment_policy(
        restart(&fx._dir, &fx.chain, &fx.nodes).await,
        AttachmentPolicy {
            allowed: vec![Known::Pdf],
            max_bytes: 1 << 20,
        },
    );
    let (_, alice) = small.login("alice", PW, "t").await.unwrap();
    let alice = alice.patient().unwrap();
    let open = AttachmentInput {
        declared_len: None,
        ..input("application/pdf", 0)
    };
    assert!(matches!(
        small.attach(&alice, id, open, body(&file)).await,
        Err(Error::AttachmentTooLarge { max: 1048576 })
    ));
    assert_eq!(held(&fx.stores), before, "no block left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_takes_every_block_of_an_attachment() {
    let fx = fixture().await;
    let before = holdings(&fx);
    let (alice, _) = fx.patient("alice").await;
    let id = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap()
        .record_id;
    // 40 segments (the suite keeps files at most 64 MiB; the walk of deeper trees is the
    // store's test).
    let file = pdf((40 << 20) + 1);
    fx.svc
        .attach(
            &alice,
            id,
            input("application/pdf", file.len()),
            body(&file),
        )
        .await
        .unwrap();
    assert!(holdings(&fx)[0].len() > 41 + 2);
    let receipt = fx.svc.delete_account(&alice, PW, "t").await.unwrap();
    assert!(receipt.nodes.iter().all(|n| n.confirmed), "{receipt:?}");
    assert_eq!(holdings(&fx), before, "every block gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_collects_an_attachment_upload_cut_short() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    fx.svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let before = holdings(&fx);
    // What a crash midway leaves: the token's entry, a "blocks" line, the blocks.
    let leaf = b"a fragment of a segment".to_vec();
    let cid = ehr_store::raw_cid(&leaf);
    for store in &fx.stores[..2] {
        store.put_block(&cid, &leaf).await.unwrap();
    }
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(fx._dir.path().join("uploads.journal"))
        .unwrap();
    std::io::Write::write_all(
        &mut journal,
        format!(
            "{{\"op\":\"begin\",\"manifest\":\"attachment-00\",\"fragments\":[],\"notes_tx\":true}}\n\
             {{\"op\":\"blocks\",\"manifest\":\"attachment-00\",\"cids\":[\"{cid}\"]}}\n"
        )
        .as_bytes(),
    )
    .unwrap();
    drop(fx.svc);
    let _restarted = restart(&fx._dir, &fx.chain, &fx.nodes).await;
    assert_eq!(
        held(&fx.stores),
        before,
        "the cut-short upload's blocks collected"
    );
}

/// A custodian releases an attachment's key share under the record's logged access, once
/// per (reader, nonce, attachment), wrapped so that it opens only as that attachment's; the
/// attachment number is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custodians_release_an_attachments_share_once_and_only_as_signed() {
    use ehr_records::node::manifest::{RecordManifest, attachment_aad};
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let id = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap()
        .record_id;
    let file = pdf(100_000);
    fx.svc
        .attach(
            &alice,
            id,
            input("application/pdf", file.len()),
            body(&file),
        )
        .await
        .unwrap();
    let bob = fx.provider("drbob").await;
    fx.svc
        .grant(&alice, "drbob", Some(id), now() + 3600)
        .await
        .unwrap();
    let info = fx.chain.info().await.unwrap();
    let domain = node::domain(info.chain_id, info.contract);
    let bob_key = ehr_records::Reader::signer(&bob);
    let (reader_sk, reader_pk) = ehr_crypto::wrap::derive_keypair(&[9; 32]);
    let record = fx.chain.record(id).await.unwrap();
    let cid = node::manifest::manifest_cid(record.digest, record.codec).unwrap();
    let block = fx.svc.block(&cid.to_string()).await.unwrap();
    let manifest = RecordManifest::decode_block(&cid, &block).unwrap();
    let nonce = U256::from(77u64) << 32 | U256::from(2u32);
    fx.chain.log_access(bob_key, id, nonce).await.unwrap();
    let request = |attachment: u32| {
        ShareRequest::sign(bob_key, &domain, id, 2, nonce, now() + 60, &reader_pk)
            .unwrap()
            .for_attachment(bob_key, &domain, attachment)
            .unwrap()
            .with_manifest(block.clone())
    };
    let node = &fx.nodes[0];
    let first = request(1);
    let resp = node.release_share(&first).await.unwrap();
    assert_eq!(resp.x, 1);
    // It opens as attachment 1's share, and not as the record key's.
    let entry = &manifest.attachments[0];
    let ctx = entry
        .stream_context(manifest.patient, manifest.uid, 0)
        .record;
    let aad = first.response_aad(&domain);
    let share =
        ehr_crypto::wrap::unwrap_key_share(&reader_sk, &ctx, 1, &aad, &resp.wrapped).unwrap();
    assert_eq!(
        entry.share_digests[0],
        ehr_crypto::dispersal::key_share_digest(1, &share.share)
    );
    assert_ne!(attachment_aad(0), node::CUSTODIAN_AAD);
    assert_eq!(node.release_share(&first).await, Err(NodeError::Replayed));
    // The record key's share under the same logged access is another key: released.
    assert_eq!(node.release_share(&request(0)).await.unwrap().x, 1);
    // No attachment 2; and a number changed after signing is somebody else's request.
    assert!(matches!(
        node.release_share(&request(2)).await,
        Err(NodeError::NotFound(_))
    ));
    let mut tampered = ShareRequest::sign(bob_key, &domain, id, 2, nonce, now() + 60, &reader_pk)
        .unwrap()
        .with_manifest(block.clone());
    tampered.attachment = 1;
    assert_eq!(
        node.release_share(&tampered).await,
        Err(NodeError::NotLogged)
    );
}
