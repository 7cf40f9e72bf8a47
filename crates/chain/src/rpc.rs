//! The registry on any Ethereum JSON-RPC node (geth, Besu, anvil, …) through an alloy
//! provider. Transactions are signed locally with the sender's key and sent raw, so the
//! node never holds a key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::network::{Ethereum, ReceiptResponse};
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportErrorKind};
use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::contract;
use crate::error::{ContractError, Error, Result};
use crate::registry::{ChainInfo, ChainLog, LogQuery, Registry, TxReceipt};
use crate::signing::{Gas, sign_eip1559};

/// How long to wait for a transaction to be mined.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The EhrRegistry deployed on a JSON-RPC node.
pub struct RpcRegistry {
    provider: RootProvider<Ethereum>,
    contract: Address,
    chain_id: u64,
    /// The block the contract was deployed in: log queries start there.
    from_block: u64,
    /// One lock per sender, so concurrent sends from one key get consecutive nonces.
    senders: Mutex<HashMap<Address, Arc<Mutex<()>>>>,
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
        let parsed = url
            .parse()
            .map_err(|e| Error::Rpc(format!("bad node URL {url:?}: {e}")))?;
        let Some(pem) = ca_pem else {
            return Ok(RootProvider::new_http(parsed));
        };
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Rpc(format!("the CA file: {e}")))?;
        if roots.is_empty() {
            return Err(Error::Rpc("the CA file holds no certificate".into()));
        }
        let http = reqwest::Client::builder()
            .tls_certs_merge(roots)
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
        let provider = Self::provider_with_ca(url, ca_pem)?;
        let chain_id = provider.get_chain_id().await.map_err(rpc_err)?;
        let code = provider.get_code_at(contract).await.map_err(rpc_err)?;
        if code.is_empty() {
            return Err(Error::Rpc(format!(
                "no contract at {contract} on chain {chain_id}"
            )));
        }
        Ok(Self {
            provider,
            contract,
            chain_id,
            from_block: 0,
            senders: Mutex::default(),
        })
    }

    /// Deploys a fresh EhrRegistry signed by `admin` (who becomes its admin) and connects.
    pub async fn deploy(url: &str, admin: &PrivateKeySigner) -> Result<Self> {
        let provider = Self::provider(url)?;
        let chain_id = provider.get_chain_id().await.map_err(rpc_err)?;
        let mut this = Self {
            provider,
            contract: Address::ZERO,
            chain_id,
            from_block: 0,
            senders: Mutex::default(),
        };
        let receipt = this
            .send(admin, None, U256::ZERO, contract::creation_code())
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
        Ok(self.send(from, Some(to), wei, Bytes::new()).await?.1)
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
    async fn send(
        &self,
        from: &PrivateKeySigner,
        to: Option<Address>,
        value: U256,
        input: Bytes,
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
        let nonce = self
            .provider
            .get_transaction_count(addr)
            .pending()
            .await
            .map_err(rpc_err)?;
        let fees = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(rpc_err)?;
        let gas = Gas {
            limit: gas + gas / 5 + 10_000,
            max_fee: fees.max_fee_per_gas,
            max_priority_fee: fees.max_priority_fee_per_gas,
        };
        let raw = sign_eip1559(from, self.chain_id, nonce, to, value, input, gas)?;
        let pending = self
            .provider
            .send_raw_transaction(&raw)
            .await
            .map_err(rpc_err)?;
        let hash = *pending.tx_hash();
        let deadline = tokio::time::Instant::now() + RECEIPT_TIMEOUT;
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
                return Err(Error::Rpc(format!(
                    "transaction {hash} not mined after {RECEIPT_TIMEOUT:?}"
                )));
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

    async fn transact(&self, from: &PrivateKeySigner, input: Bytes) -> Result<TxReceipt> {
        Ok(self
            .send(from, Some(self.contract), U256::ZERO, input)
            .await?
            .1)
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
        let mut filter = Filter::new()
            .address(self.contract)
            .event_signature(query.event)
            .from_block(query.from_block.max(self.from_block))
            .to_block(
                query
                    .to_block
                    .map_or(BlockNumberOrTag::Latest, BlockNumberOrTag::Number),
            );
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
        Ok(logs
            .into_iter()
            .map(|l| ChainLog {
                block_number: l.block_number.unwrap_or_default(),
                tx_hash: l.transaction_hash.unwrap_or_default(),
                log: l.inner,
            })
            .collect())
    }

    async fn fund_account(&self, from: &PrivateKeySigner, to: Address) -> Result<()> {
        // Enough for thousands of registry transactions at a few gwei; topped up when low.
        let low = U256::from(10u128.pow(17));
        let balance = self.provider.get_balance(to).await.map_err(rpc_err)?;
        if balance < low {
            self.transfer(from, to, U256::from(10u128.pow(18))).await?;
        }
        Ok(())
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
