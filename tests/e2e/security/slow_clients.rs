//! Finding 7: slow and silent clients. A request head that never finishes (slowloris),
//! a connection that sends nothing and one that stops inside the HTTP/2 preface are
//! closed after the header timeout on both listeners; a public listener held full
//! under a small open-file limit leaves the admin listener answering and serves again
//! once the slow clients go; requests and WebSockets that outlive the idle timeout are
//! not cut by it.

use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::security::raw_exchange;
use crate::{Server, deploy, http};

/// What each slow client sends before going silent.
const SLOW_OPENINGS: [&str; 3] = [
    // slowloris: a request head that never ends
    "GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: 1\r\n",
    // half of the HTTP/2 preface: hyper cannot tell HTTP/1 from h2 yet
    "PRI * HTTP/2.0\r\n",
    // nothing at all
    "",
];

async fn open_slow(base: &str, opening: &str) -> TcpStream {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(opening.as_bytes()).await.expect("write");
    stream
}

/// Waits up to `limit` for the server to close `stream`; `None` if it stayed open.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            // hyper may answer before closing (e.g. 408); keep reading to the close.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slow_and_silent_clients_are_disconnected_after_the_header_timeout_on_both_listeners() {
    let server = Server::start_with(&["--no-examples", "--header-timeout", "1s"]);
    let mut slow = Vec::new();
    for base in [&server.public_url, &server.admin_url] {
        for opening in SLOW_OPENINGS {
            slow.push((base.clone(), opening, open_slow(base, opening).await));
        }
    }
    let mut still_open = Vec::new();
    for (base, opening, stream) in &mut slow {
        // Before the fix they stayed open indefinitely (the audit held them 44 s).
        if closed_within(stream, Duration::from_secs(10))
            .await
            .is_none()
        {
            still_open.push(format!("{base} after {opening:?}"));
        }
    }
    assert!(
        still_open.is_empty(),
        "still open 10 s after a 1 s header timeout: {still_open:?}"
    );
    // A client that does send its request is served as before.
    let answer = raw_exchange(
        &server.public_url,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_public_listener_full_of_slow_clients_leaves_the_admin_listener_answering() {
    // The audit's reproduction, scaled down: more slow sockets than a server limited to
    // 128 open files has left (it uses about 20 itself) made the admin listener's accept
    // fail with EMFILE. The public listener's default cap (64 here) now leaves room for
    // everything else; the rest wait in the backlog.
    let server = Server::start_with_open_file_limit(128, &["--no-examples"]);
    let mut slow = Vec::new();
    for _ in 0..120 {
        slow.push(open_slow(&server.public_url, SLOW_OPENINGS[0]).await);
    }
    // Let the server accept what it will.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..5 {
        let health = client
            .get(format!("{}/healthz", server.admin_url))
            .send()
            .await
            .expect("the admin listener answers while the public one is full");
        assert_eq!(health.status(), 200);
    }
    let listed = client
        .get(format!("{}/api/v1/functions", server.admin_url))
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("the control API answers while the public listener is full");
    assert_eq!(listed.status(), 200);

    // A new public client waits in the backlog rather than being accepted …
    let waiting = tokio::spawn({
        let base = server.public_url.clone();
        async move {
            raw_exchange(
                &base,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "answered while the listener is full"
    );
    // … and is served once the slow clients go.
    drop(slow);
    let answer = waiting.await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "after the slow clients left: {answer:?}"
    );
    let health = client
        .get(format!("{}/healthz", server.public_url))
        .send()
        .await
        .expect("the public listener serves again");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn requests_and_websockets_outlive_the_idle_timeout_and_idle_keep_alives_do_not() {
    let server = Server::start_with(&["--no-examples", "--idle-timeout", "1s"]);
    let _dir = deploy(&server, "idle-tb", "timeout_ms = 10000");

    // A request in flight longer than the idle timeout is not cut.
    let slept = http()
        .get(format!("{}/fn/idle-tb/sleep?ms=2500", server.public_url))
        .send()
        .await
        .expect("a long request");
    assert_eq!(slept.status(), 200);
    assert_eq!(slept.text().await.unwrap(), "slept 2500");

    // A WebSocket quiet for longer than the idle timeout still works.
    let (mut ws, _id) = crate::websocket::connect(&server, "/ws/idle-tb").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ws.send(Message::text("echo still here")).await.unwrap();
    let answer = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Text(text))) => break text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("the WebSocket ended or failed: {other:?}"),
        }
    };
    assert_eq!(answer, "still here");

    // A keep-alive connection with nothing in flight is closed after the idle timeout.
    let mut idle = TcpStream::connect(server.public_url.trim_start_matches("http://"))
        .await
        .unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let read = idle.read(&mut buffer).await.unwrap();
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    let closed = closed_within(&mut idle, Duration::from_secs(10)).await;
    assert!(
        closed.is_some(),
        "an idle keep-alive connection stayed open 10 s past a 1 s idle timeout"
    );
}
