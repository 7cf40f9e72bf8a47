//! The embedded chain's block store: blocks and receipts in redb, an embedded ACID store.
//! Each block and its receipts are written in one write transaction (one fsync).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::block::{self, Block, Receipt};
use crate::error::{Error, Result};

const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
const RECEIPTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("receipts");

/// Blocks and receipts by block number.
pub struct BlockStore {
    db: Database,
}

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

impl BlockStore {
    /// Opens (or creates) the store at `path`. A file that is not a valid store is
    /// [`Error::Corrupt`].
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => {
                Error::Corrupt(format!("{}: {why}", path.display()))
            }
            redb::DatabaseError::DatabaseAlreadyOpen => {
                Error::Store(format!("{} is in use by another process", path.display()))
            }
            other => Error::Store(format!("{}: {other}", path.display())),
        })?;
        let store = Self { db };
        // Make sure the tables exist so readers never see "table missing".
        let w = store.db.begin_write().map_err(store_err)?;
        w.open_table(BLOCKS).map_err(store_err)?;
        w.open_table(RECEIPTS).map_err(store_err)?;
        w.commit().map_err(store_err)?;
        Ok(store)
    }

    /// The newest block number, `None` when empty.
    pub fn last_number(&self) -> Result<Option<u64>> {
        let r = self.db.begin_read().map_err(store_err)?;
        let t = r.open_table(BLOCKS).map_err(store_err)?;
        let last = t.last().map_err(store_err)?;
        Ok(last.map(|(k, _)| k.value()))
    }

    /// Appends a block with its encoded receipts, durably (one write transaction).
    pub fn append(&self, block: &Block, receipts: &[u8]) -> Result<()> {
        let n = block.header.number;
        let w = self.db.begin_write().map_err(store_err)?;
        {
            let mut blocks = w.open_table(BLOCKS).map_err(store_err)?;
            blocks
                .insert(n, block.encode().as_slice())
                .map_err(store_err)?;
            let mut rs = w.open_table(RECEIPTS).map_err(store_err)?;
            rs.insert(n, receipts).map_err(store_err)?;
        }
        w.commit().map_err(store_err)
    }

    /// A block and its receipts, decoded; truncated or altered bytes are [`Error::Corrupt`].
    pub fn load(&self, n: u64) -> Result<Option<(Block, Vec<Receipt>)>> {
        let r = self.db.begin_read().map_err(store_err)?;
        let blocks = r.open_table(BLOCKS).map_err(store_err)?;
        let rs = r.open_table(RECEIPTS).map_err(store_err)?;
        let Some(b) = blocks.get(n).map_err(store_err)? else {
            return Ok(None);
        };
        let block = Block::decode(b.value())?;
        let receipts = match rs.get(n).map_err(store_err)? {
            Some(r) => block::decode_receipts(r.value())?,
            None => return Err(Error::Corrupt(format!("block {n} has no receipts"))),
        };
        Ok(Some((block, receipts)))
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
}
