//! Shared set-up: an embedded service in a temporary directory (cheap hashing), with an
//! admin and a provider, and helpers to call the router in-process.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use ehr_records::accounts::AccountParams;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const ADMIN: (&str, &str) = ("registrar", "admin password for tests");
pub const PROVIDER: (&str, &str) = ("dr-grey", "provider password for tests");
pub const PASSWORD: &str = "patient password for tests";

pub use ehr_records::Service;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub service: Arc<Service>,
}

/// The embedded service (revm chain running the real contract, five in-process nodes,
/// threshold 3) in a temporary directory, with the admin and one provider.
pub async fn service() -> Harness {
    let h = service_without_admin().await;
    let service = &h.service;
    service.create_admin(ADMIN.0, ADMIN.1).unwrap();
    let (_, admin) = service.login(ADMIN.0, ADMIN.1, "setup").await.unwrap();
    service
        .add_provider(
            &admin.admin().unwrap(),
            PROVIDER.0,
            PROVIDER.1,
            &Default::default(),
        )
        .await
        .unwrap();
    h
}

/// [`service`] as a first start finds it: no account at all.
pub async fn service_without_admin() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let service = ehr_records::deployment::open(
        dir.path(),
        &ehr_records::deployment::Deployment {
            chain: ehr_records::deployment::ChainChoice::Embedded,
            nodes: ehr_records::deployment::NodesChoice::Local { n: 5 },
            k: 3,
            params: AccountParams::INSECURE_FAST,
            archive: false,
        },
    )
    .await
    .unwrap();
    Harness {
        dir,
        service: Arc::new(service),
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.bytes)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Asserts an error reply: status, `error` code, and (for 400s) the field.
    pub fn assert_error(&self, status: StatusCode, code: &str) -> Value {
        let body = self.json();
        assert_eq!(self.status, status, "{body}");
        assert_eq!(body["error"], code, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        body
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        bytes,
    }
}

/// A JSON API call; `body` is sent as `application/json`.
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    send(app, req).await
}

/// Logs in through the API and returns the token.
pub async fn login(app: &Router, user: &str, password: &str) -> String {
    let r = call(
        app,
        Method::POST,
        "/api/session",
        None,
        Some(serde_json::json!({ "username": user, "password": password })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

/// Registers a patient through the API and returns (token, patient id).
pub async fn patient(app: &Router, user: &str) -> (String, u64) {
    let r = call(
        app,
        Method::POST,
        "/api/patients",
        None,
        Some(serde_json::json!({ "username": user, "password": PASSWORD })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["patient_id"].as_u64().unwrap();
    (login(app, user, PASSWORD).await, id)
}
