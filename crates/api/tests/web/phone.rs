//! Issue 20 in-process: the installable app's files (manifest, icons of the sizes it
//! names, the service worker at the root) and the offline page, which is the same for
//! everyone: no cookie, no token, nothing personal, so caching it keeps nothing.

use super::*;

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[tokio::test]
async fn the_manifest_names_icons_that_exist_and_the_shell_is_public() {
    let h = service().await;
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();

    let r = b.get(&app, "/manifest.webmanifest").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/manifest+json");
    let m = r.json();
    assert_eq!(m["display"], "standalone");
    assert_eq!(m["start_url"], "/");
    let mut purposes = Vec::new();
    for icon in m["icons"].as_array().unwrap() {
        let src = icon["src"].as_str().unwrap();
        let r = b.get(&app, src).await;
        assert_eq!(r.status, StatusCode::OK, "{src}");
        assert_eq!(r.headers[header::CONTENT_TYPE], "image/png", "{src}");
        let (w, hgt) = png_size(&r.bytes);
        assert_eq!(
            format!("{w}x{hgt}"),
            icon["sizes"],
            "{src} is the size it says"
        );
        purposes.push(format!("{w} {}", icon["purpose"].as_str().unwrap()));
    }
    for want in ["192 any", "512 any", "512 maskable"] {
        assert!(purposes.iter().any(|p| p == want), "{want} in {purposes:?}");
    }

    // The service worker: at the root (its scope is the app), never cached stale.
    let r = b.get(&app, "/sw.js").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-cache");
    let sw = String::from_utf8(r.bytes).unwrap();
    for path in ["/offline", "/static/style.css", "/manifest.webmanifest"] {
        assert!(
            sw.contains(&format!("'{path}'")),
            "the worker caches {path}"
        );
    }
    assert!(!sw.contains("'/patient"), "and no page behind a login");

    // The offline page: public, the same for everyone — no cookie set, no form, no token.
    let r = Browser::default().get(&app, "/offline").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get(header::SET_COOKIE).is_none(), "no cookie");
    let page = r.text();
    assert!(page.contains("You are offline") && page.contains("needs a connection"));
    assert!(
        !page.contains("<form") && !page.contains("csrf"),
        "no form, no token"
    );

    // Every page links the manifest and loads only the script from this origin.
    let home = b.get(&app, "/").await.text();
    assert!(home.contains(r#"<link rel="manifest" href="/manifest.webmanifest">"#));
    assert!(home.contains(r#"<script src="/static/app.js" defer>"#));
    let js = b.get(&app, "/static/app.js").await;
    assert!(
        String::from_utf8(js.bytes)
            .unwrap()
            .contains("serviceWorker.register('/sw.js'")
    );
}
