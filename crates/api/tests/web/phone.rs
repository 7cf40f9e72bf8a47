//! Issue 20 in-process: the installable app's files (manifest, icons of the sizes it
//! names, the service worker at the root) and the offline page, which is the same for
//! everyone: no cookie, no token, nothing personal, so caching it keeps nothing.

use super::*;
use ehr_chain::RegistryExt;

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

/// The `o` of the sharing link on a code page.
fn offer_param(page: &str) -> String {
    let at = page.find("/offer?o=").expect("the page shows the link") + 9;
    page[at..]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_code_is_the_patients_once_for_ten_minutes_and_refusals_change_nothing() {
    let h = service().await;
    let svc = &h.service;
    let app = router(AppState::new(svc.clone()));
    svc.register_patient("quinn", PASSWORD).await.unwrap();
    let (_, quinn) = svc.login("quinn", PASSWORD, "test").await.unwrap();
    let quinn = quinn.patient().unwrap();
    let form = ehr_records::fhir::RecordForm {
        patient_name: "Quinn Code".into(),
        birth_date: "1970-01-02".into(),
        health_condition: "Gout".into(),
        ..Default::default()
    };
    let mine = svc.put_form(&quinn, &form).await.unwrap().record_id;
    let until = ehr_records::fhir::Date::today_utc();
    let until = format!("{:04}-12-31", until.year + 1);

    let mut pat = Browser::default();
    sign_in(&app, &mut pat, "quinn", PASSWORD).await;
    let page = pat.get(&app, "/patient/share-code").await.text();
    let token = csrf(&page);
    // Bad input: the form again with the error, no code.
    for (record, expires, field) in [
        ("999", until.as_str(), "Records"),
        ("", "2001-01-01", "Access expires on"),
    ] {
        let r = pat
            .post(
                &app,
                "/patient/share-code",
                &[
                    ("csrf", &token),
                    ("record_id", record),
                    ("expires", expires),
                ],
            )
            .await;
        let text = r.text();
        assert!(
            text.contains(&format!("{field}: ")),
            "{field} error shown: {text}"
        );
        assert!(!text.contains("/offer?o="), "no code made");
    }
    let make = |pat: &mut Browser| {
        let (app, token, until, record) =
            (app.clone(), token.clone(), until.clone(), mine.to_string());
        let mut pat = pat.clone();
        async move {
            let r = pat
                .post(
                    &app,
                    "/patient/share-code",
                    &[
                        ("csrf", &token),
                        ("record_id", &record),
                        ("expires", &until),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
            let text = r.text();
            assert!(text.contains("<svg"), "a QR code drawn by the server");
            offer_param(&text)
        }
    };
    let code = make(&mut pat).await;
    let late = make(&mut pat).await;
    // The patient need not be online to have the code redeemed.
    let r = pat.post(&app, "/logout", &[("csrf", &token)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    let mut doc = Browser::default();
    sign_in(&app, &mut doc, PROVIDER.0, PROVIDER.1).await;
    let doc_addr = svc.account(PROVIDER.0).unwrap().address;
    let may_read = || async { svc.registry().can_access(doc_addr, mine).await.unwrap() };
    assert!(!may_read().await);

    // Forged: bytes altered, another length, not base64 — 400, nothing changed.
    let mut altered = code.clone().into_bytes();
    altered[40] = if altered[40] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for o in [altered.as_str(), &code[..100], "not*base64", ""] {
        let r = doc.get(&app, &format!("/offer?o={o}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{o}");
        assert!(r.text().contains("This code is not valid"));
    }
    let page = doc.get(&app, &format!("/offer?o={code}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.headers[header::REFERRER_POLICY],
        "no-referrer",
        "the code leaks to no other site"
    );
    let text = page.text();
    assert!(text.contains(&format!("Read record {mine}")), "{text}");
    let token = csrf(&text);
    let r = doc
        .post(&app, "/offer", &[("csrf", &token), ("o", &altered)])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!may_read().await, "a forged offer changed nothing");
    // Without the CSRF token: refused before anything happens.
    let r = doc.post(&app, "/offer", &[("o", &code)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!may_read().await);

    // Accepted once: the provider may read that record; the same code again is used.
    let r = doc
        .post(&app, "/offer", &[("csrf", &token), ("o", &code)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("Shared with you"));
    assert!(may_read().await, "the offer was redeemed on chain");
    for r in [
        doc.get(&app, &format!("/offer?o={code}")).await,
        doc.post(&app, "/offer", &[("csrf", &token), ("o", &code)])
            .await,
    ] {
        assert_eq!(r.status, StatusCode::GONE);
        assert!(r.text().contains("This code was already used"));
    }

    // Ten minutes later the other code has expired, here and on chain.
    // (The revocation mines a block at the moved clock.)
    h.service
        .embedded_chain()
        .unwrap()
        .advance_time(ehr_records::OFFER_TTL + 60);
    svc.revoke(&quinn, PROVIDER.0, Some(mine)).await.unwrap();
    for r in [
        doc.get(&app, &format!("/offer?o={late}")).await,
        doc.post(&app, "/offer", &[("csrf", &token), ("o", &late)])
            .await,
    ] {
        assert_eq!(r.status, StatusCode::GONE);
        assert!(r.text().contains("This code has expired"));
    }
    assert!(!may_read().await, "an expired offer changed nothing");

    // Not signed in (a code scanned with a phone's camera): sign in, then straight back
    // to the offer. Only an offer link is a place to go back to.
    let mut scanner = Browser::default();
    let r = scanner.get(&app, &format!("/offer?o={late}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let login = location(&r).to_owned();
    assert_eq!(
        login,
        format!("/providers/login?next=%2Foffer%3Fo%3D{late}")
    );
    let page = scanner.get(&app, &login).await.text();
    assert!(page.contains(&format!(r#"name="next" value="/offer?o={late}""#)));
    for (next, to) in [
        ("https://elsewhere.example/offer?o=x", "/provider"),
        ("//elsewhere.example", "/provider"),
        ("/offer?o=a\"><script>", "/provider"),
        (
            &format!("/offer?o={late}")[..],
            &format!("/offer?o={late}")[..],
        ),
    ] {
        let mut b = Browser::default();
        let token = csrf(&b.get(&app, "/providers/login").await.text());
        let login = [
            ("csrf", token.as_str()),
            ("portal", "providers"),
            ("username", PROVIDER.0),
            ("password", PROVIDER.1),
            ("next", next),
        ];
        let r = b.post(&app, "/login", &login).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&r), to, "next {next}");
    }
    // A patient is not offered anything.
    let mut patient = Browser::default();
    sign_in(&app, &mut patient, "quinn", PASSWORD).await;
    let r = patient.get(&app, &format!("/offer?o={late}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.text().contains("shares records with you"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patients_pages_say_what_happened_since_the_last_visit() {
    let h = service().await;
    let svc = &h.service;
    let app = router(AppState::new(svc.clone()));
    svc.register_patient("vera", PASSWORD).await.unwrap();
    let (_, vera) = svc.login("vera", PASSWORD, "test").await.unwrap();
    let vera = vera.patient().unwrap();
    let form = ehr_records::fhir::RecordForm {
        patient_name: "Vera Visit".into(),
        birth_date: "1955-05-05".into(),
        health_condition: "Angina".into(),
        ..Default::default()
    };
    let first = svc.put_form(&vera, &form).await.unwrap().record_id;
    let second = svc.put_form(&vera, &form).await.unwrap().record_id;
    let pid = svc.patient_id(vera.address()).await.unwrap().unwrap();
    let (_, doc) = svc.login(PROVIDER.0, PROVIDER.1, "test").await.unwrap();
    let doc = doc.provider().unwrap();

    // A visit, then, while she is away: a read under a grant about to end, and a
    // break-glass read with its reason.
    let mut b = Browser::default();
    sign_in(&app, &mut b, "vera", PASSWORD).await;
    let page = b.get(&app, "/patient/records").await.text();
    assert!(
        !page.contains("Since your last visit"),
        "nothing happened yet"
    );
    let token = csrf(&page);
    b.post(&app, "/logout", &[("csrf", &token)]).await;
    // Times are whole seconds, and a read in the visit's own second counts as new.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let soon = ehr_primitives::unix_now() + 2 * 86_400;
    svc.grant(&vera, PROVIDER.0, Some(first), soon)
        .await
        .unwrap();
    svc.read_record(&doc, first, None).await.unwrap();
    let reason = "Unconscious in A&E <b>now</b>";
    svc.emergency_access(&doc, pid, reason).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let mut b = Browser::default();
    sign_in(&app, &mut b, "vera", PASSWORD).await;
    for path in [
        "/patient",
        "/patient/records",
        "/patient/sharing",
        "/account",
    ] {
        let page = b.get(&app, path).await.text();
        let at = page
            .find("Since your last visit")
            .unwrap_or_else(|| panic!("{path}: notices"));
        let main = page.find("<main").unwrap();
        assert!(
            at > main && at < page.find("<h1").unwrap(),
            "{path}: at the top"
        );
        let notes = &page[at..page[at..].find("</section>").unwrap() + at];
        assert!(
            notes.contains(&format!("{} read record {first}", PROVIDER.0)),
            "{notes}"
        );
        assert!(
            notes.contains(&format!("read record {second} without your grant")),
            "{notes}"
        );
        assert!(
            notes.contains("Emergency access"),
            "break-glass highlighted: {notes}"
        );
        assert!(
            notes.contains("Unconscious in A&amp;E &lt;b&gt;now&lt;/b&gt;"),
            "with the reason, escaped: {notes}"
        );
        assert!(
            notes.contains(&format!("for record {first} ends on")),
            "the grant about to expire: {notes}"
        );
    }
    // A provider's pages never show them.
    let mut p = Browser::default();
    sign_in(&app, &mut p, PROVIDER.0, PROVIDER.1).await;
    assert!(
        !p.get(&app, "/provider")
            .await
            .text()
            .contains("Since your last visit")
    );

    // The next visit: those reads were seen; only the grant still ending soon is told.
    let token = csrf(&b.get(&app, "/patient").await.text());
    b.post(&app, "/logout", &[("csrf", &token)]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut b = Browser::default();
    sign_in(&app, &mut b, "vera", PASSWORD).await;
    let page = b.get(&app, "/patient/records").await.text();
    assert!(page.contains("Since your last visit"));
    assert!(!page.contains("read record"), "old reads are not news");
    assert!(page.contains(&format!("for record {first} ends on")));
}
