//! The FHIR REST API at `/fhir`: capability statement, storing a bundle, search with its
//! parameters and paging, read, `$everything`, ids and references rewritten, every read
//! logged, a provider's view through a grant, and `OperationOutcome` for every error.

use super::*;

const RICH: &str = include_str!("../../../fhir/testdata/rich-bundle.json");

async fn fhir_get(app: &axum::Router, uri: &str, token: Option<&str>) -> Reply {
    let r = call(app, Method::GET, uri, token, None).await;
    assert_eq!(
        r.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/fhir+json",
        "{uri}"
    );
    r
}

async fn post_rich(app: &axum::Router, token: &str) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/fhir")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/fhir+json")
        .body(Body::from(RICH))
        .unwrap();
    send(app, req).await
}

fn outcome(r: &Reply, status: StatusCode) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
    v
}

async fn log_len(app: &axum::Router, token: &str) -> usize {
    let r = call(app, Method::GET, "/api/access-log", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fhir_api_searches_reads_and_stores_with_every_read_logged() {
    let h = service().await;
    let app = app(&h);

    // The capability statement needs no token and lists what is served.
    let r = fhir_get(&app, "/fhir/metadata", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let cs = r.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let types: Vec<&str> = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"Observation") && types.contains(&"Patient"));

    // Without a token: 401 as an OperationOutcome.
    let r = fhir_get(&app, "/fhir/Observation", None).await;
    outcome(&r, StatusCode::UNAUTHORIZED);

    // A patient stores the rich bundle twice (two records).
    let (alice, pid) = patient(&app, "alice").await;
    let r = post_rich(&app, &alice).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let resp = r.json();
    assert_eq!(resp["type"], "transaction-response");
    assert_eq!(resp["entry"].as_array().unwrap().len(), 14);
    assert_eq!(
        resp["entry"][0]["response"]["location"],
        format!("Patient/{pid}")
    );
    assert_eq!(resp["entry"][5]["response"]["location"], "Observation/1-5");
    assert_eq!(post_rich(&app, &alice).await.status, StatusCode::OK);

    // A search reads both records: two reads logged.
    let before = log_len(&app, &alice).await;
    let r = fhir_get(
        &app,
        "/fhir/Observation?code=http://loinc.org|4548-4",
        Some(&alice),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let b = r.json();
    assert_eq!(b["type"], "searchset");
    assert_eq!(b["total"], 2);
    assert_eq!(log_len(&app, &alice).await, before + 2);
    // Ids and references are the API's: the patient by its ID, others by record and entry.
    let hba1c = &b["entry"][0]["resource"];
    assert_eq!(hba1c["id"], "1-6");
    assert_eq!(hba1c["subject"]["reference"], format!("Patient/{pid}"));
    assert_eq!(
        hba1c["performer"][0]["reference"], "#lab",
        "contained stays"
    );

    for (query, total) in [
        (format!("patient={pid}"), 6),
        ("category=vital-signs".to_owned(), 2),
        (
            "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
                .to_owned(),
            2,
        ),
        ("date=ge2024-04-30".to_owned(), 4),
        ("date=lt2024-01-01".to_owned(), 0),
        ("code=8517006,4548-4".to_owned(), 2),
    ] {
        let r = fhir_get(&app, &format!("/fhir/Observation?{query}"), Some(&alice)).await;
        assert_eq!(r.json()["total"], total, "{query}");
    }

    // Paging: `_count` and the `next` link.
    let r = fhir_get(&app, "/fhir/Observation?_count=4", Some(&alice)).await;
    let first = r.json();
    assert_eq!(first["entry"].as_array().unwrap().len(), 4);
    let next = first["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = fhir_get(&app, &next, Some(&alice)).await.json();
    assert_eq!(second["entry"].as_array().unwrap().len(), 2);
    assert!(
        second["link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next")
    );
    let r = fhir_get(&app, "/fhir/Observation?_count=0", Some(&alice)).await;
    let o = outcome(&r, StatusCode::BAD_REQUEST);
    assert_eq!(o["issue"][0]["expression"][0], "_count");

    // Read by id, the report's result pointing at the record's observation.
    let r = fhir_get(&app, "/fhir/DiagnosticReport/2-8", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["result"][0]["reference"], "Observation/2-6");
    let r = fhir_get(&app, &format!("/fhir/Patient/{pid}"), Some(&alice)).await;
    assert_eq!(r.json()["name"][0]["family"], "Doe");
    let r = fhir_get(&app, "/fhir/Observation/2-8", Some(&alice)).await;
    outcome(&r, StatusCode::NOT_FOUND);
    let r = fhir_get(&app, "/fhir/Claim/1-1", Some(&alice)).await;
    outcome(&r, StatusCode::NOT_FOUND);

    // $everything: the Patient once, and every other resource of both records.
    let r = fhir_get(
        &app,
        &format!("/fhir/Patient/{pid}/$everything?_count=100"),
        Some(&alice),
    )
    .await;
    let all = r.json();
    assert_eq!(all["total"], 1 + 2 * 13);
    assert_eq!(all["entry"][0]["resource"]["resourceType"], "Patient");

    // A bundle that breaks R4: 400, one issue per field with its expression; nothing stored.
    let mut bad: Value = serde_json::from_str(RICH).unwrap();
    bad["entry"][5]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("status");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/fhir")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .body(Body::from(bad.to_string()))
        .unwrap();
    let r = send(&app, req).await;
    let o = outcome(&r, StatusCode::BAD_REQUEST);
    assert_eq!(
        o["issue"][0]["expression"][0],
        "Bundle.entry[5].resource.status"
    );
    let r = call(&app, Method::GET, "/api/records", Some(&alice), None).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);

    // A provider sees nothing before a grant, then the patient and her resources.
    let provider = login(&app, PROVIDER.0, PROVIDER.1).await;
    let uri = format!("/fhir/Observation?patient={pid}");
    assert_eq!(
        fhir_get(&app, &uri, Some(&provider)).await.json()["total"],
        0
    );
    let r = fhir_get(&app, "/fhir/Observation/1-6", Some(&provider)).await;
    outcome(&r, StatusCode::FORBIDDEN);
    let grant = json!({ "provider": PROVIDER.0, "expires_at": in_days(30) });
    let r = call(&app, Method::POST, "/api/grants", Some(&alice), Some(grant)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        fhir_get(&app, &uri, Some(&provider)).await.json()["total"],
        6
    );
    let r = fhir_get(&app, "/fhir/Patient", Some(&provider)).await;
    assert_eq!(r.json()["total"], 1);
    assert_eq!(r.json()["entry"][0]["resource"]["id"], pid.to_string());
    let r = fhir_get(&app, "/fhir/Observation", Some(&provider)).await;
    let o = outcome(&r, StatusCode::BAD_REQUEST);
    assert_eq!(o["issue"][0]["expression"][0], "patient");
    // A provider's bundle must name the patient it is for.
    let o = outcome(&post_rich(&app, &provider).await, StatusCode::BAD_REQUEST);
    assert_eq!(o["issue"][0]["expression"][0], "entry");

    // Once she leaves, her resources are gone: 410 with FHIR's "deleted".
    let leave = json!({ "password": PASSWORD });
    let r = call(
        &app,
        Method::DELETE,
        "/api/account",
        Some(&alice),
        Some(leave),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for uri in [
        "/fhir/Observation/1-6".to_owned(),
        format!("/fhir/Patient/{pid}"),
    ] {
        let o = outcome(
            &fhir_get(&app, &uri, Some(&provider)).await,
            StatusCode::GONE,
        );
        assert_eq!(o["issue"][0]["code"], "deleted", "{uri}: {o}");
    }
}

async fn post_json(app: &axum::Router, token: &str, bundle: &Value) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/fhir")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/fhir+json")
        .body(Body::from(bundle.to_string()))
        .unwrap();
    send(app, req).await
}

/// A lab result a clinician adds to record `record` (or, with `None`, to a new record).
fn glucose(pid: u64, record: Option<u64>) -> Value {
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "fullUrl": "urn:uuid:5d1c6b7e-3a4f-4e2b-9c8d-0a1b2c3d4e5f",
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": { "coding": [{ "system": "http://loinc.org", "code": "2339-0", "display": "Glucose" }] },
                "subject": { "reference": format!("Patient/{pid}") },
                "valueQuantity": { "value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L" }
            },
            "request": { "method": "POST", "url": "Observation" }
        }]
    });
    if let Some(r) = record {
        b["identifier"] = json!({ "system": "urn:secure-ehr:record", "value": r.to_string() });
    }
    b
}

async fn versions(app: &axum::Router, token: &str) -> Vec<Value> {
    let r = call(app, Method::GET, "/api/records", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()[0]["versions"].as_array().unwrap().clone()
}

/// Issue 16 item 6: a patient grants a provider write access; the provider adds a result
/// through `POST /fhir` as a new version of the patient's record (or a new record the
/// patient owns); the version holds a Provenance and the patient sees who wrote it; without
/// write access the provider is refused and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_with_write_access_adds_to_the_record_and_the_patient_sees_who_wrote_it() {
    let h = service().await;
    let app = app(&h);
    let (alice, pid) = patient(&app, "alice").await;
    assert_eq!(post_rich(&app, &alice).await.status, StatusCode::OK);
    let provider = login(&app, PROVIDER.0, PROVIDER.1).await;

    // Reading only: refused, nothing stored.
    let grant = json!({ "provider": PROVIDER.0, "expires_at": in_days(30) });
    let r = call(&app, Method::POST, "/api/grants", Some(&alice), Some(grant)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let o = outcome(
        &post_json(&app, &provider, &glucose(pid, Some(1))).await,
        StatusCode::FORBIDDEN,
    );
    assert!(
        o["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("write denied"),
        "{o}"
    );
    assert_eq!(versions(&app, &alice).await.len(), 1, "nothing stored");

    // Reading and writing.
    let grant = json!({ "provider": PROVIDER.0, "expires_at": in_days(30), "write": true });
    let r = call(&app, Method::POST, "/api/grants", Some(&alice), Some(grant)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.json()["write_tx_hash"].is_string());
    let r = post_json(&app, &provider, &glucose(pid, Some(1))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["entry"][0]["response"]["location"],
        "Observation/1-14",
        "after the record's 14 resources"
    );
    let r = fhir_get(&app, "/fhir/Observation/1-14", Some(&provider)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let obs = r.json();
    assert_eq!(obs["subject"]["reference"], format!("Patient/{pid}"));
    assert_eq!(obs["valueQuantity"]["value"], 5.4);

    // The patient sees who wrote what: the chain's author, and the Provenance.
    let v = versions(&app, &alice).await;
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["author_name"], Value::Null, "she wrote version 1");
    assert_eq!(v[1]["author_name"], PROVIDER.0);
    let r = fhir_get(
        &app,
        &format!("/fhir/Provenance?patient={pid}"),
        Some(&alice),
    )
    .await;
    let b = r.json();
    assert_eq!(b["total"], 1, "{b}");
    let prov = b["entry"][0]["resource"].clone();
    assert_eq!(prov["target"][0]["reference"], "Observation/1-14");
    assert_eq!(
        prov["agent"][0]["who"]["identifier"]["system"],
        "urn:secure-ehr:provider"
    );
    assert!(
        v[1]["author"].as_str().unwrap().eq_ignore_ascii_case(
            prov["agent"][0]["who"]["identifier"]["value"]
                .as_str()
                .unwrap()
        ),
        "the chain's author is the Provenance's agent"
    );
    medplum_accepts(&[prov, obs]);

    // A new record the patient owns: the bundle holds her Patient.
    let mut new = glucose(pid, None);
    let rich: Value = serde_json::from_str(RICH).unwrap();
    let mut patient = rich["entry"][0].clone();
    for k in ["generalPractitioner", "managingOrganization"] {
        patient["resource"].as_object_mut().unwrap().remove(k);
    }
    patient["request"] = json!({ "method": "POST", "url": "Patient" });
    new["entry"].as_array_mut().unwrap().insert(0, patient);
    let r = post_json(&app, &provider, &new).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers.get(header::LOCATION).unwrap(), "/api/records/2");
    let r = call(&app, Method::GET, "/api/records", Some(&alice), None).await;
    assert_eq!(
        r.json().as_array().unwrap().len(),
        2,
        "the new record is hers"
    );

    // The patient adds to her own record the same way: no Provenance for her own.
    let r = post_json(&app, &alice, &glucose(pid, Some(1))).await;
    let o = r.json();
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the same fullUrl again: {o}"
    );
    assert_eq!(o["issue"][0]["expression"][0], "Bundle.entry[0].fullUrl");
    let mut again = glucose(pid, Some(1));
    again["entry"][0].as_object_mut().unwrap().remove("fullUrl");
    let r = post_json(&app, &alice, &again).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["entry"][0]["response"]["location"],
        "Observation/1-16"
    );
    assert_eq!(versions(&app, &alice).await.len(), 3);

    // Writing revoked: refused again; reading stays.
    let revoke = json!({ "provider": PROVIDER.0, "write": true });
    let r = call(
        &app,
        Method::POST,
        "/api/grants/revoke",
        Some(&alice),
        Some(revoke),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    outcome(
        &post_json(&app, &provider, &again).await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(versions(&app, &alice).await.len(), 3);
    let r = fhir_get(&app, "/fhir/Observation/1-14", Some(&provider)).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// medplum's verdict on each resource (crates/fhir/tests/js/validate.mjs).
fn medplum_accepts(resources: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        let path = dir.path().join(format!("{i}.json"));
        std::fs::write(&path, r.to_string()).unwrap();
        files.push(path);
    }
    let js = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fhir/tests/js");
    let out = std::process::Command::new("node")
        .arg("validate.mjs")
        .args(&files)
        .current_dir(&js)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        files.len(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ok"], true, "{v}");
    }
}

async fn post_consent(app: &axum::Router, token: &str, consent: &Value) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/fhir/Consent")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/fhir+json")
        .body(Body::from(consent.to_string()))
        .unwrap();
    send(app, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_consents_and_the_access_log_is_audit_events() {
    let h = service().await;
    let app = app(&h);
    let (alice, pid) = patient(&app, "alice").await;
    assert_eq!(post_rich(&app, &alice).await.status, StatusCode::OK);
    let provider = login(&app, PROVIDER.0, PROVIDER.1).await;

    // A Consent posted by the patient is a grant on chain.
    let mut consent = json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
        "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }],
        "provision": {
            "period": { "end": "2099-01-01T00:00:00Z" },
            "actor": [{ "reference": { "identifier": { "system": "urn:secure-ehr:provider", "value": PROVIDER.0 } } }],
            "data": [{ "meaning": "instance", "reference": { "identifier": { "system": "urn:secure-ehr:record", "value": "1" } } }],
        },
    });
    let r = post_consent(&app, &alice, &consent).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let made = r.json();
    assert_eq!(made["status"], "active");
    assert_eq!(made["patient"]["reference"], format!("Patient/{pid}"));
    assert_eq!(made["provision"]["period"]["end"], "2099-01-01T00:00:00Z");
    let grants = call(&app, Method::GET, "/api/grants", Some(&alice), None)
        .await
        .json();
    assert_eq!(grants[0]["record_id"], 1);
    assert_eq!(grants[0]["expires_at"], 4_070_908_800u64);

    // Listed for the patient and for the provider who holds it.
    let mine = fhir_get(&app, "/fhir/Consent", Some(&alice)).await.json();
    assert_eq!(mine["total"], 1);
    let theirs = fhir_get(&app, "/fhir/Consent", Some(&provider))
        .await
        .json();
    assert_eq!(theirs["total"], 1);
    assert_eq!(
        theirs["entry"][0]["resource"]["patient"]["reference"],
        format!("Patient/{pid}")
    );

    // The provider reads through FHIR; the patient's AuditEvents say who read what.
    let r = fhir_get(
        &app,
        &format!("/fhir/Observation?patient={pid}"),
        Some(&provider),
    )
    .await;
    assert_eq!(r.json()["total"], 3);
    let log = fhir_get(&app, "/fhir/AuditEvent", Some(&alice))
        .await
        .json();
    let events: Vec<&Value> = log["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let by_provider = events
        .iter()
        .find(|e| e["agent"][0]["who"]["display"] == PROVIDER.0)
        .expect("the provider's read");
    assert_eq!(by_provider["action"], "R");
    assert_eq!(
        by_provider["entity"][0]["what"]["reference"],
        format!("Patient/{pid}")
    );
    assert_eq!(by_provider["entity"][1]["what"]["identifier"]["value"], "1");
    outcome(
        &fhir_get(&app, "/fhir/AuditEvent", Some(&provider)).await,
        StatusCode::FORBIDDEN,
    );

    // Revoked with status inactive: the provider reads nothing; break-glass is marked BTG
    // with its reason.
    consent["status"] = json!("inactive");
    let r = post_consent(&app, &alice, &consent).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"], "inactive");
    let r = fhir_get(
        &app,
        &format!("/fhir/Observation?patient={pid}"),
        Some(&provider),
    )
    .await;
    assert_eq!(r.json()["total"], 0);
    let r = call(
        &app,
        Method::POST,
        "/api/emergency",
        Some(&provider),
        Some(json!({ "patient_id": pid, "reason": "unconscious in the ER" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let log = fhir_get(&app, "/fhir/AuditEvent?_count=100", Some(&alice))
        .await
        .json();
    let btg: Vec<&Value> = log["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|e| e["purposeOfEvent"][0]["coding"][0]["code"] == "BTG")
        .collect();
    assert!(!btg.is_empty(), "{log}");
    assert_eq!(btg[0]["purposeOfEvent"][0]["text"], "unconscious in the ER");
    assert_eq!(
        btg[0]["agent"][0]["purposeOfUse"][0]["coding"][0]["code"],
        "BTG"
    );

    // A Consent that names no provider: 400 with the path.
    consent["provision"]
        .as_object_mut()
        .unwrap()
        .remove("actor");
    consent["status"] = json!("active");
    let o = outcome(
        &post_consent(&app, &alice, &consent).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(o["issue"][0]["expression"][0], "Consent.provision.actor");

    // What the API emits validates with medplum.
    let mut emitted = vec![made];
    emitted.extend(events.into_iter().cloned());
    emitted.extend(btg.into_iter().cloned());
    emitted.push(fhir_get(&app, "/fhir/metadata", None).await.json());
    medplum_accepts(&emitted);
}

async fn mint(app: &axum::Router, token: &str, scope: &str) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/fhir/auth/token")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "scope={}",
            scope.replace(' ', "+").replace('/', "%2F")
        )))
        .unwrap();
    send(app, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_scoped_tokens_allow_only_what_their_scopes_say() {
    let h = service().await;
    let app = app(&h);
    let (alice, pid) = patient(&app, "alice").await;
    assert_eq!(post_rich(&app, &alice).await.status, StatusCode::OK);

    let r = mint(&app, &alice, "openid patient/Observation.rs").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let t = r.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "patient/Observation.rs");
    assert_eq!(t["patient"], pid.to_string());
    assert!(t["expires_in"].as_u64().unwrap() <= 3600);
    let obs = t["access_token"].as_str().unwrap().to_owned();

    // Observations: yes. A Condition, the Patient, consents, the log, storing: no.
    let r = fhir_get(&app, "/fhir/Observation", Some(&obs)).await;
    assert_eq!(r.json()["total"], 3);
    assert_eq!(
        fhir_get(&app, "/fhir/Observation/1-6", Some(&obs))
            .await
            .status,
        StatusCode::OK
    );
    for uri in [
        "/fhir/Condition",
        "/fhir/Condition/1-4",
        "/fhir/Patient",
        "/fhir/Consent",
        "/fhir/AuditEvent",
    ] {
        let o = outcome(
            &fhir_get(&app, uri, Some(&obs)).await,
            StatusCode::FORBIDDEN,
        );
        assert!(
            o["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("scope"),
            "{uri}: {o}"
        );
    }
    outcome(&post_rich(&app, &obs).await, StatusCode::FORBIDDEN);
    // $everything gives only what the scope reads.
    let all = fhir_get(
        &app,
        &format!("/fhir/Patient/{pid}/$everything"),
        Some(&obs),
    )
    .await;
    assert_eq!(all.status, StatusCode::FORBIDDEN);
    let r = mint(&app, &alice, "patient/Patient.r patient/Observation.r").await;
    let narrow = r.json()["access_token"].as_str().unwrap().to_owned();
    let all = fhir_get(
        &app,
        &format!("/fhir/Patient/{pid}/$everything"),
        Some(&narrow),
    )
    .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    let types: std::collections::BTreeSet<String> = all.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["Observation", "Patient"].map(String::from).into());

    // A write scope lets the token store; a scoped token is refused by the JSON API and
    // cannot mint another; logging out ends it.
    let r = mint(&app, &alice, "patient/*.cruds").await;
    let writer = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(post_rich(&app, &writer).await.status, StatusCode::OK);
    let r = call(&app, Method::GET, "/api/records", Some(&obs), None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    outcome(
        &mint(&app, &obs, "patient/*.rs").await,
        StatusCode::FORBIDDEN,
    );
    let o = outcome(
        &mint(&app, &alice, "patient/Observation.sr").await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(o["issue"][0]["expression"][0], "scope");
    let r = call(&app, Method::DELETE, "/api/session", Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    outcome(
        &fhir_get(&app, "/fhir/Observation", Some(&obs)).await,
        StatusCode::UNAUTHORIZED,
    );
}

/// The rich bundle with `n` more lab Observations.
fn big_bundle(n: usize) -> Value {
    let mut b: Value = serde_json::from_str(RICH).unwrap();
    let entries = b["entry"].as_array_mut().unwrap();
    for i in 0..n {
        entries.push(json!({ "resource": {
            "resourceType": "Observation", "id": format!("glu{i}"), "status": "final",
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
            "code": { "coding": [{ "system": "http://loinc.org", "code": "2339-0", "display": "Glucose [Mass/volume] in Blood" }] },
            "subject": { "reference": "Patient/p1" },
            "effectiveDateTime": format!("2023-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
            "valueQuantity": { "value": 90 + (i % 40), "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL" },
            "referenceRange": [{ "low": { "value": 70, "unit": "mg/dL" }, "high": { "value": 100, "unit": "mg/dL" } }],
        } }));
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_takes_bundles_of_megabytes_and_refuses_more_than_16_mib() {
    let h = service().await;
    let app = app(&h);
    let (alice, _) = patient(&app, "alice").await;
    let post = |body: String| {
        Request::builder()
            .method(Method::POST)
            .uri("/fhir")
            .header(header::AUTHORIZATION, format!("Bearer {alice}"))
            .header(header::CONTENT_TYPE, "application/fhir+json")
            .body(Body::from(body))
            .unwrap()
    };
    // Over the JSON API's 1 MiB: a record of 5,000 more lab results.
    let big = big_bundle(5000).to_string();
    assert!(big.len() > ehr_api::MAX_BODY_BYTES, "{}", big.len());
    let r = send(&app, post(big)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["entry"].as_array().unwrap().len(), 14 + 5000);
    let r = fhir_get(&app, "/fhir/Observation?code=2339-0&_count=1", Some(&alice)).await;
    assert_eq!(r.json()["total"], 5000);
    // Over 16 MiB: 413 as an OperationOutcome, nothing stored.
    let huge = format!(
        "{{\"pad\": \"{}\"}}",
        "x".repeat(ehr_api::FHIR_MAX_BODY_BYTES)
    );
    let o = outcome(&send(&app, post(huge)).await, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(o["issue"][0]["code"], "too-costly");
    let r = call(&app, Method::GET, "/api/records", Some(&alice), None).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
}
