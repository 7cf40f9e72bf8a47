//! Sharing: grants, revocation, and break-glass emergency access.

use alloy::primitives::{Address, B256};
use ehr_chain::{Erasure, RegistryExt, WriteAccess};
use ehr_node::read_nonce;
use ehr_primitives::unix_now;

use super::*;
use crate::session::*;
use crate::views::*;
use crate::{Error, Result};

impl Service {
    /// Grants `provider` access to one record or (None) all the patient's records until
    /// `expires_at` (unix seconds).
    pub async fn grant(
        &self,
        session: &PatientSession,
        provider: &str,
        record_id: Option<u64>,
        expires_at: u64,
    ) -> Result<B256> {
        let signer = session.signer();
        let provider = self
            .grant_target(session, provider, record_id, expires_at)
            .await?;
        let receipt = self
            .registry
            .grant_access(signer, provider, record_id, expires_at)
            .await
            .map_err(user_error)?;
        Ok(receipt.tx_hash)
    }

    /// Ends what `provider` holds: on one record (`Some`), its grant and break-glass
    /// window; on `None`, everything on every record of the patient — the all-records
    /// grant, every record grant and every break-glass window — in one transaction. It
    /// stops working at once. A new break-glass stays possible, as a new logged event.
    pub async fn revoke(
        &self,
        session: &PatientSession,
        provider: &str,
        record_id: Option<u64>,
    ) -> Result<B256> {
        let signer = session.signer();
        let provider = self.provider_address(provider)?;
        let receipt = match record_id {
            Some(id) => {
                self.registry
                    .revoke_access(signer, provider, Some(id))
                    .await
            }
            None => self.registry.revoke_all(signer, provider).await,
        }
        .map_err(user_error)?;
        Ok(receipt.tx_hash)
    }

    /// "Shared with me": the grants the session provider holds now, from any patient of
    /// any organisation (the chain's `AccessGranted` events and each grant's state),
    /// soonest ending first.
    pub async fn shared_with_me(&self, session: &ProviderSession) -> Result<Vec<SharedView>> {
        let now = self.registry.info().await?.head_timestamp.max(unix_now());
        let mut out = Vec::new();
        for (patient, record_id) in self.registry.grants_to(session.address()).await? {
            let g = self
                .registry
                .grant(patient, session.address(), record_id)
                .await?;
            if g.revoked_at != 0 || g.expires_at <= now {
                continue;
            }
            let Some(patient_id) = self.registry.patient_id(patient).await? else {
                continue;
            };
            let w = self
                .registry
                .write_grant(patient, session.address(), record_id)
                .await?;
            out.push(SharedView {
                patient_id,
                record_id,
                expires_at: g.expires_at,
                write_until: w.live(now).then_some(w.expires_at),
            });
        }
        out.sort_by_key(|s| (s.expires_at, s.patient_id, s.record_id));
        Ok(out)
    }

    /// A grant's provider address, after checking the grant's input: a provider, one of
    /// the patient's own records (if one), an expiry in the future and in range.
    pub(super) async fn grant_target(
        &self,
        session: &PatientSession,
        provider: &str,
        record_id: Option<u64>,
        expires_at: u64,
    ) -> Result<Address> {
        let provider = self.provider_address(provider)?;
        if let Some(id) = record_id {
            self.check_owner(session.address(), id).await?;
        }
        super::write::check_expiry(expires_at)?;
        Ok(provider)
    }

    pub(super) async fn check_owner(&self, patient: Address, record_id: u64) -> Result<()> {
        // An unknown record is "not yours" too; a chain that does not answer is its own error.
        let owner = match self.registry.record_owner(record_id).await {
            Ok(owner) => Some(owner),
            Err(e) if e.contract_error().is_some() => None,
            Err(e) => return Err(e.into()),
        };
        match owner {
            Some(o) if o == patient => Ok(()),
            _ => Err(Error::InvalidInput {
                field: "record_id",
                message: "not one of your records".into(),
            }),
        }
    }

    /// The session patient's grants, current state, and every break-glass window open now
    /// (who, which record, until when, why): a scope with only a window is listed too.
    pub async fn grants(&self, session: &PatientSession) -> Result<Vec<GrantView>> {
        let names = self.username_of();
        let now = self.registry.info().await?.head_timestamp.max(unix_now());
        let mut scopes = self.registry.grants_of(session.address()).await?;
        for scope in self.registry.write_grants_of(session.address()).await? {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        // The last break-glass of each (provider, record) is the one whose window is open.
        let mut opened: Vec<ehr_chain::EmergencyEntry> = Vec::new();
        for e in self.registry.emergency_log(session.address()).await? {
            let scope = (e.provider, Some(e.record_id));
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
            opened.retain(|o| (o.provider, o.record_id) != (e.provider, e.record_id));
            opened.push(e);
        }
        let mut out = Vec::new();
        for (provider, record_id) in scopes {
            let g = self
                .registry
                .grant(session.address(), provider, record_id)
                .await?;
            let emergency = opened
                .iter()
                .find(|e| e.provider == provider && Some(e.record_id) == record_id)
                .filter(|_| g.emergency_until > now);
            let emergency = emergency.map(|e| EmergencyWindow {
                until: g.emergency_until,
                reason: self.reasons.get(e.reason_digest),
                tx_hash: e.tx_hash,
            });
            let w = self
                .registry
                .write_grant(session.address(), provider, record_id)
                .await?;
            let write = (w.expires_at != 0).then(|| WriteView {
                expires_at: w.expires_at,
                revoked_at: (w.revoked_at != 0).then_some(w.revoked_at),
                active: w.live(now),
            });
            if g.expires_at == 0 && emergency.is_none() && write.is_none() {
                continue; // a window that ended, and never a grant
            }
            out.push(GrantView {
                provider: names.get(&provider).cloned(),
                provider_address: provider,
                record_id,
                expires_at: g.expires_at,
                revoked_at: (g.revoked_at != 0).then_some(g.revoked_at),
                active: g.revoked_at == 0 && g.expires_at > now,
                emergency,
                write,
            });
        }
        Ok(out)
    }

    /// Break-glass: a provider opens every record of `patient_id` for the contract's
    /// emergency window, giving a reason the patient will see. Reads them at once.
    pub async fn emergency_access(
        &self,
        session: &ProviderSession,
        patient_id: u64,
        reason: &str,
    ) -> Result<Vec<ReadRecord>> {
        let signer = session.signer();
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(Error::InvalidInput {
                field: "reason",
                message: "required, at most 1,000 characters".into(),
            });
        }
        if reason
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(Error::InvalidInput {
                field: "reason",
                message: "contains control characters".into(),
            });
        }
        let owner = self
            .registry
            .patient_address(patient_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("patient {patient_id}")))?;
        let ids = self.registry.records_of(owner).await?;
        if ids.is_empty() {
            return Err(Error::NotFound(format!("records of patient {patient_id}")));
        }
        // A patient's records are erased all at once, with the account.
        if self.registry.is_erased(ids[ids.len() - 1]).await? {
            return Err(Error::Erased(format!(
                "every record of patient {patient_id}"
            )));
        }
        // The reason is kept here (salted digest on chain), before anything is opened.
        let digest = self.reasons.add(session.address(), owner, reason)?;
        let mut out = Vec::new();
        for id in ids {
            let versions = self.registry.record_versions(id).await?;
            let Some(v) = versions.last().cloned() else {
                continue;
            };
            let nonce = read_nonce(v.version);
            let receipt = self
                .registry
                .emergency_access(signer, id, digest, nonce)
                .await
                .map_err(user_error)?;
            out.push(
                self.open_version(signer, id, &v, nonce, receipt.tx_hash, true)
                    .await?,
            );
        }
        Ok(out)
    }
}
