//! Browser sessions: cookies and CSRF tokens.
//!
//! Two cookies, both `HttpOnly; SameSite=Strict; Path=/` (plus `Secure` and the `__Host-`
//! prefix behind TLS): the session token from `Service::login`, and a random per-browser
//! value set on the first visit. Every form carries a CSRF token, the HMAC-SHA256 under a
//! per-process server key of both cookies, so a token is bound to this browser *and* this
//! login; it is checked in constant time on every POST before any handler runs.

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookies a request carried.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cookies {
    /// The per-browser random value.
    pub browser: Option<String>,
    /// The session token.
    pub session: Option<String>,
}

/// Cookie names; `__Host-` needs `Secure`, so it is used only then.
pub(crate) fn names(secure: bool) -> (&'static str, &'static str) {
    if secure {
        ("__Host-ehr_session", "__Host-ehr_browser")
    } else {
        ("ehr_session", "ehr_browser")
    }
}

/// Our two cookies from the `Cookie` headers; values that could not be ours are ignored.
pub(crate) fn read(headers: &HeaderMap, secure: bool) -> Cookies {
    let (session_name, browser_name) = names(secure);
    let mut cookies = Cookies::default();
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((name, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            if name == session_name {
                cookies.session = Some(v.to_owned());
            } else if name == browser_name {
                cookies.browser = Some(v.to_owned());
            }
        }
    }
    cookies
}

/// A `Set-Cookie` value; `max_age` `Some(0)` deletes the cookie, `None` lasts the browser
/// session.
pub(crate) fn set(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).expect("cookie values are hex")
}

/// A fresh random per-browser value (128 bits, hex).
pub(crate) fn new_browser_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("operating system random number generator");
    hex::encode(b)
}

/// The CSRF token for these cookies: hex HMAC-SHA256(key, browser ‖ 0 ‖ session).
pub(crate) fn csrf_token(key: &[u8; 32], cookies: &Cookies) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(b"secure-ehr csrf v1\0");
    mac.update(cookies.browser.as_deref().unwrap_or("").as_bytes());
    mac.update(b"\0");
    mac.update(cookies.session.as_deref().unwrap_or("").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `submitted` is the token for these cookies (constant time; never without the
/// browser cookie).
pub(crate) fn csrf_ok(key: &[u8; 32], cookies: &Cookies, submitted: &str) -> bool {
    if cookies.browser.is_none() {
        return false;
    }
    let expected = csrf_token(key, cookies);
    expected.len() == submitted.len() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies(browser: &str, session: Option<&str>) -> Cookies {
        Cookies {
            browser: Some(browser.into()),
            session: session.map(Into::into),
        }
    }

    #[test]
    fn csrf_token_is_bound_to_key_browser_and_session() {
        let key = [7u8; 32];
        let c = cookies("aa", Some("bb"));
        let t = csrf_token(&key, &c);
        assert!(csrf_ok(&key, &c, &t));
        assert!(!csrf_ok(&[8u8; 32], &c, &t));
        assert!(!csrf_ok(&key, &cookies("ab", Some("bb")), &t));
        assert!(!csrf_ok(&key, &cookies("aa", Some("bc")), &t));
        assert!(!csrf_ok(&key, &cookies("aa", None), &t));
        assert!(!csrf_ok(&key, &c, ""));
        assert!(!csrf_ok(&key, &c, &t[..t.len() - 1]));
        // No browser cookie: nothing is accepted, not even the token computed without one.
        let none = Cookies::default();
        assert!(!csrf_ok(&key, &none, &csrf_token(&key, &none)));
    }

    #[test]
    fn reads_only_our_hex_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; ehr_session=abc123; ehr_browser=<x>"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("ehr_browser=ff00"));
        let c = read(&h, false);
        assert_eq!(c.session.as_deref(), Some("abc123"));
        assert_eq!(c.browser.as_deref(), Some("ff00"));
        assert!(
            read(&h, true).session.is_none(),
            "secure mode wants __Host- names"
        );
    }

    #[test]
    fn cookie_attributes() {
        let c = set("ehr_session", "ab", true, Some(900));
        assert_eq!(
            c,
            "ehr_session=ab; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=900"
        );
        let c = set("ehr_session", "ab", false, None);
        assert_eq!(c, "ehr_session=ab; Path=/; HttpOnly; SameSite=Strict");
    }
}
