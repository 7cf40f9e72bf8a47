//! `secure-ehr bench` refuses what it cannot measure, with an error naming the limit, and
//! measures records of exactly the size asked for up to that limit.

use std::process::{Command, Output};

/// The largest record the benchmark makes (the JSON API's body limit).
const MAX_RECORD: usize = 1 << 20;

/// `secure-ehr bench args…`, as small as it gets unless `args` say otherwise: one patient,
/// one operation per phase, one in flight.
fn bench(args: &[&str]) -> Output {
    let mut all = vec!["bench"];
    all.extend(args);
    for (flag, value) in [("--ops", "1"), ("--concurrency", "1"), ("--patients", "1")] {
        if !args.contains(&flag) {
            all.extend([flag, value]);
        }
    }
    Command::new(env!("CARGO_BIN_EXE_secure-ehr"))
        .args(all)
        .output()
        .expect("run secure-ehr")
}

fn refused(args: &[&str]) -> String {
    let out = bench(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "bench {args:?} ran:\n{err}");
    err
}

#[test]
fn a_record_larger_than_the_json_api_takes_is_refused() {
    for size in [MAX_RECORD + 1, 2_000_000] {
        let err = refused(&["--size", &size.to_string()]);
        assert!(
            err.contains("--size") && err.contains(&format!("at most {MAX_RECORD} bytes")),
            "{err}"
        );
    }
}

#[test]
fn the_largest_record_is_measured_at_its_size() {
    let out = bench(&["--size", &MAX_RECORD.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{MAX_RECORD}-byte FHIR records")),
        "{stdout}"
    );
}

#[test]
fn counts_of_zero_and_more_in_flight_than_ops_are_refused() {
    for flag in ["--ops", "--read-ops", "--concurrency", "--patients"] {
        let err = refused(&[flag, "0"]);
        assert!(
            err.contains(flag) && err.contains("must be at least 1"),
            "{flag}: {err}"
        );
    }
    let err = refused(&["--concurrency", "2"]);
    assert!(
        err.contains("--concurrency 2 is more than --ops 1"),
        "{err}"
    );
    let err = refused(&["--ops", "4", "--read-ops", "2", "--concurrency", "3"]);
    assert!(
        err.contains("--concurrency 3 is more than --read-ops 2"),
        "{err}"
    );
}

/// The phases `bench --json` reports, by the names its users key on.
const PHASES: [&str; 4] = [
    "upload, one at a time",
    "upload, concurrent",
    "read, one at a time",
    "read, concurrent",
];

#[test]
fn a_kept_deployment_is_one_serve_opens_and_json_is_keyed_by_phase() {
    let tmp = tempfile::tempdir().unwrap();
    // An empty directory that exists is fine, like a new one.
    let dir = tmp.path().join("kept");
    std::fs::create_dir(&dir).unwrap();
    let out = bench(&["--keep", dir.to_str().unwrap(), "--json", "--ops", "4"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // stdout is exactly one JSON object, keyed by phase name.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let phases = json.as_object().expect("an object");
    let mut keys: Vec<_> = phases.keys().map(String::as_str).collect();
    keys.sort();
    let mut want = PHASES.to_vec();
    want.extend(["storage", "ledger_archive"]);
    want.sort();
    assert_eq!(keys, want);
    // What the 1 + 4 uploads added on the nodes' disks: every node holds some of each.
    let storage = &phases["storage"];
    assert_eq!(storage["records"], 5);
    let per_node = storage["bytes_per_node"].as_array().unwrap();
    assert_eq!(per_node.len(), 5);
    assert!(
        per_node
            .iter()
            .all(|b| b.as_u64().unwrap() > 5 * 10_000 / 3),
        "{storage}"
    );
    let ratio = storage["across_nodes_per_record_byte"].as_f64().unwrap();
    assert!(ratio > 5.0 / 3.0 && ratio < 5.0, "{storage}");
    for (name, p) in phases
        .iter()
        .filter(|(name, _)| !["storage", "ledger_archive"].contains(&name.as_str()))
    {
        for field in ["ops", "p50_ms", "p99_ms", "per_s", "cpu_ms_per_op"] {
            assert!(p.get(field).is_some(), "{name} has no {field}: {p}");
        }
    }
    assert_eq!(phases["upload, concurrent"]["ops"], 4);
    assert!(stderr.contains("kept the deployment in"), "{stderr}");

    // The chain holds what the benchmark did: 1 + 4 uploads and 1 + 4 reads at least.
    let verify = Command::new(env!("CARGO_BIN_EXE_secure-ehr"))
        .args(["--data-dir", dir.to_str().unwrap(), "chain", "verify"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let txs: u64 = said
        .split(", ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no transaction count in {said:?}"));
    assert!(txs >= 10, "{said}");
    // Sealed at the end, the archive holds the whole chain, about 1/k of it on each node.
    let ledger = &phases["ledger_archive"];
    assert_eq!(ledger["transactions"].as_u64(), Some(txs), "{ledger}");
    assert_eq!(ledger["bytes_per_node"].as_array().unwrap().len(), 5);
    let share = ledger["per_node_over_ledger"].as_f64().unwrap();
    assert!(share > 1.0 / 3.0 && share < 0.6, "{ledger}");

    // And `serve --data-dir DIR` opens it.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_secure-ehr"));
    serve.args([
        "--data-dir",
        dir.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    let server = crate::common::spawn_listening(serve, "SecureEHR");
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
}

#[test]
fn keep_refuses_a_directory_with_anything_in_it_and_leaves_it_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let precious = tmp.path().join("notes.txt");
    std::fs::write(&precious, "not the benchmark's").unwrap();
    let err = refused(&["--keep", tmp.path().to_str().unwrap()]);
    assert!(err.contains("--keep") && err.contains("not empty"), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "bench wrote into a refused directory");
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "not the benchmark's"
    );
}

#[test]
fn the_fhir_figures_are_an_import_and_a_search_over_http() {
    let out = bench(&["--fhir", "--read-ops", "1", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let import = &v["FHIR import, 1,000 resources"];
    assert_eq!(import["ops"], 1);
    let per_s = import["per_s"].as_f64().unwrap();
    let resources = import["resources_per_s"].as_f64().unwrap();
    assert!((resources - per_s * 1000.0).abs() < 1e-6 * resources.max(1.0));
    assert_eq!(v["FHIR search, 100 records"]["ops"], 1);
    assert!(v["FHIR search, 100 records"]["per_s"].as_f64().unwrap() > 0.0);
}
