//! Issue 16 items 6 and 7 on the pages: a rich record reads as a chart (lab results with
//! units, ranges and flags, medications, allergies with criticality) and its narrative is
//! never rendered; a patient uploads a FHIR file (CSRF checked in the multipart body);
//! a patient lets a provider write, the provider adds a result from its page, and the
//! patient sees who wrote it; without write access the provider stores nothing.

use super::*;

const RICH: &[u8] = include_bytes!("../../../fhir/testdata/rich-bundle.json");
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_fhir_file_reads_as_a_chart_and_its_narrative_is_never_rendered() {
    let h = service().await;
    h.service.register_patient("uma", PASSWORD).await.unwrap();
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();
    sign_in(&app, &mut b, "uma", PASSWORD).await;
    let page = b.get(&app, "/patient").await.text();
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    let token = csrf(&page);

    // Without the CSRF token in the body: refused, nothing stored.
    let r = b
        .multipart(
            &app,
            "/patient/records/upload",
            &[("csrf", "wrong")],
            ("file", RICH),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Not FHIR: the errors, nothing stored.
    let r = b
        .multipart(
            &app,
            "/patient/records/upload",
            &[("csrf", &token)],
            ("file", b"{\"resourceType\":\"Bundle\"}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("role=\"alert\""), "{}", r.text());
    let mine = b.get(&app, "/patient/records").await.text();
    assert!(mine.contains("No records yet"), "{mine}");

    let r = b
        .multipart(
            &app,
            "/patient/records/upload",
            &[("csrf", &token)],
            ("file", RICH),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(location(&r).starts_with("/patient/records/1/stored"));
    let text = b.get(&app, "/patient/records/1").await.text();
    // Lab results as a table: value, unit, range, flag.
    assert!(text.contains("<table class=\"results\">"), "{text}");
    let labs = &text[text.find("aria-label=\"Lab results\"").unwrap()..];
    let row = &labs[labs.find("Hemoglobin A1c").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(">6.9<") && row.contains(">%<"), "{row}");
    assert!(row.contains("class=\"flag abnormal\""), "flagged: {row}");
    // Vital signs: the blood pressure's two components.
    assert!(text.contains("aria-label=\"Vital signs\""));
    // Medications with their dosage; allergies with criticality.
    assert!(
        text.contains("lisinopril 10 MG Oral Tablet") && text.contains("Dosage: 10 mg once a day")
    );
    assert!(
        text.contains("Penicillin G")
            && text.contains("criticality: <span class=\"criticality\">High")
    );
    // The narrative never renders; the JSON is there, escaped.
    assert!(!text.contains("<script>"), "never raw");
    assert!(text.contains("FHIR JSON"));
}

async fn grant(app: &Router, b: &mut Browser, token: &str, expires: &str, write: bool) -> Reply {
    let mut fields = vec![
        ("csrf", token),
        ("provider", PROVIDER.0),
        ("record_id", "1"),
        ("expires", expires),
    ];
    if write {
        fields.push(("write", "on"));
    }
    b.post(app, "/patient/grants", &fields).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_adds_a_result_from_its_page_and_the_patient_sees_who_wrote_it() {
    let h = service().await;
    let p = h.service.register_patient("vic", PASSWORD).await.unwrap();
    let (_, vic) = h.service.login("vic", PASSWORD, "test").await.unwrap();
    let vic = vic.patient().unwrap();
    h.service.put_record(&vic, RICH).await.unwrap();
    let app = router(AppState::new(h.service.clone()));
    let pid = p.patient_id.to_string();

    // Vic grants reading and writing from the sharing page.
    let mut patient = Browser::default();
    sign_in(&app, &mut patient, "vic", PASSWORD).await;
    let page = patient.get(&app, "/patient/sharing").await.text();
    assert!(page.contains("name=\"write\" type=\"checkbox\""), "{page}");
    let expires = {
        let d = ehr_records::fhir::Date::from_unix_days(
            (ehr_primitives::unix_now() / 86_400) as i64 + 30,
        );
        d.to_string()
    };
    let ptoken = csrf(&page);
    // Reading only first.
    let r = grant(&app, &mut patient, &ptoken, &expires, false).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());

    // The provider reads: a timeline, and no add form without write access.
    let mut doc = Browser::default();
    sign_in(&app, &mut doc, PROVIDER.0, PROVIDER.1).await;
    let page = doc.get(&app, "/provider").await.text();
    let token = csrf(&page);
    let read = doc
        .post(
            &app,
            "/provider/records",
            &[("csrf", &token), ("patient_id", &pid)],
        )
        .await
        .text();
    assert!(read.contains("Timeline"), "{read}");
    let tl = &read[read.find("ol class=\"timeline\"").unwrap()..];
    assert!(
        tl.find("Check-up").unwrap() < tl.find("Colonoscopy").unwrap(),
        "newest first"
    );
    assert!(
        !read.contains("action=\"/provider/add\""),
        "no write access, no form"
    );
    // Posting anyway: refused, nothing stored.
    let add = [
        ("csrf", token.as_str()),
        ("patient_id", pid.as_str()),
        ("record_id", "1"),
        ("kind", "result"),
        ("name", "Glucose"),
        ("value", "5.4"),
        ("unit", "mmol/L"),
        ("low", "3.9"),
        ("high", "5.6"),
    ];
    let r = doc.post(&app, "/provider/add", &add).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("write denied"), "{}", r.text());
    assert_eq!(h.service.my_records(&vic).await.unwrap()[0].version, 1);

    // With writing: the form is there, and adding makes version 2, by the provider.
    let r = grant(&app, &mut patient, &ptoken, &expires, true).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let read = doc
        .post(
            &app,
            "/provider/records",
            &[("csrf", &token), ("patient_id", &pid)],
        )
        .await
        .text();
    assert!(read.contains("action=\"/provider/add\""), "{read}");
    let mut bad = add;
    bad[7] = ("low", "three");
    let r = doc.post(&app, "/provider/add", &bad).await;
    assert!(
        r.text().contains("Reference range low"),
        "the field named: {}",
        r.text()
    );
    assert_eq!(
        h.service.my_records(&vic).await.unwrap()[0].version,
        1,
        "nothing stored"
    );
    let r = doc.post(&app, "/provider/add", &add).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(location(&r), "/provider?added=1&version=2");
    let notice = doc.get(&app, location(&r)).await.text();
    assert!(notice.contains("Added: record 1, version 2"), "{notice}");

    // Vic sees who wrote version 2, and the result in her chart.
    let mine = patient.get(&app, "/patient/records").await.text();
    assert!(
        mine.contains(&format!("written by {}", PROVIDER.0)),
        "{mine}"
    );
    let text = patient.get(&app, "/patient/records/1").await.text();
    let labs = &text[text.find("aria-label=\"Lab results\"").unwrap()..];
    assert!(
        labs.contains("Glucose") && labs.contains("3.9–5.6 mmol/L"),
        "{labs}"
    );
    let added = &text[text
        .find("aria-label=\"Added by providers\"")
        .expect("who added what")..];
    assert!(
        added.contains(PROVIDER.0) && added.contains("1 resource"),
        "{added}"
    );
    let sharing = patient.get(&app, "/patient/sharing").await.text();
    assert!(sharing.contains("may add to it until"), "{sharing}");
    // She stops the writing; reading stays.
    let r = patient
        .post(
            &app,
            "/patient/grants/revoke",
            &[
                ("csrf", &csrf(&sharing)),
                ("provider", PROVIDER.0),
                ("record_id", "1"),
                ("write", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let sharing = patient.get(&app, "/patient/sharing").await.text();
    assert!(sharing.contains("adding revoked"), "{sharing}");
    let r = doc.post(&app, "/provider/add", &add).await;
    assert!(r.text().contains("write denied"), "{}", r.text());
    assert_eq!(h.service.my_records(&vic).await.unwrap()[0].version, 2);
}
