//! `secure-ehr bench`: upload and read latency and throughput on the embedded default
//! (the real chain, five local nodes on disk, threshold 3) with ~10 KB FHIR records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use ehr_records::accounts::AccountParams;
use ehr_records::accounts::keystore::ScryptParams;
use ehr_records::{PatientSession, ProviderSession, Service};
use serde_json::json;

use crate::service::{self, DeploymentArgs};

#[derive(Args)]
pub struct BenchArgs {
    /// Uploads (and then reads) per phase.
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Reads in the concurrent read phase (default: `--ops`).
    #[arg(long)]
    read_ops: Option<usize>,
    /// Requests in flight in the throughput phases.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Record size in bytes (approximate: the FHIR bundle is padded to it).
    #[arg(long, default_value_t = 10_000)]
    size: usize,
    /// Patients the uploads are spread over.
    #[arg(long, default_value_t = 8)]
    patients: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

const PW: &str = "bench password 1234";

/// A FHIR bundle of about `size` bytes: one Patient and enough 900-character Conditions.
fn record(i: usize, size: usize) -> Vec<u8> {
    let conditions: Vec<_> = (0..size.div_ceil(1000).clamp(1, 100))
        .map(|c| {
            json!({ "resource": {
                "resourceType": "Condition",
                "code": { "text": format!("condition {c} of record {i}: {}", "x".repeat(880)) },
                "subject": { "reference": "Patient/p" } } })
        })
        .collect();
    let mut entry = vec![json!({ "resource": {
        "resourceType": "Patient", "id": "p",
        "name": [{ "text": format!("Bench Patient {i}") }],
        "birthDate": "1980-01-01",
        "telecom": [{ "system": "phone", "value": "+1 555 010 0199" }] } })];
    entry.extend(conditions);
    serde_json::to_vec(&json!({ "resourceType": "Bundle", "type": "collection", "entry": entry }))
        .expect("bundle serializes")
}

struct Phase {
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

async fn run_phase<F, Fut>(
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
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    service::runtime()?.block_on(async {
        // The keystore cost is not what is measured: geth's "light" scrypt keeps setup short.
        let params = AccountParams {
            scrypt: ScryptParams::LIGHT,
            ..AccountParams::STANDARD
        };
        let deployment = DeploymentArgs {
            nodes: Vec::new(),
            node_token: None,
            chain_rpc: None,
            contract: None,
            admin_key_file: None,
            k: 3,
            n: 5,
        };
        let svc = Arc::new(service::open(dir.path(), &deployment, params).await?);
        svc.create_admin("admin", PW)?;
        let (_, admin) = svc.login("admin", PW, "bench").await?;
        svc.add_provider(&admin.admin()?, "bench-doctor", PW).await?;
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
        let seq = (args.ops / 4).max(1);
        let mut phases = Vec::new();
        phases.push(run_phase("upload, one at a time", seq, 1, upload(svc.clone(), patients.clone(), bodies.clone())).await?);
        phases.push(run_phase("upload, concurrent", args.ops, args.concurrency, upload(svc.clone(), patients.clone(), bodies.clone())).await?);
        let total = (seq + args.ops) as u64;
        phases.push(run_phase("read, one at a time", seq, 1, read(svc.clone(), doctor.clone(), total)).await?);
        phases.push(run_phase("read, concurrent", args.read_ops.unwrap_or(args.ops), args.concurrency, read(svc.clone(), doctor.clone(), total)).await?);

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
            println!("{}", serde_json::Value::Object(out));
        } else {
            println!(
                "embedded default: real chain + 5 local nodes (k = 3), {record_len}-byte FHIR records, {} in flight when concurrent",
                args.concurrency
            );
            println!(
                "{:<24} {:>7} {:>9} {:>9} {:>9} {:>10}",
                "phase", "ops", "p50 ms", "p99 ms", "ops/s", "CPU ms/op"
            );
            for p in &phases {
                println!(
                    "{:<24} {:>7} {:>9.2} {:>9.2} {:>9.0} {:>10}",
                    p.name,
                    p.latencies.len(),
                    p.pct(0.5),
                    p.pct(0.99),
                    p.rate(),
                    p.cpu_per_op().map_or("-".into(), |c| format!("{c:.2}"))
                );
            }
        }
        anyhow::Ok(())
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
