//! The node's HTTP API (`secure-ehr node`): its router over any [`Node`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use ehr_store::Cid;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::writers::{Owners, WriteOp, Writer, Writers};
use crate::*;

/// The largest block a node accepts (a fragment of a 64 MiB record at k = 1, with room).
pub const MAX_BLOCK: usize = 80 * 1024 * 1024;

/// The largest share request body: ~300 bytes of JSON, and the manifest it may carry, hex
/// (~1.6 KB at 3-of-5; a manifest is at most [`MAX_MANIFEST_LEN`](crate::manifest::MAX_MANIFEST_LEN)).
pub const MAX_SHARE_REQUEST: usize = 16 * 1024 + 2 * crate::manifest::MAX_MANIFEST_LEN;

/// The largest body of a `/node/recovery/*` request: an order of 512 items (about 1 KB of
/// JSON each for a ledger epoch) and up to `k − 1` piece or `k` σ messages (about 60 KB of
/// JSON each at 512 items), with room for k up to about 60.
pub const MAX_RECOVERY_BODY: usize = 8 * 1024 * 1024;

/// The largest erase order: the manifests of 256 versions, hex.
pub const MAX_ERASE_ORDER: usize = 4096 + 256 * 2 * crate::manifest::MAX_MANIFEST_LEN;

/// Requests handled at once by default; more are answered 503 at once, unread.
pub const MAX_IN_FLIGHT: usize = 64;

/// Block bodies being received at once; further (authorized) PUTs wait their turn before
/// their bodies are read, so at most this many times [`MAX_BLOCK`] is buffered.
pub const MAX_PUTS_IN_FLIGHT: usize = 8;

#[derive(Clone)]
struct NodeState {
    node: Arc<dyn Node>,
    token: Option<Arc<str>>,
    in_flight: Arc<Semaphore>,
    puts: Arc<Semaphore>,
    writers: Option<Arc<Writers>>,
    owners: Option<Arc<Owners>>,
}

/// How [`router_with`] serves: the operator's token, the request cap, and for a node
/// shared by organisations the chain's word on signed writes and who stored what.
pub struct RouterConfig {
    /// The node operator's token (stores and deletes anything).
    pub token: Option<String>,
    /// Requests handled at once (at least 1).
    pub max_in_flight: usize,
    /// Checks `SEHR-Org` write signatures against the chain ([`crate::writers`]).
    pub writers: Option<Arc<Writers>>,
    /// Who stored which block; with it an organisation deletes only what it stored.
    pub owners: Option<Arc<Owners>>,
}

/// The node's HTTP API over any [`Node`] (in practice a [`LocalNode`](crate::LocalNode)),
/// with at most [`MAX_IN_FLIGHT`] requests at once.
/// With `token`, PUT and DELETE need `Authorization: Bearer <token>`, checked before any of
/// the body is read; without, DELETE is refused and PUT is open (blocks are
/// content-addressed ciphertext — `secure-ehr node` runs so only with
/// `--insecure-open-node`).
pub fn router(node: Arc<dyn Node>, token: Option<String>) -> axum::Router {
    router_with_limit(node, token, MAX_IN_FLIGHT)
}

/// [`router`] with at most `max_in_flight` requests at once (at least 1).
pub fn router_with_limit(
    node: Arc<dyn Node>,
    token: Option<String>,
    max_in_flight: usize,
) -> axum::Router {
    router_with(
        node,
        RouterConfig {
            token,
            max_in_flight,
            writers: None,
            owners: None,
        },
    )
}

/// The node's HTTP API as `config` says. With `writers`, `PUT` and `DELETE` of blocks
/// also take an organisation's signature (`Authorization: SEHR-Org …`, see
/// [`crate::writers`]); with `owners`, a `DELETE` signed by an organisation removes only
/// what that organisation stored.
pub fn router_with(node: Arc<dyn Node>, config: RouterConfig) -> axum::Router {
    let state = NodeState {
        node,
        token: config.token.map(Into::into),
        in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
        puts: Arc::new(Semaphore::new(MAX_PUTS_IN_FLIGHT)),
        writers: config.writers,
        owners: config.owners,
    };
    // Each route has the body limit of what it carries; the token is checked by a layer
    // that runs before the handler's extractors read the body.
    let blocks = axum::Router::new()
        .route(
            "/node/blocks/{cid}",
            put(put_block)
                .delete(delete_block)
                .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
                .get(get_block),
        )
        .layer(DefaultBodyLimit::max(MAX_BLOCK));
    axum::Router::new()
        .route("/node/info", get(info))
        .route(
            "/node/shares",
            post(release).layer(DefaultBodyLimit::max(MAX_SHARE_REQUEST)),
        )
        .route(
            "/node/erase",
            post(erase).layer(DefaultBodyLimit::max(MAX_ERASE_ORDER)),
        )
        .merge(blocks)
        .merge(ledger_routes(&state))
        .merge(recovery_routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_in_flight,
        ))
        .with_state(state)
}

/// Sheds load: a request beyond the cap is answered 503 before anything of it is read.
async fn limit_in_flight(State(s): State<NodeState>, req: Request, next: Next) -> Response {
    let Ok(_permit) = s.in_flight.clone().try_acquire_owned() else {
        let busy = NodeError::Unreachable("the node is busy: too many requests at once".into());
        return (StatusCode::SERVICE_UNAVAILABLE, Json(busy)).into_response();
    };
    next.run(req).await
}

/// The check of PUT and DELETE, on the headers alone: the operator's token, or an
/// organisation's signature (when the node takes them); the writer goes on to the handler.
/// A node with neither takes PUTs from anyone but no DELETE. The archive head needs no
/// token on a node without one: the head is the admin's signed statement, checked itself.
async fn authorize(State(s): State<NodeState>, mut req: Request, next: Next) -> Response {
    let put = req.method() == axum::http::Method::PUT;
    let signed = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(crate::writers::SCHEME))
        .map(str::to_owned);
    let head = req.uri().path() == "/node/archive-head";
    let writer = match (signed, &s.writers) {
        (Some(value), Some(writers)) if !head => {
            let op = if put { WriteOp::Put } else { WriteOp::Delete };
            let cid = match req.uri().path().strip_prefix("/node/blocks/").map(parse) {
                Some(Ok(cid)) => cid,
                Some(Err(e)) => return e.into_response(),
                None => return Failure(NodeError::BadSignature).into_response(),
            };
            match writers.check(&value, op, &cid).await {
                Ok(w) => Some(w),
                Err(e) => return Failure(e).into_response(),
            }
        }
        _ if s.token.is_none() && (put && (s.writers.is_none() || head)) => None,
        _ => match authorized(&s, req.headers()) {
            Ok(()) => Some(Writer::Operator),
            Err(e) => return e.into_response(),
        },
    };
    if let Some(w) = writer {
        req.extensions_mut().insert(w);
    }
    if req.method() == axum::http::Method::PUT {
        // Held until the handler is done with the body.
        let Ok(_permit) = s.puts.clone().acquire_owned().await else {
            return Failure(NodeError::Internal("block semaphore closed".into())).into_response();
        };
        return next.run(req).await;
    }
    next.run(req).await
}

struct Failure(NodeError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            NodeError::BadSignature => StatusCode::UNAUTHORIZED,
            NodeError::Expired | NodeError::NotLogged | NodeError::Denied => StatusCode::FORBIDDEN,
            NodeError::Replayed => StatusCode::CONFLICT,
            NodeError::NotFound(_) => StatusCode::NOT_FOUND,
            NodeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            NodeError::Unreachable(_) => StatusCode::BAD_GATEWAY,
            NodeError::Erasing(_) => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::Internal(e) => {
                tracing::error!(error = %e, "node failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, Json(self.0)).into_response()
    }
}

fn parse(cid: &str) -> Result<Cid, Failure> {
    ehr_store::parse_cid(cid).map_err(|e| Failure(NodeError::BadRequest(e.to_string())))
}

fn authorized(state: &NodeState, headers: &HeaderMap) -> Result<(), Failure> {
    let Some(token) = &state.token else {
        return Err(Failure(if state.writers.is_some() {
            NodeError::BadSignature
        } else {
            NodeError::BadRequest(
                "this node takes no administrative requests (no token configured)".into(),
            )
        }));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(Failure(NodeError::BadSignature))
    }
}

async fn info(State(s): State<NodeState>) -> Result<Json<NodeInfo>, Failure> {
    s.node.info().await.map(Json).map_err(Failure)
}

async fn get_block(
    State(s): State<NodeState>,
    Path(cid): Path<String>,
) -> Result<Response, Failure> {
    let cid = parse(&cid)?;
    let data = s.node.get_block(&cid).await.map_err(Failure)?;
    Ok(([(header::CONTENT_TYPE, "application/vnd.ipld.raw")], data).into_response())
}

async fn put_block(
    State(s): State<NodeState>,
    Path(cid): Path<String>,
    writer: Option<Extension<Writer>>,
    body: Bytes,
) -> Result<StatusCode, Failure> {
    let cid = parse(&cid)?;
    if ehr_store::verify(&cid, &body, None).is_err() {
        return Err(Failure(NodeError::BadRequest(
            "the body does not hash to the CID".into(),
        )));
    }
    s.node.put_block(&cid, &body).await.map_err(Failure)?;
    // After the block is stored: a crash between leaves a block only the operator deletes.
    if let (Some(owners), Some(Extension(w))) = (&s.owners, writer) {
        owners.claim(&cid, w).map_err(Failure)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_block(
    State(s): State<NodeState>,
    Path(cid): Path<String>,
    writer: Option<Extension<Writer>>,
) -> Result<StatusCode, Failure> {
    let cid = parse(&cid)?;
    let writer = writer.map_or(Writer::Operator, |Extension(w)| w);
    if let Some(owners) = &s.owners {
        // An organisation deletes only what it stored; a block another also stored stays.
        if !owners.release(&cid, writer).map_err(Failure)? {
            return Ok(StatusCode::NO_CONTENT);
        }
    } else if writer != Writer::Operator {
        return Err(Failure(NodeError::Denied));
    }
    s.node.delete_block(&cid).await.map_err(Failure)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn release(
    State(s): State<NodeState>,
    Json(req): Json<ShareRequest>,
) -> Result<Json<ShareResponse>, Failure> {
    s.node.release_share(&req).await.map(Json).map_err(Failure)
}

/// `POST /node/erase`: no token, as the chain decides (the record must be erased on it, and
/// each manifest one of its versions').
async fn erase(
    State(s): State<NodeState>,
    Json(order): Json<EraseOrder>,
) -> Result<Json<EraseReport>, Failure> {
    s.node.erase(&order).await.map(Json).map_err(Failure)
}

// The ledger archive: epoch key shares for the admin, the archive head.

/// `POST /node/ledger-shares`, `PUT` (token, as for blocks) and `GET /node/archive-head`.
fn ledger_routes(state: &NodeState) -> axum::Router<NodeState> {
    axum::Router::new()
        .route(
            "/node/ledger-shares",
            post(release_ledger_share).layer(DefaultBodyLimit::max(MAX_SHARE_REQUEST)),
        )
        .route(
            "/node/archive-head",
            put(put_archive_head)
                .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
                .get(get_archive_head),
        )
        .layer(DefaultBodyLimit::max(crate::ledger::MAX_ARCHIVE_HEAD))
}

async fn release_ledger_share(
    State(s): State<NodeState>,
    Json(req): Json<LedgerShareRequest>,
) -> Result<Json<ShareResponse>, Failure> {
    s.node
        .release_ledger_share(&req)
        .await
        .map(Json)
        .map_err(Failure)
}

async fn put_archive_head(
    State(s): State<NodeState>,
    Json(head): Json<ArchiveHead>,
) -> Result<StatusCode, Failure> {
    s.node.put_archive_head(&head).await.map_err(Failure)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_archive_head(State(s): State<NodeState>) -> Result<Json<ArchiveHead>, Failure> {
    s.node.archive_head().await.map(Json).map_err(Failure)
}

// Share recovery: the three steps of an admin-signed order (no token: the signature is the
// authority, and only ciphertexts come and go).

fn recovery_routes() -> axum::Router<NodeState> {
    axum::Router::new()
        .route("/node/recovery/contribute", post(recovery_contribute))
        .route("/node/recovery/relay", post(recovery_relay))
        .route("/node/recovery/assemble", post(recovery_assemble))
        .layer(DefaultBodyLimit::max(MAX_RECOVERY_BODY))
}

async fn recovery_contribute(
    State(s): State<NodeState>,
    Json(step): Json<RecoveryStep>,
) -> Result<Json<Vec<RecoveryMessage>>, Failure> {
    s.node
        .recovery_contribute(&step.order)
        .await
        .map(Json)
        .map_err(Failure)
}

async fn recovery_relay(
    State(s): State<NodeState>,
    Json(step): Json<RecoveryStep>,
) -> Result<Json<RecoveryMessage>, Failure> {
    s.node
        .recovery_relay(&step.order, &step.messages)
        .await
        .map(Json)
        .map_err(Failure)
}

async fn recovery_assemble(
    State(s): State<NodeState>,
    Json(step): Json<RecoveryStep>,
) -> Result<Json<RecoveryOutcome>, Failure> {
    s.node
        .recovery_assemble(&step.order, &step.messages)
        .await
        .map(Json)
        .map_err(Failure)
}
