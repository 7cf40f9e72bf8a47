//! Sessions and their bearer tokens: a random selector and a verifier kept only hashed.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use alloy::primitives::{Address, hex};
use alloy::signers::local::PrivateKeySigner;
use zeroize::Zeroizing;

use crate::account::*;

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
    /// When the user signed in before this session (unix seconds); `None` on the first.
    pub previous_visit: Option<u64>,
    /// The user's key, unlocked at login for the session's transactions and requests.
    pub(crate) key: SessionKey,
}

impl Session {
    /// The user's signing key, if the session was opened with
    /// [`login`](crate::AccountStore::login) (always, outside tests).
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
pub struct Token(pub(crate) Zeroizing<String>);

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

pub(crate) struct SessionEntry {
    pub(crate) verifier_hash: [u8; 32],
    pub(crate) session: Session,
}

pub(crate) fn parse_token(token: &str) -> Option<([u8; 16], Zeroizing<[u8; 32]>)> {
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
