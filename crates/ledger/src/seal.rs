//! Sealing one epoch: the payload sealed under a fresh key and Reed–Solomon dispersed
//! k-of-n (`ehr_crypto::dispersal`), the key Shamir-shared and share `i` HPKE-wrapped to
//! custodian `i` (`ehr_crypto::wrap`), the header naming it all. No new cryptography.

use alloy::primitives::B256;
use ehr_crypto::PublicKey;
use ehr_crypto::wrap::wrap_key_share;
use ehr_node::ledger::{LEDGER_CUSTODIAN_AAD, encode_wrapped, epoch_context, epoch_id};
use ehr_primitives::Threshold;
use ehr_store::Cid;

use crate::format::{EpochHeader, Payload, block_digest, payload_digest};
use crate::{Error, Result};

/// What node `i` keeps of one epoch besides the header: its fragment and its wrapped share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeParts {
    /// Fragment `i`.
    pub fragment: Vec<u8>,
    /// Share `i + 1`, wrapped to custodian `i` (`ehr_node::ledger::encode_wrapped`).
    pub share: Vec<u8>,
}

/// A sealed epoch, ready to go to the nodes.
#[derive(Clone, Debug)]
pub struct SealedEpoch {
    /// The header.
    pub header: EpochHeader,
    /// Its bytes (the replicated block).
    pub header_bytes: Vec<u8>,
    /// Per node, in node order.
    pub parts: Vec<NodeParts>,
}

impl SealedEpoch {
    /// The header block's CID.
    pub fn header_cid(&self) -> Cid {
        ehr_store::raw_cid(&self.header_bytes)
    }
}

/// Seals `payload` (epoch `payload.epoch`) for custodians `custodians` at `threshold`.
pub fn seal_epoch(
    threshold: Threshold,
    custodians: &[B256],
    payload: &Payload,
    last_block_hash: B256,
    prev: [u8; 32],
) -> Result<SealedEpoch> {
    if custodians.len() != threshold.n() {
        return Err(Error::Config(format!(
            "{} custodian keys for n = {}",
            custodians.len(),
            threshold.n()
        )));
    }
    let plain = payload.encode();
    let digest = payload_digest(&plain);
    let ctx = epoch_context(epoch_id(payload.chain_id, payload.epoch));
    let mut rng = ehr_crypto::rng();
    let d = ehr_crypto::dispersal::disperse(threshold, &ctx, plain, &mut rng)?;
    let mut parts = Vec::with_capacity(threshold.n());
    let mut share_digests = Vec::with_capacity(threshold.n());
    for (i, custodian) in custodians.iter().enumerate() {
        let wrapped = wrap_key_share(
            &PublicKey(custodian.0),
            &ctx,
            &d.key_shares[i],
            LEDGER_CUSTODIAN_AAD,
            &mut rng,
        )?;
        let share = encode_wrapped(&wrapped);
        share_digests.push(block_digest(&share));
        let fragment = d
            .fragments
            .get(i)
            .ok_or_else(|| Error::Config("dispersal made too few fragments".into()))?
            .to_vec();
        parts.push(NodeParts { fragment, share });
    }
    let m = &d.manifest;
    let header = EpochHeader {
        chain_id: payload.chain_id,
        epoch: payload.epoch,
        first_block: payload.first_block,
        block_count: payload.blocks.len() as u64,
        last_block_hash,
        payload_digest: digest,
        prev,
        k: m.k,
        n: m.n,
        nonce: m.nonce,
        ciphertext_len: m.ciphertext_len,
        fragment_len: m.fragment_len,
        fragments: m.fragments.iter().map(|f| f.sha256).collect(),
        key_share_digests: m.key_share_digests.clone(),
        shares: share_digests,
        custodians: custodians.to_vec(),
    };
    Ok(SealedEpoch {
        header_bytes: header.encode(),
        header,
        parts,
    })
}

/// The bytes of a pending-delivery file: the header, then per node its fragment and share
/// (each u32-length-prefixed).
pub(crate) fn encode_pending(e: &SealedEpoch) -> Vec<u8> {
    use crate::format::put_bytes;
    let size: usize = e
        .parts
        .iter()
        .map(|p| 8 + p.fragment.len() + p.share.len())
        .sum();
    let mut w = Vec::with_capacity(4 + e.header_bytes.len() + size);
    put_bytes(&mut w, &e.header_bytes);
    for p in &e.parts {
        put_bytes(&mut w, &p.fragment);
        put_bytes(&mut w, &p.share);
    }
    w
}

/// Reads a file written by [`encode_pending`].
pub(crate) fn decode_pending(bytes: &[u8]) -> Result<SealedEpoch> {
    let mut r = crate::format::Reader::new(bytes, "pending epoch file");
    let header_bytes = r.bytes()?.to_vec();
    let header = EpochHeader::decode(&header_bytes)?;
    let mut parts = Vec::with_capacity(header.n.into());
    for _ in 0..header.n {
        let fragment = r.bytes()?.to_vec();
        let share = r.bytes()?.to_vec();
        parts.push(NodeParts { fragment, share });
    }
    r.finish()?;
    Ok(SealedEpoch {
        header,
        header_bytes,
        parts,
    })
}
