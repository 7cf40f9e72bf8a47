//! Sign-up, authentication (session lookup) and account lookup with 100,000 accounts, and
//! authentication while another thread signs users up.
//!
//! The accounts are written as an old-style `accounts.json` (copies of one real account
//! under 100,000 names) and opened, so the same bench measures the JSON store and the
//! redb store (which migrates the file at open). Cheap hashing
//! (`AccountParams::INSECURE_FAST`): what is measured is the store, not Argon2id/scrypt.
//!
//! ```sh
//! cargo bench -p ehr-accounts --bench accounts --profile dev   # dependencies at opt-level 2
//! ACCOUNTS=10000 cargo bench -p ehr-accounts --bench accounts --profile dev
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ehr_accounts::keystore;
use ehr_accounts::{ACCOUNTS_FILE, AccountParams, AccountStore, SystemClock};
use rand_core::SeedableRng;

const PW: &str = "correct horse battery";

fn accounts() -> usize {
    std::env::var("ACCOUNTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// `n` accounts as the JSON store wrote them (version 1).
fn accounts_json(n: usize) -> Vec<u8> {
    let params = AccountParams::INSECURE_FAST;
    let (signer, ks) = keystore::generate(
        PW.as_bytes(),
        params.scrypt,
        &mut rand_chacha::ChaCha20Rng::from_seed([7; 32]),
    )
    .unwrap();
    use argon2::password_hash::{PasswordHasher, SaltString};
    let hash = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(params.argon2.m_cost_kib, params.argon2.t_cost, 1, None).unwrap(),
    )
    .hash_password(PW.as_bytes(), &SaltString::encode_b64(&[1; 16]).unwrap())
    .unwrap()
    .to_string();
    let accounts: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "username": format!("user{i:06}"),
                "role": "patient",
                "address": signer.address(),
                "password_hash": hash,
                "keystore": ks,
                "created_at": 1_800_000_000u64,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"version": 1, "accounts": accounts})).unwrap()
}

fn bench(c: &mut Criterion) {
    let n = accounts();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(ACCOUNTS_FILE), accounts_json(n)).unwrap();
    let start = Instant::now();
    let store = AccountStore::open(
        dir.path(),
        AccountParams::INSECURE_FAST,
        Arc::new(SystemClock),
    )
    .unwrap();
    eprintln!("opened {} accounts in {:?}", store.len(), start.elapsed());
    assert_eq!(store.len(), n);

    let mut g = c.benchmark_group(format!("accounts_{n}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let next = AtomicUsize::new(0);
    g.bench_function("sign_up", |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed);
            store.register_patient(&format!("new{i:07}"), PW).unwrap()
        })
    });
    let (token, _) = store.login("user050000", PW, "bench").unwrap();
    g.bench_function("authenticate", |b| {
        b.iter(|| store.authenticate(token.expose()).unwrap())
    });
    g.bench_function("get_account", |b| {
        b.iter(|| store.get("user077777").unwrap())
    });
    g.finish();

    // Every request authenticates: how long does one wait while sign-ups are written? A
    // mean hides a stall behind a whole-file rewrite, so this prints the tail, over
    // `TAIL_SECONDS` (default 15) of authentications while another thread signs users up.
    let secs = std::env::var("TAIL_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let signed_up = AtomicUsize::new(0);
    let mut waits = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                store.register_patient(&format!("new{i:07}"), PW).unwrap();
                signed_up.fetch_add(1, Ordering::Relaxed);
            }
        });
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            let t = Instant::now();
            store.authenticate(token.expose()).unwrap();
            waits.push(t.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
    });
    waits.sort();
    let q = |p: f64| waits[((waits.len() - 1) as f64 * p) as usize];
    eprintln!(
        "authenticate during sign-ups ({} sign-ups in {secs} s): {} calls, median {:?}, \
         p99.99 {:?}, max {:?}",
        signed_up.into_inner(),
        waits.len(),
        q(0.5),
        q(0.9999),
        waits.last().unwrap()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
