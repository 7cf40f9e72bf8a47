//! Typed sessions: what signing in yields, one type per role.
//!
//! [`Service::login`](crate::Service::login) and
//! [`Service::authenticate`](crate::Service::authenticate) return a [`SignedIn`]; the
//! records operations take the role's own session type ([`PatientSession`],
//! [`ProviderSession`], [`AdminSession`]), so the role is checked once, when a `SignedIn`
//! becomes one of them, and nowhere else. Only this crate can make them.

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use ehr_accounts::{Role, Session};

use crate::{Error, Result};

/// A session whose key is unlocked: patients and providers sign their own transactions.
#[derive(Clone, Debug)]
struct Keyed {
    session: Session,
}

impl Keyed {
    fn new(session: Session) -> Result<Self> {
        session.signer().ok_or(Error::Unauthenticated)?;
        Ok(Self { session })
    }

    fn signer(&self) -> &PrivateKeySigner {
        self.session
            .signer()
            .expect("checked when the session was typed")
    }
}

/// A signed-in patient: owns records, shares them, reads their access log.
#[derive(Clone, Debug)]
pub struct PatientSession(Keyed);

/// A signed-in provider: reads what patients granted, may open break-glass access.
#[derive(Clone, Debug)]
pub struct ProviderSession(Keyed);

/// A signed-in admin: registers providers.
#[derive(Clone, Debug)]
pub struct AdminSession(Session);

/// Someone signed in, by role.
#[derive(Clone, Debug)]
pub enum SignedIn {
    /// A patient.
    Patient(PatientSession),
    /// A provider.
    Provider(ProviderSession),
    /// An admin.
    Admin(AdminSession),
}

impl SignedIn {
    pub(crate) fn new(session: Session) -> Result<Self> {
        Ok(match session.role {
            Role::Patient => Self::Patient(PatientSession(Keyed::new(session)?)),
            Role::Provider => Self::Provider(ProviderSession(Keyed::new(session)?)),
            Role::Admin => Self::Admin(AdminSession(session)),
        })
    }

    /// The account behind it.
    pub fn session(&self) -> &Session {
        match self {
            Self::Patient(p) => &p.0.session,
            Self::Provider(p) => &p.0.session,
            Self::Admin(a) => &a.0,
        }
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.session().role
    }

    /// The patient session, or [`Error::Forbidden`].
    pub fn patient(self) -> Result<PatientSession> {
        match self {
            Self::Patient(p) => Ok(p),
            _ => Err(Error::Forbidden("only patients may do this")),
        }
    }

    /// The provider session, or [`Error::Forbidden`].
    pub fn provider(self) -> Result<ProviderSession> {
        match self {
            Self::Provider(p) => Ok(p),
            _ => Err(Error::Forbidden("only providers may do this")),
        }
    }

    /// The admin session, or [`Error::Forbidden`].
    pub fn admin(self) -> Result<AdminSession> {
        match self {
            Self::Admin(a) => Ok(a),
            _ => Err(Error::Forbidden("only an admin may do this")),
        }
    }
}

impl PatientSession {
    /// The account behind it.
    pub fn session(&self) -> &Session {
        &self.0.session
    }
    /// The patient's address.
    pub fn address(&self) -> Address {
        self.0.session.address
    }
}

impl ProviderSession {
    /// The account behind it.
    pub fn session(&self) -> &Session {
        &self.0.session
    }
    /// The provider's address.
    pub fn address(&self) -> Address {
        self.0.session.address
    }
}

impl AdminSession {
    /// The account behind it.
    pub fn session(&self) -> &Session {
        &self.0
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::PatientSession {}
    impl Sealed for super::ProviderSession {}
}

/// A session that may read records: a patient (their own) or a provider (what it was
/// granted). Sealed: only the two session types are readers.
pub trait Reader: sealed::Sealed + Send + Sync {
    /// The key the reader signs `logAccess` and share requests with.
    fn signer(&self) -> &PrivateKeySigner;
}

impl Reader for PatientSession {
    fn signer(&self) -> &PrivateKeySigner {
        self.0.signer()
    }
}

impl Reader for ProviderSession {
    fn signer(&self) -> &PrivateKeySigner {
        self.0.signer()
    }
}
