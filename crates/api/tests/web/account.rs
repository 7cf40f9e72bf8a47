//! Issue 17 item 3 on the pages: every role changes its password on the account page; a
//! wrong current password or a mismatch changes nothing; the other sessions end, this one
//! stays, and the same key keeps the patient's records.

use super::*;

const NEW: &str = "a brand new passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_changes_its_password_and_other_sessions_end() {
    let h = service().await;
    h.service.register_patient("wes", PASSWORD).await.unwrap();
    let (_, wes) = h.service.login("wes", PASSWORD, "test").await.unwrap();
    let stored = h
        .service
        .put_record(
            &wes.clone().patient().unwrap(),
            include_bytes!("../../../fhir/testdata/rich-bundle.json"),
        )
        .await
        .unwrap();
    let app = router(AppState::new(h.service.clone()));
    let mut here = Browser::default();
    let mut there = Browser::default();
    sign_in(&app, &mut here, "wes", PASSWORD).await;
    sign_in(&app, &mut there, "wes", PASSWORD).await;
    let page = here.get(&app, "/account").await.text();
    assert!(
        page.contains("Change your password") && page.contains("href=\"/account\""),
        "{page}"
    );
    let token = csrf(&page);
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        [
            ("csrf", token.clone()),
            ("current_password", current.to_owned()),
            ("new_password", new.to_owned()),
            ("confirm", confirm.to_owned()),
        ]
    };
    let post = |b: &mut Browser, f: [(&'static str, String); 4]| {
        let app = app.clone();
        let mut b2 = b.clone();
        async move {
            let fields: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = b2.post(&app, "/account/password", &fields).await;
            (r, b2)
        }
    };
    // Refusals name their field and change nothing.
    for (f, field) in [
        (change("not my password!", NEW, NEW), "Current password:"),
        (
            change(PASSWORD, NEW, "something else entirely"),
            "New password again:",
        ),
        (change(PASSWORD, "short", "short"), "New password:"),
    ] {
        let (r, _) = post(&mut here, f).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains(field), "{field}: {}", r.text());
    }
    assert_eq!(
        there.get(&app, "/patient/records").await.status,
        StatusCode::OK
    );

    let (r, b) = post(&mut here, change(PASSWORD, NEW, NEW)).await;
    here = b;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(location(&r), "/account?done=password");
    assert!(
        here.get(&app, "/account?done=password")
            .await
            .text()
            .contains("Password changed.")
    );
    // This browser stays signed in, the other is signed out.
    assert_eq!(
        here.get(&app, "/patient/records").await.status,
        StatusCode::OK
    );
    let r = there.get(&app, "/patient/records").await;
    assert!(
        r.status != StatusCode::OK || r.text().contains("Sign in"),
        "the other session ended: {}",
        r.text()
    );
    // The new password signs in, the old does not; the record is still Wes's.
    assert!(h.service.login("wes", PASSWORD, "test").await.is_err());
    let (_, again) = h.service.login("wes", NEW, "test").await.unwrap();
    let again = again.patient().unwrap();
    assert!(
        h.service
            .read_record(&again, stored.record_id, None)
            .await
            .is_ok()
    );

    // A provider has the page too.
    let mut doc = Browser::default();
    sign_in(&app, &mut doc, PROVIDER.0, PROVIDER.1).await;
    let page = doc.get(&app, "/account").await.text();
    assert!(page.contains("Change your password"), "{page}");
}

/// Issue 17 item 1: on a first start the set-up link's page creates the admin; a wrong
/// token is refused (403), a used one is gone (404), and neither changes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_link_creates_the_admin_once() {
    let h = service_without_admin().await;
    let state = AppState::new(h.service.clone());
    let token = state.setup_token().expect("no admin: a set-up token");
    assert!(
        token.len() >= 32
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {token}"
    );
    let app = router(state.clone());
    let mut b = Browser::default();
    let r = b.get(&app, "/setup?token=wrong").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get(&app, "/setup").await.status, StatusCode::FORBIDDEN);
    let page = b.get(&app, &format!("/setup?token={token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let page = page.text();
    assert!(page.contains("Create the admin"), "{page}");
    let csrf = csrf(&page);
    // A wrong token in the form: refused, no admin.
    let r = b
        .post(
            &app,
            "/setup",
            &[
                ("csrf", &csrf),
                ("token", "wrong"),
                ("username", "root"),
                ("password", ADMIN.1),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A weak password: the form again, naming the field; no admin.
    let r = b
        .post(
            &app,
            "/setup",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("username", "root"),
                ("password", "short"),
            ],
        )
        .await;
    assert!(r.text().contains("Password:"), "{}", r.text());
    assert!(!h.service.accounts().has_admin());

    let r = b
        .post(
            &app,
            "/setup",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("username", "root"),
                ("password", ADMIN.1),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text().contains("The admin root is created"),
        "{}",
        r.text()
    );
    assert!(h.service.accounts().has_admin());
    h.service.login("root", ADMIN.1, "test").await.unwrap();
    // Used: gone, for the page and the form.
    assert_eq!(state.setup_token(), None);
    let r = b.get(&app, &format!("/setup?token={token}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = b
        .post(
            &app,
            "/setup",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("username", "root2"),
                ("password", ADMIN.1),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(h.service.accounts().get("root2").is_none());
    // A deployment with an admin has no link at all.
    let h2 = service().await;
    let s2 = AppState::new(h2.service.clone());
    assert_eq!(s2.setup_token(), None);
    let r = Browser::default().get(&router(s2), "/setup?token=x").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Issue 17 item 5 on the pages: sign up with a wallet's keystore file (the account has
/// its key), download the keystore from the account page; a file the password does not
/// open is refused, naming the field, and creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_with_your_own_key_and_download_it() {
    use ehr_records::accounts::keystore;
    let h = service().await;
    let app = router(AppState::new(h.service.clone()));
    let (signer, file) = keystore::generate(
        PASSWORD.as_bytes(),
        ehr_records::accounts::AccountParams::INSECURE_FAST.scrypt,
        &mut ehr_crypto::rng(),
    )
    .unwrap();
    let json = file.to_json();
    let mut b = Browser::default();
    let page = b.get(&app, "/patients").await.text();
    assert!(page.contains("Bring your own key"), "{page}");
    let token = csrf(&page);
    let r = b
        .multipart(
            &app,
            "/patients/signup",
            &[
                ("csrf", &token),
                ("username", "kim"),
                ("password", "not the file's password"),
            ],
            ("keystore", json.as_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("Keystore file: "), "{}", r.text());
    assert!(h.service.accounts().get("kim").is_none(), "nothing created");
    let r = b
        .multipart(
            &app,
            "/patients/signup",
            &[
                ("csrf", &token),
                ("username", "kim"),
                ("password", PASSWORD),
            ],
            ("keystore", json.as_bytes()),
        )
        .await;
    // Signed in, and shown the recovery code once.
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(recovery_code(&r.text()).is_some(), "{}", r.text());
    assert_eq!(
        h.service.accounts().get("kim").unwrap().address,
        signer.address()
    );

    let page = b.get(&app, "/account").await.text();
    assert!(page.contains("href=\"/account/keystore\""), "{page}");
    let r = b.get(&app, "/account/keystore").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"UTC--")
    );
    let kept = keystore::KeystoreFile::from_json(&r.text()).unwrap();
    assert_eq!(
        keystore::decrypt(&kept, PASSWORD.as_bytes())
            .unwrap()
            .address(),
        signer.address()
    );
    // Not a provider's to download here.
    let mut doc = Browser::default();
    sign_in(&app, &mut doc, PROVIDER.0, PROVIDER.1).await;
    assert_ne!(
        doc.get(&app, "/account/keystore").await.status,
        StatusCode::OK
    );
}

/// Issue 17 item 2: the grant form finds providers by name, organisation or specialty
/// (every word must match), instead of a drop-down of usernames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_finds_providers_by_name_organisation_or_specialty() {
    let h = service().await;
    let (_, admin) = h.service.login(ADMIN.0, ADMIN.1, "test").await.unwrap();
    let admin = admin.admin().unwrap();
    for (user, name, specialty) in [
        ("dr-heart", "Dr Ada Heart", "Cardiology"),
        ("dr-skin", "Dr Ben Skin", "Dermatology"),
    ] {
        h.service
            .add_provider(
                &admin,
                user,
                PASSWORD,
                &ehr_records::ProfileInput {
                    display_name: name.into(),
                    specialty: specialty.into(),
                },
            )
            .await
            .unwrap();
    }
    h.service.register_patient("lou", PASSWORD).await.unwrap();
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();
    sign_in(&app, &mut b, "lou", PASSWORD).await;
    let all = b.get(&app, "/patient/sharing").await.text();
    assert!(
        all.contains("Dr Ada Heart") && all.contains("Dr Ben Skin"),
        "{all}"
    );
    assert!(
        !all.contains("<select id=\"grant-provider\""),
        "no drop-down"
    );
    let cardio = b.get(&app, "/patient/sharing?q=cardio").await.text();
    assert!(cardio.contains("Dr Ada Heart — Cardiology"), "{cardio}");
    assert!(!cardio.contains("Dr Ben Skin"), "{cardio}");
    let by_name = b.get(&app, "/patient/sharing?q=ben+skin").await.text();
    assert!(by_name.contains("Dr Ben Skin") && !by_name.contains("Dr Ada Heart"));
    let org = b.get(&app, "/patient/sharing?q=consortium").await.text();
    assert!(org.contains("Dr Ada Heart") && org.contains("Dr Ben Skin"));
    let none = b.get(&app, "/patient/sharing?q=neurology").await.text();
    assert!(none.contains("No provider matches"), "{none}");
    // The one match is chosen already; granting it works as before.
    assert!(cardio.contains("value=\"dr-heart\" checked"), "{cardio}");
}

/// Issue 17 item 2: a provider edits its own display fields on the account page; a field
/// too long is shown back with its error and changes nothing; patients then find it by the
/// new name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_edits_its_directory_entry() {
    let h = service().await;
    let app = router(AppState::new(h.service.clone()));
    let mut doc = Browser::default();
    sign_in(&app, &mut doc, PROVIDER.0, PROVIDER.1).await;
    let page = doc.get(&app, "/account").await.text();
    assert!(page.contains("Your directory entry"), "{page}");
    let token = csrf(&page);
    let long = "x".repeat(101);
    let r = doc
        .post(
            &app,
            "/account/profile",
            &[
                ("csrf", &token),
                ("display_name", &long),
                ("specialty", "Nephrology"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("Display name: "), "{}", r.text());
    assert!(
        r.text().contains("value=\"Nephrology\""),
        "kept: {}",
        r.text()
    );
    let r = doc
        .post(
            &app,
            "/account/profile",
            &[
                ("csrf", &token),
                ("display_name", "Dr Nora Kidney"),
                ("specialty", "Nephrology"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(location(&r), "/account?done=profile");
    let page = doc.get(&app, "/account?done=profile").await.text();
    assert!(
        page.contains("Directory entry changed") && page.contains("value=\"Dr Nora Kidney\""),
        "{page}"
    );

    h.service.register_patient("pia", PASSWORD).await.unwrap();
    let mut pia = Browser::default();
    sign_in(&app, &mut pia, "pia", PASSWORD).await;
    let found = pia.get(&app, "/patient/sharing?q=nephrology").await.text();
    assert!(found.contains("Dr Nora Kidney"), "{found}");
    // Patients have no directory entry to edit.
    assert!(
        !pia.get(&app, "/account")
            .await
            .text()
            .contains("Your directory entry")
    );
}
