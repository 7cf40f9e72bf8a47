//! The account page, for every role (change the password), and the first start's set-up
//! page (create the admin).

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
            @if ctx.session.is_some_and(|s| s.role == Role::Patient) {
                section aria-labelledby="key-h" {
                    h2 #key-h { "Your key" }
                    p { "Your records and grants belong to your Ethereum key. Its keystore file (the key encrypted under your password) imports into any Ethereum wallet." }
                    p { a href="/account/keystore" download { "Download your keystore file" } }
                }
            }
        },
    )
}

/// The set-up page: the admin's username and password, the token carried along.
pub(crate) fn setup(ctx: &Ctx<'_>, token: &str, username: &str, errors: &FieldErrors) -> Markup {
    layout(
        ctx,
        "Set up SecureEHR",
        html! {
            h1 { "Set up SecureEHR" }
            p { "Create the admin: it registers providers and sees the chain and the nodes. This link works once." }
            form method="post" action="/setup" novalidate {
                (csrf(ctx))
                input type="hidden" name="token" value=(token);
                (form_errors(errors, &["username", "password"]))
                (field(&Field { form: "setup", name: "username", label: "Username", kind: "text", value: username, required: true, autocomplete: "username", numeric: false, hint: Some("3 to 32 characters: a–z, 0–9, '.', '_' or '-'.") }, errors))
                (field(&Field { form: "setup", name: "password", label: "Password", kind: "password", value: "", required: true, autocomplete: "new-password", numeric: false, hint: Some("At least 12 characters.") }, errors))
                button type="submit" { "Create the admin" }
            }
        },
    )
}
