//! Paying other accounts' gas on a JSON-RPC chain that charges it, from the admin's key,
//! within limits: each top-up is sized for an account's next few operations (the gas
//! targets of [`crate::gas`] × the current fee, or a fixed amount), and all top-ups together
//! stay within a budget per hour. The embedded chain charges no gas and funds nobody.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::U256;

use crate::error::{Error, Result};
use crate::gas;

/// How much to give an account and how much in all per hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FundingPolicy {
    /// Wei per top-up; `None` sizes it from the gas targets × the current max fee
    /// ([`gas::TOP_UP_GAS`]); `Some(0)` funds nobody (a free-gas consortium chain).
    pub top_up_wei: Option<U256>,
    /// Wei all top-ups together may spend in any hour.
    pub budget_per_hour: U256,
}

impl Default for FundingPolicy {
    fn default() -> Self {
        Self {
            top_up_wei: None,
            budget_per_hour: U256::from(DEFAULT_BUDGET_PER_HOUR),
        }
    }
}

/// The default hourly budget: 0.1 ether (about a hundred top-ups at 1 gwei).
pub const DEFAULT_BUDGET_PER_HOUR: u128 = 100_000_000_000_000_000;

const HOUR: Duration = Duration::from_secs(3600);

impl FundingPolicy {
    /// Whether this policy ever funds anyone.
    pub fn enabled(&self) -> bool {
        self.top_up_wei != Some(U256::ZERO)
    }

    /// The top-up for an account at `max_fee` wei per gas.
    pub fn top_up(&self, max_fee: u128) -> U256 {
        self.top_up_wei
            .unwrap_or_else(|| U256::from(gas::TOP_UP_GAS) * U256::from(max_fee))
    }
}

/// A policy with what it spent in the last hour.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) policy: FundingPolicy,
    spent: Mutex<VecDeque<(Instant, U256)>>,
}

impl Budget {
    pub(crate) fn new(policy: FundingPolicy) -> Self {
        Self {
            policy,
            spent: Mutex::default(),
        }
    }

    /// Reserves `wei` of this hour's budget, or says when enough will be free again.
    pub(crate) fn reserve(&self, wei: U256) -> Result<Instant> {
        let now = Instant::now();
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        while spent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= HOUR)
        {
            spent.pop_front();
        }
        let mut total: U256 = spent.iter().map(|(_, w)| *w).sum();
        if total + wei <= self.policy.budget_per_hour {
            spent.push_back((now, wei));
            return Ok(now);
        }
        // The wait until the oldest top-ups age out and leave room for this one.
        let mut retry_after = HOUR;
        for (t, w) in spent.iter() {
            total -= *w;
            if total + wei <= self.policy.budget_per_hour {
                retry_after = HOUR.saturating_sub(now.duration_since(*t));
                break;
            }
        }
        Err(Error::FundingBudgetSpent { retry_after })
    }

    /// Checks that `wei` would fit now, reserving nothing.
    pub(crate) fn check(&self, wei: U256) -> Result<()> {
        let at = self.reserve(wei)?;
        self.release(at, wei);
        Ok(())
    }

    /// Gives back a reservation whose transfer failed.
    pub(crate) fn release(&self, at: Instant, wei: U256) {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = spent.iter().position(|e| *e == (at, wei)) {
            spent.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_says_when() {
        let b = Budget::new(FundingPolicy {
            top_up_wei: Some(U256::from(40)),
            budget_per_hour: U256::from(100),
        });
        let first = b.reserve(U256::from(40)).unwrap();
        b.reserve(U256::from(40)).unwrap();
        let Err(Error::FundingBudgetSpent { retry_after }) = b.reserve(U256::from(40)) else {
            panic!("a third top-up exceeds 100 wei");
        };
        assert!(retry_after > Duration::from_secs(3500) && retry_after <= HOUR);
        b.check(U256::from(20)).unwrap();
        b.release(first, U256::from(40));
        b.reserve(U256::from(40)).unwrap();
    }

    #[test]
    fn zero_funds_nobody_and_none_follows_the_fee() {
        let off = FundingPolicy {
            top_up_wei: Some(U256::ZERO),
            ..FundingPolicy::default()
        };
        assert!(!off.enabled());
        let est = FundingPolicy::default();
        assert!(est.enabled());
        assert_eq!(est.top_up(2), U256::from(2 * gas::TOP_UP_GAS));
    }
}
