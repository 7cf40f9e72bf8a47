//! Per-client throttling of unauthenticated, expensive requests (patient registration:
//! Argon2id plus a keystore's scrypt, about a second of CPU each at the standard cost).
//!
//! A token bucket per client IP: `burst` requests at once, then one per `refill`. Login
//! throttling is not here: the account store does it per username and per client.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle ones are swept.
const MAX_CLIENTS: usize = 10_000;

/// A token bucket per client key.
#[derive(Debug)]
pub struct Throttle {
    burst: u32,
    refill: Duration,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Throttle {
    /// `burst` requests at once per client, then one more per `refill`.
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self {
            burst: burst.max(1),
            refill: refill.max(Duration::from_millis(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one token for `client`, or says how long until one is free.
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.burst);
        let per_sec = 1.0 / self.refill.as_secs_f64();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CLIENTS {
            // A bucket that has refilled completely holds no information.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst
            });
        }
        let (tokens, at) = buckets.entry(client.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_sec).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_per_refill_per_client() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.check_at("a", start).is_ok());
        }
        let wait = t.check_at("a", start).unwrap_err();
        assert!(wait > Duration::from_secs(59) && wait <= Duration::from_secs(60));
        // Another client is not affected.
        assert!(t.check_at("b", start).is_ok());
        // One refill later, exactly one more.
        let later = start + Duration::from_secs(60);
        assert!(t.check_at("a", later).is_ok());
        assert!(t.check_at("a", later).is_err());
    }
}
