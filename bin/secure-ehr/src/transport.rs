//! How `serve` and `node` listen (HTTPS with `--tls-cert`/`--tls-key`, the slow-client
//! timeouts) and how clients trust a deployment's own CA (`--ca-file`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

/// The listening side's TLS and timeouts, shared by `serve` and `node`.
#[derive(Args, Clone, Debug)]
pub struct ListenArgs {
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first).
    #[arg(long, env = "SECURE_EHR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SECURE_EHR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has for the TLS handshake and for each request's headers; also how
    /// long a kept-alive connection may sit idle.
    #[arg(long, default_value_t = ehr_serve::HEADER_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's whole body once its headers are in.
    #[arg(long, default_value_t = ehr_serve::BODY_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout: u64,
}

impl ListenArgs {
    /// Whether connections are HTTPS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// The serving loop's options (reads and checks the certificate and key).
    pub fn options(&self) -> anyhow::Result<ehr_serve::Options> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(
                ehr_serve::TlsConfig::from_pem_files(cert, key)
                    .context("loading the TLS certificate and key")?,
            ),
            _ => None,
        };
        Ok(ehr_serve::Options {
            timeouts: ehr_serve::Timeouts {
                header: Duration::from_secs(self.header_timeout),
                body: Duration::from_secs(self.body_timeout),
            },
            tls,
        })
    }

    /// Binds `addr`, printing where it listens (`{what} listening on http(s)://ADDR`; port 0
    /// picks a free port).
    pub async fn bind(
        &self,
        addr: SocketAddr,
        what: &str,
    ) -> anyhow::Result<tokio::net::TcpListener> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let scheme = if self.tls() { "https" } else { "http" };
        println!("{what} listening on {scheme}://{}", listener.local_addr()?);
        Ok(listener)
    }
}

/// A reqwest client builder that also trusts the CA certificates of `ca_file` (PEM).
pub fn client_builder(ca_file: Option<&Path>) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{}: not a PEM certificate file", path.display()))?;
        anyhow::ensure!(
            !roots.is_empty(),
            "{}: no certificate in it",
            path.display()
        );
        builder = builder.tls_certs_merge(roots);
    }
    Ok(builder)
}
