//! Attachments (issue 19): `POST /api/records/{id}/attachments` takes the raw file as the
//! request body (its `Content-Type` the file's type, `?title=` its title), streamed into the
//! records service; `GET /api/records/{id}/attachments/{number}` streams it back, whole or
//! one byte range, as the stored type — inline only for images and PDF, anything else as
//! a download.

use axum::body::Body;
use axum::http::HeaderMap;

use super::*;
use crate::svc::attachments::ByteRange;

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
    crate::files::response(d, range.is_some(), false)
}
