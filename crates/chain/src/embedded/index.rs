//! The chain's indexes, in redb beside the blocks and written in each block's write
//! transaction: transaction hash → position, block hash → number, the logs by (topic0,
//! topic1) — the registry's queries name both (a record, a patient), so a query reads only
//! its own logs, and each entry carries its log so no block is decoded to answer it — and
//! the logs by topic0 alone (pointing into the first), for the queries that name only the
//! event. Every registry query is answered from the indexes, so none needs a block body:
//! a pruned chain answers them as before.

use alloy::primitives::{Address, B256, Bytes, Log, LogData};
use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};

use super::block::{Block, Receipt};
use super::view::{LogEntry, TxLocation};
use crate::error::{Error, Result};

/// Transaction hash → block (8 bytes) ‖ index in the block (4) ‖ success (1).
pub(super) const TXS: TableDefinition<'_, [u8; 32], [u8; 13]> = TableDefinition::new("index_txs");
/// Block hash → number.
pub(super) const BLOCK_HASHES: TableDefinition<'_, [u8; 32], u64> =
    TableDefinition::new("index_block_hashes");
/// topic0 ‖ topic1 ‖ block (8) ‖ log index in the block (4) → tx index (4) ‖ tx hash (32) ‖
/// the log (address, topics, data).
pub(super) const LOGS: TableDefinition<'_, [u8; 76], &[u8]> = TableDefinition::new("index_logs");

/// topic0 ‖ block (8) ‖ log index in the block (4) → topic1: the [`LOGS`] entry of every
/// log of an event, in chain order.
pub(super) const EVENTS: TableDefinition<'_, [u8; 44], [u8; 32]> =
    TableDefinition::new("index_events");

fn event_key(t0: B256, block: u64, log_index: u32) -> [u8; 44] {
    let mut k = [0u8; 44];
    k[..32].copy_from_slice(t0.as_slice());
    k[32..40].copy_from_slice(&block.to_be_bytes());
    k[40..].copy_from_slice(&log_index.to_be_bytes());
    k
}

/// The [`EVENTS`] entry of a [`LOGS`] key.
fn event_entry(log_key: &[u8; 76]) -> ([u8; 44], [u8; 32]) {
    let mut k = [0u8; 44];
    k[..32].copy_from_slice(&log_key[..32]);
    k[32..].copy_from_slice(&log_key[64..]);
    let t1: [u8; 32] = log_key[32..64].try_into().expect("32 bytes");
    (k, t1)
}

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// A mined transaction's position and outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxEntry {
    /// Where it is.
    pub location: TxLocation,
    /// Whether it succeeded.
    pub success: bool,
}

fn encode_tx(block: u64, index: u32, success: bool) -> [u8; 13] {
    let mut v = [0u8; 13];
    v[..8].copy_from_slice(&block.to_be_bytes());
    v[8..12].copy_from_slice(&index.to_be_bytes());
    v[12] = success as u8;
    v
}

fn decode_tx(v: &[u8; 13]) -> TxEntry {
    TxEntry {
        location: TxLocation {
            block: u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            index: u32::from_be_bytes(v[8..12].try_into().expect("4 bytes")),
        },
        success: v[12] == 1,
    }
}

fn log_key(t0: B256, t1: B256, block: u64, log_index: u32) -> [u8; 76] {
    let mut k = [0u8; 76];
    k[..32].copy_from_slice(t0.as_slice());
    k[32..64].copy_from_slice(t1.as_slice());
    k[64..72].copy_from_slice(&block.to_be_bytes());
    k[72..].copy_from_slice(&log_index.to_be_bytes());
    k
}

fn encode_log_value(tx_index: u32, tx_hash: B256, log: &Log) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 32 + 20 + 1 + 32 * 4 + 4 + log.data.data.len());
    out.extend_from_slice(&tx_index.to_be_bytes());
    out.extend_from_slice(tx_hash.as_slice());
    out.extend_from_slice(log.address.as_slice());
    out.push(log.topics().len() as u8);
    for t in log.topics() {
        out.extend_from_slice(t.as_slice());
    }
    out.extend_from_slice(&(log.data.data.len() as u32).to_be_bytes());
    out.extend_from_slice(&log.data.data);
    out
}

fn decode_log_entry(k: &[u8; 76], v: &[u8]) -> Result<LogEntry> {
    let bad = || Error::Corrupt("a log index entry does not decode".into());
    let block = u64::from_be_bytes(k[64..72].try_into().expect("8 bytes"));
    let log_index = u32::from_be_bytes(k[72..].try_into().expect("4 bytes"));
    let take = |at: usize, n: usize| v.get(at..at + n).ok_or_else(bad);
    let tx_index = u32::from_be_bytes(take(0, 4)?.try_into().expect("4 bytes"));
    let tx_hash = B256::from_slice(take(4, 32)?);
    let address = Address::from_slice(take(36, 20)?);
    let nt = take(56, 1)?[0] as usize;
    let mut at = 57;
    let mut topics = Vec::with_capacity(nt);
    for _ in 0..nt {
        topics.push(B256::from_slice(take(at, 32)?));
        at += 32;
    }
    let len = u32::from_be_bytes(take(at, 4)?.try_into().expect("4 bytes")) as usize;
    at += 4;
    let data = Bytes::copy_from_slice(take(at, len)?);
    if at + len != v.len() {
        return Err(bad());
    }
    let data = LogData::new(topics, data).ok_or_else(bad)?;
    Ok(LogEntry {
        block,
        tx_index,
        log_index,
        tx_hash,
        log: Log { address, data },
    })
}

/// The index entries of one block's logs: (key, value), in log order.
fn log_entries(block: &Block, receipts: &[Receipt]) -> Vec<([u8; 76], Vec<u8>)> {
    let number = block.header.number;
    let mut out = Vec::new();
    let mut log_index = 0u32;
    for (tx_index, r) in receipts.iter().enumerate() {
        for log in &r.logs {
            let topics = log.topics();
            if let (Some(t0), Some(t1)) = (topics.first(), topics.get(1)) {
                out.push((
                    log_key(*t0, *t1, number, log_index),
                    encode_log_value(tx_index as u32, r.tx_hash, log),
                ));
            }
            log_index += 1;
        }
    }
    out
}

/// Indexes one block (its hash, transactions and logs) in the write transaction `w`.
pub fn write_block(w: &WriteTransaction, block: &Block, receipts: &[Receipt]) -> Result<()> {
    let number = block.header.number;
    let mut hashes = w.open_table(BLOCK_HASHES).map_err(store_err)?;
    hashes
        .insert(block.header.hash().0, number)
        .map_err(store_err)?;
    let mut txs = w.open_table(TXS).map_err(store_err)?;
    for (i, r) in receipts.iter().enumerate() {
        txs.insert(r.tx_hash.0, encode_tx(number, i as u32, r.success))
            .map_err(store_err)?;
    }
    let mut logs = w.open_table(LOGS).map_err(store_err)?;
    let mut events = w.open_table(EVENTS).map_err(store_err)?;
    for (k, v) in log_entries(block, receipts) {
        logs.insert(k, v.as_slice()).map_err(store_err)?;
        let (ek, t1) = event_entry(&k);
        events.insert(ek, t1).map_err(store_err)?;
    }
    Ok(())
}

/// Builds the by-event index from the log index (a chain indexed before it existed); a
/// chain that has it is left as it is. Returns the entries written.
pub fn build_events(w: &WriteTransaction) -> Result<u64> {
    let logs = w.open_table(LOGS).map_err(store_err)?;
    let mut events = w.open_table(EVENTS).map_err(store_err)?;
    if events.len().map_err(store_err)? == logs.len().map_err(store_err)? {
        return Ok(0);
    }
    let mut written = 0;
    for entry in logs.iter().map_err(store_err)? {
        let (k, _) = entry.map_err(store_err)?;
        let (ek, t1) = event_entry(&k.value());
        events.insert(ek, t1).map_err(store_err)?;
        written += 1;
    }
    Ok(written)
}

/// Logs of the event `t0` in blocks `from..=to`, in chain order, while `keep` says so.
pub fn logs_of_event(
    r: &ReadTransaction,
    t0: B256,
    from: u64,
    to: u64,
    mut keep: impl FnMut(&LogEntry) -> bool,
) -> Result<Vec<LogEntry>> {
    let events = r.open_table(EVENTS).map_err(store_err)?;
    let logs = r.open_table(LOGS).map_err(store_err)?;
    let mut out = Vec::new();
    if from > to {
        return Ok(out);
    }
    let range = events
        .range(event_key(t0, from, 0)..=event_key(t0, to, u32::MAX))
        .map_err(store_err)?;
    for entry in range {
        let (k, t1) = entry.map_err(store_err)?;
        let k = k.value();
        let block = u64::from_be_bytes(k[32..40].try_into().expect("8 bytes"));
        let log_index = u32::from_be_bytes(k[40..].try_into().expect("4 bytes"));
        let key = log_key(t0, B256::from(t1.value()), block, log_index);
        let v = logs
            .get(key)
            .map_err(store_err)?
            .ok_or_else(|| Error::Corrupt("the event index points at no log".into()))?;
        let e = decode_log_entry(&key, v.value())?;
        if keep(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Creates the index tables (empty) so readers never see "table missing".
pub fn create(w: &WriteTransaction) -> Result<()> {
    w.open_table(TXS).map_err(store_err)?;
    w.open_table(BLOCK_HASHES).map_err(store_err)?;
    w.open_table(LOGS).map_err(store_err)?;
    w.open_table(EVENTS).map_err(store_err)?;
    Ok(())
}

/// A mined transaction by hash.
pub fn tx(r: &ReadTransaction, hash: B256) -> Result<Option<TxEntry>> {
    let t = r.open_table(TXS).map_err(store_err)?;
    Ok(t.get(hash.0)
        .map_err(store_err)?
        .map(|v| decode_tx(&v.value())))
}

/// A block number by hash.
pub fn block_number(r: &ReadTransaction, hash: B256) -> Result<Option<u64>> {
    let t = r.open_table(BLOCK_HASHES).map_err(store_err)?;
    Ok(t.get(hash.0).map_err(store_err)?.map(|v| v.value()))
}

/// Logs with this (topic0, topic1), blocks `from..=to`, in chain order, while `keep` says
/// so; at most `max` of those it keeps.
pub fn logs(
    r: &ReadTransaction,
    t0: B256,
    t1: B256,
    from: u64,
    to: u64,
    max: usize,
    mut keep: impl FnMut(&LogEntry) -> bool,
) -> Result<Vec<LogEntry>> {
    let t = r.open_table(LOGS).map_err(store_err)?;
    let mut out = Vec::new();
    if from > to || max == 0 {
        return Ok(out);
    }
    let range = t
        .range(log_key(t0, t1, from, 0)..=log_key(t0, t1, to, u32::MAX))
        .map_err(store_err)?;
    for entry in range {
        let (k, v) = entry.map_err(store_err)?;
        let e = decode_log_entry(&k.value(), v.value())?;
        if keep(&e) {
            out.push(e);
            if out.len() >= max {
                break;
            }
        }
    }
    Ok(out)
}

/// Checks one block's index entries against the block; the first difference, said plainly.
pub fn check_block(
    r: &ReadTransaction,
    block: &Block,
    receipts: &[Receipt],
) -> Result<Option<String>> {
    let n = block.header.number;
    if block_number(r, block.header.hash())? != Some(n) {
        return Ok(Some(format!(
            "the block hash index does not lead to block {n}"
        )));
    }
    for (i, rc) in receipts.iter().enumerate() {
        let want = TxEntry {
            location: TxLocation {
                block: n,
                index: i as u32,
            },
            success: rc.success,
        };
        let got = tx(r, rc.tx_hash)?;
        if got != Some(want) {
            return Ok(Some(format!(
                "the transaction index has {got:?} for transaction {} (block {n}, index {i}, \
                 success {})",
                rc.tx_hash, rc.success
            )));
        }
    }
    let t = r.open_table(LOGS).map_err(store_err)?;
    let events = r.open_table(EVENTS).map_err(store_err)?;
    for (k, v) in log_entries(block, receipts) {
        let log_index = u32::from_be_bytes(k[72..].try_into().expect("4 bytes"));
        match t.get(k).map_err(store_err)? {
            Some(got) if got.value() == v.as_slice() => {}
            _ => {
                return Ok(Some(format!(
                    "the log index lacks or alters log {log_index} of block {n}"
                )));
            }
        }
        let (ek, t1) = event_entry(&k);
        if events.get(ek).map_err(store_err)?.map(|v| v.value()) != Some(t1) {
            return Ok(Some(format!(
                "the event index lacks or alters log {log_index} of block {n}"
            )));
        }
    }
    Ok(None)
}

/// Entry counts of the indexes (blocks, transactions, logs, logs by event), to check that
/// nothing is indexed that the blocks do not have.
pub fn counts(r: &ReadTransaction) -> Result<(u64, u64, u64, u64)> {
    let b = r.open_table(BLOCK_HASHES).map_err(store_err)?;
    let t = r.open_table(TXS).map_err(store_err)?;
    let l = r.open_table(LOGS).map_err(store_err)?;
    let e = r.open_table(EVENTS).map_err(store_err)?;
    Ok((
        b.len().map_err(store_err)?,
        t.len().map_err(store_err)?,
        l.len().map_err(store_err)?,
        e.len().map_err(store_err)?,
    ))
}

/// How many log index entries a block's receipts make.
pub fn log_count(block: &Block, receipts: &[Receipt]) -> u64 {
    log_entries(block, receipts).len() as u64
}

/// Drops the index tables (tests of migration).
#[cfg(any(test, feature = "test-utils"))]
pub fn drop_tables(w: &WriteTransaction) -> Result<()> {
    w.delete_table(TXS).map_err(store_err)?;
    w.delete_table(BLOCK_HASHES).map_err(store_err)?;
    w.delete_table(LOGS).map_err(store_err)?;
    w.delete_table(EVENTS).map_err(store_err)?;
    Ok(())
}
