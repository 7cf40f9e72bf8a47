//! The JSON API under `/api`: one handler per route; the request and response bodies are
//! [`crate::types`] (their JSON shapes are what `openapi.json` documents).

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::extract::{ApiJson, Auth, ClientIp, JsonBytes};
use crate::params::{parse_num, unix};
use crate::svc::{self, RecordForm, Role};
use crate::types;
use crate::{AppState, OPENAPI_JSON};

mod accounts;
mod attachments;
pub(crate) use accounts::qr_svg;
use accounts::{
    begin_totp, change_password, confirm_totp, delete_account, disable_totp, my_profile,
    new_recovery_code, recover, reset_provider_password, update_profile,
};

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
        ("/api/account", &[Method::DELETE], delete(delete_account)),
        ("/api/me/password", &[Method::POST], post(change_password)),
        ("/api/me/keystore", &[Method::GET], get(keystore)),
        ("/api/export", &[Method::GET], get(export)),
        ("/api/me/recovery", &[Method::POST], post(new_recovery_code)),
        (
            "/api/me/totp",
            &[Method::POST, Method::DELETE],
            post(begin_totp).delete(disable_totp),
        ),
        ("/api/me/totp/confirm", &[Method::POST], post(confirm_totp)),
        (
            "/api/me/profile",
            &[Method::GET, Method::PUT],
            get(my_profile).put(update_profile),
        ),
        ("/api/recover", &[Method::POST], post(recover)),
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
        (
            "/api/providers/{username}/disable",
            &[Method::POST],
            post(disable_provider),
        ),
        (
            "/api/providers/{username}/enable",
            &[Method::POST],
            post(enable_provider),
        ),
        (
            "/api/providers/{username}/password",
            &[Method::POST],
            post(reset_provider_password),
        ),
        ("/api/records/form", &[Method::POST], post(put_form)),
        (
            "/api/records/{id}",
            &[Method::GET, Method::PUT],
            get(read_record).put(update_record),
        ),
        (
            "/api/records/{id}/attachments",
            &[Method::POST],
            post(attachments::attach),
        ),
        (
            "/api/records/{id}/attachments/{number}",
            &[Method::GET],
            get(attachments::download),
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
        ("/api/shared", &[Method::GET], get(shared)),
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

// The bodies are `crate::types`; these build them from the service's types.

impl From<Role> for types::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Patient => Self::Patient,
            Role::Provider => Self::Provider,
            Role::Admin => Self::Admin,
        }
    }
}

impl From<types::RecordForm> for RecordForm {
    fn from(f: types::RecordForm) -> Self {
        Self {
            patient_name: f.patient_name,
            birth_date: f.birth_date,
            address: f.address,
            phone: f.phone,
            health_condition: f.health_condition,
        }
    }
}

impl From<RecordForm> for types::RecordForm {
    fn from(f: RecordForm) -> Self {
        Self {
            patient_name: f.patient_name,
            birth_date: f.birth_date,
            address: f.address,
            phone: f.phone,
            health_condition: f.health_condition,
        }
    }
}

impl From<svc::Stored> for types::Stored {
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

impl From<svc::RecordSummary> for types::RecordSummary {
    fn from(s: svc::RecordSummary) -> Self {
        Self {
            record_id: s.record_id,
            version: s.version,
            updated_at: s.updated_at,
            versions: s
                .versions
                .into_iter()
                .map(|v| types::RecordVersion {
                    version: v.version,
                    manifest_cid: v.manifest_cid,
                    timestamp: v.timestamp,
                    tx_hash: v.tx_hash,
                    author: v.author,
                    author_name: v.author_name,
                })
                .collect(),
        }
    }
}

impl From<svc::ReadRecord> for types::ReadRecord {
    fn from(r: svc::ReadRecord) -> Self {
        Self {
            record_id: r.record_id,
            version: r.version,
            owner: r.owner,
            patient_id: r.patient_id,
            manifest_cid: r.manifest_cid,
            form: r.form.map(Into::into),
            access_tx: r.access_tx,
            emergency: r.emergency,
            attachments: attachments::listed(&r.bundle),
            bundle: r.bundle,
        }
    }
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
    ApiJson(c): ApiJson<types::Login>,
) -> Result<Json<types::Session>> {
    let (token, signed_in) = state
        .service()
        .login_with_code(&c.username, &c.password, c.code.as_deref(), &client)
        .await?;
    let session = signed_in.session().clone();
    Ok(Json(types::Session {
        token: token.expose().to_owned(),
        username: session.username,
        role: session.role.into(),
        address: session.address,
        expires_at: unix(session.expires_at),
    }))
}

async fn logout(State(state): State<AppState>, auth: Auth) -> StatusCode {
    state.service().logout(&auth.token);
    StatusCode::NO_CONTENT
}

async fn me(State(state): State<AppState>, auth: Auth) -> Result<Json<types::Me>> {
    let s = auth.session.session().clone();
    let patient_id = state.service().patient_id(s.address).await?;
    Ok(Json(types::Me {
        username: s.username,
        role: s.role.into(),
        address: s.address,
        patient_id,
    }))
}

async fn register_patient(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(c): ApiJson<types::SignUp>,
) -> Result<(StatusCode, Json<types::PatientAccount>)> {
    let own = c
        .keystore
        .as_ref()
        .map(|k| svc::KeystoreFile::from_json(&k.to_string()))
        .transpose()
        .map_err(keystore_error)?;
    state
        .signups
        .check(&client)
        .map_err(|retry_after| Error::RateLimited { retry_after })?;
    let (p, code) = state
        .service()
        .register_patient_with_key(&c.username, &c.password, own)
        .await
        .map_err(|e| match e {
            svc::Error::Accounts(
                e @ (svc::AccountsError::KeystoreMac | svc::AccountsError::KeystoreFormat(_)),
            ) => keystore_error(e),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(types::PatientAccount {
            username: p.username,
            address: p.address,
            patient_id: p.patient_id,
            recovery_code: code.expose().to_owned(),
        }),
    ))
}

/// A keystore brought at sign-up that cannot be used: 400 naming the field.
pub(crate) fn keystore_error(e: svc::AccountsError) -> Error {
    match e {
        svc::AccountsError::KeystoreMac => {
            Error::input("keystore", "the password does not decrypt this keystore")
        }
        svc::AccountsError::KeystoreFormat(why) => Error::input("keystore", why),
        other => Error::input("keystore", other.to_string()),
    }
}

/// The patient's keystore v3 file, for any Ethereum wallet.
async fn keystore(State(state): State<AppState>, auth: Auth) -> Result<Response> {
    let me = auth.patient()?;
    let file = state.service().export_keystore(&me)?;
    let mut r = ([(header::CONTENT_TYPE, "application/json")], file.to_json()).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        keystore_file_name(&file)
    )) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// Everything held about the patient: one FHIR R4 collection Bundle, as a download.
async fn export(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    auth: Auth,
) -> Result<Response> {
    let me = auth.patient()?;
    let bundle = crate::fhir::export(&state, &headers, &me).await?;
    Ok(export_response(&bundle))
}

/// The export as an `application/fhir+json` attachment.
pub(crate) fn export_response(bundle: &serde_json::Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, crate::fhir::FHIR_JSON),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"secure-ehr-export.json\"",
            ),
        ],
        bundle.to_string(),
    )
        .into_response()
}

/// The name geth gives a keystore file: `UTC--{id}--{address}.json` (here the file's id
/// stands in for its time of creation, which keystore files do not record).
pub(crate) fn keystore_file_name(file: &svc::KeystoreFile) -> String {
    format!(
        "UTC--{}--{}.json",
        file.id,
        file.address.as_deref().unwrap_or("key")
    )
}

async fn add_provider(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(p): ApiJson<types::NewProvider>,
) -> Result<(StatusCode, Json<types::Account>)> {
    let me = auth.admin()?;
    let profile = svc::ProfileInput {
        display_name: p.display_name,
        specialty: p.specialty,
    };
    let a = state
        .service()
        .add_provider(&me, &p.username, &p.password, &profile)
        .await?;
    Ok((StatusCode::CREATED, Json(account(a))))
}

fn account(a: svc::AccountInfo) -> types::Account {
    types::Account {
        username: a.username,
        address: a.address,
        disabled: a.disabled,
        escrowed: a.escrowed,
    }
}

/// The network's provider directory (for an admin, with this server's disabled ones).
async fn providers(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<types::Provider>>> {
    let admin = auth.admin().is_ok();
    let list = state.service().directory(admin).await?;
    Ok(Json(list.into_iter().map(provider).collect()))
}

pub(crate) fn provider(e: svc::DirectoryEntry) -> types::Provider {
    types::Provider {
        username: e.username,
        address: e.address,
        display_name: e.display_name,
        organisation: e.organisation,
        organisation_id: e.organisation_id,
        specialty: e.specialty,
        local: e.local,
        disabled: e.disabled,
    }
}

async fn disable_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path(username): Path<String>,
) -> Result<Json<types::Account>> {
    let me = auth.admin()?;
    let a = state.service().disable_provider(&me, &username).await?;
    Ok(Json(account(a)))
}

async fn enable_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path(username): Path<String>,
) -> Result<Json<types::Account>> {
    let me = auth.admin()?;
    let a = state.service().enable_provider(&me, &username).await?;
    Ok(Json(account(a)))
}

async fn put_record(
    State(state): State<AppState>,
    auth: Auth,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<types::Stored>)> {
    let me = auth.patient()?;
    let stored = state.service().put_record(&me, &body).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

async fn put_form(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(form): ApiJson<types::RecordForm>,
) -> Result<(StatusCode, Json<types::Stored>)> {
    let me = auth.patient()?;
    let stored = state.service().put_form(&me, &form.into()).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

async fn update_record(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<Json<types::Stored>> {
    let id = parse_num("id", &id)?;
    let me = auth.patient()?;
    let stored = state.service().update_record(&me, id, &body).await?;
    Ok(Json(stored.into()))
}

async fn my_records(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<types::RecordSummary>>> {
    let me = auth.patient()?;
    let list = state.service().my_records(&me).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

async fn read_record(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<types::ReadRecord>> {
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
) -> Result<Json<Vec<types::ReadRecord>>> {
    let patient_id = parse_num("patient_id", &patient_id)?;
    let me = auth.provider()?;
    let list = state.service().patient_records(&me, patient_id).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

async fn grant(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(g): ApiJson<types::GrantRequest>,
) -> Result<(StatusCode, Json<types::Tx>)> {
    let me = auth.patient()?;
    let svc = state.service();
    let tx_hash = svc
        .grant(&me, &g.provider, g.record_id, g.expires_at)
        .await?;
    let write_tx_hash = match g.write {
        true => Some(
            svc.grant_write(&me, &g.provider, g.record_id, g.expires_at)
                .await?,
        ),
        false => None,
    };
    Ok((
        StatusCode::CREATED,
        Json(types::Tx {
            tx_hash,
            write_tx_hash,
        }),
    ))
}

async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(r): ApiJson<types::RevokeRequest>,
) -> Result<Json<types::Tx>> {
    let me = auth.patient()?;
    let svc = state.service();
    let tx_hash = match r.write {
        true => svc.revoke_write(&me, &r.provider, r.record_id).await?,
        false => svc.revoke(&me, &r.provider, r.record_id).await?,
    };
    Ok(Json(types::Tx {
        tx_hash,
        write_tx_hash: None,
    }))
}

/// "Shared with me": the grants the provider holds now.
async fn shared(State(state): State<AppState>, auth: Auth) -> Result<Json<Vec<types::Shared>>> {
    let me = auth.provider()?;
    let list = state.service().shared_with_me(&me).await?;
    Ok(Json(list.into_iter().map(shared_entry).collect()))
}

pub(crate) fn shared_entry(s: svc::SharedView) -> types::Shared {
    types::Shared {
        patient_id: s.patient_id,
        record_id: s.record_id,
        expires_at: s.expires_at,
        write_until: s.write_until,
    }
}

async fn grants(State(state): State<AppState>, auth: Auth) -> Result<Json<Vec<types::Grant>>> {
    let me = auth.patient()?;
    let list = state.service().grants(&me).await?;
    Ok(Json(
        list.into_iter()
            .map(|g| types::Grant {
                provider: g.provider,
                provider_address: g.provider_address,
                record_id: g.record_id,
                expires_at: g.expires_at,
                revoked_at: g.revoked_at,
                active: g.active,
                emergency: g.emergency.map(|w| types::EmergencyWindow {
                    until: w.until,
                    reason: w.reason,
                    tx_hash: w.tx_hash,
                }),
                write: g.write.map(|w| types::WriteGrant {
                    expires_at: w.expires_at,
                    revoked_at: w.revoked_at,
                    active: w.active,
                }),
            })
            .collect(),
    ))
}

async fn emergency(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(e): ApiJson<types::EmergencyRequest>,
) -> Result<Json<Vec<types::ReadRecord>>> {
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

async fn access_log(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<types::AccessLogEntry>>> {
    let me = auth.patient()?;
    let list = state.service().access_log(&me).await?;
    Ok(Json(
        list.into_iter()
            .map(|e| types::AccessLogEntry {
                record_id: e.record_id,
                version: e.version,
                reader: e.reader,
                reader_username: e.reader_username,
                reader_organisation: e.reader_organisation,
                timestamp: e.timestamp,
                tx_hash: e.tx_hash,
                emergency: e.emergency,
                reason: e.reason,
            })
            .collect(),
    ))
}

/// Public, for monitoring: the chain head, the threshold and how many nodes answer, from a
/// status at most [`ehr_records::STATUS_TTL`] old (an unauthenticated request never makes the
/// server ask every node and the chain). The admin gets each node (names are URLs when
/// remote), asked now.
async fn status(State(state): State<AppState>, auth: Option<Auth>) -> Result<Json<types::Status>> {
    let admin = auth.is_some_and(|a| a.admin().is_ok());
    let s = if admin {
        state.service().status().await?
    } else {
        state.service().status_cached().await?
    };
    Ok(Json(types::Status {
        chain: types::ChainStatus {
            backend: s.chain.backend,
            chain_id: s.chain.chain_id,
            head_block: s.chain.head_block,
            head_hash: s.chain.head_hash,
            head_timestamp: s.chain.head_timestamp,
            contract: s.chain.contract,
        },
        k: s.k,
        n: s.n,
        reachable: s.nodes.iter().filter(|n| n.reachable).count(),
        nodes: admin.then(|| {
            s.nodes
                .into_iter()
                .map(|n| types::NodeStatus {
                    index: n.index,
                    name: n.name,
                    address: n.address,
                    public_key: n.public_key,
                    reachable: n.reachable,
                })
                .collect()
        }),
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
