//! SMART on FHIR scopes: a session mints narrower tokens for FHIR clients
//! (`POST /fhir/auth/token` with `scope=patient/Observation.rs …`), and `/fhir` enforces
//! them — a token limited to Observation cannot read a Condition.
//!
//! A scope is SMART v2 `context/Type.perms` (`context` `patient`, `user` or `system`; `Type` a
//! resource type or `*`; `perms` some of `c r u d s`, in that order) or v1 `.read` (`rs`),
//! `.write` (`cud`), `.*`. The context does not widen anything: a scoped token never has
//! more than its session's role (a patient still sees only themself). A scoped token is kept
//! here, in memory, by its SHA-256; it lives as long as its session (logging out ends it)
//! and at most its own lifetime, and is refused outside `/fhir`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// How long a scoped token lives at most.
pub const SCOPED_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// One scope: a resource type (`None`: all) and what it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Scope {
    resource_type: Option<String>,
    perms: Vec<char>,
}

/// A token's scopes (`None` in [`FhirAuth`](super::FhirAuth): the session's full rights).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scopes {
    list: Vec<Scope>,
    /// The scope string as granted (normalized: one space between scopes).
    pub text: String,
}

impl Scopes {
    /// Parses a space-separated scope string; the error names the scope that is not one.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut list = Vec::new();
        let mut kept = Vec::new();
        for item in s.split_whitespace() {
            // Identity and launch scopes grant no data here; they are accepted and dropped.
            if matches!(item, "openid" | "fhirUser" | "profile" | "offline_access")
                || item.starts_with("launch")
            {
                continue;
            }
            let bad = || format!("{item}: not a SMART scope (context/Type.perms)");
            let (context, rest) = item.split_once('/').ok_or_else(bad)?;
            if !matches!(context, "patient" | "user" | "system") {
                return Err(bad());
            }
            let (ty, perms) = rest.split_once('.').ok_or_else(bad)?;
            let perms: Vec<char> = match perms {
                "read" => vec!['r', 's'],
                "write" => vec!['c', 'u', 'd'],
                "*" => vec!['c', 'r', 'u', 'd', 's'],
                p => {
                    let chars: Vec<char> = p.chars().collect();
                    let order = "cruds";
                    let mut last = None;
                    for c in &chars {
                        let at = order.find(*c).ok_or_else(bad)?;
                        if last.is_some_and(|l| at <= l) {
                            return Err(bad());
                        }
                        last = Some(at);
                    }
                    if chars.is_empty() {
                        return Err(bad());
                    }
                    chars
                }
            };
            let resource_type = match ty {
                "*" => None,
                t if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic()) => {
                    Some(t.to_owned())
                }
                _ => return Err(bad()),
            };
            list.push(Scope {
                resource_type,
                perms,
            });
            kept.push(item);
        }
        if list.is_empty() {
            return Err("no resource scope given (e.g. patient/Observation.rs)".into());
        }
        Ok(Self {
            list,
            text: kept.join(" "),
        })
    }

    /// Whether some scope allows `perm` (`c r u d s`) on `resource_type`.
    pub fn allows(&self, resource_type: &str, perm: char) -> bool {
        self.list.iter().any(|s| {
            s.perms.contains(&perm)
                && s.resource_type
                    .as_deref()
                    .is_none_or(|t| t == resource_type)
        })
    }
}

/// A scoped token's session and scopes.
struct Scoped {
    /// The session token it narrows.
    session_token: String,
    scopes: Scopes,
    expires_at: SystemTime,
}

/// The scoped tokens minted by this process, by the SHA-256 of the token.
#[derive(Default)]
pub struct ScopedTokens {
    map: Mutex<HashMap<[u8; 32], Scoped>>,
}

impl std::fmt::Debug for ScopedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScopedTokens { .. }")
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl ScopedTokens {
    /// A new token narrowing `session_token` to `scopes`, valid for at most `ttl`.
    pub fn mint(&self, session_token: &str, scopes: Scopes, ttl: Duration) -> String {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).expect("operating system random number generator");
        let token = format!("smart-{}", hex::encode(raw));
        let now = SystemTime::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires_at > now);
        map.insert(
            digest(&token),
            Scoped {
                session_token: session_token.to_owned(),
                scopes,
                expires_at: now + ttl,
            },
        );
        token
    }

    /// The session token and scopes `token` stands for, if it is a live scoped token.
    pub fn resolve(&self, token: &str) -> Option<(String, Scopes)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&digest(token))
            .filter(|s| s.expires_at > SystemTime::now())
            .map(|s| (s.session_token.clone(), s.scopes.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_as_smart_v2_and_v1_and_allow_only_what_they_say() {
        let s = Scopes::parse("openid patient/Observation.rs launch/patient").unwrap();
        assert_eq!(s.text, "patient/Observation.rs");
        assert!(s.allows("Observation", 'r') && s.allows("Observation", 's'));
        assert!(!s.allows("Condition", 'r'));
        assert!(!s.allows("Observation", 'c'));
        let all = Scopes::parse("user/*.cruds").unwrap();
        assert!(all.allows("Condition", 'c') && all.allows("Patient", 'd'));
        let v1 = Scopes::parse("patient/*.read user/Consent.write").unwrap();
        assert!(v1.allows("Immunization", 's') && !v1.allows("Immunization", 'c'));
        assert!(v1.allows("Consent", 'c'));
        for bad in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.x",
            "clinic/Observation.r",
            "patient/Obs-ervation.r",
            "patient/Observation",
            "openid",
            "",
        ] {
            assert!(Scopes::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_scoped_token_resolves_until_it_expires() {
        let t = ScopedTokens::default();
        let s = Scopes::parse("patient/Observation.rs").unwrap();
        let live = t.mint("session-1", s.clone(), Duration::from_secs(60));
        assert_eq!(t.resolve(&live), Some(("session-1".into(), s.clone())));
        let dead = t.mint("session-1", s, Duration::ZERO);
        assert_eq!(t.resolve(&dead), None);
        assert_eq!(t.resolve("smart-unknown"), None);
    }
}
