//! JSON-RPC itself: errors, batches, notifications, the gate.

use super::*;

#[tokio::test]
async fn json_rpc_protocol_errors_batches_and_notifications() {
    let rig = rig().await;
    let api = api(
        &rig,
        Limits {
            max_batch: 3,
            ..Limits::default()
        },
    );
    let error_of = |v: &Value| (v["error"]["code"].as_i64().unwrap(), v["id"].clone());

    let v = api.handle("{not json".as_bytes()).await.unwrap();
    assert_eq!(error_of(&v), (code::PARSE_ERROR, Value::Null));
    let v = api
        .handle(r#"{"id":4,"method":"eth_chainId"}"#.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        error_of(&v),
        (code::INVALID_REQUEST, json!(4)),
        "no jsonrpc"
    );
    let v = api
        .handle(r#"{"jsonrpc":"1.0","id":4,"method":"eth_chainId"}"#.as_bytes())
        .await
        .unwrap();
    assert_eq!(error_of(&v), (code::INVALID_REQUEST, json!(4)));
    let v = api
        .handle(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"eth_chainId"}"#.as_bytes())
        .await
        .unwrap();
    assert_eq!(error_of(&v), (code::INVALID_REQUEST, Value::Null));
    let v = api
        .handle(r#"{"jsonrpc":"2.0","id":"x","method":"eth_mine"}"#.as_bytes())
        .await
        .unwrap();
    assert_eq!(error_of(&v), (code::METHOD_NOT_FOUND, json!("x")));
    let v = api
        .handle(r#"{"jsonrpc":"2.0","id":5,"method":"eth_getBalance","params":{"a":1}}"#.as_bytes())
        .await
        .unwrap();
    assert_eq!(error_of(&v), (code::INVALID_PARAMS, json!(5)));
    let v = api
        .handle(r#"{"jsonrpc":"2.0","id":5,"method":"eth_blockNumber","params":null}"#.as_bytes())
        .await
        .unwrap();
    assert_eq!(v["result"], hex(rig.chain.head_number()));
    let v = api.handle(r#"{"jsonrpc":"2.0","id":6,"method":"eth_getBlockByNumber","params":["latest",false,1]}"#.as_bytes()).await.unwrap();
    assert_eq!(error_of(&v), (code::INVALID_PARAMS, json!(6)));
    assert_eq!(v["error"]["message"], "too many arguments, want at most 2");

    // Notifications get nothing back, alone or in a batch.
    assert_eq!(
        api.handle(r#"{"jsonrpc":"2.0","method":"eth_chainId"}"#.as_bytes())
            .await,
        None
    );
    assert_eq!(
        api.handle(r#"[{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","method":"eth_blockNumber"}]"#.as_bytes()).await,
        None
    );
    // A batch: replies in order, notifications left out, bad members answered alone.
    let v = api
        .handle(
            br#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},
            {"jsonrpc":"2.0","method":"eth_chainId"},
            17]"#,
        )
        .await
        .unwrap();
    let replies = v.as_array().unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!(
        (replies[0]["id"].clone(), replies[0]["result"].clone()),
        (json!(1), json!("0x5345"))
    );
    assert_eq!(error_of(&replies[1]), (code::INVALID_REQUEST, Value::Null));
    // Empty and oversized batches.
    let v = api.handle("[]".as_bytes()).await.unwrap();
    assert_eq!(error_of(&v), (code::INVALID_REQUEST, Value::Null));
    let four = json!(
        [1, 2, 3, 4].map(|id| json!({ "jsonrpc": "2.0", "id": id, "method": "eth_chainId" }))
    );
    let v = api.handle(four.to_string().as_bytes()).await.unwrap();
    assert_eq!(error_of(&v), (code::INVALID_REQUEST, Value::Null));
    assert_eq!(
        v["error"]["message"],
        "batch of 4 requests: at most 3 (--rpc-max-batch)"
    );

    // A gate refuses before the method runs.
    let gate = |m: &str| {
        if m == "eth_blockNumber" {
            Err(RpcError::new(code::LIMIT_EXCEEDED, "slow down"))
        } else {
            Ok(())
        }
    };
    let v = api
        .handle_with(
            br#"[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]"#,
            &gate,
        )
        .await
        .unwrap();
    assert_eq!(
        v[0]["error"],
        json!({ "code": code::LIMIT_EXCEEDED, "message": "slow down" })
    );
    assert_eq!(v[1]["result"], "0x5345");
}
