//! Login throttling: failures counted per username and per client, locks that double.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::{Error, MAX_THROTTLE_ENTRIES, RateLimitParams, Result};

/// What failures are counted against.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum ThrottleKey {
    User(String),
    Client(String),
}

struct Failures {
    count: u32,
    last: SystemTime,
    locked_until: Option<SystemTime>,
}

/// Failure counts per key. Lives inside the store's lock.
#[derive(Default)]
pub(crate) struct Throttle {
    failures: HashMap<ThrottleKey, Failures>,
}

impl Throttle {
    /// Refuses if any key is locked; otherwise counts this attempt as a failure on every
    /// key in advance (a success refunds it), locking keys that reach the limit.
    pub(crate) fn charge(
        &mut self,
        now: SystemTime,
        rl: RateLimitParams,
        keys: &[ThrottleKey],
    ) -> Result<()> {
        let wait = keys
            .iter()
            .filter_map(|k| self.failures.get(k)?.locked_until)
            .filter_map(|until| until.duration_since(now).ok())
            .filter(|d| !d.is_zero())
            .max();
        if let Some(retry_after) = wait {
            return Err(Error::RateLimited { retry_after });
        }
        if self.failures.len() >= MAX_THROTTLE_ENTRIES {
            self.failures.retain(|_, f| {
                f.locked_until.is_some_and(|u| u > now)
                    || now.duration_since(f.last).unwrap_or_default() < rl.forget_after
            });
        }
        for key in keys {
            let f = self.failures.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
            if now.duration_since(f.last).unwrap_or_default() >= rl.forget_after {
                f.count = 0;
            }
            f.count += 1;
            f.last = now;
            if f.count >= rl.free_failures {
                f.locked_until = Some(now + rl.lockout(f.count));
            }
        }
        Ok(())
    }

    /// A correct password: the user's count is cleared and the client's advance charge
    /// refunded (this attempt was no failure).
    pub(crate) fn succeeded(
        &mut self,
        user: Option<&ThrottleKey>,
        client: &ThrottleKey,
        rl: RateLimitParams,
    ) {
        if let Some(k) = user {
            self.failures.remove(k);
        }
        if let Some(f) = self.failures.get_mut(client) {
            f.count = f.count.saturating_sub(1);
            if f.count < rl.free_failures {
                f.locked_until = None;
            }
        }
    }
}
