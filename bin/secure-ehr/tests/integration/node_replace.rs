//! `secure-ehr node replace N`, end to end: node 2's directory is wiped, the deployment
//! reports it down and reads around it; `node replace 2` gives it a new key, rebuilds its
//! record and ledger fragments and re-issues its key shares; then `serve` has all five nodes,
//! a read with nodes 1 and 3 gone needs node 2's fragment and share (of a record uploaded
//! before the replacement, and one uploaded while node 2 was down), and a lost server is
//! restored from the archive with node 2 among the k nodes.

use std::path::Path;

use crate::restore::{admin_init, alice_and_drbob, lose_the_server_disk, restore, serve, stop};
use crate::serve_cli::{BUNDLE, PW, bin, cli, fails, ok};

fn replace(data: &Path, args: &[&str]) -> std::process::Output {
    bin()
        .args(["--data-dir", data.to_str().unwrap(), "node", "replace"])
        .args(args)
        .output()
        .unwrap()
}

fn node_key(data: &Path, i: usize) -> String {
    std::fs::read_to_string(
        data.join("nodes")
            .join(format!("node-{i}"))
            .join("node.key"),
    )
    .unwrap()
}

#[test]
fn a_wiped_node_is_replaced_and_serves_its_shares() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pw = format!("{PW}\n");
    admin_init(&data);
    let server = serve(&data);
    let url = server.url.clone();
    alice_and_drbob(&data, &url, &dir.path().join("record.json"));
    ok(cli(
        &data,
        &url,
        "alice",
        &["grant", "drbob", "--days", "7"],
        "",
    ));
    // A running server holds the data directory: no replacement under it.
    let err = fails(replace(&data, &["2"]));
    assert!(err.contains("server is running"), "{err}");
    let said = stop(server);
    assert!(said.contains("ledger archived through block"), "{said}");

    // Node 2 is wiped: reported down, and reads go around it; a record uploaded now has
    // no fragment or share on node 2.
    let old_key2 = node_key(&data, 2);
    std::fs::remove_dir_all(data.join("nodes").join("node-2")).unwrap();
    let server = serve(&data);
    let url = server.url.clone();
    let out = ok(cli(&data, &url, "alice", &["status"], ""));
    assert!(out.contains("4 of 5 nodes reachable"), "{out}");
    ok(cli(
        &data,
        &url,
        "bob",
        &["login", "drbob", "--password-stdin"],
        &pw,
    ));
    let out = ok(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(out.contains("Jane Doe"), "{out}");
    ok(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
    let second = dir.path().join("second.json");
    std::fs::write(&second, BUNDLE.replace("Jane", "Janet")).unwrap();
    ok(cli(
        &data,
        &url,
        "alice",
        &["record", "put", second.to_str().unwrap()],
        "",
    ));
    stop(server);

    let said = ok(replace(&data, &["2"]));
    assert!(said.contains("node 2 replaced"), "{said}");
    assert!(said.contains("2 record versions"), "{said}");
    assert_ne!(node_key(&data, 2), old_key2, "a new key");
    assert!(!data.join("nodes").join("node-2.replacing").exists());

    // All five nodes again, and the chain lists node 2's new key (serve checks it).
    let server = serve(&data);
    let url = server.url.clone();
    let out = ok(cli(&data, &url, "alice", &["status"], ""));
    assert!(out.contains("5 of 5 nodes reachable"), "{out}");
    stop(server);

    // Nodes 1 and 3 away: a read needs node 2's fragment and key share, of the record
    // uploaded before the wipe and of the one uploaded while node 2 was down.
    let nodes = data.join("nodes");
    let away = dir.path().join("away");
    std::fs::create_dir_all(&away).unwrap();
    for i in [1, 3] {
        std::fs::rename(
            nodes.join(format!("node-{i}")),
            away.join(format!("node-{i}")),
        )
        .unwrap();
    }
    let server = serve(&data);
    let url = server.url.clone();
    let out = ok(cli(&data, &url, "alice", &["status"], ""));
    assert!(out.contains("3 of 5 nodes reachable"), "{out}");
    ok(cli(
        &data,
        &url,
        "bob",
        &["login", "drbob", "--password-stdin"],
        &pw,
    ));
    let out = ok(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(
        out.contains("Jane Doe") && out.contains("Janet Doe"),
        "{out}"
    );
    let said = stop(server);
    assert!(said.contains("ledger archived through block"), "{said}");

    // The server's disk is lost too: the archive (epochs from before and after the
    // replacement) is restored from nodes 2, 4 and 5.
    lose_the_server_disk(&data);
    let said = ok(restore(&data));
    assert!(said.contains("restored:"), "{said}");
    let server = serve(&data);
    let url = server.url.clone();
    for token in ["alice", "bob"] {
        let _ = std::fs::remove_file(data.join(format!("{token}.token")));
    }
    ok(cli(
        &data,
        &url,
        "bob",
        &["login", "drbob", "--password-stdin"],
        &pw,
    ));
    let out = ok(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(
        out.contains("Jane Doe") && out.contains("Janet Doe"),
        "{out}"
    );
    stop(server);
}

#[test]
fn a_node_that_still_has_its_key_is_replaced_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pw = format!("{PW}\n");
    admin_init(&data);
    let server = serve(&data);
    let url = server.url.clone();
    alice_and_drbob(&data, &url, &dir.path().join("record.json"));
    stop(server);
    // A second record while node 1 is away: node 1 holds no share of it, so the recovery
    // below cannot use node 1 for it and takes other helpers for that record.
    let nodes = data.join("nodes");
    let away = dir.path().join("away");
    std::fs::create_dir_all(&away).unwrap();
    std::fs::rename(nodes.join("node-1"), away.join("node-1")).unwrap();
    let server = serve(&data);
    let url = server.url.clone();
    ok(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
    let second = dir.path().join("second.json");
    std::fs::write(&second, BUNDLE.replace("Jane", "Janet")).unwrap();
    ok(cli(
        &data,
        &url,
        "alice",
        &["record", "put", second.to_str().unwrap()],
        "",
    ));
    stop(server);
    std::fs::rename(away.join("node-1"), nodes.join("node-1")).unwrap();

    // Refused, and nothing changes: the node, its key, no directory left behind.
    let key3 = node_key(&data, 3);
    let err = fails(replace(&data, &["3"]));
    assert!(
        err.contains("still has its key") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(node_key(&data, 3), key3);
    let err = fails(replace(&data, &["6"]));
    assert!(err.contains("nodes 1 to 5"), "{err}");
    // What an interrupted earlier attempt left is started over.
    std::fs::create_dir_all(nodes.join("node-3.replacing")).unwrap();
    std::fs::write(nodes.join("node-3.replacing").join("node.key"), "junk").unwrap();

    let said = ok(replace(&data, &["3", "--force"]));
    assert!(
        said.contains("node 3 replaced") && said.contains("old directory kept"),
        "{said}"
    );
    assert_ne!(node_key(&data, 3), key3);
    let kept: Vec<_> = std::fs::read_dir(&nodes)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.starts_with("node-3."))
        .collect();
    assert!(
        kept.len() == 1 && kept[0].starts_with("node-3.replaced-"),
        "{kept:?}"
    );

    assert!(said.contains("item by item"), "{said}");

    // Nodes 1 and 2 away: the reads need node 3's new fragments and shares.
    for i in [1, 2] {
        std::fs::rename(
            nodes.join(format!("node-{i}")),
            away.join(format!("node-{i}")),
        )
        .unwrap();
    }
    let server = serve(&data);
    let url = server.url.clone();
    ok(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
    let out = ok(cli(&data, &url, "alice", &["record", "get", "1"], ""));
    assert!(out.contains("Jane Doe"), "{out}");
    let out = ok(cli(&data, &url, "alice", &["record", "get", "2"], ""));
    assert!(out.contains("Janet Doe"), "{out}");
    stop(server);
}
