//! A [`BlobStore`] on an IPFS node through the Kubo RPC HTTP API (`/api/v0/…`), for
//! deployments at scale. Besides the trait it offers the node-side `add`, `cat`, `pin/add`,
//! `dag/import` and `dag/export`. Bytes coming back from the node are re-hashed like any
//! other store's: a misbehaving node cannot hand us wrong bytes.
//!
//! Two modes. [`KuboStore::new`] is a plain client (`secure-ehr add/cat`): blocks are put
//! unpinned and `delete` is `block/rm`. [`KuboStore::owned`] is for a `secure-ehr node`
//! keeping its blocks in an IPFS node its organisation runs: the blocks are the node's own,
//! so each put is also pinned *directly* (`pin/add?recursive=false`: the IPFS node's garbage
//! collection never drops them, and a manifest's links to fragments held elsewhere are not
//! fetched), lookups never ask the IPFS network (`offline=true`), and `delete` (orphan
//! collection, share erasure) removes the direct pin, then the block, then checks that the
//! IPFS node no longer has it — a block something else still pins (a recursive pin of the
//! organisation's) is an error naming the block, not a silent success.

use std::time::Duration;

use async_trait::async_trait;
use cid::Cid;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use crate::cids::{DAG_CBOR, DAG_PB, RAW, check_supported, parse_cid, verify};
use crate::{BlobStore, Error, Result};

/// A client of one node's RPC API, e.g. `http://127.0.0.1:5001`.
#[derive(Clone, Debug)]
pub struct KuboStore {
    base: String,
    client: reqwest::Client,
    lookup_timeout: Duration,
    /// [`KuboStore::owned`]: pin what we put, unpin what we delete, never go online.
    owned: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Deserialize)]
struct KeyBody {
    #[serde(rename = "Key")]
    key: String,
}

#[derive(Deserialize)]
struct RmLine {
    #[serde(rename = "Error", default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct AddLine {
    #[serde(rename = "Hash")]
    hash: String,
}

/// The lookup bound of a [`KuboStore::owned`] store.
pub const OWNED_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

impl KuboStore {
    /// A client of the API at `url` (scheme, host and port; no path).
    pub fn new(url: &str) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(Error::Kubo {
                endpoint: base,
                message: "the API URL must start with http:// or https://".into(),
            });
        }
        let client = reqwest::Client::builder().no_proxy().build()?;
        Ok(KuboStore {
            base,
            client,
            lookup_timeout: Duration::from_secs(10),
            owned: false,
        })
    }

    /// A client of the API at `url` that owns the blocks it stores (see the module doc):
    /// puts pin directly, deletes unpin, remove and check, lookups stay offline and are
    /// bounded by [`OWNED_LOOKUP_TIMEOUT`] (a block it owns is local or missing; js-ipfs
    /// looks for a missing one anyway until the timeout, and a node asked for a block it does
    /// not keep, such as a manifest it is not a holder of, must say so before its caller
    /// gives up on it).
    pub fn owned(url: &str) -> Result<Self> {
        Ok(KuboStore {
            owned: true,
            lookup_timeout: OWNED_LOOKUP_TIMEOUT,
            ..Self::new(url)?
        })
    }

    /// How long `get`/`has` let the node look for a block before calling it missing
    /// (default 10 s; [`OWNED_LOOKUP_TIMEOUT`] for an owned store). Kubo answers at once for a block it lacks when offline; js-ipfs and
    /// online nodes keep asking peers, so the wait needs a bound.
    pub fn with_lookup_timeout(mut self, timeout: Duration) -> Self {
        self.lookup_timeout = timeout;
        self
    }

    fn timeout_param(&self) -> (&'static str, String) {
        (
            "timeout",
            format!("{}ms", self.lookup_timeout.as_millis().max(1)),
        )
    }

    /// The API URL this client talks to.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// POSTs to `endpoint` with `query` and an optional file upload; returns the body of a
    /// 2xx answer, or the node's error message.
    async fn call(
        &self,
        endpoint: &str,
        query: &[(&str, String)],
        file: Option<Vec<u8>>,
    ) -> Result<reqwest::Response> {
        // Every value is a CID or a fixed option word: nothing needs percent-encoding.
        let params: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let url = format!("{}{endpoint}?{}", self.base, params.join("&"));
        let mut req = self.client.post(url);
        if let Some(bytes) = file {
            // js-ipfs refuses parts without a content type; Kubo does not mind one.
            let part = Part::bytes(bytes)
                .file_name("data")
                .mime_str("application/octet-stream")?;
            req = req.multipart(Form::new().part("file", part));
        }
        let resp = req.send().await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.message)
            .unwrap_or_else(|_| format!("HTTP {status}: {}", text.trim()));
        Err(Error::Kubo {
            endpoint: endpoint.to_string(),
            message,
        })
    }

    /// `ipfs pin add --recursive=false`: keeps this one block from garbage collection
    /// without fetching what it links to.
    async fn pin_direct(&self, cid: &Cid) -> Result<()> {
        self.call(
            "/api/v0/pin/add",
            &[("arg", cid.to_string()), ("recursive", "false".into())],
            None,
        )
        .await?
        .bytes()
        .await?;
        Ok(())
    }

    /// `ipfs block rm`. The node answers 200 with one `{Hash, Error}` line per block, so the
    /// body is read: a block that is not there is fine, any other error (e.g. "pinned") is
    /// returned.
    async fn block_rm(&self, cid: &Cid) -> Result<()> {
        let endpoint = "/api/v0/block/rm";
        let text = match self.call(endpoint, &[("arg", cid.to_string())], None).await {
            Ok(resp) => resp.text().await?,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let line: RmLine =
                serde_json::from_str(line).map_err(|e| kubo_err(endpoint, e.to_string()))?;
            match line.error {
                Some(message) if !message.is_empty() => {
                    let e = kubo_err(endpoint, message);
                    if !is_not_found(&e) {
                        return Err(e);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `ipfs version`: the node's implementation version (e.g. `0.18.0`); a cheap check
    /// that the API answers.
    pub async fn version(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct Version {
            #[serde(rename = "Version")]
            version: String,
        }
        let body: Version = self
            .call("/api/v0/version", &[], None)
            .await?
            .json()
            .await?;
        Ok(body.version)
    }

    /// `ipfs add` on the node (`--cid-version=1` or the v0 default, no pin); returns the root.
    pub async fn add(&self, data: Vec<u8>, cid_version: u8) -> Result<Cid> {
        let mut query = vec![
            ("cid-version", cid_version.to_string()),
            ("pin", "false".into()),
            ("chunker", "size-262144".into()),
        ];
        if cid_version == 1 {
            query.push(("raw-leaves", "true".into()));
        }
        let text = self
            .call("/api/v0/add", &query, Some(data))
            .await?
            .text()
            .await?;
        let last = text
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .ok_or_else(|| kubo_err("/api/v0/add", "empty answer"))?;
        let line: AddLine =
            serde_json::from_str(last).map_err(|e| kubo_err("/api/v0/add", e.to_string()))?;
        parse_cid(&line.hash)
    }

    /// `ipfs cat`: the file bytes under `cid`, as the node assembles them (not re-verified:
    /// use [`crate::cat`] over this store to verify every block).
    pub async fn cat(&self, cid: &Cid) -> Result<Vec<u8>> {
        let resp = self
            .call("/api/v0/cat", &[("arg", cid.to_string())], None)
            .await?;
        Ok(resp.bytes().await?.to_vec())
    }

    /// `ipfs pin add`.
    pub async fn pin_add(&self, cid: &Cid) -> Result<()> {
        self.call("/api/v0/pin/add", &[("arg", cid.to_string())], None)
            .await?;
        Ok(())
    }

    /// `ipfs dag import` of a CAR file (roots not pinned).
    pub async fn dag_import(&self, car: Vec<u8>) -> Result<()> {
        self.call(
            "/api/v0/dag/import",
            &[("pin-roots", "false".into())],
            Some(car),
        )
        .await?
        .bytes()
        .await?;
        Ok(())
    }

    /// `ipfs dag export`: the DAG under `cid` as a CAR v1 file.
    pub async fn dag_export(&self, cid: &Cid) -> Result<Vec<u8>> {
        let resp = self
            .call("/api/v0/dag/export", &[("arg", cid.to_string())], None)
            .await?;
        Ok(resp.bytes().await?.to_vec())
    }
}

fn kubo_err(endpoint: &str, message: impl Into<String>) -> Error {
    Error::Kubo {
        endpoint: endpoint.into(),
        message: message.into(),
    }
}

/// Nodes say "not found" in several ways (Kubo: "block was not found locally (offline)",
/// js-ipfs: "Not Found"); a lookup that ran out of time found nothing either.
fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Kubo { message, .. }
        if ["not found", "timed out", "deadline exceeded"]
            .iter()
            .any(|m| message.to_lowercase().contains(m)))
}

fn codec_name(cid: &Cid) -> Result<&'static str> {
    match cid.codec() {
        RAW => Ok("raw"),
        DAG_PB => Ok("dag-pb"),
        DAG_CBOR => Ok("dag-cbor"),
        code => Err(Error::UnsupportedCodec {
            cid: Box::new(*cid),
            code,
        }),
    }
}

#[async_trait]
impl BlobStore for KuboStore {
    async fn put_block(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        verify(cid, data, None)?;
        let endpoint = "/api/v0/block/put";
        let query = [
            ("cid-codec", codec_name(cid)?.to_string()),
            ("mhtype", "sha2-256".into()),
            ("pin", "false".into()),
        ];
        let body: KeyBody = self
            .call(endpoint, &query, Some(data.to_vec()))
            .await?
            .json()
            .await?;
        // The node may answer with another CID version or codec; the multihash must agree.
        let got =
            Cid::try_from(body.key.as_str()).map_err(|e| kubo_err(endpoint, e.to_string()))?;
        if got.hash() != cid.hash() {
            return Err(kubo_err(
                endpoint,
                format!("node stored {got} for block {cid}"),
            ));
        }
        if self.owned {
            self.pin_direct(cid).await?;
        }
        Ok(())
    }

    async fn get(&self, cid: &Cid) -> Result<Vec<u8>> {
        check_supported(cid)?;
        let mut query = vec![("arg", cid.to_string()), self.timeout_param()];
        if self.owned {
            query.push(("offline", "true".into()));
        }
        let data = match self.call("/api/v0/block/get", &query, None).await {
            Ok(resp) => resp.bytes().await?.to_vec(),
            Err(e) if is_not_found(&e) => {
                return Err(Error::NotFound {
                    cid: Box::new(*cid),
                });
            }
            Err(e) => return Err(e),
        };
        verify(cid, &data, Some(&self.base))?;
        Ok(data)
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        match self
            .call(
                "/api/v0/block/stat",
                &[
                    ("arg", cid.to_string()),
                    ("offline", "true".into()),
                    self.timeout_param(),
                ],
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        if !self.owned {
            return self.block_rm(cid).await;
        }
        match self
            .call(
                "/api/v0/pin/rm",
                &[("arg", cid.to_string()), ("recursive", "false".into())],
                None,
            )
            .await
        {
            Ok(_) => {}
            // Kubo: "not pinned or pinned indirectly"; js-ipfs: "… is not pinned".
            Err(Error::Kubo { message, .. }) if message.contains("not pinned") => {}
            Err(e) => return Err(e),
        }
        self.block_rm(cid).await?;
        if self.has(cid).await? {
            return Err(kubo_err(
                "/api/v0/block/rm",
                format!("{cid} is still in the IPFS node (pinned by something else?)"),
            ));
        }
        Ok(())
    }

    async fn pin(&self, cid: &Cid) -> Result<()> {
        self.pin_add(cid).await
    }
}
