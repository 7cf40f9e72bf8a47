//! The crate's one error type.

use std::fmt;

use alloy::primitives::{B256, Bytes};
use alloy::sol_types::SolInterface;

use crate::contract::EhrRegistryErrors;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The contract refused the call and said why (not registered, no grant, expired, …).
    #[error("{0}")]
    Contract(#[from] ContractError),
    /// The chain refused the transaction before executing it (signature, nonce, chain id,
    /// encoding): nothing was mined.
    #[error("transaction rejected: {0}")]
    Rejected(String),
    /// A mined transaction reverted without revert data we could read.
    #[error("transaction {0} reverted")]
    RevertedOnChain(B256),
    /// The embedded block store could not be read or written.
    #[error("block store: {0}")]
    Store(String),
    /// The embedded block store is damaged (truncated or undecodable); nothing was loaded.
    #[error("block store is corrupt: {0}")]
    Corrupt(String),
    /// Re-walking the chain found a block that does not check out; nothing was loaded.
    #[error("chain verification failed at block {block}: {reason}")]
    Tampered {
        /// The first bad block.
        block: u64,
        /// What did not match.
        reason: String,
    },
    /// The block's body (transactions, receipts) is no longer kept here: the ledger archive
    /// holds it, and no archive reader was given.
    #[error("block {block}'s body is pruned here; it is in the ledger archive on the nodes")]
    Pruned {
        /// The block.
        block: u64,
    },
    /// The code at the contract's address is not this version's EhrRegistry: a deployment
    /// made by another SecureEHR version (or another contract), whose operations would not
    /// match this build's.
    #[error(
        "the contract at {contract} is not this version's EhrRegistry (its code differs from \
         contracts/out/EhrRegistry.json): it was deployed by another SecureEHR version; \
         deploy this version's contract (`secure-ehr chain deploy`, or a new data directory \
         for the embedded chain)"
    )]
    WrongContract {
        /// The address whose code differs.
        contract: alloy::primitives::Address,
    },
    /// The JSON-RPC node failed or answered something unusable.
    #[error("JSON-RPC: {0}")]
    Rpc(String),
    /// The contract answered with bytes that do not decode as its ABI says.
    #[error("unexpected contract output: {0}")]
    Abi(String),
    /// The EVM failed internally.
    #[error("EVM: {0}")]
    Evm(String),
    /// The data directory or a key file could not be used.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The embedded chain's block producer has stopped.
    #[error("the embedded chain has stopped")]
    Stopped,
    /// Paying this account's gas would exceed the funding budget of the hour.
    #[error(
        "the budget for paying new accounts' gas is spent for this hour; retry in {} s",
        retry_after.as_secs().max(1)
    )]
    FundingBudgetSpent {
        /// How long until enough of the budget is free again.
        retry_after: std::time::Duration,
    },
    /// A sent transaction was not mined in time. It may still be: ask
    /// [`Registry::tx_status`](crate::Registry::tx_status) before treating it as lost.
    #[error("transaction {} not mined after {} s; it may still be", tx.hash, waited.as_secs())]
    NotMined {
        /// The transaction.
        tx: crate::tx::SentTx,
        /// How long we waited.
        waited: std::time::Duration,
    },
}

impl Error {
    /// The contract's own reason, when the contract refused.
    pub fn contract_error(&self) -> Option<&EhrRegistryErrors> {
        match self {
            Error::Contract(ContractError::Known(e)) => Some(e),
            _ => None,
        }
    }
}

/// A revert from the contract: one of its custom errors, or bytes that are not one.
#[derive(Debug)]
pub enum ContractError {
    /// A custom error the contract declares.
    Known(EhrRegistryErrors),
    /// Revert data that is not one of the contract's errors.
    Unknown(Bytes),
}

impl std::error::Error for ContractError {}

impl ContractError {
    /// Decodes revert data.
    pub fn decode(data: &[u8]) -> Self {
        match EhrRegistryErrors::abi_decode(data) {
            Ok(e) => ContractError::Known(e),
            Err(_) => ContractError::Unknown(Bytes::copy_from_slice(data)),
        }
    }
}

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EhrRegistryErrors as E;
        let ContractError::Known(e) = self else {
            let ContractError::Unknown(data) = self else {
                unreachable!()
            };
            return write!(f, "contract reverted (data {data})");
        };
        match e {
            E::NotAdmin(e) => write!(f, "denied: {} is not the admin", e.caller),
            E::AlreadyRegistered(e) => write!(f, "{} is already registered", e.account),
            E::NotRegisteredPatient(e) => {
                write!(f, "denied: {} is not a registered patient", e.account)
            }
            E::NotRegisteredProvider(e) => {
                write!(f, "denied: {} is not a registered provider", e.account)
            }
            E::UnknownRecord(e) => write!(f, "no record has id {}", e.recordId),
            E::RecordIsErased(e) => write!(
                f,
                "record {} was erased with its owner's account",
                e.recordId
            ),
            E::PatientIsErased(e) => write!(f, "{} erased their account", e.patient),
            E::NotRecordOwner(e) => {
                write!(f, "denied: {} does not own record {}", e.caller, e.recordId)
            }
            E::NoGrant(e) => write!(
                f,
                "access denied: {} has no grant for record {}",
                e.reader, e.recordId
            ),
            E::GrantExpired(e) => write!(
                f,
                "access denied: the grant of {} for record {} expired at {}",
                e.reader, e.recordId, e.expiredAt
            ),
            E::GrantRevoked(e) => write!(
                f,
                "access denied: the grant of {} for record {} was revoked",
                e.reader, e.recordId
            ),
            E::ExpiryInPast(e) => write!(
                f,
                "expiry {} is not in the future (chain time {})",
                e.expiresAt, e.now
            ),
            E::ZeroDigest(_) => write!(f, "a record digest must not be zero"),
            E::ZeroReason(_) => write!(f, "emergency access needs a reason"),
            E::InvalidNodeSet(_) => write!(
                f,
                "invalid node set: lengths differ, a key or address is zero, or not 2 <= k <= n <= 255"
            ),
            E::ZeroAddress(_) => write!(f, "the zero address cannot hold a role"),
            E::TimeOutOfRange(e) => write!(
                f,
                "time {} is past the contract's 40-bit range (at most {})",
                e.time,
                (1u64 << 40) - 1
            ),
            E::NotRegistrar(e) => write!(
                f,
                "denied: {} is neither the admin nor an organisation's registrar",
                e.caller
            ),
            E::NotOrganisationProvider(e) => write!(
                f,
                "denied: provider {} belongs to organisation {}, not the caller's",
                e.provider, e.organisation
            ),
            E::UnknownOrganisation(e) => {
                write!(f, "no current organisation has id {}", e.organisation)
            }
            E::OrganisationHasProviders(e) => write!(
                f,
                "organisation {} still has {} providers: its registrar deregisters them first",
                e.organisation, e.providers
            ),
            E::InvalidName(_) => write!(f, "an organisation's name is 1 to 64 bytes"),
            E::NoWriteGrant(e) if e.recordId.is_zero() => write!(
                f,
                "write denied: {} may not add records for this patient",
                e.writer
            ),
            E::NoWriteGrant(e) => write!(
                f,
                "write denied: {} has no write grant for record {}",
                e.writer, e.recordId
            ),
            E::WriteGrantExpired(e) => write!(
                f,
                "write denied: the write grant of {} for {} expired at {}",
                e.writer,
                scope(e.recordId),
                e.expiredAt
            ),
            E::WriteGrantRevoked(e) => write!(
                f,
                "write denied: the write grant of {} for {} was revoked",
                e.writer,
                scope(e.recordId)
            ),
            E::OfferExpired(e) => write!(
                f,
                "the offer ended at {} (chain time {})",
                e.deadline, e.now
            ),
            E::OfferUsed(_) => write!(f, "the offer was already used"),
            E::BadOfferSignature(_) => write!(f, "the offer is not signed by its patient"),
        }
    }
}

/// "record N", or "all records" for the all-records scope 0.
fn scope(record_id: alloy::primitives::U256) -> String {
    if record_id.is_zero() {
        "all records".into()
    } else {
        format!("record {record_id}")
    }
}
