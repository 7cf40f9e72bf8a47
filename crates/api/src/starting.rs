//! The server while it starts: `serve` listens (and answers `POST /rpc`) as soon as its chain
//! is open, before the records service is: on the embedded chain with remote nodes, the nodes
//! need that chain to start, and a new deployment needs every node to answer first.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower_service::Service as _;

use crate::AppState;

/// What answers until the service is up (`/rpc`, if offered; 503 `starting` for the rest),
/// then [`crate::router`] of the state given to [`Starting::ready`].
#[derive(Clone)]
pub struct Starting {
    ready: Arc<OnceLock<Router>>,
    early: Router,
}

impl std::fmt::Debug for Starting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Starting")
            .field("ready", &self.ready.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Starting {
    /// Answers `POST /rpc` over `rpc` (when given) from now on, and 503 for everything else;
    /// `trusted_proxy` as in [`AppState::with_trusted_proxy`].
    pub fn new(
        rpc: Option<(Arc<ehr_chain::eth_api::EthApi>, crate::RpcOptions)>,
        trusted_proxy: Option<std::net::IpAddr>,
        secure_cookies: bool,
    ) -> Self {
        let mut early = Router::new();
        if let Some((api, options)) = rpc {
            early = early.merge(crate::rpc::route(
                Arc::new(crate::rpc::Rpc::new(api, options)),
                trusted_proxy,
            ));
        }
        let early = crate::with_security_headers(early.fallback(starting), secure_cookies);
        Self {
            ready: Arc::default(),
            early,
        }
    }

    /// From now on, everything is [`crate::router`]`(state)`'s (its `/rpc` too).
    pub fn ready(&self, state: AppState) {
        let _ = self.ready.set(crate::router(state));
    }

    /// The router to serve: it hands each request to what answers at that moment.
    pub fn router(&self) -> Router {
        let this = self.clone();
        Router::new().fallback(move |req: Request| {
            let mut app = this.ready.get().unwrap_or(&this.early).clone();
            async move { app.call(req).await.into_response() }
        })
    }
}

async fn starting() -> Response {
    crate::Error::Starting.into_response()
}
