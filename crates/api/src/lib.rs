#![doc = include_str!("../README.md")]

mod api;
mod error;
mod extract;
mod fallback;
mod fhir;
mod files;
mod params;
mod rpc;
mod starting;
mod throttle;
pub mod types;
mod web;

/// The records service's names this crate uses, in one place.
mod svc {
    pub use ehr_records::SignedIn as Any;
    pub use ehr_records::accounts::Error as AccountsError;
    pub use ehr_records::accounts::keystore::KeystoreFile;
    pub use ehr_records::accounts::{AccountInfo, Role, Session};
    pub use ehr_records::attachments;
    pub use ehr_records::fhir;
    pub use ehr_records::fhir::RecordForm;
    pub use ehr_records::{AccessLogEntry, ErasedRecordView, ErasureReceipt, GrantView};
    pub use ehr_records::{AdminSession, PatientSession, ProviderSession};
    pub use ehr_records::{
        AttachmentDownload, AttachmentInput, Error, ReadRecord, RecordSummary, Service, Stored,
    };
    pub use ehr_records::{DirectoryEntry, ProfileInput, ProviderProfile, SharedView};
    pub use ehr_records::{OfferRefusal, OfferView, SignedOffer, SinceLastVisit};
}

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;

pub use error::{Error, Result};
pub use fhir::{
    ACCOUNT_SYSTEM, DEFAULT_COUNT as FHIR_DEFAULT_COUNT, FHIR_JSON, MAX_COUNT as FHIR_MAX_COUNT,
    PROVIDER_SYSTEM, RECORD_SYSTEM,
};
pub use rpc::RpcOptions;
pub use starting::Starting;
pub use throttle::Throttle;

/// The largest request body the JSON API and the pages accept, in bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The largest bundle `POST /fhir` accepts, in bytes: a record's limit
/// (`ehr_records::fhir::MAX_BODY_BYTES`, 16 MiB).
pub const FHIR_MAX_BODY_BYTES: usize = ehr_records::fhir::MAX_BODY_BYTES;

/// The OpenAPI 3.1 document served at `/api/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// What every handler shares: the records service and the web layer's settings.
#[derive(Clone)]
pub struct AppState {
    service: Arc<svc::Service>,
    /// Server key for CSRF tokens (HMAC of the browser's cookies); random per process.
    csrf_key: Arc<[u8; 32]>,
    secure_cookies: bool,
    signups: Arc<Throttle>,
    /// The reverse proxy whose `X-Forwarded-For` names the client (see `ClientIp`).
    trusted_proxy: Option<std::net::IpAddr>,
    /// `POST /rpc`, when offered (see [`AppState::with_rpc`]).
    rpc: Option<Arc<rpc::Rpc>>,
    /// The SMART-scoped tokens minted for FHIR clients (`POST /fhir/auth/token`).
    scoped: Arc<fhir::scopes::ScopedTokens>,
    /// The one-time set-up token (`/setup?token=…`) while the deployment has no admin;
    /// taken when the admin is created, gone at a restart.
    setup: Arc<std::sync::Mutex<Option<zeroize::Zeroizing<String>>>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("secure_cookies", &self.secure_cookies)
            .field("trusted_proxy", &self.trusted_proxy)
            .field("rpc", &self.rpc)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `service`: cookies without `Secure` (plain HTTP on loopback) and patient
    /// registration throttled to 5 at once per client IP, then one a minute.
    pub fn new(service: Arc<svc::Service>) -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("operating system random number generator");
        let setup = (!service.accounts().has_admin()).then(|| {
            let mut raw = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(raw.as_mut()).expect("operating system random number generator");
            zeroize::Zeroizing::new(hex_lower(raw.as_ref()))
        });
        Self {
            setup: Arc::new(std::sync::Mutex::new(setup)),
            service,
            csrf_key: Arc::new(key),
            secure_cookies: false,
            signups: Arc::new(Throttle::new(5, Duration::from_secs(60))),
            trusted_proxy: None,
            rpc: None,
            scoped: Arc::default(),
        }
    }

    /// Offers the embedded chain as standard Ethereum JSON-RPC at `POST /rpc` (`serve
    /// --rpc`), within `options` (token, body limit, rate of sends); `api`'s own limits bound
    /// batches and log queries. Without this, `/rpc` is 404 like any unknown path.
    pub fn with_rpc(mut self, api: Arc<ehr_chain::eth_api::EthApi>, options: RpcOptions) -> Self {
        self.rpc = Some(Arc::new(rpc::Rpc::new(api, options)));
        self
    }

    /// Trusts `X-Forwarded-For` from `proxy` (the reverse proxy's IP): when the TCP peer is
    /// that address, the client is the right-most forwarded address that is not the proxy.
    /// From any other peer the header is ignored. Without this every client behind a proxy
    /// would share the proxy's address, and its throttling.
    pub fn with_trusted_proxy(mut self, proxy: Option<std::net::IpAddr>) -> Self {
        self.trusted_proxy = proxy;
        self
    }

    /// Marks cookies `Secure` (and names them with the `__Host-` prefix) and sends
    /// `Strict-Transport-Security`: set this when clients reach the server over TLS, its own
    /// (`secure-ehr serve --tls-cert`) or a TLS-terminating proxy's.
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// Replaces the per-client registration throttle: `burst` at once, then one per `refill`.
    pub fn with_signup_limit(mut self, burst: u32, refill: Duration) -> Self {
        self.signups = Arc::new(Throttle::new(burst, refill));
        self
    }

    /// The one-time set-up token while there is no admin: `serve` prints the link
    /// `/setup?token=…` (the token is hex, so URL-safe). `None` once an admin exists.
    pub fn setup_token(&self) -> Option<String> {
        self.setup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|t| t.as_str().to_owned())
    }

    /// Ends the set-up link (the admin exists).
    pub(crate) fn end_setup(&self) {
        self.setup.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// The records service.
    pub fn service(&self) -> &svc::Service {
        &self.service
    }
}

/// The whole HTTP surface: `/api/…`, `/fhir/…`, `/ipfs/{cid}`, the web pages and `/static/…`, and
/// `POST /rpc` when [`AppState::with_rpc`] offers it.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so login and
/// registration throttling can key on the client's IP.
pub fn router(state: AppState) -> Router {
    let secure_cookies = state.secure_cookies;
    let app = Router::new()
        .merge(api::router())
        .merge(fhir::router())
        .merge(web::router(&state))
        .merge(rpc::router(&state))
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    with_security_headers(app, secure_cookies)
}

/// `router` with the headers every response carries (HSTS too when `https`).
fn with_security_headers(router: Router, https: bool) -> Router {
    router.layer(middleware::from_fn_with_state(https, security_headers))
}

/// Every JSON API operation the router serves, as (path, method) with OpenAPI's path
/// syntax; `openapi.json` documents exactly these (checked by the tests).
pub fn api_operations() -> Vec<(&'static str, axum::http::Method)> {
    api::routes()
        .into_iter()
        .flat_map(|(path, methods, _)| methods.iter().map(move |m| (path, m.clone())))
        .collect()
}

/// Serves [`router`] on `listener` with `ehr_serve`'s default timeouts over plain HTTP;
/// see [`serve_with`].
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    serve_with(
        listener,
        state,
        ehr_serve::Options::default(),
        std::future::pending(),
    )
    .await
}

/// Serves [`router`] on `listener` (HTTPS with `options.tls`, header/body/idle timeouts),
/// with each connection's peer address available for login and registration throttling
/// (`ConnectInfo<SocketAddr>`), until `shutdown` resolves.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    options: ehr_serve::Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    ehr_serve::serve(listener, router(state), options, shutdown).await
}

/// `Strict-Transport-Security` when cookies are `Secure` (the server is reached over TLS):
/// a year, subdomains not included (the server does not know what else runs there).
pub const HSTS: &str = "max-age=31536000";

/// The content security policy: everything from this origin only, no inline script or
/// style, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Headers on every response. Responses carry personal data, so nothing is cached unless
/// the handler said otherwise (static assets, immutable blocks).
async fn security_headers(State(https): State<bool>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    // A handler may set a stricter one of its own (an attachment served in place).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// This server's origin as the client reached it (`https://host:port`): the `Host` header
/// if it is a plain host name, `localhost` otherwise; https when cookies are `Secure`.
fn origin(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost");
    let scheme = if state.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// Lower-case hex of `bytes`.
fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
