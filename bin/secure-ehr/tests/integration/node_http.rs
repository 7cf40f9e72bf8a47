//! One `secure-ehr node` process on anvil, against raw HTTP clients: a body is refused on
//! its headers (no token, a wrong token, too large for the route) while the client is still
//! sending it; requests beyond the in-flight cap are answered 503; a node without a token
//! takes only writes signed by an organisation on chain, and deletes a block only for one
//! that stored it (unless started open); a trickling client is cut off; and the node
//! speaks HTTPS with a certificate the test makes, trusted by `RemoteNode` through a CA file.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ehr_chain::testing::{ANVIL_DEV_KEY, Anvil};
use ehr_chain::{PrivateKeySigner, Registry, RpcRegistry};
use ehr_node::RemoteNode;
use ehr_records::node::Node;

use crate::common::{Proc, spawn_listening};

const TOKEN: &str = "node-token-for-http-tests";

/// A failure guard only: an answer that does not come within this long never comes.
const GUARD: Duration = Duration::from_secs(20);

/// What a block PUT declares it will send: under the node's 80 MiB block limit, so only the
/// token can refuse it early.
const DECLARED: usize = 64 << 20;

fn node_cmd(dir: &Path, rpc: &str, contract: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secure-ehr"));
    cmd.args(["--data-dir", dir.to_str().unwrap(), "node"])
        .args(["--listen", "127.0.0.1:0"])
        .args(["--chain-rpc", rpc, "--contract", contract])
        .env_remove("SECURE_EHR_NODE_TOKEN");
    cmd
}

fn host_port(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .into()
}

/// Sends `head` and then up to `body_bytes` of body on another thread (as fast as the
/// server takes it), and returns the status line of the answer, read while that thread may
/// still be sending, plus how many body bytes had been handed to the socket by then.
fn answer_while_sending(addr: &str, head: &str, body_bytes: usize) -> (String, usize) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let sender = std::thread::spawn(move || {
        let chunk = vec![0u8; 64 << 10];
        while counter.load(std::sync::atomic::Ordering::SeqCst) < body_bytes
            && !stop.load(std::sync::atomic::Ordering::SeqCst)
        {
            if writer.write_all(&chunk).is_err() {
                return;
            }
            counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::SeqCst);
        }
        // Then hold the connection open without finishing the body.
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no answer within {GUARD:?} while the body was incomplete: {e}"),
        }
    }
    let sent_then = sent.load(std::sync::atomic::Ordering::SeqCst);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sender.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    (text.lines().next().unwrap_or("").to_owned(), sent_then)
}

/// One request on a fresh connection; the status line.
fn status_of(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

async fn chain() -> (Anvil, String) {
    let anvil = Anvil::spawn().unwrap();
    let admin: PrivateKeySigner = ANVIL_DEV_KEY.parse().unwrap();
    let rpc = RpcRegistry::deploy(&anvil.url, &admin).await.unwrap();
    let contract = rpc.contract().to_string();
    (anvil, contract)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_refuses_bodies_on_their_headers_and_caps_requests_in_flight() {
    let (anvil, contract) = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = node_cmd(dir.path(), &anvil.url, &contract);
    cmd.env("SECURE_EHR_NODE_TOKEN", TOKEN)
        .args(["--max-in-flight", "4"]);
    let node = spawn_listening(cmd, "node");
    let addr = host_port(&node.url);
    let cid = ehr_store::raw_cid(b"some block");

    tokio::task::spawn_blocking(move || {
        // No token, then a wrong one: 401 while 64 MiB are still to come (at most a few MiB
        // sit in socket buffers when the answer arrives).
        for auth in ["", "Authorization: Bearer not-the-token\r\n"] {
            let head = format!(
                "PUT /node/blocks/{cid} HTTP/1.1\r\nHost: n\r\n{auth}Content-Length: {DECLARED}\r\n\r\n"
            );
            let (status, sent) = answer_while_sending(&addr, &head, DECLARED);
            assert!(status.starts_with("HTTP/1.1 401"), "{auth:?}: {status}");
            assert!(sent < DECLARED, "{auth:?}: the whole body was taken first");
            eprintln!("PUT {auth:?}: {status} after {} KiB of {} KiB sent", sent >> 10, DECLARED >> 10);
        }
        // A share request is small: one that says it is 64 MiB is refused at once.
        let head = format!(
            "POST /node/shares HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\nContent-Length: {DECLARED}\r\n\r\n"
        );
        let (status, sent) = answer_while_sending(&addr, &head, DECLARED);
        assert!(status.starts_with("HTTP/1.1 413"), "{status}");
        assert!(sent < DECLARED);

        // Four share requests waiting for bodies that never come hold the four slots...
        let info = "GET /node/info HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n";
        assert!(status_of(&addr, info).starts_with("HTTP/1.1 200"));
        let holders: Vec<TcpStream> = (0..4)
            .map(|_| {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.write_all(
                    b"POST /node/shares HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n{",
                )
                .unwrap();
                s
            })
            .collect();
        // ...so the next request is turned away (once the server has taken all four in).
        let started = Instant::now();
        let busy = loop {
            let status = status_of(&addr, info);
            if status.starts_with("HTTP/1.1 503") {
                break status;
            }
            assert!(started.elapsed() < GUARD, "never refused: {status}");
            std::thread::sleep(Duration::from_millis(20));
        };
        eprintln!("fifth request: {busy}");
        drop(holders);
        let started = Instant::now();
        while !status_of(&addr, info).starts_with("HTTP/1.1 200") {
            assert!(started.elapsed() < GUARD, "the slots were never given back");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The right token still stores a block.
        let data = b"some block";
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(GUARD)).unwrap();
        write!(
            s,
            "PUT /node/blocks/{cid} HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            data.len()
        )
        .unwrap();
        s.write_all(data).unwrap();
        let mut got = String::new();
        let _ = s.read_to_string(&mut got);
        assert!(got.starts_with("HTTP/1.1 204"), "{got}");
    })
    .await
    .unwrap();
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_token_takes_only_organisations_signed_writes_unless_started_open() {
    use ehr_chain::RegistryExt;
    let (anvil, contract) = chain().await;
    let admin: PrivateKeySigner = ANVIL_DEV_KEY.parse().unwrap();
    let registry = RpcRegistry::connect(&anvil.url, contract.parse().unwrap())
        .await
        .unwrap();
    let reg_a = PrivateKeySigner::random();
    let reg_b = PrivateKeySigner::random();
    registry
        .add_organisation(&admin, reg_a.address(), "A")
        .await
        .unwrap();
    let (b_id, _) = registry
        .add_organisation(&admin, reg_b.address(), "B")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_listening(
        node_cmd(&dir.path().join("a"), &anvil.url, &contract),
        "node",
    );
    let unsigned = RemoteNode::new(1, &node.url, None).unwrap();
    let as_org = |key: &PrivateKeySigner| {
        RemoteNode::new(1, &node.url, None)
            .unwrap()
            .with_signer(key.clone())
    };
    let (a, b, stranger) = (
        as_org(&reg_a),
        as_org(&reg_b),
        as_org(&PrivateKeySigner::random()),
    );
    let data = b"organisation A's block".to_vec();
    let cid = ehr_store::raw_cid(&data);
    // Unsigned, or signed by a key that is no organisation's: refused.
    assert_eq!(
        unsigned.put_block(&cid, &data).await.unwrap_err(),
        ehr_node::NodeError::BadSignature
    );
    assert_eq!(
        stranger.put_block(&cid, &data).await.unwrap_err(),
        ehr_node::NodeError::Denied
    );
    a.put_block(&cid, &data).await.unwrap();
    assert_eq!(unsigned.get_block(&cid).await.unwrap(), data);
    // B did not store it: B cannot delete it.
    assert_eq!(
        b.delete_block(&cid).await.unwrap_err(),
        ehr_node::NodeError::Denied
    );
    assert_eq!(unsigned.get_block(&cid).await.unwrap(), data);
    // Both store the same bytes: A's delete drops A's claim, B's the block.
    b.put_block(&cid, &data).await.unwrap();
    a.delete_block(&cid).await.unwrap();
    assert_eq!(unsigned.get_block(&cid).await.unwrap(), data);
    b.delete_block(&cid).await.unwrap();
    assert!(unsigned.get_block(&cid).await.is_err());
    // A removed organisation's registrar is refused (once the node's 10 s cache passes).
    registry.remove_organisation(&admin, b_id).await.unwrap();
    tokio::time::sleep(ehr_node::writers::ORG_CACHE_TTL + Duration::from_millis(200)).await;
    assert_eq!(
        b.put_block(&cid, &data).await.unwrap_err(),
        ehr_node::NodeError::Denied
    );
    // Who stored what survives a restart of the node.
    a.put_block(&cid, &data).await.unwrap();
    drop(node);
    let node = spawn_listening(
        node_cmd(&dir.path().join("a"), &anvil.url, &contract),
        "node",
    );
    let a = RemoteNode::new(1, &node.url, None)
        .unwrap()
        .with_signer(reg_a.clone());
    let c = RemoteNode::new(1, &node.url, None)
        .unwrap()
        .with_signer(admin.clone());
    assert_eq!(
        c.delete_block(&cid).await.unwrap_err(),
        ehr_node::NodeError::Denied,
        "the admin, as organisation 0, did not store it"
    );
    a.delete_block(&cid).await.unwrap();
    drop(node);

    let mut cmd = node_cmd(&dir.path().join("b"), &anvil.url, &contract);
    cmd.arg("--insecure-open-node");
    let node = spawn_listening(cmd, "node");
    let open = RemoteNode::new(1, &node.url, None).unwrap();
    let data = b"anyone may store this".to_vec();
    let cid = ehr_store::raw_cid(&data);
    open.put_block(&cid, &data).await.unwrap();
    assert_eq!(open.get_block(&cid).await.unwrap(), data);
    // ...but nobody may delete.
    assert!(open.delete_block(&cid).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_cuts_off_a_trickling_client() {
    let (anvil, contract) = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = node_cmd(dir.path(), &anvil.url, &contract);
    cmd.env("SECURE_EHR_NODE_TOKEN", TOKEN)
        .args(["--header-timeout", "1"]);
    let node = spawn_listening(cmd, "node");
    let addr = host_port(&node.url);
    tokio::task::spawn_blocking(move || {
        let (lines, elapsed) = crate::serve_cli::trickle_headers(&addr);
        eprintln!("node: trickling client cut off after {lines} header lines, {elapsed:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_over_https_with_a_ca_file() {
    let (anvil, contract) = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = crate::common::TestCerts::new(dir.path());
    let mut cmd = node_cmd(&dir.path().join("node"), &anvil.url, &contract);
    cmd.env("SECURE_EHR_NODE_TOKEN", TOKEN)
        .arg("--tls-cert")
        .arg(&certs.cert)
        .arg("--tls-key")
        .arg(&certs.key);
    let node: Proc = spawn_listening(cmd, "node");
    assert!(node.url.starts_with("https://127.0.0.1:"), "{}", node.url);

    let ca = std::fs::read(&certs.ca).unwrap();
    let remote = RemoteNode::with_ca(1, &node.url, Some(TOKEN.into()), Some(&ca)).unwrap();
    let data = b"a fragment over TLS".to_vec();
    let cid = ehr_store::raw_cid(&data);
    remote.put_block(&cid, &data).await.unwrap();
    assert_eq!(remote.get_block(&cid).await.unwrap(), data);
    remote.info().await.unwrap();

    // Without the CA the certificate is not trusted.
    let untrusting = RemoteNode::new(1, &node.url, Some(TOKEN.into())).unwrap();
    let e = untrusting.info().await.unwrap_err();
    assert!(
        matches!(e, ehr_records::node::NodeError::Unreachable(_)),
        "{e}"
    );
    // Plain HTTP to the HTTPS port gets nothing.
    let plain = RemoteNode::new(1, &node.url.replace("https://", "http://"), None).unwrap();
    assert!(plain.info().await.is_err());
}

/// anvil behind an HTTPS JSON-RPC front (anvil speaks plain HTTP only): each POST is
/// passed on as it is. Returns the front's `https://` URL.
async fn https_chain_front(anvil_url: &str, certs: &crate::common::TestCerts) -> String {
    let upstream = anvil_url.to_owned();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(axum::routing::post(
        move |body: axum::body::Bytes| async move {
            let answer = http
                .post(&upstream)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            ([("content-type", "application/json")], answer)
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let options = ehr_serve::Options {
        tls: Some(ehr_serve::TlsConfig::from_pem_files(&certs.cert, &certs.key).unwrap()),
        ..Default::default()
    };
    tokio::spawn(ehr_serve::serve(
        listener,
        app,
        options,
        std::future::pending(),
    ));
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_reaches_an_https_chain_with_a_ca_file() {
    let (anvil, contract) = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = crate::common::TestCerts::new(dir.path());
    let rpc = https_chain_front(&anvil.url, &certs).await;

    // Without the CA the node cannot reach the chain, and says so.
    let mut child = node_cmd(&dir.path().join("a"), &rpc, &contract)
        .env("SECURE_EHR_NODE_TOKEN", TOKEN)
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
        if started.elapsed() > GUARD {
            let _ = child.kill();
            panic!("the node started on a chain whose certificate it cannot check");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("connecting to the chain"), "{err}");

    // With it, the node starts (it has read the contract's code through the front).
    let mut cmd = node_cmd(&dir.path().join("b"), &rpc, &contract);
    cmd.env("SECURE_EHR_NODE_TOKEN", TOKEN)
        .arg("--ca-file")
        .arg(&certs.ca);
    let node = spawn_listening(cmd, "node");
    RemoteNode::new(1, &node.url, None)
        .unwrap()
        .info()
        .await
        .unwrap();
}
