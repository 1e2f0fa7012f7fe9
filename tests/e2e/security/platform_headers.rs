//! Finding 8 and info item 4: a public caller could send the headers the platform sets
//! (`x-gureum-trigger: cron`, `-schedule`, `-invocation-id`, `-destination-of`, …) and a
//! function took them for the platform's; a queued event replayed them; the internal
//! path `/.gureum/` was refused only when spelled exactly; and `/ws/NAME` with
//! `auth = "none"` passed a client's `x-gureum-auth-claims` into `$connect`.

use std::time::Duration;

use serde_json::Value;

use super::raw_exchange;
use crate::queue::{Recorder, enqueue};
use crate::{Server, deploy, http};

const FORGED: [(&str, &str); 7] = [
    ("x-gureum-trigger", "cron"),
    ("x-gureum-schedule", "nightly"),
    ("x-gureum-scheduled-time", "2026-01-01T00:00:00Z"),
    ("x-gureum-invocation-id", "forged-id"),
    ("x-gureum-attempt", "7"),
    ("x-gureum-destination-of", "billing"),
    ("x-gureum-auth-claims", "{\"sub\":\"admin\"}"),
];

#[tokio::test]
async fn callers_cannot_forge_platform_headers_or_reach_internal_paths() {
    let server = Server::start();
    let recorder = Recorder::start().await;
    let _tb = deploy(
        &server,
        "tb",
        &format!("{}{}", recorder.env(), crate::queue::PUBLIC_ASYNC),
    );

    // Synchronous: the function sees none of the forged headers (an invocation id the
    // platform sets is its own, never the caller's).
    let mut request = http().get(format!("{}/fn/tb/echo", server.public_url));
    for (name, value) in FORGED {
        request = request.header(name, value);
    }
    let echo: Value = request.send().await.unwrap().json().await.unwrap();
    for (name, value) in FORGED {
        let seen = &echo["headers"][name];
        assert!(
            seen.as_array()
                .is_none_or(|values| !values.iter().any(|seen| seen == value)),
            "{name} reached the function: {echo}"
        );
    }

    // Queued: the stored request does not carry them into the attempt either.
    let (status, body) = enqueue(&server, "/fn/tb/job", "x", &FORGED).await;
    assert_eq!(status, 202, "{body}");
    recorder
        .wait_until(Duration::from_secs(20), "the job's report", |reports| {
            !reports.is_empty()
        })
        .await;
    let report = &recorder.reports()[0].1;
    assert_eq!(report["schedule"], "", "{report}");
    assert_eq!(report["destination_of"], "", "{report}");
    assert_eq!(report["scheduled_time"], "", "{report}");
    assert_ne!(report["trigger"], "cron", "{report}");
    assert_ne!(report["id"], "forged-id", "{report}");
    assert_eq!(report["attempt"], "1", "{report}");

    // The internal path, however it is spelled, on the function's prefix and on its own.
    for path in [
        "/fn/tb/.gureum/websocket",
        "/fn/tb/%2Egureum/websocket",
        "/fn/tb/%2egureum/websocket",
        "/fn/tb/.GUREUM/websocket",
        "/fn/tb/%252Egureum/websocket",
        "/fn/tb/.gureum%2Fwebsocket",
        "/fn/tb/x/..%2F.gureum/websocket",
    ] {
        let answer = http()
            .post(format!("{}{path}", server.public_url))
            .header("x-gureum-route-key", "$default")
            .body("{\"requestContext\":{\"routeKey\":\"$default\"},\"body\":\"echo hi\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
    }

    // `/ws/NAME` without auth: the `$connect` event has no claims a client made up.
    let port = server.public_url.rsplit(':').next().unwrap().to_string();
    let answer = raw_exchange(
        &server.public_url,
        &format!(
            "GET /ws/tb?claims=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nx-gureum-auth-claims: {{\"sub\":\"admin\"}}\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.ends_with("claims: absent"), "{answer}");
}
