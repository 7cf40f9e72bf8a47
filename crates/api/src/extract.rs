//! Request extractors whose rejections are this crate's JSON errors.
//!
//! axum's own rejections answer in plain text; these answer `{error, message, field}` like
//! every other error, and name the field a bad body got wrong.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequestParts, Request,
};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::{Error, Result};
use crate::svc::{self, Role};

/// A JSON body deserialized into `T`; a type error names the field (`patient_id`,
/// `entries[2].name`), a missing field names itself.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// A JSON body kept as bytes (FHIR bundles, which the records service validates itself).
#[derive(Debug)]
pub struct JsonBytes(pub Bytes);

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Reads the body under the router's limit, as JSON.
async fn json_bytes(req: Request, state: &AppState) -> Result<Bytes> {
    if !is_json(&req) {
        return Err(Error::UnsupportedMediaType("application/json"));
    }
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge
        } else {
            Error::input("body", "could not read the request body")
        }
    })
}

impl FromRequest<AppState> for JsonBytes {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        json_bytes(req, state).await.map(Self)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        let bytes = json_bytes(req, state).await?;
        parse_json(&bytes).map(Self)
    }
}

/// Deserializes `bytes`, naming the offending field on failure (never quoting its value).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde reports a missing field at its parent's path, naming it in the message.
        let named = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        let field = match (named, path.as_str()) {
            // Not JSON at all: the body is at fault, wherever the parser stopped.
            _ if syntax => "body".to_owned(),
            (Some(name), "." | "") => name.to_owned(),
            (Some(name), parent) => format!("{parent}.{name}"),
            (None, "." | "") => "body".to_owned(),
            (None, p) => p.to_owned(),
        };
        let message = match syntax {
            true => format!(
                "malformed JSON at line {}, column {}",
                inner.line(),
                inner.column()
            ),
            // serde's data messages name types and fields, not values ("invalid type:
            // string, expected u64").
            false => message
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        Error::InvalidInput { field, message }
    })
}

/// The session behind `Authorization: Bearer <token>`.
#[derive(Debug)]
pub struct Auth {
    /// Who the token belongs to, typed by role.
    pub session: svc::Any,
    /// The token itself (for logout).
    pub token: String,
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        Self::from_header(parts, state)?.ok_or(Error::Unauthenticated)
    }
}

/// `Option<Auth>`: `None` without an `Authorization` header; a header with a bad token is
/// still 401, so a client that meant to sign in is told.
impl OptionalFromRequestParts<AppState> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>> {
        Self::from_header(parts, state)
    }
}

/// The `Authorization: Bearer` token: `None` without the header, `Some(None)` for a header
/// that is not a bearer token.
pub(crate) fn bearer(parts: &Parts) -> Option<Option<&str>> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    Some(value.to_str().ok().and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }))
}

impl Auth {
    fn from_header(parts: &Parts, state: &AppState) -> Result<Option<Self>> {
        let Some(token) = bearer(parts) else {
            return Ok(None);
        };
        let token = token.ok_or(Error::Unauthenticated)?;
        let session = state
            .service()
            .authenticate(token)
            .map_err(|_| Error::Unauthenticated)?;
        Ok(Some(Self {
            session,
            token: token.to_owned(),
        }))
    }
}

/// The client's IP address, the key for login and registration throttling: the TCP peer
/// (`ConnectInfo`), or — only when that peer is the proxy given with
/// [`AppState::with_trusted_proxy`] — the right-most `X-Forwarded-For` entry that is not
/// the proxy itself (entries to its left are whatever the client sent, so they are never
/// trusted). Served without `into_make_service_with_connect_info` (e.g. in tests) every
/// client is `"unknown"`.
#[derive(Clone, Debug)]
pub struct ClientIp(pub String);

/// A router state that knows which reverse proxy to trust for [`ClientIp`].
pub(crate) trait TrustsProxy {
    /// The reverse proxy whose `X-Forwarded-For` names the client.
    fn trusted_proxy(&self) -> Option<IpAddr>;
}

impl TrustsProxy for AppState {
    fn trusted_proxy(&self) -> Option<IpAddr> {
        self.trusted_proxy
    }
}

impl<S: TrustsProxy + Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip())
        else {
            return Ok(Self("unknown".to_owned()));
        };
        let client = match state.trusted_proxy() {
            Some(proxy) if proxy == peer => forwarded_client(&parts.headers, proxy).unwrap_or(peer),
            _ => peer,
        };
        Ok(Self(client.to_string()))
    }
}

/// The right-most `X-Forwarded-For` address that is not `proxy`, over every such header
/// in order; `None` if there is none or the right-most candidate is not an IP address.
fn forwarded_client(headers: &header::HeaderMap, proxy: IpAddr) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.into_iter().rev() {
        let ip: IpAddr = entry.parse().ok()?;
        if ip != proxy {
            return Some(ip);
        }
    }
    None
}

impl Auth {
    fn forbidden(role: Role) -> Error {
        Error::Forbidden(format!("only a {role} may do this"))
    }

    /// The patient session, or 403.
    pub fn patient(&self) -> Result<svc::PatientSession> {
        (self.session.clone().patient()).map_err(|_| Self::forbidden(Role::Patient))
    }

    /// The provider session, or 403.
    pub fn provider(&self) -> Result<svc::ProviderSession> {
        (self.session.clone().provider()).map_err(|_| Self::forbidden(Role::Provider))
    }

    /// The admin session, or 403.
    pub fn admin(&self) -> Result<svc::AdminSession> {
        (self.session.clone().admin()).map_err(|_| Self::forbidden(Role::Admin))
    }
}
