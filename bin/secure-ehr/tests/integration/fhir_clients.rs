//! Issue 16 item 5: `/fhir` of a real `secure-ehr serve` driven by independent FHIR clients —
//! fhir-kit-client (npm, `bin/secure-ehr/tests/js/fhir_client.mjs`: capability statement, a
//! transaction stored, a search paged through its `next` links, reads, `Patient/$everything`)
//! and fhirpy (PyPI, `bin/secure-ehr/tests/py/fhir_client.py`: paged and coded searches, a
//! read, `$everything`) — and every resource the server sent validated by another independent
//! implementation (@medplum/core, `crates/fhir/tests/js/validate.mjs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn node(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("node")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "node {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fhir_client_stores_searches_pages_and_reads_and_medplum_validates_what_it_got() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = crate::restore::serve(&data);
    let http = reqwest::Client::new();
    let creds = json!({ "username": "fhirpat", "password": "fhir patient password" });
    let r = http
        .post(format!("{}/api/patients", server.url))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let session: Value = http
        .post(format!("{}/api/session", server.url))
        .json(&creds)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap();

    let out = dir.path().join("emitted");
    std::fs::create_dir(&out).unwrap();
    let bundle = repo().join("crates/fhir/testdata/rich-bundle.json");
    let said = node(
        &repo().join("bin/secure-ehr/tests/js"),
        &[
            "fhir_client.mjs",
            &format!("{}/fhir", server.url),
            token,
            bundle.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    let saw: Value = serde_json::from_str(said.trim()).unwrap();
    assert_eq!(saw["fhirVersion"], "4.0.1");
    assert_eq!(saw["responseType"], "transaction-response");
    assert_eq!(saw["locations"].as_array().unwrap().len(), 14);
    let pid = saw["patientId"].as_str().unwrap();
    // Three observations, two to a page: two pages through the `next` link.
    assert_eq!(saw["pages"], json!([["1-5", "1-6"], ["1-7"]]));
    assert_eq!(saw["labTotal"], 1);
    assert_eq!(saw["readId"], "1-6");
    assert_eq!(saw["readSubject"], format!("Patient/{pid}"));
    assert_eq!(saw["patientFamily"], "Doe");
    assert_eq!(saw["everythingTotal"], 14);
    assert_eq!(
        saw["everythingTypes"],
        json!([
            "AllergyIntolerance",
            "Condition",
            "DiagnosticReport",
            "Encounter",
            "Immunization",
            "MedicationRequest",
            "MedicationStatement",
            "Observation",
            "Organization",
            "Patient",
            "Practitioner",
            "Procedure"
        ])
    );

    // And an independent Python client (fhirpy, in scripts/test's venv) sees the same.
    let python = repo().join("target/test-python/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test",
        python.display()
    );
    let ran = Command::new(&python)
        .arg(repo().join("bin/secure-ehr/tests/py/fhir_client.py"))
        .args([&format!("{}/fhir", server.url), token, pid])
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let py: Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(
        py["observations"],
        json!(["1-5", "1-6", "1-7"]),
        "paged with _count=2"
    );
    assert_eq!(py["labs"], json!(["1-6"]));
    assert_eq!(py["lab_subject"], format!("Patient/{pid}"));
    assert_eq!(py["family"], "Doe");
    assert_eq!(py["everything"], 14);

    // Everything the server sent validates with medplum.
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert_eq!(files.len() as u64, saw["written"].as_u64().unwrap());
    let js = repo().join("crates/fhir/tests/js");
    let mut args = vec!["validate.mjs"];
    args.extend(files.iter().map(String::as_str));
    let verdicts = node(&js, &args);
    assert_eq!(verdicts.lines().count(), files.len());
    for line in verdicts.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ok"], true, "{v}");
    }

    // Each read was logged: the patient's access log has an entry per record read.
    let log: Value = http
        .get(format!("{}/api/access-log", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(log.as_array().unwrap().len() >= 6, "{log}");

    // Issue 18 item 2: the patient's export is one FHIR R4 collection Bundle that medplum
    // validates, with the record at both its versions, every logged read as an AuditEvent
    // (its own reads too).
    let r = http
        .put(format!("{}/api/records/1", server.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(std::fs::read(&bundle).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let export: Value = http
        .get(format!("{}/api/export", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&export["resourceType"], &export["type"]),
        (&json!("Bundle"), &json!("collection"))
    );
    let entries = export["entry"].as_array().unwrap();
    let of = |t: &str| {
        entries
            .iter()
            .filter(|e| e["resource"]["resourceType"] == t)
            .count()
    };
    assert_eq!(
        of("Observation"),
        6,
        "the record's three observations, twice"
    );
    let versions: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["resource"]["meta"]["versionId"].as_str())
        .collect();
    assert_eq!(versions.into_iter().collect::<Vec<_>>(), ["1", "2"]);
    assert!(
        of("AuditEvent") > log.as_array().unwrap().len(),
        "the log, and the export's own read"
    );
    let file = dir.path().join("export.json");
    std::fs::write(&file, export.to_string()).unwrap();
    let verdict = node(&js, &["validate.mjs", file.to_str().unwrap()]);
    let v: Value = serde_json::from_str(verdict.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
}
