//! `secure-ehr bench --fhir`: the FHIR API's figures, over HTTP on 127.0.0.1 against the
//! same embedded deployment — importing a 1,000-resource bundle end to end (`POST /fhir`:
//! validated, sealed, dispersed, anchored on chain), and a search over a patient with 100
//! records (`GET /fhir/Observation?code=…`: 100 record reads, each logged on chain first).

use std::sync::Arc;

use anyhow::Context;
use ehr_records::Service;
use serde_json::{Value, json};

use super::{PW, Phase, run_phase};

/// Resources in the imported bundle (a Patient and this many less one Observations).
pub(super) const IMPORT_RESOURCES: usize = 1000;
/// Records of the searched patient.
pub(super) const SEARCH_RECORDS: usize = 100;

/// A bundle of a Patient and `observations` glucose results.
fn bundle(observations: usize, seed: usize) -> Value {
    let mut entry = vec![
        json!({ "fullUrl": "urn:uuid:3f1b7a52-4c8e-4d1a-9b6f-2a7c5e8d9f01", "resource": {
        "resourceType": "Patient", "id": "p1",
        "name": [{ "family": "Bench", "given": [format!("Patient {seed}")] }],
        "birthDate": "1970-01-01",
    } }),
    ];
    for i in 0..observations {
        entry.push(json!({ "resource": {
            "resourceType": "Observation", "id": format!("o{i}"), "status": "final",
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
            "code": { "coding": [{ "system": "http://loinc.org", "code": "2339-0", "display": "Glucose [Mass/volume] in Blood" }] },
            "subject": { "reference": "Patient/p1" },
            "effectiveDateTime": format!("2023-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
            "valueQuantity": { "value": 80 + (i + seed) % 50, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL" },
            "referenceRange": [{ "low": { "value": 70, "unit": "mg/dL" }, "high": { "value": 100, "unit": "mg/dL" } }],
        } }));
    }
    json!({ "resourceType": "Bundle", "type": "collection", "entry": entry })
}

async fn patient_token(svc: &Service, name: &str) -> anyhow::Result<String> {
    svc.register_patient(name, PW).await?;
    let (token, _) = svc.login(name, PW, "bench").await?;
    Ok(token.expose().to_owned())
}

/// The two FHIR phases: `imports` bundles one at a time, then `searches` searches.
pub(super) async fn phases(
    svc: Arc<Service>,
    imports: usize,
    searches: usize,
) -> anyhow::Result<Vec<Phase>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/fhir", listener.local_addr()?);
    tokio::spawn(ehr_api::serve(
        listener,
        ehr_api::AppState::new(svc.clone()),
    ));
    let http = reqwest::Client::builder().no_proxy().build()?;

    let token = Arc::new(patient_token(&svc, "bench-fhir-import").await?);
    let body = Arc::new(bundle(IMPORT_RESOURCES - 1, 0).to_string());
    let import = {
        let (http, base) = (http.clone(), base.clone());
        move |_: usize| {
            let (http, base, token, body) =
                (http.clone(), base.clone(), token.clone(), body.clone());
            async move {
                let r = http
                    .post(&base)
                    .bearer_auth(token.as_str())
                    .header("content-type", "application/fhir+json")
                    .body(body.as_str().to_owned())
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 200, "import: {}", r.text().await?);
                anyhow::Ok(())
            }
        }
    };
    let mut out = vec![run_phase("FHIR import, 1,000 resources", imports, 1, import).await?];

    // A patient with 100 records of three results each (stored directly: setup, not timed).
    let name = "bench-fhir-search";
    let token = Arc::new(patient_token(&svc, name).await?);
    let (_, session) = svc.login(name, PW, "bench").await?;
    let session = session.patient()?;
    for r in 0..SEARCH_RECORDS {
        svc.put_record(&session, bundle(3, r).to_string().as_bytes())
            .await
            .context("storing the searched patient's records")?;
    }
    let search = move |_: usize| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let r = http
                .get(format!(
                    "{base}/Observation?code=http://loinc.org|2339-0&_count=1000"
                ))
                .bearer_auth(token.as_str())
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "search: {}", r.text().await?);
            let b: Value = r.json().await?;
            anyhow::ensure!(
                b["total"] == 3 * SEARCH_RECORDS,
                "search found {}",
                b["total"]
            );
            anyhow::Ok(())
        }
    };
    out.push(run_phase("FHIR search, 100 records", searches, 1, search).await?);
    Ok(out)
}
