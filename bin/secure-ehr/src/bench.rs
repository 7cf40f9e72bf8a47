//! `secure-ehr bench`: upload and read latency and throughput on the embedded default
//! (the real chain, five local nodes on disk, threshold 3) with ~10 KB FHIR records, and what
//! the uploads cost on the nodes' disks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use ehr_records::accounts::AccountParams;
use ehr_records::accounts::keystore::ScryptParams;
use ehr_records::{PatientSession, ProviderSession, Service};
use serde_json::json;

use crate::service::{self, DeploymentArgs};

mod attach;
pub(crate) use attach::parse_size;
mod fhir;

#[derive(Args)]
pub struct BenchArgs {
    /// Uploads (and then reads) per phase.
    #[arg(long, default_value_t = 2000, value_parser = at_least_one)]
    ops: usize,
    /// Reads in the concurrent read phase (default: `--ops`).
    #[arg(long, value_parser = at_least_one)]
    read_ops: Option<usize>,
    /// Requests in flight in the throughput phases (at most `--ops` and `--read-ops`).
    #[arg(long, default_value_t = 32, value_parser = at_least_one)]
    concurrency: usize,
    /// Record size in bytes: the FHIR bundle is padded to exactly this. At most 1048576
    /// (1 MiB), the largest body of the JSON API.
    #[arg(long, default_value_t = 10_000, value_parser = record_size)]
    size: usize,
    /// Patients the uploads are spread over.
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    patients: usize,
    /// Print one JSON object, keyed by phase name, on stdout (nothing else goes there).
    #[arg(long)]
    json: bool,
    /// Build the deployment in DIR (new, or an empty directory) and keep it, so
    /// `serve --data-dir DIR` opens the grown chain; without, a temporary directory is used
    /// and removed. Its accounts have the benchmark's well-known password: for measuring only.
    #[arg(long, value_name = "DIR")]
    keep: Option<std::path::PathBuf>,
    /// First run the concurrent uploads with the ledger archive off, then start it (as
    /// `serve` runs it) for the rest: the two upload figures side by side.
    #[arg(long)]
    compare_archive: bool,
    /// Measure the FHIR API instead, over HTTP on 127.0.0.1: `--ops` imports of a
    /// 1,000-resource bundle (`POST /fhir`, stored and anchored), then `--read-ops` searches
    /// over a patient with 100 records (each search reads and logs all 100).
    #[arg(long, conflicts_with = "compare_archive")]
    fhir: bool,
    /// Measure attachments instead, over HTTP on 127.0.0.1: each `--sizes` file (a PDF)
    /// uploaded then downloaded end to end, beside `cp` of the same file, with the peak
    /// resident memory of this process (the server) above idle during each.
    #[arg(long, conflicts_with_all = ["compare_archive", "fhir"])]
    attachments: bool,
    /// The attachment sizes (binary units: `16M,256M,2G`).
    #[arg(long, value_delimiter = ',', default_value = "16M,256M,2G", value_parser = attach::parse_size)]
    sizes: Vec<u64>,
}

impl BenchArgs {
    /// What clap cannot check alone: more requests in flight than a phase has.
    fn check(&self) -> anyhow::Result<()> {
        // The FHIR phases run one request at a time.
        let phases = if self.fhir || self.attachments {
            vec![]
        } else {
            vec![
                ("--ops", self.ops),
                ("--read-ops", self.read_ops.unwrap_or(self.ops)),
            ]
        };
        for (flag, ops) in phases {
            if self.concurrency > ops {
                anyhow::bail!(
                    "--concurrency {} is more than {flag} {ops}: at most {ops} requests can be in flight",
                    self.concurrency
                );
            }
        }
        if let Some(dir) = &self.keep {
            check_keep_dir(dir)?;
        }
        Ok(())
    }
}

/// `--keep DIR` must be new or empty: the benchmark never builds on (or over) other data.
fn check_keep_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                anyhow::bail!(
                    "--keep {}: the directory is not empty; give a new or an empty one",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("--keep {}", dir.display()))),
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>().map_err(|e| e.to_string())? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// The largest record the benchmark makes, in bytes: the JSON API's body limit
/// (`ehr_api::MAX_BODY_BYTES`; records themselves may be 16 MiB, through `/fhir`).
const MAX_SIZE: usize = 1 << 20;

fn record_size(s: &str) -> Result<usize, String> {
    let size = s.parse::<usize>().map_err(|e| e.to_string())?;
    let min = min_record_size();
    if size > MAX_SIZE {
        Err(format!(
            "at most {MAX_SIZE} bytes (1 MiB), the largest body of the JSON API"
        ))
    } else if size < min {
        Err(format!(
            "at least {min} bytes, the smallest bundle (one Patient, one Condition)"
        ))
    } else {
        Ok(size)
    }
}

pub(crate) const PW: &str = "bench password 1234";

/// What the FHIR parser accepts per bundle: Conditions, items in a list (here
/// `code.coding`), characters in a string.
const MAX_CONDITIONS: usize = 100;
const MAX_CODINGS: usize = 20;
const MAX_CHARS: usize = 1000;
/// Padding strings per Condition: its `code.text` and each coding's `display`.
const PER_CONDITION: usize = 1 + MAX_CODINGS;
const MAX_STRINGS: usize = MAX_CONDITIONS * PER_CONDITION;

/// A FHIR bundle of exactly `size` bytes ([`min_record_size`] to [`MAX_SIZE`]): one Patient
/// and as many Conditions as it takes, their `code.text` and `code.coding[].display`
/// padded.
fn record(i: usize, size: usize) -> Vec<u8> {
    // The length is the fixed part (the bundle with every padding string empty) plus the
    // padding. Find the fewest strings that reach `size` when full (`n` full strings are
    // more than `n * MAX_CHARS` bytes, which bounds the search)…
    let capacity = |n: usize| serialized(i, &vec![0; n]).len() + n * MAX_CHARS;
    let (mut lo, mut hi) = (1, size.div_ceil(MAX_CHARS).clamp(1, MAX_STRINGS));
    assert!(
        capacity(hi) >= size,
        "{size} bytes do not fit in one bundle"
    );
    while lo < hi {
        let mid = (lo + hi) / 2;
        if capacity(mid) >= size {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    // …then shorten the last ones (to one character at least) by the excess.
    let mut lens = vec![MAX_CHARS; lo];
    let mut excess = capacity(lo) - size;
    for len in lens.iter_mut().rev() {
        let cut = excess.min(MAX_CHARS - 1);
        *len -= cut;
        excess -= cut;
    }
    assert_eq!(excess, 0, "{size} bytes is less than the smallest bundle");
    let body = serialized(i, &lens);
    assert_eq!(body.len(), size);
    body
}

/// The smallest bundle [`record`] makes: one Patient and one Condition of one character.
fn min_record_size() -> usize {
    serialized(0, &[1]).len()
}

/// The bundle with padding strings of `lens` characters (ASCII, so one byte each), in
/// order: each Condition's `code.text`, then its codings' `display`s.
fn serialized(i: usize, lens: &[usize]) -> Vec<u8> {
    let conditions = lens.chunks(PER_CONDITION).enumerate().map(|(c, lens)| {
        let mut code = json!({ "text": pad(format!("condition {c} of record {i}: "), lens[0]) });
        if lens.len() > 1 {
            code["coding"] = lens[1..]
                .iter()
                .enumerate()
                .map(|(k, &n)| json!({ "display": pad(format!("coding {k}: "), n) }))
                .collect();
        }
        json!({ "resource": {
            "resourceType": "Condition",
            "code": code,
            "subject": { "reference": "Patient/p" } } })
    });
    let mut entry = vec![json!({ "resource": {
        "resourceType": "Patient", "id": "p",
        "name": [{ "text": "Bench Patient" }],
        "birthDate": "1980-01-01",
        "telecom": [{ "system": "phone", "value": "+1 555 010 0199" }] } })];
    entry.extend(conditions);
    serde_json::to_vec(&json!({ "resourceType": "Bundle", "type": "collection", "entry": entry }))
        .expect("bundle serializes")
}

/// `prefix` cut or padded with `x` to `n` characters.
fn pad(prefix: String, n: usize) -> String {
    prefix
        .chars()
        .chain(std::iter::repeat('x'))
        .take(n)
        .collect()
}

pub(crate) struct Phase {
    name: &'static str,
    latencies: Vec<Duration>,
    wall: Duration,
    /// Process CPU time (user + system, all threads) spent in the phase.
    cpu: Option<Duration>,
}

/// This process's CPU time so far (user + system), from /proc/self/stat (Linux).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux ABI Rust supports.
    Some(Duration::from_millis(ticks * 10))
}

impl Phase {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort();
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e3
    }
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
    /// CPU milliseconds per operation (all threads: chain, nodes, callers).
    fn cpu_per_op(&self) -> Option<f64> {
        self.cpu
            .map(|c| c.as_secs_f64() * 1e3 / self.latencies.len().max(1) as f64)
    }
}

pub(crate) async fn run_phase<F, Fut>(
    name: &'static str,
    ops: usize,
    concurrency: usize,
    op: F,
) -> anyhow::Result<Phase>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_start = process_cpu();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= ops {
                    break;
                }
                let t = Instant::now();
                op(i).await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut latencies = Vec::with_capacity(ops);
    for t in tasks {
        latencies.extend(t.await??);
    }
    let wall = start.elapsed();
    let cpu = process_cpu()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    Ok(Phase {
        name,
        latencies,
        wall,
        cpu,
    })
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    args.check()?;
    // A kept deployment lives in `--keep`; otherwise in a directory removed at the end.
    let temp;
    let data_dir = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("creating a temporary data directory")?;
            temp.path().to_path_buf()
        }
    };
    let result = service::runtime()?.block_on(async {
        // The keystore cost is not what is measured: geth's "light" scrypt keeps setup short.
        let params = AccountParams {
            scrypt: ScryptParams::LIGHT,
            ..AccountParams::STANDARD
        };
        let deployment = DeploymentArgs {
            nodes: Vec::new(),
            node_token: None,
            ca_file: None,
            chain_rpc: None,
            contract: None,
            admin_key_file: None,
            fund_wei: None,
            fund_budget_per_hour: ehr_chain::U256::from(ehr_chain::funding::DEFAULT_BUDGET_PER_HOUR),
            max_log_range: ehr_chain::rpc::MAX_LOG_RANGE,
            k: 3,
            n: 5,
        };
        // Archiving starts below (after the archive-off phase of --compare-archive).
        let mut opened = deployment.deployment(params)?;
        opened.archive = false;
        let svc = Arc::new(
            ehr_records::deployment::open(&data_dir, &opened)
                .await
                .context("starting the records service")?,
        );
        svc.create_admin("admin", PW)?;
        let (_, admin) = svc.login("admin", PW, "bench").await?;
        svc.add_provider(&admin.admin()?, "bench-doctor", PW, &Default::default())
            .await?;
        let (_, doctor) = svc.login("bench-doctor", PW, "bench").await?;
        let doctor = doctor.provider()?;
        let mut patients: Vec<PatientSession> = Vec::new();
        for p in 0..args.patients.max(1) {
            let name = format!("bench-patient-{p}");
            svc.register_patient(&name, PW).await?;
            let (_, s) = svc.login(&name, PW, "bench").await?;
            let s = s.patient()?;
            svc.grant(&s, "bench-doctor", None, unix_now() + 86_400).await?;
            patients.push(s);
        }
        let patients = Arc::new(patients);
        let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..64).map(|i| record(i, args.size)).collect());
        let record_len = bodies[0].len();

        let upload = |svc: Arc<Service>, patients: Arc<Vec<PatientSession>>, bodies: Arc<Vec<Vec<u8>>>| {
            move |i: usize| {
                let (svc, patients, bodies) = (svc.clone(), patients.clone(), bodies.clone());
                async move {
                    let p = &patients[i % patients.len()];
                    svc.put_record(p, &bodies[i % bodies.len()]).await?;
                    anyhow::Ok(())
                }
            }
        };
        let read = |svc: Arc<Service>, doctor: ProviderSession, total: u64| {
            move |i: usize| {
                let (svc, doctor) = (svc.clone(), doctor.clone());
                async move {
                    let id = (i as u64 * 7919) % total + 1;
                    svc.read_record(&doctor, id, None).await?;
                    anyhow::Ok(())
                }
            }
        };
        if args.attachments {
            return attach::run(svc.clone(), &args.sizes, &data_dir, args.json).await;
        }
        if args.fhir {
            // As `serve` runs: the ledger archive on, sealed at the end.
            svc.start_archive(ehr_records::ledger::EpochPolicy::default())?;
            let searches = args.read_ops.unwrap_or(args.ops);
            let phases = fhir::phases(svc.clone(), args.ops, searches).await?;
            svc.seal_archive().await?;
            print_fhir(&phases, args.json);
            return anyhow::Ok(());
        }
        let seq = (args.ops / 4).max(1);
        let mut phases = Vec::new();
        let mut uploaded = 0;
        if args.compare_archive {
            phases.push(run_phase("upload, concurrent, archive off", args.ops, args.concurrency, upload(svc.clone(), patients.clone(), bodies.clone())).await?);
            uploaded += args.ops;
        }
        svc.start_archive(ehr_records::ledger::EpochPolicy::default())?;
        archive_caught_up(&svc).await?;
        let before = node_bytes(&data_dir, deployment.n)?;
        let archive_before = archive_bytes(&svc);
        phases.push(run_phase("upload, one at a time", seq, 1, upload(svc.clone(), patients.clone(), bodies.clone())).await?);
        phases.push(run_phase("upload, concurrent", args.ops, args.concurrency, upload(svc.clone(), patients.clone(), bodies.clone())).await?);
        // The record storage figure leaves out what the ledger archive added meanwhile.
        archive_caught_up(&svc).await?;
        let archive_added: Vec<u64> = archive_bytes(&svc)
            .iter()
            .zip(&archive_before)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let storage = Storage::measure(&data_dir, &before, &archive_added, seq + args.ops, record_len)?;
        uploaded += seq + args.ops;
        let total = uploaded as u64;
        phases.push(run_phase("read, one at a time", seq, 1, read(svc.clone(), doctor.clone(), total)).await?);
        phases.push(run_phase("read, concurrent", args.read_ops.unwrap_or(args.ops), args.concurrency, read(svc.clone(), doctor.clone(), total)).await?);
        // The clean stop seals the open epoch, as `serve` does on SIGTERM.
        let status = svc
            .seal_archive()
            .await?
            .context("the ledger archive was not running")?;
        let ledger = Ledger::measure(&svc, &status)?;

        if args.json {
            let out: serde_json::Map<String, serde_json::Value> = phases
                .iter()
                .map(|p| {
                    (
                        p.name.to_owned(),
                        json!({ "ops": p.latencies.len(), "p50_ms": p.pct(0.5),
                                "p99_ms": p.pct(0.99), "per_s": p.rate(),
                                "cpu_ms_per_op": p.cpu_per_op() }),
                    )
                })
                .collect();
            let mut out = out;
            out.insert("storage".into(), storage.json());
            out.insert("ledger_archive".into(), ledger.json());
            println!("{}", serde_json::Value::Object(out));
        } else {
            println!(
                "embedded default: real chain + 5 local nodes (k = 3), {record_len}-byte FHIR records, {} in flight when concurrent",
                args.concurrency
            );
            println!(
                "{:<32} {:>7} {:>9} {:>9} {:>9} {:>10}",
                "phase", "ops", "p50 ms", "p99 ms", "ops/s", "CPU ms/op"
            );
            for p in &phases {
                println!(
                    "{:<32} {:>7} {:>9.2} {:>9.2} {:>9.0} {:>10}",
                    p.name,
                    p.latencies.len(),
                    p.pct(0.5),
                    p.pct(0.99),
                    p.rate(),
                    p.cpu_per_op().map_or("-".into(), |c| format!("{c:.2}"))
                );
            }
            storage.print();
            ledger.print();
        }
        anyhow::Ok(())
    });
    if let (Some(dir), Ok(())) = (&args.keep, &result) {
        // stderr: with --json, stdout holds only the JSON object.
        eprintln!(
            "kept the deployment in {} (admin \"admin\", every account's password \"{PW}\"); \
             `secure-ehr serve --data-dir {}` opens it",
            dir.display(),
            dir.display()
        );
    }
    result
}

use ehr_primitives::unix_now;

/// The FHIR phases' figures: per second, and resources per second for the import.
fn print_fhir(phases: &[Phase], json: bool) {
    let per_resource = |p: &Phase| {
        p.name
            .starts_with("FHIR import")
            .then(|| p.rate() * fhir::IMPORT_RESOURCES as f64)
    };
    if json {
        let out: serde_json::Map<String, serde_json::Value> = phases
            .iter()
            .map(|p| {
                (
                    p.name.to_owned(),
                    json!({ "ops": p.latencies.len(), "p50_ms": p.pct(0.5), "p99_ms": p.pct(0.99),
                            "per_s": p.rate(), "resources_per_s": per_resource(p),
                            "cpu_ms_per_op": p.cpu_per_op() }),
                )
            })
            .collect();
        println!("{}", serde_json::Value::Object(out));
        return;
    }
    println!(
        "FHIR API over HTTP on 127.0.0.1, embedded default (real chain + 5 local nodes, k = 3); one at a time"
    );
    println!(
        "{:<32} {:>7} {:>9} {:>9} {:>9} {:>12}",
        "phase", "ops", "p50 ms", "p99 ms", "ops/s", "resources/s"
    );
    for p in phases {
        println!(
            "{:<32} {:>7} {:>9.1} {:>9.1} {:>9.2} {:>12}",
            p.name,
            p.latencies.len(),
            p.pct(0.5),
            p.pct(0.99),
            p.rate(),
            per_resource(p).map_or("-".into(), |r| format!("{r:.0}"))
        );
    }
}

/// What the uploads added to the nodes' directories on disk.
struct Storage {
    records: usize,
    record_len: usize,
    /// Bytes added per node, in node order.
    per_node: Vec<u64>,
}

impl Storage {
    /// What the nodes' directories grew by since `before`, less `archive` (what the ledger
    /// archive stored on each node meanwhile).
    fn measure(
        data_dir: &std::path::Path,
        before: &[u64],
        archive: &[u64],
        records: usize,
        record_len: usize,
    ) -> anyhow::Result<Self> {
        let after = node_bytes(data_dir, before.len())?;
        Ok(Self {
            records,
            record_len,
            per_node: after
                .iter()
                .zip(before)
                .enumerate()
                .map(|(i, (a, b))| {
                    a.saturating_sub(*b)
                        .saturating_sub(archive.get(i).copied().unwrap_or(0))
                })
                .collect(),
        })
    }

    /// Bytes stored across all nodes ÷ record bytes.
    fn ratio(&self) -> f64 {
        self.per_node.iter().sum::<u64>() as f64 / (self.records * self.record_len) as f64
    }

    fn per_record(&self) -> Vec<f64> {
        self.per_node
            .iter()
            .map(|&b| b as f64 / self.records as f64)
            .collect()
    }

    fn json(&self) -> serde_json::Value {
        json!({ "records": self.records, "record_bytes": self.record_len,
                "bytes_per_node": self.per_node, "bytes_per_record_per_node": self.per_record(),
                "across_nodes_per_record_byte": self.ratio() })
    }

    fn print(&self) {
        let per: Vec<String> = self
            .per_record()
            .iter()
            .map(|b| format!("{b:.0}"))
            .collect();
        println!(
            "storage: {} records of {} bytes; bytes on disk per record on each node: {}; \
             across the {} nodes {:.2}× the record bytes",
            self.records,
            self.record_len,
            per.join(", "),
            self.per_node.len(),
            self.ratio()
        );
    }
}

/// Waits until the ledger archive holds every block there is now (on at least k + 1 nodes).
async fn archive_caught_up(svc: &Service) -> anyhow::Result<()> {
    let chain = svc
        .embedded_chain()
        .context("the benchmark runs on the embedded chain")?;
    let head = chain.head_number();
    loop {
        let status = svc
            .archive_status()
            .context("the ledger archive is not running")?;
        if status.archived_through.is_some_and(|b| b >= head) {
            return Ok(());
        }
        if let Some(e) = status.last_error {
            anyhow::bail!("the ledger archive failed: {e}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Bytes the ledger archive has stored on each node so far.
fn archive_bytes(svc: &Service) -> Vec<u64> {
    svc.archive_status()
        .map(|s| s.bytes_per_node)
        .unwrap_or_default()
}

/// The ledger archive at the end: what each node keeps of the ledger, against the ledger.
struct Ledger {
    blocks: u64,
    transactions: u64,
    epochs: u64,
    ledger_bytes: u64,
    per_node: Vec<u64>,
}

impl Ledger {
    fn measure(svc: &Service, status: &ehr_records::ledger::ArchiveStatus) -> anyhow::Result<Self> {
        let chain = svc
            .embedded_chain()
            .context("the benchmark runs on the embedded chain")?;
        let blocks = chain.head_number() + 1;
        let mut transactions = 0;
        for n in 0..blocks {
            transactions += chain.block(n)?.map_or(0, |b| b.transactions.len() as u64);
        }
        Ok(Self {
            blocks,
            transactions,
            epochs: status.epochs,
            ledger_bytes: status.ledger_bytes,
            per_node: status.bytes_per_node.clone(),
        })
    }

    /// The most any node keeps ÷ the whole ledger (blocks and receipts).
    fn ratio(&self) -> f64 {
        self.per_node.iter().copied().max().unwrap_or(0) as f64 / self.ledger_bytes.max(1) as f64
    }

    fn json(&self) -> serde_json::Value {
        json!({ "blocks": self.blocks, "transactions": self.transactions, "epochs": self.epochs,
                "ledger_bytes": self.ledger_bytes, "bytes_per_node": self.per_node,
                "per_node_over_ledger": self.ratio() })
    }

    fn print(&self) {
        println!(
            "ledger archive: {} blocks, {} transactions, {} bytes of blocks and receipts in {} \
             epochs; each node keeps {:.3} of it at most (bytes on each of the {} nodes: {})",
            self.blocks,
            self.transactions,
            self.ledger_bytes,
            self.epochs,
            self.ratio(),
            self.per_node.len(),
            self.per_node
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Bytes on disk under each node directory (`<data-dir>/nodes/node-N`: segments, their
/// hints, the key): everything a node keeps counts.
fn node_bytes(data_dir: &std::path::Path, n: usize) -> anyhow::Result<Vec<u64>> {
    fn size(path: &std::path::Path) -> std::io::Result<u64> {
        let meta = std::fs::symlink_metadata(path)?;
        if !meta.is_dir() {
            return Ok(meta.len());
        }
        let mut total = 0;
        for entry in std::fs::read_dir(path)? {
            total += size(&entry?.path())?;
        }
        Ok(total)
    }
    (1..=n)
        .map(|i| {
            let dir = ehr_records::deployment::node_dir(data_dir, i);
            size(&dir).with_context(|| format!("measuring {}", dir.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_exactly_the_size_asked_for() {
        let min = min_record_size();
        // Every size across the first strings, every fifth across the first Condition's end
        // (where the next string starts a new Condition), then a sample up to the maximum.
        let one_condition = serialized(0, &[MAX_CHARS; PER_CONDITION]).len();
        let sizes = (min..min + 2_100)
            .chain((one_condition - 1_100..one_condition + 1_100).step_by(5))
            .chain((min..MAX_SIZE).step_by(65_521))
            .chain([MAX_SIZE - 1, MAX_SIZE]);
        for size in sizes {
            assert_eq!(record(size % 64, size).len(), size);
        }
    }

    #[test]
    fn sizes_outside_one_bundle_are_refused() {
        let min = min_record_size();
        assert_eq!(record_size(&MAX_SIZE.to_string()), Ok(MAX_SIZE));
        assert_eq!(record_size(&min.to_string()), Ok(min));
        let err = record_size(&(MAX_SIZE + 1).to_string()).unwrap_err();
        assert!(err.contains("at most 1048576 bytes"), "{err}");
        let err = record_size(&(min - 1).to_string()).unwrap_err();
        assert!(err.contains(&format!("at least {min} bytes")), "{err}");
        assert!(at_least_one("0").is_err());
    }
}
