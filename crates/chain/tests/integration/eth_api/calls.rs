//! Calls, gas estimates, account state, fees and raw transactions.

use super::*;

/// Creation code whose constructor reverts with `Error(reason)`.
fn reverting_init_code(reason: &str) -> Bytes {
    let payload = alloy::sol_types::Revert::from(reason).abi_encode();
    let len = u8::try_from(payload.len()).unwrap();
    // PUSH1 len PUSH1 12 PUSH1 0 CODECOPY PUSH1 len PUSH1 0 REVERT, then the payload.
    let mut code = vec![0x60, len, 0x60, 12, 0x60, 0, 0x39, 0x60, len, 0x60, 0, 0xfd];
    code.extend_from_slice(&payload);
    code.into()
}

#[tokio::test]
async fn calls_estimates_and_state() {
    let rig = rig().await;
    let api = api(&rig, Limits::default());
    let contract = rig.chain.contract();
    let head = rig.chain.head_number();
    let can_access = |reader: Address| {
        json!({
            "to": contract,
            "data": Bytes::from(EhrRegistry::canAccessCall { reader, recordId: U256::from(rig.record) }.abi_encode()),
        })
    };
    let decode = |v: Value| {
        let out: Bytes = serde_json::from_value(v).unwrap();
        EhrRegistry::canAccessCall::abi_decode_returns(&out).unwrap()
    };
    assert!(decode(
        ok(
            &api,
            "eth_call",
            json!([can_access(rig.doctor.address()), "latest"])
        )
        .await
    ));
    assert!(!decode(
        ok(
            &api,
            "eth_call",
            json!([can_access(Address::repeat_byte(5))])
        )
        .await
    ));
    // The head by number, by hash and as "pending" is the same state; older state is not kept.
    let head_hash = rig.chain.block(head).unwrap().unwrap().header.hash();
    for at in [
        json!(hex(head)),
        json!({ "blockHash": head_hash }),
        json!("pending"),
    ] {
        assert!(decode(
            ok(
                &api,
                "eth_call",
                json!([can_access(rig.doctor.address()), at])
            )
            .await
        ));
    }
    let e = err(
        &api,
        "eth_call",
        json!([can_access(rig.doctor.address()), "0x1"]),
    )
    .await;
    assert_eq!(e.code, code::SERVER_ERROR);
    assert!(e.message.contains("not kept"), "{e}");
    let e = err(
        &api,
        "eth_call",
        json!([can_access(rig.doctor.address()), hex(head + 5)]),
    )
    .await;
    assert!(e.message.starts_with("header not found"), "{e}");

    // A contract revert: code 3, "execution reverted", the custom error as data.
    let stranger = Address::repeat_byte(5);
    let log_access = json!({
        "from": stranger,
        "to": contract,
        "input": Bytes::from(EhrRegistry::logAccessCall { recordId: U256::from(rig.record), nonce: U256::from(9) }.abi_encode()),
    });
    for method in ["eth_call", "eth_estimateGas"] {
        let e = err(&api, method, json!([log_access])).await;
        assert_eq!(
            (e.code, e.message.as_str()),
            (code::EXECUTION_REVERTED, "execution reverted")
        );
        let data: Bytes = serde_json::from_value(e.data.unwrap()).unwrap();
        match EhrRegistryErrors::abi_decode(&data).unwrap() {
            EhrRegistryErrors::NotRegisteredProvider(g) => assert_eq!(g.account, stranger),
            other => panic!("{other:?}"),
        }
    }
    // An Error(string) revert: its reason in the message.
    let e = err(
        &api,
        "eth_call",
        json!([{ "data": reverting_init_code("nope") }]),
    )
    .await;
    assert_eq!(e.code, code::EXECUTION_REVERTED);
    assert_eq!(e.message, "execution reverted: nope");
    assert_eq!(
        serde_json::from_value::<Bytes>(e.data.unwrap()).unwrap(),
        Bytes::from(alloy::sol_types::Revert::from("nope").abi_encode())
    );
    // `input` and `data` that disagree.
    let e = err(
        &api,
        "eth_call",
        json!([{ "to": contract, "input": "0x01", "data": "0x02" }]),
    )
    .await;
    assert_eq!(e.code, code::INVALID_PARAMS);

    // Gas: the estimate is enough for the call (a transaction signed with it succeeds:
    // see `raw_transactions_when_offered`), and more than the intrinsic 21,000.
    let gas = ok(
        &api,
        "eth_estimateGas",
        json!([can_access(rig.doctor.address())]),
    )
    .await;
    let gas = u64::from_str_radix(gas.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert!(gas > 21_000, "{gas}");

    // Accounts.
    let code_v = ok(&api, "eth_getCode", json!([contract, "latest"])).await;
    let artifact: Value = serde_json::from_str(ehr_chain::contract::ARTIFACT_JSON).unwrap();
    assert_eq!(code_v, artifact["deployedBytecode"]);
    assert_eq!(
        ok(&api, "eth_getCode", json!([rig.alice.address()])).await,
        "0x"
    );
    assert_eq!(
        ok(
            &api,
            "eth_getBalance",
            json!([rig.alice.address(), "latest"])
        )
        .await,
        "0x0"
    );
    // Alice registered, added two records and granted twice.
    for tag in ["latest", "pending"] {
        assert_eq!(
            ok(
                &api,
                "eth_getTransactionCount",
                json!([rig.alice.address(), tag])
            )
            .await,
            "0x5"
        );
    }
    let slot0 = ok(&api, "eth_getStorageAt", json!([contract, "0x0", "latest"])).await;
    let slot0: B256 = serde_json::from_value(slot0).unwrap();
    assert_eq!(
        slot0,
        B256::from(rig.chain.storage_at(contract, U256::ZERO).unwrap())
    );
    let e = err(&api, "eth_getBalance", json!(["0x1234", "latest"])).await;
    assert_eq!(e.code, code::INVALID_PARAMS);
    assert!(e.message.starts_with("invalid argument 0 (address)"), "{e}");
    let e = err(&api, "eth_getBalance", json!([])).await;
    assert_eq!(e.message, "missing value for required argument 0 (address)");

    // Fees: gas is free.
    assert_eq!(ok(&api, "eth_gasPrice", json!([])).await, "0x0");
    assert_eq!(ok(&api, "eth_maxPriorityFeePerGas", json!([])).await, "0x0");
    let h: FeeHistory = serde_json::from_value(
        ok(&api, "eth_feeHistory", json!(["0x4", "latest", [25, 75]])).await,
    )
    .unwrap();
    assert_eq!(h.oldest_block, head - 3);
    assert_eq!(h.base_fee_per_gas, vec![0; 5]);
    assert_eq!(h.reward, Some(vec![vec![0, 0]; 4]));
    for (ratio, n) in h.gas_used_ratio.iter().zip(head - 3..) {
        let used = rig.chain.block(n).unwrap().unwrap().header.gas_used;
        assert_eq!(*ratio, used as f64 / 30_000_000.0);
        assert!(*ratio > 0.0);
    }
    // A count beyond the chain is cut to it; a plain number is taken too.
    let h: FeeHistory =
        serde_json::from_value(ok(&api, "eth_feeHistory", json!([1000, "latest"])).await).unwrap();
    assert_eq!(
        (h.oldest_block, h.gas_used_ratio.len()),
        (0, head as usize + 1)
    );
    assert_eq!(h.reward, None);
    let e = err(&api, "eth_feeHistory", json!(["0x2", "latest", [75, 25]])).await;
    assert_eq!(e.code, code::INVALID_PARAMS);
}

fn sign_1559(
    from: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Address,
    input: Bytes,
) -> Bytes {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 500_000,
        to: TxKind::Call(to),
        input,
        ..Default::default()
    };
    let sig = from.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    env.encoded_2718().into()
}

fn sign_legacy(
    from: &PrivateKeySigner,
    chain_id: Option<u64>,
    nonce: u64,
    to: Address,
    input: Bytes,
) -> Bytes {
    let tx = TxLegacy {
        chain_id,
        nonce,
        gas_price: 0,
        gas_limit: 500_000,
        to: TxKind::Call(to),
        value: U256::ZERO,
        input,
    };
    let sig = from.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    env.encoded_2718().into()
}

#[tokio::test]
async fn raw_transactions_only_when_offered() {
    let rig = rig().await;
    let api = api(&rig, Limits::default());
    let head = rig.chain.head_number();
    let nonce = rig.chain.pending_nonce(rig.alice.address()).unwrap();
    let grant = EhrRegistry::grantAccessCall {
        provider: rig.doctor.address(),
        recordId: U256::from(rig.other_record),
        expiresAt: ehr_primitives::unix_now() + 3600,
    };
    let raw = sign_1559(
        &rig.alice,
        0x5345,
        nonce,
        rig.chain.contract(),
        grant.abi_encode().into(),
    );
    let e = err(&api, "eth_sendRawTransaction", json!([raw])).await;
    assert_eq!(e.code, code::METHOD_NOT_FOUND);
    assert!(e.message.contains("--rpc-send"), "{e}");
    assert_eq!(rig.chain.head_number(), head, "nothing mined");
}

async fn pending_nonce(api: &EthApi, addr: Address) -> u64 {
    let v = ok(api, "eth_getTransactionCount", json!([addr, "pending"])).await;
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

#[tokio::test]
async fn raw_transactions_when_offered() {
    let rig = rig().await;
    let api = api(
        &rig,
        Limits {
            allow_send: true,
            ..Limits::default()
        },
    );
    let contract = rig.chain.contract();
    let alice = rig.alice.address();
    let grant = |record: u64| -> Bytes {
        EhrRegistry::grantAccessCall {
            provider: rig.doctor.address(),
            recordId: U256::from(record),
            expiresAt: ehr_primitives::unix_now() + 3600,
        }
        .abi_encode()
        .into()
    };

    // An EIP-1559 grant: mined, its receipt holds the event.
    let nonce = pending_nonce(&api, alice).await;
    let raw = sign_1559(&rig.alice, 0x5345, nonce, contract, grant(rig.other_record));
    let hash: B256 =
        serde_json::from_value(ok(&api, "eth_sendRawTransaction", json!([raw])).await).unwrap();
    let receipt: TransactionReceipt =
        serde_json::from_value(ok(&api, "eth_getTransactionReceipt", json!([hash])).await).unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.from, alice);
    let ev = EhrRegistry::AccessGranted::decode_log(&receipt.inner.logs()[0].inner).unwrap();
    assert_eq!((ev.patient, ev.provider), (alice, rig.doctor.address()));
    assert_eq!(ev.recordId, U256::from(rig.other_record));
    assert_eq!(pending_nonce(&api, alice).await, nonce + 1);

    // An EIP-155 legacy one.
    let raw = sign_legacy(
        &rig.alice,
        Some(0x5345),
        nonce + 1,
        contract,
        grant(rig.record),
    );
    let hash: B256 =
        serde_json::from_value(ok(&api, "eth_sendRawTransaction", json!([raw])).await).unwrap();
    let r = ok(&api, "eth_getTransactionReceipt", json!([hash])).await;
    assert_eq!(
        (r["type"].as_str(), r["status"].as_str()),
        (Some("0x0"), Some("0x1"))
    );
    let tx = ok(&api, "eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(tx["chainId"], "0x5345");

    // One the contract refuses is mined, with status 0 (it used its nonce).
    let bad = EhrRegistry::grantAccessCall {
        provider: Address::repeat_byte(0x77),
        recordId: U256::from(rig.record),
        expiresAt: ehr_primitives::unix_now() + 3600,
    };
    let raw = sign_1559(
        &rig.alice,
        0x5345,
        nonce + 2,
        contract,
        bad.abi_encode().into(),
    );
    let hash: B256 =
        serde_json::from_value(ok(&api, "eth_sendRawTransaction", json!([raw])).await).unwrap();
    let r = ok(&api, "eth_getTransactionReceipt", json!([hash])).await;
    assert_eq!(r["status"], "0x0");
    assert_eq!(r["logs"], json!([]));

    // Refused ones change nothing: wrong chain id, pre-EIP-155, a used nonce, garbage.
    let head = rig.chain.head_number();
    let refused = [
        (
            sign_1559(&rig.alice, 1, nonce + 3, contract, grant(rig.record)),
            "chain id",
        ),
        (
            sign_legacy(&rig.alice, None, nonce + 3, contract, grant(rig.record)),
            "EIP-155",
        ),
        (
            sign_1559(&rig.alice, 0x5345, nonce, contract, grant(rig.record)),
            "nonce",
        ),
        (Bytes::from_static(b"\x02\x01\x02"), "undecodable"),
    ];
    for (raw, why) in refused {
        let e = err(&api, "eth_sendRawTransaction", json!([raw])).await;
        assert_eq!(e.code, code::SERVER_ERROR, "{why}: {e}");
        assert!(
            e.message.to_lowercase().contains(&why.to_lowercase()),
            "{why}: {e}"
        );
    }
    assert_eq!(rig.chain.head_number(), head, "nothing mined");
    assert_eq!(pending_nonce(&api, alice).await, nonce + 3);

    // A transaction signed with eth_estimateGas's figure as its gas limit succeeds.
    let call = json!({ "from": alice, "to": contract, "data": grant(rig.record) });
    let gas = ok(&api, "eth_estimateGas", json!([call])).await;
    let gas = u64::from_str_radix(gas.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let tx = TxEip1559 {
        chain_id: 0x5345,
        nonce: nonce + 3,
        gas_limit: gas,
        to: TxKind::Call(contract),
        input: grant(rig.record),
        ..Default::default()
    };
    let sig = rig.alice.sign_hash_sync(&tx.signature_hash()).unwrap();
    let raw: Bytes = TxEnvelope::from(tx.into_signed(sig)).encoded_2718().into();
    let hash: B256 =
        serde_json::from_value(ok(&api, "eth_sendRawTransaction", json!([raw])).await).unwrap();
    let r = ok(&api, "eth_getTransactionReceipt", json!([hash])).await;
    assert_eq!(r["status"], "0x1", "gas {gas}");
}
