//! [`Erasure`]: a patient leaving — `eraseAccount` erases every record of theirs on chain
//! (version 0 marks an erased record) — and what custodians and storage nodes read to
//! destroy the key shares and blocks, for every [`Registry`].

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use async_trait::async_trait;

use crate::LogQuery;
use crate::contract::EhrRegistry as C;
use crate::error::{Error, Result};
use crate::registry::{Registry, TxReceipt, decoded_logs, send, to_u64, view};

/// One record erased, from its `RecordErased` event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ErasedRecord {
    /// The record.
    pub record_id: u64,
    /// Its owner (who erased it).
    pub owner: Address,
    /// Its last version before the erasure.
    pub last_version: u32,
    /// Block it was mined in.
    pub block_number: u64,
    /// The `eraseAccount` transaction.
    pub tx_hash: B256,
}

/// Erasure on chain. Reading and writing records is [`RegistryExt`](crate::RegistryExt)'s.
#[async_trait]
pub trait Erasure: Registry {
    /// The patient erases their account: every record of theirs is erased at once (a
    /// `RecordErased` each); nothing reads, changes or adds one afterwards. Returns the
    /// records erased by this call (none again when erased already).
    async fn erase_account(
        &self,
        patient: &PrivateKeySigner,
    ) -> Result<(Vec<ErasedRecord>, TxReceipt)> {
        let r = send(self, patient, C::eraseAccountCall {}).await?;
        let contract = self.contract();
        let mut erased = Vec::new();
        for l in r.logs.iter().filter(|l| {
            l.address == contract
                && l.topics().first()
                    == Some(&<C::RecordErased as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
        }) {
            let e = <C::RecordErased as alloy::sol_types::SolEvent>::decode_log_data(&l.data)
                .map_err(|e| Error::Abi(e.to_string()))?;
            erased.push(ErasedRecord {
                record_id: to_u64(e.recordId, "record id")?,
                owner: e.owner,
                last_version: e.lastVersion,
                block_number: r.block_number,
                tx_hash: r.tx_hash,
            });
        }
        Ok((erased, r))
    }

    /// Whether record `record_id` exists and was erased.
    async fn is_erased(&self, record_id: u64) -> Result<bool> {
        view(
            self,
            C::isErasedCall {
                recordId: U256::from(record_id),
            },
        )
        .await
    }

    /// Every record erased in blocks from `from_block` on, oldest first: what a node that
    /// was away destroys before it serves again.
    async fn erased_since(&self, from_block: u64) -> Result<Vec<ErasedRecord>> {
        let mut q = LogQuery::event::<C::RecordErased>();
        q.from_block = from_block;
        decoded_logs::<_, C::RecordErased>(self, &q)
            .await?
            .into_iter()
            .map(|(e, l)| {
                Ok(ErasedRecord {
                    record_id: to_u64(e.recordId, "record id")?,
                    owner: e.owner,
                    last_version: e.lastVersion,
                    block_number: l.block_number,
                    tx_hash: l.tx_hash,
                })
            })
            .collect()
    }
}

impl<T: Registry + ?Sized> Erasure for T {}
