//! Record content: a small, strictly validated subset of FHIR R4.
//!
//! A record is a FHIR `Bundle` of type `collection` holding exactly one `Patient` and up to
//! [`MAX_CONDITIONS`] `Condition` resources. Everything that enters the system goes through
//! [`parse`] (or [`Bundle`]'s `Deserialize`, which calls the same validator), so a stored
//! record is always well-formed and bounded in size.
//!
//! Validation walks the JSON tree by hand rather than through `serde`'s derive: that is
//! what lets every error name the field with a path (`entry[0].resource.birthDate`) and the
//! rule it broke, while *never* echoing a value — serde's own messages quote the offending
//! input, which here would be personal health data. Unknown fields are refused everywhere
//! (the equivalent of `#[serde(deny_unknown_fields)]`); the typed model serializes with
//! plain `serde` derives, and the round trip is property-tested.
//!
//! [`RecordForm`] turns the web form's five fields into a valid bundle.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The largest accepted request body, in bytes (1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The longest accepted string, in characters.
pub const MAX_STRING_CHARS: usize = 1000;
/// The most `Condition` resources in one bundle.
pub const MAX_CONDITIONS: usize = 100;
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

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

/// A validated record: one Patient and zero or more Conditions.
///
/// `Debug` prints only counts: a bundle is personal health data and must not reach logs.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "resourceType", rename = "Bundle")]
pub struct Bundle {
    /// Always `collection`.
    #[serde(rename = "type")]
    pub bundle_type: BundleType,
    /// The resources; exactly one is a [`Patient`].
    pub entry: Vec<Entry>,
}

/// `Bundle.type`: only `collection` is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleType {
    /// A set of resources with no further meaning.
    Collection,
}

/// One `Bundle.entry`.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The entry's absolute URI (e.g. `urn:uuid:…`), which references may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    /// The resource.
    pub resource: Resource,
}

/// The resources a record may hold.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "resourceType")]
pub enum Resource {
    /// The patient the record is about.
    Patient(Patient),
    /// A diagnosis or health condition.
    Condition(Condition),
}

/// FHIR `Patient` (subset).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    /// Logical id (`[A-Za-z0-9.-]{1,64}`), referenced as `Patient/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// At least one name.
    pub name: Vec<HumanName>,
    /// Administrative gender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    /// `YYYY-MM-DD`, a real date between 1900-01-01 and today.
    pub birth_date: String,
    /// Postal addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    /// Phone numbers and e-mail addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
}

/// FHIR `HumanName`: `text`, or `family` and/or `given`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HumanName {
    /// The full name as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Family name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Given names, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
}

/// FHIR `administrative-gender`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Other.
    Other,
    /// Unknown.
    Unknown,
}

/// FHIR `Address` (subset); at least one field is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// The whole address as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Street lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub line: Vec<String>,
    /// City.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Postal code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// FHIR `ContactPoint` (subset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContactPoint {
    /// Phone or e-mail.
    pub system: TelecomSystem,
    /// The number or address.
    pub value: String,
}

/// `ContactPoint.system` values accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TelecomSystem {
    /// A phone number: digits, spaces and `+ - ( ) .`.
    Phone,
    /// An e-mail address.
    Email,
}

/// FHIR `Condition` (subset).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Logical id (`[A-Za-z0-9.-]{1,64}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Codings from [`CLINICAL_STATUS_SYSTEM`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinical_status: Option<CodeableConcept>,
    /// What the condition is.
    pub code: CodeableConcept,
    /// The bundle's Patient: its `fullUrl` or `Patient/{id}`.
    pub subject: Reference,
    /// FHIR `dateTime` the condition began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onset_date_time: Option<String>,
    /// FHIR `dateTime` it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_date: Option<String>,
}

/// FHIR `CodeableConcept`: `text` and/or `coding`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CodeableConcept {
    /// Codes from terminologies (SNOMED CT, ICD-10, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    /// Plain-text description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// FHIR `Coding`: `code` and/or `display`, optionally with its `system` URI.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coding {
    /// The terminology's URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable meaning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// FHIR `Reference` (literal references only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// `Patient/{id}` or the Patient entry's `fullUrl`.
    pub reference: String,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("entries", &self.entry.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Patient(p) => p.fmt(f),
            Self::Condition(c) => c.fmt(f),
        }
    }
}

impl fmt::Debug for Patient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Patient { <redacted> }")
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Condition { <redacted> }")
    }
}

impl Bundle {
    /// A collection bundle of `patient` and `conditions`, in that order (not validated: use
    /// [`Bundle::validate`] or build through [`RecordForm`]).
    pub fn new(patient: Patient, conditions: Vec<Condition>) -> Self {
        let mut entry = vec![Entry {
            full_url: None,
            resource: Resource::Patient(patient),
        }];
        entry.extend(conditions.into_iter().map(|c| Entry {
            full_url: None,
            resource: Resource::Condition(c),
        }));
        Self {
            bundle_type: BundleType::Collection,
            entry,
        }
    }

    /// The Patient (a validated bundle has exactly one).
    pub fn patient(&self) -> Option<&Patient> {
        self.entry.iter().find_map(|e| match &e.resource {
            Resource::Patient(p) => Some(p),
            Resource::Condition(_) => None,
        })
    }

    /// The Conditions, in bundle order.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.entry.iter().filter_map(|e| match &e.resource {
            Resource::Condition(c) => Some(c),
            Resource::Patient(_) => None,
        })
    }

    /// Canonical JSON bytes of the bundle (what gets sealed and stored).
    pub fn to_json_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a bundle always serializes")
    }

    /// Re-checks a bundle built in code, exactly as if it had arrived as JSON.
    pub fn validate(&self, today: Date) -> Result<(), ValidationErrors> {
        let value = serde_json::to_value(self).expect("a bundle always serializes");
        validate_value(&value, today).map(drop)
    }
}

impl<'de> Deserialize<'de> for Bundle {
    /// Deserializes through the validator (today's UTC date bounds birth dates), so a
    /// `Bundle` obtained through serde is always valid.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        validate_value(&value, Date::today_utc()).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// The rule a field broke. Never carries the field's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A required field is absent.
    Missing,
    /// A string is empty or blank, or a list has no items.
    Empty,
    /// The JSON type is wrong.
    WrongType {
        /// What was expected (`string`, `object`, `array`).
        expected: &'static str,
    },
    /// A string is longer than allowed.
    TooLong {
        /// The limit in characters.
        max: usize,
    },
    /// A list has more items than allowed.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// An object has fields this schema does not know.
    UnknownFields {
        /// How many.
        count: usize,
    },
    /// Not a real calendar date in the expected format.
    BadDate {
        /// The format expected.
        expected: &'static str,
    },
    /// A date after today.
    FutureDate,
    /// A date before [`MIN_YEAR`].
    TooOld,
    /// Not one of the allowed values.
    NotAllowed {
        /// The allowed values.
        expected: &'static str,
    },
    /// A string whose shape is wrong.
    BadFormat {
        /// What shape was expected.
        expected: &'static str,
    },
    /// Control characters (other than tab and newlines) in a string.
    ControlCharacters,
    /// None of a group of fields is present.
    NeedsOneOf {
        /// The fields, one of which is needed.
        fields: &'static str,
    },
    /// A second Patient resource.
    DuplicatePatient,
    /// The bundle holds no Patient resource.
    NoPatient,
    /// A reference that does not point at the bundle's Patient.
    UnresolvedReference,
    /// The body is larger than [`MAX_BODY_BYTES`].
    BodyTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// The body is not JSON.
    MalformedJson {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "missing"),
            Self::Empty => write!(f, "must not be empty"),
            Self::WrongType { expected } => write!(f, "wrong type, expected {expected}"),
            Self::TooLong { max } => write!(f, "too long, at most {max} characters"),
            Self::TooMany { max } => write!(f, "too many items, at most {max}"),
            Self::UnknownFields { count } => write!(f, "{count} unknown field(s)"),
            Self::BadDate { expected } => write!(f, "not a valid date, expected {expected}"),
            Self::FutureDate => write!(f, "date is in the future"),
            Self::TooOld => write!(f, "date is before {MIN_YEAR}-01-01"),
            Self::NotAllowed { expected } => write!(f, "not allowed, expected {expected}"),
            Self::BadFormat { expected } => write!(f, "bad format, expected {expected}"),
            Self::ControlCharacters => write!(f, "contains control characters"),
            Self::NeedsOneOf { fields } => write!(f, "needs at least one of {fields}"),
            Self::DuplicatePatient => write!(f, "only one Patient resource is allowed"),
            Self::NoPatient => write!(f, "a Patient resource is required"),
            Self::UnresolvedReference => write!(f, "does not refer to the bundle's Patient"),
            Self::BodyTooLarge { max } => write!(f, "body larger than {max} bytes"),
            Self::MalformedJson { line, column } => {
                write!(f, "malformed JSON at line {line}, column {column}")
            }
        }
    }
}

/// One broken rule at one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON-pointer-like path: `entry[0].resource.birthDate`; empty for the whole body.
    pub path: String,
    /// What is wrong.
    pub rule: Rule,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(body): {}", self.rule)
        } else {
            write!(f, "{}: {}", self.path, self.rule)
        }
    }
}

/// Every rule a body broke (at most [`MAX_ERRORS`] listed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
    omitted: usize,
}

impl ValidationErrors {
    /// The errors, in document order.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// How many further errors were not listed.
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    /// Whether some error is at `path` (exact match).
    pub fn has(&self, path: &str) -> bool {
        self.errors.iter().any(|e| e.path == path)
    }

    fn single(path: &str, rule: Rule) -> Self {
        Self {
            errors: vec![FieldError {
                path: path.to_owned(),
                rule,
            }],
            omitted: 0,
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            e.fmt(f)?;
        }
        if self.omitted > 0 {
            write!(f, "; and {} more", self.omitted)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

// ---------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------

/// A proleptic Gregorian calendar date (ordered chronologically).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day, 1–31.
    pub day: u8,
}

impl Date {
    /// A checked date: `None` unless it exists in the calendar.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        ((1..=12).contains(&month) && (1..=days_in_month(year, month.clamp(1, 12))).contains(&day))
            .then_some(Self { year, month, day })
    }

    /// Parses exactly `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        Self::new(
            digits(&b[0..4])? as u16,
            digits(&b[5..7])? as u8,
            digits(&b[8..10])? as u8,
        )
    }

    /// The date `days` days after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    pub fn from_unix_days(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Self { year, month, day }
    }

    /// Today in UTC, from the system clock.
    pub fn today_utc() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::from_unix_days((secs / 86_400) as i64)
    }

    /// The next day.
    pub fn succ(self) -> Self {
        if let Some(d) = Self::new(self.year, self.month, self.day + 1) {
            d
        } else if self.month < 12 {
            Self::new(self.year, self.month + 1, 1).expect("first of a month exists")
        } else {
            Self::new(self.year + 1, 1, 1).expect("January 1st exists")
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Checks a FHIR `dateTime`: `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or
/// `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`; returns the latest calendar day it may denote.
fn parse_date_time(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    match b.len() {
        4 => {
            let y = digits(b)? as u16;
            Date::new(y, 12, 31)
        }
        7 if b[4] == b'-' => {
            let (y, m) = (digits(&b[..4])? as u16, digits(&b[5..7])? as u8);
            Date::new(y, m, days_in_month(y, m.clamp(1, 12)))
        }
        10 => Date::parse(s),
        n if n > 10 && b[10] == b'T' => {
            let date = Date::parse(&s[..10])?;
            let rest = &s[11..];
            let (time, zone) = match rest.find(['Z', '+', '-']) {
                Some(i) => rest.split_at(i),
                None => return None,
            };
            let tb = time.as_bytes();
            if tb.len() < 8 || tb[2] != b':' || tb[5] != b':' {
                return None;
            }
            let (h, mi, sec) = (digits(&tb[..2])?, digits(&tb[3..5])?, digits(&tb[6..8])?);
            if h > 23 || mi > 59 || sec > 60 {
                return None;
            }
            if tb.len() > 8 && (tb[8] != b'.' || tb.len() == 9 || digits(&tb[9..]).is_none()) {
                return None;
            }
            let zb = zone.as_bytes();
            let zone_ok = zone == "Z"
                || (zb.len() == 6
                    && zb[3] == b':'
                    && digits(&zb[1..3]).is_some_and(|h| h <= 14)
                    && digits(&zb[4..6]).is_some_and(|m| m <= 59));
            zone_ok.then_some(date)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// Validates a request body with today's UTC date as the bound for birth dates.
pub fn parse(body: &[u8]) -> Result<Bundle, ValidationErrors> {
    parse_at(body, Date::today_utc())
}

/// Validates a request body; dates after `today` are refused.
pub fn parse_at(body: &[u8], today: Date) -> Result<Bundle, ValidationErrors> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ValidationErrors::single(
            "",
            Rule::BodyTooLarge {
                max: MAX_BODY_BYTES,
            },
        ));
    }
    // serde_json's syntax errors quote no input; its line/column are all that is kept.
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ValidationErrors::single(
            "",
            Rule::MalformedJson {
                line: e.line(),
                column: e.column(),
            },
        )
    })?;
    validate_value(&value, today)
}

/// Validates already-parsed JSON; dates after `today` are refused.
pub fn validate_value(value: &Value, today: Date) -> Result<Bundle, ValidationErrors> {
    let mut v = Validator {
        today,
        errors: Vec::new(),
        omitted: 0,
    };
    let bundle = v.bundle(value);
    match (bundle, v.errors.is_empty()) {
        (Some(b), true) => Ok(b),
        _ => {
            if v.errors.is_empty() {
                // Every `None` above records an error; this is a safety net, not a path.
                v.errors.push(FieldError {
                    path: String::new(),
                    rule: Rule::WrongType { expected: "object" },
                });
            }
            Err(ValidationErrors {
                errors: v.errors,
                omitted: v.omitted,
            })
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

struct Validator {
    today: Date,
    errors: Vec<FieldError>,
    omitted: usize,
}

impl Validator {
    fn err(&mut self, path: String, rule: Rule) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(FieldError { path, rule });
        } else {
            self.omitted += 1;
        }
    }

    /// `value` as an object with only `allowed` keys (unknown keys are reported, not named:
    /// a key could itself be personal data).
    fn object<'a>(
        &mut self,
        value: &'a Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        let Some(obj) = value.as_object() else {
            self.err(path.to_owned(), Rule::WrongType { expected: "object" });
            return None;
        };
        let unknown = obj
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .count();
        if unknown > 0 {
            self.err(path.to_owned(), Rule::UnknownFields { count: unknown });
        }
        Some(obj)
    }

    fn string(&mut self, value: &Value, path: String) -> Option<String> {
        let Some(s) = value.as_str() else {
            self.err(path, Rule::WrongType { expected: "string" });
            return None;
        };
        if s.trim().is_empty() {
            self.err(path, Rule::Empty);
            return None;
        }
        if s.chars().count() > MAX_STRING_CHARS {
            self.err(
                path,
                Rule::TooLong {
                    max: MAX_STRING_CHARS,
                },
            );
            return None;
        }
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            self.err(path, Rule::ControlCharacters);
            return None;
        }
        Some(s.to_owned())
    }

    fn opt_string(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        obj.get(key).and_then(|v| self.string(v, join(path, key)))
    }

    fn req_string(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        match obj.get(key) {
            Some(v) => self.string(v, join(path, key)),
            None => {
                self.err(join(path, key), Rule::Missing);
                None
            }
        }
    }

    /// A list field: absent is `Some(empty)`; present must be a non-empty array of at
    /// most `max` items.
    fn list<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        path: &str,
        key: &str,
        max: usize,
    ) -> Option<&'a [Value]> {
        let Some(v) = obj.get(key) else {
            return Some(&[]);
        };
        let path = join(path, key);
        let Some(items) = v.as_array() else {
            self.err(path, Rule::WrongType { expected: "array" });
            return None;
        };
        if items.is_empty() {
            self.err(path, Rule::Empty);
            return None;
        }
        if items.len() > max {
            self.err(path, Rule::TooMany { max });
            return None;
        }
        Some(items)
    }

    fn string_list(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Vec<String> {
        let items = self.list(obj, path, key, MAX_ITEMS).unwrap_or_default();
        let base = join(path, key);
        items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.string(v, index(&base, i)))
            .collect()
    }

    fn one_of<T: Copy>(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
        table: &[(&str, T)],
        expected: &'static str,
    ) -> Option<T> {
        let s = self.opt_string(obj, path, key)?;
        let found = table.iter().find(|(name, _)| *name == s).map(|(_, t)| *t);
        if found.is_none() {
            self.err(join(path, key), Rule::NotAllowed { expected });
        }
        found
    }

    fn fhir_id(&mut self, obj: &Map<String, Value>, path: &str) -> Option<String> {
        let id = self.opt_string(obj, path, "id")?;
        let ok = id.len() <= 64
            && id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
        if !ok {
            self.err(
                join(path, "id"),
                Rule::BadFormat {
                    expected: "1-64 of A-Z a-z 0-9 - .",
                },
            );
            return None;
        }
        Some(id)
    }

    fn uri(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        let s = self.opt_string(obj, path, key)?;
        if s.chars().any(char::is_whitespace) || !s.contains(':') {
            self.err(
                join(path, key),
                Rule::BadFormat {
                    expected: "an absolute URI",
                },
            );
            return None;
        }
        Some(s)
    }

    fn bundle(&mut self, value: &Value) -> Option<Bundle> {
        let obj = self.object(value, "", &["resourceType", "type", "entry"])?;
        match obj.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => {}
            Some(_) => self.err(
                "resourceType".into(),
                Rule::NotAllowed { expected: "Bundle" },
            ),
            None if obj.contains_key("resourceType") => self.err(
                "resourceType".into(),
                Rule::WrongType { expected: "string" },
            ),
            None => self.err("resourceType".into(), Rule::Missing),
        }
        let bundle_type = match obj.get("type") {
            None => {
                self.err("type".into(), Rule::Missing);
                None
            }
            Some(_) => self.one_of(
                obj,
                "",
                "type",
                &[("collection", BundleType::Collection)],
                "collection",
            ),
        };
        if !obj.contains_key("entry") {
            self.err("entry".into(), Rule::Missing);
            return None;
        }
        let entries = self.list(obj, "", "entry", MAX_CONDITIONS + 1)?;

        let mut entry = Vec::with_capacity(entries.len());
        let mut patient: Option<(Option<String>, Option<String>)> = None;
        let mut subjects: Vec<(String, String)> = Vec::new();
        let mut ok = true;
        for (i, e) in entries.iter().enumerate() {
            let path = index("entry", i);
            match self.entry(e, &path) {
                Some(parsed) => {
                    match &parsed.resource {
                        Resource::Patient(p) => {
                            if patient.is_some() {
                                self.err(join(&path, "resource"), Rule::DuplicatePatient);
                                ok = false;
                            } else {
                                patient = Some((parsed.full_url.clone(), p.id.clone()));
                            }
                        }
                        Resource::Condition(c) => subjects.push((
                            join(&path, "resource.subject.reference"),
                            c.subject.reference.clone(),
                        )),
                    }
                    entry.push(parsed);
                }
                None => ok = false,
            }
        }
        if ok && patient.is_none() {
            self.err("entry".into(), Rule::NoPatient);
        }
        if let Some((full_url, id)) = &patient {
            for (path, reference) in subjects {
                let by_url = full_url.as_deref() == Some(reference.as_str());
                let by_id = id
                    .as_deref()
                    .is_some_and(|id| reference.strip_prefix("Patient/") == Some(id));
                if !by_url && !by_id {
                    self.err(path, Rule::UnresolvedReference);
                }
            }
        }
        let bundle_type = bundle_type?;
        (ok && self.errors.is_empty()).then_some(Bundle { bundle_type, entry })
    }

    fn entry(&mut self, value: &Value, path: &str) -> Option<Entry> {
        let obj = self.object(value, path, &["fullUrl", "resource"])?;
        let full_url = self.uri(obj, path, "fullUrl");
        let failed_url = obj.contains_key("fullUrl") && full_url.is_none();
        let rpath = join(path, "resource");
        let Some(res) = obj.get("resource") else {
            self.err(rpath, Rule::Missing);
            return None;
        };
        let Some(res_obj) = res.as_object() else {
            self.err(rpath, Rule::WrongType { expected: "object" });
            return None;
        };
        let resource = match res_obj.get("resourceType").map(Value::as_str) {
            Some(Some("Patient")) => self.patient(res, &rpath).map(Resource::Patient),
            Some(Some("Condition")) => self.condition(res, &rpath).map(Resource::Condition),
            Some(Some(_)) => {
                self.err(
                    join(&rpath, "resourceType"),
                    Rule::NotAllowed {
                        expected: "Patient or Condition",
                    },
                );
                None
            }
            Some(None) => {
                self.err(
                    join(&rpath, "resourceType"),
                    Rule::WrongType { expected: "string" },
                );
                None
            }
            None => {
                self.err(join(&rpath, "resourceType"), Rule::Missing);
                None
            }
        }?;
        (!failed_url).then_some(Entry { full_url, resource })
    }

    fn patient(&mut self, value: &Value, path: &str) -> Option<Patient> {
        let obj = self.object(
            value,
            path,
            &[
                "resourceType",
                "id",
                "name",
                "gender",
                "birthDate",
                "address",
                "telecom",
            ],
        )?;
        let before = self.errors.len() + self.omitted;
        let id = self.fhir_id(obj, path);

        let names = if obj.contains_key("name") {
            self.list(obj, path, "name", MAX_ITEMS).unwrap_or_default()
        } else {
            self.err(join(path, "name"), Rule::Missing);
            &[]
        };
        let name_base = join(path, "name");
        let name = names
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.human_name(v, &index(&name_base, i)))
            .collect();

        let gender = self.one_of(
            obj,
            path,
            "gender",
            &[
                ("male", Gender::Male),
                ("female", Gender::Female),
                ("other", Gender::Other),
                ("unknown", Gender::Unknown),
            ],
            "male, female, other or unknown",
        );

        let birth_date = self.req_string(obj, path, "birthDate").and_then(|s| {
            let p = join(path, "birthDate");
            match Date::parse(&s) {
                None => self.err(
                    p,
                    Rule::BadDate {
                        expected: "YYYY-MM-DD",
                    },
                ),
                Some(d) if d > self.today => self.err(p, Rule::FutureDate),
                Some(d) if d.year < MIN_YEAR => self.err(p, Rule::TooOld),
                Some(_) => return Some(s),
            }
            None
        });

        let addrs = self
            .list(obj, path, "address", MAX_ITEMS)
            .unwrap_or_default();
        let addr_base = join(path, "address");
        let address = addrs
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.address(v, &index(&addr_base, i)))
            .collect();

        let telecoms = self
            .list(obj, path, "telecom", MAX_ITEMS)
            .unwrap_or_default();
        let tel_base = join(path, "telecom");
        let telecom = telecoms
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.contact_point(v, &index(&tel_base, i)))
            .collect();

        let clean = self.errors.len() + self.omitted == before;
        clean.then_some(Patient {
            id,
            name,
            gender,
            birth_date: birth_date?,
            address,
            telecom,
        })
    }

    fn human_name(&mut self, value: &Value, path: &str) -> Option<HumanName> {
        let obj = self.object(value, path, &["text", "family", "given"])?;
        let name = HumanName {
            text: self.opt_string(obj, path, "text"),
            family: self.opt_string(obj, path, "family"),
            given: self.string_list(obj, path, "given"),
        };
        if obj.get("text").is_none() && obj.get("family").is_none() && obj.get("given").is_none() {
            self.err(
                path.to_owned(),
                Rule::NeedsOneOf {
                    fields: "text, family, given",
                },
            );
        }
        Some(name)
    }

    fn address(&mut self, value: &Value, path: &str) -> Option<Address> {
        const FIELDS: [&str; 5] = ["text", "line", "city", "postalCode", "country"];
        let obj = self.object(value, path, &FIELDS)?;
        if !FIELDS.iter().any(|f| obj.contains_key(*f)) {
            self.err(
                path.to_owned(),
                Rule::NeedsOneOf {
                    fields: "text, line, city, postalCode, country",
                },
            );
        }
        Some(Address {
            text: self.opt_string(obj, path, "text"),
            line: self.string_list(obj, path, "line"),
            city: self.opt_string(obj, path, "city"),
            postal_code: self.opt_string(obj, path, "postalCode"),
            country: self.opt_string(obj, path, "country"),
        })
    }

    fn contact_point(&mut self, value: &Value, path: &str) -> Option<ContactPoint> {
        let obj = self.object(value, path, &["system", "value"])?;
        let system = if obj.contains_key("system") {
            self.one_of(
                obj,
                path,
                "system",
                &[
                    ("phone", TelecomSystem::Phone),
                    ("email", TelecomSystem::Email),
                ],
                "phone or email",
            )
        } else {
            self.err(join(path, "system"), Rule::Missing);
            None
        };
        let value = self.req_string(obj, path, "value");
        let (system, value) = (system?, value?);
        let ok = match system {
            TelecomSystem::Phone => is_phone(&value),
            TelecomSystem::Email => is_email(&value),
        };
        if !ok {
            let expected = match system {
                TelecomSystem::Phone => "a phone number (digits, spaces, + - ( ) .)",
                TelecomSystem::Email => "an e-mail address",
            };
            self.err(join(path, "value"), Rule::BadFormat { expected });
            return None;
        }
        Some(ContactPoint { system, value })
    }

    fn condition(&mut self, value: &Value, path: &str) -> Option<Condition> {
        let obj = self.object(
            value,
            path,
            &[
                "resourceType",
                "id",
                "clinicalStatus",
                "code",
                "subject",
                "onsetDateTime",
                "recordedDate",
            ],
        )?;
        let before = self.errors.len() + self.omitted;
        let id = self.fhir_id(obj, path);
        let clinical_status = obj
            .get("clinicalStatus")
            .and_then(|v| self.clinical_status(v, &join(path, "clinicalStatus")));
        let code = match obj.get("code") {
            Some(v) => self.codeable_concept(v, &join(path, "code")),
            None => {
                self.err(join(path, "code"), Rule::Missing);
                None
            }
        };
        let subject = match obj.get("subject") {
            Some(v) => {
                let spath = join(path, "subject");
                self.object(v, &spath, &["reference"])
                    .and_then(|o| self.req_string(o, &spath, "reference"))
                    .map(|reference| Reference { reference })
            }
            None => {
                self.err(join(path, "subject"), Rule::Missing);
                None
            }
        };
        let onset_date_time = self.date_time(obj, path, "onsetDateTime");
        let recorded_date = self.date_time(obj, path, "recordedDate");
        let clean = self.errors.len() + self.omitted == before;
        clean.then_some(Condition {
            id,
            clinical_status,
            code: code?,
            subject: subject?,
            onset_date_time,
            recorded_date,
        })
    }

    fn date_time(&mut self, obj: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        let s = self.opt_string(obj, path, key)?;
        let p = join(path, key);
        match parse_date_time(&s) {
            None => self.err(
                p,
                Rule::BadDate {
                    expected: "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz",
                },
            ),
            // A time zone ahead of UTC may already be on tomorrow; a bare year or month
            // denotes its last day, so compare the earliest day it may mean.
            Some(latest) if earliest_day(&s, latest) > self.today.succ() => {
                self.err(p, Rule::FutureDate)
            }
            Some(latest) if latest.year < MIN_YEAR => self.err(p, Rule::TooOld),
            Some(_) => return Some(s),
        }
        None
    }

    fn clinical_status(&mut self, value: &Value, path: &str) -> Option<CodeableConcept> {
        let cc = self.codeable_concept(value, path)?;
        if cc.coding.is_empty() {
            self.err(join(path, "coding"), Rule::Missing);
            return None;
        }
        let mut ok = true;
        for (i, c) in cc.coding.iter().enumerate() {
            let cpath = index(&join(path, "coding"), i);
            if c.system.as_deref() != Some(CLINICAL_STATUS_SYSTEM) {
                self.err(
                    join(&cpath, "system"),
                    Rule::NotAllowed {
                        expected: CLINICAL_STATUS_SYSTEM,
                    },
                );
                ok = false;
            }
            if !c
                .code
                .as_deref()
                .is_some_and(|code| CLINICAL_STATUS_CODES.contains(&code))
            {
                self.err(
                    join(&cpath, "code"),
                    Rule::NotAllowed {
                        expected: "active, recurrence, relapse, inactive, remission or resolved",
                    },
                );
                ok = false;
            }
        }
        ok.then_some(cc)
    }

    fn codeable_concept(&mut self, value: &Value, path: &str) -> Option<CodeableConcept> {
        let obj = self.object(value, path, &["coding", "text"])?;
        if !obj.contains_key("coding") && !obj.contains_key("text") {
            self.err(
                path.to_owned(),
                Rule::NeedsOneOf {
                    fields: "text, coding",
                },
            );
            return None;
        }
        let text = self.opt_string(obj, path, "text");
        let codings = self
            .list(obj, path, "coding", MAX_ITEMS)
            .unwrap_or_default();
        let base = join(path, "coding");
        let coding = codings
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.coding(v, &index(&base, i)))
            .collect();
        Some(CodeableConcept { coding, text })
    }

    fn coding(&mut self, value: &Value, path: &str) -> Option<Coding> {
        let obj = self.object(value, path, &["system", "code", "display"])?;
        if !obj.contains_key("code") && !obj.contains_key("display") {
            self.err(
                path.to_owned(),
                Rule::NeedsOneOf {
                    fields: "code, display",
                },
            );
        }
        let system = self.uri(obj, path, "system");
        let code = self.opt_string(obj, path, "code");
        if code.as_deref().is_some_and(|c| c.trim() != c) {
            self.err(
                join(path, "code"),
                Rule::BadFormat {
                    expected: "no leading or trailing whitespace",
                },
            );
        }
        Some(Coding {
            system,
            code,
            display: self.opt_string(obj, path, "display"),
        })
    }
}

/// The first calendar day a valid FHIR `dateTime` string may denote.
fn earliest_day(s: &str, latest: Date) -> Date {
    match s.len() {
        4 => Date::new(latest.year, 1, 1).unwrap_or(latest),
        7 => Date::new(latest.year, latest.month, 1).unwrap_or(latest),
        _ => latest,
    }
}

fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (3..=20).contains(&digits)
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'))
}

fn is_email(s: &str) -> bool {
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

// ---------------------------------------------------------------------------------------
// The web form
// ---------------------------------------------------------------------------------------

/// The five fields of the record web form (issue #6). Empty optional fields are left out.
///
/// `Debug` is redacted: these are personal data.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordForm {
    /// The patient's full name (required), stored as `HumanName.text`.
    pub patient_name: String,
    /// `YYYY-MM-DD` (required).
    pub birth_date: String,
    /// Free-text address (optional), stored as `Address.text`.
    pub address: String,
    /// Phone number (optional).
    pub phone: String,
    /// Health condition, free text (optional), stored as an active `Condition`.
    pub health_condition: String,
}

impl fmt::Debug for RecordForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordForm { <redacted> }")
    }
}

/// The id the form's Patient gets, and that its Condition references.
pub const FORM_PATIENT_ID: &str = "patient";

impl RecordForm {
    /// The form's five fields read back from a bundle: the Patient's first name (its
    /// text, or given and family names joined), birth date, first address and phone, and
    /// the Conditions' texts (or codings' displays) joined with "; ". `None` when the
    /// bundle has no Patient.
    pub fn from_bundle(bundle: &Bundle) -> Option<Self> {
        let p = bundle.patient()?;
        let name = p
            .name
            .first()
            .map(|n| {
                n.text.clone().unwrap_or_else(|| {
                    n.given
                        .iter()
                        .chain(n.family.iter())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            })
            .unwrap_or_default();
        let address = p
            .address
            .first()
            .map(|a| {
                a.text.clone().unwrap_or_else(|| {
                    a.line
                        .iter()
                        .chain(a.city.iter())
                        .chain(a.postal_code.iter())
                        .chain(a.country.iter())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            })
            .unwrap_or_default();
        let phone = p
            .telecom
            .iter()
            .find(|t| t.system == TelecomSystem::Phone)
            .map(|t| t.value.clone())
            .unwrap_or_default();
        let health_condition = bundle
            .conditions()
            .filter_map(|c| {
                c.code
                    .text
                    .clone()
                    .or_else(|| c.code.coding.iter().find_map(|cd| cd.display.clone()))
            })
            .collect::<Vec<_>>()
            .join("; ");
        Some(Self {
            patient_name: name,
            birth_date: p.birth_date.clone(),
            address,
            phone,
            health_condition,
        })
    }

    /// Builds and validates the bundle. Errors name the *form* fields (`patient_name`,
    /// `birth_date`, `address`, `phone`, `health_condition`), which is what the form shows.
    pub fn to_bundle(&self, today: Date) -> Result<Bundle, ValidationErrors> {
        let opt = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        };
        let patient = Patient {
            id: Some(FORM_PATIENT_ID.to_owned()),
            name: vec![HumanName {
                text: Some(self.patient_name.trim().to_owned()),
                ..Default::default()
            }],
            gender: None,
            birth_date: self.birth_date.trim().to_owned(),
            address: opt(&self.address)
                .map(|text| Address {
                    text: Some(text),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            telecom: opt(&self.phone)
                .map(|value| ContactPoint {
                    system: TelecomSystem::Phone,
                    value,
                })
                .into_iter()
                .collect(),
        };
        let conditions = opt(&self.health_condition)
            .map(|text| Condition {
                id: None,
                clinical_status: Some(CodeableConcept {
                    coding: vec![Coding {
                        system: Some(CLINICAL_STATUS_SYSTEM.to_owned()),
                        code: Some("active".to_owned()),
                        display: None,
                    }],
                    text: None,
                }),
                code: CodeableConcept {
                    coding: Vec::new(),
                    text: Some(text),
                },
                subject: Reference {
                    reference: format!("Patient/{FORM_PATIENT_ID}"),
                },
                onset_date_time: None,
                recorded_date: None,
            })
            .into_iter()
            .collect();
        let bundle = Bundle::new(patient, conditions);
        bundle.validate(today).map_err(|e| ValidationErrors {
            errors: e
                .errors
                .into_iter()
                .map(|fe| FieldError {
                    path: form_field(&fe.path).to_owned(),
                    rule: fe.rule,
                })
                .collect(),
            omitted: e.omitted,
        })?;
        Ok(bundle)
    }
}

/// The form field a bundle path came from.
fn form_field(path: &str) -> &'static str {
    let p = path.strip_prefix("entry[0].resource.").unwrap_or("");
    if p.starts_with("name") {
        "patient_name"
    } else if p.starts_with("birthDate") {
        "birth_date"
    } else if p.starts_with("address") {
        "address"
    } else if p.starts_with("telecom") {
        "phone"
    } else if path.starts_with("entry[1]") {
        "health_condition"
    } else {
        ""
    }
}
