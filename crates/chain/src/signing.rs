//! Signing with a local secp256k1 key: EIP-1559 transactions for every backend, and any
//! 32-byte hash (EIP-712 requests).
//!
//! Keys live in alloy's [`PrivateKeySigner`] (k256, zeroized on drop); signatures are made
//! by libsecp256k1, about four times faster here than k256 and byte-identical to it (both
//! RFC 6979 with low `s`).

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;
use secp256k1::{Message, SECP256K1, SecretKey};
use zeroize::Zeroizing;

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
    let tx = TxEip1559 {
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
    let sig = sign_hash(from, &tx.signature_hash())?;
    let envelope: TxEnvelope = tx.into_signed(sig).into();
    Ok(envelope.encoded_2718().into())
}

/// Signs a 32-byte hash (deterministic ECDSA, RFC 6979, low `s`) with `from`'s key.
pub fn sign_hash(from: &PrivateKeySigner, hash: &B256) -> Result<Signature> {
    let bytes = Zeroizing::new(<[u8; 32]>::from(from.credential().to_bytes()));
    let mut key = SecretKey::from_byte_array(&bytes)
        .map_err(|e| Error::Rejected(format!("signing failed: {e}")))?;
    let sig = SECP256K1.sign_ecdsa_recoverable(&Message::from_digest(hash.0), &key);
    key.non_secure_erase();
    let (id, rs) = sig.serialize_compact();
    Ok(Signature::new(
        U256::from_be_slice(&rs[..32]),
        U256::from_be_slice(&rs[32..]),
        i32::from(id) & 1 == 1,
    ))
}

#[cfg(test)]
mod tests {
    use alloy::signers::SignerSync;

    use super::*;

    #[test]
    fn signatures_are_k256_s_and_recover_to_the_signer() {
        for i in 1u8..=50 {
            let signer = PrivateKeySigner::from_bytes(&alloy::primitives::keccak256([i])).unwrap();
            let hash = alloy::primitives::keccak256([i, 0xaa]);
            let ours = sign_hash(&signer, &hash).unwrap();
            assert_eq!(ours, signer.sign_hash_sync(&hash).unwrap());
            assert_eq!(
                ours.recover_address_from_prehash(&hash).unwrap(),
                signer.address()
            );
        }
    }
}
