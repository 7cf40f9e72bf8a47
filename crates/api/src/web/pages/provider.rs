//! The provider's page: "Shared with me", the lookup by patient ID, the patient's records
//! with a timeline across them, adding to a record the patient let the provider write,
//! and break-glass.

use maud::{Markup, html};

use super::*;

/// A grant the provider holds now, on its page ("Shared with me").
pub(crate) struct SharedRow {
    pub patient_id: u64,
    pub scope: String,
    pub until: String,
    /// When the provider may also add to it, until when.
    pub write_until: Option<String>,
}

/// The "Add to the record" form's values.
#[derive(Default)]
pub(crate) struct AddValues {
    pub record_id: String,
    pub kind: String,
    pub name: String,
    pub value: String,
    pub unit: String,
    pub low: String,
    pub high: String,
    pub dosage: String,
    pub note: String,
    pub bundle: String,
}

/// Where the provider may add, for the patient on the page.
pub(crate) struct AddForm<'a> {
    pub patient_id: u64,
    /// Records it may add versions to.
    pub records: Vec<u64>,
    /// May it add new records (the all-records write grant)?
    pub new_record: bool,
    pub values: &'a AddValues,
    pub errors: FieldErrors,
}

pub(crate) struct ProviderPage<'a> {
    /// On the landing page only (`None`: not listed).
    pub shared: Option<Vec<SharedRow>>,
    pub patient_id: &'a str,
    pub errors: FieldErrors,
    pub emergency_patient_id: &'a str,
    pub reason: &'a str,
    pub emergency_errors: FieldErrors,
    pub denied: Option<String>,
    pub records: Vec<RecordView>,
    /// Everything dated across the records shown, newest first.
    pub timeline: Option<Markup>,
    /// The add form, when the patient let this provider write.
    pub add: Option<AddForm<'a>>,
    pub notice: Option<String>,
}

pub(crate) fn provider(ctx: &Ctx<'_>, p: &ProviderPage<'_>) -> Markup {
    layout(
        ctx,
        "Access Patient Records",
        html! {
            h1 { "Access Patient Records" }
            @if let Some(n) = &p.notice { p.success role="status" { (n) } }
            @if let Some(shared) = &p.shared { section aria-labelledby="shared-h" {
                h2 #shared-h { "Shared with me" }
                @if shared.is_empty() {
                    p { "No patient has shared records with you now." }
                } @else {
                    ul.shared {
                        @for s in shared {
                            li {
                                form.inline method="post" action="/provider/records" {
                                    (csrf(ctx))
                                    input type="hidden" name="patient_id" value=(s.patient_id);
                                    "Patient " (s.patient_id) ": " (s.scope) ", until " (s.until)
                                    @if let Some(w) = &s.write_until { " · you may add to it until " (w) }
                                    " "
                                    button type="submit" { "Read" }
                                }
                            }
                        }
                    }
                }
            } }
            form method="post" action="/provider/records" novalidate {
                (csrf(ctx))
                (form_errors(&p.errors, &["patient_id"]))
                (field(&Field { form: "lookup", name: "patient_id", label: "Patient ID", kind: "text", value: p.patient_id, required: true, autocomplete: "off", numeric: true, hint: None }, &p.errors))
                button type="submit" { "Get patient details" }
            }
            @if let Some(why) = &p.denied {
                div.alert.denied role="alert" {
                    p { strong { "Access denied." } " " (why) }
                }
            }
            @if !p.records.is_empty() {
                section aria-labelledby="results-h" {
                    h2 #results-h { "Patient details" }
                    @for r in &p.records { (record_card(r)) }
                }
            }
            @if let Some(t) = &p.timeline { (t) }
            @if let Some(a) = &p.add { (add_form(ctx, a)) }
            section.breakglass aria-labelledby="bg-h" {
                h2 #bg-h { "Emergency access" }
                p { "Only in an emergency: opens every record of the patient for 4 hours. The access and your reason are logged on the blockchain and shown to the patient." }
                form method="post" action="/provider/emergency" novalidate {
                    (csrf(ctx))
                    (form_errors(&p.emergency_errors, &["patient_id", "reason"]))
                    (field(&Field { form: "emergency", name: "patient_id", label: "Patient ID", kind: "text", value: p.emergency_patient_id, required: true, autocomplete: "off", numeric: true, hint: None }, &p.emergency_errors))
                    (field(&Field { form: "emergency", name: "reason", label: "Reason", kind: "textarea", value: p.reason, required: true, autocomplete: "off", numeric: false, hint: None }, &p.emergency_errors))
                    button.danger type="submit" { "Open emergency access" }
                }
            }
        },
    )
}

const KINDS: [(&str, &str); 4] = [
    ("result", "Lab result"),
    ("note", "Clinical note"),
    ("prescription", "Prescription"),
    ("bundle", "FHIR Bundle (JSON)"),
];

const ADD_FIELDS: [&str; 10] = [
    "record_id",
    "kind",
    "name",
    "value",
    "unit",
    "low",
    "high",
    "dosage",
    "note",
    "bundle",
];

fn add_form(ctx: &Ctx<'_>, a: &AddForm<'_>) -> Markup {
    let v = a.values;
    let e = &a.errors;
    let text = |name: &'static str, label: &'static str, value: &str| -> Markup {
        field(
            &Field {
                form: "add",
                name,
                label,
                kind: "text",
                value,
                required: false,
                autocomplete: "off",
                numeric: false,
                hint: None,
            },
            e,
        )
    };
    html! {
        section.card.add aria-labelledby="add-h" {
            h2 #add-h { "Add to the patient's record" }
            p.small { "What you add is stored as a new version of the patient's record, owned by the patient, and names you as its author." }
            form method="post" action="/provider/add" novalidate {
                (csrf(ctx))
                input type="hidden" name="patient_id" value=(a.patient_id);
                (form_errors(e, &ADD_FIELDS))
                div.field {
                    label for="add-record_id" { "Record" }
                    select #add-record_id name="record_id" {
                        @for id in &a.records {
                            @let s = id.to_string();
                            option value=(s) selected[s == v.record_id] { "Record " (id) }
                        }
                        @if a.new_record {
                            option value="new" selected[v.record_id == "new"] { "A new record (paste a whole FHIR Bundle with the Patient)" }
                        }
                    }
                }
                div.field {
                    label for="add-kind" { "What" }
                    select #add-kind name="kind" {
                        @for (k, label) in KINDS {
                            option value=(k) selected[k == v.kind] { (label) }
                        }
                    }
                }
                (text("name", "Test, medication or title", &v.name))
                (text("value", "Result value", &v.value))
                (text("unit", "Unit (UCUM, e.g. mmol/L)", &v.unit))
                (text("low", "Reference range low", &v.low))
                (text("high", "Reference range high", &v.high))
                (text("dosage", "Dosage instructions", &v.dosage))
                (field(&Field { form: "add", name: "note", label: "Note", kind: "textarea", value: &v.note, required: false, autocomplete: "off", numeric: false, hint: None }, e))
                (field(&Field { form: "add", name: "bundle", label: "FHIR Bundle (JSON)", kind: "textarea", value: &v.bundle, required: false, autocomplete: "off", numeric: false, hint: None }, e))
                button type="submit" { "Add to the record" }
            }
        }
    }
}
