//! The network-wide provider directory: every provider registered on chain, by any
//! organisation, with its directory entry.
//!
//! A provider's entry is a small JSON block ([`ProviderProfile`]: professional data only —
//! username, display name, specialty, its address) stored as a `raw` block on every node
//! that takes it; its sha2-256 digest goes on chain with the registration
//! (`ProviderRegistered.profile`). Any server lists the directory from the chain alone: the
//! registrations and organisations it reads there, each entry fetched from the nodes by
//! that digest and checked (its bytes hash to it, its address is the registered one). A
//! server never takes another server's word for an entry; one it cannot fetch or check is
//! listed with the chain's facts only.

use std::collections::HashMap;

use alloy::primitives::{Address, B256};
use ehr_chain::RegistryExt;
use ehr_chain::contract::EhrRegistryErrors as CE;
use ehr_store::{Cid, cid_from_sha256, cids::RAW};
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::*;
use crate::session::{ProviderSession, Reader};
use crate::{Error, Result};

/// The format of [`ProviderProfile`] blocks.
pub const PROFILE_FORMAT: u32 = 1;
/// The most bytes of a display name or a specialty.
pub const MAX_PROFILE_FIELD: usize = 100;
/// Profile blocks larger than this are not read.
const MAX_PROFILE_BLOCK: usize = 4096;

/// A provider's directory entry as stored on the nodes (JSON in a `raw` block).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderProfile {
    /// [`PROFILE_FORMAT`].
    pub format: u32,
    /// The provider's address (the one registered with this entry's digest).
    pub address: Address,
    /// Its login name at its organisation's server.
    pub username: String,
    /// How patients see it ("Dr Carol Smith").
    pub display_name: String,
    /// Its specialty ("Cardiology"; may be empty).
    pub specialty: String,
}

impl ProviderProfile {
    /// The block's bytes and their CID.
    pub fn encode(&self) -> (Vec<u8>, Cid) {
        let bytes = serde_json::to_vec(self).expect("a profile serializes");
        let cid = ehr_store::raw_cid(&bytes);
        (bytes, cid)
    }
}

/// What the admin gives for a new provider's directory entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileInput {
    /// How patients see it; empty: the username.
    pub display_name: String,
    /// Its specialty; may be empty.
    pub specialty: String,
}

impl ProfileInput {
    /// The checked entry of provider `username` at `address`.
    pub(super) fn profile(&self, username: &str, address: Address) -> Result<ProviderProfile> {
        let field = |name: &'static str, value: &str| -> Result<String> {
            let v = value.trim();
            if v.len() > MAX_PROFILE_FIELD || v.chars().any(char::is_control) {
                return Err(Error::InvalidInput {
                    field: name,
                    message: format!("at most {MAX_PROFILE_FIELD} bytes, no control characters"),
                });
            }
            Ok(v.to_owned())
        };
        let display_name = field("display_name", &self.display_name)?;
        Ok(ProviderProfile {
            format: PROFILE_FORMAT,
            address,
            username: username.to_owned(),
            display_name: if display_name.is_empty() {
                username.to_owned()
            } else {
                display_name
            },
            specialty: field("specialty", &self.specialty)?,
        })
    }
}

/// One provider of the network: `GET /api/providers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DirectoryEntry {
    /// Its login name at its organisation (from its entry; `None` if it could not be
    /// fetched or checked).
    pub username: Option<String>,
    /// Its address (from the chain).
    pub address: Address,
    /// How patients see it (from its entry).
    pub display_name: Option<String>,
    /// Its organisation's name (from the chain; "consortium" for the admin's own).
    pub organisation: String,
    /// Its organisation's id (0: the consortium admin's own).
    pub organisation_id: u32,
    /// Its specialty (from its entry).
    pub specialty: Option<String>,
    /// It has an account on this server.
    pub local: bool,
    /// Disabled by this server's admin (listed to admins only; not on chain).
    pub disabled: bool,
}

/// The name of organisation 0: providers the consortium admin registered itself.
pub const CONSORTIUM: &str = "consortium";

/// Entries fetched and checked, by digest (content-addressed, so never stale).
#[derive(Default)]
pub(super) struct ProfileCache(Mutex<HashMap<B256, ProviderProfile>>);

impl Service {
    /// Stores `profile` on the nodes: on every node that takes it, and on at least
    /// `n − k + 1` (so any `k` nodes have it); its digest.
    pub(super) async fn store_profile(&self, profile: &ProviderProfile) -> Result<B256> {
        let (bytes, cid) = profile.encode();
        let results = join_all(
            self.nodes
                .iter()
                .map(|node| timed(node.put_block(&cid, &bytes))),
        )
        .await;
        let stored = results.iter().filter(|r| r.is_ok()).count();
        let needed = self.threshold.n() - self.threshold.k() + 1;
        if stored < needed {
            return Err(Error::NodesUnavailable {
                reachable: stored,
                needed,
            });
        }
        let digest = B256::from_slice(cid.hash().digest());
        self.profiles
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest, profile.clone());
        Ok(digest)
    }

    /// Provider `address`'s entry with this digest, fetched from any node and checked.
    async fn profile(&self, address: Address, digest: B256) -> Option<ProviderProfile> {
        if digest == B256::ZERO {
            return None;
        }
        if let Some(p) = self
            .profiles
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
        {
            return (p.address == address).then(|| p.clone());
        }
        let cid = cid_from_sha256(RAW, &digest.0);
        for node in &self.nodes {
            let Ok(bytes) = timed(node.get_block(&cid)).await else {
                continue;
            };
            if bytes.len() > MAX_PROFILE_BLOCK || ehr_store::verify(&cid, &bytes, None).is_err() {
                tracing::warn!(
                    node = node.name(),
                    "a provider's directory entry failed its digest"
                );
                continue;
            }
            let Ok(p) = serde_json::from_slice::<ProviderProfile>(&bytes) else {
                tracing::warn!(provider = %address, "a provider's directory entry does not parse");
                return None;
            };
            if p.format != PROFILE_FORMAT || p.address != address {
                tracing::warn!(provider = %address, "a provider's directory entry names another address");
                return None;
            }
            self.profiles
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(digest, p.clone());
            return Some(p);
        }
        None
    }

    /// Every provider registered on chain now, by any organisation, with its entry; and,
    /// with `with_disabled`, this server's disabled providers (not on chain) after them.
    pub async fn directory(&self, with_disabled: bool) -> Result<Vec<DirectoryEntry>> {
        let orgs: HashMap<u32, String> = self
            .registry
            .organisations()
            .await?
            .into_iter()
            .map(|o| (o.id, o.name))
            .collect();
        let local = self.username_of();
        let mut out = Vec::new();
        for reg in self.registry.providers().await? {
            let profile = self.profile(reg.provider, reg.profile).await;
            out.push(DirectoryEntry {
                username: profile
                    .as_ref()
                    .map(|p| p.username.clone())
                    .or_else(|| local.get(&reg.provider).cloned()),
                address: reg.provider,
                display_name: profile.as_ref().map(|p| p.display_name.clone()),
                organisation: match reg.organisation {
                    0 => CONSORTIUM.to_owned(),
                    id => orgs.get(&id).cloned().unwrap_or_else(|| format!("#{id}")),
                },
                organisation_id: reg.organisation,
                specialty: profile.map(|p| p.specialty),
                local: local.contains_key(&reg.provider),
                disabled: false,
            });
        }
        if with_disabled {
            let own = match self
                .registry
                .registrar_organisation(self.admin.address())
                .await?
            {
                Some(id) => (
                    id,
                    orgs.get(&id).cloned().unwrap_or_else(|| format!("#{id}")),
                ),
                None => (0, CONSORTIUM.to_owned()),
            };
            for a in self.providers().into_iter().filter(|a| a.disabled) {
                if out.iter().any(|e| e.address == a.address) {
                    continue;
                }
                out.push(DirectoryEntry {
                    username: Some(a.username),
                    address: a.address,
                    display_name: None,
                    organisation: own.1.clone(),
                    organisation_id: own.0,
                    specialty: None,
                    local: true,
                    disabled: true,
                });
            }
        }
        Ok(out)
    }

    /// The signed-in provider's own directory entry, as the chain and the nodes have it
    /// now (`None`: none registered, or it cannot be fetched).
    pub async fn my_profile(&self, me: &ProviderSession) -> Result<Option<ProviderProfile>> {
        let digest = self.last_profile(me.address()).await?;
        Ok(self.profile(me.address(), digest).await)
    }

    /// The signed-in provider changes its own directory entry (display name, specialty):
    /// the new entry stored on the nodes, its digest put on chain by the provider's own
    /// `updateProfile`. Bad input is refused before anything is stored; a provider the
    /// admin disabled (off the chain) is refused by the contract.
    pub async fn update_profile(
        &self,
        me: &ProviderSession,
        input: &ProfileInput,
    ) -> Result<ProviderProfile> {
        let entry = input.profile(&me.session().username, me.address())?;
        let digest = self.store_profile(&entry).await?;
        self.registry
            .fund_account(&self.admin, me.address())
            .await
            .map_err(Error::chain)?;
        self.registry
            .update_profile(me.signer(), digest)
            .await
            .map_err(|e| match e.contract_error() {
                Some(CE::NotRegisteredProvider(_)) => {
                    Error::Forbidden("you are not registered on chain (disabled by your admin?)")
                }
                _ => e.into(),
            })?;
        Ok(entry)
    }

    /// The digest of provider `address`'s last registered entry (zero: none).
    pub(super) async fn last_profile(&self, address: Address) -> Result<B256> {
        Ok(self
            .registry
            .provider_registrations(address)
            .await?
            .last()
            .map_or(B256::ZERO, |r| r.profile))
    }
}
