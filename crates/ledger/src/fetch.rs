//! Reading the archive back from any k nodes: the newest head the admin signed, the
//! hash-linked headers back to epoch 0, every epoch's fragments (each checked against its
//! digest; a bad or missing one is named with its node and read around) and key shares
//! (released to the admin's signed request), opened and checked against the headers.

use std::sync::Arc;

use alloy::primitives::{B256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use ehr_crypto::KeyShare;
use ehr_crypto::dispersal::{fragment_ok, key_share_digest, open_dispersed};
use ehr_crypto::wrap::{self, SecretKey};
use ehr_node::ledger::{epoch_context, epoch_id};
use ehr_node::{ArchiveHead, LedgerShareRequest, Node, NodeError};
use ehr_primitives::unix_now;
use ehr_store::{Cid, cid_from_sha256};
use futures::StreamExt;

use crate::format::{CODEC, EpochHeader, Payload, payload_digest};
use crate::*;

/// Epochs fetched at once.
const CONCURRENT_EPOCHS: usize = 4;
/// How long a ledger-share request is valid.
const REQUEST_TTL: u64 = 300;

/// Reads the archive back from the nodes (any k of them): takes the newest head the admin
/// signed among the nodes that answer (a head signed by another key is ignored), walks the
/// hash-linked epoch headers back to epoch 0, fetches and checks every epoch's fragments
/// and key shares (a corrupt or missing one is named with its node and read around), opens
/// every epoch and checks its blocks against the headers and each other (numbers, parent
/// hashes, receipts roots, the epoch's last block hash).
pub async fn fetch(
    nodes: &[Arc<dyn Node>],
    admin: &PrivateKeySigner,
    chain_id: u64,
) -> Result<Fetched> {
    let admin_address = admin.address();
    let answers = futures::future::join_all(nodes.iter().map(|n| n.archive_head())).await;
    let mut problems = Vec::new();
    let mut heads: Vec<ArchiveHead> = Vec::new();
    let mut answering = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let name = nodes[i].name();
        match answer {
            Ok(h) if h.chain_id != chain_id => {
                problems.push(format!(
                    "{name}: archive head of chain {}; ignored",
                    h.chain_id
                ));
                answering.push(i);
            }
            Ok(h) if h.signer().ok() == Some(admin_address) => {
                answering.push(i);
                if !heads.iter().any(|o| o.header == h.header) {
                    heads.push(h);
                }
            }
            Ok(_) => {
                problems.push(format!(
                    "{name}: archive head not signed by the admin; ignored"
                ));
                answering.push(i);
            }
            Err(NodeError::NotFound(_)) => {
                problems.push(format!("{name}: no archive head"));
                answering.push(i);
            }
            Err(e) => problems.push(format!("{name}: archive head: {e}")),
        }
    }
    if heads.is_empty() {
        return Err(Error::NoHead {
            admin: admin_address,
            problems,
        });
    }
    heads.sort_by_key(|h| std::cmp::Reverse((h.epoch, h.last_block.map_or(0, |b| b + 1))));
    // Headers are asked of the nodes that answered first.
    let order: Vec<usize> = answering
        .iter()
        .copied()
        .chain((0..nodes.len()).filter(|i| !answering.contains(i)))
        .collect();
    let mut first_error = None;
    for head in heads {
        let mut tried = problems.clone();
        match read_archive(nodes, &order, admin, chain_id, &head, &mut tried).await {
            Ok(mut fetched) => {
                fetched.problems = tried;
                return Ok(fetched);
            }
            // Too few parts of a head's epochs: say so rather than fall back to an older head.
            Err(e @ Error::NotEnough { .. }) => return Err(first_error.unwrap_or(e)),
            Err(e) => {
                tracing::warn!(epoch = head.epoch, error = %e, "archive head unusable; trying an older one");
                problems.push(format!(
                    "the head of epoch {} ({}) is unusable: {e}",
                    head.epoch, head.header
                ));
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(Error::NoHead {
        admin: admin_address,
        problems,
    }))
}

/// Reads the archive `head` stands for.
async fn read_archive(
    nodes: &[Arc<dyn Node>],
    order: &[usize],
    admin: &PrivateKeySigner,
    chain_id: u64,
    head: &ArchiveHead,
    problems: &mut Vec<String>,
) -> Result<Fetched> {
    let headers = walk_headers(nodes, order, chain_id, head, problems).await?;
    let (secret, public) = wrap::generate_keypair(&mut ehr_crypto::rng());
    let secret = Arc::new(secret);
    let fetched: Vec<EpochFetch> = futures::stream::iter(headers.iter().cloned())
        .map(|h| {
            let secret = secret.clone();
            async move { fetch_epoch(nodes, order, admin, &secret, public, h).await }
        })
        .buffered(CONCURRENT_EPOCHS)
        .collect()
        .await;

    let mut shortfalls = Vec::new();
    let mut epoch_problems = Vec::new();
    let mut opened = Vec::new();
    for f in fetched {
        epoch_problems.extend(f.report.problems.iter().cloned());
        match f.outcome {
            Ok(plain) => opened.push((f.report, plain)),
            Err(s) => shortfalls.push(s),
        }
    }
    if !shortfalls.is_empty() {
        let mut all = epoch_problems;
        all.extend(problems.iter().cloned());
        return Err(Error::NotEnough {
            shortfalls,
            problems: all,
        });
    }

    let mut blocks = Vec::new();
    let mut parts: Vec<PartHistory> = Vec::new();
    let mut reports = Vec::new();
    let mut prev_hash = B256::ZERO;
    for ((report, plain), h) in opened.into_iter().zip(&headers) {
        let e = h.epoch;
        if payload_digest(&plain) != h.payload_digest {
            return Err(Error::Invalid(format!(
                "epoch {e}: the payload does not match its header's digest"
            )));
        }
        let payload = Payload::decode(&plain)?;
        if payload.chain_id != chain_id
            || payload.epoch != e
            || payload.first_block != h.first_block
            || payload.blocks.len() as u64 != h.block_count
        {
            return Err(Error::Invalid(format!(
                "epoch {e}: the payload does not match its header"
            )));
        }
        for b in payload.blocks {
            let block = ehr_chain::embedded::Block::decode(&b.block)
                .map_err(|err| Error::Invalid(format!("block {}: {err}", b.number)))?;
            let hd = &block.header;
            if hd.number != b.number {
                return Err(Error::Invalid(format!(
                    "epoch {e}: block {} is numbered {}",
                    b.number, hd.number
                )));
            }
            if hd.parent_hash != prev_hash {
                return Err(Error::Invalid(format!(
                    "block {}: its parent hash is not block {}'s hash",
                    b.number,
                    b.number.wrapping_sub(1)
                )));
            }
            if keccak256(&b.receipts) != hd.receipts_root {
                return Err(Error::Invalid(format!(
                    "block {}: receipts do not match its receipts root",
                    b.number
                )));
            }
            prev_hash = hd.hash();
            blocks.push(b);
        }
        if h.last_block_hash != prev_hash {
            return Err(Error::Invalid(format!(
                "epoch {e}: its last block hash is not its blocks'"
            )));
        }
        for entry in payload.parts {
            let found = parts.iter_mut().find(|p| p.name == entry.name);
            match (found, entry.snapshot) {
                (Some(p), true) => {
                    p.snapshot = entry.data;
                    p.snapshot_cursor = entry.cursor;
                    p.changes.clear();
                    p.cursor = entry.cursor;
                }
                (None, true) => parts.push(PartHistory {
                    name: entry.name,
                    snapshot_cursor: entry.cursor,
                    snapshot: entry.data,
                    changes: Vec::new(),
                    cursor: entry.cursor,
                }),
                (Some(p), false) => {
                    p.changes.push(entry.data);
                    p.cursor = entry.cursor;
                }
                (None, false) => {
                    return Err(Error::Invalid(format!(
                        "epoch {e}: changes of part {} before any snapshot of it",
                        entry.name
                    )));
                }
            }
        }
        reports.push(report);
    }
    let last = blocks.last().map(|b| b.number);
    if last != head.last_block && !(last.is_none() && head.last_block.is_none()) {
        return Err(Error::Invalid(format!(
            "the head names block {:?} as the last, the archive ends at {last:?}",
            head.last_block
        )));
    }
    Ok(Fetched {
        epochs: reports,
        blocks,
        parts,
        problems: Vec::new(),
        head: head.clone(),
        headers,
    })
}

/// A block from the first node in `order` that has it with the right bytes.
async fn get_checked(
    nodes: &[Arc<dyn Node>],
    order: &[usize],
    cid: &Cid,
    what: &str,
    problems: &mut Vec<String>,
) -> Result<Vec<u8>> {
    for &i in order {
        let node = &nodes[i];
        match node.get_block(cid).await {
            Ok(data) if ehr_store::verify(cid, &data, None).is_ok() => return Ok(data),
            Ok(_) => problems.push(format!("{}: {what} fails its hash", node.name())),
            Err(e) => problems.push(format!("{}: {what}: {e}", node.name())),
        }
    }
    Err(Error::Invalid(format!("no node has the {what} ({cid})")))
}

/// The epoch headers from epoch 0 to the head's, each the one its successor links to.
pub(crate) async fn walk_headers(
    nodes: &[Arc<dyn Node>],
    order: &[usize],
    chain_id: u64,
    head: &ArchiveHead,
    problems: &mut Vec<String>,
) -> Result<Vec<EpochHeader>> {
    let mut headers = Vec::new();
    let mut cid = head.header;
    let mut expect = head.epoch;
    loop {
        let what = format!("header of epoch {expect}");
        let bytes = get_checked(nodes, order, &cid, &what, problems).await?;
        let h = EpochHeader::decode(&bytes)?;
        if h.chain_id != chain_id || h.epoch != expect {
            return Err(Error::Invalid(format!(
                "the {what} is epoch {} of chain {}",
                h.epoch, h.chain_id
            )));
        }
        if usize::from(h.n) != nodes.len() {
            return Err(Error::Invalid(format!(
                "epoch {expect} was dispersed over {} nodes; {} given",
                h.n,
                nodes.len()
            )));
        }
        if headers.is_empty() {
            let last = h.last_block().or(h.first_block.checked_sub(1));
            if last != head.last_block {
                return Err(Error::Invalid(format!(
                    "the head names block {:?} as the last, its epoch header {last:?}",
                    head.last_block
                )));
            }
        }
        let prev = h.prev;
        if let Some(next) = headers.last() {
            let next: &EpochHeader = next;
            if h.first_block + h.block_count != next.first_block {
                return Err(Error::Invalid(format!(
                    "epoch {} does not start where epoch {expect} ends",
                    next.epoch
                )));
            }
        }
        headers.push(h);
        if expect == 0 {
            if prev != [0; 32] || headers.last().is_some_and(|h| h.first_block != 0) {
                return Err(Error::Invalid("epoch 0 links to an earlier epoch".into()));
            }
            break;
        }
        if prev == [0; 32] {
            return Err(Error::Invalid(format!(
                "epoch {expect} links to no earlier epoch"
            )));
        }
        cid = cid_from_sha256(CODEC, &prev);
        expect -= 1;
    }
    headers.reverse();
    Ok(headers)
}

pub(crate) struct EpochFetch {
    pub(crate) report: EpochReport,
    pub(crate) outcome: Result<Vec<u8>, Shortfall>,
}

/// One epoch's fragments (k good; from the nodes that answered for their head first, in
/// node order, so originals first) and key shares (k good), opened.
pub(crate) async fn fetch_epoch(
    nodes: &[Arc<dyn Node>],
    order: &[usize],
    admin: &PrivateKeySigner,
    secret: &SecretKey,
    public: ehr_crypto::PublicKey,
    h: EpochHeader,
) -> EpochFetch {
    let (e, k, n) = (h.epoch, usize::from(h.k), usize::from(h.n));
    let manifest = h.manifest();
    let mut report = EpochReport {
        number: e,
        first_block: h.first_block,
        last_block: (h.first_block + h.block_count).saturating_sub(1),
        blocks: h.block_count,
        fragments_ok: 0,
        problems: Vec::new(),
    };
    let mut fragments: Vec<Option<Vec<u8>>> = vec![None; n];
    let mut next = 0;
    while report.fragments_ok < k && next < n {
        let batch: Vec<usize> = order[next..]
            .iter()
            .copied()
            .take(k - report.fragments_ok)
            .collect();
        next += batch.len();
        let answers = futures::future::join_all(batch.iter().map(|&i| {
            let cid = h.fragment_cid(i);
            async move { nodes[i].get_block(&cid).await }
        }))
        .await;
        for (&i, answer) in batch.iter().zip(answers) {
            let name = nodes[i].name();
            match answer {
                Ok(data) if fragment_ok(&manifest, i, &data) => {
                    fragments[i] = Some(data);
                    report.fragments_ok += 1;
                }
                Ok(_) => report
                    .problems
                    .push(format!("{name}: fragment of epoch {e} fails its hash")),
                Err(err) => report
                    .problems
                    .push(format!("{name}: fragment of epoch {e}: {err}")),
            }
        }
    }
    if report.fragments_ok < k {
        let shortfall = Shortfall {
            epoch: e,
            what: "fragments",
            found: report.fragments_ok,
            needed: k,
        };
        return EpochFetch {
            report,
            outcome: Err(shortfall),
        };
    }

    // Key shares: first from the nodes whose fragments were good.
    let id = epoch_id(h.chain_id, e);
    let ctx = epoch_context(id);
    let order: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| fragments[i].is_some())
        .chain(order.iter().copied().filter(|&i| fragments[i].is_none()))
        .collect();
    let mut shares: Vec<KeyShare> = Vec::new();
    let mut next = 0;
    while shares.len() < k && next < n {
        let batch: Vec<usize> = order[next..]
            .iter()
            .copied()
            .take(k - shares.len())
            .collect();
        next += batch.len();
        let answers = futures::future::join_all(batch.iter().map(|&i| {
            let h = &h;
            async move {
                let x = (i + 1) as u8;
                let req = LedgerShareRequest::sign(
                    admin,
                    id,
                    x,
                    h.share_cid(i),
                    unix_now() + REQUEST_TTL,
                    &public,
                )
                .map_err(|e| NodeError::Internal(e.to_string()))?;
                let resp = nodes[i].release_ledger_share(&req).await?;
                if resp.x != x {
                    return Err(NodeError::BadRequest(format!(
                        "answered share {} for {x}",
                        resp.x
                    )));
                }
                wrap::unwrap_key_share(
                    secret,
                    &ctx,
                    x,
                    req.signing_hash().as_slice(),
                    &resp.wrapped,
                )
                .map_err(|_| NodeError::BadRequest("its answer does not open".into()))
            }
        }))
        .await;
        for (&i, answer) in batch.iter().zip(answers) {
            let name = nodes[i].name();
            match answer {
                Ok(s) if key_share_digest(s.x, &s.share) == h.key_share_digests[i] => {
                    shares.push(s);
                }
                Ok(_) => report
                    .problems
                    .push(format!("{name}: key share of epoch {e} fails its digest")),
                Err(err) => report
                    .problems
                    .push(format!("{name}: key share of epoch {e}: {err}")),
            }
        }
    }
    if shares.len() < k {
        let shortfall = Shortfall {
            epoch: e,
            what: "key shares",
            found: shares.len(),
            needed: k,
        };
        return EpochFetch {
            report,
            outcome: Err(shortfall),
        };
    }
    let refs: Vec<Option<&[u8]>> = fragments.iter().map(|f| f.as_deref()).collect();
    let outcome = match open_dispersed(&manifest, &refs, &shares, &ctx) {
        Ok(opened) => Ok(opened.plaintext),
        Err(err) => {
            report
                .problems
                .push(format!("epoch {e}: does not open: {err}"));
            Err(Shortfall {
                epoch: e,
                what: "fragments that open",
                found: 0,
                needed: k,
            })
        }
    };
    EpochFetch { report, outcome }
}
