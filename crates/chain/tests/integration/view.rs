//! The embedded chain's view API (what `eth_api` serves): blocks with receipts, lookups by
//! hash, logs by topic, accounts and storage, calls and gas estimates, raw transactions.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEip2930, TxEnvelope, TxLegacy};
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::{Address, TxKind, U256};
use alloy::signers::SignerSync;
use alloy::sol_types::{SolCall, SolEvent};
use ehr_chain::contract::{EhrRegistry, codec};
use ehr_chain::embedded::{CallRequest, TxLocation};
use ehr_chain::{B256, Bytes, ChainConfig, EmbeddedChain, Error, PrivateKeySigner, RegistryExt};

fn open(dir: &std::path::Path, admin: &PrivateKeySigner) -> EmbeddedChain {
    EmbeddedChain::open(dir, ChainConfig::default(), admin).unwrap()
}

fn register_patient() -> Bytes {
    EhrRegistry::registerPatientCall {}.abi_encode().into()
}

fn legacy(from: &PrivateKeySigner, chain_id: Option<u64>, nonce: u64, to: Address) -> Bytes {
    let tx = TxLegacy {
        chain_id,
        nonce,
        gas_price: 0,
        gas_limit: 1_000_000,
        to: TxKind::Call(to),
        value: U256::ZERO,
        input: register_patient(),
    };
    let sig = from.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    env.encoded_2718().into()
}

fn eip1559(from: &PrivateKeySigner, chain_id: u64, nonce: u64, to: Address, gas: u64) -> Bytes {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: gas,
        to: TxKind::Call(to),
        input: register_patient(),
        ..Default::default()
    };
    let sig = from.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    env.encoded_2718().into()
}

/// Every block, transaction and log is found by number, hash and topic; ranges and limits
/// of `logs_by_topic1` hold.
#[tokio::test]
async fn blocks_transactions_and_logs_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = open(dir.path(), &admin);
    let alice = PrivateKeySigner::random();
    chain.register_patient(&alice).await.unwrap();
    let (id, _) = chain
        .add_record(&alice, B256::repeat_byte(1), codec::RAW)
        .await
        .unwrap();
    for v in 2..=4u8 {
        chain
            .update_record(&alice, id, B256::repeat_byte(v), codec::RAW)
            .await
            .unwrap();
    }
    let (other, _) = chain
        .add_record(&alice, B256::repeat_byte(9), codec::RAW)
        .await
        .unwrap();
    let head = chain.head_number();
    assert_eq!(head, 6);
    assert_eq!(chain.block_gas_limit(), 30_000_000);

    let mut seen_logs = 0;
    for n in 0..=head {
        let (block, receipts) = chain.block_with_receipts(n).unwrap().unwrap();
        assert_eq!(Some(&block), chain.block(n).unwrap().as_ref());
        assert_eq!(block.transactions.len(), receipts.len());
        assert_eq!(chain.block_number_of(block.header.hash()).unwrap(), Some(n));
        for (i, r) in receipts.iter().enumerate() {
            assert_eq!(
                chain.tx_location(r.tx_hash).unwrap(),
                Some(TxLocation {
                    block: n,
                    index: i as u32
                })
            );
            seen_logs += r.logs.len();
        }
    }
    assert!(seen_logs > 0);
    assert!(chain.block_with_receipts(head + 1).unwrap().is_none());
    assert_eq!(chain.block_number_of(B256::repeat_byte(7)).unwrap(), None);
    assert_eq!(chain.tx_location(B256::repeat_byte(7)).unwrap(), None);

    // Record `id` has four versions, in blocks 2..=5; `other` one, in block 6.
    let t0 = EhrRegistry::RecordVersion::SIGNATURE_HASH;
    let t1 = B256::from(U256::from(id));
    let all = chain.logs_by_topic1(t0, t1, 0, head, 100).unwrap();
    assert_eq!(
        all.iter().map(|l| l.block).collect::<Vec<_>>(),
        vec![2, 3, 4, 5]
    );
    for l in &all {
        let (block, receipts) = chain.block_with_receipts(l.block).unwrap().unwrap();
        let r = &receipts[l.tx_index as usize];
        assert_eq!(r.tx_hash, l.tx_hash);
        let in_block: Vec<_> = receipts.iter().flat_map(|r| r.logs.iter()).collect();
        assert_eq!(in_block[l.log_index as usize], &l.log);
        assert_eq!(l.log.address, ehr_chain::Registry::contract(&chain));
        let ev = EhrRegistry::RecordVersion::decode_log(&l.log).unwrap();
        assert_eq!(ev.recordId, U256::from(id));
        assert_eq!(block.header.number, l.block);
    }
    assert_eq!(
        chain.logs_by_topic1(t0, t1, 3, 4, 100).unwrap(),
        all[1..3].to_vec(),
        "a block range"
    );
    // At most limit + 1, so the caller can tell there are more.
    assert_eq!(chain.logs_by_topic1(t0, t1, 0, head, 2).unwrap(), all[..3]);
    assert_eq!(chain.logs_by_topic1(t0, t1, 0, head, 0).unwrap(), all[..1]);
    assert!(chain.logs_by_topic1(t0, t1, 6, head, 9).unwrap().is_empty());
    let o = chain
        .logs_by_topic1(t0, B256::from(U256::from(other)), 0, head, 9)
        .unwrap();
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].block, 6);
}

/// Accounts, code and storage at the head agree with what the contract says.
#[tokio::test]
async fn accounts_code_and_storage_at_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = open(dir.path(), &admin);
    let alice = PrivateKeySigner::random();
    chain.register_patient(&alice).await.unwrap();
    chain
        .add_record(&alice, B256::repeat_byte(1), codec::RAW)
        .await
        .unwrap();
    let contract = ehr_chain::Registry::contract(&chain);

    let c = chain.account(contract).unwrap();
    assert_eq!(c.nonce, 1, "a contract's nonce starts at 1");
    assert!(
        c.code.len() > 1000,
        "the runtime code: {} bytes",
        c.code.len()
    );
    let artifact: serde_json::Value =
        serde_json::from_str(ehr_chain::contract::ARTIFACT_JSON).unwrap();
    let runtime = artifact["deployedBytecode"].as_str().unwrap();
    let runtime: Bytes = runtime.parse().unwrap();
    assert_eq!(c.code, runtime);

    let a = chain.account(alice.address()).unwrap();
    assert_eq!((a.nonce, a.balance, a.code.len()), (2, U256::ZERO, 0));
    assert_eq!(chain.account(admin.address()).unwrap().nonce, 1);
    let nobody = chain.account(Address::repeat_byte(0x42)).unwrap();
    assert_eq!(
        (nobody.nonce, nobody.balance, nobody.code.len()),
        (0, U256::ZERO, 0)
    );
    assert_eq!(chain.pending_nonce(alice.address()).unwrap(), 2);
    assert_eq!(chain.pending_nonce(Address::repeat_byte(0x42)).unwrap(), 0);

    // Slot 0 packs admin (20 bytes), recordCount (4), patientCount (4).
    let slot0 = chain.storage_at(contract, U256::ZERO).unwrap();
    let bytes = slot0.to_be_bytes::<32>();
    assert_eq!(Address::from_slice(&bytes[12..]), admin.address());
    assert_eq!(u32::from_be_bytes(bytes[8..12].try_into().unwrap()), 1);
    assert_eq!(u32::from_be_bytes(bytes[4..8].try_into().unwrap()), 1);
    assert_eq!(
        chain.storage_at(contract, U256::from(1u64 << 40)).unwrap(),
        U256::ZERO
    );
}

/// `eth_call` runs at the head without committing; `estimate_gas` gives the smallest gas
/// limit that succeeds: one gas less runs out.
#[tokio::test]
async fn calls_and_gas_estimates() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = open(dir.path(), &admin);
    let alice = PrivateKeySigner::random();
    chain.register_patient(&alice).await.unwrap();
    let (id, _) = chain
        .add_record(&alice, B256::repeat_byte(1), codec::RAW)
        .await
        .unwrap();
    let contract = ehr_chain::Registry::contract(&chain);
    let head = chain.head_number();

    let can = |reader: Address| CallRequest {
        to: Some(contract),
        input: EhrRegistry::canAccessCall {
            reader,
            recordId: U256::from(id),
        }
        .abi_encode()
        .into(),
        ..Default::default()
    };
    let out = chain.eth_call(&can(alice.address())).unwrap();
    assert!(out.is_success());
    assert!(EhrRegistry::canAccessCall::abi_decode_returns(out.output().unwrap()).unwrap());
    let out = chain.eth_call(&can(Address::repeat_byte(5))).unwrap();
    assert!(!EhrRegistry::canAccessCall::abi_decode_returns(out.output().unwrap()).unwrap());

    // A call the contract refuses is a revert with its error, and nothing is committed.
    let again = CallRequest {
        from: Some(alice.address()),
        to: Some(contract),
        input: register_patient(),
        ..Default::default()
    };
    let out = chain.eth_call(&again).unwrap();
    assert!(!out.is_success());
    let data = out.output().unwrap().clone();
    assert!(matches!(
        Error::from(ehr_chain::ContractError::decode(&data)).contract_error(),
        Some(ehr_chain::contract::EhrRegistryErrors::AlreadyRegistered(_))
    ));
    assert!(!chain.estimate_gas(&again).unwrap().is_success());
    // Value the caller does not have is refused, not run.
    let rich = CallRequest {
        value: U256::from(1),
        ..again.clone()
    };
    assert!(matches!(chain.eth_call(&rich), Err(Error::Rejected(_))));

    // A fresh patient: the estimate is enough, one gas less is not.
    let bob = PrivateKeySigner::random();
    let reg = CallRequest {
        from: Some(bob.address()),
        ..again.clone()
    };
    let run = chain.eth_call(&reg).unwrap();
    assert!(run.is_success());
    let est = chain.estimate_gas(&reg).unwrap();
    assert!(est.is_success());
    let gas = est.tx_gas_used();
    assert!(gas >= run.tx_gas_used(), "{gas} < {}", run.tx_gas_used());
    assert_eq!(chain.head_number(), head, "calls commit nothing");
    assert_eq!(chain.patient_id(bob.address()).await.unwrap(), None);

    let id_ = chain.chain_id();
    let short = eip1559(&bob, id_, 0, contract, gas - 1);
    let hash = chain.submit_raw_transaction(short).await.unwrap();
    let loc = chain.tx_location(hash).unwrap().unwrap();
    let (_, receipts) = chain.block_with_receipts(loc.block).unwrap().unwrap();
    assert!(!receipts[loc.index as usize].success, "one gas short fails");
    assert_eq!(chain.patient_id(bob.address()).await.unwrap(), None);
    let enough = eip1559(&bob, id_, 1, contract, gas);
    let hash = chain.submit_raw_transaction(enough).await.unwrap();
    let loc = chain.tx_location(hash).unwrap().unwrap();
    let (_, receipts) = chain.block_with_receipts(loc.block).unwrap().unwrap();
    assert!(
        receipts[loc.index as usize].success,
        "the estimate is enough"
    );
    assert_eq!(chain.patient_id(bob.address()).await.unwrap(), Some(2));

    // Creation (to = None) runs the creation code.
    let create = CallRequest {
        input: ehr_chain::contract::creation_code(),
        ..Default::default()
    };
    assert!(chain.eth_call(&create).unwrap().is_success());
}

/// EIP-155 legacy transactions are accepted; pre-EIP-155 legacy and other types are refused
/// and nothing is mined; a reverting one is mined with a status-0 receipt.
#[tokio::test]
async fn raw_transactions_legacy_and_refused_types() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = open(dir.path(), &admin);
    let contract = ehr_chain::Registry::contract(&chain);
    let id = chain.chain_id();
    let alice = PrivateKeySigner::random();
    let head = chain.head_number();

    let pre155 = legacy(&alice, None, 0, contract);
    let access_list = {
        let tx = TxEip2930 {
            chain_id: id,
            nonce: 0,
            gas_limit: 1_000_000,
            to: TxKind::Call(contract),
            input: register_patient(),
            ..Default::default()
        };
        let sig = alice.sign_hash_sync(&tx.signature_hash()).unwrap();
        let env: TxEnvelope = tx.into_signed(sig).into();
        Bytes::from(env.encoded_2718())
    };
    let wrong_chain = legacy(&alice, Some(id + 1), 0, contract);
    for (what, raw, expect) in [
        ("pre-EIP-155 legacy", pre155, "eip-155"),
        ("EIP-2930", access_list, "type 1"),
        ("legacy, wrong chain id", wrong_chain, "chain id"),
    ] {
        match chain.submit_raw_transaction(raw).await {
            Err(Error::Rejected(msg)) => {
                assert!(msg.to_lowercase().contains(expect), "{what}: {msg}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(chain.head_number(), head, "nothing was mined");
    assert_eq!(chain.pending_nonce(alice.address()).unwrap(), 0);

    let raw = legacy(&alice, Some(id), 0, contract);
    let hash = chain.submit_raw_transaction(raw.clone()).await.unwrap();
    assert_eq!(hash, alloy::primitives::keccak256(&raw));
    assert_eq!(chain.patient_id(alice.address()).await.unwrap(), Some(1));
    assert_eq!(chain.pending_nonce(alice.address()).unwrap(), 1);
    let loc = chain.tx_location(hash).unwrap().unwrap();
    let (block, _) = chain.block_with_receipts(loc.block).unwrap().unwrap();
    assert_eq!(block.transactions[loc.index as usize], raw);

    // The same again is a replay: refused (nonce), nothing mined.
    assert!(matches!(
        chain.submit_raw_transaction(raw).await,
        Err(Error::Rejected(_))
    ));
    // Registering twice reverts: mined, status 0, and the hash comes back.
    let head = chain.head_number();
    let twice = legacy(&alice, Some(id), 1, contract);
    let hash = chain.submit_raw_transaction(twice).await.unwrap();
    assert_eq!(chain.head_number(), head + 1);
    let loc = chain.tx_location(hash).unwrap().unwrap();
    let (_, receipts) = chain.block_with_receipts(loc.block).unwrap().unwrap();
    assert!(!receipts[loc.index as usize].success);
    assert_eq!(chain.pending_nonce(alice.address()).unwrap(), 2);

    // Legacy transactions in blocks replay and verify like any other.
    drop(chain);
    let report = EmbeddedChain::verify(dir.path(), id).unwrap();
    assert_eq!(report.transactions, 3);
    let chain = open(dir.path(), &admin);
    assert_eq!(chain.patient_id(alice.address()).await.unwrap(), Some(1));
}

/// Gas is free: a transaction from an account without ether that offers a fee anyway (as
/// wallets do: cast's estimate adds a tip) is mined and charged nothing.
#[tokio::test]
async fn offered_fees_are_not_charged() {
    let dir = tempfile::tempdir().unwrap();
    let admin = PrivateKeySigner::random();
    let chain = open(dir.path(), &admin);
    let contract = ehr_chain::Registry::contract(&chain);
    let id = chain.chain_id();
    let alice = PrivateKeySigner::random();
    let tip = {
        let tx = TxEip1559 {
            chain_id: id,
            nonce: 0,
            gas_limit: 1_000_000,
            max_fee_per_gas: 72_733,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(contract),
            input: register_patient(),
            ..Default::default()
        };
        let sig = alice.sign_hash_sync(&tx.signature_hash()).unwrap();
        let env: TxEnvelope = tx.into_signed(sig).into();
        Bytes::from(env.encoded_2718())
    };
    chain.submit_raw_transaction(tip).await.unwrap();
    assert_eq!(chain.patient_id(alice.address()).await.unwrap(), Some(1));
    let bob = PrivateKeySigner::random();
    let priced = {
        let tx = TxLegacy {
            chain_id: Some(id),
            nonce: 0,
            gas_price: 1_000_000_000,
            gas_limit: 1_000_000,
            to: TxKind::Call(contract),
            value: U256::ZERO,
            input: register_patient(),
        };
        let sig = bob.sign_hash_sync(&tx.signature_hash()).unwrap();
        let env: TxEnvelope = tx.into_signed(sig).into();
        Bytes::from(env.encoded_2718())
    };
    chain.submit_raw_transaction(priced).await.unwrap();
    assert_eq!(chain.patient_id(bob.address()).await.unwrap(), Some(2));
    for who in [&alice, &bob] {
        assert_eq!(chain.account(who.address()).unwrap().balance, U256::ZERO);
    }
}
