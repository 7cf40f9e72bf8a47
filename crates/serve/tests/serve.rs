//! The serving loop against raw TCP and TLS clients: slow clients are cut off at the
//! configured limits (short ones here, so the tests are quick), HTTPS works with a
//! certificate made here, and handlers see the client's address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use ehr_serve::{Options, Timeouts, TlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SHORT: Timeouts = Timeouts {
    header: Duration::from_millis(800),
    body: Duration::from_millis(800),
};

/// A failure guard only: no test waits this long unless the limit it checks is missing.
const GUARD: Duration = Duration::from_secs(20);

fn app() -> Router {
    Router::new()
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
}

async fn start(options: Options) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ehr_serve::serve(
        listener,
        app(),
        options,
        std::future::pending(),
    ));
    addr
}

fn short() -> Options {
    Options {
        timeouts: SHORT,
        tls: None,
    }
}

/// Reads until the server closes the connection (or the guard fires: then panics).
async fn read_to_close(stream: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server kept the connection open past the guard");
    got
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_off() {
    let addr = start(short()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One header line every 200 ms: 100 lines would take 20 s.
    let mut closed_after = None;
    for i in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if s.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            closed_after = Some(i);
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), s.peek(&mut probe)).await
        {
            closed_after = Some(i);
            break;
        }
    }
    let lines = closed_after.expect("the server waited for 100 trickled header lines");
    eprintln!(
        "trickled headers: connection closed after {lines} lines, {:?} (limit {:?})",
        started.elapsed(),
        SHORT.header
    );
    assert!(lines < 100);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let addr = start(short()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // The answer, then the close: no second request is ever sent.
    let got = read_to_close(&mut s).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    eprintln!(
        "idle keep-alive connection closed after {:?} (limit {:?})",
        started.elapsed(),
        SHORT.header
    );
}

#[tokio::test]
async fn a_trickled_body_fails_and_closes_the_connection() {
    let addr = start(short()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    // One byte every 100 ms: the whole body would take 10 s.
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b"x").await.is_err() {
                return false;
            }
        }
        true
    });
    let got = read_to_close(&mut rd).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        !text.contains(&"x".repeat(100)),
        "the body was echoed: {text}"
    );
    writer.abort();
}

/// A big body that keeps coming buys time as it comes: 2 MiB over 1.6 s (twice the body
/// limit) is served whole.
#[tokio::test]
async fn a_big_body_that_keeps_coming_is_not_cut_off() {
    let addr = start(short()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let len = 2 << 20;
    s.write_all(
        format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..16 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            wr.write_all(&vec![b'y'; len / 16]).await.unwrap();
        }
        wr
    });
    let got = read_to_close(&mut rd).await;
    let _wr = writer.await.unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(got.ends_with(&vec![b'y'; len]), "the whole body echoed");
}

#[tokio::test]
async fn a_prompt_client_is_served_and_its_address_is_known() {
    let addr = start(short()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let local = s.local_addr().unwrap();
    s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = String::from_utf8(read_to_close(&mut s).await).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with(&local.to_string()), "{text}");
}

/// A CA and a server certificate for 127.0.0.1 it signed, as PEM files in `dir`.
fn make_certs(
    dir: &std::path::Path,
) -> (rcgen::Certificate, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let cert_file = dir.join("cert.pem");
    let key_file = dir.join("key.pem");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (ca, cert_file, key_file)
}

#[tokio::test]
async fn https_with_a_certificate_made_here() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert_file, key_file) = make_certs(dir.path());
    let tls = TlsConfig::from_pem_files(&cert_file, &key_file).unwrap();
    let addr = start(Options {
        timeouts: SHORT,
        tls: Some(tls),
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = String::from_utf8(read_to_close(&mut s).await).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with(&local.to_string()), "{text}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut plain).await;
    assert!(!got.starts_with(b"HTTP/1.1 200"));

    // A client that opens TCP and never starts the handshake is dropped at the header limit.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(read_to_close(&mut silent).await.is_empty());
}

#[test]
fn bad_pem_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert_file, key_file) = make_certs(dir.path());
    let missing = dir.path().join("missing.pem");
    let e = TlsConfig::from_pem_files(&missing, &key_file).unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
    // The key file given as the certificate: no CERTIFICATE in it.
    let e = TlsConfig::from_pem_files(&key_file, &key_file).unwrap_err();
    assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    // Another key: does not fit.
    let other = dir.path().join("other.pem");
    std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let e = TlsConfig::from_pem_files(&cert_file, &other).unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
}
