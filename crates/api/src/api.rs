//! The JSON API under `/api`: one handler per route, request and response bodies as plain
//! serde structs (their JSON shapes are what `openapi.json` documents).

use alloy_primitives::{Address, B256};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::extract::{ApiJson, Auth, ClientIp, JsonBytes};
use crate::params::{parse_num, unix};
use crate::svc::{self, RecordForm, Role};
use crate::{AppState, OPENAPI_JSON};

/// Every API route: path, the methods it answers, and its handlers. The router is built
/// from this table and a test checks `openapi.json` documents exactly these operations.
pub(crate) fn routes() -> Vec<(&'static str, &'static [Method], MethodRouter<AppState>)> {
    vec![
        (
            "/api/session",
            &[Method::POST, Method::DELETE],
            post(login).delete(logout),
        ),
        ("/api/me", &[Method::GET], get(me)),
        ("/api/patients", &[Method::POST], post(register_patient)),
        (
            "/api/providers",
            &[Method::GET, Method::POST],
            get(providers).post(add_provider),
        ),
        (
            "/api/records",
            &[Method::GET, Method::POST],
            get(my_records).post(put_record),
        ),
        ("/api/records/form", &[Method::POST], post(put_form)),
        (
            "/api/records/{id}",
            &[Method::GET, Method::PUT],
            get(read_record).put(update_record),
        ),
        (
            "/api/patients/{patient_id}/records",
            &[Method::GET],
            get(patient_records),
        ),
        (
            "/api/grants",
            &[Method::GET, Method::POST],
            get(grants).post(grant),
        ),
        ("/api/grants/revoke", &[Method::POST], post(revoke)),
        ("/api/emergency", &[Method::POST], post(emergency)),
        ("/api/access-log", &[Method::GET], get(access_log)),
        ("/api/status", &[Method::GET], get(status)),
        ("/api/openapi.json", &[Method::GET], get(openapi)),
        ("/ipfs/{cid}", &[Method::GET], get(ipfs_block)),
    ]
}

pub(crate) fn router() -> Router<AppState> {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (path, _, mr)| r.route(path, mr))
}

// ---------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Serialize)]
struct SessionBody {
    token: String,
    username: String,
    role: Role,
    address: Address,
    expires_at: u64,
}

#[derive(Serialize)]
struct MeBody {
    username: String,
    role: Role,
    address: Address,
    patient_id: Option<u64>,
}

#[derive(Serialize)]
struct PatientBody {
    username: String,
    address: Address,
    patient_id: u64,
}

#[derive(Serialize)]
struct AccountBody {
    username: String,
    address: Address,
}

/// The record form's JSON (`RecordForm`'s five fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormBody {
    patient_name: String,
    birth_date: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    health_condition: String,
}

impl From<FormBody> for RecordForm {
    fn from(f: FormBody) -> Self {
        Self {
            patient_name: f.patient_name,
            birth_date: f.birth_date,
            address: f.address,
            phone: f.phone,
            health_condition: f.health_condition,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct FormView {
    patient_name: String,
    birth_date: String,
    address: String,
    phone: String,
    health_condition: String,
}

impl From<&RecordForm> for FormView {
    fn from(f: &RecordForm) -> Self {
        Self {
            patient_name: f.patient_name.clone(),
            birth_date: f.birth_date.clone(),
            address: f.address.clone(),
            phone: f.phone.clone(),
            health_condition: f.health_condition.clone(),
        }
    }
}

#[derive(Serialize)]
struct StoredBody {
    record_id: u64,
    version: u32,
    manifest_cid: String,
    tx_hash: B256,
    block_number: u64,
}

impl From<svc::Stored> for StoredBody {
    fn from(s: svc::Stored) -> Self {
        Self {
            record_id: s.record_id,
            version: s.version,
            manifest_cid: s.manifest_cid,
            tx_hash: s.tx_hash,
            block_number: s.block_number,
        }
    }
}

#[derive(Serialize)]
struct VersionBody {
    version: u32,
    manifest_cid: String,
    timestamp: u64,
    tx_hash: B256,
}

#[derive(Serialize)]
struct SummaryBody {
    record_id: u64,
    version: u32,
    updated_at: u64,
    versions: Vec<VersionBody>,
}

impl From<svc::RecordSummary> for SummaryBody {
    fn from(s: svc::RecordSummary) -> Self {
        Self {
            record_id: s.record_id,
            version: s.version,
            updated_at: s.updated_at,
            versions: s
                .versions
                .into_iter()
                .map(|v| VersionBody {
                    version: v.version,
                    manifest_cid: v.manifest_cid,
                    timestamp: v.timestamp,
                    tx_hash: v.tx_hash,
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct ReadBody {
    record_id: u64,
    version: u32,
    owner: Address,
    patient_id: Option<u64>,
    manifest_cid: String,
    bundle: serde_json::Value,
    form: Option<FormView>,
    access_tx: B256,
    emergency: bool,
}

impl From<svc::ReadRecord> for ReadBody {
    fn from(r: svc::ReadRecord) -> Self {
        Self {
            record_id: r.record_id,
            version: r.version,
            owner: r.owner,
            patient_id: r.patient_id,
            manifest_cid: r.manifest_cid,
            form: r.form.as_ref().map(FormView::from),
            bundle: r.bundle,
            access_tx: r.access_tx,
            emergency: r.emergency,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantRequest {
    provider: String,
    #[serde(default)]
    record_id: Option<u64>,
    expires_at: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    provider: String,
    #[serde(default)]
    record_id: Option<u64>,
}

#[derive(Serialize)]
struct TxBody {
    tx_hash: B256,
}

#[derive(Serialize)]
struct GrantBody {
    provider: Option<String>,
    provider_address: Address,
    record_id: Option<u64>,
    expires_at: u64,
    revoked_at: Option<u64>,
    active: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmergencyRequest {
    patient_id: u64,
    reason: String,
}

#[derive(Serialize)]
struct LogBody {
    record_id: u64,
    version: Option<u32>,
    reader: Address,
    reader_username: Option<String>,
    timestamp: u64,
    tx_hash: B256,
    emergency: bool,
    reason: Option<String>,
}

#[derive(Serialize)]
struct NodeBody {
    index: usize,
    name: String,
    address: Address,
    public_key: B256,
    reachable: bool,
}

#[derive(Serialize)]
struct ChainBody {
    backend: String,
    chain_id: u64,
    head_block: u64,
    head_hash: B256,
    head_timestamp: u64,
    contract: Address,
}

#[derive(Serialize)]
struct StatusBody {
    chain: ChainBody,
    k: u8,
    n: u8,
    nodes: Vec<NodeBody>,
}

#[derive(Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Json<SessionBody>> {
    let (token, signed_in) = state
        .service()
        .login(&c.username, &c.password, &client)
        .await?;
    let session = signed_in.session().clone();
    Ok(Json(SessionBody {
        token: token.expose().to_owned(),
        username: session.username,
        role: session.role,
        address: session.address,
        expires_at: unix(session.expires_at),
    }))
}

async fn logout(State(state): State<AppState>, auth: Auth) -> StatusCode {
    state.service().logout(&auth.token);
    StatusCode::NO_CONTENT
}

async fn me(State(state): State<AppState>, auth: Auth) -> Result<Json<MeBody>> {
    let s = auth.session.session().clone();
    let patient_id = state.service().patient_id(s.address).await?;
    Ok(Json(MeBody {
        username: s.username,
        role: s.role,
        address: s.address,
        patient_id,
    }))
}

async fn register_patient(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<PatientBody>)> {
    state
        .signups
        .check(&client)
        .map_err(|retry_after| Error::RateLimited { retry_after })?;
    let p = state
        .service()
        .register_patient(&c.username, &c.password)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PatientBody {
            username: p.username,
            address: p.address,
            patient_id: p.patient_id,
        }),
    ))
}

async fn add_provider(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<AccountBody>)> {
    let me = auth.admin()?;
    let a = state
        .service()
        .add_provider(&me, &c.username, &c.password)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountBody {
            username: a.username,
            address: a.address,
        }),
    ))
}

async fn providers(State(state): State<AppState>, _auth: Auth) -> Json<Vec<AccountBody>> {
    let list = state.service().providers();
    Json(
        list.into_iter()
            .map(|a| AccountBody {
                username: a.username,
                address: a.address,
            })
            .collect(),
    )
}

async fn put_record(
    State(state): State<AppState>,
    auth: Auth,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<StoredBody>)> {
    let me = auth.patient()?;
    let stored = state.service().put_record(&me, &body).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

async fn put_form(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(form): ApiJson<FormBody>,
) -> Result<(StatusCode, Json<StoredBody>)> {
    let me = auth.patient()?;
    let stored = state.service().put_form(&me, &form.into()).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

async fn update_record(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<Json<StoredBody>> {
    let id = parse_num("id", &id)?;
    let me = auth.patient()?;
    let stored = state.service().update_record(&me, id, &body).await?;
    Ok(Json(stored.into()))
}

async fn my_records(State(state): State<AppState>, auth: Auth) -> Result<Json<Vec<SummaryBody>>> {
    let me = auth.patient()?;
    let list = state.service().my_records(&me).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

async fn read_record(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<ReadBody>> {
    let id = parse_num("id", &id)?;
    let version = q.version.map(|v| parse_num("version", &v)).transpose()?;
    let service = state.service();
    let r = match &auth.session {
        svc::Any::Patient(p) => service.read_record(p, id, version).await?,
        svc::Any::Provider(p) => service.read_record(p, id, version).await?,
        svc::Any::Admin(_) => {
            return Err(Error::Forbidden(
                "only a patient or a provider may read records".into(),
            ));
        }
    };
    Ok(Json(r.into()))
}

async fn patient_records(
    State(state): State<AppState>,
    auth: Auth,
    Path(patient_id): Path<String>,
) -> Result<Json<Vec<ReadBody>>> {
    let patient_id = parse_num("patient_id", &patient_id)?;
    let me = auth.provider()?;
    let list = state.service().patient_records(&me, patient_id).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

async fn grant(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(g): ApiJson<GrantRequest>,
) -> Result<(StatusCode, Json<TxBody>)> {
    let me = auth.patient()?;
    let tx_hash = state
        .service()
        .grant(&me, &g.provider, g.record_id, g.expires_at)
        .await?;
    Ok((StatusCode::CREATED, Json(TxBody { tx_hash })))
}

async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(r): ApiJson<RevokeRequest>,
) -> Result<Json<TxBody>> {
    let me = auth.patient()?;
    let tx_hash = state
        .service()
        .revoke(&me, &r.provider, r.record_id)
        .await?;
    Ok(Json(TxBody { tx_hash }))
}

async fn grants(State(state): State<AppState>, auth: Auth) -> Result<Json<Vec<GrantBody>>> {
    let me = auth.patient()?;
    let list = state.service().grants(&me).await?;
    Ok(Json(
        list.into_iter()
            .map(|g| GrantBody {
                provider: g.provider,
                provider_address: g.provider_address,
                record_id: g.record_id,
                expires_at: g.expires_at,
                revoked_at: g.revoked_at,
                active: g.active,
            })
            .collect(),
    ))
}

async fn emergency(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(e): ApiJson<EmergencyRequest>,
) -> Result<Json<Vec<ReadBody>>> {
    let me = auth.provider()?;
    if e.reason.trim().is_empty() {
        return Err(Error::input("reason", "a reason is required"));
    }
    let list = state
        .service()
        .emergency_access(&me, e.patient_id, &e.reason)
        .await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

async fn access_log(State(state): State<AppState>, auth: Auth) -> Result<Json<Vec<LogBody>>> {
    let me = auth.patient()?;
    let list = state.service().access_log(&me).await?;
    Ok(Json(
        list.into_iter()
            .map(|e| LogBody {
                record_id: e.record_id,
                version: e.version,
                reader: e.reader,
                reader_username: e.reader_username,
                timestamp: e.timestamp,
                tx_hash: e.tx_hash,
                emergency: e.emergency,
                reason: e.reason,
            })
            .collect(),
    ))
}

/// Public: the chain and the node set hold no personal data, and monitoring needs no login.
async fn status(State(state): State<AppState>) -> Result<Json<StatusBody>> {
    let s = state.service().status().await?;
    Ok(Json(StatusBody {
        chain: ChainBody {
            backend: s.chain.backend,
            chain_id: s.chain.chain_id,
            head_block: s.chain.head_block,
            head_hash: s.chain.head_hash,
            head_timestamp: s.chain.head_timestamp,
            contract: s.chain.contract,
        },
        k: s.k,
        n: s.n,
        nodes: s
            .nodes
            .into_iter()
            .map(|n| NodeBody {
                index: n.index,
                name: n.name,
                address: n.address,
                public_key: n.public_key,
                reachable: n.reachable,
            })
            .collect(),
    }))
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI_JSON,
    )
        .into_response()
}

/// `GET /ipfs/{cid}?format=raw` (or `Accept: application/vnd.ipld.raw`): one block, as a
/// trustless gateway serves it. Blocks are ciphertext or manifests of ciphertext, and
/// immutable, so they are public and cacheable.
async fn ipfs_block(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    Query(q): Query<FormatQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response> {
    const RAW: &str = "application/vnd.ipld.raw";
    let accepts_raw = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|m| m.split(';').next().unwrap_or("").trim() == RAW)
        });
    match q.format.as_deref() {
        Some("raw") => {}
        None if accepts_raw => {}
        _ => {
            return Err(Error::input(
                "format",
                "only raw blocks are served: ?format=raw or Accept: application/vnd.ipld.raw",
            ));
        }
    }
    if cid.is_empty() || cid.len() > 128 || !cid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::input("cid", "not a CID"));
    }
    let bytes = state.service().block(&cid).await?;
    let disposition = format!("attachment; filename=\"{cid}.bin\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(RAW)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=29030400, immutable"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(|e| Error::Internal(Box::new(e)))?,
            ),
            (
                header::ETAG,
                HeaderValue::from_str(&format!("\"{cid}.raw\""))
                    .map_err(|e| Error::Internal(Box::new(e)))?,
            ),
        ],
        bytes,
    )
        .into_response())
}
