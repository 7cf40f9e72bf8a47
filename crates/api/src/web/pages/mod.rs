//! The pages, as maud templates: every interpolated value is HTML-escaped at compile time,
//! there is no inline script or style (the CSP forbids both), and every form carries the
//! CSRF token. Each field has a `<label>`; its error sits right after it, is tied to it with
//! `aria-describedby`, and is announced (`role="alert"`).

use maud::{DOCTYPE, Markup, html};

use crate::svc::{Role, Session};

mod account;
mod admin;
mod auth;
mod notices;
mod provider;
mod share;

pub(crate) use account::{
    AccountPage, account, backup_codes, delete_account, erasure_receipt, recover, recovery_code,
    setup, totp_setup,
};
pub(crate) use admin::{AdminPage, NodeRow, ProviderRow, admin};
pub(crate) use auth::{PatientsPage, home, patients, providers_login};

pub(crate) use provider::{AddForm, AddValues, ProviderPage, SharedRow, provider};
pub(crate) use share::{
    ShareCodeValues, offer, offer_accepted, offer_refused, offline, share_code, share_code_form,
};

/// What every page needs: the CSRF token for its forms and who is signed in.
pub(crate) struct Ctx<'a> {
    pub csrf: &'a str,
    pub session: Option<&'a Session>,
    /// A provider or admin without two-factor: every page asks it to turn it on.
    pub enrol_prompt: bool,
    /// A patient's pages: what happened since their last visit (never empty).
    pub notices: Option<&'a crate::svc::SinceLastVisit>,
}

/// Errors of one form: `(field, message)`; field `""` for the form as a whole.
pub(crate) type FieldErrors = Vec<(String, String)>;

pub(crate) fn layout(ctx: &Ctx<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — SecureEHR" }
                link rel="stylesheet" href="/static/style.css";
                link rel="icon" href="/static/icon.svg" type="image/svg+xml";
                link rel="apple-touch-icon" href="/static/icon-192.png";
                link rel="manifest" href="/manifest.webmanifest";
                meta name="theme-color" content="#0b5394";
                meta name="color-scheme" content="light dark";
                script src="/static/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "SecureEHR" }
                    @if let Some(s) = ctx.session {
                        nav aria-label="Main" {
                            ul {
                                @match s.role {
                                    Role::Patient => {
                                        li { a href="/patient" { "New record" } }
                                        li { a href="/patient/records" { "My records" } }
                                        li { a href="/patient/sharing" { "Sharing" } }
                                        li { a href="/patient/access-log" { "Access log" } }
                                    }
                                    Role::Provider => {
                                        li { a href="/provider" { "Access Patient Records" } }
                                    }
                                    Role::Admin => {
                                        li { a href="/admin" { "Administration" } }
                                    }
                                }
                                li { a href="/account" { "Account" } }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            (csrf(ctx))
                            span.who { "Signed in as " strong { (s.username) } " (" (s.role) ")" }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    @if let Some(n) = ctx.notices { (notices::since_last_visit(n)) }
                    @if ctx.enrol_prompt {
                        p.notice role="note" { "Protect this account, which reads health records: turn on " a href="/account#totp-h" { "two-factor sign-in" } "." }
                    }
                    (body)
                }
            }
        }
    }
}

pub(crate) fn csrf(ctx: &Ctx<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

fn error_for<'e>(errors: &'e FieldErrors, field: &str) -> Vec<&'e str> {
    errors
        .iter()
        .filter(|(f, _)| f == field)
        .map(|(_, m)| m.as_str())
        .collect()
}

/// Errors that belong to no field of the form, announced at its top.
pub(crate) fn form_errors(errors: &FieldErrors, fields: &[&str]) -> Markup {
    let general: Vec<&str> = errors
        .iter()
        .filter(|(f, _)| !fields.contains(&f.as_str()))
        .map(|(_, m)| m.as_str())
        .collect();
    html! {
        @if !general.is_empty() {
            div.alert role="alert" {
                @for m in general { p { (m) } }
            }
        }
    }
}

/// One labelled input; `kind` is the `type`, `extra` more attributes as (name, value).
pub(crate) struct Field<'a> {
    pub form: &'a str,
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub required: bool,
    pub autocomplete: &'a str,
    /// Digits only: phones and numeric keyboards get `inputmode="numeric"`.
    pub numeric: bool,
    pub hint: Option<&'a str>,
}

pub(crate) fn field(f: &Field<'_>, errors: &FieldErrors) -> Markup {
    let id = format!("{}-{}", f.form, f.name);
    let err_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let errs = error_for(errors, f.name);
    // The label is exactly the field's name (the seed's words); "optional" is a hint.
    let hint = f.hint.or((!f.required).then_some("Optional."));
    let mut described = Vec::new();
    if hint.is_some() {
        described.push(hint_id.clone());
    }
    if !errs.is_empty() {
        described.push(err_id.clone());
    }
    let described = described.join(" ");
    html! {
        div.field {
            label for=(id) { (f.label) }
            @if let Some(h) = hint { p.hint id=(hint_id) { (h) } }
            @if f.kind == "textarea" {
                textarea id=(id) name=(f.name) required[f.required]
                    aria-invalid=[(!errs.is_empty()).then_some("true")]
                    aria-describedby=[(!described.is_empty()).then_some(&described)]
                    rows="3" { (f.value) }
            } @else {
                input id=(id) name=(f.name) type=(f.kind) value=(f.value) required[f.required]
                    autocomplete=(f.autocomplete)
                    inputmode=[f.numeric.then_some("numeric")]
                    aria-invalid=[(!errs.is_empty()).then_some("true")]
                    aria-describedby=[(!described.is_empty()).then_some(&described)];
            }
            @if !errs.is_empty() {
                p.error id=(err_id) role="alert" {
                    @for (i, m) in errs.iter().enumerate() {
                        @if i > 0 { br; }
                        (f.label) ": " (m)
                    }
                }
            }
        }
    }
}

/// The record form's values.
#[derive(Default)]
pub(crate) struct FormValues {
    pub patient_name: String,
    pub birth_date: String,
    pub address: String,
    pub phone: String,
    pub health_condition: String,
}

pub(crate) const RECORD_FIELDS: [&str; 5] = [
    "patient_name",
    "birth_date",
    "address",
    "phone",
    "health_condition",
];

/// The record form: new (`record_id` None) or a new version of a record.
pub(crate) fn record_form(
    ctx: &Ctx<'_>,
    record_id: Option<u64>,
    v: &FormValues,
    errors: &FieldErrors,
    upload_errors: &FieldErrors,
) -> Markup {
    let (title, action) = match record_id {
        None => (
            "New health record".to_owned(),
            "/patient/records".to_owned(),
        ),
        Some(id) => (
            format!("Edit record {id}"),
            format!("/patient/records/{id}"),
        ),
    };
    let today = super::today();
    layout(
        ctx,
        &title,
        html! {
            h1 { (title) }
            @if record_id.is_some() {
                p { "Saving stores a new version; earlier versions stay readable." }
            }
            form method="post" action=(action) novalidate {
                (csrf(ctx))
                (form_errors(errors, &RECORD_FIELDS))
                (field(&Field { form: "record", name: "patient_name", label: "Patient Name", kind: "text", value: &v.patient_name, required: true, autocomplete: "name", numeric: false, hint: None }, errors))
                div.field {
                    @let errs = error_for(errors, "birth_date");
                    label for="record-birth_date" { "Birth Date" }
                    input #record-birth_date name="birth_date" type="date" value=(v.birth_date) required
                        min="1900-01-01" max=(today) autocomplete="bday"
                        aria-invalid=[(!errs.is_empty()).then_some("true")]
                        aria-describedby=[(!errs.is_empty()).then_some("record-birth_date-error")];
                    @if !errs.is_empty() {
                        p.error #record-birth_date-error role="alert" {
                            @for m in errs { "Birth Date: " (m) br; }
                        }
                    }
                }
                (field(&Field { form: "record", name: "address", label: "Address", kind: "textarea", value: &v.address, required: false, autocomplete: "street-address", numeric: false, hint: None }, errors))
                (field(&Field { form: "record", name: "phone", label: "Phone No", kind: "tel", value: &v.phone, required: false, autocomplete: "tel", numeric: false, hint: None }, errors))
                (field(&Field { form: "record", name: "health_condition", label: "Health Condition", kind: "textarea", value: &v.health_condition, required: false, autocomplete: "off", numeric: false, hint: None }, errors))
                button type="submit" { "Submit" }
            }
            @if record_id.is_none() {
                section.upload aria-labelledby="upload-h" {
                    h2 #upload-h { "Or upload a FHIR file" }
                    p.small { "A FHIR R4 Bundle (JSON) from your hospital's patient portal or an app: lab results, medications, allergies and more, up to 16 MiB." }
                    form method="post" action="/patient/records/upload" enctype="multipart/form-data" {
                        (csrf(ctx))
                        (form_errors(upload_errors, &["file"]))
                        div.field {
                            label for="upload-file" { "FHIR JSON file" }
                            input #upload-file name="file" type="file" accept=".json,application/fhir+json,application/json" required;
                        }
                        button type="submit" { "Upload" }
                    }
                }
            }
        },
    )
}

pub(crate) struct StoredView {
    pub record_id: u64,
    pub version: u32,
    pub manifest_cid: String,
    pub tx_hash: String,
}

pub(crate) fn stored(ctx: &Ctx<'_>, s: &StoredView) -> Markup {
    layout(
        ctx,
        "Record stored",
        html! {
            h1 { "Record stored" }
            p.success role="status" { "Record stored in IPFS and in Blockchain with ID: " strong #record-id { (s.record_id) } }
            dl.facts {
                dt { "Version" } dd { (s.version) }
                dt { "Hash code (manifest CID)" } dd { code.hash #manifest-cid { (s.manifest_cid) } }
                dt { "Transaction hash" } dd { code.hash #tx-hash { (s.tx_hash) } }
            }
            p {
                a href={ "/patient/records/" (s.record_id) "?version=" (s.version) } { "View this version" }
                " · " a href="/patient/records" { "My records" }
                " · " a href="/patient" { "Store another record" }
            }
        },
    )
}

pub(crate) struct VersionRow {
    pub version: u32,
    /// The provider who wrote it (`None`: the patient).
    pub author: Option<String>,
    pub when: String,
    pub manifest_cid: String,
    pub tx_hash: String,
}

pub(crate) struct RecordRow {
    pub record_id: u64,
    pub version: u32,
    pub updated: String,
    pub versions: Vec<VersionRow>,
}

pub(crate) fn my_records(ctx: &Ctx<'_>, patient_id: Option<u64>, rows: &[RecordRow]) -> Markup {
    layout(
        ctx,
        "My records",
        html! {
            h1 { "My records" }
            @if let Some(id) = patient_id {
                p { "Your Patient ID is " strong #patient-id { (id) } ". Providers you grant access to enter it to read your records." }
            }
            @if rows.is_empty() {
                p { "No records yet. " a href="/patient" { "Store your first record" } "." }
            }
            p.small { a href="/patient/export" download { "Download everything" } ": every record at every version, your grants and your access log, as one FHIR file. Each record read for it is logged." }
            @for r in rows {
                section.card aria-labelledby={ "rec-" (r.record_id) } {
                    h2 id={ "rec-" (r.record_id) } { "Record " (r.record_id) }
                    p { "Version " (r.version) ", updated " (r.updated) }
                    p.actions {
                        a href={ "/patient/records/" (r.record_id) } { "View" }
                        " · "
                        a href={ "/patient/records/" (r.record_id) "/edit" } { "Edit (new version)" }
                    }
                    details {
                        summary { "Versions (" (r.versions.len()) ")" }
                        ul.versions {
                            @for v in &r.versions {
                                li {
                                    a href={ "/patient/records/" (r.record_id) "?version=" (v.version) } { "Version " (v.version) }
                                    " — " (v.when)
                                    @if let Some(a) = &v.author { " — " span.author { "written by " (a) } }
                                    br; span.small { "CID " code.hash { (v.manifest_cid) } }
                                    br; span.small { "Tx " code.hash { (v.tx_hash) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One decrypted record, as shown to its patient or a provider.
pub(crate) struct RecordView {
    pub chart: super::chart::Chart,
    pub record_id: u64,
    pub version: u32,
    pub patient_id: u64,
    pub manifest_cid: String,
    pub access_tx: String,
    pub emergency: bool,
    pub form: Option<FormValues>,
    pub attachments: Vec<AttachmentRow>,
    pub bundle_pretty: String,
}

/// A document of a record version, as its pages list it.
pub(crate) struct AttachmentRow {
    pub number: u32,
    pub title: String,
    pub content_type: String,
    /// `PDF`, `JPEG photo`, …
    pub kind: &'static str,
    pub size: String,
    pub created: String,
    /// The browser may show it in place (images and PDF).
    pub inline: bool,
}

/// The documents of a record version: type, size, date; open (in place) and download.
fn attachment_list(r: &RecordView) -> Markup {
    html! {
        @if !r.attachments.is_empty() {
            section.attachments aria-label="Documents" {
                h3 { "Documents" }
                ul.attachments {
                    @for a in &r.attachments {
                        @let href = format!("/records/{}/attachments/{}?version={}", r.record_id, a.number, r.version);
                        li {
                            span.title { (a.title) }
                            span.meta { (a.kind) " · " (a.size) @if !a.created.is_empty() { " · " (a.created) } }
                            span.actions {
                                @if a.inline {
                                    a.button href=(href) type=(a.content_type) target="_blank" rel="noopener" { "Open" }
                                }
                                a.button href={ (href) "&download=1" } download { "Download" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The patient's form adding a document or photo (streamed; its CSRF token in the URL).
fn attach_form(ctx: &Ctx<'_>, record_id: u64) -> Markup {
    html! {
        form.card.attach method="post" enctype="multipart/form-data"
            action={ "/patient/records/" (record_id) "/attachments?csrf=" (ctx.csrf) } {
            h3 { "Add a document or photo" }
            p.hint { "A PDF, a photo (JPEG, PNG, HEIC) or a DICOM image, up to 2 GB. It is sealed and spread over the storage nodes like the record; a new version lists it." }
            label for="attach-title" { "Title (optional)" }
            input #attach-title type="text" name="title" maxlength="200" autocomplete="off";
            label for="attach-file" { "File" }
            input #attach-file type="file" name="file" accept="image/*,application/pdf,application/dicom,.dcm";
            label for="attach-photo" { "Or take a photo" }
            input #attach-photo type="file" name="photo" accept="image/*" capture="environment";
            button type="submit" { "Add to record" }
        }
    }
}

pub(crate) fn record_card(r: &RecordView) -> Markup {
    html! {
        article.card.record aria-label={ "Record " (r.record_id) } {
            h2 { "Record " (r.record_id) ", version " (r.version) }
            @if r.emergency { p.emergency { "Emergency access — logged with your reason." } }
            @if let Some(f) = r.form.as_ref().filter(|_| r.chart.is_form_shaped()) {
                dl.facts {
                    dt { "Patient ID" } dd { (r.patient_id) }
                    dt { "Patient Name" } dd { (f.patient_name) }
                    dt { "Birth Date" } dd { (f.birth_date) }
                    dt { "Address" } dd { (f.address) }
                    dt { "Phone No" } dd { (f.phone) }
                    dt { "Health Condition" } dd { (f.health_condition) }
                }
            } @else {
                p { "Patient ID " (r.patient_id) }
                (super::chart::render(&r.chart))
                details.fhir {
                    summary { "FHIR JSON" }
                    pre.bundle { (r.bundle_pretty) }
                }
            }
            (attachment_list(r))
            details {
                summary { "Storage and audit" }
                dl.facts {
                    dt { "Hash code (manifest CID)" } dd { code.hash { (r.manifest_cid) } }
                    dt { "Access logged in transaction" } dd { code.hash { (r.access_tx) } }
                }
            }
        }
    }
}

pub(crate) fn record_page(ctx: &Ctx<'_>, r: &RecordView) -> Markup {
    layout(
        ctx,
        &format!("Record {}", r.record_id),
        html! {
            (record_card(r))
            (attach_form(ctx, r.record_id))
            p {
                // The form edits the form's fields only: a richer record is not offered it.
                @if r.form.is_some() && r.chart.is_form_shaped() {
                    a href={ "/patient/records/" (r.record_id) "/edit" } { "Edit (new version)" }
                    " · "
                }
                a href="/patient/records" { "My records" }
            }
        },
    )
}

pub(crate) struct GrantRow {
    /// Writing on this scope, described ("may add until …", "adding revoked"), if ever given.
    pub write: Option<String>,
    pub write_active: bool,
    pub provider: String,
    pub scope: String,
    pub record_id: Option<u64>,
    pub expires: String,
    pub state: &'static str,
    pub active: bool,
}

/// A break-glass window open now on one of the patient's records.
pub(crate) struct EmergencyRow {
    pub provider: String,
    pub record_id: u64,
    pub until: String,
    pub reason: Option<String>,
}

/// A provider of the network in the grant form: the value sent, the label shown.
pub(crate) struct ProviderOption {
    pub value: String,
    pub label: String,
}

/// The most providers the grant form lists at once; a search narrows the rest.
pub(crate) const MAX_PROVIDERS_LISTED: usize = 20;

pub(crate) struct SharingPage<'a> {
    /// The providers matching `query`, at most [`MAX_PROVIDERS_LISTED`].
    pub providers: Vec<ProviderOption>,
    /// How many more match than are listed.
    pub more: usize,
    /// The search ("" lists every provider, up to the limit).
    pub query: &'a str,
    pub records: Vec<u64>,
    pub emergencies: Vec<EmergencyRow>,
    pub grants: Vec<GrantRow>,
    pub notice: Option<&'a str>,
    pub errors: FieldErrors,
    pub selected_provider: &'a str,
    pub selected_record: &'a str,
    pub expires: &'a str,
    pub write: bool,
}

pub(crate) fn sharing(ctx: &Ctx<'_>, p: &SharingPage<'_>) -> Markup {
    let today = super::today();
    layout(
        ctx,
        "Sharing",
        html! {
            h1 { "Sharing" }
            @if let Some(n) = p.notice { p.success role="status" { (n) } }
            p { a.button href="/patient/share-code" { "Share by code" } " " span.small { "A QR code to show a provider across the desk." } }
            section aria-labelledby="grant-h" {
                h2 #grant-h { "Grant a provider access" }
                form.search method="get" action="/patient/sharing" role="search" {
                    div.field {
                        label for="find-provider" { "Find a provider" }
                        p.hint #find-provider-hint { "By name, organisation or specialty." }
                        input #find-provider name="q" type="search" value=(p.query) aria-describedby="find-provider-hint";
                    }
                    button type="submit" { "Search" }
                }
                @if p.providers.is_empty() {
                    @if p.query.is_empty() {
                        p { "No medical providers are registered yet." }
                    } @else {
                        p role="status" { "No provider matches \u{201c}" (p.query) "\u{201d}." }
                    }
                } @else {
                    form method="post" action="/patient/grants" novalidate {
                        (csrf(ctx))
                        (form_errors(&p.errors, &["provider", "record_id", "expires"]))
                        fieldset.field.providers aria-describedby=[(!error_for(&p.errors, "provider").is_empty()).then_some("grant-provider-error")] {
                            @let errs = error_for(&p.errors, "provider");
                            legend { "Provider" }
                            @if p.more > 0 {
                                p.hint { (p.more) " more match: search to narrow the list." }
                            }
                            @for (i, o) in p.providers.iter().enumerate() {
                                div.choice {
                                    input id={ "grant-provider-" (i) } name="provider" type="radio" value=(o.value)
                                        checked[o.value == p.selected_provider || (p.providers.len() == 1 && p.selected_provider.is_empty())];
                                    label for={ "grant-provider-" (i) } { (o.label) }
                                }
                            }
                            @if !errs.is_empty() { p.error #grant-provider-error role="alert" { @for m in errs { "Provider: " (m) } } }
                        }
                        div.field {
                            @let errs = error_for(&p.errors, "record_id");
                            label for="grant-record" { "Records" }
                            select #grant-record name="record_id"
                                aria-invalid=[(!errs.is_empty()).then_some("true")]
                                aria-describedby=[(!errs.is_empty()).then_some("grant-record-error")] {
                                option value="" selected[p.selected_record.is_empty()] { "All my records" }
                                @for id in &p.records {
                                    @let v = id.to_string();
                                    option value=(v) selected[v == p.selected_record] { "Record " (id) " only" }
                                }
                            }
                            @if !errs.is_empty() { p.error #grant-record-error role="alert" { @for m in errs { "Records: " (m) } } }
                        }
                        div.field {
                            @let errs = error_for(&p.errors, "expires");
                            label for="grant-expires" { "Access expires on" }
                            p.hint #grant-expires-hint { "Access ends at the end of that day (UTC)." }
                            input #grant-expires name="expires" type="date" required value=(p.expires) min=(today)
                                aria-invalid=[(!errs.is_empty()).then_some("true")]
                                aria-describedby={ "grant-expires-hint" @if !errs.is_empty() { " grant-expires-error" } };
                            @if !errs.is_empty() { p.error #grant-expires-error role="alert" { @for m in errs { "Access expires on: " (m) } } }
                        }
                        div.field.check {
                            input #grant-write name="write" type="checkbox" value="on" checked[p.write];
                            label for="grant-write" { "Also let them add to these records (results, notes, prescriptions), until the same day" }
                        }
                        button type="submit" { "Grant access" }
                    }
                }
            }
            @if !p.emergencies.is_empty() {
                section aria-labelledby="emergency-h" {
                    h2 #emergency-h { "Emergency access open now" }
                    p { "A provider opened these records without your grant (break-glass). You can end it; the provider can open it again only as a new, logged emergency with a new reason." }
                    ul.grants {
                        @for e in &p.emergencies {
                            li.card.grant.emergency {
                                p { strong { (e.provider) } " — record " (e.record_id) }
                                p.small { "until " (e.until) }
                                p { "Reason: " @match &e.reason { Some(r) => { (r) }, None => { em { "not known here" } } } }
                                form method="post" action="/patient/grants/revoke" {
                                    (csrf(ctx))
                                    input type="hidden" name="provider" value=(e.provider);
                                    input type="hidden" name="record_id" value=(e.record_id);
                                    input type="hidden" name="emergency" value="1";
                                    button.danger type="submit" { "End emergency access of " (e.provider) " to record " (e.record_id) }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="grants-h" {
                h2 #grants-h { "Who can read my records" }
                p.small { "Revoking an all-records grant ends everything that provider holds on your records, emergency access included." }
                @if p.grants.is_empty() && p.emergencies.is_empty() {
                    p { "You have not granted access to anyone." }
                } @else if p.grants.is_empty() {
                    p { "You have not granted access to anyone: the emergency access above was opened without your grant." }
                } @else {
                    ul.grants {
                        @for g in &p.grants {
                            li.card.grant.inactive[!g.active] {
                                p { strong { (g.provider) } " — " (g.scope) }
                                p.small { (g.state) " · expires " (g.expires) }
                                @if let Some(w) = &g.write { p.small.writes { (w) } }
                                @if g.active {
                                    form method="post" action="/patient/grants/revoke" {
                                        (csrf(ctx))
                                        input type="hidden" name="provider" value=(g.provider);
                                        input type="hidden" name="record_id" value=(g.record_id.map(|i| i.to_string()).unwrap_or_default());
                                        button.danger type="submit" { "Revoke " (g.provider) }
                                    }
                                }
                                @if g.write_active {
                                    form method="post" action="/patient/grants/revoke" {
                                        (csrf(ctx))
                                        input type="hidden" name="provider" value=(g.provider);
                                        input type="hidden" name="record_id" value=(g.record_id.map(|i| i.to_string()).unwrap_or_default());
                                        input type="hidden" name="write" value="1";
                                        button.danger type="submit" { "Stop " (g.provider) " adding" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub(crate) struct LogRow {
    pub when: String,
    pub reader: String,
    pub record: String,
    pub emergency: bool,
    pub reason: Option<String>,
    pub tx_hash: String,
}

pub(crate) fn access_log(ctx: &Ctx<'_>, rows: &[LogRow]) -> Markup {
    layout(
        ctx,
        "Access log",
        html! {
            h1 { "Access log" }
            p { "Every read of your records, as logged on the blockchain. Emergency accesses are highlighted." }
            @if rows.is_empty() {
                p { "Nobody has read your records yet." }
            } @else {
                ol.log {
                    @for r in rows {
                        li.card.emergency[r.emergency] {
                            @if r.emergency { p.badge { "Emergency access" } }
                            p { strong.reader { (r.reader) } " read " (r.record) }
                            p.small { time { (r.when) } }
                            @if let Some(reason) = &r.reason { p { "Reason: " (reason) } }
                            p.small { "Tx " code.hash { (r.tx_hash) } }
                        }
                    }
                }
            }
        },
    )
}

/// A page with just a heading and a message (errors, not found, CSRF refusals).
pub(crate) fn message(ctx: &Ctx<'_>, title: &str, text: &str) -> Markup {
    layout(
        ctx,
        title,
        html! {
            h1 { (title) }
            p role="alert" { (text) }
            p { a href="/" { "Home" } }
        },
    )
}
