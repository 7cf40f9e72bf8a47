//! An attachment's bytes as an HTTP response, for the JSON API and the web pages alike:
//! its stored type, its length, `Accept-Ranges`, `Content-Range` for a range,
//! `Content-Disposition` (`inline` only for images and PDF, else `attachment`), the
//! whole file's `Repr-Digest` and a content security policy of its own.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::svc;
use crate::svc::attachments::AttachmentPolicy;

/// The response streaming `d` (206 when `ranged`); `download` forces `attachment`.
pub(crate) fn response(
    d: svc::AttachmentDownload,
    ranged: bool,
    download: bool,
) -> Result<Response> {
    let status = if ranged {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let disposition = if !download && AttachmentPolicy::inline(&d.content_type) {
        "inline"
    } else {
        "attachment"
    };
    let name = file_name(d.title.as_deref(), d.attachment);
    let mut response = Response::new(Body::from_stream(
        d.body.map(|r| r.map_err(std::io::Error::other)),
    ));
    *response.status_mut() = status;
    let h = response.headers_mut();
    let value = |s: String| HeaderValue::from_str(&s).map_err(|e| Error::Internal(Box::new(e)));
    h.insert(header::CONTENT_TYPE, value(d.content_type.clone())?);
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(d.range.end - d.range.start),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_DISPOSITION,
        value(format!("{disposition}; filename=\"{name}\""))?,
    );
    if ranged {
        h.insert(
            header::CONTENT_RANGE,
            value(format!(
                "bytes {}-{}/{}",
                d.range.start,
                d.range.end.saturating_sub(1),
                d.size
            ))?,
        );
    }
    h.insert("x-access-tx", value(d.access_tx.to_string())?);
    // The whole file's digest (RFC 9530), for the client to check what it got.
    if let (false, Some(sha256)) = (ranged, d.sha256) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(sha256);
        h.insert("repr-digest", value(format!("sha-256=:{b64}:"))?);
    }
    // Shown in place, it may load nothing and run no script; only a PDF keeps what the
    // browser's own viewer needs (a sandboxed document gets no PDF viewer).
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if d.content_type.starts_with("application/pdf") {
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; object-src 'self'"
        } else {
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
        }),
    );
    Ok(response)
}

/// A `Content-Disposition` file name: the title's ASCII letters, digits, `.`, `-` and `_`
/// (others become `_`), else `attachment-N`.
fn file_name(title: Option<&str>, number: u32) -> String {
    let cleaned: String = title
        .unwrap_or_default()
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.trim_matches('_').is_empty() {
        format!("attachment-{number}")
    } else {
        cleaned
    }
}
