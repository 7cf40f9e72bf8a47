//! Test support: a real anvil node, time travel and funding on every backend, and
//! tampering with an embedded chain's files. Only with the `test-utils` feature.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use async_trait::async_trait;

use crate::embedded::EmbeddedChain;
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::rpc::RpcRegistry;

/// What the conformance suite needs beyond [`Registry`]: moving time and paying for gas.
#[async_trait]
pub trait TestChain: Registry {
    /// Moves chain time forward by `secs` (and mines, where views read the last block).
    async fn advance_time(&self, secs: u64) -> Result<()>;
    /// Gives `who` enough ether for its transactions (no-op where gas is free).
    async fn fund(&self, who: Address) -> Result<()>;
}

#[async_trait]
impl TestChain for EmbeddedChain {
    async fn advance_time(&self, secs: u64) -> Result<()> {
        EmbeddedChain::advance_time(self, secs);
        Ok(())
    }
    async fn fund(&self, _who: Address) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl TestChain for RpcRegistry {
    async fn advance_time(&self, secs: u64) -> Result<()> {
        let _: serde_json::Value = self.raw_request("evm_increaseTime", (secs,)).await?;
        let _: serde_json::Value = self.raw_request("evm_mine", ()).await?;
        Ok(())
    }
    async fn fund(&self, who: Address) -> Result<()> {
        let amount = U256::from(10u128.pow(20));
        let _: serde_json::Value = self.raw_request("anvil_setBalance", (who, amount)).await?;
        Ok(())
    }
}

/// The first of anvil's well-known development keys (funded on every anvil start).
pub const ANVIL_DEV_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// Where the anvil binary from npm lives (`ANVIL_BIN` overrides).
pub fn anvil_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ANVIL_BIN") {
        return p.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

/// A real anvil node on a free loopback port, killed on drop.
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC URL.
    pub url: String,
}

impl Anvil {
    /// Starts anvil on 127.0.0.1 (no peers: anvil is a standalone dev node).
    pub fn spawn() -> Result<Self> {
        Self::spawn_with(&[])
    }

    /// [`spawn`](Self::spawn) with more command-line arguments (e.g. `--timestamp`).
    pub fn spawn_with(extra: &[&str]) -> Result<Self> {
        let bin = anvil_bin();
        if !bin.exists() {
            return Err(Error::Rpc(format!(
                "anvil not found at {}: run `npm ci` in contracts/ (scripts/test does)",
                bin.display()
            )));
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let url = format!("http://127.0.0.1:{port}");
        // `--silent` prints nothing; poll the port until it answers.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(Error::Rpc("anvil did not start within 20 s".into()));
            }
            if let Some(status) = child.try_wait()? {
                let mut out = String::new();
                if let Some(stdout) = child.stdout.take() {
                    for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                        out.push_str(&line);
                    }
                }
                return Err(Error::Rpc(format!("anvil exited with {status}: {out}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { child, url })
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rewrites the stored bytes of block `n` of the (closed) embedded chain in `dir` with
/// `f` applied — for tests that tampering is caught.
pub fn tamper_block(dir: &Path, n: u64, f: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
    let store = crate::embedded::open_store(dir)?;
    let block = store
        .block(n)?
        .ok_or_else(|| Error::Store(format!("no block {n}")))?;
    let mut bytes = block.encode();
    f(&mut bytes);
    store.overwrite_block(n, &bytes)
}

/// Drops the stored state and indexes of the (closed) embedded chain in `dir`: the file as
/// the version before they were stored wrote it — for tests of migration.
pub fn drop_state_and_indexes(dir: &Path) -> Result<()> {
    crate::embedded::open_store(dir)?.drop_state_and_indexes()
}

/// Drops the by-event log index of the (closed) embedded chain in `dir` — for tests that a
/// chain indexed before it existed gets it at its next open.
pub fn drop_event_index(dir: &Path) -> Result<()> {
    crate::embedded::open_store(dir)?.drop_event_index()
}

/// Overwrites storage slot `slot` of `addr` in the stored state of the (closed) embedded
/// chain in `dir` — for tests that a stored state that disagrees is caught.
pub fn tamper_slot(
    dir: &Path,
    addr: crate::Address,
    slot: crate::U256,
    value: crate::U256,
) -> Result<()> {
    crate::embedded::open_store(dir)?.overwrite_slot(addr, slot, value)
}

/// Overwrites which block the stored state of the (closed) embedded chain in `dir` is
/// "after" — for tests that open refuses a state that is not the head's.
pub fn tamper_state_after(dir: &Path, number: u64, hash: crate::B256) -> Result<()> {
    crate::embedded::open_store(dir)?.overwrite_state_after(number, hash)
}

/// Removes a transaction from the transaction index of the (closed) embedded chain in
/// `dir` — for tests that `verify` checks the indexes.
pub fn forget_tx(dir: &Path, hash: crate::B256) -> Result<()> {
    crate::embedded::open_store(dir)?.forget_tx(hash)
}

/// An HTTP/1.1 JSON-RPC proxy on loopback in front of `upstream` that records every request
/// body: tests see which block ranges a backend asks a node for. Threads, blocking I/O;
/// runs until the process ends.
pub struct RecordingProxy {
    /// Its URL: give it to the backend instead of the node's.
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl RecordingProxy {
    /// Starts a proxy in front of the node at `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Result<Self> {
        let upstream = upstream
            .strip_prefix("http://")
            .ok_or_else(|| Error::Rpc(format!("not an http URL: {upstream}")))?
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(|c| c.ok()) {
                let (upstream, log) = (upstream.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = proxy_connection(client, &upstream, &log);
                });
            }
        });
        Ok(Self { url, requests })
    }

    /// The JSON bodies of every request so far (batches flattened), oldest first.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.requests.lock().expect("proxy log").clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.requests.lock().expect("proxy log").clear();
    }

    /// The `(fromBlock, toBlock)` of every `eth_getLogs` request so far, with its first
    /// topic (the event); `toBlock` `None` for a tag such as `latest`.
    pub fn log_ranges(&self) -> Vec<(u64, Option<u64>, Option<String>)> {
        let num = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|s| s.strip_prefix("0x"))
                .and_then(|h| u64::from_str_radix(h, 16).ok())
        };
        self.requests()
            .iter()
            .filter(|r| r["method"] == "eth_getLogs")
            .map(|r| {
                let f = &r["params"][0];
                (
                    num(&f["fromBlock"]).unwrap_or(0),
                    num(&f["toBlock"]),
                    f["topics"][0].as_str().map(str::to_owned),
                )
            })
            .collect()
    }
}

/// Reads one HTTP message (head and a `Content-Length` body) from `r`.
fn read_message(r: &mut impl BufRead) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    std::io::Read::read_exact(r, &mut body)?;
    Ok(Some((head, body)))
}

fn proxy_connection(
    client: std::net::TcpStream,
    upstream: &str,
    log: &std::sync::Mutex<Vec<serde_json::Value>>,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let server = std::net::TcpStream::connect(upstream)?;
    let mut from_server = BufReader::new(server.try_clone()?);
    let mut to_server = server;
    while let Some((head, body)) = read_message(&mut from_client)? {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            let mut log = log.lock().expect("proxy log");
            match v {
                serde_json::Value::Array(batch) => log.extend(batch),
                one => log.push(one),
            }
        }
        to_server.write_all(&head)?;
        to_server.write_all(&body)?;
        let Some((head, body)) = read_message(&mut from_server)? else {
            return Ok(());
        };
        to_client.write_all(&head)?;
        to_client.write_all(&body)?;
    }
    Ok(())
}
