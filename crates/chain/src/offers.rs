//! [`Offers`]: grant offers — a patient signs, off chain, "whoever redeems this first may
//! read this record (or all of them) until then", and a provider's server redeems it on
//! chain with `grantAccessBySig` while the patient is offline. An offer is good until its
//! own deadline and once (the patient's nonce is used up); for every [`Registry`].

use alloy::primitives::{Address, B256, Signature, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};
use async_trait::async_trait;

use crate::contract::EhrRegistry as C;
use crate::error::{Error, Result};
use crate::registry::{Registry, TxReceipt, send, view};

/// The EIP-712 domain name.
pub const DOMAIN_NAME: &str = "SecureEHR";

/// The EIP-712 domain of every SecureEHR signature on one deployment (the contract's
/// `domainSeparator()`; the custodians' share requests are signed in it too).
pub fn domain(chain_id: u64, contract: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: "1",
        chain_id: chain_id,
        verifying_contract: contract,
    }
}

mod typed {
    #![allow(missing_docs)]
    alloy::sol! {
        /// What a patient signs to offer a grant to whoever redeems it first (EIP-712).
        struct GrantOffer {
            address patient;
            uint256 recordId;
            uint64 expiresAt;
            uint256 nonce;
            uint64 deadline;
        }
    }
}

/// A grant offer: `patient` lets whoever redeems it read `record_id` (`None`: all the
/// patient's records) until `expires_at`; it can be redeemed until `deadline`, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantOffer {
    /// Who offers (and signs).
    pub patient: Address,
    /// One record, or `None` for all of them.
    pub record_id: Option<u64>,
    /// When the grant it makes ends (unix seconds).
    pub expires_at: u64,
    /// The patient's single-use number (128 random bits).
    pub nonce: u128,
    /// Until when the offer can be redeemed (unix seconds).
    pub deadline: u64,
}

/// A grant offer with the patient's signature: what a QR code carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedOffer {
    /// The offer.
    pub offer: GrantOffer,
    /// The patient's signature over its EIP-712 hash (r ‖ s ‖ v, 65 bytes).
    pub signature: [u8; 65],
}

/// The encoding's version byte and length: version, patient, record, expiry, nonce,
/// deadline, signature.
const ENCODING_V1: u8 = 1;
const ENCODED_LEN: usize = 1 + 20 + 8 + 8 + 16 + 8 + 65;

impl GrantOffer {
    /// Its EIP-712 signing hash in `domain`.
    pub fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        typed::GrantOffer {
            patient: self.patient,
            recordId: U256::from(self.record_id.unwrap_or(0)),
            expiresAt: self.expires_at,
            nonce: U256::from(self.nonce),
            deadline: self.deadline,
        }
        .eip712_signing_hash(domain)
    }

    /// Signed by `patient` (who must be `self.patient`).
    pub fn sign(self, patient: &PrivateKeySigner, domain: &Eip712Domain) -> Result<SignedOffer> {
        if patient.address() != self.patient {
            return Err(Error::Rejected(
                "an offer is signed by the patient it names".into(),
            ));
        }
        let sig = crate::signing::sign_hash(patient, &self.signing_hash(domain))?;
        Ok(SignedOffer {
            offer: self,
            signature: sig.as_bytes(),
        })
    }
}

impl SignedOffer {
    /// The address that signed it in `domain`: the patient for a genuine offer, anyone else
    /// for a forged or altered one (`None` for a signature that is no signature at all).
    pub fn signer(&self, domain: &Eip712Domain) -> Option<Address> {
        let sig = Signature::from_raw_array(&self.signature).ok()?;
        sig.recover_address_from_prehash(&self.offer.signing_hash(domain))
            .ok()
    }

    /// Whether the named patient signed it in `domain`.
    pub fn is_genuine(&self, domain: &Eip712Domain) -> bool {
        self.signer(domain) == Some(self.offer.patient)
    }

    /// Its compact encoding (126 bytes), for a link.
    pub fn to_bytes(&self) -> Vec<u8> {
        let o = &self.offer;
        let mut out = Vec::with_capacity(ENCODED_LEN);
        out.push(ENCODING_V1);
        out.extend_from_slice(o.patient.as_slice());
        out.extend_from_slice(&o.record_id.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&o.expires_at.to_be_bytes());
        out.extend_from_slice(&o.nonce.to_be_bytes());
        out.extend_from_slice(&o.deadline.to_be_bytes());
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes [`to_bytes`](Self::to_bytes); `None` for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ENCODED_LEN || bytes[0] != ENCODING_V1 {
            return None;
        }
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        let record = u64_at(21);
        Some(SignedOffer {
            offer: GrantOffer {
                patient: Address::from_slice(&bytes[1..21]),
                record_id: (record != 0).then_some(record),
                expires_at: u64_at(29),
                nonce: u128::from_be_bytes(bytes[37..53].try_into().unwrap()),
                deadline: u64_at(53),
            },
            signature: bytes[61..].try_into().unwrap(),
        })
    }
}

/// Redeeming grant offers.
#[async_trait]
pub trait Offers: Registry {
    /// `provider` redeems `offer`: it may read what the offer names until its expiry. The
    /// contract refuses an offer past its deadline (`OfferExpired`), used (`OfferUsed`) or
    /// not signed by its patient (`BadOfferSignature`), and a caller who is no provider.
    async fn redeem_offer(
        &self,
        provider: &PrivateKeySigner,
        offer: &SignedOffer,
    ) -> Result<TxReceipt> {
        let o = &offer.offer;
        let call = C::grantAccessBySigCall {
            patient: o.patient,
            recordId: U256::from(o.record_id.unwrap_or(0)),
            expiresAt: o.expires_at,
            nonce: U256::from(o.nonce),
            deadline: o.deadline,
            signature: offer.signature.to_vec().into(),
        };
        send(self, provider, call).await
    }

    /// Whether `patient`'s offer `nonce` was redeemed.
    async fn offer_used(&self, patient: Address, nonce: u128) -> Result<bool> {
        view(
            self,
            C::offerUsedCall {
                _0: patient,
                _1: U256::from(nonce),
            },
        )
        .await
    }

    /// The contract's EIP-712 domain separator (to check [`domain`] against the chain).
    async fn domain_separator(&self) -> Result<B256> {
        view(self, C::domainSeparatorCall {}).await
    }
}

impl<R: Registry + ?Sized> Offers for R {}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(patient: Address) -> GrantOffer {
        GrantOffer {
            patient,
            record_id: Some(7),
            expires_at: 1_900_000_000,
            nonce: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            deadline: 1_800_000_600,
        }
    }

    #[test]
    fn an_offer_round_trips_and_only_its_patient_signed_it() {
        let patient = PrivateKeySigner::random();
        let d = domain(1337, Address::repeat_byte(9));
        let signed = offer(patient.address()).sign(&patient, &d).unwrap();
        let bytes = signed.to_bytes();
        assert_eq!(bytes.len(), ENCODED_LEN);
        let back = SignedOffer::from_bytes(&bytes).unwrap();
        assert_eq!(back, signed);
        assert!(back.is_genuine(&d));
        // Another deployment, or any field changed: not the patient's signature.
        assert!(!back.is_genuine(&domain(1338, Address::repeat_byte(9))));
        for at in [1, 21, 29, 37, 53, 61] {
            let mut b = bytes.clone();
            b[at + 3] ^= 1;
            let altered = SignedOffer::from_bytes(&b).unwrap();
            assert!(!altered.is_genuine(&d), "byte {} altered", at + 3);
        }
        assert!(SignedOffer::from_bytes(&bytes[1..]).is_none());
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(SignedOffer::from_bytes(&v2).is_none());
        // All records: encoded as 0.
        let all = GrantOffer {
            record_id: None,
            ..offer(patient.address())
        };
        let all = all.sign(&patient, &d).unwrap();
        assert_eq!(
            SignedOffer::from_bytes(&all.to_bytes())
                .unwrap()
                .offer
                .record_id,
            None
        );
        // Nobody signs for another patient.
        let other = PrivateKeySigner::random();
        assert!(offer(patient.address()).sign(&other, &d).is_err());
    }
}
