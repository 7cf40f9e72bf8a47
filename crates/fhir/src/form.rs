//! The record web form's five fields, to and from a bundle.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::date::*;
use crate::*;

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
pub(crate) fn form_field(path: &str) -> &'static str {
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
