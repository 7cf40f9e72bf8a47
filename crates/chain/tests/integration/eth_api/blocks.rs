//! Blocks, transactions, receipts and logs.

use super::*;

#[tokio::test]
async fn chain_identity_and_blocks() {
    let rig = rig().await;
    let api = api(&rig, Limits::default());
    let head = rig.chain.head_number();
    assert_eq!(ok(&api, "eth_chainId", json!([])).await, "0x5345");
    assert_eq!(ok(&api, "net_version", json!([])).await, "21317");
    assert!(
        ok(&api, "web3_clientVersion", json!([]))
            .await
            .as_str()
            .unwrap()
            .starts_with("SecureEHR/v")
    );
    assert_eq!(ok(&api, "eth_syncing", json!([])).await, false);
    assert_eq!(ok(&api, "eth_blockNumber", json!([])).await, hex(head));

    // Every block, by number and by hash, as alloy's client type reads it.
    let mut parent = B256::ZERO;
    for n in 0..=head {
        let stored = rig.chain.block(n).unwrap().unwrap();
        let (_, receipts) = rig.chain.block_with_receipts(n).unwrap().unwrap();
        let v = ok(&api, "eth_getBlockByNumber", json!([hex(n), false])).await;
        let b: Block = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(b.header.hash, stored.header.hash(), "block {n}");
        assert_eq!(b.header.number, n);
        assert_eq!(b.header.parent_hash, parent);
        assert_eq!(b.header.timestamp, stored.header.timestamp);
        assert_eq!(b.header.state_root, stored.header.state_hash);
        assert_eq!(b.header.gas_used, stored.header.gas_used);
        assert_eq!(b.header.gas_limit, 30_000_000);
        assert_eq!(b.header.base_fee_per_gas, Some(0));
        let hashes: Vec<B256> = receipts.iter().map(|r| r.tx_hash).collect();
        assert_eq!(b.transactions.hashes().collect::<Vec<_>>(), hashes);
        // The bloom holds every log's address and topics.
        for log in receipts.iter().flat_map(|r| &r.logs) {
            assert!(
                b.header
                    .logs_bloom
                    .contains_input(BloomInput::Raw(log.address.as_slice()))
            );
            for t in log.topics() {
                assert!(
                    b.header
                        .logs_bloom
                        .contains_input(BloomInput::Raw(t.as_slice()))
                );
            }
        }
        let by_hash = ok(&api, "eth_getBlockByHash", json!([b.header.hash, false])).await;
        assert_eq!(by_hash, v);
        assert_eq!(
            ok(
                &api,
                "eth_getBlockTransactionCountByNumber",
                json!([hex(n)])
            )
            .await,
            hex(hashes.len() as u64)
        );
        parent = b.header.hash;
    }
    let empty: Block =
        serde_json::from_value(ok(&api, "eth_getBlockByNumber", json!(["0x0", false])).await)
            .unwrap();
    assert_ne!(
        empty.header.logs_bloom,
        Bloom::ZERO,
        "genesis logs its admin"
    );

    // Tags: earliest is 0; latest, safe, finalized and pending are the head.
    let number = |v: Value| v["number"].as_str().unwrap().to_owned();
    assert_eq!(
        number(ok(&api, "eth_getBlockByNumber", json!(["earliest", false])).await),
        "0x0"
    );
    for tag in ["latest", "safe", "finalized", "pending"] {
        assert_eq!(
            number(ok(&api, "eth_getBlockByNumber", json!([tag, false])).await),
            hex(head),
            "{tag}"
        );
    }
    // Not found: null.
    assert_eq!(
        ok(&api, "eth_getBlockByNumber", json!([hex(head + 1), false])).await,
        Value::Null
    );
    assert_eq!(
        ok(
            &api,
            "eth_getBlockByHash",
            json!([B256::repeat_byte(7), true])
        )
        .await,
        Value::Null
    );

    // Full transactions.
    let full: Block =
        serde_json::from_value(ok(&api, "eth_getBlockByNumber", json!(["latest", true])).await)
            .unwrap();
    let txs = full.transactions.as_transactions().unwrap();
    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    assert_eq!(tx.block_number, Some(head));
    assert_eq!(tx.block_hash, Some(full.header.hash));
    assert_eq!(tx.transaction_index, Some(0));
    assert_eq!(
        tx.inner.signer(),
        rig.chain.block_with_receipts(head).unwrap().unwrap().1[0].from
    );
    assert_eq!(
        alloy::consensus::Transaction::to(tx.inner.inner()),
        Some(rig.chain.contract())
    );
}

#[tokio::test]
async fn transactions_and_receipts() {
    let rig = rig().await;
    let api = api(&rig, Limits::default());
    let contract = rig.chain.contract();
    for n in 0..=rig.chain.head_number() {
        let (block, receipts) = rig.chain.block_with_receipts(n).unwrap().unwrap();
        let all: Vec<TransactionReceipt> =
            serde_json::from_value(ok(&api, "eth_getBlockReceipts", json!([hex(n)])).await)
                .unwrap();
        assert_eq!(all.len(), receipts.len());
        let mut cumulative = 0;
        let mut log_index = 0;
        for (i, r) in receipts.iter().enumerate() {
            let tx: Transaction = serde_json::from_value(
                ok(&api, "eth_getTransactionByHash", json!([r.tx_hash])).await,
            )
            .unwrap();
            assert_eq!(*tx.inner.tx_hash(), r.tx_hash);
            assert_eq!(tx.inner.signer(), r.from);
            assert_eq!(tx.block_number, Some(n));
            assert_eq!(tx.transaction_index, Some(i as u64));
            assert_eq!(tx.effective_gas_price, Some(0));
            assert_eq!(
                Bytes::from(tx.inner.inner().encoded_2718()),
                block.transactions[i],
                "the transaction as signed"
            );

            let v = ok(&api, "eth_getTransactionReceipt", json!([r.tx_hash])).await;
            let receipt: TransactionReceipt = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(receipt, all[i], "eth_getBlockReceipts agrees");
            cumulative += r.gas_used;
            assert_eq!(v["type"], "0x2");
            assert_eq!(v["status"], "0x1");
            assert_eq!(receipt.status(), r.success);
            assert_eq!(receipt.gas_used, r.gas_used);
            assert_eq!(
                alloy::consensus::TxReceipt::cumulative_gas_used(&receipt.inner),
                cumulative
            );
            assert_eq!(receipt.from, r.from);
            assert_eq!(receipt.block_hash, Some(block.header.hash()));
            assert_eq!(receipt.transaction_index, Some(i as u64));
            assert_eq!(receipt.contract_address, r.contract_address);
            let logs = receipt.inner.logs();
            assert_eq!(logs.len(), r.logs.len());
            for (l, raw) in logs.iter().zip(&r.logs) {
                assert_eq!(&l.inner, raw);
                assert_eq!(l.log_index, Some(log_index));
                assert_eq!(l.transaction_hash, Some(r.tx_hash));
                assert_eq!(l.block_number, Some(n));
                log_index += 1;
            }
        }
    }
    // The genesis transaction deployed the contract.
    let genesis = rig.chain.block_with_receipts(0).unwrap().unwrap().1;
    let r = ok(
        &api,
        "eth_getTransactionReceipt",
        json!([genesis[0].tx_hash]),
    )
    .await;
    assert_eq!(r["contractAddress"], json!(contract));
    assert_eq!(r["to"], Value::Null);
    // Unknown: null.
    let nothing = B256::repeat_byte(9);
    assert_eq!(
        ok(&api, "eth_getTransactionByHash", json!([nothing])).await,
        Value::Null
    );
    assert_eq!(
        ok(&api, "eth_getTransactionReceipt", json!([nothing])).await,
        Value::Null
    );
    assert_eq!(
        ok(&api, "eth_getBlockReceipts", json!(["0xffff"])).await,
        Value::Null
    );
}

#[tokio::test]
async fn logs_by_record_address_topics_and_block_hash() {
    let rig = rig().await;
    let api = api(&rig, Limits::default());
    let contract = rig.chain.contract();
    let logged = EhrRegistry::AccessLogged::SIGNATURE_HASH;
    let record_topic = B256::from(U256::from(rig.record));

    // One record's access log, decoded with the contract's ABI.
    let logs: Vec<Log> = serde_json::from_value(
        ok(
            &api,
            "eth_getLogs",
            json!([access_logged_filter(&rig, rig.record)]),
        )
        .await,
    )
    .unwrap();
    assert_eq!(logs.len(), 2);
    for (log, nonce) in logs.iter().zip(1u64..) {
        let ev = EhrRegistry::AccessLogged::decode_log(&log.inner).unwrap();
        assert_eq!(ev.recordId, U256::from(rig.record));
        assert_eq!(ev.reader, rig.doctor.address());
        assert_eq!(ev.nonce, U256::from(nonce));
        assert!(!ev.emergency);
        // Positions agree with the block's receipt.
        let block_no = log.block_number.unwrap();
        let receipts: Vec<TransactionReceipt> =
            serde_json::from_value(ok(&api, "eth_getBlockReceipts", json!([hex(block_no)])).await)
                .unwrap();
        let in_receipt = receipts[log.transaction_index.unwrap() as usize]
            .inner
            .logs()
            .iter()
            .find(|l| l.log_index == log.log_index)
            .unwrap();
        assert_eq!(in_receipt, log);
    }

    // A list of addresses, an OR-list at topic0 and a null: the block walk, same answer.
    let or_list = json!([{
        "fromBlock": "0x0",
        "address": [contract, Address::repeat_byte(1)],
        "topics": [[logged, EhrRegistry::RecordVersion::SIGNATURE_HASH], record_topic],
    }]);
    let both: Vec<Log> = serde_json::from_value(ok(&api, "eth_getLogs", or_list).await).unwrap();
    assert_eq!(both.len(), 3, "version 1 and two reads");
    assert!(logs.iter().all(|l| both.contains(l)));
    let any_event = json!([{ "fromBlock": "earliest", "topics": [null, record_topic] }]);
    let any: Vec<Log> = serde_json::from_value(ok(&api, "eth_getLogs", any_event).await).unwrap();
    // RecordVersion, AccessGranted has the patient first; AccessLogged ×2.
    assert_eq!(any.len(), 3);
    // Another address: nothing.
    let elsewhere = json!([{ "fromBlock": "earliest", "address": Address::repeat_byte(1) }]);
    assert_eq!(ok(&api, "eth_getLogs", elsewhere).await, json!([]));
    // The default range is the head only.
    let head_only: Vec<Log> =
        serde_json::from_value(ok(&api, "eth_getLogs", json!([{ "topics": [logged] }])).await)
            .unwrap();
    assert_eq!(head_only.len(), 1);
    assert_eq!(
        head_only[0].inner.topics()[1],
        B256::from(U256::from(rig.other_record))
    );

    // By block hash.
    let at = logs[1].block_hash.unwrap();
    let by_hash: Vec<Log> =
        serde_json::from_value(ok(&api, "eth_getLogs", json!([{ "blockHash": at }])).await)
            .unwrap();
    assert_eq!(by_hash, vec![logs[1].clone()]);
    let e = err(
        &api,
        "eth_getLogs",
        json!([{ "blockHash": B256::repeat_byte(3) }]),
    )
    .await;
    assert_eq!(e.code, code::SERVER_ERROR);
    let e = err(
        &api,
        "eth_getLogs",
        json!([{ "blockHash": at, "fromBlock": "0x1" }]),
    )
    .await;
    assert_eq!(e.code, code::INVALID_PARAMS);
    let e = err(
        &api,
        "eth_getLogs",
        json!([{ "fromBlock": "0x5", "toBlock": "0x2" }]),
    )
    .await;
    assert_eq!(e.code, code::INVALID_PARAMS);
    assert!(e.message.contains("fromBlock 5 is after toBlock 2"), "{e}");
    // Beyond the head: nothing yet.
    let future = json!([{ "fromBlock": "0xffff", "toBlock": "0xffffff" }]);
    assert_eq!(ok(&api, "eth_getLogs", future).await, json!([]));
}

#[tokio::test]
async fn log_limits_name_themselves() {
    let rig = rig().await;
    let head = rig.chain.head_number();
    // A range limit the walk exceeds, but not the index.
    let narrow = api(
        &rig,
        Limits {
            max_log_range: 3,
            ..Limits::default()
        },
    );
    let e = err(&narrow, "eth_getLogs", json!([{ "fromBlock": "earliest" }])).await;
    assert_eq!(e.code, code::LIMIT_EXCEEDED);
    assert_eq!(
        e.message.split(';').next().unwrap(),
        format!(
            "eth_getLogs spans {} blocks: at most 3 (--rpc-max-log-range)",
            head + 1
        )
    );
    let indexed = ok(
        &narrow,
        "eth_getLogs",
        json!([access_logged_filter(&rig, rig.record)]),
    )
    .await;
    assert_eq!(
        indexed.as_array().unwrap().len(),
        2,
        "the index ignores the range limit"
    );
    let recent = json!([{ "fromBlock": hex(head - 2) }]);
    assert!(
        !ok(&narrow, "eth_getLogs", recent)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A result limit, on either path.
    let one = api(
        &rig,
        Limits {
            max_logs: 1,
            ..Limits::default()
        },
    );
    for filter in [
        access_logged_filter(&rig, rig.record),
        json!({ "fromBlock": "earliest", "topics": [EhrRegistry::AccessLogged::SIGNATURE_HASH] }),
    ] {
        let e = err(&one, "eth_getLogs", json!([filter])).await;
        assert_eq!(e.code, code::LIMIT_EXCEEDED);
        assert!(
            e.message
                .starts_with("eth_getLogs matches more than 1 logs (--rpc-max-logs)"),
            "{e}"
        );
    }
    let single = access_logged_filter(&rig, rig.other_record);
    assert_eq!(
        ok(&one, "eth_getLogs", json!([single]))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
