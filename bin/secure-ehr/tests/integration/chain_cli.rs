//! The chain commands, run as a user would: the real binary on a temporary data directory.

use std::path::Path;
use std::process::{Command, Output};

fn run(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_secure-ehr"))
        .args(args)
        .env("SECURE_EHR_DATA_DIR", data_dir)
        .env_remove("SECURE_EHR_CHAIN_RPC")
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn gas_json_has_every_operation_as_an_integer() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["gas", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
    keys.sort();
    let mut want = ehr_chain::gas::OPERATIONS.to_vec();
    want.sort();
    assert_eq!(keys, want);
    for (k, g) in obj {
        let g = g
            .as_u64()
            .unwrap_or_else(|| panic!("{k} is not an integer"));
        assert!(g > 21_000 && g < 200_000, "{k} used {g}");
    }
    assert!(obj["addRecord"].as_u64().unwrap() <= 70_000);
    assert!(obj["grantAccess"].as_u64().unwrap() <= 50_000);
    assert!(obj["logAccess"].as_u64().unwrap() <= 35_000);
}

#[test]
fn info_creates_the_chain_and_verify_names_the_first_tampered_block() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["chain", "info", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["backend"], "embedded");
    assert_eq!(info["head_block"], 0);
    // A second start finds the same contract.
    let again: serde_json::Value =
        serde_json::from_slice(&run(dir.path(), &["chain", "info", "--json"]).stdout).unwrap();
    assert_eq!(again["contract"], info["contract"]);

    let out = run(dir.path(), &["chain", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: 1 blocks"),
        "{}",
        text(&out.stdout)
    );

    ehr_chain::testing::tamper_block(&dir.path().join("chain"), 0, |b| {
        let n = b.len();
        b[n - 100] ^= 1;
    })
    .unwrap();
    for args in [&["chain", "verify"][..], &["chain", "info"][..]] {
        let out = run(dir.path(), args);
        assert!(!out.status.success(), "{args:?} accepted a tampered chain");
        let err = text(&out.stderr);
        assert!(
            err.contains("chain verification failed at block 0"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_bad_key_file_is_a_clear_error_that_does_not_echo_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    std::fs::write(&key, "0xnot-a-key-but-secret-looking").unwrap();
    let out = run(
        dir.path(),
        &[
            "gas",
            "--chain-rpc",
            "http://127.0.0.1:1",
            "--key-file",
            key.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("does not hold a hex secp256k1 private key"),
        "{err}"
    );
    assert!(!err.contains("secret-looking"), "{err}");
}
