//! Writing files so that a crash loses nothing acknowledged and leaks nothing private.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Fsyncs directory `dir`, so a rename or a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

fn options(private: bool) -> OpenOptions {
    let mut opts = OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    opts
}

fn replace_with(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let dir = parent_of(path);
    let base = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    // One writer per path (the callers hold a lock), so a fixed name: a temporary file a
    // crash left behind is removed by the next replace.
    let tmp = dir.join(format!(".{base}.tmp"));
    let write = || -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = options(private).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    sync_dir(&dir)
}

/// Replaces `path` with `bytes` crash-safely: temporary file in the same directory, fsync,
/// rename over `path`, fsync of the directory. Readers (and a restart after a crash) see
/// the old file or the whole new one, never a torn one.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with(path, bytes, false)
}

/// [`replace`], the new file readable by its owner only (mode 0600).
pub fn replace_private(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with(path, bytes, true)
}

/// Creates `path`, which must not exist, readable by its owner only (mode 0600), with its
/// directory. To make it durable the caller syncs the file, then [`sync_dir`] its directory.
pub fn create_private(path: &Path) -> Result<File> {
    let dir = parent_of(path);
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    options(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Opens `path` for appending, creating it readable by its owner only (mode 0600).
pub fn open_append_private(path: &Path) -> Result<File> {
    let mut opts = options(true);
    opts.write(false).append(true).create(true);
    opts.open(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_writes_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        replace(&p, b"one").unwrap();
        replace(&p, b"two two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let a = dir.path().join("a");
        replace_private(&a, b"x").unwrap();
        assert_eq!(mode(&a), 0o600);
        let b = dir.path().join("sub/b");
        drop(create_private(&b).unwrap());
        assert_eq!(mode(&b), 0o600);
        assert!(create_private(&b).is_err(), "never overwrites");
        let c = dir.path().join("c");
        drop(open_append_private(&c).unwrap());
        assert_eq!(mode(&c), 0o600);
    }
}
