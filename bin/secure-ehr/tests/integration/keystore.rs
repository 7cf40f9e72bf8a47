//! Issue 17 item 5, against an independent keystore implementation (ethers 6,
//! `bin/secure-ehr/tests/js/keystore.mjs`): a patient brings a wallet's keystore at sign-up
//! (`patient register --keystore`) and the account has that wallet's address; the keystore
//! the server keeps, downloaded (`secure-ehr keystore`), opens in ethers to the same
//! address — so the key can go into any Ethereum wallet — and, after a password change,
//! opens with the new password to the same key.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::spawn_listening;
use crate::serve_cli::{bin, cli, fails, ok};

const PW: &str = "correct horse battery";

fn js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn ethers(args: &[&str]) -> String {
    let out = Command::new("node")
        .arg("keystore.mjs")
        .args(args)
        .current_dir(js())
        .stdin(Stdio::null())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "keystore.mjs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_wallets_keystore_signs_up_and_the_kept_one_opens_in_ethers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut serve = bin();
    serve.args([
        "--data-dir",
        data.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    let server = spawn_listening(serve, "SecureEHR");
    let url = server.url.clone();
    let pw = format!("{PW}\n");

    // ethers makes a wallet; its keystore signs the patient up with that key.
    let wallet = dir.path().join("wallet.json");
    let address = ethers(&["new", PW, wallet.to_str().unwrap()]);
    assert!(
        address.starts_with("0x") && address.len() == 42,
        "{address}"
    );
    let err = fails(cli(
        &data,
        &url,
        "ann",
        &[
            "patient",
            "register",
            "ann",
            "--password-stdin",
            "--keystore",
            wallet.to_str().unwrap(),
        ],
        "not the wallet's password\n",
    ));
    assert!(err.contains("keystore"), "{err}");
    let out = ok(cli(
        &data,
        &url,
        "ann",
        &[
            "patient",
            "register",
            "ann",
            "--password-stdin",
            "--keystore",
            wallet.to_str().unwrap(),
        ],
        &pw,
    ));
    assert!(
        out.to_lowercase().contains(&format!("(address {address})")),
        "{out}"
    );
    // The same key cannot sign up twice.
    let err = fails(cli(
        &data,
        &url,
        "bea",
        &[
            "patient",
            "register",
            "bea",
            "--password-stdin",
            "--keystore",
            wallet.to_str().unwrap(),
        ],
        &pw,
    ));
    assert!(err.contains("409"), "{err}");

    // The keystore the server keeps opens in ethers, to the same address.
    ok(cli(
        &data,
        &url,
        "ann",
        &["login", "ann", "--password-stdin"],
        &pw,
    ));
    let kept = dir.path().join("kept.json");
    let out = ok(cli(
        &data,
        &url,
        "ann",
        &["keystore", "--out", kept.to_str().unwrap()],
        "",
    ));
    assert!(out.contains("saved to"), "{out}");
    assert_eq!(ethers(&["open", kept.to_str().unwrap(), PW]), address);
    // It is not overwritten.
    let err = fails(cli(
        &data,
        &url,
        "ann",
        &["keystore", "--out", kept.to_str().unwrap()],
        "",
    ));
    assert!(err.contains("must not exist"), "{err}");

    // After a password change the downloaded file opens with the new password: same key.
    ok(cli(
        &data,
        &url,
        "ann",
        &["password", "--password-stdin"],
        &format!("{PW}\nanother long passphrase\n"),
    ));
    let again = dir.path().join("again.json");
    ok(cli(
        &data,
        &url,
        "ann",
        &["keystore", "--out", again.to_str().unwrap()],
        "",
    ));
    assert_eq!(
        ethers(&["open", again.to_str().unwrap(), "another long passphrase"]),
        address
    );
    drop(server);
}
