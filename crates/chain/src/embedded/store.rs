//! The embedded chain's store, one redb file (an embedded ACID store): blocks, receipts,
//! the state after the newest block ([`super::state`]), the indexes ([`super::index`]) and
//! which block the state is "after" (number and hash). Each block is written with its
//! receipts, its state changes, its index entries and the new "after" in ONE write
//! transaction (one fsync): a crash leaves the block and its state both or neither.

use std::path::Path;
use std::sync::Arc;

use alloy::primitives::B256;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use revm::state::EvmState;

use super::block::{self, Block, Receipt};
use super::exec::StateDb;
use super::index;
use super::state::{self, CodeCache, StateView};
use crate::error::{Error, Result};

const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
const RECEIPTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("receipts");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// In [`META`]: the block (number ‖ hash) the stored state is the state after.
const STATE_AFTER: &str = "state_after";
/// Headers of the blocks whose body (transactions and receipts) was dropped here because
/// the ledger archive holds it: block number → header bytes.
const PRUNED: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("pruned_headers");
/// In [`META`]: every block below this number (but genesis) has its body in the archive
/// only.
const PRUNED_BELOW: &str = "pruned_below";
/// In [`META`]: the [`PRUNED_BELOW`] the file was last compacted at.
const COMPACTED_AT: &str = "compacted_at";

/// redb's page cache (its default is 1 GiB): the hot state (the contract's slots being
/// read) is small, and memory should not grow with the chain.
const CACHE_BYTES: usize = 64 << 20;

/// Blocks to index per write transaction while migrating an old chain.
const MIGRATE_CHUNK: u64 = 4096;

/// Blocks and receipts by block number, the state and the indexes.
pub struct BlockStore {
    db: Database,
    code: Arc<CodeCache>,
}

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

fn encode_after(number: u64, hash: B256) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&number.to_be_bytes());
    v[8..].copy_from_slice(hash.as_slice());
    v
}

impl BlockStore {
    /// Opens (or creates) the store at `path`. A file that is not a valid store is
    /// [`Error::Corrupt`].
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => {
                    Error::Corrupt(format!("{}: {why}", path.display()))
                }
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    Error::Store(format!("{} is in use by another process", path.display()))
                }
                other => Error::Store(format!("{}: {other}", path.display())),
            })?;
        let store = Self {
            db,
            code: Arc::default(),
        };
        // Make sure the block tables exist so readers never see "table missing". (The state
        // and index tables come with the first block, or with the migration of a chain
        // written before they existed.)
        let w = store.db.begin_write().map_err(store_err)?;
        w.open_table(BLOCKS).map_err(store_err)?;
        w.open_table(RECEIPTS).map_err(store_err)?;
        w.open_table(META).map_err(store_err)?;
        w.open_table(PRUNED).map_err(store_err)?;
        w.commit().map_err(store_err)?;
        Ok(store)
    }

    /// Builds the by-event log index of a chain indexed before it existed (once; a chain
    /// that has it is left alone). Nothing to do for a chain without stored state: its
    /// migration indexes everything.
    pub fn ensure_event_index(&self) -> Result<()> {
        if self.state_after()?.is_none() {
            return Ok(());
        }
        let w = self.db.begin_write().map_err(store_err)?;
        index::build_events(&w)?;
        w.commit().map_err(store_err)
    }

    /// Gives the space pruning freed back to the file system (redb reuses free pages but
    /// does not shrink the file by itself): compacts once after each pruning, at open, when
    /// nothing else reads the file.
    pub fn compact_if_pruned(&mut self) -> Result<()> {
        let pruned = self.pruned_below()?;
        let compacted = {
            let r = self.read()?;
            let t = r.open_table(META).map_err(store_err)?;
            t.get(COMPACTED_AT)
                .map_err(store_err)?
                .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0)
        };
        if pruned <= compacted {
            return Ok(());
        }
        self.db.compact().map_err(store_err)?;
        let w = self.db.begin_write().map_err(store_err)?;
        {
            let mut meta = w.open_table(META).map_err(store_err)?;
            meta.insert(COMPACTED_AT, pruned.to_be_bytes().as_slice())
                .map_err(store_err)?;
        }
        w.commit().map_err(store_err)
    }

    /// Every block below this number but genesis has its body in the archive only.
    pub fn pruned_below(&self) -> Result<u64> {
        let r = self.read()?;
        let t = r.open_table(META).map_err(store_err)?;
        Ok(match t.get(PRUNED_BELOW).map_err(store_err)? {
            Some(v) => u64::from_be_bytes(
                v.value()
                    .try_into()
                    .map_err(|_| Error::Corrupt("the pruning marker is damaged".into()))?,
            ),
            None => 0,
        })
    }

    /// The header of block `n` if its body was pruned.
    pub fn pruned_header(&self, n: u64) -> Result<Option<block::Header>> {
        let r = self.read()?;
        let t = r.open_table(PRUNED).map_err(store_err)?;
        match t.get(n).map_err(store_err)? {
            Some(v) => Ok(Some(block::Header::decode_bytes(v.value())?)),
            None => Ok(None),
        }
    }

    /// Drops the bodies (transactions, receipts) of blocks `1..below`, keeping their headers,
    /// in chunks of blocks per write transaction (a crash leaves a prefix pruned). Genesis
    /// (it names the contract) and the head are never pruned. Returns the blocks pruned.
    pub fn prune_below(&self, below: u64) -> Result<u64> {
        let last = self.last_number()?.unwrap_or(0);
        let below = below.min(last);
        let mut from = self.pruned_below()?.max(1);
        let mut pruned = 0;
        while from < below {
            let to = below.min(from + MIGRATE_CHUNK);
            let w = self.db.begin_write().map_err(store_err)?;
            {
                let mut blocks = w.open_table(BLOCKS).map_err(store_err)?;
                let mut rs = w.open_table(RECEIPTS).map_err(store_err)?;
                let mut headers = w.open_table(PRUNED).map_err(store_err)?;
                for n in from..to {
                    let Some(b) = blocks.remove(n).map_err(store_err)? else {
                        continue;
                    };
                    let block = Block::decode(b.value())?;
                    drop(b);
                    headers
                        .insert(n, block.header.encode().as_slice())
                        .map_err(store_err)?;
                    rs.remove(n).map_err(store_err)?;
                    pruned += 1;
                }
                let mut meta = w.open_table(META).map_err(store_err)?;
                meta.insert(PRUNED_BELOW, to.to_be_bytes().as_slice())
                    .map_err(store_err)?;
            }
            w.commit().map_err(store_err)?;
            from = to;
        }
        Ok(pruned)
    }

    /// A read transaction: a consistent snapshot of blocks, state and indexes.
    pub fn read(&self) -> Result<ReadTransaction> {
        self.db.begin_read().map_err(store_err)
    }

    /// The state as of now (after the newest block written).
    pub fn state(&self) -> Result<StateView> {
        StateView::new(&self.read()?, self.code.clone())
    }

    /// The state in the snapshot `r`.
    pub fn state_in(&self, r: &ReadTransaction) -> Result<StateView> {
        StateView::new(r, self.code.clone())
    }

    /// The newest block number, `None` when empty.
    pub fn last_number(&self) -> Result<Option<u64>> {
        let r = self.read()?;
        let t = r.open_table(BLOCKS).map_err(store_err)?;
        let last = t.last().map_err(store_err)?;
        Ok(last.map(|(k, _)| k.value()))
    }

    /// The block (number, hash) the stored state is after; `None` when no state is stored
    /// (an empty chain, or one written before the state was stored).
    pub fn state_after(&self) -> Result<Option<(u64, B256)>> {
        let r = self.read()?;
        let t = r.open_table(META).map_err(store_err)?;
        let Some(v) = t.get(STATE_AFTER).map_err(store_err)? else {
            return Ok(None);
        };
        let v = v.value();
        if v.len() != 40 || !state::present(&r)? {
            return Err(Error::Corrupt(
                "the stored state's block marker is damaged".into(),
            ));
        }
        Ok(Some((
            u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            B256::from_slice(&v[8..]),
        )))
    }

    /// Appends a block with its receipts, the state changes of its transactions (in order)
    /// and its index entries, and marks the state as after it — durably, in one write
    /// transaction.
    pub fn append(&self, block: &Block, receipts: &[Receipt], states: &[EvmState]) -> Result<()> {
        let n = block.header.number;
        let w = self.db.begin_write().map_err(store_err)?;
        {
            let mut blocks = w.open_table(BLOCKS).map_err(store_err)?;
            blocks
                .insert(n, block.encode().as_slice())
                .map_err(store_err)?;
            let mut rs = w.open_table(RECEIPTS).map_err(store_err)?;
            rs.insert(n, block::encode_receipts(receipts).as_slice())
                .map_err(store_err)?;
            let mut tables = state::StateTables::open(&w)?;
            for s in states {
                tables.write_changes(s)?;
            }
            index::write_block(&w, block, receipts)?;
            let mut meta = w.open_table(META).map_err(store_err)?;
            meta.insert(STATE_AFTER, encode_after(n, block.header.hash()).as_slice())
                .map_err(store_err)?;
        }
        w.commit().map_err(store_err)
    }

    /// Writes the state and indexes of a chain stored before they were: `state` is the
    /// state after block `last` (replayed). Indexes go in chunks of blocks (rewriting an
    /// entry is harmless), the state and its marker last in one transaction, so a crash
    /// part-way leaves a chain that migrates again.
    pub fn migrate(&self, state: &StateDb, last: u64) -> Result<()> {
        let mut from = 0;
        while from <= last {
            let to = last.min(from + MIGRATE_CHUNK - 1);
            let w = self.db.begin_write().map_err(store_err)?;
            index::create(&w)?;
            for n in from..=to {
                let (block, receipts) = self
                    .load(n)?
                    .ok_or_else(|| Error::Corrupt(format!("block {n} is missing")))?;
                index::write_block(&w, &block, &receipts)?;
            }
            w.commit().map_err(store_err)?;
            from = to + 1;
        }
        let head = self
            .block(last)?
            .ok_or_else(|| Error::Corrupt(format!("block {last} is missing")))?;
        let w = self.db.begin_write().map_err(store_err)?;
        state::drop_tables(&w)?;
        state::write_all(&w, state)?;
        {
            let mut meta = w.open_table(META).map_err(store_err)?;
            meta.insert(
                STATE_AFTER,
                encode_after(last, head.header.hash()).as_slice(),
            )
            .map_err(store_err)?;
        }
        w.commit().map_err(store_err)
    }

    /// A block's stored bytes and its receipts' stored bytes, as they are on disk (what the
    /// ledger archive keeps).
    pub fn raw(&self, n: u64) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let r = self.read()?;
        let blocks = r.open_table(BLOCKS).map_err(store_err)?;
        let rs = r.open_table(RECEIPTS).map_err(store_err)?;
        let Some(b) = blocks.get(n).map_err(store_err)? else {
            let pruned = r.open_table(PRUNED).map_err(store_err)?;
            if pruned.get(n).map_err(store_err)?.is_some() {
                return Err(Error::Pruned { block: n });
            }
            return Ok(None);
        };
        let receipts = rs
            .get(n)
            .map_err(store_err)?
            .ok_or_else(|| Error::Corrupt(format!("block {n} has no receipts")))?;
        Ok(Some((b.value().to_vec(), receipts.value().to_vec())))
    }

    /// Writes blocks and receipts as given, without state or indexes (a chain being
    /// restored, which [`migrate`](Self::migrate) completes once replayed). Each is decoded
    /// first: bytes that are not a block or receipts are [`Error::Corrupt`], nothing written.
    pub fn import_raw(&self, blocks: &[(u64, Vec<u8>, Vec<u8>)]) -> Result<()> {
        for (n, b, r) in blocks {
            let block = Block::decode(b).map_err(|e| Error::Corrupt(format!("block {n}: {e}")))?;
            if block.header.number != *n {
                return Err(Error::Corrupt(format!(
                    "block {n} says it is block {}",
                    block.header.number
                )));
            }
            block::decode_receipts(r)
                .map_err(|e| Error::Corrupt(format!("receipts of block {n}: {e}")))?;
        }
        let w = self.db.begin_write().map_err(store_err)?;
        {
            let mut bt = w.open_table(BLOCKS).map_err(store_err)?;
            let mut rt = w.open_table(RECEIPTS).map_err(store_err)?;
            for (n, b, r) in blocks {
                bt.insert(*n, b.as_slice()).map_err(store_err)?;
                rt.insert(*n, r.as_slice()).map_err(store_err)?;
            }
        }
        w.commit().map_err(store_err)
    }

    /// A block and its receipts, decoded; truncated or altered bytes are [`Error::Corrupt`].
    pub fn load(&self, n: u64) -> Result<Option<(Block, Vec<Receipt>)>> {
        load_in(&self.read()?, n)
    }

    /// A block, decoded.
    pub fn block(&self, n: u64) -> Result<Option<Block>> {
        Ok(self.load(n)?.map(|(b, _)| b))
    }

    /// Overwrites a stored block's bytes (tests of tamper detection).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn overwrite_block(&self, n: u64, bytes: &[u8]) -> Result<()> {
        let w = self.db.begin_write().map_err(store_err)?;
        {
            let mut blocks = w.open_table(BLOCKS).map_err(store_err)?;
            blocks.insert(n, bytes).map_err(store_err)?;
        }
        w.commit().map_err(store_err)
    }

    /// Drops the state, the indexes and the state marker: the file as the version before
    /// they were stored wrote it (tests of migration).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn drop_state_and_indexes(&self) -> Result<()> {
        let w = self.db.begin_write().map_err(store_err)?;
        state::drop_tables(&w)?;
        index::drop_tables(&w)?;
        w.delete_table(META).map_err(store_err)?;
        w.commit().map_err(store_err)
    }

    /// Drops the by-event log index: the file as the version before it existed wrote it
    /// (tests of its one-time build).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn drop_event_index(&self) -> Result<()> {
        let w = self.db.begin_write().map_err(store_err)?;
        w.delete_table(index::EVENTS).map_err(store_err)?;
        w.commit().map_err(store_err)
    }

    /// Overwrites one stored storage slot (tests of tamper detection).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn overwrite_slot(
        &self,
        addr: alloy::primitives::Address,
        slot: alloy::primitives::U256,
        value: alloy::primitives::U256,
    ) -> Result<()> {
        let w = self.db.begin_write().map_err(store_err)?;
        {
            let mut t = w.open_table(state::STORAGE).map_err(store_err)?;
            t.insert(state::slot_key(addr, slot), value.to_be_bytes::<32>())
                .map_err(store_err)?;
        }
        w.commit().map_err(store_err)
    }

    /// Overwrites the state marker (tests of tamper detection).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn overwrite_state_after(&self, number: u64, hash: B256) -> Result<()> {
        let w = self.db.begin_write().map_err(store_err)?;
        {
            let mut meta = w.open_table(META).map_err(store_err)?;
            meta.insert(STATE_AFTER, encode_after(number, hash).as_slice())
                .map_err(store_err)?;
        }
        w.commit().map_err(store_err)
    }

    /// Removes a transaction from the transaction index (tests of index checks).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn forget_tx(&self, hash: B256) -> Result<()> {
        let w = self.db.begin_write().map_err(store_err)?;
        {
            let mut t = w.open_table(index::TXS).map_err(store_err)?;
            t.remove(hash.0).map_err(store_err)?;
        }
        w.commit().map_err(store_err)
    }
}

/// A block and its receipts from the snapshot `r`.
pub fn load_in(r: &ReadTransaction, n: u64) -> Result<Option<(Block, Vec<Receipt>)>> {
    let blocks = r.open_table(BLOCKS).map_err(store_err)?;
    let rs = r.open_table(RECEIPTS).map_err(store_err)?;
    let Some(b) = blocks.get(n).map_err(store_err)? else {
        let pruned = r.open_table(PRUNED).map_err(store_err)?;
        if pruned.get(n).map_err(store_err)?.is_some() {
            return Err(Error::Pruned { block: n });
        }
        return Ok(None);
    };
    let block = Block::decode(b.value())?;
    let receipts = match rs.get(n).map_err(store_err)? {
        Some(r) => block::decode_receipts(r.value())?,
        None => return Err(Error::Corrupt(format!("block {n} has no receipts"))),
    };
    Ok(Some((block, receipts)))
}
