//! `eth_getLogs`: address (one or a list), topics with OR-lists and `null`s, a block range
//! or `blockHash`, within [`Limits`](super::Limits).
//!
//! A filter naming exactly one event (topic0) and one first indexed topic (topic1) — a
//! record's access log, a patient's grants — reads the chain's index of that pair: its
//! cost follows the matching logs, so its range is unbounded and only the result count is
//! (`max_logs`). Anything else walks the blocks of its range, which is therefore bounded
//! (`max_log_range`).

use std::collections::HashMap;

use alloy::rpc::types::{Filter, FilterBlockOption, Log as RpcLog};

use super::format::LogBlock;
use super::params::number_of;
use super::{Inner, RpcError, code};

impl Inner {
    pub(crate) fn get_logs(&self, filter: &Filter) -> Result<Vec<RpcLog>, RpcError> {
        let chain = &*self.chain;
        let head = chain.head_number();
        let (from, to) = match filter.block_option {
            FilterBlockOption::AtBlockHash(hash) => match chain.block_number_of(hash)? {
                Some(n) => (n, n),
                None => return Err(RpcError::server(format!("unknown block {hash}"))),
            },
            FilterBlockOption::Range {
                from_block,
                to_block,
            } => {
                let from = from_block.map_or(head, |b| number_of(b, head));
                let to = to_block.map_or(head, |b| number_of(b, head));
                if from > to {
                    return Err(RpcError::params(format!(
                        "invalid block range: fromBlock {from} is after toBlock {to}"
                    )));
                }
                if from > head {
                    return Ok(Vec::new());
                }
                (from, to.min(head))
            }
        };
        match (single(&filter.topics[0]), single(&filter.topics[1])) {
            (Some(t0), Some(t1)) => self.indexed_logs(filter, t0, t1, from, to),
            _ => self.scanned_logs(filter, from, to),
        }
    }

    /// Through the (topic0, topic1) index: any range, at most `max_logs` results.
    fn indexed_logs(
        &self,
        filter: &Filter,
        t0: alloy::primitives::B256,
        t1: alloy::primitives::B256,
        from: u64,
        to: u64,
    ) -> Result<Vec<RpcLog>, RpcError> {
        let max = self.limits.max_logs;
        let entries = self.chain.logs_by_topic1(t0, t1, from, to, max)?;
        if entries.len() > max {
            return Err(too_many_logs(max));
        }
        // Each block is read once, for its hash and time.
        let mut blocks: HashMap<u64, LogBlock> = HashMap::new();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if !filter.matches(&e.log) {
                continue;
            }
            let block = match blocks.get(&e.block) {
                Some(b) => *b,
                None => {
                    let b = LogBlock::load(&self.chain, e.block)?.ok_or_else(|| {
                        RpcError::new(
                            code::INTERNAL_ERROR,
                            format!("internal error: indexed block {} is missing", e.block),
                        )
                    })?;
                    *blocks.entry(e.block).or_insert(b)
                }
            };
            out.push(block.log(e.tx_hash, e.tx_index as usize, e.log_index as usize, e.log));
        }
        Ok(out)
    }

    /// Block by block: at most `max_log_range` blocks, at most `max_logs` results.
    fn scanned_logs(&self, filter: &Filter, from: u64, to: u64) -> Result<Vec<RpcLog>, RpcError> {
        let span = to - from + 1;
        let max_range = self.limits.max_log_range;
        if span > max_range {
            return Err(RpcError::new(
                code::LIMIT_EXCEEDED,
                format!(
                    "eth_getLogs spans {span} blocks: at most {max_range} (--rpc-max-log-range); \
                     narrow the range, or filter on one event and one first indexed topic, \
                     which any range may"
                ),
            ));
        }
        let max = self.limits.max_logs;
        let mut out = Vec::new();
        for n in from..=to {
            // Receipts and the header only: the transactions are not decoded.
            let Some((block, receipts)) = self.chain.block_with_receipts(n)? else {
                break;
            };
            let at = LogBlock {
                hash: block.header.hash(),
                number: n,
                timestamp: block.header.timestamp,
            };
            let logs = receipts
                .iter()
                .enumerate()
                .flat_map(|(i, r)| r.logs.iter().map(move |l| (i, r.tx_hash, l)));
            for (log_index, (tx_index, tx_hash, log)) in logs.enumerate() {
                if filter.matches(log) {
                    if out.len() == max {
                        return Err(too_many_logs(max));
                    }
                    out.push(at.log(tx_hash, tx_index, log_index, log.clone()));
                }
            }
        }
        Ok(out)
    }
}

/// The one value of a topic position, if it names exactly one.
fn single(topic: &alloy::rpc::types::Topic) -> Option<alloy::primitives::B256> {
    (topic.len() == 1).then(|| *topic.iter().next().expect("one value"))
}

fn too_many_logs(max: usize) -> RpcError {
    RpcError::new(
        code::LIMIT_EXCEEDED,
        format!(
            "eth_getLogs matches more than {max} logs (--rpc-max-logs): narrow the block range"
        ),
    )
}
