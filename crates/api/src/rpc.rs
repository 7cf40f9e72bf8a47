//! `POST /rpc`: the embedded chain as a standard Ethereum JSON-RPC endpoint
//! ([`ehr_chain::eth_api`]), mounted only when the server was started with it
//! ([`AppState::with_rpc`]; `serve --rpc`). Without it `/rpc` is an unknown path (404).
//!
//! This layer owns what HTTP decides: the bearer token, the body limit, the media type and
//! the per-client rate of sends. Its refusals are JSON-RPC error objects too (with the HTTP
//! status that fits), so a JSON-RPC client shows the message.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ehr_chain::eth_api::{EthApi, RpcError, code};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::AppState;
use crate::extract::ClientIp;
use crate::throttle::Throttle;

/// How `/rpc` is offered.
#[derive(Clone, Debug)]
pub struct RpcOptions {
    /// Only requests with `Authorization: Bearer <token>` are answered (401 otherwise).
    pub token: Option<Zeroizing<String>>,
    /// The largest request body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// `eth_sendRawTransaction` calls per client per minute (when sends are offered at all:
    /// [`ehr_chain::eth_api::Limits::allow_send`]).
    pub sends_per_minute: u32,
}

impl Default for RpcOptions {
    fn default() -> Self {
        Self {
            token: None,
            max_body_bytes: crate::MAX_BODY_BYTES,
            sends_per_minute: 60,
        }
    }
}

/// What the route shares.
pub(crate) struct Rpc {
    api: Arc<EthApi>,
    /// SHA-256 of the token: compared in constant time whatever the presented length.
    token_hash: Option<[u8; 32]>,
    max_body_bytes: usize,
    sends: Throttle,
    sends_per_minute: u32,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("token", &self.token_hash.is_some())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("sends_per_minute", &self.sends_per_minute)
            .finish_non_exhaustive()
    }
}

impl Rpc {
    pub(crate) fn new(api: Arc<EthApi>, options: RpcOptions) -> Self {
        let per_minute = options.sends_per_minute.max(1);
        Self {
            api,
            token_hash: options
                .token
                .as_ref()
                .map(|t| Sha256::digest(t.as_bytes()).into()),
            max_body_bytes: options.max_body_bytes,
            // The whole minute's allowance at once, then one per 60/N seconds.
            sends: Throttle::new(per_minute, Duration::from_secs(60) / per_minute),
            sends_per_minute: per_minute,
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token_hash else {
            return true;
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        presented.is_some_and(|t| {
            let hash: [u8; 32] = Sha256::digest(t.as_bytes()).into();
            bool::from(hash.ct_eq(expected))
        })
    }
}

/// What the `/rpc` route's handler has: the API and whom to trust for the client's address.
#[derive(Clone)]
struct RpcState {
    rpc: Arc<Rpc>,
    trusted_proxy: Option<std::net::IpAddr>,
}

impl crate::extract::TrustsProxy for RpcState {
    fn trusted_proxy(&self) -> Option<std::net::IpAddr> {
        self.trusted_proxy
    }
}

/// The `/rpc` route, if `state` offers it.
pub(crate) fn router(state: &AppState) -> axum::Router<AppState> {
    match &state.rpc {
        Some(rpc) => route(rpc.clone(), state.trusted_proxy),
        None => axum::Router::new(),
    }
}

/// `POST /rpc` over `rpc`, as a router of its own (it needs no records service).
pub(crate) fn route<S: Clone + Send + Sync + 'static>(
    rpc: Arc<Rpc>,
    trusted_proxy: Option<std::net::IpAddr>,
) -> axum::Router<S> {
    let limit = rpc.max_body_bytes;
    axum::Router::new()
        .route("/rpc", post(handle).layer(DefaultBodyLimit::max(limit)))
        .with_state(RpcState { rpc, trusted_proxy })
}

/// A JSON-RPC error object as a whole response, with `status`.
fn refusal(status: StatusCode, code: i64, message: String) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": Value::Null,
        "error": { "code": code, "message": message },
    });
    (status, Json(body)).into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

async fn handle(
    State(state): State<RpcState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let rpc = &*state.rpc;
    if !rpc.authorized(&headers) {
        let mut r = refusal(
            StatusCode::UNAUTHORIZED,
            code::SERVER_ERROR,
            "unauthorized: /rpc needs `Authorization: Bearer <token>` with the server's \
             --rpc-token"
                .into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    if !is_json(&headers) {
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_REQUEST,
            "/rpc takes a body of type application/json".into(),
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::INVALID_REQUEST,
                format!(
                    "request body larger than {} bytes (the /rpc body limit)",
                    rpc.max_body_bytes
                ),
            );
        }
        Err(_) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "could not read the request body".into(),
            );
        }
    };
    let allow_send = rpc.api.limits().allow_send;
    let gate = |method: &str| {
        if allow_send && method == "eth_sendRawTransaction" {
            rpc.sends.check(&client).map_err(|wait| {
                RpcError::new(
                    code::LIMIT_EXCEEDED,
                    format!(
                        "rate limit: at most {} eth_sendRawTransaction per minute per client \
                         (--rpc-send-per-minute); retry in {} s",
                        rpc.sends_per_minute,
                        wait.as_secs().max(1)
                    ),
                )
            })
        } else {
            Ok(())
        }
    };
    match rpc.api.handle_with(&body, &gate).await {
        Some(reply) => Json(reply).into_response(),
        // Only notifications: nothing to answer.
        None => StatusCode::NO_CONTENT.into_response(),
    }
}
