//! Login throttling, keyed so that a guesser slows only himself.
//!
//! - **Failures per (username, client)**: after [`RateLimitParams::free_failures`] the pair
//!   is locked for a delay that doubles with each further failure. A guesser at one address
//!   is slowed; the owner at another address is not affected.
//! - **Failures per client**, whatever the username (made-up names included): a larger
//!   allowance, [`RateLimitParams::client_free_failures`], then the same doubling locks. A
//!   client spraying names locks only itself, and only past that allowance.
//! - **Successful logins per username**: at most [`RateLimitParams::logins_per_window`] in
//!   [`RateLimitParams::login_window`], from anywhere. Only successes count, so nobody who
//!   lacks the password can spend the owner's allowance; a client looping on valid
//!   credentials costs at most that many key derivations a minute.
//!
//! Failures are charged *before* the password is checked (a success refunds the charge),
//! so parallel guesses cannot slip past a limit. Successes are counted after the check; the
//! overshoot is bounded by the number of key derivations that may run at once.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use crate::{Error, MAX_THROTTLE_ENTRIES, RateLimitParams, Result};

/// What failures are counted against.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum FailureKey {
    /// One username tried from one client.
    Pair(String, String),
    /// One client, any username.
    Client(String),
}

struct Failures {
    count: u32,
    last: SystemTime,
    locked_until: Option<SystemTime>,
}

/// Failure counts and recent successes. Lives inside the store's throttle lock.
#[derive(Default)]
pub(crate) struct Throttle {
    failures: HashMap<FailureKey, Failures>,
    /// Times of each username's recent successful logins, oldest first.
    successes: HashMap<String, VecDeque<SystemTime>>,
}

fn remaining(until: SystemTime, now: SystemTime) -> Option<Duration> {
    until.duration_since(now).ok().filter(|d| !d.is_zero())
}

impl Throttle {
    /// Refuses if the pair or the client is locked, or the username had its allowance of
    /// successful logins; otherwise charges this attempt as a failure in advance (a
    /// success refunds it), locking keys that reach their limit.
    pub(crate) fn charge(
        &mut self,
        now: SystemTime,
        rl: RateLimitParams,
        user: Option<&str>,
        client: &str,
    ) -> Result<()> {
        let keys = Self::keys(user, client);
        let mut wait = keys
            .iter()
            .filter_map(|k| self.failures.get(k)?.locked_until)
            .filter_map(|until| remaining(until, now))
            .max();
        if let Some(recent) = user.and_then(|u| self.successes.get_mut(u)) {
            while recent
                .front()
                .is_some_and(|t| now.duration_since(*t).unwrap_or_default() >= rl.login_window)
            {
                recent.pop_front();
            }
            if recent.len() >= rl.logins_per_window as usize {
                let oldest = *recent.front().expect("non-empty");
                wait = wait.max(remaining(oldest + rl.login_window, now));
            }
        }
        if let Some(retry_after) = wait {
            return Err(Error::RateLimited { retry_after });
        }
        self.sweep(now, rl);
        for key in keys {
            let free = match key {
                FailureKey::Pair(..) => rl.free_failures,
                FailureKey::Client(_) => rl.client_free_failures,
            };
            let f = self.failures.entry(key).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
            if now.duration_since(f.last).unwrap_or_default() >= rl.forget_after {
                f.count = 0;
            }
            f.count += 1;
            f.last = now;
            if f.count >= free {
                f.locked_until = Some(now + rl.lockout(f.count - free));
            }
        }
        Ok(())
    }

    /// A correct password: the pair's count is cleared, the client's advance charge
    /// refunded (this attempt was no failure) and the success counted for the username.
    pub(crate) fn succeeded(
        &mut self,
        now: SystemTime,
        rl: RateLimitParams,
        user: &str,
        client: &str,
    ) {
        self.refund(rl, user, client);
        self.successes
            .entry(user.to_owned())
            .or_default()
            .push_back(now);
    }

    /// A correct code (two-factor set-up): the charge refunded, no login counted.
    pub(crate) fn refund(&mut self, rl: RateLimitParams, user: &str, client: &str) {
        self.failures
            .remove(&FailureKey::Pair(user.to_owned(), client.to_owned()));
        if let Some(f) = self
            .failures
            .get_mut(&FailureKey::Client(client.to_owned()))
        {
            f.count = f.count.saturating_sub(1);
            if f.count < rl.client_free_failures {
                f.locked_until = None;
            }
        }
    }

    fn keys(user: Option<&str>, client: &str) -> Vec<FailureKey> {
        let mut keys = vec![FailureKey::Client(client.to_owned())];
        if let Some(u) = user {
            keys.push(FailureKey::Pair(u.to_owned(), client.to_owned()));
        }
        keys
    }

    /// Bounds memory: past [`MAX_THROTTLE_ENTRIES`], entries that neither lock nor count
    /// any more are dropped.
    fn sweep(&mut self, now: SystemTime, rl: RateLimitParams) {
        let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
        if self.failures.len() >= MAX_THROTTLE_ENTRIES {
            self.failures.retain(|_, f| {
                f.locked_until.is_some_and(|u| u > now) || age(f.last) < rl.forget_after
            });
        }
        if self.successes.len() >= MAX_THROTTLE_ENTRIES {
            self.successes
                .retain(|_, s| s.back().is_some_and(|t| age(*t) < rl.login_window));
        }
    }
}
