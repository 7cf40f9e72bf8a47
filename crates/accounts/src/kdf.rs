//! The gate every key derivation (Argon2id, scrypt) passes: at most a few at once.
//!
//! One login costs an Argon2id verification and a scrypt decryption (256 MiB at the
//! standard cost). Unbounded, a burst of logins would take every core and multiply that
//! memory; one at a time (a mutex) would let one looping client starve everyone else's
//! logins. The gate admits [`slots`] at once and queues the rest. Callers on an async
//! runtime run the store's methods on the blocking pool behind a semaphore of the same
//! size (as `ehr-records` does), so async workers never wait here.

use std::sync::{Condvar, Mutex};

/// How many key derivations may run at once on this machine: one core is left to
/// everything else (the async workers serving pages), at least 1, at most 4 (4 × 256 MiB
/// of scrypt memory).
pub fn slots() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .clamp(1, 4)
}

/// A counting semaphore for blocking threads.
pub(crate) struct KdfGate {
    free: Mutex<usize>,
    freed: Condvar,
}

/// One admitted derivation; the slot is given back on drop.
pub(crate) struct KdfPermit<'a>(&'a KdfGate);

impl KdfGate {
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            free: Mutex::new(slots.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free slot.
    pub(crate) fn enter(&self) -> KdfPermit<'_> {
        // Only a counter is guarded: a poisoned lock is still consistent.
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        KdfPermit(self)
    }
}

impl Drop for KdfPermit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}
