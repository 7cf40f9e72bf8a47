//! The account page, for every role: change the password.

use maud::{Markup, html};

use super::*;

pub(crate) fn account(ctx: &Ctx<'_>, notice: Option<&str>, errors: &FieldErrors) -> Markup {
    let field = |name: &'static str, label: &'static str, autocomplete: &'static str| {
        let errs = error_for(errors, name);
        let id = format!("account-{name}");
        let err_id = format!("{id}-error");
        html! {
            div.field {
                label for=(id) { (label) }
                input id=(id) name=(name) type="password" required autocomplete=(autocomplete)
                    aria-invalid=[(!errs.is_empty()).then_some("true")]
                    aria-describedby=[(!errs.is_empty()).then_some(err_id.as_str())];
                @if !errs.is_empty() {
                    p.error id=(err_id) role="alert" { @for m in errs { (label) ": " (m) br; } }
                }
            }
        }
    };
    layout(
        ctx,
        "Account",
        html! {
            h1 { "Account" }
            @if let Some(n) = notice { p.success role="status" { (n) } }
            section aria-labelledby="password-h" {
                h2 #password-h { "Change your password" }
                p.small { "Your key stays the same: your records, grants and access log stay yours. Every other session of your account is signed out." }
                form method="post" action="/account/password" novalidate {
                    (csrf(ctx))
                    (form_errors(errors, &["current_password", "new_password", "confirm"]))
                    (field("current_password", "Current password", "current-password"))
                    (field("new_password", "New password", "new-password"))
                    (field("confirm", "New password again", "new-password"))
                    button type="submit" { "Change password" }
                }
            }
        },
    )
}
