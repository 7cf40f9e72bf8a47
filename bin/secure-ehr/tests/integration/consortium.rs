//! A network of organisations on one chain (anvil), one contract and one node set.
//!
//! The rules, through the CLI: only the consortium admin adds organisations (`org add`)
//! and sets the node set once (`chain set-nodes`); a registrar's server refuses a chain
//! without one; each hospital's server on its registrar key registers its own providers;
//! one registrar cannot deregister another's; an organisation with providers is not
//! removed.
//!
//! Then the whole flow on the consortium `scripts/consortium` starts (anvil, the contract,
//! two organisations, five tokenless nodes, two servers): a patient signs up at A, stores
//! a record and grants a doctor of B found in A's directory; she sees it under "shared
//! with me" and reads at B; A's log names her and her organisation; the nodes refuse B's
//! delete of A's blocks; break-glass at B is marked in A's log; with A's server stopped and
//! two nodes down B still reads; a provider B disables is refused at once; SIGTERM stops
//! every process.

use std::process::Stdio;

use ehr_chain::testing::{ANVIL_DEV_KEY, Anvil};
use ehr_chain::{Address, PrivateKeySigner, RegistryExt, RpcRegistry, U256};

use crate::common::{Proc, spawn_listening};
use crate::embedded_nodes::{Server, free_port, node};
use crate::serve_cli::{PW, bin, cli, fails, ok};

fn key_file(dir: &std::path::Path, name: &str, key: &PrivateKeySigner) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", key.to_bytes())).unwrap();
    path.to_str().unwrap().to_owned()
}

/// One hospital's server: its data directory (its own accounts), its registrar key.
struct Hospital {
    data: std::path::PathBuf,
    url: String,
    addr: String,
    key_file: String,
}

impl Hospital {
    fn new(root: &std::path::Path, name: &str, key_file: String) -> Self {
        let data = root.join(name);
        crate::restore::admin_init(&data);
        let addr = format!("127.0.0.1:{}", free_port());
        Self {
            data,
            url: format!("http://{addr}"),
            addr,
            key_file,
        }
    }

    fn serve(&self, rpc: &str, contract: &str, nodes: &str) -> std::process::Command {
        let mut cmd = bin();
        cmd.args(["--data-dir", self.data.to_str().unwrap(), "serve"])
            .args(["--listen", &self.addr])
            .args(["--chain-rpc", rpc, "--contract", contract])
            .args(["--admin-key-file", &self.key_file])
            .args(["--nodes", nodes])
            // No shared token: the nodes take this organisation's signed writes.
            .env_remove("SECURE_EHR_NODE_TOKEN");
        cmd
    }

    /// The CLI as `actor` against this hospital's server.
    fn cli(&self, actor: &str, args: &[&str], stdin: &str) -> std::process::Output {
        cli(&self.data, &self.url, actor, args, stdin)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn organisations_with_their_registrars_share_one_node_set() {
    let dir = tempfile::tempdir().unwrap();
    let anvil = Anvil::spawn().unwrap();
    let admin: PrivateKeySigner = ANVIL_DEV_KEY.parse().unwrap();
    let admin_key = key_file(dir.path(), "admin.key", &admin);
    let rpc = anvil.url.clone();

    let out = ok(bin()
        .args([
            "chain",
            "deploy",
            "--chain-rpc",
            &rpc,
            "--key-file",
            &admin_key,
        ])
        .output()
        .unwrap());
    let contract = out.trim().to_owned();
    let chain = RpcRegistry::connect(&rpc, contract.parse().unwrap())
        .await
        .unwrap();
    let reg_a = PrivateKeySigner::random();
    let reg_b = PrivateKeySigner::random();
    for r in [&reg_a, &reg_b] {
        chain
            .transfer(&admin, r.address(), U256::from(10u128.pow(19)))
            .await
            .unwrap();
    }
    let on_chain = ["--chain-rpc", rpc.as_str(), "--contract", contract.as_str()];
    let org = |args: &[&str], key: &str| {
        bin()
            .arg("org")
            .args(args)
            .args(on_chain)
            .args(["--key-file", key])
            .output()
            .unwrap()
    };
    let a_key = key_file(dir.path(), "a.key", &reg_a);
    let b_key = key_file(dir.path(), "b.key", &reg_b);
    let a_addr = reg_a.address().to_string();
    let b_addr = reg_b.address().to_string();

    // Only the consortium admin adds organisations.
    let err = fails(org(&["add", "Hospital A", "--registrar", &a_addr], &a_key));
    assert!(err.contains("is not the admin"), "{err}");
    let id = ok(org(
        &["add", "Hospital A", "--registrar", &a_addr],
        &admin_key,
    ));
    assert_eq!(id.trim(), "1");
    let id = ok(org(
        &["add", "Hospital B", "--registrar", &b_addr],
        &admin_key,
    ));
    assert_eq!(id.trim(), "2");
    let err = fails(org(&["add", "", "--registrar", &b_addr], &admin_key));
    assert!(err.contains("1 to 64 bytes"), "{err}");

    // Five nodes for everyone.
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let _nodes: Vec<Option<Proc>> = (0..5)
        .map(|i| {
            let mut cmd = node(
                &dir.path().join(format!("node-{}", i + 1)),
                ports[i],
                &rpc,
                &contract,
            );
            cmd.env_remove("SECURE_EHR_NODE_TOKEN");
            Some(spawn_listening(cmd, "node"))
        })
        .collect();
    let urls = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");

    let a = Hospital::new(dir.path(), "hospital-a", a_key.clone());
    let b = Hospital::new(dir.path(), "hospital-b", b_key.clone());
    // A registrar's server does not set the node set: it says who does.
    let out = a.serve(&rpc, &contract, &urls).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chain set-nodes"), "{err}");

    let set_nodes = |key: &str, k: &str| {
        bin()
            .args(["chain", "set-nodes", "--nodes", &urls, "-k", k])
            .args(on_chain)
            .args(["--key-file", key])
            .output()
            .unwrap()
    };
    let err = fails(set_nodes(&a_key, "3"));
    assert!(err.contains("is not the admin"), "{err}");
    let err = fails(set_nodes(&admin_key, "6"));
    assert!(err.contains("-k 6 with 5 nodes"), "{err}");
    let said = ok(set_nodes(&admin_key, "3"));
    assert!(said.contains("node set epoch 1: 3-of-5"), "{said}");

    // Each hospital's server on its registrar key registers its own providers.
    let server_a = Server::spawn(a.serve(&rpc, &contract, &urls));
    server_a.line("SecureEHR ready", 90);
    let server_b = Server::spawn(b.serve(&rpc, &contract, &urls));
    server_b.line("SecureEHR ready", 90);
    let pw = format!("{PW}\n");
    for h in [&a, &b] {
        ok(h.cli("admin", &["login", "admin", "--password-stdin"], &pw));
    }
    ok(a.cli(
        "admin",
        &["provider", "add", "drbob", "--password-stdin"],
        &pw,
    ));
    ok(b.cli(
        "admin",
        &[
            "provider",
            "add",
            "drcarol",
            "--password-stdin",
            "--display-name",
            "Dr Carol Smith",
            "--specialty",
            "Cardiology",
        ],
        &pw,
    ));
    let dir_on_chain = chain.providers().await.unwrap();
    let by_org: Vec<u32> = dir_on_chain.iter().map(|p| p.organisation).collect();
    assert_eq!(by_org, [1, 2], "{dir_on_chain:?}");
    let bob: Address = dir_on_chain[0].provider;

    // B's registrar cannot deregister A's provider.
    let err = chain.deregister_provider(&reg_b, bob).await.unwrap_err();
    assert!(
        err.to_string().contains("belongs to organisation 1"),
        "{err}"
    );
    assert!(chain.is_provider(bob).await.unwrap());

    // An organisation with providers stays; `org list` shows who has how many.
    let err = fails(org(&["remove", "Hospital A"], &admin_key));
    assert!(err.contains("still has 1 providers"), "{err}");
    let list = ok(bin()
        .args(["org", "list", "--json"])
        .args(on_chain)
        .output()
        .unwrap());
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["name"], "Hospital A");
    assert_eq!(list[0]["providers"], 1);
    let registrar: Address = list[1]["registrar"].as_str().unwrap().parse().unwrap();
    assert_eq!(registrar, reg_b.address());

    // A disables its provider (deregistered by A's registrar); then A can go.
    ok(a.cli("admin", &["provider", "disable", "drbob"], ""));
    assert!(!chain.is_provider(bob).await.unwrap());
    let said = ok(org(&["remove", "Hospital A"], &admin_key));
    assert!(said.contains("removed organisation 1"), "{said}");
    drop(server_a);
    drop(server_b);
}

/// The launched consortium: its printed addresses and its directory.
struct Launched {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    home: std::path::PathBuf,
    base: u16,
    rpc: String,
    contract: String,
    a_url: String,
    b_url: String,
    stopped: bool,
}

impl Drop for Launched {
    /// A failing test still stops what the launcher started.
    fn drop(&mut self) {
        if !self.stopped {
            self.terminate();
        }
    }
}

impl Launched {
    fn start(home: std::path::PathBuf) -> Self {
        use std::io::BufRead;
        // Twelve ports from a base no one listens on.
        let base = loop {
            let p = free_port();
            if p < 60_000
                && (0..12).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok())
            {
                break p;
            }
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/consortium");
        let mut child = std::process::Command::new("bash")
            .arg(script)
            .args(["--dir", home.to_str().unwrap()])
            .args(["--base-port", &base.to_string()])
            .env("SECURE_EHR_BIN", env!("CARGO_BIN_EXE_secure-ehr"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut said = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let done = line.starts_with("Ctrl-C");
            said.push(line);
            if done {
                break;
            }
        }
        let said = said.join("\n");
        assert!(said.contains("consortium ready"), "{said}");
        let field = |label: &str| -> String {
            let line = said
                .lines()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap_or_else(|| panic!("no {label} line in {said}"));
            line.split_whitespace()
                .nth(label.split(' ').count())
                .unwrap()
                .to_owned()
        };
        Self {
            rpc: field("chain"),
            contract: field("contract"),
            a_url: field("Hospital A"),
            b_url: field("Hospital B"),
            child,
            lines,
            home,
            base,
            stopped: false,
        }
    }

    /// SIGTERM to the launcher; what it printed until it exited.
    fn terminate(&mut self) -> Vec<String> {
        self.stopped = true;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let rest: Vec<String> = self.lines.by_ref().map_while(Result::ok).collect();
        let _ = self.child.wait();
        rest
    }

    /// Stops one of its processes (`hospital-a`, `node-1`, …) with SIGTERM.
    fn stop(&self, name: &str) {
        let pid = std::fs::read_to_string(self.home.join(format!("run/{name}.pid"))).unwrap();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", pid.trim()])
            .status()
            .unwrap();
        assert!(kill.success());
        // Gone once its pid file is (the launcher notices and says so).
        let path = self.home.join(format!("run/{name}.pid"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while path.exists() {
            assert!(std::time::Instant::now() < deadline, "{name} did not stop");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn password(&self, hospital: &str) -> String {
        std::fs::read_to_string(
            self.home
                .join(format!("hospital-{hospital}/admin.password")),
        )
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_at_a_shares_with_a_doctor_at_b_on_the_launched_consortium() {
    let dir = tempfile::tempdir().unwrap();
    let c = Launched::start(dir.path().join("consortium"));
    let chain = RpcRegistry::connect(&c.rpc, c.contract.parse().unwrap())
        .await
        .unwrap();
    let scratch = dir.path().join("cli");
    std::fs::create_dir_all(&scratch).unwrap();
    let at =
        |url: &str, actor: &str, args: &[&str], stdin: &str| cli(&scratch, url, actor, args, stdin);
    let (a, b) = (c.a_url.clone(), c.b_url.clone());
    let pw = format!("{PW}\n");
    ok(at(
        &a,
        "admin-a",
        &["login", "admin", "--password-stdin"],
        &c.password("a"),
    ));
    ok(at(
        &b,
        "admin-b",
        &["login", "admin", "--password-stdin"],
        &c.password("b"),
    ));
    ok(at(
        &a,
        "admin-a",
        &["provider", "add", "drbob", "--password-stdin"],
        &pw,
    ));
    ok(at(
        &b,
        "admin-b",
        &[
            "provider",
            "add",
            "drcarol",
            "--password-stdin",
            "--display-name",
            "Dr Carol Smith",
            "--specialty",
            "Cardiology",
        ],
        &pw,
    ));

    // A patient at A finds B's doctor in A's directory (checked against the chain), grants
    // her by address, and she reads at B: B's server fetches from the same nodes, whose
    // custodians check the chain.
    ok(at(
        &a,
        "alice",
        &["patient", "register", "alice", "--password-stdin"],
        &pw,
    ));
    ok(at(
        &a,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
    let listed = ok(at(&a, "alice", &["provider", "list", "--json"], ""));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let entry = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["username"] == name)
            .unwrap_or_else(|| panic!("{name} not in A's directory: {listed}"))
            .clone()
    };
    let carol = entry("drcarol");
    assert_eq!(carol["display_name"], "Dr Carol Smith");
    assert_eq!(carol["specialty"], "Cardiology");
    assert_eq!(carol["organisation"], "Hospital B");
    assert_eq!(carol["local"], false);
    let carol_addr = carol["address"].as_str().unwrap().to_owned();
    assert_eq!(entry("drbob")["organisation"], "Hospital A");
    assert_eq!(entry("drbob")["local"], true);
    let file = dir.path().join("record.json");
    std::fs::write(&file, crate::serve_cli::BUNDLE).unwrap();
    let out = ok(at(
        &a,
        "alice",
        &["record", "put", file.to_str().unwrap()],
        "",
    ));
    assert!(out.contains("with ID: 1"), "{out}");
    // Another organisation's username is not a local one: its address is what works.
    let err = fails(at(&a, "alice", &["grant", "drcarol", "--days", "7"], ""));
    assert!(err.contains("no such provider"), "{err}");
    ok(at(&a, "alice", &["grant", &carol_addr, "--days", "7"], ""));
    ok(at(
        &b,
        "carol",
        &["login", "drcarol", "--password-stdin"],
        &pw,
    ));
    let shared = ok(at(&b, "carol", &["shared"], ""));
    assert!(
        shared.starts_with("patient 1: all records until "),
        "{shared}"
    );
    let read = ok(at(&b, "carol", &["patient", "records", "1"], ""));
    assert!(read.contains("Jane Doe"), "{read}");
    let log = ok(at(&a, "alice", &["log"], ""));
    assert!(log.contains("read by drcarol (Hospital B)"), "{log}");

    // The nodes keep who stored what: B's registrar cannot delete A's record blocks.
    let manifest = {
        let rec = ok(at(&a, "alice", &["record", "list", "--json"], ""));
        let rec: serde_json::Value = serde_json::from_str(&rec).unwrap();
        ehr_store::parse_cid(rec[0]["versions"][0]["manifest_cid"].as_str().unwrap()).unwrap()
    };
    let reg_b = ehr_records::deployment::read_signer(&c.home.join("registrar-b.key")).unwrap();
    // A node that keeps the manifest: its first holder (a manifest is on 3 of the 5).
    let holder = ehr_node::manifest::manifest_order(&manifest, 5)
        .next()
        .unwrap();
    let holder_node = ehr_node::RemoteNode::new(
        holder + 1,
        &format!("http://127.0.0.1:{}", c.base + 1 + holder as u16),
        None,
    )
    .unwrap()
    .with_signer(reg_b);
    use ehr_records::node::Node as _;
    assert_eq!(
        holder_node.delete_block(&manifest).await.unwrap_err(),
        ehr_node::NodeError::Denied
    );
    assert!(holder_node.get_block(&manifest).await.is_ok());

    // Break-glass at B, the grant revoked: A's log marks it, with who and where.
    ok(at(&a, "alice", &["revoke", &carol_addr], ""));
    let err = fails(at(&b, "carol", &["patient", "records", "1"], ""));
    assert!(err.contains("revoked") || err.contains("denied"), "{err}");
    let read = ok(at(
        &b,
        "carol",
        &["emergency", "1", "--reason", "unconscious in the ER"],
        "",
    ));
    assert!(read.contains("Jane Doe"), "{read}");
    let log = ok(at(&a, "alice", &["log"], ""));
    assert!(
        log.lines()
            .any(|l| l.starts_with("EMERGENCY") && l.contains("drcarol (Hospital B)")),
        "{log}"
    );

    // With A's server stopped, B keeps working; with two nodes stopped too, reads still do.
    c.stop("hospital-a");
    let read = ok(at(&b, "carol", &["patient", "records", "1"], ""));
    assert!(read.contains("Jane Doe"), "{read}");
    c.stop("node-1");
    c.stop("node-4");
    let read = ok(at(&b, "carol", &["patient", "records", "1"], ""));
    assert!(read.contains("Jane Doe"), "{read}");

    // A provider B deregisters is refused at once.
    ok(at(&b, "admin-b", &["provider", "disable", "drcarol"], ""));
    let err = fails(at(&b, "carol", &["patient", "records", "1"], ""));
    assert!(!err.is_empty());
    let err = fails(at(
        &b,
        "carol",
        &["login", "drcarol", "--password-stdin"],
        &pw,
    ));
    assert!(err.contains("disabled"), "{err}");
    assert!(
        !chain
            .is_provider(carol_addr.parse().unwrap())
            .await
            .unwrap()
    );

    // SIGTERM stops everything the launcher started.
    let mut c = c;
    let base = c.base;
    let rest = c.terminate();
    assert!(rest.iter().any(|l| l == "consortium stopped"), "{rest:?}");
    for i in [0, 2, 3, 5, 11] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", base + i)).is_err(),
            "port {} still answers",
            base + i
        );
    }
}
