//! Adding to a record: references to the API's ids resolved, a Provenance naming the
//! author of what was added, and every refusal naming its path in what was posted.

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

fn uuids() -> impl FnMut() -> String {
    let mut n = 0u32;
    move || {
        n += 1;
        format!("00000000-0000-4000-8000-{n:012}")
    }
}

const DOC: Author<'static> = Author {
    system: "urn:secure-ehr:provider",
    value: "0x00000000000000000000000000000000000000d0",
    display: Some("Dr Bob"),
    at: 1_748_736_000, // 2025-06-01T00:00:00Z
};

fn glucose(subject: &str) -> Value {
    json!({ "resource": {
        "resourceType": "Observation",
        "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": "2339-0" }] },
        "subject": { "reference": subject },
        "encounter": { "reference": "Encounter/12-3" },
        "valueQuantity": { "value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L" }
    }, "request": { "method": "POST", "url": "Observation" } })
}

fn post(entries: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(
        &json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries }),
    )
    .unwrap()
}

fn add(
    base: Option<&Value>,
    added: &[u8],
    author: Option<Author<'_>>,
) -> Result<Bundle, ValidationErrors> {
    let base = base.map(|bundle| Base {
        bundle,
        record_id: 12,
    });
    add_to_record(base, 7, added, author, &mut uuids(), TODAY)
}

#[test]
fn instants_are_utc_seconds() {
    assert_eq!(instant(0), "1970-01-01T00:00:00Z");
    assert_eq!(instant(DOC.at + 3723), "2025-06-01T01:02:03Z");
}

#[test]
fn resources_added_to_a_record_point_at_its_resources_and_name_their_author() {
    let base = rich();
    let n = base["entry"].as_array().unwrap().len();
    let b = add(Some(&base), &post(vec![glucose("Patient/7")]), Some(DOC)).unwrap();
    let entries = b.json()["entry"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        n + 2,
        "the base, the added resource, its Provenance"
    );
    assert_eq!(
        &entries[..n],
        base["entry"].as_array().unwrap().as_slice(),
        "the base kept whole"
    );
    let obs = &entries[n];
    assert!(obs.get("request").is_none(), "added, no longer a request");
    // `Patient/7` is the record's Patient; `Encounter/12-3` is its entry 3.
    assert_eq!(
        obs["resource"]["subject"]["reference"],
        base["entry"][0]["fullUrl"]
    );
    assert_eq!(obs["resource"]["encounter"]["reference"], "Encounter/enc1");
    let url = obs["fullUrl"].as_str().unwrap();
    assert!(url.starts_with("urn:uuid:"), "{url}");
    let prov = &entries[n + 1]["resource"];
    assert_eq!(prov["resourceType"], "Provenance");
    assert_eq!(prov["target"], json!([{ "reference": url }]));
    assert_eq!(prov["recorded"], "2025-06-01T00:00:00Z");
    assert_eq!(prov["agent"][0]["who"]["identifier"]["value"], DOC.value);
    assert_eq!(prov["agent"][0]["who"]["display"], "Dr Bob");
    assert_eq!(b.json()["type"], "collection");
    // The patient adding to its own record: no Provenance.
    let own = add(Some(&base), &post(vec![glucose("Patient/7")]), None).unwrap();
    assert_eq!(own.json()["entry"].as_array().unwrap().len(), n + 1);
}

#[test]
fn a_new_record_holds_the_posted_patient_and_its_provenance() {
    let mut patient = rich()["entry"][0].clone();
    patient["request"] = json!({ "method": "POST", "url": "Patient" });
    for k in ["generalPractitioner", "managingOrganization"] {
        patient["resource"].as_object_mut().unwrap().remove(k);
    }
    let mut obs = glucose("Patient/7");
    obs["resource"].as_object_mut().unwrap().remove("encounter");
    let b = add(None, &post(vec![patient.clone(), obs]), Some(DOC)).unwrap();
    let entries = b.json()["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[1]["resource"]["subject"]["reference"],
        patient["fullUrl"]
    );
    assert_eq!(
        entries[2]["resource"]["target"].as_array().unwrap().len(),
        2,
        "both added resources are the author's"
    );
    // Without a Patient a new record is refused, as any record.
    let e = add(None, &post(vec![glucose("Patient/7")]), Some(DOC)).unwrap_err();
    assert!(e.has("entry"), "{e}");
}

#[test]
fn refusals_name_their_path_in_what_was_posted() {
    let base = rich();
    let fails = |added: Vec<Value>, path: &str| {
        let e = add(Some(&base), &post(added), Some(DOC)).unwrap_err();
        assert!(e.has(path), "expected {path}, got {e}");
    };
    // The record has its Patient.
    fails(
        vec![glucose("Patient/7"), rich()["entry"][0].clone()],
        "entry[1].resource",
    );
    // Only additions.
    let mut put = glucose("Patient/7");
    put["request"] = json!({ "method": "PUT", "url": "Observation/12-5" });
    fails(vec![put], "entry[0].request.method");
    // Not what the record already holds.
    let mut again = glucose("Patient/7");
    again["resource"]["id"] = json!("bp1");
    fails(vec![again], "entry[0].resource.id");
    let mut url = glucose("Patient/7");
    url["fullUrl"] = base["entry"][0]["fullUrl"].clone();
    fails(vec![url], "entry[0].fullUrl");
    // R4 rules, at the posted entry's path (not the joined bundle's).
    let mut bad = glucose("Patient/7");
    bad["resource"].as_object_mut().unwrap().remove("status");
    fails(vec![glucose("Patient/7"), bad], "entry[1].resource.status");
    // A reference to nothing in the record.
    fails(
        vec![glucose("Patient/8")],
        "entry[0].resource.subject.reference",
    );
    // Not a bundle.
    let e = add_to_record(None, 7, b"[1]", None, &mut uuids(), TODAY).unwrap_err();
    assert!(!e.errors().is_empty());
    let e = add_to_record(None, 7, b"{", None, &mut uuids(), TODAY).unwrap_err();
    assert!(e.to_string().contains("JSON"), "{e}");
}
