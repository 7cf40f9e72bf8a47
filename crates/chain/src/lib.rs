//! The EhrRegistry contract and the chains it runs on.
//!
//! One Solidity contract (`contracts/src/EhrRegistry.sol`, compiled by solc into the committed
//! artifact `contracts/out/EhrRegistry.json`) holds record digests, patients, providers,
//! grants, break-glass access, the access log and the organisations of the network. This crate gives:
//!
//! - [`contract`]: bindings generated from the artifact with alloy's `sol!`;
//! - [`Registry`]: a small async trait over a deployed contract (send a signed call, make a
//!   read-only call, query logs), with typed operations on top in [`RegistryExt`];
//! - [`EmbeddedChain`]: the default backend — revm executing the artifact as a single-node
//!   chain, with signed transactions, hash-linked blocks, receipts, the state and the
//!   indexes persisted in redb;
//! - [`RpcRegistry`]: the same contract on any Ethereum JSON-RPC node (geth, Besu, anvil, …);
//! - [`Offers`]: grant offers a patient signs off chain (EIP-712) and a provider redeems.

pub mod contract;
pub mod embedded;
pub mod erasure;
mod error;
pub mod eth_api;
pub mod funding;
pub mod gas;
pub mod offers;
pub mod registry;
pub mod rpc;
pub mod signing;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
mod tx;
mod values;
pub mod writes;

pub use alloy::primitives::{Address, B256, Bytes, U256};
pub use alloy::signers::local::PrivateKeySigner;
pub use embedded::{BodySource, ChainConfig, EmbeddedChain, VerifyReport};
pub use erasure::{ErasedRecord, Erasure};
pub use error::{ContractError, Error, Result};
pub use funding::FundingPolicy;
pub use offers::{GrantOffer, Offers, SignedOffer};
pub use registry::{
    AccessEntry, AccessStatus, ChainInfo, ChainLog, EmergencyEntry, GrantInfo, LogQuery, NodeSet,
    Organisation, ProviderRegistration, RecordInfo, RecordVersion, Registry, RegistryExt, SentTx,
    TxReceipt, TxStatus, WriteGrantInfo,
};
pub use rpc::RpcRegistry;
pub use writes::WriteAccess;
