//! [`WriteAccess`]: the contract's write grants — a patient letting a provider add
//! versions to its records, or new records the patient owns — for every [`Registry`].

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use async_trait::async_trait;

use crate::LogQuery;
use crate::contract::EhrRegistry as C;
use crate::error::Result;
use crate::registry::{
    Registry, TxNote, TxReceipt, addr_topic, decoded_logs, event_in, send, to_u64, view,
};
use crate::values::{AccessStatus, WriteGrantInfo};

/// Write grants and provider-written records. Reading is [`RegistryExt`](crate::RegistryExt)'s.
#[async_trait]
pub trait WriteAccess: Registry {
    /// A patient lets `provider` write one record (`Some(id)`: add versions to it) or all
    /// (`None`: add versions to any, and new records the patient owns) until `expires_at`.
    async fn grant_write(
        &self,
        patient: &PrivateKeySigner,
        provider: Address,
        record: Option<u64>,
        expires_at: u64,
    ) -> Result<TxReceipt> {
        let call = C::grantWriteCall {
            provider,
            recordId: U256::from(record.unwrap_or(0)),
            expiresAt: expires_at,
        };
        send(self, patient, call).await
    }

    /// A patient revokes a write grant (reading stays as it is).
    async fn revoke_write(
        &self,
        patient: &PrivateKeySigner,
        provider: Address,
        record: Option<u64>,
    ) -> Result<TxReceipt> {
        let call = C::revokeWriteCall {
            provider,
            recordId: U256::from(record.unwrap_or(0)),
        };
        send(self, patient, call).await
    }

    /// A write grant as stored.
    async fn write_grant(
        &self,
        patient: Address,
        provider: Address,
        record: Option<u64>,
    ) -> Result<WriteGrantInfo> {
        let g = view(
            self,
            C::getWriteGrantCall {
                patient,
                provider,
                recordId: U256::from(record.unwrap_or(0)),
            },
        )
        .await?;
        Ok(WriteGrantInfo {
            expires_at: g.expiresAt,
            revoked_at: g.revokedAt,
        })
    }

    /// Whether `writer` may now add a version to `patient`'s record (`Some`) or add a
    /// record `patient` owns (`None`), with the time it refers to.
    async fn write_status(
        &self,
        writer: Address,
        patient: Address,
        record: Option<u64>,
    ) -> Result<(AccessStatus, u64)> {
        let r = view(
            self,
            C::writeStatusCall {
                writer,
                patient,
                recordId: U256::from(record.unwrap_or(0)),
            },
        )
        .await?;
        Ok((AccessStatus::from_code(r.status)?, r.when))
    }

    /// A provider with write access to all of `patient`'s records adds a record `patient`
    /// owns; returns its id. `note` hears the signed transaction before it is sent.
    async fn add_record_for_noted(
        &self,
        writer: &PrivateKeySigner,
        patient: Address,
        digest: B256,
        codec: u64,
        note: &TxNote<'_>,
    ) -> Result<(u64, TxReceipt)> {
        let call = C::addRecordForCall {
            patient,
            digest,
            codec,
        };
        let receipt = self
            .transact_noted(writer, call.abi_encode().into(), note)
            .await?;
        let ev: C::RecordVersion = event_in(&receipt, self.contract())?;
        Ok((to_u64(ev.recordId, "record id")?, receipt))
    }

    /// Every (provider, record scope) `patient` ever granted writing, in first-grant order,
    /// from the `WriteGranted` events; [`write_grant`](Self::write_grant) gives each one's
    /// current state.
    async fn write_grants_of(&self, patient: Address) -> Result<Vec<(Address, Option<u64>)>> {
        let q = LogQuery::event::<C::WriteGranted>().topic(1, addr_topic(patient));
        let mut out: Vec<(Address, Option<u64>)> = Vec::new();
        for (e, _) in decoded_logs::<_, C::WriteGranted>(self, &q).await? {
            let id = to_u64(e.recordId, "record id")?;
            let scope = (e.provider, (id != 0).then_some(id));
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        Ok(out)
    }

    /// Every (patient, record scope) that ever granted `provider` writing, in first-grant
    /// order.
    async fn write_grants_to(&self, provider: Address) -> Result<Vec<(Address, Option<u64>)>> {
        let q = LogQuery::event::<C::WriteGranted>().topic(2, addr_topic(provider));
        let mut out: Vec<(Address, Option<u64>)> = Vec::new();
        for (e, _) in decoded_logs::<_, C::WriteGranted>(self, &q).await? {
            let id = to_u64(e.recordId, "record id")?;
            let scope = (e.patient, (id != 0).then_some(id));
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        Ok(out)
    }
}

impl<T: Registry + ?Sized> WriteAccess for T {}
