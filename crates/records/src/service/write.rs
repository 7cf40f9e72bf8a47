//! Writing to a patient's records: the patient adds resources to its own record, and a
//! provider the patient granted write access adds results, notes and prescriptions — as a
//! new version of one of the patient's records, or a new record the patient owns, never
//! the provider. Each version a provider writes holds a `Provenance` naming it, and the
//! chain names the author of every version.

use alloy::primitives::{Address, B256};
use ehr_chain::{AccessStatus, RegistryExt, WriteAccess};
use ehr_fhir as fhir;
use ehr_primitives::unix_now;

use super::*;
use crate::session::*;
use crate::views::*;
use crate::{Error, Result};

/// The identifier system naming a provider (its address) in a `Provenance`.
pub const PROVIDER_SYSTEM: &str = "urn:secure-ehr:provider";

impl Service {
    /// Lets `provider` write until `expires_at`: add versions to one record (`Some`) or to
    /// all the patient's records and add new ones the patient owns (`None`). Reading is
    /// granted apart ([`grant`](Self::grant)).
    pub async fn grant_write(
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
            .grant_write(signer, provider, record_id, expires_at)
            .await
            .map_err(user_error)?;
        Ok(receipt.tx_hash)
    }

    /// Ends `provider`'s write grant on one record (`Some`) or the all-records one; what it
    /// may read stays as it is.
    pub async fn revoke_write(
        &self,
        session: &PatientSession,
        provider: &str,
        record_id: Option<u64>,
    ) -> Result<B256> {
        let provider = self.provider_address(provider)?;
        let receipt = self
            .registry
            .revoke_write(session.signer(), provider, record_id)
            .await
            .map_err(|e| match e.contract_error() {
                Some(ehr_chain::contract::EhrRegistryErrors::NoWriteGrant(_)) => {
                    Error::NotFound("write grant".into())
                }
                _ => user_error(e),
            })?;
        Ok(receipt.tx_hash)
    }

    /// A provider adds the resources of a FHIR Bundle to patient `patient_id`'s records:
    /// to record `record_id` as its next version (its current version is read first,
    /// through the audited path, so that needs read access too), or as a new record the
    /// patient owns (`None`; the bundle then holds the Patient, as any record). References
    /// may use the FHIR API's ids (`Patient/{patient_id}`, `{Type}/{record}-{entry}`). A
    /// `Provenance` names the provider as the author. Without a live write grant nothing is
    /// read or stored.
    pub async fn add_resources(
        &self,
        session: &ProviderSession,
        patient_id: u64,
        record_id: Option<u64>,
        bundle_json: &[u8],
    ) -> Result<Stored> {
        let signer = session.signer();
        let denied = |reason| Error::WriteDenied {
            patient_id,
            record_id,
            reason,
        };
        let owner = self
            .registry
            .patient_address(patient_id)
            .await?
            .ok_or_else(|| denied(AccessStatus::NoGrant))?;
        let (status, _) = self
            .registry
            .write_status(signer.address(), owner, record_id)
            .await?;
        if status == AccessStatus::Erased {
            return Err(Error::Erased(format!(
                "every record of patient {patient_id}"
            )));
        }
        if status != AccessStatus::Allowed {
            // An unknown record, or one of another patient, reads as no grant here.
            let reason = match status {
                AccessStatus::UnknownRecord => AccessStatus::NoGrant,
                s => s,
            };
            return Err(denied(reason));
        }
        let display = self.author_name(session).await;
        let author = fhir::Author {
            system: PROVIDER_SYSTEM,
            value: &signer.address().to_string(),
            display: display.as_deref(),
            at: unix_now(),
        };
        match record_id {
            None => {
                let bundle = compose(None, patient_id, bundle_json, Some(author))?;
                self.store_new_for(signer, owner, bundle.to_json_vec())
                    .await
            }
            Some(id) => {
                let _guard = self.lock_record(id).await;
                let current = self.read_record(session, id, None).await?;
                let base = fhir::Base {
                    bundle: &current.bundle,
                    record_id: id,
                };
                let bundle = compose(Some(base), patient_id, bundle_json, Some(author))?;
                let stored = self
                    .store_version_locked(signer, id, bundle.to_json_vec())
                    .await?;
                Ok(Stored {
                    added_from: entries(&current.bundle),
                    ..stored
                })
            }
        }
    }

    /// The patient adds the resources of a FHIR Bundle to one of its records: the next
    /// version holds the current one's resources and these.
    pub async fn add_to_own_record(
        &self,
        session: &PatientSession,
        record_id: u64,
        bundle_json: &[u8],
    ) -> Result<Stored> {
        self.check_owner(session.address(), record_id).await?;
        let _guard = self.lock_record(record_id).await;
        let current = self.read_record(session, record_id, None).await?;
        let base = fhir::Base {
            bundle: &current.bundle,
            record_id,
        };
        let bundle = compose(Some(base), current.patient_id, bundle_json, None)?;
        let stored = self
            .store_version_locked(session.signer(), record_id, bundle.to_json_vec())
            .await?;
        Ok(Stored {
            added_from: entries(&current.bundle),
            ..stored
        })
    }

    /// Where the session provider may write for patient `patient_id` now: the records it
    /// may add versions to, and whether it may add new records. Empty for an unknown patient.
    pub async fn writable(
        &self,
        session: &ProviderSession,
        patient_id: u64,
    ) -> Result<(Vec<u64>, bool)> {
        let Some(owner) = self.registry.patient_address(patient_id).await? else {
            return Ok((Vec::new(), false));
        };
        let me = session.address();
        let allowed = |r: Option<u64>| async move {
            self.registry
                .write_status(me, owner, r)
                .await
                .map(|(s, _)| s == AccessStatus::Allowed)
        };
        let new_record = allowed(None).await?;
        let mut records = Vec::new();
        for id in self.registry.records_of(owner).await? {
            if new_record || allowed(Some(id)).await? {
                records.push(id);
            }
        }
        Ok((records, new_record))
    }

    /// The patient ID of a record's owner; [`Error::NotFound`] for no such record.
    pub async fn record_patient(&self, record_id: u64) -> Result<u64> {
        let owner = self
            .registry
            .record(record_id)
            .await
            .map_err(user_error)?
            .owner;
        self.registry
            .patient_id(owner)
            .await?
            .ok_or_else(|| Error::NotFound(format!("record {record_id}")))
    }

    /// How a provider's `Provenance` names it: its directory display name, else its login.
    async fn author_name(&self, session: &ProviderSession) -> Option<String> {
        let own = self
            .directory(false)
            .await
            .ok()
            .and_then(|d| d.into_iter().find(|e| e.address == session.address()))
            .and_then(|e| e.display_name);
        own.or_else(|| Some(session.session().username.clone()))
    }

    /// Who wrote a version, for its owner to see: `None` for the owner itself, else the
    /// provider's name here or in the directory.
    pub(super) fn author_of(
        &self,
        owner: Address,
        author: Address,
        names: &std::collections::HashMap<Address, String>,
        directory: &std::collections::HashMap<Address, DirectoryEntry>,
    ) -> Option<String> {
        if author == owner {
            return None;
        }
        let d = directory.get(&author);
        d.and_then(|d| d.display_name.clone())
            .or_else(|| names.get(&author).cloned())
            .or_else(|| d.and_then(|d| d.username.clone()))
            .or_else(|| Some(author.to_string()))
    }
}

fn entries(bundle: &serde_json::Value) -> usize {
    bundle["entry"].as_array().map_or(0, Vec::len)
}

pub(super) fn compose(
    base: Option<fhir::Base<'_>>,
    patient_id: u64,
    bundle_json: &[u8],
    author: Option<fhir::Author<'_>>,
) -> Result<fhir::Bundle> {
    let mut mint = || {
        let mut b = [0u8; 16];
        ehr_crypto::fill_random(&mut b);
        uuid_v4(b)
    };
    Ok(fhir::add_to_record(
        base,
        patient_id,
        bundle_json,
        author,
        &mut mint,
        fhir::Date::today_utc(),
    )?)
}

/// A random (version 4) UUID from 16 random bytes.
fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = alloy::hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An expiry in the future and within the contract's range.
pub(super) fn check_expiry(expires_at: u64) -> Result<()> {
    if expires_at <= unix_now() {
        return Err(Error::InvalidInput {
            field: "expires_at",
            message: "must be in the future".into(),
        });
    }
    if expires_at > MAX_TIME {
        return Err(Error::InvalidInput {
            field: "expires_at",
            message: format!("must be at most {MAX_TIME} (unix seconds)"),
        });
    }
    Ok(())
}
