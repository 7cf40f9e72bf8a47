//! Attachments in a record: the `DocumentReference` SecureEHR writes for a document stored
//! beside the record (a PDF, a photo, a DICOM file), and the list of them read back.
//!
//! The bytes are not in the bundle: the DocumentReference says what they are (type, title,
//! size, SHA-256, when made) and where they are fetched (`content[0].attachment.url`). It is
//! posted as any addition ([`add_to_record`]), so it joins the record's next version with the
//! Provenance of whoever wrote it.

use std::fmt;

use serde_json::{Map, Value, json};

use crate::*;

/// What a stored attachment's DocumentReference says.
#[derive(Clone, Copy)]
pub struct DocumentInfo<'a> {
    /// Its media type, e.g. `application/pdf` (an R4 `code`: no leading, trailing or
    /// repeated whitespace).
    pub content_type: &'a str,
    /// A name to show, e.g. the uploaded file's name (control characters become spaces,
    /// it is cut to [`MAX_STRING_CHARS`], and a blank one is left out).
    pub title: Option<&'a str>,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its bytes.
    pub sha256: [u8; 32],
    /// Where it is fetched, e.g. `/api/records/5/attachments/1` (a URI: no whitespace).
    pub url: &'a str,
    /// The attachment's number in its record, from 1.
    pub index: u32,
    /// When it was stored, a FHIR `instant`, e.g. `2026-12-03T10:00:00Z` (see [`instant`]).
    pub created: &'a str,
}

/// The identifier system of the DocumentReferences SecureEHR writes for attachments; the
/// identifier's value is the attachment's number.
pub const ATTACHMENT_SYSTEM: &str = "urn:secure-ehr:attachment";
/// The extension on `Attachment` holding the SHA-256 of the bytes, as lowercase hex in
/// `valueString` (R4's own `Attachment.hash` is SHA-1).
pub const SHA256_EXTENSION: &str = "urn:secure-ehr:sha256";
/// The extension on `Attachment` holding its size in bytes, as `valueDecimal`, for a size
/// R4's `Attachment.size` (an `unsignedInt`, at most 2^31 - 1) cannot hold; `size` is then
/// left out.
pub const SIZE_EXTENSION: &str = "urn:secure-ehr:size";

/// The largest size `Attachment.size` holds (R4 `unsignedInt`: 0 to 2^31 - 1).
const MAX_UNSIGNED_INT: u64 = i32::MAX as u64;

/// A transaction Bundle (JSON) holding one `DocumentReference` for `info`, for
/// [`add_to_record`] onto the record whose Patient has the ID `patient_id`.
///
/// The DocumentReference has `status` `current`, `subject` `Patient/{patient_id}` (which
/// `add_to_record` points at the base record's Patient), `date` = `created`, `identifier`
/// `[{system: ATTACHMENT_SYSTEM, value: index}]`, `description` = the title, and
/// `content[0].attachment` `{contentType, url, size, title, creation}` with the SHA-256 as
/// the extension [`SHA256_EXTENSION`]. It has no `fullUrl` and no `id` (`add_to_record` gives
/// the entry a `urn:uuid:` one), and its entry a `POST` request.
///
/// It is an addition to an existing record (it holds no Patient, so it is no record on its
/// own). `content_type`, `url` and `created` go in as given: `add_to_record` refuses one that
/// is not an R4 `code`, `uri` or `instant`, at its path (`entry[0].resource.date`).
pub fn document_bundle(info: &DocumentInfo<'_>, patient_id: u64) -> Vec<u8> {
    let title = info.title.and_then(clean_title);
    let mut attachment = Map::new();
    attachment.insert("contentType".into(), json!(info.content_type));
    attachment.insert("url".into(), json!(info.url));
    let mut extension = vec![json!({ "url": SHA256_EXTENSION, "valueString": hex(&info.sha256) })];
    if info.size <= MAX_UNSIGNED_INT {
        attachment.insert("size".into(), json!(info.size));
    } else {
        extension.push(json!({ "url": SIZE_EXTENSION, "valueDecimal": info.size }));
    }
    if let Some(t) = &title {
        attachment.insert("title".into(), json!(t));
    }
    attachment.insert("creation".into(), json!(info.created));
    attachment.insert("extension".into(), Value::Array(extension));

    let mut doc = Map::new();
    doc.insert("resourceType".into(), json!("DocumentReference"));
    doc.insert(
        "identifier".into(),
        json!([{ "system": ATTACHMENT_SYSTEM, "value": info.index.to_string() }]),
    );
    doc.insert("status".into(), json!("current"));
    doc.insert(
        "subject".into(),
        json!({ "reference": format!("Patient/{patient_id}") }),
    );
    doc.insert("date".into(), json!(info.created));
    if let Some(t) = &title {
        doc.insert("description".into(), json!(t));
    }
    doc.insert("content".into(), json!([{ "attachment": attachment }]));

    serde_json::to_vec(&json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "resource": doc,
            "request": { "method": "POST", "url": "DocumentReference" },
        }],
    }))
    .expect("JSON values always serialize")
}

/// An attachment a record lists, as [`documents`] reads it back.
#[derive(Clone, PartialEq, Eq)]
pub struct ListedDocument {
    /// Its number in the record (the [`ATTACHMENT_SYSTEM`] identifier's value).
    pub index: u32,
    /// `content[0].attachment.contentType` (`application/octet-stream` if absent).
    pub content_type: String,
    /// `content[0].attachment.title`, else the `description`.
    pub title: Option<String>,
    /// `content[0].attachment.size`, else its [`SIZE_EXTENSION`] (0 if neither).
    pub size: u64,
    /// The [`SHA256_EXTENSION`] on the attachment, if it holds 64 hex digits.
    pub sha256: Option<[u8; 32]>,
    /// `content[0].attachment.creation`, else the DocumentReference's `date`.
    pub created: Option<String>,
}

/// The attachments a record bundle (its JSON, as stored) lists: every `DocumentReference`
/// entry with an [`ATTACHMENT_SYSTEM`] identifier whose value is a number, in bundle order,
/// whatever its `status`.
pub fn documents(bundle: &Value) -> Vec<ListedDocument> {
    let Some(entries) = bundle.get("entry").and_then(Value::as_array) else {
        return Vec::new();
    };
    entries
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "DocumentReference")
        .filter_map(listed)
        .collect()
}

fn listed(r: &Value) -> Option<ListedDocument> {
    let index = r["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["system"] == ATTACHMENT_SYSTEM)?["value"]
        .as_str()?
        .parse()
        .ok()?;
    let a = &r["content"][0]["attachment"];
    let ext = |url: &str| {
        a["extension"]
            .as_array()
            .and_then(|exts| exts.iter().find(|x| x["url"] == url))
    };
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Some(ListedDocument {
        index,
        content_type: text(&a["contentType"])
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        title: text(&a["title"]).or_else(|| text(&r["description"])),
        size: a["size"]
            .as_u64()
            .or_else(|| ext(SIZE_EXTENSION).and_then(|x| x["valueDecimal"].as_u64()))
            .unwrap_or(0),
        sha256: ext(SHA256_EXTENSION)
            .and_then(|x| x["valueString"].as_str())
            .and_then(unhex),
        created: text(&a["creation"]).or_else(|| text(&r["date"])),
    })
}

/// A title as an R4 `string` holds it: control characters as spaces, trimmed, at most
/// [`MAX_STRING_CHARS`]; `None` if nothing is left.
fn clean_title(t: &str) -> Option<String> {
    let t: String = t
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let t: String = t.trim().chars().take(MAX_STRING_CHARS).collect();
    let t = t.trim_end();
    (!t.is_empty()).then(|| t.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

// A title is personal data (a file's name says what it is about): `Debug` leaves it out.

impl fmt::Debug for DocumentInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentInfo")
            .field("index", &self.index)
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ListedDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListedDocument")
            .field("index", &self.index)
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}
