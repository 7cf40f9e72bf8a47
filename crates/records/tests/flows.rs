//! The record flows end to end on the real embedded chain (revm, the compiled contract) with
//! five in-process nodes, threshold 3.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ehr_chain::{
    AccessStatus, ChainConfig, EmbeddedChain, PrivateKeySigner, Registry, RegistryExt, U256,
};
use ehr_records::accounts::{AccountParams, AccountStore, SystemClock};
use ehr_records::fhir::RecordForm;
use ehr_records::node::{
    self, LocalNode, Node, NodeError, NodeInfo, NodeKey, ShareRequest, ShareResponse,
};
use ehr_records::{Error, PatientSession, ProviderSession, Service, ServiceParts};
use ehr_store::{BlobStore, Cid, MemoryStore};

const PW: &str = "correct horse battery";

// The store's js-ipfs harness; this binary uses part of it.
#[path = "flows/attachments.rs"]
mod attachments;
#[path = "flows/erasure.rs"]
mod erasure;
#[allow(dead_code)]
#[path = "../../store/tests/integration/ipfs.rs"]
mod ipfs;
#[path = "flows/manifests.rs"]
mod manifests;
#[path = "flows/writes.rs"]
mod writes;

/// A node that can be switched off.
struct Switch {
    inner: LocalNode,
    down: AtomicBool,
}

#[async_trait]
impl Node for Switch {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn info(&self) -> Result<NodeInfo, NodeError> {
        self.check()?;
        self.inner.info().await
    }
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        self.check()?;
        self.inner.put_block(cid, data).await
    }
    async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, NodeError> {
        self.check()?;
        self.inner.get_block(cid).await
    }
    async fn delete_block(&self, cid: &Cid) -> Result<(), NodeError> {
        self.check()?;
        self.inner.delete_block(cid).await
    }
    async fn release_share(&self, r: &ShareRequest) -> Result<ShareResponse, NodeError> {
        self.check()?;
        self.inner.release_share(r).await
    }
    async fn erase(&self, o: &node::EraseOrder) -> Result<node::EraseReport, NodeError> {
        self.check()?;
        self.inner.erase(o).await
    }
}

impl Switch {
    fn check(&self) -> Result<(), NodeError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(NodeError::Unreachable("switched off".into()));
        }
        Ok(())
    }
}

struct Fx {
    _dir: tempfile::TempDir,
    chain: Arc<EmbeddedChain>,
    /// The contract's admin key (the service's too).
    admin: PrivateKeySigner,
    svc: Service,
    stores: Vec<Arc<MemoryStore>>,
    nodes: Vec<Arc<Switch>>,
}

async fn fixture() -> Fx {
    fixture_with(AccountParams::INSECURE_FAST).await
}

async fn fixture_with(params: AccountParams) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = Arc::new(
        EmbeddedChain::open(&dir.path().join("chain"), ChainConfig::default(), &admin).unwrap(),
    );
    let registry: Arc<dyn Registry> = chain.clone();
    let mut stores = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..5u8 {
        let store = Arc::new(MemoryStore::new());
        let local = LocalNode::new(
            format!("node {}", i + 1),
            NodeKey::from_seed(&[i + 1; 32]),
            registry.clone(),
            store.clone() as Arc<dyn BlobStore>,
        )
        .await
        .unwrap();
        stores.push(store);
        nodes.push(Arc::new(Switch {
            inner: local,
            down: AtomicBool::new(false),
        }));
    }
    let accounts =
        AccountStore::open(dir.path().join("accounts"), params, Arc::new(SystemClock)).unwrap();
    let svc = Service::new(ServiceParts {
        registry,
        contract_admin: admin.clone(),
        accounts,
        nodes: nodes.iter().map(|n| n.clone() as Arc<dyn Node>).collect(),
        k: 3,
        data_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    Fx {
        _dir: dir,
        chain,
        admin,
        svc,
        stores,
        nodes,
    }
}

/// A new service over a fixture's data directory, chain and nodes (the old one dropped
/// first: the accounts database is open in one place at a time).
async fn restart(
    dir: &tempfile::TempDir,
    chain: &Arc<EmbeddedChain>,
    nodes: &[Arc<Switch>],
) -> Service {
    Service::new(ServiceParts {
        registry: chain.clone(),
        contract_admin: PrivateKeySigner::random(),
        accounts: AccountStore::open(
            dir.path().join("accounts"),
            AccountParams::INSECURE_FAST,
            Arc::new(SystemClock),
        )
        .unwrap(),
        nodes: nodes.iter().map(|n| n.clone() as Arc<dyn Node>).collect(),
        k: 3,
        data_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn form(name: &str, condition: &str) -> RecordForm {
    RecordForm {
        patient_name: name.into(),
        birth_date: "1984-02-29".into(),
        address: "1 Main St, Springfield".into(),
        phone: "+1 555 010 0199".into(),
        health_condition: condition.into(),
    }
}

impl Fx {
    async fn patient(&self, name: &str) -> (PatientSession, u64) {
        let acct = self.svc.register_patient(name, PW).await.unwrap();
        let (_, s) = self.svc.login(name, PW, "test").await.unwrap();
        (s.patient().unwrap(), acct.patient_id)
    }

    async fn admin_session(&self) -> ehr_records::AdminSession {
        if !self.svc.accounts().has_admin() {
            self.svc.create_admin("admin", PW).unwrap();
        }
        let (_, admin) = self.svc.login("admin", PW, "test").await.unwrap();
        admin.admin().unwrap()
    }

    async fn provider(&self, name: &str) -> ProviderSession {
        let admin = self.admin_session().await;
        self.svc
            .add_provider(&admin, name, PW, &Default::default())
            .await
            .unwrap();
        self.svc
            .login(name, PW, "test")
            .await
            .unwrap()
            .1
            .provider()
            .unwrap()
    }

    async fn reads_by(&self, session: &PatientSession, reader: ehr_chain::Address) -> usize {
        self.svc
            .access_log(session)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.reader == reader)
            .count()
    }
}

/// Issue 12 item 3: key derivations run on the blocking pool, so a login in flight does
/// not stop the async worker (here the only one: a current-thread runtime). A ticker that
/// wakes every 2 ms keeps ticking while the login's scrypt (64 MiB) runs; on the worker
/// itself the ticker would stall for the whole login.
#[tokio::test(flavor = "current_thread")]
async fn logins_leave_the_async_worker_free() {
    let params = AccountParams {
        scrypt: ehr_records::accounts::keystore::ScryptParams {
            log_n: 16,
            r: 8,
            p: 1,
        },
        ..AccountParams::INSECURE_FAST
    };
    let fx = fixture_with(params).await;
    fx.svc.register_patient("jane", PW).await.unwrap();
    let svc = Arc::new(fx.svc);
    let login = {
        let svc = svc.clone();
        tokio::spawn(async move {
            let start = std::time::Instant::now();
            svc.login("jane", PW, "test").await.unwrap();
            start.elapsed()
        })
    };
    let mut longest_gap = std::time::Duration::ZERO;
    let mut last = std::time::Instant::now();
    while !login.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        longest_gap = longest_gap.max(last.elapsed());
        last = std::time::Instant::now();
    }
    let took = login.await.unwrap();
    assert!(
        longest_gap * 2 < took,
        "the async worker stalled for {longest_gap:?} of a {took:?} login"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_grant_read_revoke_and_the_log() {
    let fx = fixture().await;
    let (alice, alice_id) = fx.patient("alice").await;
    let stored = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    assert_eq!((stored.record_id, stored.version), (1, 1));
    // A dag-cbor CIDv1 (sha2-256): the manifest is an IPLD block.
    assert!(
        stored.manifest_cid.starts_with("bafyrei"),
        "{}",
        stored.manifest_cid
    );

    // The owner reads her own record; the chain logged it.
    let own = fx.svc.read_record(&alice, 1, None).await.unwrap();
    assert_eq!(own.form.as_ref().unwrap().patient_name, "Alice Doe");
    assert_eq!(own.form.as_ref().unwrap().health_condition, "Asthma");
    assert_eq!(own.patient_id, alice_id);

    // Nothing readable is stored: no block contains the name.
    for store in &fx.stores {
        for (_, data) in store.blocks() {
            assert!(
                !data.windows(5).any(|w| w == b"Alice"),
                "plaintext on a node"
            );
        }
    }

    let bob = fx.provider("drbob").await;
    match fx.svc.patient_records(&bob, alice_id).await {
        Err(Error::NoAccessToPatient { patient_id }) => assert_eq!(patient_id, alice_id),
        other => panic!("expected no access, got {other:?}"),
    }
    assert!(matches!(
        fx.svc.read_record(&bob, 1, None).await,
        Err(Error::AccessDenied { .. })
    ));
    assert_eq!(
        fx.reads_by(&alice, bob.address()).await,
        0,
        "denied reads are not logged"
    );

    fx.svc
        .grant(&alice, "drbob", None, now() + 3600)
        .await
        .unwrap();
    let reads = fx.svc.patient_records(&bob, alice_id).await.unwrap();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].form.as_ref().unwrap().patient_name, "Alice Doe");

    // A new version; both stay readable to the grantee.
    let v2 = fx
        .svc
        .update_form(&alice, 1, &form("Alice Doe", "Asthma; hay fever"))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let old = fx.svc.read_record(&bob, 1, Some(1)).await.unwrap();
    let new = fx.svc.read_record(&bob, 1, Some(2)).await.unwrap();
    assert_eq!(old.form.unwrap().health_condition, "Asthma");
    assert_eq!(new.form.unwrap().health_condition, "Asthma; hay fever");
    let mine = fx.svc.my_records(&alice).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].versions.len(), 2);

    let grants = fx.svc.grants(&alice).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert!(grants[0].active);
    assert_eq!(grants[0].provider.as_deref(), Some("drbob"));

    fx.svc.revoke(&alice, "drbob", None).await.unwrap();
    match fx.svc.read_record(&bob, 1, None).await {
        Err(Error::AccessDenied { reason, .. }) => assert_eq!(reason, AccessStatus::Revoked),
        other => panic!("expected access denied, got {other:?}"),
    }
    assert!(!fx.svc.grants(&alice).await.unwrap()[0].active);

    // Exactly one log entry per successful read, with the version read.
    let log = fx.svc.access_log(&alice).await.unwrap();
    let bobs: Vec<_> = log.iter().filter(|e| e.reader == bob.address()).collect();
    assert_eq!(bobs.len(), 3);
    assert_eq!(bobs[0].reader_username.as_deref(), Some("drbob"));
    let mut versions: Vec<_> = bobs.iter().map(|e| e.version.unwrap()).collect();
    versions.sort();
    assert_eq!(versions, [1, 1, 2]);
    assert!(bobs.iter().all(|e| !e.emergency));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_needs_a_reason_and_shows_in_the_log() {
    let fx = fixture().await;
    let (alice, alice_id) = fx.patient("alice").await;
    fx.svc
        .put_form(&alice, &form("Alice Doe", "Epilepsy"))
        .await
        .unwrap();
    let er = fx.provider("er-doc").await;

    let head = fx.chain.head_number();
    assert!(matches!(
        fx.svc.emergency_access(&er, alice_id, "   ").await,
        Err(Error::InvalidInput {
            field: "reason",
            ..
        })
    ));
    assert_eq!(
        fx.chain.head_number(),
        head,
        "a refused request mines nothing"
    );

    let reads = fx
        .svc
        .emergency_access(&er, alice_id, "unconscious in the ER")
        .await
        .unwrap();
    assert_eq!(reads.len(), 1);
    assert!(reads[0].emergency);
    let log = fx.svc.access_log(&alice).await.unwrap();
    let e = log.iter().find(|e| e.reader == er.address()).unwrap();
    assert!(e.emergency);
    assert_eq!(e.reason.as_deref(), Some("unconscious in the ER"));
    // Patients cannot use break-glass.
    assert!(matches!(
        fx.svc
            .login("alice", PW, "test")
            .await
            .unwrap()
            .1
            .provider(),
        Err(Error::Forbidden(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_two_lost_nodes_and_a_corrupt_fragment() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    fx.svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();

    // Node 1 serves garbage for every block it has: the read goes around it.
    let originals = fx.stores[0].blocks();
    for (cid, data) in originals.clone() {
        let mut bad = data.clone();
        bad[0] ^= 1;
        fx.stores[0].corrupt(&cid, bad);
    }
    assert!(fx.svc.read_record(&alice, 1, None).await.is_ok());

    fx.nodes[3].down.store(true, Ordering::SeqCst);
    fx.nodes[4].down.store(true, Ordering::SeqCst);
    // Nodes 4 and 5 are down and node 1 is corrupt: only 2 of 3 shares/fragments left.
    match fx.svc.read_record(&alice, 1, None).await {
        Err(Error::NodesUnavailable { needed: 3, .. }) => {}
        other => panic!("expected nodes unavailable, got {other:?}"),
    }
    // With node 1 healthy again, two lost nodes are fine.
    for (cid, data) in originals {
        fx.stores[0].corrupt(&cid, data);
    }
    let r = fx.svc.read_record(&alice, 1, None).await;
    assert!(r.is_ok(), "{r:?}");

    fx.nodes[2].down.store(true, Ordering::SeqCst);
    let err = fx.svc.read_record(&alice, 1, None).await.unwrap_err();
    assert_eq!(err.to_string(), "2 of the 3 needed nodes reachable");
    // Uploads need k + 1 nodes.
    assert!(matches!(
        fx.svc.put_form(&alice, &form("Alice Doe", "Flu")).await,
        Err(Error::NodesUnavailable { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custodians_refuse_unlogged_replayed_expired_and_revoked_requests() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    fx.svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let bob = fx.provider("drbob").await;
    fx.svc
        .grant(&alice, "drbob", Some(1), now() + 3600)
        .await
        .unwrap();
    let info = fx.chain.info().await.unwrap();
    let domain = node::domain(info.chain_id, info.contract);
    let bob_key = ehr_records::Reader::signer(&bob);
    let (_, reader_pk) = ehr_crypto::wrap::derive_keypair(&[9; 32]);
    let node = &fx.nodes[0];
    let version_nonce = |n: u64| U256::from(n) << 32 | U256::from(1u32);
    // The manifest, as a reader sends it (node 1 may not be one of its holders).
    let record = fx.chain.record(1).await.unwrap();
    let manifest_cid = node::manifest::manifest_cid(record.digest, record.codec).unwrap();
    let manifest = fx.svc.block(&manifest_cid.to_string()).await.unwrap();

    // Signed and allowed, but never logged on chain.
    let req = ShareRequest::sign(
        bob_key,
        &domain,
        1,
        1,
        version_nonce(1),
        now() + 60,
        &reader_pk,
    )
    .unwrap();
    assert_eq!(node.release_share(&req).await, Err(NodeError::NotLogged));

    // Logged: released once, then refused as a replay.
    fx.chain
        .log_access(bob_key, 1, version_nonce(2))
        .await
        .unwrap();
    let req = ShareRequest::sign(
        bob_key,
        &domain,
        1,
        1,
        version_nonce(2),
        now() + 60,
        &reader_pk,
    )
    .unwrap()
    .with_manifest(manifest);
    let resp = node.release_share(&req).await.unwrap();
    assert_eq!(resp.x, 1);
    assert_eq!(node.release_share(&req).await, Err(NodeError::Replayed));

    // Expired, or valid for too long.
    fx.chain
        .log_access(bob_key, 1, version_nonce(3))
        .await
        .unwrap();
    let expired = ShareRequest::sign(
        bob_key,
        &domain,
        1,
        1,
        version_nonce(3),
        now() - 1,
        &reader_pk,
    )
    .unwrap();
    assert_eq!(node.release_share(&expired).await, Err(NodeError::Expired));
    let too_long = ShareRequest::sign(
        bob_key,
        &domain,
        1,
        1,
        version_nonce(3),
        now() + 86_400,
        &reader_pk,
    )
    .unwrap();
    assert_eq!(node.release_share(&too_long).await, Err(NodeError::Expired));

    // Someone else's signature over bob's logged nonce: not logged for *them*.
    let mallory = PrivateKeySigner::random();
    let forged = ShareRequest::sign(
        &mallory,
        &domain,
        1,
        1,
        version_nonce(3),
        now() + 60,
        &reader_pk,
    )
    .unwrap();
    assert_eq!(node.release_share(&forged).await, Err(NodeError::NotLogged));
    // A tampered request no longer recovers to bob.
    let mut tampered = ShareRequest::sign(
        bob_key,
        &domain,
        1,
        1,
        version_nonce(3),
        now() + 60,
        &reader_pk,
    )
    .unwrap();
    tampered.expiry += 1;
    assert_eq!(
        node.release_share(&tampered).await,
        Err(NodeError::NotLogged)
    );

    // Logged, then revoked: the contract's current answer wins.
    fx.chain
        .log_access(bob_key, 1, version_nonce(4))
        .await
        .unwrap();
    fx.svc.revoke(&alice, "drbob", Some(1)).await.unwrap();
    let req = ShareRequest::sign(
        bob_key,
        &domain,
        1,
        1,
        version_nonce(4),
        now() + 60,
        &reader_pk,
    )
    .unwrap();
    assert_eq!(node.release_share(&req).await, Err(NodeError::Denied));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_changes_nothing() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let head = fx.chain.head_number();
    let mut bad = form("Alice Doe", "Asthma");
    bad.birth_date = "2999-01-01".into();
    match fx.svc.put_form(&alice, &bad).await {
        Err(Error::InvalidRecord(e)) => assert!(e.has("birth_date"), "{e}"),
        other => panic!("expected invalid record, got {other:?}"),
    }
    assert!(matches!(
        fx.svc
            .put_record(&alice, b"{\"resourceType\": \"Bundle\"")
            .await,
        Err(Error::InvalidRecord(_))
    ));
    assert!(matches!(
        fx.svc.grant(&alice, "nobody", None, now() + 60).await,
        Err(Error::InvalidInput {
            field: "provider",
            ..
        })
    ));
    assert_eq!(fx.chain.head_number(), head);
    assert!(fx.stores.iter().all(|s| s.is_empty()));

    // A provider cannot store records; a patient cannot update someone else's.
    fx.provider("drbob").await;
    assert!(matches!(
        fx.svc.login("drbob", PW, "test").await.unwrap().1.patient(),
        Err(Error::Forbidden(_))
    ));
    fx.svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let (carol, _) = fx.patient("carol").await;
    assert!(matches!(
        fx.svc.update_form(&carol, 1, &form("Carol", "Flu")).await,
        Err(Error::Forbidden(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_collects_the_blocks_of_an_interrupted_upload() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let kept = fx
        .svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();

    // What a crash after storing blocks but before addRecord leaves: blocks on every node
    // and a journal entry without "done".
    let orphan = b"an orphaned manifest".to_vec();
    let orphan_cid = ehr_store::raw_cid(&orphan);
    let frag = b"an orphaned fragment".to_vec();
    let frag_cid = ehr_store::raw_cid(&frag);
    for store in &fx.stores {
        store.put_block(&orphan_cid, &orphan).await.unwrap();
        store.put_block(&frag_cid, &frag).await.unwrap();
    }
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(fx._dir.path().join("uploads.journal"))
        .unwrap();
    std::io::Write::write_all(
        &mut journal,
        format!(
            "{{\"op\":\"begin\",\"manifest\":\"{orphan_cid}\",\"fragments\":[\"{frag_cid}\"]}}\n"
        )
        .as_bytes(),
    )
    .unwrap();

    // The old service stops first: the accounts database is open in one place at a time.
    drop(fx.svc);
    let restarted = restart(&fx._dir, &fx.chain, &fx.nodes).await;
    for store in &fx.stores {
        assert!(
            !store.has(&orphan_cid).await.unwrap(),
            "orphan manifest left"
        );
        assert!(!store.has(&frag_cid).await.unwrap(), "orphan fragment left");
    }
    // The acknowledged record is untouched.
    let (_, alice) = restarted.login("alice", PW, "t").await.unwrap();
    let alice = alice.patient().unwrap();
    let read = restarted
        .read_record(&alice, kept.record_id, None)
        .await
        .unwrap();
    assert_eq!(read.manifest_cid, kept.manifest_cid);
}

mod access_invariant {
    //! For any sequence of grants, revokes, expiries and reads: a read succeeds iff an
    //! independent model of the grant rules allows it (and the contract agrees), and every
    //! successful read adds exactly one `AccessLogged` event, a refused one none.

    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug)]
    enum Op {
        /// Grant all records (None) or one, for `1..=5` thousand seconds.
        Grant(Option<u64>, u64),
        Revoke(Option<u64>),
        /// Move chain time forward by 1,500 s steps.
        Advance(u64),
        Read(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let scope = prop_oneof![Just(None), (1u64..=2).prop_map(Some)];
        prop_oneof![
            (scope.clone(), 1u64..=5).prop_map(|(s, d)| Op::Grant(s, d)),
            scope.prop_map(Op::Revoke),
            (1u64..=3).prop_map(Op::Advance),
            (1u64..=2).prop_map(Op::Read),
            (1u64..=2).prop_map(Op::Read),
        ]
    }

    async fn check(ops: Vec<Op>) {
        let fx = fixture().await;
        let (alice, _) = fx.patient("alice").await;
        fx.svc
            .put_form(&alice, &form("Alice Doe", "A"))
            .await
            .unwrap();
        fx.svc
            .put_form(&alice, &form("Alice Doe", "B"))
            .await
            .unwrap();
        let bob = fx.provider("drbob").await;
        // Model: scope → (expires_at, revoked); chain time = wall clock + offset.
        let mut grants: HashMap<Option<u64>, (u64, bool)> = HashMap::new();
        let mut offset = 0u64;
        for op in ops {
            let t = now() + offset;
            match op {
                Op::Grant(scope, d) => {
                    let exp = t + d * 1000;
                    fx.svc.grant(&alice, "drbob", scope, exp).await.unwrap();
                    grants.insert(scope, (exp, false));
                }
                Op::Revoke(None) => {
                    // Everything the provider holds: every live scope.
                    let r = fx.svc.revoke(&alice, "drbob", None).await;
                    let live: Vec<_> = grants
                        .iter_mut()
                        .filter(|(_, (e, r))| !*r && *e > t)
                        .collect();
                    if live.is_empty() {
                        assert!(r.is_err(), "revoking nothing must fail");
                    } else {
                        r.unwrap();
                        for (_, g) in live {
                            g.1 = true;
                        }
                    }
                }
                Op::Revoke(scope) => {
                    let r = fx.svc.revoke(&alice, "drbob", scope).await;
                    match grants.get_mut(&scope) {
                        Some(g) => {
                            r.unwrap();
                            g.1 = true;
                        }
                        None => assert!(r.is_err(), "revoking no grant must fail"),
                    }
                }
                Op::Advance(steps) => {
                    fx.chain.advance_time(steps * 1500);
                    offset += steps * 1500;
                }
                Op::Read(rec) => {
                    let live = |s: Option<u64>| grants.get(&s).is_some_and(|(e, r)| !r && *e > t);
                    let allowed = live(None) || live(Some(rec));
                    let contract = fx.chain.can_access(bob.address(), rec).await.unwrap();
                    assert_eq!(contract, allowed, "contract and model disagree");
                    let before = fx
                        .chain
                        .access_log(rec, Some(bob.address()), None)
                        .await
                        .unwrap();
                    let read = fx.svc.read_record(&bob, rec, None).await;
                    let after = fx
                        .chain
                        .access_log(rec, Some(bob.address()), None)
                        .await
                        .unwrap();
                    assert_eq!(read.is_ok(), allowed, "read vs model: {read:?}");
                    assert_eq!(after.len(), before.len() + usize::from(allowed));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
        #[test]
        fn a_read_succeeds_iff_allowed_and_is_logged_once(ops in proptest::collection::vec(op(), 1..14)) {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(check(ops));
        }
    }
}

/// A provider taken off the chain stays off: logging in does not register it again (it
/// did, with the admin's key, so every old grant lived again). The admin's disable ends its
/// sessions and refuses its logins; only the admin's enable brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_or_disabled_provider_stays_out_until_the_admin_enables_it() {
    let fx = fixture().await;
    let (alice, alice_id) = fx.patient("alice").await;
    fx.svc
        .put_form(&alice, &form("Alice Doe", "Asthma"))
        .await
        .unwrap();
    let bob = fx.provider("drbob").await;
    fx.svc
        .grant(&alice, "drbob", None, now() + 3600)
        .await
        .unwrap();
    fx.svc.patient_records(&bob, alice_id).await.unwrap();

    // Deregistered on chain: the next login must not undo it.
    fx.chain
        .deregister_provider(&fx.admin, bob.address())
        .await
        .unwrap();
    let (_, again) = fx.svc.login("drbob", PW, "test").await.unwrap();
    assert!(
        !fx.chain.is_provider(bob.address()).await.unwrap(),
        "a login re-registered the provider"
    );
    match fx
        .svc
        .read_record(&again.provider().unwrap(), 1, None)
        .await
    {
        Err(Error::AccessDenied { reason, .. }) => assert_eq!(reason, AccessStatus::NotProvider),
        other => panic!("expected access denied, got {other:?}"),
    }

    // The admin enables it (registered again), then disables it.
    let admin = fx.admin_session().await;
    assert!(
        !fx.svc
            .enable_provider(&admin, "drbob")
            .await
            .unwrap()
            .disabled
    );
    assert!(fx.chain.is_provider(bob.address()).await.unwrap());
    let (token, _) = fx.svc.login("drbob", PW, "test").await.unwrap();
    assert!(fx.svc.authenticate(token.expose()).is_ok());

    let info = fx.svc.disable_provider(&admin, "DrBob").await.unwrap();
    assert!(info.disabled);
    assert!(!fx.chain.is_provider(bob.address()).await.unwrap());
    assert!(
        matches!(fx.svc.authenticate(token.expose()), Err(Error::Accounts(_))),
        "its sessions ended"
    );
    match fx.svc.login("drbob", PW, "test").await {
        Err(e @ Error::Forbidden(_)) => assert!(e.to_string().contains("disabled"), "{e}"),
        other => panic!("expected a refused login, got {other:?}"),
    }
    assert!(!fx.chain.is_provider(bob.address()).await.unwrap());
    assert!(matches!(
        fx.svc.read_record(&bob, 1, None).await,
        Err(Error::AccessDenied { .. })
    ));
    // Disabling again finishes nothing new and fails nothing; unknown names are 404s.
    fx.svc.disable_provider(&admin, "drbob").await.unwrap();
    for name in ["nobody", "alice"] {
        assert!(matches!(
            fx.svc.disable_provider(&admin, name).await,
            Err(Error::NotFound(_))
        ));
    }

    // Only the admin's enable brings it back; the patient's grant holds again.
    fx.svc.enable_provider(&admin, "drbob").await.unwrap();
    let (_, back) = fx.svc.login("drbob", PW, "test").await.unwrap();
    let back = back.provider().unwrap();
    assert_eq!(
        fx.svc.patient_records(&back, alice_id).await.unwrap().len(),
        1
    );
}

/// Every open break-glass window is on the patient's grants (who, which record, until,
/// why); ending it holds; a new break-glass is a new event with its own reason; every read
/// the window allows is an emergency read in the log, with the reason; revoking with no
/// record ends everything the provider holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_sees_and_ends_break_glass_and_revoke_all_ends_everything() {
    let fx = fixture().await;
    let (alice, alice_id) = fx.patient("alice").await;
    for c in ["Epilepsy", "Asthma"] {
        fx.svc
            .put_form(&alice, &form("Alice Doe", c))
            .await
            .unwrap();
    }
    let er = fx.provider("er-doc").await;
    assert!(fx.svc.grants(&alice).await.unwrap().is_empty());
    fx.svc
        .emergency_access(&er, alice_id, "unconscious in the ER")
        .await
        .unwrap();

    let grants = fx.svc.grants(&alice).await.unwrap();
    assert_eq!(grants.len(), 2, "{grants:?}");
    for (g, record) in grants.iter().zip([1, 2]) {
        assert_eq!(g.provider.as_deref(), Some("er-doc"));
        assert_eq!(g.record_id, Some(record));
        assert!(!g.active, "no grant was given");
        let w = g.emergency.as_ref().expect("the open window is shown");
        assert_eq!(w.reason.as_deref(), Some("unconscious in the ER"));
        assert!(w.until > now() + 3 * 3600 && w.until <= now() + 4 * 3600 + 60);
    }

    // A later ordinary read inside the window is an emergency read, with the reason.
    let r = fx.svc.read_record(&er, 1, None).await.unwrap();
    assert!(r.emergency);
    let log = fx.svc.access_log(&alice).await.unwrap();
    let ers: Vec<_> = log.iter().filter(|e| e.reader == er.address()).collect();
    assert_eq!(ers.len(), 3);
    for e in &ers {
        assert!(e.emergency, "{e:?}");
        assert_eq!(e.reason.as_deref(), Some("unconscious in the ER"));
    }
    // The owner's own read is not.
    fx.svc.read_record(&alice, 1, None).await.unwrap();
    assert!(
        fx.svc
            .access_log(&alice)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.reader == alice.address())
            .all(|e| !e.emergency && e.reason.is_none())
    );

    // The patient ends the window on record 1: it holds, record 2's stays.
    fx.svc.revoke(&alice, "er-doc", Some(1)).await.unwrap();
    match fx.svc.read_record(&er, 1, None).await {
        Err(Error::AccessDenied { reason, .. }) => assert_eq!(reason, AccessStatus::Revoked),
        other => panic!("expected access denied, got {other:?}"),
    }
    let grants = fx.svc.grants(&alice).await.unwrap();
    let open: Vec<_> = grants
        .iter()
        .filter(|g| g.emergency.is_some())
        .map(|g| g.record_id)
        .collect();
    assert_eq!(open, vec![Some(2)]);
    assert!(fx.svc.read_record(&er, 2, None).await.unwrap().emergency);

    // A new break-glass is possible, as a new event with its own reason.
    fx.svc
        .emergency_access(&er, alice_id, "second seizure")
        .await
        .unwrap();
    assert_eq!(
        fx.chain.emergency_log(alice.address()).await.unwrap().len(),
        4
    );
    let r1 = fx.svc.read_record(&er, 1, None).await.unwrap();
    let log = fx.svc.access_log(&alice).await.unwrap();
    let e = log.iter().find(|e| e.tx_hash == r1.access_tx).unwrap();
    assert_eq!(e.reason.as_deref(), Some("second seizure"));

    // Revoke with no record: the all-records grant, a record grant and both windows end.
    fx.svc
        .grant(&alice, "er-doc", None, now() + 3600)
        .await
        .unwrap();
    fx.svc
        .grant(&alice, "er-doc", Some(2), now() + 3600)
        .await
        .unwrap();
    let head = fx.chain.head_number();
    fx.svc.revoke(&alice, "er-doc", None).await.unwrap();
    assert_eq!(fx.chain.head_number(), head + 1, "one transaction");
    for id in [1, 2] {
        assert!(matches!(
            fx.svc.read_record(&er, id, None).await,
            Err(Error::AccessDenied { .. })
        ));
    }
    let grants = fx.svc.grants(&alice).await.unwrap();
    assert!(
        grants.iter().all(|g| !g.active && g.emergency.is_none()),
        "{grants:?}"
    );
    // Nothing left to revoke: a clear not-found, nothing mined.
    assert!(matches!(
        fx.svc.revoke(&alice, "er-doc", None).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(fx.chain.head_number(), head + 1);
}

/// An expiry past the contract's 40-bit times is refused with a clear error, not wrapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_past_the_contracts_range_is_refused() {
    let fx = fixture().await;
    let (alice, _) = fx.patient("alice").await;
    let _bob = fx.provider("drbob").await;
    let head = fx.chain.head_number();
    for bad in [ehr_records::MAX_TIME + 1, (1 << 40) + 5, u64::MAX] {
        match fx.svc.grant(&alice, "drbob", None, bad).await {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "expires_at"),
            other => panic!("expected invalid expires_at, got {other:?}"),
        }
    }
    assert_eq!(fx.chain.head_number(), head, "nothing mined");
    fx.svc
        .grant(&alice, "drbob", None, ehr_records::MAX_TIME)
        .await
        .unwrap();
    assert_eq!(
        fx.svc.grants(&alice).await.unwrap()[0].expires_at,
        ehr_records::MAX_TIME
    );
}

mod slow_chain {
    //! The same service on a real anvil node over JSON-RPC, where gas costs ether and the
    //! chain may take its time: an upload whose transaction is not mined in time keeps its
    //! blocks until the chain decides, queries ask the node only for bounded block ranges,
    //! and sign-ups get only the gas they need, within a budget per hour.

    use super::*;
    use ehr_chain::testing::{ANVIL_DEV_KEY, Anvil, RecordingProxy};
    use ehr_chain::{FundingPolicy, RpcRegistry};
    use std::time::Duration;

    pub(super) struct RpcFx {
        pub dir: tempfile::TempDir,
        _anvil: Anvil,
        pub chain: Arc<RpcRegistry>,
        pub admin: PrivateKeySigner,
        pub svc: Service,
        pub stores: Vec<Arc<MemoryStore>>,
        pub nodes: Vec<Arc<dyn Node>>,
    }

    /// Anvil (with `args`), the contract deployed, five in-process nodes; `url` maps the
    /// node's URL to the one the service uses (e.g. a recording proxy's).
    pub(super) async fn rpc_fixture(
        args: &[&str],
        proxy: Option<&dyn Fn(&str) -> String>,
        funding: FundingPolicy,
    ) -> RpcFx {
        let anvil = Anvil::spawn_with(args).unwrap();
        let admin: PrivateKeySigner = ANVIL_DEV_KEY.parse().unwrap();
        let deployed = RpcRegistry::deploy(&anvil.url, &admin).await.unwrap();
        let url = proxy.map_or(anvil.url.clone(), |p| p(&anvil.url));
        let chain = Arc::new(
            RpcRegistry::connect(&url, ehr_chain::Registry::contract(&deployed))
                .await
                .unwrap()
                .with_receipt_timeout(Duration::from_secs(2))
                .with_max_log_range(1_000)
                .with_funding(admin.clone(), funding),
        );
        let dir = tempfile::tempdir().unwrap();
        let mut stores = Vec::new();
        let mut nodes: Vec<Arc<dyn Node>> = Vec::new();
        for i in 0..5u8 {
            let store = Arc::new(MemoryStore::new());
            nodes.push(Arc::new(
                LocalNode::new(
                    format!("node {}", i + 1),
                    NodeKey::from_seed(&[i + 1; 32]),
                    chain.clone(),
                    store.clone() as Arc<dyn BlobStore>,
                )
                .await
                .unwrap(),
            ));
            stores.push(store);
        }
        let svc = service(&dir, &chain, &admin, &nodes).await;
        RpcFx {
            dir,
            _anvil: anvil,
            chain,
            admin,
            svc,
            stores,
            nodes,
        }
    }

    async fn service(
        dir: &tempfile::TempDir,
        chain: &Arc<RpcRegistry>,
        admin: &PrivateKeySigner,
        nodes: &[Arc<dyn Node>],
    ) -> Service {
        Service::new(ServiceParts {
            registry: chain.clone(),
            contract_admin: admin.clone(),
            accounts: AccountStore::open(
                dir.path().join("accounts"),
                AccountParams::INSECURE_FAST,
                Arc::new(SystemClock),
            )
            .unwrap(),
            nodes: nodes.to_vec(),
            k: 3,
            data_dir: dir.path().to_path_buf(),
        })
        .await
        .unwrap()
    }

    async fn automine(chain: &RpcRegistry, on: bool) {
        let _: serde_json::Value = chain.raw_request("evm_setAutomine", (on,)).await.unwrap();
    }

    async fn mine(chain: &RpcRegistry) {
        let _: serde_json::Value = chain.raw_request("evm_mine", ()).await.unwrap();
    }

    /// Blocks on all five nodes together.
    fn blocks_held(stores: &[Arc<MemoryStore>]) -> usize {
        stores.iter().map(|s| s.len()).sum()
    }

    /// What one upload stores: a fragment and a share block on each of the five nodes, the
    /// manifest on n − k + 1 = 3 of them.
    const ONE_UPLOAD: usize = 5 * 2 + 3;

    impl RpcFx {
        async fn automine(&self, on: bool) {
            automine(&self.chain, on).await
        }

        async fn mine(&self) {
            mine(&self.chain).await
        }

        fn blocks_held(&self) -> usize {
            blocks_held(&self.stores)
        }

        pub(super) async fn patient(&self, name: &str) -> PatientSession {
            self.svc.register_patient(name, PW).await.unwrap();
            let (_, s) = self.svc.login(name, PW, "t").await.unwrap();
            s.patient().unwrap()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_not_mined_in_time_keeps_its_blocks_until_it_is() {
        let fx = rpc_fixture(&[], None, FundingPolicy::default()).await;
        let alice = fx.patient("alice").await;

        fx.automine(false).await;
        let pending = fx.svc.put_form(&alice, &form("Alice Doe", "Asthma")).await;
        assert!(
            matches!(pending, Err(Error::UploadPending { .. })),
            "{pending:?}"
        );
        // The transaction may still land: every node keeps its fragment and its share block, the
        // holders the manifest.
        assert_eq!(fx.blocks_held(), ONE_UPLOAD);
        assert_eq!(fx.svc.settle_uploads().await.unwrap(), 1, "still pending");
        assert_eq!(fx.blocks_held(), ONE_UPLOAD);

        // A restart while it is pending keeps the blocks too (one service opens the
        // accounts database at a time).
        drop(fx.svc);
        let restarted = service(&fx.dir, &fx.chain, &fx.admin, &fx.nodes).await;
        assert_eq!(blocks_held(&fx.stores), ONE_UPLOAD);

        // The chain mines it: the upload is finished, and the record reads.
        mine(&fx.chain).await;
        automine(&fx.chain, true).await;
        assert_eq!(restarted.settle_uploads().await.unwrap(), 0);
        let (_, alice) = restarted.login("alice", PW, "t").await.unwrap();
        let alice = alice.patient().unwrap();
        let read = restarted.read_record(&alice, 1, None).await.unwrap();
        assert_eq!(read.form.unwrap().health_condition, "Asthma");
        assert_eq!(blocks_held(&fx.stores), ONE_UPLOAD);

        // And the next start finds nothing to collect.
        drop(restarted);
        service(&fx.dir, &fx.chain, &fx.admin, &fx.nodes).await;
        assert_eq!(blocks_held(&fx.stores), ONE_UPLOAD);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_whose_nonce_another_transaction_took_is_collected() {
        let fx = rpc_fixture(&[], None, FundingPolicy::default()).await;
        let alice = fx.patient("alice").await;

        fx.automine(false).await;
        let Err(Error::UploadPending { tx_hash }) =
            fx.svc.put_form(&alice, &form("Alice Doe", "Asthma")).await
        else {
            panic!("the first upload should be pending");
        };
        // The node forgets it, and another upload takes its nonce and is mined.
        let _: serde_json::Value = fx
            .chain
            .raw_request("anvil_dropTransaction", (tx_hash,))
            .await
            .unwrap();
        let second = fx.svc.put_form(&alice, &form("Alice Doe", "Flu")).await;
        assert!(matches!(second, Err(Error::UploadPending { .. })));
        assert_eq!(fx.blocks_held(), 2 * ONE_UPLOAD);
        fx.mine().await;
        fx.automine(true).await;

        // The restart's collection: the first can never land (its blocks go), the second
        // is on chain (its blocks stay).
        drop(fx.svc);
        let restarted = service(&fx.dir, &fx.chain, &fx.admin, &fx.nodes).await;
        assert_eq!(blocks_held(&fx.stores), ONE_UPLOAD);
        assert_eq!(restarted.settle_uploads().await.unwrap(), 0);
        let (_, alice) = restarted.login("alice", PW, "t").await.unwrap();
        let alice = alice.patient().unwrap();
        let read = restarted.read_record(&alice, 1, None).await.unwrap();
        assert_eq!(read.form.unwrap().health_condition, "Flu");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_custodian_asks_the_node_only_for_the_last_minutes() {
        // A chain with a long past: its genesis 40,000 s ago, then 4,000 blocks 10 s apart
        // up to now.
        let start = now() - 40_000;
        let proxy = std::sync::OnceLock::new();
        let map = |url: &str| {
            proxy
                .get_or_init(|| RecordingProxy::start(url).unwrap())
                .url
                .clone()
        };
        let fx = rpc_fixture(
            &["--timestamp", &start.to_string()],
            Some(&map),
            FundingPolicy::default(),
        )
        .await;
        let proxy = proxy.get().unwrap();
        let alice = fx.patient("alice").await;
        fx.svc
            .put_form(&alice, &form("Alice Doe", "Asthma"))
            .await
            .unwrap();
        let mined: serde_json::Value = fx
            .chain
            .raw_request("anvil_mine", (U256::from(4_000), U256::from(10)))
            .await
            .unwrap();
        let _ = mined;
        let _: serde_json::Value = fx
            .chain
            .raw_request("evm_setNextBlockTimestamp", (U256::from(now()),))
            .await
            .unwrap();
        let head = fx.chain.info().await.unwrap().head_block;
        assert!(head > 4_000, "head {head}");

        proxy.clear();
        let read = fx.svc.read_record(&alice, 1, None).await.unwrap();
        assert_eq!(read.form.unwrap().health_condition, "Asthma");
        use alloy::sol_types::SolEvent;
        use ehr_chain::contract::EhrRegistry::{AccessLogged, RecordVersion};
        let ranges = proxy.log_ranges();
        let topic = |e: ehr_chain::B256| Some(e.to_string());
        let access: Vec<_> = ranges
            .iter()
            .filter(|r| r.2 == topic(AccessLogged::SIGNATURE_HASH))
            .collect();
        assert!(access.len() >= 3, "k custodians looked: {ranges:?}");
        for (from, to, _) in &access {
            // Ten minutes of 10-second blocks is 60 blocks; the read's own block is new.
            assert!(
                *from + 100 >= head,
                "an access-log query from block {from} (head {head}): {ranges:?}"
            );
            assert!(to.is_some(), "every range is bounded: {ranges:?}");
        }
        // The record's current version is looked up in the blocks of its update only.
        for (from, to, t) in &ranges {
            if *t == topic(RecordVersion::SIGNATURE_HASH) {
                let to = to.expect("bounded");
                assert!(to - from < 10, "a version query over {from}..={to}");
            }
        }

        // The patient's whole access log spans the history, in requests of at most
        // 1,000 blocks.
        proxy.clear();
        let log = fx.svc.access_log(&alice).await.unwrap();
        assert_eq!(log.len(), 1);
        let ranges = proxy.log_ranges();
        assert!(ranges.len() >= 4, "{ranges:?}");
        for (from, to, _) in &ranges {
            let to = to.expect("bounded");
            assert!(to >= *from && to - from < 1_000, "{from}..={to}");
        }
    }
}

mod funding {
    //! Sign-ups on a chain that charges gas: each account gets what its next operations
    //! need, and all of them together no more than the hour's budget.

    use super::slow_chain::*;
    use super::*;
    use ehr_chain::FundingPolicy;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sign_up_gets_gas_for_its_next_operations_not_an_ether() {
        let fx = rpc_fixture(&[], None, FundingPolicy::default()).await;
        let alice = fx.patient("alice").await;
        let balance = fx.chain.balance(alice.address()).await.unwrap();
        let fee = fx.chain.max_fee_per_gas().await.unwrap();
        // The default top-up: the gas targets of its next operations at today's fee.
        let top_up = U256::from(ehr_chain::gas::TOP_UP_GAS) * U256::from(fee) * U256::from(2);
        assert!(
            balance > U256::ZERO && balance < top_up,
            "alice holds {balance} wei (fee {fee})"
        );
        assert!(balance < U256::from(10u64.pow(16)), "{balance} wei");
        // Enough for what she does next: records, a read.
        for i in 0..3 {
            fx.svc
                .put_form(&alice, &form("Alice Doe", &format!("C{i}")))
                .await
                .unwrap();
        }
        fx.svc.read_record(&alice, 1, None).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sign_ups_stop_clearly_when_the_hours_budget_is_spent() {
        let per = U256::from(10u64.pow(15));
        let fx = rpc_fixture(
            &[],
            None,
            FundingPolicy {
                top_up_wei: Some(per),
                budget_per_hour: per * U256::from(2),
            },
        )
        .await;
        fx.patient("alice").await;
        fx.patient("bob").await;
        for who in ["alice", "bob"] {
            let (_, s) = fx.svc.login(who, PW, "t").await.unwrap();
            let a = s.patient().unwrap().address();
            assert!(fx.chain.balance(a).await.unwrap() <= per);
        }
        let admin_before = fx.chain.balance(fx.admin.address()).await.unwrap();
        let refused = fx.svc.register_patient("carol", PW).await;
        let Err(e @ Error::FundingBudgetSpent { retry_after }) = refused else {
            panic!("the third sign-up exceeds the budget: {refused:?}");
        };
        assert!(retry_after.as_secs() > 3_000, "{retry_after:?}");
        assert!(e.to_string().contains("budget"), "{e}");
        // Nothing was made or paid: no account, no transfer.
        assert!(fx.svc.login("carol", PW, "t").await.is_err());
        assert_eq!(
            fx.chain.balance(fx.admin.address()).await.unwrap(),
            admin_before
        );
    }
}

/// The reasons file's archive hooks: a snapshot and the lines appended after a cursor are
/// whole lines only; a restore from them is the same file, and bad parts write nothing.
#[test]
fn reasons_snapshot_changes_and_restore() {
    use ehr_records::reasons::{FILE, ReasonLog};
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let log = ReasonLog::open(&live).unwrap();
    let (provider, patient) = (
        ehr_chain::Address::repeat_byte(1),
        ehr_chain::Address::repeat_byte(2),
    );
    assert_eq!(log.snapshot().unwrap(), (0, Vec::new()));
    assert_eq!(log.changes_since(0).unwrap(), None);

    let d1 = log
        .add(provider, patient, "unconscious on arrival")
        .unwrap();
    let d2 = log
        .add(provider, patient, "anaphylaxis, no contact reachable")
        .unwrap();
    let (c1, snapshot) = log.snapshot().unwrap();
    assert_eq!(c1 as usize, snapshot.len());
    assert_eq!(snapshot, std::fs::read(live.join(FILE)).unwrap());
    assert_eq!(log.changes_since(0).unwrap(), Some((c1, snapshot.clone())));
    assert_eq!(log.changes_since(c1).unwrap(), None);

    let d3 = log.add(provider, patient, "Bewusstlos — ü, 救急").unwrap();
    let (c2, changes) = log.changes_since(c1).unwrap().unwrap();
    assert_eq!(changes.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(c2, std::fs::metadata(live.join(FILE)).unwrap().len());
    // A cursor inside a line, or past the end, is refused.
    assert!(log.changes_since(c1 + 3).is_err());
    assert!(log.changes_since(c2 + 1).is_err());
    assert!(log.changes_since(c2 + 100).is_err());

    // Half a line being written (a crash mid-append) is in neither.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(live.join(FILE))
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"digest\":\"0x").unwrap();
    assert_eq!(log.snapshot().unwrap().0, c2);
    assert_eq!(log.changes_since(c2).unwrap(), None);
    assert_eq!(
        log.changes_since(c1).unwrap().unwrap(),
        (c2, changes.clone())
    );

    // Restored: every reason, readable by digest, the file private.
    let out = dir.path().join("restored");
    assert_eq!(
        ReasonLog::restore(&out, &snapshot, std::slice::from_ref(&changes)).unwrap(),
        3
    );
    let restored = ReasonLog::open(&out).unwrap();
    assert_eq!(restored.get(d1).unwrap(), "unconscious on arrival");
    assert_eq!(
        restored.get(d2).unwrap(),
        "anaphylaxis, no contact reachable"
    );
    assert_eq!(restored.get(d3).unwrap(), "Bewusstlos — ü, 救急");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Over an existing file: refused, the file unchanged.
    let before = std::fs::read(out.join(FILE)).unwrap();
    assert!(ReasonLog::restore(&out, &snapshot, &[]).is_err());
    assert_eq!(std::fs::read(out.join(FILE)).unwrap(), before);
    // An empty snapshot restores an empty file.
    assert_eq!(
        ReasonLog::restore(&dir.path().join("empty"), &[], &[]).unwrap(),
        0
    );

    // Bad parts: refused, nothing written.
    let torn = changes[..changes.len() - 1].to_vec();
    // (case, snapshot, change sets)
    type Case<'a> = (&'a str, &'a [u8], Vec<Vec<u8>>);
    let cases: [Case; 5] = [
        ("overlap", &snapshot, vec![snapshot.clone()]),
        ("torn", &snapshot, vec![torn]),
        ("not a reason", b"{\"x\":1}\n", vec![]),
        ("empty line", b"\n", vec![]),
        ("empty change set", &snapshot, vec![Vec::new()]),
    ];
    for (name, snap, changes) in cases {
        let out = dir.path().join(name.replace(' ', "-"));
        let err = ReasonLog::restore(&out, snap, &changes).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{name}: {err}");
        assert!(!out.exists(), "{name}: something was written");
    }
}
