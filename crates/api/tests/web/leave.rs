//! Issue 18 item 3 on the pages: a patient deletes their account from the account page —
//! a confirmation that lists what will be erased, needing the box ticked and the password
//! (either missing changes nothing) — and gets the receipt, signed out; the provider they
//! shared with then reads "erased".

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_deletes_their_account_and_the_provider_sees_it_erased() {
    let h = service().await;
    h.service.register_patient("lea", PASSWORD).await.unwrap();
    let (_, lea) = h.service.login("lea", PASSWORD, "test").await.unwrap();
    let lea = lea.patient().unwrap();
    let stored = h
        .service
        .put_record(
            &lea,
            include_bytes!("../../../fhir/testdata/rich-bundle.json"),
        )
        .await
        .unwrap();
    h.service
        .grant(&lea, PROVIDER.0, None, ehr_primitives::unix_now() + 86_400)
        .await
        .unwrap();
    let pid = h
        .service
        .patient_id(lea.address())
        .await
        .unwrap()
        .unwrap()
        .to_string();
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();
    sign_in(&app, &mut b, "lea", PASSWORD).await;

    let page = b.get(&app, "/account").await.text();
    assert!(
        page.contains("Delete your account") && page.contains("href=\"/account/delete\""),
        "{page}"
    );
    let page = b.get(&app, "/account/delete").await.text();
    assert!(
        page.contains(&format!("record {}", stored.record_id))
            && page.contains("1 record</strong> (1 version in all)")
            && page.contains("href=\"/patient/export\""),
        "{page}"
    );
    let token = csrf(&page);

    // Without the box ticked, or with a wrong password: the form again, nothing erased.
    let r = b
        .post(
            &app,
            "/account/delete",
            &[("csrf", &token), ("password", PASSWORD)],
        )
        .await;
    assert!(r.text().contains("tick the box to confirm"), "{}", r.text());
    let r = b
        .post(
            &app,
            "/account/delete",
            &[
                ("csrf", &token),
                ("password", "wrong password!!"),
                ("understood", "yes"),
            ],
        )
        .await;
    assert!(
        r.text().contains("Your password: is not your password"),
        "{}",
        r.text()
    );
    let page = b.get(&app, "/patient/records").await;
    assert_eq!(page.status, StatusCode::OK, "still signed in");
    assert!(
        h.service
            .read_record(&lea, stored.record_id, None)
            .await
            .is_ok()
    );

    // The CSRF guard holds here too.
    let r = b
        .post(
            &app,
            "/account/delete",
            &[("password", PASSWORD), ("understood", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = b
        .post(
            &app,
            "/account/delete",
            &[
                ("csrf", &token),
                ("password", PASSWORD),
                ("understood", "yes"),
            ],
        )
        .await;
    let receipt = r.text();
    assert_eq!(r.status, StatusCode::OK, "{receipt}");
    assert!(
        receipt.contains("Your account is deleted")
            && receipt.contains(&format!(
                "<td class=\"num\">{}</td><td>1</td>",
                stored.record_id
            ))
            && receipt.matches("Confirmed").count() == 5
            && !receipt.contains("Signed in as"),
        "{receipt}"
    );
    // Signed out: the account pages send to the sign-in page; the login fails.
    let r = b.get(&app, "/patient/records").await;
    assert_ne!(r.status, StatusCode::OK);
    assert!(h.service.login("lea", PASSWORD, "test").await.is_err());

    // The provider reads "erased", not "access denied".
    let mut doc = Browser::default();
    sign_in(&app, &mut doc, PROVIDER.0, PROVIDER.1).await;
    let page = doc.get(&app, "/provider").await.text();
    let r = doc
        .post(
            &app,
            "/provider/records",
            &[("csrf", &csrf(&page)), ("patient_id", &pid)],
        )
        .await;
    assert!(
        r.text()
            .contains(&format!("Patient {pid}'s records were erased")),
        "{}",
        r.text()
    );
}
