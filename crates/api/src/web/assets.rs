//! The two static files, compiled in: the stylesheet and the icon.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const STYLE_CSS: &str = include_str!("../../static/style.css");
const ICON_SVG: &str = include_str!("../../static/icon.svg");

pub(super) async fn style_css() -> Response {
    asset(STYLE_CSS, "text/css; charset=utf-8")
}

pub(super) async fn icon_svg() -> Response {
    asset(ICON_SVG, "image/svg+xml")
}

fn asset(body: &'static str, mime: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
