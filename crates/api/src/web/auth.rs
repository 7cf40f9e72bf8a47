//! The public pages and signing in: home, the patients' sign-in and sign-up page, the
//! providers' sign-in page, and signing out.

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;

use super::pages;
use super::{
    PageResult, Web, form_errors, html, now_unix, parse_form, see_other, session, session_cookie,
};
use crate::AppState;
use crate::error::Error;
use crate::extract::ClientIp;
use crate::params::unix;
use crate::svc::{self, Role};

pub(super) async fn home(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
) -> Response {
    let s = web.session(&state);
    html(pages::home(&web.ctx(s.as_ref().map(svc::Any::session))))
}

fn role_home(role: Role) -> &'static str {
    match role {
        Role::Patient => "/patient",
        Role::Provider => "/provider",
        Role::Admin => "/admin",
    }
}

pub(super) async fn patients_page(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
) -> Response {
    if let Some(s) = web.session(&state) {
        return see_other(role_home(s.role()));
    }
    let p = pages::PatientsPage {
        login_username: "",
        login_errors: Vec::new(),
        signup_username: "",
        signup_errors: Vec::new(),
    };
    html(pages::patients(&web.ctx(None), &p))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NextQuery {
    next: String,
}

/// Where a sign-in may send the browser next, besides the role's home: only a sharing
/// code's offer page (so that a scanned code survives signing in), never another site.
pub(super) fn safe_next(next: &str) -> Option<&str> {
    let code = next.strip_prefix("/offer?o=")?;
    (!code.is_empty()
        && code
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
    .then_some(next)
}

pub(super) async fn providers_login(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = safe_next(&q.next).unwrap_or_default();
    if let Some(s) = web.session(&state) {
        return see_other(if next.is_empty() {
            role_home(s.role())
        } else {
            next
        });
    }
    html(pages::providers_login(
        &web.ctx(None),
        "",
        &Vec::new(),
        next,
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LoginForm {
    pub(super) username: String,
    pub(super) password: String,
    /// The second factor, for accounts that turned it on.
    code: String,
    portal: String,
    /// Where to go once signed in ([`safe_next`]), if not the role's home.
    next: String,
}

/// Signs in with the service and sets the session cookie for as long as the token lives.
async fn sign_in(state: &AppState, username: &str, password: &str, client: &str) -> PageResult {
    sign_in_with(state, username, password, None, client, None).await
}

/// [`sign_in`] with a second factor (empty: none given).
async fn sign_in_with(
    state: &AppState,
    username: &str,
    password: &str,
    code: Option<&str>,
    client: &str,
    next: Option<&str>,
) -> PageResult {
    let code = code.map(str::trim).filter(|c| !c.is_empty());
    let (token, signed_in) = state
        .service()
        .login_with_code(username, password, code, client)
        .await?;
    let session = signed_in.session();
    let max_age = unix(session.expires_at).saturating_sub(now_unix());
    let mut r = see_other(next.unwrap_or(role_home(session.role)));
    r.headers_mut().append(
        header::SET_COOKIE,
        session_cookie(state, token.expose(), max_age),
    );
    Ok(r)
}

pub(super) async fn login(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> PageResult {
    let f: LoginForm = parse_form(&body);
    let next = safe_next(&f.next);
    let e = match sign_in_with(
        &state,
        &f.username,
        &f.password,
        Some(&f.code),
        &client,
        next,
    )
    .await
    {
        Ok(r) => return Ok(r),
        Err(e) => e,
    };
    let retry = e.retry_after();
    let errors = form_errors(e)?;
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
        pages::providers_login(&ctx, &f.username, &errors, next.unwrap_or_default())
    };
    let mut r = html(markup);
    if let Some(secs) = retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Ok(r)
}

/// The sign-up form: multipart (it may carry a keystore file), or a plain form.
fn signup_form(headers: &HeaderMap, body: &Bytes) -> (LoginForm, Option<Vec<u8>>) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(parts) = super::multipart::parse(content_type, body) else {
        return (parse_form(body), None);
    };
    let text = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(p.data).into_owned())
            .unwrap_or_default()
    };
    let keystore = parts
        .iter()
        .find(|p| p.name == "keystore")
        .map(|p| p.data.to_vec())
        .filter(|d| !d.is_empty());
    let form = LoginForm {
        username: text("username"),
        password: text("password"),
        code: String::new(),
        portal: String::new(),
        next: String::new(),
    };
    (form, keystore)
}

pub(super) async fn signup(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (f, keystore) = signup_form(&headers, &body);
    let result = async {
        let own = keystore
            .map(|k| {
                svc::KeystoreFile::from_json(&String::from_utf8_lossy(&k))
                    .map_err(crate::api::keystore_error)
            })
            .transpose()?;
        state
            .signups
            .check(&client)
            .map_err(|retry_after| Error::RateLimited { retry_after })?;
        let (_, code) = state
            .service()
            .register_patient_with_key(&f.username, &f.password, own)
            .await
            .map_err(|e| match e {
                svc::Error::Accounts(
                    e @ (svc::AccountsError::KeystoreMac | svc::AccountsError::KeystoreFormat(_)),
                ) => crate::api::keystore_error(e).into(),
                other => super::PageError::from(other),
            })?;
        // Signed in, and the recovery code shown this once (the page carries the cookie).
        let signed_in = sign_in(&state, &f.username, &f.password, &client).await?;
        let mut r = html(pages::recovery_code(
            &web.ctx(None),
            code.expose(),
            "Welcome. Your account is ready, and you are signed in. This is your recovery code.",
            ("/patient", "Continue to your records"),
        ));
        for cookie in signed_in.headers().get_all(header::SET_COOKIE) {
            r.headers_mut().append(header::SET_COOKIE, cookie.clone());
        }
        Ok(r)
    }
    .await;
    let errors = match result {
        Ok(r) => return Ok(r),
        Err(e) => form_errors(e)?,
    };
    let p = pages::PatientsPage {
        login_username: "",
        login_errors: Vec::new(),
        signup_username: &f.username,
        signup_errors: errors,
    };
    Ok(html(pages::patients(&web.ctx(None), &p)))
}

pub(super) async fn logout(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
) -> Response {
    if let Some(token) = &web.cookies.session {
        state.service().logout(token);
    }
    let mut r = see_other("/");
    clear_session_cookie(&mut r, &state);
    r
}

/// Ends the browser's session cookie (signing out, or the account deleted).
pub(super) fn clear_session_cookie(r: &mut Response, state: &AppState) {
    let (name, _) = session::names(state.secure_cookies);
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set(name, "", state.secure_cookies, Some(0)),
    );
}
