//! Leaving with a remote node down (issue 18 item 3), end to end: the embedded chain
//! (`serve --rpc`) and five `secure-ehr node` processes. Alice deletes her account while
//! a node holding her manifests is stopped: the receipt says four nodes confirmed and that
//! one did not, and the provider she shared with reads "erased" at once. The node, started
//! again, serves nothing until it has destroyed its part (what its own manifests name at
//! once, the rest when the server sends the orders again): no node serves her blocks.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::common::Proc;
use crate::embedded_nodes::RpcDeployment;
use crate::serve_cli::{BUNDLE, PW, cli, fails, ok};

/// The status of `GET path` at `addr` (the body may be binary: a block).
fn status_of(addr: &str, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    std::str::from_utf8(&reply[9..12]).unwrap().parse().unwrap()
}

#[test]
fn a_node_down_during_the_deletion_destroys_its_part_before_it_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let net = RpcDeployment::new(dir.path());
    let (server_addr, urls) = (&net.server_addr, &net.urls);
    let node_dir = |i: usize| net.node_dir(i);
    let node_addr = |i: usize| format!("127.0.0.1:{}", net.ports[i - 1]);
    let server = net.serve();
    server.line("SecureEHR listening on ", 60);
    let start_node = |i: usize| net.start_node(i);
    let mut procs: Vec<Option<Proc>> = (1..=5).map(|i| Some(start_node(i))).collect();
    server.line("SecureEHR ready", 90);

    let url = format!("http://{server_addr}");
    let pw = format!("{PW}\n");
    let scratch = dir.path().join("cli");
    std::fs::create_dir_all(&scratch).unwrap();
    let login = |who: &str, name: &str| {
        ok(cli(
            &scratch,
            &url,
            who,
            &["login", name, "--password-stdin"],
            &pw,
        ));
    };
    login("admin", "admin");
    ok(cli(
        &scratch,
        &url,
        "admin",
        &["provider", "add", "drbob", "--password-stdin"],
        &pw,
    ));
    ok(cli(
        &scratch,
        &url,
        "alice",
        &["patient", "register", "alice", "--password-stdin"],
        &pw,
    ));
    login("alice", "alice");
    login("bob", "drbob");
    let file = dir.path().join("record.json");
    std::fs::write(&file, BUNDLE).unwrap();
    for _ in 0..2 {
        ok(cli(
            &scratch,
            &url,
            "alice",
            &["record", "put", file.to_str().unwrap()],
            "",
        ));
    }
    ok(cli(
        &scratch,
        &url,
        "alice",
        &["grant", "drbob", "--days", "7"],
        "",
    ));
    let list = ok(cli(
        &scratch,
        &url,
        "alice",
        &["record", "list", "--json"],
        "",
    ));
    let list: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    let manifests: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["versions"][0]["manifest_cid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(manifests.len(), 2);
    // Which nodes hold which manifest (each is on several); the node stopped is one that
    // holds one.
    let holds = |i: usize, cid: &str| match status_of(&node_addr(i), &format!("/node/blocks/{cid}"))
    {
        200 => true,
        404 => false,
        other => panic!("node {i}: {other}"),
    };
    let held: Vec<usize> = (1..=5)
        .map(|i| manifests.iter().filter(|c| holds(i, c)).count())
        .collect();
    let down = 1 + held
        .iter()
        .position(|&n| n > 0)
        .expect("a node holds a manifest");

    // That node stops; alice leaves.
    procs[down - 1].take();
    let out = ok(cli(
        &scratch,
        &url,
        "alice",
        &["account", "delete", "--password-stdin"],
        &pw,
    ));
    assert!(
        out.contains("account deleted; 2 record(s) erased")
            && out.matches(": confirmed (").count() == 4
            && out.contains(&format!("node {down} ({}): not yet", urls[down - 1])),
        "{out}"
    );
    let err = fails(cli(&scratch, &url, "bob", &["patient", "records", "1"], ""));
    assert!(err.contains("410") && err.contains("erased"), "{err}");
    for i in (1..=5).filter(|&i| i != down) {
        for cid in &manifests {
            assert!(!holds(i, cid), "node {i} still serves {cid}");
        }
    }

    // The stopped node comes back. It destroys at once what it can (the records whose
    // manifests it holds) and, until the server sends it the rest (within seconds), it
    // serves nothing — never a block of hers.
    procs[down - 1] = Some(start_node(down));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let statuses: Vec<u16> = manifests
            .iter()
            .map(|cid| status_of(&node_addr(down), &format!("/node/blocks/{cid}")))
            .collect();
        assert!(
            statuses.iter().all(|s| [404, 503].contains(s)),
            "node {down}: {statuses:?}"
        );
        if statuses.iter().all(|&s| s == 404) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {down} still waits for its orders: {statuses:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let log = std::fs::read_to_string(node_dir(down).join("erased.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    let err = fails(cli(&scratch, &url, "bob", &["patient", "records", "1"], ""));
    assert!(err.contains("410"), "{err}");
    drop(server);
}
