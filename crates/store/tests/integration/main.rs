//! The integration tests of `ehr-store`, one test binary (each module used to be a binary of
//! its own, each linking the whole dependency graph).

mod car;
mod conformance;
mod ipfs;
mod js;
mod js_importer;
mod kubo;
mod properties;
mod segment;
mod segment_crash;
mod segment_hint;
mod vectors;
