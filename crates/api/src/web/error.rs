//! [`PageError`], what a page handler fails with, and the one place it becomes a response:
//! the way to the sign-in page, a refusal, or a page saying what went wrong. Form errors are
//! picked out first by [`form_errors`], so that the handler shows its form again with each
//! error next to its field.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ehr_records::fhir::ValidationErrors;

use super::pages::{self, Ctx, FieldErrors};
use super::{html, see_other};
use crate::error::Error;
use crate::svc::{self, Role};

/// A page handler's result: handlers `?` their way through and [`PageError`]'s
/// [`IntoResponse`] answers.
pub(super) type PageResult<T = Response> = Result<T, PageError>;

/// What a page handler can fail with. A variant with a message page of its own displays as
/// that page's text.
#[derive(Debug, thiserror::Error)]
pub(super) enum PageError {
    /// No session, on a page for this role: the way to its sign-in page.
    #[error("a {0} must sign in first")]
    SignIn(Role),
    /// Signed in, but not with the page's role (403).
    #[error("This page is for a {page}; you are signed in as a {session}.")]
    WrongRole {
        /// The page's role.
        page: Role,
        /// The session's.
        session: Role,
    },
    /// A form body over [`crate::MAX_BODY_BYTES`] (413).
    #[error("The form was too large.")]
    TooLarge,
    /// A POST whose CSRF token is missing or wrong (403): nothing was changed.
    #[error(
        "This form has expired or came from another site, so nothing was changed. Go back, reload the page and try again."
    )]
    FormExpired,
    /// No such page (404).
    #[error("There is no such page.")]
    NotFound,
    /// A records-service call failed; the variant, not its message, says which form field
    /// it is about, if one.
    #[error(transparent)]
    Service(#[from] svc::Error),
    /// A check of the request failed (a bad number, a form's own checks), as the JSON API
    /// says it.
    #[error(transparent)]
    Request(#[from] Error),
}

impl PageError {
    /// The seconds until a rate-limited request may be tried again, for `Retry-After`.
    pub(super) fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Service(svc::Error::Accounts(svc::AccountsError::RateLimited {
                retry_after,
            }))
            | Self::Request(Error::RateLimited { retry_after }) => {
                Some(retry_after.as_secs().max(1))
            }
            _ => None,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match self {
            Self::SignIn(role) => {
                return see_other(match role {
                    Role::Patient => "/patients",
                    Role::Provider | Role::Admin => "/providers/login",
                });
            }
            Self::Service(e) => return failure(e.into()),
            Self::Request(e) => return failure(e),
            Self::WrongRole { .. } => (StatusCode::FORBIDDEN, "Not allowed"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Too large"),
            Self::FormExpired => (StatusCode::FORBIDDEN, "Form expired"),
            Self::NotFound => (StatusCode::NOT_FOUND, "Not found"),
        };
        message(status, title, self.to_string())
    }
}

/// The page for a failed call that is not a form error; an expired session goes home.
fn failure(e: Error) -> Response {
    if matches!(e, Error::Unauthenticated) {
        return see_other("/");
    }
    let (status, retry, text) = e.into_parts();
    let title = if status.is_server_error() {
        "Something went wrong"
    } else {
        "Request refused"
    };
    let mut r = message(status, title, text);
    if let Some(secs) = retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// A message page still to be rendered: the page shows who is signed in, which only the
/// guard knows, so [`IntoResponse`] leaves this for [`render`] (as docs.rs renders its
/// templates in a layer).
#[derive(Clone)]
struct Message {
    title: &'static str,
    text: String,
}

fn message(status: StatusCode, title: &'static str, text: String) -> Response {
    let mut r = status.into_response();
    r.extensions_mut().insert(Message { title, text });
    r
}

/// Renders the message page an error response left, in `ctx`; any other response is
/// returned as it is.
pub(super) fn render(response: Response, ctx: &Ctx<'_>) -> Response {
    let (mut parts, body) = response.into_parts();
    let Some(Message { title, text }) = parts.extensions.remove::<Message>() else {
        return Response::from_parts(parts, body);
    };
    let (page, body) = html(pages::message(ctx, title, &text)).into_parts();
    parts.headers.extend(page.headers);
    Response::from_parts(parts, body)
}

/// The not-found page, for a request no page handler saw (the router's fallback).
pub(crate) fn not_found_page() -> Response {
    let ctx = Ctx {
        csrf: "",
        session: None,
        enrol_prompt: false,
        notices: None,
    };
    render(PageError::NotFound.into_response(), &ctx)
}

/// Splits an error into form errors (4xx, shown next to their fields) or a failure page
/// (5xx, an expired session, no session or the wrong role).
///
/// A form shown again with its errors answers 200, like the "access denied" result of a
/// provider's look-up: each is an ordinary page of the flow, and browsers report every
/// document that arrives with a 4xx status as a console error. The JSON API carries the
/// precise statuses.
pub(super) fn form_errors(e: PageError) -> PageResult<FieldErrors> {
    use svc::AccountsError as A;
    use svc::Error as S;
    let one = |field: &str, message: String| Ok(vec![(field.to_owned(), message)]);
    let e = match e {
        // The service's variant names the field; the message is only shown.
        PageError::Service(S::InvalidRecord(v)) => return Ok(record_errors(&v)),
        PageError::Service(S::InvalidInput { field, message }) => return one(field, message),
        PageError::Service(S::Accounts(A::InvalidUsername(why))) => {
            return one("username", why.into());
        }
        PageError::Service(S::Accounts(A::InvalidPassword(why))) => {
            return one("password", why.into());
        }
        PageError::Service(S::Accounts(e @ A::UsernameTaken)) => {
            return one("username", e.to_string());
        }
        PageError::Service(S::Accounts(A::TotpRequired)) => {
            return one(
                "code",
                "this account signs in with two-factor: enter the code from your app, or a backup code".into(),
            );
        }
        PageError::Service(S::Accounts(A::InvalidTotp)) => {
            return one("code", "is wrong, or was used already".into());
        }
        // Shown on the form it refused (the sign-up), not as an error page.
        PageError::Service(e @ S::FundingBudgetSpent { .. }) => return one("", e.to_string()),
        PageError::Service(e) => Error::from(e),
        PageError::Request(e) => e,
        e => return Err(e),
    };
    if e.status().is_server_error() || matches!(e, Error::Unauthenticated) {
        return Err(e.into());
    }
    Ok(match e {
        Error::InvalidRecord(v) => record_errors(&v),
        Error::InvalidInput { field, message } => vec![(field, message)],
        other => vec![(String::new(), other.to_string())],
    })
}

/// A record's validation errors, each under its field, and a line for those left out.
fn record_errors(v: &ValidationErrors) -> FieldErrors {
    let mut out: FieldErrors = v
        .errors()
        .iter()
        .map(|fe| (fe.path.clone(), fe.rule.to_string()))
        .collect();
    if v.omitted() > 0 {
        out.push((String::new(), format!("and {} more errors", v.omitted())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: impl Into<PageError>) -> FieldErrors {
        form_errors(e.into()).unwrap()
    }

    fn field(name: &str, message: &str) -> FieldErrors {
        vec![(name.to_owned(), message.to_owned())]
    }

    #[test]
    fn form_errors_name_their_field_by_the_service_variant() {
        use svc::AccountsError as A;
        use svc::Error as S;
        assert_eq!(
            fields(S::Accounts(A::UsernameTaken)),
            field("username", "username already taken")
        );
        assert_eq!(
            fields(S::Accounts(A::InvalidUsername(
                "must be 3 to 32 characters"
            ))),
            field("username", "must be 3 to 32 characters")
        );
        assert_eq!(
            fields(S::Accounts(A::InvalidPassword(
                "shorter than 12 characters"
            ))),
            field("password", "shorter than 12 characters")
        );
        // A spent funding budget is shown on the sign-up form, not as an error page.
        let spent = fields(S::FundingBudgetSpent {
            retry_after: std::time::Duration::from_secs(90),
        });
        assert_eq!(spent.len(), 1);
        assert!(spent[0].1.contains("budget"), "{spent:?}");
        let expires = S::InvalidInput {
            field: "expires_at",
            message: "must be in the future".into(),
        };
        assert_eq!(
            fields(expires),
            field("expires_at", "must be in the future")
        );
        assert_eq!(
            fields(Error::input(
                "patient_id",
                "must be a positive whole number"
            )),
            field("patient_id", "must be a positive whole number")
        );
        // A message that mentions a field does not make it that field's error.
        assert_eq!(
            fields(Error::Conflict("username clash".into())),
            field("", "conflict: username clash")
        );
        assert_eq!(
            fields(S::Accounts(A::AdminExists)),
            field("", "conflict: an admin account already exists")
        );
    }

    #[test]
    fn failures_and_sessions_are_not_form_errors() {
        let unavailable = svc::Error::NodesUnavailable {
            reachable: 2,
            needed: 3,
        };
        assert!(form_errors(unavailable.into()).is_err());
        assert!(form_errors(svc::Error::Unauthenticated.into()).is_err());
        assert!(form_errors(PageError::SignIn(Role::Patient)).is_err());
    }
}
