//! Ethereum keys at rest: keystore v3 files (Web3 Secret Storage, the geth/MetaMask format).
//!
//! Every user signs chain transactions and custodian requests with their own secp256k1
//! key. The key is kept encrypted under the user's password in the format every Ethereum
//! wallet reads, so a user can export it and take it elsewhere: scrypt (or, on import,
//! PBKDF2-HMAC-SHA256) derives 32 bytes from the password; the first 16 are the
//! AES-128-CTR key, and `keccak256(dk[16..32] ‖ ciphertext)` is the MAC that tells a wrong
//! password from a right one before anything is decrypted.
//!
//! Why not `alloy-signer-local`'s `keystore` feature (the `eth-keystore` crate): it fixes
//! scrypt at n = 2^13 and works only on file paths. Here the cost is a parameter
//! ([`ScryptParams::STANDARD`] is geth's n = 2^18 for real files, tests pass a cheap one)
//! and files live in memory, inside the crash-safe accounts file. It also reads the
//! published test vector, whose r = 1, n = 2^18 the RustCrypto `scrypt` crate accepts
//! only from 0.12 on.

use std::fmt;

use aes::Aes128;
use alloy::primitives::{Address, hex, keccak256};
use alloy::signers::local::PrivateKeySigner;
use ctr::cipher::{KeyIvInit, StreamCipher};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{Error, Result};

type Aes128Ctr = ctr::Ctr128BE<Aes128>;

/// Largest scrypt memory cost (128·r·n bytes) accepted when reading a file: 256 MiB, what
/// [`ScryptParams::STANDARD`] uses. A file asking for more is refused rather than run.
pub const MAX_SCRYPT_MEMORY: u64 = 256 << 20;
/// Largest scrypt `p` accepted when reading a file.
pub const MAX_SCRYPT_P: u32 = 16;
/// Largest PBKDF2 iteration count accepted when reading a file.
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// scrypt cost for new keystores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScryptParams {
    /// log2 of the CPU/memory cost `n`.
    pub log_n: u8,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl ScryptParams {
    /// geth's standard cost (n = 2^18, r = 8, p = 1): 256 MiB and about a second per
    /// derivation. Use this for every real file.
    pub const STANDARD: Self = Self {
        log_n: 18,
        r: 8,
        p: 1,
    };

    /// geth's "light" cost (n = 2^12, r = 8, p = 6): 4 MiB. For tests and constrained
    /// devices only.
    pub const LIGHT: Self = Self {
        log_n: 12,
        r: 8,
        p: 6,
    };

    pub(crate) fn to_scrypt(self) -> Result<scrypt::Params> {
        // In u128 so that no r and log_n can overflow it.
        let memory = (128 * u128::from(self.r)) << self.log_n.min(64);
        if self.log_n == 0
            || self.log_n > 32
            || memory > u128::from(MAX_SCRYPT_MEMORY)
            || self.p > MAX_SCRYPT_P
        {
            return Err(Error::InvalidParams("scrypt"));
        }
        scrypt::Params::new(self.log_n, self.r, self.p).map_err(|_| Error::InvalidParams("scrypt"))
    }
}

/// A keystore v3 file, as JSON.
///
/// Holds only ciphertext, so it can be exported; `Debug` still shows only the id and
/// address.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct KeystoreFile {
    /// Always 3.
    pub version: u32,
    /// A random UUID naming the file.
    pub id: String,
    /// The key's address, lowercase hex without `0x` (optional in the standard; geth
    /// writes it and so do we).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Cipher, KDF and MAC. Some wallets spell the key `Crypto`.
    #[serde(alias = "Crypto")]
    pub crypto: CryptoJson,
}

/// The `crypto` section of a keystore v3 file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CryptoJson {
    /// `aes-128-ctr`.
    pub cipher: String,
    /// The cipher's IV.
    pub cipherparams: CipherParams,
    /// Hex ciphertext of the 32-byte private key.
    pub ciphertext: String,
    /// `scrypt` or `pbkdf2`.
    pub kdf: String,
    /// The KDF's parameters (their shape depends on `kdf`).
    pub kdfparams: Value,
    /// Hex `keccak256(dk[16..32] ‖ ciphertext)`.
    pub mac: String,
}

/// `crypto.cipherparams`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CipherParams {
    /// Hex 16-byte IV.
    pub iv: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptKdf {
    dklen: u32,
    n: u64,
    r: u32,
    p: u32,
    salt: String,
}

#[derive(Deserialize)]
struct Pbkdf2Kdf {
    c: u32,
    dklen: u32,
    prf: String,
    salt: String,
}

impl fmt::Debug for KeystoreFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoreFile")
            .field("id", &self.id)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn format_err(what: &str) -> Error {
    Error::KeystoreFormat(what.to_owned())
}

fn unhex(s: &str, what: &str) -> Result<Vec<u8>> {
    hex::decode(s).map_err(|_| format_err(&format!("{what} is not hex")))
}

impl KeystoreFile {
    /// Parses a keystore file's JSON (structure only; see [`decrypt`]).
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| format_err(&format!("not keystore JSON ({e})")))
    }

    /// The file as pretty JSON, ready to save as `UTC--…--address.json` or import into a
    /// wallet.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a keystore always serializes")
    }

    /// The address the file claims (checked against the key by [`decrypt`]).
    pub fn address(&self) -> Option<Address> {
        self.address.as_deref().and_then(|a| {
            hex::decode(a)
                .ok()
                .filter(|b| b.len() == 20)
                .map(|b| Address::from_slice(&b))
        })
    }
}

/// A fresh random key and its keystore file encrypted under `password`.
pub fn generate<R: CryptoRng + ?Sized>(
    password: &[u8],
    params: ScryptParams,
    rng: &mut R,
) -> Result<(PrivateKeySigner, KeystoreFile)> {
    let signer = loop {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        // Fails only for 0 or ≥ the curve order: probability ~2^-128.
        if let Ok(s) = PrivateKeySigner::from_slice(secret.as_ref()) {
            break s;
        }
    };
    let file = encrypt(&signer, password, params, rng)?;
    Ok((signer, file))
}

/// Encrypts `signer`'s key under `password` with a fresh salt, IV and id.
pub fn encrypt<R: CryptoRng + ?Sized>(
    signer: &PrivateKeySigner,
    password: &[u8],
    params: ScryptParams,
    rng: &mut R,
) -> Result<KeystoreFile> {
    let sp = params.to_scrypt()?;
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    let mut uuid = [0u8; 16];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut iv);
    rng.fill_bytes(&mut uuid);

    let mut dk = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, &salt, &sp, dk.as_mut())
        .map_err(|_| Error::InvalidParams("scrypt"))?;

    let mut buf = Zeroizing::new([0u8; 32]);
    let secret = Zeroizing::new(signer.credential().to_bytes());
    buf.copy_from_slice(&secret);
    aes_ctr(&dk[..16], &iv, buf.as_mut())?;
    let ciphertext = *buf;
    let mac = mac(&dk, &ciphertext);

    // RFC 4122 version 4 (random) UUID.
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let u = hex::encode(uuid);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &u[0..8],
        &u[8..12],
        &u[12..16],
        &u[16..20],
        &u[20..32]
    );

    let kdfparams = serde_json::to_value(ScryptKdf {
        dklen: 32,
        n: 1u64 << params.log_n,
        r: params.r,
        p: params.p,
        salt: hex::encode(salt),
    })
    .expect("kdf params serialize");
    Ok(KeystoreFile {
        version: 3,
        id,
        address: Some(hex::encode(signer.address())),
        crypto: CryptoJson {
            cipher: "aes-128-ctr".into(),
            cipherparams: CipherParams {
                iv: hex::encode(iv),
            },
            ciphertext: hex::encode(ciphertext),
            kdf: "scrypt".into(),
            kdfparams,
            mac: hex::encode(mac),
        },
    })
}

/// Decrypts a keystore file. A wrong password is [`Error::KeystoreMac`] and reveals nothing
/// else; a file this crate cannot read is [`Error::KeystoreFormat`].
pub fn decrypt(file: &KeystoreFile, password: &[u8]) -> Result<PrivateKeySigner> {
    if file.version != 3 {
        return Err(format_err("only version 3 is supported"));
    }
    let c = &file.crypto;
    if c.cipher != "aes-128-ctr" {
        return Err(format_err("only the aes-128-ctr cipher is supported"));
    }
    let iv = unhex(&c.cipherparams.iv, "iv")?;
    if iv.len() != 16 {
        return Err(format_err("iv is not 16 bytes"));
    }
    let ciphertext = unhex(&c.ciphertext, "ciphertext")?;
    if ciphertext.len() != 32 {
        return Err(format_err("ciphertext is not 32 bytes"));
    }
    let expected_mac = unhex(&c.mac, "mac")?;
    if expected_mac.len() != 32 {
        return Err(format_err("mac is not 32 bytes"));
    }

    let mut dk = Zeroizing::new([0u8; 32]);
    match c.kdf.as_str() {
        "scrypt" => {
            let k: ScryptKdf = serde_json::from_value(c.kdfparams.clone())
                .map_err(|_| format_err("bad scrypt kdfparams"))?;
            if k.dklen != 32 {
                return Err(format_err("dklen must be 32"));
            }
            if !k.n.is_power_of_two() || k.n < 2 {
                return Err(format_err("scrypt n is not a power of two"));
            }
            let params = ScryptParams {
                log_n: k.n.trailing_zeros() as u8,
                r: k.r,
                p: k.p,
            }
            .to_scrypt()
            .map_err(|_| format_err("scrypt parameters out of the accepted range"))?;
            let salt = unhex(&k.salt, "salt")?;
            scrypt::scrypt(password, &salt, &params, dk.as_mut())
                .map_err(|_| format_err("scrypt failed"))?;
        }
        "pbkdf2" => {
            let k: Pbkdf2Kdf = serde_json::from_value(c.kdfparams.clone())
                .map_err(|_| format_err("bad pbkdf2 kdfparams"))?;
            if k.dklen != 32 {
                return Err(format_err("dklen must be 32"));
            }
            if k.prf != "hmac-sha256" {
                return Err(format_err("only the hmac-sha256 prf is supported"));
            }
            if k.c == 0 || k.c > MAX_PBKDF2_ROUNDS {
                return Err(format_err(
                    "pbkdf2 iteration count out of the accepted range",
                ));
            }
            let salt = unhex(&k.salt, "salt")?;
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, &salt, k.c, dk.as_mut());
        }
        _ => return Err(format_err("only the scrypt and pbkdf2 KDFs are supported")),
    }

    if !bool::from(mac(&dk, &ciphertext).ct_eq(&expected_mac)) {
        return Err(Error::KeystoreMac);
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&ciphertext);
    aes_ctr(&dk[..16], &iv, secret.as_mut())?;
    let signer = PrivateKeySigner::from_slice(secret.as_ref())
        .map_err(|_| format_err("the decrypted key is not a valid secp256k1 key"))?;
    if file.address.is_some() && file.address() != Some(signer.address()) {
        return Err(format_err("address does not match the key"));
    }
    Ok(signer)
}

fn mac(dk: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    let mut input = Vec::with_capacity(16 + ciphertext.len());
    input.extend_from_slice(&dk[16..32]);
    input.extend_from_slice(ciphertext);
    keccak256(&input).0
}

fn aes_ctr(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<()> {
    let mut cipher =
        Aes128Ctr::new_from_slices(key, iv).map_err(|_| format_err("bad key or iv length"))?;
    cipher.apply_keystream(buf);
    Ok(())
}
