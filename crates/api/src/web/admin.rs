//! The admin's page: registering providers, and the chain and storage nodes' status.

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};

use super::pages::{self, FieldErrors};
use super::{
    AdminOnly, DoneQuery, PageResult, SignedIn, Web, fmt_time, form_errors, html, parse_form,
    see_other,
};
use crate::AppState;
use crate::svc::Session;

pub(super) async fn admin(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<AdminOnly>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let notice = match q.done.as_deref() {
        Some("added") => Some("Provider registered."),
        Some("disabled") => {
            Some("Provider disabled: deregistered on chain, signed out, no logins.")
        }
        Some("enabled") => Some("Provider enabled: registered on chain again."),
        Some("reset") => Some(
            "Password reset: the provider keeps its key and grants and was signed out. Give them the new password in person; they should change it on their Account page.",
        ),
        _ => None,
    };
    admin_page(&state, &web, s.session(), notice, Vec::new(), "", None).await
}

/// The admin page: the new-provider form (with `username` and `errors`), the providers,
/// and the chain and nodes.
async fn admin_page(
    state: &AppState,
    web: &Web,
    s: &Session,
    notice: Option<&str>,
    errors: FieldErrors,
    username: &str,
    reset_error: Option<(String, String)>,
) -> PageResult {
    let providers = state.service().providers();
    let st = state.service().status().await?;
    let p = pages::AdminPage {
        notice,
        errors,
        username,
        providers: providers
            .into_iter()
            .map(|a| pages::ProviderRow {
                address: a.address.to_string(),
                username: a.username,
                disabled: a.disabled,
                escrowed: a.escrowed,
            })
            .collect(),
        reset_error,
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
    Ok(html(pages::admin(&web.ctx(Some(s)), &p)))
}

/// The register-provider form.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(super) struct NewProviderForm {
    username: String,
    password: String,
    display_name: String,
    specialty: String,
}

pub(super) async fn add_provider(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<AdminOnly>,
    body: Bytes,
) -> PageResult {
    let f: NewProviderForm = parse_form(&body);
    let profile = crate::svc::ProfileInput {
        display_name: f.display_name.clone(),
        specialty: f.specialty.clone(),
    };
    let errors = match state
        .service()
        .add_provider(&s, &f.username, &f.password, &profile)
        .await
    {
        Ok(_) => return Ok(see_other("/admin?done=added")),
        Err(e) => form_errors(e.into())?,
    };
    admin_page(&state, &web, s.session(), None, errors, &f.username, None).await
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(super) struct ProviderForm {
    username: String,
}

/// The Disable button: deregistered on chain, sessions ended, logins refused.
pub(super) async fn disable_provider(
    State(state): State<AppState>,
    SignedIn(s): SignedIn<AdminOnly>,
    body: Bytes,
) -> PageResult {
    let f: ProviderForm = parse_form(&body);
    state.service().disable_provider(&s, &f.username).await?;
    Ok(see_other("/admin?done=disabled"))
}

/// The Enable button: registered on chain again, logins allowed.
pub(super) async fn enable_provider(
    State(state): State<AppState>,
    SignedIn(s): SignedIn<AdminOnly>,
    body: Bytes,
) -> PageResult {
    let f: ProviderForm = parse_form(&body);
    state.service().enable_provider(&s, &f.username).await?;
    Ok(see_other("/admin?done=enabled"))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(super) struct ResetForm {
    username: String,
    password: String,
}

/// A provider's "Reset password" form: the escrowed key under the new password.
pub(super) async fn reset_provider_password(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<AdminOnly>,
    body: Bytes,
) -> PageResult {
    let f: ResetForm = parse_form(&body);
    let password = zeroize::Zeroizing::new(f.password);
    let error = match state
        .service()
        .reset_provider_password(&s, &f.username, &password)
        .await
    {
        Ok(_) => return Ok(see_other("/admin?done=reset")),
        Err(crate::svc::Error::Accounts(crate::svc::AccountsError::InvalidPassword(why))) => {
            why.to_string()
        }
        Err(e) => return Err(e.into()),
    };
    let reset_error = Some((f.username.trim().to_ascii_lowercase(), error));
    admin_page(&state, &web, s.session(), None, Vec::new(), "", reset_error).await
}
