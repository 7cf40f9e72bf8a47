//! [`RemoteNode`]: a `secure-ehr node` seen from the records service, over HTTP.

use std::time::Duration;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use async_trait::async_trait;
use ehr_store::Cid;

use crate::writers::WriteOp;

use crate::*;

/// A node reached over HTTP.
pub struct RemoteNode {
    name: String,
    base: String,
    token: Option<String>,
    /// Signs writes for an organisation when there is no token ([`crate::writers`]).
    signer: Option<PrivateKeySigner>,
    /// The node's address, asked once (what write signatures name).
    address: tokio::sync::OnceCell<Address>,
    http: reqwest::Client,
}

impl std::fmt::Debug for RemoteNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteNode")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RemoteNode {
    /// The node at `url` (e.g. `http://127.0.0.1:7001`), named `node {index}` in logs.
    pub fn new(index: usize, url: &str, token: Option<String>) -> Result<Self, NodeError> {
        Self::with_ca(index, url, token, None)
    }

    /// [`new`](Self::new), trusting for `https://` the certificates of `ca_pem` (a PEM
    /// bundle, e.g. the deployment's own CA) besides the system's roots.
    pub fn with_ca(
        index: usize,
        url: &str,
        token: Option<String>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, NodeError> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(NodeError::BadRequest(format!(
                "node URL {url:?} must start with http:// or https://"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30));
        if let Some(pem) = ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| NodeError::BadRequest(format!("the CA file: {e}")))?;
            if roots.is_empty() {
                return Err(NodeError::BadRequest(
                    "the CA file holds no certificate".into(),
                ));
            }
            builder = builder.tls_certs_merge(roots);
        }
        let http = builder
            .build()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        Ok(Self {
            name: format!("node {index} ({base})"),
            base,
            token,
            signer: None,
            address: tokio::sync::OnceCell::new(),
            http,
        })
    }

    /// Signs this node's writes with `signer` (an organisation's registrar key, or the
    /// consortium admin's) where no token is given: `Authorization: SEHR-Org …`.
    pub fn with_signer(mut self, signer: PrivateKeySigner) -> Self {
        self.signer = Some(signer);
        self
    }

    fn with_token(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// A block write with the token, or signed by the organisation's key.
    async fn authorized_write(
        &self,
        req: reqwest::RequestBuilder,
        op: WriteOp,
        cid: &Cid,
    ) -> Result<reqwest::RequestBuilder, NodeError> {
        match (&self.token, &self.signer) {
            (None, Some(signer)) => {
                let node = *self
                    .address
                    .get_or_try_init(|| async { self.info().await.map(|i| i.address) })
                    .await?;
                let value = crate::writers::authorization(signer, op, node, cid)?;
                Ok(req.header(reqwest::header::AUTHORIZATION, value))
            }
            _ => Ok(self.with_token(req)),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, NodeError> {
        let resp = req
            .send()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))?;
        Err(serde_json::from_slice::<NodeError>(&body)
            .unwrap_or_else(|_| NodeError::Unreachable(format!("HTTP {status}"))))
    }
}

/// reqwest errors name the URL; the node's name already does.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "");
    }
    if e.is_connect() {
        "connection refused or failed".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        msg
    }
}

#[async_trait]
impl Node for RemoteNode {
    fn name(&self) -> &str {
        &self.name
    }

    async fn info(&self) -> Result<NodeInfo, NodeError> {
        let resp = self
            .send(self.http.get(format!("{}/node/info", self.base)))
            .await?;
        resp.json()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))
    }

    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<(), NodeError> {
        let req = self
            .http
            .put(format!("{}/node/blocks/{cid}", self.base))
            .body(data.to_vec());
        let req = self.authorized_write(req, WriteOp::Put, cid).await?;
        self.send(req).await.map(|_| ())
    }

    async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, NodeError> {
        let resp = self
            .send(self.http.get(format!("{}/node/blocks/{cid}", self.base)))
            .await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))?;
        Ok(bytes.to_vec())
    }

    async fn delete_block(&self, cid: &Cid) -> Result<(), NodeError> {
        let req = self.http.delete(format!("{}/node/blocks/{cid}", self.base));
        let req = self.authorized_write(req, WriteOp::Delete, cid).await?;
        self.send(req).await.map(|_| ())
    }

    async fn release_share(&self, request: &ShareRequest) -> Result<ShareResponse, NodeError> {
        let resp = self
            .send(
                self.http
                    .post(format!("{}/node/shares", self.base))
                    .json(request),
            )
            .await?;
        resp.json()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))
    }

    async fn erase(&self, order: &EraseOrder) -> Result<EraseReport, NodeError> {
        let url = format!("{}/node/erase", self.base);
        let resp = self.send(self.http.post(url).json(order)).await?;
        resp.json()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))
    }

    async fn release_ledger_share(
        &self,
        request: &LedgerShareRequest,
    ) -> Result<ShareResponse, NodeError> {
        let url = format!("{}/node/ledger-shares", self.base);
        let resp = self.send(self.http.post(url).json(request)).await?;
        resp.json()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))
    }

    async fn put_archive_head(&self, head: &ArchiveHead) -> Result<(), NodeError> {
        let req = self
            .http
            .put(format!("{}/node/archive-head", self.base))
            .json(head);
        self.send(self.with_token(req)).await.map(|_| ())
    }

    async fn archive_head(&self) -> Result<ArchiveHead, NodeError> {
        let resp = self
            .send(self.http.get(format!("{}/node/archive-head", self.base)))
            .await?;
        resp.json()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))
    }

    async fn recovery_contribute(
        &self,
        order: &SignedRecoveryOrder,
    ) -> Result<Vec<RecoveryMessage>, NodeError> {
        self.recovery_step("contribute", order, &[]).await
    }

    async fn recovery_relay(
        &self,
        order: &SignedRecoveryOrder,
        pieces: &[RecoveryMessage],
    ) -> Result<RecoveryMessage, NodeError> {
        self.recovery_step("relay", order, pieces).await
    }

    async fn recovery_assemble(
        &self,
        order: &SignedRecoveryOrder,
        sigmas: &[RecoveryMessage],
    ) -> Result<RecoveryOutcome, NodeError> {
        self.recovery_step("assemble", order, sigmas).await
    }
}

impl RemoteNode {
    /// `POST /node/recovery/{step}` with the order and `messages`.
    async fn recovery_step<T: serde::de::DeserializeOwned>(
        &self,
        step: &str,
        order: &SignedRecoveryOrder,
        messages: &[RecoveryMessage],
    ) -> Result<T, NodeError> {
        let body = RecoveryStep {
            order: order.clone(),
            messages: messages.to_vec(),
        };
        let url = format!("{}/node/recovery/{step}", self.base);
        let resp = self.send(self.http.post(url).json(&body)).await?;
        resp.json()
            .await
            .map_err(|e| NodeError::Unreachable(without_url(&e)))
    }
}
