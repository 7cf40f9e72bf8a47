//! The committed contract artifact must be what solc (pinned in contracts/package.json)
//! makes of contracts/src/EhrRegistry.sol today.

use std::path::Path;
use std::process::Command;

#[test]
fn committed_artifact_matches_a_fresh_compile() {
    let contracts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
    assert!(
        contracts.join("node_modules/solc").exists(),
        "solc-js is not installed: run `npm ci` in contracts/ (scripts/test does)"
    );
    let out = Command::new("node")
        .arg("build.mjs")
        .arg("--check")
        .current_dir(&contracts)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "stale artifact or compile failure:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
