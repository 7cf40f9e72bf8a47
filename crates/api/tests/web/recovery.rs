//! Issue 17 item 4 on the pages: the recovery code shown once at sign-up sets a new password
//! on the forgotten-password page (the key stays, the code is replaced); the account page
//! makes a new one; the admin resets a provider's password on the admin page.

use super::*;

const NEW: &str = "a brand new passphrase";

/// The code on a "Your recovery code" page.
pub(crate) fn recovery_code(page: &str) -> Option<String> {
    let at = page.find("id=\"recovery-code\">")? + "id=\"recovery-code\">".len();
    let code = page.get(at..at + 29)?;
    let ok = code.split('-').count() == 5
        && code
            .split('-')
            .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_alphanumeric()));
    ok.then(|| code.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_up_code_resets_a_forgotten_password_and_the_key_stays() {
    let h = service().await;
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();
    let page = b.get(&app, "/patients").await.text();
    assert!(page.contains("href=\"/recover\""), "{page}");
    let token = csrf(&page);
    let r = b
        .post(
            &app,
            "/patients/signup",
            &[
                ("csrf", &token),
                ("username", "rae"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let code = recovery_code(&r.text()).expect("the code is shown");
    assert!(r.text().contains("href=\"/patient\""));
    // The page signed the patient in.
    assert_eq!(b.get(&app, "/patient").await.status, StatusCode::OK);
    let address = h.service.accounts().get("rae").unwrap().address;

    let mut lost = Browser::default();
    let page = lost.get(&app, "/recover").await.text();
    let token = csrf(&page);
    let recover = |code: &str, new: &str, confirm: &str| {
        [
            ("csrf", token.clone()),
            ("username", "rae".to_owned()),
            ("recovery_code", code.to_owned()),
            ("new_password", new.to_owned()),
            ("confirm", confirm.to_owned()),
        ]
    };
    let wrong = "00000-00000-00000-00000-00000";
    for (fields, says) in [
        (recover(wrong, NEW, NEW), "Recovery code:"),
        (recover("not a code", NEW, NEW), "Recovery code:"),
        (
            recover(&code, NEW, "something else entirely"),
            "New password again:",
        ),
        (recover(&code, "short", "short"), "New password:"),
    ] {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = lost.post(&app, "/recover", &f).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains(says), "{says}: {}", r.text());
        assert!(recovery_code(&r.text()).is_none());
    }
    // Nothing changed: the old password still signs in.
    sign_in(&app, &mut Browser::default(), "rae", PASSWORD).await;

    // Typed in lowercase, as a person might.
    let typed = code.to_ascii_lowercase();
    let f = recover(&typed, NEW, NEW);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = lost.post(&app, "/recover", &f).await;
    let next = recovery_code(&r.text()).expect("the next code is shown");
    assert_ne!(next, code);
    assert_ne!(
        b.get(&app, "/patient").await.status,
        StatusCode::OK,
        "signed out everywhere"
    );
    assert!(
        h.service.login("rae", PASSWORD, "t").await.is_err(),
        "the old password is gone"
    );
    let (_, s) = h.service.login("rae", NEW, "t").await.unwrap();
    assert_eq!(s.session().address, address, "the same key");
    let r = lost.post(&app, "/recover", &f).await;
    assert!(
        r.text().contains("Recovery code:"),
        "the used code is used up"
    );

    // The account page: a code exists; a new one needs the password and replaces it.
    let mut here = Browser::default();
    sign_in(&app, &mut here, "rae", NEW).await;
    let page = here.get(&app, "/account").await.text();
    assert!(page.contains("You have a recovery code, made"), "{page}");
    let token = csrf(&page);
    let r = here
        .post(
            &app,
            "/account/recovery",
            &[("csrf", &token), ("recovery_password", "not my password")],
        )
        .await;
    assert!(r.text().contains("is not your password"), "{}", r.text());
    let r = here
        .post(
            &app,
            "/account/recovery",
            &[("csrf", &token), ("recovery_password", NEW)],
        )
        .await;
    let fresh = recovery_code(&r.text()).expect("a new code is shown");
    assert!(
        h.service
            .recover("rae", &next, PASSWORD, "t")
            .await
            .is_err(),
        "the replaced code no longer works"
    );
    h.service
        .recover("rae", &fresh, PASSWORD, "t")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_resets_a_providers_password_on_the_admin_page() {
    let h = service().await;
    let app = router(AppState::new(h.service.clone()));
    let address = h.service.accounts().get(PROVIDER.0).unwrap().address;
    let mut doc = Browser::default();
    sign_in(&app, &mut doc, PROVIDER.0, PROVIDER.1).await;
    let mut admin = Browser::default();
    sign_in(&app, &mut admin, ADMIN.0, ADMIN.1).await;
    let page = admin.get(&app, "/admin").await.text();
    let label = format!("Reset {}'s password", PROVIDER.0);
    assert!(page.contains(&label), "{page}");
    let token = csrf(&page);
    let r = admin
        .post(
            &app,
            "/admin/providers/password",
            &[
                ("csrf", &token),
                ("username", PROVIDER.0),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("New password: "), "{}", r.text());
    assert_eq!(
        doc.get(&app, "/provider").await.status,
        StatusCode::OK,
        "unchanged"
    );

    let r = admin
        .post(
            &app,
            "/admin/providers/password",
            &[
                ("csrf", &token),
                ("username", PROVIDER.0),
                ("password", NEW),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(location(&r), "/admin?done=reset");
    assert!(
        admin
            .get(&app, "/admin?done=reset")
            .await
            .text()
            .contains("Password reset")
    );
    assert_ne!(
        doc.get(&app, "/provider").await.status,
        StatusCode::OK,
        "signed out"
    );
    assert!(h.service.login(PROVIDER.0, PROVIDER.1, "t").await.is_err());
    let (_, s) = h.service.login(PROVIDER.0, NEW, "t").await.unwrap();
    assert_eq!(
        s.session().address,
        address,
        "the same key and so its grants"
    );
}
