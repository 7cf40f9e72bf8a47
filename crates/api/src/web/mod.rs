//! The web UI (issue #6): server-rendered pages over the same service calls as the JSON
//! API, no JavaScript, one stylesheet. Forms use POST-redirect-GET; a form with bad input
//! is shown again with each error next to its field, and nothing is changed.

mod pages;
mod session;

use std::marker::PhantomData;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Extension, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ehr_records::fhir::Date;
use maud::Markup;
use serde::Deserialize;

use crate::error::Error;
use crate::extract::ClientIp;
use crate::params::{parse_num, unix};
use crate::svc::{self, RecordForm, Role, Session};
use crate::{AppState, MAX_BODY_BYTES};
use pages::{Ctx, FieldErrors, FormValues};

const STYLE_CSS: &str = include_str!("../../static/style.css");
const ICON_SVG: &str = include_str!("../../static/icon.svg");

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/patients", get(patients_page))
        .route("/patients/signup", post(signup))
        .route("/providers/login", get(providers_login))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/patient", get(new_record))
        .route("/patient/records", get(my_records).post(store_record))
        .route(
            "/patient/records/{id}",
            get(view_record).post(update_record),
        )
        .route("/patient/records/{id}/edit", get(edit_record))
        .route("/patient/records/{id}/stored", get(stored))
        .route("/patient/sharing", get(sharing))
        .route("/patient/grants", post(grant))
        .route("/patient/grants/revoke", post(revoke))
        .route("/patient/access-log", get(access_log))
        .route("/provider", get(provider))
        .route("/provider/records", post(provider_records))
        .route("/provider/emergency", post(emergency))
        .route("/admin", get(admin))
        .route("/admin/providers", post(add_provider))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
        .route(
            "/static/style.css",
            get(|| asset(STYLE_CSS, "text/css; charset=utf-8")),
        )
        .route("/static/icon.svg", get(|| asset(ICON_SVG, "image/svg+xml")))
}

async fn asset(body: &'static str, mime: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Cookies, CSRF, sessions
// ---------------------------------------------------------------------------------------

/// What the guard learned about the request, for the handlers.
#[derive(Clone)]
struct Web {
    cookies: session::Cookies,
    csrf: String,
}

impl Web {
    fn session(&self, state: &AppState) -> Option<Session> {
        let token = self.cookies.session.as_deref()?;
        state.service().authenticate(token).ok()
    }

    fn ctx<'a>(&'a self, session: Option<&'a Session>) -> Ctx<'a> {
        Ctx {
            csrf: &self.csrf,
            session,
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
    let csrf = session::csrf_token(&state.csrf_key, &cookies);
    let mut req = req;
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
            return plain_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form was too large.",
            );
        };
        let submitted = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf"))
            .map(|(_, v)| v)
            .unwrap_or_default();
        if new_browser || !session::csrf_ok(&state.csrf_key, &cookies, &submitted) {
            let mut r = plain_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or came from another site, so nothing was changed. Go back, reload the page and try again.",
            );
            if new_browser {
                set_browser_cookie(&mut r, &state, &cookies);
            }
            return r;
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(Web {
        cookies: cookies.clone(),
        csrf,
    });
    let mut response = next.run(req).await;
    if new_browser {
        set_browser_cookie(&mut response, &state, &cookies);
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

/// A page for a request that never reached a handler (no session context).
fn plain_page(status: StatusCode, title: &str, text: &str) -> Response {
    let ctx = Ctx {
        csrf: "",
        session: None,
    };
    (status, html(pages::message(&ctx, title, text))).into_response()
}

pub(crate) fn not_found_page() -> Response {
    plain_page(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
}

fn html(m: Markup) -> axum::response::Html<String> {
    axum::response::Html(m.into_string())
}

fn page(status: StatusCode, m: Markup) -> Response {
    (status, html(m)).into_response()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A page's role, for [`SignedIn`].
trait PageRole {
    const ROLE: Role;
}

/// Pages for patients.
struct PatientOnly;
/// Pages for providers.
struct ProviderOnly;
/// Pages for the admin.
struct AdminOnly;

impl PageRole for PatientOnly {
    const ROLE: Role = Role::Patient;
}
impl PageRole for ProviderOnly {
    const ROLE: Role = Role::Provider;
}
impl PageRole for AdminOnly {
    const ROLE: Role = Role::Admin;
}

/// Extracts the signed-in user of the page's role; otherwise the handler never runs and
/// the answer is [`need`]'s (the login page, or a refusal).
struct SignedIn<R>(Session, PhantomData<R>);

impl<R: PageRole> FromRequestParts<AppState> for SignedIn<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let web = parts
            .extensions
            .get::<Web>()
            .cloned()
            .ok_or_else(not_found_page)?;
        need(state, &web, R::ROLE).map(|s| SignedIn(s, PhantomData))
    }
}

/// The signed-in user if they have `role`; otherwise the way to the right login page
/// (no session) or a refusal (another role).
// The early return of a handler is a whole response; boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn need(state: &AppState, web: &Web, role: Role) -> Result<Session, Response> {
    match web.session(state) {
        None => Err(see_other(match role {
            Role::Patient => "/patients",
            Role::Provider | Role::Admin => "/providers/login",
        })),
        Some(s) if s.role == role => Ok(s),
        Some(s) => Err(page(
            StatusCode::FORBIDDEN,
            pages::message(
                &web.ctx(Some(&s)),
                "Not allowed",
                &format!(
                    "This page is for a {role}; you are signed in as a {}.",
                    s.role
                ),
            ),
        )),
    }
}

/// A page for a failed service call that is not a form error.
fn failure(web: &Web, session: Option<&Session>, e: Error) -> Response {
    if matches!(e, Error::Unauthenticated) {
        return see_other("/");
    }
    let (status, retry, message) = e.into_parts();
    let title = if status.is_server_error() {
        "Something went wrong"
    } else {
        "Request refused"
    };
    let mut r = page(status, pages::message(&web.ctx(session), title, &message));
    if let Some(secs) = retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// Splits an error into form errors (4xx, shown next to their fields) or a failure page
/// (5xx, an expired session).
///
/// A form shown again with its errors answers 200, like the "access denied" result of a
/// provider's look-up: each is an ordinary page of the flow, and browsers report every
/// document that arrives with a 4xx status as a console error. The JSON API carries the
/// precise statuses.
fn form_errors(e: Error) -> Result<(StatusCode, FieldErrors), Error> {
    if e.status().is_server_error() || matches!(e, Error::Unauthenticated) {
        return Err(e);
    }
    let status = StatusCode::OK;
    let errors = match e {
        Error::InvalidRecord(v) => {
            let mut out: FieldErrors = v
                .errors()
                .iter()
                .map(|fe| (fe.path.clone(), fe.rule.to_string()))
                .collect();
            if v.omitted() > 0 {
                out.push((String::new(), format!("and {} more errors", v.omitted())));
            }
            out
        }
        Error::InvalidInput { field, message } => vec![(field, message)],
        Error::Conflict(m) if m.contains("username") => vec![("username".into(), m)],
        other => vec![(String::new(), other.to_string())],
    };
    Ok((status, errors))
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

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

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
        record_id: r.record_id,
        version: r.version,
        patient_id: r.patient_id,
        manifest_cid: r.manifest_cid,
        access_tx: r.access_tx.to_string(),
        emergency: r.emergency,
        form: r.form.as_ref().map(form_values),
        bundle_pretty: serde_json::to_string_pretty(&r.bundle).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------
// Public pages and sign-in
// ---------------------------------------------------------------------------------------

async fn home(State(state): State<AppState>, Extension(web): Extension<Web>) -> Response {
    let s = web.session(&state);
    html(pages::home(&web.ctx(s.as_ref()))).into_response()
}

fn role_home(role: Role) -> &'static str {
    match role {
        Role::Patient => "/patient",
        Role::Provider => "/provider",
        Role::Admin => "/admin",
    }
}

async fn patients_page(State(state): State<AppState>, Extension(web): Extension<Web>) -> Response {
    if let Some(s) = web.session(&state) {
        return see_other(role_home(s.role));
    }
    let p = pages::PatientsPage {
        login_username: "",
        login_errors: Vec::new(),
        signup_username: "",
        signup_errors: Vec::new(),
    };
    html(pages::patients(&web.ctx(None), &p)).into_response()
}

async fn providers_login(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
) -> Response {
    if let Some(s) = web.session(&state) {
        return see_other(role_home(s.role));
    }
    html(pages::providers_login(&web.ctx(None), "", &Vec::new())).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    username: String,
    password: String,
    portal: String,
}

/// Signs in with the service and sets the session cookie for as long as the token lives.
async fn sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    client: &str,
) -> Result<Response, Error> {
    let (token, session) = state.service().login(username, password, client).await?;
    let max_age = unix(session.expires_at).saturating_sub(now_unix());
    let mut r = see_other(role_home(session.role));
    r.headers_mut().append(
        header::SET_COOKIE,
        session_cookie(state, token.expose(), max_age),
    );
    Ok(r)
}

async fn login(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> Response {
    let f: LoginForm = parse_form(&body);
    let e = match sign_in(&state, &f.username, &f.password, &client).await {
        Ok(r) => return r,
        Err(e) => e,
    };
    let retry = match &e {
        Error::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
        _ => None,
    };
    let (status, errors) = match form_errors(e) {
        Ok(x) => x,
        Err(e) => return failure(&web, None, e),
    };
    let ctx = web.ctx(None);
    let markup = if f.portal == "patients" {
        pages::patients(
            &ctx,
            &pages::PatientsPage {
                login_username: &f.username,
                login_errors: errors,
                signup_username: "",
                signup_errors: Vec::new(),
            },
        )
    } else {
        pages::providers_login(&ctx, &f.username, &errors)
    };
    let mut r = page(status, markup);
    if let Some(secs) = retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

async fn signup(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> Response {
    let f: LoginForm = parse_form(&body);
    let result = async {
        state
            .signups
            .check(&client)
            .map_err(|retry_after| Error::RateLimited { retry_after })?;
        state
            .service()
            .register_patient(&f.username, &f.password)
            .await?;
        sign_in(&state, &f.username, &f.password, &client).await
    }
    .await;
    match result.map_err(form_errors) {
        Ok(r) => r,
        Err(Err(e)) => failure(&web, None, e),
        Err(Ok((status, errors))) => {
            let p = pages::PatientsPage {
                login_username: "",
                login_errors: Vec::new(),
                signup_username: &f.username,
                signup_errors: errors,
            };
            page(status, pages::patients(&web.ctx(None), &p))
        }
    }
}

async fn logout(State(state): State<AppState>, Extension(web): Extension<Web>) -> Response {
    if let Some(token) = &web.cookies.session {
        state.service().logout(token);
    }
    let mut r = see_other("/");
    let (name, _) = session::names(state.secure_cookies);
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set(name, "", state.secure_cookies, Some(0)),
    );
    r
}

// ---------------------------------------------------------------------------------------
// Patients
// ---------------------------------------------------------------------------------------

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

async fn new_record(
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<PatientOnly>,
) -> Response {
    html(pages::record_form(
        &web.ctx(Some(&s)),
        None,
        &FormValues::default(),
        &Vec::new(),
    ))
    .into_response()
}

async fn store_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    body: Bytes,
) -> Response {
    save_record(state, web, None, body).await
}

async fn update_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let s = web.session(&state);
    match parse_num::<u64>("id", &id) {
        Ok(id) => save_record(state, web, Some(id), body).await,
        Err(e) => failure(&web, s.as_ref(), e),
    }
}

async fn save_record(state: AppState, web: Web, id: Option<u64>, body: Bytes) -> Response {
    let s = match need(&state, &web, Role::Patient) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f: RecordFormBody = parse_form(&body);
    let form = f.form();
    let result = match id {
        None => state.service().put_form(&s, &form).await,
        Some(id) => state.service().update_form(&s, id, &form).await,
    };
    match result.map_err(Error::from) {
        Ok(stored) => see_other(&format!(
            "/patient/records/{}/stored?version={}",
            stored.record_id, stored.version
        )),
        Err(e) => match form_errors(e) {
            Ok((status, errors)) => page(
                status,
                pages::record_form(&web.ctx(Some(&s)), id, &form_values(&form), &errors),
            ),
            Err(e) => failure(&web, Some(&s), e),
        },
    }
}

#[derive(Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

async fn stored(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<PatientOnly>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Response {
    let found = async {
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
        Ok::<_, Error>(pages::StoredView {
            record_id: id,
            version: v.version,
            manifest_cid: v.manifest_cid,
            tx_hash: v.tx_hash.to_string(),
        })
    }
    .await;
    match found {
        Ok(v) => html(pages::stored(&web.ctx(Some(&s)), &v)).into_response(),
        Err(e) => failure(&web, Some(&s), e),
    }
}

async fn my_records(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<PatientOnly>,
) -> Response {
    let result = async {
        let pid = state.service().patient_id(&s).await?;
        let list = state.service().my_records(&s).await?;
        Ok::<_, Error>((pid, list))
    }
    .await;
    match result {
        Ok((pid, list)) => {
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
                            when: fmt_time(v.timestamp),
                            manifest_cid: v.manifest_cid,
                            tx_hash: v.tx_hash.to_string(),
                        })
                        .collect(),
                })
                .collect();
            html(pages::my_records(&web.ctx(Some(&s)), pid, &rows)).into_response()
        }
        Err(e) => failure(&web, Some(&s), e),
    }
}

async fn view_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<PatientOnly>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Response {
    let result = async {
        let id: u64 = parse_num("id", &id)?;
        let version: Option<u32> = q.version.map(|v| parse_num("version", &v)).transpose()?;
        Ok::<_, Error>(state.service().read_record(&s, id, version).await?)
    }
    .await;
    match result {
        Ok(r) => html(pages::record_page(&web.ctx(Some(&s)), &record_view(r))).into_response(),
        Err(e) => failure(&web, Some(&s), e),
    }
}

async fn edit_record(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<PatientOnly>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let id: u64 = parse_num("id", &id)?;
        Ok::<_, Error>((id, state.service().read_record(&s, id, None).await?))
    }
    .await;
    match result {
        Ok((id, r)) => {
            let values = r.form.as_ref().map(form_values).unwrap_or_default();
            html(pages::record_form(
                &web.ctx(Some(&s)),
                Some(id),
                &values,
                &Vec::new(),
            ))
            .into_response()
        }
        Err(e) => failure(&web, Some(&s), e),
    }
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn sharing(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<PatientOnly>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("granted") => Some("Access granted."),
        Some("revoked") => Some("Access revoked."),
        _ => None,
    };
    sharing_page(
        &state,
        &web,
        &s,
        StatusCode::OK,
        notice,
        Vec::new(),
        &GrantForm::default(),
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GrantForm {
    provider: String,
    record_id: String,
    expires: String,
}

#[allow(clippy::too_many_arguments)]
async fn sharing_page(
    state: &AppState,
    web: &Web,
    s: &Session,
    status: StatusCode,
    notice: Option<&str>,
    errors: FieldErrors,
    f: &GrantForm,
) -> Response {
    let result = async {
        let providers = state.service().providers();
        let records = state.service().my_records(s).await?;
        let grants = state.service().grants(s).await?;
        Ok::<_, Error>((providers, records, grants))
    }
    .await;
    let (providers, records, grants) = match result {
        Ok(x) => x,
        Err(e) => return failure(web, Some(s), e),
    };
    let p = pages::SharingPage {
        providers: providers.into_iter().map(|a| a.username).collect(),
        records: records.iter().map(|r| r.record_id).collect(),
        grants: grants
            .into_iter()
            .map(|g| pages::GrantRow {
                scope: g
                    .record_id
                    .map_or_else(|| "all records".to_owned(), |id| format!("record {id}")),
                record_id: g.record_id,
                expires: fmt_time(g.expires_at),
                state: if g.active {
                    "active"
                } else if g.revoked_at != 0 {
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
    };
    page(status, pages::sharing(&web.ctx(Some(s)), &p))
}

/// The grant form's fields, checked: provider, optional record id, expiry (end of the
/// chosen day, UTC).
fn check_grant(f: &GrantForm) -> Result<(Option<u64>, u64), Error> {
    if f.provider.trim().is_empty() {
        return Err(Error::input("provider", "choose a provider"));
    }
    let record_id = match f.record_id.trim() {
        "" => None,
        id => Some(parse_num("record_id", id)?),
    };
    let date = Date::parse(f.expires.trim())
        .ok_or_else(|| Error::input("expires", "choose a date (YYYY-MM-DD)"))?;
    let end_of_day = u64::try_from(unix_days(date) * 86_400 + 86_399)
        .map_err(|_| Error::input("expires", "must be today or later"))?;
    if end_of_day <= now_unix() {
        return Err(Error::input("expires", "must be today or later"));
    }
    Ok((record_id, end_of_day))
}

async fn grant(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<PatientOnly>,
    body: Bytes,
) -> Response {
    let f: GrantForm = parse_form(&body);
    let result = async {
        let (record_id, expires_at) = check_grant(&f)?;
        state
            .service()
            .grant(&s, f.provider.trim(), record_id, expires_at)
            .await?;
        Ok::<_, Error>(())
    }
    .await;
    match result {
        Ok(()) => see_other("/patient/sharing?done=granted"),
        Err(e) => match form_errors(e) {
            Ok((status, mut errors)) => {
                for (field, _) in &mut errors {
                    if field == "expires_at" {
                        *field = "expires".into();
                    }
                }
                sharing_page(&state, &web, &s, status, None, errors, &f).await
            }
            Err(e) => failure(&web, Some(&s), e),
        },
    }
}

async fn revoke(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<PatientOnly>,
    body: Bytes,
) -> Response {
    let f: GrantForm = parse_form(&body);
    let result = async {
        let record_id = match f.record_id.trim() {
            "" => None,
            id => Some(parse_num("record_id", id)?),
        };
        state
            .service()
            .revoke(&s, f.provider.trim(), record_id)
            .await?;
        Ok::<_, Error>(())
    }
    .await;
    match result {
        Ok(()) => see_other("/patient/sharing?done=revoked"),
        Err(e) => failure(&web, Some(&s), e),
    }
}

async fn access_log(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<PatientOnly>,
) -> Response {
    match state.service().access_log(&s).await.map_err(Error::from) {
        Ok(list) => {
            let rows: Vec<pages::LogRow> = list
                .into_iter()
                .rev()
                .map(|e| pages::LogRow {
                    when: fmt_time(e.timestamp),
                    reader: e.reader_username.unwrap_or_else(|| e.reader.to_string()),
                    record: match e.version {
                        Some(v) => format!("record {}, version {v}", e.record_id),
                        None => format!("record {}", e.record_id),
                    },
                    emergency: e.emergency,
                    reason: e.reason,
                    tx_hash: e.tx_hash.to_string(),
                })
                .collect();
            html(pages::access_log(&web.ctx(Some(&s)), &rows)).into_response()
        }
        Err(e) => failure(&web, Some(&s), e),
    }
}

// ---------------------------------------------------------------------------------------
// Providers
// ---------------------------------------------------------------------------------------

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

async fn provider(
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

async fn provider_records(
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

async fn emergency(
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

// ---------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------

async fn admin(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<AdminOnly>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let notice = (q.done.as_deref() == Some("added")).then_some("Provider registered.");
    admin_page(&state, &web, &s, StatusCode::OK, notice, Vec::new(), "").await
}

async fn admin_page(
    state: &AppState,
    web: &Web,
    s: &Session,
    status: StatusCode,
    notice: Option<&str>,
    errors: FieldErrors,
    username: &str,
) -> Response {
    let result = async {
        let providers = state.service().providers();
        let st = state.service().status().await?;
        Ok::<_, Error>((providers, st))
    }
    .await;
    let (providers, st) = match result {
        Ok(x) => x,
        Err(e) => return failure(web, Some(s), e),
    };
    let p = pages::AdminPage {
        notice,
        errors,
        username,
        providers: providers
            .into_iter()
            .map(|a| (a.username, a.address.to_string()))
            .collect(),
        chain: vec![
            ("Backend", st.chain.backend.clone()),
            ("Chain ID", st.chain.chain_id.to_string()),
            ("Latest block", st.chain.head_block.to_string()),
            ("Latest block hash", st.chain.head_hash.to_string()),
            ("Latest block time", fmt_time(st.chain.head_timestamp)),
            ("Contract", st.chain.contract.to_string()),
        ],
        threshold: format!("any {} of {}", st.k, st.n),
        nodes: st
            .nodes
            .into_iter()
            .map(|n| pages::NodeRow {
                index: n.index,
                address: n.address.to_string(),
                name: n.name,
                reachable: n.reachable,
            })
            .collect(),
    };
    page(status, pages::admin(&web.ctx(Some(s)), &p))
}

async fn add_provider(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s, _): SignedIn<AdminOnly>,
    body: Bytes,
) -> Response {
    let f: LoginForm = parse_form(&body);
    match state
        .service()
        .add_provider(&s, &f.username, &f.password)
        .await
        .map_err(Error::from)
    {
        Ok(_) => see_other("/admin?done=added"),
        Err(e) => match form_errors(e) {
            Ok((status, errors)) => {
                admin_page(&state, &web, &s, status, None, errors, &f.username).await
            }
            Err(e) => failure(&web, Some(&s), e),
        },
    }
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

    #[test]
    fn grant_form_checks_name_the_field() {
        let f = |p: &str, r: &str, e: &str| GrantForm {
            provider: p.into(),
            record_id: r.into(),
            expires: e.into(),
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
