//! Recovery codes and the provider key escrow: two ways back into an account whose password
//! is lost that keep the same key, and so the same address and every record and grant.
//!
//! - **Recovery code** (any account; every patient gets one at sign-up): 125 random bits
//!   written as 25 Crockford base32 characters in five groups (`7KQ2M-…`), shown once. The
//!   account keeps a second keystore v3 copy of its key encrypted under the code, and the
//!   code's SHA-256 (salted with the username) to refuse a wrong code before any key
//!   derivation. Using the code sets a new password and replaces the code, which is then
//!   shown once again. The server stores neither the code nor anything that opens the key
//!   without it.
//! - **Provider escrow**: a provider's key wrapped with HPKE ([`ehr_crypto::wrap`]) to an
//!   X25519 key derived from the admin's own key. Only a signed-in admin (whose key is
//!   unlocked by the admin's password) can open it, to reset the provider's password; the
//!   data directory alone opens nothing. The admin then holds what the provider holds —
//!   access the patients granted that provider, each read still logged on chain under the
//!   provider's address — and no more: nothing here reaches a patient's key.

use std::fmt;

use alloy::primitives::{Address, hex};
use alloy::signers::local::PrivateKeySigner;
use ehr_crypto::wrap::{self, PublicKey, SecretKey, Wrapped};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::keystore::{self, KeystoreFile, ScryptParams};
use crate::{Error, Result};

/// Characters in a recovery code, without the dashes.
pub const RECOVERY_CODE_CHARS: usize = 25;
/// Crockford's base32: no I, L, O or U, so a code read aloud or copied by hand survives.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const GROUP: usize = 5;

/// `n` random Crockford base32 characters: each random byte's low five bits pick one
/// (uniform; 5 bits each). Recovery codes and two-factor backup codes are made of them.
pub(crate) fn random_crockford(n: usize) -> Zeroizing<Vec<u8>> {
    let mut random = Zeroizing::new(vec![0u8; n]);
    ehr_crypto::fill_random(random.as_mut());
    Zeroizing::new(
        random
            .iter()
            .map(|b| ALPHABET[usize::from(b & 31)])
            .collect(),
    )
}

/// One typed character of a Crockford code in its canonical form: case does not matter
/// and the letters Crockford leaves out read as the digits they look like (`O` as 0, `I`
/// and `L` as 1); `None` for anything else (separators are the caller's).
pub(crate) fn crockford_char(c: u8) -> Option<u8> {
    match c.to_ascii_uppercase() {
        b'O' => Some(b'0'),
        b'I' | b'L' => Some(b'1'),
        c if ALPHABET.contains(&c) => Some(c),
        _ => None,
    }
}

/// `SHA-256(label ‖ 0 ‖ username ‖ 0 ‖ chars)`: how a code is kept, salted with its
/// account's username.
pub(crate) fn salted_digest(label: &str, username: &str, chars: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(label.as_bytes())
        .chain_update(b"\0")
        .chain_update(username.as_bytes())
        .chain_update(b"\0")
        .chain_update(chars)
        .finalize()
        .into()
}

/// A recovery code, in its canonical form `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`. Zeroized on
/// drop; `Debug` is redacted.
pub struct RecoveryCode(Zeroizing<String>);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

impl RecoveryCode {
    /// A fresh random code.
    pub(crate) fn generate() -> Self {
        // 125 bits in all.
        Self::from_compact(&random_crockford(RECOVERY_CODE_CHARS))
    }

    /// A fresh random code, for tests that need a wrong one.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn generate_for_tests() -> Self {
        Self::generate()
    }

    fn from_compact(chars: &[u8]) -> Self {
        let mut out = Zeroizing::new(String::with_capacity(RECOVERY_CODE_CHARS + 4));
        for (i, group) in chars.chunks(GROUP).enumerate() {
            if i > 0 {
                out.push('-');
            }
            out.extend(group.iter().map(|&c| char::from(c)));
        }
        Self(out)
    }

    /// Reads a code as a person types it: case, spaces and dashes do not matter, and the
    /// letters Crockford leaves out read as the digits they look like (`O` as 0, `I` and
    /// `L` as 1). Anything else is [`Error::InvalidRecoveryCode`].
    pub fn parse(input: &str) -> Result<Self> {
        let mut chars = Zeroizing::new(Vec::with_capacity(RECOVERY_CODE_CHARS));
        for c in input.bytes() {
            if matches!(c, b' ' | b'-' | b'\t') {
                continue;
            }
            let c = crockford_char(c).ok_or(Error::InvalidRecoveryCode(
                "only letters and digits (dashes and spaces are ignored)",
            ))?;
            if chars.len() == RECOVERY_CODE_CHARS {
                return Err(Error::InvalidRecoveryCode("longer than 25 characters"));
            }
            chars.push(c);
        }
        if chars.len() != RECOVERY_CODE_CHARS {
            return Err(Error::InvalidRecoveryCode("must be 25 characters"));
        }
        Ok(Self::from_compact(&chars))
    }

    /// The code as shown to the user.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The 25 characters without dashes: the keystore password.
    fn compact(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.replace('-', ""))
    }

    fn digest(&self, username: &str) -> [u8; 32] {
        salted_digest("SEHR recovery code v1", username, self.compact().as_bytes())
    }
}

/// What an account keeps for its recovery code.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Recovery {
    /// Hex SHA-256 of the code, salted with the username.
    code_hash: String,
    /// The account's key encrypted under the code (keystore v3).
    keystore: KeystoreFile,
    /// Unix seconds.
    pub(crate) created_at: u64,
}

impl Recovery {
    /// Encrypts `signer`'s key under a fresh code; returns both.
    pub(crate) fn new(
        username: &str,
        signer: &PrivateKeySigner,
        params: ScryptParams,
        created_at: u64,
    ) -> Result<(Self, RecoveryCode)> {
        let code = RecoveryCode::generate();
        let keystore = keystore::encrypt(
            signer,
            code.compact().as_bytes(),
            params,
            &mut ehr_crypto::rng(),
        )?;
        let recovery = Self {
            code_hash: hex::encode(code.digest(username)),
            keystore,
            created_at,
        };
        Ok((recovery, code))
    }

    /// Whether `code` is this account's (constant time).
    pub(crate) fn matches(&self, username: &str, code: &RecoveryCode) -> bool {
        let Ok(stored) = hex::decode(&self.code_hash) else {
            return false;
        };
        bool::from(stored.ct_eq(&code.digest(username)))
    }

    /// The key, decrypted with `code` (one key derivation).
    pub(crate) fn unlock(&self, code: &RecoveryCode) -> Result<PrivateKeySigner> {
        keystore::decrypt(&self.keystore, code.compact().as_bytes())
    }
}

// ---------------------------------------------------------------------------------------
// Provider escrow
// ---------------------------------------------------------------------------------------

const ESCROW_INFO: &[u8] = b"SEHR provider key escrow v1";

/// The admin's escrow key pair, derived from the admin's own key (so nothing more is
/// stored, and a password change or recovery of the admin keeps it).
pub(crate) fn admin_escrow_key(admin: &PrivateKeySigner) -> (SecretKey, PublicKey) {
    let secret = Zeroizing::new(admin.credential().to_bytes());
    let mut ikm = Zeroizing::new([0u8; 32]);
    ikm.copy_from_slice(
        &Sha256::new()
            .chain_update(b"SEHR admin escrow key v1\0")
            .chain_update(&secret[..])
            .finalize(),
    );
    wrap::derive_keypair(ikm.as_ref())
}

/// A provider's key, wrapped to the admin's escrow key.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Escrow {
    /// The admin whose key opens it.
    pub(crate) admin: Address,
    wrapped: Wrapped,
}

impl Escrow {
    /// Wraps `provider`'s key to `admin`'s escrow public key, bound to the provider's
    /// address.
    pub(crate) fn new(
        provider: &PrivateKeySigner,
        admin: Address,
        admin_public: &PublicKey,
    ) -> Result<Self> {
        let secret = Zeroizing::new(provider.credential().to_bytes());
        let wrapped = wrap::wrap(
            admin_public,
            ESCROW_INFO,
            provider.address().as_slice(),
            &secret[..],
            &mut ehr_crypto::rng(),
        )
        .map_err(|_| Error::Escrow("cannot wrap the key"))?;
        Ok(Self { admin, wrapped })
    }

    /// The provider's key, opened with the admin's key; it must be `provider`'s.
    pub(crate) fn open(
        &self,
        admin: &PrivateKeySigner,
        provider: Address,
    ) -> Result<PrivateKeySigner> {
        if admin.address() != self.admin {
            return Err(Error::Escrow("escrowed to another admin"));
        }
        let (secret, _) = admin_escrow_key(admin);
        let key = wrap::unwrap(&secret, ESCROW_INFO, provider.as_slice(), &self.wrapped)
            .map_err(|_| Error::Escrow("the escrowed key does not open"))?;
        let signer = PrivateKeySigner::from_slice(&key)
            .map_err(|_| Error::Escrow("the escrowed key is not a key"))?;
        if signer.address() != provider {
            return Err(Error::Escrow("the escrowed key is another account's"));
        }
        Ok(signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_25_crockford_characters_in_five_groups_and_read_back_as_typed() {
        let code = RecoveryCode::generate();
        let shown = code.expose();
        assert_eq!(shown.len(), 29);
        assert!(
            shown
                .split('-')
                .all(|g| g.len() == 5 && g.bytes().all(|c| ALPHABET.contains(&c)))
        );
        assert_ne!(shown, RecoveryCode::generate().expose(), "random");
        let typed = shown.to_ascii_lowercase().replace('-', " ");
        assert_eq!(RecoveryCode::parse(&typed).unwrap().expose(), shown);
        assert_eq!(
            RecoveryCode::parse("o1ilo-00000-11111-22222-3333x")
                .unwrap()
                .expose(),
            "01110-00000-11111-22222-3333X"
        );
        for bad in [
            "",
            "01234",
            "01234-56789-ABCDE-FGHJK-MNPQRS",
            "01234-56789-ABCDE-FGHJK-MNPQU",
        ] {
            assert!(
                matches!(RecoveryCode::parse(bad), Err(Error::InvalidRecoveryCode(_))),
                "{bad:?}"
            );
        }
        assert_eq!(format!("{code:?}"), "RecoveryCode(<redacted>)");
    }

    #[test]
    fn a_recovery_copy_opens_only_with_its_code_and_username() {
        let signer = PrivateKeySigner::random();
        let (r, code) = Recovery::new("jane", &signer, ScryptParams::LIGHT, 1).unwrap();
        assert!(r.matches("jane", &code));
        assert!(!r.matches("mark", &code), "salted with the username");
        assert!(!r.matches("jane", &RecoveryCode::generate()));
        assert_eq!(r.unlock(&code).unwrap().address(), signer.address());
        assert!(r.unlock(&RecoveryCode::generate()).is_err());
    }

    #[test]
    fn an_escrow_opens_only_with_its_admins_key_for_its_provider() {
        let (admin, other) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let provider = PrivateKeySigner::random();
        let public = admin_escrow_key(&admin).1;
        assert_eq!(public, admin_escrow_key(&admin).1, "derived, so stable");
        let e = Escrow::new(&provider, admin.address(), &public).unwrap();
        assert_eq!(
            e.open(&admin, provider.address()).unwrap().address(),
            provider.address()
        );
        assert!(e.open(&other, provider.address()).is_err(), "another admin");
        let forged = Escrow {
            admin: other.address(),
            ..e.clone()
        };
        assert!(
            forged.open(&other, provider.address()).is_err(),
            "another key"
        );
        assert!(
            e.open(&admin, other.address()).is_err(),
            "bound to the provider's address"
        );
    }
}
