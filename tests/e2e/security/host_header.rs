//! Finding 14: a `Host` header that is not a plain authority panicked the WebSocket
//! path (`Host: a b`) and changed the path a function sees (`Host: x/p?`), for
//! WebSocket events and for queued events alike.

use std::time::Duration;

use super::raw_exchange;
use crate::queue::{Recorder, enqueue};
use crate::{Server, deploy};

fn upgrade(host: &str) -> String {
    format!(
        "GET /ws/tb HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

#[tokio::test]
async fn odd_hosts_neither_panic_nor_change_the_path() {
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("server.log");
    let server = Server::start_logged(&log);
    let recorder = Recorder::start().await;
    let _tb = deploy(
        &server,
        "tb",
        &format!("{}{}", recorder.env(), crate::queue::PUBLIC_ASYNC),
    );

    // The WebSocket `$connect` event reaches the function at its own path whatever the
    // Host says (the testbed accepts only there, routing by the last path segment).
    let port = server.public_url.rsplit(':').next().unwrap().to_string();
    for host in [
        "a b",
        "x/p?",
        "x#frag",
        "user@evil",
        &format!("127.0.0.1:{port}"),
    ] {
        let answer = raw_exchange(&server.public_url, &upgrade(host)).await;
        assert!(
            answer.starts_with("HTTP/1.1 101"),
            "Host {host:?}: {answer:?}"
        );
    }

    // A queued event keeps its path too.
    let (status, body) = enqueue(&server, "/fn/tb/job?n=1", "x", &[("host", "x/p?")]).await;
    assert_eq!(status, 202, "{body}");
    recorder
        .wait_until(Duration::from_secs(20), "the job's report", |reports| {
            !reports.is_empty()
        })
        .await;
    let reports = recorder.reports();
    assert_eq!(reports[0].1["path"], "/job?n=1", "{reports:?}");

    server.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("panicked"), "the server panicked:\n{text}");
}
