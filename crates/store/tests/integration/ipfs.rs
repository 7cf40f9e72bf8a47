//! The npm packages in tests/js (installed with `npm ci`) and a real IPFS node run from them.
//! bin/secure-ehr's tests include this file too; the JavaScript implementations our code is
//! compared with are run by `js.rs`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `crates/store/tests/js`, from this crate or from bin/secure-ehr.
pub fn js_dir() -> PathBuf {
    // bin/secure-ehr has a tests/js of its own (viem): look for the store's by path.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.ends_with("crates/store") {
        here.join("tests/js")
    } else {
        here.join("../../crates/store/tests/js")
    }
}

/// Fails (never skips) when the npm packages are missing.
pub fn require_node_modules() {
    let dir = js_dir();
    assert!(
        dir.join("node_modules/ipfs-unixfs-importer").is_dir()
            && dir.join("node_modules/ipfs-core").is_dir(),
        "npm packages missing: run `npm ci` in {} (scripts/test does this)",
        dir.display()
    );
}

/// A js-ipfs node (ipfs-core + ipfs-http-server) with a Kubo-style RPC API on a free
/// loopback port and its repo in a temp dir; killed when dropped.
pub struct IpfsNode {
    child: Child,
    _stdin: ChildStdin,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    repo: tempfile::TempDir,
}

impl IpfsNode {
    /// Starts the node and waits (up to 120 s on a busy machine) for its API address.
    pub fn start() -> Self {
        require_node_modules();
        let repo = tempfile::tempdir().expect("temp repo");
        let mut child = Command::new("node")
            .arg(js_dir().join("ipfs-node.mjs"))
            .arg(repo.path().join("ipfs"))
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node ipfs-node.mjs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("API ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("js-ipfs node did not print its API address");
            }
        };
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "API not on loopback: {url}"
        );
        IpfsNode {
            child,
            _stdin: stdin,
            url,
            repo,
        }
    }

    /// The node's repo directory (its blocks are files under `blocks/`).
    pub fn repo(&self) -> PathBuf {
        self.repo.path().join("ipfs")
    }
}

impl Drop for IpfsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
