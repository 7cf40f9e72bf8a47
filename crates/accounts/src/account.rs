//! Roles, one stored account, and the rules for usernames and passwords.

use std::fmt;

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::keystore::KeystoreFile;
use crate::recovery::{Escrow, Recovery};
use crate::*;

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
pub(crate) struct Account {
    pub(crate) username: String,
    pub(crate) role: Role,
    pub(crate) address: Address,
    /// Argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub(crate) password_hash: String,
    /// The user's key, encrypted under their password.
    pub(crate) keystore: KeystoreFile,
    /// Unix seconds.
    pub(crate) created_at: u64,
    /// Set by the admin: the account may not log in (providers: also deregistered on
    /// chain). Absent in files written before it existed.
    #[serde(default)]
    pub(crate) disabled: bool,
    /// A second copy of the key under the account's recovery code (absent: none made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) recovery: Option<Recovery>,
    /// Providers: the key wrapped to the admin's escrow key, for a password reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) escrow: Option<Escrow>,
    /// The admin: its escrow public key, which providers' keys are wrapped to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) escrow_public: Option<ehr_crypto::PublicKey>,
    /// Two-factor sign-in (TOTP and backup codes), once enrolled.
    #[serde(default)]
    pub(crate) second_factor: crate::totp::SecondFactor,
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
    pub(crate) fn info(&self) -> AccountInfo {
        AccountInfo {
            username: self.username.clone(),
            role: self.role,
            address: self.address,
            created_at: self.created_at,
            disabled: self.disabled,
            recovery_created_at: self.recovery.as_ref().map(|r| r.created_at),
            escrowed: self.escrow.is_some(),
            two_factor: self.second_factor.enrolled(),
            backup_codes_left: self.second_factor.backup.len(),
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
    /// Disabled by the admin: no logins.
    pub disabled: bool,
    /// When the current recovery code was made (unix seconds); `None`: the account has
    /// none.
    pub recovery_created_at: Option<u64>,
    /// Providers: whether the key is escrowed to the admin (so the admin can reset the
    /// password).
    pub escrowed: bool,
    /// Two-factor sign-in is on: a login needs a code from the authenticator app (or a
    /// backup code).
    pub two_factor: bool,
    /// Unused backup codes.
    pub backup_codes_left: usize,
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

pub(crate) fn check_password(password: &str) -> Result<()> {
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
