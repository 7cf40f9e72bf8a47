//! An in-memory [`BlobStore`] for tests, with a hook to corrupt a stored block so the
//! "never return wrong bytes" path can be exercised.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use cid::Cid;

use crate::cids::verify;
use crate::{BlobStore, Error, Result};

/// Blocks in a `HashMap`, keyed by multihash (like Kubo: CIDv0 and CIDv1 of the same
/// bytes are one block).
#[derive(Debug, Default)]
pub struct MemoryStore {
    blocks: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the stored bytes of `cid` without any check (test hook for corruption).
    pub fn corrupt(&self, cid: &Cid, bytes: Vec<u8>) {
        self.lock().insert(cid.hash().to_bytes(), bytes);
    }

    /// Every block held, each under its raw-codec CIDv1 (test hook for inspecting what a
    /// node keeps).
    pub fn blocks(&self) -> Vec<(Cid, Vec<u8>)> {
        self.lock()
            .iter()
            .filter_map(|(mh, data)| {
                let mh = cid::multihash::Multihash::from_bytes(mh).ok()?;
                Some((Cid::new_v1(crate::cids::RAW, mh), data.clone()))
            })
            .collect()
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Vec<u8>>> {
        // A panic while holding the lock cannot leave a half-written block behind.
        self.blocks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl BlobStore for MemoryStore {
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        verify(cid, data, None)?;
        self.lock().insert(cid.hash().to_bytes(), data.to_vec());
        Ok(())
    }

    async fn get(&self, cid: &Cid) -> Result<Vec<u8>> {
        let data = self
            .lock()
            .get(&cid.hash().to_bytes())
            .cloned()
            .ok_or(Error::NotFound {
                cid: Box::new(*cid),
            })?;
        verify(cid, &data, Some(&"memory store"))?;
        Ok(data)
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self.lock().contains_key(&cid.hash().to_bytes()))
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        self.lock().remove(&cid.hash().to_bytes());
        Ok(())
    }
}
