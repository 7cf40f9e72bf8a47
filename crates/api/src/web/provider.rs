//! The provider's page: a patient's records under a grant, or emergency access with a
//! reason; a patient who granted nothing looks the same as one who does not exist.

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::pages;
use super::{ProviderOnly, SignedIn, Web, failure, form_errors, page, parse_form, record_view};
use crate::AppState;
use crate::error::Error;
use crate::params::parse_num;
use crate::svc::{self, Session};

fn provider_page(
    web: &Web,
    s: &Session,
    status: StatusCode,
    p: &pages::ProviderPage<'_>,
) -> Response {
    page(status, pages::provider(&web.ctx(Some(s)), p))
}

fn empty_provider_page<'a>() -> pages::ProviderPage<'a> {
    pages::ProviderPage {
        patient_id: "",
        errors: Vec::new(),
        emergency_patient_id: "",
        reason: "",
        emergency_errors: Vec::new(),
        denied: None,
        records: Vec::new(),
    }
}

pub(super) async fn provider(
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<ProviderOnly>,
) -> Response {
    provider_page(&web, &s, StatusCode::OK, &empty_provider_page())
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
    result: Result<Vec<svc::ReadRecord>, Error>,
    mut p: pages::ProviderPage<'_>,
    emergency: bool,
) -> Response {
    match result {
        Ok(records) => {
            p.records = records.into_iter().map(record_view).collect();
            provider_page(web, s, StatusCode::OK, &p)
        }
        // An unknown patient looks like one who shared nothing: no enumeration of ids.
        Err(Error::AccessDenied(_) | Error::NotFound(_)) => {
            p.denied = Some(format!(
                "Patient {} has not granted you access to any record.",
                if emergency {
                    p.emergency_patient_id
                } else {
                    p.patient_id
                }
                .trim()
            ));
            provider_page(web, s, StatusCode::OK, &p)
        }
        Err(e) => match form_errors(e) {
            Ok((status, errors)) => {
                if emergency {
                    p.emergency_errors = errors;
                } else {
                    p.errors = errors;
                }
                provider_page(web, s, status, &p)
            }
            Err(e) => failure(web, Some(s), e),
        },
    }
}

pub(super) async fn provider_records(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<ProviderOnly>,
    body: Bytes,
) -> Response {
    let f: LookupForm = parse_form(&body);
    let result = async {
        let pid: u64 = parse_num("patient_id", &f.patient_id)?;
        Ok(state.service().patient_records(&s, pid).await?)
    }
    .await;
    let p = pages::ProviderPage {
        patient_id: &f.patient_id,
        ..empty_provider_page()
    };
    read_outcome(&web, &s, result, p, false)
}

pub(super) async fn emergency(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<ProviderOnly>,
    body: Bytes,
) -> Response {
    let f: LookupForm = parse_form(&body);
    let result = async {
        let pid: u64 = parse_num("patient_id", &f.patient_id)?;
        if f.reason.trim().is_empty() {
            return Err(Error::input(
                "reason",
                "a reason is required for emergency access",
            ));
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
    read_outcome(&web, &s, result, p, true)
}
