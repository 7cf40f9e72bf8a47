//! The crate's one error type, and the only place where errors become HTTP statuses.
//!
//! A 4xx says what was wrong with the request (which field, which rule, which role); a 5xx
//! says "internal error" and its cause goes to the log (`tracing`), never to the client.
//! Messages never carry record contents, passwords or tokens.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ehr_records::fhir::ValidationErrors;

use crate::svc;
use crate::types::{ErrorBody, FieldError};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing, of the wrong type or breaks a rule (400).
    #[error("{field}: {message}")]
    InvalidInput {
        /// The field, as named in the request (`username`, `record_id`, `body`, …).
        field: String,
        /// The rule broken.
        message: String,
    },
    /// A record failed validation; every broken field is listed (400).
    #[error("invalid record: {0}")]
    InvalidRecord(ValidationErrors),
    /// No session, or an unknown, revoked or expired one (401).
    #[error("a valid session token is required")]
    Unauthenticated,
    /// Username or password did not match (401).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Username or recovery code did not match, or the account has none (401).
    #[error("invalid username or recovery code")]
    InvalidRecovery,
    /// The account signs in with two-factor and no code was given (401).
    #[error(
        "this account signs in with two-factor: give the code from your authenticator app, or a backup code"
    )]
    TotpRequired,
    /// The two-factor code was wrong or used already (401).
    #[error("invalid authentication code")]
    InvalidTotp,
    /// The session's role may not do this, or the CSRF token is missing or wrong (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The contract refused the read: no grant, expired or revoked (403).
    #[error("{0}")]
    AccessDenied(String),
    /// No such thing (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The record, or every record of the patient, was erased with its owner's account
    /// (410): nobody reads it again.
    #[error("erased: {0} was erased with its owner's account")]
    Erased(String),
    /// The request clashes with existing state, e.g. a taken username (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The body is larger than the limit (413).
    #[error("request body larger than {} bytes", crate::MAX_BODY_BYTES)]
    PayloadTooLarge,
    /// The body is larger than this route's own limit, in bytes (413).
    #[error("request body larger than {0} bytes")]
    PayloadTooLargeFor(usize),
    /// No byte of the range asked for is in the file (416, with `Content-Range: bytes
    /// */size`).
    #[error("no byte of the range asked for is in the {size}-byte file")]
    RangeNotSatisfiable {
        /// The file's size.
        size: u64,
    },
    /// The body is not of the media type the route takes (415).
    #[error("expected a body of type {0}")]
    UnsupportedMediaType(&'static str),
    /// Too many attempts from this user or client (429).
    #[error("too many attempts; retry in {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// How long until the next attempt is allowed.
        retry_after: Duration,
    },
    /// Fewer storage or custodian nodes answer than a read or write needs (503).
    #[error("only {reachable} storage nodes are reachable, {needed} are needed")]
    NodesUnavailable {
        /// Nodes that answered.
        reachable: usize,
        /// Nodes needed.
        needed: usize,
    },
    /// Sign-ups are paused: the hour's budget for paying new accounts' gas is spent (503,
    /// with `Retry-After`).
    #[error(
        "sign-ups are paused: this hour's budget for paying new accounts' gas is spent; retry in {} s",
        retry_after.as_secs().max(1)
    )]
    FundingBudgetSpent {
        /// How long until the budget has room again.
        retry_after: Duration,
    },
    /// The record's transaction was sent but not mined yet (503): the record appears once it
    /// is; its blocks are kept until the chain decides.
    #[error("{0}")]
    UploadPending(String),
    /// The server is starting: it answers `/rpc` already and waits for its nodes before the
    /// rest (503, with `Retry-After`).
    #[error("the server is starting: it waits for its storage and custodian nodes; retry shortly")]
    Starting,
    /// Anything else: logged, and answered with "internal error" (500).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidInput`] for `field`.
    pub fn input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidInput { .. } | Self::InvalidRecord(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated
            | Self::InvalidCredentials
            | Self::InvalidRecovery
            | Self::TotpRequired
            | Self::InvalidTotp => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::AccessDenied(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Erased(_) => StatusCode::GONE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge | Self::PayloadTooLargeFor(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NodesUnavailable { .. }
            | Self::FundingBudgetSpent { .. }
            | Self::UploadPending(_)
            | Self::Starting => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code in the JSON body's `error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput { .. } => "invalid_input",
            Self::InvalidRecord(_) => "invalid_record",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRecovery => "invalid_recovery_code",
            Self::TotpRequired => "totp_required",
            Self::InvalidTotp => "invalid_totp",
            Self::Forbidden(_) => "forbidden",
            Self::AccessDenied(_) => "access_denied",
            Self::NotFound(_) => "not_found",
            Self::Erased(_) => "erased",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge | Self::PayloadTooLargeFor(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Self::RateLimited { .. } => "rate_limited",
            Self::NodesUnavailable { .. } => "nodes_unavailable",
            Self::FundingBudgetSpent { .. } => "funding_budget_spent",
            Self::UploadPending(_) => "upload_pending",
            Self::Starting => "starting",
            Self::Internal(_) => "internal",
        }
    }

    /// The field a 400 is about, if one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidInput { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Logs the cause of a 5xx (the client sees "internal error" only).
    fn log(&self) {
        if let Self::Internal(cause) = self {
            tracing::error!(error = %cause, "internal error");
        }
    }

    /// The `Retry-After` seconds of a 429.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } | Self::FundingBudgetSpent { retry_after } => {
                Some(retry_after.as_secs().max(1))
            }
            Self::Starting => Some(1),
            _ => None,
        }
    }

    /// Status, extra headers and the message for a human (the web UI); logs 5xx causes.
    pub(crate) fn into_parts(self) -> (StatusCode, Option<u64>, String) {
        self.log();
        (self.status(), self.retry_after(), self.to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let body = ErrorBody {
            error: self.code().to_owned(),
            message: self.to_string(),
            field: self.field().map(str::to_owned),
            errors: match &self {
                Self::InvalidRecord(errors) => Some(
                    errors
                        .errors()
                        .iter()
                        .map(|e| FieldError {
                            path: e.path.clone(),
                            message: e.rule.to_string(),
                        })
                        .collect(),
                ),
                _ => None,
            },
            retry_after: self.retry_after(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Self::RangeNotSatisfiable { size } = &self
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            headers.insert(header::CONTENT_RANGE, v);
        }
        if matches!(self, Self::Unauthenticated | Self::InvalidCredentials) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<svc::Error> for Error {
    fn from(e: svc::Error) -> Self {
        use svc::AccountsError as A;
        use svc::Error as E;
        match e {
            E::InvalidRecord(v) => Self::InvalidRecord(v),
            E::Accounts(A::InvalidCredentials) => Self::InvalidCredentials,
            E::Accounts(A::RateLimited { retry_after }) => Self::RateLimited { retry_after },
            E::Unauthenticated | E::Accounts(A::Unauthenticated) => Self::Unauthenticated,
            E::Forbidden(why) | E::Accounts(A::Forbidden(why)) => Self::Forbidden(why.to_string()),
            E::Accounts(A::UsernameTaken) => Self::Conflict("username already taken".into()),
            E::Accounts(A::KeyInUse) => {
                Self::Conflict("this key already belongs to an account".into())
            }
            E::Accounts(A::AdminExists) => Self::Conflict("an admin account already exists".into()),
            E::Accounts(A::InvalidUsername(why)) => Self::input("username", why),
            E::Accounts(A::InvalidPassword(why)) => Self::input("password", why),
            E::Accounts(A::InvalidRecoveryCode(why)) => Self::input("recovery_code", why),
            E::Accounts(A::InvalidRecovery) => Self::InvalidRecovery,
            E::Accounts(A::TotpRequired) => Self::TotpRequired,
            E::Accounts(A::InvalidTotp) => Self::InvalidTotp,
            E::Accounts(e @ A::TotpState(_)) => Self::Conflict(e.to_string()),
            E::Accounts(e @ A::NoEscrow) => Self::Conflict(e.to_string()),
            E::InvalidInput { field, message } => Self::input(field, message),
            E::NotFound(what) => Self::NotFound(what),
            E::AttachmentTooLarge { max } => {
                Self::PayloadTooLargeFor(usize::try_from(max).unwrap_or(usize::MAX))
            }
            E::RangeNotSatisfiable { size } => Self::RangeNotSatisfiable { size },
            E::Erased(what) => Self::Erased(what),
            E::Offer(why) => Self::input("offer", why.to_string()),
            // Its message names the record and the contract's reason.
            e @ (E::AccessDenied { .. } | E::NoAccessToPatient { .. } | E::WriteDenied { .. }) => {
                Self::AccessDenied(e.to_string())
            }
            E::NodesUnavailable { reachable, needed } => {
                Self::NodesUnavailable { reachable, needed }
            }
            E::FundingBudgetSpent { retry_after } => Self::FundingBudgetSpent { retry_after },
            e @ E::UploadPending { .. } => Self::UploadPending(e.to_string()),
            other => Self::Internal(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body(e: Error) -> (StatusCode, serde_json::Value) {
        let r = e.into_response();
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn internal_errors_say_internal_error_and_nothing_more() {
        let cause = std::io::Error::other("disk /secret/path exploded");
        let (status, b) = body(Error::Internal(Box::new(cause))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            b,
            serde_json::json!({ "error": "internal", "message": "internal error" })
        );

        let (status, b) = body(Error::NodesUnavailable {
            reachable: 2,
            needed: 3,
        })
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b["error"], "nodes_unavailable");
    }

    #[tokio::test]
    async fn every_code_has_its_status() {
        let cases = [
            (Error::input("x", "bad"), 400, "invalid_input"),
            (Error::Unauthenticated, 401, "unauthenticated"),
            (Error::InvalidCredentials, 401, "invalid_credentials"),
            (Error::InvalidRecovery, 401, "invalid_recovery_code"),
            (Error::TotpRequired, 401, "totp_required"),
            (Error::InvalidTotp, 401, "invalid_totp"),
            (Error::Forbidden("no".into()), 403, "forbidden"),
            (Error::AccessDenied("no grant".into()), 403, "access_denied"),
            (Error::NotFound("record".into()), 404, "not_found"),
            (Error::Conflict("taken".into()), 409, "conflict"),
            (Error::PayloadTooLarge, 413, "payload_too_large"),
            (
                Error::FundingBudgetSpent {
                    retry_after: Duration::from_secs(60),
                },
                503,
                "funding_budget_spent",
            ),
            (
                Error::UploadPending("not mined".into()),
                503,
                "upload_pending",
            ),
            (
                Error::UnsupportedMediaType("application/json"),
                415,
                "unsupported_media_type",
            ),
            (
                Error::RateLimited {
                    retry_after: Duration::from_millis(1500),
                },
                429,
                "rate_limited",
            ),
        ];
        for (e, status, code) in cases {
            let (s, b) = body(e).await;
            assert_eq!((s.as_u16(), b["error"].as_str().unwrap()), (status, code));
        }
        let (_, b) = body(Error::input("patient_id", "must be a number")).await;
        assert_eq!(b["field"], "patient_id");
    }
}
