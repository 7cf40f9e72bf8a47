//! The integration tests of `secure-ehr`, one test binary (each module used to be a binary of
//! its own, each linking the whole dependency graph). Most run the built binary
//! (`CARGO_BIN_EXE_secure-ehr`) as a user would.

mod bench_cli;
mod chain_cli;
mod common;
mod consortium;
mod crash;
mod embedded_nodes;
mod fhir_clients;
mod keystore;
mod restore;
// ehr-store's js-ipfs node (`IpfsNode`), from its integration tests.
#[path = "../../../../crates/store/tests/integration/ipfs.rs"]
mod ipfs;
mod node_erasure;
mod node_http;
mod node_ipfs;
mod node_replace;
mod node_replace_remote;
mod nodes;
mod rpc_clients;
mod serve_cli;
mod share_cli;
mod store_cli;
