//! `secure-ehr serve` on the embedded default as a real process, driven by the CLI client:
//! admin init, provider add, patient sign-up, put/get, grant, revoke, break-glass, the
//! access log, the trustless gateway, and clear errors for bad input.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::spawn_listening;

pub(crate) const PW: &str = "correct horse battery";

pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_secure-ehr"))
}

/// Runs the CLI as `actor` (its own token file), with `stdin` piped in.
pub(crate) fn cli(data: &Path, url: &str, actor: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = bin()
        .args(args)
        .env("SECURE_EHR_URL", url)
        .env("SECURE_EHR_TOKEN_FILE", data.join(format!("{actor}.token")))
        .env_remove("SECURE_EHR_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refusal may come before stdin is read: then the pipe is closed.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

pub(crate) fn ok(out: Output) -> String {
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub(crate) fn fails(out: Output) -> String {
    assert!(!out.status.success(), "unexpectedly succeeded");
    String::from_utf8(out.stderr).unwrap()
}

pub(crate) const BUNDLE: &str = r#"{
  "resourceType": "Bundle", "type": "collection",
  "entry": [
    { "resource": { "resourceType": "Patient", "id": "p1",
        "name": [{ "family": "Doe", "given": ["Jane"] }], "birthDate": "1984-02-29",
        "address": [{ "text": "1 Main St, Springfield" }],
        "telecom": [{ "system": "phone", "value": "+1 555 010 0199" }] } },
    { "resource": { "resourceType": "Condition",
        "code": { "text": "Diabetes mellitus type 2" },
        "subject": { "reference": "Patient/p1" } } }
  ]
}"#;

/// Issue 17 item 1: a first start prints a one-time set-up link; its page (here driven by
/// Python's urllib with a cookie jar, as a browser would: cookie, CSRF token, form) creates
/// the admin, who then signs in; a wrong token is refused.
#[test]
fn a_first_start_prints_a_setup_link_that_creates_the_admin() {
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
    let mut server = spawn_listening(serve, "SecureEHR");
    let url = server.url.clone();
    let link = loop {
        let line = server.next_line().expect("serve printed no set-up link");
        if let Some(rest) = line.strip_prefix("no admin yet: open ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let token = link
        .strip_prefix(&format!("{url}/setup?token="))
        .unwrap_or_else(|| panic!("{link}"));
    assert!(
        token.len() >= 32
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token}"
    );
    let script = r#"
import http.cookiejar, re, sys, urllib.error, urllib.parse, urllib.request
link, base, password = sys.argv[1], sys.argv[2], sys.argv[3]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
try:
    opener.open(base + "/setup?token=wrong")
    sys.exit("a wrong token was served")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code
page = opener.open(link).read().decode()
csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
token = re.search(r'name="token" value="([^"]+)"', page).group(1)
form = urllib.parse.urlencode({"csrf": csrf, "token": token, "username": "root", "password": password}).encode()
done = opener.open(base + "/setup", form).read().decode()
assert "The admin root is created" in done, done
try:
    opener.open(link)
    sys.exit("a used link was served")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
print("setup ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &link, &url, PW])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("setup ok"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(cli(
        &data,
        &url,
        "root",
        &["login", "root", "--password-stdin"],
        &format!("{PW}\n"),
    ));
}

#[test]
fn serve_and_the_cli_client() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let init = |stdin: &str| {
        let mut c = bin()
            .args(["--data-dir", data_s, "admin", "init", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A refusal may come before the password is read: then the pipe is closed.
        let _ = c.stdin.take().unwrap().write_all(stdin.as_bytes());
        c.wait_with_output().unwrap()
    };
    assert!(ok(init(&format!("{PW}\n"))).contains("admin admin created"));
    assert!(fails(init(&format!("{PW}\n"))).contains("an admin account already exists"));

    let mut serve = bin();
    serve.args(["--data-dir", data_s, "serve", "--listen", "127.0.0.1:0"]);
    let server = spawn_listening(serve, "SecureEHR");
    let url = server.url.clone();
    // The accounts file is the server's while it runs.
    assert!(fails(init(&format!("{PW}\n"))).contains("server is running"));

    let pw = format!("{PW}\n");
    ok(cli(
        &data,
        &url,
        "admin",
        &["login", "admin", "--password-stdin"],
        &pw,
    ));
    let out = ok(cli(
        &data,
        &url,
        "admin",
        &["provider", "add", "drbob", "--password-stdin"],
        &pw,
    ));
    assert!(out.contains("provider drbob registered"), "{out}");
    let bob_address = out[out.find("(0x").expect(&out) + 1..]
        .trim_end()
        .trim_end_matches(')')
        .to_owned();
    // Only admins add providers.
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["patient", "register", "alice", "--password-stdin"],
        &pw,
    ));
    assert!(
        out.contains("patient alice registered with patient ID 1"),
        "{out}"
    );
    let recovery_code = |out: &str| {
        let at = out.find("recovery code: ").expect(out) + "recovery code: ".len();
        out[at..at + 29].to_owned()
    };
    let alice_code = recovery_code(&out);
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
        &["provider", "add", "eve", "--password-stdin"],
        &pw,
    ));
    assert!(err.contains("403"), "{err}");

    let file = dir.path().join("record.json");
    std::fs::write(&file, BUNDLE).unwrap();
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["record", "put", file.to_str().unwrap()],
        "",
    ));
    assert!(
        out.contains("Record stored in IPFS and in Blockchain with ID: 1"),
        "{out}"
    );
    let json = ok(cli(&data, &url, "alice", &["record", "list", "--json"], ""));
    let list: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let cid = list[0]["versions"][0]["manifest_cid"]
        .as_str()
        .unwrap()
        .to_owned();

    // The gateway serves the manifest block: ciphertext descriptions, no personal data.
    let block = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request;sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())",
            &format!("{url}/ipfs/{cid}?format=raw"),
        ])
        .output()
        .unwrap();
    assert!(block.status.success());
    assert!(!block.stdout.is_empty());
    assert!(!String::from_utf8_lossy(&block.stdout).contains("Doe"));

    // A scanned letter (3 MiB PDF) attached and saved back whole; quiet off a terminal.
    let scan = dir.path().join("letter.pdf");
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    std::fs::write(&scan, &pdf).unwrap();
    let attached = cli(
        &data,
        &url,
        "alice",
        &["record", "attach", "1", scan.to_str().unwrap()],
        "",
    );
    assert!(
        String::from_utf8_lossy(&attached.stderr).trim().is_empty(),
        "no progress bar off a terminal"
    );
    let out = ok(attached);
    assert!(
        out.contains("Attached as attachment 1 of record 1 (version 2): application/pdf"),
        "{out}"
    );
    let out = ok(cli(&data, &url, "alice", &["record", "get", "1"], ""));
    assert!(
        out.contains("attachment 1: application/pdf, 3000009 bytes, \"letter.pdf\""),
        "{out}"
    );
    let back = dir.path().join("back.pdf");
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &[
            "record",
            "attachment",
            "get",
            "1",
            "1",
            "-o",
            back.to_str().unwrap(),
        ],
        "",
    ));
    assert!(out.contains("3000009 bytes written"), "{out}");
    assert!(std::fs::read(&back).unwrap() == pdf, "the same bytes back");
    let missing = dir.path().join("missing.pdf");
    let err = fails(cli(
        &data,
        &url,
        "alice",
        &[
            "record",
            "attachment",
            "get",
            "1",
            "2",
            "-o",
            missing.to_str().unwrap(),
        ],
        "",
    ));
    assert!(err.contains("not found") && err.contains("404"), "{err}");
    assert!(!missing.exists() && !dir.path().join("missing.pdf.part").exists());
    let err = fails(cli(
        &data,
        &url,
        "alice",
        &["record", "attach", "1", file.to_str().unwrap()],
        "",
    ));
    assert!(err.contains("not a file type SecureEHR stores"), "{err}");

    // Bad input: a clear error naming the field, nothing stored.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, BUNDLE.replace("1984-02-29", "1984-02-30")).unwrap();
    let err = fails(cli(
        &data,
        &url,
        "alice",
        &["record", "put", bad.to_str().unwrap()],
        "",
    ));
    assert!(err.contains("birthDate"), "{err}");

    ok(cli(
        &data,
        &url,
        "bob",
        &["login", "drbob", "--password-stdin"],
        &pw,
    ));
    let err = fails(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(
        err.contains("no record of patient 1 is open to you"),
        "{err}"
    );
    assert!(err.contains("access_denied, HTTP 403"), "{err}");
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["grant", "drbob", "--days", "7"],
        "",
    ));
    assert!(out.contains("granted drbob"), "{out}");
    // Writing too, in a second transaction; then only the writing ends.
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["grant", "drbob", "--days", "7", "--write"],
        "",
    ));
    assert!(out.contains("writing too (tx 0x"), "{out}");
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["revoke", "drbob", "--write"],
        "",
    ));
    assert!(out.contains("revoked writing of drbob"), "{out}");
    let out = ok(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(
        out.contains("Jane Doe") && out.contains("Diabetes"),
        "{out}"
    );
    ok(cli(&data, &url, "alice", &["revoke", "drbob"], ""));
    let err = fails(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(
        err.contains("no record of patient 1 is open to you"),
        "{err}"
    );
    assert!(err.contains("access_denied, HTTP 403"), "{err}");

    let err = fails(cli(
        &data,
        &url,
        "bob",
        &["emergency", "1", "--reason", " "],
        "",
    ));
    assert!(err.contains("reason"), "{err}");
    let out = ok(cli(
        &data,
        &url,
        "bob",
        &["emergency", "1", "--reason", "unconscious in the ER"],
        "",
    ));
    assert!(out.contains("[EMERGENCY]"), "{out}");

    let out = ok(cli(&data, &url, "alice", &["log"], ""));
    assert!(out.contains("read by drbob"), "{out}");

    assert!(
        out.contains("EMERGENCY") && out.contains("unconscious in the ER"),
        "{out}"
    );

    // A new password: the same key, so her records stay hers; the old one is refused.
    let err = fails(cli(&data, &url, "alice", &["password"], ""));
    assert!(err.contains("--password-stdin"), "{err}");
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["password", "--password-stdin"],
        &format!("{PW}\nanother long passphrase\n"),
    ));
    assert!(out.contains("password changed"), "{out}");
    let err = fails(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
    assert!(err.contains("401"), "{err}");
    ok(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        "another long passphrase\n",
    ));
    let out = ok(cli(&data, &url, "alice", &["record", "list"], ""));
    assert!(out.contains("record 1"), "{out}");

    // Forgot it: the sign-up's recovery code sets a new password and keeps the key; the
    // code is used up, a new one printed; a wrong code is refused.
    let err = fails(cli(&data, &url, "x", &["recover", "alice"], ""));
    assert!(err.contains("--password-stdin"), "{err}");
    let recover = |code: &str, new: &str| {
        cli(
            &data,
            &url,
            "x",
            &["recover", "alice", "--password-stdin"],
            &format!("{code}\n{new}\n"),
        )
    };
    let err = fails(recover("00000-00000-00000-00000-00000", PW));
    assert!(err.contains("invalid username or recovery code"), "{err}");
    let out = ok(recover(&alice_code.to_lowercase(), PW));
    assert!(out.contains("password set"), "{out}");
    let next_code = recovery_code(&out);
    assert_ne!(next_code, alice_code);
    let err = fails(cli(&data, &url, "alice", &["record", "list"], ""));
    assert!(err.contains("401"), "signed out everywhere: {err}");
    ok(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
    let out = ok(cli(&data, &url, "alice", &["record", "list"], ""));
    assert!(
        out.contains("record 1"),
        "the same key, the same records: {out}"
    );
    // Her export: one FHIR Bundle with her record, grants and access log; never over a
    // file that exists.
    let file = dir.path().join("export.json");
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["export", "-o", file.to_str().unwrap()],
        "",
    ));
    assert!(
        out.contains("exported") && out.contains("as AuditEvent"),
        "{out}"
    );
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(bundle["type"], "collection");
    assert!(
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource"]["resourceType"] == "AuditEvent")
    );
    let err = fails(cli(
        &data,
        &url,
        "alice",
        &["export", "-o", file.to_str().unwrap()],
        "",
    ));
    assert!(err.contains("must not exist"), "{err}");
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["recovery-code", "--password-stdin"],
        &pw,
    ));
    assert!(out.contains("old one no longer works"), "{out}");
    assert_ne!(recovery_code(&out), next_code);
    assert!(fails(recover(&next_code, PW)).contains("recovery code"));

    // Two-factor from the CLI: set up (the key and URI, the QR code as SVG), confirm with
    // the app's code, then a login needs a code on standard input's second line.
    let qr = dir.path().join("qr.svg");
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["totp", "setup", "--qr", qr.to_str().unwrap()],
        "",
    ));
    assert!(std::fs::read_to_string(&qr).unwrap().starts_with("<svg"));
    let secret = out["key: ".len()..out.find('\n').unwrap()].to_owned();
    let key = ehr_records::accounts::totp::unbase32(&secret).expect(&out);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = format!("{:06}", ehr_records::accounts::totp::totp(&key, now, 6));
    let out = ok(cli(&data, &url, "alice", &["totp", "confirm", &code], ""));
    assert!(out.contains("two-factor sign-in is on"), "{out}");
    let backups: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(backups.len(), 10, "{out}");
    let err = fails(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
    assert!(err.contains("totp_required"), "{err}");
    ok(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &format!("{PW}\n{}\n", backups[0]),
    ));
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &["totp", "off", "--password-stdin"],
        &format!("{PW}\n{}\n", backups[1]),
    ));
    assert!(out.contains("two-factor sign-in is off"), "{out}");
    ok(cli(
        &data,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));

    // The admin resets drbob's password: the same key, so its access (here the emergency
    // window) still reads alice's record.
    let out = ok(cli(
        &data,
        &url,
        "admin",
        &["provider", "reset-password", "drbob", "--password-stdin"],
        "a temporary passphrase\n",
    ));
    assert!(out.contains("password of provider drbob reset"), "{out}");
    assert!(
        out.contains(&bob_address),
        "same address {bob_address}: {out}"
    );
    let err = fails(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(err.contains("401"), "its session ended: {err}");
    ok(cli(
        &data,
        &url,
        "bob",
        &["login", "drbob", "--password-stdin"],
        "a temporary passphrase\n",
    ));
    let out = ok(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(out.contains("record 1"), "{out}");
    ok(cli(
        &data,
        &url,
        "bob",
        &["password", "--password-stdin"],
        &format!("a temporary passphrase\n{PW}\n"),
    ));
    // drbob's own directory entry: shown, changed (a field left out stays), listed.
    let out = ok(cli(&data, &url, "bob", &["profile"], ""));
    assert!(out.contains("drbob (drbob)"), "{out}");
    let out = ok(cli(
        &data,
        &url,
        "bob",
        &[
            "profile",
            "--display-name",
            "Dr Bob Stone",
            "--specialty",
            "Cardiology",
        ],
        "",
    ));
    assert!(out.contains("Dr Bob Stone (drbob), Cardiology"), "{out}");
    let out = ok(cli(
        &data,
        &url,
        "bob",
        &["profile", "--display-name", "Dr Robert Stone"],
        "",
    ));
    assert!(out.contains("Dr Robert Stone (drbob), Cardiology"), "{out}");
    let err = fails(cli(
        &data,
        &url,
        "bob",
        &["profile", "--specialty", &"x".repeat(101)],
        "",
    ));
    assert!(err.contains("specialty"), "{err}");
    let out = ok(cli(&data, &url, "alice", &["provider", "list"], ""));
    assert!(out.contains("Dr Robert Stone"), "{out}");
    let err = fails(cli(&data, &url, "alice", &["profile"], ""));
    assert!(err.contains("403"), "patients have none: {err}");

    // The admin disables drbob: its session ends, its login is refused, and nothing but
    // the admin's enable brings it back.
    let out = ok(cli(
        &data,
        &url,
        "admin",
        &["provider", "disable", "drbob"],
        "",
    ));
    assert!(out.contains("provider drbob disabled"), "{out}");
    let err = fails(cli(&data, &url, "bob", &["patient", "records", "1"], ""));
    assert!(err.contains("401"), "its session ended: {err}");
    let login_bob = || {
        cli(
            &data,
            &url,
            "bob",
            &["login", "drbob", "--password-stdin"],
            &pw,
        )
    };
    let err = fails(login_bob());
    assert!(err.contains("disabled"), "{err}");
    let out = ok(cli(&data, &url, "admin", &["provider", "list"], ""));
    assert!(out.contains("drbob") && out.contains("(disabled)"), "{out}");
    let err = fails(cli(
        &data,
        &url,
        "alice",
        &["provider", "enable", "drbob"],
        "",
    ));
    assert!(err.contains("403"), "{err}");
    let err = fails(cli(
        &data,
        &url,
        "admin",
        &["provider", "disable", "../x"],
        "",
    ));
    assert!(err.contains("invalid username"), "{err}");
    let err = fails(cli(
        &data,
        &url,
        "admin",
        &["provider", "enable", "nobody"],
        "",
    ));
    assert!(err.contains("404"), "{err}");
    let out = ok(cli(
        &data,
        &url,
        "admin",
        &["provider", "enable", "drbob"],
        "",
    ));
    assert!(out.contains("provider drbob enabled"), "{out}");
    ok(login_bob());

    let out = ok(cli(&data, &url, "alice", &["status"], ""));
    assert!(out.contains("5 of 5 nodes reachable, 3 needed"), "{out}");
    ok(cli(&data, &url, "alice", &["logout"], ""));
    let err = fails(cli(&data, &url, "alice", &["record", "list"], ""));
    assert!(err.contains("not logged in"), "{err}");

    // Dora leaves: a wrong password changes nothing, a provider cannot; then the receipt
    // (her record, every node confirmed), her token is gone, and drbob's reads "erased".
    let out = ok(cli(
        &data,
        &url,
        "dora",
        &["patient", "register", "dora", "--password-stdin"],
        &pw,
    ));
    let at = out.find("patient ID ").expect(&out) + "patient ID ".len();
    let dora_id: String = out[at..].chars().take_while(char::is_ascii_digit).collect();
    let dora_file = dir.path().join("dora.json");
    std::fs::write(&dora_file, BUNDLE).unwrap();
    ok(cli(
        &data,
        &url,
        "dora",
        &["login", "dora", "--password-stdin"],
        &pw,
    ));
    let out = ok(cli(
        &data,
        &url,
        "dora",
        &["record", "put", dora_file.to_str().unwrap()],
        "",
    ));
    let at = out.find("with ID: ").expect(&out) + "with ID: ".len();
    let dora_record: String = out[at..].chars().take_while(char::is_ascii_digit).collect();
    ok(cli(
        &data,
        &url,
        "dora",
        &["grant", "drbob", "--days", "7"],
        "",
    ));
    let out = ok(cli(
        &data,
        &url,
        "bob",
        &["patient", "records", &dora_id],
        "",
    ));
    assert!(out.contains(&format!("record {dora_record}")), "{out}");
    let err = fails(cli(
        &data,
        &url,
        "dora",
        &["account", "delete", "--password-stdin"],
        "wrong password!!\n",
    ));
    assert!(err.contains("invalid username or password"), "{err}");
    let err = fails(cli(
        &data,
        &url,
        "bob",
        &["account", "delete", "--password-stdin"],
        &pw,
    ));
    assert!(err.contains("403"), "providers are not deleted: {err}");
    let out = ok(cli(
        &data,
        &url,
        "dora",
        &["account", "delete", "--password-stdin"],
        &pw,
    ));
    assert!(
        out.contains("account deleted; 1 record(s) erased")
            && out.contains(&format!("record {dora_record}: versions 1\n"))
            && out.matches(": confirmed (").count() == 5
            && out.contains("erasure on chain: 0x"),
        "{out}"
    );
    let err = fails(cli(&data, &url, "dora", &["record", "list"], ""));
    assert!(err.contains("not logged in"), "{err}");
    let err = fails(cli(
        &data,
        &url,
        "dora",
        &["login", "dora", "--password-stdin"],
        &pw,
    ));
    assert!(err.contains("invalid username or password"), "{err}");
    let err = fails(cli(
        &data,
        &url,
        "bob",
        &["patient", "records", &dora_id],
        "",
    ));
    assert!(err.contains("410") && err.contains("erased"), "{err}");
}

/// Sends a request line to `addr`, then one header line every 200 ms (100 lines would take
/// 20 s), and returns how many lines went out before the server closed the connection, and
/// after how long. Panics if the server waits for all 100.
pub fn trickle_headers(addr: &str) -> (usize, std::time::Duration) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    for i in 0..100 {
        match s.read(&mut buf) {
            // Closed (or answered and closed): the server gave up on the headers.
            Ok(_) => return (i, started.elapsed()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (i, started.elapsed()),
        }
        if s.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            return (i, started.elapsed());
        }
    }
    panic!(
        "the server waited {:?} for 100 trickled header lines",
        started.elapsed()
    );
}

#[test]
fn serve_cuts_off_a_trickling_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = bin();
    serve.args(["--data-dir", dir.path().to_str().unwrap(), "serve"]);
    serve.args(["--listen", "127.0.0.1:0", "--header-timeout", "1"]);
    let server = spawn_listening(serve, "SecureEHR");
    let addr = server.url.trim_start_matches("http://").to_owned();
    let (lines, elapsed) = trickle_headers(&addr);
    eprintln!("serve: trickling client cut off after {lines} header lines, {elapsed:?}");
}

#[test]
fn serve_over_https_with_the_cli_trusting_a_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let certs = crate::common::TestCerts::new(dir.path());
    let mut serve = bin();
    serve
        .args(["--data-dir", data.to_str().unwrap(), "serve"])
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&certs.cert)
        .arg("--tls-key")
        .arg(&certs.key);
    let server = spawn_listening(serve, "SecureEHR");
    let url = server.url.clone();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    // The CLI trusts the test CA only when told to.
    let out = fails(cli(&data, &url, "alice", &["status"], ""));
    assert!(out.contains("cannot reach the server"), "{out}");
    let ca = certs.ca.to_str().unwrap();
    let out = ok(cli(&data, &url, "alice", &["status", "--ca-file", ca], ""));
    assert!(out.contains("chain"), "{out}");
    let pw = format!("{PW}\n");
    let out = ok(cli(
        &data,
        &url,
        "alice",
        &[
            "patient",
            "register",
            "alice",
            "--password-stdin",
            "--ca-file",
            ca,
        ],
        &pw,
    ));
    assert!(out.contains("patient alice registered"), "{out}");

    // Browsers get HSTS and `Secure` cookies without --secure-cookies.
    let pem = std::fs::read(&certs.ca).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(http.get(format!("{url}/")).send()).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-ehr_browser=") && cookie.contains("; Secure"),
        "{cookie}"
    );

    // Plain HTTP to the HTTPS port gets no page.
    let plain = url.replace("https://", "http://");
    assert!(rt.block_on(reqwest::get(format!("{plain}/"))).is_err());
}

/// A SIGTERM as soon as the server says it listens stops it cleanly (exit 0, its databases
/// closed), not by the signal's default action: the handler is in place before that line.
#[test]
fn sigterm_right_after_listening_is_a_clean_stop() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if line.starts_with("SecureEHR listening on ") {
            break;
        }
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "serve did not stop cleanly: {status}");
}
