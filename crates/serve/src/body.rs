//! [`DeadlineBody`]: a request body that fails once its time is up, so a client that
//! trickles a body cannot hold a connection (and the handler waiting on it) for ever.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// Each byte of a body that arrives extends its deadline by `1 / MIN_BODY_RATE` seconds
/// (256 KiB/s): a 2 GiB upload over a slow phone link is not cut off while it keeps coming.
pub const MIN_BODY_RATE: u64 = 256 << 10;

/// The body was not complete in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not complete within {0:?}")]
pub struct BodyTimeout(Duration);

/// A request body with a deadline: frames pass through until `limit` after creation (plus
/// the time the bytes already come bought, at [`MIN_BODY_RATE`]), then
/// it fails with [`BodyTimeout`] (which a handler reading it answers with an error and
/// the connection is closed, the rest of the body unread).
pub struct DeadlineBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    /// `inner`, which must be complete within `limit` from now.
    pub fn new(inner: Incoming, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + limit)),
        }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            // Bytes that came buy time at MIN_BODY_RATE: a big upload that keeps coming is
            // not cut off, a trickle is.
            if let Some(Ok(f)) = &frame
                && let Some(data) = f.data_ref()
            {
                let extra = Duration::from_secs_f64(data.len() as f64 / MIN_BODY_RATE as f64);
                let later = self.deadline.deadline() + extra;
                self.deadline.as_mut().reset(later);
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimeout(self.limit).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
