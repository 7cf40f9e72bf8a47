//! Record content: a strictly validated part of FHIR R4.
//!
//! A record is a FHIR `Bundle` (`collection` or `transaction`) holding exactly one `Patient`,
//! up to [`MAX_CONDITIONS`] `Condition`s, and Observations, AllergyIntolerances,
//! MedicationStatements, MedicationRequests, Immunizations, Procedures, DiagnosticReports,
//! Encounters, Practitioners, Organizations, Provenances and DocumentReferences (the
//! attachments stored beside the record: [`document_bundle`], [`documents`]). Everything
//! that enters the system goes through [`parse`] (or [`Bundle`]'s `Deserialize`, which
//! calls the same validator), so a stored record is always well-formed and bounded in size.
//!
//! Validation walks the JSON tree by hand rather than through `serde`'s derive: that is
//! what lets every error name the field with a path (`entry[0].resource.birthDate`) and the
//! rule it broke, while *never* echoing a value — serde's own messages quote the offending
//! input, which here would be personal health data. Patient and Condition are checked into a
//! typed view with house rules on top of R4; every other element is checked against the R4
//! element tables (`r4`, walked by `walk`); an element R4 does not define there is refused,
//! and so is every `modifierExtension`. The bundle keeps the JSON it was validated from:
//! `meta`, narrative, extensions and identifiers are stored as given.
//!
//! [`RecordForm`] turns the web form's five fields into a valid bundle.

mod check;
mod compose;
mod date;
mod document;
mod error;
mod form;
mod model;
mod r4;
mod validate;
mod walk;

pub use compose::{Author, Base, add_to_record, instant, server_id};
pub use date::Date;
pub use document::{
    ATTACHMENT_SYSTEM, DocumentInfo, ListedDocument, SHA256_EXTENSION, SIZE_EXTENSION,
    document_bundle, documents,
};
pub use error::{FieldError, Rule, ValidationErrors};
pub use form::{FORM_PATIENT_ID, RecordForm};
pub use model::*;
pub use validate::{parse, parse_at, validate_value};
pub use walk::{MAX_LIST, MAX_TEXT_CHARS};

/// The largest accepted record, in bytes (16 MiB: a real patient's bundle is megabytes).
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// The longest accepted string, in characters.
pub const MAX_STRING_CHARS: usize = 1000;
/// The most `Condition` resources in one bundle.
pub const MAX_CONDITIONS: usize = 100;
/// The most entries in one bundle.
pub const MAX_ENTRIES: usize = 10_000;
/// The most items in any other list (names, given names, address lines, telecoms, codings).
pub const MAX_ITEMS: usize = 20;
/// The earliest accepted year in any date.
pub const MIN_YEAR: u16 = 1900;
/// At most this many errors are reported for one body; the rest are counted.
pub const MAX_ERRORS: usize = 50;
/// The FHIR code system of `Condition.clinicalStatus`.
pub const CLINICAL_STATUS_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
/// The codes allowed in `Condition.clinicalStatus`.
pub const CLINICAL_STATUS_CODES: [&str; 6] = [
    "active",
    "recurrence",
    "relapse",
    "inactive",
    "remission",
    "resolved",
];

#[cfg(test)]
mod compose_tests;
#[cfg(test)]
mod document_tests;
#[cfg(test)]
mod r4_tests;
#[cfg(test)]
mod tests;
