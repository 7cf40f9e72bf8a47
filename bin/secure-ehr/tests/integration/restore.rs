//! The design's own proposal, end to end: a server whose disk is lost (chain, accounts,
//! break-glass reasons, archive progress — everything but its admin key file) is rebuilt
//! by `secure-ehr restore --from-nodes` from the ledger archive on the nodes, with two of
//! the five nodes gone, and `serve` opens it: every account logs in as before, records read,
//! the access log (with the break-glass reason) is the same. With fewer than k nodes the
//! restore fails, saying what it found, and writes nothing.

use std::path::Path;
use std::process::Stdio;

use crate::common::{Proc, wait_listening};
use crate::serve_cli::{BUNDLE, PW, bin, cli, fails, ok};

pub(crate) fn admin_init(data: &Path) {
    let mut c = bin()
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["admin", "init", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{PW}\n").as_bytes())
        .unwrap();
    ok(c.wait_with_output().unwrap());
}

pub(crate) fn serve(data: &Path) -> Proc {
    let child = bin()
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(child, "SecureEHR")
}

/// SIGTERM, and what the server printed after it (its clean stop seals the open epoch).
pub(crate) fn stop(server: Proc) -> String {
    let (status, said) = server.terminate();
    assert!(
        status.success(),
        "serve did not stop cleanly: {status}: {said}"
    );
    said
}

pub(crate) fn restore(data: &Path) -> std::process::Output {
    bin()
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["restore", "--from-nodes"])
        .output()
        .unwrap()
}

/// On a fresh server: the admin signed in, provider drbob added, patient alice registered and
/// signed in, and her first record (`BUNDLE`, written to `file`) stored.
pub(crate) fn alice_and_drbob(data: &Path, url: &str, file: &Path) {
    let pw = format!("{PW}\n");
    let steps: [(&str, &[&str], &str); 4] = [
        ("admin", &["login", "admin", "--password-stdin"], &pw),
        (
            "admin",
            &["provider", "add", "drbob", "--password-stdin"],
            &pw,
        ),
        (
            "alice",
            &["patient", "register", "alice", "--password-stdin"],
            &pw,
        ),
        ("alice", &["login", "alice", "--password-stdin"], &pw),
    ];
    for (actor, args, stdin) in steps {
        ok(cli(data, url, actor, args, stdin));
    }
    std::fs::write(file, BUNDLE).unwrap();
    ok(cli(
        data,
        url,
        "alice",
        &["record", "put", file.to_str().unwrap()],
        "",
    ));
}

/// Everything `serve` keeps but the nodes and the admin key file.
pub(crate) fn lose_the_server_disk(data: &Path) {
    std::fs::remove_file(data.join("chain").join("chain.redb")).unwrap();
    for dir in ["accounts", "archive"] {
        std::fs::remove_dir_all(data.join(dir)).unwrap();
    }
    for file in ["emergency-reasons.jsonl", "uploads.journal"] {
        let _ = std::fs::remove_file(data.join(file));
    }
}

#[test]
fn a_lost_server_is_restored_from_any_k_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    admin_init(&data);
    let server = serve(&data);
    let url = server.url.clone();
    let pw = format!("{PW}\n");
    let file = dir.path().join("record.json");
    alice_and_drbob(&data, &url, &file);
    ok(cli(
        &data,
        &url,
        "alice",
        &["grant", "drbob", "--days", "7"],
        "",
    ));
    ok(cli(
        &data,
        &url,
        "bob",
        &["login", "drbob", "--password-stdin"],
        &pw,
    ));
    let out = ok(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(out.contains("Jane Doe"), "{out}");
    ok(cli(&data, &url, "alice", &["revoke", "drbob"], ""));
    ok(cli(
        &data,
        &url,
        "bob",
        &["emergency", "1", "--reason", "unconscious in the ER"],
        "",
    ));
    let log_before = ok(cli(&data, &url, "alice", &["log"], ""));
    assert!(log_before.contains("unconscious in the ER"), "{log_before}");
    let records_before = ok(cli(&data, &url, "alice", &["record", "list", "--json"], ""));
    let said = stop(server);
    assert!(said.contains("ledger archived through block"), "{said}");

    lose_the_server_disk(&data);
    // Two nodes are gone too (n - k = 2), and a third is away for a moment.
    let nodes = data.join("nodes");
    let away = dir.path().join("away");
    std::fs::create_dir_all(&away).unwrap();
    for i in [2, 4, 5] {
        std::fs::rename(
            nodes.join(format!("node-{i}")),
            away.join(format!("node-{i}")),
        )
        .unwrap();
    }

    // With only two of the five nodes, nothing can be rebuilt: it says what it found.
    let out = restore(&data);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "restored from 2 nodes?");
    // Every epoch it found, with how many of the k fragments it got.
    assert!(err.contains("too few good parts to rebuild"), "{err}");
    assert!(err.contains("epoch 0: 2 of 3 fragments needed"), "{err}");
    assert!(
        err.contains("node 2") && err.contains("node 5"),
        "names the missing nodes: {err}"
    );
    assert!(!data.join("chain").join("chain.redb").exists());
    assert!(!data.join("accounts").join("accounts.redb").exists());

    std::fs::rename(away.join("node-5"), nodes.join("node-5")).unwrap();
    let verify = bin()
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["chain", "verify", "--from-nodes"])
        .output()
        .unwrap();
    let said = ok(verify);
    assert!(said.contains("archive verified"), "{said}");
    let said = ok(restore(&data));
    assert!(said.contains("restored:"), "{said}");
    assert!(said.contains("accounts restored: 3"), "{said}");
    assert!(
        said.contains("read around"),
        "names the nodes it read around: {said}"
    );
    // A second restore over a restored directory is refused and changes nothing.
    let err = fails(restore(&data));
    assert!(err.contains("exists"), "{err}");
    let said = ok(bin()
        .args(["--data-dir", data.to_str().unwrap(), "chain", "verify"])
        .output()
        .unwrap());
    assert!(said.starts_with("ok:"), "{said}");

    // It serves again with nodes 2 and 4 still gone: logins, records, the access log.
    let server = serve(&data);
    let url = server.url.clone();
    for token in ["alice", "bob", "admin"] {
        let _ = std::fs::remove_file(data.join(format!("{token}.token")));
    }
    ok(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
    let err = fails(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        "wrong password\n",
    ));
    assert!(err.contains("401") || err.contains("invalid"), "{err}");
    let records_after = ok(cli(&data, &url, "alice", &["record", "list", "--json"], ""));
    assert_eq!(records_after, records_before);
    let log_after = ok(cli(&data, &url, "alice", &["log"], ""));
    assert_eq!(log_after, log_before);
    ok(cli(
        &data,
        &url,
        "bob",
        &["login", "drbob", "--password-stdin"],
        &pw,
    ));
    let out = ok(cli(&data, &url, "alice", &["status"], ""));
    assert!(out.contains("3 of 5 nodes reachable, 3 needed"), "{out}");
    ok(cli(
        &data,
        &url,
        "alice",
        &["grant", "drbob", "--days", "7"],
        "",
    ));
    let out = ok(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(
        out.contains("Jane Doe") && out.contains("Diabetes"),
        "{out}"
    );
    ok(cli(
        &data,
        &url,
        "admin",
        &["login", "admin", "--password-stdin"],
        &pw,
    ));
    stop(server);
}

/// An HTTP request through Python's standard library (an independent client): the body
/// answered, whatever the status.
fn http(url: &str, token: Option<&str>, body: Option<&str>) -> String {
    let script = r#"
import sys, urllib.request, urllib.error
url, token, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, data=body.encode() if body else None)
if token: req.add_header("Authorization", "Bearer " + token)
if body: req.add_header("Content-Type", "application/json")
try: print(urllib.request.urlopen(req).read().decode())
except urllib.error.HTTPError as e: print(e.read().decode())
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, url, token.unwrap_or(""), body.unwrap_or("")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn serve_pruning(data: &Path) -> Proc {
    let child = bin()
        .args(["--data-dir", data.to_str().unwrap()])
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--keep-blocks",
            "1",
            "--rpc",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(child, "SecureEHR")
}

/// What the patient and a `/rpc` client see: the access log, the record's history, the
/// grants, every log of the chain and one old block with its transactions.
fn everything_seen(data: &Path, url: &str) -> Vec<String> {
    let token = std::fs::read_to_string(data.join("alice.token")).unwrap();
    let rpc = |method: &str, params: &str| {
        http(
            &format!("{url}/rpc"),
            None,
            Some(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#
            )),
        )
    };
    let seen = vec![
        ok(cli(data, url, "alice", &["log"], "")),
        ok(cli(data, url, "alice", &["record", "list", "--json"], "")),
        http(&format!("{url}/api/grants"), Some(token.trim()), None),
        http(&format!("{url}/api/access-log"), Some(token.trim()), None),
        rpc(
            "eth_getLogs",
            r#"[{"fromBlock":"earliest","toBlock":"latest"}]"#,
        ),
        rpc("eth_getBlockByNumber", r#"["0x3",true]"#),
    ];
    for s in &seen {
        assert!(!s.contains("\"error\""), "{s}");
    }
    seen
}

#[test]
fn a_pruned_server_answers_every_query_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    admin_init(&data);
    let server = serve_pruning(&data);
    let url = server.url.clone();
    let pw = format!("{PW}\n");
    let file = dir.path().join("record.json");
    alice_and_drbob(&data, &url, &file);
    std::fs::write(&file, BUNDLE.replace("Diabetes", "Asthma")).unwrap();
    ok(cli(
        &data,
        &url,
        "alice",
        &["record", "update", "1", file.to_str().unwrap()],
        "",
    ));
    ok(cli(
        &data,
        &url,
        "alice",
        &["grant", "drbob", "--days", "7"],
        "",
    ));
    ok(cli(
        &data,
        &url,
        "bob",
        &["login", "drbob", "--password-stdin"],
        &pw,
    ));
    ok(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    ok(cli(&data, &url, "alice", &["revoke", "drbob"], ""));
    ok(cli(
        &data,
        &url,
        "bob",
        &["emergency", "1", "--reason", "unconscious in the ER"],
        "",
    ));
    let before = everything_seen(&data, &url);
    stop(server);

    // Restarted, it prunes at once what the archive holds: every answer is the same.
    let server = serve_pruning(&data);
    let url = server.url.clone();
    // (Sessions live in the server's memory: log in again.)
    ok(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let after = everything_seen(&data, &url);
    assert_eq!(after, before);
    stop(server);

    // `chain verify` re-executes the pruned blocks from the archive on the nodes.
    let said = ok(bin()
        .args(["--data-dir", data.to_str().unwrap(), "chain", "verify"])
        .output()
        .unwrap());
    assert!(said.contains("pruned here"), "it was pruned: {said}");
    assert!(said.contains("ok:"), "{said}");
}
