//! `POST /fhir`: a `transaction` or `collection` Bundle stored in a patient's records.
//!
//! - Without a record named, a patient's bundle is a new record of theirs; a provider's is
//!   a new record owned by the patient it names (a reference `Patient/{patient ID}`),
//!   which needs write access to all of that patient's records.
//! - With `Bundle.identifier` `{system: urn:secure-ehr:record, value: N}`, its resources are
//!   added to record N as its next version (the owner, or a provider with write access to
//!   it; the current version is read through the audited path first).
//!
//! A provider's version holds a `Provenance` naming it; the chain names every version's
//! author. The answer is a `transaction-response` naming each stored resource.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Caller, FhirAuth, Outcome, RECORD_SYSTEM, Result, body_or, who};
use crate::AppState;
use crate::error::Error;
use crate::svc;

pub(super) async fn post_bundle(
    State(state): State<AppState>,
    auth: std::result::Result<FhirAuth, Error>,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response> {
    let a = auth?;
    let body = body_or(body, crate::FHIR_MAX_BODY_BYTES)?;
    let given: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let entries = given["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    // Every type the bundle holds must be one the token may create.
    if let Some(s) = &a.scopes {
        for e in entries {
            let t = e["resource"]["resourceType"].as_str().unwrap_or_default();
            if !s.allows(t, 'c') {
                return Err(Error::Forbidden(format!(
                    "the token's scope ({}) does not allow 'c' on {t}",
                    s.text
                ))
                .into());
            }
        }
    }
    let record = named_record(&given)?;
    let svc = state.service();
    let (stored, patient_id) = match who(a.auth)? {
        Caller::Patient(me) => {
            let stored = match record {
                None => svc.put_record(&me, &body).await?,
                Some(id) => svc.add_to_own_record(&me, id, &body).await?,
            };
            (stored, svc.patient_id(me.address()).await?.unwrap_or(0))
        }
        Caller::Provider(me) => {
            let patient_id = match (named_patient(entries)?, record) {
                (Some(p), _) => p,
                (None, Some(id)) => svc.record_patient(id).await?,
                (None, None) => {
                    return Err(Outcome(Error::InvalidInput {
                        field: "entry".into(),
                        message: "name the patient: a reference to Patient/{patient ID}".into(),
                    }));
                }
            };
            let stored = svc.add_resources(&me, patient_id, record, &body).await?;
            (stored, patient_id)
        }
    };
    let entry: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let t = e["resource"]["resourceType"].as_str().unwrap_or_default();
            let id = svc::fhir::server_id(t, stored.record_id, patient_id, stored.added_from + i);
            json!({ "response": {
                "status": "201 Created",
                "location": format!("{t}/{id}"),
            } })
        })
        .collect();
    let mut response = super::fhir(
        StatusCode::OK,
        json!({ "resourceType": "Bundle", "type": "transaction-response", "entry": entry }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/api/records/{}", stored.record_id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The record a bundle adds to: its `identifier` of system [`RECORD_SYSTEM`], if any.
fn named_record(bundle: &Value) -> Result<Option<u64>> {
    let id = &bundle["identifier"];
    if id["system"].as_str() != Some(RECORD_SYSTEM) {
        return Ok(None);
    }
    id["value"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&v| v != 0)
        .map(Some)
        .ok_or_else(|| {
            Outcome(Error::InvalidInput {
                field: "identifier.value".into(),
                message: format!("a record ID (a number) for system {RECORD_SYSTEM}"),
            })
        })
}

/// The patient the entries refer to as `Patient/{patient ID}`: one at most.
fn named_patient(entries: &[Value]) -> Result<Option<u64>> {
    let mut found: Option<u64> = None;
    for e in entries {
        let mut refs = Vec::new();
        references(&e["resource"], &mut refs, 0);
        for r in refs {
            let Some(id) = r
                .strip_prefix("Patient/")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            match found {
                Some(f) if f != id => {
                    return Err(Outcome(Error::InvalidInput {
                        field: "entry".into(),
                        message: "the resources refer to more than one patient".into(),
                    }));
                }
                _ => found = Some(id),
            }
        }
    }
    Ok(found)
}

fn references<'a>(v: &'a Value, out: &mut Vec<&'a str>, depth: usize) {
    if depth > 32 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child.as_str()) {
                    ("reference", Some(r)) => out.push(r),
                    _ => references(child, out, depth + 1),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references(i, out, depth + 1)),
        _ => {}
    }
}
