//! Who is on the other end of a Runtime API connection. Each instance's Runtime API
//! listens on its own loopback port, and any local process could connect to it; so
//! every accepted connection is traced through `/proc` to the process that owns the
//! client socket, and served only when that process belongs to the instance's process
//! group. That is what keeps one function from reading another's events.

use std::net::SocketAddr;

/// Whether the client socket `peer` (connected to our `local` listener address) is
/// held by a process in process group `pgid`. Fails closed: anything unreadable is no.
pub fn belongs_to_group(local: SocketAddr, peer: SocketAddr, pgid: u32) -> bool {
    let Some(inode) = socket_inode(local, peer) else {
        return false;
    };
    let wanted = format!("socket:[{inode}]");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        if process_group(pid) != Some(pgid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path())
                .is_ok_and(|target| target.as_os_str() == wanted.as_str())
            {
                return true;
            }
        }
    }
    false
}

/// The inode of the client-side socket of the connection `peer` → `local`.
fn socket_inode(local: SocketAddr, peer: SocketAddr) -> Option<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            find_inode(&text, peer.port(), local.port())
        })
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
