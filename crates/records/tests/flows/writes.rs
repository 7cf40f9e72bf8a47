//! Clinicians write: a patient grants a provider write access (one record or all, with its
//! own expiry and revocation); the provider adds resources as a new version of the
//! patient's record or a new record the patient owns; each such version names its author
//! (a Provenance, and the chain); without write access nothing is read or stored.

use super::*;
use serde_json::{Value, json};

pub(super) fn observation(subject: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "category": [{ "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory" }] }],
                "code": { "coding": [{ "system": "http://loinc.org", "code": "2339-0", "display": "Glucose" }] },
                "subject": { "reference": subject },
                "valueQuantity": { "value": 5.4, "unit": "mmol/L",
                    "system": "http://unitsofmeasure.org", "code": "mmol/L" }
            },
            "request": { "method": "POST", "url": "Observation" }
        }]
    }))
    .unwrap()
}

fn types(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_owned())
        .collect()
}

fn blocks(fx: &Fx) -> usize {
    fx.stores.iter().map(|s| s.blocks().len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_with_write_access_adds_to_the_patients_record_and_is_named_its_author() {
    let fx = fixture().await;
    let (alice, alice_id) = fx.patient("alice").await;
    fx.svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let bob = fx.provider("drbob").await;
    let eve = fx.provider("dreve").await;

    // Without a write grant: refused, nothing read, nothing stored.
    let before = (blocks(&fx), fx.reads_by(&alice, bob.address()).await);
    fx.svc
        .grant(&alice, "drbob", None, now() + 3600)
        .await
        .unwrap();
    match fx
        .svc
        .add_resources(
            &bob,
            alice_id,
            Some(1),
            &observation(&format!("Patient/{alice_id}")),
        )
        .await
    {
        Err(Error::WriteDenied { reason, .. }) => assert_eq!(reason, AccessStatus::NoGrant),
        other => panic!("expected write denied, got {other:?}"),
    }
    assert_eq!(
        (blocks(&fx), fx.reads_by(&alice, bob.address()).await),
        before
    );
    // Another patient's id, or none: the same answer.
    assert!(matches!(
        fx.svc
            .add_resources(&bob, 999, None, &observation("Patient/999"))
            .await,
        Err(Error::WriteDenied { .. })
    ));

    // Write access to record 1: a new version, owned by Alice, written by Dr Bob.
    fx.svc
        .grant_write(&alice, "drbob", Some(1), now() + 3600)
        .await
        .unwrap();
    let stored = fx
        .svc
        .add_resources(
            &bob,
            alice_id,
            Some(1),
            &observation(&format!("Patient/{alice_id}")),
        )
        .await
        .unwrap();
    assert_eq!((stored.record_id, stored.version), (1, 2));
    let read = fx.svc.read_record(&alice, 1, None).await.unwrap();
    assert_eq!(read.owner, alice.address());
    assert_eq!(
        types(&read.bundle),
        ["Patient", "Condition", "Observation", "Provenance"]
    );
    let prov = &read.bundle["entry"][3]["resource"];
    assert_eq!(
        prov["agent"][0]["who"]["identifier"]["value"],
        bob.address().to_string()
    );
    assert_eq!(
        prov["target"][0]["reference"],
        read.bundle["entry"][2]["fullUrl"]
    );
    // The Observation is about Alice's Patient, in the record.
    let patient = &read.bundle["entry"][0]["resource"];
    assert_eq!(
        read.bundle["entry"][2]["resource"]["subject"]["reference"],
        format!("Patient/{}", patient["id"].as_str().unwrap())
    );
    // The patient sees who wrote what.
    let mine = fx.svc.my_records(&alice).await.unwrap();
    let v = &mine[0].versions;
    assert_eq!(
        (v[0].author, v[0].author_name.as_deref()),
        (alice.address(), None)
    );
    assert_eq!(v[1].author, bob.address());
    assert_eq!(v[1].author_name.as_deref(), Some("drbob"));
    let grants = fx.svc.grants(&alice).await.unwrap();
    let w = grants
        .iter()
        .find(|g| g.record_id == Some(1))
        .and_then(|g| g.write)
        .unwrap();
    assert!(w.active);
    let shared = fx.svc.shared_with_me(&bob).await.unwrap();
    assert_eq!(
        shared[0].write_until, None,
        "the all-records read grant has no write"
    );

    // Not a new record: that needs the all-records write grant. Not for Dr Eve.
    assert!(matches!(
        fx.svc
            .add_resources(&bob, alice_id, None, &observation("Patient/1"))
            .await,
        Err(Error::WriteDenied {
            record_id: None,
            ..
        })
    ));
    assert!(matches!(
        fx.svc
            .add_resources(&eve, alice_id, Some(1), &observation("Patient/1"))
            .await,
        Err(Error::WriteDenied { .. })
    ));

    // A bad bundle changes nothing.
    let before = blocks(&fx);
    assert!(matches!(
        fx.svc
            .add_resources(&bob, alice_id, Some(1), &observation("Patient/12345"))
            .await,
        Err(Error::InvalidRecord(_))
    ));
    assert_eq!(blocks(&fx), before);
    assert_eq!(fx.svc.my_records(&alice).await.unwrap()[0].version, 2);

    // All records: a new record Alice owns.
    fx.svc
        .grant_write(&alice, "drbob", None, now() + 3600)
        .await
        .unwrap();
    let mut with_patient: Value =
        serde_json::from_slice(&observation(&format!("Patient/{alice_id}"))).unwrap();
    with_patient["entry"]
        .as_array_mut()
        .unwrap()
        .insert(0, read.bundle["entry"][0].clone());
    with_patient["entry"][0]["request"] = json!({ "method": "POST", "url": "Patient" });
    let new = fx
        .svc
        .add_resources(
            &bob,
            alice_id,
            None,
            &serde_json::to_vec(&with_patient).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(new.version, 1);
    let mine = fx.svc.my_records(&alice).await.unwrap();
    assert_eq!(mine.len(), 2, "the new record is Alice's");
    assert_eq!(mine[1].versions[0].author, bob.address());
    let read = fx
        .svc
        .read_record(&alice, new.record_id, None)
        .await
        .unwrap();
    assert_eq!(
        types(&read.bundle),
        ["Patient", "Observation", "Provenance"]
    );

    // Revoked: writing ends, reading stays.
    fx.svc.revoke_write(&alice, "drbob", None).await.unwrap();
    fx.svc.revoke_write(&alice, "drbob", Some(1)).await.unwrap();
    match fx
        .svc
        .add_resources(&bob, alice_id, Some(1), &observation("Patient/1"))
        .await
    {
        Err(Error::WriteDenied { reason, .. }) => assert_eq!(reason, AccessStatus::Revoked),
        other => panic!("expected write denied, got {other:?}"),
    }
    fx.svc.read_record(&bob, 1, None).await.unwrap();
    assert!(matches!(
        fx.svc.revoke_write(&alice, "dreve", None).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_adds_resources_to_its_own_record() {
    let fx = fixture().await;
    let (alice, alice_id) = fx.patient("alice").await;
    let (carol, _) = fx.patient("carol").await;
    fx.svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let stored = fx
        .svc
        .add_to_own_record(&alice, 1, &observation(&format!("Patient/{alice_id}")))
        .await
        .unwrap();
    assert_eq!(stored.version, 2);
    let read = fx.svc.read_record(&alice, 1, None).await.unwrap();
    assert_eq!(types(&read.bundle), ["Patient", "Condition", "Observation"]);
    assert!(matches!(
        fx.svc
            .add_to_own_record(&carol, 1, &observation("Patient/1"))
            .await,
        Err(Error::InvalidInput {
            field: "record_id",
            ..
        })
    ));
}
