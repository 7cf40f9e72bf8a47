//! The `BlobStore` trait: where content-addressed blocks live. Four required methods; `put`,
//! `put_own_block` and `pin` have defaults. Every implementation verifies bytes against the CID on the way
//! in and on the way out, so a store never hands back wrong bytes.

use async_trait::async_trait;
use cid::Cid;

use crate::Result;
use crate::cids::raw_cid;

/// A store of content-addressed blocks, usable as `Arc<dyn BlobStore>`.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `data` under `cid` after checking that `data` hashes to `cid`.
    /// Idempotent: storing the same block twice is not an error.
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<()>;

    /// Stores a block this process built, its CID computed from these very bytes here:
    /// [`put_block`](Self::put_block) without hashing them again where the store can skip
    /// that (reads still re-hash, so a wrong CID is caught there). Others check anyway.
    async fn put_own_block(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        self.put_block(cid, data).await
    }

    /// Returns the block `cid`, re-hashed: bytes that do not match are refused with
    /// [`Error::HashMismatch`](crate::Error::HashMismatch) naming the CID.
    /// A missing block is [`Error::NotFound`](crate::Error::NotFound).
    async fn get(&self, cid: &Cid) -> Result<Vec<u8>>;

    /// Whether the block `cid` is present (not verified).
    async fn has(&self, cid: &Cid) -> Result<bool>;

    /// Removes the block `cid`. Removing an absent block is not an error.
    async fn delete(&self, cid: &Cid) -> Result<()>;

    /// Stores `data` as a raw block and returns its CID (CIDv1, raw codec, sha2-256), the one
    /// `ipfs block put` returns.
    async fn put(&self, data: &[u8]) -> Result<Cid> {
        let cid = raw_cid(data);
        self.put_block(&cid, data).await?;
        Ok(cid)
    }

    /// Keeps `cid` from garbage collection where the backend has one; a no-op otherwise.
    async fn pin(&self, _cid: &Cid) -> Result<()> {
        Ok(())
    }
}
