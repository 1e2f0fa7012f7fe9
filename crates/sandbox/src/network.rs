//! The sandbox's network: a namespace of its own with only loopback in it, and a relay
//! from it to the server through one Unix socket.
//!
//! Inside, the relay (a child of `gureum __sandbox-exec`, alive as long as the function)
//! listens where the function expects things: the Runtime API on `127.0.0.1:9001` (as
//! on Lambda), the platform API (`GUREUM_API`) on `127.0.0.1:9002`, and one loopback
//! address per host of `allowed_outbound_hosts` (`127.0.1.x`; `/etc/hosts` maps the
//! name to it) on that host's port; it runs on plain std threads. Each connection it
//! accepts is passed to the server over the instance's Unix socket with one line saying
//! what it is for: `runtime`, `api`, or `connect HOST PORT`. The server checks that line
//! against what the instance may reach (see gureum-runtime-lambda) and connects for it.
//! Nothing else leaves the namespace: no route, no DNS, nothing of the host's loopback.
//!
//! The socket is bound into this sandbox only, so whatever arrives on it comes from this
//! instance: the Runtime API needs no other check of who is calling. A Runtime API
//! connection is not copied at all: the relay hands the accepted socket itself to the
//! server with its first line (`SCM_RIGHTS`), and the server talks to the function on
//! it directly; only the platform API and outbound hosts are copied through.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The Runtime API inside the sandbox (`AWS_LAMBDA_RUNTIME_API`), as on Lambda.
pub const RUNTIME_API: &str = "127.0.0.1:9001";
/// The platform API inside the sandbox (`GUREUM_API` is `http://` this).
pub const PLATFORM_API: &str = "127.0.0.1:9002";
/// Where the instance's directory (relay socket, hosts file) is bound inside.
pub const RELAY_DIR: &str = "/run/gureum/net";
/// The relay socket's file name in the instance's directory.
pub const RELAY_SOCKET: &str = "relay.sock";
/// The hosts file's name in the instance's directory (bound over `/etc/hosts`).
pub const HOSTS_FILE: &str = "hosts";
/// Longest first line of a relayed connection.
pub const MAX_PREAMBLE: usize = 512;

/// What a relayed connection is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The instance's Runtime API.
    Runtime,
    /// The platform API (`GUREUM_API`).
    Api,
    /// An allowed outbound host.
    Connect {
        /// As written in `allowed_outbound_hosts`.
        host: String,
        /// Its port.
        port: u16,
    },
}

impl Target {
    /// The line that opens a relayed connection (with its newline).
    pub fn preamble(&self) -> String {
        match self {
            Target::Runtime => "runtime\n".to_string(),
            Target::Api => "api\n".to_string(),
            Target::Connect { host, port } => format!("connect {host} {port}\n"),
        }
    }

    /// Reads a preamble line (without its newline).
    pub fn parse(line: &str) -> Option<Self> {
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            ["runtime"] => Some(Target::Runtime),
            ["api"] => Some(Target::Api),
            ["connect", host, port] => Some(Target::Connect {
                host: (*host).to_string(),
                port: port.parse().ok()?,
            }),
            _ => None,
        }
    }

    fn to_arg(&self) -> String {
        self.preamble().trim_end().replace(' ', ",")
    }

    fn from_arg(arg: &str) -> Option<Self> {
        Self::parse(&arg.replace(',', " "))
    }
}

/// Where the relay listens and what each address is for: the two platform endpoints and
/// the allowed hosts, with the `/etc/hosts` that names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Listening address → target.
    pub listeners: Vec<(SocketAddr, Target)>,
    /// The sandbox's `/etc/hosts`.
    pub hosts: String,
    /// Allowed hosts the sandbox cannot offer, with why (logged by the caller).
    pub skipped: Vec<String>,
}

impl Plan {
    /// The plan for these allowed `(host, port)` endpoints
    /// (`gureum_manifest::exact_endpoints`).
    pub fn new(endpoints: &[(String, u16)]) -> Self {
        let mut listeners = vec![
            (parse(RUNTIME_API), Target::Runtime),
            (parse(PLATFORM_API), Target::Api),
        ];
        let mut hosts = String::from("127.0.0.1 localhost\n::1 localhost\n");
        let mut named: Vec<(String, Ipv4Addr)> = Vec::new();
        let mut skipped = Vec::new();
        for (host, port) in endpoints {
            let address = if host == "localhost" || host == "127.0.0.1" {
                Ipv4Addr::LOCALHOST
            } else if host.parse::<std::net::IpAddr>().is_ok() {
                skipped.push(format!(
                    "{host}:{port}: addresses other than 127.0.0.1 are not offered in the sandbox; name the host instead"
                ));
                continue;
            } else if let Some((_, address)) = named.iter().find(|(name, _)| name == host) {
                *address
            } else {
                // 127.0.1.x: away from 127.0.0.1, where the platform endpoints are.
                let Ok(index) = u8::try_from(named.len() + 1) else {
                    skipped.push(format!("{host}:{port}: more than 255 hosts"));
                    continue;
                };
                let address = Ipv4Addr::new(127, 0, 1, index);
                hosts.push_str(&format!("{address} {host}\n"));
                named.push((host.clone(), address));
                address
            };
            let listen = SocketAddr::V4(SocketAddrV4::new(address, *port));
            if listeners.iter().any(|(taken, _)| *taken == listen) {
                skipped.push(format!(
                    "{host}:{port}: the sandbox uses this address for the platform"
                ));
                continue;
            }
            listeners.push((
                listen,
                Target::Connect {
                    host: host.clone(),
                    port: *port,
                },
            ));
        }
        Plan {
            listeners,
            hosts,
            skipped,
        }
    }

    /// The helper's `--listen` arguments.
    pub(crate) fn to_args(&self) -> Vec<String> {
        self.listeners
            .iter()
            .flat_map(|(address, target)| {
                [
                    "--listen".to_string(),
                    format!("{address}={}", target.to_arg()),
                ]
            })
            .collect()
    }

    /// One `--listen` value back.
    pub(crate) fn parse_listen(value: &str) -> Option<(SocketAddr, Target)> {
        let (address, target) = value.split_once('=')?;
        Some((address.parse().ok()?, Target::from_arg(target)?))
    }
}

fn parse(address: &str) -> SocketAddr {
    address
        .parse()
        .unwrap_or_else(|_| unreachable!("a constant address"))
}

/// Binds every listener of the plan (before capabilities are dropped: ports below 1024
/// need CAP_NET_BIND_SERVICE).
pub(crate) fn bind(
    listeners: &[(SocketAddr, Target)],
) -> Result<Vec<(TcpListener, Target)>, String> {
    listeners
        .iter()
        .map(|(address, target)| {
            TcpListener::bind(address)
                .map(|listener| (listener, target.clone()))
                .map_err(|error| format!("listening on {address}: {error}"))
        })
        .collect()
}

/// Runs the relay until the process is killed (its parent, the function, ending).
pub(crate) fn relay(listeners: Vec<(TcpListener, Target)>, socket: &Path) -> ! {
    let socket = socket.to_path_buf();
    let mut threads = Vec::new();
    for (listener, target) in listeners {
        let socket = socket.clone();
        threads.push(std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let socket = socket.clone();
                let target = target.clone();
                std::thread::spawn(move || {
                    let _ = forward(stream, &socket, &target);
                });
            }
        }));
    }
    for thread in threads {
        let _ = thread.join();
    }
    std::process::exit(0)
}

fn forward(inside: TcpStream, socket: &Path, target: &Target) -> std::io::Result<()> {
    inside.set_nodelay(true)?;
    let mut server = UnixStream::connect(socket)?;
    if *target == Target::Runtime {
        // Our copies of both sockets close on return; the server keeps the connection.
        return send_with_socket(&server, target.preamble().as_bytes(), &inside);
    }
    server.write_all(target.preamble().as_bytes())?;
    let mut inside_read = inside.try_clone()?;
    let mut server_write = server.try_clone()?;
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut inside_read, &mut server_write);
        let _ = server_write.shutdown(std::net::Shutdown::Write);
    });
    let mut inside_write = inside;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = server.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        inside_write.write_all(&buffer[..read])?;
    }
    let _ = inside_write.shutdown(std::net::Shutdown::Write);
    let _ = upstream.join();
    Ok(())
}

/// Writes `bytes` on `server` with `connection` attached to the first of them.
fn send_with_socket(
    server: &UnixStream,
    bytes: &[u8],
    connection: &TcpStream,
) -> std::io::Result<()> {
    use std::os::fd::AsFd as _;
    let fds = [connection.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    if !control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("no room for the socket"));
    }
    let sent = rustix::net::sendmsg(
        server,
        &[std::io::IoSlice::new(bytes)],
        &mut control,
        rustix::net::SendFlags::empty(),
    )?;
    (&*server).write_all(&bytes[sent..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preambles_round_trip() {
        for target in [
            Target::Runtime,
            Target::Api,
            Target::Connect {
                host: "db.internal".into(),
                port: 5432,
            },
        ] {
            assert_eq!(
                Target::parse(target.preamble().trim_end()),
                Some(target.clone())
            );
            assert_eq!(Target::from_arg(&target.to_arg()), Some(target));
        }
        assert_eq!(Target::parse("connect a"), None);
        assert_eq!(Target::parse("connect a 99999"), None);
        assert_eq!(Target::parse("shell"), None);
    }

    #[test]
    fn hosts_get_loopback_aliases_and_the_platform_keeps_its_ports() {
        let plan = Plan::new(&[
            ("api.example.com".into(), 443),
            ("api.example.com".into(), 80),
            ("db.internal".into(), 5432),
            ("localhost".into(), 8080),
            ("127.0.0.1".into(), 9001),
            ("10.0.0.5".into(), 5432),
        ]);
        assert!(
            plan.hosts.contains("127.0.1.1 api.example.com\n"),
            "{}",
            plan.hosts
        );
        assert!(
            plan.hosts.contains("127.0.1.2 db.internal\n"),
            "{}",
            plan.hosts
        );
        let addresses: Vec<String> = plan
            .listeners
            .iter()
            .map(|(address, _)| address.to_string())
            .collect();
        assert_eq!(
            addresses,
            [
                "127.0.0.1:9001",
                "127.0.0.1:9002",
                "127.0.1.1:443",
                "127.0.1.1:80",
                "127.0.1.2:5432",
                "127.0.0.1:8080"
            ]
        );
        assert_eq!(plan.skipped.len(), 2, "{:?}", plan.skipped);
        for (address, target) in &plan.listeners {
            let arg = format!("{address}={}", target.to_arg());
            assert_eq!(Plan::parse_listen(&arg), Some((*address, target.clone())));
        }
    }
}
