//! Upload: validate → seal with a fresh key and disperse k-of-n → wrap key share `i` to
//! custodian `i` → fragment `i` and share block `i` to node `i` alone, the manifest (DAG-CBOR,
//! linking both) to `n − k + 1` nodes → `addRecord` signed by the patient. The journal makes a crash leave no unreachable blocks, and
//! keeps the blocks of a record whose transaction the chain may still mine.

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use ehr_chain::{RegistryExt, SentTx, TxStatus, WriteAccess};
use ehr_crypto::dispersal;
use ehr_crypto::wrap;
use ehr_fhir::{self as fhir, RecordForm};
use ehr_node::CUSTODIAN_AAD;
use ehr_node::manifest::{self, AttachmentRef, Custodians, RecordManifest, ShareRef};
use ehr_primitives::unix_now;
use ehr_store::{Cid, raw_cid};
use futures::future::join_all;

use super::*;
use crate::journal::Upload;
use crate::session::*;
use crate::views::*;
use crate::{Error, Result};

impl Service {
    /// Stores a new record from a FHIR bundle (JSON), for the session's patient.
    pub async fn put_record(&self, session: &PatientSession, bundle_json: &[u8]) -> Result<Stored> {
        let bundle = fhir::parse(bundle_json)?;
        self.store_new(session, bundle.to_json_vec()).await
    }

    /// Stores a new record from the seed's web form.
    pub async fn put_form(&self, session: &PatientSession, form: &RecordForm) -> Result<Stored> {
        let bundle = form.to_bundle(fhir::Date::today_utc())?;
        self.store_new(session, bundle.to_json_vec()).await
    }

    /// Stores a new version of one of the session patient's records.
    pub async fn update_record(
        &self,
        session: &PatientSession,
        record_id: u64,
        bundle_json: &[u8],
    ) -> Result<Stored> {
        let bundle = fhir::parse(bundle_json)?;
        self.store_version(session, record_id, bundle.to_json_vec())
            .await
    }

    /// Stores a new version from the web form.
    pub async fn update_form(
        &self,
        session: &PatientSession,
        record_id: u64,
        form: &RecordForm,
    ) -> Result<Stored> {
        let bundle = form.to_bundle(fhir::Date::today_utc())?;
        self.store_version(session, record_id, bundle.to_json_vec())
            .await
    }

    pub(super) async fn store_new(
        &self,
        session: &PatientSession,
        plaintext: Vec<u8>,
    ) -> Result<Stored> {
        let signer = session.signer();
        self.store_new_for(signer, signer.address(), plaintext)
            .await
    }

    /// A new record owned by `owner`, signed by `signer`: the owner itself, or a provider
    /// with write access to all of the owner's records (the chain checks).
    pub(super) async fn store_new_for(
        &self,
        signer: &PrivateKeySigner,
        owner: Address,
        plaintext: Vec<u8>,
    ) -> Result<Stored> {
        let mut uid = B256::ZERO;
        ehr_crypto::fill_random(&mut uid.0);
        let (manifest, blocks) = self.seal(owner, uid, 1, plaintext, Vec::new())?;
        let cid = self.store_blocks(&manifest, &blocks).await?;
        let codec = manifest.codec();
        let sent = SentNote::new(self, &cid);
        let note = |tx: &SentTx| sent.note(tx);
        let added = if owner == signer.address() {
            self.registry
                .add_record_noted(signer, digest_of(&cid), codec, &note)
                .await
        } else {
            self.registry
                .add_record_for_noted(signer, owner, digest_of(&cid), codec, &note)
                .await
        };
        match added {
            Ok((record_id, receipt)) => {
                self.journal.done(&cid.to_string());
                Ok(Stored {
                    record_id,
                    version: 1,
                    manifest_cid: cid.to_string(),
                    tx_hash: receipt.tx_hash,
                    block_number: receipt.block_number,
                    added_from: 0,
                })
            }
            Err(e) => Err(self.failed_upload(e, sent.take(), &manifest, &blocks).await),
        }
    }

    pub(super) async fn store_version(
        &self,
        session: &PatientSession,
        record_id: u64,
        plaintext: Vec<u8>,
    ) -> Result<Stored> {
        let _guard = self.lock_record(record_id).await;
        let record = self.registry.record(record_id).await.map_err(user_error)?;
        if record.owner != session.address() {
            return Err(Error::Forbidden("only the record's owner may do this"));
        }
        self.store_version_locked(session.signer(), record_id, plaintext)
            .await
    }

    /// Serialises the versions this server writes to one record; hold it from reading the
    /// current version to storing the next.
    pub(super) async fn lock_record(&self, record_id: u64) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.record_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(record_id).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// The next version of `record_id`, sealed for its owner and signed by `signer` (the
    /// owner, or a provider with write access: the chain checks). The caller holds
    /// [`lock_record`](Self::lock_record).
    pub(super) async fn store_version_locked(
        &self,
        signer: &PrivateKeySigner,
        record_id: u64,
        plaintext: Vec<u8>,
    ) -> Result<Stored> {
        self.store_version_with(signer, record_id, plaintext, None)
            .await
    }

    /// [`store_version_locked`](Self::store_version_locked), the version keeping its
    /// predecessor's attachments and adding `added` (already stored: its blocks are
    /// journaled with this version's, so a version that never reaches the chain takes
    /// them with it).
    pub(super) async fn store_version_with(
        &self,
        signer: &PrivateKeySigner,
        record_id: u64,
        plaintext: Vec<u8>,
        added: Option<(AttachmentRef, Vec<String>)>,
    ) -> Result<Stored> {
        let record = self.registry.record(record_id).await?;
        let current = self.fetch_manifest(record.digest, record.codec).await?;
        let version = record.version + 1;
        let mut attachments = current.attachments;
        let mut extra = Vec::new();
        if let Some((entry, blocks)) = added {
            attachments.push(entry);
            extra = blocks;
        }
        // The uid is version 1's, which every version keeps.
        let (manifest, mut blocks) =
            self.seal(record.owner, current.uid, version, plaintext, attachments)?;
        blocks.extra = extra;
        let cid = self.store_blocks(&manifest, &blocks).await?;
        let sent = SentNote::new(self, &cid);
        match self
            .registry
            .update_record_noted(
                signer,
                record_id,
                digest_of(&cid),
                manifest.codec(),
                &|tx| sent.note(tx),
            )
            .await
        {
            Ok((v, receipt)) if v == version => {
                self.journal.done(&cid.to_string());
                Ok(Stored {
                    record_id,
                    version,
                    manifest_cid: cid.to_string(),
                    tx_hash: receipt.tx_hash,
                    block_number: receipt.block_number,
                    added_from: 0,
                })
            }
            Ok((got, _)) => Err(Error::VersionRace {
                record_id,
                got,
                expected: version,
            }),
            Err(e) => Err(self.failed_upload(e, sent.take(), &manifest, &blocks).await),
        }
    }

    /// After the record's transaction failed: the blocks go only if the transaction never
    /// reached the chain or the chain has decided against it; otherwise they stay, the
    /// journal entry stays open, and the caller hears the upload is pending.
    async fn failed_upload(
        &self,
        e: ehr_chain::Error,
        sent: Option<SentTx>,
        manifest: &RecordManifest,
        blocks: &Blocks,
    ) -> Error {
        let Some(tx) = sent else {
            self.discard_blocks(manifest, blocks).await;
            return user_error(e);
        };
        match self.registry.tx_status(&tx).await {
            Ok(TxStatus::Dropped | TxStatus::Mined { success: false, .. }) => {
                self.discard_blocks(manifest, blocks).await;
                user_error(e)
            }
            Ok(TxStatus::Mined { success: true, .. }) => {
                // Mined after all (the wait for it failed): the record is on chain.
                self.journal.done(&blocks.manifest_cid.to_string());
                Error::UploadPending { tx_hash: tx.hash }
            }
            status => {
                if let Err(e) = &status {
                    tracing::warn!(error = %e, tx = %tx.hash, "asking the chain about an upload");
                }
                tracing::warn!(tx = %tx.hash, error = %e, "upload not mined yet; its blocks are kept");
                self.pending_uploads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Upload {
                        tx: Some(tx),
                        ..blocks.journal_entry(manifest)
                    });
                Error::UploadPending { tx_hash: tx.hash }
            }
        }
    }

    /// Seals and disperses; returns the manifest and its block plus the fragments and the
    /// share blocks.
    pub(super) fn seal(
        &self,
        patient: Address,
        uid: B256,
        version: u32,
        plaintext: Vec<u8>,
        attachments: Vec<AttachmentRef>,
    ) -> Result<(RecordManifest, Blocks)> {
        let mut rng = ehr_crypto::rng();
        let ctx = ehr_crypto::RecordContext {
            patient: patient.0.0,
            record_id: uid.0,
            version,
        };
        let dispersed = dispersal::disperse(self.threshold, &ctx, plaintext, &mut rng)?;
        let shares = dispersed
            .key_shares
            .iter()
            .zip(&self.custodians)
            .map(|(share, key)| {
                let wrapped = wrap::wrap_key_share(
                    &wrap::PublicKey(key.0),
                    &ctx,
                    share,
                    CUSTODIAN_AAD,
                    &mut rng,
                )?;
                Ok(manifest::share_block(&wrapped))
            })
            .collect::<Result<Vec<Vec<u8>>>>()?;
        let manifest = RecordManifest {
            format: manifest::FORMAT,
            patient,
            uid,
            version,
            created_at: unix_now(),
            custodians: Custodians::NodeSetEpoch(self.node_set_epoch),
            shares: shares.iter().map(|b| ShareRef::Block(raw_cid(b))).collect(),
            dispersal: dispersed.manifest,
            attachments,
        };
        let fragments = dispersed.fragments.to_vecs();
        let manifest_block = manifest.encode()?;
        Ok((
            manifest,
            Blocks {
                manifest_cid: manifest::block_cid(&manifest_block),
                manifest: manifest_block,
                fragments,
                shares,
                extra: Vec::new(),
            },
        ))
    }

    /// Fragment `i` and share block `i` to node `i`, the manifest to its `n − k + 1` holders
    /// ([`manifest::manifest_order`]). Succeeds when every node took its blocks, or — with
    /// some nodes down — when at least `k + 1` did (so one more loss is still survivable) and
    /// the manifest is on `n − k + 1` of them (a holder that failed is replaced by the next
    /// node in the manifest's order); otherwise removes what was stored and fails.
    pub(super) async fn store_blocks(
        &self,
        manifest: &RecordManifest,
        blocks: &Blocks,
    ) -> Result<Cid> {
        let manifest_cid = blocks.manifest_cid;
        let n = self.nodes.len();
        let copies = manifest::manifest_copies(self.threshold.k(), n);
        let order: Vec<usize> = manifest::manifest_order(&manifest_cid, n).collect();
        let holds = |i: usize| order[..copies].contains(&i);
        self.journal.begin(&blocks.journal_entry(manifest))?;
        let results = join_all(self.nodes.iter().enumerate().map(|(i, node)| {
            let frag_cid = manifest.fragment_cid(i);
            let frag = &blocks.fragments[i];
            let share_cid = manifest
                .share_cid(i)
                .expect("a new manifest links its shares");
            let share = &blocks.shares[i];
            let manifest_block = holds(i).then_some(&blocks.manifest);
            // At once: a segment store writes the three with one sync. (None is visible
            // before the chain records the manifest; the journal collects a partial upload.)
            async move {
                futures::future::try_join3(
                    timed(node.put_block(&frag_cid, frag)),
                    timed(node.put_block(&share_cid, share)),
                    async {
                        match manifest_block {
                            Some(block) => timed(node.put_block(&manifest_cid, block)).await,
                            None => Ok(()),
                        }
                    },
                )
                .await
                .map(|_| ())
            }
        }))
        .await;
        for (node, r) in self.nodes.iter().zip(&results) {
            if let Err(e) = r {
                tracing::warn!(node = node.name(), error = %e, "storing a fragment failed");
            }
        }
        let stored = results.iter().filter(|r| r.is_ok()).count();
        let quorum = (self.threshold.k() + 1).min(n);
        let mut manifests = order[..copies]
            .iter()
            .filter(|&&i| results[i].is_ok())
            .count();
        // A holder that failed: the manifest goes to the next nodes that took their blocks.
        for &i in &order[copies..] {
            if manifests >= copies || stored < quorum {
                break;
            }
            if results[i].is_ok() {
                let node = &self.nodes[i];
                match timed(node.put_block(&manifest_cid, &blocks.manifest)).await {
                    Ok(()) => manifests += 1,
                    Err(e) => {
                        tracing::warn!(node = node.name(), error = %e, "storing a manifest failed")
                    }
                }
            }
        }
        if stored < quorum || manifests < copies {
            self.discard_blocks(manifest, blocks).await;
            let (reachable, needed) = if stored < quorum {
                (stored, quorum)
            } else {
                (manifests, copies)
            };
            return Err(Error::NodesUnavailable { reachable, needed });
        }
        Ok(manifest_cid)
    }

    /// Best-effort removal of an upload that did not make it on chain. What a crash
    /// leaves behind is an orphan that [`collect_orphans`](Self::collect_orphans) removes.
    pub(super) async fn discard_blocks(&self, manifest: &RecordManifest, blocks: &Blocks) {
        let manifest_cid = blocks.manifest_cid;
        join_all(self.nodes.iter().enumerate().map(|(i, node)| {
            let frag_cid = manifest.fragment_cid(i);
            let share_cid = manifest.share_cid(i);
            async move {
                let _ = timed(node.delete_block(&frag_cid)).await;
                if let Some(share_cid) = share_cid {
                    let _ = timed(node.delete_block(&share_cid)).await;
                }
                let _ = timed(node.delete_block(&manifest_cid)).await;
            }
        }))
        .await;
        self.journal.done(&manifest_cid.to_string());
    }
}

/// Journals an upload's transaction before it is sent, and remembers it.
struct SentNote<'a> {
    service: &'a Service,
    manifest: String,
    tx: std::sync::Mutex<Option<SentTx>>,
}

impl<'a> SentNote<'a> {
    fn new(service: &'a Service, manifest: &Cid) -> Self {
        Self {
            service,
            manifest: manifest.to_string(),
            tx: std::sync::Mutex::new(None),
        }
    }

    fn note(&self, tx: &SentTx) -> ehr_chain::Result<()> {
        self.service
            .journal
            .sent(&self.manifest, tx)
            .map_err(|e| ehr_chain::Error::Io(std::io::Error::other(e.to_string())))?;
        *self.tx.lock().unwrap_or_else(|p| p.into_inner()) = Some(*tx);
        Ok(())
    }

    fn take(&self) -> Option<SentTx> {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A sealed upload's blocks.
pub(super) struct Blocks {
    manifest_cid: Cid,
    manifest: Vec<u8>,
    fragments: Vec<Vec<u8>>,
    /// Share block `i`, for node `i` alone.
    shares: Vec<Vec<u8>>,
    /// Blocks stored before (a new attachment's) that live or go with this upload.
    extra: Vec<String>,
}

impl Blocks {
    /// The journal entry naming these blocks (no transaction yet).
    fn journal_entry(&self, manifest: &RecordManifest) -> Upload {
        Upload {
            manifest: self.manifest_cid.to_string(),
            fragments: (0..self.fragments.len())
                .map(|i| manifest.fragment_cid(i).to_string())
                .chain(self.extra.iter().cloned())
                .collect(),
            shares: (0..self.shares.len())
                .filter_map(|i| manifest.share_cid(i).map(|c| c.to_string()))
                .collect(),
            tx: None,
            notes_tx: true,
        }
    }
}
