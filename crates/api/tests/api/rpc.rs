//! `POST /rpc` (issue 13 item 2): absent unless offered, behind the bearer token when one is
//! set, bodies and batches bounded, sends refused unless offered and then rate-limited per
//! client (the key login throttling uses).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use ehr_api::{AppState, RpcOptions, router};
use ehr_chain::eth_api::{EthApi, Limits, code};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::common::*;

fn rpc_app(h: &Harness, limits: Limits, options: RpcOptions) -> axum::Router {
    let chain = h.service.embedded_chain().expect("an embedded deployment");
    let api = Arc::new(EthApi::new(chain, limits));
    router(AppState::new(h.service.clone()).with_rpc(api, options))
}

/// `POST /rpc` with `body`, from TCP peer `peer`, with an optional bearer token.
fn request(body: &str, token: Option<&str>, peer: &str) -> Request<Body> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/rpc")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut req = req.body(Body::from(body.to_owned())).unwrap();
    let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    req
}

fn one(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string()
}

fn error_code(reply: &Reply) -> i64 {
    let body = reply.json();
    body["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not a JSON-RPC error: {body}"))
}

#[tokio::test]
async fn rpc_is_absent_unless_offered() {
    let h = service().await;
    let plain = router(AppState::new(h.service.clone()));
    let r = send(
        &plain,
        request(&one("eth_chainId", json!([])), None, "127.0.0.1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let app = rpc_app(&h, Limits::default(), RpcOptions::default());
    let r = send(
        &app,
        request(&one("eth_chainId", json!([])), None, "127.0.0.1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["result"], "0x5345");
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    // Only POST; only JSON; notifications alone get no body.
    let get = Request::builder().uri("/rpc").body(Body::empty()).unwrap();
    assert_eq!(send(&app, get).await.status, StatusCode::METHOD_NOT_ALLOWED);
    let text = Request::builder()
        .method(Method::POST)
        .uri("/rpc")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(one("eth_chainId", json!([]))))
        .unwrap();
    let r = send(&app, text).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&r), code::INVALID_REQUEST);
    let note = json!({ "jsonrpc": "2.0", "method": "eth_chainId" }).to_string();
    let r = send(&app, request(&note, None, "127.0.0.1")).await;
    assert_eq!((r.status, r.bytes.len()), (StatusCode::NO_CONTENT, 0));
}

#[tokio::test]
async fn rpc_token_is_required_when_set() {
    let h = service().await;
    let app = rpc_app(
        &h,
        Limits::default(),
        RpcOptions {
            token: Some(Zeroizing::new("s3cret-rpc-token".into())),
            ..RpcOptions::default()
        },
    );
    let body = one("eth_blockNumber", json!([]));
    for token in [
        None,
        Some("wrong"),
        Some("s3cret-rpc-token-and-more"),
        Some(""),
    ] {
        let r = send(&app, request(&body, token, "127.0.0.1")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
        let v = r.json();
        assert_eq!(v["jsonrpc"], "2.0");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--rpc-token"),
            "{v}"
        );
        assert!(!r.text().contains("s3cret"), "the token is never echoed");
    }
    let r = send(&app, request(&body, Some("s3cret-rpc-token"), "127.0.0.1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["result"].as_str().unwrap().starts_with("0x"));
}

#[tokio::test]
async fn rpc_bodies_and_batches_are_bounded() {
    let h = service().await;
    let app = rpc_app(
        &h,
        Limits {
            max_batch: 2,
            ..Limits::default()
        },
        RpcOptions {
            max_body_bytes: 1024,
            ..RpcOptions::default()
        },
    );
    let big = one(
        "eth_getBalance",
        json!(["0x".to_owned() + &"0".repeat(2000)]),
    );
    let r = send(&app, request(&big, None, "127.0.0.1")).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&r), code::INVALID_REQUEST);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1024 bytes")
    );

    let batch = |n: usize| {
        Value::Array(
            (0..n)
                .map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "eth_chainId" }))
                .collect(),
        )
        .to_string()
    };
    let r = send(&app, request(&batch(2), None, "127.0.0.1")).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let r = send(&app, request(&batch(3), None, "127.0.0.1")).await;
    assert_eq!(error_code(&r), code::INVALID_REQUEST);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--rpc-max-batch")
    );
}

#[tokio::test]
async fn rpc_sends_refused_unless_offered_then_rate_limited_per_client() {
    let h = service().await;
    // Garbage that the chain refuses: what matters is whether it got past this layer.
    let raw = one("eth_sendRawTransaction", json!(["0x02c0"]));

    let closed = rpc_app(&h, Limits::default(), RpcOptions::default());
    let r = send(&closed, request(&raw, None, "192.0.2.1")).await;
    assert_eq!(error_code(&r), code::METHOD_NOT_FOUND);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--rpc-send")
    );

    let open = rpc_app(
        &h,
        Limits {
            allow_send: true,
            ..Limits::default()
        },
        RpcOptions {
            sends_per_minute: 2,
            ..RpcOptions::default()
        },
    );
    for _ in 0..2 {
        let r = send(&open, request(&raw, None, "192.0.2.1")).await;
        assert_eq!(error_code(&r), code::SERVER_ERROR, "{}", r.text());
    }
    let r = send(&open, request(&raw, None, "192.0.2.1")).await;
    assert_eq!(error_code(&r), code::LIMIT_EXCEEDED, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--rpc-send-per-minute")
    );
    // In a batch too; reads are not limited; another client has its own allowance.
    let batch = format!("[{raw},{}]", one("eth_chainId", json!([])));
    let r = send(&open, request(&batch, None, "192.0.2.1")).await;
    let v = r.json();
    assert_eq!(v[0]["error"]["code"], code::LIMIT_EXCEEDED);
    assert_eq!(v[1]["result"], "0x5345");
    let r = send(&open, request(&raw, None, "192.0.2.2")).await;
    assert_eq!(error_code(&r), code::SERVER_ERROR);
}

/// alloy's provider — through `RpcRegistry`, as a remote `secure-ehr node` would use it with
/// `--chain-rpc http://SERVER/rpc` — reads the embedded chain over `/rpc`: the contract's
/// code and chain id at connect, `canAccess`, a record, the access log (logs by record) and
/// the "last minutes" search (blocks by number and timestamp).
#[tokio::test]
async fn rpc_registry_reads_the_embedded_chain_over_rpc() {
    use ehr_chain::{B256, PrivateKeySigner, Registry, RegistryExt, RpcRegistry, U256};
    let h = service().await;
    let chain = h.service.embedded_chain().unwrap();
    let (alice, reader) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let admin = ehr_records::deployment::read_signer(&ehr_records::deployment::admin_key_file(
        h.dir.path(),
    ))
    .unwrap();
    chain
        .register_provider(&admin, reader.address(), B256::ZERO)
        .await
        .unwrap();
    chain.register_patient(&alice).await.unwrap();
    let (id, _) = chain
        .add_record(
            &alice,
            B256::repeat_byte(4),
            ehr_chain::contract::codec::RAW,
        )
        .await
        .unwrap();
    let now = ehr_primitives::unix_now();
    chain
        .grant_access(&alice, reader.address(), Some(id), now + 3600)
        .await
        .unwrap();
    let read = chain.log_access(&reader, id, U256::from(77)).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api = Arc::new(EthApi::new(chain.clone(), Limits::default()));
    let state = AppState::new(h.service.clone()).with_rpc(api, RpcOptions::default());
    let server = tokio::spawn(ehr_api::serve(listener, state));

    let rpc = RpcRegistry::connect(&format!("http://{addr}/rpc"), chain.contract())
        .await
        .unwrap();
    let info = rpc.info().await.unwrap();
    let head = chain.block(chain.head_number()).unwrap().unwrap().header;
    assert_eq!(
        (
            info.chain_id,
            info.contract,
            info.head_block,
            info.head_hash
        ),
        (0x5345, chain.contract(), head.number, head.hash())
    );
    assert!(rpc.can_access(reader.address(), id).await.unwrap());
    assert!(!rpc.can_access(alice.address(), id + 1).await.unwrap());
    let record = rpc.record(id).await.unwrap();
    assert_eq!(
        (record.owner, record.digest),
        (alice.address(), B256::repeat_byte(4))
    );
    let log = rpc
        .access_log(id, Some(reader.address()), Some(U256::from(77)))
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].reader, log[0].tx_hash, log[0].block_number),
        (reader.address(), read.tx_hash, read.block_number)
    );
    let recent = rpc
        .access_log_since(id, Some(reader.address()), None, now.saturating_sub(60))
        .await
        .unwrap();
    assert_eq!(recent, log);
    server.abort();
}
