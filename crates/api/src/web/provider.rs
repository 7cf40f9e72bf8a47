//! The provider's page: a patient's records under a grant, or emergency access with a
//! reason; a patient who granted nothing looks the same as one who does not exist.

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::Response;
use serde::Deserialize;

use super::pages;
use super::{
    PageError, PageResult, ProviderOnly, SignedIn, Web, form_errors, html, parse_form, record_view,
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
    }
}

/// The landing page: "Shared with me" (every grant held now, from any organisation's
/// patients), the lookup by patient ID and break-glass.
pub(super) async fn provider(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<ProviderOnly>,
) -> PageResult {
    let shared = state.service().shared_with_me(&s).await?;
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
                })
                .collect(),
        ),
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
        Ok(records) => p.records = records.into_iter().map(record_view).collect(),
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
    let p = pages::ProviderPage {
        patient_id: &f.patient_id,
        ..empty_provider_page()
    };
    read_outcome(&web, s.session(), result, p, false)
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
