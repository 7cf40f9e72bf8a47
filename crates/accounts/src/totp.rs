//! Two-factor sign-in: time-based one-time passwords (TOTP, RFC 6238: HMAC-SHA-1 over
//! 30-second steps, 6 digits, as every authenticator app makes them) and one-time backup
//! codes.
//!
//! An enrolled account keeps its TOTP secret (20 random bytes) in the accounts database —
//! the server must know it to check a code — the last step a code was accepted for (a code
//! is never accepted twice, nor an older one), and the SHA-256 of each unused backup code
//! (10 of them, 50 bits each, shown once at enrolment; each works once).

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::recovery::{crockford_char, random_crockford, salted_digest};
use crate::{Error, Result};

/// Seconds per step.
pub const PERIOD: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted on either side of now (clock drift between phone and server).
pub const SKEW: u64 = 1;
/// Backup codes made at enrolment.
pub const BACKUP_CODES: usize = 10;
/// The issuer an authenticator app shows.
pub const ISSUER: &str = "SecureEHR";

const RFC4648: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4226's HOTP with HMAC over `D`: the dynamic truncation of `HMAC(key, counter)` to
/// `digits` decimal digits.
pub fn hotp<D>(key: &[u8], counter: u64, digits: u32) -> u32
where
    D: hmac::EagerHash,
    Hmac<D>: KeyInit + Mac,
{
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let code =
        u32::from_be_bytes([h[offset], h[offset + 1], h[offset + 2], h[offset + 3]]) & 0x7fff_ffff;
    code % 10u32.pow(digits)
}

/// RFC 6238's TOTP with HMAC-SHA-1 at unix time `t`: the code of step `t / PERIOD`.
pub fn totp(key: &[u8], t: u64, digits: u32) -> u32 {
    hotp::<sha1::Sha1>(key, t / PERIOD, digits)
}

/// RFC 4648 base32 without padding, as `otpauth://` URIs carry a secret.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(char::from(RFC4648[((n >> (35 - 5 * i)) & 31) as usize]));
        }
    }
    out
}

/// Reads RFC 4648 base32 (no padding), as [`base32`] writes it; `None` on any other character.
pub fn unbase32(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = RFC4648.iter().position(|&a| a == c)? as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

/// What a user scans or types to enrol: the secret and its `otpauth://` URI.
pub struct TotpSetup {
    /// The secret, base32 (for typing into an app).
    pub secret: Zeroizing<String>,
    /// `otpauth://totp/SecureEHR:{username}?secret=…&issuer=SecureEHR` (for the QR code).
    pub uri: Zeroizing<String>,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup(<redacted>)")
    }
}

impl TotpSetup {
    pub(crate) fn new(username: &str, secret: &str) -> Self {
        let uri = format!(
            "otpauth://totp/{ISSUER}:{username}?secret={secret}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}"
        );
        Self {
            secret: Zeroizing::new(secret.to_owned()),
            uri: Zeroizing::new(uri),
        }
    }
}

/// An account's second factor, as stored.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct SecondFactor {
    /// The TOTP secret (base32) once enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<String>,
    /// A secret offered but not confirmed with a code yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<String>,
    /// The last step a code was accepted for.
    #[serde(default)]
    pub(crate) last_step: u64,
    /// Hex SHA-256 of each unused backup code.
    #[serde(default)]
    pub(crate) backup: Vec<String>,
    /// Unix seconds of the enrolment.
    #[serde(default)]
    pub(crate) enrolled_at: u64,
}

impl SecondFactor {
    pub(crate) fn enrolled(&self) -> bool {
        self.secret.is_some()
    }
}

/// A fresh secret, base32.
pub(crate) fn new_secret() -> String {
    let mut raw = Zeroizing::new([0u8; 20]);
    ehr_crypto::fill_random(raw.as_mut());
    base32(raw.as_ref())
}

/// The step `code` is valid for with `secret` at unix time `now` (within [`SKEW`]), newer
/// than `after`; `None` if it matches none.
pub(crate) fn accepted_step(secret: &str, code: &str, now: u64, after: u64) -> Option<u64> {
    let key = Zeroizing::new(unbase32(secret)?);
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let step = now / PERIOD;
    let mut found = None;
    // Every candidate step is computed and compared (no early exit on a match).
    for s in step.saturating_sub(SKEW)..=step + SKEW {
        let want = format!(
            "{:0width$}",
            hotp::<sha1::Sha1>(&key, s, DIGITS),
            width = DIGITS as usize
        );
        if bool::from(want.as_bytes().ct_eq(code.as_bytes())) && s > after {
            found = Some(s);
        }
    }
    found
}

/// Fresh backup codes (`XXXXX-XXXXX`, Crockford base32) and their stored hashes.
pub(crate) fn new_backup_codes(username: &str) -> (Vec<Zeroizing<String>>, Vec<String>) {
    (0..BACKUP_CODES)
        .map(|_| {
            let chars = random_crockford(10);
            let (a, b) = chars.split_at(5);
            let code = Zeroizing::new(format!(
                "{}-{}",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            ));
            (code, backup_hash(username, &chars))
        })
        .unzip()
}

/// A backup code as typed (case, spaces and dashes ignored; O, I, L read as 0, 1, 1),
/// hashed as stored; `None` if it cannot be one.
pub(crate) fn typed_backup_hash(username: &str, typed: &str) -> Option<String> {
    let mut chars = Zeroizing::new(Vec::with_capacity(10));
    for c in typed.bytes() {
        if !matches!(c, b' ' | b'-') {
            chars.push(crockford_char(c)?);
        }
    }
    (chars.len() == 10).then(|| backup_hash(username, &chars))
}

fn backup_hash(username: &str, chars: &[u8]) -> String {
    alloy::primitives::hex::encode(salted_digest("SEHR backup code v1", username, chars))
}

/// Checks `code` (a TOTP code or a backup code) against `f` at `now`; on success updates
/// `f` (the step used, or the backup code spent).
pub(crate) fn check(f: &mut SecondFactor, username: &str, code: &str, now: u64) -> Result<()> {
    let secret = f.secret.clone().ok_or(Error::InvalidTotp)?;
    if let Some(step) = accepted_step(&secret, code, now, f.last_step) {
        f.last_step = step;
        return Ok(());
    }
    if let Some(hash) = typed_backup_hash(username, code)
        && let Some(i) = f
            .backup
            .iter()
            .position(|h| bool::from(h.as_bytes().ct_eq(hash.as_bytes())))
    {
        f.backup.remove(i);
        return Ok(());
    }
    Err(Error::InvalidTotp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the test vectors (8 digits; SHA-1, SHA-256, SHA-512 with the
    /// seeds the RFC gives for each).
    #[test]
    fn the_rfc_6238_test_vectors() {
        let sha1 = b"12345678901234567890";
        let sha256 = b"12345678901234567890123456789012";
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234";
        let vectors: [(u64, u32, u32, u32); 6] = [
            (59, 94_287_082, 46_119_246, 90_693_936),
            (1_111_111_109, 7_081_804, 68_084_774, 25_091_201),
            (1_111_111_111, 14_050_471, 67_062_674, 99_943_326),
            (1_234_567_890, 89_005_924, 91_819_424, 93_441_116),
            (2_000_000_000, 69_279_037, 90_698_825, 38_618_901),
            (20_000_000_000, 65_353_130, 77_737_706, 47_863_826),
        ];
        for (t, one, two, five) in vectors {
            assert_eq!(totp(sha1, t, 8), one, "SHA-1 at {t}");
            assert_eq!(
                hotp::<sha2::Sha256>(sha256, t / PERIOD, 8),
                two,
                "SHA-256 at {t}"
            );
            assert_eq!(
                hotp::<sha2::Sha512>(sha512, t / PERIOD, 8),
                five,
                "SHA-512 at {t}"
            );
        }
    }

    /// RFC 4226 appendix D: HOTP values for counters 0–9.
    #[test]
    fn the_rfc_4226_test_vectors() {
        let want = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (c, w) in want.into_iter().enumerate() {
            assert_eq!(hotp::<sha1::Sha1>(b"12345678901234567890", c as u64, 6), w);
        }
    }

    #[test]
    fn base32_is_rfc_4648() {
        // RFC 4648 section 10.
        for (raw, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(raw.as_bytes()), enc);
            assert_eq!(unbase32(enc).unwrap(), raw.as_bytes());
        }
        assert_eq!(new_secret().len(), 32);
    }

    #[test]
    fn a_code_is_taken_once_within_the_skew_and_backup_codes_once() {
        let secret = new_secret();
        let key = unbase32(&secret).unwrap();
        let now = 1_800_000_000;
        let code = |t: u64| format!("{:06}", totp(&key, t, 6));
        let mut f = SecondFactor {
            secret: Some(secret.clone()),
            ..Default::default()
        };
        assert!(
            check(&mut f, "ann", &code(now - PERIOD), now).is_ok(),
            "one step behind"
        );
        assert!(
            check(&mut f, "ann", &code(now - PERIOD), now).is_err(),
            "not twice"
        );
        assert!(
            check(&mut f, "ann", &code(now - 2 * PERIOD), now).is_err(),
            "not older"
        );
        assert!(check(&mut f, "ann", &code(now), now).is_ok());
        assert!(
            check(&mut f, "ann", &code(now + 3 * PERIOD), now).is_err(),
            "beyond the skew"
        );
        assert!(check(&mut f, "ann", "12345", now).is_err());
        let (codes, hashes) = new_backup_codes("ann");
        f.backup = hashes;
        let typed = codes[3].to_ascii_lowercase().replace('-', " ");
        assert!(check(&mut f, "ann", &typed, now).is_ok());
        assert!(check(&mut f, "ann", &codes[3], now).is_err(), "spent");
        assert_eq!(f.backup.len(), BACKUP_CODES - 1);
        assert!(
            check(&mut f, "bob", &codes[4], now).is_err(),
            "another account's"
        );
    }
}
