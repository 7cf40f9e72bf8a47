//! Append-only JSON-lines logs with one torn-tail rule.
//!
//! Each entry is one line of JSON written with a single `write` and, when the caller needs
//! it acknowledged, an `fdatasync`. A crash can leave only the last line incomplete: a last
//! line without its newline was never acknowledged, so [`JsonlLog::open`] cuts it off (and
//! the next append does not glue onto it). Any other line that does not parse means the
//! file was damaged rather than torn, and the open is refused with the line number.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// One append-only log file. Safe to share between threads.
#[derive(Debug)]
pub struct JsonlLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl JsonlLog {
    /// Opens the log at `path` (creating it, mode 0600, and its directory) and returns its
    /// entries, oldest first.
    pub fn open<T: DeserializeOwned>(path: &Path) -> Result<(Self, Vec<T>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = crate::open_append_private(path)?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            // A torn tail: never acknowledged. Cut it so later lines start clean.
            file.set_len(complete as u64)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io(path, e))?;
        }
        let mut entries = Vec::new();
        for (i, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let entry = serde_json::from_slice(line).map_err(|_| Error::CorruptLog {
                path: path.to_path_buf(),
                line: i + 1,
            })?;
            entries.push(entry);
        }
        let log = Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        };
        Ok((log, entries))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry; with `sync`, it is on disk when this returns.
    pub fn append<T: Serialize>(&self, entry: &T, sync: bool) -> Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(|e| Error::io(&self.path, e.into()))?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line).map_err(|e| Error::io(&self.path, e))?;
        if sync {
            f.sync_data().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Replaces the whole log with `entries`, crash-safely ([`crate::replace_private`]).
    pub fn rewrite<T: Serialize>(&self, entries: &[T]) -> Result<()> {
        let mut body = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut body, e).map_err(|e| Error::io(&self.path, e.into()))?;
            body.push(b'\n');
        }
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        crate::replace_private(&self.path, &body)?;
        *f = crate::open_append_private(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct E {
        n: u32,
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_next_entry_survives() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        let (log, got) = JsonlLog::open::<E>(&p).unwrap();
        assert!(got.is_empty());
        log.append(&E { n: 1 }, true).unwrap();
        drop(log);
        // A crash mid-append.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"n\":")
            .unwrap();
        let (log, got) = JsonlLog::open::<E>(&p).unwrap();
        assert_eq!(got, vec![E { n: 1 }]);
        log.append(&E { n: 2 }, true).unwrap();
        drop(log);
        let (_, got) = JsonlLog::open::<E>(&p).unwrap();
        assert_eq!(
            got,
            vec![E { n: 1 }, E { n: 2 }],
            "no entry glued to the torn tail"
        );
    }

    #[test]
    fn a_damaged_line_before_the_end_refuses_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        std::fs::write(&p, "{\"n\":1}\nnot json\n{\"n\":3}\n").unwrap();
        let e = JsonlLog::open::<E>(&p).unwrap_err();
        assert!(matches!(e, Error::CorruptLog { line: 2, .. }), "{e}");
    }

    #[test]
    fn rewrite_keeps_only_the_given_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        let (log, _) = JsonlLog::open::<E>(&p).unwrap();
        for n in 0..5 {
            log.append(&E { n }, false).unwrap();
        }
        log.rewrite(&[E { n: 7 }]).unwrap();
        log.append(&E { n: 8 }, true).unwrap();
        drop(log);
        let (_, got) = JsonlLog::open::<E>(&p).unwrap();
        assert_eq!(got, vec![E { n: 7 }, E { n: 8 }]);
    }
}
