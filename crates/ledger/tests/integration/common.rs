//! Shared set-up: an embedded chain in a tempdir with transactions in it, five nodes over
//! memory stores, an archiver over them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::Bytes;
use alloy::signers::local::PrivateKeySigner;
use ehr_chain::embedded::sign_tx;
use ehr_chain::{ChainConfig, EmbeddedChain, Registry};
use ehr_ledger::{
    ArchiveConfig, Archiver, ArchiverHandle, BoxError, EpochPolicy, LedgerSource, RawBlock,
    StatePart,
};
use ehr_node::{LocalNode, Node, NodeKey};
use ehr_primitives::Threshold;
use ehr_store::MemoryStore;

/// The embedded chain as the archiver's source.
pub struct ChainSource(pub Arc<EmbeddedChain>);

impl LedgerSource for ChainSource {
    fn head(&self) -> Result<Option<u64>, ehr_chain::Error> {
        Ok(Some(self.0.head_number()))
    }
    fn block(&self, n: u64) -> Result<Option<RawBlock>, ehr_chain::Error> {
        Ok(self.0.raw_block(n)?.map(|(block, receipts)| RawBlock {
            number: n,
            block,
            receipts,
        }))
    }
}

/// A state part whose changes are appended entries; the cursor is the number of entries.
#[derive(Default)]
pub struct LogPart {
    pub entries: Mutex<Vec<Vec<u8>>>,
}

impl LogPart {
    pub fn push(&self, e: &[u8]) {
        self.entries.lock().unwrap().push(e.to_vec());
    }
}

/// Entries as u32-length-prefixed bytes.
pub fn concat(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&(e.len() as u32).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

impl StatePart for LogPart {
    fn name(&self) -> &str {
        "log"
    }
    fn snapshot(&self) -> Result<(u64, Vec<u8>), BoxError> {
        let e = self.entries.lock().unwrap();
        Ok((e.len() as u64, concat(&e)))
    }
    fn changes_since(&self, cursor: u64) -> Result<Option<(u64, Vec<u8>)>, BoxError> {
        let e = self.entries.lock().unwrap();
        let c = cursor as usize;
        if c >= e.len() {
            return Ok(None);
        }
        Ok(Some((e.len() as u64, concat(&e[c..]))))
    }
}

/// A deployment: chain, five nodes (k = 3), their stores, the archive directory.
pub struct World {
    pub dir: tempfile::TempDir,
    pub admin: PrivateKeySigner,
    pub chain: Arc<EmbeddedChain>,
    pub stores: Vec<Arc<MemoryStore>>,
    pub nodes: Vec<Arc<dyn Node>>,
    pub custodians: Vec<alloy::primitives::B256>,
    pub part: Arc<LogPart>,
    /// Raw transactions sent, in order.
    pub sent: Vec<Bytes>,
}

/// Node `i`'s directory (its archive head and admin address).
pub fn node_dir(root: &std::path::Path, i: usize) -> std::path::PathBuf {
    root.join(format!("node-{i}"))
}

pub const K: usize = 3;
pub const N: usize = 5;

impl World {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin = PrivateKeySigner::random();
        let chain = Arc::new(
            EmbeddedChain::open(&dir.path().join("chain"), ChainConfig::default(), &admin).unwrap(),
        );
        let mut stores = Vec::new();
        let mut nodes: Vec<Arc<dyn Node>> = Vec::new();
        let mut custodians = Vec::new();
        for i in 0..N {
            let store = Arc::new(MemoryStore::new());
            let key = NodeKey::from_seed(&[i as u8 + 1; 32]);
            let node = LocalNode::new(format!("node {i}"), key, chain.clone(), store.clone())
                .await
                .unwrap()
                .with_archive_dir(&node_dir(dir.path(), i))
                .unwrap();
            custodians.push(node.info().await.unwrap().public_key);
            stores.push(store);
            nodes.push(Arc::new(node));
        }
        Self {
            dir,
            admin,
            chain,
            stores,
            nodes,
            custodians,
            part: Arc::new(LogPart::default()),
            sent: Vec::new(),
        }
    }

    /// Mines `count` transactions (each a new patient registering), `at_once` at a time.
    pub async fn transact(&mut self, count: usize, at_once: usize) {
        let input = Bytes::from(alloy::sol_types::SolCall::abi_encode(
            &ehr_chain::contract::EhrRegistry::registerPatientCall {},
        ));
        let id = self.chain.chain_id();
        let to = Some(self.chain.contract());
        let mut left = count;
        while left > 0 {
            let batch = left.min(at_once);
            left -= batch;
            let raws: Vec<Bytes> = (0..batch)
                .map(|_| sign_tx(&PrivateKeySigner::random(), id, 0, to, input.clone()).unwrap())
                .collect();
            let sends = raws
                .iter()
                .map(|raw| self.chain.send_raw_transaction(raw.clone()));
            for r in futures::future::join_all(sends).await {
                r.unwrap();
            }
            self.sent.extend(raws);
        }
    }

    /// Every block of the chain as stored.
    pub fn blocks(&self) -> Vec<RawBlock> {
        let source = ChainSource(self.chain.clone());
        (0..=self.chain.head_number())
            .map(|n| source.block(n).unwrap().unwrap())
            .collect()
    }

    pub fn config(&self, nodes: Vec<Arc<dyn Node>>, policy: EpochPolicy) -> ArchiveConfig {
        ArchiveConfig {
            chain_id: self.chain.chain_id(),
            threshold: Threshold::new(K, N).unwrap(),
            custodians: self.custodians.clone(),
            nodes,
            admin: self.admin.clone(),
            dir: self.dir.path().join("archive"),
            policy,
        }
    }

    /// An archiver over `nodes` with `policy`, spawned.
    pub fn archiver(&self, nodes: Vec<Arc<dyn Node>>, policy: EpochPolicy) -> ArchiverHandle {
        let part: Arc<dyn StatePart> = self.part.clone();
        Archiver::open(
            self.config(nodes, policy),
            Arc::new(ChainSource(self.chain.clone())),
            vec![part],
        )
        .unwrap()
        .spawn()
    }
}

/// A policy sealing every `bytes` raw bytes, never by age within a test.
pub fn by_size(bytes: usize) -> EpochPolicy {
    EpochPolicy {
        max_bytes: bytes,
        max_age: Duration::from_secs(3600),
    }
}

/// A node nobody listens for (connection refused at once).
pub fn down(i: usize) -> Arc<dyn Node> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    Arc::new(ehr_node::RemoteNode::new(i, &format!("http://127.0.0.1:{port}"), None).unwrap())
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
