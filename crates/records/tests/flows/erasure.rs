//! Leaving (issue 18 item 3): a patient deletes their account; the chain erases every
//! record, every node destroys the records' blocks and its key shares — checked node by
//! node against what each held — and a node that was down does so when it is back, before
//! it serves again. Reads afterwards are `Erased` for everyone; the access log stays.

use std::collections::BTreeSet;

use ehr_chain::Erasure;

use super::*;

/// Every block each node holds, by CID.
fn holdings(fx: &Fx) -> Vec<BTreeSet<Cid>> {
    held(&fx.stores)
}

fn held(stores: &[Arc<MemoryStore>]) -> Vec<BTreeSet<Cid>> {
    stores
        .iter()
        .map(|s| s.blocks().into_iter().map(|(c, _)| c).collect())
        .collect()
}

/// Alice (two records, one in two versions) among others: a provider she granted, who
/// read, and Carol, who stays. Returns the holdings before Alice's records and after.
async fn alice_among_others(
    fx: &Fx,
) -> (
    PatientSession,
    u64,
    ProviderSession,
    PatientSession,
    Vec<BTreeSet<Cid>>,
    Vec<BTreeSet<Cid>>,
) {
    let bob = fx.provider("drbob").await;
    let (carol, _) = fx.patient("carol").await;
    fx.svc
        .put_form(&carol, &form("Carol Roe", "Migraine"))
        .await
        .unwrap();
    let (alice, alice_id) = fx.patient("alice").await;
    let before = holdings(fx);
    let first = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    fx.svc
        .update_form(
            &alice,
            first.record_id,
            &form("Alice Doe", "Asthma; hay fever"),
        )
        .await
        .unwrap();
    fx.svc
        .put_form(&alice, &form("Alice Doe", "Eczema"))
        .await
        .unwrap();
    fx.svc
        .grant(&alice, "drbob", None, now() + 3600)
        .await
        .unwrap();
    assert_eq!(
        fx.svc.patient_records(&bob, alice_id).await.unwrap().len(),
        2
    );
    let with_alice = holdings(fx);
    for (i, (b, a)) in before.iter().zip(&with_alice).enumerate() {
        // Three versions: a fragment and a share block each on every node at least.
        assert!(
            a.len() >= b.len() + 6,
            "node {} holds {} of Alice's blocks",
            i + 1,
            a.len() - b.len()
        );
    }
    (alice, alice_id, bob, carol, before, with_alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_destroys_every_block_and_share_node_by_node() {
    let fx = fixture().await;
    let (alice, alice_id, bob, carol, before, with_alice) = alice_among_others(&fx).await;
    let alice_records = fx.chain.records_of(alice.address()).await.unwrap();
    assert_eq!(alice_records.len(), 2);

    // A wrong password changes nothing.
    assert!(matches!(
        fx.svc.delete_account(&alice, "not her password", "t").await,
        Err(Error::Accounts(_))
    ));
    assert_eq!(holdings(&fx), with_alice);
    assert!(!fx.chain.is_erased(alice_records[0]).await.unwrap());
    assert!(fx.svc.account("alice").is_some());

    let receipt = fx.svc.delete_account(&alice, PW, "t").await.unwrap();
    let listed: Vec<_> = receipt
        .records
        .iter()
        .map(|r| (r.record_id, r.versions.clone()))
        .collect();
    assert_eq!(
        listed,
        [(alice_records[0], vec![1, 2]), (alice_records[1], vec![1])]
    );
    assert!(receipt.tx_hash.is_some());
    assert_eq!(receipt.nodes.len(), 5);
    for (i, n) in receipt.nodes.iter().enumerate() {
        assert!(n.confirmed, "{n:?}");
        let held = with_alice[i].len() - before[i].len();
        assert_eq!(
            n.blocks_deleted as usize,
            held,
            "node {} deleted what it held of Alice's",
            i + 1
        );
    }

    // Node by node: exactly what it held before Alice's records, nothing of hers left,
    // nothing of anyone else's gone.
    assert_eq!(holdings(&fx), before);

    // Nobody reads them again, not the provider she granted, not break-glass.
    for id in &alice_records {
        assert!(fx.chain.is_erased(*id).await.unwrap());
        match fx.svc.read_record(&bob, *id, None).await {
            Err(Error::Erased(_)) => {}
            other => panic!("expected erased, got {other:?}"),
        }
        match fx.svc.read_record(&bob, *id, Some(1)).await {
            Err(Error::Erased(_)) => {}
            other => panic!("expected erased, got {other:?}"),
        }
    }
    assert!(matches!(
        fx.svc.patient_records(&bob, alice_id).await,
        Err(Error::Erased(_))
    ));
    assert!(matches!(
        fx.svc
            .emergency_access(&bob, alice_id, "unconscious in A&E")
            .await,
        Err(Error::Erased(_))
    ));
    // The account is gone; the audit trail stays.
    assert!(fx.svc.account("alice").is_none());
    assert!(fx.svc.login("alice", PW, "t").await.is_err());
    let log = fx
        .chain
        .access_log(alice_records[0], Some(bob.address()), None)
        .await
        .unwrap();
    assert_eq!(log.len(), 1, "the provider's read is still on the log");
    // Carol is untouched.
    let carol_records = fx.svc.my_records(&carol).await.unwrap();
    let read = fx
        .svc
        .read_record(&carol, carol_records[0].record_id, None)
        .await
        .unwrap();
    assert_eq!(read.form.unwrap().health_condition, "Migraine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_at_the_deletion_erases_when_it_is_back_before_it_serves() {
    let fx = fixture().await;
    let (alice, _, _, _, before, with_alice) = alice_among_others(&fx).await;
    let alice_records = fx.chain.records_of(alice.address()).await.unwrap();

    fx.nodes[4].down.store(true, Ordering::SeqCst);
    let receipt = fx.svc.delete_account(&alice, PW, "t").await.unwrap();
    assert!(receipt.nodes[..4].iter().all(|n| n.confirmed));
    assert!(!receipt.nodes[4].confirmed);
    assert!(receipt.nodes[4].error.is_some());
    let now_held = holdings(&fx);
    assert_eq!(now_held[..4], before[..4]);
    assert_eq!(
        now_held[4], with_alice[4],
        "the node that was down still holds them"
    );

    // Back, it catches up first: what its own manifests name goes at once; for the rest
    // it waits for the orders and serves no block meanwhile.
    let caught = fx.nodes[4].inner.catch_up_erasures().await.unwrap();
    let mut all: Vec<u64> = caught
        .erased
        .iter()
        .chain(&caught.waiting)
        .copied()
        .collect();
    all.sort_unstable();
    assert_eq!(all, alice_records);
    let any_block = *before[4].iter().next().unwrap();
    if caught.waiting.is_empty() {
        assert_eq!(holdings(&fx)[4], before[4]);
    } else {
        assert!(matches!(
            fx.nodes[4].inner.get_block(&any_block).await,
            Err(NodeError::Erasing(_))
        ));
    }

    // The journal outlives the server: a restart sends the orders still owed.
    fx.nodes[4].down.store(false, Ordering::SeqCst);
    drop(fx.svc);
    let restarted = restart(&fx._dir, &fx.chain, &fx.nodes).await;
    assert_eq!(restarted.settle_erasures().await.unwrap(), 0);
    assert_eq!(
        held(&fx.stores),
        before,
        "nothing of Alice's left on any node"
    );
    // And it serves again.
    assert!(fx.nodes[4].inner.get_block(&any_block).await.is_ok());
}
