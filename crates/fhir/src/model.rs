//! The typed model of a validated record: Bundle, Patient, Condition and their parts.
//!
//! Only [`crate::parse`] and [`Bundle`]'s `Deserialize` (the same validator) build one, so a
//! value of these types is always well-formed. `Debug` prints no personal data.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::*;
use crate::{date::*, validate::*};

// ---------------------------------------------------------------------------------------

/// A validated record: one Patient and zero or more Conditions.
///
/// `Debug` prints only counts: a bundle is personal health data and must not reach logs.
///
/// It serializes as the JSON it was validated from, kept whole (`meta`, `identifier`, `text`,
/// `extension`, `contained` and every other element the R4 tables allow): that is what is
/// stored. The typed entries are a view of the parts SecureEHR reads itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    /// `collection`, or `transaction` (as a hospital's export or a generator writes it).
    pub bundle_type: BundleType,
    /// The resources; exactly one is a [`Patient`].
    pub entry: Vec<Entry>,
    /// The validated JSON, as it arrived.
    json: Value,
}

/// The typed entries of a bundle built in code, as JSON.
#[derive(Serialize)]
#[serde(tag = "resourceType", rename = "Bundle")]
struct Typed<'a> {
    #[serde(rename = "type")]
    bundle_type: BundleType,
    entry: &'a [Entry],
}

/// `Bundle.type`: `collection` or `transaction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleType {
    /// A set of resources with no further meaning.
    Collection,
    /// A set of resources to store together (its entries' `request`s are kept as given).
    Transaction,
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
    /// Another resource of the R4 tables (Observation, AllergyIntolerance, …), checked and
    /// kept in the bundle's JSON.
    #[serde(skip_serializing)]
    Other(OtherResource),
}

/// A resource other than Patient and Condition: its type and id (its content is in the
/// bundle's JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherResource {
    /// `Observation`, `AllergyIntolerance`, …
    pub resource_type: &'static str,
    /// Its logical id, if it has one.
    pub id: Option<String>,
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

impl Entry {
    /// The resource's type and id, if it has one.
    pub fn resource_id(&self) -> Option<(&'static str, &str)> {
        match &self.resource {
            Resource::Patient(p) => p.id.as_deref().map(|id| ("Patient", id)),
            Resource::Condition(c) => c.id.as_deref().map(|id| ("Condition", id)),
            Resource::Other(o) => o.id.as_deref().map(|id| (o.resource_type, id)),
        }
    }
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
            Self::Other(o) => write!(f, "{} {{ <redacted> }}", o.resource_type),
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
        let json = serde_json::to_value(Typed {
            bundle_type: BundleType::Collection,
            entry: &entry,
        })
        .expect("a bundle always serializes");
        Self {
            bundle_type: BundleType::Collection,
            entry,
            json,
        }
    }

    /// A validated bundle: its typed view and the JSON it came from.
    pub(crate) fn validated(bundle_type: BundleType, entry: Vec<Entry>, json: Value) -> Self {
        Self {
            bundle_type,
            entry,
            json,
        }
    }

    /// The bundle's JSON, as validated (what [`to_json_vec`](Self::to_json_vec) writes).
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// Every resource's type and id, in bundle order.
    pub fn resources(&self) -> impl Iterator<Item = (&'static str, Option<&str>)> {
        self.entry.iter().map(|e| match &e.resource {
            Resource::Patient(p) => ("Patient", p.id.as_deref()),
            Resource::Condition(c) => ("Condition", c.id.as_deref()),
            Resource::Other(o) => (o.resource_type, o.id.as_deref()),
        })
    }

    /// The Patient (a validated bundle has exactly one).
    pub fn patient(&self) -> Option<&Patient> {
        self.entry.iter().find_map(|e| match &e.resource {
            Resource::Patient(p) => Some(p),
            _ => None,
        })
    }

    /// The Conditions, in bundle order.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.entry.iter().filter_map(|e| match &e.resource {
            Resource::Condition(c) => Some(c),
            _ => None,
        })
    }

    /// JSON bytes of the bundle (what gets sealed and stored): the validated JSON, with its
    /// object keys sorted.
    pub fn to_json_vec(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json).expect("a bundle always serializes")
    }

    /// Re-checks a bundle built in code, exactly as if it had arrived as JSON.
    pub fn validate(&self, today: Date) -> Result<(), ValidationErrors> {
        let value = serde_json::to_value(self).expect("a bundle always serializes");
        validate_value(&value, today).map(drop)
    }
}

impl Serialize for Bundle {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
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
