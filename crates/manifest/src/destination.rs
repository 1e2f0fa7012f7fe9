//! Which resolved addresses an outbound request may reach. `allowed_outbound_hosts`
//! matches names; a name is only as trustworthy as its DNS, so after resolution an
//! address inside the machine or its networks (loopback, RFC 1918, link-local with the
//! cloud metadata service, CGNAT, ULA, …) is refused unless the entry that allowed the
//! request names that address itself (or `localhost`), or the installation opts out
//! (`gureum up --outbound-private allow`). Audit finding 15.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether functions may reach private addresses through names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrivateDestinations {
    /// Refused unless an entry names the address (or `localhost`) itself.
    #[default]
    Deny,
    /// Allowed: for installations whose functions call internal services by name.
    Allow,
}

/// A resolved address that the policy refuses, with why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{address} is {kind}")]
pub struct ProhibitedAddress {
    /// The address the name resolved to.
    pub address: IpAddr,
    /// What kind of non-public address it is, e.g. "a loopback address".
    pub kind: &'static str,
}

/// What kind of non-public address `ip` is, or `None` for a public (globally routed)
/// one. IPv4 addresses embedded in IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address they reach.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

/// Checks every address `host` resolved to (all of them: a rebinding name answers one
/// public and one private address and lets the connection pick) and returns the
/// first prohibited one.
pub fn check_resolved(
    addresses: &[SocketAddr],
    policy: PrivateDestinations,
) -> Result<(), ProhibitedAddress> {
    if policy == PrivateDestinations::Allow {
        return Ok(());
    }
    for address in addresses {
        if let Some(kind) = non_public(address.ip()) {
            return Err(ProhibitedAddress {
                address: address.ip(),
                kind,
            });
        }
    }
    Ok(())
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "an unspecified (\"this network\") address",
        (127, _, _) => "a loopback address",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "a private (RFC 1918) address",
        (169, 254, _) => "a link-local address (cloud metadata services live there)",
        (100, 64..=127, _) => "a shared (CGNAT, RFC 6598) address",
        (192, 0, 0) => "an IETF protocol address (RFC 6890)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address (RFC 2544)",
        (192, 88, 99) => "a 6to4 relay anycast address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved or broadcast address",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return non_public_v4(v4);
    }
    let segments = ip.segments();
    Some(match segments[0] {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        0xfc00..=0xfdff => "a unique local (ULA) address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        0xff00..=0xffff => "a multicast address",
        0x2001 if segments[1] == 0x0db8 => "a documentation address",
        0x0100 if segments[1..4] == [0, 0, 0] => "a discard-only address",
        // Everything else outside 2000::/3 (global unicast) is unassigned or reserved.
        0x0000..=0x1fff | 0x4000..=0xfbff => "a reserved IPv6 address",
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address stands for, when it embeds one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let low = Ipv4Addr::new(
        (segments[6] >> 8) as u8,
        segments[6] as u8,
        (segments[7] >> 8) as u8,
        segments[7] as u8,
    );
    match segments {
        // IPv4-mapped ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // IPv4-compatible ::a.b.c.d (deprecated; ::, ::1 are not)
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_unspecified() && !ip.is_loopback() => Some(low),
        // NAT64 well-known prefix 64:ff9b::/96
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 6to4 2002:AABB:CCDD::/48
        [0x2002, high, low_half, ..] => Some(Ipv4Addr::new(
            (high >> 8) as u8,
            high as u8,
            (low_half >> 8) as u8,
            low_half as u8,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(address: &str) -> Option<&'static str> {
        non_public(address.parse().unwrap())
    }

    #[test]
    fn internal_ipv4_addresses_are_not_public() {
        for address in [
            "127.0.0.1",
            "127.0.1.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
        ] {
            assert!(kind(address).is_some(), "{address} passed as public");
        }
    }

    #[test]
    fn internal_ipv6_addresses_are_not_public_also_when_they_embed_ipv4() {
        for address in [
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2001:db8::1",
        ] {
            assert!(kind(address).is_some(), "{address} passed as public");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(kind(address), None, "{address} refused");
        }
    }

    #[test]
    fn the_metadata_service_is_named_as_link_local() {
        let refused = check_resolved(
            &["169.254.169.254:80".parse().unwrap()],
            PrivateDestinations::Deny,
        )
        .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "169.254.169.254 is a link-local address (cloud metadata services live there)"
        );
    }

    #[test]
    fn one_private_answer_among_public_ones_refuses_the_name() {
        let answers: Vec<SocketAddr> = vec![
            "93.184.216.34:443".parse().unwrap(),
            "127.0.0.1:443".parse().unwrap(),
        ];
        assert!(check_resolved(&answers, PrivateDestinations::Deny).is_err());
        assert!(check_resolved(&answers, PrivateDestinations::Allow).is_ok());
        assert!(check_resolved(&answers[..1], PrivateDestinations::Deny).is_ok());
    }
}
