//! The provider's page: a patient's records under a grant (with a timeline across them),
//! adding to a record the patient let it write, or emergency access with a reason; a
//! patient who granted nothing looks the same as one who does not exist.

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use serde::Deserialize;

use serde_json::{Value, json};

use super::pages;
use super::{
    PageError, PageResult, ProviderOnly, SignedIn, Web, chart, form_errors, html, parse_form,
    record_view, see_other,
};
use crate::AppState;
use crate::error::Error;
use crate::params::parse_num;
use crate::svc::{self, Session};

fn provider_page(web: &Web, s: &Session, p: &pages::ProviderPage<'_>) -> Response {
    html(pages::provider(&web.ctx(Some(s)), p))
}

fn empty_provider_page<'a>() -> pages::ProviderPage<'a> {
    pages::ProviderPage {
        shared: None,
        patient_id: "",
        errors: Vec::new(),
        emergency_patient_id: "",
        reason: "",
        emergency_errors: Vec::new(),
        denied: None,
        records: Vec::new(),
        timeline: None,
        add: None,
        notice: None,
    }
}

#[derive(Deserialize)]
pub(super) struct AddedQuery {
    added: Option<String>,
    version: Option<String>,
}

/// The landing page: "Shared with me" (every grant held now, from any organisation's
/// patients), the lookup by patient ID and break-glass.
pub(super) async fn provider(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<ProviderOnly>,
    Query(q): Query<AddedQuery>,
) -> PageResult {
    let shared = state.service().shared_with_me(&s).await?;
    let notice = match (q.added, q.version) {
        (Some(r), Some(v)) if r.parse::<u64>().is_ok() && v.parse::<u32>().is_ok() => Some(
            format!("Added: record {r}, version {v}. The patient sees you wrote it."),
        ),
        _ => None,
    };
    let p = pages::ProviderPage {
        shared: Some(
            shared
                .into_iter()
                .map(|g| pages::SharedRow {
                    patient_id: g.patient_id,
                    scope: g
                        .record_id
                        .map_or_else(|| "all records".to_owned(), |id| format!("record {id}")),
                    until: super::fmt_time(g.expires_at),
                    write_until: g.write_until.map(super::fmt_time),
                })
                .collect(),
        ),
        notice,
        ..empty_provider_page()
    };
    Ok(provider_page(&web, s.session(), &p))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LookupForm {
    patient_id: String,
    reason: String,
}

/// Renders a provider's read: the records, or "access denied" and nothing else.
fn read_outcome(
    web: &Web,
    s: &Session,
    result: PageResult<Vec<svc::ReadRecord>>,
    mut p: pages::ProviderPage<'_>,
    emergency: bool,
) -> PageResult {
    match result {
        Ok(records) => {
            p.records = records.into_iter().map(record_view).collect();
            if !p.records.is_empty() {
                p.timeline = Some(chart::timeline(
                    p.records.iter().map(|r| (r.record_id, &r.chart)),
                ));
            }
        }
        // An unknown patient looks like one who shared nothing: no enumeration of ids.
        Err(PageError::Service(
            svc::Error::AccessDenied { .. }
            | svc::Error::NoAccessToPatient { .. }
            | svc::Error::NotFound(_),
        )) => {
            p.denied = Some(format!(
                "Patient {} has not granted you access to any record.",
                if emergency {
                    p.emergency_patient_id
                } else {
                    p.patient_id
                }
                .trim()
            ));
        }
        Err(PageError::Service(svc::Error::Erased(_))) => {
            p.denied = Some(format!(
                "Patient {}'s records were erased when they deleted their account: nobody \
                 can read them again (the access log keeps every past read).",
                if emergency {
                    p.emergency_patient_id
                } else {
                    p.patient_id
                }
                .trim()
            ));
        }
        Err(e) => {
            let errors = form_errors(e)?;
            if emergency {
                p.emergency_errors = errors;
            } else {
                p.errors = errors;
            }
        }
    }
    Ok(provider_page(web, s, &p))
}

pub(super) async fn provider_records(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<ProviderOnly>,
    body: Bytes,
) -> PageResult {
    let f: LookupForm = parse_form(&body);
    let result = async {
        let pid: u64 = parse_num("patient_id", &f.patient_id)?;
        Ok(state.service().patient_records(&s, pid).await?)
    }
    .await;
    let values = pages::AddValues::default();
    let add = match (&result, f.patient_id.trim().parse::<u64>()) {
        (Ok(records), Ok(pid)) if !records.is_empty() => {
            add_form(&state, &s, pid, &values, Vec::new()).await?
        }
        _ => None,
    };
    let p = pages::ProviderPage {
        patient_id: &f.patient_id,
        add,
        ..empty_provider_page()
    };
    read_outcome(&web, s.session(), result, p, false)
}

/// The add form for patient `pid`, if the patient let this provider write somewhere.
async fn add_form<'a>(
    state: &AppState,
    s: &svc::ProviderSession,
    pid: u64,
    values: &'a pages::AddValues,
    errors: pages::FieldErrors,
) -> PageResult<Option<pages::AddForm<'a>>> {
    let (records, new_record) = state.service().writable(s, pid).await?;
    if records.is_empty() && !new_record {
        return Ok(None);
    }
    Ok(Some(pages::AddForm {
        patient_id: pid,
        records,
        new_record,
        values,
        errors,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AddBody {
    patient_id: String,
    record_id: String,
    kind: String,
    name: String,
    value: String,
    unit: String,
    low: String,
    high: String,
    dosage: String,
    note: String,
    bundle: String,
}

impl AddBody {
    fn values(&self) -> pages::AddValues {
        pages::AddValues {
            record_id: self.record_id.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            value: self.value.clone(),
            unit: self.unit.clone(),
            low: self.low.clone(),
            high: self.high.clone(),
            dosage: self.dosage.clone(),
            note: self.note.clone(),
            bundle: self.bundle.clone(),
        }
    }
}

/// `POST /provider/add`: what the form says, as a FHIR transaction for the service.
pub(super) async fn add_to_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<ProviderOnly>,
    body: Bytes,
) -> PageResult {
    let f: AddBody = parse_form(&body);
    let result = async {
        let pid: u64 = parse_num("patient_id", &f.patient_id)?;
        let record = match f.record_id.trim() {
            "new" => None,
            id => Some(parse_num::<u64>("record_id", id)?),
        };
        let bundle = addition(&f, pid)?;
        PageResult::Ok(
            state
                .service()
                .add_resources(&s, pid, record, &bundle)
                .await?,
        )
    }
    .await;
    let errors = match result {
        Ok(stored) => {
            return Ok(see_other(&format!(
                "/provider?added={}&version={}",
                stored.record_id, stored.version
            )));
        }
        Err(e) => form_errors(e)?,
    };
    let values = f.values();
    let pid = f.patient_id.trim().parse::<u64>().unwrap_or(0);
    let add = add_form(&state, &s, pid, &values, errors.clone()).await?;
    let denied = add.is_none().then(|| {
        errors
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let p = pages::ProviderPage {
        patient_id: &f.patient_id,
        add,
        denied,
        ..empty_provider_page()
    };
    Ok(provider_page(&web, s.session(), &p))
}

/// The form's fields as a FHIR transaction of one resource about patient `pid` (a lab
/// result, a note, a prescription), or the pasted Bundle as it is.
fn addition(f: &AddBody, pid: u64) -> Result<Vec<u8>, Error> {
    let required = |field: &str, v: &str, what: &str| {
        if v.trim().is_empty() {
            Err(Error::input(field, what))
        } else {
            Ok(v.trim().to_owned())
        }
    };
    let subject = json!({ "reference": format!("Patient/{pid}") });
    let now = ehr_records::fhir::instant(ehr_primitives_now());
    let resource = match f.kind.as_str() {
        "bundle" => {
            required("bundle", &f.bundle, "paste a FHIR Bundle (JSON)")?;
            return Ok(f.bundle.trim().as_bytes().to_vec());
        }
        "result" => {
            let name = required("name", &f.name, "name the test")?;
            let value = required("value", &f.value, "give the result")?;
            let mut o = json!({
                "resourceType": "Observation",
                "status": "final",
                "category": [{ "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory", "display": "Laboratory" }] }],
                "code": { "text": name },
                "subject": subject,
                "effectiveDateTime": now,
            });
            let unit = f.unit.trim();
            match value.parse::<f64>() {
                Ok(n) if n.is_finite() => {
                    o["valueQuantity"] = quantity(n, unit);
                }
                _ => o["valueString"] = json!(value),
            }
            let bound = |field: &str, v: &str| -> Result<Option<Value>, Error> {
                match v.trim() {
                    "" => Ok(None),
                    v => v
                        .parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite())
                        .map(|n| Some(quantity(n, unit)))
                        .ok_or_else(|| Error::input(field, "a number")),
                }
            };
            let (low, high) = (bound("low", &f.low)?, bound("high", &f.high)?);
            if low.is_some() || high.is_some() {
                let mut rr = json!({});
                if let Some(l) = low {
                    rr["low"] = l;
                }
                if let Some(h) = high {
                    rr["high"] = h;
                }
                o["referenceRange"] = json!([rr]);
            }
            o
        }
        "note" => {
            let note = required("note", &f.note, "write the note")?;
            let title = f.name.trim();
            json!({
                "resourceType": "Observation",
                "status": "final",
                "code": { "text": if title.is_empty() { "Clinical note" } else { title } },
                "subject": subject,
                "effectiveDateTime": now,
                "valueString": note,
            })
        }
        "prescription" => {
            let name = required("name", &f.name, "name the medication")?;
            let mut m = json!({
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": { "text": name },
                "subject": subject,
                "authoredOn": now,
            });
            if !f.dosage.trim().is_empty() {
                m["dosageInstruction"] = json!([{ "text": f.dosage.trim() }]);
            }
            m
        }
        _ => return Err(Error::input("kind", "choose what to add")),
    };
    let t = resource["resourceType"].clone();
    Ok(serde_json::to_vec(&json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{ "resource": resource, "request": { "method": "POST", "url": t } }],
    }))
    .unwrap_or_default())
}

/// A Quantity; the unit also as its UCUM code.
fn quantity(n: f64, unit: &str) -> Value {
    let mut q = json!({ "value": n });
    if !unit.is_empty() {
        q["unit"] = json!(unit);
        q["system"] = json!("http://unitsofmeasure.org");
        q["code"] = json!(unit);
    }
    q
}

fn ehr_primitives_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) async fn emergency(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<ProviderOnly>,
    body: Bytes,
) -> PageResult {
    let f: LookupForm = parse_form(&body);
    let result = async {
        let pid: u64 = parse_num("patient_id", &f.patient_id)?;
        if f.reason.trim().is_empty() {
            return Err(Error::input("reason", "a reason is required for emergency access").into());
        }
        Ok(state
            .service()
            .emergency_access(&s, pid, f.reason.trim())
            .await?)
    }
    .await;
    let p = pages::ProviderPage {
        emergency_patient_id: &f.patient_id,
        reason: &f.reason,
        ..empty_provider_page()
    };
    read_outcome(&web, s.session(), result, p, true)
}
