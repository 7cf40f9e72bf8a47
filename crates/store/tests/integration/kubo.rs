//! The Kubo RPC backend against a real IPFS node (js-ipfs in process, started by the test
//! on a free loopback port, repo in a temp dir): the conformance suite, and cross-checks of
//! our importer and CAR code with the node's own `add`, `cat`, `dag/export`, `dag/import`.

use crate::ipfs;

use std::time::Duration;

use ehr_store::testing::{CHUNK, conformance, test_bytes};
use ehr_store::{BlobStore, KuboStore, MemoryStore, Profile, car, cid_of};

fn store(node: &ipfs::IpfsNode) -> KuboStore {
    KuboStore::new(&node.url)
        .unwrap()
        .with_lookup_timeout(Duration::from_millis(500))
}

#[tokio::test]
async fn kubo_store_against_a_real_ipfs_node() {
    let node = ipfs::IpfsNode::start();
    let kubo = store(&node);

    // The conformance suite, with files up to 2 levels of links… of modest size over HTTP.
    conformance(&kubo, 3 * CHUNK + 1).await;

    // The node's `ipfs add` agrees with our importer, and `cat` gives the bytes back.
    for (i, size) in [0, 1, CHUNK, CHUNK + 1, 5 * CHUNK + 7]
        .into_iter()
        .enumerate()
    {
        let data = test_bytes(size, 40 + i as u64);
        for (version, profile) in [(1, Profile::KuboV1), (0, Profile::KuboV0)] {
            let theirs = kubo.add(data.clone(), version).await.unwrap();
            let ours = cid_of(&data[..], profile).unwrap();
            assert_eq!(theirs.to_string(), ours.to_string(), "{size} B v{version}");
            assert_eq!(kubo.cat(&ours).await.unwrap(), data);
            let mut out = Vec::new();
            ehr_store::cat(&kubo, &ours, &mut out).await.unwrap();
            assert!(out == data, "verified cat over the node, {size} B");
        }
    }

    // dag/export from the node reads and verifies with our CAR reader…
    let data = test_bytes(3 * CHUNK + 3, 77);
    let root = kubo.add(data.clone(), 1).await.unwrap();
    let exported = kubo.dag_export(&root).await.unwrap();
    let mem = MemoryStore::new();
    let roots = car::import(&mut &exported[..], &mem).await.unwrap();
    assert_eq!(roots, vec![root]);
    let mut out = Vec::new();
    ehr_store::cat(&mem, &root, &mut out).await.unwrap();
    assert!(out == data);

    // …and a CAR we write imports into the node, which then serves the file.
    let data = test_bytes(2 * CHUNK + 9, 78);
    let mem = MemoryStore::new();
    let root = ehr_store::add(&mem, &data[..], Profile::KuboV1)
        .await
        .unwrap();
    let mut ours = Vec::new();
    car::export(&mem, &root, &mut ours).await.unwrap();
    kubo.dag_import(ours).await.unwrap();
    assert!(kubo.has(&root).await.unwrap());
    assert_eq!(kubo.cat(&root).await.unwrap(), data);
    kubo.pin(&root).await.unwrap();
}

#[tokio::test]
async fn kubo_store_reports_an_unreachable_node() {
    // Port 9 (discard) on loopback: nothing listens there.
    let kubo = KuboStore::new("http://127.0.0.1:9").unwrap();
    let err = kubo.get(&ehr_store::raw_cid(b"x")).await.unwrap_err();
    assert!(matches!(err, ehr_store::Error::Http(_)), "{err}");
    assert!(KuboStore::new("127.0.0.1:5001").is_err(), "scheme required");
}

/// POSTs an RPC call the store has no method for; the HTTP status and body.
async fn rpc(node: &ipfs::IpfsNode, path_and_query: &str) -> (u16, String) {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/api/v0/{path_and_query}", node.url))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn owned_kubo_store_pins_what_it_puts_and_really_deletes() {
    let node = ipfs::IpfsNode::start();
    let owned = KuboStore::owned(&node.url)
        .unwrap()
        .with_lookup_timeout(Duration::from_millis(500));
    let plain = store(&node);
    conformance(&owned, CHUNK + 1).await;

    // A put through the owned store is pinned directly: the IPFS node's garbage collection
    // keeps it, where it drops a block put through the plain client.
    let mine = owned.put(&test_bytes(1000, 90)).await.unwrap();
    let theirs = plain.put(&test_bytes(1000, 91)).await.unwrap();
    let (status, body) = rpc(&node, &format!("pin/ls?arg={mine}&type=direct")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rpc(&node, "repo/gc").await.0, 200);
    assert!(owned.has(&mine).await.unwrap(), "owned block collected");
    assert!(!plain.has(&theirs).await.unwrap(), "unpinned block kept");

    // Deleting unpins and removes it: nothing of it is left in the IPFS node, not even its
    // bytes in the repo's files.
    assert!(repo_holds(&node, &test_bytes(1000, 90)));
    owned.delete(&mine).await.unwrap();
    assert!(!owned.has(&mine).await.unwrap());
    assert!(!repo_holds(&node, &test_bytes(1000, 90)));
    assert_ne!(rpc(&node, &format!("pin/ls?arg={mine}")).await.0, 200);
    owned.delete(&mine).await.unwrap();

    // A block the organisation pinned itself is not erased behind its back, and the
    // delete says so instead of reporting a removal that did not happen: through either
    // client (the node answers `block/rm` of a pinned block 200 with an error inside).
    let pinned = plain.put(&test_bytes(1000, 92)).await.unwrap();
    assert_eq!(rpc(&node, &format!("pin/add?arg={pinned}")).await.0, 200);
    for client in [&owned, &plain] {
        let err = client.delete(&pinned).await.unwrap_err();
        assert!(err.to_string().contains("pinned"), "{err}");
        assert!(client.has(&pinned).await.unwrap());
    }
}

/// Whether any file in the node's repo contains `bytes`.
fn repo_holds(node: &ipfs::IpfsNode, bytes: &[u8]) -> bool {
    fn walk(dir: &std::path::Path, bytes: &[u8]) -> bool {
        std::fs::read_dir(dir).unwrap().any(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path, bytes)
            } else {
                let data = std::fs::read(&path).unwrap_or_default();
                data.windows(bytes.len()).any(|w| w == bytes)
            }
        })
    }
    walk(&node.repo(), bytes)
}
