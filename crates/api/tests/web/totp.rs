//! Issue 18 item 1 on the pages: two-factor set up on the account page (the QR code drawn
//! as SVG, confirmed with a code), then needed at sign-in; backup codes work once; turning
//! it off needs the password and a code; providers are asked to turn it on.

use std::time::{SystemTime, UNIX_EPOCH};

use ehr_records::accounts::totp;

use super::*;

fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let at = page.find(start).expect(start) + start.len();
    &page[at..at + page[at..].find(end).expect(end)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_on_the_account_page_then_at_sign_in() {
    let h = service().await;
    let app = router(AppState::new(h.service.clone()));
    h.service.register_patient("tess", PASSWORD).await.unwrap();
    let mut b = Browser::default();
    sign_in(&app, &mut b, "tess", PASSWORD).await;
    let page = b.get(&app, "/account").await.text();
    assert!(page.contains("Set up two-factor sign-in"), "{page}");
    let token = csrf(&page);
    let r = b.post(&app, "/account/totp", &[("csrf", &token)]).await;
    let page = r.text();
    assert!(
        page.contains("<svg") && page.contains("id=\"totp-secret\""),
        "{page}"
    );
    let secret = between(&page, "id=\"totp-secret\">", "<").replace(' ', "");
    let key = totp::unbase32(&secret).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = format!("{:06}", totp::totp(&key, now, 6));
    let wrong = format!("{:06}", (totp::totp(&key, now, 6) + 500_000) % 1_000_000);

    let r = b
        .post(
            &app,
            "/account/totp/confirm",
            &[("csrf", &token), ("code", &wrong)],
        )
        .await;
    assert!(
        r.text().contains("Code from your app: does not match"),
        "{}",
        r.text()
    );
    assert!(
        r.text()
            .contains(&between(&page, "id=\"totp-secret\">", "<").to_owned()),
        "the same secret again"
    );
    let r = b
        .post(
            &app,
            "/account/totp/confirm",
            &[("csrf", &token), ("code", &code)],
        )
        .await;
    let page = r.text();
    assert!(page.contains("Two-factor sign-in is on"), "{page}");
    let backups: Vec<String> = page
        .match_indices("<li><code>")
        .map(|(at, _)| page[at + 10..at + 21].to_owned())
        .collect();
    assert_eq!(backups.len(), 10, "{page}");

    // Signing in now needs the code: none, or a wrong one, is shown on the form.
    let mut other = Browser::default();
    let login = other.get(&app, "/patients").await.text();
    let t = csrf(&login);
    let attempt = |code: &'static str| {
        [
            ("csrf", t.clone()),
            ("portal", "patients".to_owned()),
            ("username", "tess".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("code", code.to_owned()),
        ]
    };
    for (fields, says) in [
        (attempt(""), "signs in with two-factor"),
        (attempt("000000"), "is wrong"),
    ] {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = other.post(&app, "/login", &f).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains(says), "{says}: {}", r.text());
    }
    let mut f = attempt("");
    f[4].1 = backups[0].clone();
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = other.post(&app, "/login", &f).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let page = other.get(&app, "/account").await.text();
    assert!(page.contains("one of your 9 unused backup codes"), "{page}");

    // Off: the password and a code.
    let t = csrf(&page);
    let r = other
        .post(
            &app,
            "/account/totp/disable",
            &[
                ("csrf", &t),
                ("totp_password", PASSWORD),
                ("totp_code", "000000"),
            ],
        )
        .await;
    assert!(
        r.text().contains("is wrong, or was used already"),
        "{}",
        r.text()
    );
    let r = other
        .post(
            &app,
            "/account/totp/disable",
            &[
                ("csrf", &t),
                ("totp_password", PASSWORD),
                ("totp_code", &backups[1]),
            ],
        )
        .await;
    assert_eq!(location(&r), "/account?done=totp-off");
    sign_in(&app, &mut Browser::default(), "tess", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_and_admins_are_asked_to_turn_it_on_and_patients_are_not() {
    let h = service().await;
    let app = router(AppState::new(h.service.clone()));
    h.service.register_patient("pat", PASSWORD).await.unwrap();
    for (user, pw, home, asked) in [
        (PROVIDER.0, PROVIDER.1, "/provider", true),
        (ADMIN.0, ADMIN.1, "/admin", true),
        ("pat", PASSWORD, "/patient", false),
    ] {
        let mut b = Browser::default();
        sign_in(&app, &mut b, user, pw).await;
        let page = b.get(&app, home).await.text();
        assert_eq!(
            page.contains("Protect this account"),
            asked,
            "{user}: {page}"
        );
    }
}
