//! The chain's blocks, transactions, receipts and logs in the shapes Ethereum clients read,
//! built with alloy's RPC types so field names and encodings are the standard ones.
//!
//! What is not Ethereum's: `hash` is keccak256 of this chain's own header encoding;
//! `stateRoot` is its running state hash, `transactionsRoot`/`receiptsRoot` its own hashes
//! (none is a Merkle-Patricia root); base fee and gas prices are 0 (gas is free); the
//! fields of proof of work and withdrawals are zero or absent.

use alloy::consensus::transaction::Recovered;
use alloy::consensus::{
    EMPTY_OMMER_ROOT_HASH, Eip658Value, Receipt as ConsensusReceipt, ReceiptEnvelope,
    ReceiptWithBloom, Transaction as _, TxEnvelope,
};
use alloy::eips::eip2718::{Decodable2718, Typed2718 as _};
use alloy::primitives::{Address, B64, B256, Bytes, U256, logs_bloom};
use alloy::rpc::types::{
    Block as RpcBlock, BlockTransactions, Header as RpcHeader, Log as RpcLog,
    Transaction as RpcTransaction, TransactionReceipt,
};

use super::{RpcError, code};
use crate::embedded::{Block, EmbeddedChain, Receipt};

/// A mined block with its receipts and decoded transactions: everything the block,
/// transaction, receipt and log methods show of it.
pub(crate) struct MinedBlock {
    block: Block,
    receipts: Vec<Receipt>,
    txs: Vec<TxEnvelope>,
    hash: B256,
    gas_limit: u64,
}

impl MinedBlock {
    /// Block `n`, if mined.
    pub(crate) fn load(chain: &EmbeddedChain, n: u64) -> Result<Option<Self>, RpcError> {
        let Some((block, receipts)) = chain.block_with_receipts(n)? else {
            return Ok(None);
        };
        let txs = block
            .transactions
            .iter()
            .map(|raw| {
                TxEnvelope::decode_2718(&mut &raw[..]).map_err(|e| {
                    RpcError::new(
                        code::INTERNAL_ERROR,
                        format!("internal error: block {n} holds an undecodable transaction: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if txs.len() != receipts.len() {
            return Err(RpcError::new(
                code::INTERNAL_ERROR,
                format!("internal error: block {n} has not one receipt per transaction"),
            ));
        }
        Ok(Some(Self {
            hash: block.header.hash(),
            block,
            receipts,
            txs,
            gas_limit: chain.block_gas_limit(),
        }))
    }

    /// The block number.
    pub(crate) fn number(&self) -> u64 {
        self.block.header.number
    }

    /// The number of transactions.
    pub(crate) fn len(&self) -> usize {
        self.txs.len()
    }

    /// The header, as `eth_getBlockBy*` shows it.
    fn header(&self) -> RpcHeader {
        let h = &self.block.header;
        let inner = alloy::consensus::Header {
            parent_hash: h.parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: Address::ZERO,
            state_root: h.state_hash,
            transactions_root: h.transactions_root,
            receipts_root: h.receipts_root,
            logs_bloom: logs_bloom(self.receipts.iter().flat_map(|r| &r.logs)),
            difficulty: U256::ZERO,
            number: h.number,
            gas_limit: self.gas_limit,
            gas_used: h.gas_used,
            timestamp: h.timestamp,
            extra_data: Bytes::new(),
            mix_hash: B256::ZERO,
            nonce: B64::ZERO,
            base_fee_per_gas: Some(0),
            withdrawals_root: None,
            blob_gas_used: None,
            excess_blob_gas: None,
            parent_beacon_block_root: None,
            requests_hash: None,
            ..Default::default()
        };
        RpcHeader {
            hash: self.hash,
            inner,
            total_difficulty: Some(U256::ZERO),
            size: Some(U256::from(self.block.encode().len())),
        }
    }

    /// The block, with transaction hashes or (`full`) whole transactions.
    pub(crate) fn to_rpc(&self, full: bool) -> RpcBlock {
        let transactions = if full {
            BlockTransactions::Full((0..self.len()).map(|i| self.transaction(i)).collect())
        } else {
            BlockTransactions::Hashes(self.receipts.iter().map(|r| r.tx_hash).collect())
        };
        RpcBlock {
            header: self.header(),
            uncles: Vec::new(),
            transactions,
            withdrawals: None,
        }
    }

    /// Transaction `i` of the block.
    pub(crate) fn transaction(&self, i: usize) -> RpcTransaction {
        let tx = self.txs[i].clone();
        let price = tx.effective_gas_price(Some(0));
        RpcTransaction {
            inner: Recovered::new_unchecked(tx, self.receipts[i].from),
            block_hash: Some(self.hash),
            block_number: Some(self.number()),
            transaction_index: Some(i as u64),
            effective_gas_price: Some(price),
            block_timestamp: Some(self.block.header.timestamp),
        }
    }

    /// The position of the transaction with this hash.
    pub(crate) fn index_of(&self, hash: B256) -> Option<usize> {
        self.receipts.iter().position(|r| r.tx_hash == hash)
    }

    /// The receipts of the whole block.
    pub(crate) fn receipts(&self) -> Vec<TransactionReceipt> {
        let mut out = Vec::with_capacity(self.len());
        let (mut cumulative, mut first_log) = (0, 0);
        for i in 0..self.len() {
            cumulative += self.receipts[i].gas_used;
            out.push(self.receipt_at(i, cumulative, first_log));
            first_log += self.receipts[i].logs.len();
        }
        out
    }

    /// The receipt of transaction `i`.
    pub(crate) fn receipt(&self, i: usize) -> TransactionReceipt {
        let cumulative = self.receipts[..=i].iter().map(|r| r.gas_used).sum();
        let first_log = self.receipts[..i].iter().map(|r| r.logs.len()).sum();
        self.receipt_at(i, cumulative, first_log)
    }

    fn receipt_at(&self, i: usize, cumulative: u64, first_log: usize) -> TransactionReceipt {
        let r = &self.receipts[i];
        let tx = &self.txs[i];
        let logs: Vec<RpcLog> = r
            .logs
            .iter()
            .enumerate()
            .map(|(j, log)| self.log(i, first_log + j, log.clone()))
            .collect();
        let with_bloom = ReceiptWithBloom {
            logs_bloom: logs_bloom(&r.logs),
            receipt: ConsensusReceipt {
                status: Eip658Value::Eip658(r.success),
                cumulative_gas_used: cumulative,
                logs,
            },
        };
        let ty = alloy::consensus::TxType::try_from(tx.ty()).unwrap_or_default();
        TransactionReceipt {
            inner: ReceiptEnvelope::from_typed(ty, with_bloom),
            transaction_hash: r.tx_hash,
            transaction_index: Some(i as u64),
            block_hash: Some(self.hash),
            block_number: Some(self.number()),
            gas_used: r.gas_used,
            effective_gas_price: tx.effective_gas_price(Some(0)),
            blob_gas_used: None,
            blob_gas_price: None,
            from: r.from,
            to: tx.to(),
            contract_address: r.contract_address,
        }
    }

    /// A log of this block, at its positions.
    pub(crate) fn log(
        &self,
        tx_index: usize,
        log_index: usize,
        log: alloy::primitives::Log,
    ) -> RpcLog {
        let at = LogBlock {
            hash: self.hash,
            number: self.number(),
            timestamp: self.block.header.timestamp,
        };
        at.log(self.receipts[tx_index].tx_hash, tx_index, log_index, log)
    }
}

/// A number as a `0x` hex quantity of any width.
pub(crate) fn u256_quantity(n: U256) -> serde_json::Value {
    serde_json::Value::String(format!("{n:#x}"))
}

/// What a log shows of its block.
#[derive(Clone, Copy)]
pub(crate) struct LogBlock {
    pub(crate) hash: B256,
    pub(crate) number: u64,
    pub(crate) timestamp: u64,
}

impl LogBlock {
    /// Block `n`'s, if mined (its header only: no receipts, no transactions decoded).
    pub(crate) fn load(chain: &EmbeddedChain, n: u64) -> Result<Option<Self>, RpcError> {
        Ok(chain.block(n)?.map(|b| Self {
            hash: b.header.hash(),
            number: n,
            timestamp: b.header.timestamp,
        }))
    }

    /// A log of this block, at its positions.
    pub(crate) fn log(
        &self,
        tx_hash: B256,
        tx_index: usize,
        log_index: usize,
        log: alloy::primitives::Log,
    ) -> RpcLog {
        RpcLog {
            inner: log,
            block_hash: Some(self.hash),
            block_number: Some(self.number),
            block_timestamp: Some(self.timestamp),
            transaction_hash: Some(tx_hash),
            transaction_index: Some(tx_index as u64),
            log_index: Some(log_index as u64),
            removed: false,
        }
    }
}
