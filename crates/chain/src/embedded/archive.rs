//! What the ledger archive needs of the embedded chain: a block's stored bytes
//! ([`EmbeddedChain::raw_block`]), a chain rebuilt from archived blocks
//! ([`EmbeddedChain::restore`]), and pruning — old bodies dropped here and read back from a
//! [`BodySource`], checked against the header kept.

use super::*;

/// A block's stored bytes and its receipts' stored bytes.
pub type RawBody = (Vec<u8>, Vec<u8>);

/// Where a pruned block's body comes from: the ledger archive on the nodes. Whatever it
/// answers is checked against the header kept here (its hash, transactions root and
/// receipts root) before it is used, so the archive need not be trusted.
pub trait BodySource: Send + Sync {
    /// Block `n`'s stored bytes and its receipts' stored bytes (as
    /// [`EmbeddedChain::raw_block`] gave them before pruning); `None` if the archive lacks it.
    fn body(&self, n: u64) -> std::result::Result<Option<RawBody>, String>;
}

impl Shared {
    /// Block `n` with its receipts: from the store, or — pruned — from the body source,
    /// checked against the header kept here.
    pub(super) fn load(&self, n: u64) -> Result<Option<(Block, Vec<Receipt>)>> {
        match self.store.load(n) {
            Err(Error::Pruned { block }) => {
                let source = self.bodies.read().expect("bodies lock").clone();
                let Some(source) = source else {
                    return Err(Error::Pruned { block });
                };
                let (b, r) = checked_body(&self.store, source.as_ref(), n)?;
                Ok(Some((Block::decode(&b)?, block::decode_receipts(&r)?)))
            }
            other => other,
        }
    }
}

/// A pruned block's raw body from `source`, checked against the header `store` kept.
pub(super) fn checked_body(
    store: &BlockStore,
    source: &dyn BodySource,
    n: u64,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let header = store
        .pruned_header(n)?
        .ok_or_else(|| Error::Corrupt(format!("block {n} is pruned but its header is not kept")))?;
    let bad = |reason: String| Error::Tampered { block: n, reason };
    let (b, r) = source
        .body(n)
        .map_err(|e| Error::Store(format!("block {n} from the ledger archive: {e}")))?
        .ok_or_else(|| bad("the ledger archive does not hold this pruned block".into()))?;
    let block = Block::decode(&b).map_err(|e| bad(format!("the archive's copy: {e}")))?;
    if block.header != header {
        return Err(bad(
            "the archive's copy has another header than the one kept here".into(),
        ));
    }
    let hashes: Vec<B256> = block
        .transactions
        .iter()
        .map(alloy::primitives::keccak256)
        .collect();
    if block::transactions_root(&hashes) != header.transactions_root {
        return Err(bad(
            "the archive's transactions do not match the header".into()
        ));
    }
    block::decode_receipts(&r).map_err(|e| bad(format!("the archive's receipts: {e}")))?;
    if alloy::primitives::keccak256(&r) != header.receipts_root {
        return Err(bad("the archive's receipts do not match the header".into()));
    }
    Ok((b, r))
}

impl EmbeddedChain {
    /// Rebuilds a chain in `dir` from archived blocks (block bytes and receipt bytes, as
    /// [`raw_block`](Self::raw_block) gives them, from block 0 in order) and checks every one
    /// as [`verify`](Self::verify) does: hash links, signatures, re-execution to the same
    /// receipts and state hash. Only then is the chain file put in place (a rename), with its
    /// state and indexes, so [`open`](Self::open) opens it at once; a block that does not
    /// check out is [`Error::Tampered`] naming it, and nothing is left behind. `dir` must hold
    /// no chain yet.
    pub fn restore(
        dir: &Path,
        chain_id: u64,
        blocks: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<VerifyReport> {
        let path = dir.join(CHAIN_FILE);
        if path.exists() {
            return Err(Error::Store(format!(
                "{} already holds a chain; restore writes only a new one",
                path.display()
            )));
        }
        std::fs::create_dir_all(dir)?;
        let partial = dir.join(format!("{CHAIN_FILE}.restoring"));
        match std::fs::remove_file(&partial) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let result = (|| {
            let store = BlockStore::open(&partial)?;
            let mut chunk = Vec::new();
            for (next, (block, receipts)) in (0u64..).zip(blocks) {
                chunk.push((next, block, receipts));
                if chunk.len() == 4096 {
                    store.import_raw(&chunk)?;
                    chunk.clear();
                }
            }
            store.import_raw(&chunk)?;
            let loaded = replay(&store, chain_id, None, None)?
                .ok_or_else(|| Error::Corrupt("the archive holds no blocks".into()))?;
            store.migrate(&loaded.state, loaded.head.number)?;
            Ok(loaded.report)
        })();
        match result {
            Ok(report) => {
                std::fs::rename(&partial, &path)?;
                std::fs::File::open(dir)?.sync_all()?;
                Ok(report)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    /// Block `number`'s stored bytes and its receipts' stored bytes (what the ledger archive
    /// keeps; [`restore`](Self::restore) takes them back).
    pub fn raw_block(&self, number: u64) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        match self.shared.store.raw(number) {
            Err(Error::Pruned { block }) => {
                let source = self.shared.bodies.read().expect("bodies lock").clone();
                match source {
                    Some(source) => Ok(Some(checked_body(
                        &self.shared.store,
                        source.as_ref(),
                        block,
                    )?)),
                    None => Err(Error::Pruned { block }),
                }
            }
            other => other,
        }
    }

    /// Where pruned blocks' bodies come from from now on (the ledger archive).
    pub fn set_body_source(&self, source: Arc<dyn BodySource>) {
        *self.shared.bodies.write().expect("bodies lock") = Some(source);
    }

    /// Drops the bodies (transactions and receipts) of blocks `1..below` — never genesis,
    /// never the head — keeping their headers, the state and every index: the registry's
    /// queries answer as before, and anything that needs a body (a block or transaction by
    /// `/rpc`, `verify`) reads it from the [`BodySource`]. The caller prunes only what the
    /// ledger archive holds. Returns the blocks pruned now.
    pub fn prune_below(&self, below: u64) -> Result<u64> {
        self.shared.store.prune_below(below)
    }

    /// Every block below this number but genesis has its body in the archive only.
    pub fn pruned_below(&self) -> Result<u64> {
        self.shared.store.pruned_below()
    }
}
