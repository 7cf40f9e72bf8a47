//! The independent JavaScript implementations in tests/js our importer and CAR code are
//! compared with.

use std::process::Command;

use crate::ipfs::{js_dir, require_node_modules};

/// Runs `node tests/js/<script> args…` and returns its stdout; panics with stderr on failure.
pub fn node(script: &str, args: &[&str]) -> String {
    require_node_modules();
    let out = Command::new("node")
        .arg(js_dir().join(script))
        .args(args)
        .current_dir(js_dir())
        .output()
        .expect("run node (is Node.js installed?)");
    assert!(
        out.status.success(),
        "node {script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}
