//! The registry on any Ethereum JSON-RPC node (geth, Besu, anvil, …) through an alloy
//! provider. Transactions are signed locally with the sender's key and sent raw, so the
//! node never holds a key.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::network::{Ethereum, ReceiptResponse};
use alloy::primitives::{Address, Bytes, TxKind, U256, keccak256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportErrorKind};
use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::contract;
use crate::error::{ContractError, Error, Result};
use crate::funding::{Budget, FundingPolicy};
use crate::registry::{
    ChainInfo, ChainLog, LogQuery, Registry, SentTx, TxNote, TxReceipt, TxStatus,
};
use crate::signing::{Gas, sign_eip1559};

/// How long to wait for a transaction to be mined, unless set otherwise.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The most blocks one `eth_getLogs` request spans, unless set otherwise: public and
/// consortium nodes cap the range (Besu's `--rpc-max-logs-range` defaults to 5,000), and a
/// bounded request stays cheap for the node however long the chain grows.
pub const MAX_LOG_RANGE: u64 = 5_000;

/// The EhrRegistry deployed on a JSON-RPC node.
pub struct RpcRegistry {
    provider: RootProvider<Ethereum>,
    contract: Address,
    chain_id: u64,
    /// The block the contract was deployed in: log queries start there.
    from_block: u64,
    /// One lock per sender, so concurrent sends from one key get consecutive nonces.
    senders: Mutex<HashMap<Address, Arc<Mutex<()>>>>,
    receipt_timeout: Duration,
    max_log_range: u64,
    /// The last answer of [`Registry::first_block_since`] as (timestamp, block): block
    /// numbers grow with time, so a later timestamp's answer is at or after this block.
    since_hint: std::sync::Mutex<(u64, u64)>,
    /// Who pays other accounts' gas, and within which budget (none: nobody is funded).
    funding: Option<(PrivateKeySigner, Budget)>,
}

/// The future of a send, boxed: a send may send a top-up first.
type SendFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<(Option<Address>, TxReceipt)>> + Send + 'a>>;

fn no_note(_: &SentTx) -> Result<()> {
    Ok(())
}

fn rpc_err(e: RpcError<TransportErrorKind>) -> Error {
    if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data()) {
        return ContractError::decode(&data).into();
    }
    Error::Rpc(e.to_string())
}

impl RpcRegistry {
    fn provider(url: &str) -> Result<RootProvider<Ethereum>> {
        Self::provider_with_ca(url, None)
    }

    /// With `ca_pem` (a PEM bundle), `https://` also trusts those CAs besides the system's.
    fn provider_with_ca(url: &str, ca_pem: Option<&[u8]>) -> Result<RootProvider<Ethereum>> {
        Self::provider_with(url, ca_pem, None)
    }

    /// …and with `bearer`, every request carries `Authorization: Bearer <bearer>` (a
    /// `secure-ehr serve --rpc --rpc-token` endpoint).
    fn provider_with(
        url: &str,
        ca_pem: Option<&[u8]>,
        bearer: Option<&str>,
    ) -> Result<RootProvider<Ethereum>> {
        let parsed = url
            .parse()
            .map_err(|e| Error::Rpc(format!("bad node URL {url:?}: {e}")))?;
        if ca_pem.is_none() && bearer.is_none() {
            return Ok(RootProvider::new_http(parsed));
        }
        let mut http = reqwest::Client::builder();
        if let Some(pem) = ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Rpc(format!("the CA file: {e}")))?;
            if roots.is_empty() {
                return Err(Error::Rpc("the CA file holds no certificate".into()));
            }
            http = http.tls_certs_merge(roots);
        }
        if let Some(token) = bearer {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| {
                    Error::Rpc("the chain RPC token is not a valid header value".into())
                })?;
            // Kept out of debug output.
            value.set_sensitive(true);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, value);
            http = http.default_headers(headers);
        }
        let http = http
            .build()
            .map_err(|e| Error::Rpc(format!("HTTP client: {e}")))?;
        let transport = alloy::transports::http::Http::with_client(http, parsed);
        let local = transport.guess_local();
        Ok(RootProvider::new(alloy::rpc::client::RpcClient::new(
            transport, local,
        )))
    }

    /// Connects to a contract already deployed at `contract`; refuses an address with no code.
    pub async fn connect(url: &str, contract: Address) -> Result<Self> {
        Self::connect_with_ca(url, contract, None).await
    }

    /// [`connect`](Self::connect), trusting for an `https://` node the CAs of `ca_pem` (a
    /// PEM bundle) besides the system's.
    pub async fn connect_with_ca(
        url: &str,
        contract: Address,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self> {
        Self::connect_with(url, contract, ca_pem, None).await
    }

    /// [`connect_with_ca`](Self::connect_with_ca), presenting `bearer` as
    /// `Authorization: Bearer` on every request (`secure-ehr serve --rpc --rpc-token`).
    pub async fn connect_with(
        url: &str,
        contract: Address,
        ca_pem: Option<&[u8]>,
        bearer: Option<&str>,
    ) -> Result<Self> {
        let provider = Self::provider_with(url, ca_pem, bearer)?;
        let chain_id = provider.get_chain_id().await.map_err(rpc_err)?;
        let code = provider.get_code_at(contract).await.map_err(rpc_err)?;
        if code.is_empty() {
            return Err(Error::Rpc(format!(
                "no contract at {contract} on chain {chain_id}"
            )));
        }
        crate::contract::check_code(contract, &code)?;
        Ok(Self::new(provider, contract, chain_id))
    }

    fn new(provider: RootProvider<Ethereum>, contract: Address, chain_id: u64) -> Self {
        Self {
            provider,
            contract,
            chain_id,
            from_block: 0,
            senders: Mutex::default(),
            receipt_timeout: RECEIPT_TIMEOUT,
            max_log_range: MAX_LOG_RANGE,
            since_hint: std::sync::Mutex::new((0, 0)),
            funding: None,
        }
    }

    /// Pays the gas of every other account that sends through this registry from `payer`'s
    /// balance, as `policy` allows: an account short of what its transaction may cost gets
    /// one top-up first. Without this, only [`fund_account`](Registry::fund_account) funds
    /// (one default-sized top-up, no budget), and later transactions are not topped up.
    pub fn with_funding(mut self, payer: PrivateKeySigner, policy: FundingPolicy) -> Self {
        self.funding = policy.enabled().then(|| (payer, Budget::new(policy)));
        self
    }

    /// The most a transaction may pay per gas now, in wei.
    pub async fn max_fee_per_gas(&self) -> Result<u128> {
        Ok(self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(rpc_err)?
            .max_fee_per_gas)
    }

    /// `who`'s balance in wei.
    pub async fn balance(&self, who: Address) -> Result<U256> {
        self.provider.get_balance(who).await.map_err(rpc_err)
    }

    /// Tops `to` up by one top-up if its balance is below `need` wei (within the budget).
    async fn top_up(&self, to: Address, need: U256, max_fee: u128) -> Result<()> {
        let Some((payer, budget)) = &self.funding else {
            return Ok(());
        };
        if to == payer.address() || need.is_zero() {
            return Ok(());
        }
        let balance = self.balance(to).await?;
        if balance >= need {
            return Ok(());
        }
        let amount = budget.policy.top_up(max_fee).max(need - balance);
        let at = budget.reserve(amount)?;
        let sent = self
            .send_unfunded(payer, Some(to), amount, Bytes::new())
            .await;
        if sent.is_err() {
            budget.release(at, amount);
        }
        sent.map(|_| ())
    }

    fn send_unfunded<'a>(
        &'a self,
        from: &'a PrivateKeySigner,
        to: Option<Address>,
        value: U256,
        input: Bytes,
    ) -> SendFuture<'a> {
        Box::pin(self.send_as(from, to, value, input, &no_note, false))
    }

    /// How long [`transact`](Registry::transact) waits for a receipt before answering
    /// [`Error::NotMined`] (default [`RECEIPT_TIMEOUT`]).
    pub fn with_receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = timeout;
        self
    }

    /// The most blocks one `eth_getLogs` request may span (default [`MAX_LOG_RANGE`]);
    /// longer queries are split. At least 1.
    pub fn with_max_log_range(mut self, blocks: u64) -> Self {
        self.max_log_range = blocks.max(1);
        self
    }

    /// Deploys a fresh EhrRegistry signed by `admin` (who becomes its admin) and connects.
    pub async fn deploy(url: &str, admin: &PrivateKeySigner) -> Result<Self> {
        let provider = Self::provider(url)?;
        let chain_id = provider.get_chain_id().await.map_err(rpc_err)?;
        let mut this = Self::new(provider, Address::ZERO, chain_id);
        let receipt = this
            .send_unfunded(admin, None, U256::ZERO, contract::creation_code())
            .await?;
        let (address, block) = receipt;
        this.contract = address
            .ok_or_else(|| Error::Rpc("deployment receipt has no contract address".into()))?;
        this.from_block = block.block_number;
        Ok(this)
    }

    /// Sends `wei` from `from` to `to` (to pay other accounts' gas on networks that charge it).
    pub async fn transfer(
        &self,
        from: &PrivateKeySigner,
        to: Address,
        wei: U256,
    ) -> Result<TxReceipt> {
        Ok(self
            .send_unfunded(from, Some(to), wei, Bytes::new())
            .await?
            .1)
    }

    /// The node's chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Makes a JSON-RPC request the trait has no method for (e.g. `evm_increaseTime`).
    pub async fn raw_request<P, R>(&self, method: &'static str, params: P) -> Result<R>
    where
        P: serde::Serialize + Clone + std::fmt::Debug + Send + Sync + Unpin,
        R: serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
    {
        self.provider
            .raw_request(method.into(), params)
            .await
            .map_err(rpc_err)
    }

    /// Signs and sends a call (or a deployment when `to` is `None`), waits for the receipt.
    /// `note` hears of the signed transaction before the node does. With `fund`, a sender
    /// short of the fee gets a top-up first (see [`with_funding`](Self::with_funding)).
    async fn send_as(
        &self,
        from: &PrivateKeySigner,
        to: Option<Address>,
        value: U256,
        input: Bytes,
        note: &TxNote<'_>,
        fund: bool,
    ) -> Result<(Option<Address>, TxReceipt)> {
        let addr = from.address();
        let lock = self.senders.lock().await.entry(addr).or_default().clone();
        let _held = lock.lock().await;

        let request = TransactionRequest {
            from: Some(addr),
            to: Some(to.map_or(TxKind::Create, TxKind::Call)),
            input: input.clone().into(),
            value: Some(value),
            ..Default::default()
        };
        // Like the embedded chain's dry run: a refused call costs nothing.
        let gas = self.provider.estimate_gas(request).await.map_err(rpc_err)?;
        let fees = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(rpc_err)?;
        let gas = Gas {
            limit: crate::gas::limit_for(gas),
            max_fee: fees.max_fee_per_gas,
            max_priority_fee: fees.max_priority_fee_per_gas,
        };
        if fund {
            let need = U256::from(gas.limit) * U256::from(gas.max_fee) + value;
            self.top_up(addr, need, gas.max_fee).await?;
        }
        let nonce = self
            .provider
            .get_transaction_count(addr)
            .pending()
            .await
            .map_err(rpc_err)?;
        let raw = sign_eip1559(from, self.chain_id, nonce, to, value, input, gas)?;
        // An EIP-2718 typed transaction's hash is the hash of its envelope.
        let sent = SentTx {
            hash: keccak256(&raw),
            from: addr,
            nonce,
        };
        note(&sent)?;
        let pending = self
            .provider
            .send_raw_transaction(&raw)
            .await
            .map_err(rpc_err)?;
        let hash = *pending.tx_hash();
        if hash != sent.hash {
            return Err(Error::Rpc(format!(
                "the node names transaction {} {hash}",
                sent.hash
            )));
        }
        let deadline = tokio::time::Instant::now() + self.receipt_timeout;
        let receipt = loop {
            if let Some(r) = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(rpc_err)?
            {
                break r;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::NotMined {
                    tx: sent,
                    waited: self.receipt_timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        if !receipt.status() {
            return Err(Error::RevertedOnChain(hash));
        }
        Ok((
            receipt.contract_address(),
            TxReceipt {
                tx_hash: hash,
                block_number: receipt.block_number().unwrap_or_default(),
                gas_used: receipt.gas_used(),
                logs: receipt
                    .inner
                    .logs()
                    .iter()
                    .map(|l| l.inner.clone())
                    .collect(),
            },
        ))
    }
}

#[async_trait]
impl Registry for RpcRegistry {
    fn contract(&self) -> Address {
        self.contract
    }

    async fn transact_noted(
        &self,
        from: &PrivateKeySigner,
        input: Bytes,
        note: &TxNote<'_>,
    ) -> Result<TxReceipt> {
        Ok(self
            .send_as(from, Some(self.contract), U256::ZERO, input, note, true)
            .await?
            .1)
    }

    async fn tx_status(&self, tx: &SentTx) -> Result<TxStatus> {
        let mined = || async {
            let receipt = self
                .provider
                .get_transaction_receipt(tx.hash)
                .await
                .map_err(rpc_err)?;
            Ok::<_, Error>(receipt.map(|r| TxStatus::Mined {
                block_number: r.block_number().unwrap_or_default(),
                success: r.status(),
            }))
        };
        if let Some(status) = mined().await? {
            return Ok(status);
        }
        // The count of the sender's mined transactions: past our nonce, another transaction
        // took it — unless ours was mined between the two questions, so ask once more.
        let mined_nonces = self
            .provider
            .get_transaction_count(tx.from)
            .latest()
            .await
            .map_err(rpc_err)?;
        if mined_nonces <= tx.nonce {
            return Ok(TxStatus::Pending);
        }
        Ok(mined().await?.unwrap_or(TxStatus::Dropped))
    }

    async fn first_block_since(&self, timestamp: u64) -> Result<Option<u64>> {
        let head = self.provider.get_block_number().await.map_err(rpc_err)?;
        let time_of = |n: u64| async move {
            self.provider
                .get_block_by_number(BlockNumberOrTag::Number(n))
                .await
                .map_err(rpc_err)?
                .map(|b| b.header.timestamp)
                .ok_or_else(|| Error::Rpc(format!("the node has no block {n}")))
        };
        // Binary search for the first block at or after `timestamp` in [lo, head + 1).
        let (hint_time, hint_block) = *self.since_hint.lock().unwrap_or_else(|p| p.into_inner());
        let mut lo = if timestamp >= hint_time {
            hint_block.max(self.from_block)
        } else {
            self.from_block
        };
        let mut hi = head + 1;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if time_of(mid).await? >= timestamp {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        *self.since_hint.lock().unwrap_or_else(|p| p.into_inner()) = (timestamp, lo);
        Ok(Some(lo))
    }

    async fn call(&self, from: Address, input: Bytes) -> Result<Bytes> {
        let request = TransactionRequest {
            from: Some(from),
            to: Some(TxKind::Call(self.contract)),
            input: input.into(),
            ..Default::default()
        };
        self.provider.call(request).await.map_err(rpc_err)
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<ChainLog>> {
        let from = query.from_block.max(self.from_block);
        let to = match query.to_block {
            Some(to) => to,
            None => self.provider.get_block_number().await.map_err(rpc_err)?,
        };
        let mut out = Vec::new();
        let mut start = from;
        // At most `max_log_range` blocks per request, oldest first.
        while start <= to {
            let end = to.min(start.saturating_add(self.max_log_range - 1));
            let mut filter = Filter::new()
                .address(self.contract)
                .event_signature(query.event)
                .from_block(start)
                .to_block(end);
            if let Some(t) = query.topics[0] {
                filter = filter.topic1(t);
            }
            if let Some(t) = query.topics[1] {
                filter = filter.topic2(t);
            }
            if let Some(t) = query.topics[2] {
                filter = filter.topic3(t);
            }
            let logs = self.provider.get_logs(&filter).await.map_err(rpc_err)?;
            out.extend(logs.into_iter().map(|l| ChainLog {
                block_number: l.block_number.unwrap_or_default(),
                tx_hash: l.transaction_hash.unwrap_or_default(),
                log: l.inner,
            }));
            if end == u64::MAX {
                break;
            }
            start = end + 1;
        }
        Ok(out)
    }

    async fn fund_account(&self, from: &PrivateKeySigner, to: Address) -> Result<()> {
        // Enough for the account's first transaction, at the dearest operation's limit.
        let max_fee = self.max_fee_per_gas().await?;
        let need = U256::from(crate::gas::limit_for(crate::gas::REGISTER_PATIENT_MAX))
            * U256::from(max_fee);
        if self.funding.is_some() {
            return self.top_up(to, need, max_fee).await;
        }
        // No policy set (tests, one-off tools): one default-sized top-up from `from`, with
        // no budget; `serve` always sets a policy.
        let balance = self.balance(to).await?;
        if to == from.address() || balance >= need {
            return Ok(());
        }
        let amount = FundingPolicy::default().top_up(max_fee).max(need - balance);
        self.send_unfunded(from, Some(to), amount, Bytes::new())
            .await
            .map(|_| ())
    }

    async fn funding_available(&self) -> Result<()> {
        match &self.funding {
            Some((_, budget)) => budget.check(budget.policy.top_up(self.max_fee_per_gas().await?)),
            None => Ok(()),
        }
    }

    async fn info(&self) -> Result<ChainInfo> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(rpc_err)?
            .ok_or_else(|| Error::Rpc("the node has no latest block".into()))?;
        Ok(ChainInfo {
            backend: "json-rpc".into(),
            chain_id: self.chain_id,
            head_block: block.header.number,
            head_hash: block.header.hash,
            head_timestamp: block.header.timestamp,
            contract: self.contract,
        })
    }
}
