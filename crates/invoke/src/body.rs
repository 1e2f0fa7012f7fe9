//! A response body whose end is held back until the instance that produced it is free
//! again, so a client that sends its next request right after the last byte finds the
//! warm instance back in the pool (Lambda's sequential-reuse semantics) instead of
//! racing its release and paying a cold start.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

/// Wraps a function's response body; ends only after `released` fires (or is dropped).
pub(crate) struct HoldEnd<B> {
    inner: B,
    released: Option<oneshot::Receiver<()>>,
}

impl<B> HoldEnd<B> {
    pub(crate) fn new(inner: B, released: oneshot::Receiver<()>) -> Self {
        Self {
            inner,
            released: Some(released),
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for HoldEnd<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => match this.released.as_mut() {
                Some(released) => match Pin::new(released).poll(cx) {
                    Poll::Ready(_) => {
                        this.released = None;
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                },
                None => Poll::Ready(None),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.released.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
