//! Pruning (`EmbeddedChain::prune_below`): old blocks' bodies go, their headers, the state
//! and every index stay. Every registry query answers the same without any body; what needs
//! a body (`/rpc` blocks, transactions and receipts, `verify`) reads it from a
//! [`BodySource`], checked against the header kept — a lying source is caught.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::sol_types::SolEvent;
use ehr_chain::contract::EhrRegistry;
use ehr_chain::embedded::RawBody;
use ehr_chain::eth_api::Limits;
use ehr_chain::testing::drop_event_index;
use ehr_chain::{
    B256, BodySource, ChainConfig, EmbeddedChain, Error, LogQuery, PrivateKeySigner, Registry,
    RegistryExt, U256,
};
use serde_json::{Value, json};

use crate::eth_api::{Rig, api, hex, ok, rig, rpc};

/// Bodies kept aside before pruning, as the archive would hand them back.
#[derive(Default)]
struct Bodies {
    blocks: Mutex<HashMap<u64, RawBody>>,
    asked: Mutex<Vec<u64>>,
}

impl BodySource for Bodies {
    fn body(&self, n: u64) -> Result<Option<RawBody>, String> {
        self.asked.lock().unwrap().push(n);
        Ok(self.blocks.lock().unwrap().get(&n).cloned())
    }
}

/// Everything the registry answers about the rig's patient and records.
async fn registry_answers(chain: &EmbeddedChain, rig: &Rig) -> String {
    answers(chain, rig.alice.address(), [rig.record, rig.other_record]).await
}

async fn answers(chain: &EmbeddedChain, alice: ehr_chain::Address, records: [u64; 2]) -> String {
    let mut out = Vec::new();
    for id in records {
        out.push(format!(
            "{:?}",
            chain.access_log(id, None, None).await.unwrap()
        ));
        out.push(format!("{:?}", chain.record_versions(id).await.unwrap()));
        out.push(format!("{:?}", chain.record(id).await.unwrap()));
    }
    out.push(format!("{:?}", chain.grants_of(alice).await.unwrap()));
    out.push(format!("{:?}", chain.emergency_log(alice).await.unwrap()));
    out.push(format!("{:?}", chain.records_of(alice).await.unwrap()));
    let every_version = chain
        .logs(&LogQuery::event::<EhrRegistry::RecordVersion>())
        .await
        .unwrap();
    out.push(format!("{every_version:?}"));
    out.join("\n")
}

/// What `/rpc` answers about every block, its transactions and receipts, and the logs.
async fn rpc_answers(rig: &Rig) -> Vec<Value> {
    let api = api(rig, Limits::default());
    let head = rig.chain.head_number();
    let mut out = Vec::new();
    for n in 0..=head {
        let block = ok(&api, "eth_getBlockByNumber", json!([hex(n), true])).await;
        for tx in block["transactions"].as_array().unwrap() {
            let hash = tx["hash"].clone();
            out.push(ok(&api, "eth_getTransactionByHash", json!([hash])).await);
            out.push(ok(&api, "eth_getTransactionReceipt", json!([hash])).await);
        }
        out.push(block);
    }
    let every_log = json!({ "fromBlock": "earliest", "toBlock": "latest" });
    out.push(ok(&api, "eth_getLogs", json!([every_log])).await);
    let one_record = json!({
        "fromBlock": "earliest", "toBlock": "latest",
        "topics": [EhrRegistry::AccessLogged::SIGNATURE_HASH, B256::from(U256::from(rig.record))],
    });
    out.push(ok(&api, "eth_getLogs", json!([one_record])).await);
    out
}

/// The rig plus a break-glass read and a revocation, every body kept aside.
async fn grown() -> (Rig, Arc<Bodies>) {
    let rig = rig().await;
    rig.chain
        .emergency_access(
            &rig.doctor,
            rig.other_record,
            B256::repeat_byte(9),
            U256::from(11),
        )
        .await
        .unwrap();
    rig.chain
        .revoke_access(&rig.alice, rig.doctor.address(), Some(rig.record))
        .await
        .unwrap();
    let bodies = Arc::new(Bodies::default());
    for n in 0..=rig.chain.head_number() {
        let raw = rig.chain.raw_block(n).unwrap().unwrap();
        bodies.blocks.lock().unwrap().insert(n, raw);
    }
    (rig, bodies)
}

#[tokio::test]
async fn every_query_answers_the_same_after_pruning() {
    let (rig, bodies) = grown().await;
    let head = rig.chain.head_number();
    let registry_before = registry_answers(&rig.chain, &rig).await;
    let rpc_before = rpc_answers(&rig).await;

    let pruned = rig.chain.prune_below(head).unwrap();
    assert_eq!(
        pruned,
        head - 1,
        "blocks 1..head, never genesis or the head"
    );
    assert_eq!(rig.chain.pruned_below().unwrap(), head);
    // Pruning again is a no-op.
    assert_eq!(rig.chain.prune_below(head).unwrap(), 0);

    // The registry needs no body at all.
    assert_eq!(registry_answers(&rig.chain, &rig).await, registry_before);
    assert!(bodies.asked.lock().unwrap().is_empty());
    // `/rpc` without the archive says plainly what is missing.
    let a = api(&rig, Limits::default());
    let e = rpc(&a, "eth_getBlockByNumber", json!([hex(1), true]))
        .await
        .unwrap_err();
    assert!(e.message.contains("pruned"), "{e:?}");
    assert!(matches!(
        rig.chain.raw_block(1),
        Err(Error::Pruned { block: 1 })
    ));

    drop(a);
    // With the archive, byte for byte the same.
    rig.chain.set_body_source(bodies.clone());
    assert_eq!(rpc_answers(&rig).await, rpc_before);
    assert!(!bodies.asked.lock().unwrap().is_empty());
    assert_eq!(
        rig.chain.raw_block(1).unwrap().as_ref(),
        bodies.blocks.lock().unwrap().get(&1)
    );

    // It carries on, and reopens from its stored state with the same answers.
    rig.chain
        .grant_access(
            &rig.alice,
            rig.doctor.address(),
            Some(rig.record),
            ehr_primitives::unix_now() + 600,
        )
        .await
        .unwrap();
    let registry_later = registry_answers(&rig.chain, &rig).await;
    let (alice, records) = (rig.alice.address(), [rig.record, rig.other_record]);
    let dir = rig._dir.path().to_path_buf();
    let contract = rig.chain.contract();
    let Rig { _dir, chain, .. } = rig;
    assert_eq!(Arc::strong_count(&chain), 1, "nothing else holds the chain");
    drop(chain);
    let reopened =
        EmbeddedChain::open(&dir, ChainConfig::default(), &PrivateKeySigner::random()).unwrap();
    assert_eq!(reopened.contract(), contract);
    assert_eq!(reopened.pruned_below().unwrap(), head);
    assert_eq!(answers(&reopened, alice, records).await, registry_later);
    drop(reopened);
    drop(_dir);
}

#[tokio::test]
async fn verify_of_a_pruned_chain_re_executes_from_the_archive() {
    let (rig, bodies) = grown().await;
    let head = rig.chain.head_number();
    let dir = rig._dir.path().to_path_buf();
    let id = ChainConfig::default().chain_id;
    let Rig { _dir, chain, .. } = rig;
    drop(chain);
    let before = EmbeddedChain::verify(&dir, id);
    let chain =
        EmbeddedChain::open(&dir, ChainConfig::default(), &PrivateKeySigner::random()).unwrap();
    chain.prune_below(head).unwrap();
    drop(chain);
    // Without the archive it cannot: it says which block it lacks.
    match EmbeddedChain::verify(&dir, id) {
        Err(Error::Pruned { block }) => assert_eq!(block, 1),
        other => panic!("verify without the archive said {other:?}"),
    }
    let report = EmbeddedChain::verify_with(&dir, id, Some(bodies.as_ref())).unwrap();
    assert_eq!(report, before.unwrap());
    // An archive whose copy of a block differs from the header kept here is caught.
    for (what, f) in [
        (
            "a flipped transaction bit",
            (|b: &mut (Vec<u8>, Vec<u8>)| {
                let n = b.0.len();
                b.0[n - 40] ^= 1;
            }) as fn(&mut (Vec<u8>, Vec<u8>)),
        ),
        ("altered receipts", |b| {
            let n = b.1.len();
            b.1[n - 1] ^= 1;
        }),
    ] {
        let lying = Bodies::default();
        *lying.blocks.lock().unwrap() = bodies.blocks.lock().unwrap().clone();
        f(lying.blocks.lock().unwrap().get_mut(&2).unwrap());
        match EmbeddedChain::verify_with(&dir, id, Some(&lying)) {
            Err(Error::Tampered { block, reason }) => assert_eq!(block, 2, "{what}: {reason}"),
            other => panic!("{what}: verify said {other:?}"),
        }
    }
    drop(_dir);
}

#[tokio::test]
async fn a_chain_indexed_before_the_event_index_gets_it_once() {
    let (rig, _) = grown().await;
    let registry_before = registry_answers(&rig.chain, &rig).await;
    let dir = rig._dir.path().to_path_buf();
    let Rig {
        _dir,
        chain,
        alice,
        doctor,
        record,
        other_record,
    } = rig;
    drop(chain);
    drop_event_index(&dir).unwrap();
    let id = ChainConfig::default().chain_id;
    assert!(
        EmbeddedChain::verify(&dir, id).is_err(),
        "verify notices the missing index"
    );
    let chain = Arc::new(
        EmbeddedChain::open(&dir, ChainConfig::default(), &PrivateKeySigner::random()).unwrap(),
    );
    let rig = Rig {
        _dir,
        chain,
        alice,
        doctor,
        record,
        other_record,
    };
    assert_eq!(registry_answers(&rig.chain, &rig).await, registry_before);
    let Rig { _dir, chain, .. } = rig;
    drop(chain);
    EmbeddedChain::verify(&dir, id).unwrap();
    drop(_dir);
}
