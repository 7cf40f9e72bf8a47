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

/// A DocumentReference using every R4 element, about the rich bundle's Patient.
fn document_reference() -> Value {
    json!({ "resource": {
        "resourceType": "DocumentReference", "id": "doc1",
        "masterIdentifier": { "system": "urn:ietf:rfc:3986", "value": "urn:oid:1.3.6.1.4.1.21367.2005.3.7" },
        "identifier": [{ "system": "urn:secure-ehr:attachment", "value": "1" }],
        "status": "current",
        "docStatus": "final",
        "type": { "coding": [{ "system": "http://loinc.org", "code": "11502-2", "display": "Laboratory report" }] },
        "category": [{ "text": "Lab" }],
        "subject": { "reference": "Patient/p1" },
        "date": "2024-05-02T09:30:00Z",
        "author": [{ "reference": "Practitioner/dr1" }, { "reference": "Organization/org1" }],
        "authenticator": { "reference": "Practitioner/dr1" },
        "custodian": { "reference": "Organization/org1" },
        "relatesTo": [{ "code": "appends", "target": { "reference": "DiagnosticReport/dr-lab" } }],
        "description": "HbA1c report, scanned",
        "securityLabel": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N" }] }],
        "content": [{
            "attachment": {
                "contentType": "application/pdf",
                "language": "en",
                "url": "/api/records/5/attachments/1",
                "size": 48213,
                "title": "hba1c.pdf",
                "creation": "2024-05-02T09:30:00Z",
                "extension": [{ "url": "urn:secure-ehr:sha256", "valueString": "00ff" }]
            },
            "format": { "system": "http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient" }
        }],
        "context": {
            "encounter": [{ "reference": "Encounter/enc1" }],
            "event": [{ "text": "Diabetes review" }],
            "period": { "start": "2024-04-30T15:00:00Z", "end": "2024-05-02T09:30:00Z" },
            "facilityType": { "text": "Clinic" },
            "practiceSetting": { "text": "General practice" },
            "sourcePatientInfo": { "reference": "Patient/p1" },
            "related": [{ "reference": "Observation/hba1c" }]
        }
    } })
}

/// The rich bundle with `doc` appended, and the path of its resource.
fn with_document(doc: Value) -> (Value, String) {
    let mut v = rich();
    let entries = v["entry"].as_array_mut().unwrap();
    entries.push(doc);
    let path = format!("entry[{}].resource", entries.len() - 1);
    (v, path)
}

#[test]
fn a_document_reference_is_accepted_with_every_r4_element() {
    let (v, _) = with_document(document_reference());
    let b = check(&v).unwrap();
    assert_eq!(b.json(), &v, "kept whole");
    assert!(
        b.resources()
            .any(|r| r == ("DocumentReference", Some("doc1")))
    );
    // The least R4 allows: a status and one attachment.
    let (v, _) = with_document(json!({ "resource": {
        "resourceType": "DocumentReference", "status": "current",
        "content": [{ "attachment": { "contentType": "image/png", "url": "/api/records/5/attachments/2" } }]
    } }));
    check(&v).unwrap();
}

#[test]
fn document_references_are_checked_against_r4() {
    let edit = |f: fn(&mut Value)| {
        let mut doc = document_reference();
        f(&mut doc["resource"]);
        with_document(doc)
    };
    let code = || Rule::NotAllowed {
        expected: "a code of the value set this element is bound to",
    };
    let (v, p) = edit(|r| {
        r.as_object_mut().unwrap().remove("content");
    });
    fails(&v, &format!("{p}.content"), Rule::Missing);
    let (v, p) = edit(|r| {
        r.as_object_mut().unwrap().remove("status");
    });
    fails(&v, &format!("{p}.status"), Rule::Missing);
    let (v, p) = edit(|r| r["status"] = json!("final"));
    fails(&v, &format!("{p}.status"), code());
    let (v, p) = edit(|r| r["docStatus"] = json!("current"));
    fails(&v, &format!("{p}.docStatus"), code());
    let (v, p) = edit(|r| r["fileName"] = json!("hba1c.pdf"));
    fails(&v, &p, Rule::UnknownFields { count: 1 });
    let (v, p) = edit(|r| r["content"][0]["attachment"]["sha256"] = json!("00ff"));
    fails(
        &v,
        &format!("{p}.content[0].attachment"),
        Rule::UnknownFields { count: 1 },
    );
    let (v, p) = edit(|r| r["content"] = json!([]));
    fails(&v, &format!("{p}.content"), Rule::Empty);
    let (v, p) = edit(|r| r["content"] = r["content"][0].clone());
    fails(
        &v,
        &format!("{p}.content"),
        Rule::WrongType { expected: "array" },
    );
    let (v, p) = edit(|r| {
        r["content"][0]
            .as_object_mut()
            .unwrap()
            .remove("attachment");
    });
    fails(&v, &format!("{p}.content[0].attachment"), Rule::Missing);
    let (v, p) = edit(|r| r["content"][0]["attachment"]["size"] = json!(-1));
    fails(
        &v,
        &format!("{p}.content[0].attachment.size"),
        Rule::BadFormat {
            expected: "an integer of 0 or more",
        },
    );
    let (v, p) = edit(|r| r["date"] = json!("2024-05-02"));
    fails(
        &v,
        &format!("{p}.date"),
        Rule::BadDate {
            expected: "YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm)",
        },
    );
    let (v, p) = edit(|r| r["relatesTo"][0]["code"] = json!("copies"));
    fails(&v, &format!("{p}.relatesTo[0].code"), code());
    let (v, p) = edit(|r| {
        r["relatesTo"][0].as_object_mut().unwrap().remove("target");
    });
    fails(&v, &format!("{p}.relatesTo[0].target"), Rule::Missing);
    let (v, p) = edit(|r| r["context"]["encounter"] = json!({ "reference": "Encounter/enc1" }));
    fails(
        &v,
        &format!("{p}.context.encounter"),
        Rule::WrongType { expected: "array" },
    );
    // About the bundle's Patient; its other references resolve in the bundle.
    let (v, p) = edit(|r| r["subject"]["reference"] = json!("Patient/someone-else"));
    fails(
        &v,
        &format!("{p}.subject.reference"),
        Rule::UnresolvedReference,
    );
    let (v, p) = edit(|r| r["context"]["related"][0]["reference"] = json!("Observation/missing"));
    fails(
        &v,
        &format!("{p}.context.related[0].reference"),
        Rule::Unresolved,
    );
    let (v, p) =
        edit(|r| r["modifierExtension"] = json!([{ "url": "urn:x", "valueBoolean": true }]));
    fails(
        &v,
        &format!("{p}.modifierExtension"),
        Rule::ModifierExtension,
    );
}
