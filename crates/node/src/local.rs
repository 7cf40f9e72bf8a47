//! A node in this process: a block store and a custodian (the embedded default).

use std::fmt;
use std::sync::Arc;

use alloy::primitives::Address;
use async_trait::async_trait;
use ehr_chain::{Registry, RegistryExt};
use ehr_store::{BlobStore, Cid};

use crate::*;

/// A node in this process: a block store and a custodian.
pub struct LocalNode {
    pub(crate) name: String,
    pub(crate) store: Arc<dyn BlobStore>,
    /// `None`: a node without a chain (a restore), which refuses record-share requests.
    custodian: Option<Custodian>,
    pub(crate) ledger: crate::ledger::LedgerCustody,
    /// The node's key (the same its custodian and ledger custody hold).
    pub(crate) key: NodeKey,
    /// Where its re-issued shares are ([`crate::share_index`]); `None` without a directory.
    pub(crate) share_index: Option<Arc<crate::share_index::ShareIndex>>,
    /// Share recovery: this node's own pieces between steps 1 and 2.
    pub(crate) kept_pieces: crate::recovery::KeptPieces,
    /// The records erased here and those waiting for their orders ([`crate::erasure`]).
    pub(crate) erasures: crate::erasure::Erasures,
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
        let admin = registry.admin().await?;
        let ledger = crate::ledger::LedgerCustody::new(key.clone(), Some(admin));
        Ok(Self {
            name: name.into(),
            custodian: Some(Custodian::new(key.clone(), registry, store.clone()).await?),
            store,
            ledger,
            key,
            share_index: None,
            kept_pieces: Default::default(),
            erasures: Default::default(),
        })
    }

    /// A node with no chain (restoring a lost server): it stores and returns blocks, keeps
    /// archive heads and releases ledger-epoch key shares to `admin`; record-share
    /// requests are refused (they need the chain's checks).
    pub fn without_chain(
        name: impl Into<String>,
        key: NodeKey,
        store: Arc<dyn BlobStore>,
        admin: Address,
    ) -> Self {
        Self {
            name: name.into(),
            custodian: None,
            store,
            ledger: crate::ledger::LedgerCustody::new(key.clone(), Some(admin)),
            key,
            share_index: None,
            kept_pieces: Default::default(),
            erasures: Default::default(),
        }
    }

    /// Keeps the archive head and the admin address in `dir` (the node's directory), so
    /// they survive a restart and a lost chain; loads a head kept there before. Opens the
    /// node's share index there too (`share-index.jsonl`: where its re-issued shares are,
    /// see [`recovery_assemble`](Self::recovery_assemble)), which its custodian and ledger
    /// custody consult before a manifest's or epoch header's share link.
    pub fn with_archive_dir(mut self, dir: &std::path::Path) -> crate::Result<Self> {
        self.ledger = self.ledger.with_dir(dir)?;
        let index = Arc::new(crate::share_index::ShareIndex::open(dir)?);
        self.ledger.set_index(index.clone());
        if let Some(custodian) = &mut self.custodian {
            custodian.set_index(index.clone());
        }
        self.share_index = Some(index);
        self.erasures = crate::erasure::Erasures::open(dir)?;
        Ok(self)
    }

    /// The contract its custodian checks (`None`: a node without a chain).
    pub(crate) fn registry(&self) -> Option<&Arc<dyn Registry>> {
        self.custodian.as_ref().map(Custodian::registry)
    }

    /// Its custodian (`None`: a node without a chain).
    pub(crate) fn custodian(&self) -> Option<&Custodian> {
        self.custodian.as_ref()
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
        Ok(self.ledger.key().info())
    }
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        self.store.put_block(cid, data).await.map_err(store_error)
    }
    async fn put_own_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        self.store
            .put_own_block(cid, data)
            .await
            .map_err(store_error)
    }
    async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, NodeError> {
        self.erasures.gate()?;
        self.store.get(cid).await.map_err(store_error)
    }
    async fn delete_block(&self, cid: &Cid) -> Result<(), NodeError> {
        self.store.delete(cid).await.map_err(store_error)
    }
    async fn release_share(&self, request: &ShareRequest) -> Result<ShareResponse, NodeError> {
        self.erasures.gate()?;
        match &self.custodian {
            Some(custodian) => custodian.release(request).await,
            None => Err(NodeError::BadRequest(
                "this node runs without a chain and releases no record shares".into(),
            )),
        }
    }

    async fn release_ledger_share(
        &self,
        request: &LedgerShareRequest,
    ) -> Result<ShareResponse, NodeError> {
        self.erasures.gate()?;
        self.ledger.release(self.store.as_ref(), request).await
    }
    async fn erase(&self, order: &EraseOrder) -> Result<EraseReport, NodeError> {
        LocalNode::erase(self, order).await
    }
    async fn put_archive_head(&self, head: &ArchiveHead) -> Result<(), NodeError> {
        self.ledger.put_head(head)
    }
    async fn archive_head(&self) -> Result<ArchiveHead, NodeError> {
        self.ledger.head()
    }

    async fn recovery_contribute(
        &self,
        order: &SignedRecoveryOrder,
    ) -> Result<Vec<RecoveryMessage>, NodeError> {
        LocalNode::recovery_contribute(self, order).await
    }
    async fn recovery_relay(
        &self,
        order: &SignedRecoveryOrder,
        pieces: &[RecoveryMessage],
    ) -> Result<RecoveryMessage, NodeError> {
        LocalNode::recovery_relay(self, order, pieces).await
    }
    async fn recovery_assemble(
        &self,
        order: &SignedRecoveryOrder,
        sigmas: &[RecoveryMessage],
    ) -> Result<RecoveryOutcome, NodeError> {
        LocalNode::recovery_assemble(self, order, sigmas).await
    }
}
