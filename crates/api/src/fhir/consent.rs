//! Grants as `Consent` and the access log as `AuditEvent` (IHE Basic Audit Log Patterns,
//! "patient read"): `GET /fhir/Consent`, `POST /fhir/Consent` (grant, or revoke with status
//! `inactive`), `GET /fhir/AuditEvent`.
//!
//! A provider is named by an identifier of system [`PROVIDER_SYSTEM`] whose value is its
//! address (or, when posting, a username of this server); a record by one of system
//! [`RECORD_SYSTEM`] whose value is its record ID.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::*;

/// The identifier system naming a provider (value: its address, or a local username).
pub const PROVIDER_SYSTEM: &str = "urn:secure-ehr:provider";
/// The identifier system naming a record (value: its record ID).
pub const RECORD_SYSTEM: &str = "urn:secure-ehr:record";
/// The identifier system naming any account (value: its address), in `AuditEvent.agent`.
pub const ACCOUNT_SYSTEM: &str = "urn:secure-ehr:account";

const BTG: &str = r#"{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"BTG","display":"break the glass"}"#;

/// Unix seconds as a FHIR `instant`.
pub(crate) fn instant(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let d = ehr_records::fhir::Date::from_unix_days(days);
    let s = unix % 86_400;
    format!("{d}T{:02}:{:02}:{:02}Z", s / 3600, (s % 3600) / 60, s % 60)
}

/// A FHIR `date` or `dateTime` as unix seconds (a date alone: the end of that day, UTC).
fn unix_of(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&m) {
        return None;
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = if s.len() == 10 {
        days * 86_400 + 86_399
    } else {
        if b.get(10) != Some(&b'T') {
            return None;
        }
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let zone = s.get(19..)?;
        let zone = zone.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
        let offset = match zone {
            "Z" => 0,
            z if z.len() == 6 => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                sign * (z[1..3].parse::<i64>().ok()? * 3600 + z[4..6].parse::<i64>().ok()? * 60)
            }
            _ => return None,
        };
        days * 86_400 + h * 3600 + mi * 60 + se - offset
    };
    u64::try_from(secs).ok()
}

pub(super) fn consent(patient_id: u64, g: &svc::GrantView) -> Value {
    let scope = g.record_id.map_or("all".to_owned(), |r| r.to_string());
    let mut provision = json!({
        "type": "permit",
        "period": { "end": instant(g.expires_at) },
        "actor": [{
            "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP", "display": "primary information recipient" }] },
            "reference": {
                "identifier": { "system": PROVIDER_SYSTEM, "value": g.provider_address.to_string() },
                "display": g.provider.clone().unwrap_or_else(|| g.provider_address.to_string()),
            },
        }],
        "action": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access" }] }],
    });
    if let Some(r) = g.record_id {
        provision["data"] = json!([{ "meaning": "instance", "reference": {
            "identifier": { "system": RECORD_SYSTEM, "value": r.to_string() },
            "display": format!("Record {r}"),
        } }]);
    }
    json!({
        "resourceType": "Consent",
        "id": format!("{}-{scope}", g.provider_address.to_string().to_lowercase()),
        "status": if g.active { "active" } else { "inactive" },
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
        "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent" }] }],
        "patient": { "reference": format!("Patient/{patient_id}") },
        "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN" }] },
        "provision": provision,
    })
}

pub(super) fn audit_event(patient_id: u64, e: &svc::AccessLogEntry) -> Value {
    let btg: Value = serde_json::from_str(BTG).expect("a coding");
    let who = match (&e.reader_username, &e.reader_organisation) {
        (Some(u), Some(o)) => format!("{u} ({o})"),
        (Some(u), None) => u.clone(),
        (None, _) => e.reader.to_string(),
    };
    let mut agent = json!({
        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient" }] },
        "who": { "identifier": { "system": ACCOUNT_SYSTEM, "value": e.reader.to_string() }, "display": who },
        "requestor": true,
    });
    let version = e
        .version
        .map_or(String::new(), |v| format!(", version {v}"));
    let mut ev = json!({
        "resourceType": "AuditEvent",
        "id": format!("{:x}", e.tx_hash).trim_start_matches("0x").to_owned(),
        "meta": { "profile": ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"] },
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "Restful Operation" },
        "subtype": [{ "system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read" }],
        "action": "R",
        "recorded": instant(e.timestamp),
        "outcome": "0",
        "agent": [],
        "source": {
            "observer": { "display": "SecureEHR registry contract (logAccess)" },
            "type": [{ "system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server" }],
        },
        "entity": [
            { "what": { "reference": format!("Patient/{patient_id}") },
              "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person" },
              "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" } },
            { "what": { "identifier": { "system": RECORD_SYSTEM, "value": e.record_id.to_string() },
                        "display": format!("Record {}{version}", e.record_id) },
              "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
              "detail": [{ "type": "transaction", "valueString": e.tx_hash.to_string() }] },
        ],
    });
    if e.emergency {
        let mut purpose = json!({ "coding": [btg] });
        if let Some(reason) = &e.reason {
            purpose["text"] = json!(reason);
        }
        agent["purposeOfUse"] = json!([purpose.clone()]);
        ev["purposeOfEvent"] = json!([purpose]);
    }
    ev["agent"] = json!([agent]);
    ev
}

#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    patient: Option<String>,
    #[serde(rename = "_count")]
    count: Option<String>,
    #[serde(rename = "_offset")]
    offset: Option<String>,
}

impl ListQuery {
    fn search(&self) -> SearchQuery {
        SearchQuery {
            patient: self.patient.clone(),
            code: None,
            category: None,
            date: None,
            count: self.count.clone(),
            offset: self.offset.clone(),
        }
    }
}

/// The calling patient's ID, refusing a `patient` that names someone else.
async fn own_patient(state: &AppState, me: &svc::PatientSession, q: &ListQuery) -> Result<u64> {
    let pid = state
        .service()
        .patient_id(me.address())
        .await?
        .ok_or_else(|| Error::NotFound("this account's patient".into()))?;
    if let Some(p) = &q.patient
        && parse_id(p.trim_start_matches("Patient/"), "patient")? != pid
    {
        return Err(Error::Forbidden("a patient sees their own consents and log".into()).into());
    }
    Ok(pid)
}

fn listed(resource_type: &str, resources: Vec<Value>) -> Vec<Exposed> {
    resources
        .into_iter()
        .map(|resource| Exposed {
            resource_type: resource_type.to_owned(),
            id: resource["id"].as_str().unwrap_or_default().to_owned(),
            resource,
        })
        .collect()
}

pub(super) async fn list_consents(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: std::result::Result<FhirAuth, Error>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let base = base_url(&state, &headers);
    match caller(auth, "Consent", 's')? {
        Caller::Patient(me) => {
            let pid = own_patient(&state, &me, &q).await?;
            let grants = state.service().grants(&me).await?;
            let found = grants.iter().map(|g| consent(pid, g)).collect();
            page(&base, &q.search(), "Consent", listed("Consent", found))
        }
        Caller::Provider(me) => {
            // The grants this provider holds now, as the patients' consents.
            let shared = state.service().shared_with_me(&me).await?;
            let want = match &q.patient {
                Some(p) => Some(parse_id(p.trim_start_matches("Patient/"), "patient")?),
                None => None,
            };
            let found = shared
                .iter()
                .filter(|s| want.is_none_or(|w| w == s.patient_id))
                .map(|s| {
                    consent(
                        s.patient_id,
                        &svc::GrantView {
                            provider: Some(me.session().username.clone()),
                            provider_address: me.address(),
                            record_id: s.record_id,
                            expires_at: s.expires_at,
                            revoked_at: None,
                            active: true,
                            emergency: None,
                            write: None,
                        },
                    )
                })
                .collect();
            page(&base, &q.search(), "Consent", listed("Consent", found))
        }
    }
}

pub(super) async fn list_audit_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: std::result::Result<FhirAuth, Error>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let Caller::Patient(me) = caller(auth, "AuditEvent", 's')? else {
        return Err(Error::Forbidden("a patient's access log is the patient's".into()).into());
    };
    let pid = own_patient(&state, &me, &q).await?;
    let log = state.service().access_log(&me).await?;
    let found = log.iter().map(|e| audit_event(pid, e)).collect();
    page(
        &base_url(&state, &headers),
        &q.search(),
        "AuditEvent",
        listed("AuditEvent", found),
    )
}

/// What a posted Consent asks: whom, which record (or all), until when, grant or revoke.
struct Asked {
    provider: String,
    record_id: Option<u64>,
    expires_at: Option<u64>,
    revoke: bool,
}

fn invalid(field: &str, message: &str) -> Outcome {
    Outcome(Error::InvalidInput {
        field: field.to_owned(),
        message: message.to_owned(),
    })
}

fn asked(c: &Value) -> Result<Asked> {
    if c["resourceType"] != "Consent" {
        return Err(invalid("resourceType", "expected Consent"));
    }
    let revoke = match c["status"].as_str() {
        Some("active") => false,
        Some("inactive") => true,
        _ => {
            return Err(invalid(
                "Consent.status",
                "active (grant) or inactive (revoke)",
            ));
        }
    };
    let p = &c["provision"];
    let actors = p["actor"].as_array().map(Vec::as_slice).unwrap_or_default();
    let [actor] = actors else {
        return Err(invalid(
            "Consent.provision.actor",
            "exactly one actor, the provider",
        ));
    };
    let id = &actor["reference"]["identifier"];
    let provider = match (id["system"].as_str(), id["value"].as_str()) {
        (Some(PROVIDER_SYSTEM), Some(v)) if !v.trim().is_empty() => v.to_owned(),
        _ => {
            return Err(invalid(
                "Consent.provision.actor[0].reference.identifier",
                "an identifier of system urn:secure-ehr:provider: the provider's address or username",
            ));
        }
    };
    let record_id = match p["data"].as_array().map(Vec::as_slice) {
        None => None,
        Some([d]) => {
            let id = &d["reference"]["identifier"];
            match (
                id["system"].as_str(),
                id["value"].as_str().map(str::parse::<u64>),
            ) {
                (Some(RECORD_SYSTEM), Some(Ok(r))) => Some(r),
                _ => {
                    return Err(invalid(
                        "Consent.provision.data[0].reference.identifier",
                        "an identifier of system urn:secure-ehr:record: a record ID",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(invalid(
                "Consent.provision.data",
                "one record, or none for all",
            ));
        }
    };
    let expires_at =
        match p["period"]["end"].as_str() {
            Some(end) => Some(unix_of(end).ok_or_else(|| {
                invalid("Consent.provision.period.end", "a FHIR date or dateTime")
            })?),
            None if revoke => None,
            None => {
                return Err(invalid(
                    "Consent.provision.period.end",
                    "missing: when the grant ends",
                ));
            }
        };
    Ok(Asked {
        provider,
        record_id,
        expires_at,
        revoke,
    })
}

/// `POST /fhir/Consent`: status `active` grants, `inactive` revokes (that record's grant, or
/// everything the provider holds on the patient's records); answers the consent as listed.
pub(super) async fn post_consent(
    State(state): State<AppState>,
    auth: std::result::Result<FhirAuth, Error>,
    body: std::result::Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response> {
    let Caller::Patient(me) = caller(auth, "Consent", 'c')? else {
        return Err(Error::Forbidden("only the patient consents".into()).into());
    };
    let body = body_or(body, crate::MAX_BODY_BYTES)?;
    let c: Value = serde_json::from_slice(&body).map_err(|_| invalid("body", "not JSON"))?;
    let a = asked(&c)?;
    let svc = state.service();
    let status = if a.revoke {
        svc.revoke(&me, &a.provider, a.record_id).await?;
        StatusCode::OK
    } else {
        let end = a.expires_at.expect("checked: a grant has an end");
        svc.grant(&me, &a.provider, a.record_id, end).await?;
        StatusCode::CREATED
    };
    let pid = svc.patient_id(me.address()).await?.unwrap_or(0);
    let grants = svc.grants(&me).await?;
    let provider = a.provider.to_lowercase();
    let g = grants
        .iter()
        .find(|g| {
            g.record_id == a.record_id
                && (g.provider_address.to_string().to_lowercase() == provider
                    || g.provider
                        .as_deref()
                        .is_some_and(|u| u.eq_ignore_ascii_case(&provider)))
        })
        .ok_or_else(|| Error::NotFound("the consent just recorded".into()))?;
    Ok(fhir(status, consent(pid, g)))
}
