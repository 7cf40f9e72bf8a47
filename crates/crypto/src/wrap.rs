//! Key wrapping with HPKE (RFC 9180), base mode, single shot.
//!
//! Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM — the suite of
//! RFC 9180 appendix A.1, so the published vectors test it byte for byte. It sends a
//! small secret (a key share) to exactly one recipient (a custodian or a reader); the
//! `info` string and the associated data bind it to its context, see [`share_info`].
//!
//! Key pairs come from the `hpke` crate (`DeriveKeyPair`); sealing and opening are
//! [`crate::dhkem`], which produces the same bytes faster.

use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, Serializable};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::dispersal::KeyShare;
use crate::seal::RecordContext;
use crate::{Error, Result};

type Kem = X25519HkdfSha256;

/// The HPKE suite name, recorded next to wrapped keys.
pub const SUITE: &str = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM";

/// A recipient's X25519 private key (zeroized on drop by `hpke`; never printed), with its
/// public key.
#[derive(Clone)]
pub struct SecretKey(<Kem as hpke::Kem>::PrivateKey, PublicKey);

/// A recipient's X25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// The 32 private key bytes, for storage in a key file. Handle with care.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    /// Reads a private key written by [`SecretKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let sk =
            <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes).map_err(|_| Error::InvalidKey)?;
        let pk = Kem::sk_to_pk(&sk);
        Ok(Self(sk, PublicKey(to_array(&pk.to_bytes()))))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        self.1
    }
}

fn to_array(b: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    a.copy_from_slice(b);
    a
}

/// A fresh key pair.
pub fn generate_keypair<R: CryptoRng + ?Sized>(rng: &mut R) -> (SecretKey, PublicKey) {
    let (sk, pk) = Kem::gen_keypair_with_rng(&mut RngRef(rng));
    let pk = PublicKey(to_array(&pk.to_bytes()));
    (SecretKey(sk, pk), pk)
}

/// The RFC 9180 `DeriveKeyPair(ikm)`: a key pair from at least 32 bytes of key material.
pub fn derive_keypair(ikm: &[u8]) -> (SecretKey, PublicKey) {
    let (sk, pk) = Kem::derive_keypair(ikm);
    let pk = PublicKey(to_array(&pk.to_bytes()));
    (SecretKey(sk, pk), pk)
}

/// A message wrapped to one recipient: the encapsulated key and the AEAD ciphertext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wrapped {
    /// The sender's ephemeral public key (`enc`).
    pub enc: [u8; 32],
    /// Ciphertext with its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// Lets `hpke` draw from a caller's `?Sized` RNG.
struct RngRef<'a, R: ?Sized>(&'a mut R);

impl<R: CryptoRng + ?Sized> rand_core::TryRng for RngRef<'_, R> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl<R: CryptoRng + ?Sized> rand_core::TryCryptoRng for RngRef<'_, R> {}

/// HPKE base-mode single-shot seal of `plaintext` to `recipient`.
pub fn wrap<R: CryptoRng + ?Sized>(
    recipient: &PublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Wrapped> {
    // The ephemeral key pair exactly as `hpke` makes it: DeriveKeyPair(32 random bytes).
    let (eph, enc) = generate_keypair(rng);
    let ciphertext =
        crate::dhkem::seal(&recipient.0, &eph.to_bytes(), &enc.0, info, aad, plaintext)
            .map_err(|_| Error::InvalidKey)?;
    Ok(Wrapped {
        enc: enc.0,
        ciphertext,
    })
}

/// HPKE base-mode single-shot open; fails opaquely on any mismatch.
pub fn unwrap(
    recipient: &SecretKey,
    info: &[u8],
    aad: &[u8],
    wrapped: &Wrapped,
) -> Result<Zeroizing<Vec<u8>>> {
    crate::dhkem::open(
        &recipient.to_bytes(),
        &recipient.1.0,
        &wrapped.enc,
        info,
        aad,
        &wrapped.ciphertext,
    )
}

/// The HPKE `info` for key share `x` of a record version:
/// `"SEHR key share v1" || associated_data(ctx) || x`.
///
/// A wrapped share therefore opens only for the record, version and share index it
/// was made for; callers put the request context (e.g. the reader's address and a
/// nonce) in the associated data.
pub fn share_info(ctx: &RecordContext, x: u8) -> Vec<u8> {
    let mut info = b"SEHR key share v1".to_vec();
    info.extend_from_slice(&ctx.associated_data());
    info.push(x);
    info
}

/// Wraps key share `share` of the record version `ctx` to one custodian or reader.
///
/// The share's x coordinate and the record context go into the HPKE `info`; `aad`
/// carries whatever the exchange must also bind (e.g. the request's reader, nonce and
/// expiry).
pub fn wrap_key_share<R: CryptoRng + ?Sized>(
    recipient: &PublicKey,
    ctx: &RecordContext,
    share: &KeyShare,
    aad: &[u8],
    rng: &mut R,
) -> Result<Wrapped> {
    wrap(recipient, &share_info(ctx, share.x), aad, &share.share, rng)
}

/// Unwraps key share `x` of the record version `ctx`; fails opaquely unless it was
/// wrapped to this key for exactly that share, context and `aad`.
pub fn unwrap_key_share(
    recipient: &SecretKey,
    ctx: &RecordContext,
    x: u8,
    aad: &[u8],
    wrapped: &Wrapped,
) -> Result<KeyShare> {
    let plain = unwrap(recipient, &share_info(ctx, x), aad, wrapped)?;
    let share: [u8; 32] = plain.as_slice().try_into().map_err(|_| Error::Wrap)?;
    Ok(KeyShare { x, share })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// An RNG that hands out fixed bytes: the RFC's `ikmE`.
    struct Replay(Vec<u8>);
    impl rand_core::TryRng for Replay {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            unreachable!()
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            unreachable!()
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            let rest = self.0.split_off(dst.len());
            dst.copy_from_slice(&self.0);
            self.0 = rest;
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Replay {}

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 9180 appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM,
    /// Base mode, sequence number 0. <https://www.rfc-editor.org/rfc/rfc9180#appendix-A.1.1>
    #[test]
    fn rfc9180_a_1_1_base_mode() {
        let info = h("4f6465206f6e2061204772656369616e2055726e");
        let ikm_e = h("7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234");
        let pk_em = h("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431");
        let sk_em = h("52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736");
        let ikm_r = h("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037");
        let pk_rm = h("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d");
        let sk_rm = h("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8");
        let enc = pk_em.clone();
        let pt = h("4265617574792069732074727574682c20747275746820626561757479");
        let aad = h("436f756e742d30");
        let ct = h(
            "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
        );

        // DeriveKeyPair for both parties. `hpke` stores X25519 scalars clamped
        // (RFC 7748 §5), which X25519 applies at use anyway; the RFC prints them
        // unclamped, so compare against the clamped RFC values.
        let clamp = |mut s: Vec<u8>| {
            s[0] &= 248;
            s[31] &= 127;
            s[31] |= 64;
            s
        };
        let (sk_e, pk_e) = derive_keypair(&ikm_e);
        assert_eq!(sk_e.to_bytes().as_slice(), clamp(sk_em.clone()).as_slice());
        assert_eq!(pk_e.0.as_slice(), pk_em.as_slice());
        let (sk_r, pk_r) = derive_keypair(&ikm_r);
        assert_eq!(sk_r.to_bytes().as_slice(), clamp(sk_rm.clone()).as_slice());
        assert_eq!(pk_r.0.as_slice(), pk_rm.as_slice());
        assert_eq!(sk_r.public_key(), pk_r);

        // Sender: the ephemeral key is DeriveKeyPair(random 32 bytes) = ikmE.
        let wrapped = wrap(&pk_r, &info, &aad, &pt, &mut Replay(ikm_e.clone())).unwrap();
        assert_eq!(wrapped.enc.as_slice(), enc.as_slice());
        assert_eq!(wrapped.ciphertext, ct);

        // Receiver opens the RFC's ciphertext.
        let given = Wrapped {
            enc: enc.clone().try_into().unwrap(),
            ciphertext: ct.clone(),
        };
        assert_eq!(unwrap(&sk_r, &info, &aad, &given).unwrap().as_slice(), pt);

        // Another info or aad fails.
        assert!(matches!(
            unwrap(&sk_r, b"other", &aad, &given),
            Err(Error::Wrap)
        ));
        assert!(unwrap(&sk_r, &info, b"Count-1", &given).is_err());
        let restored = SecretKey::from_bytes(&sk_rm).unwrap();
        assert_eq!(restored.public_key(), pk_r);
    }

    #[test]
    fn roundtrip_and_binding() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (sk, pk) = generate_keypair(&mut rng);
        let (other_sk, _) = generate_keypair(&mut rng);
        let ctx = RecordContext {
            patient: [1; 20],
            record_id: [2; 32],
            version: 1,
        };
        let info = share_info(&ctx, 3);
        let w = wrap(&pk, &info, b"req", b"share bytes", &mut rng).unwrap();
        assert_eq!(
            unwrap(&sk, &info, b"req", &w).unwrap().as_slice(),
            b"share bytes"
        );
        assert!(unwrap(&other_sk, &info, b"req", &w).is_err());
        assert!(unwrap(&sk, &share_info(&ctx, 4), b"req", &w).is_err());
        let mut later = ctx;
        later.version = 2;
        assert!(unwrap(&sk, &share_info(&later, 3), b"req", &w).is_err());
        assert_eq!(format!("{sk:?}"), "SecretKey(<redacted>)");
        assert!(SecretKey::from_bytes(&[0; 5]).is_err());
    }

    #[test]
    fn key_share_wrapping_and_serde() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let (sk, pk) = generate_keypair(&mut rng);
        let ctx = RecordContext {
            patient: [3; 20],
            record_id: [4; 32],
            version: 7,
        };
        let t = crate::Threshold::new(2, 3).unwrap();
        let d = crate::dispersal::disperse(t, &ctx, b"x".to_vec(), &mut rng).unwrap();
        let share = &d.key_shares[1];
        let w = wrap_key_share(&pk, &ctx, share, b"reader+nonce", &mut rng).unwrap();
        // Wrapped shares and manifests travel as JSON (or any serde format).
        let json = serde_json::to_string(&w).unwrap();
        let w: Wrapped = serde_json::from_str(&json).unwrap();
        let back = unwrap_key_share(&sk, &ctx, 2, b"reader+nonce", &w).unwrap();
        assert!(back == *share);
        assert!(unwrap_key_share(&sk, &ctx, 3, b"reader+nonce", &w).is_err());
        assert!(unwrap_key_share(&sk, &ctx, 2, b"other", &w).is_err());
        let m = serde_json::to_string(&d.manifest).unwrap();
        assert_eq!(
            serde_json::from_str::<crate::Manifest>(&m).unwrap(),
            d.manifest
        );
    }
}
