//! The account page, for every role (change the password, make a recovery code), the
//! recovery pages (a forgotten password; a code shown once), a patient's leaving (the
//! confirmation and the receipt), and the first start's set-up page (create the admin).

use maud::{Markup, html};

use super::*;
use crate::svc;

/// The account page's state.
pub(crate) struct AccountPage<'a> {
    pub notice: Option<&'a str>,
    pub errors: FieldErrors,
    /// When the current recovery code was made; `None`: no code.
    pub recovery_since: Option<String>,
    /// Providers: the directory entry's display name and specialty (the form's values).
    pub profile: Option<(String, String)>,
    /// Two-factor is on: the backup codes left (`None`: off).
    pub two_factor: Option<usize>,
}

pub(crate) fn account(ctx: &Ctx<'_>, page: &AccountPage<'_>) -> Markup {
    let (notice, errors) = (page.notice, &page.errors);
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
            @if let Some((name, specialty)) = &page.profile {
                section aria-labelledby="profile-h" {
                    h2 #profile-h { "Your directory entry" }
                    p.small { "How patients of every organisation find you when they share their records. It is professional data, stored on the nodes; its fingerprint goes on chain." }
                    form method="post" action="/account/profile" novalidate {
                        (csrf(ctx))
                        (form_errors(errors, &["display_name", "specialty"]))
                        (super::field(&Field { form: "profile", name: "display_name", label: "Display name", kind: "text", value: name, required: false, autocomplete: "name", numeric: false, hint: Some("E.g. Dr Carol Smith; empty: your username.") }, errors))
                        (super::field(&Field { form: "profile", name: "specialty", label: "Specialty", kind: "text", value: specialty, required: false, autocomplete: "off", numeric: false, hint: None }, errors))
                        button type="submit" { "Save directory entry" }
                    }
                }
            }
            section aria-labelledby="totp-h" {
                h2 #totp-h { "Two-factor sign-in" }
                @match page.two_factor {
                    None => {
                        p { "Off: your password alone signs you in. With it on, signing in also takes a six-digit code from an authenticator app on your phone." }
                        form method="post" action="/account/totp" {
                            (csrf(ctx))
                            button type="submit" { "Set up two-factor sign-in" }
                        }
                    }
                    Some(left) => {
                        p { "On: signing in takes a code from your authenticator app, or one of your " (left) " unused backup codes." }
                        form method="post" action="/account/totp/disable" novalidate {
                            (csrf(ctx))
                            (form_errors(errors, &["totp_password", "totp_code"]))
                            (field("totp_password", "Password, to turn it off", "current-password"))
                            (super::field(&Field { form: "totp-off", name: "totp_code", label: "Code from your app, or a backup code", kind: "text", value: "", required: true, autocomplete: "one-time-code", numeric: false, hint: None }, errors))
                            button.danger type="submit" { "Turn two-factor off" }
                        }
                    }
                }
            }
            section aria-labelledby="recovery-h" {
                h2 #recovery-h { "Recovery code" }
                @match &page.recovery_since {
                    Some(when) => p { "You have a recovery code, made " (when) ". If you forget your password it sets a new one, and your key stays yours." }
                    None => p { "You have no recovery code. Without one, a forgotten password cannot be reset without losing your key." }
                }
                p.small { "A new code replaces the old one, which stops working. It is shown once." }
                form method="post" action="/account/recovery" novalidate {
                    (csrf(ctx))
                    (form_errors(errors, &["recovery_password"]))
                    (field("recovery_password", "Your password", "current-password"))
                    button type="submit" { "Make a new recovery code" }
                }
            }
            @if ctx.session.is_some_and(|s| s.role == Role::Patient) {
                section aria-labelledby="key-h" {
                    h2 #key-h { "Your key" }
                    p { "Your records and grants belong to your Ethereum key. Its keystore file (the key encrypted under your password) imports into any Ethereum wallet." }
                    p { a href="/account/keystore" download { "Download your keystore file" } }
                }
                section aria-labelledby="delete-h" {
                    h2 #delete-h { "Delete your account" }
                    p { "Leave SecureEHR: every record of yours is erased by destroying its keys and its stored pieces, so nobody — no provider, no emergency access, not us — can read it again. This cannot be undone." }
                    p { a.button.danger href="/account/delete" { "Delete your account…" } }
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

/// A recovery code, shown this once, with what to do next (`next`: link and its text).
pub(crate) fn recovery_code(ctx: &Ctx<'_>, code: &str, lead: &str, next: (&str, &str)) -> Markup {
    layout(
        ctx,
        "Your recovery code",
        html! {
            h1 { "Your recovery code" }
            p role="status" { (lead) }
            p.recovery-code { code #recovery-code { (code) } }
            p { strong { "Write it down or print this page now: it is shown only this once." } }
            ul {
                li { "If you forget your password, it sets a new one at " a href="/recover" { "Forgot your password" } ", and your key, records and grants stay yours." }
                li { "Anyone with your username and this code can do the same: keep it somewhere safe, away from this device." }
                li { "Using it, or making a new one on your Account page, replaces it." }
            }
            p { a.button href=(next.0) { (next.1) } }
        },
    )
}

/// The forgotten-password page: username, recovery code, the new password twice.
pub(crate) fn recover(ctx: &Ctx<'_>, username: &str, errors: &FieldErrors) -> Markup {
    const FIELDS: [&str; 4] = ["username", "recovery_code", "new_password", "confirm"];
    layout(
        ctx,
        "Forgot your password",
        html! {
            h1 { "Forgot your password" }
            p { "Your recovery code (you got it when you signed up, or made it on your Account page) sets a new password. Your key stays the same, so your records and grants stay yours. You will be signed out everywhere." }
            p.small { "Medical providers without a code: your administrator can reset your password." }
            form method="post" action="/recover" novalidate {
                (csrf(ctx))
                (form_errors(errors, &FIELDS))
                (field(&Field { form: "recover", name: "username", label: "Username", kind: "text", value: username, required: true, autocomplete: "username", numeric: false, hint: None }, errors))
                (field(&Field { form: "recover", name: "recovery_code", label: "Recovery code", kind: "text", value: "", required: true, autocomplete: "off", numeric: false, hint: Some("25 letters and digits; dashes, spaces and case do not matter.") }, errors))
                (field(&Field { form: "recover", name: "new_password", label: "New password", kind: "password", value: "", required: true, autocomplete: "new-password", numeric: false, hint: Some("At least 12 characters.") }, errors))
                (field(&Field { form: "recover", name: "confirm", label: "New password again", kind: "password", value: "", required: true, autocomplete: "new-password", numeric: false, hint: None }, errors))
                button type="submit" { "Set the new password" }
            }
        },
    )
}

/// Two-factor set-up: the QR code to scan (SVG drawn by the server), the secret to type,
/// and the code that confirms it.
pub(crate) fn totp_setup(
    ctx: &Ctx<'_>,
    qr_svg: &str,
    secret: &str,
    errors: &FieldErrors,
) -> Markup {
    let grouped: Vec<&str> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    layout(
        ctx,
        "Set up two-factor sign-in",
        html! {
            h1 { "Set up two-factor sign-in" }
            ol {
                li { "Open an authenticator app on your phone (any app for \"TOTP\" codes)." }
                li { "Scan this code with it, or type the key below." }
                li { "Enter the six digits it shows." }
            }
            figure.qr {
                (maud::PreEscaped(qr_svg))
                figcaption { "Key: " code #totp-secret { (grouped.join(" ")) } }
            }
            form method="post" action="/account/totp/confirm" novalidate {
                (csrf(ctx))
                (form_errors(errors, &["code"]))
                (field(&Field { form: "totp", name: "code", label: "Code from your app", kind: "text", value: "", required: true, autocomplete: "one-time-code", numeric: true, hint: Some("Six digits; a new one every 30 seconds.") }, errors))
                button type="submit" { "Turn on two-factor sign-in" }
            }
            p { a href="/account" { "Not now" } }
        },
    )
}

/// Two-factor is on: the backup codes, shown this once.
pub(crate) fn backup_codes(ctx: &Ctx<'_>, codes: &[String]) -> Markup {
    layout(
        ctx,
        "Two-factor sign-in is on",
        html! {
            h1 { "Two-factor sign-in is on" }
            p role="status" { "From now on, signing in takes a code from your app." }
            p { strong { "Your backup codes, shown only this once." } " Each signs you in once without your phone: print this page or write them down, and keep them away from your phone." }
            ol.backup-codes { @for c in codes { li { code { (c) } } } }
            p { a.button href="/account" { "Back to your account" } }
        },
    )
}

/// "Delete your account": what will be erased (each record and its versions), then the
/// password and a checkbox.
pub(crate) fn delete_account(
    ctx: &Ctx<'_>,
    records: &[svc::ErasedRecordView],
    errors: &FieldErrors,
) -> Markup {
    let versions: usize = records.iter().map(|r| r.versions.len()).sum();
    let confirm_errs = error_for(errors, "understood");
    layout(
        ctx,
        "Delete your account",
        html! {
            h1 { "Delete your account" }
            @if records.is_empty() {
                p { "You have no records. Deleting your account removes your sign-in and your key." }
            } @else {
                p { "Deleting your account erases " strong { (records.len()) " " (plural(records.len(), "record", "records")) } " (" (versions) " " (plural(versions, "version", "versions")) " in all): "
                    @for (i, r) in records.iter().enumerate() { @if i > 0 { ", " } "record " (r.record_id) } "." }
            }
            ul {
                li { "Every storage node deletes the records' pieces, and every custodian its share of their keys: without them the records cannot be opened again, by anyone." }
                li { "Providers you shared with lose access at once, and so does emergency access." }
                li { "The access log stays on the blockchain (who read which record number, when): it holds no personal data." }
                li { "Your sign-in, your key and your recovery code are deleted." }
            }
            p.notice role="note" { "Want a copy first? " a href="/patient/export" download { "Download everything" } " — every record at every version, your grants and your access log, as one FHIR file." }
            form method="post" action="/account/delete" novalidate {
                (csrf(ctx))
                (form_errors(errors, &["password", "understood"]))
                (field(&Field { form: "delete", name: "password", label: "Your password", kind: "password", value: "", required: true, autocomplete: "current-password", numeric: false, hint: None }, errors))
                div.field.check {
                    input #delete-understood name="understood" type="checkbox" value="yes" required
                        aria-invalid=[(!confirm_errs.is_empty()).then_some("true")]
                        aria-describedby=[(!confirm_errs.is_empty()).then_some("delete-understood-error")];
                    label for="delete-understood" { "I understand that my records will be erased and cannot be recovered" }
                    @if !confirm_errs.is_empty() {
                        p.error #delete-understood-error role="alert" { @for m in confirm_errs { (m) } }
                    }
                }
                button.danger type="submit" { "Delete my account and erase my records" }
            }
            p { a href="/account" { "Keep my account" } }
        },
    )
}

/// The receipt of a deleted account (shown signed out: the account is gone).
pub(crate) fn erasure_receipt(ctx: &Ctx<'_>, receipt: &svc::ErasureReceipt) -> Markup {
    let (records, nodes) = (&receipt.records, &receipt.nodes);
    let tx = receipt.tx_hash.zip(receipt.block_number);
    let waiting = nodes.iter().filter(|n| !n.confirmed).count();
    layout(
        ctx,
        "Your account is deleted",
        html! {
            h1 { "Your account is deleted" }
            p role="status" { "Your records were erased and your account deleted. Keep this page (print or save it) as your receipt." }
            section aria-labelledby="erased-h" {
                h2 #erased-h { "Records erased" }
                @if records.is_empty() {
                    p { "You had no records." }
                } @else {
                    div.table-wrap {
                        table.results #erased-records {
                            thead { tr { th scope="col" { "Record" } th scope="col" { "Versions" } } }
                            tbody {
                                @for r in records {
                                    tr {
                                        td.num { (r.record_id) }
                                        td { @for (i, v) in r.versions.iter().enumerate() { @if i > 0 { ", " } (v) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="nodes-h" {
                h2 #nodes-h { "Nodes" }
                div.table-wrap {
                    table.results #erasure-nodes {
                        thead { tr { th scope="col" { "Node" } th scope="col" { "Destroyed its keys and blocks" } th scope="col" { "Blocks deleted" } } }
                        tbody {
                            @for n in nodes {
                                tr {
                                    td { (n.node) }
                                    td { @if n.confirmed { "Confirmed" } @else { span.bad { "Not yet" } } }
                                    td.num { (n.blocks_deleted) }
                                }
                            }
                        }
                    }
                }
                @if waiting > 0 {
                    p.notice role="note" { (waiting) " " (plural(waiting, "node was", "nodes were")) " not reachable. The server keeps asking; a node destroys its part when it comes back, before it serves anything else. Meanwhile the blockchain refuses every read of these records, so no custodian releases a key share." }
                }
            }
            @if let Some((hash, block)) = tx {
                p.small { "The erasure is recorded on the blockchain: transaction " code.hash { (hash.to_string()) } " in block " (block) "." }
            }
            p { a.button href="/" { "SecureEHR home" } }
        },
    )
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}
