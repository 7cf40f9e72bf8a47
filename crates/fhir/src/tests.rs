//! Validation rules one by one, the web form, and a round-trip property over generated bundles.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::*;

const TODAY: Date = Date {
    year: 2026,
    month: 11,
    day: 24,
};

/// A name that must never appear in an error message.
const SECRET: &str = "Zebulon Quxworthy";

fn valid() -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:6f1c2a9e-0c1d-4a55-9a3e-2b8d7e0f4c11",
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "name": [{ "family": "Quxworthy", "given": ["Zebulon"] }],
                    "gender": "male",
                    "birthDate": "1984-02-29",
                    "address": [{ "line": ["1 Main St"], "city": "Springfield", "postalCode": "12345", "country": "US" }],
                    "telecom": [
                        { "system": "phone", "value": "+1 (555) 010-0199" },
                        { "system": "email", "value": "zq@example.org" }
                    ]
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "clinicalStatus": { "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active"
                    }]},
                    "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes mellitus type 2" }] },
                    "subject": { "reference": "urn:uuid:6f1c2a9e-0c1d-4a55-9a3e-2b8d7e0f4c11" },
                    "onsetDateTime": "2019-06-01T10:30:00+02:00",
                    "recordedDate": "2019-06"
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "code": { "text": "Asthma" },
                    "subject": { "reference": "Patient/p1" }
                }
            }
        ]
    })
}

fn check(v: &Value) -> Result<Bundle, ValidationErrors> {
    parse_at(&serde_json::to_vec(v).unwrap(), TODAY)
}

/// Asserts that `v` fails with exactly `rule` at `path` (among possibly others).
fn fails(v: &Value, path: &str, rule: Rule) {
    let e = check(v).expect_err("must be refused");
    assert!(
        e.errors()
            .iter()
            .any(|fe| fe.path == path && fe.rule == rule),
        "expected {path}: {rule}, got {e}"
    );
    let msg = e.to_string();
    for word in SECRET.split(' ') {
        assert!(!msg.contains(word), "error echoes personal data: {msg}");
    }
}

fn patient(v: &mut Value) -> &mut Value {
    &mut v["entry"][0]["resource"]
}

const P: &str = "entry[0].resource";

#[test]
fn the_valid_example_parses() {
    let b = check(&valid()).unwrap();
    let p = b.patient().unwrap();
    assert_eq!(p.birth_date, "1984-02-29");
    assert_eq!(p.telecom.len(), 2);
    assert_eq!(b.conditions().count(), 2);
    // Canonical bytes parse back to the same bundle.
    assert_eq!(parse_at(&b.to_json_vec(), TODAY).unwrap(), b);
}

#[test]
fn the_readme_example_parses() {
    let readme = include_str!("../README.md");
    let start = readme.find("```json\n").expect("README has a JSON example") + 8;
    let end = start + readme[start..].find("```").unwrap();
    let b = parse_at(&readme.as_bytes()[start..end], TODAY).unwrap();
    assert_eq!(b.conditions().count(), 1);
}

#[test]
fn missing_fields() {
    let mut v = valid();
    patient(&mut v).as_object_mut().unwrap().remove("birthDate");
    fails(&v, &format!("{P}.birthDate"), Rule::Missing);

    let mut v = valid();
    patient(&mut v).as_object_mut().unwrap().remove("name");
    fails(&v, &format!("{P}.name"), Rule::Missing);

    let mut v = valid();
    v["entry"][1]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("subject");
    fails(&v, "entry[1].resource.subject", Rule::Missing);

    let mut v = valid();
    v["entry"][2]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("code");
    fails(&v, "entry[2].resource.code", Rule::Missing);

    let mut v = valid();
    v.as_object_mut().unwrap().remove("type");
    fails(&v, "type", Rule::Missing);

    let mut v = valid();
    patient(&mut v)["telecom"][0]
        .as_object_mut()
        .unwrap()
        .remove("value");
    fails(&v, &format!("{P}.telecom[0].value"), Rule::Missing);
}

#[test]
fn empty_values() {
    let mut v = valid();
    patient(&mut v)["name"][0]["family"] = json!("   ");
    fails(&v, &format!("{P}.name[0].family"), Rule::Empty);

    let mut v = valid();
    patient(&mut v)["name"] = json!([]);
    fails(&v, &format!("{P}.name"), Rule::Empty);

    let mut v = valid();
    v["entry"] = json!([]);
    fails(&v, "entry", Rule::Empty);
}

#[test]
fn wrong_types() {
    let mut v = valid();
    patient(&mut v)["birthDate"] = json!(19840229);
    fails(
        &v,
        &format!("{P}.birthDate"),
        Rule::WrongType { expected: "string" },
    );

    let mut v = valid();
    patient(&mut v)["name"] = json!({ "text": SECRET });
    fails(
        &v,
        &format!("{P}.name"),
        Rule::WrongType { expected: "array" },
    );

    let mut v = valid();
    patient(&mut v)["address"][0] = json!(SECRET);
    fails(
        &v,
        &format!("{P}.address[0]"),
        Rule::WrongType { expected: "object" },
    );

    let mut v = valid();
    patient(&mut v)["name"][0]["given"] = json!([SECRET, null]);
    fails(
        &v,
        &format!("{P}.name[0].given[1]"),
        Rule::WrongType { expected: "string" },
    );

    fails(&json!([1, 2]), "", Rule::WrongType { expected: "object" });
}

#[test]
fn too_long_and_too_many() {
    let mut v = valid();
    patient(&mut v)["name"][0]["family"] = json!("Q".repeat(MAX_STRING_CHARS + 1));
    fails(
        &v,
        &format!("{P}.name[0].family"),
        Rule::TooLong {
            max: MAX_STRING_CHARS,
        },
    );

    // Exactly at the limit is fine (counted in characters, not bytes).
    let mut v = valid();
    patient(&mut v)["name"][0]["family"] = json!("é".repeat(MAX_STRING_CHARS));
    check(&v).unwrap();

    let mut v = valid();
    patient(&mut v)["name"][0]["given"] = json!(vec!["A"; MAX_ITEMS + 1]);
    fails(
        &v,
        &format!("{P}.name[0].given"),
        Rule::TooMany { max: MAX_ITEMS },
    );

    let condition = valid()["entry"][2].clone();
    let mut v = valid();
    let entries = v["entry"].as_array_mut().unwrap();
    entries.truncate(1);
    entries.extend(std::iter::repeat_n(condition, MAX_CONDITIONS));
    assert_eq!(check(&v).unwrap().conditions().count(), MAX_CONDITIONS);
    v["entry"]
        .as_array_mut()
        .unwrap()
        .push(valid()["entry"][2].clone());
    fails(
        &v,
        "entry",
        Rule::TooMany {
            max: MAX_CONDITIONS,
        },
    );
}

#[test]
fn unknown_fields_are_refused_without_naming_them() {
    let mut v = valid();
    patient(&mut v)[SECRET] = json!(1);
    fails(&v, P, Rule::UnknownFields { count: 1 });

    let mut v = valid();
    v[SECRET] = json!({});
    fails(&v, "", Rule::UnknownFields { count: 1 });

    let mut v = valid();
    v["entry"][1]["resource"]["code"]["coding"][0][SECRET] = json!("1");
    fails(
        &v,
        "entry[1].resource.code.coding[0]",
        Rule::UnknownFields { count: 1 },
    );
    // Elements of R4 that SecureEHR does not read itself are checked and kept.
    let mut v = valid();
    v["entry"][1]["resource"]["code"]["coding"][0]["version"] = json!("1");
    v["meta"] = json!({ "lastUpdated": "2024-05-01T10:00:00Z" });
    assert_eq!(check(&v).unwrap().json(), &v);
}

#[test]
fn dates() {
    let bd = format!("{P}.birthDate");
    let bad = Rule::BadDate {
        expected: "YYYY-MM-DD",
    };
    for s in [
        "1983-02-29",
        "2001-13-01",
        "2001-00-10",
        "2001-04-31",
        "01-02-2001",
        "2001-1-01",
        "2001-01-01T00:00:00Z",
        "1984-02-29 ",
    ] {
        let mut v = valid();
        patient(&mut v)["birthDate"] = json!(s);
        fails(&v, &bd, bad.clone());
    }
    let mut v = valid();
    patient(&mut v)["birthDate"] = json!("2026-11-25");
    fails(&v, &bd, Rule::FutureDate);
    let mut v = valid();
    patient(&mut v)["birthDate"] = json!("1899-12-31");
    fails(&v, &bd, Rule::TooOld);
    for ok in ["2026-11-24", "1900-01-01", "2000-02-29"] {
        let mut v = valid();
        patient(&mut v)["birthDate"] = json!(ok);
        check(&v).unwrap();
    }

    let onset = "entry[1].resource.onsetDateTime";
    for ok in [
        "2019",
        "2019-06",
        "2019-06-01",
        "2019-06-01T10:30:00Z",
        "2019-06-01T10:30:00.123-05:00",
        "2026-11-25T01:00:00+14:00",
    ] {
        let mut v = valid();
        v["entry"][1]["resource"]["onsetDateTime"] = json!(ok);
        check(&v).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "2019-06-01T10:30:00",
        "2019-06-01T25:00:00Z",
        "2019-13",
        "19",
        "2019-06-01T10:30Z",
        "2019-06-01T10:30:00+2:00",
    ] {
        let mut v = valid();
        v["entry"][1]["resource"]["onsetDateTime"] = json!(bad);
        let e = check(&v).expect_err(bad);
        assert!(e.has(onset), "{bad}: {e}");
    }
    let mut v = valid();
    v["entry"][1]["resource"]["onsetDateTime"] = json!("2027");
    fails(&v, onset, Rule::FutureDate);
    let mut v = valid();
    v["entry"][1]["resource"]["recordedDate"] = json!("1899");
    fails(&v, "entry[1].resource.recordedDate", Rule::TooOld);
}

#[test]
fn calendar() {
    assert_eq!(Date::from_unix_days(0), Date::new(1970, 1, 1).unwrap());
    assert_eq!(Date::from_unix_days(19_723), Date::new(2024, 1, 1).unwrap());
    assert_eq!(
        Date::from_unix_days(11_016),
        Date::new(2000, 2, 29).unwrap()
    );
    assert_eq!(Date::from_unix_days(-1), Date::new(1969, 12, 31).unwrap());
    assert!(Date::new(1900, 2, 29).is_none());
    assert!(Date::new(2000, 2, 29).is_some());
    assert_eq!(
        Date::new(2025, 12, 31).unwrap().succ(),
        Date::new(2026, 1, 1).unwrap()
    );
    assert_eq!(
        Date::new(2024, 2, 28).unwrap().succ(),
        Date::new(2024, 2, 29).unwrap()
    );
    assert_eq!(Date::new(2026, 1, 5).unwrap().to_string(), "2026-01-05");
    assert!(Date::today_utc().year >= 2024);
}

#[test]
fn allowed_values_and_formats() {
    let mut v = valid();
    patient(&mut v)["gender"] = json!("M");
    fails(
        &v,
        &format!("{P}.gender"),
        Rule::NotAllowed {
            expected: "male, female, other or unknown",
        },
    );

    let mut v = valid();
    patient(&mut v)["telecom"][0]["system"] = json!("fax");
    fails(
        &v,
        &format!("{P}.telecom[0].system"),
        Rule::NotAllowed {
            expected: "phone or email",
        },
    );

    let mut v = valid();
    patient(&mut v)["telecom"][0]["value"] = json!("call Zebulon");
    fails(
        &v,
        &format!("{P}.telecom[0].value"),
        Rule::BadFormat {
            expected: "a phone number (digits, spaces, + - ( ) .)",
        },
    );

    let mut v = valid();
    patient(&mut v)["telecom"][1]["value"] = json!("Zebulon at example.org");
    fails(
        &v,
        &format!("{P}.telecom[1].value"),
        Rule::BadFormat {
            expected: "an e-mail address",
        },
    );

    let mut v = valid();
    v["entry"][1]["resource"]["clinicalStatus"]["coding"][0]["code"] = json!("cured");
    let path = "entry[1].resource.clinicalStatus.coding[0].code";
    assert!(check(&v).unwrap_err().has(path));

    let mut v = valid();
    v["type"] = json!("batch");
    fails(
        &v,
        "type",
        Rule::NotAllowed {
            expected: "collection or transaction",
        },
    );
    // A transaction's entries carry their request; a collection's do not.
    let mut v = valid();
    v["type"] = json!("transaction");
    fails(&v, "entry[0].request", Rule::Missing);
    for e in v["entry"].as_array_mut().unwrap() {
        e["request"] = json!({ "method": "POST", "url": "Patient" });
    }
    assert_eq!(check(&v).unwrap().bundle_type, BundleType::Transaction);
    v["type"] = json!("collection");
    fails(
        &v,
        "entry[0].request",
        Rule::NotAllowed {
            expected: "no request in a collection bundle",
        },
    );

    let mut v = valid();
    v["resourceType"] = json!("Patient");
    fails(&v, "resourceType", Rule::NotAllowed { expected: "Bundle" });

    let mut v = valid();
    v["entry"][2]["resource"]["resourceType"] = json!("Claim");
    fails(
        &v,
        "entry[2].resource.resourceType",
        Rule::NotAllowed {
            expected: crate::walk::SUPPORTED_RESOURCES,
        },
    );

    let mut v = valid();
    patient(&mut v)["id"] = json!("p 1");
    fails(
        &v,
        &format!("{P}.id"),
        Rule::BadFormat {
            expected: "1-64 of A-Z a-z 0-9 - .",
        },
    );

    let mut v = valid();
    v["entry"][0]["fullUrl"] = json!("not a uri");
    fails(
        &v,
        "entry[0].fullUrl",
        Rule::BadFormat {
            expected: "an absolute URI",
        },
    );

    let mut v = valid();
    patient(&mut v)["name"][0]["family"] = json!("Qux\u{0007}worthy");
    fails(&v, &format!("{P}.name[0].family"), Rule::ControlCharacters);
}

#[test]
fn one_of_groups() {
    let mut v = valid();
    patient(&mut v)["name"][0] = json!({});
    fails(
        &v,
        &format!("{P}.name[0]"),
        Rule::NeedsOneOf {
            fields: "text, family, given",
        },
    );

    let mut v = valid();
    patient(&mut v)["address"][0] = json!({});
    fails(
        &v,
        &format!("{P}.address[0]"),
        Rule::NeedsOneOf {
            fields: "text, line, city, postalCode, country",
        },
    );

    let mut v = valid();
    v["entry"][2]["resource"]["code"] = json!({});
    fails(
        &v,
        "entry[2].resource.code",
        Rule::NeedsOneOf {
            fields: "text, coding",
        },
    );

    let mut v = valid();
    v["entry"][1]["resource"]["code"]["coding"][0] = json!({ "system": "http://snomed.info/sct" });
    fails(
        &v,
        "entry[1].resource.code.coding[0]",
        Rule::NeedsOneOf {
            fields: "code, display",
        },
    );
}

#[test]
fn bundle_structure() {
    let mut v = valid();
    let p = v["entry"][0].clone();
    v["entry"].as_array_mut().unwrap().push(p);
    fails(&v, "entry[3].resource", Rule::DuplicatePatient);

    let mut v = valid();
    v["entry"].as_array_mut().unwrap().remove(0);
    fails(&v, "entry", Rule::NoPatient);

    let mut v = valid();
    v["entry"][2]["resource"]["subject"]["reference"] = json!("Patient/p2");
    fails(
        &v,
        "entry[2].resource.subject.reference",
        Rule::UnresolvedReference,
    );

    // The Patient may come after the Conditions that reference it.
    let mut v = valid();
    v["entry"].as_array_mut().unwrap().rotate_left(1);
    check(&v).unwrap();
}

#[test]
fn body_limits_and_syntax() {
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let e = parse_at(&big, TODAY).unwrap_err();
    assert_eq!(
        e.errors()[0].rule,
        Rule::BodyTooLarge {
            max: MAX_BODY_BYTES
        }
    );

    let e = parse_at(format!("{{\"resourceType\": \"{SECRET}").as_bytes(), TODAY).unwrap_err();
    assert!(
        matches!(e.errors()[0].rule, Rule::MalformedJson { line: 1, .. }),
        "{e}"
    );
    assert!(!e.to_string().contains("Zebulon"));
}

#[test]
fn many_errors_are_capped() {
    let mut v = valid();
    patient(&mut v)["name"] = json!(vec![json!({}); MAX_ITEMS]);
    patient(&mut v)["address"] = json!(vec![json!({}); MAX_ITEMS]);
    patient(&mut v)["telecom"] = json!(vec![json!({}); MAX_ITEMS]);
    let e = check(&v).unwrap_err();
    assert_eq!(e.errors().len(), MAX_ERRORS);
    assert!(e.omitted() > 0);
    assert!(
        e.to_string()
            .ends_with(&format!("and {} more", e.omitted()))
    );
}

#[test]
fn serde_deserialize_validates() {
    let b: Bundle = serde_json::from_value(valid()).unwrap();
    assert_eq!(b, check(&valid()).unwrap());
    let mut v = valid();
    patient(&mut v)["birthDate"] = json!("1984-02-30");
    let e = serde_json::from_value::<Bundle>(v).unwrap_err().to_string();
    assert!(e.contains("entry[0].resource.birthDate"), "{e}");
}

#[test]
fn debug_output_is_redacted() {
    let b = check(&valid()).unwrap();
    let dbg = format!("{b:?} {:?} {:?}", b.entry[0], b.entry[1]);
    assert!(
        !dbg.contains("Zebulon") && !dbg.contains("Diabetes"),
        "{dbg}"
    );
    let form = RecordForm {
        patient_name: SECRET.into(),
        ..Default::default()
    };
    assert!(!format!("{form:?}").contains("Zebulon"));
}

#[test]
fn form_builds_a_valid_bundle() {
    let form = RecordForm {
        patient_name: format!("  {SECRET} "),
        birth_date: "1990-05-17".into(),
        address: "1 Main St, Springfield".into(),
        phone: "+44 20 7946 0958".into(),
        health_condition: "Hypertension".into(),
    };
    let b = form.to_bundle(TODAY).unwrap();
    let p = b.patient().unwrap();
    assert_eq!(p.name[0].text.as_deref(), Some(SECRET));
    assert_eq!(p.telecom[0].system, TelecomSystem::Phone);
    let c: Vec<_> = b.conditions().collect();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].code.text.as_deref(), Some("Hypertension"));
    assert_eq!(c[0].subject.reference, format!("Patient/{FORM_PATIENT_ID}"));
    // What the form produced is what the upload path accepts.
    assert_eq!(parse_at(&b.to_json_vec(), TODAY).unwrap(), b);

    // Optional fields may be blank.
    let minimal = RecordForm {
        patient_name: "A B".into(),
        birth_date: "1990-05-17".into(),
        ..Default::default()
    };
    let b = minimal.to_bundle(TODAY).unwrap();
    assert_eq!(b.conditions().count(), 0);
    assert!(b.patient().unwrap().address.is_empty());
}

#[test]
fn form_errors_name_form_fields() {
    let form = RecordForm {
        patient_name: " ".into(),
        birth_date: "17/05/1990".into(),
        address: "x".repeat(MAX_STRING_CHARS + 1),
        phone: "ask Zebulon".into(),
        health_condition: "ok".into(),
    };
    let e = form.to_bundle(TODAY).unwrap_err();
    for field in ["patient_name", "birth_date", "address", "phone"] {
        assert!(e.has(field), "{field} missing in {e}");
    }
    assert!(!e.to_string().contains("Zebulon"));
    let form = RecordForm {
        patient_name: "A B".into(),
        birth_date: "1990-05-17".into(),
        health_condition: "x".repeat(MAX_STRING_CHARS + 1),
        ..Default::default()
    };
    assert!(form.to_bundle(TODAY).unwrap_err().has("health_condition"));
}

// ---------------------------------------------------------------------------------------
// Property: every generated valid bundle survives JSON and validation unchanged.
// ---------------------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    "[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ0-9 ',.-]{0,30}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn date() -> impl Strategy<Value = String> {
    (1900u16..=2026, 1u8..=12, 1u8..=28)
        .prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
        .prop_filter("not after today", |d| *d <= TODAY)
        .prop_map(|d| d.to_string())
}

fn human_name() -> impl Strategy<Value = HumanName> {
    (
        opt_text(),
        opt_text(),
        proptest::collection::vec(text(), 0..3),
    )
        .prop_filter("one field", |(t, f, g)| {
            t.is_some() || f.is_some() || !g.is_empty()
        })
        .prop_map(|(text, family, given)| HumanName {
            text,
            family,
            given,
        })
}

fn address() -> impl Strategy<Value = Address> {
    (
        opt_text(),
        proptest::collection::vec(text(), 0..3),
        opt_text(),
        proptest::option::of("[0-9A-Z]{3,8}"),
        opt_text(),
    )
        .prop_filter("one field", |(t, l, c, p, k)| {
            t.is_some() || !l.is_empty() || c.is_some() || p.is_some() || k.is_some()
        })
        .prop_map(|(text, line, city, postal_code, country)| Address {
            text,
            line,
            city,
            postal_code,
            country,
        })
}

fn contact() -> impl Strategy<Value = ContactPoint> {
    prop_oneof![
        "\\+?[0-9]{3,12}".prop_map(|value| ContactPoint {
            system: TelecomSystem::Phone,
            value
        }),
        "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(|value| ContactPoint {
            system: TelecomSystem::Email,
            value
        }),
    ]
}

fn gender() -> impl Strategy<Value = Option<Gender>> {
    proptest::option::of(prop_oneof![
        Just(Gender::Male),
        Just(Gender::Female),
        Just(Gender::Other),
        Just(Gender::Unknown)
    ])
}

fn coding() -> impl Strategy<Value = Coding> {
    (
        proptest::option::of("https?://[a-z]{1,10}\\.org/[a-z]{1,8}"),
        proptest::option::of("[A-Z0-9]{1,8}"),
        opt_text(),
    )
        .prop_filter("code or display", |(_, c, d)| c.is_some() || d.is_some())
        .prop_map(|(system, code, display)| Coding {
            system,
            code,
            display,
        })
}

fn condition() -> impl Strategy<Value = Condition> {
    (
        proptest::collection::vec(coding(), 0..3),
        opt_text(),
        proptest::option::of(proptest::sample::select(CLINICAL_STATUS_CODES.to_vec())),
        proptest::option::of(date()),
        proptest::option::of(date()),
    )
        .prop_filter("text or coding", |(c, t, ..)| !c.is_empty() || t.is_some())
        .prop_map(|(coding, text, status, onset, recorded)| Condition {
            id: None,
            clinical_status: status.map(|code| CodeableConcept {
                coding: vec![Coding {
                    system: Some(CLINICAL_STATUS_SYSTEM.into()),
                    code: Some(code.into()),
                    display: None,
                }],
                text: None,
            }),
            code: CodeableConcept { coding, text },
            subject: Reference {
                reference: "Patient/p1".into(),
            },
            onset_date_time: onset,
            recorded_date: recorded,
        })
}

fn bundle() -> impl Strategy<Value = Bundle> {
    (
        proptest::collection::vec(human_name(), 1..3),
        gender(),
        date(),
        proptest::collection::vec(address(), 0..3),
        proptest::collection::vec(contact(), 0..3),
        proptest::collection::vec(condition(), 0..5),
    )
        .prop_map(|(name, gender, birth_date, address, telecom, conditions)| {
            Bundle::new(
                Patient {
                    id: Some("p1".into()),
                    name,
                    gender,
                    birth_date,
                    address,
                    telecom,
                },
                conditions,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn valid_bundles_round_trip(b in bundle()) {
        let bytes = b.to_json_vec();
        let back = parse_at(&bytes, TODAY).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &b);
        prop_assert_eq!(back.to_json_vec(), bytes);
    }

    #[test]
    fn errors_never_echo_values(b in bundle(), junk in "[A-Za-z]{12,20}") {
        // Put the same marker into a field in several broken ways.
        let mut v = serde_json::to_value(&b).unwrap();
        v["entry"][0]["resource"]["birthDate"] = json!(junk.clone());
        v["entry"][0]["resource"]["gender"] = json!(junk.clone());
        v["entry"][0]["resource"]["telecom"] = json!([{ "system": "phone", "value": junk.clone() }]);
        v["entry"][0]["resource"][junk.as_str()] = json!(junk.clone());
        let e = check(&v).unwrap_err();
        prop_assert!(!e.to_string().contains(&junk), "{}", e);
    }

    #[test]
    fn arbitrary_dates_never_panic(s in "\\PC{0,40}", t in "[0-9T:+Z.-]{0,30}") {
        for value in [&s, &t] {
            let mut v = valid();
            v["entry"][0]["resource"]["birthDate"] = json!(value);
            v["entry"][1]["resource"]["onsetDateTime"] = json!(value);
            let _ = check(&v);
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_at(&body, TODAY);
    }
}
