//! Who is on the other end of a Runtime API connection, for unsandboxed instances
//! (`--unsandboxed-processes`; a sandboxed one's arrive through `relay`). Each instance's
//! Runtime API listens on its own loopback port, and any local process could connect to
//! it; so every accepted connection is traced to the process that owns the client socket,
//! and served only when that process belongs to the instance's process group. That is what
//! keeps one function from reading another's events.
//!
//! The client socket's inode comes from the kernel's socket-diagnostics netlink
//! (an exact 4-tuple lookup, microseconds); `/proc/net/tcp` is the fallback, which on
//! a busy kernel walks the whole socket hash table (milliseconds). The owner is found
//! among the group's processes by their `/proc/PID/fd` links, the group leader first.
#![allow(unsafe_code)] // netlink socket calls through libc, each with its reason below.

use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Whether the client socket `peer` (connected to our `local` listener address) is
/// held by a process in process group `pgid`. Fails closed: anything unreadable is no.
pub fn belongs_to_group(local: SocketAddr, peer: SocketAddr, pgid: u32) -> bool {
    let Some(inode) = socket_inode(local, peer) else {
        return false;
    };
    let wanted = format!("socket:[{inode}]");
    // Runtime clients talk from the process that was started, the group leader.
    if holds_socket(pgid, &wanted) {
        return true;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|entry| {
        let name = entry.file_name();
        name.to_str()
            .and_then(|name| name.parse::<u32>().ok())
            .is_some_and(|pid| {
                pid != pgid && process_group(pid) == Some(pgid) && holds_socket(pid, &wanted)
            })
    })
}

fn holds_socket(pid: u32, wanted: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted))
}

/// The inode of the client-side socket of the connection `peer` → `local`.
fn socket_inode(local: SocketAddr, peer: SocketAddr) -> Option<u64> {
    if let (SocketAddr::V4(local), SocketAddr::V4(peer)) = (local, peer)
        && let Some(inode) = diag_inode(peer, local)
    {
        return Some(inode);
    }
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            find_inode(&text, peer.port(), local.port())
        })
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const REQUEST_LEN: usize = 72; // nlmsghdr (16) + inet_diag_req_v2 (56)

/// Asks the kernel (`NETLINK_SOCK_DIAG`, `inet_diag_req_v2`) for the inode of the TCP
/// socket whose local end is `src` and remote end is `dst`.
fn diag_inode(src: SocketAddrV4, dst: SocketAddrV4) -> Option<u64> {
    let mut request = [0u8; REQUEST_LEN];
    request[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    request[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    request[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number
    // inet_diag_req_v2: family, protocol, extensions, padding, states (all).
    request[16] = libc::AF_INET as u8;
    request[17] = libc::IPPROTO_TCP as u8;
    request[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    // inet_diag_sockid: ports and addresses in network order, interface, no cookie.
    request[24..26].copy_from_slice(&src.port().to_be_bytes());
    request[26..28].copy_from_slice(&dst.port().to_be_bytes());
    request[28..32].copy_from_slice(&src.ip().octets());
    request[44..48].copy_from_slice(&dst.ip().octets());
    request[64..72].copy_from_slice(&[0xff; 8]);

    // SAFETY: socket(2) with constant arguments; the result is checked before use and
    // owned (closed on drop) from here on.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: the pointer and length describe `request`, which outlives the call; an
    // unbound netlink socket sends to the kernel.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
        )
    };
    if sent != REQUEST_LEN as isize {
        return None;
    }
    let mut reply = [0u8; 1024];
    // SAFETY: the pointer and length describe `reply`, which outlives the call.
    let received = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            reply.as_mut_ptr().cast(),
            reply.len(),
            0,
        )
    };
    let received = usize::try_from(received).ok()?;
    // nlmsghdr (16) + inet_diag_msg: 4 bytes, sockid (48), expires, rqueue, wqueue,
    // uid, then the inode at 16 + 68. An error reply has another message type.
    if received < 16 + 72 || u16::from_ne_bytes([reply[4], reply[5]]) != SOCK_DIAG_BY_FAMILY {
        return None;
    }
    let inode = u32::from_ne_bytes(reply[84..88].try_into().ok()?);
    (inode != 0).then_some(u64::from(inode))
}

/// Finds, in a `/proc/net/tcp{,6}` table, the socket whose local port is `port` and
/// whose remote port is `remote_port` (the client side of our connection).
fn find_inode(table: &str, port: u16, remote_port: u16) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        let remote = fields.get(2)?;
        let inode = fields.get(9)?.parse::<u64>().ok()?;
        (hex_port(local)? == port && hex_port(remote)? == remote_port && inode != 0)
            .then_some(inode)
    })
}

fn hex_port(address: &str) -> Option<u16> {
    let (_, port) = address.rsplit_once(':')?;
    u16::from_str_radix(port, 16).ok()
}

/// The process group of `pid`, from the fifth field of `/proc/PID/stat` (after the
/// command name, which is in parentheses and may itself contain spaces).
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn finds_the_client_side_socket() {
        // Client port 0xD431 = 54321 connected to our listener on 0x1F90 = 8080.
        assert_eq!(find_inode(TABLE, 54321, 8080), Some(2222));
        assert_eq!(find_inode(TABLE, 8080, 54321), Some(3333));
        assert_eq!(find_inode(TABLE, 1234, 8080), None);
    }

    #[test]
    fn reads_this_process_group() {
        let own = process_group(std::process::id());
        assert!(own.is_some_and(|pgid| pgid > 0), "{own:?}");
    }

    #[test]
    fn netlink_and_proc_agree_on_the_client_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(local).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let (SocketAddr::V4(local4), SocketAddr::V4(peer4)) = (local, peer) else {
            unreachable!("bound to IPv4")
        };
        let netlink = diag_inode(peer4, local4).expect("sock_diag answers");
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        assert_eq!(Some(netlink), find_inode(&table, peer.port(), local.port()));
    }

    #[test]
    fn a_connection_from_this_process_is_traced_to_its_group() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(local).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let own = process_group(std::process::id()).unwrap();
        assert!(belongs_to_group(local, peer, own));
        assert!(!belongs_to_group(local, peer, own + 1_000_000));
    }
}
