//! The validator: walks the JSON tree by hand so every error names its path and rule.

use serde_json::{Map, Value};

use crate::check::{FoundRef, Validator, Walked, index, join};
use crate::date::*;
use crate::r4::{self, El};
use crate::walk::{DATATYPE_ELEMENTS, SUPPORTED_RESOURCES};
use crate::*;

/// Validates a request body with today's UTC date as the bound for birth dates.
pub fn parse(body: &[u8]) -> Result<Bundle, ValidationErrors> {
    parse_at(body, Date::today_utc())
}

/// Validates a request body; dates after `today` are refused.
pub fn parse_at(body: &[u8], today: Date) -> Result<Bundle, ValidationErrors> {
    validate_value(&json_body(body)?, today)
}

/// A request body as JSON, within [`MAX_BODY_BYTES`].
pub(crate) fn json_body(body: &[u8]) -> Result<Value, ValidationErrors> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ValidationErrors::single(
            "",
            Rule::BodyTooLarge {
                max: MAX_BODY_BYTES,
            },
        ));
    }
    // serde_json's syntax errors quote no input; its line/column are all that is kept.
    serde_json::from_slice(body).map_err(|e| {
        ValidationErrors::single(
            "",
            Rule::MalformedJson {
                line: e.line(),
                column: e.column(),
            },
        )
    })
}

/// Validates already-parsed JSON; dates after `today` are refused.
pub fn validate_value(value: &Value, today: Date) -> Result<Bundle, ValidationErrors> {
    let mut v = Validator {
        today,
        errors: Vec::new(),
        omitted: 0,
        walked: Walked::default(),
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

impl Validator {
    /// `value` as an object whose `typed` keys the caller checks; every other key must be
    /// one of the R4 `elements` (checked here, kept in the bundle's JSON).
    fn object_r4<'a>(
        &mut self,
        value: &'a Value,
        path: &str,
        typed: &[&str],
        elements: &[&[El]],
    ) -> Option<&'a Map<String, Value>> {
        let Some(obj) = value.as_object() else {
            self.err(path.to_owned(), Rule::WrongType { expected: "object" });
            return None;
        };
        let mut walked = std::mem::take(&mut self.walked);
        self.walk_elements(obj, path, elements, typed, &mut walked, 0);
        self.walked = walked;
        Some(obj)
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
        let obj = self.object_r4(
            value,
            "",
            &["resourceType", "type", "entry"],
            &[r4::BUNDLE_EXTRA],
        )?;
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
                &[
                    ("collection", BundleType::Collection),
                    ("transaction", BundleType::Transaction),
                ],
                "collection or transaction",
            ),
        };
        if !obj.contains_key("entry") {
            self.err("entry".into(), Rule::Missing);
            return None;
        }
        let entries = self.list(obj, "", "entry", MAX_ENTRIES)?;

        let mut entry = Vec::with_capacity(entries.len());
        let mut patient: Option<(Option<String>, Option<String>)> = None;
        let mut subjects: Vec<(String, String)> = Vec::new();
        let mut refs: Vec<FoundRef> = Vec::new();
        let mut ok = true;
        for (i, e) in entries.iter().enumerate() {
            let path = index("entry", i);
            match self.entry(e, &path, bundle_type, &mut subjects, &mut refs) {
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
                        Resource::Other(_) => {}
                    }
                    entry.push(parsed);
                }
                None => ok = false,
            }
        }
        if ok && patient.is_none() {
            self.err("entry".into(), Rule::NoPatient);
        }
        let conditions = entry
            .iter()
            .filter(|e| matches!(e.resource, Resource::Condition(_)))
            .count();
        if conditions > MAX_CONDITIONS {
            self.err(
                "entry".into(),
                Rule::TooMany {
                    max: MAX_CONDITIONS,
                },
            );
        }
        // Every other reference names a resource of the bundle: an entry's `fullUrl`, or
        // `Type/id` of an entry (also as the tail of an entry's absolute `fullUrl`).
        let targets: std::collections::HashSet<String> = entry
            .iter()
            .flat_map(|e| {
                let typed = e.resource_id().map(|(t, id)| format!("{t}/{id}"));
                e.full_url.clone().into_iter().chain(typed)
            })
            .collect();
        for r in refs {
            let tail = |t: &String| t.ends_with(&format!("/{}", r.reference));
            if !targets.contains(&r.reference) && !targets.iter().any(tail) {
                self.err(r.path, Rule::Unresolved);
            }
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
        (ok && self.errors.is_empty()).then(|| Bundle::validated(bundle_type, entry, value.clone()))
    }

    /// One entry: its resource checked, the references it holds sorted into `subjects`
    /// (a Condition's, checked against the Patient) and `refs` (resolved in the bundle).
    fn entry(
        &mut self,
        value: &Value,
        path: &str,
        bundle_type: Option<BundleType>,
        subjects: &mut Vec<(String, String)>,
        refs: &mut Vec<FoundRef>,
    ) -> Option<Entry> {
        let obj = self.object_r4(value, path, &["fullUrl", "resource"], &[r4::ENTRY_EXTRA])?;
        // A transaction's entries say what to do with them; a collection's do not.
        match (bundle_type, obj.contains_key("request")) {
            (Some(BundleType::Transaction), false) => {
                self.err(join(path, "request"), Rule::Missing)
            }
            (Some(BundleType::Collection), true) => self.err(
                join(path, "request"),
                Rule::NotAllowed {
                    expected: "no request in a collection bundle",
                },
            ),
            _ => {}
        }
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
        self.walked = Walked::default();
        let resource = match res_obj.get("resourceType").map(Value::as_str) {
            Some(Some("Patient")) => self.patient(res, &rpath).map(Resource::Patient),
            Some(Some("Condition")) => self.condition(res, &rpath).map(Resource::Condition),
            Some(Some(name)) => match r4::resource(name) {
                Some(def) => {
                    let mut walked = std::mem::take(&mut self.walked);
                    let before = self.errors.len() + self.omitted;
                    self.walk_resource(res_obj, &rpath, def.elements, &mut walked, 0);
                    // A record is about its Patient: `subject` and `patient` name it.
                    for r in &mut walked.refs {
                        if def
                            .about_patient
                            .iter()
                            .any(|f| r.path == join(&join(&rpath, f), "reference"))
                        {
                            subjects.push((r.path.clone(), std::mem::take(&mut r.reference)));
                        }
                    }
                    walked.refs.retain(|r| !r.reference.is_empty());
                    self.walked = walked;
                    let id = res_obj.get("id").and_then(Value::as_str).map(str::to_owned);
                    (self.errors.len() + self.omitted == before).then_some(Resource::Other(
                        OtherResource {
                            resource_type: def.name,
                            id,
                        },
                    ))
                }
                None => {
                    self.err(
                        join(&rpath, "resourceType"),
                        Rule::NotAllowed {
                            expected: SUPPORTED_RESOURCES,
                        },
                    );
                    None
                }
            },
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
        // `#id` names one of this resource's contained resources; others go to the bundle.
        let walked = std::mem::take(&mut self.walked);
        for r in walked.refs {
            match r.reference.strip_prefix('#') {
                Some(id) if walked.contained.iter().any(|c| c == id) => {}
                Some(_) => self.err(r.path, Rule::Unresolved),
                None => refs.push(r),
            }
        }
        (!failed_url).then_some(Entry { full_url, resource })
    }

    fn patient(&mut self, value: &Value, path: &str) -> Option<Patient> {
        let obj = self.object_r4(
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
            &[r4::RESOURCE_ELEMENTS, r4::PATIENT_EXTRA],
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
        let obj = self.object_r4(
            value,
            path,
            &["text", "family", "given"],
            &[DATATYPE_ELEMENTS, r4::HUMAN_NAME.elements],
        )?;
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
        let obj = self.object_r4(
            value,
            path,
            &FIELDS,
            &[DATATYPE_ELEMENTS, r4::ADDRESS.elements],
        )?;
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
        let obj = self.object_r4(
            value,
            path,
            &["system", "value"],
            &[DATATYPE_ELEMENTS, r4::CONTACT_POINT.elements],
        )?;
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
        let obj = self.object_r4(
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
            &[r4::RESOURCE_ELEMENTS, r4::CONDITION_EXTRA],
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
                self.object_r4(
                    v,
                    &spath,
                    &["reference"],
                    &[DATATYPE_ELEMENTS, r4::REFERENCE_TYPE.elements],
                )
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
        let obj = self.object_r4(
            value,
            path,
            &["coding", "text"],
            &[DATATYPE_ELEMENTS, r4::CODEABLE_CONCEPT.elements],
        )?;
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
        let obj = self.object_r4(
            value,
            path,
            &["system", "code", "display"],
            &[DATATYPE_ELEMENTS, r4::CODING.elements],
        )?;
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
pub(crate) fn earliest_day(s: &str, latest: Date) -> Date {
    match s.len() {
        4 => Date::new(latest.year, 1, 1).unwrap_or(latest),
        7 => Date::new(latest.year, latest.month, 1).unwrap_or(latest),
        _ => latest,
    }
}

pub(crate) fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (3..=20).contains(&digits)
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'))
}

pub(crate) fn is_email(s: &str) -> bool {
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
