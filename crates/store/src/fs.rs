//! The embedded default backend: one file per block under a root directory, laid out like
//! Kubo's flatfs (`<root>/<shard>/<KEY>.data`, KEY = base32 of the multihash, shard = the
//! two characters before the last). Writes are crash-safe: a unique temp file in the same
//! directory is written, fsynced and renamed over the final name, then the directory is
//! fsynced. Concurrent writers of the same block each rename identical bytes; the last
//! rename wins and readers only ever see whole files.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use cid::Cid;

use crate::cids::{check_supported, verify};
use crate::{BlobStore, Error, Result};

/// Distinguishes temp files of concurrent writers within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory of blocks.
#[derive(Clone, Debug)]
pub struct FsStore {
    root: Arc<PathBuf>,
}

impl FsStore {
    /// Opens (creating if needed) a block directory at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        Ok(FsStore {
            root: Arc::new(root),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds (or would hold) block `cid`.
    pub fn path_of(&self, cid: &Cid) -> PathBuf {
        let key = base32_upper(&cid.hash().to_bytes());
        let shard = &key[key.len() - 3..key.len() - 1];
        self.root.join(shard).join(format!("{key}.data"))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FsStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    fn put_sync(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        let path = self.path_of(cid);
        // Idempotent: a present file of the right length is the same block (hash-addressed);
        // a wrong-length one (torn by an outside hand) is replaced.
        if fs::metadata(&path).is_ok_and(|m| m.len() == data.len() as u64) {
            return Ok(());
        }
        let dir = path.parent().expect("block path has a shard directory");
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("block"),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(&path, e));
        }
        sync_dir(dir)
    }

    fn get_sync(&self, cid: &Cid) -> Result<Vec<u8>> {
        check_supported(cid)?;
        let path = self.path_of(cid);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    cid: Box::new(*cid),
                });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        verify(cid, &data, Some(&path.display()))?;
        Ok(data)
    }

    fn delete_sync(&self, cid: &Cid) -> Result<()> {
        let path = self.path_of(cid);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().expect("block path has a shard directory")),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// The CID a flatfs file name (`<KEY>.data`) stands for: the raw-codec CIDv1 of the
/// multihash KEY encodes. `None` for anything else (temp files, `SHARDING`, …).
pub(crate) fn key_cid(file_name: &str) -> Option<Cid> {
    let key = file_name.strip_suffix(".data")?;
    let mh = cid::multihash::Multihash::<64>::from_bytes(&base32_upper_decode(key)?).ok()?;
    Some(Cid::new_v1(crate::cids::RAW, mh))
}

/// Inverse of [`base32_upper`]; `None` on a character outside the alphabet or non-zero
/// padding bits (so one byte string has one spelling).
fn base32_upper_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    (acc == 0 && bits < 5).then_some(out)
}

/// RFC 4648 base32, upper case, no padding (flatfs key alphabet).
fn base32_upper(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[async_trait]
impl BlobStore for FsStore {
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        verify(cid, data, None)?;
        let (cid, data) = (*cid, data.to_vec());
        self.blocking(move |s| s.put_sync(&cid, &data)).await
    }

    async fn get(&self, cid: &Cid) -> Result<Vec<u8>> {
        let cid = *cid;
        self.blocking(move |s| s.get_sync(&cid)).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        let path = self.path_of(cid);
        self.blocking(move |_| match fs::metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&path, e)),
        })
        .await
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        let cid = *cid;
        self.blocking(move |s| s.delete_sync(&cid)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32_upper(b""), "");
        assert_eq!(base32_upper(b"f"), "MY");
        assert_eq!(base32_upper(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn base32_decodes_what_it_encodes_and_nothing_else() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base32_upper_decode(&base32_upper(bytes)).unwrap(), bytes);
        }
        assert_eq!(base32_upper_decode("MZ"), None, "non-zero padding bits");
        assert_eq!(base32_upper_decode("my"), None, "lower case");
        assert_eq!(base32_upper_decode("M1"), None, "outside the alphabet");
        let cid = crate::cids::raw_cid(b"block");
        let store = FsStore::open(std::env::temp_dir()).unwrap();
        let name = store.path_of(&cid);
        let name = name.file_name().unwrap().to_str().unwrap();
        assert_eq!(key_cid(name), Some(cid));
        assert_eq!(key_cid(&format!(".{name}.1.2.tmp")), None);
    }

    #[test]
    fn layout_is_flatfs_next_to_last_2() {
        let store = FsStore::open(std::env::temp_dir()).unwrap();
        // flatfs: key = base32 of the multihash, shard = the two characters before the last.
        let cid = crate::cids::raw_cid(b"");
        let p = store.path_of(&cid);
        assert!(p.ends_with("QV/CIQOHMGEIKMPYHAUTL57JSEZN64SIJ5OIHSGJG4TJSSJLGI3PBJLQVI.data"));
    }
}
