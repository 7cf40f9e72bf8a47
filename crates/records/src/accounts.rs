//! Users, passwords, sessions and login throttling.
//!
//! An [`AccountStore`] is a JSON file in the data directory holding every user: username,
//! role (patient, provider, admin), Ethereum address, Argon2id password hash (PHC string)
//! and the user's key as a keystore v3 file encrypted under the same password. It starts
//! empty — there are no default credentials: the first admin is created explicitly with
//! [`AccountStore::create_admin`], which refuses once an admin exists. Every change is
//! written crash-safely (temporary file, fsync, rename, fsync of the directory) *before* it
//! is acknowledged, so an account that was reported created survives a crash.
//!
//! [`AccountStore::login`] checks the password and hands out a bearer [`Token`]: a random
//! 128-bit selector that finds the session plus a random 256-bit verifier, of which only the
//! SHA-256 hash is kept and which is compared in constant time (`subtle`). Tokens live in
//! memory and expire after [`AccountParams::token_ttl`]; a restart logs everyone out.
//!
//! Failed logins are counted per username and per client key (e.g. the peer IP): after
//! [`RateLimitParams::free_failures`] failures the key is locked for a delay that doubles
//! with each further failure. Attempts are charged *before* the password is checked, so
//! parallel guesses cannot slip past the limit. Time comes from a [`Clock`], so tests move
//! it instead of sleeping.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, hex};
use alloy::signers::local::PrivateKeySigner;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Version};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keystore::{self, KeystoreFile, ScryptParams};

/// The accounts file's name inside the data directory.
pub const ACCOUNTS_FILE: &str = "accounts.json";
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Throttling entries kept before stale ones are swept.
const MAX_THROTTLE_ENTRIES: usize = 10_000;

// ---------------------------------------------------------------------------------------
// Parameters, clock, roles
// ---------------------------------------------------------------------------------------

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to (tests).
#[cfg(any(test, feature = "test-utils"))]
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

#[cfg(any(test, feature = "test-utils"))]
impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

#[cfg(any(test, feature = "test-utils"))]
impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().expect("clock lock")
    }
}

/// Argon2id cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Argon2Params {
    /// OWASP's recommendation for Argon2id: 19 MiB, 2 passes, 1 lane (also the `argon2`
    /// crate's default).
    pub const STANDARD: Self = Self {
        m_cost_kib: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };

    fn hasher(self) -> Result<Argon2<'static>> {
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)
            .map_err(|_| Error::InvalidParams("argon2"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Login throttling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitParams {
    /// Failures allowed before a key (username or client) is locked.
    pub free_failures: u32,
    /// The first lock's length; each further failure doubles it.
    pub base_lockout: Duration,
    /// The longest lock.
    pub max_lockout: Duration,
    /// A key with no failure for this long starts afresh.
    pub forget_after: Duration,
}

impl RateLimitParams {
    /// 5 failures, then 30 s, 60 s, 120 s, … up to 15 min; forgotten after an hour.
    pub const STANDARD: Self = Self {
        free_failures: 5,
        base_lockout: Duration::from_secs(30),
        max_lockout: Duration::from_secs(15 * 60),
        forget_after: Duration::from_secs(60 * 60),
    };

    fn lockout(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(self.free_failures).min(20);
        self.base_lockout
            .saturating_mul(1 << doublings)
            .min(self.max_lockout)
    }
}

/// Everything an [`AccountStore`] can be tuned with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountParams {
    /// Password hashing cost.
    pub argon2: Argon2Params,
    /// Cost of the users' keystore files.
    pub scrypt: ScryptParams,
    /// How long a login token is valid.
    pub token_ttl: Duration,
    /// Login throttling.
    pub rate_limit: RateLimitParams,
}

impl AccountParams {
    /// Production settings: [`Argon2Params::STANDARD`], [`ScryptParams::STANDARD`],
    /// 15-minute tokens, [`RateLimitParams::STANDARD`].
    pub const STANDARD: Self = Self {
        argon2: Argon2Params::STANDARD,
        scrypt: ScryptParams::STANDARD,
        token_ttl: Duration::from_secs(15 * 60),
        rate_limit: RateLimitParams::STANDARD,
    };

    /// Cheap hashing (64 KiB Argon2id, scrypt n = 2^10) for tests. Never in production.
    #[cfg(any(test, feature = "test-utils"))]
    pub const INSECURE_FAST: Self = Self {
        argon2: Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        scrypt: ScryptParams {
            log_n: 10,
            r: 8,
            p: 1,
        },
        ..Self::STANDARD
    };
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Owns records and grants access to them.
    Patient,
    /// Reads what patients granted.
    Provider,
    /// Registers providers.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Patient => "patient",
            Self::Provider => "provider",
            Self::Admin => "admin",
        })
    }
}

// ---------------------------------------------------------------------------------------
// Accounts, sessions, tokens
// ---------------------------------------------------------------------------------------

/// One user as stored. `Debug` leaves out the hash and the keystore.
#[derive(Clone, Serialize, Deserialize)]
struct Account {
    username: String,
    role: Role,
    address: Address,
    /// Argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    password_hash: String,
    /// The user's key, encrypted under their password.
    keystore: KeystoreFile,
    /// Unix seconds.
    created_at: u64,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Account {
    fn info(&self) -> AccountInfo {
        AccountInfo {
            username: self.username.clone(),
            role: self.role,
            address: self.address,
            created_at: self.created_at,
        }
    }
}

/// The public view of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountInfo {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// The user's Ethereum address.
    pub address: Address,
    /// Unix seconds.
    pub created_at: u64,
}

/// Who a valid token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// The user's Ethereum address.
    pub address: Address,
    /// When the token stops working.
    pub expires_at: SystemTime,
    /// The user's key, unlocked at login for the session's transactions and requests.
    pub(crate) key: SessionKey,
}

impl Session {
    /// The user's signing key, if the session was opened with
    /// [`login`](AccountStore::login) (always, outside tests).
    pub fn signer(&self) -> Option<&PrivateKeySigner> {
        self.key.0.as_deref()
    }
}

/// The key a session unlocked. Shared, never printed, equal to any other (sessions compare
/// by who they belong to).
#[derive(Clone, Default)]
pub(crate) struct SessionKey(pub(crate) Option<Arc<PrivateKeySigner>>);

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "<unlocked>"
        } else {
            "<locked>"
        })
    }
}

impl PartialEq for SessionKey {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SessionKey {}

/// A bearer token as handed to the client: 96 hex characters (a 128-bit selector and a
/// 256-bit secret). Zeroized on drop; `Debug` is redacted.
pub struct Token(Zeroizing<String>);

impl Token {
    /// The token, for the client (e.g. an `Authorization: Bearer` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

struct SessionEntry {
    verifier_hash: [u8; 32],
    session: Session,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum ThrottleKey {
    User(String),
    Client(String),
}

struct Failures {
    count: u32,
    last: SystemTime,
    locked_until: Option<SystemTime>,
}

#[derive(Default)]
struct Inner {
    accounts: BTreeMap<String, Account>,
    sessions: HashMap<[u8; 16], SessionEntry>,
    failures: HashMap<ThrottleKey, Failures>,
}

#[derive(Serialize, Deserialize)]
struct AccountsFile {
    version: u32,
    accounts: Vec<Account>,
}

/// The accounts of one SecureEHR deployment. Safe to share between threads.
pub struct AccountStore {
    dir: PathBuf,
    params: AccountParams,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    /// Verified against when the username is unknown, so that answer takes as long.
    dummy_hash: String,
    /// Held while scrypt runs: at [`ScryptParams::STANDARD`] each run takes 256 MiB, so
    /// concurrent registrations must not multiply that.
    kdf_gate: Mutex<()>,
}

impl fmt::Debug for AccountStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountStore")
            .field("dir", &self.dir)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Trims and lowercases a username, then checks it: 3–32 of `a-z 0-9 . _ -`, starting with
/// a letter or digit.
pub fn normalize_username(username: &str) -> Result<String> {
    let u = username.trim().to_ascii_lowercase();
    if !(3..=32).contains(&u.len()) {
        return Err(Error::InvalidUsername("must be 3 to 32 characters"));
    }
    if !u
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Err(Error::InvalidUsername(
            "only a-z, 0-9, '.', '_' and '-' are allowed",
        ));
    }
    if !u.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(Error::InvalidUsername("must start with a letter or digit"));
    }
    Ok(u)
}

fn check_password(password: &str) -> Result<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::InvalidPassword("longer than 1024 bytes"));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::InvalidPassword("shorter than 12 characters"));
    }
    if password.trim().is_empty() {
        return Err(Error::InvalidPassword("only whitespace"));
    }
    Ok(())
}

impl AccountStore {
    /// Opens (or creates) the store in `data_dir`.
    pub fn open(
        data_dir: impl AsRef<Path>,
        params: AccountParams,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let dir = data_dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(ACCOUNTS_FILE);
        // A temporary file left by a crash was never acknowledged: drop it.
        let tmp = dir.join(format!("{ACCOUNTS_FILE}.tmp"));
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        let mut accounts = BTreeMap::new();
        match fs::read(&path) {
            Ok(bytes) => {
                let corrupt = |reason: String| Error::CorruptStore {
                    path: path.clone(),
                    reason,
                };
                // Only the position: serde's message may quote usernames or hashes.
                let file: AccountsFile = serde_json::from_slice(&bytes).map_err(|e| {
                    corrupt(format!(
                        "not an accounts file (line {}, column {})",
                        e.line(),
                        e.column()
                    ))
                })?;
                if file.version != 1 {
                    return Err(corrupt(format!("unknown version {}", file.version)));
                }
                for a in file.accounts {
                    if accounts.insert(a.username.clone(), a).is_some() {
                        return Err(corrupt("duplicate username".into()));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        let mut random = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(random.as_mut());
        let dummy_hash = hash_password(params.argon2, &hex::encode(random.as_ref()))?;
        Ok(Self {
            dir,
            params,
            clock,
            inner: Mutex::new(Inner {
                accounts,
                ..Inner::default()
            }),
            dummy_hash,
            kdf_gate: Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (every write is a
        // whole-value insert), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The parameters the store runs with.
    pub fn params(&self) -> &AccountParams {
        &self.params
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.lock().accounts.len()
    }

    /// Whether there are no accounts (a fresh deployment).
    pub fn is_empty(&self) -> bool {
        self.lock().accounts.is_empty()
    }

    /// Whether an admin account exists.
    pub fn has_admin(&self) -> bool {
        self.lock().accounts.values().any(|a| a.role == Role::Admin)
    }

    /// One account's public view.
    pub fn get(&self, username: &str) -> Option<AccountInfo> {
        let u = normalize_username(username).ok()?;
        self.lock().accounts.get(&u).map(Account::info)
    }

    /// Every account's public view, by username.
    pub fn list(&self) -> Vec<AccountInfo> {
        self.lock().accounts.values().map(Account::info).collect()
    }

    /// Creates the first admin. Refused with [`Error::AdminExists`] once one exists.
    pub fn create_admin(&self, username: &str, password: &str) -> Result<AccountInfo> {
        self.create(username, password, Role::Admin)
            .map(|(info, _)| info)
    }

    /// Registers a provider; only an admin may.
    pub fn add_provider(
        &self,
        admin: &Session,
        username: &str,
        password: &str,
    ) -> Result<AccountInfo> {
        if admin.role != Role::Admin {
            return Err(Error::Forbidden("only an admin may add providers"));
        }
        self.create(username, password, Role::Provider)
            .map(|(info, _)| info)
    }

    /// Registers a patient (self-service).
    pub fn register_patient(&self, username: &str, password: &str) -> Result<AccountInfo> {
        self.create(username, password, Role::Patient)
            .map(|(info, _)| info)
    }

    /// Creates an account and also returns its new key, for registering it on chain.
    pub(crate) fn create(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<(AccountInfo, PrivateKeySigner)> {
        let username = normalize_username(username)?;
        check_password(password)?;
        self.check_free(&username, role)?;

        // The slow part (Argon2id, key generation, scrypt) runs without the lock.
        let password_hash = hash_password(self.params.argon2, password)?;
        let (signer, keystore) = {
            let _gate = self.kdf_gate.lock().unwrap_or_else(|p| p.into_inner());
            keystore::generate(password.as_bytes(), self.params.scrypt, &mut OsRng)?
        };
        let account = Account {
            username: username.clone(),
            role,
            address: signer.address(),
            password_hash,
            keystore,
            created_at: unix_secs(self.clock.now()),
        };

        let mut inner = self.lock();
        // Checked again: another thread may have won the race while we hashed.
        Self::check_free_locked(&inner, &username, role)?;
        let mut accounts: Vec<Account> = inner.accounts.values().cloned().collect();
        accounts.push(account.clone());
        self.persist(&accounts)?;
        let info = account.info();
        inner.accounts.insert(username, account);
        Ok((info, signer))
    }

    fn check_free(&self, username: &str, role: Role) -> Result<()> {
        Self::check_free_locked(&self.lock(), username, role)
    }

    fn check_free_locked(inner: &Inner, username: &str, role: Role) -> Result<()> {
        if role == Role::Admin && inner.accounts.values().any(|a| a.role == Role::Admin) {
            return Err(Error::AdminExists);
        }
        if inner.accounts.contains_key(username) {
            return Err(Error::UsernameTaken);
        }
        Ok(())
    }

    /// Writes all accounts: temporary file, fsync, rename over the old file, fsync the
    /// directory. Either the old or the new file survives a crash, never a torn one.
    fn persist(&self, accounts: &[Account]) -> Result<()> {
        let path = self.dir.join(ACCOUNTS_FILE);
        let tmp = self.dir.join(format!("{ACCOUNTS_FILE}.tmp"));
        let body = serde_json::to_vec_pretty(&AccountsFile {
            version: 1,
            accounts: accounts.to_vec(),
        })
        .expect("accounts serialize");
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Password hashes and encrypted keys: readable by the service user only.
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(&body).map_err(|e| Error::io(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        #[cfg(unix)]
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&self.dir, e))?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Login and sessions
    // -----------------------------------------------------------------------------------

    /// Checks `password` for `username`, throttled per username and per `client` (e.g. the
    /// peer address), and returns a fresh token with its session.
    ///
    /// The user's keystore is decrypted with the same password and the key kept with the
    /// session (in memory only) for signing transactions and custodian requests; it is
    /// dropped, and zeroized, at logout or expiry.
    pub fn login(&self, username: &str, password: &str, client: &str) -> Result<(Token, Session)> {
        let account = self.verify_password(username, password, client)?;
        let signer = {
            let _gate = self.kdf_gate.lock().unwrap_or_else(|p| p.into_inner());
            keystore::decrypt(&account.keystore, password.as_bytes())?
        };
        let now = self.clock.now();
        let mut selector = [0u8; 16];
        let mut verifier = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut selector);
        OsRng.fill_bytes(verifier.as_mut());
        let session = Session {
            username: account.username,
            role: account.role,
            address: account.address,
            expires_at: now + self.params.token_ttl,
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

    /// The session user's keystore file, for export to a wallet.
    pub fn export_keystore(&self, session: &Session) -> Result<KeystoreFile> {
        self.lock()
            .accounts
            .get(&session.username)
            .map(|a| a.keystore.clone())
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
        let account = self.verify_password(&session.username, password, client)?;
        let _gate = self.kdf_gate.lock().unwrap_or_else(|p| p.into_inner());
        keystore::decrypt(&account.keystore, password.as_bytes())
    }

    /// The throttled password check shared by [`login`](Self::login) and
    /// [`signer`](Self::signer).
    fn verify_password(&self, username: &str, password: &str, client: &str) -> Result<Account> {
        let user = normalize_username(username).ok();
        let user_key = user.clone().map(ThrottleKey::User);
        let client_key = ThrottleKey::Client(client.to_owned());
        let keys: Vec<ThrottleKey> = user_key
            .iter()
            .cloned()
            .chain([client_key.clone()])
            .collect();

        let account = {
            let mut inner = self.lock();
            self.charge(&mut inner, &keys)?;
            user.as_ref().and_then(|u| inner.accounts.get(u).cloned())
        };

        // Unknown users are checked against a dummy hash so both answers take as long.
        let stored = account
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |a| a.password_hash.as_str());
        let ok = password.len() <= MAX_PASSWORD_BYTES && verify_hash(stored, password);

        match account {
            Some(account) if ok => {
                let mut inner = self.lock();
                if let Some(k) = &user_key {
                    inner.failures.remove(k);
                }
                if let Some(f) = inner.failures.get_mut(&client_key) {
                    // Refund the client's advance charge: this attempt was no failure.
                    f.count = f.count.saturating_sub(1);
                    if f.count < self.params.rate_limit.free_failures {
                        f.locked_until = None;
                    }
                }
                Ok(account)
            }
            _ => Err(Error::InvalidCredentials),
        }
    }

    /// Refuses if any key is locked; otherwise counts this attempt as a failure on every
    /// key in advance (a success refunds it), locking keys that reach the limit.
    fn charge(&self, inner: &mut Inner, keys: &[ThrottleKey]) -> Result<()> {
        let now = self.clock.now();
        let rl = self.params.rate_limit;
        let wait = keys
            .iter()
            .filter_map(|k| inner.failures.get(k)?.locked_until)
            .filter_map(|until| until.duration_since(now).ok())
            .filter(|d| !d.is_zero())
            .max();
        if let Some(retry_after) = wait {
            return Err(Error::RateLimited { retry_after });
        }
        if inner.failures.len() >= MAX_THROTTLE_ENTRIES {
            inner.failures.retain(|_, f| {
                f.locked_until.is_some_and(|u| u > now)
                    || now.duration_since(f.last).unwrap_or_default() < rl.forget_after
            });
        }
        for key in keys {
            let f = inner.failures.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
            if now.duration_since(f.last).unwrap_or_default() >= rl.forget_after {
                f.count = 0;
            }
            f.count += 1;
            f.last = now;
            if f.count >= rl.free_failures {
                f.locked_until = Some(now + rl.lockout(f.count));
            }
        }
        Ok(())
    }
}

fn parse_token(token: &str) -> Option<([u8; 16], Zeroizing<[u8; 32]>)> {
    let token = token.trim();
    if token.len() != 96 {
        return None;
    }
    let mut selector = [0u8; 16];
    let mut verifier = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(&token[..32], &mut selector).ok()?;
    hex::decode_to_slice(&token[32..], verifier.as_mut()).ok()?;
    Some((selector, verifier))
}

fn hash_password(params: Argon2Params, password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|_| Error::InvalidParams("argon2"))?;
    Ok(params
        .hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| Error::InvalidParams("argon2"))?
        .to_string())
}

/// Verifies with the parameters recorded in the PHC string; the crate compares the
/// digests in constant time.
fn verify_hash(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}
