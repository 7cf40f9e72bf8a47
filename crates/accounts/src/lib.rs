//! Users, passwords, sessions and login throttling.
//!
//! An [`AccountStore`] is a redb database (`accounts.redb`, an embedded transactional
//! store) holding every user: username, role (patient, provider, admin), Ethereum address,
//! Argon2id password hash (PHC string) and the user's key as a keystore v3 file encrypted
//! under the same password. It starts empty — there are no default credentials: the first
//! admin is created explicitly with [`AccountStore::create_admin`], which refuses once an
//! admin exists. Every change is one write transaction, durable *before* it is
//! acknowledged, so an account that was reported created survives a crash. An older
//! `accounts.json` is migrated at open and kept as a backup.
//!
//! [`AccountStore::login`] checks the password and hands out a bearer [`Token`]: a random
//! 128-bit selector that finds the session plus a random 256-bit verifier, of which only the
//! SHA-256 hash is kept and which is compared in constant time (`subtle`). Tokens live in
//! memory and expire after [`AccountParams::token_ttl`]; a restart logs everyone out.
//!
//! Failed logins are counted per (username, client) and per client (e.g. the peer IP), so
//! a guesser locks only himself: after [`RateLimitParams::free_failures`] failures of one
//! username from one client (or [`RateLimitParams::client_free_failures`] from one client
//! over any usernames) that key is locked for a delay that doubles with each further
//! failure. Successful logins are limited per username
//! ([`RateLimitParams::logins_per_window`]). Attempts are charged *before* the password is
//! checked, so parallel guesses cannot slip past the limit. Key derivations pass a gate of
//! [`kdf_slots`] at once. Time comes from a [`Clock`], so tests move it instead of sleeping.

mod account;
mod archive;
mod clock;
mod db;
mod error;
mod kdf;
pub mod keystore;
mod params;
mod password;
mod recovery;
mod session;
mod store;
mod throttle;
pub mod totp;

pub use account::{AccountInfo, Role, normalize_username};
#[cfg(any(test, feature = "test-utils"))]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock};
pub use error::{Error, Result};
pub use kdf::slots as kdf_slots;
pub use params::{AccountParams, Argon2Params, RateLimitParams};
pub use recovery::{RECOVERY_CODE_CHARS, RecoveryCode};
pub use session::{Session, Token};
pub use store::AccountStore;

pub use db::{ACCOUNTS_DB, MIGRATED_SUFFIX};

/// The old accounts file's name inside the accounts directory (before `accounts.redb`);
/// migrated at open and kept as `accounts.json.migrated`.
pub const ACCOUNTS_FILE: &str = "accounts.json";
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Throttling entries kept before stale ones are swept.
const MAX_THROTTLE_ENTRIES: usize = 10_000;

#[cfg(test)]
mod tests;
