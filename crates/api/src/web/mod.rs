//! The web UI (issue #6): server-rendered pages over the same service calls as the JSON
//! API, one stylesheet, and one script that only installs the service worker (issue #20:
//! an installable app with an offline page; every page works without it). Forms use
//! POST-redirect-GET; a form with bad input is shown again with each error next to its
//! field, and nothing is changed.

mod account;
mod admin;
mod assets;
mod attachments;
mod auth;
mod chart;
mod error;
mod multipart;
mod pages;
mod patient;
mod provider;
mod session;
mod setup;
mod share;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ehr_records::fhir::Date;
use maud::Markup;
use serde::Deserialize;

use crate::svc::{self, RecordForm, Role, Session};
use crate::{AppState, MAX_BODY_BYTES};
use admin::{add_provider, admin, disable_provider, enable_provider, reset_provider_password};
use auth::{home, login, logout, patients_page, providers_login, signup};
pub(crate) use error::not_found_page;
use error::{PageError, PageResult, form_errors};
use pages::{Ctx, FormValues};
use patient::{
    access_log, edit_record, grant, my_records, new_record, revoke, sharing, store_record, stored,
    update_record, upload_record, view_record,
};
use provider::{add_to_record, emergency, provider, provider_records};

/// The page that takes a FHIR file: its body may be as large as `POST /fhir`'s.
const UPLOAD_PATH: &str = "/patient/records/upload";

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/patients", get(patients_page))
        .route("/patients/signup", post(signup))
        .route("/providers/login", get(providers_login))
        .route("/login", post(login))
        .route("/setup", get(setup::setup_page).post(setup::create_admin))
        .route("/logout", post(logout))
        .route("/patient", get(new_record))
        .route("/patient/records", get(my_records).post(store_record))
        .route(
            "/patient/records/{id}",
            get(view_record).post(update_record),
        )
        .route(
            UPLOAD_PATH,
            post(upload_record).layer(axum::extract::DefaultBodyLimit::max(
                crate::FHIR_MAX_BODY_BYTES,
            )),
        )
        .route("/patient/records/{id}/edit", get(edit_record))
        .route(
            "/patient/records/{id}/attachments",
            post(attachments::attach).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/records/{id}/attachments/{number}", get(attachments::file))
        .route("/patient/records/{id}/stored", get(stored))
        .route("/patient/sharing", get(sharing))
        .route("/patient/grants", post(grant))
        .route("/patient/grants/revoke", post(revoke))
        .route("/patient/access-log", get(access_log))
        .route(
            "/patient/share-code",
            get(share::share_code_page).post(share::make_code),
        )
        .route("/offer", get(share::offer_page).post(share::accept))
        .route("/provider", get(provider))
        .route("/provider/records", post(provider_records))
        .route("/provider/emergency", post(emergency))
        .route("/provider/add", post(add_to_record))
        .route("/account", get(account::account))
        .route("/account/password", post(account::change_password))
        .route("/account/keystore", get(account::keystore))
        .route(
            "/account/delete",
            get(account::delete_page).post(account::delete_account),
        )
        .route("/patient/export", get(account::export))
        .route("/account/recovery", post(account::new_recovery_code))
        .route("/account/profile", post(account::update_profile))
        .route("/account/totp", post(account::begin_totp))
        .route("/account/totp/confirm", post(account::confirm_totp))
        .route("/account/totp/disable", post(account::disable_totp))
        .route(
            "/recover",
            get(account::recover_page).post(account::recover),
        )
        .route("/admin", get(admin))
        .route("/admin/providers", post(add_provider))
        .route("/admin/providers/disable", post(disable_provider))
        .route("/admin/providers/enable", post(enable_provider))
        .route("/admin/providers/password", post(reset_provider_password))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
        .route("/static/style.css", get(assets::style_css))
        .route("/static/icon.svg", get(assets::icon_svg))
        .route("/static/icon-192.png", get(assets::icon_192))
        .route("/static/icon-512.png", get(assets::icon_512))
        .route(
            "/static/icon-maskable-512.png",
            get(assets::icon_maskable_512),
        )
        .route("/static/app.js", get(assets::app_js))
        .route("/manifest.webmanifest", get(assets::manifest))
        .route("/sw.js", get(assets::service_worker))
        .route(assets::OFFLINE_PATH, get(offline))
}

/// The page the service worker shows when the network is gone: the same for everyone (no
/// session, no token), so that caching it keeps nothing personal.
async fn offline() -> Response {
    let ctx = Ctx {
        csrf: "",
        session: None,
        enrol_prompt: false,
        notices: None,
    };
    let mut r = html(pages::offline(&ctx));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

// ---------------------------------------------------------------------------------------
// Cookies, CSRF, sessions
// ---------------------------------------------------------------------------------------

/// What the guard learned about the request, for the handlers.
#[derive(Clone)]
struct Web {
    cookies: session::Cookies,
    csrf: String,
    /// Who is signed in: looked up on the first [`Web::session`] and kept, so that the guard
    /// renders an error page for the session its handler saw (the sign-in forms never ask,
    /// so their error pages show no one signed in).
    session: Arc<OnceLock<Option<svc::Any>>>,
    /// Set with [`Web::session`]: a provider or admin without two-factor, prompted to enrol.
    enrol_prompt: Arc<OnceLock<bool>>,
    /// A patient's pages: what happened since their last visit, shown at the top.
    notices: Arc<OnceLock<svc::SinceLastVisit>>,
}

impl Web {
    fn session(&self, state: &AppState) -> Option<svc::Any> {
        self.session
            .get_or_init(|| {
                let token = self.cookies.session.as_deref()?;
                let s = state.service().authenticate(token).ok()?;
                let unprotected = s.role() != Role::Patient
                    && state
                        .service()
                        .account(&s.session().username)
                        .is_some_and(|a| !a.two_factor);
                let _ = self.enrol_prompt.set(unprotected);
                Some(s)
            })
            .clone()
    }

    /// Renders the page an error response left to be rendered (see [`error::render`]), for
    /// the session the handler saw.
    fn render(&self, response: Response) -> Response {
        let seen = self.session.get().and_then(Option::as_ref);
        error::render(response, &self.ctx(seen.map(svc::Any::session)))
    }

    fn ctx<'a>(&'a self, session: Option<&'a Session>) -> Ctx<'a> {
        Ctx {
            csrf: &self.csrf,
            session,
            enrol_prompt: session.is_some() && self.enrol_prompt.get() == Some(&true),
            notices: session.and(self.notices.get()).filter(|n| !n.is_empty()),
        }
    }

    /// For a patient's page (a GET of a page, not a file): looks up what happened since
    /// their last visit, for [`Web::ctx`]. A failure only leaves the notices out.
    async fn gather_notices(&self, state: &AppState, path: &str) {
        let page = path.starts_with("/patient") && path != "/patient/export" || path == "/account";
        if !page {
            return;
        }
        let Some(Ok(patient)) = self.session(state).map(svc::Any::patient) else {
            return;
        };
        match state.service().since_last_visit(&patient).await {
            Ok(n) => {
                let _ = self.notices.set(n);
            }
            Err(e) => tracing::warn!(error = %e, "since-last-visit notices left out"),
        }
    }
}

/// Runs before every page: makes sure the browser has its cookie, and refuses any POST whose
/// CSRF token is missing or wrong before the handler can change anything.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let secure = state.secure_cookies;
    let mut cookies = session::read(req.headers(), secure);
    let new_browser = cookies.browser.is_none();
    if new_browser {
        cookies.browser = Some(session::new_browser_id());
    }
    let web = Web {
        csrf: session::csrf_token(&state.csrf_key, &cookies),
        cookies,
        session: Arc::default(),
        enrol_prompt: Arc::default(),
        notices: Arc::default(),
    };
    let mut req = req;
    if req.method() == Method::GET {
        web.gather_notices(&state, req.uri().path()).await;
    }
    if req.method() == Method::POST && attachments::is_stream_upload(req.uri().path()) {
        // A file streamed into storage: the token is in the form's URL, the body is the
        // handler's to read as it comes.
        let submitted = attachments::query_csrf(req.uri().query());
        if new_browser || !session::csrf_ok(&state.csrf_key, &web.cookies, &submitted) {
            let mut r = web.render(PageError::FormExpired.into_response());
            if new_browser {
                set_browser_cookie(&mut r, &state, &web.cookies);
            }
            return r;
        }
    } else if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let limit = if parts.uri.path() == UPLOAD_PATH {
            crate::FHIR_MAX_BODY_BYTES
        } else {
            MAX_BODY_BYTES
        };
        let Ok(bytes) = to_bytes(body, limit).await else {
            return web.render(PageError::TooLarge.into_response());
        };
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let submitted = match multipart::parse(content_type, &bytes) {
            // The file form: its csrf field is a part.
            Some(form) => form
                .into_iter()
                .find(|p| p.name == "csrf")
                .and_then(|p| String::from_utf8(p.data.to_vec()).ok()),
            None => serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
                .ok()
                .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf"))
                .map(|(_, v)| v),
        }
        .unwrap_or_default();
        if new_browser || !session::csrf_ok(&state.csrf_key, &web.cookies, &submitted) {
            let mut r = web.render(PageError::FormExpired.into_response());
            if new_browser {
                set_browser_cookie(&mut r, &state, &web.cookies);
            }
            return r;
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(web.clone());
    let mut response = web.render(next.run(req).await);
    if new_browser {
        set_browser_cookie(&mut response, &state, &web.cookies);
    }
    response
}

fn set_browser_cookie(r: &mut Response, state: &AppState, cookies: &session::Cookies) {
    let (_, name) = session::names(state.secure_cookies);
    let value = cookies.browser.as_deref().unwrap_or_default();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set(name, value, state.secure_cookies, None),
    );
}

fn session_cookie(state: &AppState, token: &str, max_age: u64) -> HeaderValue {
    let (name, _) = session::names(state.secure_cookies);
    session::set(name, token, state.secure_cookies, Some(max_age))
}

/// A page (200).
fn html(m: Markup) -> Response {
    Html(m.into_string()).into_response()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A page's role, for [`SignedIn`]: the role, and the typed session its handlers get.
trait PageRole {
    const ROLE: Role;
    type Typed;
    fn typed(signed_in: svc::Any) -> Option<Self::Typed>;
}

/// Pages for patients.
struct PatientOnly;
/// Pages for providers.
struct ProviderOnly;
/// Pages for the admin.
struct AdminOnly;

impl PageRole for PatientOnly {
    const ROLE: Role = Role::Patient;
    type Typed = svc::PatientSession;
    fn typed(signed_in: svc::Any) -> Option<Self::Typed> {
        signed_in.patient().ok()
    }
}
impl PageRole for ProviderOnly {
    const ROLE: Role = Role::Provider;
    type Typed = svc::ProviderSession;
    fn typed(signed_in: svc::Any) -> Option<Self::Typed> {
        signed_in.provider().ok()
    }
}
impl PageRole for AdminOnly {
    const ROLE: Role = Role::Admin;
    type Typed = svc::AdminSession;
    fn typed(signed_in: svc::Any) -> Option<Self::Typed> {
        signed_in.admin().ok()
    }
}

/// Extracts the signed-in user of the page's role; otherwise the handler never runs and
/// the answer is [`need`]'s (the login page, or a refusal).
struct SignedIn<R: PageRole>(R::Typed);

impl<R: PageRole> FromRequestParts<AppState> for SignedIn<R> {
    // A response, not a `PageError`: without the guard's `Web` there is no one to render
    // an error page, so that case answers the finished not-found page.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let web = parts
            .extensions
            .get::<Web>()
            .cloned()
            .ok_or_else(not_found_page)?;
        need::<R>(state, &web)
            .map(SignedIn)
            .map_err(IntoResponse::into_response)
    }
}

/// The signed-in user if they have `role`; otherwise the way to the right login page
/// (no session) or a refusal (another role).
fn need<R: PageRole>(state: &AppState, web: &Web) -> PageResult<R::Typed> {
    let signed_in = web.session(state).ok_or(PageError::SignIn(R::ROLE))?;
    let session = signed_in.role();
    R::typed(signed_in).ok_or(PageError::WrongRole {
        page: R::ROLE,
        session,
    })
}

fn parse_form<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> T {
    // Every form field is an optional string, so only a non-form body fails: treat it as
    // an empty form, which then fails validation field by field.
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Dates and display
// ---------------------------------------------------------------------------------------

fn today() -> String {
    let d = Date::today_utc();
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// `YYYY-MM-DD HH:MM UTC`.
fn fmt_time(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let d = Date::from_unix_days(days);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        d.year,
        d.month,
        d.day,
        secs / 3600,
        secs % 3600 / 60
    )
}

/// Days since 1970-01-01 of a date (H. Hinnant's `days_from_civil`).
fn unix_days(d: Date) -> i64 {
    let y = i64::from(d.year) - i64::from(d.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(d.month);
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(d.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

use ehr_primitives::unix_now as now_unix;

fn form_values(f: &RecordForm) -> FormValues {
    FormValues {
        patient_name: f.patient_name.clone(),
        birth_date: f.birth_date.clone(),
        address: f.address.clone(),
        phone: f.phone.clone(),
        health_condition: f.health_condition.clone(),
    }
}

fn record_view(r: svc::ReadRecord) -> pages::RecordView {
    pages::RecordView {
        chart: chart::Chart::of(&r.bundle),
        record_id: r.record_id,
        version: r.version,
        patient_id: r.patient_id,
        manifest_cid: r.manifest_cid,
        access_tx: r.access_tx.to_string(),
        emergency: r.emergency,
        form: r.form.as_ref().map(form_values),
        attachments: svc::fhir::documents(&r.bundle)
            .into_iter()
            .map(|d| pages::AttachmentRow {
                number: d.index,
                inline: svc::attachments::AttachmentPolicy::inline(&d.content_type),
                kind: kind_of(&d.content_type),
                content_type: d.content_type,
                title: d.title.unwrap_or_else(|| format!("Attachment {}", d.index)),
                size: human_size(d.size),
                created: d
                    .created
                    .map(|c| c.replace('T', " ").trim_end_matches('Z').to_owned() + " UTC")
                    .unwrap_or_default(),
            })
            .collect(),
        bundle_pretty: serde_json::to_string_pretty(&r.bundle).unwrap_or_default(),
    }
}

/// A media type as people say it.
fn kind_of(content_type: &str) -> &'static str {
    use svc::attachments::Known;
    match Known::of(content_type) {
        Some(Known::Pdf) => "PDF",
        Some(Known::Dicom) => "DICOM image",
        Some(Known::Jpeg) => "JPEG photo",
        Some(Known::Png) => "PNG image",
        Some(Known::Heic) => "HEIC photo",
        None => "File",
    }
}

/// `1.5 MB`, `340 KB`, `12 bytes`.
fn human_size(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} bytes"),
        1_000..1_000_000 => format!("{:.0} KB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// The `?done=` of a page a form redirected to, for its notice.
#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_days_inverts_from_unix_days() {
        for days in [-1, 0, 1, 59, 60, 365, 11_016, 20_000, 20_781, 100_000] {
            assert_eq!(unix_days(Date::from_unix_days(days)), days, "day {days}");
        }
        assert_eq!(fmt_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_time(951_782_400 + 3_661), "2000-02-29 01:01 UTC");
    }
}
