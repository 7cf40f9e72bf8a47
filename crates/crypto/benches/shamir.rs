//! Shamir split/combine throughput, ours against `sharks`, `blahaj` and `vsss-rs`,
//! plus dispersal (seal + Reed–Solomon + hashes + key split) at 16 MiB.
//!
//! Run: `cargo bench -p ehr-crypto --bench shamir`. Throughput is in decimal MB/s
//! of secret (record) bytes. Criterion settings are kept small (10 flat samples,
//! short measurement) so the whole run takes a few minutes; the other crates run at
//! 5–50 MB/s, so at 16 MiB they are measured at 3-of-5 only.
//!
//! Set `EHR_BENCH_OURS_ONLY=1` to skip the other crates. Set
//! `EHR_BENCH_CLOCK=thread-cpu` to time with the benchmark thread's CPU time
//! (`/proc/thread-self/schedstat`) instead of the wall clock: on a shared, loaded
//! machine that shows what one core does when it runs. (Dispersal hashes on a
//! second thread, whose time that clock does not see.) `EHR_BENCH_CLOCK=process-cpu`
//! counts the CPU time of all the process's threads (`CLOCK_PROCESS_CPUTIME_ID`):
//! the figure for "one core" when work is spread over helper threads.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use ehr_crypto::{RecordContext, Threshold, dispersal, seal, shamir};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const SIZES: &[(usize, &str)] = &[(KIB, "1KiB"), (MIB, "1MiB"), (16 * MIB, "16MiB")];
const THRESHOLDS: &[(usize, usize)] = &[(3, 5), (5, 10)];

fn secret(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect()
}

fn others_enabled(size: usize, k: usize) -> bool {
    std::env::var_os("EHR_BENCH_OURS_ONLY").is_none() && (size < 16 * MIB || k == 3)
}

/// What the benchmarks time, chosen at start-up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Wall,
    ThreadCpu,
    ProcessCpu,
}

/// Wall clock, this thread's CPU time or the whole process's CPU time.
struct Clock {
    source: Source,
    wall: WallTime,
}

/// Nanoseconds this thread has spent on a CPU.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds all threads of this process (live or ended) have spent on a CPU.
#[allow(unsafe_code)]
fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Clock {
    fn cpu_ns(&self) -> u64 {
        match self.source {
            Source::Wall => 0,
            Source::ThreadCpu => thread_cpu_ns(),
            Source::ProcessCpu => process_cpu_ns(),
        }
    }
}

impl Measurement for Clock {
    type Intermediate = (std::time::Instant, u64);
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        (std::time::Instant::now(), self.cpu_ns())
    }
    fn end(&self, i: Self::Intermediate) -> Duration {
        match self.source {
            Source::Wall => i.0.elapsed(),
            _ => Duration::from_nanos(self.cpu_ns().saturating_sub(i.1)),
        }
    }
    fn add(&self, v1: &Duration, v2: &Duration) -> Duration {
        *v1 + *v2
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

fn configure<'a>(
    c: &'a mut Criterion<Clock>,
    name: &str,
    size: usize,
) -> criterion::BenchmarkGroup<'a, Clock> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(if size >= 16 * MIB { 2 } else { 1 }))
        .throughput(Throughput::BytesDecimal(size as u64));
    g
}

fn bench_split(c: &mut Criterion<Clock>) {
    for &(k, n) in THRESHOLDS {
        let t = Threshold::new(k, n).unwrap();
        for &(size, label) in SIZES {
            let data = secret(size);
            let mut g = configure(c, &format!("split/{k}-of-{n}"), size);
            let mut rng = ChaCha20Rng::seed_from_u64(1);
            let mut bufs = vec![vec![0u8; size]; n];
            g.bench_function(BenchmarkId::new("ehr-crypto", label), |b| {
                b.iter(|| {
                    let mut outs: Vec<&mut [u8]> =
                        bufs.iter_mut().map(|v| v.as_mut_slice()).collect();
                    shamir::split_into(t, black_box(&data), &mut outs, &mut rng).unwrap();
                })
            });
            g.bench_function(BenchmarkId::new("ehr-crypto(alloc)", label), |b| {
                b.iter(|| shamir::split(t, black_box(&data), &mut rng).unwrap())
            });
            if others_enabled(size, k) {
                g.bench_function(BenchmarkId::new("sharks", label), |b| {
                    let s = sharks::Sharks(k as u8);
                    b.iter(|| s.dealer(black_box(&data)).take(n).collect::<Vec<_>>())
                });
                g.bench_function(BenchmarkId::new("blahaj", label), |b| {
                    let s = blahaj::Sharks(k as u8);
                    b.iter(|| {
                        s.dealer_rng(black_box(&data), &mut rng)
                            .take(n)
                            .collect::<Vec<_>>()
                    })
                });
                g.bench_function(BenchmarkId::new("vsss-rs", label), |b| {
                    b.iter(|| {
                        vsss_rs::Gf256::split_bytes(k, n, black_box(&data), &mut rng).unwrap()
                    })
                });
            }
            g.finish();
        }
    }
}

fn bench_combine(c: &mut Criterion<Clock>) {
    for &(k, n) in THRESHOLDS {
        let t = Threshold::new(k, n).unwrap();
        for &(size, label) in SIZES {
            let data = secret(size);
            let mut rng = ChaCha20Rng::seed_from_u64(2);
            let mut g = configure(c, &format!("combine/{k}-of-{n}"), size);

            let ours = shamir::split(t, &data, &mut rng).unwrap();
            let refs: Vec<(u8, &[u8])> = ours[..k].iter().map(|s| (s.x, s.y.as_slice())).collect();
            let mut out = vec![0u8; size];
            shamir::combine_into(t, &refs, &mut out).unwrap();
            assert_eq!(out, data);
            g.bench_function(BenchmarkId::new("ehr-crypto", label), |b| {
                b.iter(|| shamir::combine_into(t, black_box(&refs), &mut out).unwrap())
            });
            g.bench_function(BenchmarkId::new("ehr-crypto(alloc)", label), |b| {
                b.iter(|| shamir::combine(t, black_box(&ours[..k])).unwrap())
            });
            drop(ours);
            if others_enabled(size, k) {
                let s = sharks::Sharks(k as u8);
                let shares: Vec<sharks::Share> = s.dealer(&data).take(k).collect();
                assert_eq!(s.recover(&shares).unwrap(), data);
                g.bench_function(BenchmarkId::new("sharks", label), |b| {
                    b.iter(|| s.recover(black_box(&shares)).unwrap())
                });
                drop(shares);

                let s = blahaj::Sharks(k as u8);
                let shares: Vec<blahaj::Share> = s.dealer_rng(&data, &mut rng).take(k).collect();
                assert_eq!(s.recover(&shares).unwrap(), data);
                g.bench_function(BenchmarkId::new("blahaj", label), |b| {
                    b.iter(|| s.recover(black_box(&shares)).unwrap())
                });
                drop(shares);

                let shares = vsss_rs::Gf256::split_bytes(k, n, &data, &mut rng).unwrap();
                let used = shares[..k].to_vec();
                assert_eq!(vsss_rs::Gf256::combine_bytes(&used).unwrap(), data);
                g.bench_function(BenchmarkId::new("vsss-rs", label), |b| {
                    b.iter(|| vsss_rs::Gf256::combine_bytes(black_box(&used)).unwrap())
                });
            }
            g.finish();
        }
    }
}

fn bench_dispersal(c: &mut Criterion<Clock>) {
    let size = 16 * MIB;
    let t = Threshold::new(3, 5).unwrap();
    let ctx = RecordContext {
        patient: [7; 20],
        record_id: [9; 32],
        version: 1,
    };
    let data = secret(size);
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut g = configure(c, "dispersal/3-of-5", size);
    g.bench_function(BenchmarkId::new("seal(AES-256-GCM)", "16MiB"), |b| {
        let key = seal::DataKey::generate(&mut rng);
        b.iter_batched(
            || data.clone(),
            |d| seal::seal(&key, &ctx, d, &mut rng).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    g.bench_function(BenchmarkId::new("disperse", "16MiB"), |b| {
        b.iter_batched(
            || data.clone(),
            |d| dispersal::disperse(t, &ctx, d, &mut rng).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    let d = dispersal::disperse(t, &ctx, data.clone(), &mut rng).unwrap();
    let all: Vec<Option<&[u8]>> = d.fragments.iter().map(Some).collect();
    g.bench_function(BenchmarkId::new("open(all fragments)", "16MiB"), |b| {
        b.iter(|| dispersal::open_dispersed(&d.manifest, &all, &d.key_shares, &ctx).unwrap())
    });
    let mut lossy = all.clone();
    lossy[0] = None;
    lossy[2] = None;
    g.bench_function(BenchmarkId::new("open(2 of 5 lost)", "16MiB"), |b| {
        b.iter(|| dispersal::open_dispersed(&d.manifest, &lossy, &d.key_shares, &ctx).unwrap())
    });
    g.finish();
}

fn main() {
    let source = match std::env::var("EHR_BENCH_CLOCK").as_deref() {
        Ok("thread-cpu") => Source::ThreadCpu,
        Ok("process-cpu") => Source::ProcessCpu,
        _ => Source::Wall,
    };
    let mut c = Criterion::default()
        .with_measurement(Clock {
            source,
            wall: WallTime,
        })
        .configure_from_args();
    bench_split(&mut c);
    bench_combine(&mut c);
    bench_dispersal(&mut c);
    c.final_summary();
}
