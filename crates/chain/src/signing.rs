//! Signing EIP-1559 transactions with a local secp256k1 key, for every backend.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;

use crate::error::{Error, Result};

/// What a transaction pays for gas.
#[derive(Clone, Copy, Debug)]
pub struct Gas {
    /// Gas limit.
    pub limit: u64,
    /// EIP-1559 max fee per gas.
    pub max_fee: u128,
    /// EIP-1559 max priority fee per gas.
    pub max_priority_fee: u128,
}

/// Signs a call of `to` (a deployment when `None`) sending `value` wei, and returns its EIP-2718 encoding, as
/// `eth_sendRawTransaction` takes it.
pub fn sign_eip1559(
    from: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Option<Address>,
    value: U256,
    input: Bytes,
    gas: Gas,
) -> Result<Bytes> {
    let mut tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: gas.limit,
        max_fee_per_gas: gas.max_fee,
        max_priority_fee_per_gas: gas.max_priority_fee,
        to: to.map_or(TxKind::Create, TxKind::Call),
        value,
        access_list: Default::default(),
        input,
    };
    let sig = from
        .sign_transaction_sync(&mut tx)
        .map_err(|e| Error::Rejected(format!("signing failed: {e}")))?;
    let envelope: TxEnvelope = tx.into_signed(sig).into();
    Ok(envelope.encoded_2718().into())
}
