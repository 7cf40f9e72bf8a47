//! "Take your data" (GDPR articles 15 and 20, HIPAA's right of access): everything held
//! about a patient as one FHIR R4 `Bundle` of type `collection` — every record at every
//! version (its resources by id, each version's with its own `meta.versionId`; each read through the audited path, so the export itself is in the access
//! log), the grants as `Consent` and the access log as `AuditEvent`, in the shapes
//! `/fhir/Consent` and `/fhir/AuditEvent` serve.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::consent::{audit_event, consent, instant};
use super::{base_url, expose};
use crate::AppState;
use crate::error::{Error, Result};
use crate::svc;

/// The export of `me`'s data; `headers` give the base of its `fullUrl`s.
pub(crate) async fn export(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    me: &svc::PatientSession,
) -> Result<Value> {
    let svc = state.service();
    let base = base_url(state, headers);
    let patient_id = svc
        .patient_id(me.address())
        .await?
        .ok_or_else(|| Error::NotFound("your patient registration".into()))?;
    let mut entries = Vec::new();
    let mut urls = HashSet::new();
    // FHIR's bdl-7: a fullUrl is unique unless its entries differ in `meta.versionId` (the
    // versions of one record's resources); bdl-8: it names no version. A repeated id
    // otherwise (a grant given again) gets a suffix.
    let mut push = |url: String, resource: Value| {
        let version = resource["meta"]["versionId"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let (mut u, mut n) = (url.clone(), 1);
        while !urls.insert((u.clone(), version.clone())) {
            n += 1;
            u = format!("{url}-{n}");
        }
        entries.push(json!({ "fullUrl": u, "resource": resource }));
    };
    for summary in svc.my_records(me).await? {
        for v in &summary.versions {
            let read = svc
                .read_record(me, summary.record_id, Some(v.version))
                .await?;
            for e in expose(read.record_id, patient_id, &read.bundle) {
                let mut resource = e.resource;
                resource["meta"]["versionId"] = json!(read.version.to_string());
                resource["meta"]["lastUpdated"] = json!(instant(v.timestamp));
                push(format!("{base}/{}/{}", e.resource_type, e.id), resource);
            }
        }
    }
    for g in svc.grants(me).await? {
        let c = consent(patient_id, &g);
        push(
            format!("{base}/Consent/{}", c["id"].as_str().unwrap_or_default()),
            c,
        );
    }
    for l in svc.access_log(me).await? {
        let a = audit_event(patient_id, &l);
        push(
            format!("{base}/AuditEvent/{}", a["id"].as_str().unwrap_or_default()),
            a,
        );
    }
    Ok(json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(ehr_primitives::unix_now()),
        "identifier": { "system": "urn:secure-ehr:export", "value": format!("patient-{patient_id}") },
        "entry": entries,
    }))
}
