//! Crash under load: `secure-ehr serve` (the real binary, embedded default, one temporary data
//! directory) is killed with SIGKILL at random moments while patients upload records and new
//! versions and grant access, patients and a provider read, and now and then a patient signs
//! up, all at once through the JSON API; it is restarted on the same directory after every
//! kill. The first start (which creates the deployment) and every other restart are
//! themselves killed while they start. Whatever the server
//! acknowledged (a complete 2xx answer) must survive every later kill:
//!
//! - every acknowledged upload reads back with its content, at its version and manifest CID;
//! - every acknowledged grant holds: its provider reads the record (all of them for an
//!   all-records grant), and the patient's grant list shows it active;
//! - every acknowledged read has its entry in the patient's `/api/access-log` (same
//!   transaction, record, version and reader);
//! - `secure-ehr chain verify` passes after every kill;
//! - after the last restart's orphan collection each node holds exactly the blocks of the
//!   versions the chain lists (that node's fragment and share block each, and the manifest
//!   on its holders): no orphans;
//! - every acknowledged sign-up signs in as the patient id it was given, and one that got no
//!   answer either never happened or signs in as a registered patient.
//!
//! Whatever was in flight at a kill may or may not have happened; the test only requires
//! that it left nothing half-done behind. Everything acknowledged in one run is checked right
//! after the next restart, and everything once more at the end. The random choices (which
//! operation, which record, when to kill) come from one seed, printed at the start; set
//! `SECURE_EHR_CRASH_SEED` to replay a failing run's choices (the interleaving with the
//! server's threads still varies).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ehr_api::types;
use ehr_chain::{Address, B256};
use serde::de::DeserializeOwned;

const PW: &str = "correct horse battery";
const PATIENTS: [&str; 2] = ["alice", "bert"];
const PROVIDERS: [&str; 1] = ["drbob"];
/// Kills under load (one per run); start-up kills come on top.
const RUNS_UNDER_LOAD: usize = 5;
/// Each run is killed once this many requests were answered, plus a few milliseconds: a
/// random moment, and the same amount of work on a fast machine as on a slow one.
const ANSWERS_PER_RUN: std::ops::Range<u64> = 50..150;
/// Concurrent request loops per patient and per provider.
const PATIENT_WORKERS: usize = 2;
const PROVIDER_WORKERS: usize = 2;
/// The embedded default's node count.
const NODES: usize = 5;

/// splitmix64: small, seedable, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len() as u64) as usize])
        }
    }
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secure-ehr"));
    // The embedded default whatever the environment says.
    for var in [
        "SECURE_EHR_NODES",
        "SECURE_EHR_NODE_TOKEN",
        "SECURE_EHR_CHAIN_RPC",
        "SECURE_EHR_CONTRACT",
        "SECURE_EHR_ADMIN_KEY_FILE",
        "SECURE_EHR_LISTEN",
        "SECURE_EHR_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A FHIR bundle whose condition text is `marker`, so a read shows which upload it returned.
fn bundle(marker: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            { "resource": { "resourceType": "Patient", "id": "p1",
                "name": [{ "family": "Doe", "given": ["Jane"] }], "birthDate": "1984-02-29" } },
            { "resource": { "resourceType": "Condition", "code": { "text": marker },
                "subject": { "reference": "Patient/p1" } } }
        ]
    }))
    .unwrap()
}

/// The condition text of a read record's bundle.
fn marker_of(record: &types::ReadRecord) -> Option<&str> {
    record.bundle["entry"].as_array()?.iter().find_map(|e| {
        let r = &e["resource"];
        (r["resourceType"] == "Condition")
            .then(|| r["code"]["text"].as_str())
            .flatten()
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------
// What the server acknowledged
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct VersionAck {
    patient: usize,
    record_id: u64,
    version: u32,
    marker: String,
    manifest_cid: String,
    run: usize,
}

#[derive(Clone, Debug)]
struct GrantAck {
    patient: usize,
    provider: usize,
    record_id: Option<u64>,
    run: usize,
}

#[derive(Clone, Debug)]
struct ReadAck {
    /// The patient whose record was read.
    patient: usize,
    reader: Address,
    record_id: u64,
    version: u32,
    access_tx: B256,
    run: usize,
}

#[derive(Default)]
struct Model {
    versions: Vec<VersionAck>,
    grants: Vec<GrantAck>,
    reads: Vec<ReadAck>,
    /// Broken promises seen while the load ran (a refused read under an acknowledged
    /// grant, a wrong content, …).
    failures: Vec<String>,
    /// Requests sent under load, answered (any status), and left without an answer.
    sent: usize,
    answered: usize,
    lost: usize,
    lost_uploads: usize,
    /// Patient sign-ups under load: acknowledged (username, patient id), and unanswered.
    signups: Vec<(String, u64)>,
    lost_signups: Vec<String>,
}

impl Model {
    fn records_of(&self, patient: usize) -> Vec<u64> {
        let set: BTreeSet<u64> = self
            .versions
            .iter()
            .filter(|v| v.patient == patient)
            .map(|v| v.record_id)
            .collect();
        set.into_iter().collect()
    }

    fn version(&self, record_id: u64, version: u32) -> Option<&VersionAck> {
        self.versions
            .iter()
            .find(|v| v.record_id == record_id && v.version == version)
    }

    fn versions_of(&self, record_id: u64) -> Vec<u32> {
        self.versions
            .iter()
            .filter(|v| v.record_id == record_id)
            .map(|v| v.version)
            .collect()
    }

    /// The newest acknowledged version of every record.
    fn floors(&self) -> BTreeMap<u64, u32> {
        let mut out = BTreeMap::new();
        for v in &self.versions {
            let e = out.entry(v.record_id).or_insert(0);
            *e = (*e).max(v.version);
        }
        out
    }

    fn latest(&self, record_id: u64) -> u32 {
        self.versions_of(record_id).into_iter().max().unwrap_or(0)
    }

    fn owner_of(&self, record_id: u64) -> Option<usize> {
        self.versions
            .iter()
            .find(|v| v.record_id == record_id)
            .map(|v| v.patient)
    }
}

// ---------------------------------------------------------------------------------------
// The JSON API
// ---------------------------------------------------------------------------------------

/// How a request ended.
enum Reply {
    /// A complete 2xx answer: acknowledged.
    Ok(Vec<u8>),
    /// A complete answer with another status.
    Status(u16, String),
    /// No complete answer (the server died): it may or may not have happened.
    Lost(String),
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                // Only against a hang: a request normally takes milliseconds.
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            url: url.to_owned(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Reply::Lost(e.to_string()),
        };
        let status = resp.status();
        match resp.bytes().await {
            Err(e) => Reply::Lost(e.to_string()),
            Ok(b) if status.is_success() => Reply::Ok(b.to_vec()),
            Ok(b) => Reply::Status(status.as_u16(), String::from_utf8_lossy(&b).into_owned()),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// A request that must succeed (the server is up and nothing kills it meanwhile).
    fn must<T: DeserializeOwned>(what: &str, reply: Reply) -> T {
        match reply {
            Reply::Ok(b) => serde_json::from_slice(&b)
                .unwrap_or_else(|e| panic!("{what}: unexpected body ({e}): {b:?}")),
            Reply::Status(s, body) => panic!("{what}: {s} {body}"),
            Reply::Lost(e) => panic!("{what}: no answer: {e}"),
        }
    }

    async fn login(&self, username: &str) -> types::Session {
        let body = serde_json::to_vec(&types::Credentials {
            username: username.into(),
            password: PW.into(),
        })
        .unwrap();
        loop {
            match self.post("/api/session", None, body.clone()).await {
                // A successful-login throttle may hold a few back after many restarts.
                Reply::Status(429, msg) => {
                    let secs = serde_json::from_str::<types::ErrorBody>(&msg)
                        .ok()
                        .and_then(|e| e.retry_after)
                        .unwrap_or(1);
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                }
                reply => return Self::must(&format!("login {username}"), reply),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    url: Option<String>,
    log: PathBuf,
}

impl Server {
    /// Starts `secure-ehr serve` on `data`, its standard error going to `log`.
    fn spawn(data: &Path, log: PathBuf) -> Self {
        let mut child = bin()
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(u) = line.strip_prefix("SecureEHR listening on ") {
                    let _ = tx.send(u.to_owned());
                }
            }
        });
        Self {
            child,
            lines,
            url: None,
            log,
        }
    }

    /// Waits until it listens; panics (with its log) if it exits first.
    fn listening(&mut self, ctx: &str) -> String {
        if self.url.is_none() {
            let url = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| {
                    panic!(
                        "{ctx}: the server did not come up; its log:\n{}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    )
                });
            self.url = Some(url);
        }
        self.url.clone().unwrap()
    }

    fn kill_after(self, wait: Duration) {
        std::thread::sleep(wait);
        self.kill();
    }

    /// SIGTERM (a clean stop: the open epoch of the ledger archive is sealed and every node
    /// gets its parts), and reap it.
    fn stop(mut self) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve did not stop cleanly: {status}");
    }

    /// SIGKILL, and reap it.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chain_verify(data: &Path, ctx: &str) {
    let out = bin()
        .arg("--data-dir")
        .arg(data)
        .args(["chain", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok: "),
        "{ctx}: chain verify failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// One run of the server
// ---------------------------------------------------------------------------------------

/// The signed-in users of one run of the server.
struct Run {
    api: Api,
    run: usize,
    patients: Vec<types::Session>,
    providers: Vec<types::Session>,
    patient_ids: Vec<u64>,
    model: Arc<Mutex<Model>>,
    seed: u64,
}

impl Run {
    fn fail(&self, msg: String) {
        self.model.lock().unwrap().failures.push(msg);
    }

    /// Reads `patient`'s record `record_id` (at `version`, or the latest) as `token`'s
    /// user, checking the answer against the model; false if it got no answer.
    async fn read(
        &self,
        who: &str,
        token: &str,
        patient: usize,
        record_id: u64,
        version: Option<u32>,
    ) -> bool {
        let path = match version {
            Some(v) => format!("/api/records/{record_id}?version={v}"),
            None => format!("/api/records/{record_id}"),
        };
        let floor = self.model.lock().unwrap().latest(record_id);
        match self.api.get(&path, token).await {
            Reply::Ok(b) => {
                let r: types::ReadRecord = serde_json::from_slice(&b).unwrap();
                self.check_read(who, &r, patient, record_id, version, floor);
                true
            }
            Reply::Status(s, body) => {
                self.fail(format!(
                    "run {}: {who} reading record {record_id} version {version:?}: {s} {body}",
                    self.run
                ));
                true
            }
            Reply::Lost(_) => false,
        }
    }

    /// Checks a read of `patient`'s record against the model and records it as
    /// acknowledged. `floor`: the newest version acknowledged when the read was sent.
    fn check_read(
        &self,
        who: &str,
        r: &types::ReadRecord,
        patient: usize,
        record_id: u64,
        version: Option<u32>,
        floor: u32,
    ) {
        let mut m = self.model.lock().unwrap();
        let mut problems = Vec::new();
        if r.record_id != record_id {
            problems.push(format!("got record {}", r.record_id));
        }
        if version.is_some_and(|v| v != r.version) {
            problems.push(format!("got version {}", r.version));
        }
        if let Some(want) = m.version(r.record_id, r.version) {
            if marker_of(r) != Some(want.marker.as_str()) {
                problems.push(format!(
                    "content {:?}, acknowledged as {:?}",
                    marker_of(r),
                    want.marker
                ));
            }
            if r.manifest_cid != want.manifest_cid {
                problems.push(format!(
                    "manifest {}, acknowledged as {}",
                    r.manifest_cid, want.manifest_cid
                ));
            }
        }
        // A read of the latest version never goes behind an acknowledged one.
        if version.is_none() && r.version < floor {
            problems.push(format!(
                "latest version read is {}, but {floor} was acknowledged before",
                r.version
            ));
        }
        if m.owner_of(r.record_id).is_some_and(|o| o != patient) {
            problems.push("another patient's record".into());
        }
        let reader = self
            .patients
            .iter()
            .chain(&self.providers)
            .find(|s| s.username == who)
            .map(|s| s.address)
            .unwrap();
        // (The record itself may be one whose upload was lost at a kill but made it.)
        m.reads.push(ReadAck {
            patient,
            reader,
            record_id: r.record_id,
            version: r.version,
            access_tx: r.access_tx,
            run: self.run,
        });
        if !problems.is_empty() {
            m.failures.push(format!(
                "run {}: {who} read record {record_id} version {version:?}: {}",
                self.run,
                problems.join("; ")
            ));
        }
    }

    /// One patient's request loop until the server dies or `stop`.
    async fn patient_loop(
        self: Arc<Self>,
        p: usize,
        worker: usize,
        mut rng: Rng,
        stop: Arc<AtomicBool>,
    ) {
        let token = self.patients[p].token.clone();
        let who = PATIENTS[p];
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let marker = format!(
                "crash {:x} run {} {who} w{worker} op {n}",
                self.seed, self.run
            );
            let (records, choice) = {
                let m = self.model.lock().unwrap();
                (m.records_of(p), rng.below(100))
            };
            let record = rng.pick(&records).copied();
            let upload = choice < 50 || record.is_none();
            self.model.lock().unwrap().sent += 1;
            let reply = match (choice, record) {
                // A new record.
                (0..30, _) | (_, None) => {
                    let reply = self
                        .api
                        .post("/api/records", Some(&token), bundle(&marker))
                        .await;
                    self.stored(p, &reply, &marker, None);
                    reply
                }
                // A new version.
                (30..50, Some(id)) => {
                    let reply = self
                        .api
                        .send(
                            reqwest::Method::PUT,
                            &format!("/api/records/{id}"),
                            Some(&token),
                            Some(bundle(&marker)),
                        )
                        .await;
                    self.stored(p, &reply, &marker, Some(id));
                    reply
                }
                // A grant: one record or all of them.
                (50..75, Some(id)) => {
                    let provider = rng.below(PROVIDERS.len() as u64) as usize;
                    let record_id = (rng.below(3) != 0).then_some(id);
                    let body = serde_json::to_vec(&types::GrantRequest {
                        provider: PROVIDERS[provider].into(),
                        record_id,
                        expires_at: now() + 86_400,
                        write: false,
                    })
                    .unwrap();
                    let reply = self.api.post("/api/grants", Some(&token), body).await;
                    match &reply {
                        Reply::Ok(_) => self.model.lock().unwrap().grants.push(GrantAck {
                            patient: p,
                            provider,
                            record_id,
                            run: self.run,
                        }),
                        Reply::Status(s, b) => {
                            self.fail(format!("run {}: {who} granting: {s} {b}", self.run))
                        }
                        Reply::Lost(_) => {}
                    }
                    reply
                }
                // The owner reads an acknowledged version, or the latest.
                (_, Some(id)) => {
                    let versions = self.model.lock().unwrap().versions_of(id);
                    let version = if rng.below(2) == 0 {
                        rng.pick(&versions).copied()
                    } else {
                        None
                    };
                    if self.read(who, &token, p, id, version).await {
                        Reply::Ok(Vec::new())
                    } else {
                        Reply::Lost(String::new())
                    }
                }
            };
            let mut m = self.model.lock().unwrap();
            if let Reply::Lost(_) = reply {
                m.lost += 1;
                if upload {
                    m.lost_uploads += 1;
                }
                return;
            }
            m.answered += 1;
        }
    }

    /// Signs a patient up once `answered` requests were answered under load.
    async fn sign_up(self: Arc<Self>, username: String, answered: usize) {
        while self.model.lock().unwrap().answered < answered {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let body = serde_json::to_vec(&types::Credentials {
            username: username.clone(),
            password: PW.into(),
        })
        .unwrap();
        let reply = self.api.post("/api/patients", None, body).await;
        let mut m = self.model.lock().unwrap();
        match reply {
            Reply::Ok(b) => {
                let p: types::PatientAccount = serde_json::from_slice(&b).unwrap();
                m.signups.push((username, p.patient_id));
            }
            Reply::Status(s, b) => m
                .failures
                .push(format!("run {}: signing {username} up: {s} {b}", self.run)),
            Reply::Lost(_) => m.lost_signups.push(username),
        }
    }

    /// Every acknowledged sign-up signs in as the registered patient it was told; one that
    /// got no answer either never happened or is a registered patient too.
    async fn check_signups(&self) {
        let (acked, lost) = {
            let m = self.model.lock().unwrap();
            (m.signups.clone(), m.lost_signups.clone())
        };
        let mut problems = Vec::new();
        let mut never = 0;
        let all = acked
            .iter()
            .map(|(u, id)| (u.clone(), Some(*id)))
            .chain(lost.iter().map(|u| (u.clone(), None)));
        for (username, want) in all {
            let body = serde_json::to_vec(&types::Credentials {
                username: username.clone(),
                password: PW.into(),
            })
            .unwrap();
            let session: types::Session = match self.api.post("/api/session", None, body).await {
                Reply::Ok(b) => serde_json::from_slice(&b).unwrap(),
                Reply::Status(401, _) if want.is_none() => {
                    never += 1;
                    continue;
                }
                other => {
                    problems.push(format!(
                        "sign-up {username} ({want:?}) cannot sign in: {}",
                        describe(&other)
                    ));
                    continue;
                }
            };
            let me: types::Me =
                Api::must("who am I", self.api.get("/api/me", &session.token).await);
            if me.patient_id.is_none() || want.is_some_and(|id| me.patient_id != Some(id)) {
                problems.push(format!(
                    "sign-up {username} acknowledged as patient {want:?} signs in as {:?}",
                    me.patient_id
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "sign-ups (seed {}, SECURE_EHR_CRASH_SEED={} to replay):\n{}",
            self.seed,
            self.seed,
            problems.join("\n")
        );
        eprintln!(
            "sign-ups: {} acknowledged, {} unanswered ({never} of them never made), checked",
            acked.len(),
            lost.len()
        );
    }

    /// Records an acknowledged upload (new record, or a version of `update`).
    fn stored(&self, p: usize, reply: &Reply, marker: &str, update: Option<u64>) {
        match reply {
            Reply::Ok(b) => {
                let s: types::Stored = serde_json::from_slice(b).unwrap();
                let mut m = self.model.lock().unwrap();
                // (Answers to concurrent updates of one record may arrive in any order.)
                let ok = match update {
                    None => s.version == 1 && m.owner_of(s.record_id).is_none(),
                    Some(id) => {
                        s.record_id == id
                            && s.version > 1
                            && !m.versions_of(id).contains(&s.version)
                    }
                };
                if !ok {
                    m.failures.push(format!(
                        "run {}: storing {update:?} acknowledged record {} version {}, which clashes",
                        self.run, s.record_id, s.version
                    ));
                }
                m.versions.push(VersionAck {
                    patient: p,
                    record_id: s.record_id,
                    version: s.version,
                    marker: marker.to_owned(),
                    manifest_cid: s.manifest_cid,
                    run: self.run,
                });
            }
            Reply::Status(s, b) => self.fail(format!(
                "run {}: {} storing ({update:?}): {s} {b}",
                self.run, PATIENTS[p]
            )),
            Reply::Lost(_) => {}
        }
    }

    /// One provider's request loop: reads under the grants acknowledged so far.
    async fn provider_loop(self: Arc<Self>, d: usize, mut rng: Rng, stop: Arc<AtomicBool>) {
        let token = self.providers[d].token.clone();
        let who = PROVIDERS[d];
        while !stop.load(Ordering::Relaxed) {
            let target = {
                let m = self.model.lock().unwrap();
                let grants: Vec<&GrantAck> = m.grants.iter().filter(|g| g.provider == d).collect();
                rng.pick(&grants).map(|g| {
                    let record = g
                        .record_id
                        .or_else(|| rng.pick(&m.records_of(g.patient)).copied());
                    (g.patient, record)
                })
            };
            let Some((patient, record)) = target else {
                // Nothing granted yet.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            self.model.lock().unwrap().sent += 1;
            let lost = if rng.below(10) == 0 {
                // Every record the patient granted, each read logged.
                let path = format!("/api/patients/{}/records", self.patient_ids[patient]);
                let floors = self.model.lock().unwrap().floors();
                match self.api.get(&path, &token).await {
                    Reply::Ok(b) => {
                        let list: Vec<types::ReadRecord> = serde_json::from_slice(&b).unwrap();
                        for r in &list {
                            let floor = floors.get(&r.record_id).copied().unwrap_or(0);
                            self.check_read(who, r, patient, r.record_id, None, floor);
                        }
                        false
                    }
                    Reply::Status(s, b) => {
                        self.fail(format!("run {}: {who} reading {path}: {s} {b}", self.run));
                        false
                    }
                    Reply::Lost(_) => true,
                }
            } else if let Some(id) = record {
                let versions = self.model.lock().unwrap().versions_of(id);
                let version = if rng.below(2) == 0 {
                    rng.pick(&versions).copied()
                } else {
                    None
                };
                !self.read(who, &token, patient, id, version).await
            } else {
                // An all-records grant, but no record yet.
                self.model.lock().unwrap().sent -= 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let mut m = self.model.lock().unwrap();
            if lost {
                m.lost += 1;
                return;
            }
            m.answered += 1;
        }
    }

    /// Checks everything acknowledged in runs `runs` (and records the reads it makes).
    async fn verify(&self, runs: std::ops::RangeInclusive<usize>, ctx: &str) {
        let (versions, grants, reads) = {
            let m = self.model.lock().unwrap();
            (
                m.versions
                    .iter()
                    .filter(|v| runs.contains(&v.run))
                    .cloned()
                    .collect::<Vec<_>>(),
                m.grants
                    .iter()
                    .filter(|g| runs.contains(&g.run))
                    .cloned()
                    .collect::<Vec<_>>(),
                m.reads
                    .iter()
                    .filter(|r| runs.contains(&r.run))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        };
        let mut problems = Vec::new();
        let t = Instant::now();

        // Uploads: listed with their manifest, and each version reads back.
        for (p, session) in self.patients.iter().enumerate() {
            let list: Vec<types::RecordSummary> = Api::must(
                "listing records",
                self.api.get("/api/records", &session.token).await,
            );
            for v in versions.iter().filter(|v| v.patient == p) {
                let listed = list
                    .iter()
                    .find(|r| r.record_id == v.record_id)
                    .and_then(|r| r.versions.iter().find(|x| x.version == v.version));
                match listed {
                    Some(x) if x.manifest_cid == v.manifest_cid => {}
                    Some(x) => problems.push(format!(
                        "record {} version {} (run {}) is listed with manifest {}, acknowledged {}",
                        v.record_id, v.version, v.run, x.manifest_cid, v.manifest_cid
                    )),
                    None => problems.push(format!(
                        "record {} version {} (run {}) is not listed",
                        v.record_id, v.version, v.run
                    )),
                }
            }
        }
        for v in &versions {
            let token = &self.patients[v.patient].token;
            let path = format!("/api/records/{}?version={}", v.record_id, v.version);
            match self.api.get(&path, token).await {
                Reply::Ok(b) => {
                    let r: types::ReadRecord = serde_json::from_slice(&b).unwrap();
                    let before = self.model.lock().unwrap().failures.len();
                    let floor = v.version;
                    self.check_read(
                        PATIENTS[v.patient],
                        &r,
                        v.patient,
                        v.record_id,
                        Some(v.version),
                        floor,
                    );
                    let mut m = self.model.lock().unwrap();
                    problems.extend(m.failures.drain(before..));
                }
                other => problems.push(format!(
                    "record {} version {} (run {}) does not read back: {}",
                    v.record_id,
                    v.version,
                    v.run,
                    describe(&other)
                )),
            }
        }

        // Grants: listed as active, and the provider reads.
        let mut checked = BTreeSet::new();
        for g in &grants {
            if !checked.insert((g.patient, g.provider, g.record_id)) {
                continue;
            }
            let list: Vec<types::Grant> = Api::must(
                "listing grants",
                self.api
                    .get("/api/grants", &self.patients[g.patient].token)
                    .await,
            );
            let provider = &self.providers[g.provider];
            if !list.iter().any(|x| {
                x.provider_address == provider.address && x.record_id == g.record_id && x.active
            }) {
                problems.push(format!("grant {g:?} is not listed as active"));
            }
            let token = &provider.token;
            match g.record_id {
                Some(id) => match self.api.get(&format!("/api/records/{id}"), token).await {
                    Reply::Ok(b) => {
                        let r: types::ReadRecord = serde_json::from_slice(&b).unwrap();
                        let floor = self.model.lock().unwrap().latest(id);
                        self.check_read(PROVIDERS[g.provider], &r, g.patient, id, None, floor);
                    }
                    other => {
                        problems.push(format!("grant {g:?} does not hold: {}", describe(&other)))
                    }
                },
                None => {
                    let path = format!("/api/patients/{}/records", self.patient_ids[g.patient]);
                    match self.api.get(&path, token).await {
                        Reply::Ok(b) => {
                            let list: Vec<types::ReadRecord> = serde_json::from_slice(&b).unwrap();
                            let got: BTreeSet<u64> = list.iter().map(|r| r.record_id).collect();
                            let floors = self.model.lock().unwrap().floors();
                            for r in &list {
                                let floor = floors.get(&r.record_id).copied().unwrap_or(0);
                                self.check_read(
                                    PROVIDERS[g.provider],
                                    r,
                                    g.patient,
                                    r.record_id,
                                    None,
                                    floor,
                                );
                            }
                            let want: BTreeSet<u64> = self
                                .model
                                .lock()
                                .unwrap()
                                .records_of(g.patient)
                                .into_iter()
                                .collect();
                            if !want.is_subset(&got) {
                                problems.push(format!(
                                    "all-records grant {g:?} reads {got:?}, not every acknowledged record {want:?}"
                                ));
                            }
                        }
                        // (Patients grant only once they have a record.)
                        other => problems
                            .push(format!("grant {g:?} does not hold: {}", describe(&other))),
                    }
                }
            }
        }

        // Reads: each has its audit entry.
        let mut logs = BTreeMap::new();
        for (p, session) in self.patients.iter().enumerate() {
            let log: Vec<types::AccessLogEntry> = Api::must(
                "the access log",
                self.api.get("/api/access-log", &session.token).await,
            );
            logs.insert(p, log);
        }
        for r in &reads {
            let found = logs[&r.patient].iter().find(|e| e.tx_hash == r.access_tx);
            match found {
                Some(e)
                    if e.record_id == r.record_id
                        && e.version == Some(r.version)
                        && e.reader == r.reader => {}
                Some(e) => problems.push(format!("read {r:?} is logged as {e:?}")),
                None => problems.push(format!("read {r:?} has no audit entry")),
            }
        }
        {
            let m = self.model.lock().unwrap();
            problems.extend(m.failures.iter().cloned());
        }
        assert!(
            problems.is_empty(),
            "{ctx} (seed {}, SECURE_EHR_CRASH_SEED={} to replay): {} problems:\n{}",
            self.seed,
            self.seed,
            problems.len(),
            problems.join("\n")
        );
        eprintln!(
            "{ctx}: {} versions, {} grants, {} reads checked in {:.1} s",
            versions.len(),
            checked.len(),
            reads.len(),
            t.elapsed().as_secs_f64()
        );
    }
}

fn describe(r: &Reply) -> String {
    match r {
        Reply::Ok(_) => "ok".into(),
        Reply::Status(s, b) => format!("{s} {b}"),
        Reply::Lost(e) => format!("no answer: {e}"),
    }
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

#[test]
fn sigkill_under_load_loses_nothing_acknowledged() {
    let seed = std::env::var("SECURE_EHR_CRASH_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("SECURE_EHR_CRASH_SEED: a u64"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed: {seed} (SECURE_EHR_CRASH_SEED={seed} replays its choices)");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // The admin, offline.
    crate::restore::admin_init(&data);

    let mut starts = 0;
    let log = |starts: usize| dir.path().join(format!("serve-{starts}.log"));
    // The very first start creates the deployment (chain, node keys, the node set on
    // chain): killed at a random moment of it, the next start must still come up.
    Server::spawn(&data, log(starts)).kill_after(Duration::from_millis(rng.below(800)));
    if ehr_records::deployment::chain_dir(&data)
        .join("chain.redb")
        .exists()
    {
        chain_verify(&data, "after a kill during the first start");
    }
    starts += 1;
    let mut kills_at_start = 1;
    let mut server = Server::spawn(&data, log(starts));
    let api = Api::new(&server.listening("first start"));
    let patient_ids: Vec<u64> = rt.block_on(async {
        let admin = api.login("admin").await;
        for name in PROVIDERS {
            let body = serde_json::to_vec(&types::Credentials {
                username: name.into(),
                password: PW.into(),
            })
            .unwrap();
            let _: types::Account = Api::must(
                "adding a provider",
                api.post("/api/providers", Some(&admin.token), body).await,
            );
        }
        let mut ids = Vec::new();
        for name in PATIENTS {
            let body = serde_json::to_vec(&types::Credentials {
                username: name.into(),
                password: PW.into(),
            })
            .unwrap();
            let p: types::PatientAccount =
                Api::must("signing up", api.post("/api/patients", None, body).await);
            ids.push(p.patient_id);
        }
        ids
    });
    let mut server = Some(server);

    let model = Arc::new(Mutex::new(Model::default()));
    let mut load_time = Duration::ZERO;
    let mut t_up = Duration::ZERO;
    for run in 1..=RUNS_UNDER_LOAD + 1 {
        let last = run > RUNS_UNDER_LOAD;
        let mut srv = match server.take() {
            Some(s) => s,
            None => {
                // Every other restart is killed while it starts (chain replay, orphan
                // collection, journal compaction), at a random moment within the time the
                // last start took.
                if run % 2 == 0 {
                    starts += 1;
                    let ms = t_up.as_millis() as u64;
                    Server::spawn(&data, log(starts))
                        .kill_after(Duration::from_millis(rng.below(ms + 1)));
                    kills_at_start += 1;
                    chain_verify(&data, &format!("after a kill at start {starts}"));
                }
                starts += 1;
                Server::spawn(&data, log(starts))
            }
        };
        let t0 = Instant::now();
        let api = Api::new(&srv.listening(&format!("start {starts} (run {run})")));
        t_up = t0.elapsed();
        let ctx = Arc::new(rt.block_on(async {
            // At once: the server decides how many key derivations run in parallel.
            let sign_in = |names: &'static [&'static str]| {
                names
                    .iter()
                    .map(|name| {
                        let api = api.clone();
                        tokio::spawn(async move { api.login(name).await })
                    })
                    .collect::<Vec<_>>()
            };
            let (p, d) = (sign_in(&PATIENTS), sign_in(&PROVIDERS));
            let mut patients = Vec::new();
            for t in p {
                patients.push(t.await.unwrap());
            }
            let mut providers = Vec::new();
            for t in d {
                providers.push(t.await.unwrap());
            }
            Run {
                api: api.clone(),
                run,
                patients,
                providers,
                patient_ids: patient_ids.clone(),
                model: model.clone(),
                seed,
            }
        }));
        let t_login = t0.elapsed() - t_up;
        eprintln!(
            "[{:.1} s] run {run}: up in {:.1} s, signed in in {:.1} s",
            started.elapsed().as_secs_f64(),
            t_up.as_secs_f64(),
            t_login.as_secs_f64()
        );
        if last {
            rt.block_on(ctx.verify(0..=run, "after the last restart: everything"));
            // The reads that check made, too.
            rt.block_on(ctx.verify(run..=run, "after the last restart: the checking reads"));
            rt.block_on(ctx.check_signups());
            check_no_orphans(&rt, &ctx, srv, &data, seed);
            break;
        }
        rt.block_on(ctx.verify(
            run - 1..=run - 1,
            &format!("after restart {run}: run {}", run - 1),
        ));

        // Load, then SIGKILL at a random moment.
        let stop = Arc::new(AtomicBool::new(false));
        let target = ANSWERS_PER_RUN.start + rng.below(ANSWERS_PER_RUN.end - ANSWERS_PER_RUN.start);
        let before = model.lock().unwrap().answered;
        let mut tasks = Vec::new();
        // A patient signs up meanwhile (account, key, then the chain), which takes a while:
        // in run 1 the kill waits for its answer, later it falls where it falls.
        let signups_before = {
            let m = model.lock().unwrap();
            m.signups.len() + m.lost_signups.len()
        };
        let wait_for_signup = run == 1;
        if run % 2 == 1 {
            let at = before + rng.below(target / 2) as usize;
            tasks.push(rt.spawn(ctx.clone().sign_up(format!("late{run}"), at)));
        }
        for p in 0..PATIENTS.len() {
            for w in 0..PATIENT_WORKERS {
                let r = Rng(rng.next());
                tasks.push(rt.spawn(ctx.clone().patient_loop(p, w, r, stop.clone())));
            }
        }
        for d in 0..PROVIDERS.len() {
            for _ in 0..PROVIDER_WORKERS {
                let r = Rng(rng.next());
                tasks.push(rt.spawn(ctx.clone().provider_loop(d, r, stop.clone())));
            }
        }
        let jitter = Duration::from_millis(rng.below(40));
        let load_start = Instant::now();
        while {
            let m = model.lock().unwrap();
            m.answered < before + target as usize
                || (wait_for_signup && m.signups.len() + m.lost_signups.len() == signups_before)
        } {
            assert!(
                load_start.elapsed() < Duration::from_secs(300),
                "run {run}: the load stalled (seed {seed})"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(jitter);
        let after = load_start.elapsed();
        load_time += after;
        let srv_log = srv.log.clone();
        srv.kill();
        stop.store(true, Ordering::Relaxed);
        rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        {
            let m = model.lock().unwrap();
            assert!(
                m.failures.is_empty(),
                "run {run} (seed {seed}, SECURE_EHR_CRASH_SEED={seed} to replay):\n{}\n\
                 the server's log, last lines:\n{}",
                m.failures.join("\n"),
                log_tail(&srv_log, 40)
            );
        }
        let t1 = Instant::now();
        chain_verify(&data, &format!("after the kill of run {run}"));
        eprintln!(
            "[{:.1} s] run {run}: killed after {:.1} s of load; chain verified in {:.1} s",
            started.elapsed().as_secs_f64(),
            after.as_secs_f64(),
            t1.elapsed().as_secs_f64()
        );
    }

    let m = model.lock().unwrap();
    let collected = (0..=starts)
        .filter(|&i| {
            std::fs::read_to_string(log(i))
                .unwrap_or_default()
                .contains("collected orphan blocks")
        })
        .count();
    eprintln!(
        "crash test seed {seed}: {RUNS_UNDER_LOAD} kills under load ({:.1} s of load) and \
         {kills_at_start} during start-up, {starts} restarts; {} requests under load, {} \
         answered, {} lost ({} uploads); acknowledged: {} versions, {} grants, {} reads; \
         {collected} starts collected orphans; {:.1} s in all",
        load_time.as_secs_f64(),
        m.sent,
        m.answered,
        m.lost,
        m.lost_uploads,
        m.versions.len(),
        m.grants.len(),
        m.reads.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        m.answered >= 200,
        "too little load to mean anything: {} answered",
        m.answered
    );
}

/// After the last start's collection: every node holds exactly the blocks of the versions
/// on chain (its own fragment and share block of each, the manifests it is a holder of).
fn check_no_orphans(rt: &tokio::runtime::Runtime, ctx: &Run, srv: Server, data: &Path, seed: u64) {
    let manifests: Vec<(ehr_store::Cid, ehr_node::RecordManifest)> = rt.block_on(async {
        let mut out = Vec::new();
        for s in &ctx.patients {
            let list: Vec<types::RecordSummary> = Api::must(
                "listing records",
                ctx.api.get("/api/records", &s.token).await,
            );
            for v in list.iter().flat_map(|r| &r.versions) {
                let path = format!("/ipfs/{}?format=raw", v.manifest_cid);
                let block = match ctx.api.send(reqwest::Method::GET, &path, None, None).await {
                    Reply::Ok(b) => b,
                    other => panic!("manifest {}: {}", v.manifest_cid, describe(&other)),
                };
                let cid = ehr_store::parse_cid(&v.manifest_cid).unwrap();
                out.push((
                    cid,
                    ehr_node::RecordManifest::decode_block(&cid, &block).unwrap(),
                ));
            }
        }
        out
    });
    // Nothing is in flight: this stops an idle server, so its stores are what the last
    // start's collection left, and the ledger archive's last epoch on every node.
    srv.stop();
    chain_verify(data, "at the end");
    // The providers' directory entries (on every node), by the digests on chain.
    let profiles: Vec<ehr_store::Cid> = rt.block_on(async {
        use ehr_chain::RegistryExt;
        let (chain, _) = ehr_records::deployment::open_embedded_chain(data).unwrap();
        chain
            .providers()
            .await
            .unwrap()
            .into_iter()
            .filter(|p| !p.profile.is_zero())
            .map(|p| ehr_store::cid_from_sha256(ehr_store::cids::RAW, &p.profile.0))
            .collect()
    });
    let mut problems = Vec::new();
    for i in 0..NODES {
        let dir = ehr_records::deployment::node_dir(data, i + 1).join("segments");
        let store = ehr_store::SegmentStore::open(&dir).unwrap();
        let mut want: BTreeSet<Vec<u8>> = BTreeSet::new();
        // The ledger archive's blocks on this node: every epoch's header, fragment i and
        // share block i, from the node's newest head back to epoch 0.
        let head = ehr_records::deployment::node_dir(data, i + 1).join("archive-head.json");
        let head: ehr_node::ArchiveHead =
            serde_json::from_slice(&std::fs::read(&head).unwrap()).unwrap();
        let mut header_cid = Some(head.header);
        while let Some(cid) = header_cid {
            let bytes = rt
                .block_on(ehr_store::BlobStore::get(&store, &cid))
                .unwrap();
            let h = ehr_records::ledger::format::EpochHeader::decode(&bytes).unwrap();
            for c in [cid, h.fragment_cid(i), h.share_cid(i)] {
                want.insert(c.hash().to_bytes());
            }
            header_cid = (h.epoch > 0)
                .then(|| ehr_store::cid_from_sha256(ehr_records::ledger::format::CODEC, &h.prev));
        }
        for c in &profiles {
            want.insert(c.hash().to_bytes());
        }
        for (cid, m) in &manifests {
            // Fragment i and share block i (node i's alone), and the manifest on its
            // n − k + 1 holders.
            let copies = ehr_node::manifest::manifest_copies(usize::from(m.dispersal.k), NODES);
            let holder = ehr_node::manifest::manifest_order(cid, NODES)
                .take(copies)
                .any(|h| h == i);
            let manifest = holder.then_some(*cid);
            for c in manifest
                .into_iter()
                .chain([m.fragment_cid(i)])
                .chain(m.share_cid(i))
            {
                if store.location(&c).is_none() {
                    problems.push(format!("node {} lacks block {c}", i + 1));
                }
                want.insert(c.hash().to_bytes());
            }
        }
        if store.len() != want.len() {
            problems.push(format!(
                "node {} holds {} blocks, {} of them referenced by the {} versions on chain",
                i + 1,
                store.len(),
                want.len(),
                manifests.len()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "orphans or losses (seed {seed}, SECURE_EHR_CRASH_SEED={seed} to replay):\n{}",
        problems.join("\n")
    );
}

/// The last `n` lines of a server's log, for a failure message.
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
