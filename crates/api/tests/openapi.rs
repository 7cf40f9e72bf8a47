//! `openapi.json` against the real API: every route is driven (in-process, `oneshot`)
//! into every status its operation documents — with storage nodes switched off for the
//! 503s and the chain switched off for the 500s — and each response must be documented
//! for its route, method and status, carry the documented headers and content type, and
//! its body must validate against the documented schema (a JSON Schema 2020-12 validator
//! with `#/components/schemas/…` resolved in the document). Requests that succeed are
//! built from `ehr_api::types` and validated against the documented request body too.
//! At the end, the statuses seen must be exactly the statuses documented.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{ADMIN, PASSWORD, PROVIDER, Reply, call, send};
use ehr_api::types;
use ehr_api::{AppState, router};
use ehr_chain::{
    Address, Bytes, ChainConfig, ChainInfo, ChainLog, EmbeddedChain, LogQuery, PrivateKeySigner,
    Registry, SentTx, TxReceipt, TxStatus,
};
use ehr_records::accounts::AccountParams;
use ehr_records::node::{
    EraseOrder, EraseReport, LocalNode, Node, NodeError, NodeInfo, ShareRequest, ShareResponse,
};
use ehr_records::{Service, ServiceParts};
use ehr_store::Cid;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// A service whose chain and nodes can be switched off
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Faults {
    chain_down: AtomicBool,
    nodes_down: AtomicBool,
}

/// The embedded chain, failing every call while `chain_down`.
struct Chain {
    inner: Arc<dyn Registry>,
    faults: Arc<Faults>,
}

impl Chain {
    fn up(&self) -> ehr_chain::Result<()> {
        match self.faults.chain_down.load(Ordering::SeqCst) {
            true => Err(ehr_chain::Error::Stopped),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl Registry for Chain {
    fn contract(&self) -> Address {
        self.inner.contract()
    }
    async fn transact_noted(
        &self,
        from: &PrivateKeySigner,
        input: Bytes,
        note: &ehr_chain::registry::TxNote<'_>,
    ) -> ehr_chain::Result<TxReceipt> {
        self.up()?;
        self.inner.transact_noted(from, input, note).await
    }
    async fn tx_status(&self, tx: &SentTx) -> ehr_chain::Result<TxStatus> {
        self.up()?;
        self.inner.tx_status(tx).await
    }
    async fn call(&self, from: Address, input: Bytes) -> ehr_chain::Result<Bytes> {
        self.up()?;
        self.inner.call(from, input).await
    }
    async fn logs(&self, query: &LogQuery) -> ehr_chain::Result<Vec<ChainLog>> {
        self.up()?;
        self.inner.logs(query).await
    }
    async fn info(&self) -> ehr_chain::Result<ChainInfo> {
        self.up()?;
        self.inner.info().await
    }
    async fn fund_account(&self, from: &PrivateKeySigner, to: Address) -> ehr_chain::Result<()> {
        self.up()?;
        self.inner.fund_account(from, to).await
    }
}

/// An in-process node, unreachable while `nodes_down`.
struct Switch {
    inner: Arc<LocalNode>,
    faults: Arc<Faults>,
}

impl Switch {
    fn up(&self) -> Result<(), NodeError> {
        match self.faults.nodes_down.load(Ordering::SeqCst) {
            true => Err(NodeError::Unreachable("switched off".into())),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl Node for Switch {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn info(&self) -> Result<NodeInfo, NodeError> {
        self.up()?;
        self.inner.info().await
    }
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        self.up()?;
        self.inner.put_block(cid, data).await
    }
    async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, NodeError> {
        self.up()?;
        self.inner.get_block(cid).await
    }
    async fn delete_block(&self, cid: &Cid) -> Result<(), NodeError> {
        self.up()?;
        self.inner.delete_block(cid).await
    }
    async fn release_share(&self, r: &ShareRequest) -> Result<ShareResponse, NodeError> {
        self.up()?;
        self.inner.release_share(r).await
    }
    async fn erase(&self, order: &EraseOrder) -> Result<EraseReport, NodeError> {
        self.up()?;
        self.inner.erase(order).await
    }
}

/// The embedded service (real contract on revm, five nodes, threshold 3) over a
/// switchable chain and switchable nodes, with the admin and one provider.
async fn service(dir: &std::path::Path, faults: &Arc<Faults>) -> Arc<Service> {
    let admin_key = PrivateKeySigner::random();
    let chain: Arc<dyn Registry> = Arc::new(
        EmbeddedChain::open(&dir.join("chain"), ChainConfig::default(), &admin_key).unwrap(),
    );
    let nodes = ehr_records::deployment::local_nodes(dir, 5, &chain)
        .await
        .unwrap()
        .into_iter()
        .map(|inner| {
            Arc::new(Switch {
                inner,
                faults: faults.clone(),
            }) as Arc<dyn Node>
        })
        .collect();
    let accounts = ehr_records::deployment::accounts(dir, AccountParams::INSECURE_FAST).unwrap();
    // A provider account from before key escrow that has not signed in since.
    accounts
        .create("dr-old", PROVIDER.1, ehr_records::accounts::Role::Provider)
        .unwrap();
    let service = Service::new(ServiceParts {
        registry: Arc::new(Chain {
            inner: chain,
            faults: faults.clone(),
        }),
        contract_admin: admin_key,
        accounts,
        nodes,
        k: 3,
        data_dir: dir.to_path_buf(),
    })
    .await
    .unwrap();
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
    Arc::new(service)
}

// ---------------------------------------------------------------------------------------
// The document, and checking a reply against it
// ---------------------------------------------------------------------------------------

/// `openapi.json`, its compiled schemas, and the (path, method, status) replies seen.
struct Spec {
    doc: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    seen: Mutex<BTreeSet<(String, String, String)>>,
}

fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl Spec {
    fn load() -> Self {
        Self {
            doc: serde_json::from_str(ehr_api::OPENAPI_JSON).expect("openapi.json is JSON"),
            validators: Mutex::default(),
            seen: Mutex::default(),
        }
    }

    /// Every (path, method) the document lists.
    fn operations(&self) -> BTreeSet<(String, String)> {
        self.documented()
            .into_iter()
            .map(|(path, method, _)| (path, method))
            .collect()
    }

    /// Every (path, method, status) the document lists.
    fn documented(&self) -> BTreeSet<(String, String, String)> {
        let mut out = BTreeSet::new();
        for (path, ops) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                for status in op["responses"].as_object().unwrap().keys() {
                    out.insert((path.clone(), method.to_uppercase(), status.clone()));
                }
            }
        }
        out
    }

    /// The documented path template `path` is an instance of, for `method` (literal
    /// segments win over parameters: `/api/records/form` over `/api/records/{id}`).
    fn template(&self, method: &Method, path: &str) -> Option<String> {
        let want: Vec<&str> = path.split('/').collect();
        let method = method.as_str().to_lowercase();
        self.doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, ops)| ops.get(&method).is_some())
            .filter_map(|(template, _)| {
                let segs: Vec<&str> = template.split('/').collect();
                let matches = segs.len() == want.len()
                    && segs
                        .iter()
                        .zip(&want)
                        .all(|(t, w)| t == w || (t.starts_with('{') && !w.is_empty()));
                let literal = segs.iter().filter(|t| !t.starts_with('{')).count();
                matches.then_some((literal, template.clone()))
            })
            .max()
            .map(|(_, t)| t)
    }

    /// Validates `instance` against the schema at JSON pointer `at` in the document.
    fn validate(&self, at: &str, instance: &Value) -> Result<(), String> {
        let validator = {
            let mut cache = self.validators.lock().unwrap();
            cache
                .entry(at.to_owned())
                .or_insert_with(|| {
                    let mut schema = self
                        .doc
                        .pointer(at)
                        .unwrap_or_else(|| panic!("no schema at {at}"))
                        .clone();
                    // One resource holding the components, so `#/components/schemas/…`
                    // resolves; OpenAPI 3.1 schemas are JSON Schema 2020-12.
                    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
                    schema["components"] = self.doc["components"].clone();
                    Arc::new(
                        jsonschema::draft202012::new(&schema)
                            .unwrap_or_else(|e| panic!("schema at {at}: {e}")),
                    )
                })
                .clone()
        };
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        match errors.is_empty() {
            true => Ok(()),
            false => Err(errors.join("; ")),
        }
    }

    /// Checks `reply` to `method uri` (with JSON `request` body, if any) against the
    /// document, and records it.
    fn check(&self, method: &Method, uri: &str, request: Option<&Value>, reply: &Reply) {
        let path = uri.split('?').next().unwrap();
        let what = format!("{method} {uri} → {}", reply.status.as_u16());
        let template = self
            .template(method, path)
            .unwrap_or_else(|| panic!("{what}: no documented operation"));
        let op_at = format!(
            "/paths/{}/{}",
            pointer_escape(&template),
            method.as_str().to_lowercase()
        );
        let op = self.doc.pointer(&op_at).unwrap();
        let status = reply.status.as_u16().to_string();
        let mut at = format!("{op_at}/responses/{status}");
        let mut response = op["responses"].get(&status).unwrap_or_else(|| {
            let listed: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            panic!(
                "{what}: status not documented (documented: {listed:?}); body {}",
                reply.text()
            )
        });
        if let Some(r) = response["$ref"].as_str() {
            at = r.strip_prefix('#').unwrap().to_owned();
            response = self.doc.pointer(&at).unwrap();
        }
        for name in response["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|h| h.0)
        {
            assert!(
                reply.headers.contains_key(name.as_str()),
                "{what}: no {name} header"
            );
        }
        match response.get("content") {
            None => assert!(reply.bytes.is_empty(), "{what}: a body: {}", reply.text()),
            Some(content) => {
                let ctype = reply
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .unwrap_or_else(|| panic!("{what}: no content type"))
                    .trim();
                assert!(
                    content.get(ctype).is_some(),
                    "{what}: content type {ctype} not documented"
                );
                if ctype == "application/json" || ctype == "application/fhir+json" {
                    let at = format!("{at}/content/{}/schema", pointer_escape(ctype));
                    if let Err(e) = self.validate(&at, &reply.json()) {
                        panic!(
                            "{what}: the body does not match {at}: {e}\n{}",
                            reply.text()
                        );
                    }
                } else {
                    assert!(!reply.bytes.is_empty(), "{what}: empty body");
                }
            }
        }
        if let (Some(body), true) = (request, reply.status.is_success()) {
            let at = format!("{op_at}/requestBody/content/application~1json/schema");
            if let Err(e) = self.validate(&at, body) {
                panic!("{what}: the request does not match {at}: {e}\n{body}");
            }
        }
        self.seen
            .lock()
            .unwrap()
            .insert((template, method.as_str().to_owned(), status));
    }
}

/// A router over the service, and the document every reply is checked against.
struct Api {
    app: Router,
    spec: Arc<Spec>,
}

fn body<T: Serialize>(v: &T) -> Option<Value> {
    Some(serde_json::to_value(v).unwrap())
}

fn parse<T: DeserializeOwned>(r: &Reply) -> T {
    serde_json::from_slice(&r.bytes).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

impl Api {
    /// A JSON call, checked against the document; its status must be `status`.
    async fn expect(
        &self,
        status: u16,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let r = call(&self.app, method.clone(), uri, token, body.clone()).await;
        self.spec.check(&method, uri, body.as_ref(), &r);
        assert_eq!(r.status.as_u16(), status, "{method} {uri}: {}", r.text());
        r
    }

    /// A request as built, checked against the document; its status must be `status`.
    async fn expect_raw(&self, status: u16, req: Request<Body>) -> Reply {
        let (method, uri) = (req.method().clone(), req.uri().to_string());
        let r = send(&self.app, req).await;
        self.spec.check(&method, &uri, None, &r);
        assert_eq!(r.status.as_u16(), status, "{method} {uri}: {}", r.text());
        r
    }

    async fn login(&self, user: &str, password: &str) -> types::Session {
        let creds = types::Credentials {
            username: user.into(),
            password: password.into(),
        };
        parse(
            &self
                .expect(200, Method::POST, "/api/session", None, body(&creds))
                .await,
        )
    }
}

// ---------------------------------------------------------------------------------------
// Every route into every documented status
// ---------------------------------------------------------------------------------------

const BUNDLE: &str = r#"{
  "resourceType": "Bundle", "type": "collection",
  "entry": [
    { "resource": { "resourceType": "Patient", "id": "p1",
        "name": [{ "family": "Doe", "given": ["Jane"] }], "birthDate": "1984-02-29",
        "telecom": [{ "system": "phone", "value": "+1 555 010 0199" }] } },
    { "resource": { "resourceType": "Condition",
        "code": { "text": "Diabetes mellitus type 2" },
        "subject": { "reference": "Patient/p1" } } }
  ]
}"#;

fn bundle() -> Option<Value> {
    Some(serde_json::from_str(BUNDLE).unwrap())
}

fn form() -> types::RecordForm {
    types::RecordForm {
        patient_name: "Jane Doe".into(),
        birth_date: "1984-02-29".into(),
        address: "1 Main St, Springfield".into(),
        phone: "+1 555 010 0199".into(),
        health_condition: "Diabetes mellitus type 2".into(),
    }
}

fn creds(user: &str) -> Option<Value> {
    body(&types::Credentials {
        username: user.into(),
        password: PASSWORD.into(),
    })
}

fn in_days(days: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + days * 86_400
}

/// A request with `body` as `content_type` and, if given, a bearer token.
fn raw(
    method: &Method,
    uri: &str,
    token: Option<&str>,
    ctype: &str,
    body: Vec<u8>,
) -> Request<Body> {
    let mut req = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(header::CONTENT_TYPE, ctype);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    req.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn every_route_answers_every_documented_status_as_documented() {
    use Method as M;
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let service = service(dir.path(), &faults).await;
    let spec = Arc::new(Spec::load());
    let api = Api {
        app: router(AppState::new(service.clone()).with_signup_limit(1000, Duration::from_secs(1))),
        spec: spec.clone(),
    };

    // Sign-in and sign-up: 200, 201.
    let admin = api.login(ADMIN.0, ADMIN.1).await.token;
    let provider = api.login(PROVIDER.0, PROVIDER.1).await.token;
    let r = api
        .expect(201, M::POST, "/api/patients", None, creds("pat"))
        .await;
    let pid = parse::<types::PatientAccount>(&r).patient_id;
    let patient = api.login("pat", PASSWORD).await.token;
    let (admin, provider, patient) = (admin.as_str(), provider.as_str(), patient.as_str());
    // 204: signing out.
    let second = api.login("pat", PASSWORD).await.token;
    api.expect(204, M::DELETE, "/api/session", Some(&second), None)
        .await;

    // A password change: 400 for a weak new one, 204 (the other session ends, this one
    // stays, the new password logs in), 401 for a wrong current one, then 429.
    const NEW: &str = "a brand new passphrase";
    api.expect(201, M::POST, "/api/patients", None, creds("pw-user"))
        .await;
    let here = api.login("pw-user", PASSWORD).await.token;
    let other = api.login("pw-user", PASSWORD).await.token;
    let change = |current: &str, new: &str| {
        body(&types::PasswordChange {
            current_password: current.into(),
            new_password: new.into(),
        })
    };
    let r = api
        .expect(
            400,
            M::POST,
            "/api/me/password",
            Some(&here),
            change(PASSWORD, "short"),
        )
        .await;
    assert_eq!(
        parse::<types::ErrorBody>(&r).field.as_deref(),
        Some("new_password")
    );
    api.expect(
        204,
        M::POST,
        "/api/me/password",
        Some(&here),
        change(PASSWORD, NEW),
    )
    .await;
    api.expect(401, M::GET, "/api/me", Some(&other), None).await;
    api.expect(200, M::GET, "/api/me", Some(&here), None).await;
    api.login("pw-user", NEW).await;
    for _ in 0..5 {
        api.expect(
            401,
            M::POST,
            "/api/me/password",
            Some(&here),
            change("wrong password!!", PASSWORD),
        )
        .await;
    }
    api.expect(
        429,
        M::POST,
        "/api/me/password",
        Some(&here),
        change(NEW, PASSWORD),
    )
    .await;

    // Recovery (issue 17 item 4): the sign-up's code sets a new password (200, the next
    // code back, the old sessions end); a malformed code is 400, a wrong one 401, then
    // 429. A new code with the password: 200, or 401 for a wrong password.
    let signed_up: types::PatientAccount = parse(
        &api.expect(201, M::POST, "/api/patients", None, creds("rc-user"))
            .await,
    );
    let before = api.login("rc-user", PASSWORD).await.token;
    let recover = |user: &str, code: &str, new: &str| {
        body(&types::Recover {
            username: user.into(),
            recovery_code: code.into(),
            new_password: new.into(),
        })
    };
    let r = api
        .expect(
            400,
            M::POST,
            "/api/recover",
            None,
            recover("rc-user", "abc", NEW),
        )
        .await;
    assert_eq!(
        parse::<types::ErrorBody>(&r).field.as_deref(),
        Some("recovery_code")
    );
    let code = signed_up.recovery_code.as_str();
    let r = api
        .expect(
            400,
            M::POST,
            "/api/recover",
            None,
            recover("rc-user", code, "short"),
        )
        .await;
    assert_eq!(
        parse::<types::ErrorBody>(&r).field.as_deref(),
        Some("new_password")
    );
    let next: types::RecoveryCode = parse(
        &api.expect(
            200,
            M::POST,
            "/api/recover",
            None,
            recover("rc-user", code, NEW),
        )
        .await,
    );
    assert_ne!(next.recovery_code, signed_up.recovery_code);
    api.expect(401, M::GET, "/api/me", Some(&before), None)
        .await;
    let after = api.login("rc-user", NEW).await.token;
    let fresh: types::RecoveryCode = parse(
        &api.expect(
            200,
            M::POST,
            "/api/me/recovery",
            Some(&after),
            body(&types::Password {
                password: NEW.into(),
            }),
        )
        .await,
    );
    api.expect(
        401,
        M::POST,
        "/api/me/recovery",
        Some(&after),
        body(&types::Password {
            password: "wrong password!!".into(),
        }),
    )
    .await;
    for _ in 0..4 {
        let r = api
            .expect(
                401,
                M::POST,
                "/api/recover",
                None,
                recover("rc-user", code, NEW),
            )
            .await;
        assert_eq!(parse::<types::ErrorBody>(&r).error, "invalid_recovery_code");
    }
    api.expect(
        429,
        M::POST,
        "/api/recover",
        None,
        recover("rc-user", &fresh.recovery_code, PASSWORD),
    )
    .await;
    // The same lock holds for a new code (one throttle per account and client).
    api.expect(
        429,
        M::POST,
        "/api/me/recovery",
        Some(&after),
        body(&types::Password {
            password: NEW.into(),
        }),
    )
    .await;

    // The patient stores, updates and reads; the provider is refused, then granted.
    let me: types::Me = parse(
        &api.expect(200, M::GET, "/api/me", Some(patient), None)
            .await,
    );
    assert_eq!(me.patient_id, Some(pid));
    api.expect(200, M::GET, "/api/providers", Some(patient), None)
        .await;
    api.expect(201, M::POST, "/api/providers", Some(admin), creds("dr-two"))
        .await;
    // The admin disables a provider: its login is refused (403) until it is enabled.
    let disable = "/api/providers/dr-two/disable";
    let enable = "/api/providers/dr-two/enable";
    let a: types::Account = parse(&api.expect(200, M::POST, disable, Some(admin), None).await);
    assert!(a.disabled);
    let r = api
        .expect(403, M::POST, "/api/session", None, creds("dr-two"))
        .await;
    assert!(parse::<types::ErrorBody>(&r).message.contains("disabled"));
    let a: types::Account = parse(&api.expect(200, M::POST, enable, Some(admin), None).await);
    assert!(!a.disabled);
    api.login("dr-two", PASSWORD).await;
    // The admin resets dr-two's password (200): the same address, the new password works.
    let reset = "/api/providers/dr-two/password";
    let pw = |p: &str| body(&types::Password { password: p.into() });
    let r = api
        .expect(400, M::POST, reset, Some(admin), pw("short"))
        .await;
    assert_eq!(
        parse::<types::ErrorBody>(&r).field.as_deref(),
        Some("password")
    );
    let b: types::Account = parse(&api.expect(200, M::POST, reset, Some(admin), pw(NEW)).await);
    assert_eq!((b.address, b.escrowed), (a.address, true));
    api.login("dr-two", NEW).await;
    api.expect(200, M::POST, reset, Some(admin), pw(PASSWORD))
        .await;
    api.expect(
        404,
        M::POST,
        "/api/providers/nobody/password",
        Some(admin),
        pw(NEW),
    )
    .await;
    api.expect(403, M::POST, reset, Some(provider), pw(NEW))
        .await;
    let r = api
        .expect(
            409,
            M::POST,
            "/api/providers/dr-old/password",
            Some(admin),
            pw(NEW),
        )
        .await;
    assert!(parse::<types::ErrorBody>(&r).message.contains("escrow"));

    // A provider changes its own directory entry (issue 17 item 2): 200, and the
    // directory shows it; a field too long is 400. One not on chain has no entry (404)
    // and cannot change it (403).
    let mine: types::Profile = parse(
        &api.expect(200, M::GET, "/api/me/profile", Some(provider), None)
            .await,
    );
    assert_eq!(mine.username, PROVIDER.0);
    let update = |name: &str| {
        body(&types::ProfileUpdate {
            display_name: name.into(),
            specialty: "Cardiology".into(),
        })
    };
    let r = api
        .expect(
            400,
            M::PUT,
            "/api/me/profile",
            Some(provider),
            update(&"x".repeat(101)),
        )
        .await;
    assert_eq!(
        parse::<types::ErrorBody>(&r).field.as_deref(),
        Some("display_name")
    );
    let changed: types::Profile = parse(
        &api.expect(
            200,
            M::PUT,
            "/api/me/profile",
            Some(provider),
            update("Dr Bob Jones"),
        )
        .await,
    );
    assert_eq!(
        (changed.display_name.as_str(), changed.address),
        ("Dr Bob Jones", mine.address)
    );
    let listed: Vec<types::Provider> = parse(
        &api.expect(200, M::GET, "/api/providers", Some(patient), None)
            .await,
    );
    assert!(listed.iter().any(|p| p.address == mine.address
        && p.display_name.as_deref() == Some("Dr Bob Jones")
        && p.specialty.as_deref() == Some("Cardiology")));
    let old = api.login("dr-old", PROVIDER.1).await.token;
    api.expect(404, M::GET, "/api/me/profile", Some(&old), None)
        .await;
    api.expect(403, M::PUT, "/api/me/profile", Some(&old), update("Dr Old"))
        .await;
    let r = api
        .expect(
            201,
            M::POST,
            "/api/records/form",
            Some(patient),
            body(&form()),
        )
        .await;
    let stored: types::Stored = parse(&r);
    let (id, cid) = (stored.record_id, stored.manifest_cid);
    let record = format!("/api/records/{id}");
    let records_of = format!("/api/patients/{pid}/records");
    api.expect(201, M::POST, "/api/records", Some(patient), bundle())
        .await;
    api.expect(200, M::PUT, &record, Some(patient), bundle())
        .await;
    let list: Vec<types::RecordSummary> = parse(
        &api.expect(200, M::GET, "/api/records", Some(patient), None)
            .await,
    );
    assert_eq!(list.len(), 2);
    api.expect(200, M::GET, &record, Some(patient), None).await;
    let v1: types::ReadRecord = parse(
        &api.expect(
            200,
            M::GET,
            &format!("{record}?version=1"),
            Some(patient),
            None,
        )
        .await,
    );
    assert_eq!(v1.form.unwrap().patient_name, "Jane Doe");
    // The patient's keystore file: for any wallet; not a provider's to download here.
    let r = api
        .expect(200, M::GET, "/api/me/keystore", Some(patient), None)
        .await;
    let file: Value = parse(&r);
    assert_eq!(file["version"], 3);
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"UTC--")
    );
    api.expect(403, M::GET, "/api/me/keystore", Some(provider), None)
        .await;
    // Bringing it to another sign-up: that key is taken (409); a broken one names the field.
    let taken =
        serde_json::json!({ "username": "pat-copy", "password": PASSWORD, "keystore": file });
    api.expect(409, M::POST, "/api/patients", None, Some(taken))
        .await;
    let broken = serde_json::json!({ "username": "pat-copy", "password": PASSWORD, "keystore": { "version": 3, "id": "x", "crypto": {} } });
    let r = api
        .expect(400, M::POST, "/api/patients", None, Some(broken))
        .await;
    assert_eq!(
        parse::<types::ErrorBody>(&r).field.as_deref(),
        Some("keystore")
    );
    api.expect(403, M::GET, &record, Some(provider), None).await;
    api.expect(403, M::GET, &records_of, Some(provider), None)
        .await;
    let grant = types::GrantRequest {
        provider: PROVIDER.0.into(),
        record_id: None,
        expires_at: in_days(30),
        write: true,
    };
    api.expect(201, M::POST, "/api/grants", Some(patient), body(&grant))
        .await;
    api.expect(200, M::GET, "/api/grants", Some(patient), None)
        .await;
    let shared: Vec<types::Shared> = parse(
        &api.expect(200, M::GET, "/api/shared", Some(provider), None)
            .await,
    );
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].record_id, None);
    assert_eq!(shared[0].write_until, Some(grant.expires_at));
    let read: Vec<types::ReadRecord> = parse(
        &api.expect(200, M::GET, &records_of, Some(provider), None)
            .await,
    );
    assert_eq!(read.len(), 2);
    let revoke_write = types::RevokeRequest {
        provider: PROVIDER.0.into(),
        record_id: None,
        write: true,
    };
    api.expect(
        200,
        M::POST,
        "/api/grants/revoke",
        Some(patient),
        body(&revoke_write),
    )
    .await;
    let revoke = types::RevokeRequest {
        provider: PROVIDER.0.into(),
        record_id: None,
        write: false,
    };
    api.expect(
        200,
        M::POST,
        "/api/grants/revoke",
        Some(patient),
        body(&revoke),
    )
    .await;
    let emergency = types::EmergencyRequest {
        patient_id: pid,
        reason: "unconscious in A&E".into(),
    };
    api.expect(
        200,
        M::POST,
        "/api/emergency",
        Some(provider),
        body(&emergency),
    )
    .await;
    let log: Vec<types::AccessLogEntry> = parse(
        &api.expect(200, M::GET, "/api/access-log", Some(patient), None)
            .await,
    );
    assert!(log.iter().any(|e| e.emergency));
    let grants: Vec<types::Grant> = parse(
        &api.expect(200, M::GET, "/api/grants", Some(patient), None)
            .await,
    );
    assert!(grants.iter().any(|g| g.emergency.is_some()), "{grants:?}");
    // The patient's export: every version of every record, the grants, the access log.
    let r = api
        .expect(200, M::GET, "/api/export", Some(patient), None)
        .await;
    let export = r.json();
    let entries = export["entry"].as_array().unwrap();
    let versions: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["resource"]["meta"]["versionId"].as_str())
        .collect();
    assert!(
        versions.contains("1") && versions.contains("2"),
        "{versions:?}"
    );
    for t in ["Consent", "AuditEvent", "Patient"] {
        assert!(
            entries.iter().any(|e| e["resource"]["resourceType"] == t),
            "{t} in the export"
        );
    }
    api.expect(200, M::GET, "/api/status", None, None).await;
    api.expect(200, M::GET, "/api/openapi.json", None, None)
        .await;
    let block = format!("/ipfs/{cid}?format=raw");
    api.expect(200, M::GET, &block, None, None).await;

    // 400: bodies that are not JSON, on every route that takes one; bad parameters; a
    // record that breaks the rules.
    for (method, uri, token) in [
        (M::POST, "/api/session", None),
        (M::POST, "/api/patients", None),
        (M::POST, "/api/me/password", Some(patient)),
        (M::POST, "/api/me/recovery", Some(patient)),
        (M::DELETE, "/api/account", Some(patient)),
        (M::POST, "/api/me/totp/confirm", Some(patient)),
        (M::DELETE, "/api/me/totp", Some(patient)),
        (M::PUT, "/api/me/profile", Some(provider)),
        (M::POST, "/api/recover", None),
        (M::POST, "/api/providers/dr-two/password", Some(admin)),
        (M::POST, "/api/providers", Some(admin)),
        (M::POST, "/api/records", Some(patient)),
        (M::POST, "/api/records/form", Some(patient)),
        (M::PUT, record.as_str(), Some(patient)),
        (M::POST, "/api/grants", Some(patient)),
        (M::POST, "/api/grants/revoke", Some(patient)),
        (M::POST, "/api/emergency", Some(provider)),
    ] {
        let req = raw(
            &method,
            uri,
            token,
            "application/json",
            b"{\"a\": ".to_vec(),
        );
        api.expect_raw(400, req).await;
    }
    api.expect(400, M::GET, "/api/records/abc", Some(patient), None)
        .await;
    api.expect(
        400,
        M::GET,
        "/api/patients/abc/records",
        Some(provider),
        None,
    )
    .await;
    api.expect(400, M::GET, &format!("/ipfs/{cid}"), None, None)
        .await;
    let bad = types::RecordForm {
        birth_date: "2999-01-01".into(),
        ..form()
    };
    let r = api
        .expect(400, M::POST, "/api/records/form", Some(patient), body(&bad))
        .await;
    assert!(parse::<types::ErrorBody>(&r).errors.is_some());

    // 401: every operation that needs a session, without one.
    for (path, method) in spec.operations() {
        let op = &spec.doc["paths"][&path][method.to_lowercase()];
        if op["security"].as_array().is_some_and(|s| s.is_empty()) {
            continue;
        }
        let uri = path
            .replace("{id}", &id.to_string())
            .replace("{patient_id}", &pid.to_string())
            .replace("{username}", "dr-two");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        api.expect(401, method, &uri, None, None).await;
    }
    // The public status, with a token that is not one.
    api.expect(401, M::GET, "/api/status", Some("not-a-token"), None)
        .await;

    // 403: each role-restricted operation, by the wrong role.
    let provider_grant = body(&grant);
    for (method, uri, token, body) in [
        (M::GET, "/api/records", provider, None),
        (M::POST, "/api/records", provider, bundle()),
        (M::POST, "/api/records/form", provider, body(&form())),
        (M::PUT, record.as_str(), provider, bundle()),
        (M::GET, records_of.as_str(), patient, None),
        (M::GET, "/api/grants", provider, None),
        (M::POST, "/api/grants", provider, provider_grant),
        (M::POST, "/api/grants/revoke", provider, body(&revoke)),
        (M::GET, "/api/access-log", provider, None),
        (M::GET, "/api/shared", patient, None),
        (M::POST, "/api/providers", patient, creds("dr-evil")),
        (M::POST, "/api/emergency", patient, body(&emergency)),
        (M::POST, disable, patient, None),
        (M::POST, enable, provider, None),
        (M::GET, "/api/me/profile", patient, None),
        (M::GET, "/api/export", provider, None),
    ] {
        api.expect(403, method, uri, Some(token), body).await;
    }

    // 404: no such version, record, patient (for break-glass), grant or block.
    api.expect(
        404,
        M::GET,
        &format!("{record}?version=99"),
        Some(patient),
        None,
    )
    .await;
    api.expect(404, M::PUT, "/api/records/999", Some(patient), bundle())
        .await;
    let no_grant = types::RevokeRequest {
        provider: "dr-two".into(),
        record_id: None,
        write: false,
    };
    api.expect(
        404,
        M::POST,
        "/api/grants/revoke",
        Some(patient),
        body(&no_grant),
    )
    .await;
    for uri in ["/api/providers/nobody/disable", "/api/providers/pat/enable"] {
        api.expect(404, M::POST, uri, Some(admin), None).await;
    }
    let nobody = types::EmergencyRequest {
        patient_id: 999,
        reason: "unconscious".into(),
    };
    api.expect(
        404,
        M::POST,
        "/api/emergency",
        Some(provider),
        body(&nobody),
    )
    .await;
    let mut other = cid.clone().into_bytes();
    let mid = other.len() / 2;
    other[mid] = if other[mid] == b'a' { b'b' } else { b'a' };
    let other = String::from_utf8(other).unwrap();
    api.expect(
        404,
        M::GET,
        &format!("/ipfs/{other}?format=raw"),
        None,
        None,
    )
    .await;

    // 409: taken usernames.
    api.expect(409, M::POST, "/api/patients", None, creds("pat"))
        .await;
    api.expect(
        409,
        M::POST,
        "/api/providers",
        Some(admin),
        creds(PROVIDER.0),
    )
    .await;

    // 413 and 415 on every route that takes a body (any session gets that far).
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(ehr_api::MAX_BODY_BYTES));
    for (path, method) in spec.operations() {
        let op = &spec.doc["paths"][&path][method.to_lowercase()];
        // (An attachment's body is the file itself: its limit and types are its own.)
        if op["requestBody"]["content"]
            .get("application/json")
            .is_none()
        {
            continue;
        }
        let uri = path
            .replace("{id}", &id.to_string())
            .replace("{username}", "dr-two");
        let token = (!op["security"].as_array().is_some_and(|s| s.is_empty())).then_some(patient);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let req = raw(
            &method,
            &uri,
            token,
            "application/json",
            big.clone().into_bytes(),
        );
        api.expect_raw(413, req).await;
        let req = raw(&method, &uri, token, "text/plain", b"{}".to_vec());
        api.expect_raw(415, req).await;
    }

    // Attachments: 201, then 200 whole and 206 for a range, 416 past the end; 400 for a
    // type the bytes are not, 413 for a declared length over the limit, 401 without a
    // token, 403 for a provider attaching or reading without a grant, 404 for no such one.
    let pdf = {
        let mut f = b"%PDF-1.7\n".to_vec();
        f.extend((0..3_000_000u32).map(|i| (i * 7 % 251) as u8));
        f
    };
    let attachments = format!("/api/records/{id}/attachments?title=scan.pdf");
    let r = api
        .expect_raw(
            201,
            raw(
                &M::POST,
                &attachments,
                Some(patient),
                "application/pdf",
                pdf.clone(),
            ),
        )
        .await;
    let added: types::AttachmentStored = parse(&r);
    assert_eq!((added.attachment, added.size), (1, pdf.len() as u64));
    let first = format!("/api/records/{id}/attachments/1");
    let r = api.expect(200, M::GET, &first, Some(patient), None).await;
    assert!(r.bytes[..] == pdf[..], "the file back");
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("inline; filename=\"scan.pdf\"")
    );
    let read: types::ReadRecord =
        parse(&api.expect(200, M::GET, &record, Some(patient), None).await);
    assert_eq!(read.attachments.len(), 1);
    assert_eq!(read.attachments[0].number, 1);
    let ranged = |range: &str| {
        let mut req = raw(
            &M::GET,
            &first,
            Some(patient),
            "application/json",
            Vec::new(),
        );
        req.headers_mut()
            .insert(header::RANGE, range.parse().unwrap());
        req
    };
    let r = api.expect_raw(206, ranged("bytes=1048570-1048589")).await;
    assert!(r.bytes[..] == pdf[1_048_570..1_048_590]);
    assert_eq!(
        r.headers[header::CONTENT_RANGE],
        format!("bytes 1048570-1048589/{}", pdf.len()).as_str()
    );
    let r = api.expect_raw(416, ranged("bytes=9999999-")).await;
    assert_eq!(
        r.headers[header::CONTENT_RANGE],
        format!("bytes */{}", pdf.len()).as_str()
    );
    let png = b"\x89PNG\r\n\x1a\n0000".to_vec();
    let r = api
        .expect_raw(
            400,
            raw(
                &M::POST,
                &attachments,
                Some(patient),
                "application/pdf",
                png.clone(),
            ),
        )
        .await;
    assert_eq!(parse::<types::ErrorBody>(&r).field.as_deref(), Some("body"));
    let mut huge = raw(
        &M::POST,
        &attachments,
        Some(patient),
        "application/pdf",
        png.clone(),
    );
    huge.headers_mut()
        .insert(header::CONTENT_LENGTH, "3000000000".parse().unwrap());
    api.expect_raw(413, huge).await;
    api.expect_raw(
        401,
        raw(&M::POST, &attachments, None, "application/pdf", pdf.clone()),
    )
    .await;
    api.expect_raw(
        403,
        raw(
            &M::POST,
            &attachments,
            Some(provider),
            "application/pdf",
            pdf.clone(),
        ),
    )
    .await;
    api.expect(401, M::GET, &first, None, None).await;
    api.expect(
        400,
        M::GET,
        "/api/records/abc/attachments/1",
        Some(patient),
        None,
    )
    .await;
    api.expect(
        404,
        M::GET,
        &format!("/api/records/{id}/attachments/9"),
        Some(patient),
        None,
    )
    .await;

    // 503: every storage node down (the provider holds a grant again).
    api.expect(201, M::POST, "/api/grants", Some(patient), body(&grant))
        .await;
    faults.nodes_down.store(true, Ordering::SeqCst);
    api.expect(
        503,
        M::POST,
        "/api/records/form",
        Some(patient),
        body(&form()),
    )
    .await;
    api.expect(503, M::POST, "/api/records", Some(patient), bundle())
        .await;
    api.expect(503, M::PUT, &record, Some(patient), bundle())
        .await;
    api.expect(503, M::GET, &record, Some(patient), None).await;
    api.expect(503, M::GET, &records_of, Some(provider), None)
        .await;
    api.expect(
        503,
        M::POST,
        "/api/emergency",
        Some(provider),
        body(&emergency),
    )
    .await;
    api.expect(503, M::GET, &block, None, None).await;
    api.expect(503, M::GET, &first, Some(patient), None).await;
    api.expect_raw(
        503,
        raw(
            &M::POST,
            &attachments,
            Some(patient),
            "application/pdf",
            pdf.clone(),
        ),
    )
    .await;
    let profile_update = body(&types::ProfileUpdate {
        display_name: "Dr Bob".into(),
        specialty: String::new(),
    });
    api.expect(
        503,
        M::PUT,
        "/api/me/profile",
        Some(provider),
        profile_update.clone(),
    )
    .await;
    api.expect(503, M::GET, "/api/export", Some(patient), None)
        .await;
    let status: types::Status = parse(
        &api.expect(200, M::GET, "/api/status", Some(admin), None)
            .await,
    );
    assert_eq!(status.reachable, 0);
    assert!(status.nodes.unwrap().iter().all(|n| !n.reachable));
    faults.nodes_down.store(false, Ordering::SeqCst);

    // 500: the chain down; the cause is logged, the client told "internal error".
    faults.chain_down.store(true, Ordering::SeqCst);
    let patient_creds = body(&types::Credentials {
        username: "pat".into(),
        password: PASSWORD.into(),
    });
    for (method, uri, token, body) in [
        (M::POST, "/api/session", None, patient_creds),
        (M::GET, "/api/me", Some(patient), None),
        (M::POST, "/api/patients", None, creds("pat-late")),
        (M::POST, "/api/providers", Some(admin), creds("dr-late")),
        (M::GET, "/api/records", Some(patient), None),
        (M::POST, "/api/records", Some(patient), bundle()),
        (M::POST, "/api/records/form", Some(patient), body(&form())),
        (M::GET, record.as_str(), Some(patient), None),
        (M::PUT, record.as_str(), Some(patient), bundle()),
        (M::GET, records_of.as_str(), Some(provider), None),
        (M::GET, "/api/grants", Some(patient), None),
        (M::POST, "/api/grants", Some(patient), body(&grant)),
        (M::POST, "/api/grants/revoke", Some(patient), body(&revoke)),
        (M::POST, "/api/emergency", Some(provider), body(&emergency)),
        (M::GET, "/api/access-log", Some(patient), None),
        (M::GET, "/api/status", Some(admin), None),
        (M::POST, disable, Some(admin), None),
        (M::POST, enable, Some(admin), None),
        (M::GET, "/api/me/profile", Some(provider), None),
        (M::PUT, "/api/me/profile", Some(provider), profile_update),
        (M::GET, "/api/export", Some(patient), None),
    ] {
        let r = api.expect(500, method, uri, token, body).await;
        assert_eq!(parse::<types::ErrorBody>(&r).message, "internal error");
    }
    api.expect(500, M::GET, &first, Some(patient), None).await;
    api.expect_raw(
        500,
        raw(
            &M::POST,
            &attachments,
            Some(patient),
            "application/pdf",
            pdf.clone(),
        ),
    )
    .await;
    faults.chain_down.store(false, Ordering::SeqCst);

    // 401 and 429 at sign-in: wrong passwords, then the user is locked out.
    let wrong = body(&types::Credentials {
        username: PROVIDER.0.into(),
        password: "wrong password!!".into(),
    });
    for _ in 0..5 {
        api.expect(401, M::POST, "/api/session", None, wrong.clone())
            .await;
    }
    let right = body(&types::Credentials {
        username: PROVIDER.0.into(),
        password: PROVIDER.1.into(),
    });
    let r = api.expect(429, M::POST, "/api/session", None, right).await;
    assert!(parse::<types::ErrorBody>(&r).retry_after.is_some());
    // 429 at sign-up: one per client per hour.
    let throttled = Api {
        app: router(AppState::new(service.clone()).with_signup_limit(1, Duration::from_secs(3600))),
        spec: spec.clone(),
    };
    throttled
        .expect(201, M::POST, "/api/patients", None, creds("pat-a"))
        .await;
    throttled
        .expect(429, M::POST, "/api/patients", None, creds("pat-b"))
        .await;

    // Two-factor (issue 18 item 1), on a service of its own (its throttling too).
    let dir2 = tempfile::tempdir().unwrap();
    let tf = Api {
        app: router(AppState::new(self::service(dir2.path(), &faults).await)),
        spec: spec.clone(),
    };
    tf.expect(201, M::POST, "/api/patients", None, creds("tf-a"))
        .await;
    tf.expect(201, M::POST, "/api/patients", None, creds("tf-b"))
        .await;
    let a = tf.login("tf-a", PASSWORD).await.token;
    let code = |c: &str| body(&types::TotpCode { code: c.into() });
    tf.expect(
        409,
        M::POST,
        "/api/me/totp/confirm",
        Some(&a),
        code("123456"),
    )
    .await;
    let setup: types::TotpSetup = parse(
        &tf.expect(200, M::POST, "/api/me/totp", Some(&a), None)
            .await,
    );
    assert!(setup.qr_svg.contains("<svg") && setup.otpauth_uri.contains(&setup.secret));
    let key = ehr_records::accounts::totp::unbase32(&setup.secret).unwrap();
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let at = |t: u64| format!("{:06}", ehr_records::accounts::totp::totp(&key, t, 6));
    let wrong = format!(
        "{:06}",
        (at(now()).parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    let r = tf
        .expect(401, M::POST, "/api/me/totp/confirm", Some(&a), code(&wrong))
        .await;
    assert_eq!(parse::<types::ErrorBody>(&r).error, "invalid_totp");
    let backups: types::BackupCodes = parse(
        &tf.expect(
            200,
            M::POST,
            "/api/me/totp/confirm",
            Some(&a),
            code(&at(now())),
        )
        .await,
    );
    tf.expect(409, M::POST, "/api/me/totp", Some(&a), None)
        .await;
    let login = |c: Option<&str>| {
        body(&types::Login {
            username: "tf-a".into(),
            password: PASSWORD.into(),
            code: c.map(str::to_owned),
        })
    };
    let r = tf
        .expect(401, M::POST, "/api/session", None, login(None))
        .await;
    assert_eq!(parse::<types::ErrorBody>(&r).error, "totp_required");
    let r = tf
        .expect(401, M::POST, "/api/session", None, login(Some(&wrong)))
        .await;
    assert_eq!(parse::<types::ErrorBody>(&r).error, "invalid_totp");
    let s: types::Session = parse(
        &tf.expect(
            200,
            M::POST,
            "/api/session",
            None,
            login(Some(&backups.backup_codes[0])),
        )
        .await,
    );
    let off = |c: &str| {
        body(&types::TotpDisable {
            password: PASSWORD.into(),
            code: c.into(),
        })
    };
    tf.expect(401, M::DELETE, "/api/me/totp", Some(&s.token), off(&wrong))
        .await;
    tf.expect(
        204,
        M::DELETE,
        "/api/me/totp",
        Some(&s.token),
        off(&backups.backup_codes[1]),
    )
    .await;
    tf.expect(
        409,
        M::DELETE,
        "/api/me/totp",
        Some(&s.token),
        off(&backups.backup_codes[2]),
    )
    .await;
    tf.expect(200, M::POST, "/api/session", None, login(None))
        .await;
    // 429: guessing the confirming code, then turning off, locked out alike.
    let b = tf.login("tf-b", PASSWORD).await.token;
    tf.expect(200, M::POST, "/api/me/totp", Some(&b), None)
        .await;
    for _ in 0..5 {
        tf.expect(
            401,
            M::POST,
            "/api/me/totp/confirm",
            Some(&b),
            code("000000"),
        )
        .await;
    }
    tf.expect(
        429,
        M::POST,
        "/api/me/totp/confirm",
        Some(&b),
        code("000000"),
    )
    .await;
    tf.expect(429, M::DELETE, "/api/me/totp", Some(&b), off("000000"))
        .await;

    // Leaving (issue 18 item 3), on a service of its own: 403 for a provider, 401 for a
    // wrong password, 503 with the nodes down and 500 with the chain down (nothing changes),
    // then 200 with the receipt; reads afterwards 410 "erased"; 429 after five wrong ones.
    let dir3 = tempfile::tempdir().unwrap();
    let faults3 = Arc::new(Faults::default());
    let er = Api {
        app: router(AppState::new(self::service(dir3.path(), &faults3).await)),
        spec: spec.clone(),
    };
    let r = er
        .expect(201, M::POST, "/api/patients", None, creds("leaver"))
        .await;
    let leaver_pid = parse::<types::PatientAccount>(&r).patient_id;
    er.expect(201, M::POST, "/api/patients", None, creds("leaver-b"))
        .await;
    let leaver = er.login("leaver", PASSWORD).await.token;
    let doctor = er.login(PROVIDER.0, PROVIDER.1).await.token;
    let stored: types::Stored = parse(
        &er.expect(201, M::POST, "/api/records", Some(&leaver), bundle())
            .await,
    );
    let leaver_record = format!("/api/records/{}", stored.record_id);
    er.expect(200, M::PUT, &leaver_record, Some(&leaver), bundle())
        .await;
    // A provider without a grant reads no attachment (403); after erasure nobody does (410).
    let leaver_file = format!("{leaver_record}/attachments/1");
    er.expect_raw(
        201,
        raw(
            &M::POST,
            &format!("{leaver_record}/attachments"),
            Some(&leaver),
            "image/png",
            b"\x89PNG\r\n\x1a\n0000".to_vec(),
        ),
    )
    .await;
    er.expect(403, M::GET, &leaver_file, Some(&doctor), None)
        .await;
    let all = types::GrantRequest {
        provider: PROVIDER.0.into(),
        record_id: None,
        expires_at: in_days(30),
        write: false,
    };
    er.expect(201, M::POST, "/api/grants", Some(&leaver), body(&all))
        .await;
    er.expect(200, M::GET, &leaver_record, Some(&doctor), None)
        .await;
    let r = er
        .expect(200, M::GET, &leaver_file, Some(&doctor), None)
        .await;
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    let leave = |password: &str| {
        body(&types::Password {
            password: password.into(),
        })
    };
    er.expect(
        403,
        M::DELETE,
        "/api/account",
        Some(&doctor),
        leave(PROVIDER.1),
    )
    .await;
    er.expect(401, M::DELETE, "/api/account", None, leave(PASSWORD))
        .await;
    let r = er
        .expect(
            401,
            M::DELETE,
            "/api/account",
            Some(&leaver),
            leave("wrong password!!"),
        )
        .await;
    assert_eq!(parse::<types::ErrorBody>(&r).error, "invalid_credentials");
    faults3.nodes_down.store(true, Ordering::SeqCst);
    er.expect(
        503,
        M::DELETE,
        "/api/account",
        Some(&leaver),
        leave(PASSWORD),
    )
    .await;
    faults3.nodes_down.store(false, Ordering::SeqCst);
    faults3.chain_down.store(true, Ordering::SeqCst);
    er.expect(
        500,
        M::DELETE,
        "/api/account",
        Some(&leaver),
        leave(PASSWORD),
    )
    .await;
    faults3.chain_down.store(false, Ordering::SeqCst);
    er.expect(200, M::GET, &leaver_record, Some(&doctor), None)
        .await;
    let receipt: types::ErasureReceipt = parse(
        &er.expect(
            200,
            M::DELETE,
            "/api/account",
            Some(&leaver),
            leave(PASSWORD),
        )
        .await,
    );
    assert_eq!(
        receipt.records,
        vec![types::ErasedRecord {
            record_id: stored.record_id,
            // The attachment made version 3.
            versions: vec![1, 2, 3],
        }]
    );
    assert_eq!(receipt.nodes.len(), 5);
    assert!(
        receipt
            .nodes
            .iter()
            .all(|n| n.confirmed && n.error.is_none()),
        "{:?}",
        receipt.nodes
    );
    assert!(receipt.nodes.iter().map(|n| n.blocks_deleted).sum::<u32>() > 0);
    assert!(receipt.tx_hash.is_some());
    // The account is gone: its session ends, its login fails.
    er.expect(401, M::GET, "/api/me", Some(&leaver), None).await;
    er.expect(401, M::POST, "/api/session", None, creds("leaver"))
        .await;
    let r = er
        .expect(410, M::GET, &leaver_record, Some(&doctor), None)
        .await;
    assert_eq!(parse::<types::ErrorBody>(&r).error, "erased");
    er.expect(410, M::GET, &leaver_file, Some(&doctor), None)
        .await;
    let r = er
        .expect(
            410,
            M::GET,
            &format!("/api/patients/{leaver_pid}/records"),
            Some(&doctor),
            None,
        )
        .await;
    assert_eq!(parse::<types::ErrorBody>(&r).error, "erased");
    let glass = types::EmergencyRequest {
        patient_id: leaver_pid,
        reason: "unconscious".into(),
    };
    let r = er
        .expect(410, M::POST, "/api/emergency", Some(&doctor), body(&glass))
        .await;
    assert_eq!(parse::<types::ErrorBody>(&r).error, "erased");
    let b = er.login("leaver-b", PASSWORD).await.token;
    for _ in 0..5 {
        er.expect(
            401,
            M::DELETE,
            "/api/account",
            Some(&b),
            leave("wrong password!!"),
        )
        .await;
    }
    er.expect(429, M::DELETE, "/api/account", Some(&b), leave(PASSWORD))
        .await;
    er.expect(200, M::GET, "/api/me", Some(&b), None).await;

    // Every documented status was produced, and nothing else (each reply was checked).
    let seen = spec.seen.lock().unwrap().clone();
    let documented = spec.documented();
    let missing: Vec<_> = documented.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "documented but never produced: {missing:?}"
    );
}

/// A body that breaks its schema fails validation: the check is not vacuous.
#[test]
fn the_validator_rejects_what_the_document_does_not_allow() {
    let spec = Spec::load();
    let at = "/components/schemas/Stored";
    let good = json!({
        "record_id": 1, "version": 1, "manifest_cid": "bafy", "block_number": 2,
        "tx_hash": format!("0x{}", "ab".repeat(32)),
    });
    spec.validate(at, &good).unwrap();
    for bad in [
        json!({ "record_id": 1 }),
        json!({ "record_id": "1", "version": 1, "manifest_cid": "bafy", "block_number": 2,
                "tx_hash": format!("0x{}", "ab".repeat(32)) }),
        {
            let mut extra = good.clone();
            extra["extra"] = json!(true);
            extra
        },
    ] {
        assert!(spec.validate(at, &bad).is_err(), "{bad}");
    }
    let array = "/paths/~1api~1records/get/responses/200/content/application~1json/schema";
    assert!(spec.validate(array, &json!([{ "record_id": 1 }])).is_err());
    spec.validate(array, &json!([])).unwrap();
}

/// `openapi.json` is exactly what `openapi.py` prints.
#[test]
fn openapi_json_is_what_openapi_py_generates() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("python3")
        .arg(format!("{dir}/openapi.py"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout).unwrap() == ehr_api::OPENAPI_JSON,
        "openapi.json is stale: run python3 crates/api/openapi.py > crates/api/openapi.json"
    );
}
