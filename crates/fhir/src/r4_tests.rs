//! The R4 content of a record: the resources and elements of the R4 tables are accepted and
//! kept as given; what breaks them is refused with its path.

use serde_json::{Value, json};

use crate::*;

const TODAY: Date = Date {
    year: 2025,
    month: 6,
    day: 1,
};

fn rich() -> Value {
    serde_json::from_str(include_str!("../testdata/rich-bundle.json")).unwrap()
}

fn check(v: &Value) -> Result<Bundle, ValidationErrors> {
    validate_value(v, TODAY)
}

/// The entry holding resource `id`.
fn res<'a>(v: &'a mut Value, id: &str) -> &'a mut Value {
    v["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|e| &mut e["resource"])
        .find(|r| r["id"] == id)
        .unwrap()
}

fn fails(v: &Value, path: &str, rule: Rule) {
    let e = check(v).unwrap_err();
    assert!(
        e.errors().iter().any(|f| f.path == path && f.rule == rule),
        "expected {path}: {rule}, got {e}"
    );
}

#[test]
fn a_rich_bundle_is_accepted_and_kept_whole() {
    let v = rich();
    let b = check(&v).unwrap();
    // Kept as given: meta, narrative, extensions, identifiers, contained, `_birthDate`.
    assert_eq!(b.json(), &v);
    assert_eq!(serde_json::to_value(&b).unwrap(), v);
    let back = parse_at(&b.to_json_vec(), TODAY).unwrap();
    assert_eq!(back, b);
    let types: Vec<&str> = b.resources().map(|(t, _)| t).collect();
    for t in [
        "Patient",
        "Practitioner",
        "Organization",
        "Encounter",
        "Condition",
        "Observation",
        "DiagnosticReport",
        "AllergyIntolerance",
        "MedicationStatement",
        "MedicationRequest",
        "Immunization",
        "Procedure",
    ] {
        assert!(types.contains(&t), "{t}");
    }
    // The typed view reads what the form shows.
    let form = RecordForm::from_bundle(&b).unwrap();
    assert_eq!(form.patient_name, "Jane Doe");
    assert_eq!(form.health_condition, "Hypertension");
    // The narrative is kept as text: nothing here renders it.
    assert!(b.to_json_vec().windows(8).any(|w| w == b"<script>"));
}

#[test]
fn modifier_extensions_are_refused_anywhere() {
    let ext = json!([{ "url": "http://example.org/not-really", "valueBoolean": true }]);
    let mut v = rich();
    res(&mut v, "bp1")["modifierExtension"] = ext.clone();
    fails(
        &v,
        "entry[5].resource.modifierExtension",
        Rule::ModifierExtension,
    );
    let mut v = rich();
    res(&mut v, "bp1")["component"][0]["modifierExtension"] = ext.clone();
    fails(
        &v,
        "entry[5].resource.component[0].modifierExtension",
        Rule::ModifierExtension,
    );
    let mut v = rich();
    res(&mut v, "p1")["modifierExtension"] = ext;
    fails(
        &v,
        "entry[0].resource.modifierExtension",
        Rule::ModifierExtension,
    );
}

#[test]
fn references_resolve_within_the_bundle() {
    // Every resource's subject or patient is the bundle's Patient.
    let mut v = rich();
    res(&mut v, "hba1c")["subject"]["reference"] = json!("Patient/someone-else");
    fails(
        &v,
        "entry[6].resource.subject.reference",
        Rule::UnresolvedReference,
    );
    let mut v = rich();
    res(&mut v, "a1")["patient"]["reference"] = json!("Practitioner/dr1");
    fails(
        &v,
        "entry[9].resource.patient.reference",
        Rule::UnresolvedReference,
    );
    // Others name an entry (by Type/id, fullUrl, or the tail of an absolute fullUrl) or a
    // contained resource (#id).
    let mut v = rich();
    res(&mut v, "dr-lab")["result"][0]["reference"] = json!("Observation/missing");
    fails(
        &v,
        "entry[8].resource.result[0].reference",
        Rule::Unresolved,
    );
    let mut v = rich();
    res(&mut v, "hba1c")["performer"][0]["reference"] = json!("#elsewhere");
    fails(
        &v,
        "entry[6].resource.performer[0].reference",
        Rule::Unresolved,
    );
    let mut v = rich();
    res(&mut v, "mr1")["requester"]["reference"] =
        json!("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999999999");
    fails(
        &v,
        "entry[11].resource.requester.reference",
        Rule::Unresolved,
    );
    // A reference with only a display is fine.
    let mut v = rich();
    res(&mut v, "mr1")["requester"] = json!({ "display": "Dr. House" });
    check(&v).unwrap();
    let mut v = rich();
    res(&mut v, "mr1")["requester"] = json!({ "type": "Practitioner" });
    fails(
        &v,
        "entry[11].resource.requester",
        Rule::NeedsOneOf {
            fields: "reference, identifier, display",
        },
    );
}

#[test]
fn elements_are_checked_against_r4() {
    let mut v = rich();
    res(&mut v, "bp1")["status"] = json!("done");
    fails(
        &v,
        "entry[5].resource.status",
        Rule::NotAllowed {
            expected: "a code of the value set this element is bound to",
        },
    );
    let mut v = rich();
    res(&mut v, "bp1").as_object_mut().unwrap().remove("code");
    fails(&v, "entry[5].resource.code", Rule::Missing);
    let mut v = rich();
    res(&mut v, "ms1")
        .as_object_mut()
        .unwrap()
        .remove("medicationCodeableConcept");
    fails(&v, "entry[10].resource.medication[x]", Rule::Missing);
    let mut v = rich();
    res(&mut v, "hba1c")["valueString"] = json!("6.9 %");
    fails(&v, "entry[6].resource.value[x]", Rule::ChoiceTwice);
    let mut v = rich();
    res(&mut v, "hba1c")["valueQuantity"]["value"] = json!("6.9");
    fails(
        &v,
        "entry[6].resource.valueQuantity.value",
        Rule::WrongType { expected: "number" },
    );
    let mut v = rich();
    res(&mut v, "hba1c")["valueBoolean2"] = json!(true);
    fails(&v, "entry[6].resource", Rule::UnknownFields { count: 1 });
    let mut v = rich();
    res(&mut v, "hba1c")["issued"] = json!("2024-04-30");
    fails(
        &v,
        "entry[6].resource.issued",
        Rule::BadDate {
            expected: "YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm)",
        },
    );
    let mut v = rich();
    res(&mut v, "bp1")["category"] = json!([]);
    fails(&v, "entry[5].resource.category", Rule::Empty);
    let mut v = rich();
    res(&mut v, "imm1")["protocolApplied"][0]["doseNumberPositiveInt"] = json!(0);
    fails(
        &v,
        "entry[12].resource.protocolApplied[0].doseNumberPositiveInt",
        Rule::BadFormat {
            expected: "a positive integer",
        },
    );
    // An extension has a value or nested extensions, not both.
    let mut v = rich();
    res(&mut v, "p1")["extension"][1]["valueString"] = json!("x");
    fails(&v, "entry[0].resource.extension[1]", Rule::ExtensionValue);
    // The narrative is an XHTML div.
    let mut v = rich();
    res(&mut v, "p1")["text"]["div"] = json!("Jane");
    fails(
        &v,
        "entry[0].resource.text.div",
        Rule::BadFormat {
            expected: "an XHTML <div> element",
        },
    );
    // Contained resources are of the supported types, with an id and no contained.
    let mut v = rich();
    res(&mut v, "hba1c")["contained"][0]["contained"] = json!([]);
    fails(
        &v,
        "entry[6].resource.contained[0].contained",
        Rule::NestedContained,
    );
}

#[test]
fn errors_in_r4_content_never_echo_values() {
    let marker = "ZqxwvMarkerValue";
    let mut v = rich();
    res(&mut v, "bp1")["status"] = json!(marker);
    res(&mut v, "hba1c")["issued"] = json!(marker);
    res(&mut v, "hba1c")[marker] = json!(marker);
    res(&mut v, "mr1")["requester"]["reference"] = json!(marker);
    let e = check(&v).unwrap_err();
    assert!(e.errors().len() >= 4, "{e}");
    assert!(!e.to_string().contains(marker), "{e}");
}
