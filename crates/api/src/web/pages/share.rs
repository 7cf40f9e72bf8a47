//! Sharing by code (issue 20): the patient's form and the QR code it makes, and what a
//! provider who opens the code sees — the offer, or why it cannot be used.

use maud::{Markup, PreEscaped, html};

use super::{Ctx, FieldErrors, csrf, error_for, form_errors, layout};
use crate::svc::{OfferRefusal, OfferView};

/// The form's values when shown again.
#[derive(Default)]
pub(crate) struct ShareCodeValues {
    pub record_id: String,
    pub expires: String,
}

pub(crate) fn share_code_form(
    ctx: &Ctx<'_>,
    records: &[u64],
    v: &ShareCodeValues,
    errors: &FieldErrors,
) -> Markup {
    let today = super::super::today();
    layout(
        ctx,
        "Share by code",
        html! {
            h1 { "Share by code" }
            p.lead { "Show a code to a provider across the desk: whoever scans it first and accepts may read what you choose, until the day you choose." }
            p { "The code works once, for 10 minutes. You can end the access on the " a href="/patient/sharing" { "Sharing" } " page at any time." }
            form method="post" action="/patient/share-code" novalidate {
                (csrf(ctx))
                (form_errors(errors, &["record_id", "expires"]))
                div.field {
                    @let errs = error_for(errors, "record_id");
                    label for="code-record" { "Records" }
                    select #code-record name="record_id"
                        aria-invalid=[(!errs.is_empty()).then_some("true")]
                        aria-describedby=[(!errs.is_empty()).then_some("code-record-error")] {
                        option value="" selected[v.record_id.is_empty()] { "All my records" }
                        @for id in records {
                            @let value = id.to_string();
                            option value=(value) selected[value == v.record_id] { "Record " (id) " only" }
                        }
                    }
                    @if !errs.is_empty() { p.error #code-record-error role="alert" { @for m in errs { "Records: " (m) } } }
                }
                div.field {
                    @let errs = error_for(errors, "expires");
                    label for="code-expires" { "Access expires on" }
                    p.hint #code-expires-hint { "Access ends at the end of that day (UTC)." }
                    input #code-expires name="expires" type="date" required value=(v.expires) min=(today)
                        aria-invalid=[(!errs.is_empty()).then_some("true")]
                        aria-describedby={ "code-expires-hint" @if !errs.is_empty() { " code-expires-error" } };
                    @if !errs.is_empty() { p.error #code-expires-error role="alert" { @for m in errs { "Access expires on: " (m) } } }
                }
                button type="submit" { "Make the code" }
            }
        },
    )
}

/// The code: the QR image (SVG drawn by the server), the same link as text, what it gives.
pub(crate) fn share_code(
    ctx: &Ctx<'_>,
    qr_svg: &str,
    link: &str,
    what: &str,
    deadline: &str,
) -> Markup {
    layout(
        ctx,
        "Your sharing code",
        html! {
            h1 { "Your sharing code" }
            p.lead { "Let the provider scan this code. It gives " strong { (what) } "." }
            div.qr role="img" aria-label="QR code of the sharing link below" { (PreEscaped(qr_svg)) }
            p role="status" { "It works once, until " strong { (deadline) } " (10 minutes)." }
            p { "Or send the provider this link:" }
            p.link { code #offer-link { (link) } }
            p { a.button href="/patient/sharing" { "Done" } " " a href="/patient/share-code" { "Make another code" } }
        },
    )
}

/// "record N" or "all their records".
fn scope(record_id: Option<u64>) -> String {
    match record_id {
        Some(id) => format!("record {id}"),
        None => "all their records".into(),
    }
}

/// What a provider who opened a code is offered, with the button that accepts it.
pub(crate) fn offer(
    ctx: &Ctx<'_>,
    o: &OfferView,
    encoded: &str,
    expires: &str,
    deadline: &str,
) -> Markup {
    layout(
        ctx,
        "A patient shares records with you",
        html! {
            h1 { "A patient shares records with you" }
            dl.facts {
                dt { "Patient" } dd { "Patient " (o.patient_id) }
                dt { "Records" } dd { "Read " (scope(o.record_id)) }
                dt { "Until" } dd { (expires) }
                dt { "Accept before" } dd { (deadline) }
            }
            p { "Accepting records the grant on the chain, under your name. The code then works for no one else." }
            form method="post" action="/offer" {
                (csrf(ctx))
                input type="hidden" name="o" value=(encoded);
                button type="submit" { "Accept" }
            }
        },
    )
}

/// Why a code cannot be used; nothing was changed.
pub(crate) fn offer_refused(ctx: &Ctx<'_>, why: OfferRefusal) -> Markup {
    let title = match why {
        OfferRefusal::Forged => "This code is not valid",
        OfferRefusal::Used => "This code was already used",
        OfferRefusal::Expired => "This code has expired",
    };
    layout(
        ctx,
        title,
        html! {
            h1 { (title) }
            p role="alert" { (why.to_string()) " Nothing was changed." }
            p { a href="/provider" { "Access Patient Records" } }
        },
    )
}

/// The offer was redeemed: what the provider may now read, and the way to it.
pub(crate) fn offer_accepted(ctx: &Ctx<'_>, o: &OfferView, expires: &str, tx: &str) -> Markup {
    layout(
        ctx,
        "Shared with you",
        html! {
            h1 { "Shared with you" }
            p.success role="status" { "You may read " (scope(o.record_id)) " of patient " (o.patient_id) " until " (expires) "." }
            p.small { "Transaction " code { (tx) } }
            form method="post" action="/provider/records" {
                (csrf(ctx))
                input type="hidden" name="patient_id" value=(o.patient_id);
                button type="submit" { "Open patient " (o.patient_id) "'s records" }
            }
        },
    )
}

/// The page the service worker shows when the network is gone.
pub(crate) fn offline(ctx: &Ctx<'_>) -> Markup {
    layout(
        ctx,
        "Offline",
        html! {
            h1 { "You are offline" }
            p.lead { "SecureEHR needs a connection to show your records: they are never kept on this device." }
            p { "Check your connection, then " a href="/" { "try again" } "." }
        },
    )
}
