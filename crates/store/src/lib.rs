//! `ehr-store`: SecureEHR's content-addressed blocks.
//!
//! Every encrypted fragment and manifest is a block named by a real IPFS CID: the same
//! bytes give the same CID as `ipfs add` ([`unixfs`]), whether they live in a directory
//! ([`SegmentStore`], append-only segments with group commit, where every node keeps its
//! blocks, or [`FsStore`], one file per block as the `add`/`cat`/`car` commands use) or on
//! an IPFS node ([`KuboStore`]). Blocks move
//! between stores and tools as CAR v1 files ([`car`]).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use ehr_store::{BlobStore, MemoryStore, Profile};
//! let store = MemoryStore::new();
//! let cid = store.put(b"hello").await?;
//! assert_eq!(store.get(&cid).await?, b"hello");
//! let root = ehr_store::unixfs::add(&store, &b"hello"[..], Profile::KuboV1).await?;
//! assert_eq!(root, cid); // a one-chunk file is its raw leaf under `ipfs add --cid-version=1`
//! # Ok::<_, ehr_store::Error>(()) }).unwrap();
//! ```

pub mod car;
pub mod cids;
mod error;
pub mod fs;
pub mod kubo;
pub mod memory;
pub mod pb;
pub mod segment;
mod store;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
pub mod unixfs;

pub use cid::Cid;
pub use cids::{cid_from_sha256, parse_cid, raw_cid, verify};
pub use error::{Error, Result};
pub use fs::FsStore;
pub use kubo::KuboStore;
pub use memory::MemoryStore;
pub use segment::{Recovery, SegmentOptions, SegmentStore};
pub use store::BlobStore;
pub use unixfs::{Profile, add, cat, cid_of, cid_of_bytes, import};
