//! One method call: parameters in, the chain's view API, a result (or a standard error) out.

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::rpc::types::{FeeHistory, Filter, TransactionRequest};
use alloy::sol_types::{Revert, SolError};
use revm::context::result::ExecutionResult;
use serde_json::{Value, json};

use super::format::{MinedBlock, u256_quantity};
use super::params::{Params, at_head, block_of, number_of};
use super::{Inner, RpcError, code, quantity};
use crate::embedded::CallRequest;

/// The most blocks one `eth_feeHistory` reports (geth's bound too).
const MAX_FEE_HISTORY: u64 = 1024;

fn to_json<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v)
        .map_err(|e| RpcError::new(code::INTERNAL_ERROR, format!("internal error: {e}")))
}

impl Inner {
    /// Every method but `eth_sendRawTransaction` (see [`Self::send_raw_transaction`]).
    pub(crate) fn call(&self, method: &str, p: Params) -> Result<Value, RpcError> {
        let chain = &*self.chain;
        let head = chain.head_number();
        match method {
            "eth_chainId" => Ok(quantity(chain.chain_id())),
            "net_version" => Ok(Value::String(chain.chain_id().to_string())),
            "net_listening" => Ok(Value::Bool(true)),
            "web3_clientVersion" => Ok(Value::String(format!(
                "SecureEHR/v{}/embedded",
                env!("CARGO_PKG_VERSION")
            ))),
            // One node, final at once: never syncing.
            "eth_syncing" => Ok(Value::Bool(false)),
            // This server holds no keys.
            "eth_accounts" => Ok(json!([])),
            "eth_blockNumber" => Ok(quantity(head)),
            "eth_getBlockByNumber" => {
                p.at_most(2)?;
                let tag: BlockNumberOrTag = p.get(0, "block number or tag")?;
                let full = p.opt(1, "full transactions")?.unwrap_or(false);
                let n = number_of(tag, head);
                self.block_json(Some(n).filter(|&n| n <= head), full)
            }
            "eth_getBlockByHash" => {
                p.at_most(2)?;
                let hash: B256 = p.get(0, "block hash")?;
                let full = p.opt(1, "full transactions")?.unwrap_or(false);
                self.block_json(chain.block_number_of(hash)?, full)
            }
            "eth_getBlockTransactionCountByNumber" => {
                p.at_most(1)?;
                let tag: BlockNumberOrTag = p.get(0, "block number or tag")?;
                let n = Some(number_of(tag, head)).filter(|&n| n <= head);
                self.tx_count_json(n)
            }
            "eth_getBlockTransactionCountByHash" => {
                p.at_most(1)?;
                let hash: B256 = p.get(0, "block hash")?;
                self.tx_count_json(chain.block_number_of(hash)?)
            }
            "eth_getTransactionByHash" => {
                p.at_most(1)?;
                let hash: B256 = p.get(0, "transaction hash")?;
                match self.find_tx(hash)? {
                    Some((block, i)) => to_json(block.transaction(i)),
                    None => Ok(Value::Null),
                }
            }
            "eth_getTransactionReceipt" => {
                p.at_most(1)?;
                let hash: B256 = p.get(0, "transaction hash")?;
                match self.find_tx(hash)? {
                    Some((block, i)) => to_json(block.receipt(i)),
                    None => Ok(Value::Null),
                }
            }
            "eth_getBlockReceipts" => {
                p.at_most(1)?;
                let id: BlockId = p.get(0, "block")?;
                match block_of(chain, id)? {
                    Some(n) => match MinedBlock::load(chain, n)? {
                        Some(block) => to_json(block.receipts()),
                        None => Ok(Value::Null),
                    },
                    None => Ok(Value::Null),
                }
            }
            "eth_getLogs" => {
                p.at_most(1)?;
                let filter: Filter = p.get(0, "filter")?;
                to_json(self.get_logs(&filter)?)
            }
            "eth_call" => {
                p.at_most(3)?;
                let req = call_request(p.get(0, "transaction")?)?;
                at_head(chain, p.opt(1, "block")?)?;
                if p.opt::<Value>(2, "state overrides")?.is_some() {
                    return Err(RpcError::params("state overrides are not supported"));
                }
                let result = succeeded(chain.eth_call(&req)?)?;
                to_json(result.into_output().unwrap_or_default())
            }
            "eth_estimateGas" => {
                p.at_most(2)?;
                let req = call_request(p.get(0, "transaction")?)?;
                at_head(chain, p.opt(1, "block")?)?;
                Ok(quantity(
                    succeeded(chain.estimate_gas(&req)?)?.tx_gas_used(),
                ))
            }
            "eth_getCode" => {
                p.at_most(2)?;
                let addr: Address = p.get(0, "address")?;
                at_head(chain, p.opt(1, "block")?)?;
                to_json(chain.account(addr)?.code)
            }
            "eth_getBalance" => {
                p.at_most(2)?;
                let addr: Address = p.get(0, "address")?;
                at_head(chain, p.opt(1, "block")?)?;
                Ok(u256_quantity(chain.account(addr)?.balance))
            }
            "eth_getStorageAt" => {
                p.at_most(3)?;
                let addr: Address = p.get(0, "address")?;
                let slot: U256 = p.get(1, "storage slot")?;
                at_head(chain, p.opt(2, "block")?)?;
                to_json(B256::from(chain.storage_at(addr, slot)?))
            }
            "eth_getTransactionCount" => {
                p.at_most(2)?;
                let addr: Address = p.get(0, "address")?;
                let block: Option<BlockId> = p.opt(1, "block")?;
                if block == Some(BlockId::Number(BlockNumberOrTag::Pending)) {
                    return Ok(quantity(chain.pending_nonce(addr)?));
                }
                at_head(chain, block)?;
                Ok(quantity(chain.account(addr)?.nonce))
            }
            // Gas is free here: no base fee, no tip.
            "eth_gasPrice" | "eth_maxPriorityFeePerGas" => Ok(quantity(0)),
            "eth_feeHistory" => {
                p.at_most(3)?;
                let count = p.count(0, "block count")?;
                let newest: BlockNumberOrTag = p.get(1, "newest block")?;
                let percentiles: Option<Vec<f64>> = p.opt(2, "reward percentiles")?;
                to_json(self.fee_history(count, number_of(newest, head), percentiles)?)
            }
            "eth_sendTransaction" | "eth_sign" | "eth_signTransaction" => Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!(
                    "the method {method} does not exist/is not available: this server holds \
                     no keys (sign locally and use eth_sendRawTransaction)"
                ),
            )),
            other => Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!("the method {other} does not exist/is not available"),
            )),
        }
    }

    /// `eth_sendRawTransaction`: only when offered; answers once the transaction is mined.
    pub(crate) async fn send_raw_transaction(&self, p: Params) -> Result<Value, RpcError> {
        if !self.limits.allow_send {
            return Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                "eth_sendRawTransaction is not offered here: start the server with --rpc-send \
                 to accept signed transactions",
            ));
        }
        p.at_most(1)?;
        let raw: Bytes = p.get(0, "signed transaction")?;
        let hash = self.chain.submit_raw_transaction(raw).await?;
        to_json(hash)
    }

    fn block_json(&self, n: Option<u64>, full: bool) -> Result<Value, RpcError> {
        let Some(n) = n else { return Ok(Value::Null) };
        match MinedBlock::load(&self.chain, n)? {
            Some(block) => to_json(block.to_rpc(full)),
            None => Ok(Value::Null),
        }
    }

    fn tx_count_json(&self, n: Option<u64>) -> Result<Value, RpcError> {
        let Some(n) = n else { return Ok(Value::Null) };
        Ok(match self.chain.block(n)? {
            Some(block) => quantity(block.transactions.len() as u64),
            None => Value::Null,
        })
    }

    /// The block of a mined transaction and its position there.
    fn find_tx(&self, hash: B256) -> Result<Option<(MinedBlock, usize)>, RpcError> {
        let Some(at) = self.chain.tx_location(hash)? else {
            return Ok(None);
        };
        let Some(block) = MinedBlock::load(&self.chain, at.block)? else {
            return Ok(None);
        };
        // The index says which block; its receipts say where in it.
        let Some(i) = block.index_of(hash) else {
            return Ok(None);
        };
        Ok(Some((block, i)))
    }

    /// Fees as this chain's rules are: base fee 0 and tips 0 in every block; the gas used
    /// ratio is each block's gas used over the block gas limit.
    fn fee_history(
        &self,
        count: u64,
        newest: u64,
        percentiles: Option<Vec<f64>>,
    ) -> Result<FeeHistory, RpcError> {
        let head = self.chain.head_number();
        if newest > head {
            return Err(RpcError::server(format!(
                "request beyond head block: newest block {newest}, head {head}"
            )));
        }
        if let Some(p) = &percentiles {
            let in_range = p.iter().all(|x| (0.0..=100.0).contains(x));
            let sorted = p.windows(2).all(|w| w[0] <= w[1]);
            if !in_range || !sorted {
                return Err(RpcError::params(
                    "invalid argument 2 (reward percentiles): values must be non-decreasing, \
                     from 0 to 100",
                ));
            }
        }
        let count = count.min(MAX_FEE_HISTORY).min(newest + 1);
        if count == 0 {
            return Ok(FeeHistory::default());
        }
        let oldest = newest + 1 - count;
        let limit = self.chain.block_gas_limit() as f64;
        let mut gas_used_ratio = Vec::with_capacity(count as usize);
        for n in oldest..=newest {
            let used = self.chain.block(n)?.map_or(0, |b| b.header.gas_used);
            gas_used_ratio.push(used as f64 / limit);
        }
        Ok(FeeHistory {
            base_fee_per_gas: vec![0; count as usize + 1],
            gas_used_ratio,
            base_fee_per_blob_gas: Vec::new(),
            blob_gas_used_ratio: Vec::new(),
            oldest_block: oldest,
            reward: percentiles.map(|p| vec![vec![0; p.len()]; count as usize]),
        })
    }
}

/// What `eth_call` and `eth_estimateGas` run.
fn call_request(tx: TransactionRequest) -> Result<CallRequest, RpcError> {
    let input = tx
        .input
        .clone()
        .try_into_unique_input()
        .map_err(|e| RpcError::params(format!("invalid argument 0 (transaction): {e}")))?
        .unwrap_or_default();
    Ok(CallRequest {
        from: tx.from,
        to: match tx.to {
            Some(TxKind::Call(to)) => Some(to),
            Some(TxKind::Create) | None => None,
        },
        input,
        value: tx.value.unwrap_or_default(),
        gas: tx.gas,
    })
}

/// A success as is; a revert as error 3 "execution reverted" with the revert data (and the
/// reason, for an `Error(string)`); a halt as -32000 naming it.
fn succeeded(result: ExecutionResult) -> Result<ExecutionResult, RpcError> {
    match result {
        ExecutionResult::Success { .. } => Ok(result),
        ExecutionResult::Revert { output, .. } => Err(reverted(&output)),
        ExecutionResult::Halt { reason, .. } => {
            Err(RpcError::server(format!("execution halted: {reason:?}")))
        }
    }
}

/// The standard revert error: code 3, `data` the revert bytes.
fn reverted(output: &Bytes) -> RpcError {
    let message = match Revert::abi_decode(output) {
        Ok(r) => format!("execution reverted: {}", r.reason),
        Err(_) => "execution reverted".to_owned(),
    };
    RpcError {
        code: code::EXECUTION_REVERTED,
        message,
        data: Some(Value::String(output.to_string())),
    }
}
