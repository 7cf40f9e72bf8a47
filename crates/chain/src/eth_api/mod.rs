//! The server side of Ethereum JSON-RPC over the [`EmbeddedChain`]: JSON-RPC 2.0 requests
//! and batches in, responses out. Transport-agnostic: `ehr-api` mounts it at `POST /rpc`
//! (behind `serve --rpc`), with the token, body limit and rate limit of that layer.
//!
//! - `mod.rs`: requests, batches, notifications and replies (JSON-RPC 2.0);
//! - `dispatch`: one method call to the chain's view API;
//! - `params`: positional parameters and block tags;
//! - `format`: blocks, transactions, receipts and logs in the shapes clients read
//!   (alloy's RPC types);
//! - `logs`: `eth_getLogs`, within [`Limits`].
//!
//! Where this chain is not Ethereum: the block hash is keccak256 of the chain's own header
//! encoding (not of an RLP Ethereum header), `stateRoot` is the chain's running state hash
//! (not a Merkle-Patricia root), and the transaction and receipt roots are its own hashes
//! too; so clients must not verify headers or ask for proofs. Gas is free: base fee 0,
//! gas price 0. The state is kept at the head only.

mod dispatch;
mod format;
mod logs;
mod params;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::embedded::EmbeddedChain;
use crate::error::Error;

/// Standard JSON-RPC 2.0 error codes, and the Ethereum ones this server answers.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a JSON-RPC 2.0 request object (or an empty batch).
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method (or one this server does not offer).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Wrong parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The server failed.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Generic server error (geth's code for, e.g., a refused transaction).
    pub const SERVER_ERROR: i64 = -32000;
    /// Execution reverted; `data` holds the revert data.
    pub const EXECUTION_REVERTED: i64 = 3;
    /// A limit was exceeded (EIP-1474), e.g. the rate of sends.
    pub const LIMIT_EXCEEDED: i64 = -32005;
}

/// Bounds on what one request may ask for.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The most requests in one batch.
    pub max_batch: usize,
    /// The most blocks one `eth_getLogs` may span (when it cannot use an index).
    pub max_log_range: u64,
    /// The most logs one `eth_getLogs` may return.
    pub max_logs: usize,
    /// Whether `eth_sendRawTransaction` is offered.
    pub allow_send: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch: 100,
            max_log_range: 10_000,
            max_logs: 10_000,
            allow_send: false,
        }
    }
}

/// A JSON-RPC error.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    /// The code (see [`code`]).
    pub code: i64,
    /// A message naming what was wrong.
    pub message: String,
    /// Extra data (revert data for [`code::EXECUTION_REVERTED`]).
    pub data: Option<Value>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// A wrong parameter (-32602).
    pub(crate) fn params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    /// A request the chain cannot answer as asked (-32000).
    pub(crate) fn server(message: impl Into<String>) -> Self {
        Self::new(code::SERVER_ERROR, message)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl From<Error> for RpcError {
    /// A refused transaction is what the client sent wrong (-32000, geth's code); anything
    /// else is the server's failure (-32603). Chain errors carry no personal data.
    fn from(e: Error) -> Self {
        match e {
            Error::Rejected(msg) => Self::server(msg),
            other => Self::new(code::INTERNAL_ERROR, format!("internal error: {other}")),
        }
    }
}

/// Asked about each request's method before it runs (see [`EthApi::handle_with`]).
pub type Gate<'a> = dyn Fn(&str) -> Result<(), RpcError> + Send + Sync + 'a;

/// The Ethereum JSON-RPC API of one embedded chain.
pub struct EthApi {
    inner: Arc<Inner>,
}

/// What a method call needs; shared with the blocking threads that run the reads.
struct Inner {
    chain: Arc<EmbeddedChain>,
    limits: Limits,
}

impl EthApi {
    /// The API over `chain`, within `limits`.
    pub fn new(chain: Arc<EmbeddedChain>, limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner { chain, limits }),
        }
    }

    /// The limits it answers within.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Answers one HTTP body: a request object or a batch. `None` when nothing is to be
    /// sent back (only notifications).
    pub async fn handle(&self, body: &[u8]) -> Option<Value> {
        self.handle_with(body, &|_| Ok(())).await
    }

    /// [`handle`](Self::handle), asking `gate` first about each well-formed request's method:
    /// a request it refuses is answered with its error and not run (the HTTP layer
    /// rate-limits sends this way).
    pub async fn handle_with(&self, body: &[u8], gate: &Gate<'_>) -> Option<Value> {
        let parsed: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Some(reply(
                    Value::Null,
                    Err(RpcError::new(
                        code::PARSE_ERROR,
                        format!("parse error: {e}"),
                    )),
                ));
            }
        };
        match parsed {
            Value::Array(items) => {
                if items.is_empty() {
                    return Some(reply(
                        Value::Null,
                        Err(RpcError::new(code::INVALID_REQUEST, "empty batch")),
                    ));
                }
                if items.len() > self.inner.limits.max_batch {
                    return Some(reply(
                        Value::Null,
                        Err(RpcError::new(
                            code::INVALID_REQUEST,
                            format!(
                                "batch of {} requests: at most {} (--rpc-max-batch)",
                                items.len(),
                                self.inner.limits.max_batch
                            ),
                        )),
                    ));
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(r) = self.one(item, gate).await {
                        out.push(r);
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
            single => self.one(single, gate).await,
        }
    }

    /// One request object; `None` for a notification (no `id`).
    async fn one(&self, req: Value, gate: &Gate<'_>) -> Option<Value> {
        let Value::Object(obj) = req else {
            return Some(reply(
                Value::Null,
                Err(RpcError::new(code::INVALID_REQUEST, "not a request object")),
            ));
        };
        let id = obj.get("id").cloned();
        if id
            .as_ref()
            .is_some_and(|id| id.is_object() || id.is_array())
        {
            return Some(reply(
                Value::Null,
                Err(RpcError::new(
                    code::INVALID_REQUEST,
                    "\"id\" must be a string, a number or null",
                )),
            ));
        }
        let method = obj.get("method").and_then(Value::as_str);
        let version_ok = obj.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
        let (Some(method), true) = (method, version_ok) else {
            return Some(reply(
                id.unwrap_or(Value::Null),
                Err(RpcError::new(
                    code::INVALID_REQUEST,
                    "a request needs \"jsonrpc\": \"2.0\" and a \"method\" string",
                )),
            ));
        };
        let params = obj.get("params").cloned().unwrap_or(Value::Array(vec![]));
        let result = match gate(method) {
            Ok(()) => self.dispatch(method, params).await,
            Err(e) => Err(e),
        };
        id.map(|id| reply(id, result))
    }

    /// Runs one method. Sends wait for their block; everything else reads the chain (redb,
    /// the EVM) on a blocking thread, off the async workers.
    async fn dispatch(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let params = params::Params::new(params)?;
        if method == "eth_sendRawTransaction" {
            return self.inner.send_raw_transaction(params).await;
        }
        let inner = self.inner.clone();
        let method = method.to_owned();
        tokio::task::spawn_blocking(move || inner.call(&method, params))
            .await
            .unwrap_or_else(|e| {
                Err(RpcError::new(
                    code::INTERNAL_ERROR,
                    format!("internal error: {e}"),
                ))
            })
    }
}

/// A number as a JSON-RPC quantity: `0x`-prefixed hex, no leading zeros.
pub(crate) fn quantity(n: u64) -> Value {
    Value::String(format!("{n:#x}"))
}

fn reply(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(v) => json!({ "jsonrpc": "2.0", "id": id, "result": v }),
        Err(e) => {
            let mut err = json!({ "code": e.code, "message": e.message });
            if let Some(d) = e.data {
                err["data"] = d;
            }
            json!({ "jsonrpc": "2.0", "id": id, "error": err })
        }
    }
}
