//! The node's HTTP API (`secure-ehr node`): its router over any [`Node`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ehr_store::Cid;
use subtle::ConstantTimeEq;

use crate::*;

/// The largest block a node accepts (a fragment of a 64 MiB record at k = 1, with room).
pub const MAX_BLOCK: usize = 80 * 1024 * 1024;

#[derive(Clone)]
struct NodeState {
    node: Arc<dyn Node>,
    token: Option<Arc<str>>,
}

/// The node's HTTP API over any [`Node`] (in practice a [`LocalNode`](crate::LocalNode)).
/// With `token`, PUT and DELETE need `Authorization: Bearer <token>`; without, DELETE is
/// refused and PUT is open (blocks are content-addressed ciphertext).
pub fn router(node: Arc<dyn Node>, token: Option<String>) -> axum::Router {
    axum::Router::new()
        .route("/node/info", get(info))
        .route(
            "/node/blocks/{cid}",
            get(get_block).put(put_block).delete(delete_block),
        )
        .route("/node/shares", post(release))
        .layer(DefaultBodyLimit::max(MAX_BLOCK))
        .with_state(NodeState {
            node,
            token: token.map(Into::into),
        })
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
        return Err(Failure(NodeError::BadRequest(
            "this node takes no administrative requests (no token configured)".into(),
        )));
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
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Failure> {
    if s.token.is_some() {
        authorized(&s, &headers)?;
    }
    let cid = parse(&cid)?;
    if ehr_store::verify(&cid, &body, None).is_err() {
        return Err(Failure(NodeError::BadRequest(
            "the body does not hash to the CID".into(),
        )));
    }
    s.node.put_block(&cid, &body).await.map_err(Failure)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_block(
    State(s): State<NodeState>,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    authorized(&s, &headers)?;
    let cid = parse(&cid)?;
    s.node.delete_block(&cid).await.map_err(Failure)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn release(
    State(s): State<NodeState>,
    Json(req): Json<ShareRequest>,
) -> Result<Json<ShareResponse>, Failure> {
    s.node.release_share(&req).await.map(Json).map_err(Failure)
}
