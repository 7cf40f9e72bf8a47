//! A SecureEHR storage + custodian node over HTTP (`secure-ehr node`), and [`RemoteNode`],
//! the [`Node`] the records service uses to talk to one.
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/node/info` | identity address and X25519 custodian key |
//! | PUT | `/node/blocks/{cid}` | store a block (checked against the CID); token if configured |
//! | GET | `/node/blocks/{cid}` | a block's bytes |
//! | DELETE | `/node/blocks/{cid}` | remove a block (orphan collection); token required |
//! | POST | `/node/shares` | a signed [`ShareRequest`] → this custodian's [`ShareResponse`] |
//!
//! Refusals are JSON `{"error": code, "message": text}` with the [`NodeError`] code. Blocks
//! are ciphertext or manifests and key shares leave only wrapped to the reader, so reads
//! are open; writes and deletes need the deployment's node token when one is set.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ehr_records::node::{Node, NodeError, NodeInfo, ShareRequest, ShareResponse};
use ehr_store::Cid;
use subtle::ConstantTimeEq;

/// The largest block a node accepts (a fragment of a 64 MiB record at k = 1, with room).
pub const MAX_BLOCK: usize = 80 * 1024 * 1024;

#[derive(Clone)]
struct NodeState {
    node: Arc<dyn Node>,
    token: Option<Arc<str>>,
}

/// The node's HTTP API over any [`Node`] (in practice a [`ehr_records::LocalNode`]).
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

/// A node reached over HTTP.
pub struct RemoteNode {
    name: String,
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for RemoteNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteNode")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RemoteNode {
    /// The node at `url` (e.g. `http://127.0.0.1:7001`), named `node {index}` in logs.
    pub fn new(index: usize, url: &str, token: Option<String>) -> Result<Self, NodeError> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(NodeError::BadRequest(format!(
                "node URL {url:?} must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        Ok(Self {
            name: format!("node {index} ({base})"),
            base,
            token,
            http,
        })
    }

    fn with_token(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, NodeError> {
        let resp = req
            .send()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))?;
        Err(serde_json::from_slice::<NodeError>(&body)
            .unwrap_or_else(|_| NodeError::Unreachable(format!("HTTP {status}"))))
    }
}

/// reqwest errors name the URL; the node's name already does.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "");
    }
    if e.is_connect() {
        "connection refused or failed".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        msg
    }
}

#[async_trait]
impl Node for RemoteNode {
    fn name(&self) -> &str {
        &self.name
    }

    async fn info(&self) -> Result<NodeInfo, NodeError> {
        let resp = self
            .send(self.http.get(format!("{}/node/info", self.base)))
            .await?;
        resp.json()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))
    }

    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        let req = self
            .http
            .put(format!("{}/node/blocks/{cid}", self.base))
            .body(data.to_vec());
        self.send(self.with_token(req)).await.map(|_| ())
    }

    async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, NodeError> {
        let resp = self
            .send(self.http.get(format!("{}/node/blocks/{cid}", self.base)))
            .await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))?;
        Ok(bytes.to_vec())
    }

    async fn delete_block(&self, cid: &Cid) -> Result<(), NodeError> {
        let req = self.http.delete(format!("{}/node/blocks/{cid}", self.base));
        self.send(self.with_token(req)).await.map(|_| ())
    }

    async fn release_share(&self, request: &ShareRequest) -> Result<ShareResponse, NodeError> {
        let resp = self
            .send(
                self.http
                    .post(format!("{}/node/shares", self.base))
                    .json(request),
            )
            .await?;
        resp.json()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))
    }
}
