//! Five `secure-ehr node` processes on 127.0.0.1 in front of a real anvil chain, driven by the
//! records service through their HTTP API: two stopped → reads work; three stopped → a
//! clear error; a corrupted fragment → the read works and the node is named in the log; a
//! share request without a logged access → refused. Run twice: the nodes keeping their
//! blocks in their segment files (the default), and each node in its own js-ipfs node
//! (`--store kubo:URL`), where the blocks are then looked up through js-ipfs's own API.

use std::io::Write;
use std::process::Command;

use crate::common::{Proc, spawn_listening};
use crate::ipfs::IpfsNode;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ehr_chain::testing::{ANVIL_DEV_KEY, Anvil};
use ehr_chain::{PrivateKeySigner, Registry, RpcRegistry, U256};
use ehr_node::RemoteNode;
use ehr_records::accounts::{AccountParams, AccountStore, SystemClock};
use ehr_records::fhir::RecordForm;
use ehr_records::node::Node;
use ehr_records::node::{self, NodeError, ShareRequest};
use ehr_records::{Error, Service, ServiceParts};
use ehr_store::BlobStore;

const PW: &str = "correct horse battery";
const TOKEN: &str = "node-token-for-tests";

fn spawn_node(dir: &std::path::Path, rpc: &str, contract: &str, ipfs: Option<&IpfsNode>) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secure-ehr"));
    cmd.args([
        "--data-dir",
        dir.to_str().unwrap(),
        "node",
        "--listen",
        "127.0.0.1:0",
    ])
    .args(["--chain-rpc", rpc, "--contract", contract])
    .env("SECURE_EHR_NODE_TOKEN", TOKEN);
    if let Some(ipfs) = ipfs {
        cmd.arg("--store").arg(format!("kubo:{}", ipfs.url));
    }
    spawn_listening(cmd, "node")
}

/// Captures what the service logs.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What the service logs, for every test of this binary that looks at it (one global
/// subscriber per process).
fn log() -> &'static Log {
    static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        log
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_node_processes() {
    five_nodes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_node_processes_on_ipfs() {
    five_nodes(true).await;
}

/// The five-node scenario; with `on_ipfs`, every node keeps its blocks in a js-ipfs node
/// of its own.
async fn five_nodes(on_ipfs: bool) {
    let log = log();
    let ipfs: Vec<IpfsNode> = if on_ipfs {
        (0..5).map(|_| IpfsNode::start()).collect()
    } else {
        Vec::new()
    };

    let anvil = Anvil::spawn().unwrap();
    let admin: PrivateKeySigner = ANVIL_DEV_KEY.parse().unwrap();
    let rpc = RpcRegistry::deploy(&anvil.url, &admin).await.unwrap();
    let contract = rpc.contract().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut procs: Vec<Option<Proc>> = (1..=5)
        .map(|i| {
            Some(spawn_node(
                &dir.path().join(format!("node-{i}")),
                &anvil.url,
                &contract,
                ipfs.get(i - 1),
            ))
        })
        .collect();
    let nodes: Vec<Arc<dyn Node>> = procs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let url = &p.as_ref().unwrap().url;
            Arc::new(RemoteNode::new(i + 1, url, Some(TOKEN.into())).unwrap()) as Arc<dyn Node>
        })
        .collect();
    let registry: Arc<dyn Registry> = Arc::new(rpc);
    let svc = Service::new(ServiceParts {
        registry: registry.clone(),
        contract_admin: admin,
        accounts: AccountStore::open(
            dir.path().join("accounts"),
            AccountParams::INSECURE_FAST,
            Arc::new(SystemClock),
        )
        .unwrap(),
        nodes: nodes.clone(),
        k: 3,
        data_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();

    svc.register_patient("alice", PW).await.unwrap();
    let (_, alice) = svc.login("alice", PW, "t").await.unwrap();
    let alice = alice.patient().unwrap();
    let form = RecordForm {
        patient_name: "Alice Doe".into(),
        birth_date: "1990-05-17".into(),
        address: "1 Main St".into(),
        phone: "+44 20 7946 0958".into(),
        health_condition: "Asthma".into(),
    };
    let stored = svc.put_form(&alice, &form).await.unwrap();
    svc.create_admin("admin", PW).unwrap();
    let (_, admin_s) = svc.login("admin", PW, "t").await.unwrap();
    let admin_s = admin_s.admin().unwrap();
    svc.add_provider(&admin_s, "drbob", PW, &Default::default())
        .await
        .unwrap();
    let (_, bob) = svc.login("drbob", PW, "t").await.unwrap();
    let bob = bob.provider().unwrap();
    svc.grant(&alice, "drbob", None, now() + 3600)
        .await
        .unwrap();
    let read = svc.read_record(&bob, stored.record_id, None).await.unwrap();
    assert_eq!(read.form.unwrap(), form);

    // Every node holds one fragment, the manifest's n − k + 1 = 3 holders the manifest; none
    // holds the name. On IPFS they are in the IPFS node (asked through its own API) and the
    // node's directory has no segments.
    let manifest_cid = ehr_store::parse_cid(&stored.manifest_cid).unwrap();
    let manifest = ehr_records::node::RecordManifest::decode_block(
        &manifest_cid,
        &svc.block(&stored.manifest_cid).await.unwrap(),
    )
    .unwrap();
    let holders: Vec<usize> = ehr_records::node::manifest::manifest_order(&manifest_cid, 5)
        .take(3)
        .collect();
    for i in 1..=5 {
        let node_dir = dir.path().join(format!("node-{i}"));
        assert_eq!(
            nodes[i - 1].get_block(&manifest_cid).await.is_ok(),
            holders.contains(&(i - 1)),
            "node {i} keeps the manifest if and only if it is one of its holders {holders:?}"
        );
        let blocks = match ipfs.get(i - 1) {
            Some(ipfs) => {
                assert!(!node_dir.join("segments").exists());
                // (js-ipfs looks for a block it lacks until the timeout, even offline.)
                let theirs = ehr_store::KuboStore::new(&ipfs.url)
                    .unwrap()
                    .with_lookup_timeout(std::time::Duration::from_secs(1));
                assert_eq!(
                    theirs.has(&manifest_cid).await.unwrap(),
                    holders.contains(&(i - 1))
                );
                assert!(theirs.has(&manifest.fragment_cid(i - 1)).await.unwrap());
                ipfs.repo()
            }
            None => node_dir.join("segments"),
        };
        let files = walk(&blocks);
        if ipfs.is_empty() {
            assert!(
                files
                    .iter()
                    .any(|f| f.extension().is_some_and(|e| e == "seg"))
            );
        }
        for entry in files {
            let data = std::fs::read(&entry).unwrap();
            assert!(
                !data.windows(9).any(|w| w == b"Alice Doe"),
                "plaintext on node {i}"
            );
        }
    }

    // A share request without a logged access is refused over HTTP.
    let info = registry.info().await.unwrap();
    let domain = node::domain(info.chain_id, info.contract);
    let (_, pk) = ehr_crypto::wrap::derive_keypair(&[7; 32]);
    let nonce = U256::from(12345u64) << 32 | U256::from(1u32);
    let req = ShareRequest::sign(
        ehr_records::Reader::signer(&bob),
        &domain,
        1,
        1,
        nonce,
        now() + 60,
        &pk,
    )
    .unwrap();
    assert_eq!(
        nodes[0].release_share(&req).await,
        Err(NodeError::NotLogged)
    );
    // A custodian that does not keep a manifest (it is on n − k + 1 = 3 nodes) answers with
    // the copy the request carries, over HTTP; without one it has nothing to go by. (A second
    // record: no custodian has its share cached from a read.)
    let second = svc.put_form(&alice, &form).await.unwrap();
    let second_cid = ehr_store::parse_cid(&second.manifest_cid).unwrap();
    let outsider = (0..5)
        .find(|i| {
            !ehr_records::node::manifest::manifest_order(&second_cid, 5)
                .take(3)
                .any(|h| h == *i)
        })
        .unwrap();
    let bob_key = ehr_records::Reader::signer(&bob);
    let nonce = U256::from(777u64) << 32 | U256::from(1u32);
    use ehr_chain::RegistryExt;
    registry
        .log_access(bob_key, second.record_id, nonce)
        .await
        .unwrap();
    let req = ShareRequest::sign(
        bob_key,
        &domain,
        second.record_id,
        1,
        nonce,
        now() + 60,
        &pk,
    )
    .unwrap();
    assert!(
        matches!(
            nodes[outsider].release_share(&req).await,
            Err(NodeError::NotFound(_))
        ),
        "node {} keeps no manifest of record {}",
        outsider + 1,
        second.record_id
    );
    let block = svc.block(&second.manifest_cid).await.unwrap();
    let answer = nodes[outsider]
        .release_share(&req.with_manifest(block))
        .await
        .unwrap();
    assert_eq!(usize::from(answer.x), outsider + 1);

    // And a block delete without the token is refused.
    let no_token = RemoteNode::new(1, &procs[0].as_ref().unwrap().url, None).unwrap();
    let some_cid = ehr_store::raw_cid(b"x");
    assert!(no_token.delete_block(&some_cid).await.is_err());

    // Corrupt node 1's fragment where it lies on disk (in the node's segment file, or in
    // its IPFS node's repo): the read still works and node 1 is named.
    let frag_cid = manifest.fragment_cid(0);
    let fragment = nodes[0].get_block(&frag_cid).await.unwrap();
    let blocks = match ipfs.first() {
        Some(ipfs) => ipfs.repo(),
        None => dir.path().join("node-1").join("segments"),
    };
    let (seg, at) = walk(&blocks)
        .into_iter()
        .find_map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            let at = bytes.windows(fragment.len()).position(|w| w == fragment)?;
            Some((f, at))
        })
        .expect("the fragment is in a file on disk");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[at + 10] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let read = svc.read_record(&bob, 1, None).await.unwrap();
    assert_eq!(read.form.unwrap().patient_name, "Alice Doe");
    // Named with its address: the other run of this test logs into the same place.
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("node=\"{}\"", nodes[0].name())) && l.contains("fragment")),
        "node 1 not named in the log:\n{text}"
    );

    // Node 1 repaired (the fragment stored again; an IPFS node takes a block it has as
    // stored, so there the bad copy is deleted first); two nodes stopped: reads still work.
    if on_ipfs {
        nodes[0].delete_block(&frag_cid).await.unwrap();
    }
    nodes[0].put_block(&frag_cid, &fragment).await.unwrap();
    assert_eq!(nodes[0].get_block(&frag_cid).await.unwrap(), fragment);
    procs[3] = None;
    procs[4] = None;
    let read = svc.read_record(&bob, 1, None).await.unwrap();
    assert_eq!(read.form.unwrap().patient_name, "Alice Doe");

    // A third stopped: a clear error.
    procs[2] = None;
    let err = svc.read_record(&bob, 1, None).await.unwrap_err();
    assert!(
        matches!(err, Error::NodesUnavailable { needed: 3, .. }),
        "{err}"
    );
    assert_eq!(err.to_string(), "2 of the 3 needed nodes reachable");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
