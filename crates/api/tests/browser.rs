//! The browser walk (issue #6): serves the router in-process, over HTTPS (issue #12), on an
//! embedded service and runs `tests/browser/walk.mjs` (playwright-core driving Debian's
//! chromium) against it.
//! Fails — never skips — when chromium or the npm packages are missing.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{ADMIN, PROVIDER};
use ehr_api::AppState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_walk_at_phone_and_desktop_sizes() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (scripts/test does)"
    );
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in {} (scripts/test does)",
        browser_dir.display()
    );

    let h = common::service().await;
    let service = h.service.clone();

    // Over HTTPS, as a deployment should run: a certificate for 127.0.0.1 made here, which
    // chromium is told to accept by its key (walk.mjs), cookies `Secure`, HSTS on.
    let certs = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_file, key_file) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let options = ehr_serve::Options {
        tls: Some(ehr_serve::TlsConfig::from_pem_files(&cert_file, &key_file).unwrap()),
        ..Default::default()
    };

    let serve = |state: AppState| {
        let options = options.clone();
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("https://{}", listener.local_addr().unwrap());
            let server = tokio::spawn(ehr_api::serve_with(
                listener,
                state.with_secure_cookies(true),
                options,
                std::future::pending(),
            ));
            (url, server)
        }
    };
    // Sign-ups are throttled per client (tests/openapi.rs checks it); this walk signs up
    // several patients from one address.
    let (url, server) =
        serve(AppState::new(service).with_signup_limit(20, std::time::Duration::from_secs(1)))
            .await;
    // A first start for each size: no admin yet, so a one-time set-up link.
    let mut first_starts = Vec::new();
    let mut setup_links = Vec::new();
    for _ in 0..2 {
        let fresh = common::service_without_admin().await;
        let state = AppState::new(fresh.service.clone());
        let token = state.setup_token().expect("no admin: a set-up token");
        let (base, server) = serve(state).await;
        setup_links.push(format!("{base}/setup?token={token}"));
        first_starts.push((fresh, server));
    }

    let status = tokio::process::Command::new("node")
        .arg("walk.mjs")
        .arg(&url)
        .current_dir(&browser_dir)
        .env("CERT_FILE", &cert_file)
        .env("CHROMIUM", &chromium)
        .env("ADMIN_USER", ADMIN.0)
        .env("ADMIN_PASS", ADMIN.1)
        .env("PROVIDER_USER", PROVIDER.0)
        .env("PROVIDER_PASS", PROVIDER.1)
        .env("SETUP_LINKS", setup_links.join(" "))
        .stdin(Stdio::null())
        .status()
        .await
        .expect("run node");
    server.abort();
    for (_, s) in &first_starts {
        s.abort();
    }
    assert!(status.success(), "the browser walk failed: {status}");
    for (fresh, _) in &first_starts {
        assert!(
            fresh.service.accounts().has_admin(),
            "the set-up page created the admin"
        );
    }
}
