//! Finding 12: per-address limits keyed on the TCP peer: behind a proxy every client was
//! one key (20 failures by one attacker locked everyone out), each IPv6 address was its
//! own key (rotating within a /64 escaped the limit), and `X-Forwarded-*` headers were
//! believed from anyone.

use futures::future::join_all;
use serde_json::json;

use crate::{Server, http};

/// Wrong passwords for unknown accounts from `client` (as the proxy says); the statuses.
async fn attempts(server: &Server, client: &str, count: usize, tag: &str) -> Vec<u16> {
    let answers =
        join_all((0..count).map(|n| {
            http()
            .post(format!("{}/auth/v1/token?grant_type=password", server.public_url))
            .header("x-forwarded-for", format!("6.6.6.6, {client}"))
            .json(&json!({"email": format!("{tag}{n}@example.org"), "password": "wrong password!"}))
            .send()
        }))
        .await;
    answers
        .into_iter()
        .map(|answer| answer.unwrap().status().as_u16())
        .collect()
}

fn refused(statuses: &[u16]) -> usize {
    statuses.iter().filter(|status| **status == 429).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let server = Server::start_with(&["--no-examples", "--trusted-proxy", "127.0.0.1/32"]);
    // 25 failures from one client: 20 tried, the rest refused.
    let first = attempts(&server, "203.0.113.7", 25, "a").await;
    assert_eq!(refused(&first), 5, "{first:?}");
    // Another client behind the same proxy is not locked out.
    let other = attempts(&server, "198.51.100.9", 3, "b").await;
    assert_eq!(refused(&other), 0, "{other:?}");
    // IPv6: one /64 is one client.
    let v6 = attempts(&server, "2001:db8::1", 20, "c").await;
    assert_eq!(refused(&v6), 0, "{v6:?}");
    let same_64 = attempts(&server, "2001:db8::ffff:1", 1, "d").await;
    assert_eq!(same_64, [429]);
    let next_64 = attempts(&server, "2001:db8:0:1::1", 1, "e").await;
    assert_eq!(next_64, [400]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trusted_proxy_forwarding_headers_are_ignored() {
    let server = Server::start();
    let first = attempts(&server, "203.0.113.7", 20, "a").await;
    assert_eq!(refused(&first), 0, "{first:?}");
    // The header names another client, but it comes from the peer itself: still locked.
    let other = attempts(&server, "198.51.100.9", 2, "b").await;
    assert_eq!(other, [429, 429]);
}
