//! The record as blocks: a DAG-CBOR manifest linking the fragments and one share block per
//! custodian, stored on that custodian's node alone; records of the earlier JSON format
//! still read; an independent IPFS implementation (js-ipfs) walks a record.

use super::*;
use ehr_records::node::manifest::{self, Custodians, RecordManifest, ShareRef};
use ehr_store::cids::{DAG_CBOR, RAW};
use std::collections::BTreeSet;

/// The stored manifest of `cid`, read from the first node's store that holds it.
async fn stored_manifest(fx: &Fx, cid: &str) -> (Cid, RecordManifest) {
    let cid = ehr_store::parse_cid(cid).unwrap();
    let block = manifest_block(fx, &cid).await;
    (cid, RecordManifest::decode_block(&cid, &block).unwrap())
}

async fn manifest_block(fx: &Fx, cid: &Cid) -> Vec<u8> {
    for store in &fx.stores {
        if let Ok(block) = store.get(cid).await {
            return block;
        }
    }
    panic!("no node holds manifest {cid}")
}

/// The nodes (from 0) that keep manifest `cid`: its n − k + 1 = 3 holders.
fn holders(cid: &Cid) -> Vec<usize> {
    manifest::manifest_order(cid, 5).take(3).collect()
}

/// The nodes (from 0) whose store has `cid`.
async fn keepers(fx: &Fx, cid: &Cid) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, store) in fx.stores.iter().enumerate() {
        if store.has(cid).await.unwrap() {
            out.push(i);
        }
    }
    out
}

/// A logged share request of `reader` for version 1 of `record_id`, as a reader makes it
/// (carrying the manifest, for custodians that do not keep it).
async fn logged_request(
    fx: &Fx,
    reader: &PrivateKeySigner,
    record_id: u64,
    n: u64,
) -> ShareRequest {
    let req = unsent_request(fx, reader, record_id, n).await;
    let record = fx.chain.record(record_id).await.unwrap();
    let cid = manifest::manifest_cid(record.digest, record.codec).unwrap();
    req.with_manifest(manifest_block(fx, &cid).await)
}

/// [`logged_request`] without the manifest.
async fn unsent_request(
    fx: &Fx,
    reader: &PrivateKeySigner,
    record_id: u64,
    n: u64,
) -> ShareRequest {
    let info = fx.chain.info().await.unwrap();
    let domain = node::domain(info.chain_id, info.contract);
    let nonce = U256::from(n) << 32 | U256::from(1u32);
    fx.chain.log_access(reader, record_id, nonce).await.unwrap();
    let (_, reader_pk) = ehr_crypto::wrap::derive_keypair(&[n as u8; 32]);
    ShareRequest::sign(reader, &domain, record_id, 1, nonce, now() + 60, &reader_pk).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_custodian_alone_holds_its_share_and_erasing_it_is_real() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let stored = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    assert!(
        stored.manifest_cid.starts_with("bafyrei"),
        "{}",
        stored.manifest_cid
    );
    let (cid, m) = stored_manifest(&fx, &stored.manifest_cid).await;
    assert_eq!(cid.codec(), DAG_CBOR);
    assert_eq!(m.format, manifest::FORMAT);
    // The custodians are the chain's node set, named by its epoch, not copied.
    let set = fx.chain.node_set().await.unwrap();
    assert!(set.epoch >= 1);
    assert_eq!(m.custodians, Custodians::NodeSetEpoch(set.epoch));
    // The chain has the manifest's digest under the dag-cbor codec.
    let on_chain = fx.chain.record(1).await.unwrap();
    assert_eq!(on_chain.codec, DAG_CBOR);
    assert_eq!(on_chain.digest.as_slice(), cid.hash().digest());

    // Node i holds fragment i and share i, and the manifest if it is one of its holders:
    // nothing else, no other share. (Compared by multihash: the memory store, like flatfs,
    // keys blocks by it.)
    let digests = |cids: &[Cid]| -> BTreeSet<Vec<u8>> {
        cids.iter().map(|c| c.hash().digest().to_vec()).collect()
    };
    for (i, store) in fx.stores.iter().enumerate() {
        let held: Vec<Cid> = store.blocks().into_iter().map(|(c, _)| c).collect();
        let share = m.share_cid(i).unwrap();
        let mut want = vec![m.fragment_cid(i), share];
        if holders(&cid).contains(&i) {
            want.push(cid);
        }
        let (held, want) = (digests(&held), digests(&want));
        assert_eq!(held, want, "node {}", i + 1);
        assert_eq!(
            store.get(&share).await.unwrap().len(),
            manifest::SHARE_BLOCK_LEN
        );
        for j in (0..5).filter(|&j| j != i) {
            assert!(!store.has(&m.share_cid(j).unwrap()).await.unwrap());
        }
    }

    // Node 2 erases its share: its custodian has nothing left to release…
    let bob = fx.provider("drbob").await;
    fx.svc
        .grant(&alice, "drbob", Some(1), now() + 3600)
        .await
        .unwrap();
    let bob_key = ehr_records::Reader::signer(&bob);
    // (It answered once before, so the erasure must also end what it keeps in memory.)
    let first = logged_request(&fx, bob_key, 1, 6).await;
    assert_eq!(fx.nodes[1].release_share(&first).await.unwrap().x, 2);
    let share = m.share_cid(1).unwrap();
    fx.nodes[1].delete_block(&share).await.unwrap();
    assert!(!fx.stores[1].has(&share).await.unwrap());
    let req = logged_request(&fx, bob_key, 1, 7).await;
    match fx.nodes[1].release_share(&req).await {
        Err(NodeError::NotFound(msg)) => assert!(msg.contains("no share"), "{msg}"),
        other => panic!("expected not found, got {other:?}"),
    }
    // …while the others still answer, and the record reads from them.
    assert_eq!(fx.nodes[0].release_share(&req).await.unwrap().x, 1);
    let read = fx.svc.read_record(&bob, 1, None).await.unwrap();
    assert_eq!(read.form.as_ref().unwrap().patient_name, "Alice Doe");
    // With two more shares gone, fewer than k custodians can answer.
    for i in [2, 3] {
        fx.nodes[i]
            .delete_block(&m.share_cid(i).unwrap())
            .await
            .unwrap();
    }
    assert!(matches!(
        fx.svc.read_record(&bob, 1, None).await,
        Err(Error::NodesUnavailable {
            reachable: 2,
            needed: 3
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_is_kept_by_n_minus_k_plus_one_nodes_and_reads_survive_losing_two_of_them() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let stored = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let cid = ehr_store::parse_cid(&stored.manifest_cid).unwrap();
    let holders = holders(&cid);
    assert_eq!(keepers(&fx, &cid).await, {
        let mut h = holders.clone();
        h.sort_unstable();
        h
    });

    // A custodian without the manifest refuses a request that carries none, or another block.
    let outsider = (0..5).find(|i| !holders.contains(i)).unwrap();
    let alice_key = ehr_records::Reader::signer(&alice).clone();
    let bare = unsent_request(&fx, &alice_key, 1, 21).await;
    match fx.nodes[outsider].release_share(&bare).await {
        Err(NodeError::NotFound(msg)) => assert!(msg.contains("carries none"), "{msg}"),
        other => panic!("expected not found, got {other:?}"),
    }
    let forged = unsent_request(&fx, &alice_key, 1, 22).await;
    let mut block = manifest_block(&fx, &cid).await;
    *block.last_mut().unwrap() ^= 1;
    match fx.nodes[outsider]
        .release_share(&forged.with_manifest(block))
        .await
    {
        Err(NodeError::BadRequest(msg)) => assert!(msg.contains("not"), "{msg}"),
        other => panic!("expected a bad request, got {other:?}"),
    }
    // With the manifest the reader sends, it answers.
    let fine = logged_request(&fx, &alice_key, 1, 23).await;
    assert_eq!(
        usize::from(fx.nodes[outsider].release_share(&fine).await.unwrap().x),
        outsider + 1
    );

    // Two of its holders down: one copy is left, and the custodians that do not keep the
    // manifest take the copy the reader sends (checked against the chain's digest).
    for &h in &holders[..2] {
        fx.nodes[h].down.store(true, Ordering::SeqCst);
    }
    let read = fx.svc.read_record(&alice, 1, None).await.unwrap();
    assert_eq!(read.form.unwrap().health_condition, "Asthma");
    for h in 0..5 {
        fx.nodes[h].down.store(false, Ordering::SeqCst);
    }

    // A holder down at upload: the next node in the manifest's order takes its copy, so the
    // manifest is still on n − k + 1 nodes. (Which nodes hold it follows from its CID, so
    // upload until a version's holders include the node that is down.)
    fx.nodes[1].down.store(true, Ordering::SeqCst);
    let mut found = false;
    for attempt in 0..40 {
        let v = fx
            .svc
            .update_form(&alice, 1, &form("Alice Doe", &format!("Asthma {attempt}")))
            .await
            .unwrap();
        let cid = ehr_store::parse_cid(&v.manifest_cid).unwrap();
        let order: Vec<usize> = manifest::manifest_order(&cid, 5).collect();
        let kept = keepers(&fx, &cid).await;
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(!kept.contains(&1));
        if order[..3].contains(&1) {
            let mut want: Vec<usize> = order.iter().copied().filter(|&i| i != 1).take(3).collect();
            want.sort_unstable();
            assert_eq!(kept, want);
            found = true;
            break;
        }
    }
    assert!(found, "node 2 was never a holder in 40 uploads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_stored_with_a_json_manifest_still_reads() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let alice_key = ehr_records::Reader::signer(&alice).clone();
    // What the earlier version stored: a format-1 JSON manifest (raw codec) copying the
    // custodians' keys and holding every wrapped share, on every node.
    let set = fx.chain.node_set().await.unwrap();
    let keys: Vec<_> = set.nodes.iter().map(|(_, k)| *k).collect();
    let mut uid = [0u8; 32];
    ehr_crypto::fill_random(&mut uid);
    let ctx = ehr_crypto::RecordContext {
        patient: alice_key.address().0.0,
        record_id: uid,
        version: 1,
    };
    let bundle = form("Alice Old", "Gout")
        .to_bundle(ehr_records::fhir::Date::today_utc())
        .unwrap();
    let mut rng = ehr_crypto::rng();
    let t = ehr_crypto::Threshold::new(3, 5).unwrap();
    let d = ehr_crypto::dispersal::disperse(t, &ctx, bundle.to_json_vec(), &mut rng).unwrap();
    let shares = d
        .key_shares
        .iter()
        .zip(&keys)
        .map(|(s, k)| {
            let pk = ehr_crypto::wrap::PublicKey(k.0);
            let w = ehr_crypto::wrap::wrap_key_share(&pk, &ctx, s, node::CUSTODIAN_AAD, &mut rng);
            ShareRef::Inline(w.unwrap())
        })
        .collect();
    let old = RecordManifest {
        format: manifest::LEGACY_FORMAT,
        patient: alice_key.address(),
        uid: uid.into(),
        version: 1,
        created_at: now(),
        custodians: Custodians::Keys(keys),
        shares,
        dispersal: d.manifest,
        attachments: Vec::new(),
    };
    let block = old.encode().unwrap();
    assert!(block.starts_with(b"{\"format\":1,"));
    let cid = ehr_store::raw_cid(&block);
    let fragments = d.fragments.to_vecs();
    for (i, n) in fx.nodes.iter().enumerate() {
        n.put_block(&old.fragment_cid(i), &fragments[i])
            .await
            .unwrap();
        n.put_block(&cid, &block).await.unwrap();
    }
    let digest = ehr_chain::B256::from_slice(cid.hash().digest());
    let (id, _) = fx.chain.add_record(&alice_key, digest, RAW).await.unwrap();

    // The owner and a granted provider read it as before.
    let read = fx.svc.read_record(&alice, id, None).await.unwrap();
    assert_eq!(read.form.as_ref().unwrap().patient_name, "Alice Old");
    assert_eq!(read.manifest_cid, cid.to_string());
    let bob = fx.provider("drbob").await;
    fx.svc
        .grant(&alice, "drbob", Some(id), now() + 3600)
        .await
        .unwrap();
    assert_eq!(
        fx.svc
            .read_record(&bob, id, None)
            .await
            .unwrap()
            .form
            .unwrap()
            .patient_name,
        "Alice Old"
    );
    // A new version of it is written in the new format, linked to the same uid.
    let v2 = fx
        .svc
        .update_form(&alice, id, &form("Alice Old", "Gout, treated"))
        .await
        .unwrap();
    assert!(v2.manifest_cid.starts_with("bafyrei"));
    let (_, m2) = stored_manifest(&fx, &v2.manifest_cid).await;
    assert_eq!(m2.uid, old.uid);
    let again = fx.svc.read_record(&bob, id, Some(1)).await.unwrap();
    assert_eq!(again.form, read.form);
}

/// A CAR v1 of `blocks` with root `root`.
fn car(root: &Cid, blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let header = ehr_store::car::encode_header(&[*root]);
    ehr_store::pb::put_varint(&mut out, header.len() as u64);
    out.extend(header);
    for (cid, data) in blocks {
        let c = cid.to_bytes();
        ehr_store::pb::put_varint(&mut out, (c.len() + data.len()) as u64);
        out.extend(c);
        out.extend(data);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_ipfs_walks_a_record_and_imports_its_car() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let stored = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let (cid, m) = stored_manifest(&fx, &stored.manifest_cid).await;
    let manifest_block = manifest_block(&fx, &cid).await;
    let ipfs = crate::ipfs::IpfsNode::start();
    let kubo = ehr_store::KuboStore::new(&ipfs.url).unwrap();

    // A CAR of the record as a reader sees it: the manifest, every fragment, node 1's share.
    let mut blocks = vec![(cid, manifest_block.clone())];
    for i in 0..5 {
        let f = m.fragment_cid(i);
        blocks.push((f, fx.stores[i].get(&f).await.unwrap()));
    }
    let own = m.share_cid(0).unwrap();
    blocks.push((own, fx.stores[0].get(&own).await.unwrap()));
    kubo.dag_import(car(&cid, &blocks)).await.unwrap();
    for (c, data) in &blocks {
        assert_eq!(&kubo.get(c).await.unwrap(), data, "{c} after the import");
    }

    // `dag get` with js-ipfs's own codecs (@ipld/dag-cbor, @ipld/dag-json: the HTTP `dag/get`
    // of js-ipfs 0.18 fails on any block with links): the CAR's blocks check out, the manifest
    // decodes, re-encodes to the very same bytes (canonical), and shows its links.
    let car_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(car_file.path(), car(&cid, &blocks)).unwrap();
    let out = std::process::Command::new("node")
        .arg(crate::ipfs::js_dir().join("dag-get.mjs"))
        .arg(car_file.path())
        .arg(cid.to_string())
        .current_dir(crate::ipfs::js_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["format"], 2);
    assert_eq!(json["k"], 3);
    assert_eq!(json["n"], 5);
    assert_eq!(json["version"], 1);
    let set = fx.chain.node_set().await.unwrap();
    assert_eq!(json["epoch"], set.epoch);
    assert_eq!(json["share_digests"].as_array().unwrap().len(), 5);
    for i in 0..5 {
        assert_eq!(json["fragments"][i]["/"], m.fragment_cid(i).to_string());
        assert_eq!(json["shares"][i]["/"], m.share_cid(i).unwrap().to_string());
    }
    // With the other shares there too, `dag export` walks every link: all 11 blocks.
    for i in 1..5 {
        let s = m.share_cid(i).unwrap();
        kubo.put_block(&s, &fx.stores[i].get(&s).await.unwrap())
            .await
            .unwrap();
    }
    let exported = kubo.dag_export(&cid).await.unwrap();
    let (roots, got) = ehr_store::car::read(&mut exported.as_slice())
        .await
        .unwrap();
    assert_eq!(roots, vec![cid]);
    let got: BTreeSet<Cid> = got.into_iter().map(|(c, _)| c).collect();
    let mut want: BTreeSet<Cid> = m.links().into_iter().collect();
    want.insert(cid);
    assert_eq!(want.len(), 11);
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custodian_still_finds_its_share_after_the_node_set_changes() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let stored = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let (_, m) = stored_manifest(&fx, &stored.manifest_cid).await;
    let before = fx.chain.node_set().await.unwrap();
    assert_eq!(m.custodians, Custodians::NodeSetEpoch(before.epoch));
    // The admin sets the node set again (same nodes, in reverse order): a new epoch, whose
    // positions no longer say which share a node holds.
    let mut reordered = before.clone();
    reordered.nodes.reverse();
    fx.chain.set_node_set(&fx.admin, &reordered).await.unwrap();
    assert_eq!(fx.chain.node_set().await.unwrap().epoch, before.epoch + 1);
    // Each custodian finds its share by the block its own store holds.
    let bob = fx.provider("drbob").await;
    fx.svc
        .grant(&alice, "drbob", Some(1), now() + 3600)
        .await
        .unwrap();
    let req = logged_request(&fx, ehr_records::Reader::signer(&bob), 1, 11).await;
    for (i, n) in fx.nodes.iter().enumerate() {
        assert_eq!(usize::from(n.release_share(&req).await.unwrap().x), i + 1);
    }
}
