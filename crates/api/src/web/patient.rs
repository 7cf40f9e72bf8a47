//! The patient's pages: a new record, their records and versions, editing, sharing with
//! providers (grants and revocations), and the log of who read what.

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use ehr_records::fhir::Date;
use serde::Deserialize;

use super::pages::{self, FieldErrors, FormValues};
use super::{
    PageResult, PatientOnly, SignedIn, Web, fmt_time, form_errors, form_values, html, need,
    now_unix, parse_form, record_view, see_other, unix_days,
};
use crate::AppState;
use crate::error::Error;
use crate::params::parse_num;
use crate::svc::RecordForm;

#[derive(Deserialize, Default)]
#[serde(default)]
struct RecordFormBody {
    patient_name: String,
    birth_date: String,
    address: String,
    phone: String,
    health_condition: String,
}

impl RecordFormBody {
    fn form(&self) -> RecordForm {
        RecordForm {
            patient_name: self.patient_name.clone(),
            birth_date: self.birth_date.clone(),
            address: self.address.clone(),
            phone: self.phone.clone(),
            health_condition: self.health_condition.clone(),
        }
    }
}

pub(super) async fn new_record(
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
) -> Response {
    html(pages::record_form(
        &web.ctx(Some(s.session())),
        None,
        &FormValues::default(),
        &Vec::new(),
        &Vec::new(),
    ))
}

/// `POST /patient/records/upload` (multipart): a FHIR JSON file stored as a new record.
pub(super) async fn upload_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> PageResult {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let file = super::multipart::parse(content_type, &body)
        .and_then(|parts| parts.into_iter().find(|p| p.name == "file"))
        .map(|p| p.data);
    let result = match file {
        Some(data) if !data.is_empty() => state
            .service()
            .put_record(&s, data)
            .await
            .map_err(Into::into),
        _ => Err(Error::input("file", "choose a FHIR JSON file").into()),
    };
    let errors = match result {
        Ok(stored) => {
            return Ok(see_other(&format!(
                "/patient/records/{}/stored?version={}",
                stored.record_id, stored.version
            )));
        }
        Err(e) => form_errors(e)?,
    };
    Ok(html(pages::record_form(
        &web.ctx(Some(s.session())),
        None,
        &FormValues::default(),
        &Vec::new(),
        &errors,
    )))
}

pub(super) async fn store_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    body: Bytes,
) -> PageResult {
    save_record(state, web, None, body).await
}

pub(super) async fn update_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    // The id is checked before the session, so a bad one is refused to anyone; looking the
    // session up first makes the refusal show who is signed in.
    web.session(&state);
    let id = parse_num::<u64>("id", &id)?;
    save_record(state, web, Some(id), body).await
}

async fn save_record(state: AppState, web: Web, id: Option<u64>, body: Bytes) -> PageResult {
    let s = need::<PatientOnly>(&state, &web)?;
    let f: RecordFormBody = parse_form(&body);
    let form = f.form();
    let result = match id {
        None => state.service().put_form(&s, &form).await,
        Some(id) => state.service().update_form(&s, id, &form).await,
    };
    let errors = match result {
        Ok(stored) => {
            return Ok(see_other(&format!(
                "/patient/records/{}/stored?version={}",
                stored.record_id, stored.version
            )));
        }
        Err(e) => form_errors(e.into())?,
    };
    Ok(html(pages::record_form(
        &web.ctx(Some(s.session())),
        id,
        &form_values(&form),
        &errors,
        &Vec::new(),
    )))
}

#[derive(Deserialize)]
pub(super) struct VersionQuery {
    version: Option<String>,
}

pub(super) async fn stored(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> PageResult {
    let id: u64 = parse_num("id", &id)?;
    let version: Option<u32> = q.version.map(|v| parse_num("version", &v)).transpose()?;
    let records = state.service().my_records(&s).await?;
    let r = records
        .into_iter()
        .find(|r| r.record_id == id)
        .ok_or_else(|| Error::NotFound("record".into()))?;
    let want = version.unwrap_or(r.version);
    let v = r
        .versions
        .into_iter()
        .find(|v| v.version == want)
        .ok_or_else(|| Error::NotFound("version".into()))?;
    let v = pages::StoredView {
        record_id: id,
        version: v.version,
        manifest_cid: v.manifest_cid,
        tx_hash: v.tx_hash.to_string(),
    };
    Ok(html(pages::stored(&web.ctx(Some(s.session())), &v)))
}

pub(super) async fn my_records(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
) -> PageResult {
    let pid = state.service().patient_id(s.address()).await?;
    let list = state.service().my_records(&s).await?;
    let rows: Vec<pages::RecordRow> = list
        .into_iter()
        .map(|r| pages::RecordRow {
            record_id: r.record_id,
            version: r.version,
            updated: fmt_time(r.updated_at),
            versions: r
                .versions
                .into_iter()
                .rev()
                .map(|v| pages::VersionRow {
                    version: v.version,
                    author: v.author_name,
                    when: fmt_time(v.timestamp),
                    manifest_cid: v.manifest_cid,
                    tx_hash: v.tx_hash.to_string(),
                })
                .collect(),
        })
        .collect();
    Ok(html(pages::my_records(
        &web.ctx(Some(s.session())),
        pid,
        &rows,
    )))
}

pub(super) async fn view_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> PageResult {
    let id: u64 = parse_num("id", &id)?;
    let version: Option<u32> = q.version.map(|v| parse_num("version", &v)).transpose()?;
    let r = state.service().read_record(&s, id, version).await?;
    Ok(html(pages::record_page(
        &web.ctx(Some(s.session())),
        &record_view(r),
    )))
}

pub(super) async fn edit_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
    Path(id): Path<String>,
) -> PageResult {
    let id: u64 = parse_num("id", &id)?;
    let r = state.service().read_record(&s, id, None).await?;
    let values = r.form.as_ref().map(form_values).unwrap_or_default();
    Ok(html(pages::record_form(
        &web.ctx(Some(s.session())),
        Some(id),
        &values,
        &Vec::new(),
        &Vec::new(),
    )))
}

pub(super) async fn sharing(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
    Query(q): Query<SharingQuery>,
) -> PageResult {
    let notice = match q.done.as_deref() {
        Some("granted") => Some("Access granted."),
        Some("revoked") => Some("Access revoked."),
        Some("ended") => Some("Emergency access ended."),
        _ => None,
    };
    let f = GrantForm {
        q: q.q.unwrap_or_default(),
        ..GrantForm::default()
    };
    sharing_page(&state, &web, &s, notice, Vec::new(), &f).await
}

#[derive(Deserialize)]
pub(super) struct SharingQuery {
    done: Option<String>,
    /// The provider search.
    q: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GrantForm {
    provider: String,
    record_id: String,
    expires: String,
    /// "on": writing too (the grant form); "1": end only writing (the revoke button).
    write: String,
    /// Set by the "End emergency access" button (only the notice differs).
    emergency: String,
    /// The provider search the form was shown with.
    q: String,
}

/// The sharing page: the grant form (with `f`'s values and `errors`), and the grants.
async fn sharing_page(
    state: &AppState,
    web: &Web,
    s: &crate::svc::PatientSession,
    notice: Option<&str>,
    errors: FieldErrors,
    f: &GrantForm,
) -> PageResult {
    let providers = state.service().directory(false).await?;
    // The search: every word must appear in the name, organisation or specialty.
    let words: Vec<String> = f.q.split_whitespace().map(str::to_lowercase).collect();
    let found: Vec<pages::ProviderOption> = providers
        .into_iter()
        .filter(|e| {
            let hay = [
                e.display_name.as_deref(),
                e.username.as_deref(),
                Some(e.organisation.as_str()),
                e.specialty.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
            words.iter().all(|w| hay.contains(w.as_str()))
        })
        .map(provider_option)
        .collect();
    let more = found.len().saturating_sub(pages::MAX_PROVIDERS_LISTED);
    let records = state.service().my_records(s).await?;
    let grants = state.service().grants(s).await?;
    let p = pages::SharingPage {
        providers: found
            .into_iter()
            .take(pages::MAX_PROVIDERS_LISTED)
            .collect(),
        more,
        query: &f.q,
        records: records.iter().map(|r| r.record_id).collect(),
        emergencies: grants
            .iter()
            .filter_map(|g| {
                let w = g.emergency.as_ref()?;
                Some(pages::EmergencyRow {
                    provider: g
                        .provider
                        .clone()
                        .unwrap_or_else(|| g.provider_address.to_string()),
                    record_id: g.record_id?,
                    until: fmt_time(w.until),
                    reason: w.reason.clone(),
                })
            })
            .collect(),
        grants: grants
            .into_iter()
            // A scope with only a break-glass window is listed with the emergencies.
            .filter(|g| g.expires_at != 0 || g.write.is_some())
            .map(|g| pages::GrantRow {
                write: g.write.map(|w| {
                    if w.active {
                        format!("may add to it until {}", fmt_time(w.expires_at))
                    } else if w.revoked_at.is_some() {
                        "adding revoked".to_owned()
                    } else {
                        format!("adding ended {}", fmt_time(w.expires_at))
                    }
                }),
                write_active: g.write.is_some_and(|w| w.active),
                scope: g
                    .record_id
                    .map_or_else(|| "all records".to_owned(), |id| format!("record {id}")),
                record_id: g.record_id,
                expires: fmt_time(g.expires_at),
                state: if g.active {
                    "active"
                } else if g.expires_at == 0 {
                    "no reading"
                } else if g.revoked_at.is_some() {
                    "revoked"
                } else {
                    "expired"
                },
                active: g.active,
                provider: g.provider.unwrap_or_else(|| g.provider_address.to_string()),
            })
            .collect(),
        notice,
        errors,
        selected_provider: &f.provider,
        selected_record: &f.record_id,
        expires: &f.expires,
        write: f.write == "on",
    };
    Ok(html(pages::sharing(&web.ctx(Some(s.session())), &p)))
}

/// A directory entry in the grant form: this server's providers by username (as before),
/// other organisations' by address; labelled "Display name — specialty (organisation)".
fn provider_option(e: crate::svc::DirectoryEntry) -> pages::ProviderOption {
    let name = e
        .display_name
        .clone()
        .or_else(|| e.username.clone())
        .unwrap_or_else(|| e.address.to_string());
    let mut label = name;
    if let Some(s) = e.specialty.as_deref().filter(|s| !s.is_empty()) {
        label = format!("{label} — {s}");
    }
    label = format!("{label} ({})", e.organisation);
    let value = match (&e.username, e.local) {
        (Some(u), true) => u.clone(),
        _ => e.address.to_string(),
    };
    pages::ProviderOption { value, label }
}

/// The grant form's fields, checked: provider, optional record id, expiry (end of the
/// chosen day, UTC).
fn check_grant(f: &GrantForm) -> Result<(Option<u64>, u64), Error> {
    if f.provider.trim().is_empty() {
        return Err(Error::input("provider", "choose a provider"));
    }
    grant_scope(&f.record_id, &f.expires)
}

/// A grant form's records (`""`: all) and its expiry date, as the end of that day (UTC).
pub(super) fn grant_scope(record_id: &str, expires: &str) -> Result<(Option<u64>, u64), Error> {
    let record_id = match record_id.trim() {
        "" => None,
        id => Some(parse_num("record_id", id)?),
    };
    let date = Date::parse(expires.trim())
        .ok_or_else(|| Error::input("expires", "choose a date (YYYY-MM-DD)"))?;
    let end_of_day = u64::try_from(unix_days(date) * 86_400 + 86_399)
        .map_err(|_| Error::input("expires", "must be today or later"))?;
    if end_of_day <= now_unix() {
        return Err(Error::input("expires", "must be today or later"));
    }
    Ok((record_id, end_of_day))
}

pub(super) async fn grant(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
    body: Bytes,
) -> PageResult {
    let f: GrantForm = parse_form(&body);
    let result = async {
        let (record_id, expires_at) = check_grant(&f)?;
        let svc = state.service();
        svc.grant(&s, f.provider.trim(), record_id, expires_at)
            .await?;
        if f.write == "on" {
            svc.grant_write(&s, f.provider.trim(), record_id, expires_at)
                .await?;
        }
        PageResult::Ok(())
    }
    .await;
    let errors = match result {
        Ok(()) => return Ok(see_other("/patient/sharing?done=granted")),
        Err(e) => grant_form_errors(e)?,
    };
    sharing_page(&state, &web, &s, None, errors, &f).await
}

/// [`form_errors`] for a form with an expiry date: the service names the API's field
/// `expires_at`, the form's is `expires`.
pub(super) fn grant_form_errors(e: super::error::PageError) -> PageResult<FieldErrors> {
    let mut errors = form_errors(e)?;
    for (field, _) in &mut errors {
        if field == "expires_at" {
            *field = "expires".into();
        }
    }
    Ok(errors)
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    SignedIn(s): SignedIn<PatientOnly>,
    body: Bytes,
) -> PageResult {
    let f: GrantForm = parse_form(&body);
    let record_id = match f.record_id.trim() {
        "" => None,
        id => Some(parse_num("record_id", id)?),
    };
    if f.write.is_empty() {
        state
            .service()
            .revoke(&s, f.provider.trim(), record_id)
            .await?;
    } else {
        state
            .service()
            .revoke_write(&s, f.provider.trim(), record_id)
            .await?;
    }
    Ok(see_other(if f.emergency.is_empty() {
        "/patient/sharing?done=revoked"
    } else {
        "/patient/sharing?done=ended"
    }))
}

pub(super) async fn access_log(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
) -> PageResult {
    let list = state.service().access_log(&s).await?;
    let rows: Vec<pages::LogRow> = list
        .into_iter()
        .rev()
        .map(|e| pages::LogRow {
            when: fmt_time(e.timestamp),
            reader: match (e.reader_username, e.reader_organisation) {
                (Some(u), Some(o)) => format!("{u} ({o})"),
                (Some(u), None) => u,
                (None, Some(o)) => format!("{} ({o})", e.reader),
                (None, None) => e.reader.to_string(),
            },
            record: match e.version {
                Some(v) => format!("record {}, version {v}", e.record_id),
                None => format!("record {}", e.record_id),
            },
            emergency: e.emergency,
            reason: e.reason,
            tx_hash: e.tx_hash.to_string(),
        })
        .collect();
    Ok(html(pages::access_log(&web.ctx(Some(s.session())), &rows)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::today;

    #[test]
    fn grant_form_checks_name_the_field() {
        let f = |p: &str, r: &str, e: &str| GrantForm {
            provider: p.into(),
            record_id: r.into(),
            expires: e.into(),
            ..GrantForm::default()
        };
        let field = |g: &GrantForm| check_grant(g).unwrap_err().field().map(str::to_owned);
        assert_eq!(field(&f("", "", "2999-01-01")).as_deref(), Some("provider"));
        assert_eq!(
            field(&f("dr", "x", "2999-01-01")).as_deref(),
            Some("record_id")
        );
        assert_eq!(field(&f("dr", "", "tomorrow")).as_deref(), Some("expires"));
        assert_eq!(
            field(&f("dr", "", "2000-01-01")).as_deref(),
            Some("expires")
        );
        let (rid, exp) = check_grant(&f("dr", "3", "2999-01-01")).unwrap();
        assert_eq!(rid, Some(3));
        assert_eq!(exp % 86_400, 86_399);
        assert!(
            check_grant(&f("dr", "", &today())).is_ok(),
            "today lasts until midnight"
        );
    }
}
