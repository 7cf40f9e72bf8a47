//! ehr-ledger's tests: a real embedded chain's blocks archived over five real nodes (k = 3),
//! in-process and over HTTP, read back, with nodes down, corrupt fragments, forged heads
//! and crashes.

mod archive;
mod common;
mod faults;
mod format;
