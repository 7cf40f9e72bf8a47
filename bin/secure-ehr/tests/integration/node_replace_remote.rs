//! `secure-ehr node replace N --nodes …` for remote nodes, end to end: the embedded chain
//! (`serve --rpc`) and five `secure-ehr node` processes on its `/rpc`. Node 2 is killed
//! and its data directory wiped; a fresh node 2 (a new key) starts at its address; with
//! the server stopped, `node replace 2 --nodes … --node-token …` rebuilds its fragments,
//! manifests and epoch headers from the others, re-issues its key shares through the
//! nodes' `/node/recovery/*` routes (admin-signed orders) and puts the new node set on
//! chain. The server then starts with all five, and a read with nodes 1 and 3 stopped
//! needs node 2's fragment and its re-issued share.

use crate::common::Proc;
use crate::embedded_nodes::{RpcDeployment, TOKEN};
use crate::serve_cli::{BUNDLE, PW, bin, cli, fails, ok};

#[test]
fn a_wiped_remote_node_is_replaced_through_the_nodes_http_apis() {
    let dir = tempfile::tempdir().unwrap();
    let net = RpcDeployment::new(dir.path());
    let data_s = net.data.to_str().unwrap();
    let (server_addr, urls) = (&net.server_addr, &net.urls);
    let node_dir = |i: usize| net.node_dir(i);
    let serve = || net.serve();
    let start_node = |i: usize| net.start_node(i);

    let server = serve();
    server.line("SecureEHR listening on ", 60);
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
    let file = dir.path().join("record.json");
    std::fs::write(&file, BUNDLE).unwrap();
    let out = ok(cli(
        &scratch,
        &url,
        "alice",
        &["record", "put", file.to_str().unwrap()],
        "",
    ));
    assert!(out.contains("with ID: 1"), "{out}");
    ok(cli(
        &scratch,
        &url,
        "alice",
        &["grant", "drbob", "--days", "7"],
        "",
    ));

    // Node 2 is lost: killed, its data directory (its key, its blocks) wiped.
    procs[1].take();
    std::fs::remove_dir_all(node_dir(2)).unwrap();
    // A fresh node 2 at its address (it needs the chain to start, so before the stop).
    procs[1] = Some(start_node(2));
    assert!(server.terminate().success());

    let replace = |args: &[&str]| {
        bin()
            .args(["--data-dir", data_s, "node", "replace"])
            .args(args)
            .output()
            .unwrap()
    };
    let nodes_arg = urls.join(",");
    // Without the token nothing can be stored on node 2.
    let err = fails(replace(&["2", "--nodes", &nodes_arg]));
    assert!(err.contains("--node-token"), "{err}");
    let said = ok(replace(&[
        "2",
        "--nodes",
        &nodes_arg,
        "--node-token",
        TOKEN,
    ]));
    assert!(said.contains("node 2 replaced"), "{said}");
    assert!(said.contains("1 record versions"), "{said}");
    // Done once: node 2 now has the chain's key for node 2.
    let err = fails(replace(&[
        "2",
        "--nodes",
        &nodes_arg,
        "--node-token",
        TOKEN,
    ]));
    assert!(err.contains("it is not lost"), "{err}");

    // The server starts with all five (it checks each node's key against the chain's).
    let server = serve();
    server.line("SecureEHR ready", 90);
    let out = ok(cli(&scratch, &url, "alice", &["status"], ""));
    assert!(out.contains("5 of 5 nodes reachable"), "{out}");

    // Nodes 1 and 3 stopped: the read needs node 2's fragment and re-issued key share.
    procs[0].take();
    procs[2].take();
    login("bob", "drbob");
    let out = ok(cli(&scratch, &url, "bob", &["patient", "records", "1"], ""));
    assert!(
        out.contains("Jane Doe") && out.contains("Diabetes"),
        "{out}"
    );
    drop(server);
}
