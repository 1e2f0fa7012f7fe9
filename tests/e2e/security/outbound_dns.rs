//! Finding 15: `allowed_outbound_hosts` matched names only, so an allowed name whose DNS
//! answers a loopback or private address reached internal services, gureum's own admin
//! listener included. Now the resolved addresses are checked: a name (or a wildcard)
//! reaching a private address is refused with `DestinationIpProhibited` and a line in
//! the function's log, while an entry naming the address itself keeps working, and
//! `--outbound-private allow` lets an installation opt out.

use std::net::{IpAddr, SocketAddr};

use tokio::io::AsyncWriteExt as _;

use crate::{Server, deploy, http};

/// A name other than `localhost` that resolves to loopback addresses only, without
/// root: the machine's hostname (Debian maps it to 127.0.1.1 in /etc/hosts, containers
/// to their address or 127.0.0.1) or Debian's `ip6-localhost`.
async fn loopback_name() -> (String, IpAddr) {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    for name in [hostname.as_str(), "ip6-localhost", "ip6-loopback"] {
        if name.is_empty() || name == "localhost" || name.parse::<IpAddr>().is_ok() {
            continue;
        }
        let Ok(addresses) = tokio::net::lookup_host((name, 80)).await else {
            continue;
        };
        let addresses: Vec<SocketAddr> = addresses.collect();
        if !addresses.is_empty() && addresses.iter().all(|address| address.ip().is_loopback()) {
            return (name.to_string(), addresses[0].ip());
        }
    }
    panic!(
        "no name resolves to loopback here (tried the hostname {hostname:?}, ip6-localhost, ip6-loopback); add one to /etc/hosts"
    );
}

/// An internal service to reach: the admin listener itself when the name resolves to
/// its address (127.0.0.1), else a stand-in answering `ok` on the name's address.
async fn internal_target(server: &Server, address: IpAddr) -> (u16, String) {
    let admin: SocketAddr = server
        .admin_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    if admin.ip() == address {
        return (admin.port(), "/healthz".to_string());
    }
    let listener = tokio::net::TcpListener::bind((address, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, "/".to_string())
}

async fn fetch(server: &Server, function: &str, url: &str) -> (u16, String) {
    let response = http()
        .get(format!("{}/fn/{function}/fetch", server.public_url))
        .query(&[("url", url)])
        .send()
        .await
        .expect("public request");
    (response.status().as_u16(), response.text().await.unwrap())
}

fn literal(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[tokio::test]
async fn an_allowed_name_resolving_to_loopback_does_not_reach_internal_services() {
    let server = Server::start();
    let (name, address) = loopback_name().await;
    let (port, path) = internal_target(&server, address).await;
    let by_name = format!("http://{name}:{port}");
    let by_address = format!("http://{}:{port}", literal(address));
    let _named = deploy(
        &server,
        "dns-named",
        &format!("allowed_outbound_hosts = [\"{by_name}\"]"),
    );
    let _literal = deploy(
        &server,
        "dns-literal",
        &format!("allowed_outbound_hosts = [\"{by_address}\"]"),
    );
    let _anything = deploy(&server, "dns-any", "allowed_outbound_hosts = [\"*\"]");

    // Before the fix: 200 "ok" from the internal service.
    let (status, body) = fetch(&server, "dns-named", &format!("{by_name}{path}")).await;
    assert!(
        status == 599 && body.to_lowercase().contains("prohibited"),
        "{by_name} ({address}) through its name: want 599 DestinationIpProhibited, got {status} {body}"
    );
    // "*" does not name the address either.
    let (status, body) = fetch(&server, "dns-any", &format!("{by_address}{path}")).await;
    assert!(
        status == 599 && body.to_lowercase().contains("prohibited"),
        "{by_address} through \"*\": want 599 DestinationIpProhibited, got {status} {body}"
    );
    // The author who names the address means it.
    let (status, body) = fetch(&server, "dns-literal", &format!("{by_address}{path}")).await;
    assert_eq!(
        (status, body.trim()),
        (200, "ok"),
        "{by_address} named literally"
    );

    // The function's log says why and how to allow it (logs are written in batches).
    let wanted = format!("{name} resolves to {address}, a loopback address");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let logs = server.cli(&["logs", "dns-named", "--since", "1h"]);
        assert!(logs.success, "{logs:?}");
        if logs.stdout.contains(&wanted) && logs.stdout.contains("--outbound-private allow") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal line ({wanted:?}) in the log:\n{}",
            logs.stdout
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn outbound_private_allow_lets_names_reach_private_addresses() {
    let server = Server::start_with(&["--no-examples", "--outbound-private", "allow"]);
    let (name, address) = loopback_name().await;
    let (port, path) = internal_target(&server, address).await;
    let by_name = format!("http://{name}:{port}");
    let _named = deploy(
        &server,
        "dns-opt-out",
        &format!("allowed_outbound_hosts = [\"{by_name}\"]"),
    );
    let (status, body) = fetch(&server, "dns-opt-out", &format!("{by_name}{path}")).await;
    assert_eq!(
        (status, body.trim()),
        (200, "ok"),
        "{by_name} with --outbound-private allow"
    );
}
