//! The JSON API through `router`, in-process (`tower::ServiceExt::oneshot`): every error
//! class with its status and JSON body, and the patient → provider flow.

mod common;
#[path = "api/fhir.rs"]
mod fhir;
#[path = "api/rpc.rs"]
mod rpc;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use ehr_api::{AppState, api_operations, router};
use serde_json::{Value, json};

fn app(h: &Harness) -> axum::Router {
    router(AppState::new(h.service.clone()))
}

/// Stores [`form`] as a new record with `token`'s session.
async fn store_form(app: &axum::Router, token: &str) -> Reply {
    call(
        app,
        Method::POST,
        "/api/records/form",
        Some(token),
        Some(form()),
    )
    .await
}

fn form() -> Value {
    json!({
        "patient_name": "Jane Doe",
        "birth_date": "1984-02-29",
        "address": "1 Main St, Springfield",
        "phone": "+1 555 010 0199",
        "health_condition": "Diabetes mellitus type 2",
    })
}

fn in_days(days: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + days * 86_400
}

#[tokio::test]
async fn openapi_documents_exactly_the_routes_served() {
    let h = service().await;
    let app = app(&h);
    let r = call(&app, Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();

    let served = api_operations();
    let mut documented = Vec::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            documented.push((path.clone(), method.to_uppercase()));
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            let error_responses = responses
                .keys()
                .filter(|s| s.starts_with('4') || s.starts_with('5'));
            if path != "/api/openapi.json" {
                assert!(
                    error_responses.count() > 0,
                    "{method} {path}: no error responses"
                );
            }
        }
    }
    let mut served_ops: Vec<(String, String)> = served
        .iter()
        .map(|(p, m)| ((*p).to_owned(), m.as_str().to_owned()))
        .collect();
    served_ops.sort();
    documented.sort();
    assert_eq!(served_ops, documented, "router and openapi.json disagree");

    // Every $ref resolves.
    let text = r.text();
    for piece in text.split("\"$ref\": \"#/").skip(1) {
        let target = piece.split('"').next().unwrap();
        let mut node = &doc;
        for part in target.split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "dangling $ref {target}");
    }

    // And each documented operation is really routed (no 405, not the 404 fallback).
    for (path, method) in &served {
        let uri = path
            .replace("{id}", "1")
            .replace("{patient_id}", "1")
            .replace("{cid}", "bafy");
        let r = call(&app, method.clone(), &uri, None, None).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert!(
            !(r.status == StatusCode::NOT_FOUND && r.text().contains("no such route")),
            "{method} {uri} is not routed"
        );
    }
    // An undocumented method is refused, as JSON.
    let r = call(&app, Method::PATCH, "/api/records", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json()["error"], "method_not_allowed");
    let r = call(&app, Method::GET, "/api/nothing-here", None, None).await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn sessions_credentials_and_throttling() {
    let h = service().await;
    let app = app(&h);
    let creds = |u: &str, p: &str| Some(json!({ "username": u, "password": p }));

    let r = call(
        &app,
        Method::POST,
        "/api/session",
        None,
        creds(PROVIDER.0, PROVIDER.1),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let s = r.json();
    assert_eq!(s["username"], PROVIDER.0);
    assert_eq!(s["role"], "provider");
    assert_eq!(s["token"].as_str().unwrap().len(), 96);
    assert!(s["address"].as_str().unwrap().starts_with("0x"));
    assert!(s["expires_at"].as_u64().unwrap() > in_days(0));
    let token = s["token"].as_str().unwrap().to_owned();

    let r = call(&app, Method::GET, "/api/me", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["patient_id"], Value::Null);

    // Wrong password and unknown user: the same 401.
    let r = call(
        &app,
        Method::POST,
        "/api/session",
        None,
        creds(PROVIDER.0, "wrong password!!"),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    let r = call(
        &app,
        Method::POST,
        "/api/session",
        None,
        creds("nobody", "wrong password!!"),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    // Five failures lock the user out with 429 and Retry-After.
    for _ in 0..4 {
        call(
            &app,
            Method::POST,
            "/api/session",
            None,
            creds(PROVIDER.0, "wrong password!!"),
        )
        .await;
    }
    let r = call(
        &app,
        Method::POST,
        "/api/session",
        None,
        creds(PROVIDER.0, PROVIDER.1),
    )
    .await;
    let body = r.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(body["retry_after"], retry);

    // Logout revokes the token.
    let r = call(&app, Method::DELETE, "/api/session", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&app, Method::GET, "/api/me", Some(&token), None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn unauthenticated_and_forbidden_roles() {
    let h = service().await;
    let app = app(&h);
    for (method, uri) in [
        (Method::GET, "/api/me"),
        (Method::GET, "/api/records"),
        (Method::GET, "/api/grants"),
        (Method::GET, "/api/access-log"),
        (Method::GET, "/api/providers"),
        (Method::DELETE, "/api/session"),
    ] {
        let r = call(&app, method.clone(), uri, None, None).await;
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
        let r = call(&app, method.clone(), uri, Some("0badc0de"), None).await;
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    let provider = login(&app, PROVIDER.0, PROVIDER.1).await;
    let (patient, pid) = patient(&app, "alice").await;

    let r = store_form(&app, &provider).await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    let r = call(
        &app,
        Method::GET,
        &format!("/api/patients/{pid}/records"),
        Some(&patient),
        None,
    )
    .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    let r = call(
        &app,
        Method::POST,
        "/api/providers",
        Some(&patient),
        Some(json!({"username": "dr-evil", "password": PASSWORD})),
    )
    .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    let r = call(
        &app,
        Method::POST,
        "/api/emergency",
        Some(&patient),
        Some(json!({"patient_id": pid, "reason": "x"})),
    )
    .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    // Nothing was added by the refused calls.
    let r = call(&app, Method::GET, "/api/providers", Some(&patient), None).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = call(&app, Method::GET, "/api/records", Some(&patient), None).await;
    assert_eq!(r.json(), json!([]));
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
    let h = service().await;
    let app = app(&h);
    let post = |body: &'static str, ctype: Option<&'static str>| {
        let mut req = Request::builder().method(Method::POST).uri("/api/session");
        if let Some(c) = ctype {
            req = req.header(header::CONTENT_TYPE, c);
        }
        req.body(Body::from(body)).unwrap()
    };
    let json_ct = Some("application/json");

    let r = send(&app, post("{\"username\": ", json_ct)).await;
    let b = r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(b["field"], "body");
    let r = send(&app, post(r#"{"username": 5, "password": "x"}"#, json_ct)).await;
    let b = r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(b["field"], "username");
    let r = send(&app, post(r#"{"username": "a"}"#, json_ct)).await;
    let b = r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(b["field"], "password");
    let r = send(
        &app,
        post(
            r#"{"username": "a", "password": "b", "admin": true}"#,
            json_ct,
        ),
    )
    .await;
    let b = r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(b["field"], "admin");
    // Values are never echoed.
    let r = send(
        &app,
        post(
            r#"{"username": ["secret-value"], "password": "x"}"#,
            json_ct,
        ),
    )
    .await;
    assert!(!r.text().contains("secret-value"), "{}", r.text());

    let r = send(&app, post(r#"{"username": "a", "password": "b"}"#, None)).await;
    r.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let r = send(
        &app,
        post(r#"{"username": "a", "password": "b"}"#, Some("text/plain")),
    )
    .await;
    r.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    // Over 1 MiB: 413, before the body is parsed.
    let (patient, _) = patient(&app, "bob").await;
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(ehr_api::MAX_BODY_BYTES));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/records")
        .header(header::AUTHORIZATION, format!("Bearer {patient}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    send(&app, req)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // Path and query parameters.
    let r = call(&app, Method::GET, "/api/records/abc", Some(&patient), None).await;
    assert_eq!(
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_input")["field"],
        "id"
    );
    let r = call(
        &app,
        Method::GET,
        "/api/records/1?version=x",
        Some(&patient),
        None,
    )
    .await;
    assert_eq!(
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_input")["field"],
        "version"
    );

    // Registration rules name their field; a taken name is a conflict.
    let reg = |u: &str, p: &str| Some(json!({ "username": u, "password": p }));
    let r = call(
        &app,
        Method::POST,
        "/api/patients",
        None,
        reg("A b", PASSWORD),
    )
    .await;
    assert_eq!(
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_input")["field"],
        "username"
    );
    let r = call(
        &app,
        Method::POST,
        "/api/patients",
        None,
        reg("carol", "short"),
    )
    .await;
    assert_eq!(
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_input")["field"],
        "password"
    );
    let r = call(
        &app,
        Method::POST,
        "/api/patients",
        None,
        reg("bob", PASSWORD),
    )
    .await;
    r.assert_error(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn invalid_records_list_every_field() {
    let h = service().await;
    let app = app(&h);
    let (patient, _) = patient(&app, "dora").await;
    let mut bad = form();
    bad["birth_date"] = json!("2999-01-01");
    bad["phone"] = json!("<script>");
    let r = call(
        &app,
        Method::POST,
        "/api/records/form",
        Some(&patient),
        Some(bad),
    )
    .await;
    let b = r.assert_error(StatusCode::BAD_REQUEST, "invalid_record");
    let paths: Vec<&str> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["birth_date", "phone"], "{b}");
    assert!(!r.text().contains("<script>"), "values are not echoed");

    let r = call(
        &app,
        Method::POST,
        "/api/records",
        Some(&patient),
        Some(json!({"resourceType": "Bundle", "type": "collection", "entry": []})),
    )
    .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_record");
    let r = call(&app, Method::GET, "/api/records", Some(&patient), None).await;
    assert_eq!(r.json(), json!([]), "nothing stored");
}

#[tokio::test]
async fn patient_grants_provider_reads_revokes_and_sees_the_log() {
    let h = service().await;
    let app = app(&h);
    let (patient, pid) = patient(&app, "erin").await;
    let provider = login(&app, PROVIDER.0, PROVIDER.1).await;

    let r = store_form(&app, &patient).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let stored = r.json();
    let id = stored["record_id"].as_u64().unwrap();
    assert_eq!(stored["version"], 1);
    assert!(stored["tx_hash"].as_str().unwrap().starts_with("0x"));
    let cid = stored["manifest_cid"].as_str().unwrap().to_owned();

    let r = call(
        &app,
        Method::GET,
        &format!("/api/records/{id}"),
        Some(&patient),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["form"]["patient_name"], "Jane Doe");
    assert_eq!(r.json()["patient_id"], pid);

    let records = format!("/api/patients/{pid}/records");
    let r = call(&app, Method::GET, &records, Some(&provider), None).await;
    r.assert_error(StatusCode::FORBIDDEN, "access_denied");

    let r = call(&app, Method::GET, "/api/providers", Some(&patient), None).await;
    assert_eq!(r.json()[0]["username"], PROVIDER.0);
    let grant = json!({ "provider": PROVIDER.0, "expires_at": in_days(30) });
    let r = call(
        &app,
        Method::POST,
        "/api/grants",
        Some(&patient),
        Some(grant),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = call(&app, Method::GET, "/api/grants", Some(&patient), None).await;
    assert_eq!(r.json()[0]["active"], true);

    let r = call(&app, Method::GET, &records, Some(&provider), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()[0]["form"]["health_condition"],
        "Diabetes mellitus type 2"
    );
    assert_eq!(r.json()[0]["emergency"], false);

    let r = call(
        &app,
        Method::POST,
        "/api/grants/revoke",
        Some(&patient),
        Some(json!({ "provider": PROVIDER.0 })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = call(&app, Method::GET, &records, Some(&provider), None).await;
    r.assert_error(StatusCode::FORBIDDEN, "access_denied");

    // Break-glass needs a reason, then is logged with it.
    let r = call(
        &app,
        Method::POST,
        "/api/emergency",
        Some(&provider),
        Some(json!({ "patient_id": pid, "reason": "  " })),
    )
    .await;
    assert_eq!(
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_input")["field"],
        "reason"
    );
    let r = call(
        &app,
        Method::POST,
        "/api/emergency",
        Some(&provider),
        Some(json!({ "patient_id": pid, "reason": "unconscious in A&E" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()[0]["emergency"], true);

    let r = call(&app, Method::GET, "/api/access-log", Some(&patient), None).await;
    let log = r.json();
    let by_provider: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reader_username"] == PROVIDER.0)
        .collect();
    assert_eq!(by_provider.len(), 2, "{log}");
    assert!(
        by_provider
            .iter()
            .any(|e| e["emergency"] == true && e["reason"] == "unconscious in A&E")
    );

    // A new version; reading an old one by number.
    let mut bundle = call(
        &app,
        Method::GET,
        &format!("/api/records/{id}"),
        Some(&patient),
        None,
    )
    .await
    .json()["bundle"]
        .clone();
    bundle["entry"][0]["resource"]["birthDate"] = json!("1984-03-01");
    let r = call(
        &app,
        Method::PUT,
        &format!("/api/records/{id}"),
        Some(&patient),
        Some(bundle),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["version"], 2);
    let r = call(
        &app,
        Method::GET,
        &format!("/api/records/{id}?version=1"),
        Some(&patient),
        None,
    )
    .await;
    assert_eq!(r.json()["version"], 1);
    let r = call(&app, Method::GET, "/api/records", Some(&patient), None).await;
    assert_eq!(r.json()[0]["versions"].as_array().unwrap().len(), 2);
    let r = call(&app, Method::GET, "/api/records/999", Some(&patient), None).await;
    assert!(
        matches!(r.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
        "{}",
        r.text()
    );

    // The gateway serves the manifest block raw, publicly.
    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{cid}?format=raw"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/vnd.ipld.raw");
    assert!(!r.bytes.is_empty());
    let r = call(&app, Method::GET, &format!("/ipfs/{cid}"), None, None).await;
    assert_eq!(
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_input")["field"],
        "format"
    );
    let req = Request::builder()
        .uri(format!("/ipfs/{cid}"))
        .header(header::ACCEPT, "application/vnd.ipld.raw")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::OK);

    let r = call(&app, Method::GET, "/api/status", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["k"].as_u64().unwrap() <= r.json()["n"].as_u64().unwrap());
}

#[tokio::test]
async fn registration_is_throttled_per_client() {
    let h = service().await;
    let app =
        router(AppState::new(h.service.clone()).with_signup_limit(2, Duration::from_secs(3600)));
    for u in ["pat1", "pat2"] {
        let r = call(
            &app,
            Method::POST,
            "/api/patients",
            None,
            Some(json!({"username": u, "password": PASSWORD})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = call(
        &app,
        Method::POST,
        "/api/patients",
        None,
        Some(json!({"username": "pat3", "password": PASSWORD})),
    )
    .await;
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    assert!(
        h.service.accounts().get("pat3").is_none(),
        "nothing created"
    );
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let h = service().await;
    let app = app(&h);
    for uri in ["/", "/api/me", "/nope", "/static/style.css"] {
        let r = call(&app, Method::GET, uri, None, None).await;
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
            "{uri}"
        );
        assert_eq!(
            r.headers[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{uri}"
        );
        assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        assert_eq!(r.headers[header::REFERRER_POLICY], "no-referrer", "{uri}");
    }
    let r = call(&app, Method::GET, "/api/me", None, None).await;
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
}

/// A provider cannot tell a patient id nobody has from a patient who shared nothing with it.
#[tokio::test]
async fn unknown_and_unshared_patients_get_one_answer() {
    let h = service().await;
    let app = app(&h);
    let provider = login(&app, PROVIDER.0, PROVIDER.1).await;
    let (alice, pid) = patient(&app, "alice").await;
    let r = store_form(&app, &alice).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (_, empty_pid) = patient(&app, "bob").await;
    let unknown = pid + empty_pid + 1000;

    let answer = |id: u64| {
        let app = app.clone();
        let provider = provider.clone();
        async move {
            let uri = format!("/api/patients/{id}/records");
            let r = call(&app, Method::GET, &uri, Some(&provider), None).await;
            let body = r.assert_error(StatusCode::FORBIDDEN, "access_denied");
            body["message"]
                .as_str()
                .unwrap()
                .replace(&id.to_string(), "ID")
        }
    };
    let shared_nothing = answer(pid).await;
    assert_eq!(answer(empty_pid).await, shared_nothing);
    assert_eq!(answer(unknown).await, shared_nothing);
}

/// `/api/status` without a session: no node names (URLs when remote), and a cached answer,
/// so no unauthenticated request makes the server ask every node and the chain.
#[tokio::test]
async fn public_status_is_cached_and_names_no_node() {
    let h = service().await;
    let app = app(&h);
    let admin = login(&app, ADMIN.0, ADMIN.1).await;

    let public = call(&app, Method::GET, "/api/status", None, None).await;
    assert_eq!(public.status, StatusCode::OK);
    let public = public.json();
    assert_eq!(public["reachable"], 5, "{public}");
    assert!(public.get("nodes").is_none(), "{public}");
    for i in 0..5 {
        let node = h.service.status().await.unwrap().nodes[i].name.clone();
        assert!(!public.to_string().contains(&node), "{public} names {node}");
    }

    // A new block: the admin sees it at once, the public answer is the cached one.
    let (patient, _) = patient(&app, "alice").await;
    let r = store_form(&app, &patient).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let fresh = call(&app, Method::GET, "/api/status", Some(&admin), None).await;
    let fresh = fresh.json();
    assert_eq!(fresh["nodes"].as_array().unwrap().len(), 5, "{fresh}");
    assert!(fresh["nodes"][0]["name"].is_string());
    let head = |v: &Value| v["chain"]["head_block"].as_u64().unwrap();
    assert!(head(&fresh) > head(&public));
    // Within the cache's lifetime, the public answer is the last status taken (the admin's).
    let again = call(&app, Method::GET, "/api/status", None, None)
        .await
        .json();
    assert_eq!(head(&again), head(&fresh));
    let r = store_form(&app, &patient).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let cached = call(&app, Method::GET, "/api/status", None, None)
        .await
        .json();
    assert_eq!(head(&cached), head(&fresh), "asked the chain again");

    // A patient's token is no admin's: the public answer.
    let r = call(&app, Method::GET, "/api/status", Some(&patient), None)
        .await
        .json();
    assert!(r.get("nodes").is_none(), "{r}");
}

/// Break-glass over the JSON API: `GET /api/grants` shows the open window with its reason,
/// a later read inside it is `emergency: true` with the reason in `/api/access-log`, and
/// `POST /api/grants/revoke {record_id: null}` ends the window and every grant at once.
/// The admin's disable ends the provider's token and refuses its login.
#[tokio::test]
async fn break_glass_is_visible_and_revoke_all_and_disable_end_everything() {
    let h = service().await;
    let app = app(&h);
    let (patient, pid) = patient(&app, "erin").await;
    let provider = login(&app, PROVIDER.0, PROVIDER.1).await;
    let admin = login(&app, ADMIN.0, ADMIN.1).await;
    for _ in 0..2 {
        let r = store_form(&app, &patient).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let r = call(
        &app,
        Method::POST,
        "/api/emergency",
        Some(&provider),
        Some(json!({ "patient_id": pid, "reason": "anaphylaxis" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = call(&app, Method::GET, "/api/grants", Some(&patient), None).await;
    let grants = r.json();
    let open: Vec<_> = grants
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["emergency"]["reason"] == "anaphylaxis")
        .map(|g| g["record_id"].as_u64().unwrap())
        .collect();
    assert_eq!(open, vec![1, 2], "{grants}");
    // A grant on record 2 too; then an ordinary read of record 1 inside the window.
    let r = call(
        &app,
        Method::POST,
        "/api/grants",
        Some(&patient),
        Some(json!({ "provider": PROVIDER.0, "record_id": 2, "expires_at": in_days(3) })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = call(&app, Method::GET, "/api/records/1", Some(&provider), None).await;
    assert_eq!(r.json()["emergency"], true);
    let log = call(&app, Method::GET, "/api/access-log", Some(&patient), None)
        .await
        .json();
    let tx = r.json()["access_tx"].clone();
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tx_hash"] == tx)
        .unwrap();
    assert_eq!(
        (&entry["emergency"], &entry["reason"]),
        (&json!(true), &json!("anaphylaxis"))
    );

    let r = call(
        &app,
        Method::POST,
        "/api/grants/revoke",
        Some(&patient),
        Some(json!({ "provider": PROVIDER.0, "record_id": null })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for id in [1, 2] {
        let r = call(
            &app,
            Method::GET,
            &format!("/api/records/{id}"),
            Some(&provider),
            None,
        )
        .await;
        r.assert_error(StatusCode::FORBIDDEN, "access_denied");
    }
    let grants = call(&app, Method::GET, "/api/grants", Some(&patient), None)
        .await
        .json();
    assert!(
        grants
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["emergency"].is_null() && g["active"] == false),
        "{grants}"
    );

    // Disable: the provider's token stops working and its login is refused.
    let r = call(
        &app,
        Method::POST,
        &format!("/api/providers/{}/disable", PROVIDER.0),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(r.json()["disabled"], true, "{}", r.text());
    let r = call(&app, Method::GET, "/api/me", Some(&provider), None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let r = call(
        &app,
        Method::POST,
        "/api/session",
        None,
        Some(json!({ "username": PROVIDER.0, "password": PROVIDER.1 })),
    )
    .await;
    let body = r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert!(
        body["message"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
    // Off the chain, so out of the network's directory; the admin still sees it, disabled.
    let providers = call(&app, Method::GET, "/api/providers", Some(&patient), None)
        .await
        .json();
    assert_eq!(providers, json!([]), "{providers}");
    let admin = login(&app, ADMIN.0, ADMIN.1).await;
    let providers = call(&app, Method::GET, "/api/providers", Some(&admin), None)
        .await
        .json();
    assert_eq!(providers[0]["username"], PROVIDER.0);
    assert_eq!(providers[0]["disabled"], true);
}

/// `POST /api/session` from TCP peer `peer`, with these `X-Forwarded-For` headers.
async fn login_via(
    app: &axum::Router,
    peer: &str,
    forwarded: &[&str],
    user: &str,
    password: &str,
) -> StatusCode {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/session")
        .header(header::CONTENT_TYPE, "application/json");
    for f in forwarded {
        req = req.header("x-forwarded-for", *f);
    }
    let mut req = req
        .body(Body::from(
            json!({"username": user, "password": password}).to_string(),
        ))
        .unwrap();
    let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    send(app, req).await.status
}

/// Issue 12 item 4: behind `--trusted-proxy` each client is its right-most untrusted
/// `X-Forwarded-For` address, so a guesser behind the proxy does not lock the owner (also
/// behind it) out; spoofed entries to the left change nothing; from any other peer the
/// header is ignored.
#[tokio::test]
async fn the_client_address_comes_from_the_trusted_proxy_only() {
    const PROXY: &str = "10.0.0.1";
    const GUESSER: &str = "203.0.113.5";
    const OWNER: &str = "198.51.100.7";
    let h = service().await;
    let app =
        router(AppState::new(h.service.clone()).with_trusted_proxy(Some(PROXY.parse().unwrap())));
    let (user, right) = PROVIDER;
    let wrong = "wrong password!!";
    for _ in 0..5 {
        assert_eq!(
            login_via(&app, PROXY, &[GUESSER], user, wrong).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The guesser is locked, even with the right password, and spoofing entries to the
    // left of what the proxy appended does not help.
    assert_eq!(
        login_via(&app, PROXY, &[GUESSER], user, right).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_via(&app, PROXY, &[&format!("{OWNER}, {GUESSER}")], user, right).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_via(
            &app,
            PROXY,
            &[OWNER, &format!("{GUESSER}, {PROXY}")],
            user,
            right
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner, behind the same proxy, logs in.
    assert_eq!(
        login_via(&app, PROXY, &[&format!("{GUESSER}, {OWNER}")], user, right).await,
        StatusCode::OK
    );

    // Without the flag, or from another peer, the header is ignored: all those logins
    // count against the peer itself.
    for (n, trusted) in [None, Some("10.0.0.2".parse().unwrap())]
        .into_iter()
        .enumerate()
    {
        let nobody = format!("nobody{n}");
        let app = router(AppState::new(h.service.clone()).with_trusted_proxy(trusted));
        for i in 0..5 {
            assert_eq!(
                login_via(&app, PROXY, &[&format!("192.0.2.{i}")], &nobody, wrong).await,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            login_via(&app, PROXY, &[OWNER], &nobody, wrong).await,
            StatusCode::TOO_MANY_REQUESTS,
            "trusted proxy {trusted:?}"
        );
    }
}
