//! First start in the browser: on a deployment without an admin, `serve` prints a one-time
//! link `/setup?token=…`; its page creates the admin. A wrong token is refused (403), a used
//! one — or any once an admin exists — is no page at all (404); neither changes anything.

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{PageError, PageResult, Web, form_errors, html, pages, parse_form};
use crate::AppState;
use crate::error::Error;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SetupQuery {
    token: String,
}

/// The set-up token check: 404 when there is none (used, or an admin exists), 403 when
/// `given` is not it.
fn check(state: &AppState, given: &str) -> PageResult<()> {
    let Some(want) = state.setup_token() else {
        return Err(PageError::NotFound);
    };
    if state.service().accounts().has_admin() {
        return Err(PageError::NotFound);
    }
    let want = Zeroizing::new(want);
    if bool::from(want.as_bytes().ct_eq(given.trim().as_bytes())) {
        Ok(())
    } else {
        Err(Error::Forbidden("this set-up link is not valid".into()).into())
    }
}

pub(super) async fn setup_page(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    Query(q): Query<SetupQuery>,
) -> PageResult {
    check(&state, &q.token)?;
    Ok(html(pages::setup(
        &web.ctx(None),
        &q.token,
        "",
        &Vec::new(),
    )))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SetupForm {
    token: String,
    username: String,
    password: String,
}

pub(super) async fn create_admin(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    body: Bytes,
) -> PageResult {
    let f: SetupForm = parse_form(&body);
    let password = Zeroizing::new(f.password);
    check(&state, &f.token)?;
    match state
        .service()
        .create_first_admin(&f.username, &password)
        .await
    {
        Ok(info) => {
            state.end_setup();
            Ok(html(pages::message(
                &web.ctx(None),
                "Admin created",
                &format!(
                    "The admin {} is created. Sign in under \"Medical Providers Login\" to register providers.",
                    info.username
                ),
            )))
        }
        Err(e) => {
            let errors = form_errors(e.into())?;
            Ok(html(pages::setup(
                &web.ctx(None),
                &f.token,
                &f.username,
                &errors,
            )))
        }
    }
}
