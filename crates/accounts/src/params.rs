//! The cost and limit settings an [`AccountStore`] runs with.

use std::time::Duration;

use argon2::{Algorithm, Argon2, Version};

use crate::keystore::ScryptParams;
use crate::*;

/// Argon2id cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Argon2Params {
    /// OWASP's recommendation for Argon2id: 19 MiB, 2 passes, 1 lane (also the `argon2`
    /// crate's default).
    pub const STANDARD: Self = Self {
        m_cost_kib: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };

    pub(crate) fn hasher(self) -> Result<Argon2<'static>> {
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)
            .map_err(|_| Error::InvalidParams("argon2"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Login throttling (see the `throttle` module: failures per username and client, failures
/// per client, successes per username).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitParams {
    /// Failures allowed for one username from one client before that pair is locked.
    pub free_failures: u32,
    /// Failures allowed from one client, whatever the usernames, before it is locked.
    pub client_free_failures: u32,
    /// Successful logins allowed per username in [`login_window`](Self::login_window).
    pub logins_per_window: u32,
    /// The window successful logins are counted in.
    pub login_window: Duration,
    /// The first lock's length; each further failure doubles it.
    pub base_lockout: Duration,
    /// The longest lock.
    pub max_lockout: Duration,
    /// A key with no failure for this long starts afresh.
    pub forget_after: Duration,
}

impl RateLimitParams {
    /// 5 failures per username and client (20 per client), then 30 s, 60 s, 120 s, … up
    /// to 15 min; forgotten after an hour. 10 successful logins per username a minute.
    pub const STANDARD: Self = Self {
        free_failures: 5,
        client_free_failures: 20,
        logins_per_window: 10,
        login_window: Duration::from_secs(60),
        base_lockout: Duration::from_secs(30),
        max_lockout: Duration::from_secs(15 * 60),
        forget_after: Duration::from_secs(60 * 60),
    };

    /// The lock after `excess` failures beyond a key's allowance.
    pub(crate) fn lockout(&self, excess: u32) -> Duration {
        let doublings = excess.min(20);
        self.base_lockout
            .saturating_mul(1 << doublings)
            .min(self.max_lockout)
    }
}

/// Everything an [`AccountStore`] can be tuned with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountParams {
    /// Password hashing cost.
    pub argon2: Argon2Params,
    /// Cost of the users' keystore files.
    pub scrypt: ScryptParams,
    /// How long a login token is valid.
    pub token_ttl: Duration,
    /// Login throttling.
    pub rate_limit: RateLimitParams,
}

impl AccountParams {
    /// Production settings: [`Argon2Params::STANDARD`], [`ScryptParams::STANDARD`],
    /// 15-minute tokens, [`RateLimitParams::STANDARD`].
    pub const STANDARD: Self = Self {
        argon2: Argon2Params::STANDARD,
        scrypt: ScryptParams::STANDARD,
        token_ttl: Duration::from_secs(15 * 60),
        rate_limit: RateLimitParams::STANDARD,
    };

    /// Cheap hashing (64 KiB Argon2id, scrypt n = 2^10) for tests. Never in production.
    #[cfg(any(test, feature = "test-utils"))]
    pub const INSECURE_FAST: Self = Self {
        argon2: Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        scrypt: ScryptParams {
            log_n: 10,
            r: 8,
            p: 1,
        },
        ..Self::STANDARD
    };
}
