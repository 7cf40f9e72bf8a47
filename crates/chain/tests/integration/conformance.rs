//! One conformance suite for every Registry backend: the embedded revm chain and a real
//! anvil node over JSON-RPC. Every permission rule, every denial, events, expiry (by moving
//! time), revocation at the next call, versions, and the gas targets.

use std::time::{SystemTime, UNIX_EPOCH};

use ehr_chain::contract::{EhrRegistry as C, EhrRegistryErrors as E, codec};
use ehr_chain::testing::{ANVIL_DEV_KEY, Anvil, TestChain};
use ehr_chain::{
    AccessStatus, Address, B256, ChainConfig, EmbeddedChain, Erasure, Error, NodeSet,
    PrivateKeySigner, RegistryExt, RpcRegistry, U256, WriteAccess,
};

/// Gas targets (whole transaction, 21,000 base included) from the chain issue.
use ehr_chain::gas::{ADD_RECORD_MAX, GRANT_ACCESS_MAX, LOG_ACCESS_MAX};

struct World<R> {
    chain: R,
    admin: PrivateKeySigner,
    _guard: Box<dyn std::any::Any>,
}

async fn embedded() -> World<EmbeddedChain> {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = EmbeddedChain::open(dir.path(), ChainConfig::default(), &admin).unwrap();
    World {
        chain,
        admin,
        _guard: Box::new(dir),
    }
}

async fn anvil() -> World<RpcRegistry> {
    let node = Anvil::spawn().expect("anvil from contracts/node_modules");
    let admin: PrivateKeySigner = ANVIL_DEV_KEY.parse().unwrap();
    let chain = RpcRegistry::deploy(&node.url, &admin).await.unwrap();
    World {
        chain,
        admin,
        _guard: Box::new(node),
    }
}

async fn account<R: TestChain>(w: &World<R>) -> PrivateKeySigner {
    let s = PrivateKeySigner::random();
    w.chain.fund(s.address()).await.unwrap();
    s
}

async fn patient<R: TestChain>(w: &World<R>) -> PrivateKeySigner {
    let s = account(w).await;
    w.chain.register_patient(&s).await.unwrap();
    s
}

async fn provider<R: TestChain>(w: &World<R>) -> PrivateKeySigner {
    let s = account(w).await;
    w.chain
        .register_provider(&w.admin, s.address(), B256::ZERO)
        .await
        .unwrap();
    s
}

fn digest(n: u8) -> B256 {
    B256::repeat_byte(n)
}

async fn chain_now<R: TestChain>(w: &World<R>) -> u64 {
    let head = w.chain.info().await.unwrap().head_timestamp;
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    head.max(wall)
}

/// The contract's reason, or a panic naming what came back instead.
fn reason<T: std::fmt::Debug>(r: Result<T, Error>) -> E {
    match r {
        Err(Error::Contract(ehr_chain::ContractError::Known(e))) => e,
        other => panic!("expected a contract error, got {other:?}"),
    }
}

async fn registration<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let a = account(&w).await;
    let b = account(&w).await;
    let (ida, _) = c.register_patient(&a).await.unwrap();
    let (idb, _) = c.register_patient(&b).await.unwrap();
    assert_eq!((ida, idb), (1, 2), "patient ids are sequential from 1");
    assert_eq!(c.patient_id(a.address()).await.unwrap(), Some(1));
    assert_eq!(c.patient_address(2).await.unwrap(), Some(b.address()));
    assert_eq!(c.patient_address(3).await.unwrap(), None);
    assert!(matches!(
        reason(c.register_patient(&a).await),
        E::AlreadyRegistered(_)
    ));

    let p = account(&w).await;
    assert!(matches!(
        reason(c.register_provider(&a, p.address(), B256::ZERO).await),
        E::NotRegistrar(_)
    ));
    assert!(!c.is_provider(p.address()).await.unwrap());
    c.register_provider(&w.admin, p.address(), B256::ZERO)
        .await
        .unwrap();
    assert!(c.is_provider(p.address()).await.unwrap());
    assert!(matches!(
        reason(c.register_provider(&w.admin, p.address(), B256::ZERO).await),
        E::AlreadyRegistered(_)
    ));
    assert!(matches!(
        reason(
            c.register_provider(&w.admin, Address::ZERO, B256::ZERO)
                .await
        ),
        E::ZeroAddress(_)
    ));
    // The provider changes its own directory entry: the latest registration carries it;
    // nobody else can, and neither can a deregistered provider (below).
    c.update_profile(&p, digest(7)).await.unwrap();
    let regs = c.provider_registrations(p.address()).await.unwrap();
    assert_eq!(
        regs.iter().map(|r| r.profile).collect::<Vec<_>>(),
        [B256::ZERO, digest(7)]
    );
    assert!(
        c.providers()
            .await
            .unwrap()
            .iter()
            .any(|r| r.provider == p.address() && r.profile == digest(7))
    );
    assert!(c.is_provider(p.address()).await.unwrap());
    assert!(matches!(
        reason(c.update_profile(&a, digest(8)).await),
        E::NotRegisteredProvider(_)
    ));
    assert!(matches!(
        reason(c.deregister_provider(&a, p.address()).await),
        E::NotRegistrar(_)
    ));
    c.deregister_provider(&w.admin, p.address()).await.unwrap();
    assert!(matches!(
        reason(c.update_profile(&p, digest(8)).await),
        E::NotRegisteredProvider(_)
    ));
    assert!(!c.is_provider(p.address()).await.unwrap());
    assert!(matches!(
        reason(c.deregister_provider(&w.admin, p.address()).await),
        E::NotRegisteredProvider(_)
    ));
    assert_eq!(c.admin().await.unwrap(), w.admin.address());
}

async fn records_and_versions<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let stranger = account(&w).await;
    assert!(matches!(
        reason(c.add_record(&stranger, digest(1), codec::DAG_CBOR).await),
        E::NotRegisteredPatient(_)
    ));
    let alice = patient(&w).await;
    let bob = patient(&w).await;
    assert!(matches!(
        reason(c.add_record(&alice, B256::ZERO, codec::RAW).await),
        E::ZeroDigest(_)
    ));
    let (r1, _) = c
        .add_record(&alice, digest(1), codec::DAG_CBOR)
        .await
        .unwrap();
    let (r2, _) = c.add_record(&bob, digest(2), codec::RAW).await.unwrap();
    let (r3, _) = c
        .add_record(&alice, digest(3), codec::DAG_CBOR)
        .await
        .unwrap();
    assert_eq!((r1, r2, r3), (1, 2, 3), "record ids are sequential from 1");
    assert_eq!(c.records_of(alice.address()).await.unwrap(), vec![1, 3]);
    assert_eq!(c.records_of(bob.address()).await.unwrap(), vec![2]);
    assert_eq!(
        c.records_of(stranger.address()).await.unwrap(),
        Vec::<u64>::new()
    );

    let rec = c.record(r1).await.unwrap();
    assert_eq!(
        (rec.owner, rec.version, rec.digest, rec.codec),
        (alice.address(), 1, digest(1), codec::DAG_CBOR)
    );

    assert!(matches!(
        reason(c.update_record(&bob, r1, digest(9), codec::RAW).await),
        E::NotRecordOwner(_)
    ));
    assert!(matches!(
        reason(c.update_record(&alice, 99, digest(9), codec::RAW).await),
        E::UnknownRecord(_)
    ));
    assert!(matches!(
        reason(c.update_record(&alice, r1, B256::ZERO, codec::RAW).await),
        E::ZeroDigest(_)
    ));
    let (v2, _) = c
        .update_record(&alice, r1, digest(11), codec::RAW)
        .await
        .unwrap();
    let (v3, _) = c
        .update_record(&alice, r1, digest(12), codec::DAG_CBOR)
        .await
        .unwrap();
    assert_eq!((v2, v3), (2, 3));
    let rec = c.record(r1).await.unwrap();
    assert_eq!(
        (rec.version, rec.digest, rec.codec),
        (3, digest(12), codec::DAG_CBOR)
    );
    let versions = c.record_versions(r1).await.unwrap();
    let seen: Vec<_> = versions.iter().map(|v| (v.version, v.digest)).collect();
    assert_eq!(
        seen,
        vec![(1, digest(1)), (2, digest(11)), (3, digest(12))],
        "every version stays visible"
    );
    assert!(
        versions
            .windows(2)
            .all(|w| w[0].timestamp <= w[1].timestamp)
    );
    assert!(matches!(reason(c.record(42).await), E::UnknownRecord(_)));
}

async fn grants_expiry_revocation<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let alice = patient(&w).await;
    let doc = provider(&w).await;
    let nobody = account(&w).await;
    let (r1, _) = c.add_record(&alice, digest(1), codec::RAW).await.unwrap();
    let (r2, _) = c.add_record(&alice, digest(2), codec::RAW).await.unwrap();
    let nonce = U256::from(7);

    // The owner always reads; strangers and ungranted providers never do.
    c.log_access(&alice, r1, nonce).await.unwrap();
    assert!(matches!(
        reason(c.log_access(&nobody, r1, nonce).await),
        E::NotRegisteredProvider(_)
    ));
    assert!(matches!(
        reason(c.log_access(&doc, r1, nonce).await),
        E::NoGrant(_)
    ));
    assert!(matches!(
        reason(c.log_access(&doc, 77, nonce).await),
        E::UnknownRecord(_)
    ));
    assert_eq!(
        c.access_status(doc.address(), r1).await.unwrap().0,
        AccessStatus::NoGrant
    );
    assert!(!c.can_access(doc.address(), r1).await.unwrap());

    // Bad grants change nothing.
    let now = chain_now(&w).await;
    assert!(matches!(
        reason(c.grant_access(&alice, doc.address(), None, now - 1).await),
        E::ExpiryInPast(_)
    ));
    assert!(matches!(
        reason(
            c.grant_access(&alice, nobody.address(), None, now + 3600)
                .await
        ),
        E::NotRegisteredProvider(_)
    ));
    assert!(matches!(
        reason(c.revoke_access(&alice, doc.address(), None).await),
        E::NoGrant(_)
    ));

    // A grant for one record covers that record only.
    c.grant_access(&alice, doc.address(), Some(r1), now + 3600)
        .await
        .unwrap();
    assert!(c.can_access(doc.address(), r1).await.unwrap());
    assert!(!c.can_access(doc.address(), r2).await.unwrap());
    let receipt = c.log_access(&doc, r1, U256::from(1001)).await.unwrap();
    assert!(matches!(
        reason(c.log_access(&doc, r2, nonce).await),
        E::NoGrant(_)
    ));
    let logged = c
        .access_log(r1, Some(doc.address()), Some(U256::from(1001)))
        .await
        .unwrap();
    assert_eq!(logged.len(), 1, "exactly one AccessLogged for that nonce");
    assert_eq!(logged[0].tx_hash, receipt.tx_hash);
    assert_eq!(logged[0].reader, doc.address());
    assert!(
        c.access_log(r1, Some(doc.address()), Some(U256::from(1002)))
            .await
            .unwrap()
            .is_empty()
    );

    // Revocation takes effect at the next call.
    c.revoke_access(&alice, doc.address(), Some(r1))
        .await
        .unwrap();
    assert!(matches!(
        reason(c.log_access(&doc, r1, nonce).await),
        E::GrantRevoked(_)
    ));
    assert_eq!(
        c.access_status(doc.address(), r1).await.unwrap().0,
        AccessStatus::Revoked
    );

    // An all-records grant covers every record; granting again lifts a revocation.
    let now = chain_now(&w).await;
    c.grant_access(&alice, doc.address(), None, now + 100)
        .await
        .unwrap();
    assert!(c.can_access(doc.address(), r1).await.unwrap());
    assert!(c.can_access(doc.address(), r2).await.unwrap());
    c.log_access(&doc, r2, nonce).await.unwrap();
    c.grant_access(&alice, doc.address(), Some(r1), now + 50)
        .await
        .unwrap();
    assert_eq!(
        c.grant(alice.address(), doc.address(), Some(r1))
            .await
            .unwrap()
            .revoked_at,
        0
    );

    // Expiry: move time past both grants.
    c.advance_time(200).await.unwrap();
    let (status, at) = c.access_status(doc.address(), r2).await.unwrap();
    assert_eq!((status, at), (AccessStatus::Expired, now + 100));
    assert!(matches!(
        reason(c.log_access(&doc, r1, nonce).await),
        E::GrantExpired(_)
    ));
    assert!(matches!(
        reason(c.log_access(&doc, r2, nonce).await),
        E::GrantExpired(_)
    ));

    // Deregistering a provider ends every grant it holds at once.
    let now = chain_now(&w).await;
    c.grant_access(&alice, doc.address(), None, now + 3600)
        .await
        .unwrap();
    c.log_access(&doc, r2, nonce).await.unwrap();
    c.deregister_provider(&w.admin, doc.address())
        .await
        .unwrap();
    assert!(matches!(
        reason(c.log_access(&doc, r2, nonce).await),
        E::NotRegisteredProvider(_)
    ));

    // A grant made by someone who does not own the record is inert.
    let mallory = patient(&w).await;
    let doc2 = provider(&w).await;
    c.grant_access(&mallory, doc2.address(), Some(r1), now + 3600)
        .await
        .unwrap();
    assert!(matches!(
        reason(c.log_access(&doc2, r1, nonce).await),
        E::NoGrant(_)
    ));
}

async fn emergency<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let alice = patient(&w).await;
    let doc = provider(&w).await;
    let nobody = account(&w).await;
    let (r1, _) = c.add_record(&alice, digest(1), codec::RAW).await.unwrap();
    let why = digest(0xee);
    assert!(matches!(
        reason(c.emergency_access(&nobody, r1, why, U256::from(1)).await),
        E::NotRegisteredProvider(_)
    ));
    assert!(matches!(
        reason(
            c.emergency_access(&doc, r1, B256::ZERO, U256::from(1))
                .await
        ),
        E::ZeroReason(_)
    ));
    assert!(matches!(
        reason(c.emergency_access(&doc, 99, why, U256::from(1)).await),
        E::UnknownRecord(_)
    ));
    assert!(c.emergency_log(alice.address()).await.unwrap().is_empty());

    c.emergency_access(&doc, r1, why, U256::from(5))
        .await
        .unwrap();
    let log = c.emergency_log(alice.address()).await.unwrap();
    assert_eq!(log.len(), 1, "the patient sees the break-glass event");
    assert_eq!(
        (log[0].provider, log[0].record_id, log[0].reason_digest),
        (doc.address(), r1, why)
    );
    assert_eq!(
        c.access_log(r1, Some(doc.address()), Some(U256::from(5)))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(c.can_access(doc.address(), r1).await.unwrap());
    c.log_access(&doc, r1, U256::from(6)).await.unwrap();

    // Time-boxed: gone after the window.
    c.advance_time(4 * 3600 + 10).await.unwrap();
    assert!(!c.can_access(doc.address(), r1).await.unwrap());
    assert!(matches!(
        reason(c.log_access(&doc, r1, U256::from(7)).await),
        E::NoGrant(_)
    ));

    // The patient can end it early.
    c.emergency_access(&doc, r1, why, U256::from(8))
        .await
        .unwrap();
    c.revoke_access(&alice, doc.address(), Some(r1))
        .await
        .unwrap();
    assert!(!c.can_access(doc.address(), r1).await.unwrap());
}

/// A read that only a break-glass window allows is flagged `emergency` in its
/// `AccessLogged` event; a read under a grant is not; ending the window holds until a new
/// break-glass, which is an event of its own.
async fn emergency_reads_flagged<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let alice = patient(&w).await;
    let doc = provider(&w).await;
    let (r1, _) = c.add_record(&alice, digest(1), codec::RAW).await.unwrap();
    let (r2, _) = c.add_record(&alice, digest(2), codec::RAW).await.unwrap();
    let now = chain_now(&w).await;
    c.grant_access(&alice, doc.address(), Some(r2), now + 3600)
        .await
        .unwrap();
    c.emergency_access(&doc, r1, digest(0xe1), U256::from(1))
        .await
        .unwrap();
    c.log_access(&doc, r1, U256::from(2)).await.unwrap();
    c.log_access(&doc, r2, U256::from(3)).await.unwrap();
    c.log_access(&alice, r1, U256::from(4)).await.unwrap();
    let flags = |log: Vec<ehr_chain::AccessEntry>| {
        log.iter()
            .map(|e| (e.nonce.to::<u64>(), e.emergency))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        flags(c.access_log(r1, None, None).await.unwrap()),
        vec![(1, true), (2, true), (4, false)],
        "break-glass reads are flagged, the owner's are not"
    );
    assert_eq!(
        flags(c.access_log(r2, None, None).await.unwrap()),
        vec![(3, false)],
        "a read under a grant is not an emergency read"
    );

    // Ending the window holds: no read, not even a flagged one.
    c.revoke_access(&alice, doc.address(), Some(r1))
        .await
        .unwrap();
    assert_eq!(
        c.grant(alice.address(), doc.address(), Some(r1))
            .await
            .unwrap()
            .emergency_until,
        0
    );
    assert!(matches!(
        reason(c.log_access(&doc, r1, U256::from(5)).await),
        E::GrantRevoked(_)
    ));
    // A new break-glass is possible, but it is a new event with its own reason.
    c.emergency_access(&doc, r1, digest(0xe2), U256::from(6))
        .await
        .unwrap();
    let log = c.emergency_log(alice.address()).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.reason_digest).collect::<Vec<_>>(),
        vec![digest(0xe1), digest(0xe2)]
    );
    c.log_access(&doc, r1, U256::from(7)).await.unwrap();
    assert_eq!(
        flags(
            c.access_log(r1, Some(doc.address()), Some(U256::from(7)))
                .await
                .unwrap()
        ),
        vec![(7, true)]
    );
}

/// `revokeAll` ends the all-records grant, every record grant and every break-glass window
/// the provider holds on the caller's records, and nothing of anyone else's.
async fn revoke_all<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let alice = patient(&w).await;
    let bob = patient(&w).await;
    let doc = provider(&w).await;
    let other = provider(&w).await;
    let (r1, _) = c.add_record(&alice, digest(1), codec::RAW).await.unwrap();
    let (r2, _) = c.add_record(&alice, digest(2), codec::RAW).await.unwrap();
    let (r3, _) = c.add_record(&alice, digest(3), codec::RAW).await.unwrap();
    let (b1, _) = c.add_record(&bob, digest(4), codec::RAW).await.unwrap();
    assert!(matches!(
        reason(c.revoke_all(&alice, doc.address()).await),
        E::NoGrant(_)
    ));
    let now = chain_now(&w).await;
    c.grant_access(&alice, doc.address(), None, now + 3600)
        .await
        .unwrap();
    c.grant_access(&alice, doc.address(), Some(r2), now + 3600)
        .await
        .unwrap();
    c.grant_access(&alice, other.address(), None, now + 3600)
        .await
        .unwrap();
    c.grant_access(&bob, doc.address(), None, now + 3600)
        .await
        .unwrap();
    c.emergency_access(&doc, r3, digest(0xee), U256::from(1))
        .await
        .unwrap();
    for r in [r1, r2, r3, b1] {
        assert!(c.can_access(doc.address(), r).await.unwrap());
    }

    let receipt = c.revoke_all(&alice, doc.address()).await.unwrap();
    let revoked: Vec<u64> = receipt
        .logs
        .iter()
        .filter(|l| {
            use alloy::sol_types::SolEvent;
            l.topics().first() == Some(&C::AccessRevoked::SIGNATURE_HASH)
        })
        .filter_map(|l| {
            use alloy::sol_types::SolEvent;
            C::AccessRevoked::decode_log_data(&l.data)
                .ok()
                .map(|e| e.recordId.to::<u64>())
        })
        .collect();
    assert_eq!(revoked, vec![0, r3, r2], "one AccessRevoked per live scope");
    for r in [r1, r2, r3] {
        assert!(!c.can_access(doc.address(), r).await.unwrap(), "record {r}");
    }
    assert_eq!(
        c.grant(alice.address(), doc.address(), Some(r3))
            .await
            .unwrap()
            .emergency_until,
        0
    );
    assert!(
        c.can_access(other.address(), r1).await.unwrap(),
        "another provider keeps its grant"
    );
    assert!(
        c.can_access(doc.address(), b1).await.unwrap(),
        "another patient's grant holds"
    );
    // Nothing left to end.
    assert!(matches!(
        reason(c.revoke_all(&alice, doc.address()).await),
        E::NoGrant(_)
    ));
    // A grant given again works again.
    c.grant_access(&alice, doc.address(), Some(r1), now + 3600)
        .await
        .unwrap();
    assert!(c.can_access(doc.address(), r1).await.unwrap());
}

/// Times the contract stores in 40 bits are refused past 2^40 - 1, never wrapped.
async fn times_out_of_range<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let alice = patient(&w).await;
    let doc = provider(&w).await;
    let max = (1u64 << 40) - 1;
    for bad in [max + 1, (1u64 << 40) + 5, u64::MAX] {
        match reason(c.grant_access(&alice, doc.address(), None, bad).await) {
            E::TimeOutOfRange(e) => assert_eq!(e.time, U256::from(bad)),
            other => panic!("expected TimeOutOfRange for {bad}, got {other:?}"),
        }
    }
    assert!(
        c.grants_of(alice.address()).await.unwrap().is_empty(),
        "nothing stored"
    );
    c.grant_access(&alice, doc.address(), None, max)
        .await
        .unwrap();
    assert_eq!(
        c.grant(alice.address(), doc.address(), None)
            .await
            .unwrap()
            .expires_at,
        max
    );
}

async fn node_set<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let outsider = account(&w).await;
    assert_eq!(c.node_set().await.unwrap(), NodeSet::default());
    let nodes: Vec<_> = (1..=5u8)
        .map(|i| (Address::repeat_byte(i), B256::repeat_byte(i)))
        .collect();
    let good = NodeSet {
        k: 3,
        nodes: nodes.clone(),
        epoch: 0,
    };
    assert!(matches!(
        reason(c.set_node_set(&outsider, &good).await),
        E::NotAdmin(_)
    ));
    for bad in [
        NodeSet {
            k: 6,
            ..good.clone()
        },
        NodeSet {
            k: 1,
            ..good.clone()
        },
        NodeSet {
            k: 3,
            nodes: vec![(Address::ZERO, B256::repeat_byte(1)); 5],
            epoch: 0,
        },
        NodeSet {
            k: 3,
            nodes: vec![(Address::repeat_byte(1), B256::ZERO); 5],
            epoch: 0,
        },
    ] {
        assert!(matches!(
            reason(c.set_node_set(&w.admin, &bad).await),
            E::InvalidNodeSet(_)
        ));
    }
    c.set_node_set(&w.admin, &good).await.unwrap();
    assert_eq!(c.node_set().await.unwrap(), NodeSet { epoch: 1, ..good });
}

/// Organisations: the admin adds them with their registrars; a registrar registers and
/// deregisters its own providers only; an organisation with providers is not removed; a
/// removed organisation's (or a replaced) registrar loses the role at once.
async fn organisations<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let reg_a = account(&w).await;
    let reg_b = account(&w).await;
    let outsider = account(&w).await;
    assert!(matches!(
        reason(c.add_organisation(&outsider, reg_a.address(), "A").await),
        E::NotAdmin(_)
    ));
    for (who, name) in [(reg_a.address(), ""), (reg_a.address(), &"x".repeat(65))] {
        assert!(matches!(
            reason(c.add_organisation(&w.admin, who, name).await),
            E::InvalidName(_)
        ));
    }
    assert!(matches!(
        reason(c.add_organisation(&w.admin, w.admin.address(), "A").await),
        E::AlreadyRegistered(_)
    ));
    let (a, _) = c
        .add_organisation(&w.admin, reg_a.address(), "Hospital A")
        .await
        .unwrap();
    let (b, _) = c
        .add_organisation(&w.admin, reg_b.address(), "Hospital B")
        .await
        .unwrap();
    assert_eq!((a, b), (1, 2));
    assert!(matches!(
        reason(c.add_organisation(&w.admin, reg_a.address(), "again").await),
        E::AlreadyRegistered(_)
    ));
    assert_eq!(
        c.registrar_organisation(reg_b.address()).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        c.registrar_organisation(outsider.address()).await.unwrap(),
        None
    );

    let doc_a = account(&w).await;
    let doc_b = account(&w).await;
    let doc_admin = account(&w).await;
    c.register_provider(&reg_a, doc_a.address(), digest(0xa))
        .await
        .unwrap();
    c.register_provider(&reg_b, doc_b.address(), digest(0xb))
        .await
        .unwrap();
    c.register_provider(&w.admin, doc_admin.address(), B256::ZERO)
        .await
        .unwrap();
    assert_eq!(c.provider_of(doc_a.address()).await.unwrap(), (true, 1));
    assert_eq!(c.provider_of(doc_b.address()).await.unwrap(), (true, 2));
    assert_eq!(c.provider_of(doc_admin.address()).await.unwrap(), (true, 0));
    // B's registrar cannot deregister A's provider; the admin can deregister anyone's.
    let e = reason(c.deregister_provider(&reg_b, doc_a.address()).await);
    assert!(
        matches!(&e, E::NotOrganisationProvider(x) if x.provider == doc_a.address() && x.organisation == 1),
        "{e:?}"
    );
    assert!(c.is_provider(doc_a.address()).await.unwrap());
    let dir = c.providers().await.unwrap();
    let listed: Vec<_> = dir
        .iter()
        .map(|p| (p.provider, p.organisation, p.profile))
        .collect();
    assert_eq!(
        listed,
        [
            (doc_a.address(), 1, digest(0xa)),
            (doc_b.address(), 2, digest(0xb)),
            (doc_admin.address(), 0, B256::ZERO)
        ]
    );

    // A has a provider: not removed until its registrar deregisters it.
    assert!(matches!(
        reason(c.remove_organisation(&w.admin, a).await),
        E::OrganisationHasProviders(x) if x.providers == 1
    ));
    c.deregister_provider(&reg_a, doc_a.address())
        .await
        .unwrap();
    assert_eq!(c.provider_of(doc_a.address()).await.unwrap(), (false, 1));
    assert!(matches!(
        reason(c.remove_organisation(&outsider, a).await),
        E::NotAdmin(_)
    ));
    c.remove_organisation(&w.admin, a).await.unwrap();
    assert!(matches!(
        reason(c.remove_organisation(&w.admin, a).await),
        E::UnknownOrganisation(_)
    ));
    assert!(matches!(
        reason(
            c.register_provider(&reg_a, doc_a.address(), B256::ZERO)
                .await
        ),
        E::NotRegistrar(_)
    ));
    // A new registrar for B: the old one is out at once, the new one deregisters B's.
    let reg_b2 = account(&w).await;
    c.set_registrar(&w.admin, b, reg_b2.address())
        .await
        .unwrap();
    assert!(matches!(
        reason(c.deregister_provider(&reg_b, doc_b.address()).await),
        E::NotRegistrar(_)
    ));
    assert!(matches!(
        reason(c.set_registrar(&w.admin, a, outsider.address()).await),
        E::UnknownOrganisation(_)
    ));
    c.deregister_provider(&reg_b2, doc_b.address())
        .await
        .unwrap();

    let orgs = c.organisations().await.unwrap();
    let summary: Vec<_> = orgs
        .iter()
        .map(|o| (o.id, o.name.as_str(), o.registrar, o.providers, o.active))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "Hospital A", reg_a.address(), 0, false),
            (2, "Hospital B", reg_b2.address(), 0, true)
        ]
    );
    assert_eq!(
        c.providers()
            .await
            .unwrap()
            .iter()
            .map(|p| p.provider)
            .collect::<Vec<_>>(),
        [doc_admin.address()]
    );
}

async fn gas_targets<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let alice = patient(&w).await;
    let doc = provider(&w).await;
    // The first record of a patient is the most expensive (fresh slots everywhere).
    let (r1, add) = c
        .add_record(&alice, digest(1), codec::DAG_CBOR)
        .await
        .unwrap();
    let now = chain_now(&w).await;
    let grant = c
        .grant_access(&alice, doc.address(), None, now + 3600)
        .await
        .unwrap();
    let log = c.log_access(&doc, r1, U256::from(u64::MAX)).await.unwrap();
    // The dearest read: a record-scoped grant behind an absent all-records grant.
    let doc2 = provider(&w).await;
    c.grant_access(&alice, doc2.address(), Some(r1), now + 3600)
        .await
        .unwrap();
    let scoped = c.log_access(&doc2, r1, U256::MAX).await.unwrap();
    assert!(
        add.gas_used <= ADD_RECORD_MAX,
        "addRecord used {}",
        add.gas_used
    );
    assert!(
        grant.gas_used <= GRANT_ACCESS_MAX,
        "grantAccess used {}",
        grant.gas_used
    );
    assert!(
        log.gas_used <= LOG_ACCESS_MAX,
        "logAccess used {}",
        log.gas_used
    );
    assert!(
        scoped.gas_used <= LOG_ACCESS_MAX,
        "scoped logAccess used {}",
        scoped.gas_used
    );
}

/// A refused call mines nothing and changes nothing.
async fn refusals_change_nothing<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let alice = patient(&w).await;
    let doc = provider(&w).await;
    let (r1, _) = c.add_record(&alice, digest(1), codec::RAW).await.unwrap();
    let before = c.info().await.unwrap().head_block;
    for _ in 0..3 {
        assert!(matches!(
            reason(c.log_access(&doc, r1, U256::from(1)).await),
            E::NoGrant(_)
        ));
    }
    assert_eq!(
        c.info().await.unwrap().head_block,
        before,
        "no block for a refused call"
    );
    assert!(c.access_log(r1, None, None).await.unwrap().is_empty());
}

/// Write grants: their own expiry and revocation, per record or all records; a provider
/// adds versions and records the patient owns, each naming its author; refusals store
/// nothing.
async fn write_grants<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let alice = patient(&w).await;
    let bob = patient(&w).await;
    let doc = provider(&w).await;
    let other = provider(&w).await;
    let nobody = account(&w).await;
    let (r1, _) = c.add_record(&alice, digest(1), codec::RAW).await.unwrap();
    let (r2, _) = c.add_record(&alice, digest(2), codec::RAW).await.unwrap();
    let (b1, _) = c.add_record(&bob, digest(3), codec::RAW).await.unwrap();
    let v1 = c.record_versions(r1).await.unwrap();
    assert_eq!(v1[0].author, alice.address(), "the owner wrote version 1");

    // No write grant: a provider neither updates nor adds; a stranger is no owner.
    assert!(matches!(
        reason(c.update_record(&doc, r1, digest(9), codec::RAW).await),
        E::NoWriteGrant(_)
    ));
    assert!(matches!(
        reason(c.update_record(&nobody, r1, digest(9), codec::RAW).await),
        E::NotRecordOwner(_)
    ));
    let none = |_: &ehr_chain::SentTx| Ok(());
    assert!(matches!(
        reason(
            c.add_record_for_noted(&doc, alice.address(), digest(9), codec::RAW, &none)
                .await
        ),
        E::NoWriteGrant(_)
    ));
    assert_eq!(
        c.write_status(doc.address(), alice.address(), Some(r1))
            .await
            .unwrap()
            .0,
        AccessStatus::NoGrant
    );
    // Reading does not give writing.
    let now = chain_now(&w).await;
    c.grant_access(&alice, doc.address(), None, now + 3600)
        .await
        .unwrap();
    assert!(matches!(
        reason(c.update_record(&doc, r1, digest(9), codec::RAW).await),
        E::NoWriteGrant(_)
    ));

    // Bad write grants change nothing.
    assert!(matches!(
        reason(
            c.grant_write(&alice, doc.address(), Some(r1), now - 1)
                .await
        ),
        E::ExpiryInPast(_)
    ));
    assert!(matches!(
        reason(
            c.grant_write(&alice, nobody.address(), Some(r1), now + 3600)
                .await
        ),
        E::NotRegisteredProvider(_)
    ));
    assert!(matches!(
        reason(
            c.grant_write(&alice, doc.address(), Some(b1), now + 3600)
                .await
        ),
        E::NotRecordOwner(_)
    ));
    assert!(matches!(
        reason(c.revoke_write(&alice, doc.address(), Some(r1)).await),
        E::NoWriteGrant(_)
    ));

    // A write grant on one record: versions of it, by the provider, owned by the patient.
    c.grant_write(&alice, doc.address(), Some(r1), now + 600)
        .await
        .unwrap();
    let (v, _) = c
        .update_record(&doc, r1, digest(10), codec::RAW)
        .await
        .unwrap();
    assert_eq!(v, 2);
    let versions = c.record_versions(r1).await.unwrap();
    assert_eq!(versions[1].author, doc.address());
    assert_eq!(
        versions[1].owner,
        alice.address(),
        "the patient still owns it"
    );
    assert_eq!(c.record(r1).await.unwrap().owner, alice.address());
    assert!(matches!(
        reason(c.update_record(&doc, r2, digest(11), codec::RAW).await),
        E::NoWriteGrant(_)
    ));
    assert!(matches!(
        reason(
            c.add_record_for_noted(&doc, alice.address(), digest(11), codec::RAW, &none)
                .await
        ),
        E::NoWriteGrant(_)
    ));
    assert!(matches!(
        reason(c.update_record(&other, r1, digest(11), codec::RAW).await),
        E::NoWriteGrant(_)
    ));
    // The owner still writes its own record.
    c.update_record(&alice, r1, digest(12), codec::RAW)
        .await
        .unwrap();

    // Revoking the write leaves reading; revoking reading leaves writing.
    c.revoke_write(&alice, doc.address(), Some(r1))
        .await
        .unwrap();
    assert!(matches!(
        reason(c.update_record(&doc, r1, digest(13), codec::RAW).await),
        E::WriteGrantRevoked(_)
    ));
    assert!(c.can_access(doc.address(), r1).await.unwrap());
    let g = c
        .write_grant(alice.address(), doc.address(), Some(r1))
        .await
        .unwrap();
    assert_eq!(g.expires_at, now + 600);
    assert_ne!(g.revoked_at, 0);

    // All records: versions of any, and new records the patient owns.
    c.grant_write(&alice, doc.address(), None, now + 600)
        .await
        .unwrap();
    c.revoke_access(&alice, doc.address(), None).await.unwrap();
    assert!(!c.can_access(doc.address(), r2).await.unwrap());
    let (v, _) = c
        .update_record(&doc, r2, digest(14), codec::RAW)
        .await
        .unwrap();
    assert_eq!(v, 2);
    let (r3, _) = c
        .add_record_for_noted(&doc, alice.address(), digest(15), codec::RAW, &none)
        .await
        .unwrap();
    let info = c.record(r3).await.unwrap();
    assert_eq!(info.owner, alice.address());
    assert_eq!(info.digest, digest(15));
    assert_eq!(
        c.record_versions(r3).await.unwrap()[0].author,
        doc.address()
    );
    assert_eq!(
        c.records_of(alice.address()).await.unwrap(),
        vec![r1, r2, r3]
    );
    // Alice's grant gives nothing on Bob's records.
    assert!(matches!(
        reason(c.update_record(&doc, b1, digest(16), codec::RAW).await),
        E::NoWriteGrant(_)
    ));
    assert!(matches!(
        reason(
            c.add_record_for_noted(&doc, nobody.address(), digest(16), codec::RAW, &none)
                .await
        ),
        E::NotRegisteredPatient(_)
    ));
    assert_eq!(
        c.write_grants_of(alice.address()).await.unwrap(),
        vec![(doc.address(), Some(r1)), (doc.address(), None)]
    );
    assert_eq!(
        c.write_grants_to(doc.address()).await.unwrap(),
        vec![(alice.address(), Some(r1)), (alice.address(), None)]
    );

    // Expiry: writing ends at its own time.
    c.advance_time(601).await.unwrap();
    assert!(matches!(
        reason(c.update_record(&doc, r2, digest(17), codec::RAW).await),
        E::WriteGrantExpired(_)
    ));
    assert_eq!(
        c.write_status(doc.address(), alice.address(), None)
            .await
            .unwrap()
            .0,
        AccessStatus::Expired
    );

    // revokeAll ends writing too; a deregistered provider writes nothing.
    let now = chain_now(&w).await.max(now + 602);
    c.grant_write(&alice, doc.address(), None, now + 600)
        .await
        .unwrap();
    c.revoke_all(&alice, doc.address()).await.unwrap();
    assert!(matches!(
        reason(c.update_record(&doc, r2, digest(18), codec::RAW).await),
        E::WriteGrantRevoked(_)
    ));
    c.grant_write(&alice, other.address(), None, now + 600)
        .await
        .unwrap();
    c.deregister_provider(&w.admin, other.address())
        .await
        .unwrap();
    assert!(matches!(
        reason(c.update_record(&other, r2, digest(19), codec::RAW).await),
        E::NotRecordOwner(_)
    ));
    assert!(matches!(
        reason(
            c.add_record_for_noted(&other, alice.address(), digest(19), codec::RAW, &none)
                .await
        ),
        E::NotRegisteredProvider(_)
    ));
    assert_eq!(
        c.record(r2).await.unwrap().version,
        2,
        "refusals stored nothing"
    );
}

/// Issue 18 item 3: a patient erases their account. Every record of theirs is erased at
/// once (the receipt and `erased_since` name each with its last version); nothing reads,
/// changes or adds one afterwards — not the owner, not a grant, not break-glass, not a
/// writer; another patient's records are untouched; erasing again erases nothing more.
async fn erasure<R: TestChain>(w: World<R>) {
    let c = &w.chain;
    let alice = patient(&w).await;
    let bob = patient(&w).await;
    let doc = provider(&w).await;
    let (one, _) = c
        .add_record(&alice, digest(1), codec::DAG_CBOR)
        .await
        .unwrap();
    c.update_record(&alice, one, digest(2), codec::DAG_CBOR)
        .await
        .unwrap();
    let (two, _) = c
        .add_record(&alice, digest(3), codec::DAG_CBOR)
        .await
        .unwrap();
    let (bobs, _) = c
        .add_record(&bob, digest(4), codec::DAG_CBOR)
        .await
        .unwrap();
    let until = chain_now(&w).await + 86_400;
    c.grant_access(&alice, doc.address(), None, until)
        .await
        .unwrap();
    c.grant_write(&alice, doc.address(), None, until)
        .await
        .unwrap();
    c.log_access(&doc, one, U256::from(1)).await.unwrap();
    let stranger = account(&w).await;
    assert!(matches!(
        reason(c.erase_account(&stranger).await),
        E::NotRegisteredPatient(_)
    ));

    let (erased, _) = c.erase_account(&alice).await.unwrap();
    let mut got: Vec<(u64, u32)> = erased
        .iter()
        .map(|e| (e.record_id, e.last_version))
        .collect();
    got.sort();
    assert_eq!(got, [(one, 2), (two, 1)]);
    assert!(erased.iter().all(|e| e.owner == alice.address()));
    assert!(c.is_erased(one).await.unwrap() && c.is_erased(two).await.unwrap());
    assert!(!c.is_erased(bobs).await.unwrap() && !c.is_erased(999).await.unwrap());
    let since: Vec<u64> = c
        .erased_since(0)
        .await
        .unwrap()
        .iter()
        .map(|e| e.record_id)
        .collect();
    assert_eq!(since.len(), 2);

    for r in [
        c.log_access(&doc, one, U256::from(2)).await.map(|_| ()),
        c.log_access(&alice, two, U256::from(3)).await.map(|_| ()),
        c.emergency_access(&doc, one, digest(9), U256::from(4))
            .await
            .map(|_| ()),
        c.update_record(&alice, one, digest(5), codec::DAG_CBOR)
            .await
            .map(|_| ()),
        c.update_record(&doc, two, digest(6), codec::DAG_CBOR)
            .await
            .map(|_| ()),
        c.record(one).await.map(|_| ()),
    ] {
        assert!(matches!(reason(r), E::RecordIsErased(_)));
    }
    assert!(matches!(
        reason(c.add_record(&alice, digest(7), codec::DAG_CBOR).await),
        E::PatientIsErased(_)
    ));
    let none = |_: &ehr_chain::SentTx| Ok(());
    assert!(matches!(
        reason(
            c.add_record_for_noted(&doc, alice.address(), digest(8), codec::RAW, &none)
                .await
        ),
        E::PatientIsErased(_)
    ));
    assert_eq!(
        c.access_status(doc.address(), one).await.unwrap().0,
        AccessStatus::Erased
    );
    assert_eq!(
        c.write_status(doc.address(), alice.address(), None)
            .await
            .unwrap()
            .0,
        AccessStatus::Erased
    );
    // The audit trail stays: the versions' events and the logged read.
    assert_eq!(c.record_versions(one).await.unwrap().len(), 2);
    assert_eq!(c.access_log(one, None, None).await.unwrap().len(), 1);
    // Bob's record is his as before.
    c.log_access(&bob, bobs, U256::from(5)).await.unwrap();
    let (again, _) = c.erase_account(&alice).await.unwrap();
    assert!(again.is_empty(), "nothing more to erase");
}

/// Grant offers (issue 20): a patient signs off chain, a provider redeems once, before the
/// deadline; forged, altered, used or late offers are refused and change nothing.
async fn grant_offers<R: TestChain>(w: World<R>) {
    use ehr_chain::offers::domain;
    use ehr_chain::{GrantOffer, Offers};
    let c = &w.chain;
    let alice = patient(&w).await;
    let mallory = patient(&w).await;
    let doc = provider(&w).await;
    let other_doc = provider(&w).await;
    let nobody = account(&w).await;
    let (r1, _) = c.add_record(&alice, digest(1), codec::RAW).await.unwrap();
    let (r2, _) = c.add_record(&alice, digest(2), codec::RAW).await.unwrap();
    let info = c.info().await.unwrap();
    let d = domain(info.chain_id, info.contract);
    assert_eq!(
        c.domain_separator().await.unwrap(),
        d.separator(),
        "the contract's domain is the one offers are signed in"
    );
    let now = chain_now(&w).await;
    let offer = GrantOffer {
        patient: alice.address(),
        record_id: Some(r1),
        expires_at: now + 86_400,
        nonce: 0xfeed_0001,
        deadline: now + 600,
    };
    let signed = offer.sign(&alice, &d).unwrap();

    // Refused, each changing nothing: a stranger, a forgery, an altered offer, a late one.
    assert!(matches!(
        reason(c.redeem_offer(&nobody, &signed).await),
        E::NotRegisteredProvider(_)
    ));
    assert!(
        offer.sign(&mallory, &d).is_err(),
        "no one signs an offer naming another patient"
    );
    let mut by_mallory = GrantOffer {
        patient: mallory.address(),
        ..offer
    }
    .sign(&mallory, &d)
    .unwrap();
    by_mallory.offer.patient = alice.address(); // claims to be alice's
    assert!(matches!(
        reason(c.redeem_offer(&doc, &by_mallory).await),
        E::BadOfferSignature(_)
    ));
    let mut longer = signed.clone();
    longer.offer.expires_at += 86_400 * 365;
    assert!(matches!(
        reason(c.redeem_offer(&doc, &longer).await),
        E::BadOfferSignature(_)
    ));
    let mut truncated = signed.clone();
    truncated.signature[64] = 99;
    assert!(matches!(
        reason(c.redeem_offer(&doc, &truncated).await),
        E::BadOfferSignature(_)
    ));
    let late = GrantOffer {
        deadline: now - 5,
        nonce: 0xfeed_0002,
        ..offer
    }
    .sign(&alice, &d)
    .unwrap();
    assert!(matches!(
        reason(c.redeem_offer(&doc, &late).await),
        E::OfferExpired(_)
    ));
    assert!(!c.offer_used(alice.address(), offer.nonce).await.unwrap());
    assert!(!c.can_access(doc.address(), r1).await.unwrap());

    // Redeemed: the provider reads that record (not the other), as with grantAccess.
    let receipt = c.redeem_offer(&doc, &signed).await.unwrap();
    assert!(receipt.logs.iter().any(|l| {
        l.topics().first()
            == Some(&<C::AccessGranted as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
    }));
    assert!(c.offer_used(alice.address(), offer.nonce).await.unwrap());
    assert!(c.can_access(doc.address(), r1).await.unwrap());
    assert!(!c.can_access(doc.address(), r2).await.unwrap());
    let g = c
        .grant(alice.address(), doc.address(), Some(r1))
        .await
        .unwrap();
    assert_eq!(g.expires_at, offer.expires_at);
    assert!(
        c.grants_to(doc.address())
            .await
            .unwrap()
            .contains(&(alice.address(), Some(r1))),
        "listed with the provider's grants"
    );

    // Once only, by anyone.
    assert!(matches!(
        reason(c.redeem_offer(&other_doc, &signed).await),
        E::OfferUsed(_)
    ));
    assert!(!c.can_access(other_doc.address(), r1).await.unwrap());
    // The patient can still revoke what the offer granted.
    c.revoke_access(&alice, doc.address(), Some(r1))
        .await
        .unwrap();
    assert!(!c.can_access(doc.address(), r1).await.unwrap());
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded_backend {
            use super::*;
            $(#[tokio::test] async fn $case() { super::$case(embedded().await).await })*
        }
        mod anvil_backend {
            use super::*;
            $(#[tokio::test] async fn $case() { super::$case(anvil().await).await })*
        }
    };
}

conformance!(
    registration,
    records_and_versions,
    grants_expiry_revocation,
    emergency,
    node_set,
    organisations,
    gas_targets,
    refusals_change_nothing,
    emergency_reads_flagged,
    revoke_all,
    times_out_of_range,
    write_grants,
    erasure,
    grant_offers,
);

#[test]
fn events_carry_no_personal_data() {
    // Every event field is an address, a number or a digest: nothing readable.
    use alloy::sol_types::SolEvent;
    for sig in [
        C::RecordVersion::SIGNATURE,
        C::AccessGranted::SIGNATURE,
        C::WriteGranted::SIGNATURE,
        C::WriteRevoked::SIGNATURE,
        C::AccessLogged::SIGNATURE,
        C::EmergencyAccess::SIGNATURE,
        C::PatientRegistered::SIGNATURE,
        C::ProviderRegistered::SIGNATURE,
        C::ProviderDeregistered::SIGNATURE,
        C::RegistrarChanged::SIGNATURE,
        C::OrganisationRemoved::SIGNATURE,
        C::RecordErased::SIGNATURE,
        C::PatientErased::SIGNATURE,
    ] {
        assert!(
            !sig.contains("string") && !sig.contains("bytes,") && !sig.contains("bytes)"),
            "{sig}"
        );
    }
    // The one string on chain is an organisation's name, given by the consortium's admin.
    assert_eq!(
        C::OrganisationAdded::SIGNATURE,
        "OrganisationAdded(uint32,address,string)"
    );
}

/// A contract address whose code is not this version's EhrRegistry (here: anvil rewrites
/// it) is refused at connect with a clear error, not a revert at the first call.
#[tokio::test]
async fn connecting_to_another_contracts_code_is_a_clear_error() {
    use ehr_chain::Registry;
    let w = anvil().await;
    let url = {
        let info = w.chain.info().await.unwrap();
        assert_eq!(info.backend, "json-rpc");
        w._guard
            .downcast_ref::<Anvil>()
            .expect("the anvil world keeps its node")
            .url
            .clone()
    };
    let contract = w.chain.contract();
    RpcRegistry::connect(&url, contract).await.unwrap();
    let mut older = ehr_chain::contract::runtime_code().to_vec();
    older.truncate(older.len() - 1);
    let _: serde_json::Value = w
        .chain
        .raw_request(
            "anvil_setCode",
            (contract, alloy::primitives::Bytes::from(older)),
        )
        .await
        .unwrap();
    let Err(err) = RpcRegistry::connect(&url, contract).await else {
        panic!("connected to another contract's code");
    };
    assert!(
        matches!(err, Error::WrongContract { contract: c } if c == contract),
        "{err}"
    );
    assert!(
        err.to_string().contains("another SecureEHR version"),
        "{err}"
    );
}
