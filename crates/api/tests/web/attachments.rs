//! Issue 19 on the pages: a patient adds a document from the record page (a multipart form
//! streamed into storage, its CSRF token in the form's URL); the page lists it with type,
//! size and date; the owner and a provider with a grant open it (PDF in place), a provider
//! without one is refused; a wrong token changes nothing.

use super::*;

/// A browser's multipart body: `title`, then one file part.
fn form(title: &str, file_name: &str, content_type: &str, data: &[u8]) -> (String, Vec<u8>) {
    const B: &str = "----secureehrAttach9xQ";
    let mut body = format!(
        "--{B}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n\
         --{B}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    // The camera input, left empty, as browsers send it.
    body.extend_from_slice(
        format!(
            "\r\n--{B}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n\r\n--{B}--\r\n"
        )
        .as_bytes(),
    );
    (format!("multipart/form-data; boundary={B}"), body)
}

async fn upload(app: &Router, b: &Browser, uri: &str, ct: String, body: Vec<u8>) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::COOKIE, b.cookie_header())
        .header(header::CONTENT_TYPE, ct)
        .body(Body::from(body))
        .unwrap();
    send(app, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_adds_a_document_and_readers_with_access_open_it() {
    let h = service().await;
    h.service.register_patient("ada", PASSWORD).await.unwrap();
    let (_, ada) = h.service.login("ada", PASSWORD, "test").await.unwrap();
    let ada = ada.patient().unwrap();
    let stored = h
        .service
        .put_record(
            &ada,
            include_bytes!("../../../fhir/testdata/rich-bundle.json"),
        )
        .await
        .unwrap();
    let id = stored.record_id;
    let app = router(AppState::new(h.service.clone()));
    let mut b = Browser::default();
    sign_in(&app, &mut b, "ada", PASSWORD).await;

    let page = b.get(&app, &format!("/patient/records/{id}")).await.text();
    assert!(
        page.contains("enctype=\"multipart/form-data\"")
            && page.contains("accept=\"image/*,application/pdf")
            && page.contains("capture=\"environment\""),
        "{page}"
    );
    let token = csrf(&page);
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.extend((0..1_500_000u32).map(|i| (i % 253) as u8));
    let action = format!("/patient/records/{id}/attachments?csrf={token}");

    // A wrong token, or bytes that are not the declared type: nothing stored.
    let (ct, body) = form("Lab letter", "letter.pdf", "application/pdf", &pdf);
    let r = upload(
        &app,
        &b,
        &format!("/patient/records/{id}/attachments?csrf=nope"),
        ct.clone(),
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (ct2, png_as_pdf) = form("x", "x.pdf", "application/pdf", b"\x89PNG\r\n\x1a\n....");
    let r = upload(&app, &b, &action, ct2, png_as_pdf).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        h.service.read_record(&ada, id, None).await.unwrap().version,
        1,
        "nothing stored"
    );

    let r = upload(&app, &b, &action, ct, body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let page = b.get(&app, &format!("/patient/records/{id}")).await.text();
    assert!(
        page.contains("Record 1, version 2")
            && page.contains("Lab letter")
            && page.contains("PDF · 1.5 MB")
            && page.contains(&format!("href=\"/records/{id}/attachments/1?version=2\"")),
        "{page}"
    );
    let r = b
        .get(&app, &format!("/records/{id}/attachments/1?version=2"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert!(r.bytes[..] == pdf[..]);
    let r = b
        .get(&app, &format!("/records/{id}/attachments/1?download=1"))
        .await;
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );

    // A provider: refused without a grant, served with one.
    let mut doc = Browser::default();
    sign_in(&app, &mut doc, PROVIDER.0, PROVIDER.1).await;
    let r = doc.get(&app, &format!("/records/{id}/attachments/1")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    h.service
        .grant(
            &ada,
            PROVIDER.0,
            Some(id),
            ehr_primitives::unix_now() + 3600,
        )
        .await
        .unwrap();
    let r = doc.get(&app, &format!("/records/{id}/attachments/1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.bytes[..] == pdf[..]);
    // Signed out: the way to sign in, not the file.
    let r = Browser::default()
        .get(&app, &format!("/records/{id}/attachments/1"))
        .await;
    assert_ne!(r.status, StatusCode::OK);
}
