//! Attachments on the web pages: a patient adds a document or photo to a record from a file
//! input (on a phone, the camera), streamed from the `multipart/form-data` body into the
//! records service as it arrives (the CSRF token rides in the form's URL, so the guard need
//! not read the body first); a reader with access opens one in the browser (images and PDF
//! in place) or downloads it.

use axum::extract::{Extension, Multipart, Path, Query};
use futures::StreamExt;

use super::*;
use crate::error::Error;
use crate::params::parse_num;
use crate::svc::attachments::{ByteRange, Known, SNIFF_LEN};

/// Whether `path` is a page that takes a file streamed (its CSRF token in the query).
pub(super) fn is_stream_upload(path: &str) -> bool {
    path.strip_prefix("/patient/records/")
        .and_then(|rest| rest.strip_suffix("/attachments"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// The `csrf` of a query string.
pub(super) fn query_csrf(query: Option<&str>) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default())
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf"))
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// The most bytes a title field may have.
const MAX_TITLE: usize = 1000;

/// `POST /patient/records/{id}/attachments`: the form's `title`, then its file (`file`, or
/// `photo` from the camera input); the next version holds it.
pub(super) async fn attach(
    State(state): State<AppState>,
    SignedIn(s): SignedIn<PatientOnly>,
    Path(id): Path<String>,
    mut form: Multipart,
) -> PageResult {
    let id: u64 = parse_num("id", &id)?;
    let bad_form =
        |e: axum::extract::multipart::MultipartError| Error::input("file", e.body_text());
    let mut title: Option<String> = None;
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        match field.name() {
            Some("title") => {
                let mut t = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    t.extend_from_slice(&chunk);
                    if t.len() > MAX_TITLE {
                        return Err(Error::input("title", "at most 1000 characters").into());
                    }
                }
                title = String::from_utf8(t).ok().filter(|t| !t.trim().is_empty());
            }
            Some("file" | "photo") => {
                let name = field.file_name().unwrap_or_default().to_owned();
                if name.is_empty() {
                    // The input left empty (the form has two: a file and a photo).
                    continue;
                }
                let declared = field.content_type().unwrap_or_default().to_owned();
                // The first bytes say what the file is when the browser does not know
                // (a DICOM file is often `application/octet-stream`).
                let mut head = Vec::new();
                while head.len() < SNIFF_LEN {
                    match field.chunk().await.map_err(bad_form)? {
                        Some(chunk) => head.extend_from_slice(&chunk),
                        None => break,
                    }
                }
                let content_type = match Known::of(&declared) {
                    Some(k) => k.media_type().to_owned(),
                    None => Known::ALL
                        .into_iter()
                        .find(|k| k.matches(&head))
                        .map_or(declared, |k| k.media_type().to_owned()),
                };
                let title = title.clone().unwrap_or(name);
                let input = svc::AttachmentInput {
                    content_type: &content_type,
                    title: Some(&title),
                    declared_len: None,
                };
                let body = futures::stream::once(async move { Ok(Bytes::from(head)) })
                    .chain(field.map(|c| c.map_err(|e| e.body_text())));
                let body = Box::pin(body);
                state.service().attach(&s, id, input, body).await?;
                return Ok(see_other(&format!("/patient/records/{id}")));
            }
            _ => {}
        }
    }
    Err(Error::input("file", "choose a file or take a photo").into())
}

#[derive(Deserialize)]
pub(super) struct FileQuery {
    version: Option<String>,
    download: Option<String>,
}

/// `GET /records/{id}/attachments/{number}`: the file, for the owner or a provider with
/// access (the read is logged first); in place for images and PDF unless `?download=1`.
pub(super) async fn file(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    Path((id, number)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
    headers: axum::http::HeaderMap,
) -> PageResult {
    let id: u64 = parse_num("id", &id)?;
    let number: u32 = parse_num("number", &number)?;
    let version: Option<u32> = q.version.map(|v| parse_num("version", &v)).transpose()?;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(ByteRange::parse);
    let service = state.service();
    let d = match web.session(&state) {
        Some(svc::Any::Patient(p)) => service.attachment(&p, id, version, number, range).await?,
        Some(svc::Any::Provider(p)) => service.attachment(&p, id, version, number, range).await?,
        Some(other) => {
            return Err(PageError::WrongRole {
                page: Role::Patient,
                session: other.role(),
            });
        }
        None => return Err(PageError::SignIn(Role::Patient)),
    };
    Ok(crate::files::response(
        d,
        range.is_some(),
        q.download.is_some(),
    )?)
}
