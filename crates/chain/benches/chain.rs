//! Embedded-chain throughput: addRecord transactions with group commit, canAccess view
//! calls, and the time to open a chain of `OPEN_TXS` transactions (default 20,000, built
//! once into a temporary directory). Run: `cargo bench -p ehr-chain --bench chain`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use alloy::sol_types::SolCall;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ehr_chain::contract::{EhrRegistry as C, codec};
use ehr_chain::embedded::sign_tx;
use ehr_chain::{
    B256, Bytes, ChainConfig, EmbeddedChain, PrivateKeySigner, Registry, RegistryExt, U256,
};

/// Transactions in flight per measured batch.
const BATCH: u64 = 1000;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = EmbeddedChain::open(dir.path(), ChainConfig::default(), &admin).unwrap();
    let alice = PrivateKeySigner::random();
    let doc = PrivateKeySigner::random();
    let record = rt.block_on(async {
        chain.register_patient(&alice).await.unwrap();
        chain
            .register_provider(&admin, doc.address(), B256::ZERO)
            .await
            .unwrap();
        let (id, _) = chain
            .add_record(&alice, B256::repeat_byte(1), codec::RAW)
            .await
            .unwrap();
        chain
            .grant_access(&alice, doc.address(), None, u64::MAX >> 24)
            .await
            .unwrap();
        id
    });
    let mut nonce = 3u64; // registerPatient, addRecord and grantAccess used 0, 1 and 2

    let mut g = c.benchmark_group("embedded_chain");
    g.sample_size(10).measurement_time(Duration::from_secs(8));

    // Signed ahead of time (signing is the client's work); each batch is submitted at once
    // and the clock stops when the last receipt is durable.
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("addRecord_tx_group_commit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let raws: Vec<Bytes> = (0..BATCH)
                    .map(|i| {
                        let call = C::addRecordCall {
                            digest: B256::from(U256::from(nonce + i)),
                            codec: codec::DAG_CBOR,
                        };
                        sign_tx(
                            &alice,
                            chain.chain_id(),
                            nonce + i,
                            Some(chain.contract()),
                            call.abi_encode().into(),
                        )
                        .unwrap()
                    })
                    .collect();
                nonce += BATCH;
                let start = Instant::now();
                rt.block_on(async {
                    let all = futures::future::join_all(
                        raws.into_iter().map(|r| chain.send_raw_transaction(r)),
                    )
                    .await;
                    for r in all {
                        r.unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });

    // The same through the typed client, signing included, 64 in flight.
    g.throughput(Throughput::Elements(64));
    g.bench_function("addRecord_signed_64_in_flight", |b| {
        b.iter(|| {
            rt.block_on(async {
                let all =
                    futures::future::join_all((0..64u8).map(|i| {
                        chain.add_record(&alice, B256::repeat_byte(i.max(1)), codec::RAW)
                    }))
                    .await;
                for r in all {
                    r.unwrap();
                }
            })
        })
    });

    g.throughput(Throughput::Elements(1));
    g.bench_function("canAccess_view", |b| {
        b.iter(|| {
            assert!(
                rt.block_on(chain.can_access(doc.address(), record))
                    .unwrap()
            )
        })
    });
    g.finish();
    drop(chain);
    bench_open(c, &rt);
}

/// Opening a grown chain: state proportional to the records, history to the transactions.
fn bench_open(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let txs: u64 = std::env::var("OPEN_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    {
        let chain = EmbeddedChain::open(dir.path(), ChainConfig::default(), &admin).unwrap();
        let alice = PrivateKeySigner::random();
        rt.block_on(chain.register_patient(&alice)).unwrap();
        let mut nonce = 1;
        while nonce <= txs {
            let raws: Vec<Bytes> = (nonce..(nonce + BATCH).min(txs + 1))
                .map(|n| {
                    let call = C::addRecordCall {
                        digest: B256::from(U256::from(n)),
                        codec: codec::DAG_CBOR,
                    };
                    sign_tx(
                        &alice,
                        chain.chain_id(),
                        n,
                        Some(chain.contract()),
                        call.abi_encode().into(),
                    )
                    .unwrap()
                })
                .collect();
            nonce += raws.len() as u64;
            rt.block_on(async {
                for r in futures::future::join_all(
                    raws.into_iter().map(|r| chain.send_raw_transaction(r)),
                )
                .await
                {
                    r.unwrap();
                }
            });
        }
    }
    let mut g = c.benchmark_group("embedded_chain");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function(format!("open_{txs}_tx_chain"), |b| {
        b.iter(|| {
            let chain = EmbeddedChain::open(dir.path(), ChainConfig::default(), &admin).unwrap();
            assert!(chain.head_number() > 0);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
