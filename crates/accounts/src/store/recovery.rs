//! The ways back into an account that keep its key: a recovery code, and the admin's reset
//! of a provider's password through the key escrow (see [`crate::recovery`]).

use alloy::signers::local::PrivateKeySigner;

use super::AccountStore;
use crate::account::{Account, check_password, normalize_username};
use crate::recovery::{Escrow, Recovery, RecoveryCode, admin_escrow_key};
use crate::{AccountInfo, Error, Result, Role, Session};

impl AccountStore {
    /// Escrow for accounts made before it existed, at their first login since (the key is
    /// unlocked then): an admin's escrow public key; a provider's key wrapped to it.
    pub(super) fn backfill_escrow(
        &self,
        account: &Account,
        signer: &PrivateKeySigner,
    ) -> Result<()> {
        match account.role {
            Role::Admin if account.escrow_public.is_none() => {
                let public = admin_escrow_key(signer).1;
                self.update(&account.username, |a| {
                    a.escrow_public = Some(public);
                    Ok(())
                })?;
            }
            Role::Provider if account.escrow.is_none() => {
                let admin = self.db.admin()?;
                if let Some((address, public)) =
                    admin.and_then(|a| Some((a.address, a.escrow_public?)))
                {
                    let escrow = Escrow::new(signer, address, &public)?;
                    self.update(&account.username, |a| {
                        a.escrow = Some(escrow);
                        Ok(())
                    })?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A new recovery code for the session user, whose `password` is checked as a login
    /// checks it: a second copy of the key under the code replaces the old one (which
    /// stops working) in one durable write. The code is returned to be shown once.
    pub fn new_recovery_code(
        &self,
        session: &Session,
        password: &str,
        client: &str,
    ) -> Result<RecoveryCode> {
        let (account, signer) = self.verify_and_unlock(&session.username, password, client)?;
        if account.address != session.address {
            return Err(Error::Unauthenticated);
        }
        let (recovery, code) = {
            let _gate = self.kdf_gate.enter();
            Recovery::new(
                &account.username,
                &signer,
                self.params.scrypt,
                ehr_primitives::unix_secs(self.clock.now()),
            )?
        };
        self.update(&account.username, |a| {
            a.recovery = Some(recovery);
            Ok(())
        })?
        .ok_or(Error::Unauthenticated)?;
        Ok(code)
    }

    /// Sets a new password with the account's recovery code, keeping its key (and so its
    /// address, records and grants). Throttled as a login is; a wrong code, an unknown
    /// username and an account without a code are all [`Error::InvalidRecovery`]. The code
    /// is used up: a new one replaces it and is returned, to be shown once. Every session
    /// of the account ends. Blocks for the key derivations: call it on a blocking thread.
    pub fn recover(
        &self,
        username: &str,
        code: &str,
        new_password: &str,
        client: &str,
    ) -> Result<RecoveryCode> {
        let code = RecoveryCode::parse(code)?;
        check_password(new_password)?;
        let rl = self.params.rate_limit;
        let account = self.charged_lookup(username, client)?;
        let Some((account, recovery)) = account.and_then(|a| {
            let r = a.recovery.clone()?;
            r.matches(&a.username, &code).then_some((a, r))
        }) else {
            return Err(Error::InvalidRecovery);
        };

        let (password_hash, keystore, (next, next_code)) = {
            let _gate = self.kdf_gate.enter();
            let signer = recovery.unlock(&code)?;
            if signer.address() != account.address {
                return Err(Error::InvalidRecovery);
            }
            let (hash, keystore) = self.credentials_for(&signer, new_password)?;
            (
                hash,
                keystore,
                Recovery::new(
                    &account.username,
                    &signer,
                    self.params.scrypt,
                    ehr_primitives::unix_secs(self.clock.now()),
                )?,
            )
        };
        self.update(&account.username, |a| {
            a.password_hash = password_hash;
            a.keystore = keystore;
            a.recovery = Some(next);
            Ok(())
        })?
        .ok_or(Error::InvalidRecovery)?;
        let mut inner = self.lock();
        inner
            .throttle
            .succeeded(self.clock.now(), rl, &account.username, client);
        inner
            .sessions
            .retain(|_, s| s.session.username != account.username);
        Ok(next_code)
    }

    /// The admin resets provider `username`'s password: the provider's escrowed key is
    /// opened with the admin's key and encrypted under `new_password`, so the provider
    /// keeps its address and every grant. Every session of the provider ends, and
    /// two-factor is turned off (the provider sets it up again). A provider
    /// whose key is not escrowed is [`Error::NoEscrow`]; an unknown username or another
    /// role is [`Error::Forbidden`].
    pub fn reset_provider_password(
        &self,
        admin: &Session,
        username: &str,
        new_password: &str,
    ) -> Result<AccountInfo> {
        if admin.role != Role::Admin {
            return Err(Error::Forbidden(
                "only an admin may reset a provider's password",
            ));
        }
        let admin_key = admin.signer().ok_or(Error::Unauthenticated)?;
        check_password(new_password)?;
        const NOT_PROVIDER: Error = Error::Forbidden("only a provider's password can be reset");
        let user = normalize_username(username).map_err(|_| NOT_PROVIDER)?;
        let account = match self.db.get(&user)? {
            Some(a) if a.role == Role::Provider => a,
            _ => return Err(NOT_PROVIDER),
        };
        let escrow = account
            .escrow
            .as_ref()
            .filter(|e| e.admin == admin_key.address())
            .ok_or(Error::NoEscrow)?;
        let (password_hash, keystore) = {
            let _gate = self.kdf_gate.enter();
            let signer = escrow.open(admin_key, account.address)?;
            self.credentials_for(&signer, new_password)?
        };
        let info = self
            .update(&account.username, |a| {
                a.password_hash = password_hash;
                a.keystore = keystore;
                // A provider who lost its phone and backup codes gets back in this way too;
                // it sets two-factor up again (the admin holds its key already).
                a.second_factor = Default::default();
                Ok(a.info())
            })?
            .ok_or(NOT_PROVIDER)?;
        self.lock()
            .sessions
            .retain(|_, s| s.session.username != account.username);
        Ok(info)
    }
}
