//! The account store: sign-ups, logins and sessions over the accounts database (`db`);
//! the ways back into an account ([`recovery`]) and two-factor sign-in ([`two_factor`]) in
//! modules of their own.

mod recovery;
mod two_factor;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use alloy::primitives::hex;
use alloy::signers::local::PrivateKeySigner;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::db::AccountsDb;
use crate::kdf::KdfGate;
use crate::keystore::{self, KeystoreFile};
use crate::recovery::{Escrow, Recovery, admin_escrow_key};
use crate::totp;
use crate::*;
use crate::{account::*, clock::*, params::*, password::*, session::*, throttle::*};

/// What lives in memory only: sessions and throttling (a restart logs everyone out).
#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) sessions: HashMap<[u8; 16], SessionEntry>,
    pub(crate) throttle: Throttle,
}

/// The accounts of one SecureEHR deployment. Safe to share between threads.
pub struct AccountStore {
    pub(crate) dir: PathBuf,
    pub(crate) params: AccountParams,
    pub(crate) clock: Arc<dyn Clock>,
    /// The accounts, on disk ([`AccountsDb`]); never behind [`Self::inner`]'s lock.
    pub(crate) db: AccountsDb,
    pub(crate) inner: Mutex<Inner>,
    /// Verified against when the username is unknown, so that answer takes as long.
    pub(crate) dummy_hash: String,
    /// Passed by every Argon2id and scrypt run ([`crate::kdf_slots`] at once): at
    /// [`ScryptParams::STANDARD`] each run takes 256 MiB and about a second of a core.
    pub(crate) kdf_gate: KdfGate,
}

impl fmt::Debug for AccountStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountStore")
            .field("dir", &self.dir)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl AccountStore {
    /// Opens (or creates) the store in `data_dir` (`accounts.redb`), moving an older
    /// `accounts.json` there into it first (kept as `accounts.json.migrated`). Another
    /// process holding the database open is [`Error::StoreInUse`].
    pub fn open(
        data_dir: impl AsRef<Path>,
        params: AccountParams,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let dir = data_dir.as_ref().to_path_buf();
        let db = AccountsDb::open(&dir)?;
        let mut random = Zeroizing::new([0u8; 32]);
        ehr_crypto::fill_random(random.as_mut());
        let dummy_hash = hash_password(params.argon2, &hex::encode(random.as_ref()))?;
        Ok(Self {
            dir,
            params,
            clock,
            db,
            inner: Mutex::new(Inner::default()),
            dummy_hash,
            kdf_gate: KdfGate::new(crate::kdf_slots()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (every write is a
        // whole-value insert), so a poisoned lock is still usable. No disk I/O under it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The parameters the store runs with.
    pub fn params(&self) -> &AccountParams {
        &self.params
    }

    // The read-only views below answer from one read transaction each. They cannot fail
    // on input; a failing disk below redb reads as "no account" (every write, and so every
    // check that guards one, reports its error).

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.db.len().map_or(0, |n| n as usize)
    }

    /// Whether there are no accounts (a fresh deployment).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an admin account exists.
    pub fn has_admin(&self) -> bool {
        self.db.has_admin().unwrap_or(false)
    }

    /// One account's public view.
    pub fn get(&self, username: &str) -> Option<AccountInfo> {
        let u = normalize_username(username).ok()?;
        self.account(&u).map(|a| a.info())
    }

    pub(crate) fn account(&self, username: &str) -> Option<Account> {
        self.db.get(username).ok().flatten()
    }

    /// Every account's public view, by username.
    pub fn list(&self) -> Vec<AccountInfo> {
        let mut all = Vec::new();
        let _ = self.db.for_each(|a| all.push(a.info()));
        all
    }

    /// Changes one stored account atomically and durably (one write transaction): `f`
    /// gets the account as stored and may change anything but its username and role;
    /// its result is returned. An unknown username is `Ok(None)`; if `f` fails nothing
    /// is written.
    pub(crate) fn update<T>(
        &self,
        username: &str,
        f: impl FnOnce(&mut Account) -> Result<T>,
    ) -> Result<Option<T>> {
        self.db.update(username, f)
    }

    /// Creates the first admin. Refused with [`Error::AdminExists`] once one exists. The
    /// admin's escrow public key (derived from its key) is kept with it, so providers' keys
    /// can be escrowed to it.
    pub fn create_admin(&self, username: &str, password: &str) -> Result<AccountInfo> {
        let (mut account, signer) = self.prepare(username, password, Role::Admin, None)?;
        account.escrow_public = Some(admin_escrow_key(&signer).1);
        self.db.insert_new(&account, false)?;
        Ok(account.info())
    }

    /// Registers a provider; only an admin may. The provider's key is escrowed to the
    /// admin ([`reset_provider_password`](Self::reset_provider_password)).
    pub fn add_provider(
        &self,
        admin: &Session,
        username: &str,
        password: &str,
    ) -> Result<AccountInfo> {
        if admin.role != Role::Admin {
            return Err(Error::Forbidden("only an admin may add providers"));
        }
        let (mut account, signer) = self.prepare(username, password, Role::Provider, None)?;
        if let Some(a) = admin.signer() {
            account.escrow = Some(Escrow::new(&signer, a.address(), &admin_escrow_key(a).1)?);
        }
        self.db.insert_new(&account, false)?;
        Ok(account.info())
    }

    /// Registers a patient (self-service), without a recovery code (see
    /// [`sign_up_patient`](Self::sign_up_patient)).
    pub fn register_patient(&self, username: &str, password: &str) -> Result<AccountInfo> {
        self.create(username, password, Role::Patient)
            .map(|(info, _)| info)
    }

    /// A patient's sign-up: [`create_with_key`](Self::create_with_key) plus a recovery code,
    /// returned to be shown once; the account and the copy of its key under the code are
    /// one durable write.
    pub fn sign_up_patient(
        &self,
        username: &str,
        password: &str,
        own: Option<&KeystoreFile>,
    ) -> Result<(AccountInfo, PrivateKeySigner, RecoveryCode)> {
        let (mut account, signer) = self.prepare(username, password, Role::Patient, own)?;
        let code = {
            let _gate = self.kdf_gate.enter();
            let (recovery, code) = Recovery::new(
                &account.username,
                &signer,
                self.params.scrypt,
                account.created_at,
            )?;
            account.recovery = Some(recovery);
            code
        };
        self.db.insert_new(&account, own.is_some())?;
        Ok((account.info(), signer, code))
    }

    /// Creates an account and also returns its new key, for registering it on chain.
    pub fn create(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<(AccountInfo, PrivateKeySigner)> {
        self.create_with_key(username, password, role, None)
    }

    /// [`create`](Self::create), with the user's own key when `own` is given: a keystore v3
    /// file as any Ethereum wallet writes it, decrypted with `password` (scrypt or PBKDF2
    /// within this crate's bounds). The account keeps the key re-encrypted under the
    /// store's parameters. A key another account here holds is [`Error::KeyInUse`].
    pub fn create_with_key(
        &self,
        username: &str,
        password: &str,
        role: Role,
        own: Option<&KeystoreFile>,
    ) -> Result<(AccountInfo, PrivateKeySigner)> {
        let (account, signer) = self.prepare(username, password, role, own)?;
        self.db.insert_new(&account, own.is_some())?;
        Ok((account.info(), signer))
    }

    /// Checks the username and password and makes the account (key, keystore, password
    /// hash), not yet stored: the callers add what their role keeps, then insert it.
    pub(crate) fn prepare(
        &self,
        username: &str,
        password: &str,
        role: Role,
        own: Option<&KeystoreFile>,
    ) -> Result<(Account, PrivateKeySigner)> {
        let username = normalize_username(username)?;
        check_password(password)?;
        self.check_free(&username, role)?;

        // The slow part (Argon2id, key generation or decryption, scrypt) runs without the
        // lock.
        let (password_hash, (signer, keystore)) = {
            let _gate = self.kdf_gate.enter();
            let keyed = match own {
                None => keystore::generate(
                    password.as_bytes(),
                    self.params.scrypt,
                    &mut ehr_crypto::rng(),
                )?,
                Some(file) => {
                    let signer = keystore::decrypt(file, password.as_bytes())?;
                    let mut taken = false;
                    self.db
                        .for_each(|a| taken |= a.address == signer.address())?;
                    if taken {
                        return Err(Error::KeyInUse);
                    }
                    let file = keystore::encrypt(
                        &signer,
                        password.as_bytes(),
                        self.params.scrypt,
                        &mut ehr_crypto::rng(),
                    )?;
                    (signer, file)
                }
            };
            (hash_password(self.params.argon2, password)?, keyed)
        };
        let account = Account {
            username: username.clone(),
            role,
            address: signer.address(),
            password_hash,
            keystore,
            created_at: ehr_primitives::unix_secs(self.clock.now()),
            disabled: false,
            recovery: None,
            escrow: None,
            escrow_public: None,
            second_factor: Default::default(),
        };
        // The insert checks the username again inside its write transaction: another
        // thread may have won the race while we hashed. Durable (fsync) before it returns.
        Ok((account, signer))
    }

    pub(crate) fn check_free(&self, username: &str, role: Role) -> Result<()> {
        if role == Role::Admin && self.db.has_admin()? {
            return Err(Error::AdminExists);
        }
        if self.db.get(username)?.is_some() {
            return Err(Error::UsernameTaken);
        }
        Ok(())
    }

    /// Disables (`true`) or enables an account, durably (one write transaction); `None`
    /// for an unknown username. Disabling also ends every session of the account at once.
    pub fn set_disabled(&self, username: &str, disabled: bool) -> Result<Option<AccountInfo>> {
        let Ok(user) = normalize_username(username) else {
            return Ok(None);
        };
        let Some(info) = self.update(&user, |account| {
            account.disabled = disabled;
            Ok(account.info())
        })?
        else {
            return Ok(None);
        };
        if disabled {
            self.lock()
                .sessions
                .retain(|_, s| s.session.username != user);
        }
        Ok(Some(info))
    }

    // -----------------------------------------------------------------------------------
    // Login and sessions
    // -----------------------------------------------------------------------------------

    /// Checks `password` for `username`, throttled per (username, `client`), per `client`
    /// (e.g. the peer address) and, for successes, per username, and returns a fresh token
    /// with its session. Blocks for the key derivations (about a second at the standard
    /// cost): call it on a blocking thread.
    ///
    /// The user's keystore is decrypted with the same password and the key kept with the
    /// session (in memory only) for signing transactions and custodian requests; it is
    /// dropped, and zeroized, at logout or expiry.
    pub fn login(&self, username: &str, password: &str, client: &str) -> Result<(Token, Session)> {
        self.login_with_code(username, password, None, client)
    }

    /// [`login`](Self::login) with a second factor: an account that enrolled needs `code`
    /// (a TOTP code from its authenticator app, or an unused backup code), checked in the
    /// same throttled attempt — without it [`Error::TotpRequired`], wrong or used
    /// [`Error::InvalidTotp`]. Accounts that did not enrol ignore `code`.
    pub fn login_with_code(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
        client: &str,
    ) -> Result<(Token, Session)> {
        let (account, signer) = self.unlock(username, password, client, Some(code))?;
        self.backfill_escrow(&account, &signer)?;
        let now = self.clock.now();
        // This sign-in's time is kept; the one before it is this session's last visit.
        let previous_visit = self
            .db
            .swap_last_visit(&account.username, ehr_primitives::unix_secs(now))?;
        let mut selector = [0u8; 16];
        let mut verifier = Zeroizing::new([0u8; 32]);
        ehr_crypto::fill_random(&mut selector);
        ehr_crypto::fill_random(verifier.as_mut());
        let session = Session {
            username: account.username,
            role: account.role,
            address: account.address,
            expires_at: now + self.params.token_ttl,
            previous_visit,
            key: SessionKey(Some(Arc::new(signer))),
        };
        let token = Token(Zeroizing::new(format!(
            "{}{}",
            hex::encode(selector),
            hex::encode(verifier.as_ref())
        )));
        let mut inner = self.lock();
        inner.sessions.retain(|_, s| s.session.expires_at > now);
        inner.sessions.insert(
            selector,
            SessionEntry {
                verifier_hash: Sha256::digest(verifier.as_ref()).into(),
                session: session.clone(),
            },
        );
        Ok((token, session))
    }

    /// The session a token belongs to; [`Error::Unauthenticated`] if it is malformed,
    /// unknown, revoked or expired.
    pub fn authenticate(&self, token: &str) -> Result<Session> {
        let (selector, verifier) = parse_token(token).ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner
            .sessions
            .get(&selector)
            .ok_or(Error::Unauthenticated)?;
        let hash: [u8; 32] = Sha256::digest(verifier.as_ref()).into();
        if !bool::from(hash.ct_eq(&entry.verifier_hash)) {
            return Err(Error::Unauthenticated);
        }
        if entry.session.expires_at <= now {
            inner.sessions.remove(&selector);
            return Err(Error::Unauthenticated);
        }
        Ok(entry.session.clone())
    }

    /// Revokes a token. Revoking an unknown or expired token is not an error.
    pub fn logout(&self, token: &str) {
        let Some((selector, verifier)) = parse_token(token) else {
            return;
        };
        let mut inner = self.lock();
        let hash: [u8; 32] = Sha256::digest(verifier.as_ref()).into();
        if inner
            .sessions
            .get(&selector)
            .is_some_and(|e| bool::from(hash.ct_eq(&e.verifier_hash)))
        {
            inner.sessions.remove(&selector);
        }
    }

    /// Changes the session user's password. `current` is checked as a login checks it
    /// (throttled per account and client); the keystore is re-encrypted under `new` — the
    /// same key, so the address and every record and grant on chain stay the user's — and
    /// the new Argon2id hash stored with it in one durable write. Every other session of
    /// the account ends; the one whose token is `keep` stays. Blocks for the key
    /// derivations: call it on a blocking thread.
    pub fn change_password(
        &self,
        session: &Session,
        keep: &str,
        current: &str,
        new: &str,
        client: &str,
    ) -> Result<()> {
        check_password(new)?;
        let (account, signer) = self.verify_and_unlock(&session.username, current, client)?;
        if account.address != session.address {
            return Err(Error::Unauthenticated);
        }
        let (password_hash, keystore) = {
            let _gate = self.kdf_gate.enter();
            self.credentials_for(&signer, new)?
        };
        self.update(&account.username, |a| {
            a.password_hash = password_hash;
            a.keystore = keystore;
            Ok(())
        })?
        .ok_or(Error::Unauthenticated)?;
        let kept = parse_token(keep).map(|(selector, _)| selector);
        self.lock().sessions.retain(|selector, s| {
            s.session.username != account.username || Some(*selector) == kept
        });
        Ok(())
    }

    /// A new password's Argon2id hash and `signer`'s keystore encrypted under it (call
    /// inside the KDF gate).
    pub(super) fn credentials_for(
        &self,
        signer: &PrivateKeySigner,
        password: &str,
    ) -> Result<(String, KeystoreFile)> {
        Ok((
            hash_password(self.params.argon2, password)?,
            keystore::encrypt(
                signer,
                password.as_bytes(),
                self.params.scrypt,
                &mut ehr_crypto::rng(),
            )?,
        ))
    }

    /// Charges one attempt for (`username`, `client`) — refused while either is locked
    /// out — then looks the account up (`None`: no such username, or not a valid one).
    pub(super) fn charged_lookup(&self, username: &str, client: &str) -> Result<Option<Account>> {
        let user = normalize_username(username).ok();
        self.lock().throttle.charge(
            self.clock.now(),
            self.params.rate_limit,
            user.as_deref(),
            client,
        )?;
        match &user {
            Some(u) => self.db.get(u),
            None => Ok(None),
        }
    }

    /// Deletes a patient's account (after their records were erased): the row, with its
    /// keystores and hashes, and every session of it. `false` if there was none. Admins and
    /// providers are disabled, never deleted (their accounts sign the audit trail's
    /// registrations).
    pub fn remove_patient(&self, username: &str) -> Result<bool> {
        match self.db.get(username)? {
            Some(a) if a.role == Role::Patient => {}
            Some(_) => return Err(Error::Forbidden("only a patient's account is deleted")),
            None => return Ok(false),
        }
        let removed = self.db.remove(username)?;
        self.lock()
            .sessions
            .retain(|_, s| s.session.username != username);
        Ok(removed)
    }

    /// The session user's keystore file, for export to a wallet.
    pub fn export_keystore(&self, session: &Session) -> Result<KeystoreFile> {
        self.db
            .get(&session.username)?
            .map(|a| a.keystore)
            .ok_or(Error::Unauthenticated)
    }

    /// Decrypts the session user's key with their password (throttled like a login), for
    /// signing chain transactions and custodian requests.
    pub fn signer(
        &self,
        session: &Session,
        password: &str,
        client: &str,
    ) -> Result<PrivateKeySigner> {
        self.verify_and_unlock(&session.username, password, client)
            .map(|(_, signer)| signer)
    }

    /// The throttled password check shared by [`login`](Self::login) and
    /// [`signer`](Self::signer), then the keystore's decryption: one pass of the KDF gate.
    pub(crate) fn verify_and_unlock(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<(Account, PrivateKeySigner)> {
        self.unlock(username, password, client, None)
    }

    /// [`verify_and_unlock`](Self::verify_and_unlock); with `second` (a login) also the
    /// second factor of an account that enrolled, before the attempt counts as a success.
    pub(super) fn unlock(
        &self,
        username: &str,
        password: &str,
        client: &str,
        second: Option<Option<&str>>,
    ) -> Result<(Account, PrivateKeySigner)> {
        let rl = self.params.rate_limit;
        let account = self.charged_lookup(username, client)?;

        let _gate = self.kdf_gate.enter();
        // Unknown users are checked against a dummy hash so both answers take as long.
        let stored = account
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |a| a.password_hash.as_str());
        let ok = password.len() <= MAX_PASSWORD_BYTES && verify_hash(stored, password);
        match account {
            Some(account) if ok => {
                let signer = keystore::decrypt(&account.keystore, password.as_bytes())?;
                if let Some(code) = second
                    && account.second_factor.enrolled()
                {
                    // Still charged: a wrong code counts as a failed attempt.
                    let code = code.ok_or(Error::TotpRequired)?;
                    let now = ehr_primitives::unix_secs(self.clock.now());
                    self.update(&account.username, |a| {
                        totp::check(&mut a.second_factor, &a.username, code, now)
                    })?
                    .ok_or(Error::InvalidCredentials)?;
                }
                self.lock()
                    .throttle
                    .succeeded(self.clock.now(), rl, &account.username, client);
                Ok((account, signer))
            }
            _ => Err(Error::InvalidCredentials),
        }
    }
}
