//! The FHIR R4 REST API at `/fhir` (4.0.1, `application/fhir+json`), over the records
//! service: every resource comes out of a record read through the audited path (the access
//! logged on chain before a byte leaves), so a search over three records logs three reads.
//!
//! Ids: a patient is `Patient/{patient ID}` (the ID SecureEHR gives each patient); every
//! other resource is `{Type}/{record}-{entry}`, its record's current version and its place
//! in that bundle, and references between the resources of one record are rewritten to
//! those ids. Errors are `OperationOutcome`s with the status of the JSON API's error and,
//! for a record that failed validation, one issue per field with its `expression`.
//!
//! A bearer is a session token (its role's full rights) or a SMART-scoped token minted from
//! one ([`scopes`]); every handler checks the scope before it reads or writes.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::Error;
use crate::extract::Auth;
use crate::svc;

/// The media type of every body here.
pub const FHIR_JSON: &str = "application/fhir+json";
/// Resources on one page of a search when `_count` is not given, and the most it may ask.
pub const DEFAULT_COUNT: usize = 50;
/// See [`DEFAULT_COUNT`].
pub const MAX_COUNT: usize = 1000;

/// The resource types the API serves (those a record holds).
pub const TYPES: &[&str] = &[
    "Patient",
    "Condition",
    "Observation",
    "AllergyIntolerance",
    "MedicationStatement",
    "MedicationRequest",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "Encounter",
    "Practitioner",
    "Organization",
    "Provenance",
];

/// The search parameters every type takes besides `patient`.
const SEARCH_PARAMS: &[(&str, &str)] = &[
    ("patient", "reference"),
    ("code", "token"),
    ("category", "token"),
    ("date", "date"),
    ("_count", "number"),
];

mod consent;
mod export;
pub(crate) mod scopes;
mod search;
mod write;

use search::{SearchQuery, everything, page, search};

pub use consent::{ACCOUNT_SYSTEM, PROVIDER_SYSTEM, RECORD_SYSTEM};
pub(crate) use export::export;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/fhir/metadata", get(metadata))
        .route(
            "/fhir/Consent",
            get(consent::list_consents).post(consent::post_consent),
        )
        .route("/fhir/AuditEvent", get(consent::list_audit_events))
        .route("/fhir/auth/token", axum::routing::post(mint_token))
        .route("/fhir", bundle_route())
        // Clients join the base URL and an empty path with a slash.
        .route("/fhir/", bundle_route())
        .route("/fhir/Patient/{id}/$everything", get(everything))
        .route("/fhir/{resource_type}", get(search))
        .route("/fhir/{resource_type}/{id}", get(read))
}

/// `POST /fhir`, with a record's body limit of its own.
fn bundle_route() -> axum::routing::MethodRouter<AppState> {
    axum::routing::post(write::post_bundle).layer(axum::extract::DefaultBodyLimit::max(
        crate::FHIR_MAX_BODY_BYTES,
    ))
}

/// The body, or the error as an OperationOutcome (413 over `limit`).
fn body_or(
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
) -> Result<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Outcome(Error::PayloadTooLargeFor(limit))
        } else {
            Outcome(Error::InvalidInput {
                field: "body".into(),
                message: "could not be read".into(),
            })
        }
    })
}

/// An error as an `OperationOutcome`.
pub(crate) struct Outcome(Error);

impl From<Error> for Outcome {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<svc::Error> for Outcome {
    fn from(e: svc::Error) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = e.status();
        let code = match status {
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::UNAUTHORIZED => "login",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not-found",
            // FHIR's answer for a resource that existed and is gone (410).
            StatusCode::GONE => "deleted",
            StatusCode::PAYLOAD_TOO_LARGE => "too-costly",
            StatusCode::SERVICE_UNAVAILABLE => "transient",
            _ => "exception",
        };
        let issue: Vec<Value> = match &e {
            Error::InvalidRecord(errors) => errors
                .errors()
                .iter()
                .map(|f| {
                    let expression = if f.path.is_empty() {
                        "Bundle".to_owned()
                    } else {
                        format!("Bundle.{}", f.path)
                    };
                    json!({ "severity": "error", "code": "invalid",
                            "diagnostics": f.rule.to_string(), "expression": [expression] })
                })
                .collect(),
            other => {
                // The JSON API's message (a 5xx's is only "internal error").
                let text = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE
                {
                    "internal error".to_owned()
                } else {
                    other.to_string()
                };
                let mut i = json!({ "severity": "error", "code": code, "diagnostics": text });
                if let Some(field) = other.field() {
                    i["expression"] = json!([field]);
                }
                vec![i]
            }
        };
        let mut response = e.into_response();
        let body = json!({ "resourceType": "OperationOutcome", "issue": issue });
        *response.body_mut() = axum::body::Body::from(body.to_string());
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        response.headers_mut().remove(header::CONTENT_LENGTH);
        response
    }
}

type Result<T> = std::result::Result<T, Outcome>;

/// A FHIR JSON response.
fn fhir(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        body.to_string(),
    )
        .into_response()
}

async fn metadata() -> Response {
    let search: Vec<Value> = SEARCH_PARAMS
        .iter()
        .map(|(name, ty)| json!({ "name": name, "type": ty }))
        .collect();
    let resources: Vec<Value> = TYPES
        .iter()
        .map(|t| {
            let mut r = json!({
                "type": t,
                "interaction": [ { "code": "read" }, { "code": "search-type" } ],
                "searchParam": search,
            });
            if *t == "Patient" {
                r["operation"] = json!([{ "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything" }]);
                r["searchParam"] = json!([{ "name": "_count", "type": "number" }]);
            }
            r
        })
        .chain([
            json!({
                "type": "Consent",
                "interaction": [ { "code": "search-type" }, { "code": "create" } ],
                "searchParam": [ { "name": "patient", "type": "reference" }, { "name": "_count", "type": "number" } ],
            }),
            json!({
                "type": "AuditEvent",
                "interaction": [ { "code": "search-type" } ],
                "searchParam": [ { "name": "patient", "type": "reference" }, { "name": "_count", "type": "number" } ],
            }),
        ])
        .collect();
    fhir(
        StatusCode::OK,
        json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-12-01",
            "kind": "instance",
            "software": { "name": "SecureEHR", "version": env!("CARGO_PKG_VERSION") },
            "implementation": { "description": "SecureEHR: every read is logged on chain before it is answered" },
            "fhirVersion": "4.0.1",
            "format": [FHIR_JSON, "json"],
            "rest": [{
                "mode": "server",
                "security": {
                    "service": [{ "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR" }] }],
                    "description": "Authorization: Bearer with a session token from POST /api/session (its role's full rights), or a token narrowed to SMART v2 scopes (patient/Observation.rs, user/*.cruds, …) minted with POST /fhir/auth/token (scope=…)"
                },
                "resource": resources,
                "interaction": [ { "code": "transaction" } ],
            }],
        }),
    )
}

/// The caller: a patient (who sees themself) or a provider (who sees what was shared).
enum Caller {
    Patient(svc::PatientSession),
    Provider(svc::ProviderSession),
}

/// A `/fhir` bearer: a session token (its role's full rights) or a SMART-scoped token
/// minted from one (`scopes`).
pub(crate) struct FhirAuth {
    auth: Auth,
    scopes: Option<scopes::Scopes>,
}

impl axum::extract::FromRequestParts<AppState> for FhirAuth {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Error> {
        let scoped = crate::extract::bearer(parts)
            .flatten()
            .and_then(|t| state.scoped.resolve(t));
        if let Some((session_token, scopes)) = scoped {
            let session = state
                .service()
                .authenticate(&session_token)
                .map_err(|_| Error::Unauthenticated)?;
            return Ok(Self {
                auth: Auth {
                    session,
                    token: session_token,
                },
                scopes: Some(scopes),
            });
        }
        let auth =
            <Auth as axum::extract::FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await?;
        Ok(Self { auth, scopes: None })
    }
}

/// The caller, once its token allows `perm` (`c r u d s`) on `resource_type`.
fn caller(
    auth: std::result::Result<FhirAuth, Error>,
    resource_type: &str,
    perm: char,
) -> Result<Caller> {
    let a = auth?;
    if let Some(s) = &a.scopes
        && !s.allows(resource_type, perm)
    {
        return Err(Error::Forbidden(format!(
            "the token's scope ({}) does not allow '{perm}' on {resource_type}",
            s.text
        ))
        .into());
    }
    who(a.auth)
}

fn who(auth: Auth) -> Result<Caller> {
    if let Ok(p) = auth.patient() {
        return Ok(Caller::Patient(p));
    }
    if let Ok(p) = auth.provider() {
        return Ok(Caller::Provider(p));
    }
    Err(Error::Forbidden("the FHIR API serves patients and providers".into()).into())
}

/// `POST /fhir/auth/token` (`application/x-www-form-urlencoded`, `scope=…`), with a session
/// token: a token for FHIR clients narrowed to those SMART scopes, as an OAuth token response.
async fn mint_token(
    State(state): State<AppState>,
    auth: std::result::Result<FhirAuth, Error>,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response> {
    let a = auth?;
    let body = body_or(body, crate::MAX_BODY_BYTES)?;
    if a.scopes.is_some() {
        return Err(Error::Forbidden("a scoped token cannot mint tokens".into()).into());
    }
    #[derive(serde::Deserialize)]
    struct Form {
        scope: Option<String>,
    }
    let form: Form = serde_urlencoded::from_bytes(&body).map_err(|_| Error::InvalidInput {
        field: "body".into(),
        message: "expected a form: scope=…".into(),
    })?;
    let scope = form.scope.ok_or_else(|| Error::InvalidInput {
        field: "scope".into(),
        message: "missing".into(),
    })?;
    let scopes = scopes::Scopes::parse(&scope).map_err(|message| Error::InvalidInput {
        field: "scope".into(),
        message,
    })?;
    let remaining = a
        .auth
        .session
        .session()
        .expires_at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    let ttl = remaining.min(scopes::SCOPED_TOKEN_TTL);
    let text = scopes.text.clone();
    let token = state.scoped.mint(&a.auth.token, scopes, ttl);
    let mut body = json!({
        "access_token": token,
        "token_type": "Bearer",
        "scope": text,
        "expires_in": ttl.as_secs(),
    });
    if let Caller::Patient(p) = who(a.auth)?
        && let Some(pid) = state.service().patient_id(p.address()).await?
    {
        body["patient"] = json!(pid.to_string());
    }
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response())
}

/// One exposed resource: type, API id, JSON (with its id and references rewritten).
struct Exposed {
    resource_type: String,
    id: String,
    resource: Value,
}

/// Every record of patient `patient_id` the caller may read, read now (each read logged),
/// as exposed resources; the patient's own resource once, from the newest record.
async fn patient_resources(
    state: &AppState,
    caller: &Caller,
    patient_id: u64,
) -> Result<Vec<Exposed>> {
    let svc = state.service();
    let reads = match caller {
        Caller::Patient(p) => {
            if svc.patient_id(p.address()).await? != Some(patient_id) {
                return Err(Error::NotFound(format!("Patient/{patient_id}")).into());
            }
            let mut reads = Vec::new();
            for r in svc.my_records(p).await? {
                reads.push(svc.read_record(p, r.record_id, None).await?);
            }
            reads
        }
        Caller::Provider(p) => match svc.patient_records(p, patient_id).await {
            Ok(reads) => reads,
            Err(svc::Error::NoAccessToPatient { .. }) => {
                return Err(Error::NotFound(format!("Patient/{patient_id}")).into());
            }
            Err(e) => return Err(e.into()),
        },
    };
    let mut out = Vec::new();
    let mut patient: Option<Exposed> = None;
    for read in reads {
        for e in expose(read.record_id, patient_id, &read.bundle) {
            if e.resource_type == "Patient" {
                // The newest record's Patient (reads come in record order).
                patient = Some(e);
            } else {
                out.push(e);
            }
        }
    }
    if let Some(p) = patient {
        out.insert(0, p);
    }
    Ok(out)
}

/// A record's resources with API ids: `Patient/{patient_id}`, `{Type}/{record}-{entry}`;
/// references among them (by `Type/id` or `fullUrl`) rewritten to those.
fn expose(record_id: u64, patient_id: u64, bundle: &Value) -> Vec<Exposed> {
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut ids = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let r = &e["resource"];
        let t = r["resourceType"].as_str().unwrap_or_default().to_owned();
        let id = svc::fhir::server_id(&t, record_id, patient_id, i);
        let new = format!("{t}/{id}");
        if let Some(old) = r["id"].as_str() {
            names.insert(format!("{t}/{old}"), new.clone());
        }
        if let Some(url) = e["fullUrl"].as_str() {
            names.insert(url.to_owned(), new.clone());
        }
        ids.push((t, id));
    }
    entries
        .into_iter()
        .zip(ids)
        .map(|(mut e, (resource_type, id))| {
            let mut resource = e["resource"].take();
            resource["id"] = json!(id);
            rewrite(&mut resource, &names, 0);
            Exposed {
                resource_type,
                id,
                resource,
            }
        })
        .collect()
}

/// Rewrites every `reference` string found in `names` (not inside `contained`).
fn rewrite(v: &mut Value, names: &HashMap<String, String>, depth: usize) {
    if depth > 32 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "contained" {
                    continue;
                }
                if k == "reference"
                    && let Some(new) = child.as_str().and_then(|s| names.get(s))
                {
                    *child = json!(new);
                    continue;
                }
                rewrite(child, names, depth + 1);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, names, depth + 1)),
        _ => {}
    }
}

/// The API's absolute base URL as the client reached it (`Host`; `https` when the server is
/// reached over TLS), for `fullUrl`s and links.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    format!("{}/fhir", crate::origin(state, headers))
}

fn known_type(resource_type: &str) -> Result<()> {
    if TYPES.contains(&resource_type) {
        Ok(())
    } else {
        Err(Error::NotFound(format!("resource type {resource_type}")).into())
    }
}

fn parse_id(s: &str, what: &str) -> Result<u64> {
    s.parse().map_err(|_| {
        Error::InvalidInput {
            field: what.to_owned(),
            message: "expected a number".into(),
        }
        .into()
    })
}

async fn read(
    State(state): State<AppState>,
    auth: std::result::Result<FhirAuth, Error>,
    Path((resource_type, id)): Path<(String, String)>,
) -> Result<Response> {
    known_type(&resource_type)?;
    let caller = caller(auth, &resource_type, 'r')?;
    let not_found = || Outcome(Error::NotFound(format!("{resource_type}/{id}")));
    let (patient_id, record) = if resource_type == "Patient" {
        (parse_id(&id, "id")?, None)
    } else {
        let (record, entry) = id.split_once('-').ok_or_else(not_found)?;
        let record = record.parse::<u64>().map_err(|_| not_found())?;
        let entry = entry.parse::<usize>().map_err(|_| not_found())?;
        let svc = state.service();
        let read = match &caller {
            Caller::Patient(p) => svc.read_record(p, record, None).await,
            Caller::Provider(p) => svc.read_record(p, record, None).await,
        }
        .map_err(|e| match e {
            svc::Error::NotFound(_) => not_found(),
            other => other.into(),
        })?;
        (read.patient_id, Some((read, entry)))
    };
    match record {
        None => patient_resources(&state, &caller, patient_id)
            .await?
            .into_iter()
            .find(|e| e.resource_type == "Patient")
            .map(|e| fhir(StatusCode::OK, e.resource))
            .ok_or_else(not_found),
        Some((read, entry)) => expose(read.record_id, read.patient_id, &read.bundle)
            .into_iter()
            .nth(entry)
            .filter(|e| e.resource_type == resource_type)
            .map(|e| fhir(StatusCode::OK, e.resource))
            .ok_or_else(not_found),
    }
}
