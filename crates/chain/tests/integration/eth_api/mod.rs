//! `eth_api`: every method through `EthApi::handle` against a real embedded chain (the real
//! contract on revm, in a temporary directory) — results in the shapes alloy's client types
//! read, standard errors, the limits, batches and notifications.

mod blocks;
mod calls;
mod protocol;

use std::sync::Arc;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::{Address, Bloom, BloomInput, TxKind, U256};
use alloy::rpc::types::{Block, FeeHistory, Log, Transaction, TransactionReceipt};
use alloy::signers::SignerSync;
use alloy::sol_types::{SolCall, SolError, SolEvent, SolInterface};
use ehr_chain::contract::{EhrRegistry, EhrRegistryErrors, codec};
use ehr_chain::eth_api::{EthApi, Limits, RpcError, code};
use ehr_chain::{B256, Bytes, ChainConfig, EmbeddedChain, PrivateKeySigner, Registry, RegistryExt};
use serde_json::{Value, json};

/// A chain with a provider, a patient with two records, a grant on the first and two logged
/// reads of it (and one of the second, through an all-records grant of another provider).
pub struct Rig {
    pub _dir: tempfile::TempDir,
    pub chain: Arc<EmbeddedChain>,
    pub alice: PrivateKeySigner,
    pub doctor: PrivateKeySigner,
    pub record: u64,
    pub other_record: u64,
}

pub async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = Arc::new(EmbeddedChain::open(dir.path(), ChainConfig::default(), &admin).unwrap());
    let (alice, doctor, nurse) = (
        PrivateKeySigner::random(),
        PrivateKeySigner::random(),
        PrivateKeySigner::random(),
    );
    chain
        .register_provider(&admin, doctor.address(), B256::ZERO)
        .await
        .unwrap();
    chain
        .register_provider(&admin, nurse.address(), B256::ZERO)
        .await
        .unwrap();
    chain.register_patient(&alice).await.unwrap();
    let (record, _) = chain
        .add_record(&alice, B256::repeat_byte(1), codec::RAW)
        .await
        .unwrap();
    let (other_record, _) = chain
        .add_record(&alice, B256::repeat_byte(2), codec::RAW)
        .await
        .unwrap();
    let far = ehr_primitives::unix_now() + 86_400;
    chain
        .grant_access(&alice, doctor.address(), Some(record), far)
        .await
        .unwrap();
    chain
        .grant_access(&alice, nurse.address(), None, far)
        .await
        .unwrap();
    for nonce in 1..=2u64 {
        chain
            .log_access(&doctor, record, U256::from(nonce))
            .await
            .unwrap();
    }
    chain
        .log_access(&nurse, other_record, U256::from(7))
        .await
        .unwrap();
    Rig {
        _dir: dir,
        chain,
        alice,
        doctor,
        record,
        other_record,
    }
}

pub fn api(rig: &Rig, limits: Limits) -> EthApi {
    EthApi::new(rig.chain.clone(), limits)
}

/// One request through `handle`: its result, or its error object.
pub async fn rpc(api: &EthApi, method: &str, params: Value) -> Result<Value, RpcError> {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let reply = api
        .handle(body.to_string().as_bytes())
        .await
        .expect("a request with an id is answered");
    assert_eq!(reply["jsonrpc"], "2.0");
    assert_eq!(reply["id"], 1);
    match reply.get("error") {
        Some(e) => Err(RpcError {
            code: e["code"].as_i64().unwrap(),
            message: e["message"].as_str().unwrap().to_owned(),
            data: e.get("data").cloned(),
        }),
        None => Ok(reply["result"].clone()),
    }
}

pub async fn ok(api: &EthApi, method: &str, params: Value) -> Value {
    rpc(api, method, params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

pub async fn err(api: &EthApi, method: &str, params: Value) -> RpcError {
    match rpc(api, method, params).await {
        Ok(v) => panic!("{method} answered {v}, expected an error"),
        Err(e) => e,
    }
}

pub fn hex(n: u64) -> String {
    format!("{n:#x}")
}

pub fn access_logged_filter(rig: &Rig, record: u64) -> Value {
    json!({
        "fromBlock": "earliest",
        "toBlock": "latest",
        "address": rig.chain.contract(),
        "topics": [
            EhrRegistry::AccessLogged::SIGNATURE_HASH,
            B256::from(U256::from(record)),
        ],
    })
}
