//! Attachments (issue 19): a document or image stored beside a record, streamed through
//! seal and dispersal with bounded memory.
//!
//! Upload: the record's current version is read (a logged access), the file is sealed in
//! 1 MiB segments under a fresh key (STREAM, [`ehr_crypto::stream`]), each segment cut
//! into `n` fragments as it fills; node `i` gets fragment `i` of every segment as the
//! leaves of one UnixFS file (its root in the manifest), the key is Shamir-shared and share
//! `i` wrapped to custodian `i`. Every block is journaled (synced) before it is stored, so
//! a failure or crash midway leaves nothing behind. Then the next version is stored: its
//! bundle gains a `DocumentReference` (type, title, size, SHA-256, date), its manifest the
//! attachment's entry; earlier versions keep theirs. Memory: the segments in flight
//! ([`IN_FLIGHT`], [`READ_AHEAD`]), whatever the size.
//!
//! Download: the version is read (logged on chain first), the attachment's key shares are
//! released under the same logged access, and the segments covering the range asked for
//! are fetched from `k` nodes (each fragment checked against its CID; a bad or missing one
//! replaced by another node's), opened and sent one by one. Too few good fragments ends
//! the body with an error, never a short file.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use alloy::primitives::B256;
use ehr_crypto::dispersal::{self, DispersedSegment};
use ehr_crypto::stream::{SEGMENT_LEN, StreamContext, StreamDisperser, StreamKey};
use ehr_crypto::{DataKey, RecordContext, Threshold, wrap};
use ehr_fhir as fhir;
use ehr_node::manifest::{self, AttachmentRef};
use ehr_primitives::unix_now;
use ehr_store::cids::RAW;
use ehr_store::unixfs::Importer;
use ehr_store::{Cid, Profile, cid_from_sha256, raw_cid};
use futures::future::join_all;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;

use super::read::SharesWanted;
use super::*;
use crate::attachments::{AttachmentPolicy, ByteRange, SNIFF_LEN};
use crate::session::*;
use crate::views::*;
use crate::{Error, Result};

/// Segments whose blocks may be on their way to the nodes at once during an upload (about
/// 1.7 MiB each at 3-of-5).
pub const IN_FLIGHT: usize = 4;
/// Opened segments (1 MiB each) a download may have ready ahead of the response.
pub const READ_AHEAD: usize = 8;

/// What an upload says of the file besides its bytes.
#[derive(Clone, Copy, Debug)]
pub struct AttachmentInput<'a> {
    /// The declared media type (`Content-Type`), checked against the bytes.
    pub content_type: &'a str,
    /// A title to show (e.g. the file's name).
    pub title: Option<&'a str>,
    /// The length the request declared (`Content-Length`), if any: checked against the
    /// limit before anything is read, and against the bytes at the end.
    pub declared_len: Option<u64>,
}

/// An attachment stored: the record version holding it, and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachmentStored {
    /// The new version.
    #[serde(flatten)]
    pub stored: Stored,
    /// Its number in the record, from 1.
    pub attachment: u32,
    /// Its media type.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// An attachment being read: what it is, and its bytes as they are opened.
pub struct AttachmentDownload {
    /// Its number in the record.
    pub attachment: u32,
    /// The stored media type.
    pub content_type: String,
    /// Its title, if it has one.
    pub title: Option<String>,
    /// The whole file's size.
    pub size: u64,
    /// SHA-256 of the whole file.
    pub sha256: Option<[u8; 32]>,
    /// The bytes the body holds: `[start, end)` of the file.
    pub range: Range<u64>,
    /// The `logAccess` transaction that logged this read.
    pub access_tx: B256,
    /// The bytes, a segment (or its part in the range) at a time; an error item ends it.
    pub body: BoxStream<'static, Result<Vec<u8>>>,
}

impl std::fmt::Debug for AttachmentDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentDownload")
            .field("attachment", &self.attachment)
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// What may be attached (types, size limit).
    pub fn attachment_policy(&self) -> &AttachmentPolicy {
        &self.attachment_policy
    }

    /// Sets what may be attached.
    pub fn with_attachment_policy(mut self, policy: AttachmentPolicy) -> Self {
        self.attachment_policy = policy;
        self
    }

    /// The patient attaches a file to one of its records, streamed from `body`: the next
    /// version holds it. The type and declared length are checked before anything is
    /// read, the first bytes against the type before anything is stored; a failure at any
    /// point stores nothing.
    pub async fn attach<S, B, E>(
        &self,
        session: &PatientSession,
        record_id: u64,
        input: AttachmentInput<'_>,
        body: S,
    ) -> Result<AttachmentStored>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let known = self
            .attachment_policy
            .check_declared(input.content_type, input.declared_len)?;
        self.check_owner(session.address(), record_id).await?;
        let _guard = self.lock_record(record_id).await;
        let current = self.read_opened(session, record_id, None).await?;
        let manifest = &current.manifest;
        let index = u32::try_from(manifest.attachments.len()).expect("a manifest is small");
        let number = index + 1;
        let version = current.record.version + 1;
        let ctx = StreamContext {
            record: RecordContext {
                patient: current.record.owner.0.0,
                record_id: manifest.uid.0,
                version,
            },
            attachment: index,
        };
        let mut rng = ehr_crypto::rng();
        let key = DataKey::generate(&mut rng);
        let (share_blocks, share_digests) = {
            let shares = dispersal::split_key(self.threshold, &key, &mut rng)?;
            let aad = manifest::attachment_aad(index);
            let blocks = shares
                .iter()
                .zip(&self.custodians)
                .map(|(share, c)| {
                    let w = wrap::wrap_key_share(
                        &wrap::PublicKey(c.0),
                        &ctx.record,
                        share,
                        &aad,
                        &mut rng,
                    )?;
                    Ok(manifest::share_block(&w))
                })
                .collect::<Result<Vec<_>>>()?;
            let digests: Vec<[u8; 32]> = shares
                .iter()
                .map(|s| dispersal::key_share_digest(s.x, &s.share))
                .collect();
            (blocks, digests)
        };
        let key = StreamKey::new(key, &ctx, &mut rng);
        let prefix = key.prefix();

        let mut up = Upload::begin(self)?;
        let result = async {
            let shares: Vec<Cid> = share_blocks.iter().map(|b| raw_cid(b)).collect();
            up.send(
                shares
                    .iter()
                    .zip(share_blocks)
                    .map(|(c, b)| vec![(*c, b)])
                    .collect(),
            )
            .await?;
            let summary = up
                .stream(
                    key,
                    known,
                    input.declared_len,
                    &self.attachment_policy,
                    body,
                )
                .await?;
            let roots = up.finish().await?;
            let sha256 = summary.sha256;
            let url = format!("/api/records/{record_id}/attachments/{number}");
            let created = fhir::instant(unix_now());
            let doc = fhir::document_bundle(
                &fhir::DocumentInfo {
                    content_type: known.media_type(),
                    title: input.title,
                    size: summary.size,
                    sha256,
                    url: &url,
                    index: number,
                    created: &created,
                },
                current.record.patient_id,
            );
            let base = fhir::Base {
                bundle: &current.record.bundle,
                record_id,
            };
            let bundle = super::write::compose(Some(base), current.record.patient_id, &doc, None)?;
            let entry = AttachmentRef {
                version,
                len: summary.size,
                prefix,
                roots,
                shares,
                share_digests,
            };
            let stored = self
                .store_version_with(
                    session.signer(),
                    record_id,
                    bundle.to_json_vec(),
                    Some((entry, up.journaled.clone())),
                )
                .await?;
            Ok(AttachmentStored {
                stored: Stored {
                    added_from: fhir_entries(&current.record.bundle),
                    ..stored
                },
                attachment: number,
                content_type: known.media_type().to_owned(),
                size: summary.size,
                sha256: alloy::hex::encode(sha256),
            })
        }
        .await;
        match &result {
            Ok(_) => self.journal.done(&up.token),
            // The version's journal entry holds the attachment's blocks now: they stay
            // or go with it.
            Err(Error::UploadPending { .. }) => self.journal.done(&up.token),
            Err(e) => {
                tracing::warn!(record = record_id, error = %e, "an attachment upload failed; removing its blocks");
                up.discard().await;
            }
        }
        result
    }

    /// Reads attachment `number` of a record version (the current one, or `version`),
    /// logging the access on chain first; `range` limits the bytes sent. The owner may
    /// read its own; a provider needs a live grant, as for the record.
    pub async fn attachment(
        &self,
        session: &impl Reader,
        record_id: u64,
        version: Option<u32>,
        number: u32,
        range: Option<ByteRange>,
    ) -> Result<AttachmentDownload> {
        let opened = self.read_opened(session, record_id, version).await?;
        let not_found = || {
            Error::NotFound(format!(
                "attachment {number} of record {record_id} version {}",
                opened.record.version
            ))
        };
        let doc = fhir::documents(&opened.record.bundle)
            .into_iter()
            .find(|d| d.index == number)
            .ok_or_else(not_found)?;
        let manifest = &opened.manifest;
        let index = number.checked_sub(1).ok_or_else(not_found)?;
        let entry = manifest
            .attachments
            .get(index as usize)
            .ok_or_else(not_found)?
            .clone();
        if doc.size != entry.len {
            return Err(Error::ManifestMismatch {
                record_id,
                version: opened.record.version,
            });
        }
        let ctx = entry.stream_context(manifest.patient, manifest.uid, index);
        let t = Threshold::new(
            usize::from(manifest.dispersal.k),
            usize::from(manifest.dispersal.n),
        )
        .map_err(|_| Error::ManifestMismatch {
            record_id,
            version: opened.record.version,
        })?;
        let shares = self
            .key_shares(
                session.signer(),
                &SharesWanted {
                    record_id,
                    version: opened.record.version,
                    nonce: opened.nonce,
                    attachment: number,
                    k: t.k(),
                    ctx: ctx.record,
                    digests: &entry.share_digests,
                    manifest_block: &opened.manifest_block,
                },
            )
            .await?;
        let (key, _) = dispersal::recover_key_with(t, &entry.share_digests, &shares)?;
        let key = StreamKey::with_prefix(key, &ctx, entry.prefix);
        let range = match range {
            None => 0..entry.len,
            Some(r) => r
                .resolve(entry.len)
                .ok_or(Error::RangeNotSatisfiable { size: entry.len })?,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let reader = SegmentReader {
            nodes: self.nodes.clone(),
            t,
            entry,
            key,
            leaves: Vec::new(),
        };
        tokio::spawn(reader.run(range.clone(), tx));
        let body = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed();
        Ok(AttachmentDownload {
            attachment: number,
            content_type: doc.content_type,
            title: doc.title,
            size: doc.size,
            sha256: doc.sha256,
            range,
            access_tx: opened.record.access_tx,
            body,
        })
    }
}

fn fhir_entries(bundle: &serde_json::Value) -> usize {
    bundle["entry"].as_array().map_or(0, Vec::len)
}

/// One attachment upload's blocks on their way to the nodes: journaled before they are
/// sent, a bounded number of segments in flight, a node that fails dropped (the upload
/// goes on while `k + 1` are left, as a record's does).
struct Upload<'a> {
    service: &'a Service,
    /// The journal entry's name (not a manifest: there is none yet).
    token: String,
    /// Every block journaled so far (all are removed if the upload fails).
    journaled: Vec<String>,
    /// Node `i`'s fragment file, built as its leaves come.
    files: Vec<Importer>,
    /// Nodes that failed a put (they get nothing more).
    failed: Vec<bool>,
    in_flight: VecDeque<tokio::task::JoinHandle<Vec<bool>>>,
}

impl<'a> Upload<'a> {
    fn begin(service: &'a Service) -> Result<Self> {
        let mut token = [0u8; 16];
        ehr_crypto::fill_random(&mut token);
        let token = format!("attachment-{}", alloy::hex::encode(token));
        let n = service.nodes.len();
        service.journal.begin(&crate::journal::Upload {
            manifest: token.clone(),
            fragments: Vec::new(),
            shares: Vec::new(),
            tx: None,
            notes_tx: true,
        })?;
        Ok(Self {
            service,
            token,
            journaled: Vec::new(),
            files: (0..n).map(|_| Importer::new(Profile::KuboV1)).collect(),
            failed: vec![false; n],
            in_flight: VecDeque::new(),
        })
    }

    /// Journals `blocks` (node `i` gets `blocks[i]`) and sends them; waits for the oldest
    /// batch when [`IN_FLIGHT`] are on their way.
    async fn send(&mut self, blocks: Vec<Vec<(Cid, Vec<u8>)>>) -> Result<()> {
        let cids: Vec<String> = blocks
            .iter()
            .flatten()
            .map(|(c, _)| c.to_string())
            .collect();
        self.service.journal.blocks(&self.token, cids.clone())?;
        self.journaled.extend(cids);
        while self.in_flight.len() >= IN_FLIGHT {
            self.settle_one().await?;
        }
        let nodes: Vec<Option<Arc<dyn Node>>> = self
            .service
            .nodes
            .iter()
            .zip(&self.failed)
            .map(|(n, failed)| (!failed).then(|| n.clone()))
            .collect();
        self.in_flight.push_back(tokio::spawn(async move {
            join_all(nodes.into_iter().zip(blocks).map(|(node, blocks)| async move {
                let Some(node) = node else { return false };
                for (cid, block) in &blocks {
                    // Every block here was hashed as it was made: a node in this
                    // process need not hash it again.
                    if let Err(e) = timed(node.put_own_block(cid, block)).await {
                        tracing::warn!(node = node.name(), error = %e, "storing an attachment's block failed");
                        return false;
                    }
                }
                true
            }))
            .await
        }));
        Ok(())
    }

    /// Waits for the oldest batch; fails once fewer than `k + 1` nodes have all theirs.
    async fn settle_one(&mut self) -> Result<()> {
        if let Some(batch) = self.in_flight.pop_front() {
            let ok = batch
                .await
                .map_err(|e| Error::Store(ehr_store::Error::Task(e.to_string())))?;
            for (failed, ok) in self.failed.iter_mut().zip(ok) {
                *failed |= !ok;
            }
        }
        let n = self.failed.len();
        let good = self.failed.iter().filter(|f| !**f).count();
        let needed = (self.service.threshold.k() + 1).min(n);
        if good < needed {
            return Err(Error::NodesUnavailable {
                reachable: good,
                needed,
            });
        }
        Ok(())
    }

    /// Reads the body, seals and disperses it a segment at a time, and sends each
    /// segment's fragments — three stages at once: reading the body, sealing on a thread of
    /// the blocking pool, storing — with two segments queued between each. Checks the size
    /// as it goes and the type on the first bytes, before any fragment is made.
    async fn stream<S, B, E>(
        &mut self,
        key: StreamKey,
        known: crate::attachments::Known,
        declared: Option<u64>,
        policy: &AttachmentPolicy,
        mut body: S,
    ) -> Result<ehr_crypto::stream::StreamSummary>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let (full_tx, mut full_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
        let (seg_tx, mut seg_rx) = tokio::sync::mpsc::channel::<DispersedSegment>(2);
        let t = self.service.threshold;
        // Sealing: every full segment as it comes; the rest, flagged last, when the reader
        // hangs up. A reader that failed sends nothing more, and the result is dropped.
        let sealer = tokio::task::spawn_blocking(move || {
            let mut disperser = StreamDisperser::new(key, t);
            let mut sink = |_, s| {
                seg_tx
                    .blocking_send(s)
                    .map_err(|_| ehr_crypto::Error::StreamSegment("the upload stopped"))
            };
            while let Some(data) = full_rx.blocking_recv() {
                disperser.push(&data, &mut sink)?;
            }
            disperser.finish(&mut sink)
        });
        let read = async move {
            let mut pending: Vec<u8> = Vec::with_capacity(SEGMENT_LEN);
            let mut total = 0u64;
            let mut head_checked = false;
            let stopped = || Error::InvalidInput {
                field: "body",
                message: "the upload stopped".into(),
            };
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| Error::InvalidInput {
                    field: "body",
                    message: format!("the upload broke off: {e}"),
                })?;
                let mut chunk = chunk.as_ref();
                total += chunk.len() as u64;
                policy.check_len(total)?;
                while !chunk.is_empty() {
                    let take = chunk.len().min(SEGMENT_LEN - pending.len());
                    pending.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if !head_checked && pending.len() >= SNIFF_LEN {
                        AttachmentPolicy::check_head(known, &pending)?;
                        head_checked = true;
                    }
                    if pending.len() == SEGMENT_LEN {
                        let full = std::mem::replace(&mut pending, Vec::with_capacity(SEGMENT_LEN));
                        full_tx.send(full).await.map_err(|_| stopped())?;
                    }
                }
            }
            if !head_checked {
                AttachmentPolicy::check_head(known, &pending)?;
            }
            if let Some(declared) = declared
                && declared != total
            {
                return Err(Error::InvalidInput {
                    field: "body",
                    message: format!("{total} bytes came, the request declared {declared}"),
                });
            }
            if !pending.is_empty() {
                full_tx.send(pending).await.map_err(|_| stopped())?;
            }
            // Dropping the sender tells the sealer the body is over.
            Ok(())
        };
        let store = async {
            while let Some(s) = seg_rx.recv().await {
                self.segment(s).await?;
            }
            Ok(())
        };
        let outcome: Result<((), ())> = futures::future::try_join(read, store).await;
        // On an error the channels close, so the sealer stops too.
        drop(seg_rx);
        let sealed = match sealer.await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        outcome?;
        Ok(sealed?)
    }

    /// One segment: fragment `i` becomes the next leaf of node `i`'s file (with any tree
    /// node that closes), and goes to node `i`.
    async fn segment(&mut self, s: DispersedSegment) -> Result<()> {
        let mut blocks: Vec<Vec<(Cid, Vec<u8>)>> = Vec::with_capacity(self.files.len());
        for (i, file) in self.files.iter_mut().enumerate() {
            let fragment = s.fragments.get(i).expect("n fragments").to_vec();
            let digest = s.digests[i];
            let mut node_blocks = vec![(cid_from_sha256(RAW, &digest), Vec::new())];
            file.push_raw_leaf(&digest, fragment.len(), &mut |cid, block| {
                node_blocks.push((*cid, block.to_vec()));
                Ok(())
            })?;
            node_blocks[0].1 = fragment;
            blocks.push(node_blocks);
        }
        self.send(blocks).await
    }

    /// Closes every node's file (its last tree nodes go out), waits for all in flight,
    /// and returns the roots.
    async fn finish(&mut self) -> Result<Vec<Cid>> {
        let mut roots = Vec::with_capacity(self.files.len());
        let mut blocks = Vec::with_capacity(self.files.len());
        for file in std::mem::take(&mut self.files) {
            let mut node_blocks = Vec::new();
            roots.push(file.finish(&mut |cid, block| {
                node_blocks.push((*cid, block.to_vec()));
                Ok(())
            })?);
            blocks.push(node_blocks);
        }
        self.send(blocks).await?;
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        Ok(roots)
    }

    /// Removes every block journaled (best effort); the journal entry is done once all
    /// nodes answered, else it stays for [`Service::settle_uploads`] and the next start.
    async fn discard(mut self) {
        for batch in std::mem::take(&mut self.in_flight) {
            let _ = batch.await;
        }
        let cids: Vec<Cid> = self
            .journaled
            .iter()
            .filter_map(|c| ehr_store::parse_cid(c).ok())
            .collect();
        let all_gone = join_all(self.service.nodes.iter().map(|node| {
            let cids = &cids;
            async move {
                let mut ok = true;
                for cid in cids {
                    ok &= timed(node.delete_block(cid)).await.is_ok();
                }
                ok
            }
        }))
        .await
        .into_iter()
        .all(|ok| ok);
        if all_gone {
            self.service.journal.done(&self.token);
        } else {
            self.service.pending().push(crate::journal::Upload {
                manifest: self.token.clone(),
                fragments: self.journaled,
                shares: Vec::new(),
                tx: None,
                notes_tx: true,
            });
        }
    }
}

/// Fetches, checks and opens an attachment's segments in order, off the request's task.
struct SegmentReader {
    nodes: Vec<Arc<dyn Node>>,
    t: Threshold,
    entry: AttachmentRef,
    key: StreamKey,
    /// Node `i`'s leaves, once its file was walked (`Err`: it could not be).
    leaves: Vec<Option<std::result::Result<Vec<Cid>, ()>>>,
}

impl SegmentReader {
    async fn run(mut self, range: Range<u64>, tx: tokio::sync::mpsc::Sender<Result<Vec<u8>>>) {
        self.leaves = (0..self.nodes.len()).map(|_| None).collect();
        if range.is_empty() {
            return;
        }
        let seg = SEGMENT_LEN as u64;
        let (first, last) = (range.start / seg, (range.end - 1) / seg);
        for j in first..=last {
            let item = self.segment(j).await.map(|mut plain| {
                let start = j * seg;
                let from = range.start.saturating_sub(start) as usize;
                let to = ((range.end - start) as usize).min(plain.len());
                plain.truncate(to);
                plain.drain(..from);
                plain
            });
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    }

    /// Node `i`'s leaf CIDs (its file walked once).
    async fn leaves_of(&mut self, i: usize) -> Option<&[Cid]> {
        if self.leaves[i].is_none() {
            let node = self.nodes[i].clone();
            let segments = self.entry.segments();
            let walked = ehr_store::unixfs::file_blocks(
                &self.entry.roots[i],
                usize::try_from(segments).unwrap_or(usize::MAX),
                |c| {
                    let node = node.clone();
                    async move {
                        timed(node.get_block(&c))
                            .await
                            .map_err(|e| ehr_store::Error::Task(e.to_string()))
                    }
                },
            )
            .await;
            self.leaves[i] = Some(match walked {
                Ok(f) if f.leaves.len() as u64 == segments => Ok(f.leaves),
                Ok(_) => {
                    tracing::warn!(
                        node = self.nodes[i].name(),
                        "an attachment's file has the wrong length"
                    );
                    Err(())
                }
                Err(e) => {
                    tracing::warn!(node = self.nodes[i].name(), error = %e, "an attachment's file is unreadable here");
                    Err(())
                }
            });
        }
        self.leaves[i].as_ref().and_then(|l| l.as_deref().ok())
    }

    /// Segment `j`, opened: `k` good fragments (originals first), rebuilt, checked by the
    /// AEAD at its position.
    async fn segment(&mut self, j: u64) -> Result<Vec<u8>> {
        let (k, n) = (self.t.k(), self.t.n());
        let mut digests = vec![[0u8; 32]; n];
        let mut fragments: Vec<Option<Vec<u8>>> = vec![None; n];
        let mut good = 0;
        let mut next = 0;
        while good < k && next < n {
            let mut batch = Vec::new();
            while batch.len() < k - good && next < n {
                let i = next;
                next += 1;
                if let Some(leaves) = self.leaves_of(i).await {
                    let cid = leaves[j as usize];
                    digests[i] = cid.hash().digest().try_into().expect("a sha2-256 leaf");
                    batch.push((i, cid));
                }
            }
            let got = join_all(batch.iter().map(|&(i, cid)| {
                let node = self.nodes[i].clone();
                async move { (i, cid, timed(node.get_block(&cid)).await) }
            }))
            .await;
            for (i, cid, r) in got {
                match r {
                    Ok(data) if ehr_store::verify(&cid, &data, None).is_ok() => {
                        fragments[i] = Some(data);
                        good += 1;
                    }
                    Ok(_) => tracing::warn!(
                        node = self.nodes[i].name(),
                        segment = j,
                        "node served a corrupt fragment; using another"
                    ),
                    Err(e) => tracing::warn!(
                        node = self.nodes[i].name(),
                        segment = j,
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
        let (mut sealed, _) =
            dispersal::rebuild_segment(self.t, self.entry.sealed_segment_len(j), &digests, &refs)?;
        self.key
            .open_segment(j, j + 1 == self.entry.segments(), &mut sealed)?;
        Ok(sealed)
    }
}
