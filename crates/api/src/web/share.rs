//! Sharing by code (issue 20). The patient's `/patient/share-code` makes a grant offer
//! signed with the patient's key and shows it as a QR code of the link `/offer?o=…` (the
//! offer itself, base64url: nothing is kept here). A provider signed in on any SecureEHR
//! server of the network opens the link, sees what is offered and accepts: the server
//! redeems the offer on chain under the provider's key. Forged, used or expired codes get
//! a page that says so, and change nothing.

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::auth::safe_next;
use super::pages::{self, FieldErrors, ShareCodeValues};
use super::patient::{grant_form_errors, grant_scope};
use super::{
    PageResult, PatientOnly, ProviderOnly, SignedIn, Web, fmt_time, html, need, parse_form,
    see_other,
};
use crate::AppState;
use crate::svc::{self, OfferRefusal, SignedOffer};

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ShareCodeForm {
    record_id: String,
    expires: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct OfferForm {
    o: String,
}

pub(super) async fn share_code_page(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
) -> PageResult {
    form_page(&state, &web, &s, &ShareCodeValues::default(), Vec::new()).await
}

async fn form_page(
    state: &AppState,
    web: &Web,
    s: &svc::PatientSession,
    values: &ShareCodeValues,
    errors: FieldErrors,
) -> PageResult {
    let records: Vec<u64> = state
        .service()
        .my_records(s)
        .await?
        .iter()
        .map(|r| r.record_id)
        .collect();
    let ctx = web.ctx(Some(s.session()));
    Ok(html(pages::share_code_form(
        &ctx, &records, values, &errors,
    )))
}

/// Makes the code: the offer signed, shown as a QR code and as a link.
pub(super) async fn make_code(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<PatientOnly>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let f: ShareCodeForm = parse_form(&body);
    let result = async {
        let (record_id, expires_at) = grant_scope(&f.record_id, &f.expires)?;
        Ok(state
            .service()
            .make_offer(&s, record_id, expires_at)
            .await?)
    }
    .await;
    let offer = match result {
        Ok(offer) => offer,
        Err(e) => {
            let errors = grant_form_errors(e)?;
            let values = ShareCodeValues {
                record_id: f.record_id,
                expires: f.expires,
            };
            return form_page(&state, &web, &s, &values, errors).await;
        }
    };
    let link = format!(
        "{}/offer?o={}",
        crate::origin(&state, &headers),
        URL_SAFE_NO_PAD.encode(offer.to_bytes())
    );
    let qr = crate::api::qr_svg(&link);
    let what = format!(
        "reading {} until {}",
        match offer.offer.record_id {
            Some(id) => format!("record {id}"),
            None => "all your records".into(),
        },
        fmt_time(offer.offer.expires_at)
    );
    let ctx = web.ctx(Some(s.session()));
    Ok(html(pages::share_code(
        &ctx,
        &qr,
        &link,
        &what,
        &fmt_time(offer.offer.deadline),
    )))
}

/// The offer in a code's link, or `Forged` for anything that does not decode.
fn decode(encoded: &str) -> Result<SignedOffer, OfferRefusal> {
    URL_SAFE_NO_PAD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| SignedOffer::from_bytes(&b))
        .ok_or(OfferRefusal::Forged)
}

fn refused(web: &Web, s: &svc::ProviderSession, why: OfferRefusal) -> Response {
    let status = match why {
        OfferRefusal::Forged => StatusCode::BAD_REQUEST,
        OfferRefusal::Used | OfferRefusal::Expired => StatusCode::GONE,
    };
    let ctx = web.ctx(Some(s.session()));
    let mut r = html(pages::offer_refused(&ctx, why));
    *r.status_mut() = status;
    r
}

/// What the code offers (checked: signature, deadline, not used).
pub(super) async fn offer_page(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    Query(q): Query<OfferForm>,
) -> PageResult {
    // Not signed in yet (a code scanned with the phone's camera): sign in, then back here.
    if web.session(&state).is_none() {
        let next = format!("/offer?o={}", q.o.trim());
        if let Some(next) = safe_next(&next) {
            let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
            return Ok(see_other(&format!("/providers/login?{query}")));
        }
    }
    let s = need::<ProviderOnly>(&state, &web)?;
    let offer = match decode(&q.o) {
        Ok(o) => o,
        Err(why) => return Ok(refused(&web, &s, why)),
    };
    match state.service().inspect_offer(&offer).await {
        Ok(view) => {
            let ctx = web.ctx(Some(s.session()));
            // (Every response says `Referrer-Policy: no-referrer`: the code, a bearer link
            // for ten minutes, is told to no other site.)
            Ok(html(pages::offer(
                &ctx,
                &view,
                q.o.trim(),
                &fmt_time(view.expires_at),
                &fmt_time(view.deadline),
            )))
        }
        Err(svc::Error::Offer(why)) => Ok(refused(&web, &s, why)),
        Err(e) => Err(e.into()),
    }
}

/// Accepts the offer: redeemed on chain with the provider's key.
pub(super) async fn accept(
    State(state): State<AppState>,
    Extension(web): Extension<Web>,
    SignedIn(s): SignedIn<ProviderOnly>,
    body: Bytes,
) -> PageResult {
    let f: OfferForm = parse_form(&body);
    let offer = match decode(&f.o) {
        Ok(o) => o,
        Err(why) => return Ok(refused(&web, &s, why)),
    };
    match state.service().redeem_offer(&s, &offer).await {
        Ok((view, tx)) => {
            let ctx = web.ctx(Some(s.session()));
            Ok(html(pages::offer_accepted(
                &ctx,
                &view,
                &fmt_time(view.expires_at),
                &tx.to_string(),
            ))
            .into_response())
        }
        Err(svc::Error::Offer(why)) => Ok(refused(&web, &s, why)),
        Err(e) => Err(e.into()),
    }
}
