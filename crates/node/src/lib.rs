//! The SecureEHR node protocol and its implementations.
//!
//! A node keeps content-addressed blocks (record fragments, manifests and its own share
//! blocks: a custodian's share of a record key is a block only its node holds) and holds one
//! X25519 key: the custodian key its Shamir shares of record keys are wrapped to. It
//! releases a share only to a reader who
//! 1. signed a [`ShareRequest`] (EIP-712) that has not expired and was not used before,
//! 2. is allowed by the registry contract now (`canAccess`), and
//! 3. has an `AccessLogged` event on chain for exactly that record and nonce, logged in
//!    the last [`MAX_REQUEST_TTL`] seconds,
//!
//! and it releases the share re-wrapped (HPKE) to the reader's one-time X25519 key, bound
//! to the request. No node ever sees a whole key or a whole record.
//!
//! | module | holds |
//! |---|---|
//! | `protocol` | the [`Node`] trait, [`ShareRequest`], [`ShareResponse`], [`NodeInfo`], [`NodeError`], the read nonce |
//! | `manifest` | [`RecordManifest`], the public DAG-CBOR block describing one stored record version (JSON format 1 still read) |
//! | `key` | [`NodeKey`] |
//! | `ledger` | ledger custody: [`LedgerShareRequest`] (the admin's request for an epoch key share), [`ArchiveHead`] (the admin-signed newest epoch) |
//! | `custodian` | [`Custodian`]: the checks, then the share re-wrapped to the reader |
//! | `local` | [`LocalNode`]: a block store and a custodian in this process |
//! | `recovery` | share recovery over nodes: [`RecoveryOrder`], the helpers' and the new custodian's steps (`secure-ehr node replace`) |
//! | `erasure` | destroying an erased record's blocks and key shares: [`EraseOrder`], [`EraseReport`], catching up after being away |
//! | `share_index` | a node's index of its re-issued share blocks (manifest CID → its share block) |
//! | `server` | [`router`]: the HTTP API of `secure-ehr node` |
//! | `remote` | [`RemoteNode`]: a node over HTTP, as the records service sees it |
//!
//! The HTTP API:
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/node/info` | identity address and X25519 custodian key |
//! | PUT | `/node/blocks/{cid}` | store a block (checked against the CID); the token, or an organisation's signature ([`writers`]) |
//! | GET | `/node/blocks/{cid}` | a block's bytes |
//! | DELETE | `/node/blocks/{cid}` | remove a block (orphan collection, erasure); the token, or the signature of an organisation that stored it |
//! | POST | `/node/shares` | a signed [`ShareRequest`] → this custodian's [`ShareResponse`] |
//! | POST | `/node/erase` | an [`EraseOrder`] (a record erased on chain, its manifests) → [`EraseReport`]; no token: the chain decides |
//! | POST | `/node/ledger-shares` | an admin-signed [`LedgerShareRequest`] → this custodian's [`ShareResponse`] |
//! | PUT | `/node/archive-head` | keep a newer admin-signed [`ArchiveHead`]; token if configured |
//! | GET | `/node/archive-head` | the newest [`ArchiveHead`] kept |
//! | POST | `/node/recovery/contribute` | [`RecoveryStep`] (an admin-signed [`SignedRecoveryOrder`]) → this helper's piece messages |
//! | POST | `/node/recovery/relay` | [`RecoveryStep`] with the pieces addressed to this helper → its σ message to the target |
//! | POST | `/node/recovery/assemble` | [`RecoveryStep`] with the helpers' σ → [`RecoveryOutcome`] (the target stores its re-issued shares) |
//!
//! Refusals are JSON `{"error": code, "message": text}` with the [`NodeError`] code. Blocks
//! are ciphertext or manifests and key shares leave only wrapped to the reader, so reads
//! are open; writes and deletes need the node operator's token or, on a node shared by
//! organisations, an organisation's signature checked on chain ([`writers`]). The
//! recovery routes need no token: each step checks the order's admin signature (against
//! the admin address the node's ledger custody keeps), its expiry and that its plan id was
//! not used for that step before, and carries only HPKE ciphertexts. Their bodies are at
//! most [`MAX_RECOVERY_BODY`] (an order of 512 items and its messages).

mod custodian;
mod dagcbor;
pub mod erasure;
mod error;
mod key;
pub mod ledger;
mod local;
pub mod manifest;
mod protocol;
pub mod recovery;
mod remote;
mod server;
mod share_index;
pub mod writers;

pub use custodian::Custodian;
pub use erasure::{CatchUp, EraseOrder, EraseReport};
pub use error::{Error, Result};
pub use key::NodeKey;
pub use ledger::{ArchiveHead, LedgerShareRequest};
pub use local::LocalNode;
pub use manifest::RecordManifest;
pub use protocol::*;
pub use recovery::{
    RecoveryItem, RecoveryMessage, RecoveryOrder, RecoveryOutcome, RecoveryStep,
    SignedRecoveryOrder,
};
pub use remote::RemoteNode;
pub use server::{
    MAX_BLOCK, MAX_ERASE_ORDER, MAX_IN_FLIGHT, MAX_PUTS_IN_FLIGHT, MAX_RECOVERY_BODY,
    MAX_SHARE_REQUEST, RouterConfig, router, router_with, router_with_limit,
};
pub use share_index::SHARE_INDEX_FILE;
pub use writers::{Owners, Writer, Writers};
