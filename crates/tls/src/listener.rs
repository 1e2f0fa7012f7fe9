//! The accept side of a listener, plain or HTTPS. With TLS, each handshake runs in its
//! own task with a deadline ([`HANDSHAKE_TIMEOUT`], 10 s) and only finished connections
//! are handed to the HTTP server, so a slow or silent client never holds up anyone else's
//! accept. A client that speaks plain HTTP to an HTTPS port gets a readable 400
//! (`https_required`) saying to use https:// instead of a TLS alert it cannot show.
//!
//! Every listener takes a [`ConnectionSlots`] before each accept and the connection
//! holds its slot until it is dropped (also through a TLS handshake and a WebSocket
//! upgrade), so a full listener stops accepting: new clients wait in the kernel's
//! backlog instead of taking file descriptors the other listeners need. Listeners may
//! share one set of slots (clones share the count): the node gives its public,
//! plain-HTTP and loopback listeners one count and the admin listener its own.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longest time a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the HTTP server to take them.
const READY_QUEUE: usize = 256;
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Accepting stops below this pause after a failed accept (EMFILE, ENFILE, ENOBUFS): the
/// error repeats until a descriptor is freed, and retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// At most one "listener full" warning per listener this often.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// How many connections one listener (or a group of listeners sharing it) may hold at
/// once. Cloning shares the same slots.
#[derive(Debug, Clone)]
pub struct ConnectionSlots {
    name: &'static str,
    limit: usize,
    semaphore: Arc<Semaphore>,
    last_full_warning: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl ConnectionSlots {
    /// `limit` connections at once (at least one) for the listener(s) called `name` in
    /// the log.
    pub fn new(name: &'static str, limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            name,
            limit,
            semaphore: Arc::new(Semaphore::new(limit)),
            last_full_warning: Arc::default(),
        }
    }

    /// The most connections held at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections held now.
    pub fn in_use(&self) -> usize {
        self.limit - self.semaphore.available_permits()
    }

    /// Waits for a free slot (warning, at most once a minute, that the listener is full).
    async fn acquire(&self) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.semaphore.clone().try_acquire_owned() {
            return permit;
        }
        self.warn_full();
        self.semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    fn warn_full(&self) {
        let mut last = self
            .last_full_warning
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_none_or(|at| at.elapsed() >= FULL_WARNING_INTERVAL) {
            *last = Some(std::time::Instant::now());
            tracing::warn!(
                listener = self.name,
                limit = self.limit,
                "connection limit reached: new connections wait until one closes (raise --max-connections / --admin-max-connections if this is legitimate load)"
            );
        }
    }
}

/// A connection accepted by a [`Listener`], holding its listener's slot until dropped.
#[allow(missing_debug_implementations)]
pub struct Stream {
    io: Io,
    _slot: OwnedSemaphorePermit,
}

enum Io {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(stream) => stream.is_write_vectored(),
            Io::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A bound listener that yields ready connections, plain or TLS.
#[allow(missing_debug_implementations)]
pub struct Listener {
    local_addr: SocketAddr,
    incoming: Incoming,
}

enum Incoming {
    Plain(TcpListener, ConnectionSlots),
    Tls {
        ready: mpsc::Receiver<(Stream, SocketAddr)>,
        accepting: tokio::task::JoinHandle<()>,
    },
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Dropping the listener closes the port: the accept task owns the socket.
        if let Incoming::Tls { accepting, .. } = &self.incoming {
            accepting.abort();
        }
    }
}

impl Listener {
    /// Plain HTTP on `listener`, at most `slots` connections at once.
    pub fn plain(listener: TcpListener, slots: ConnectionSlots) -> io::Result<Self> {
        Ok(Self {
            local_addr: listener.local_addr()?,
            incoming: Incoming::Plain(listener, slots),
        })
    }

    /// HTTPS on `listener` with `config` (its certificate may change while serving), at
    /// most `slots` connections at once (handshakes in progress included).
    pub fn tls(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        slots: ConnectionSlots,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_QUEUE);
        let accepting = tokio::spawn(accept_tls(
            listener,
            TlsAcceptor::from(config),
            sender,
            slots,
        ));
        Ok(Self {
            local_addr,
            incoming: Incoming::Tls { ready, accepting },
        })
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.incoming, Incoming::Tls { .. })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next connection (for TLS: with its handshake done).
    pub async fn accept(&mut self) -> (Stream, SocketAddr) {
        match &mut self.incoming {
            Incoming::Plain(listener, slots) => {
                let (stream, peer, slot) = accept_tcp(listener, slots).await;
                (
                    Stream {
                        io: Io::Plain(stream),
                        _slot: slot,
                    },
                    peer,
                )
            }
            Incoming::Tls { ready, .. } => match ready.recv().await {
                Some(ready) => ready,
                // The accept task only ends when aborted by drop.
                None => std::future::pending().await,
            },
        }
    }
}

impl axum::serve::Listener for Listener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        Listener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

/// The next connection, once a slot is free (taken before accepting, so a full
/// listener leaves new connections in the backlog).
async fn accept_tcp(
    listener: &TcpListener,
    slots: &ConnectionSlots,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    let slot = slots.acquire().await;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer, slot);
            }
            Err(error) => {
                // Typically EMFILE: back off briefly instead of spinning.
                tracing::warn!(listener = slots.name, %error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(Stream, SocketAddr)>,
    slots: ConnectionSlots,
) {
    loop {
        let (stream, peer, slot) = accept_tcp(&listener, &slots).await;
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, acceptor)).await {
                Ok(Ok(Some(stream))) => {
                    let stream = Stream {
                        io: Io::Tls(Box::new(stream)),
                        _slot: slot,
                    };
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Ok(None)) => {}
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Completes the handshake, or answers a plain HTTP request with a 400 (`None`).
async fn handshake(
    stream: TcpStream,
    acceptor: TlsAcceptor,
) -> io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    let read = stream.peek(&mut first).await?;
    if read == 1 && first[0] != TLS_HANDSHAKE {
        refuse_plain_http(stream).await;
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

/// Reads the request head (so closing does not reset the connection before the client
/// reads the answer) and answers 400 with the https:// URL to use instead.
async fn refuse_plain_http(mut stream: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while head.len() < 16 * 1024 && !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.lines();
    let target = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .filter(|target| target.starts_with('/'))
        .unwrap_or("/");
    let host = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim().to_string())
        .filter(|host| !host.is_empty() && !host.contains(['"', '\\']));
    let message = match host {
        Some(host) => format!(
            "this port speaks HTTPS, not plain HTTP: use https://{host}{} instead",
            if target.len() > 200 { "/…" } else { target }
        ),
        None => "this port speaks HTTPS, not plain HTTP: use an https:// URL".to_string(),
    };
    let body = serde_json::json!({ "error": { "code": "https_required", "message": message } })
        .to_string();
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-gureum-error: https_required\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
