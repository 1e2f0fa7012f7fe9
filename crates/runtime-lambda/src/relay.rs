//! The server's end of a sandboxed instance's network (see `gureum_sandbox::network`):
//! one Unix socket per instance, in the instance's own directory, bound into its sandbox
//! only. Each connection opens with a line naming what it is for; the Runtime API is
//! served right here, the platform API and the allowed outbound hosts are connected to
//! from the server and the bytes copied both ways. A `connect` line for anything the
//! manifest does not allow is refused: the line comes from inside the sandbox, so it is
//! checked, never trusted.

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
                    Some(address) => pipe(stream, &address.ip().to_string(), address.port()).await,
                    None => tracing::warn!("no platform API to relay to"),
                },
                Target::Connect { host, port } => {
                    if reach
                        .endpoints
                        .iter()
                        .any(|(allowed, allowed_port)| *allowed == host && *allowed_port == port)
                    {
                        pipe(stream, &host, port).await;
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

async fn pipe(mut inside: UnixStream, host: &str, port: u16) {
    let outside = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        TcpStream::connect((host, port)),
    )
    .await;
    let mut outside = match outside {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%host, port, %error, "relayed connection failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%host, port, "relayed connection timed out");
            return;
        }
    };
    let _ = outside.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
}
