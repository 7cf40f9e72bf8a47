#![doc = include_str!("../README.md")]

pub mod attachments;
pub mod deployment;
mod erasures;
mod error;
mod journal;
pub mod reasons;
pub mod replace;
pub mod restore;
mod service;
pub mod session;
mod views;

pub use error::{Error, OfferRefusal, Result};
pub use service::{
    AttachmentDownload, AttachmentInput, AttachmentStored, CONSORTIUM, ChainSource, DirectoryEntry,
    EXPIRY_NOTICE, ErasedRecordView, ErasureReceipt, MAX_TIME, NODE_TIMEOUT, NodeErasure,
    OFFER_TTL, OfferView, PROFILE_FORMAT, PROVIDER_SYSTEM, ProfileInput, ProviderProfile,
    STATUS_TTL, Service, ServiceParts,
};
pub use session::{AdminSession, PatientSession, ProviderSession, Reader, SignedIn};
pub use views::{
    AccessLogEntry, EmergencyWindow, GrantView, NodeStatus, PatientAccount, ReadRecord,
    RecordSummary, SharedView, SinceLastVisit, Status, Stored, VersionInfo, WriteView,
};

pub use ehr_chain::SignedOffer;

/// The crates the service is built on, re-exported so a caller needs only this one.
pub use {ehr_accounts as accounts, ehr_fhir as fhir, ehr_ledger as ledger, ehr_node as node};
