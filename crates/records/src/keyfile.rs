//! 32-byte secret key files: 64 hex characters (optionally `0x`-prefixed) in a file
//! readable by its owner only. Used for node seeds and the embedded chain's admin key.

use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use crate::{Error, Result};

/// Reads the 32-byte key in `path`.
pub fn read(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?);
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    let mut key = Zeroizing::new([0u8; 32]);
    // The decode error could echo key material: say only what is wrong.
    alloy::primitives::hex::decode_to_slice(hex, key.as_mut()).map_err(|_| Error::KeyFile {
        path: path.to_path_buf(),
    })?;
    Ok(key)
}

/// Reads the key in `path`, or creates a fresh random one there (mode 0600) if none exists.
pub fn load_or_create(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    if path.exists() {
        return read(path);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut()).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let write = |opts: &std::fs::OpenOptions| -> std::io::Result<()> {
        let mut f = opts.open(path)?;
        let hex = Zeroizing::new(alloy::primitives::hex::encode(key.as_ref()));
        writeln!(f, "0x{}", hex.as_str())?;
        f.sync_all()?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write(&opts).map_err(|e| Error::io(path, e))?;
    Ok(key)
}
