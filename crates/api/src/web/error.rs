//! [`PageError`], what a page handler fails with, and the one place it becomes a response:
//! the way to the sign-in page, a refusal, or a page saying what went wrong. Form errors are
//! picked out first by [`form_errors`], so that the handler shows its form again with each
//! error next to its field.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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
    /// A service call or a check of the request failed, as the JSON API would say.
    #[error(transparent)]
    Request(#[from] Error),
}

impl PageError {
    /// The seconds until a rate-limited request may be tried again, for `Retry-After`.
    pub(super) fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Request(Error::RateLimited { retry_after }) => Some(retry_after.as_secs().max(1)),
            _ => None,
        }
    }
}

impl From<svc::Error> for PageError {
    fn from(e: svc::Error) -> Self {
        Self::Request(e.into())
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
    let PageError::Request(e) = e else {
        return Err(e);
    };
    if e.status().is_server_error() || matches!(e, Error::Unauthenticated) {
        return Err(e.into());
    }
    Ok(match e {
        Error::InvalidRecord(v) => {
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
        Error::InvalidInput { field, message } => vec![(field, message)],
        Error::Conflict(m) if m.contains("username") => vec![("username".into(), m)],
        other => vec![(String::new(), other.to_string())],
    })
}
