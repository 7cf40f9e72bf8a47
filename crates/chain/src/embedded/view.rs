//! What the chain shows a reader that is not the registry: blocks with receipts, lookups by
//! hash, logs by topic, accounts and storage at the head, calls and gas estimates, and raw
//! transactions from outside — everything an Ethereum JSON-RPC server (`eth_api`) needs.
//!
//! "latest", "safe", "finalized" and "pending" all mean the head here: one node, final at
//! once. Calls and estimates run at the pending block's number and timestamp, like the
//! registry's own dry-runs.

use alloy::primitives::{Address, B256, Bytes, Log, TxKind, U256};
use revm::context::TxEnv;
use revm::context::result::{ExecutionResult, ResultGas};
use revm::database_interface::DatabaseRef;

use super::{Block, EmbeddedChain, Receipt, exec, index};
use crate::error::Result;

/// Where a mined transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    /// The block number.
    pub block: u64,
    /// Its position in the block.
    pub index: u32,
}

/// One log with its position, as `eth_getLogs` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The block number.
    pub block: u64,
    /// The position of the transaction in its block.
    pub tx_index: u32,
    /// The position of the log among all logs of its block.
    pub log_index: u32,
    /// The transaction that emitted it.
    pub tx_hash: B256,
    /// The log.
    pub log: Log,
}

/// An account at the head.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AccountView {
    /// Transactions sent (or contracts created, for a contract).
    pub nonce: u64,
    /// Balance in wei (gas is free here: usually zero).
    pub balance: U256,
    /// Runtime code; empty for an externally owned account.
    pub code: Bytes,
}

/// A call or gas estimate at the head (the pending block's number and timestamp).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CallRequest {
    /// The caller; the zero address when not given.
    pub from: Option<Address>,
    /// The callee; `None` runs `input` as creation code.
    pub to: Option<Address>,
    /// Calldata (or creation code).
    pub input: Bytes,
    /// Wei sent along.
    pub value: U256,
    /// Gas limit; the block gas limit when not given (and at most that).
    pub gas: Option<u64>,
}

impl EmbeddedChain {
    /// The gas limit of a block (and of a call).
    pub fn block_gas_limit(&self) -> u64 {
        exec::BLOCK_GAS_LIMIT
    }

    /// A block with its receipts, as stored.
    pub fn block_with_receipts(&self, number: u64) -> Result<Option<(Block, Vec<Receipt>)>> {
        self.shared.load(number)
    }

    /// The number of the block with this hash.
    pub fn block_number_of(&self, hash: B256) -> Result<Option<u64>> {
        index::block_number(&self.shared.store.read()?, hash)
    }

    /// Where the mined transaction with this hash is.
    pub fn tx_location(&self, hash: B256) -> Result<Option<TxLocation>> {
        Ok(index::tx(&self.shared.store.read()?, hash)?.map(|e| e.location))
    }

    /// The logs whose topic0 and topic1 are these, of blocks `from..=to`, in chain order, at
    /// most `limit + 1` (so the caller can tell "more than `limit`"). Indexed: the cost
    /// follows the results, not the range.
    pub fn logs_by_topic1(
        &self,
        topic0: B256,
        topic1: B256,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        let r = self.shared.store.read()?;
        index::logs(
            &r,
            topic0,
            topic1,
            from,
            to,
            limit.saturating_add(1),
            |_| true,
        )
    }

    /// An account at the head (all zero and empty when the chain never touched it).
    pub fn account(&self, addr: Address) -> Result<AccountView> {
        let state = self.shared.state()?;
        let Some(info) = state.basic_ref(addr)? else {
            return Ok(AccountView::default());
        };
        let code = match &info.code {
            Some(code) => code.original_bytes(),
            None => state.code_by_hash_ref(info.code_hash)?.original_bytes(),
        };
        Ok(AccountView {
            nonce: info.nonce,
            balance: info.balance,
            code,
        })
    }

    /// A storage slot at the head (zero when never written).
    pub fn storage_at(&self, addr: Address, slot: U256) -> Result<U256> {
        Ok(self.shared.state()?.storage_ref(addr, slot)?)
    }

    /// The nonce the next transaction of `addr` must carry: the head's, plus the
    /// transactions of `addr` this process has queued and not yet mined.
    pub fn pending_nonce(&self, addr: Address) -> Result<u64> {
        let queued = self.nonces.lock().expect("nonce lock").get(&addr).copied();
        let head = self.account(addr)?.nonce;
        Ok(queued.unwrap_or(0).max(head))
    }

    /// Runs a call at the head (as the pending block); nothing is committed. A revert or
    /// halt is an `Ok` result saying so; a call the state cannot pay for (value above the
    /// balance) is [`Error::Rejected`](crate::Error::Rejected).
    pub fn eth_call(&self, req: &CallRequest) -> Result<ExecutionResult> {
        self.simulate(req, req.gas.unwrap_or(exec::BLOCK_GAS_LIMIT))
    }

    /// Estimates the gas of a call at the head: a revert or halt at the full gas limit
    /// comes back as is; a success comes back with `gas_used` (`tx_gas_used()`) set to the
    /// smallest gas limit with which it succeeds — more than the gas it ends up using when
    /// refunds or the 63/64 rule of nested calls need headroom during execution.
    pub fn estimate_gas(&self, req: &CallRequest) -> Result<ExecutionResult> {
        let cap = req.gas.unwrap_or(exec::BLOCK_GAS_LIMIT);
        let full = self.simulate(req, cap)?;
        if !full.is_success() {
            return Ok(full);
        }
        let used = full.tx_gas_used();
        // [lo] fails (or is below what was used), [hi] succeeds.
        let mut lo = used.saturating_sub(1);
        let mut hi = cap;
        let mut best = full;
        // Most calls succeed with what they used plus the refund and a call stipend's
        // worth: try that first so the bisection starts narrow.
        let optimistic = (used + best.gas().inner_refunded() + 2_300) * 64 / 63;
        if optimistic < hi {
            match self.simulate(req, optimistic)? {
                r if r.is_success() => {
                    hi = optimistic;
                    best = r;
                }
                _ => lo = optimistic,
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.simulate(req, mid)? {
                r if r.is_success() => {
                    hi = mid;
                    best = r;
                }
                _ => lo = mid,
            }
        }
        Ok(with_gas_used(best, hi))
    }

    fn simulate(&self, req: &CallRequest, gas: u64) -> Result<ExecutionResult> {
        let timestamp = self.shared.pending_timestamp();
        let number = self.head_number() + 1;
        let chain_id = self.shared.config.chain_id;
        let tx = TxEnv::builder()
            .caller(req.from.unwrap_or_default())
            .kind(req.to.map_or(TxKind::Create, TxKind::Call))
            .data(req.input.clone())
            .value(req.value)
            .gas_limit(gas.min(exec::BLOCK_GAS_LIMIT))
            .chain_id(Some(chain_id))
            .build_fill();
        let state = self.shared.state()?;
        exec::simulate(&*state, chain_id, number, timestamp, tx)
    }

    /// `eth_sendRawTransaction`: checks the transaction (decoding, signature, chain id;
    /// EIP-1559 or EIP-155 legacy), queues it and returns its hash once it is mined —
    /// reverted or not (a reverted one is mined with a status-0 receipt). One refused
    /// (bad signature, nonce, funds, type, chain id) is [`Error::Rejected`](crate::Error::Rejected) and nothing is
    /// mined.
    pub async fn submit_raw_transaction(&self, raw: Bytes) -> Result<B256> {
        Ok(self.send_raw(raw).await?.receipt.tx_hash)
    }
}

/// `result` with its gas used (as receipts count it) set to `gas`.
fn with_gas_used(result: ExecutionResult, gas: u64) -> ExecutionResult {
    let gas = ResultGas::default().with_total_gas_spent(gas);
    match result {
        ExecutionResult::Success {
            reason,
            logs,
            output,
            ..
        } => ExecutionResult::Success {
            reason,
            gas,
            logs,
            output,
        },
        ExecutionResult::Revert { logs, output, .. } => {
            ExecutionResult::Revert { gas, logs, output }
        }
        ExecutionResult::Halt { reason, logs, .. } => ExecutionResult::Halt { reason, gas, logs },
    }
}
