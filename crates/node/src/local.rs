//! A node in this process: a block store and a custodian (the embedded default).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ehr_chain::Registry;
use ehr_store::{BlobStore, Cid};

use crate::*;

/// A node in this process: a block store and a custodian.
pub struct LocalNode {
    name: String,
    store: Arc<dyn BlobStore>,
    custodian: Custodian,
}

impl fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalNode")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LocalNode {
    /// A node named `name` over `store`, with custodian `key`, checking `registry`.
    pub async fn new(
        name: impl Into<String>,
        key: NodeKey,
        registry: Arc<dyn Registry>,
        store: Arc<dyn BlobStore>,
    ) -> crate::Result<Self> {
        Ok(Self {
            name: name.into(),
            custodian: Custodian::new(key, registry, store.clone()).await?,
            store,
        })
    }

    /// The block store.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }
}

fn store_error(e: ehr_store::Error) -> NodeError {
    match e {
        ehr_store::Error::NotFound { .. } => NodeError::NotFound(e.to_string()),
        other => NodeError::Internal(other.to_string()),
    }
}

#[async_trait]
impl Node for LocalNode {
    fn name(&self) -> &str {
        &self.name
    }
    async fn info(&self) -> Result<NodeInfo, NodeError> {
        Ok(self.custodian.info())
    }
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        self.store.put_block(cid, data).await.map_err(store_error)
    }
    async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, NodeError> {
        self.store.get(cid).await.map_err(store_error)
    }
    async fn delete_block(&self, cid: &Cid) -> Result<(), NodeError> {
        self.store.delete(cid).await.map_err(store_error)
    }
    async fn release_share(&self, request: &ShareRequest) -> Result<ShareResponse, NodeError> {
        self.custodian.release(request).await
    }
}
