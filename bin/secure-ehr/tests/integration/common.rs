//! Shared by the tests that run `secure-ehr` servers as processes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A server process, killed when dropped.
pub struct Proc {
    child: Child,
    /// The address it printed (`… listening on URL`).
    pub url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` and waits for the line `{what} listening on URL` on its standard output.
pub fn spawn_listening(mut cmd: Command, what: &str) -> Proc {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let prefix = format!("{what} listening on ");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{what} exited before printing its address"))
            .unwrap();
        if let Some(url) = line.strip_prefix(&prefix) {
            break url.to_owned();
        }
    };
    Proc { child, url }
}
