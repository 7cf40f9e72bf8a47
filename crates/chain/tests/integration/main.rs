//! The integration tests of `ehr-chain`, one test binary (each module used to be a binary of
//! its own, each linking the whole dependency graph).

mod artifact;
mod conformance;
mod embedded;
mod eth_api;
mod prune;
mod restore;
mod view;
