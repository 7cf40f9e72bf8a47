//! One host runs the embedded chain and the service (`serve --rpc`); five `secure-ehr node`
//! processes reach that chain over its `/rpc` (`node --chain-rpc http://SERVER/rpc`), as
//! they would from other hosts. Neither side waits for the other forever: the server answers
//! `/rpc` (and 503 `starting` elsewhere) while it waits for its nodes, and a node started
//! before the server tries its chain again until it answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{Proc, spawn_listening, wait_listening};
use crate::serve_cli::{BUNDLE, PW, bin, cli, fails, ok};

pub(crate) const TOKEN: &str = "node-token-for-tests";
/// The server's `--rpc-token`: the nodes present it.
pub(crate) const RPC_TOKEN: &str = "rpc-token-for-tests";

/// A free port on 127.0.0.1 (free when asked; the processes bind it right after).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node process on `port`, with the server's `/rpc` as its chain.
pub(crate) fn node(dir: &std::path::Path, port: u16, rpc: &str, contract: &str) -> Command {
    let mut cmd = bin();
    cmd.args(["--data-dir", dir.to_str().unwrap(), "node"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--chain-rpc", rpc, "--contract", contract])
        .env("SECURE_EHR_NODE_TOKEN", TOKEN)
        .env("SECURE_EHR_CHAIN_RPC_TOKEN", RPC_TOKEN);
    cmd
}

/// A server with its embedded chain on `/rpc` (`serve --rpc`) and five remote nodes on
/// it, laid out under one test directory: the server's data directory (admin made), the
/// contract, the addresses. The processes start when asked.
pub(crate) struct RpcDeployment {
    root: std::path::PathBuf,
    pub(crate) data: std::path::PathBuf,
    pub(crate) contract: String,
    pub(crate) chain_id: u64,
    pub(crate) server_addr: String,
    pub(crate) rpc: String,
    pub(crate) ports: Vec<u16>,
    /// Each node's URL, node 1 first.
    pub(crate) urls: Vec<String>,
}

impl RpcDeployment {
    pub(crate) fn new(root: &std::path::Path) -> Self {
        let data = root.join("server");
        crate::restore::admin_init(&data);
        // The chain exists once opened: its contract address is what the nodes are told.
        let info = ok(bin()
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "chain",
                "info",
                "--json",
            ])
            .output()
            .unwrap());
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        let server_addr = format!("127.0.0.1:{}", free_port());
        let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
        Self {
            root: root.to_owned(),
            contract: info["contract"].as_str().unwrap().to_owned(),
            chain_id: info["chain_id"].as_u64().unwrap(),
            rpc: format!("http://{server_addr}/rpc"),
            urls: ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            data,
            server_addr,
            ports,
        }
    }

    /// Node `i`'s data directory (from 1).
    pub(crate) fn node_dir(&self, i: usize) -> std::path::PathBuf {
        self.root.join(format!("node-{i}"))
    }

    /// Node `i`'s command.
    pub(crate) fn node(&self, i: usize) -> Command {
        node(
            &self.node_dir(i),
            self.ports[i - 1],
            &self.rpc,
            &self.contract,
        )
    }

    /// Starts node `i` and waits until it listens.
    pub(crate) fn start_node(&self, i: usize) -> Proc {
        spawn_listening(self.node(i), "node")
    }

    /// Starts the server on its address with `--rpc` and the five nodes.
    pub(crate) fn serve(&self) -> Server {
        let mut serve = bin();
        serve
            .args(["--data-dir", self.data.to_str().unwrap(), "serve"])
            .args(["--listen", &self.server_addr, "--rpc"])
            .args(["--rpc-token", RPC_TOKEN])
            .args(["--nodes", &self.urls.join(",")])
            .env("SECURE_EHR_NODE_TOKEN", TOKEN);
        Server::spawn(serve)
    }
}

/// The server process; its standard output, line by line, on a channel (read to the end, so
/// the server never writes into a closed pipe).
pub(crate) struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Stops it with SIGTERM (a clean stop: the open ledger epoch is sealed) and waits.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        self.child.wait().unwrap()
    }

    pub(crate) fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    /// The rest of the first line that starts with `prefix`, within `secs`.
    pub(crate) fn line(&self, prefix: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(e) => panic!("no line {prefix:?} from the server: {e}"),
            }
        }
    }
}

/// One HTTP/1.1 request, with `Authorization: Bearer {bearer}` if given; (status, body).
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let body = reply
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[test]
fn five_nodes_on_the_embedded_chain_over_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let net = RpcDeployment::new(dir.path());
    let (contract, server_addr, ports) = (&net.contract, &net.server_addr, &net.ports);
    let rpc = &net.rpc;
    let node_dir = |i: usize| net.node_dir(i);

    // Node 1 starts before the server: it waits for the chain.
    let mut early = net.node(1);
    let early = spawn_listening_later(&mut early);

    let server = net.serve();
    let said = server.line("SecureEHR: embedded chain ", 60);
    assert!(
        said.to_lowercase().contains(&contract.to_lowercase()),
        "{said}"
    );
    server.line("SecureEHR listening on ", 30);

    // The server waits for nodes 2–5 (a new deployment needs every one), answering /rpc…
    let ask_chain_id = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    let (status, body) = http(server_addr, "POST", "/rpc", None, ask_chain_id);
    assert_eq!(status, 401, "{body}");
    let (status, body) = http(server_addr, "POST", "/rpc", Some(RPC_TOKEN), ask_chain_id);
    assert_eq!(status, 200, "{body}");
    let chain_id: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(chain_id["result"], format!("{:#x}", net.chain_id));
    // …and, for the rest, a clear "starting".
    let (status, body) = http(server_addr, "GET", "/api/status", None, "");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"starting\""), "{body}");

    let early = early.wait_listening();
    let mut procs: Vec<Option<Proc>> = vec![Some(early)];
    for i in 2..=5 {
        procs.push(Some(spawn_listening(
            node(&node_dir(i), ports[i - 1], rpc, contract),
            "node",
        )));
    }
    server.line("SecureEHR ready", 90);

    // The whole flow, with every share checked by the node processes on the embedded chain.
    let url = format!("http://{server_addr}");
    let pw = format!("{PW}\n");
    let scratch = dir.path().join("cli");
    std::fs::create_dir_all(&scratch).unwrap();
    ok(cli(
        &scratch,
        &url,
        "admin",
        &["login", "admin", "--password-stdin"],
        &pw,
    ));
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
    ok(cli(
        &scratch,
        &url,
        "alice",
        &["login", "alice", "--password-stdin"],
        &pw,
    ));
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
        "bob",
        &["login", "drbob", "--password-stdin"],
        &pw,
    ));
    let err = fails(cli(&scratch, &url, "bob", &["patient", "records", "1"], ""));
    assert!(
        err.contains("no record of patient 1 is open to you"),
        "{err}"
    );
    ok(cli(
        &scratch,
        &url,
        "alice",
        &["grant", "drbob", "--days", "7"],
        "",
    ));
    let out = ok(cli(&scratch, &url, "bob", &["patient", "records", "1"], ""));
    assert!(
        out.contains("Jane Doe") && out.contains("Diabetes"),
        "{out}"
    );

    // Two nodes gone: three of five still answer, and the read still works.
    procs[0].take();
    procs[3].take();
    let out = ok(cli(&scratch, &url, "bob", &["patient", "records", "1"], ""));
    assert!(out.contains("Jane Doe"), "{out}");
}

/// A node process started now whose "listening" line is awaited later.
struct Later {
    child: Option<Child>,
}

fn spawn_listening_later(cmd: &mut Command) -> Later {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Later { child: Some(child) }
}

impl Later {
    /// Waits for `node listening on URL` (the node got its chain and started).
    fn wait_listening(mut self) -> Proc {
        wait_listening(self.child.take().unwrap(), "node")
    }
}

impl Drop for Later {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
