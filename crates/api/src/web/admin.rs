//! The admin's page: registering providers, and the chain and storage nodes' status.

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::auth::LoginForm;
use super::pages::{self, FieldErrors};
use super::{
    AdminOnly, DoneQuery, SignedIn, Web, failure, fmt_time, form_errors, page, parse_form,
    see_other,
};
use crate::AppState;
use crate::error::Error;
use crate::svc::Session;

pub(super) async fn admin(
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

pub(super) async fn add_provider(
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
