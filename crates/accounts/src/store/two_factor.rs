//! Two-factor enrolment and its removal (the codes themselves: [`crate::totp`]).

use zeroize::Zeroizing;

use super::AccountStore;
use crate::totp::{self, TotpSetup};
use crate::{Error, Result, Session};

impl AccountStore {
    /// Starts two-factor enrolment for the session user: a fresh secret (kept pending
    /// until [`confirm_totp`](Self::confirm_totp)), to scan or type into an authenticator
    /// app. Starting again replaces a pending secret; an enrolled account must turn it off
    /// first.
    pub fn begin_totp(&self, session: &Session) -> Result<TotpSetup> {
        let secret = totp::new_secret();
        let stored = secret.clone();
        self.update(&session.username, |a| {
            if a.second_factor.enrolled() {
                return Err(Error::TotpState("already on (turn it off first)"));
            }
            a.second_factor.pending = Some(stored);
            Ok(())
        })?
        .ok_or(Error::Unauthenticated)?;
        Ok(TotpSetup::new(&session.username, &secret))
    }

    /// The secret offered by [`begin_totp`](Self::begin_totp) and not confirmed yet.
    pub fn pending_totp(&self, session: &Session) -> Option<TotpSetup> {
        let a = self.account(&session.username)?;
        let secret = a.second_factor.pending?;
        Some(TotpSetup::new(&a.username, &secret))
    }

    /// Finishes enrolment with a code from the app (throttled like a login): two-factor is
    /// on from now, and the backup codes are returned, to be shown once.
    pub fn confirm_totp(
        &self,
        session: &Session,
        code: &str,
        client: &str,
    ) -> Result<Vec<Zeroizing<String>>> {
        let rl = self.params.rate_limit;
        self.lock()
            .throttle
            .charge(self.clock.now(), rl, Some(&session.username), client)?;
        let now = ehr_primitives::unix_secs(self.clock.now());
        let (codes, hashes) = totp::new_backup_codes(&session.username);
        self.update(&session.username, |a| {
            let f = &mut a.second_factor;
            let pending = f
                .pending
                .clone()
                .ok_or(Error::TotpState("no set-up started"))?;
            let step = totp::accepted_step(&pending, code, now, 0).ok_or(Error::InvalidTotp)?;
            *f = totp::SecondFactor {
                secret: Some(pending),
                pending: None,
                last_step: step,
                backup: hashes,
                enrolled_at: now,
            };
            Ok(())
        })?
        .ok_or(Error::Unauthenticated)?;
        self.lock().throttle.refund(rl, &session.username, client);
        Ok(codes)
    }

    /// Turns two-factor off: the password and a current code (or a backup code) are both
    /// needed, each checked as a login checks them.
    pub fn disable_totp(
        &self,
        session: &Session,
        password: &str,
        code: &str,
        client: &str,
    ) -> Result<()> {
        let (account, _) = self.unlock(&session.username, password, client, Some(Some(code)))?;
        if !account.second_factor.enrolled() {
            return Err(Error::TotpState("not on"));
        }
        self.update(&account.username, |a| {
            a.second_factor = Default::default();
            Ok(())
        })?
        .ok_or(Error::Unauthenticated)?;
        Ok(())
    }
}
