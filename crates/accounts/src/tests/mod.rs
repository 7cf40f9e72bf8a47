//! Unit and property tests, one file per module (one test binary keeps link time down).

mod archive;
mod keystore;
mod store;
