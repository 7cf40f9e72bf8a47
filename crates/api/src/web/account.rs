//! The account page, for every role: the password change (the same key re-encrypted; the
//! account's other sessions end, this browser's stays).

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    DoneQuery, PageError, PageResult, Web, form_errors, html, pages, parse_form, see_other,
};
use crate::AppState;
use crate::error::Error;
use crate::extract::ClientIp;
use crate::svc::{self, Role};

/// The patient's keystore v3 file, as a download.
pub(super) async fn keystore(
    State(state): State<AppState>,
    super::SignedIn(s): super::SignedIn<super::PatientOnly>,
) -> PageResult {
    let file = state.service().export_keystore(&s)?;
    let mut r = axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        file.to_json(),
    ));
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        crate::api::keystore_file_name(&file)
    )) {
        r.headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

pub(super) async fn account(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let s = web
        .session(&state)
        .ok_or(PageError::SignIn(Role::Patient))?;
    let notice = (q.done.as_deref() == Some("password"))
        .then_some("Password changed. Your other sessions were signed out.");
    Ok(html(pages::account(
        &web.ctx(Some(s.session())),
        notice,
        &Vec::new(),
    )))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm: String,
}

pub(super) async fn change_password(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> PageResult {
    let s = web
        .session(&state)
        .ok_or(PageError::SignIn(Role::Patient))?;
    let f: PasswordForm = parse_form(&body);
    // Zeroized when dropped.
    let (current, new, confirm) = (
        Zeroizing::new(f.current_password),
        Zeroizing::new(f.new_password),
        Zeroizing::new(f.confirm),
    );
    let token = web.cookies.session.clone().unwrap_or_default();
    let result = if new != confirm {
        Err(Error::input("confirm", "does not match the new password").into())
    } else {
        state
            .service()
            .change_password(&s, &token, &current, &new, &client)
            .await
            .map_err(|e| match e {
                svc::Error::Accounts(svc::AccountsError::InvalidPassword(why)) => {
                    Error::input("new_password", why).into()
                }
                svc::Error::Accounts(svc::AccountsError::InvalidCredentials) => {
                    Error::input("current_password", "is not your password").into()
                }
                other => PageError::from(other),
            })
    };
    let errors = match result {
        Ok(()) => return Ok(see_other("/account?done=password")),
        Err(e) => form_errors(e)?,
    };
    Ok(html(pages::account(
        &web.ctx(Some(s.session())),
        None,
        &errors,
    )))
}
