//! The static files, compiled in: the stylesheet, the icons, the web app manifest, the one
//! script (it installs the service worker) and the service worker itself (`static/`; the PNG
//! icons are drawn by `static/icons.py`).

use axum::http::header;
use axum::response::{IntoResponse, Response};

const STYLE_CSS: &str = include_str!("../../static/style.css");
const ICON_SVG: &str = include_str!("../../static/icon.svg");
const APP_JS: &str = include_str!("../../static/app.js");
const SW_JS: &str = include_str!("../../static/sw.js");
const MANIFEST: &str = include_str!("../../static/manifest.webmanifest");
const ICON_192: &[u8] = include_bytes!("../../static/icon-192.png");
const ICON_512: &[u8] = include_bytes!("../../static/icon-512.png");
const ICON_MASKABLE_512: &[u8] = include_bytes!("../../static/icon-maskable-512.png");

/// Where the offline page lives; the service worker caches it (no personal data in it).
pub(super) const OFFLINE_PATH: &str = "/offline";

pub(super) async fn style_css() -> Response {
    asset(STYLE_CSS.as_bytes(), "text/css; charset=utf-8")
}

pub(super) async fn icon_svg() -> Response {
    asset(ICON_SVG.as_bytes(), "image/svg+xml")
}

pub(super) async fn icon_192() -> Response {
    asset(ICON_192, "image/png")
}

pub(super) async fn icon_512() -> Response {
    asset(ICON_512, "image/png")
}

pub(super) async fn icon_maskable_512() -> Response {
    asset(ICON_MASKABLE_512, "image/png")
}

pub(super) async fn app_js() -> Response {
    asset(APP_JS.as_bytes(), "text/javascript; charset=utf-8")
}

pub(super) async fn manifest() -> Response {
    asset(MANIFEST.as_bytes(), "application/manifest+json")
}

/// The service worker, at the root so that its scope is the whole app. Checked for a new
/// version on every load (`no-cache`), so a fix reaches installed apps at once.
pub(super) async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SW_JS,
    )
        .into_response()
}

fn asset(body: &'static [u8], mime: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
