//! Sharing by code (issue 20): a patient makes a grant offer — signed with the patient's
//! key, EIP-712, good for [`OFFER_TTL`] and once — which a QR code carries to a provider;
//! the provider's server checks it and redeems it on chain (`grantAccessBySig`), so the
//! patient need not be online. Nothing is kept here: the offer is the link.

use ehr_chain::offers::domain;
use ehr_chain::{GrantOffer, Offers, SignedOffer};
use ehr_primitives::unix_now;

use super::*;
use crate::session::*;
use crate::{Error, OfferRefusal, Result};

/// How long a patient's offer can be redeemed: ten minutes.
pub const OFFER_TTL: u64 = 600;

/// What a provider is offered (an offer that is genuine, unused and not past its deadline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferView {
    /// The patient offering.
    pub patient_id: u64,
    /// One record, or `None`: all the patient's records.
    pub record_id: Option<u64>,
    /// When the grant would end (unix seconds).
    pub expires_at: u64,
    /// Until when the offer can be accepted (unix seconds).
    pub deadline: u64,
}

impl Service {
    /// The session patient offers reading `record_id` (`None`: all their records) until
    /// `expires_at` to whichever provider redeems the offer first, within [`OFFER_TTL`].
    pub async fn make_offer(
        &self,
        session: &PatientSession,
        record_id: Option<u64>,
        expires_at: u64,
    ) -> Result<SignedOffer> {
        if let Some(id) = record_id {
            self.check_owner(session.address(), id).await?;
        }
        super::write::check_expiry(expires_at)?;
        let mut nonce = [0u8; 16];
        ehr_crypto::fill_random(&mut nonce);
        let offer = GrantOffer {
            patient: session.address(),
            record_id,
            expires_at,
            nonce: u128::from_be_bytes(nonce),
            deadline: unix_now() + OFFER_TTL,
        };
        let d = self.offer_domain().await?;
        Ok(offer.sign(session.signer(), &d)?)
    }

    /// What `offer` offers, once checked: the patient's signature on this deployment, its
    /// deadline, whether it was used. Refused offers are [`Error::Offer`].
    pub async fn inspect_offer(&self, offer: &SignedOffer) -> Result<OfferView> {
        let o = &offer.offer;
        let info = self.registry.info().await?;
        if !offer.is_genuine(&domain(info.chain_id, info.contract)) {
            return Err(Error::Offer(OfferRefusal::Forged));
        }
        let now = info.head_timestamp.max(unix_now());
        if self.registry.offer_used(o.patient, o.nonce).await? {
            return Err(Error::Offer(OfferRefusal::Used));
        }
        if o.deadline < now {
            return Err(Error::Offer(OfferRefusal::Expired));
        }
        let patient_id = self
            .registry
            .patient_id(o.patient)
            .await?
            .ok_or(Error::Offer(OfferRefusal::Forged))?;
        Ok(OfferView {
            patient_id,
            record_id: o.record_id,
            expires_at: o.expires_at,
            deadline: o.deadline,
        })
    }

    /// The session provider accepts `offer`: redeemed on chain with the provider's key, the
    /// provider may then read what it names. Refused (and nothing changed) when it is
    /// forged, used or late — checked here first, and again by the contract.
    pub async fn redeem_offer(
        &self,
        session: &ProviderSession,
        offer: &SignedOffer,
    ) -> Result<(OfferView, B256)> {
        let view = self.inspect_offer(offer).await?;
        let receipt = self
            .registry
            .redeem_offer(session.signer(), offer)
            .await
            .map_err(user_error)?;
        Ok((view, receipt.tx_hash))
    }

    async fn offer_domain(&self) -> Result<alloy::sol_types::Eip712Domain> {
        let info = self.registry.info().await?;
        Ok(domain(info.chain_id, info.contract))
    }
}
