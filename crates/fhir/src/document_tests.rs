//! Attachments: the DocumentReference `document_bundle` writes joins a record through
//! `add_to_record`, the result is a valid record, and `documents` reads back what went in.

use serde_json::{Value, json};

use crate::*;

const TODAY: Date = Date {
    year: 2026,
    month: 12,
    day: 3,
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
    at: 1_796_292_000, // 2026-12-03T10:00:00Z
};

/// The rich bundle's Patient has the ID 7 here, and the record the ID 5.
const PATIENT_ID: u64 = 7;

fn pdf() -> DocumentInfo<'static> {
    DocumentInfo {
        content_type: "application/pdf",
        title: Some("Discharge letter.pdf"),
        size: 48_213,
        sha256: core::array::from_fn(|i| i as u8 * 8 + 1),
        url: "/api/records/5/attachments/1",
        index: 1,
        created: "2026-12-03T10:00:00Z",
    }
}

fn photo() -> DocumentInfo<'static> {
    DocumentInfo {
        content_type: "image/jpeg",
        title: None,
        size: 3_145_728,
        sha256: [0xab; 32],
        url: "/api/records/5/attachments/2",
        index: 2,
        created: "2026-12-03T10:05:00Z",
    }
}

/// `info` added to the record `base`, and the result parsed back as a stored record is.
fn attach(base: &Value, info: &DocumentInfo<'_>, author: Option<Author<'_>>) -> Bundle {
    let added = add_to_record(
        Some(Base {
            bundle: base,
            record_id: 5,
        }),
        PATIENT_ID,
        &document_bundle(info, PATIENT_ID),
        author,
        &mut uuids(),
        TODAY,
    )
    .unwrap_or_else(|e| panic!("refused: {e}"));
    let stored = parse(&added.to_json_vec()).unwrap_or_else(|e| panic!("refused: {e}"));
    assert_eq!(stored, added);
    stored
}

fn listed(info: &DocumentInfo<'_>) -> ListedDocument {
    ListedDocument {
        index: info.index,
        content_type: info.content_type.to_owned(),
        title: info.title.map(str::to_owned),
        size: info.size,
        sha256: Some(info.sha256),
        created: Some(info.created.to_owned()),
    }
}

#[test]
fn an_attachment_joins_a_record_and_lists_back() {
    let base = rich();
    let n = base["entry"].as_array().unwrap().len();
    assert!(documents(&base).is_empty());
    let b = attach(&base, &pdf(), Some(DOC));
    assert_eq!(documents(b.json()), vec![listed(&pdf())]);

    let entries = b.json()["entry"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        n + 2,
        "the base, the document, its Provenance"
    );
    let doc = &entries[n];
    let r = &doc["resource"];
    assert_eq!(r["resourceType"], "DocumentReference");
    assert_eq!(r["status"], "current");
    // `Patient/{patient_id}` is pointed at the record's Patient.
    assert_eq!(r["subject"]["reference"], base["entry"][0]["fullUrl"]);
    assert_eq!(r["date"], "2026-12-03T10:00:00Z");
    assert_eq!(r["description"], "Discharge letter.pdf");
    assert_eq!(
        r["identifier"],
        json!([{ "system": ATTACHMENT_SYSTEM, "value": "1" }])
    );
    let a = &r["content"][0]["attachment"];
    assert_eq!(
        a,
        &json!({
            "contentType": "application/pdf",
            "url": "/api/records/5/attachments/1",
            "size": 48_213,
            "title": "Discharge letter.pdf",
            "creation": "2026-12-03T10:00:00Z",
            "extension": [{
                "url": SHA256_EXTENSION,
                "valueString": "0109111921293139414951596169717981899199a1a9b1b9c1c9d1d9e1e9f1f9",
            }],
        }),
        "no Attachment.hash: R4's is SHA-1"
    );
    assert!(doc["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
    assert!(doc.get("request").is_none());
    let prov = &entries[n + 1]["resource"];
    assert_eq!(prov["resourceType"], "Provenance");
    assert_eq!(prov["target"], json!([{ "reference": doc["fullUrl"] }]));

    // The patient adding to its own record: no Provenance.
    let own = attach(&base, &pdf(), None);
    assert_eq!(own.json()["entry"].as_array().unwrap().len(), n + 1);
}

#[test]
fn attachments_added_in_turn_list_in_order() {
    let first = attach(&rich(), &pdf(), Some(DOC));
    let second = attach(first.json(), &photo(), Some(DOC));
    let listed_now = documents(second.json());
    assert_eq!(listed_now, vec![listed(&pdf()), listed(&photo())]);
    assert_eq!(
        listed_now.iter().map(|d| d.index).collect::<Vec<_>>(),
        [1, 2]
    );
    // The form's record works as a base too (its Patient is `Patient/patient`).
    let form = RecordForm {
        patient_name: "Jane Doe".into(),
        birth_date: "1984-02-29".into(),
        address: "1 Main St".into(),
        phone: "+1 555 010 0199".into(),
        health_condition: "Asthma".into(),
    }
    .to_bundle(TODAY)
    .unwrap();
    let b = attach(form.json(), &photo(), None);
    assert_eq!(documents(b.json()), vec![listed(&photo())]);
    assert_eq!(
        b.json()["entry"][2]["resource"]["subject"]["reference"],
        "Patient/patient"
    );
}

#[test]
fn titles_are_cleaned_and_sizes_beyond_unsigned_int_kept() {
    // A file's name as R4 `string`s hold it: no control characters, at most 1,000.
    let long = format!("  scan\u{7}\n{}  ", "x".repeat(2 * MAX_STRING_CHARS));
    let info = DocumentInfo {
        title: Some(&long),
        ..pdf()
    };
    let b = attach(&rich(), &info, None);
    let title = documents(b.json())[0].title.clone().unwrap();
    assert!(title.starts_with("scan  x"), "{title}");
    assert_eq!(title.chars().count(), MAX_STRING_CHARS);
    for blank in ["", " \t\n"] {
        let info = DocumentInfo {
            title: Some(blank),
            ..pdf()
        };
        let b = attach(&rich(), &info, None);
        assert_eq!(documents(b.json())[0].title, None);
        assert!(
            b.json()["entry"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["resource"].get("description").is_none())
        );
    }
    // 2 GiB (the attachment limit) does not fit `Attachment.size` (an unsignedInt).
    for size in [0, i32::MAX as u64, 2 << 30, u64::MAX] {
        let info = DocumentInfo { size, ..pdf() };
        let b = attach(&rich(), &info, None);
        assert_eq!(documents(b.json()), vec![listed(&info)], "{size}");
        let n = b.json()["entry"].as_array().unwrap().len();
        let a = &b.json()["entry"][n - 1]["resource"]["content"][0]["attachment"];
        assert_eq!(a.get("size").is_some(), size <= i32::MAX as u64, "{size}");
    }
}

#[test]
fn what_add_to_record_refuses_is_named_by_its_path() {
    let base = rich();
    let refused = |info: &DocumentInfo<'_>, patient_id: u64| {
        add_to_record(
            Some(Base {
                bundle: &base,
                record_id: 5,
            }),
            PATIENT_ID,
            &document_bundle(info, patient_id),
            None,
            &mut uuids(),
            TODAY,
        )
        .unwrap_err()
    };
    let e = refused(
        &DocumentInfo {
            created: "2026-12-03",
            ..pdf()
        },
        PATIENT_ID,
    );
    assert!(e.has("entry[0].resource.date"), "{e}");
    assert!(
        !e.has("entry[0].resource.content[0].attachment.creation"),
        "a date is a dateTime: {e}"
    );
    let e = refused(
        &DocumentInfo {
            content_type: " application/pdf",
            ..pdf()
        },
        PATIENT_ID,
    );
    assert!(
        e.has("entry[0].resource.content[0].attachment.contentType"),
        "{e}"
    );
    let e = refused(
        &DocumentInfo {
            url: "/api/records/5/attachments/1 2",
            ..pdf()
        },
        PATIENT_ID,
    );
    assert!(e.has("entry[0].resource.content[0].attachment.url"), "{e}");
    // Another patient's document.
    let e = refused(&pdf(), PATIENT_ID + 1);
    assert!(e.has("entry[0].resource.subject.reference"), "{e}");
    // On its own it is no record: there is no Patient.
    assert!(parse(&document_bundle(&pdf(), PATIENT_ID)).is_err());
}

#[test]
fn only_attachment_document_references_are_listed() {
    let mut base = rich();
    let entries = base["entry"].as_array_mut().unwrap();
    // A document from elsewhere, and one whose identifier is not an attachment number.
    for identifier in [
        json!([{ "system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3" }]),
        json!([{ "system": ATTACHMENT_SYSTEM, "value": "first" }]),
    ] {
        entries.push(json!({ "resource": {
            "resourceType": "DocumentReference", "status": "current",
            "identifier": identifier,
            "subject": { "reference": "Patient/p1" },
            "content": [{ "attachment": { "contentType": "application/pdf", "url": "https://example.org/a.pdf" } }]
        } }));
    }
    let base = parse_at(&serde_json::to_vec(&base).unwrap(), TODAY)
        .unwrap()
        .json()
        .clone();
    assert!(documents(&base).is_empty());
    let b = attach(&base, &photo(), None);
    assert_eq!(documents(b.json()), vec![listed(&photo())]);
    // A SHA-256 that is not 64 hex digits is not read as one.
    let mut v = b.json().clone();
    let last = v["entry"].as_array().unwrap().len() - 1;
    v["entry"][last]["resource"]["content"][0]["attachment"]["extension"][0]["valueString"] =
        json!("abc");
    assert_eq!(documents(&v)[0].sha256, None);
    assert!(documents(&json!({})).is_empty());
}

#[test]
fn debug_output_leaves_out_titles() {
    let shown = format!("{:?} {:?}", pdf(), listed(&pdf()));
    assert!(!shown.contains("Discharge"), "{shown}");
    assert!(shown.contains("application/pdf"), "{shown}");
}
