//! The router's fallbacks: a route or method nobody serves gets JSON under `/api` and
//! `/ipfs`, and a page elsewhere.

use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// The fallback: JSON under `/api` and `/ipfs`, a page elsewhere.
pub(crate) async fn not_found(uri: Uri) -> Response {
    if is_api(&uri) {
        Error::NotFound("no such route".into()).into_response()
    } else {
        crate::web::not_found_page()
    }
}

/// The method fallback: a route that exists, asked with a method it does not take.
pub(crate) async fn method_not_allowed(uri: Uri) -> Response {
    let mut r = if is_api(&uri) {
        Json(serde_json::json!({
            "error": "method_not_allowed",
            "message": "this route does not take that method",
        }))
        .into_response()
    } else {
        "method not allowed".into_response()
    };
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

fn is_api(uri: &Uri) -> bool {
    uri.path().starts_with("/api/") || uri.path().starts_with("/ipfs/")
}
