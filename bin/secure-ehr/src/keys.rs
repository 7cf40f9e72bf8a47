//! Secp256k1 key files: a hex private key in a file readable by its owner only.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use ehr_chain::PrivateKeySigner;
use zeroize::Zeroizing;

/// Reads a hex private key (with or without `0x`) from `path`.
pub fn read_key(path: &Path) -> anyhow::Result<PrivateKeySigner> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let hex = text.trim();
    if hex.is_empty() {
        bail!("key file {} is empty", path.display());
    }
    // The parse error could echo key material: say only what is wrong.
    hex.parse::<PrivateKeySigner>().map_err(|_| {
        anyhow::anyhow!(
            "key file {} does not hold a hex secp256k1 private key",
            path.display()
        )
    })
}

/// Reads the key at `path`, or creates a fresh random one there (mode 0600) if none exists.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<PrivateKeySigner> {
    if path.exists() {
        return read_key(path);
    }
    let key = PrivateKeySigner::random();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating key file {}", path.display()))?;
    let hex = Zeroizing::new(to_hex(&key.to_bytes()[..]));
    writeln!(f, "0x{}", hex.as_str())?;
    f.sync_all()?;
    Ok(key)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
