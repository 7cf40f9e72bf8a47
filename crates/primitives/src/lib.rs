//! Types shared across SecureEHR crates, with no I/O.

use std::fmt;

/// A k-of-n threshold: any `k` of `n` parts rebuild the whole.
///
/// Invariant (checked by [`Threshold::new`]): `2 <= k <= n <= 255`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Threshold {
    k: u8,
    n: u8,
}

/// Why a threshold was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThresholdError {
    /// `k` was below two: a single part would reveal the secret.
    #[error("threshold k = {0} is below 2")]
    KTooSmall(usize),
    /// `k` was above `n`: the whole could never be rebuilt.
    #[error("threshold k = {k} is above n = {n}")]
    KAboveN {
        /// Parts needed.
        k: usize,
        /// Parts made.
        n: usize,
    },
    /// `n` was above 255, the number of non-zero points in GF(2^8).
    #[error("n = {0} is above 255")]
    NTooLarge(usize),
}

impl Threshold {
    /// Checks `2 <= k <= n <= 255`.
    pub fn new(k: usize, n: usize) -> Result<Self, ThresholdError> {
        if k < 2 {
            return Err(ThresholdError::KTooSmall(k));
        }
        if n > 255 {
            return Err(ThresholdError::NTooLarge(n));
        }
        if k > n {
            return Err(ThresholdError::KAboveN { k, n });
        }
        Ok(Self {
            k: k as u8,
            n: n as u8,
        })
    }

    /// Parts needed to rebuild.
    pub fn k(self) -> usize {
        self.k as usize
    }

    /// Parts made.
    pub fn n(self) -> usize {
        self.n as usize
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-of-{}", self.k, self.n)
    }
}

/// Seconds since the Unix epoch now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    unix_secs(std::time::SystemTime::now())
}

/// Seconds since the Unix epoch of `t` (0 before 1970).
pub fn unix_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_bounds() {
        assert_eq!(Threshold::new(3, 5).unwrap().to_string(), "3-of-5");
        assert_eq!(Threshold::new(1, 5), Err(ThresholdError::KTooSmall(1)));
        assert_eq!(
            Threshold::new(6, 5),
            Err(ThresholdError::KAboveN { k: 6, n: 5 })
        );
        assert_eq!(Threshold::new(2, 256), Err(ThresholdError::NTooLarge(256)));
        assert!(Threshold::new(255, 255).is_ok());
    }
}
