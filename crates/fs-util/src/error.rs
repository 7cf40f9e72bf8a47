//! The crate's one error type: every variant names the file.

use std::path::PathBuf;

/// What can go wrong with a file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key file does not hold a 32-byte hex key (its contents are never quoted).
    #[error("key file {} does not hold a 32-byte hex key", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
    },
    /// A log line before the last one does not parse: the file was damaged, not torn.
    #[error("corrupt log {} at line {line}", path.display())]
    CorruptLog {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
