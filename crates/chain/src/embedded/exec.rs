//! Executing transactions with revm over the embedded chain's state (stored, or in memory
//! when `verify` re-executes from genesis).

use alloy::consensus::transaction::SignerRecoverable;
use alloy::consensus::{Transaction as _, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use revm::context::result::{ExecutionResult, ResultAndState};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::{DatabaseRef, WrapDatabaseRef};
use revm::primitives::hardfork::SpecId;
use revm::state::EvmState;
use revm::{ExecuteEvm, MainBuilder, MainContext};

use crate::error::{Error, Result};

/// A state in memory: what `verify` re-executes into, and the empty state genesis runs on.
pub type StateDb = CacheDB<EmptyDB>;

/// Block gas limit; also the gas limit of read-only calls.
pub const BLOCK_GAS_LIMIT: u64 = 30_000_000;

/// Gas limit our own transactions carry (gas is free here; this only bounds runaway code).
pub const TX_GAS_LIMIT: u64 = 5_000_000;

/// The EVM rules: Cancun, like the contract's solc target (consortium nodes lag behind).
pub const SPEC: SpecId = SpecId::CANCUN;

/// A signed transaction whose signature and encoding check out.
#[derive(Clone, Debug)]
pub struct CheckedTx {
    /// The sender recovered from the signature.
    pub from: Address,
    /// The sender's nonce it carries.
    pub nonce: u64,
    /// Keccak of the encoding.
    pub hash: B256,
    /// What revm executes.
    pub env: TxEnv,
}

/// Decodes an EIP-2718 signed transaction, recovers its sender and checks its chain id.
/// Every failure is a clear [`Error::Rejected`].
pub fn check_tx(raw: &[u8], chain_id: u64) -> Result<CheckedTx> {
    check(raw, chain_id, None)
}

/// Like [`check_tx`] for a transaction this process has just signed as `from`: the
/// sender is known, so the signature is not recovered again (replay at open still checks
/// it, like every other transaction's).
pub fn check_own_tx(raw: &[u8], chain_id: u64, from: Address) -> Result<CheckedTx> {
    check(raw, chain_id, Some(from))
}

fn check(raw: &[u8], chain_id: u64, signed_by: Option<Address>) -> Result<CheckedTx> {
    let envelope = TxEnvelope::decode_2718(&mut &raw[..])
        .map_err(|e| Error::Rejected(format!("undecodable transaction: {e}")))?;
    // EIP-1559 (type 2) and EIP-155 legacy (type 0 with a chain id) only: access-list (1),
    // blob (3) and set-code (4) transactions have no use here, and a legacy transaction
    // without a chain id could be replayed on any chain.
    match &envelope {
        TxEnvelope::Eip1559(_) => {}
        TxEnvelope::Legacy(signed) if signed.tx().chain_id.is_none() => {
            return Err(Error::Rejected(
                "legacy transaction without a chain id (pre-EIP-155, replayable on any \
                 chain): sign it with EIP-155"
                    .into(),
            ));
        }
        TxEnvelope::Legacy(_) => {}
        other => {
            return Err(Error::Rejected(format!(
                "unsupported transaction type {}: only EIP-1559 (type 2) and EIP-155 legacy \
                 (type 0) are accepted",
                other.tx_type() as u8
            )));
        }
    }
    if envelope.chain_id() != Some(chain_id) {
        return Err(Error::Rejected(format!(
            "wrong chain id {:?}: this chain is {chain_id}",
            envelope.chain_id()
        )));
    }
    let from = match signed_by {
        Some(from) => from,
        None => envelope
            .recover_signer()
            .map_err(|e| Error::Rejected(format!("bad signature: {e}")))?,
    };
    let builder = TxEnv::builder()
        .caller(from)
        .gas_limit(envelope.gas_limit())
        .kind(envelope.kind())
        .value(envelope.value())
        .data(envelope.input().clone())
        .nonce(envelope.nonce())
        .chain_id(Some(chain_id));
    // Gas is free on this chain: whatever fee a transaction offers (wallets add a tip of
    // their own accord), it is charged none, so accounts need no ether.
    let env = match &envelope {
        TxEnvelope::Eip1559(signed) => builder
            .tx_type(Some(2))
            .max_fee_per_gas(0)
            .gas_priority_fee(Some(0))
            .access_list(signed.tx().access_list.clone())
            .build_fill(),
        _ => builder.tx_type(Some(0)).gas_price(0).build_fill(),
    };
    Ok(CheckedTx {
        from,
        nonce: envelope.nonce(),
        hash: *envelope.tx_hash(),
        env,
    })
}

fn block_env(number: u64, timestamp: u64) -> BlockEnv {
    BlockEnv {
        number: U256::from(number),
        timestamp: U256::from(timestamp),
        gas_limit: BLOCK_GAS_LIMIT,
        basefee: 0,
        prevrandao: Some(B256::ZERO),
        ..Default::default()
    }
}

fn cfg(chain_id: u64, checks: bool) -> CfgEnv {
    let mut cfg = CfgEnv::new_with_spec(SPEC);
    cfg.chain_id = chain_id;
    if !checks {
        cfg.disable_nonce_check = true;
    }
    cfg
}

/// Executes `tx` on `db` in block (`number`, `timestamp`) without committing.
/// A transaction that is invalid for the state (nonce, funds) is [`Error::Rejected`].
pub fn execute<DB: DatabaseRef>(
    db: &mut CacheDB<DB>,
    chain_id: u64,
    number: u64,
    timestamp: u64,
    tx: TxEnv,
) -> Result<ResultAndState> {
    let mut evm = Context::mainnet()
        .with_db(db)
        .with_cfg(cfg(chain_id, true))
        .with_block(block_env(number, timestamp))
        .build_mainnet();
    evm.transact(tx).map_err(|e| match e {
        revm::context::result::EVMError::Transaction(invalid) => {
            Error::Rejected(invalid.to_string())
        }
        revm::context::result::EVMError::Database(e) => Error::Store(e.to_string()),
        other => Error::Evm(other.to_string()),
    })
}

/// A read-only call of `to` by `from` against the committed state, at (`number`, `timestamp`).
/// Returns the execution result; nothing is committed.
pub fn call<D: DatabaseRef>(
    state: &D,
    chain_id: u64,
    number: u64,
    timestamp: u64,
    from: Address,
    to: Address,
    input: Bytes,
) -> Result<ExecutionResult> {
    let tx = TxEnv::builder()
        .caller(from)
        .kind(TxKind::Call(to))
        .data(input)
        .gas_limit(BLOCK_GAS_LIMIT)
        .chain_id(Some(chain_id))
        .build_fill();
    simulate(state, chain_id, number, timestamp, tx)
}

/// Executes `tx` against the committed state at (`number`, `timestamp`) without the nonce
/// check and without committing (`eth_call`, `eth_estimateGas`). A transaction the state
/// cannot pay for (value above the balance) is [`Error::Rejected`].
pub fn simulate<D: DatabaseRef>(
    state: &D,
    chain_id: u64,
    number: u64,
    timestamp: u64,
    tx: TxEnv,
) -> Result<ExecutionResult> {
    let mut evm = Context::mainnet()
        .with_db(WrapDatabaseRef(state))
        .with_cfg(cfg(chain_id, false))
        .with_block(block_env(number, timestamp))
        .build_mainnet();
    evm.transact(tx).map(|r| r.result).map_err(|e| match e {
        revm::context::result::EVMError::Transaction(invalid) => {
            Error::Rejected(invalid.to_string())
        }
        revm::context::result::EVMError::Database(e) => Error::Store(e.to_string()),
        other => Error::Evm(other.to_string()),
    })
}

/// The hash of one transaction's state changes, canonical (sorted) so re-execution
/// reproduces it bit for bit.
pub fn state_changes_hash(state: &EvmState) -> B256 {
    let mut accounts: Vec<_> = state.iter().filter(|(_, a)| a.is_touched()).collect();
    accounts.sort_by_key(|(addr, _)| **addr);
    let mut buf = Vec::new();
    for (addr, acc) in accounts {
        buf.extend_from_slice(addr.as_slice());
        buf.extend_from_slice(&acc.info.nonce.to_be_bytes());
        buf.extend_from_slice(&acc.info.balance.to_be_bytes::<32>());
        buf.extend_from_slice(acc.info.code_hash.as_slice());
        buf.push(acc.is_selfdestructed() as u8);
        let mut slots: Vec<_> = acc.storage.iter().filter(|(_, s)| s.is_changed()).collect();
        slots.sort_by_key(|(k, _)| **k);
        for (k, s) in slots {
            buf.extend_from_slice(&k.to_be_bytes::<32>());
            buf.extend_from_slice(&s.present_value.to_be_bytes::<32>());
        }
    }
    keccak256(buf)
}

/// Folds a transaction's change hash into the running state hash.
pub fn fold_state_hash(running: B256, changes: B256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(running.as_slice());
    buf[32..].copy_from_slice(changes.as_slice());
    keccak256(buf)
}
