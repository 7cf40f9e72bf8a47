//! Sign-up, sign-in and the provider registry: accounts here, registrations on chain.

use std::collections::HashMap;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use ehr_accounts::{AccountInfo, Role, Token};
use ehr_chain::RegistryExt;
use ehr_chain::contract::EhrRegistryErrors as CE;
use zeroize::Zeroizing;

use super::*;
use crate::session::*;
use crate::views::*;
use crate::{Error, Result};

impl Service {
    /// Creates the first admin (works once).
    pub fn create_admin(&self, username: &str, password: &str) -> Result<AccountInfo> {
        Ok(self.accounts.create_admin(username, password)?)
    }

    /// Self-service patient sign-up: the account, its key, and its on-chain patient id.
    pub async fn register_patient(&self, username: &str, password: &str) -> Result<PatientAccount> {
        let (username, password) = (username.to_owned(), Zeroizing::new(password.to_owned()));
        let (info, signer) = self
            .kdf(move |a| a.create(&username, &password, Role::Patient))
            .await?;
        let patient_id = self.ensure_patient(&signer).await?;
        Ok(PatientAccount {
            username: info.username,
            address: info.address,
            patient_id,
        })
    }

    /// Registers a provider (admin only), on chain too.
    pub async fn add_provider(
        &self,
        admin: &AdminSession,
        username: &str,
        password: &str,
    ) -> Result<AccountInfo> {
        let (admin, username) = (admin.session().clone(), username.to_owned());
        let password = Zeroizing::new(password.to_owned());
        let info = self
            .kdf(move |a| a.add_provider(&admin, &username, &password))
            .await?;
        self.ensure_provider(info.address).await?;
        Ok(info)
    }

    /// Logs in. The user's key is unlocked for the session; a patient or provider whose
    /// on-chain registration was interrupted (a crash after the account was written) is
    /// registered now.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<(Token, SignedIn)> {
        let (username, client) = (username.to_owned(), client.to_owned());
        let password = Zeroizing::new(password.to_owned());
        let (token, session) = self
            .kdf(move |a| a.login(&username, &password, &client))
            .await?;
        let signed_in = SignedIn::new(session)?;
        match &signed_in {
            SignedIn::Patient(p) => {
                self.ensure_patient(p.signer()).await?;
            }
            SignedIn::Provider(p) => self.ensure_provider(p.address()).await?,
            SignedIn::Admin(_) => {}
        }
        Ok((token, signed_in))
    }

    /// The session a token belongs to, typed by its role.
    pub fn authenticate(&self, token: &str) -> Result<SignedIn> {
        SignedIn::new(self.accounts.authenticate(token)?)
    }

    /// Ends a session.
    pub fn logout(&self, token: &str) {
        self.accounts.logout(token)
    }

    pub(super) async fn ensure_patient(&self, signer: &PrivateKeySigner) -> Result<u64> {
        if let Some(id) = self.registry.patient_id(signer.address()).await? {
            return Ok(id);
        }
        self.registry
            .fund_account(&self.admin, signer.address())
            .await?;
        match self.registry.register_patient(signer).await {
            Ok((id, _)) => Ok(id),
            Err(e) if matches!(e.contract_error(), Some(CE::AlreadyRegistered(_))) => self
                .registry
                .patient_id(signer.address())
                .await?
                .ok_or(Error::Chain(e)),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn ensure_provider(&self, address: Address) -> Result<()> {
        if !self.registry.is_provider(address).await? {
            self.registry.fund_account(&self.admin, address).await?;
            match self.registry.register_provider(&self.admin, address).await {
                Ok(_) => {}
                Err(e) if matches!(e.contract_error(), Some(CE::AlreadyRegistered(_))) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Every provider with an account here.
    pub fn providers(&self) -> Vec<AccountInfo> {
        self.accounts
            .list()
            .into_iter()
            .filter(|a| a.role == Role::Provider)
            .collect()
    }

    /// The on-chain patient id of `address`, if it is a registered patient.
    pub async fn patient_id(&self, address: Address) -> Result<Option<u64>> {
        Ok(self.registry.patient_id(address).await?)
    }

    pub(super) fn username_of(&self) -> HashMap<Address, String> {
        self.accounts
            .list()
            .into_iter()
            .map(|a| (a.address, a.username))
            .collect()
    }

    pub(super) fn provider_address(&self, username: &str) -> Result<Address> {
        let not_provider = || Error::InvalidInput {
            field: "provider",
            message: "no such provider".into(),
        };
        let user = ehr_accounts::normalize_username(username).map_err(|_| not_provider())?;
        match self.accounts.get(&user) {
            Some(a) if a.role == Role::Provider => Ok(a.address),
            _ => Err(not_provider()),
        }
    }
}
