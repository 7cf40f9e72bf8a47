//! The table-driven half of the validator: checks JSON against the R4 element tables of
//! [`crate::r4`] (types, cardinality, required codes, choice types, primitive extensions
//! `_name`), refuses every `modifierExtension` (FHIR requires refusing one that is not
//! understood, and SecureEHR understands none), and collects every `Reference.reference` so
//! the bundle can resolve it. Values are checked, never copied into errors.

use serde_json::{Map, Value};

use crate::check::{FoundRef, Validator, Walked, index, join};
use crate::r4::{self, Complex, El, Prim, Ty};
use crate::*;

/// The longest `markdown` or `xhtml` string, in characters.
pub const MAX_TEXT_CHARS: usize = 64 * 1024;
/// The most items in a list checked against the R4 tables (the body limit bounds them too).
pub const MAX_LIST: usize = 1000;
/// How deep `contained` resources and nested extensions may go.
const MAX_DEPTH: usize = 8;

impl Validator {
    /// Checks the keys of `obj` that `elements` name (others are left to the caller, which
    /// lists them in `handled`); reports unknown keys (not naming them) unless `handled`
    /// covers them.
    pub(crate) fn walk_elements(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        elements: &[&[El]],
        handled: &[&str],
        walked: &mut Walked,
        depth: usize,
    ) {
        let mut unknown = 0;
        for (key, value) in obj {
            if handled.contains(&key.as_str()) {
                continue;
            }
            if key == "modifierExtension" {
                self.err(join(path, key), Rule::ModifierExtension);
                continue;
            }
            if let Some(base) = key.strip_prefix('_') {
                // A primitive's id and extensions (`_birthDate`), beside or instead of it.
                match find(elements, base) {
                    Some((el, Ty::Prim(_))) => {
                        self.primitive_extras(value, &join(path, key), el.many, walked, depth)
                    }
                    _ => unknown += 1,
                }
                continue;
            }
            let Some((el, ty)) = find(elements, key) else {
                unknown += 1;
                continue;
            };
            let kpath = join(path, key);
            if el.many {
                let Some(items) = value.as_array() else {
                    self.err(kpath, Rule::WrongType { expected: "array" });
                    continue;
                };
                if items.is_empty() {
                    self.err(kpath, Rule::Empty);
                    continue;
                }
                if items.len() > MAX_LIST {
                    self.err(kpath, Rule::TooMany { max: MAX_LIST });
                    continue;
                }
                for (i, item) in items.iter().enumerate() {
                    self.value(item, &index(&kpath, i), ty, el.codes, walked, depth);
                }
            } else {
                self.value(value, &kpath, ty, el.codes, walked, depth);
            }
        }
        if unknown > 0 {
            self.err(path.to_owned(), Rule::UnknownFields { count: unknown });
        }
        for list in elements {
            for el in *list {
                if !el.required {
                    continue;
                }
                let present = match el.ty {
                    Ty::Choice(types) => types
                        .iter()
                        .any(|(suffix, _)| obj.contains_key(&format!("{}{suffix}", el.name))),
                    _ => obj.contains_key(el.name) || obj.contains_key(&format!("_{}", el.name)),
                };
                if !present {
                    let name = match el.ty {
                        Ty::Choice(_) => format!("{}[x]", el.name),
                        _ => el.name.to_owned(),
                    };
                    self.err(join(path, &name), Rule::Missing);
                }
            }
        }
        // One type of a choice at most.
        for list in elements {
            for el in *list {
                if let Ty::Choice(types) = el.ty {
                    let n = types
                        .iter()
                        .filter(|(suffix, _)| obj.contains_key(&format!("{}{suffix}", el.name)))
                        .count();
                    if n > 1 {
                        self.err(join(path, &format!("{}[x]", el.name)), Rule::ChoiceTwice);
                    }
                }
            }
        }
    }

    /// A whole resource of definition `def` (its `resourceType` checked by the caller).
    pub(crate) fn walk_resource(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        elements: &[El],
        walked: &mut Walked,
        depth: usize,
    ) {
        self.walk_elements(
            obj,
            path,
            &[r4::RESOURCE_ELEMENTS, elements],
            &["resourceType"],
            walked,
            depth,
        );
    }

    fn value(
        &mut self,
        value: &Value,
        path: &str,
        ty: Ty,
        codes: Option<&'static [&'static str]>,
        walked: &mut Walked,
        depth: usize,
    ) {
        match ty {
            Ty::Prim(p) => self.primitive(value, path, p, codes),
            Ty::Complex(c) => self.complex(value, path, c, walked, depth),
            Ty::Reference => {
                let Some(obj) = value.as_object() else {
                    self.err(path.to_owned(), Rule::WrongType { expected: "object" });
                    return;
                };
                self.walk_elements(
                    obj,
                    path,
                    &[DATATYPE_ELEMENTS, r4::REFERENCE_TYPE.elements],
                    &[],
                    walked,
                    depth,
                );
                if let Some(reference) = obj.get("reference").and_then(Value::as_str) {
                    walked.refs.push(FoundRef {
                        path: join(path, "reference"),
                        reference: reference.to_owned(),
                    });
                } else if !obj.contains_key("display") && !obj.contains_key("identifier") {
                    self.err(
                        path.to_owned(),
                        Rule::NeedsOneOf {
                            fields: "reference, identifier, display",
                        },
                    );
                }
            }
            Ty::Resource => self.contained(value, path, walked, depth),
            Ty::Choice(_) => unreachable!("find resolves a choice to one of its types"),
        }
    }

    fn complex(
        &mut self,
        value: &Value,
        path: &str,
        c: &'static Complex,
        walked: &mut Walked,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            self.err(path.to_owned(), Rule::TooDeep { max: MAX_DEPTH });
            return;
        }
        let Some(obj) = value.as_object() else {
            self.err(path.to_owned(), Rule::WrongType { expected: "object" });
            return;
        };
        if obj.is_empty() {
            self.err(path.to_owned(), Rule::Empty);
            return;
        }
        self.walk_elements(
            obj,
            path,
            &[DATATYPE_ELEMENTS, c.elements],
            &[],
            walked,
            depth + 1,
        );
        if std::ptr::eq(c, &r4::EXTENSION) {
            let has_value = obj.keys().any(|k| k.starts_with("value"));
            if has_value == obj.contains_key("extension") {
                self.err(path.to_owned(), Rule::ExtensionValue);
            }
        }
    }

    /// A contained resource: one of the types a record holds, no `contained` of its own.
    fn contained(&mut self, value: &Value, path: &str, walked: &mut Walked, depth: usize) {
        let Some(obj) = value.as_object() else {
            self.err(path.to_owned(), Rule::WrongType { expected: "object" });
            return;
        };
        let rt = obj.get("resourceType").and_then(Value::as_str);
        let Some(def) = rt.and_then(r4::resource) else {
            self.err(
                join(path, "resourceType"),
                Rule::NotAllowed {
                    expected: SUPPORTED_CONTAINED,
                },
            );
            return;
        };
        match obj.get("id").and_then(Value::as_str) {
            Some(id) => walked.contained.push(id.to_owned()),
            None => self.err(join(path, "id"), Rule::Missing),
        }
        if obj.contains_key("contained") {
            self.err(join(path, "contained"), Rule::NestedContained);
        }
        // Its references resolve like the container's (`#id` means the container's own).
        let mut inner = Walked::default();
        self.walk_resource(obj, path, def.elements, &mut inner, depth + 1);
        walked.refs.extend(inner.refs);
    }

    fn primitive_extras(
        &mut self,
        value: &Value,
        path: &str,
        many: bool,
        walked: &mut Walked,
        depth: usize,
    ) {
        let one = |v: &mut Self, item: &Value, p: &str, walked: &mut Walked| {
            if item.is_null() && many {
                return;
            }
            match item.as_object() {
                Some(obj) => v.walk_elements(obj, p, &[DATATYPE_ELEMENTS], &[], walked, depth + 1),
                None => v.err(p.to_owned(), Rule::WrongType { expected: "object" }),
            }
        };
        match (many, value.as_array()) {
            (true, Some(items)) => {
                for (i, item) in items.iter().enumerate() {
                    one(self, item, &index(path, i), walked);
                }
            }
            (true, None) => self.err(path.to_owned(), Rule::WrongType { expected: "array" }),
            (false, _) => one(self, value, path, walked),
        }
    }

    fn primitive(
        &mut self,
        value: &Value,
        path: &str,
        p: Prim,
        codes: Option<&'static [&'static str]>,
    ) {
        let path = path.to_owned();
        match p {
            Prim::Boolean => {
                if !value.is_boolean() {
                    self.err(
                        path,
                        Rule::WrongType {
                            expected: "boolean",
                        },
                    );
                }
            }
            Prim::Integer | Prim::PositiveInt | Prim::UnsignedInt => {
                let Some(n) = value.as_i64().filter(|n| i32::try_from(*n).is_ok()) else {
                    self.err(
                        path,
                        Rule::WrongType {
                            expected: "integer",
                        },
                    );
                    return;
                };
                let min = match p {
                    Prim::PositiveInt => 1,
                    Prim::UnsignedInt => 0,
                    _ => i64::from(i32::MIN),
                };
                if n < min {
                    self.err(
                        path,
                        Rule::BadFormat {
                            expected: if min == 1 {
                                "a positive integer"
                            } else {
                                "an integer of 0 or more"
                            },
                        },
                    );
                }
            }
            Prim::Decimal => {
                if !value.is_number() {
                    self.err(path, Rule::WrongType { expected: "number" });
                }
            }
            Prim::Str => {
                self.string(value, path);
            }
            Prim::Markdown | Prim::Xhtml | Prim::Base64 => {
                let Some(s) = value.as_str() else {
                    self.err(path, Rule::WrongType { expected: "string" });
                    return;
                };
                let max = if p == Prim::Base64 {
                    MAX_BODY_BYTES
                } else {
                    MAX_TEXT_CHARS
                };
                if s.trim().is_empty() {
                    self.err(path, Rule::Empty);
                } else if s.chars().count() > max {
                    self.err(path, Rule::TooLong { max });
                } else if p == Prim::Base64 && !is_base64(s) {
                    self.err(path, Rule::BadFormat { expected: "base64" });
                } else if p == Prim::Xhtml && !s.trim_start().starts_with("<div") {
                    self.err(
                        path,
                        Rule::BadFormat {
                            expected: "an XHTML <div> element",
                        },
                    );
                } else if s
                    .chars()
                    .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                {
                    self.err(path, Rule::ControlCharacters);
                }
            }
            Prim::Code => {
                let Some(s) = self.string(value, path.clone()) else {
                    return;
                };
                if s.trim() != s || s.contains("  ") || s.contains(['\n', '\r', '\t']) {
                    self.err(
                        path,
                        Rule::BadFormat {
                            expected: "a code: no leading, trailing or repeated whitespace",
                        },
                    );
                } else if let Some(codes) = codes
                    && !codes.contains(&s.as_str())
                {
                    self.err(
                        path,
                        Rule::NotAllowed {
                            expected: "a code of the value set this element is bound to",
                        },
                    );
                }
            }
            Prim::Id => {
                let Some(s) = self.string(value, path.clone()) else {
                    return;
                };
                if !is_id(&s) {
                    self.err(
                        path,
                        Rule::BadFormat {
                            expected: "1-64 of A-Z a-z 0-9 - .",
                        },
                    );
                }
            }
            Prim::Uri => {
                let Some(s) = self.string(value, path.clone()) else {
                    return;
                };
                if s.chars().any(char::is_whitespace) {
                    self.err(path, Rule::BadFormat { expected: "a URI" });
                }
            }
            Prim::Date | Prim::DateTime | Prim::Instant => {
                let Some(s) = self.string(value, path.clone()) else {
                    return;
                };
                let ok = match p {
                    Prim::Date => s.len() <= 10 && crate::date::parse_date_time(&s).is_some(),
                    Prim::Instant => s.len() > 10 && crate::date::parse_date_time(&s).is_some(),
                    _ => crate::date::parse_date_time(&s).is_some(),
                };
                if !ok {
                    let expected = match p {
                        Prim::Date => "YYYY, YYYY-MM or YYYY-MM-DD",
                        Prim::Instant => "YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm)",
                        _ => "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz",
                    };
                    self.err(path, Rule::BadDate { expected });
                }
            }
            Prim::Time => {
                let Some(s) = self.string(value, path.clone()) else {
                    return;
                };
                if !is_time(&s) {
                    self.err(
                        path,
                        Rule::BadFormat {
                            expected: "hh:mm:ss",
                        },
                    );
                }
            }
        }
    }
}

/// `id` and `extension`: what every element may carry.
pub(crate) const DATATYPE_ELEMENTS: &[El] = &[
    El {
        name: "id",
        ty: Ty::Prim(Prim::Str),
        required: false,
        many: false,
        codes: None,
    },
    El {
        name: "extension",
        ty: Ty::Complex(&r4::EXTENSION),
        required: false,
        many: true,
        codes: None,
    },
];

/// The element `key` names in `elements` and its type (a choice resolved by its suffix).
fn find(elements: &[&[El]], key: &str) -> Option<(El, Ty)> {
    for list in elements {
        for el in *list {
            match el.ty {
                Ty::Choice(types) => {
                    if let Some(suffix) = key.strip_prefix(el.name)
                        && let Some((_, ty)) = types.iter().find(|(s, _)| *s == suffix)
                    {
                        return Some((*el, *ty));
                    }
                }
                ty if el.name == key => return Some((*el, ty)),
                _ => {}
            }
        }
    }
    None
}

/// The resource types a bundle may hold, for messages.
pub(crate) const SUPPORTED_RESOURCES: &str = "Patient, Condition, Observation, AllergyIntolerance, MedicationStatement, MedicationRequest, Immunization, Procedure, DiagnosticReport, Encounter, Practitioner, Organization, Provenance or DocumentReference";

/// The types `contained` may hold, for messages.
pub(crate) const SUPPORTED_CONTAINED: &str = "Observation, AllergyIntolerance, MedicationStatement, MedicationRequest, Immunization, Procedure, DiagnosticReport, Encounter, Practitioner, Organization or DocumentReference";

pub(crate) fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b[2] == b':'
        && b[5] == b':'
        && crate::date::digits(&b[..2]).is_some_and(|h| h <= 23)
        && crate::date::digits(&b[3..5]).is_some_and(|m| m <= 59)
        && crate::date::digits(&b[6..8]).is_some_and(|s| s <= 60)
        && (b.len() == 8 || (b[8] == b'.' && b.len() > 9 && crate::date::digits(&b[9..]).is_some()))
}

fn is_base64(s: &str) -> bool {
    let t: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    t.len().is_multiple_of(4)
        && t.iter().enumerate().all(|(i, &c)| {
            c.is_ascii_alphanumeric()
                || c == b'+'
                || c == b'/'
                || (c == b'=' && i >= t.len().saturating_sub(2))
        })
}
