//! Sign-up, sign-in and the provider registry: accounts here, registrations on chain.

use std::collections::HashMap;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use ehr_accounts::keystore::KeystoreFile;
use ehr_accounts::totp::TotpSetup;
use ehr_accounts::{AccountInfo, RecoveryCode, Role, Token};
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

    /// [`create_admin`](Self::create_admin) on the blocking pool (its key derivations take
    /// about a second), for a server that is running.
    pub async fn create_first_admin(&self, username: &str, password: &str) -> Result<AccountInfo> {
        let username = username.to_owned();
        let password = Zeroizing::new(password.to_owned());
        self.kdf(move |a| a.create_admin(&username, &password))
            .await
    }

    /// Self-service patient sign-up: the account, its key, and its on-chain patient id.
    /// Refused before any account is made when the chain's funding budget cannot pay the
    /// new account's gas ([`Error::FundingBudgetSpent`]).
    pub async fn register_patient(&self, username: &str, password: &str) -> Result<PatientAccount> {
        self.register_patient_with_key(username, password, None)
            .await
            .map(|(account, _)| account)
    }

    /// [`register_patient`](Self::register_patient) with the patient's own key, when `own`
    /// is given: a keystore v3 file from any Ethereum wallet, decrypted with `password`
    /// (see [`AccountStore::create_with_key`](ehr_accounts::AccountStore::create_with_key)).
    /// Also returns the patient's recovery code, to show once
    /// ([`recover`](Self::recover)).
    pub async fn register_patient_with_key(
        &self,
        username: &str,
        password: &str,
        own: Option<KeystoreFile>,
    ) -> Result<(PatientAccount, RecoveryCode)> {
        self.registry
            .funding_available()
            .await
            .map_err(Error::chain)?;
        let (username, password) = (username.to_owned(), Zeroizing::new(password.to_owned()));
        let (info, signer, code) = self
            .kdf(move |a| a.sign_up_patient(&username, &password, own.as_ref()))
            .await?;
        let patient_id = self.ensure_patient(&signer).await?;
        let account = PatientAccount {
            username: info.username,
            address: info.address,
            patient_id,
        };
        Ok((account, code))
    }

    /// A new recovery code for the signed-in user (any role), whose `password` is checked
    /// as a login checks it; the old code stops working.
    pub async fn new_recovery_code(
        &self,
        who: &SignedIn,
        password: &str,
        client: &str,
    ) -> Result<RecoveryCode> {
        let session = who.session().clone();
        let password = Zeroizing::new(password.to_owned());
        let client = client.to_owned();
        self.kdf(move |a| a.new_recovery_code(&session, &password, &client))
            .await
    }

    /// A forgotten password: the account's recovery code sets `new_password` and keeps
    /// the key, so the address and every record and grant stay. Every session of the
    /// account ends; the code is used up and a new one returned, to show once.
    pub async fn recover(
        &self,
        username: &str,
        code: &str,
        new_password: &str,
        client: &str,
    ) -> Result<RecoveryCode> {
        let username = username.to_owned();
        let code = Zeroizing::new(code.to_owned());
        let new = Zeroizing::new(new_password.to_owned());
        let client = client.to_owned();
        let next = self
            .kdf(move |a| a.recover(&username, &code, &new, &client))
            .await?;
        tracing::info!("password reset with a recovery code");
        Ok(next)
    }

    /// The admin resets provider `username`'s password to `new_password` (which the admin
    /// hands over; the provider should then change it). The provider's key, escrowed to
    /// the admin, is kept: same address, same grants. Its sessions end.
    pub async fn reset_provider_password(
        &self,
        admin: &AdminSession,
        username: &str,
        new_password: &str,
    ) -> Result<AccountInfo> {
        self.provider_account(username)?;
        let (admin, username) = (admin.session().clone(), username.to_owned());
        let new = Zeroizing::new(new_password.to_owned());
        let info = self
            .kdf(move |a| a.reset_provider_password(&admin, &username, &new))
            .await?;
        tracing::info!(provider = %info.username, "provider password reset by the admin");
        Ok(info)
    }

    /// The session patient's keystore v3 file (its key encrypted under its password), to
    /// import into any Ethereum wallet.
    pub fn export_keystore(&self, session: &PatientSession) -> Result<KeystoreFile> {
        Ok(self.accounts.export_keystore(session.session())?)
    }

    /// Registers a provider (admin only): its account here, its directory entry on the
    /// nodes, its registration (in this server's organisation) on chain.
    pub async fn add_provider(
        &self,
        admin: &AdminSession,
        username: &str,
        password: &str,
        profile: &ProfileInput,
    ) -> Result<AccountInfo> {
        let normalized = ehr_accounts::normalize_username(username)?;
        // Checked before the account exists: a bad display name makes nothing.
        profile.profile(&normalized, Address::ZERO)?;
        let (admin, username) = (admin.session().clone(), username.to_owned());
        let password = Zeroizing::new(password.to_owned());
        let info = self
            .kdf(move |a| a.add_provider(&admin, &username, &password))
            .await?;
        let entry = profile.profile(&info.username, info.address)?;
        let digest = self.store_profile(&entry).await?;
        self.ensure_provider(info.address, Some(digest)).await?;
        Ok(info)
    }

    /// Logs in. The user's key is unlocked for the session; a patient whose on-chain
    /// registration was interrupted (a crash after the account was written) is registered
    /// now. Providers are never registered here — only the admin does that
    /// ([`add_provider`](Self::add_provider), [`enable_provider`](Self::enable_provider)) —
    /// so a provider the admin took off the chain stays off. A disabled account is refused.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<(Token, SignedIn)> {
        self.login_with_code(username, password, None, client).await
    }

    /// [`login`](Self::login) with a second factor for an account that enrolled: a code
    /// from its authenticator app or a backup code (see
    /// [`AccountStore::login_with_code`](ehr_accounts::AccountStore::login_with_code)).
    pub async fn login_with_code(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
        client: &str,
    ) -> Result<(Token, SignedIn)> {
        let (username, client) = (username.to_owned(), client.to_owned());
        let password = Zeroizing::new(password.to_owned());
        let code = code.map(|c| Zeroizing::new(c.to_owned()));
        let (token, session) = self
            .kdf(move |a| {
                a.login_with_code(
                    &username,
                    &password,
                    code.as_deref().map(|c| c.as_str()),
                    &client,
                )
            })
            .await?;
        // Checked after the session exists: a concurrent disable, which sets the flag
        // before it ends the sessions, either is seen here or ends this session.
        if self
            .accounts
            .get(&session.username)
            .is_none_or(|a| a.disabled)
        {
            self.accounts.logout(token.expose());
            return Err(Error::Forbidden(
                "this account is disabled; ask the admin to enable it",
            ));
        }
        let signed_in = SignedIn::new(session)?;
        if let SignedIn::Patient(p) = &signed_in {
            self.ensure_patient(p.signer()).await?;
        }
        Ok((token, signed_in))
    }

    /// The admin disables a provider: logins are refused from now on, its sessions end,
    /// and it is deregistered on chain, so every grant and break-glass window it holds
    /// stops working at once. Only [`enable_provider`](Self::enable_provider) undoes it.
    /// Disabling a disabled provider finishes an interrupted disable.
    pub async fn disable_provider(
        &self,
        _admin: &AdminSession,
        username: &str,
    ) -> Result<AccountInfo> {
        let address = self.provider_account(username)?.address;
        // The flag first: a crash before the chain call leaves a provider that cannot
        // log in, and running the command again deregisters it.
        let info = self
            .accounts
            .set_disabled(username, true)?
            .ok_or_else(|| Error::NotFound(format!("provider {}", username.trim())))?;
        if self.registry.is_provider(address).await? {
            match self
                .registry
                .deregister_provider(&self.admin, address)
                .await
            {
                Ok(_) => {}
                Err(e) if matches!(e.contract_error(), Some(CE::NotRegisteredProvider(_))) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(provider = %info.username, "provider disabled");
        Ok(info)
    }

    /// The admin enables a provider again: registered on chain (its old grants live
    /// again, as the patients gave them), then logins are allowed. Also registers a
    /// provider whose registration an interrupted [`add_provider`](Self::add_provider)
    /// left undone.
    pub async fn enable_provider(
        &self,
        _admin: &AdminSession,
        username: &str,
    ) -> Result<AccountInfo> {
        let address = self.provider_account(username)?.address;
        self.ensure_provider(address, None).await?;
        let info = self
            .accounts
            .set_disabled(username, false)?
            .ok_or_else(|| Error::NotFound(format!("provider {}", username.trim())))?;
        tracing::info!(provider = %info.username, "provider enabled");
        Ok(info)
    }

    /// Changes the signed-in user's password (any role): `current` checked as a login
    /// checks it, the keystore re-encrypted under `new` — the same key, so the address and
    /// every record and grant stay — and every other session of the account ended; the
    /// session of `token` stays.
    pub async fn change_password(
        &self,
        who: &SignedIn,
        token: &str,
        current: &str,
        new: &str,
        client: &str,
    ) -> Result<()> {
        let session = who.session().clone();
        let token = Zeroizing::new(token.to_owned());
        let current = Zeroizing::new(current.to_owned());
        let new = Zeroizing::new(new.to_owned());
        let client = client.to_owned();
        self.kdf(move |a| a.change_password(&session, &token, &current, &new, &client))
            .await
    }

    /// Starts two-factor enrolment for the signed-in user (any role): a secret to scan.
    pub fn begin_totp(&self, who: &SignedIn) -> Result<TotpSetup> {
        Ok(self.accounts.begin_totp(who.session())?)
    }

    /// The secret offered by [`begin_totp`](Self::begin_totp) and not confirmed yet.
    pub fn pending_totp(&self, who: &SignedIn) -> Option<TotpSetup> {
        self.accounts.pending_totp(who.session())
    }

    /// Confirms enrolment with a code from the app; returns the backup codes (show once).
    pub fn confirm_totp(
        &self,
        who: &SignedIn,
        code: &str,
        client: &str,
    ) -> Result<Vec<Zeroizing<String>>> {
        Ok(self.accounts.confirm_totp(who.session(), code, client)?)
    }

    /// Turns two-factor off: the password and a current code both checked.
    pub async fn disable_totp(
        &self,
        who: &SignedIn,
        password: &str,
        code: &str,
        client: &str,
    ) -> Result<()> {
        let session = who.session().clone();
        let password = Zeroizing::new(password.to_owned());
        let code = Zeroizing::new(code.to_owned());
        let client = client.to_owned();
        self.kdf(move |a| a.disable_totp(&session, &password, &code, &client))
            .await
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
            .await
            .map_err(Error::chain)?;
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

    /// Registers `address` on chain unless it is registered: with the entry `profile`, or
    /// (`None`) the one of its last registration.
    pub(super) async fn ensure_provider(
        &self,
        address: Address,
        profile: Option<B256>,
    ) -> Result<()> {
        if !self.registry.is_provider(address).await? {
            let profile = match profile {
                Some(p) => p,
                None => self.last_profile(address).await?,
            };
            self.registry.fund_account(&self.admin, address).await?;
            match self
                .registry
                .register_provider(&self.admin, address, profile)
                .await
            {
                Ok(_) => {}
                Err(e) if matches!(e.contract_error(), Some(CE::AlreadyRegistered(_))) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// One account's public view (its own pages show it), by username.
    pub fn account(&self, username: &str) -> Option<AccountInfo> {
        self.accounts.get(username)
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

    /// Provider `username`'s account, or [`Error::NotFound`].
    fn provider_account(&self, username: &str) -> Result<AccountInfo> {
        match self.accounts.get(username) {
            Some(a) if a.role == Role::Provider => Ok(a),
            _ => Err(Error::NotFound(format!("provider {}", username.trim()))),
        }
    }

    /// The address of provider `username`, or [`Error::InvalidInput`] on `provider`.
    pub(super) fn provider_address(&self, username: &str) -> Result<Address> {
        let not_provider = || Error::InvalidInput {
            field: "provider",
            message: "no such provider".into(),
        };
        // An address: a provider of any organisation (the chain says whether it is one).
        let trimmed = username.trim();
        if trimmed.len() == 42
            && trimmed.starts_with("0x")
            && let Ok(address) = trimmed.parse::<Address>()
        {
            return Ok(address);
        }
        let user = ehr_accounts::normalize_username(username).map_err(|_| not_provider())?;
        match self.accounts.get(&user) {
            Some(a) if a.role == Role::Provider => Ok(a.address),
            _ => Err(not_provider()),
        }
    }
}
