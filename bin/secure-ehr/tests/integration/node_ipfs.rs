//! `secure-ehr node --store kubo:URL`: a node process keeping its blocks in an IPFS node
//! (js-ipfs, an independent implementation, over its Kubo RPC API on loopback, offline, no
//! bootstrap peers). The node's blocks are in the IPFS node, pinned, and served back after
//! a restart; a delete (orphan collection, share erasure) removes them from it; bad
//! `--store` values and an IPFS node that does not answer stop the node at start with a
//! clear error. The five-node test (`nodes.rs`) runs on js-ipfs too.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ehr_chain::testing::{ANVIL_DEV_KEY, Anvil};
use ehr_chain::{PrivateKeySigner, Registry, RpcRegistry};
use ehr_node::RemoteNode;
use ehr_records::node::Node;
use ehr_store::{BlobStore, KuboStore};

use crate::common::{Proc, spawn_listening};
use crate::ipfs::IpfsNode;

const TOKEN: &str = "node-token-for-ipfs-tests";

fn node_cmd(dir: &Path, rpc: &str, contract: &str, store: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secure-ehr"));
    cmd.args(["--data-dir", dir.to_str().unwrap(), "node"])
        .args(["--listen", "127.0.0.1:0"])
        .args([
            "--chain-rpc",
            rpc,
            "--contract",
            contract,
            "--chain-wait",
            "0",
        ])
        .env("SECURE_EHR_NODE_TOKEN", TOKEN)
        .env_remove("SECURE_EHR_NODE_STORE");
    if let Some(store) = store {
        cmd.args(["--store", store]);
    }
    cmd
}

/// Runs `cmd`, which must exit (within a generous guard) unsuccessfully; its stderr.
fn failure(mut cmd: Command) -> String {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the node started");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// The IPFS node's own view: whether it holds `cid` and pins it directly.
async fn pinned_directly(ipfs: &IpfsNode, cid: &ehr_store::Cid) -> bool {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/api/v0/pin/ls?arg={cid}&type=direct", ipfs.url))
        .send()
        .await
        .unwrap();
    resp.status().is_success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_keeps_its_blocks_in_an_ipfs_node() {
    let anvil = Anvil::spawn().unwrap();
    let admin: PrivateKeySigner = ANVIL_DEV_KEY.parse().unwrap();
    let contract = RpcRegistry::deploy(&anvil.url, &admin)
        .await
        .unwrap()
        .contract()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node");

    // Bad values: a clear error, and the node does not start.
    for (store, says) in [
        ("fs", "unknown store \"fs\""),
        ("kubo:127.0.0.1:5001", "bad Kubo API URL"),
        (
            "kubo:http://127.0.0.1:5001/api/v0",
            "only scheme, host and port",
        ),
    ] {
        let err = failure(node_cmd(&node_dir, &anvil.url, &contract, Some(store)));
        assert!(err.contains(says), "--store {store}: {err}");
    }
    // Nothing answers at the address: said at start (port 9, discard, is closed on loopback).
    let err = failure(node_cmd(
        &node_dir,
        &anvil.url,
        &contract,
        Some("kubo:http://127.0.0.1:9"),
    ));
    assert!(
        err.contains("reaching the IPFS node's RPC API at http://127.0.0.1:9"),
        "{err}"
    );

    let ipfs = IpfsNode::start();
    let store = format!("kubo:{}", ipfs.url);
    let spawn = || {
        spawn_listening(
            node_cmd(&node_dir, &anvil.url, &contract, Some(&store)),
            "node",
        )
    };
    let proc: Proc = spawn();
    let node = RemoteNode::new(1, &proc.url, Some(TOKEN.into())).unwrap();
    let data = b"a fragment kept in the organisation's IPFS node".to_vec();
    let cid = ehr_store::raw_cid(&data);
    node.put_block(&cid, &data).await.unwrap();
    assert_eq!(node.get_block(&cid).await.unwrap(), data);

    // The block is in the IPFS node, pinned directly (its GC keeps it), and not on the
    // node's own disk.
    let theirs = KuboStore::new(&ipfs.url).unwrap();
    assert_eq!(theirs.get(&cid).await.unwrap(), data);
    assert!(pinned_directly(&ipfs, &cid).await);
    assert!(!node_dir.join("segments").exists());

    // Restarted, the node serves it from the IPFS node again (its key stays in its dir).
    let key = std::fs::read(node_dir.join("node.key")).unwrap();
    drop(proc);
    let proc = spawn();
    assert_eq!(std::fs::read(node_dir.join("node.key")).unwrap(), key);
    let node = RemoteNode::new(1, &proc.url, Some(TOKEN.into())).unwrap();
    assert_eq!(node.get_block(&cid).await.unwrap(), data);

    // A delete through the node removes it from the IPFS node, pin and all.
    node.delete_block(&cid).await.unwrap();
    assert!(!theirs.has(&cid).await.unwrap());
    assert!(!pinned_directly(&ipfs, &cid).await);
    assert!(node.get_block(&cid).await.is_err());

    // A block the organisation pinned itself is not erased behind its back: the delete
    // fails instead of reporting an erasure that did not happen.
    let other = b"pinned by the organisation".to_vec();
    let other_cid = theirs.put(&other).await.unwrap();
    theirs.pin(&other_cid).await.unwrap();
    assert!(node.delete_block(&other_cid).await.is_err());
    assert_eq!(theirs.get(&other_cid).await.unwrap(), other);
}
