//! How every listener (public, plain-HTTP, loopback, admin) serves its connections:
//! hyper-util's auto builder (HTTP/1.1 + h2, upgrades allowed) with a timer, so a client
//! must send its request head within the header timeout, h2 keep-alive pings, and an idle
//! timeout that closes a connection with no request in flight. Together with the
//! listener's connection slots (`gureum_tls::ConnectionSlots`) this bounds what slow or
//! silent clients can hold (audit finding 7).
//!
//! A watchdog per connection closes it gracefully after the header timeout when no first
//! request came (a client that connects and sends nothing, or too little for hyper to
//! tell HTTP/1 from h2), or after the idle timeout with no request in flight. A request
//! counts as in flight until its response body ends or is dropped, so SSE streams and
//! long requests are never idle; an upgraded WebSocket has already left the connection
//! task.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::watch;
use tokio::time::Instant;

/// Time a client has to send a complete request head: from the connection's start, and
/// on HTTP/1 also from the end of the previous response (hyper restarts its header
/// timer whenever it waits for a head). 30 s as PocketBase's `ReadHeaderTimeout`; nginx's
/// `client_header_timeout` is 60 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection without a request in flight this long is closed (HTTP/1 keep-alive waits
/// are also cut by the header timeout, whichever is shorter). 60 s as AWS load
/// balancers' default idle timeout; nginx's `keepalive_timeout` is 75 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most connections the admin listener holds at once: operators, the console (a few per
/// browser tab) and a Prometheus scraper need far fewer; the cap only keeps the admin
/// listener from taking descriptors the public one needs.
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 256;
/// HTTP/2 pings this often on a connection: a peer that stopped answering (gone without
/// a FIN) is noticed even while a long stream (SSE) keeps the connection busy.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// An unanswered HTTP/2 ping closes the connection after this long (hyper's default).
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Timeouts of one listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// See [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// See [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Serves `listener` with the service `make_service` gives for each connection (it
/// receives the peer and whether the connection is TLS) until `shutdown` resolves; then
/// stops accepting, asks every connection to finish its requests and close, and waits up
/// to `grace` for them.
pub async fn serve<M, S, B>(
    mut listener: gureum_tls::Listener,
    settings: ConnectionSettings,
    mut make_service: M,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    M: FnMut(SocketAddr, bool) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let builder = builder(settings);
    // Every connection task holds a receiver: `closed()` on the sender is "all done".
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            (stream, peer) = listener.accept() => {
                let service = make_service(peer, stream.is_tls());
                let activity = Arc::new(Activity::new());
                let service = Tracked { inner: service, activity: activity.clone() };
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => return,
                        () = activity.idle(settings) => {}
                        _ = stopped.wait_for(|stop| *stop) => {}
                    }
                    // Finishes the request in flight (if any) and closes; an upgraded
                    // connection (WebSocket) has already left this task.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(true);
    if tokio::time::timeout(grace, stop.closed()).await.is_err() {
        tracing::warn!(
            ?grace,
            "in-flight requests still running after the shutdown grace period"
        );
    }
}

/// [`serve`] for an axum router: its handlers see the peer as
/// `ConnectInfo<SocketAddr>`, as with `into_make_service_with_connect_info`.
pub async fn serve_router(
    listener: gureum_tls::Listener,
    settings: ConnectionSettings,
    router: axum::Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let make_service = move |peer: SocketAddr, _secure: bool| {
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        hyper_util::service::TowerToHyperService::new(service)
    };
    serve(listener, settings, make_service, shutdown, grace).await;
}

fn builder(settings: ConnectionSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Without a timer hyper silently ignores its header timeout (audit finding 7).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
    builder
}

/// Requests in flight on one connection and since when it has had none.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Requests started so far (0: still waiting for the first, under the header timeout).
    started: AtomicUsize,
    /// When the last request in flight ended, in ms since `opened`.
    idle_since_ms: AtomicU64,
    /// Woken when a request ends: the watchdog may be asleep on an earlier deadline.
    ended: tokio::sync::Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            ended: tokio::sync::Notify::new(),
        }
    }

    fn begin(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        let elapsed = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(elapsed, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        // Stores a permit when the watchdog is not waiting, so no end is missed.
        self.ended.notify_one();
    }

    /// Resolves once the connection has had no request in flight for its limit: the
    /// header timeout before the first request (a client that connects and sends
    /// nothing, or too little for hyper to tell HTTP/1 from h2, which no hyper timer
    /// covers), the idle timeout after. A busy connection (a long SSE stream) is looked
    /// at again when a request ends, so this costs one timer per connection.
    async fn idle(&self, settings: ConnectionSettings) {
        loop {
            if self.in_flight.load(Ordering::Acquire) > 0 {
                self.ended.notified().await;
                continue;
            }
            let (limit, since) = if self.started.load(Ordering::Relaxed) == 0 {
                (settings.header_timeout, self.opened)
            } else {
                let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
                (settings.idle_timeout, self.opened + since)
            };
            let deadline = since + limit;
            if Instant::now() >= deadline {
                return;
            }
            // Re-checked after either: a request may have come and gone meanwhile.
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = self.ended.notified() => {}
            }
        }
    }
}

/// The connection's service, counting its requests in flight until their response
/// bodies end (or are dropped).
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<CountedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity.begin();
        let guard = InFlight(Some(self.activity.clone()));
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| CountedBody { body, guard }))
        })
    }
}

/// Ends its request's time in flight when dropped (with the response body, or with the
/// service future when no response came).
struct InFlight(Option<Arc<Activity>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(activity) = self.0.take() {
            activity.end();
        }
    }
}

/// A response body that keeps its request in flight until it ends or is dropped.
struct CountedBody<B> {
    body: B,
    guard: InFlight,
}

impl<B: Body + Unpin> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = frame
            && let Some(activity) = this.guard.0.take()
        {
            activity.end();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time (tokio's paused clock needs its test-util feature): short limits.
    const SETTINGS: ConnectionSettings = ConnectionSettings {
        header_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(400),
    };

    #[tokio::test]
    async fn a_connection_without_a_request_is_idle_after_the_header_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle(SETTINGS).await;
        let waited = started.elapsed();
        assert!(
            waited >= SETTINGS.header_timeout && waited < SETTINGS.idle_timeout,
            "idle after {waited:?}"
        );
    }

    #[tokio::test]
    async fn a_request_in_flight_keeps_the_connection_and_the_idle_timeout_starts_at_its_end() {
        let activity = Arc::new(Activity::new());
        activity.begin();
        let watcher = tokio::spawn({
            let activity = activity.clone();
            async move {
                activity.idle(SETTINGS).await;
                Instant::now()
            }
        });
        // A long stream: longer than both timeouts.
        tokio::time::sleep(SETTINGS.idle_timeout * 3).await;
        assert!(
            !watcher.is_finished(),
            "closed while a request was in flight"
        );
        let ended = Instant::now();
        activity.end();
        let closed = watcher.await.unwrap();
        let waited = closed - ended;
        assert!(
            waited >= SETTINGS.idle_timeout && waited < SETTINGS.idle_timeout * 2,
            "closed {waited:?} after the request ended"
        );
    }
}
