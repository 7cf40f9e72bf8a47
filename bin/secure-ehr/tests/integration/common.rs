//! Shared by the tests that run `secure-ehr` servers as processes.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

/// A server process, killed when dropped.
pub struct Proc {
    child: Child,
    /// The address it printed (`… listening on URL`).
    pub url: String,
    /// The rest of its standard output.
    rest: Lines<BufReader<ChildStdout>>,
}

impl Proc {
    /// The next line it prints (blocking), or `None` once it closed its output.
    pub fn next_line(&mut self) -> Option<String> {
        self.rest.next().and_then(Result::ok)
    }

    /// Stops it with SIGTERM (a clean stop) and returns how it exited and what it printed
    /// after its address.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let said: Vec<String> = self.rest.by_ref().map_while(Result::ok).collect();
        (self.child.wait().unwrap(), said.join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` and waits for the line `{what} listening on URL` on its standard output.
/// Its standard error goes to a temporary file, shown if it exits before that line.
pub fn spawn_listening(mut cmd: Command, what: &str) -> Proc {
    let mut stderr = tempfile::tempfile().unwrap();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wait_listening(child, what))) {
        Ok(proc) => proc,
        Err(panic) => {
            use std::io::{Read, Seek};
            let mut said = String::new();
            let _ = stderr.rewind();
            let _ = stderr.read_to_string(&mut said);
            let tail: String = said.lines().rev().take(20).collect::<Vec<_>>().join("\n");
            eprintln!("{what}'s standard error (last lines, newest first):\n{tail}");
            std::panic::resume_unwind(panic)
        }
    }
}

/// Waits for the line `{what} listening on URL` on the standard output (piped) of `child`,
/// a process started earlier.
pub fn wait_listening(mut child: Child, what: &str) -> Proc {
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
    Proc {
        child,
        url,
        rest: lines,
    }
}

/// A test CA and a server certificate for 127.0.0.1 and localhost that it signed, as PEM
/// files: `ca` (the CA's certificate), `cert` and `key` (the server's).
pub struct TestCerts {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl TestCerts {
    pub fn new(dir: &std::path::Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let certs = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        };
        std::fs::write(&certs.ca, ca.pem()).unwrap();
        std::fs::write(&certs.cert, cert.pem()).unwrap();
        std::fs::write(&certs.key, key.serialize_pem()).unwrap();
        certs
    }
}
