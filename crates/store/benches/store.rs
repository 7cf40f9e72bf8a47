//! Benchmarks: CID computation of a 50 MiB file against plain SHA-256 of the same bytes
//! (goal ≥ 0.9× SHA-256 speed), fs store put/get throughput for 1 KiB and 1 MiB blocks, and
//! the fs store against the segment store with 32 puts in flight (the records service's
//! load) and for gets, the segment store reading inline or on the blocking pool; and the
//! open of a segment store holding ~200 MiB of 4 KiB blocks, from the hint files and by
//! scanning every segment.
//! `cargo bench -p ehr-store --bench store` (one group: append e.g. `-- put_10KB_x32`)

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ehr_store::testing::test_bytes;
use ehr_store::{
    BlobStore, FsStore, Profile, SegmentOptions, SegmentStore, cid_of, cid_of_bytes, raw_cid,
};
use sha2::{Digest, Sha256};

fn cid_vs_sha256(c: &mut Criterion) {
    let data = test_bytes(50 << 20, 1);
    let mut g = c.benchmark_group("50MiB");
    g.sample_size(10)
        .throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("sha256", |b| {
        b.iter(|| Sha256::digest(black_box(&data[..])))
    });
    g.bench_function("cid_v1", |b| {
        b.iter(|| cid_of(black_box(&data[..]), Profile::KuboV1).unwrap())
    });
    g.bench_function("cid_v0", |b| {
        b.iter(|| cid_of(black_box(&data[..]), Profile::KuboV0).unwrap())
    });
    g.bench_function("cid_v1_in_place", |b| {
        b.iter(|| cid_of_bytes(black_box(&data[..]), Profile::KuboV1))
    });
    g.bench_function("cid_v0_in_place", |b| {
        b.iter(|| cid_of_bytes(black_box(&data[..]), Profile::KuboV0))
    });
    g.finish();
}

fn fs_put_get(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    for (name, size) in [("1KiB", 1usize << 10), ("1MiB", 1 << 20)] {
        let mut g = c.benchmark_group(format!("fs_{name}"));
        g.sample_size(20).throughput(Throughput::Bytes(size as u64));
        let mut seed = 0u64;
        g.bench_function("put", |b| {
            b.iter_batched(
                || {
                    seed += 1;
                    test_bytes(size, seed)
                },
                |data| rt.block_on(store.put(&data)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        let data = test_bytes(size, u64::MAX);
        let cid = raw_cid(&data);
        rt.block_on(store.put(&data)).unwrap();
        g.bench_function("get", |b| b.iter(|| rt.block_on(store.get(&cid)).unwrap()));
        g.finish();
    }
}

/// Puts in flight at once: the records service's 32 concurrent uploads.
const IN_FLIGHT: u64 = 32;
/// A block the size of a fragment plus a manifest or two.
const BLOCK: usize = 10_000;

/// The records service's runtime on this 2-core machine.
fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// 32 tasks putting fresh 10 KB blocks back to back on a 2-worker runtime; one iteration is
/// one put per task, so the throughput is puts per second.
fn fs_vs_segment_puts(c: &mut Criterion) {
    let rt = two_workers();
    let dir = tempfile::tempdir().unwrap();
    let stores: [(&str, Arc<dyn BlobStore>); 2] = [
        (
            "fs",
            Arc::new(FsStore::open(dir.path().join("fs")).unwrap()),
        ),
        (
            "segment",
            Arc::new(SegmentStore::open(dir.path().join("seg")).unwrap()),
        ),
    ];
    let seeds = Arc::new(AtomicU64::new(1 << 40));
    let mut g = c.benchmark_group("put_10KB_x32");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(IN_FLIGHT));
    for (name, store) in &stores {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..IN_FLIGHT)
                        .map(|_| {
                            let (store, seeds) = (store.clone(), seeds.clone());
                            tokio::spawn(async move {
                                for _ in 0..iters {
                                    let seed = seeds.fetch_add(1, Ordering::Relaxed);
                                    store.put(&test_bytes(BLOCK, seed)).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
}

/// One get of a cached block: fs, and the segment store reading inline (its default below
/// `inline_read_max`) or through `spawn_blocking`, at 10 KB and 256 KiB.
fn fs_vs_segment_gets(c: &mut Criterion) {
    let rt = two_workers();
    let dir = tempfile::tempdir().unwrap();
    let blocking = SegmentOptions {
        inline_read_max: 0,
        ..SegmentOptions::default()
    };
    let inline = SegmentOptions {
        inline_read_max: usize::MAX,
        ..SegmentOptions::default()
    };
    let stores: [(&str, Arc<dyn BlobStore>); 3] = [
        (
            "fs",
            Arc::new(FsStore::open(dir.path().join("fs")).unwrap()),
        ),
        (
            "segment_inline",
            Arc::new(SegmentStore::open_with(dir.path().join("inline"), inline).unwrap()),
        ),
        (
            "segment_spawn_blocking",
            Arc::new(SegmentStore::open_with(dir.path().join("blocking"), blocking).unwrap()),
        ),
    ];
    for (label, size) in [("10KB", BLOCK), ("256KiB", 256 << 10)] {
        let data = test_bytes(size, 42);
        let cid = raw_cid(&data);
        let mut g = c.benchmark_group(format!("get_{label}"));
        g.sample_size(20).throughput(Throughput::Bytes(size as u64));
        for (name, store) in &stores {
            rt.block_on(store.put(&data)).unwrap();
            g.bench_function(*name, |b| b.iter(|| rt.block_on(store.get(&cid)).unwrap()));
        }
        g.finish();
    }
}

/// Open (and close) of a segment store of 200 MiB in 4 KiB blocks (51,200 blocks, four
/// 64 MiB segments, the last one partly full), its files in the page cache: the start-up
/// cost of one node. `hints` opens as it finds the directory (the sealed segments' hint
/// files, the last segment scanned); `scan` deletes every hint file first, so every segment
/// is read and CRC-checked (and, since hints exist, their hints written again).
fn segment_open(c: &mut Criterion) {
    const BLOCK_4K: usize = 4 << 10;
    const BLOCKS: u64 = (200 << 20) / BLOCK_4K as u64;
    let rt = two_workers();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("seg");
    rt.block_on(async {
        let store = Arc::new(SegmentStore::open(&root).unwrap());
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in (t..BLOCKS).step_by(IN_FLIGHT as usize) {
                        store.put(&test_bytes(BLOCK_4K, 1 << 50 | i)).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let remove_hints = || {
        for entry in std::fs::read_dir(&root).unwrap() {
            let path = entry.unwrap().path();
            if path.extension() == Some("hint".as_ref()) {
                std::fs::remove_file(path).unwrap();
            }
        }
    };
    let mut g = c.benchmark_group("open_200MiB_4KiB");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("hints", |b| {
        b.iter(|| {
            let store = SegmentStore::open(&root).unwrap();
            assert_eq!(store.len() as u64, BLOCKS);
        })
    });
    g.bench_function("scan", |b| {
        b.iter_batched(
            remove_hints,
            |()| {
                let store = SegmentStore::open(&root).unwrap();
                assert_eq!(store.len() as u64, BLOCKS);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    cid_vs_sha256,
    fs_put_get,
    fs_vs_segment_puts,
    fs_vs_segment_gets,
    segment_open
);
criterion_main!(benches);
