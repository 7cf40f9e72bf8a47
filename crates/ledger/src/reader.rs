//! Reading single blocks back from the archive: what a pruned server asks for when a query
//! needs an old block's body (`/rpc` blocks and transactions, `chain verify`). The newest
//! head the admin signed and the epoch headers are read once (again when a block is newer
//! than them); the epoch holding the block is fetched from any k nodes and opened, and the
//! last epochs opened are kept. What it returns is checked by the chain against the header
//! it kept, so a node cannot slip in another block.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ehr_crypto::wrap;
use ehr_node::{ArchiveHead, Node};
use tokio::sync::Mutex as AsyncMutex;

use crate::fetch::{fetch_epoch, walk_headers};
use crate::format::{EpochHeader, Payload, payload_digest};
use crate::*;

/// Opened epochs kept.
const CACHED_EPOCHS: usize = 4;

/// Single blocks from the archive on `nodes`.
pub struct ArchiveReader {
    nodes: Vec<Arc<dyn Node>>,
    admin: PrivateKeySigner,
    chain_id: u64,
    /// The epoch headers read so far, from epoch 0.
    headers: AsyncMutex<Vec<EpochHeader>>,
    /// The last epochs opened: (epoch, its blocks).
    opened: Mutex<VecDeque<(u64, Arc<Vec<RawBlock>>)>>,
}

impl ArchiveReader {
    /// A reader of the archive the admin key signs on `nodes` (node order).
    pub fn new(nodes: Vec<Arc<dyn Node>>, admin: PrivateKeySigner, chain_id: u64) -> Self {
        Self {
            nodes,
            admin,
            chain_id,
            headers: AsyncMutex::new(Vec::new()),
            opened: Mutex::new(VecDeque::new()),
        }
    }

    /// Block `n` from the archive; `None` if the archive does not hold it (yet).
    pub async fn block(&self, n: u64) -> Result<Option<RawBlock>> {
        if let Some(b) = self.cached(n) {
            return Ok(Some(b));
        }
        let header = {
            let mut headers = self.headers.lock().await;
            if !holds(&headers, n) {
                *headers = self.read_headers().await?;
            }
            match headers.iter().find(|h| {
                h.block_count > 0 && (h.first_block..h.first_block + h.block_count).contains(&n)
            }) {
                Some(h) => h.clone(),
                None => return Ok(None),
            }
        };
        let order: Vec<usize> = (0..self.nodes.len()).collect();
        let (secret, public) = wrap::generate_keypair(&mut ehr_crypto::rng());
        let e = header.epoch;
        let f = fetch_epoch(
            &self.nodes,
            &order,
            &self.admin,
            &secret,
            public,
            header.clone(),
        )
        .await;
        let plain = f.outcome.map_err(|s| Error::NotEnough {
            shortfalls: vec![s],
            problems: f.report.problems.clone(),
        })?;
        if payload_digest(&plain) != header.payload_digest {
            return Err(Error::Invalid(format!(
                "epoch {e}: the payload does not match its header's digest"
            )));
        }
        let payload = Payload::decode(&plain)?;
        if payload.chain_id != self.chain_id
            || payload.epoch != e
            || payload.first_block != header.first_block
            || payload.blocks.len() as u64 != header.block_count
        {
            return Err(Error::Invalid(format!(
                "epoch {e}: the payload does not match its header"
            )));
        }
        let blocks = Arc::new(payload.blocks);
        let found = blocks.iter().find(|b| b.number == n).cloned();
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        opened.push_back((e, blocks));
        while opened.len() > CACHED_EPOCHS {
            opened.pop_front();
        }
        Ok(found)
    }

    fn cached(&self, n: u64) -> Option<RawBlock> {
        let opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        opened
            .iter()
            .flat_map(|(_, blocks)| blocks.iter())
            .find(|b| b.number == n)
            .cloned()
    }

    /// The headers from epoch 0 to the newest head the admin signed among the nodes.
    async fn read_headers(&self) -> Result<Vec<EpochHeader>> {
        let answers = futures::future::join_all(self.nodes.iter().map(|n| n.archive_head())).await;
        let admin = self.admin.address();
        let head: Option<ArchiveHead> = answers
            .into_iter()
            .filter_map(|a| a.ok())
            .filter(|h| h.chain_id == self.chain_id && h.signer().ok() == Some(admin))
            .max_by_key(|h| (h.epoch, h.last_block.map_or(0, |b| b + 1)));
        let Some(head) = head else {
            return Err(Error::NoHead {
                admin,
                problems: Vec::new(),
            });
        };
        let order: Vec<usize> = (0..self.nodes.len()).collect();
        let mut problems = Vec::new();
        walk_headers(&self.nodes, &order, self.chain_id, &head, &mut problems).await
    }
}

fn holds(headers: &[EpochHeader], n: u64) -> bool {
    headers
        .last()
        .is_some_and(|h| h.first_block + h.block_count > n)
}
