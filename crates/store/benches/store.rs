//! Benchmarks: CID computation of a 50 MiB file against plain SHA-256 of the same bytes
//! (goal ≥ 0.9× SHA-256 speed), and fs store put/get throughput for 1 KiB and 1 MiB blocks.
//! `cargo bench -p ehr-store --bench store`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ehr_store::testing::test_bytes;
use ehr_store::{BlobStore, FsStore, Profile, cid_of, cid_of_bytes, raw_cid};
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

criterion_group!(benches, cid_vs_sha256, fs_put_get);
criterion_main!(benches);
