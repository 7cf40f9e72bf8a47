//! Read: `logAccess(record, nonce)` signed by the reader → an EIP-712 share request to the
//! custodians → k shares (each checked against the manifest) → k good fragments (each
//! checked against its CID; a bad node is named in the log) → open → validate again.

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use ehr_chain::{AccessStatus, RegistryExt};
use ehr_crypto::dispersal::{self, KeyShare};
use ehr_crypto::wrap;
use ehr_fhir::{self as fhir, RecordForm};
use ehr_node::manifest::{self, RecordManifest};
use ehr_node::{MAX_REQUEST_TTL, NodeError, ShareRequest, read_nonce};
use ehr_primitives::unix_now;
use ehr_store::Cid;
use futures::future::join_all;

use super::*;
use crate::session::*;
use crate::views::*;
use crate::{Error, Result};

impl Service {
    pub(super) async fn fetch_manifest(&self, digest: B256, codec: u64) -> Result<RecordManifest> {
        Ok(self.fetch_manifest_block(digest, codec).await?.0)
    }

    /// The manifest and its block, asking its holders first ([`manifest::manifest_order`]).
    pub(super) async fn fetch_manifest_block(
        &self,
        digest: B256,
        codec: u64,
    ) -> Result<(RecordManifest, Vec<u8>)> {
        let cid = manifest::manifest_cid(digest, codec)?;
        let order = manifest::manifest_order(&cid, self.nodes.len());
        // Any k nodes include one of its n − k + 1 holders: with fewer answering, a missing
        // manifest is on the nodes that are down.
        let block = self
            .fetch_block_from(&cid, order, self.threshold.k())
            .await?;
        Ok((RecordManifest::decode_block(&cid, &block)?, block))
    }

    /// A block from the first node that has it intact (each answer is re-hashed).
    pub(super) async fn fetch_block(&self, cid: &Cid) -> Result<Vec<u8>> {
        self.fetch_block_from(cid, 0..self.nodes.len(), 1).await
    }

    /// [`fetch_block`](Self::fetch_block), asking the nodes in `order`. When none has it,
    /// [`Error::NotFound`] if at least `needed` answered, else [`Error::NodesUnavailable`].
    async fn fetch_block_from(
        &self,
        cid: &Cid,
        order: impl Iterator<Item = usize>,
        needed: usize,
    ) -> Result<Vec<u8>> {
        let mut reachable = 0;
        for node in order.filter_map(|i| self.nodes.get(i)) {
            match timed(node.get_block(cid)).await {
                Ok(data) if ehr_store::verify(cid, &data, None).is_ok() => return Ok(data),
                Ok(_) => {
                    reachable += 1;
                    tracing::warn!(node = node.name(), %cid, "node served a corrupt block");
                }
                Err(NodeError::NotFound(_)) => reachable += 1,
                Err(e) => tracing::warn!(node = node.name(), error = %e, "node unreachable"),
            }
        }
        if reachable < needed {
            return Err(Error::NodesUnavailable { reachable, needed });
        }
        Err(Error::NotFound(format!("block {cid}")))
    }

    /// Any block by CID (for the trustless gateway: blocks are ciphertext or manifests).
    pub async fn block(&self, cid: &str) -> Result<Vec<u8>> {
        let cid = ehr_store::parse_cid(cid).map_err(|e| Error::InvalidInput {
            field: "cid",
            message: e.to_string(),
        })?;
        self.fetch_block(&cid).await
    }

    /// Reads a record (the current version, or `version`), logging the access on chain
    /// first. The owner may read their own records; a provider needs a live grant.
    pub async fn read_record(
        &self,
        session: &impl Reader,
        record_id: u64,
        version: Option<u32>,
    ) -> Result<ReadRecord> {
        Ok(self.read_opened(session, record_id, version).await?.record)
    }

    /// [`read_record`](Self::read_record), keeping the manifest and the logged access's
    /// nonce (an attachment's key shares are released under the same logged access).
    pub(super) async fn read_opened(
        &self,
        session: &impl Reader,
        record_id: u64,
        version: Option<u32>,
    ) -> Result<Opened> {
        let signer = session.signer();
        // The current version needs only the blocks of its update; another, the history.
        let versions = match version {
            None => match self.registry.current_version(record_id).await {
                Ok(v) => vec![v],
                Err(e) if matches!(e.contract_error(), Some(CE::UnknownRecord(_))) => vec![],
                Err(e) if matches!(e.contract_error(), Some(CE::RecordIsErased(_))) => {
                    return Err(Error::Erased(format!("record {record_id}")));
                }
                Err(e) => return Err(e.into()),
            },
            Some(_) => self.registry.record_versions(record_id).await?,
        };
        let v = match version {
            None => versions.last(),
            Some(want) => versions.iter().find(|v| v.version == want),
        }
        .ok_or_else(|| match version {
            Some(want) if !versions.is_empty() => {
                Error::NotFound(format!("version {want} of record {record_id}"))
            }
            _ => Error::NotFound(format!("record {record_id}")),
        })?
        .clone();
        let nonce = read_nonce(v.version);
        let receipt = match self.registry.log_access(signer, record_id, nonce).await {
            Ok(r) => r,
            Err(e) if e.contract_error().is_some() => {
                let (reason, _) = self
                    .registry
                    .access_status(signer.address(), record_id)
                    .await?;
                return Err(Error::denied(record_id, reason));
            }
            Err(e) => return Err(e.into()),
        };
        // The contract says whether only a break-glass window allowed this read.
        let emergency = receipt.logs.iter().any(|l| {
            use alloy::sol_types::SolEvent;
            use ehr_chain::contract::EhrRegistry::AccessLogged as Ev;
            l.address == self.registry.contract()
                && l.topics().first() == Some(&Ev::SIGNATURE_HASH)
                && Ev::decode_log_data(&l.data).is_ok_and(|e| e.emergency)
        });
        let (record, manifest, manifest_block) = self
            .open_version_parts(signer, record_id, &v, nonce, receipt.tx_hash, emergency)
            .await?;
        Ok(Opened {
            record,
            manifest,
            manifest_block,
            nonce,
        })
    }

    /// Rebuilds a logged read: shares from custodians, fragments from storage, open.
    pub(super) async fn open_version(
        &self,
        signer: &PrivateKeySigner,
        record_id: u64,
        v: &ehr_chain::RecordVersion,
        nonce: U256,
        access_tx: B256,
        emergency: bool,
    ) -> Result<ReadRecord> {
        Ok(self
            .open_version_parts(signer, record_id, v, nonce, access_tx, emergency)
            .await?
            .0)
    }

    async fn open_version_parts(
        &self,
        signer: &PrivateKeySigner,
        record_id: u64,
        v: &ehr_chain::RecordVersion,
        nonce: U256,
        access_tx: B256,
        emergency: bool,
    ) -> Result<(ReadRecord, RecordManifest, Vec<u8>)> {
        let (manifest, manifest_block) = self.fetch_manifest_block(v.digest, v.codec).await?;
        if manifest.patient != v.owner || manifest.version != v.version {
            return Err(Error::ManifestMismatch {
                record_id,
                version: v.version,
            });
        }
        let ctx = manifest.context();
        let k = self.threshold.k().min(usize::from(manifest.dispersal.k));
        let m_n = usize::from(manifest.dispersal.n);
        let request = SharesWanted {
            record_id,
            version: v.version,
            nonce,
            attachment: 0,
            k,
            ctx,
            digests: &manifest.dispersal.key_share_digests,
            manifest_block: &manifest_block,
        };
        let shares = self.key_shares(signer, &request).await?;
        let (key, _) = dispersal::recover_key(&manifest.dispersal, &shares)?;
        let plaintext = self.open_fragments(&key, &manifest, k, m_n).await?;
        let bundle = fhir::parse(&plaintext)?;
        // The contract lets only registered patients own records.
        let patient_id = self
            .registry
            .patient_id(v.owner)
            .await?
            .ok_or_else(|| Error::NotFound(format!("the patient owning record {record_id}")))?;
        let record = ReadRecord {
            record_id,
            version: v.version,
            owner: v.owner,
            patient_id,
            manifest_cid: manifest::manifest_cid(v.digest, v.codec)?.to_string(),
            form: RecordForm::from_bundle(&bundle),
            bundle: serde_json::to_value(&bundle).expect("a validated bundle serializes"),
            access_tx,
            emergency,
        };
        Ok((record, manifest, manifest_block))
    }
}

/// One key's shares, as [`Service::key_shares`] asks for them.
pub(super) struct SharesWanted<'a> {
    pub record_id: u64,
    pub version: u32,
    pub nonce: U256,
    /// 0: the record version's key; `j`: its attachment `j`'s.
    pub attachment: u32,
    /// How many shares open it.
    pub k: usize,
    /// What the shares are wrapped under.
    pub ctx: ehr_crypto::RecordContext,
    /// Each share's digest, in custodian order.
    pub digests: &'a [[u8; 32]],
    pub manifest_block: &'a [u8],
}

/// A logged read, opened: the record, its manifest and the access's nonce.
pub(super) struct Opened {
    pub record: ReadRecord,
    pub manifest: RecordManifest,
    pub manifest_block: Vec<u8>,
    pub nonce: U256,
}

impl Service {
    async fn open_fragments(
        &self,
        key: &ehr_crypto::DataKey,
        manifest: &RecordManifest,
        k: usize,
        m_n: usize,
    ) -> Result<Vec<u8>> {
        let ctx = manifest.context();
        // Fragments: the k originals first (no decoding needed), then recovery ones.
        let mut fragments: Vec<Option<Vec<u8>>> = vec![None; m_n];
        let mut good = 0;
        let mut next = 0;
        while good < k && next < m_n {
            let batch: Vec<usize> = (next..m_n).take(k - good).collect();
            next += batch.len();
            let got = join_all(batch.iter().map(|&i| {
                let cid = manifest.fragment_cid(i);
                let node = &self.nodes[i];
                async move { (i, timed(node.get_block(&cid)).await) }
            }))
            .await;
            for (i, r) in got {
                match r {
                    Ok(data) if dispersal::fragment_ok(&manifest.dispersal, i, &data) => {
                        fragments[i] = Some(data);
                        good += 1;
                    }
                    Ok(_) => tracing::warn!(
                        node = self.nodes[i].name(),
                        fragment = i,
                        "node served a corrupt fragment; using another"
                    ),
                    Err(e) => tracing::warn!(
                        node = self.nodes[i].name(),
                        fragment = i,
                        error = %e,
                        "fragment unavailable; using another"
                    ),
                }
            }
        }
        if good < k {
            return Err(Error::NodesUnavailable {
                reachable: good,
                needed: k,
            });
        }
        let refs: Vec<Option<&[u8]>> = fragments.iter().map(|f| f.as_deref()).collect();
        let (sealed, _) = dispersal::rebuild_ciphertext(&manifest.dispersal, &refs)?;
        Ok(ehr_crypto::seal::open(key, &ctx, sealed)?)
    }

    /// Asks the custodians for one key's shares under a logged access (the record
    /// version's key, or one of its attachments'): `k` custodians at once, the others only
    /// if some fail; each share unwrapped and checked against its digest. Too few is
    /// [`Error::AccessDenied`] if a custodian refused the reader, else
    /// [`Error::NodesUnavailable`].
    pub(super) async fn key_shares(
        &self,
        signer: &PrivateKeySigner,
        want: &SharesWanted<'_>,
    ) -> Result<Vec<KeyShare>> {
        let k = want.k;
        let m_n = want.digests.len();
        let record_id = want.record_id;
        let (reader_secret, reader_public) = wrap::generate_keypair(&mut ehr_crypto::rng());
        let mut request = ShareRequest::sign(
            signer,
            &self.domain,
            record_id,
            want.version,
            want.nonce,
            unix_now() + MAX_REQUEST_TTL / 2,
            &reader_public,
        )?;
        if want.attachment > 0 {
            request = request.for_attachment(signer, &self.domain, want.attachment)?;
        }
        // For the custodians that do not keep the manifest (it is on n − k + 1 nodes).
        let request = request.with_manifest(want.manifest_block.to_vec());
        let aad = request.response_aad(&self.domain);
        let ctx = want.ctx;
        // Ask k custodians; only if some fail, ask the others.
        let mut answers: Vec<Option<std::result::Result<ehr_node::ShareResponse, NodeError>>> =
            (0..m_n.min(self.nodes.len())).map(|_| None).collect();
        let first: Vec<usize> = (0..answers.len()).take(k).collect();
        for (i, a) in join_all(
            first
                .iter()
                .map(|&i| timed(self.nodes[i].release_share(&request))),
        )
        .await
        .into_iter()
        .enumerate()
        {
            answers[first[i]] = Some(a);
        }
        if answers.iter().flatten().filter(|a| a.is_ok()).count() < k {
            let rest: Vec<usize> = (k..answers.len()).collect();
            for (i, a) in join_all(
                rest.iter()
                    .map(|&i| timed(self.nodes[i].release_share(&request))),
            )
            .await
            .into_iter()
            .enumerate()
            {
                answers[rest[i]] = Some(a);
            }
        }
        let mut shares: Vec<KeyShare> = Vec::new();
        let mut refused = None;
        for (i, (node, answer)) in self
            .nodes
            .iter()
            .zip(answers)
            .enumerate()
            .filter_map(|(i, (n, a))| Some((i, (n, a?))))
        {
            match answer {
                Ok(resp) if usize::from(resp.x) == i + 1 => {
                    match wrap::unwrap_key_share(&reader_secret, &ctx, resp.x, &aad, &resp.wrapped)
                    {
                        Ok(share)
                            if want.digests[i]
                                == dispersal::key_share_digest(share.x, &share.share) =>
                        {
                            shares.push(share)
                        }
                        _ => tracing::warn!(node = node.name(), "node returned a bad key share"),
                    }
                }
                Ok(_) => tracing::warn!(node = node.name(), "node returned a misnumbered share"),
                Err(e) => {
                    tracing::warn!(node = node.name(), error = %e, "node gave no key share");
                    if e.is_refusal() {
                        refused = Some(e);
                    }
                }
            }
        }
        if shares.len() < k {
            if let Some(NodeError::Denied) = refused {
                let (reason, _) = self
                    .registry
                    .access_status(signer.address(), record_id)
                    .await?;
                return Err(Error::denied(record_id, reason));
            }
            return Err(Error::NodesUnavailable {
                reachable: shares.len(),
                needed: k,
            });
        }
        Ok(shares)
    }

    /// A provider reads every record of patient `patient_id` it may read now; each read
    /// is logged. [`Error::NoAccessToPatient`] when there is none, and the same when there
    /// is no such patient.
    pub async fn patient_records(
        &self,
        session: &ProviderSession,
        patient_id: u64,
    ) -> Result<Vec<ReadRecord>> {
        let denied = || Error::NoAccessToPatient { patient_id };
        let owner = self
            .registry
            .patient_address(patient_id)
            .await?
            .ok_or_else(denied)?;
        let ids = self.registry.records_of(owner).await?;
        let statuses = join_all(
            ids.iter()
                .map(|&id| self.registry.access_status(session.address(), id)),
        )
        .await;
        let mut allowed = Vec::new();
        let mut erased = false;
        for (id, status) in ids.iter().copied().zip(statuses) {
            match status?.0 {
                AccessStatus::Allowed => allowed.push(id),
                AccessStatus::Erased => erased = true,
                _ => {}
            }
        }
        if allowed.is_empty() {
            return Err(if erased {
                Error::Erased(format!("every record of patient {patient_id}"))
            } else {
                denied()
            });
        }
        let reads = join_all(
            allowed
                .iter()
                .map(|&id| self.read_record(session, id, None)),
        )
        .await;
        reads.into_iter().collect()
    }
}
