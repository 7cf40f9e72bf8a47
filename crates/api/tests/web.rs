//! The web UI through `router`, in-process: cookies, CSRF on every POST (missing or wrong
//! → 403 and nothing changed), inline errors that change nothing, escaping, access denied.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::*;
use ehr_api::{AppState, router};

#[path = "web/account.rs"]
mod account;
#[path = "web/attachments.rs"]
mod attachments;
#[path = "web/charts.rs"]
mod charts;
#[path = "web/leave.rs"]
mod leave;
#[path = "web/phone.rs"]
mod phone;
#[path = "web/recovery.rs"]
mod recovery;
#[path = "web/totp.rs"]
mod totp;
use recovery::recovery_code;

/// A minimal browser: our two cookies.
#[derive(Default, Clone)]
struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn absorb(&mut self, headers: &HeaderMap) {
        for c in headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, _) = c.split_once(';').unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !c.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, app: &Router, uri: &str) -> Reply {
        let req = Request::builder()
            .uri(uri)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        let r = send(app, req).await;
        self.absorb(&r.headers);
        r
    }

    async fn post(&mut self, app: &Router, uri: &str, fields: &[(&str, &str)]) -> Reply {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let r = send(app, req).await;
        self.absorb(&r.headers);
        r
    }
}

impl Browser {
    /// A `multipart/form-data` POST as a browser sends one: text fields, then one file
    /// (`field`, its bytes).
    async fn multipart(
        &mut self,
        app: &Router,
        uri: &str,
        fields: &[(&str, &str)],
        file: (&str, &[u8]),
    ) -> Reply {
        const BOUNDARY: &str = "----secureehrTestBoundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"; \
                 filename=\"upload.json\"\r\nContent-Type: application/json\r\n\r\n",
                file.0
            )
            .as_bytes(),
        );
        body.extend_from_slice(file.1);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::COOKIE, self.cookie_header())
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(body))
            .unwrap();
        let r = send(app, req).await;
        self.absorb(&r.headers);
        r
    }
}

/// The CSRF token in a page's forms.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("page has a CSRF field")
        + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

fn location(r: &Reply) -> &str {
    r.headers[header::LOCATION].to_str().unwrap()
}

/// Signs `user` in through the patients page.
async fn sign_in(app: &Router, b: &mut Browser, user: &str, password: &str) -> String {
    let page = b.get(app, "/patients").await;
    let token = csrf(&page.text());
    let portal = if user == PROVIDER.0 {
        "providers"
    } else {
        "patients"
    };
    let r = b
        .post(
            app,
            "/login",
            &[
                ("csrf", &token),
                ("portal", portal),
                ("username", user),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    location(&r).to_owned()
}

const RECORD: [(&str, &str); 5] = [
    ("patient_name", "Jane <script>alert(1)</script> Doe"),
    ("birth_date", "1984-02-29"),
    ("address", "1 Main St"),
    ("phone", "+1 555 010 0199"),
    ("health_condition", "Asthma"),
];

#[tokio::test]
async fn cookies_are_httponly_strict_and_csrf_guards_login() {
    let h = service().await;
    h.service.register_patient("fay", PASSWORD).await.unwrap();
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();

    let page = b.get(&app, "/patients").await;
    assert_eq!(page.status, StatusCode::OK);
    let set = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("ehr_browser=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict"),
        "{set}"
    );
    let token = csrf(&page.text());
    let login = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("portal", "patients".into()),
            ("username", "fay".into()),
            ("password", PASSWORD.into()),
        ]
    };

    for bad in ["", "00", &"0".repeat(64)] {
        let fields = login(bad);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = b.post(&app, "/login", &fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "csrf {bad:?}");
        assert!(
            !r.headers.contains_key(header::SET_COOKIE),
            "no session without a valid token"
        );
    }
    // The right token without the browser cookie it is bound to: refused too.
    let mut stranger = Browser::default();
    let fields = login(&token);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = stranger.post(&app, "/login", &fields).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = b.post(&app, "/login", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/patient");
    let set = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("ehr_session=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Max-Age="),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP on loopback");

    // Logout (with its CSRF token) ends the session on the server too.
    let page = b.get(&app, "/patient").await;
    assert_eq!(page.status, StatusCode::OK);
    let session_token = b
        .cookies
        .iter()
        .find(|(n, _)| n == "ehr_session")
        .unwrap()
        .1
        .clone();
    let r = b
        .post(&app, "/logout", &[("csrf", &csrf(&page.text()))])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(h.service.authenticate(&session_token).is_err());
    let r = b.get(&app, "/patient").await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "signed out: back to the login page"
    );
}

#[tokio::test]
async fn secure_cookies_behind_tls() {
    let h = service().await;
    let app = router(AppState::new(h.service.clone()).with_secure_cookies(true));
    let r = Browser::default().get(&app, "/").await;
    let set = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("__Host-ehr_browser=") && set.contains("; Secure"),
        "{set}"
    );
    // Browsers that saw HTTPS once stay on it.
    assert_eq!(
        r.headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    // Not on plain HTTP (a browser ignores it there, and it would say something untrue).
    let plain = router(AppState::new(h.service.clone()));
    let r = Browser::default().get(&plain, "/").await;
    assert!(!r.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
}

#[tokio::test]
async fn csrf_missing_or_wrong_changes_nothing() {
    let h = service().await;
    h.service.register_patient("gus", PASSWORD).await.unwrap();
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();
    let anonymous_token = csrf(&b.get(&app, "/patients").await.text());
    assert_eq!(sign_in(&app, &mut b, "gus", PASSWORD).await, "/patient");
    let page = b.get(&app, "/patient").await;
    let token = csrf(&page.text());
    assert_ne!(token, anonymous_token, "the token is bound to the session");

    let (_, session) = h.service.login("gus", PASSWORD, "test").await.unwrap();
    let session = session.patient().unwrap();
    let count = || async { h.service.my_records(&session).await.unwrap().len() };

    let mut fields: Vec<(&str, &str)> = RECORD.to_vec();
    let r = b.post(&app, "/patient/records", &fields).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "missing");
    fields.push(("csrf", &anonymous_token));
    let r = b.post(&app, "/patient/records", &fields).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "token of another session");
    assert_eq!(count().await, 0, "nothing stored");

    fields.pop();
    fields.push(("csrf", &token));
    let r = b.post(&app, "/patient/records", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(location(&r), "/patient/records/1/stored?version=1");
    assert_eq!(count().await, 1);

    let r = b.get(&app, "/patient/records/1/stored?version=1").await;
    let text = r.text();
    assert!(
        text.contains(
            "Record stored in IPFS and in Blockchain with ID: <strong id=\"record-id\">1</strong>"
        ),
        "{text}"
    );

    // Grants and revocations are guarded the same way.
    let r = b
        .post(
            &app,
            "/patient/grants",
            &[
                ("provider", PROVIDER.0),
                ("record_id", ""),
                ("expires", "2999-01-01"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(h.service.grants(&session).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_is_shown_inline_escaped_and_stores_nothing() {
    let h = service().await;
    h.service.register_patient("hal", PASSWORD).await.unwrap();
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();
    sign_in(&app, &mut b, "hal", PASSWORD).await;
    let token = csrf(&b.get(&app, "/patient").await.text());

    let mut fields: Vec<(&str, &str)> = RECORD.to_vec();
    fields[1].1 = "2999-12-31";
    fields[3].1 = "<b>call me</b>";
    fields.push(("csrf", &token));
    let r = b.post(&app, "/patient/records", &fields).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(text.contains("Birth Date: date is in the future"), "{text}");
    assert!(text.contains("Phone No: bad format"), "{text}");
    assert!(text.contains("aria-invalid=\"true\""));
    assert!(
        text.contains("value=\"&lt;b&gt;call me&lt;/b&gt;\""),
        "value kept, escaped"
    );
    assert!(text.contains("Jane &lt;script&gt;alert(1)&lt;/script&gt; Doe"));
    assert!(!text.contains("<script>"), "never raw");
    let (_, session) = h.service.login("hal", PASSWORD, "test").await.unwrap();
    let session = session.patient().unwrap();
    assert!(h.service.my_records(&session).await.unwrap().is_empty());

    // A valid record shows its payload escaped on every page.
    fields[1].1 = "1984-02-29";
    fields[3].1 = "+1 555 010 0199";
    let r = b.post(&app, "/patient/records", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let text = b.get(&app, "/patient/records/1").await.text();
    assert!(
        text.contains("Jane &lt;script&gt;alert(1)&lt;/script&gt; Doe"),
        "{text}"
    );
    assert!(!text.contains("<script>"));
}

#[tokio::test]
async fn provider_without_grant_sees_access_denied_and_nothing_else() {
    let h = service().await;
    let p = h.service.register_patient("ivy", PASSWORD).await.unwrap();
    let (_, ivy) = h.service.login("ivy", PASSWORD, "test").await.unwrap();
    let ivy = ivy.patient().unwrap();
    let form = ehr_records::fhir::RecordForm {
        patient_name: "Ivy Secret".into(),
        birth_date: "1990-01-01".into(),
        ..Default::default()
    };
    h.service.put_form(&ivy, &form).await.unwrap();
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();
    assert_eq!(
        sign_in(&app, &mut b, PROVIDER.0, PROVIDER.1).await,
        "/provider"
    );
    let page = b.get(&app, "/provider").await.text();
    assert!(page.contains("Access Patient Records") && page.contains("Get patient details"));
    let id = p.patient_id.to_string();
    let r = b
        .post(
            &app,
            "/provider/records",
            &[("csrf", &csrf(&page)), ("patient_id", &id)],
        )
        .await;
    let text = r.text();
    assert!(text.contains("Access denied."), "{text}");
    assert!(!text.contains("Ivy Secret"));
    assert!(!text.contains("<article"), "no record shown");
    assert!(
        page.contains("No patient has shared records with you now."),
        "{page}"
    );

    // Once ivy grants, her ID is under "Shared with me", and its button reads.
    h.service
        .grant(&ivy, PROVIDER.0, None, ehr_primitives::unix_now() + 86_400)
        .await
        .unwrap();
    let page = b.get(&app, "/provider").await.text();
    assert!(page.contains("Shared with me"), "{page}");
    assert!(
        page.contains(&format!("Patient {id}: all records, until ")),
        "{page}"
    );
    let r = b
        .post(
            &app,
            "/provider/records",
            &[("csrf", &csrf(&page)), ("patient_id", &id)],
        )
        .await;
    assert!(r.text().contains("Ivy Secret"), "{}", r.text());

    // A patient page is not for providers.
    let r = b.get(&app, "/patient/records").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn every_page_needs_a_session_of_its_role() {
    let h = service().await;
    h.service.register_patient("hal", PASSWORD).await.unwrap();
    let app = router(AppState::new(h.service.clone()));

    // No session: to the login page of the page's portal.
    let mut anonymous = Browser::default();
    for (uri, login) in [
        ("/patient", "/patients"),
        ("/patient/records", "/patients"),
        ("/patient/records/1", "/patients"),
        ("/patient/sharing", "/patients"),
        ("/patient/access-log", "/patients"),
        ("/patient/share-code", "/patients"),
        ("/provider", "/providers/login"),
        ("/offer", "/providers/login"),
        ("/admin", "/providers/login"),
    ] {
        let r = anonymous.get(&app, uri).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(location(&r), login, "{uri}");
    }

    // Signed in with another role: refused, saying which role the page is for.
    let mut patient = Browser::default();
    assert_eq!(
        sign_in(&app, &mut patient, "hal", PASSWORD).await,
        "/patient"
    );
    let mut provider = Browser::default();
    sign_in(&app, &mut provider, PROVIDER.0, PROVIDER.1).await;
    for (who, uri, wanted) in [
        ("patient", "/provider", "provider"),
        ("patient", "/admin", "admin"),
        ("provider", "/patient/records", "patient"),
        ("provider", "/patient/share-code", "patient"),
        ("patient", "/offer?o=x", "provider"),
        ("provider", "/admin", "admin"),
    ] {
        let b = if who == "patient" {
            &mut patient
        } else {
            &mut provider
        };
        let r = b.get(&app, uri).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(
            r.text().contains(&format!("This page is for a {wanted}")),
            "{uri}: {}",
            r.text()
        );
    }
    // The right role gets the page.
    assert_eq!(
        patient.get(&app, "/patient/records").await.status,
        StatusCode::OK
    );
    assert_eq!(provider.get(&app, "/provider").await.status, StatusCode::OK);
}

/// The patient's sharing page shows an open break-glass window (who, which record, until,
/// why) with a button that ends it; the admin page disables a provider (its web session
/// ends, its login is refused) and enables it again.
#[tokio::test]
async fn break_glass_on_the_sharing_page_and_provider_disable_on_the_admin_page() {
    let h = service().await;
    let p = h.service.register_patient("ivy", PASSWORD).await.unwrap();
    let (_, ivy) = h.service.login("ivy", PASSWORD, "test").await.unwrap();
    let ivy = ivy.patient().unwrap();
    let form = ehr_records::fhir::RecordForm {
        patient_name: "Ivy Doe".into(),
        birth_date: "1990-01-01".into(),
        ..Default::default()
    };
    h.service.put_form(&ivy, &form).await.unwrap();
    let (_, doc) = h
        .service
        .login(PROVIDER.0, PROVIDER.1, "test")
        .await
        .unwrap();
    let doc = doc.provider().unwrap();
    h.service
        .emergency_access(&doc, p.patient_id, "fell <b>down</b> the stairs")
        .await
        .unwrap();
    let app = router(AppState::new(h.service.clone()));

    let mut patient = Browser::default();
    sign_in(&app, &mut patient, "ivy", PASSWORD).await;
    let page = patient.get(&app, "/patient/sharing").await.text();
    assert!(page.contains("Emergency access open now"), "{page}");
    assert!(
        page.contains("fell &lt;b&gt;down&lt;/b&gt; the stairs"),
        "escaped reason"
    );
    assert!(page.contains("End emergency access of dr-grey to record 1"));
    assert!(
        page.contains("opened without your grant"),
        "not \"no one has access\""
    );
    let r = patient
        .post(
            &app,
            "/patient/grants/revoke",
            &[
                ("csrf", &csrf(&page)),
                ("provider", PROVIDER.0),
                ("record_id", "1"),
                ("emergency", "1"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/patient/sharing?done=ended");
    let page = patient.get(&app, location(&r)).await.text();
    assert!(page.contains("Emergency access ended."));
    assert!(!page.contains("Emergency access open now"));
    assert!(
        h.service.read_record(&doc, 1, None).await.is_err(),
        "it holds"
    );

    // The admin disables the provider: its web session ends, its login is refused.
    let mut provider = Browser::default();
    sign_in(&app, &mut provider, PROVIDER.0, PROVIDER.1).await;
    assert_eq!(provider.get(&app, "/provider").await.status, StatusCode::OK);
    let mut admin = Browser::default();
    let page = admin.get(&app, "/providers/login").await.text();
    let r = admin
        .post(
            &app,
            "/login",
            &[
                ("csrf", &csrf(&page)),
                ("portal", "providers"),
                ("username", ADMIN.0),
                ("password", ADMIN.1),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin");
    let page = admin.get(&app, "/admin").await.text();
    assert!(page.contains("Disable dr-grey"), "{page}");
    let r = admin
        .post(
            &app,
            "/admin/providers/disable",
            &[("csrf", &csrf(&page)), ("username", PROVIDER.0)],
        )
        .await;
    assert_eq!(location(&r), "/admin?done=disabled");
    let page = admin.get(&app, location(&r)).await.text();
    assert!(page.contains("Enable dr-grey") && page.contains("disabled"));
    let r = provider.get(&app, "/provider").await;
    assert_eq!(location(&r), "/providers/login", "its session ended");
    let page = provider.get(&app, "/providers/login").await.text();
    let r = provider
        .post(
            &app,
            "/login",
            &[
                ("csrf", &csrf(&page)),
                ("portal", "providers"),
                ("username", PROVIDER.0),
                ("password", PROVIDER.1),
            ],
        )
        .await;
    assert!(
        r.text().contains("this account is disabled"),
        "{}",
        r.text()
    );

    let page = admin.get(&app, "/admin").await.text();
    let r = admin
        .post(
            &app,
            "/admin/providers/enable",
            &[("csrf", &csrf(&page)), ("username", PROVIDER.0)],
        )
        .await;
    assert_eq!(location(&r), "/admin?done=enabled");
    assert!(
        admin
            .get(&app, "/admin")
            .await
            .text()
            .contains("Disable dr-grey")
    );
    assert_eq!(
        sign_in(&app, &mut provider, PROVIDER.0, PROVIDER.1).await,
        "/provider"
    );
}

#[tokio::test]
async fn a_rich_record_is_kept_whole_and_its_narrative_never_rendered() {
    let h = service().await;
    h.service.register_patient("nia", PASSWORD).await.unwrap();
    let (_, session) = h.service.login("nia", PASSWORD, "test").await.unwrap();
    let session = session.patient().unwrap();
    // A bundle with every resource type a record holds; its Patient's narrative carries a
    // script.
    let rich = include_bytes!("../../fhir/testdata/rich-bundle.json");
    let stored = h.service.put_record(&session, rich).await.unwrap();
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();
    sign_in(&app, &mut b, "nia", PASSWORD).await;
    let text = b
        .get(&app, &format!("/patient/records/{}", stored.record_id))
        .await
        .text();
    assert!(text.contains("Hypertension"), "{text}");
    assert!(!text.contains("<script>"), "never raw");
    // And it is kept: the narrative and the other resources come back as stored.
    let read = h
        .service
        .read_record(&session, stored.record_id, None)
        .await
        .unwrap();
    let want: serde_json::Value = serde_json::from_slice(rich).unwrap();
    assert_eq!(read.bundle, want);
}
