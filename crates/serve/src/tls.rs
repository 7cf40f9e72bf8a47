//! [`TlsConfig`]: a server certificate chain and key from PEM files, for rustls.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::{Error, Result};

/// A server's TLS settings: its certificate chain and key (TLS 1.2 and 1.3, HTTP/1.1 by
/// ALPN, aws-lc-rs).
#[derive(Clone)]
pub struct TlsConfig(Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

impl TlsConfig {
    /// Reads `cert` (PEM: the server's certificate first, then any intermediates) and `key`
    /// (PEM: PKCS#8, PKCS#1 or SEC1) and checks that they belong together.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |e: rustls::pki_types::pem::Error| match e {
                rustls::pki_types::pem::Error::Io(source) => Error::Io { path, source },
                other => Error::Tls {
                    path,
                    message: format!("not a PEM file: {other}"),
                },
            }
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(io(cert))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io(cert))?;
        if chain.is_empty() {
            return Err(Error::Tls {
                path: cert.display().to_string(),
                message: "no CERTIFICATE in it".into(),
            });
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(io(key))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls {
                path: cert.display().to_string(),
                message: e.to_string(),
            })?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| Error::Tls {
                path: key.display().to_string(),
                message: format!("does not fit the certificate: {e}"),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self(Arc::new(config)))
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.0.clone())
    }
}
