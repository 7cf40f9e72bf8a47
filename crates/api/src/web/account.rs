//! The account page, for every role: the password change (the same key re-encrypted; the
//! account's other sessions end, this browser's stays) and a new recovery code; a patient
//! deleting their account (a confirmation, then the receipt); and the forgotten-password
//! page, where a recovery code sets a new password.

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

/// "Download everything": the patient's export (one FHIR Bundle), as a download.
pub(super) async fn export(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    super::SignedIn(s): super::SignedIn<super::PatientOnly>,
) -> PageResult {
    let bundle = crate::fhir::export(&state, &headers, &s).await?;
    Ok(crate::api::export_response(&bundle))
}

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
    let notice = match q.done.as_deref() {
        Some("password") => Some("Password changed. Your other sessions were signed out."),
        Some("profile") => Some("Directory entry changed: patients of every organisation see it."),
        Some("totp-off") => Some("Two-factor sign-in is off."),
        _ => None,
    };
    account_page(&state, &web, &s, notice, Vec::new(), None).await
}

/// The account page; `profile`: the provider's form values to show back (else its entry
/// now).
async fn account_page(
    state: &AppState,
    web: &Web,
    s: &svc::Any,
    notice: Option<&str>,
    errors: pages::FieldErrors,
    profile: Option<(String, String)>,
) -> PageResult {
    let session = s.session();
    let info = state.service().account(&session.username);
    let recovery_since = info
        .as_ref()
        .and_then(|a| a.recovery_created_at)
        .map(super::fmt_time);
    let two_factor = info.filter(|a| a.two_factor).map(|a| a.backup_codes_left);
    let profile = match (s.clone().provider(), profile) {
        (Ok(_), Some(values)) => Some(values),
        (Ok(me), None) => Some(
            state
                .service()
                .my_profile(&me)
                .await?
                .map(|p| (p.display_name, p.specialty))
                .unwrap_or_default(),
        ),
        (Err(_), _) => None,
    };
    Ok(html(pages::account(
        &web.ctx(Some(session)),
        &pages::AccountPage {
            notice,
            errors,
            recovery_since,
            profile,
            two_factor,
        },
    )))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProfileForm {
    display_name: String,
    specialty: String,
}

/// A provider's directory entry form: a new entry, its digest on chain.
pub(super) async fn update_profile(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    super::SignedIn(me): super::SignedIn<super::ProviderOnly>,
    body: Bytes,
) -> PageResult {
    let f: ProfileForm = parse_form(&body);
    let input = svc::ProfileInput {
        display_name: f.display_name.clone(),
        specialty: f.specialty.clone(),
    };
    let errors = match state.service().update_profile(&me, &input).await {
        Ok(_) => return Ok(see_other("/account?done=profile")),
        Err(e) => form_errors(e.into())?,
    };
    let s = web
        .session(&state)
        .ok_or(PageError::SignIn(Role::Provider))?;
    let values = Some((f.display_name, f.specialty));
    account_page(&state, &web, &s, None, errors, values).await
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
    account_page(&state, &web, &s, None, errors, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RecoveryForm {
    recovery_password: String,
}

/// A new recovery code, shown once (the answer to the POST: a code never goes in a URL).
pub(super) async fn new_recovery_code(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> PageResult {
    let s = web
        .session(&state)
        .ok_or(PageError::SignIn(Role::Patient))?;
    let f: RecoveryForm = parse_form(&body);
    let password = Zeroizing::new(f.recovery_password);
    let result = state
        .service()
        .new_recovery_code(&s, &password, &client)
        .await
        .map_err(|e| match e {
            svc::Error::Accounts(svc::AccountsError::InvalidCredentials) => {
                Error::input("recovery_password", "is not your password").into()
            }
            other => PageError::from(other),
        });
    let errors = match result {
        Ok(code) => {
            return Ok(html(pages::recovery_code(
                &web.ctx(Some(s.session())),
                code.expose(),
                "Your new recovery code. The old one no longer works.",
                ("/account", "Back to your account"),
            )));
        }
        Err(e) => form_errors(e)?,
    };
    account_page(&state, &web, &s, None, errors, None).await
}

pub(super) async fn recover_page(Extension(web): Extension<Web>) -> PageResult {
    Ok(html(pages::recover(&web.ctx(None), "", &Vec::new())))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RecoverForm {
    username: String,
    recovery_code: String,
    new_password: String,
    confirm: String,
}

/// The forgotten-password form: the code sets the new password; the next code is shown
/// once.
pub(super) async fn recover(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> PageResult {
    let f: RecoverForm = parse_form(&body);
    let (code, new, confirm) = (
        Zeroizing::new(f.recovery_code),
        Zeroizing::new(f.new_password),
        Zeroizing::new(f.confirm),
    );
    let result = if new != confirm {
        Err(Error::input("confirm", "does not match the new password").into())
    } else {
        state
            .service()
            .recover(&f.username, &code, &new, &client)
            .await
            .map_err(|e| match e {
                svc::Error::Accounts(svc::AccountsError::InvalidPassword(why)) => {
                    Error::input("new_password", why).into()
                }
                svc::Error::Accounts(svc::AccountsError::InvalidRecovery) => Error::input(
                    "recovery_code",
                    "does not match this username (or the account has no code)",
                )
                .into(),
                other => PageError::from(other),
            })
    };
    let errors = match result {
        Ok(next) => {
            return Ok(html(pages::recovery_code(
                &web.ctx(None),
                next.expose(),
                "Your password is set, and you were signed out everywhere. The code you used no longer works: this is your new one.",
                ("/patients", "Sign in with your new password"),
            )));
        }
        Err(e) => form_errors(e)?,
    };
    Ok(html(pages::recover(&web.ctx(None), &f.username, &errors)))
}

/// "Set up two-factor sign-in": a fresh secret, pending until a code confirms it.
pub(super) async fn begin_totp(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
) -> PageResult {
    let s = web
        .session(&state)
        .ok_or(PageError::SignIn(Role::Patient))?;
    let setup = state.service().begin_totp(&s)?;
    Ok(html(pages::totp_setup(
        &web.ctx(Some(s.session())),
        &crate::api::qr_svg(&setup.uri),
        &setup.secret,
        &Vec::new(),
    )))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    code: String,
}

/// The code that turns two-factor on; a wrong one shows the same secret again.
pub(super) async fn confirm_totp(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> PageResult {
    let s = web
        .session(&state)
        .ok_or(PageError::SignIn(Role::Patient))?;
    let f: CodeForm = parse_form(&body);
    let code = Zeroizing::new(f.code);
    let errors = match state.service().confirm_totp(&s, &code, &client) {
        Ok(codes) => {
            let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
            return Ok(html(pages::backup_codes(
                &web.ctx(Some(s.session())),
                &codes,
            )));
        }
        Err(svc::Error::Accounts(svc::AccountsError::InvalidTotp)) => vec![(
            "code".to_owned(),
            "does not match: check the phone's time, and enter the newest code".to_owned(),
        )],
        Err(e) => form_errors(e.into())?,
    };
    let Some(setup) = state.service().pending_totp(&s) else {
        return Ok(see_other("/account"));
    };
    Ok(html(pages::totp_setup(
        &web.ctx(Some(s.session())),
        &crate::api::qr_svg(&setup.uri),
        &setup.secret,
        &errors,
    )))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TotpOffForm {
    totp_password: String,
    totp_code: String,
}

/// "Turn two-factor off": the password and a code.
pub(super) async fn disable_totp(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> PageResult {
    let s = web
        .session(&state)
        .ok_or(PageError::SignIn(Role::Patient))?;
    let f: TotpOffForm = parse_form(&body);
    let (password, code) = (Zeroizing::new(f.totp_password), Zeroizing::new(f.totp_code));
    let result = state
        .service()
        .disable_totp(&s, &password, &code, &client)
        .await
        .map_err(|e| match e {
            svc::Error::Accounts(svc::AccountsError::InvalidCredentials) => {
                Error::input("totp_password", "is not your password").into()
            }
            svc::Error::Accounts(svc::AccountsError::InvalidTotp) => {
                Error::input("totp_code", "is wrong, or was used already").into()
            }
            other => PageError::from(other),
        });
    let errors = match result {
        Ok(()) => return Ok(see_other("/account?done=totp-off")),
        Err(e) => form_errors(e)?,
    };
    account_page(&state, &web, &s, None, errors, None).await
}

/// "Delete your account": what would be erased, and the confirmation form.
pub(super) async fn delete_page(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    super::SignedIn(me): super::SignedIn<super::PatientOnly>,
) -> PageResult {
    delete_form(&state, &web, &me, Vec::new()).await
}

async fn delete_form(
    state: &AppState,
    web: &Web,
    me: &svc::PatientSession,
    errors: pages::FieldErrors,
) -> PageResult {
    let records: Vec<svc::ErasedRecordView> = state
        .service()
        .my_records(me)
        .await?
        .into_iter()
        .map(|r| svc::ErasedRecordView {
            record_id: r.record_id,
            versions: r.versions.iter().map(|v| v.version).collect(),
        })
        .collect();
    Ok(html(pages::delete_account(
        &web.ctx(Some(me.session())),
        &records,
        &errors,
    )))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteForm {
    password: String,
    understood: String,
}

/// Deletes the account once the box is ticked and the password checked; the receipt is the
/// answer (signed out: the session ended with the account).
pub(super) async fn delete_account(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    ClientIp(client): ClientIp,
    super::SignedIn(me): super::SignedIn<super::PatientOnly>,
    body: Bytes,
) -> PageResult {
    let f: DeleteForm = parse_form(&body);
    let password = Zeroizing::new(f.password);
    let result = if f.understood != "yes" {
        Err(Error::input(
            "understood",
            "tick the box to confirm that you understand your records cannot be recovered",
        )
        .into())
    } else {
        state
            .service()
            .delete_account(&me, &password, &client)
            .await
            .map_err(|e| match e {
                svc::Error::Accounts(svc::AccountsError::InvalidCredentials) => {
                    Error::input("password", "is not your password").into()
                }
                other => PageError::from(other),
            })
    };
    let errors = match result {
        Ok(receipt) => {
            let mut r = html(pages::erasure_receipt(&web.ctx(None), &receipt));
            super::auth::clear_session_cookie(&mut r, &state);
            return Ok(r);
        }
        Err(e) => form_errors(e)?,
    };
    delete_form(&state, &web, &me, errors).await
}
