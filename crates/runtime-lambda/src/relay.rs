//! The server's end of a sandboxed instance's network (see `gureum_sandbox::network`):
//! one Unix socket per instance, in the instance's own directory, bound into its sandbox
//! only. Each connection opens with a line naming what it is for; the Runtime API is
//! served right here, the platform API and the allowed outbound hosts are connected to
//! from the server and the bytes copied both ways. A `connect` line for anything the
//! manifest does not allow is refused: the line comes from inside the sandbox, so it is
//! checked, never trusted.
//!
//! - `runtime`: the function's TCP connection arrives attached to the line (`SCM_RIGHTS`,
//!   read with rustix's `recvmsg`) and is served the Runtime API directly, not copied.
//! - `api`: connected to the platform API (`GUREUM_API`'s address).
//! - `connect HOST PORT`: only when that pair is one of the manifest's exact endpoints
//!   (`gureum_manifest::exact_endpoints`); the name is resolved once here, checked with
//!   `gureum_manifest::check_resolved`, and exactly the checked addresses are connected to.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use std::os::fd::OwnedFd;

use gureum_sandbox::network::{MAX_PREAMBLE, Target};
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixListener, UnixStream};

use crate::api::Shared;

/// What one instance's relay may reach.
pub(crate) struct Reach {
    /// The function, for the log.
    pub(crate) function: String,
    /// The platform API on the server (`GUREUM_API`'s address).
    pub(crate) platform: Option<SocketAddr>,
    /// Allowed `(host, port)` endpoints.
    pub(crate) endpoints: Vec<(String, u16)>,
    /// Whether an endpoint's name may resolve to a private address
    /// (`gureum up --outbound-private`).
    pub(crate) private: gureum_manifest::PrivateDestinations,
}

/// Makes the instance's socket (`dir/relay.sock`) that its sandbox may connect to.
pub(crate) fn listen(dir: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(gureum_sandbox::network::RELAY_SOCKET);
    let listener = UnixListener::bind(&path)?;
    // The function's user (another uid when gureum is root) connects; nobody else can
    // reach the file: its directory is the server's, bound into this sandbox alone.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    Ok(listener)
}

/// Serves the instance's socket until the task is aborted.
pub(crate) async fn serve(listener: UnixListener, shared: Arc<Shared>, reach: Arc<Reach>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a sandbox connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let reach = reach.clone();
        tokio::spawn(async move {
            let Some((target, passed)) = read_preamble(&stream).await else {
                tracing::warn!(function = %reach.function, "a sandbox connection without a valid first line was refused");
                return;
            };
            match target {
                // The function's own connection, handed over by the relay: served
                // directly, no copying in between.
                Target::Runtime => match passed.and_then(tcp_stream) {
                    Some(connection) => crate::api::serve_connection(connection, shared).await,
                    None => crate::api::serve_connection(stream, shared).await,
                },
                Target::Api => match reach.platform {
                    Some(address) => pipe(stream, &[address]).await,
                    None => tracing::warn!("no platform API to relay to"),
                },
                Target::Connect { host, port } => {
                    if reach
                        .endpoints
                        .iter()
                        .any(|(allowed, allowed_port)| *allowed == host && *allowed_port == port)
                    {
                        match resolve(&host, port, reach.private).await {
                            Ok(addresses) => pipe(stream, &addresses).await,
                            Err(reason) => tracing::warn!(
                                function = %reach.function,
                                %host,
                                port,
                                "outbound connection refused: {reason}"
                            ),
                        }
                    } else {
                        tracing::warn!(
                            function = %reach.function,
                            %host,
                            port,
                            "outbound connection refused: not in allowed_outbound_hosts"
                        );
                    }
                }
            }
        });
    }
}

/// The first line, read a byte at a time so nothing after it is consumed, with the
/// socket the relay attached to it, if any.
async fn read_preamble(stream: &UnixStream) -> Option<(Target, Option<OwnedFd>)> {
    let mut line = Vec::new();
    let mut passed = None;
    loop {
        let mut byte = [0u8; 1];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let received = loop {
            stream.readable().await.ok()?;
            match stream.try_io(Interest::READABLE, || {
                rustix::net::recvmsg(
                    stream,
                    &mut [std::io::IoSliceMut::new(&mut byte)],
                    &mut control,
                    rustix::net::RecvFlags::CMSG_CLOEXEC,
                )
                .map_err(std::io::Error::from)
            }) {
                Ok(message) => break message.bytes,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return None,
            }
        };
        for message in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(fds) = message {
                for fd in fds {
                    passed.get_or_insert(fd);
                }
            }
        }
        if received == 0 {
            return None;
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > MAX_PREAMBLE {
            return None;
        }
    }
    Some((Target::parse(std::str::from_utf8(&line).ok()?)?, passed))
}

/// A socket passed by the relay as a tokio stream, if it is a connected TCP socket.
fn tcp_stream(fd: OwnedFd) -> Option<TcpStream> {
    let connection = std::net::TcpStream::from(fd);
    connection.peer_addr().ok()?;
    connection.set_nonblocking(true).ok()?;
    let _ = connection.set_nodelay(true);
    TcpStream::from_std(connection).ok()
}

/// The addresses of an allowed endpoint, resolved once here: a name that resolves to a
/// private address is refused (unless it is `localhost`, an address itself, or the
/// operator allowed private destinations), and the connection goes to exactly the
/// addresses checked (audit finding 15).
async fn resolve(
    host: &str,
    port: u16,
    private: gureum_manifest::PrivateDestinations,
) -> Result<Vec<SocketAddr>, String> {
    let addresses: Vec<SocketAddr> =
        tokio::time::timeout(RELAY_CONNECT_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| "name resolution timed out".to_string())?
            .map_err(|error| format!("name resolution failed: {error}"))?
            .collect();
    if !gureum_manifest::names_address(host) {
        gureum_manifest::check_resolved(&addresses, private).map_err(|prohibited| {
            format!(
                "{host} resolves to {}, {}; process functions reach private addresses by name only when the server runs with --outbound-private allow (or through tcp://localhost:PORT / http://127.0.0.1:PORT entries)",
                prohibited.address, prohibited.kind
            )
        })?;
    }
    Ok(addresses)
}

/// Longest wait for an outbound connection (and its name resolution).
const RELAY_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn pipe(mut inside: UnixStream, addresses: &[SocketAddr]) {
    let outside = tokio::time::timeout(RELAY_CONNECT_TIMEOUT, TcpStream::connect(addresses)).await;
    let mut outside = match outside {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(?addresses, %error, "relayed connection failed");
            return;
        }
        Err(_) => {
            tracing::debug!(?addresses, "relayed connection timed out");
            return;
        }
    };
    let _ = outside.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
}
