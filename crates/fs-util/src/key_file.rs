//! 32-byte secret key files: 64 hex characters (optionally `0x`-prefixed) in a file
//! readable by its owner only. Node seeds and secp256k1 keys (the embedded chain's admin
//! key, the CLI's keys) use the same format and this one loader.

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
    hex::decode_to_slice(hex, key.as_mut()).map_err(|_| Error::KeyFile {
        path: path.to_path_buf(),
    })?;
    Ok(key)
}

/// Writes `key` to `path`, which must not exist (mode 0600), durably: the file, then its
/// directory, are fsynced before this returns (a crash never leaves an empty key file
/// behind a durable name).
pub fn write_new(path: &Path, key: &[u8; 32]) -> Result<()> {
    let mut f = crate::create_private(path)?;
    let hex = Zeroizing::new(hex::encode(key));
    writeln!(f, "0x{}", hex.as_str())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(path, e))?;
    crate::sync_dir(&crate::write::parent_of(path))
}

/// Reads the key in `path`, or creates a fresh random one there (mode 0600) if none exists.
pub fn load_or_create(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    if path.exists() {
        return read(path);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut()).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    write_new(path, &key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_keys_read_back_and_bad_ones_say_only_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k/node.key");
        let a = load_or_create(&p).unwrap();
        assert_eq!(*load_or_create(&p).unwrap(), *a, "loaded, not regenerated");
        assert_eq!(*read(&p).unwrap(), *a);
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "0xnot-hex-secret").unwrap();
        let e = read(&bad).unwrap_err().to_string();
        assert!(
            e.contains("32-byte hex key") && !e.contains("secret"),
            "{e}"
        );
    }
}
