#![doc = include_str!("../README.md")]

pub mod accounts;
pub mod embedded;
mod error;
pub mod fhir;
pub mod flows;
mod journal;
pub mod keyfile;
pub mod keystore;
pub mod manifest;
pub mod node;
mod reasons;

pub use error::{Error, Result};
pub use flows::{
    AccessLogEntry, GrantView, NodeStatus, PatientAccount, ReadRecord, RecordSummary, Service,
    ServiceParts, Status, Stored, VersionInfo,
};
pub use node::{LocalNode, Node, NodeError, NodeInfo, NodeKey, ShareRequest, ShareResponse};

#[cfg(test)]
mod tests;
