//! Search: `GET /fhir/{type}` with `patient`, `code`, `category`, `date`, `_count` and
//! `_offset`; `Patient/{id}/$everything`; the `searchset` pages with their links.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::*;

/// `?patient=&code=&category=&date=&_count=&_offset=`.
#[derive(serde::Deserialize)]
pub(super) struct SearchQuery {
    pub(super) patient: Option<String>,
    pub(super) code: Option<String>,
    pub(super) category: Option<String>,
    pub(super) date: Option<String>,
    #[serde(rename = "_count")]
    pub(super) count: Option<String>,
    #[serde(rename = "_offset")]
    pub(super) offset: Option<String>,
}

pub(super) async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: std::result::Result<FhirAuth, Error>,
    Path(resource_type): Path<String>,
    Query(q): Query<SearchQuery>,
) -> Result<Response> {
    known_type(&resource_type)?;
    let caller = caller(auth, &resource_type, 's')?;
    let base = base_url(&state, &headers);
    let patient_id = match (&q.patient, &caller) {
        (Some(p), _) => parse_id(p.trim_start_matches("Patient/"), "patient")?,
        (None, Caller::Patient(p)) => state
            .service()
            .patient_id(p.address())
            .await?
            .ok_or_else(|| Error::NotFound("this account's patient".into()))?,
        (None, Caller::Provider(p)) if resource_type == "Patient" => {
            // The patients who shared with this provider, each read (and logged).
            let mut ids: Vec<u64> = state
                .service()
                .shared_with_me(p)
                .await?
                .into_iter()
                .map(|s| s.patient_id)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let mut found = Vec::new();
            for id in ids {
                if let Ok(rs) = patient_resources(&state, &caller, id).await {
                    found.extend(rs.into_iter().filter(|e| e.resource_type == "Patient"));
                }
            }
            return page(&base, &q, &resource_type, found);
        }
        (None, Caller::Provider(_)) => {
            return Err(Error::InvalidInput {
                field: "patient".into(),
                message: "a provider's search names the patient".into(),
            }
            .into());
        }
    };
    let found: Vec<Exposed> = patient_resources(&state, &caller, patient_id)
        .await
        .or_else(|e| match e.0 {
            Error::NotFound(_) => Ok(Vec::new()),
            other => Err(Outcome(other)),
        })?
        .into_iter()
        .filter(|e| e.resource_type == resource_type)
        .filter(|e| matches(&e.resource, &q))
        .collect();
    page(&base, &q, &resource_type, found)
}

pub(super) async fn everything(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: std::result::Result<FhirAuth, Error>,
    Path(id): Path<String>,
    Query(q): Query<SearchQuery>,
) -> Result<Response> {
    let a = auth?;
    let scopes = a.scopes.clone();
    let caller = caller(Ok(a), "Patient", 'r')?;
    let patient_id = parse_id(&id, "id")?;
    // Only the types the token may read.
    let found = patient_resources(&state, &caller, patient_id)
        .await?
        .into_iter()
        .filter(|e| {
            scopes
                .as_ref()
                .is_none_or(|s| s.allows(&e.resource_type, 'r'))
        })
        .collect();
    page(
        &base_url(&state, &headers),
        &q,
        &format!("Patient/{patient_id}/$everything"),
        found,
    )
}

/// A `searchset` page of `found`, with `self` and `next` links (absolute, under `base`).
pub(super) fn page(
    base: &str,
    q: &SearchQuery,
    path: &str,
    found: Vec<Exposed>,
) -> Result<Response> {
    let count = match &q.count {
        None => DEFAULT_COUNT,
        Some(c) => match c.parse::<usize>() {
            Ok(n) if (1..=MAX_COUNT).contains(&n) => n,
            _ => {
                return Err(Error::InvalidInput {
                    field: "_count".into(),
                    message: format!("a number from 1 to {MAX_COUNT}"),
                }
                .into());
            }
        },
    };
    let offset = match &q.offset {
        None => 0,
        Some(o) => o.parse::<usize>().map_err(|_| Error::InvalidInput {
            field: "_offset".into(),
            message: "expected a number".into(),
        })?,
    };
    let total = found.len();
    let link = |offset: usize| {
        let mut params: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("patient", &q.patient),
            ("code", &q.code),
            ("category", &q.category),
            ("date", &q.date),
        ] {
            if let Some(v) = v {
                params.push((k, v.clone()));
            }
        }
        params.push(("_count", count.to_string()));
        params.push(("_offset", offset.to_string()));
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        format!("{base}/{path}?{}", query.join("&"))
    };
    let mut links = vec![json!({ "relation": "self", "url": link(offset) })];
    if offset + count < total {
        links.push(json!({ "relation": "next", "url": link(offset + count) }));
    }
    let entry: Vec<Value> = found
        .into_iter()
        .skip(offset)
        .take(count)
        .map(|e| {
            json!({
                "fullUrl": format!("{base}/{}/{}", e.resource_type, e.id),
                "resource": e.resource,
                "search": { "mode": "match" },
            })
        })
        .collect();
    Ok(fhir(
        StatusCode::OK,
        json!({ "resourceType": "Bundle", "type": "searchset", "total": total,
                "link": links, "entry": entry }),
    ))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether `r` matches the query's `code`, `category` and `date`.
fn matches(r: &Value, q: &SearchQuery) -> bool {
    let token = |field: &str, want: &str| {
        let (system, code) = match want.split_once('|') {
            Some((s, c)) => (Some(s), c),
            None => (None, want),
        };
        let concepts: Vec<&Value> = match &r[field] {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        concepts.iter().any(|cc| {
            cc["coding"].as_array().is_some_and(|codings| {
                codings.iter().any(|c| {
                    c["code"].as_str() == Some(code)
                        && system.is_none_or(|s| s.is_empty() || c["system"].as_str() == Some(s))
                })
            })
        })
    };
    let code_field = match r["resourceType"].as_str() {
        Some("Immunization") => "vaccineCode",
        Some("MedicationRequest" | "MedicationStatement") => "medicationCodeableConcept",
        _ => "code",
    };
    if let Some(want) = &q.code
        && !want.split(',').any(|w| token(code_field, w))
    {
        return false;
    }
    if let Some(want) = &q.category
        && !want.split(',').any(|w| token("category", w))
    {
        return false;
    }
    if let Some(want) = &q.date {
        let (op, day) = match want.get(..2) {
            Some(p @ ("ge" | "le" | "gt" | "lt" | "eq")) => (p, &want[2..]),
            _ => ("eq", want.as_str()),
        };
        let Some(when) = clinical_date(r) else {
            return false;
        };
        // Compared as text over the shorter of the two (ISO dates sort as text).
        let n = when.len().min(day.len());
        let (a, b) = (&when[..n], &day[..n]);
        let ok = match op {
            "ge" => a >= b,
            "le" => a <= b,
            "gt" => a > b,
            "lt" => a < b,
            _ => a == b,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The date a resource is about, for `date=` searches.
fn clinical_date(r: &Value) -> Option<&str> {
    [
        "effectiveDateTime",
        "onsetDateTime",
        "authoredOn",
        "occurrenceDateTime",
        "performedDateTime",
        "recordedDate",
        "issued",
        "dateAsserted",
    ]
    .iter()
    .find_map(|k| r[*k].as_str())
    .or_else(|| {
        ["effectivePeriod", "performedPeriod", "period"]
            .iter()
            .find_map(|k| r[*k]["start"].as_str())
    })
}
