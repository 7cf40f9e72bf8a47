//! Gas used per contract operation, measured by running each once on a fresh deployment.

use std::collections::BTreeMap;

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;

use crate::contract::codec;
use crate::error::Result;
use crate::registry::{Registry, RegistryExt};
use crate::writes::WriteAccess;

/// The most gas `addRecord` may use (a patient's first record, the dearest case).
pub const ADD_RECORD_MAX: u64 = 70_000;
/// The most gas `grantAccess` may use.
pub const GRANT_ACCESS_MAX: u64 = 50_000;
/// The most gas `logAccess` may use (the dearest read: a record-scoped grant).
pub const LOG_ACCESS_MAX: u64 = 35_000;
/// The most gas `registerPatient` may use (measured 72,733).
pub const REGISTER_PATIENT_MAX: u64 = 80_000;

/// The gas limit a JSON-RPC send sets for an estimate of `gas` (estimate + 20 % + 10,000).
pub const fn limit_for(gas: u64) -> u64 {
    gas + gas / 5 + 10_000
}

/// Gas one funding top-up pays for: an account's next operations — its registration, and
/// ten of the dearest user operations (record, grant, read), at the limits a send sets.
/// Priced at the current max fee per gas this is the default top-up (see
/// [`FundingPolicy`](crate::FundingPolicy)).
pub const TOP_UP_GAS: u64 = limit_for(REGISTER_PATIENT_MAX) + 10 * limit_for(ADD_RECORD_MAX);

/// The measured operations, by contract function name.
pub const OPERATIONS: [&str; 20] = [
    "addOrganisation",
    "registerPatient",
    "registerProvider",
    "updateProfile",
    "addRecord",
    "updateRecord",
    "grantAccess",
    "grantWrite",
    "updateRecordAsWriter",
    "addRecordFor",
    "revokeWrite",
    "revokeAccess",
    "logAccess",
    "emergencyAccess",
    "revokeAll",
    "grantAccessBySig",
    "deregisterProvider",
    "setRegistrar",
    "removeOrganisation",
    "eraseAccount",
];

/// Runs every operation once — `admin` adds an organisation whose registrar is
/// `registrar`, which registers `provider` (which then changes its directory entry);
/// `patient` registers, stores a record (its first:
/// the dearest case), updates it, grants, the provider reads; the patient lets the provider
/// write, the provider adds a version and a record, the patient ends the writing; the
/// patient revokes, the
/// provider breaks the glass, the patient ends everything the provider holds (the window on
/// the one record), and redeems the patient's grant offer for the second record; the
/// registrar deregisters the provider, the admin gives the
/// organisation another registrar and removes it; the patient erases its account (two
/// records) — and returns the gas each transaction
/// used (whole transaction, 21,000 base included), keyed by function name.
pub async fn measure<R: Registry + ?Sized>(
    registry: &R,
    admin: &PrivateKeySigner,
    registrar: &PrivateKeySigner,
    patient: &PrivateKeySigner,
    provider: &PrivateKeySigner,
    now: u64,
) -> Result<BTreeMap<&'static str, u64>> {
    let mut gas = BTreeMap::new();
    let (org, r) = registry
        .add_organisation(admin, registrar.address(), "Measured Hospital")
        .await?;
    gas.insert("addOrganisation", r.gas_used);
    let (_, r) = registry.register_patient(patient).await?;
    gas.insert("registerPatient", r.gas_used);
    let r = registry
        .register_provider(registrar, provider.address(), B256::repeat_byte(0x9f))
        .await?;
    gas.insert("registerProvider", r.gas_used);
    let r = registry
        .update_profile(provider, B256::repeat_byte(0x9e))
        .await?;
    gas.insert("updateProfile", r.gas_used);
    let (id, r) = registry
        .add_record(patient, B256::repeat_byte(0xa1), codec::DAG_CBOR)
        .await?;
    gas.insert("addRecord", r.gas_used);
    let (_, r) = registry
        .update_record(patient, id, B256::repeat_byte(0xa2), codec::DAG_CBOR)
        .await?;
    gas.insert("updateRecord", r.gas_used);
    let r = registry
        .grant_access(patient, provider.address(), None, now + 86_400)
        .await?;
    gas.insert("grantAccess", r.gas_used);
    let r = registry
        .log_access(provider, id, U256::from(u64::MAX))
        .await?;
    gas.insert("logAccess", r.gas_used);
    let r = registry
        .grant_write(patient, provider.address(), None, now + 86_400)
        .await?;
    gas.insert("grantWrite", r.gas_used);
    let (_, r) = registry
        .update_record(provider, id, B256::repeat_byte(0xa3), codec::DAG_CBOR)
        .await?;
    gas.insert("updateRecordAsWriter", r.gas_used);
    let (id2, r) = registry
        .add_record_for_noted(
            provider,
            patient.address(),
            B256::repeat_byte(0xa4),
            codec::DAG_CBOR,
            &|_| Ok(()),
        )
        .await?;
    gas.insert("addRecordFor", r.gas_used);
    let r = registry
        .revoke_write(patient, provider.address(), None)
        .await?;
    gas.insert("revokeWrite", r.gas_used);
    let r = registry
        .revoke_access(patient, provider.address(), None)
        .await?;
    gas.insert("revokeAccess", r.gas_used);
    let r = registry
        .emergency_access(
            provider,
            id,
            B256::repeat_byte(0xee),
            U256::from(u64::MAX - 1),
        )
        .await?;
    gas.insert("emergencyAccess", r.gas_used);
    let r = registry.revoke_all(patient, provider.address()).await?;
    gas.insert("revokeAll", r.gas_used);
    // A grant offer the patient signed, redeemed by the provider (a fresh grant slot).
    let info = registry.info().await?;
    let offer = crate::GrantOffer {
        patient: patient.address(),
        record_id: Some(id2),
        expires_at: now + 86_400,
        nonce: 1,
        deadline: now + 600,
    }
    .sign(
        patient,
        &crate::offers::domain(info.chain_id, info.contract),
    )?;
    let r = crate::Offers::redeem_offer(registry, provider, &offer).await?;
    gas.insert("grantAccessBySig", r.gas_used);
    let r = registry
        .deregister_provider(registrar, provider.address())
        .await?;
    gas.insert("deregisterProvider", r.gas_used);
    let r = registry
        .set_registrar(admin, org, PrivateKeySigner::random().address())
        .await?;
    gas.insert("setRegistrar", r.gas_used);
    let r = registry.remove_organisation(admin, org).await?;
    gas.insert("removeOrganisation", r.gas_used);
    let (_, r) = crate::Erasure::erase_account(registry, patient).await?;
    gas.insert("eraseAccount", r.gas_used);
    Ok(gas)
}
