//! Positional parameters, and what block tags and ids mean on this chain: `latest`, `safe`,
//! `finalized` and `pending` are the head (one node, final at once), `earliest` is block 0.

use alloy::eips::{BlockId, BlockNumberOrTag};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::RpcError;
use crate::embedded::EmbeddedChain;

/// A request's `params`: a (possibly empty) array.
pub(crate) struct Params(Vec<Value>);

impl Params {
    /// `params` as sent: absent or `null` is no parameters; by-name parameters (an object)
    /// are not used by Ethereum clients and are refused.
    pub(crate) fn new(params: Value) -> Result<Self, RpcError> {
        match params {
            Value::Array(v) => Ok(Self(v)),
            Value::Null => Ok(Self(Vec::new())),
            _ => Err(RpcError::params(
                "params must be an array (positional parameters)",
            )),
        }
    }

    /// Refuses more than `n` parameters.
    pub(crate) fn at_most(&self, n: usize) -> Result<(), RpcError> {
        if self.0.len() > n {
            return Err(RpcError::params(format!(
                "too many arguments, want at most {n}"
            )));
        }
        Ok(())
    }

    /// Parameter `i` (from 0), required.
    pub(crate) fn get<T: DeserializeOwned>(&self, i: usize, what: &str) -> Result<T, RpcError> {
        match self.0.get(i) {
            None => Err(RpcError::params(format!(
                "missing value for required argument {i} ({what})"
            ))),
            Some(v) => parse(v, i, what),
        }
    }

    /// Parameter `i`, `None` when absent or `null`.
    pub(crate) fn opt<T: DeserializeOwned>(
        &self,
        i: usize,
        what: &str,
    ) -> Result<Option<T>, RpcError> {
        match self.0.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => parse(v, i, what).map(Some),
        }
    }

    /// Parameter `i` as a count: a quantity (`"0x10"`) or a JSON number (some clients send
    /// `eth_feeHistory`'s block count so).
    pub(crate) fn count(&self, i: usize, what: &str) -> Result<u64, RpcError> {
        match self.0.get(i) {
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
                RpcError::params(format!(
                    "invalid argument {i} ({what}): not a non-negative integer"
                ))
            }),
            _ => Ok(self.get::<alloy::primitives::U64>(i, what)?.to()),
        }
    }
}

fn parse<T: DeserializeOwned>(v: &Value, i: usize, what: &str) -> Result<T, RpcError> {
    T::deserialize(v).map_err(|e| RpcError::params(format!("invalid argument {i} ({what}): {e}")))
}

/// The block number a tag or number names (it may be above the head).
pub(crate) fn number_of(tag: BlockNumberOrTag, head: u64) -> u64 {
    match tag {
        BlockNumberOrTag::Number(n) => n,
        BlockNumberOrTag::Earliest => 0,
        BlockNumberOrTag::Latest
        | BlockNumberOrTag::Safe
        | BlockNumberOrTag::Finalized
        | BlockNumberOrTag::Pending => head,
    }
}

/// The block a block id names, if there is one.
pub(crate) fn block_of(chain: &EmbeddedChain, id: BlockId) -> Result<Option<u64>, RpcError> {
    let head = chain.head_number();
    let n = match id {
        BlockId::Number(tag) => number_of(tag, head),
        BlockId::Hash(h) => match chain.block_number_of(h.block_hash)? {
            Some(n) => n,
            None => return Ok(None),
        },
    };
    Ok((n <= head).then_some(n))
}

/// Checks that `id` (default `latest`) names the head: the only state this chain keeps.
pub(crate) fn at_head(chain: &EmbeddedChain, id: Option<BlockId>) -> Result<(), RpcError> {
    let Some(id) = id else { return Ok(()) };
    let head = chain.head_number();
    match block_of(chain, id)? {
        Some(n) if n == head => Ok(()),
        Some(n) => Err(RpcError::server(format!(
            "the state at block {n} is not kept: this chain answers at the head (block {head}) \
             only; ask at \"latest\""
        ))),
        None => Err(RpcError::server(format!("header not found: {id}"))),
    }
}
