//! The public pages and signing in: home, the patients' sign-in and sign-up page, the
//! providers' sign-in page.

use maud::{Markup, html};

use super::{Ctx, Field, FieldErrors, csrf, error_for, field, form_errors, layout};

pub(crate) fn home(ctx: &Ctx<'_>) -> Markup {
    layout(
        ctx,
        "Home",
        html! {
            h1 { "SecureEHR" }
            p.lead { "Your health records, encrypted, stored across independent nodes, and read only by those you allow. Every access is written to a tamper-proof log." }
            ul.choices {
                li { a.button href="/patients" { "Patients" } }
                li { a.button href="/providers/login" { "Medical Providers Login" } }
            }
            p.small { "Administrators sign in through " a href="/providers/login" { "Medical Providers Login" } "." }
        },
    )
}

/// The login form of a portal (`patients` or `providers`).
pub(crate) fn login_form(
    ctx: &Ctx<'_>,
    portal: &str,
    username: &str,
    errors: &FieldErrors,
    next: &str,
) -> Markup {
    let form = format!("login-{portal}");
    html! {
        form method="post" action="/login" novalidate {
            (csrf(ctx))
            input type="hidden" name="portal" value=(portal);
            @if !next.is_empty() { input type="hidden" name="next" value=(next); }
            (form_errors(errors, &["username", "password", "code"]))
            (field(&Field { form: &form, name: "username", label: "Username", kind: "text", value: username, required: true, autocomplete: "username", numeric: false, hint: None }, errors))
            (field(&Field { form: &form, name: "password", label: "Password", kind: "password", value: "", required: true, autocomplete: "current-password", numeric: false, hint: None }, errors))
            (field(&Field { form: &form, name: "code", label: "Authentication code", kind: "text", value: "", required: false, autocomplete: "one-time-code", numeric: false, hint: Some("Only if you turned on two-factor sign-in: six digits from your app, or a backup code.") }, errors))
            button type="submit" { "Sign in" }
        }
    }
}

pub(crate) struct PatientsPage<'a> {
    pub login_username: &'a str,
    pub login_errors: FieldErrors,
    pub signup_username: &'a str,
    pub signup_errors: FieldErrors,
}

pub(crate) fn patients(ctx: &Ctx<'_>, p: &PatientsPage<'_>) -> Markup {
    layout(
        ctx,
        "Patients",
        html! {
            h1 { "Patients" }
            div.columns {
                section aria-labelledby="signin-h" {
                    h2 #signin-h { "Sign in" }
                    (login_form(ctx, "patients", p.login_username, &p.login_errors, ""))
                    p.small { a href="/recover" { "Forgot your password?" } " Your recovery code sets a new one." }
                }
                section aria-labelledby="signup-h" {
                    h2 #signup-h { "Sign up" }
                    form method="post" action="/patients/signup" enctype="multipart/form-data" novalidate {
                        (csrf(ctx))
                        (form_errors(&p.signup_errors, &["username", "password", "keystore"]))
                        (field(&Field { form: "signup", name: "username", label: "Username", kind: "text", value: p.signup_username, required: true, autocomplete: "username", numeric: false, hint: Some("3 to 32 characters: a–z, 0–9, '.', '_' or '-'.") }, &p.signup_errors))
                        (field(&Field { form: "signup", name: "password", label: "Password", kind: "password", value: "", required: true, autocomplete: "new-password", numeric: false, hint: Some("At least 12 characters.") }, &p.signup_errors))
                        details.own-key open[!error_for(&p.signup_errors, "keystore").is_empty()] {
                            summary { "Bring your own key (optional)" }
                            div.field {
                                @let errs = error_for(&p.signup_errors, "keystore");
                                label for="signup-keystore" { "Keystore file from your wallet" }
                                p.hint #signup-keystore-hint { "A keystore v3 JSON file; the password above must open it. Your records will belong to that key." }
                                input #signup-keystore name="keystore" type="file" accept=".json,application/json"
                                    aria-describedby={ "signup-keystore-hint" @if !errs.is_empty() { " signup-keystore-error" } }
                                    aria-invalid=[(!errs.is_empty()).then_some("true")];
                                @if !errs.is_empty() { p.error #signup-keystore-error role="alert" { @for m in errs { "Keystore file: " (m) br; } } }
                            }
                        }
                        button type="submit" { "Sign up" }
                    }
                }
            }
        },
    )
}

/// The providers' sign-in page; `next`: where to go once signed in (a sharing code's
/// offer), `""` for the role's home.
pub(crate) fn providers_login(
    ctx: &Ctx<'_>,
    username: &str,
    errors: &FieldErrors,
    next: &str,
) -> Markup {
    layout(
        ctx,
        "Medical Providers Login",
        html! {
            h1 { "Medical Providers Login" }
            p { "For registered medical providers and administrators." }
            @if !next.is_empty() { p.notice role="note" { "Sign in to see what a patient shares with you." } }
            (login_form(ctx, "providers", username, errors, next))
            p.small { "Forgot your password? Your administrator can reset it; you keep your key, and every grant you hold. " a href="/recover" { "Have a recovery code?" } }
        },
    )
}
