//! Argon2id password hashes (PHC strings).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::params::*;
use crate::*;

pub(crate) fn hash_password(params: Argon2Params, password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    ehr_crypto::fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|_| Error::InvalidParams("argon2"))?;
    Ok(params
        .hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| Error::InvalidParams("argon2"))?
        .to_string())
}

/// Verifies with the parameters recorded in the PHC string; the crate compares the
/// digests in constant time.
pub(crate) fn verify_hash(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}
