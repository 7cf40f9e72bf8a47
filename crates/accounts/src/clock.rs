//! Where time comes from: the system clock, or a manual one in tests.

use std::time::SystemTime;
#[cfg(any(test, feature = "test-utils"))]
use std::{sync::Mutex, time::Duration};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to (tests).
#[cfg(any(test, feature = "test-utils"))]
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

#[cfg(any(test, feature = "test-utils"))]
impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

#[cfg(any(test, feature = "test-utils"))]
impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().expect("clock lock")
    }
}
