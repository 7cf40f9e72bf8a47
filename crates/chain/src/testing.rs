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
