//! Attachments (issue 19): `POST /api/records/{id}/attachments` takes the raw file as the
//! request body (its `Content-Type` the file's type, `?title=` its title), streamed into the
//! records service; `GET /api/records/{id}/attachments/{number}` streams it back, whole or
//! one byte range, as the stored type — inline only for images and PDF, anything else as
//! a download.

use axum::body::Body;
use axum::http::HeaderMap;
use futures::StreamExt;

use super::*;
use crate::svc::attachments::{AttachmentPolicy, ByteRange};

/// The attachments a read version lists, for [`types::ReadRecord`].
pub(super) fn listed(bundle: &serde_json::Value) -> Vec<types::Attachment> {
    svc::fhir::documents(bundle)
        .into_iter()
        .map(|d| types::Attachment {
            number: d.index,
            content_type: d.content_type,
            title: d.title,
            size: d.size,
            sha256: d.sha256.map(hex::encode),
            created: d.created,
        })
        .collect()
}

#[derive(Deserialize)]
pub(super) struct AttachQuery {
    title: Option<String>,
}

/// The patient adds a file to one of its records: the next version holds it.
pub(super) async fn attach(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<types::AttachmentStored>)> {
    let id = parse_num("id", &id)?;
    let me = auth.patient()?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::input(
                "content_type",
                "the file's type is required as Content-Type",
            )
        })?;
    let declared_len = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| Error::input("body", "Content-Length is not a number"))?,
        ),
    };
    let input = svc::AttachmentInput {
        content_type,
        title: q.title.as_deref().filter(|t| !t.trim().is_empty()),
        declared_len,
    };
    let s = state
        .service()
        .attach(&me, id, input, body.into_data_stream())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(types::AttachmentStored {
            record_id: s.stored.record_id,
            version: s.stored.version,
            manifest_cid: s.stored.manifest_cid,
            tx_hash: s.stored.tx_hash,
            block_number: s.stored.block_number,
            attachment: s.attachment,
            content_type: s.content_type,
            size: s.size,
            sha256: s.sha256,
        }),
    ))
}

/// An attachment's bytes (a reader the contract allows; the read is logged first), whole
/// or the one range `Range` asks for (206). A `Range` this does not serve (several ranges,
/// another unit) gets the whole file, as RFC 9110 allows.
pub(super) async fn download(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, number)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = parse_num("id", &id)?;
    let number: u32 = parse_num("number", &number)?;
    let version = q.version.map(|v| parse_num("version", &v)).transpose()?;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(ByteRange::parse);
    let service = state.service();
    let d = match &auth.session {
        svc::Any::Patient(p) => service.attachment(p, id, version, number, range).await?,
        svc::Any::Provider(p) => service.attachment(p, id, version, number, range).await?,
        svc::Any::Admin(_) => {
            return Err(Error::Forbidden(
                "only a patient or a provider may read records".into(),
            ));
        }
    };
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let disposition = if AttachmentPolicy::inline(&d.content_type) {
        "inline"
    } else {
        "attachment"
    };
    let name = file_name(d.title.as_deref(), number);
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
    if range.is_some() {
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
    if let (None, Some(sha256)) = (range, d.sha256) {
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
