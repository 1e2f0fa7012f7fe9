//! Request bodies as the gateway reads them.
//!
//! [`LimitedBody`] stops at a byte limit and remembers that it did, so the gateway can
//! answer 413 even when the limit is only discovered mid-stream.
//!
//! [`DrainOnDrop`] exists because an answer given without reading the body (404, 400,
//! 401, 403, 413, 429, the admin API's 401) would otherwise not reach the client: hyper
//! closes the connection with the client's bytes unread, the kernel resets it, and a
//! client still sending, or reusing the kept-alive connection, never sees the answer (a
//! function calling an unknown function got an `HttpProtocolError` instead of the 404).
//! Dropped unfinished, it reads the rest in a task of its own, at most
//! [`MAX_DRAIN_BYTES`] (64 MiB) in [`MAX_DRAIN_TIME`] (10 s), the way servers linger
//! before closing. Only HTTP/1 bodies are drained. Both listeners use it (the admin one
//! through gureum-control-api); `tests/e2e/early_errors.rs` holds it for 1,000 requests
//! per path, bodies of 0 B to 1 MiB, sent by length and chunked.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The body was longer than allowed.
#[derive(Debug, thiserror::Error)]
#[error("request body is larger than the limit of {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit.
    pub limit: u64,
}

/// Wraps a body and fails once more than `limit` bytes have passed.
pub struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl<B> LimitedBody<B> {
    /// Wraps `inner`; `exceeded` is set when the limit is crossed.
    pub fn new(inner: B, limit: u64, exceeded: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            remaining: limit,
            limit,
            exceeded,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = String;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, String>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let length = data.len() as u64;
                    if length > this.remaining {
                        this.exceeded.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(
                            BodyTooLarge { limit: this.limit }.to_string()
                        )));
                    }
                    this.remaining -= length;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.to_string()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Most bytes of an unread request body read (and discarded) after its answer.
pub const MAX_DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// Longest time spent reading an unread request body after its answer.
pub const MAX_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// A request body that, dropped before its end, reads the rest in a task of its own
/// (at most [`MAX_DRAIN_BYTES`] in [`MAX_DRAIN_TIME`]).
///
/// Answers that do not need the body (404, 401, 413, 429, …) are sent without reading
/// it. hyper then stops reading the connection and closes it once the answer is written,
/// with the client's unread bytes still in the socket: the kernel resets the connection
/// and a client still sending (or reusing the kept-alive connection, as no
/// `connection: close` was sent) loses the answer. Reading the rest keeps the connection
/// usable, the way servers linger before closing.
pub struct DrainOnDrop<B>
where
    B: Body + Send + Unpin + 'static,
{
    inner: Option<B>,
    ended: bool,
    /// Whether the rest is read when dropped (HTTP/1).
    drain: bool,
}

impl<B> DrainOnDrop<B>
where
    B: Body + Send + Unpin + 'static,
{
    /// Wraps the body of a request of this HTTP `version`. Only HTTP/1 bodies are
    /// drained: an HTTP/2 stream is reset on its own without touching the connection.
    pub fn new(inner: B, version: http::Version) -> Self {
        Self {
            inner: Some(inner),
            ended: false,
            drain: version <= http::Version::HTTP_11,
        }
    }
}

impl<B> Body for DrainOnDrop<B>
where
    B: Body + Send + Unpin + 'static,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<B> Drop for DrainOnDrop<B>
where
    B: Body + Send + Unpin + 'static,
{
    fn drop(&mut self) {
        if !self.drain || self.is_end_stream() {
            return;
        }
        let (Some(mut inner), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            use http_body_util::BodyExt as _;
            let mut drained = 0u64;
            let _ = tokio::time::timeout(MAX_DRAIN_TIME, async {
                while let Some(Ok(frame)) = inner.frame().await {
                    drained += frame
                        .data_ref()
                        .map_or(0, |data| bytes::Buf::remaining(data) as u64);
                    if drained > MAX_DRAIN_BYTES {
                        break;
                    }
                }
            })
            .await;
        });
    }
}
