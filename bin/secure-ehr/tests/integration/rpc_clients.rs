//! Issue 13 item 3: `secure-ehr serve --rpc` as a real process, read and written by
//! independent Ethereum clients — cast (foundry's binary, from npm) and viem (from npm,
//! `bin/secure-ehr/tests/js`): chain id and block number, the contract's code, `canAccess`
//! through `eth_call`, one record's `AccessLogged` events decoded with the contract's ABI,
//! a grant sent as a raw signed transaction (`--rpc-send`) and its receipt.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use alloy::sol_types::SolEvent;
use ehr_chain::contract::{EhrRegistry, codec};
use ehr_chain::{Address, B256, PrivateKeySigner, Registry, RegistryExt, U256};
use serde_json::Value;

use crate::common::spawn_listening;

const TOKEN: &str = "rpc-token-for-tests";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// foundry's cast from npm (`contracts/package.json`; `CAST_BIN` overrides).
fn cast_bin() -> PathBuf {
    match std::env::var_os("CAST_BIN") {
        Some(p) => p.into(),
        None => repo().join("contracts/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"),
    }
}

fn js_dir() -> PathBuf {
    repo().join("bin/secure-ehr/tests/js")
}

/// Runs cast against `url`, with the bearer token unless `token` is `None`.
fn cast(url: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(cast_bin());
    cmd.args(args).args(["--rpc-url", url]);
    // Never a user's foundry settings.
    cmd.env("FOUNDRY_DISABLE_NIGHTLY_WARNING", "1")
        .env_remove("ETH_RPC_URL");
    match token {
        Some(t) => cmd.env("ETH_RPC_HEADERS", format!("Authorization: Bearer {t}")),
        None => cmd.env_remove("ETH_RPC_HEADERS"),
    };
    cmd.output().expect("cast runs")
}

fn ok(what: &str, out: Output) -> String {
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().to_owned()
}

struct History {
    contract: Address,
    patient: PrivateKeySigner,
    reader: Address,
    other_provider: Address,
    record: u64,
}

/// A chain with a provider who read one record twice, and a second provider, written
/// before the server starts (the server then opens this chain).
fn history(data: &Path) -> History {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (chain, admin) = ehr_records::deployment::open_embedded_chain(data).unwrap();
        let (patient, reader, other) = (
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        );
        for p in [&reader, &other] {
            chain
                .register_provider(&admin, p.address(), B256::ZERO)
                .await
                .unwrap();
        }
        chain.register_patient(&patient).await.unwrap();
        let (record, _) = chain
            .add_record(&patient, B256::repeat_byte(1), codec::RAW)
            .await
            .unwrap();
        let expiry = ehr_primitives::unix_now() + 86_400;
        chain
            .grant_access(&patient, reader.address(), Some(record), expiry)
            .await
            .unwrap();
        for nonce in [11u64, 12] {
            chain
                .log_access(&reader, record, U256::from(nonce))
                .await
                .unwrap();
        }
        History {
            contract: chain.contract(),
            patient,
            reader: reader.address(),
            other_provider: other.address(),
            record,
        }
    })
}

fn hex_key(signer: &PrivateKeySigner) -> String {
    signer.to_bytes().to_string()
}

#[test]
fn cast_and_viem_read_and_send_over_rpc() {
    let cast_path = cast_bin();
    assert!(
        cast_path.exists(),
        "cast is missing: run `npm ci` in contracts/ (see scripts/test)"
    );
    assert!(
        js_dir().join("node_modules/viem").is_dir(),
        "viem is missing: run `npm ci` in bin/secure-ehr/tests/js (see scripts/test)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let h = history(&data);
    let mut serve = Command::new(env!("CARGO_BIN_EXE_secure-ehr"));
    serve
        .args(["--data-dir", data.to_str().unwrap(), "serve"])
        .args(["--listen", "127.0.0.1:0", "--rpc", "--rpc-send"])
        .env("SECURE_EHR_RPC_TOKEN", TOKEN);
    let server = spawn_listening(serve, "SecureEHR");
    let url = format!("{}/rpc", server.url);
    let contract = h.contract.to_string();
    let t = Some(TOKEN);

    // Without the token: refused.
    let out = cast(&url, None, &["chain-id"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(ok("chain-id", cast(&url, t, &["chain-id"])), "21317");
    let head: u64 = ok("block-number", cast(&url, t, &["block-number"]))
        .parse()
        .unwrap();
    assert!(head >= 7, "{head}");
    let artifact: Value = serde_json::from_str(ehr_chain::contract::ARTIFACT_JSON).unwrap();
    assert_eq!(
        ok("code", cast(&url, t, &["code", &contract])),
        artifact["deployedBytecode"].as_str().unwrap()
    );
    let record = h.record.to_string();
    let can = |reader: &Address| {
        ok(
            "call",
            cast(
                &url,
                t,
                &[
                    "call",
                    &contract,
                    "canAccess(address,uint256)(bool)",
                    &reader.to_string(),
                    &record,
                ],
            ),
        )
    };
    assert_eq!(can(&h.reader), "true");
    assert_eq!(can(&h.other_provider), "false");

    // One record's access log, decoded with the contract's ABI.
    let logs = ok(
        "logs",
        cast(
            &url,
            t,
            &[
                "logs",
                "--json",
                "--from-block",
                "0",
                "--address",
                &contract,
                "AccessLogged(uint256 indexed recordId, address indexed reader, uint256 indexed \
                 nonce, uint64 timestamp, bool emergency)",
                &record,
            ],
        ),
    );
    let logs: Vec<alloy::rpc::types::Log> = serde_json::from_str(&logs).unwrap();
    let decoded: Vec<_> = logs
        .iter()
        .map(|l| {
            EhrRegistry::AccessLogged::decode_log(&l.inner)
                .unwrap()
                .data
        })
        .collect();
    assert_eq!(decoded.len(), 2);
    for (ev, nonce) in decoded.iter().zip([11u64, 12]) {
        assert_eq!(ev.recordId, U256::from(h.record));
        assert_eq!(ev.reader, h.reader);
        assert_eq!(ev.nonce, U256::from(nonce));
        assert!(!ev.emergency);
    }

    // A grant, signed by cast with the patient's key and sent raw, with cast's own fee
    // estimate (it adds a tip; the chain charges none: gas is free).
    let key = hex_key(&h.patient);
    let expiry = (ehr_primitives::unix_now() + 3600).to_string();
    let grant = [
        "grantAccess(address,uint256,uint64)".to_owned(),
        h.other_provider.to_string(),
        record.clone(),
        expiry,
    ];
    let mut send_args = vec!["send", "--json", "--private-key", &key];
    send_args.push(&contract);
    send_args.extend(grant.iter().map(String::as_str));
    let sent: Value = serde_json::from_str(&ok("send", cast(&url, t, &send_args))).unwrap();
    assert_eq!(sent["status"], "0x1", "{sent}");
    let tx_hash = sent["transactionHash"].as_str().unwrap().to_owned();
    let receipt: Value = serde_json::from_str(&ok(
        "receipt",
        cast(&url, t, &["receipt", "--json", &tx_hash]),
    ))
    .unwrap();
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(
        receipt["from"].as_str().unwrap().to_lowercase(),
        h.patient.address().to_string().to_lowercase()
    );
    assert_eq!(
        receipt["logs"][0]["topics"][0],
        EhrRegistry::AccessGranted::SIGNATURE_HASH.to_string()
    );
    assert_eq!(can(&h.other_provider), "true", "the grant took effect");

    // An EIP-155 legacy one, made with `cast mktx` and sent with `cast publish`.
    let mut mktx = vec![
        "mktx",
        "--legacy",
        "--gas-price",
        "0",
        "--private-key",
        &key,
    ];
    mktx.push(&contract);
    mktx.extend(["revokeAccess(address,uint256)", &grant[1], &record]);
    let raw = ok("mktx", cast(&url, t, &mktx));
    let published: Value =
        serde_json::from_str(&ok("publish", cast(&url, t, &["publish", "--json", &raw]))).unwrap();
    let revoke_hash = published["transactionHash"]
        .as_str()
        .or(published.as_str())
        .unwrap_or_else(|| panic!("{published}"))
        .to_owned();
    let receipt: Value = serde_json::from_str(&ok(
        "receipt",
        cast(&url, t, &["receipt", "--json", &revoke_hash]),
    ))
    .unwrap();
    assert_eq!(
        (receipt["status"].as_str(), receipt["type"].as_str()),
        (Some("0x1"), Some("0x0"))
    );
    assert_eq!(
        can(&h.other_provider),
        "false",
        "the revocation took effect"
    );

    // viem: the same reads, and the grant's receipt.
    let out = Command::new("node")
        .current_dir(js_dir())
        .arg("rpc_client.mjs")
        .args([&url, TOKEN])
        .arg(repo().join("contracts/out/EhrRegistry.json"))
        .args([&contract, &h.reader.to_string(), &record, &tx_hash])
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&ok("viem", out)).unwrap();
    assert_eq!(v["chainId"], 21317);
    let viem_head: u64 = v["blockNumber"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        viem_head,
        head + 2,
        "the grant and the revocation were mined"
    );
    assert_eq!(v["canAccess"], true);
    let viem_logs = v["accessLogged"].as_array().unwrap();
    assert_eq!(viem_logs.len(), 2);
    for (l, (raw, nonce)) in viem_logs.iter().zip(logs.iter().zip([11, 12])) {
        assert_eq!(l["recordId"], record);
        assert_eq!(l["reader"].as_str().unwrap(), h.reader.to_checksum(None));
        assert_eq!(l["nonce"], nonce.to_string());
        assert_eq!(l["emergency"], false);
        assert_eq!(
            l["transactionHash"],
            raw.transaction_hash.unwrap().to_string()
        );
    }
    assert_eq!(v["receipt"]["status"], "success");
    assert_eq!(v["receipt"]["events"], serde_json::json!(["AccessGranted"]));
    assert_eq!(
        v["receipt"]["to"].as_str().unwrap().to_lowercase(),
        contract.to_lowercase()
    );
    assert_eq!(v["block"]["hash"], v["receipt"]["blockHash"]);
    assert_eq!(v["block"]["transactions"], serde_json::json!([tx_hash]));
    assert_eq!(v["block"]["baseFeePerGas"], "0");
}

/// `--rpc` serves the embedded chain only: with `--chain-rpc` it is an error at start,
/// before anything is opened.
#[test]
fn rpc_with_a_json_rpc_chain_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_secure-ehr"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "serve", "--rpc"])
        .args(["--chain-rpc", "http://127.0.0.1:9", "--contract"])
        .arg(Address::repeat_byte(1).to_string())
        .args(["--admin-key-file", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rpc serves the embedded chain"), "{err}");
}
