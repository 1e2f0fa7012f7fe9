//! WebSockets through the real server with real clients (tokio-tungstenite): `$connect`
//! accepting and refusing, `$default` answers, `$disconnect` on every kind of end, the
//! limits (1009, 1013, idle), the management API (also from boto3), channels at 1,000
//! members, and `$disconnect` for every connection at shutdown.

use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::metering::{samples, sum_where};
use crate::{Server, deploy, http, shared};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous bound for one message on a loaded machine.
const WAIT: Duration = Duration::from_secs(15);

fn ws_url(server: &Server, path: &str) -> String {
    let base = match server.public_url.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => server.public_url.replacen("http://", "ws://", 1),
    };
    format!("{base}{path}")
}

/// For a server with a local CA (HTTPS): a TLS connector trusting only that CA.
fn connector(server: &Server) -> Option<tokio_tungstenite::Connector> {
    let ca = std::fs::read(server.ca_path()?).expect("the local CA");
    let mut config = crate::tls_client_config(&[&ca]);
    // The WebSocket handshake is HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
        config,
    )))
}

/// Connects to `path`; returns the socket and its connection id.
pub(crate) async fn connect(server: &Server, path: &str) -> (Ws, String) {
    let (ws, response) = tokio_tungstenite::connect_async_tls_with_config(
        ws_url(server, path),
        None,
        false,
        connector(server),
    )
    .await
    .unwrap_or_else(|error| panic!("connecting to {path}: {error}"));
    let id = response.headers()["x-gureum-connection-id"]
        .to_str()
        .unwrap()
        .to_string();
    (ws, id)
}

/// The next text message (pings and pongs skipped).
async fn next_text(ws: &mut Ws) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("no message in time")
            .expect("the connection ended")
            .expect("a WebSocket error");
        match message {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Sends `text` and returns the answer.
async fn ask(ws: &mut Ws, text: &str) -> String {
    ws.send(Message::text(text)).await.unwrap();
    next_text(ws).await
}

/// Reads until the server's close frame (data before it is skipped).
async fn close_frame(ws: &mut Ws) -> Option<CloseFrame> {
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Close(frame))) => return frame,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// Waits for the testbed's `disconnect ID CODE` line in the function's log; returns CODE.
async fn disconnect_code(server: &Server, function: &str, id: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let needle = format!("disconnect {id} ");
    loop {
        let output = server.cli(&["logs", function, "--since", "1h", "--grep", &needle]);
        assert!(output.success, "{output:?}");
        if let Some(line) = output.stdout.lines().next() {
            return line.rsplit(' ').next().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no $disconnect for {id} in the log"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn connect_answers_and_refusals_go_through_the_function() {
    let server = shared().await;
    let _dir = deploy(server, "ws-basic", "");
    let (mut ws, id) = connect(server, "/ws/ws-basic").await;
    assert_eq!(id.len(), 22, "{id}");
    assert_eq!(ask(&mut ws, "echo hello").await, "hello");
    // No answer body → nothing sent; the next answer arrives in order.
    ws.send(Message::text("silent")).await.unwrap();
    assert_eq!(ask(&mut ws, "echo after").await, "after");
    let info: serde_json::Value = serde_json::from_str(&ask(&mut ws, "info").await).unwrap();
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1", "{info}");
    assert!(
        info["connectedAt"].as_str().unwrap().ends_with('Z'),
        "{info}"
    );

    // A non-2xx answer to $connect refuses the upgrade with that status.
    match tokio_tungstenite::connect_async(ws_url(server, "/ws/ws-basic?reject=403")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
    // An unknown function, and a plain GET.
    match tokio_tungstenite::connect_async(ws_url(server, "/ws/nobody-here")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404);
        }
        other => panic!("expected 404, got {other:?}"),
    }
    let plain = server.get("/ws/ws-basic").await;
    assert_eq!(plain.status(), 426);

    // Another function cannot address this connection.
    let _other = deploy(server, "ws-other", "");
    let (mut other, _) = connect(server, "/ws/ws-other").await;
    assert_eq!(
        ask(&mut other, &format!("send {id} intrusion")).await,
        "403"
    );
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    assert_eq!(disconnect_code(server, "ws-basic", &id).await, "1000");
}

#[tokio::test]
async fn disconnect_fires_on_server_close_idle_timeout_and_oversized_messages() {
    let server = Server::start_with(&[
        "--no-examples",
        "--ws-idle-timeout",
        "1s",
        "--ws-max-message-bytes",
        "1024",
    ]);
    let _dir = deploy(&server, "ws-limits", "");

    // DELETE @connections by the function itself: close 1000.
    let (mut closed, closed_id) = connect(&server, "/ws/ws-limits").await;
    closed.send(Message::text("close")).await.unwrap();
    let frame = close_frame(&mut closed).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1000);
    assert_eq!(
        disconnect_code(&server, "ws-limits", &closed_id).await,
        "1000"
    );

    // Idle for over a second: 1001.
    let (mut idle, idle_id) = connect(&server, "/ws/ws-limits").await;
    let frame = close_frame(&mut idle).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1001, "{frame:?}");
    assert_eq!(
        disconnect_code(&server, "ws-limits", &idle_id).await,
        "1001"
    );

    // A message over the limit: 1009; an answer over it is not sent.
    let (mut big, big_id) = connect(&server, "/ws/ws-limits").await;
    big.send(Message::text("big 5000")).await.unwrap();
    assert_eq!(ask(&mut big, "echo still here").await, "still here");
    big.send(Message::text("x".repeat(2000))).await.unwrap();
    let frame = close_frame(&mut big).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
    assert_eq!(disconnect_code(&server, "ws-limits", &big_id).await, "1009");
}

#[tokio::test]
async fn a_slow_consumer_is_closed_and_memory_stays_bounded() {
    let server = Server::start_with(&["--no-examples", "--metrics-public", "--ws-send-queue", "8"]);
    let _dir = deploy(&server, "ws-slow", "");
    let (mut slow, slow_id) = connect(&server, "/ws/ws-slow").await;
    assert_eq!(ask(&mut slow, "join flood").await, "200");
    let (mut sender, _) = connect(&server, "/ws/ws-slow").await;
    let rss = || async {
        let text = http()
            .get(format!("{}/metrics", server.admin_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (
            sum_where(&samples(&text, "process_resident_memory_bytes"), &[]),
            text,
        )
    };
    let (before, _) = rss().await;
    // 400 broadcasts of 100 KB = 40 MB at a client that reads nothing.
    let chunk = "y".repeat(100_000);
    for _ in 0..400 {
        let answer = ask(&mut sender, &format!("broadcast flood {chunk}")).await;
        if answer.contains("\"delivered\":0") {
            break;
        }
    }
    assert_eq!(disconnect_code(&server, "ws-slow", &slow_id).await, "1013");
    let (after, text) = rss().await;
    assert!(
        after - before < 30e6,
        "resident memory grew by {} MB",
        (after - before) / 1e6
    );
    assert_eq!(
        sum_where(
            &samples(&text, "gureum_websocket_slow_consumers_total"),
            &[("function", "ws-slow")]
        ),
        1.0
    );
}

#[tokio::test]
async fn a_thousand_members_of_one_channel_all_get_a_broadcast() {
    let server = Server::start_with(&["--no-examples", "--metrics-public"]);
    // 100 connects at a time: 40 slots + their wait queue hold them all.
    let _dir = deploy(&server, "ws-room", "max_instances = 40");
    let mut members = Vec::new();
    for batch in 0..10 {
        let joins = (0..100).map(|_| async {
            let (mut ws, _) = connect(&server, "/ws/ws-room").await;
            assert_eq!(ask(&mut ws, "join room").await, "200");
            ws
        });
        members.extend(futures::future::join_all(joins).await);
        assert_eq!(members.len(), (batch + 1) * 100);
    }
    let text = http()
        .get(format!("{}/metrics", server.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sum_where(
            &samples(&text, "gureum_websocket_connections"),
            &[("function", "ws-room")]
        ),
        1000.0
    );
    let mut sender = members.pop().unwrap();
    let answer = ask(&mut sender, "broadcast room to everyone").await;
    assert_eq!(answer, r#"{"delivered":999}"#);
    let received = futures::future::join_all(members.iter_mut().map(next_text)).await;
    assert!(received.iter().all(|text| text == "to everyone"));
}

#[tokio::test]
async fn boto3_posts_to_gets_and_deletes_a_connection() {
    let server = shared().await;
    let _dir = deploy(server, "ws-boto", "");
    let (mut ws, id) = connect(server, "/ws/ws-boto").await;
    // The function's token, as the function sees it.
    let echo: serde_json::Value = server
        .get("/fn/ws-boto/echo?env=GUREUM_FUNCTION_TOKEN")
        .await
        .json()
        .await
        .unwrap();
    let token = echo["env_value"].as_str().unwrap().to_string();
    // boto3 as the Python chat example vendors it (`cargo xtask build-fixtures`).
    let boto3 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/chat-python/build");
    let script = format!(
        r#"
import boto3
client = boto3.client("apigatewaymanagementapi", endpoint_url="{url}",
    aws_access_key_id="{token}", aws_secret_access_key="gureum", region_name="us-east-1")
client.post_to_connection(ConnectionId="{id}", Data=b"from boto3")
info = client.get_connection(ConnectionId="{id}")
print("source", info["Identity"]["SourceIp"], info["ConnectedAt"].year)
client.delete_connection(ConnectionId="{id}")
try:
    client.post_to_connection(ConnectionId="{id}", Data=b"late")
except client.exceptions.GoneException:
    print("gone")
bad = boto3.client("apigatewaymanagementapi", endpoint_url="{url}",
    aws_access_key_id="gft.ws-boto.0000", aws_secret_access_key="x", region_name="us-east-1")
try:
    bad.post_to_connection(ConnectionId="{id}", Data=b"x")
except bad.exceptions.ForbiddenException:
    print("forbidden")
"#,
        url = server.public_url,
    );
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .env("PYTHONPATH", &boto3)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(next_text(&mut ws).await, "from boto3");
    assert!(stdout.contains("source 127.0.0.1 20"), "{stdout}");
    assert!(stdout.contains("gone"), "{stdout}");
    assert!(stdout.contains("forbidden"), "{stdout}");
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1000);
}

#[tokio::test]
async fn shutdown_sends_disconnect_for_every_open_connection() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in(&data_dir, None);
    let _dir = deploy(&server, "ws-bye", "");
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(connect(&server, "/ws/ws-bye").await);
    }
    let stopping = tokio::task::spawn_blocking(move || server.stop());
    for (ws, _) in &mut sockets {
        let frame = close_frame(ws).await.expect("a close frame");
        assert_eq!(u16::from(frame.code), 1001);
    }
    assert_eq!(stopping.await.unwrap(), Some(0));
    // The $disconnect lines were written before the exit.
    let server = Server::start_in(&data_dir, None);
    for (_, id) in &sockets {
        assert_eq!(disconnect_code(&server, "ws-bye", id).await, "1001");
    }
}

/// Two clients chat through one of the chat examples (same protocol in both).
pub(crate) async fn two_clients_chat(server: &Server, function: &str) {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(function);
    let deployed = server.cli(&["deploy", example.to_str().unwrap()]);
    assert!(deployed.success, "{deployed:?}");
    // The page is served by the function itself.
    let page = server.get(&format!("/{function}")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("WebSocket"));

    let json = |text: String| -> serde_json::Value {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    let path = format!("/ws/{function}");
    let (mut ann, _) = connect(server, &path).await;
    let (mut bob, _) = connect(server, &path).await;
    let welcome = json(ask(&mut ann, r#"{"action":"join","room":"lobby","nick":"ann"}"#).await);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["members"], serde_json::json!(["ann"]));
    let welcome = json(ask(&mut bob, r#"{"action":"join","room":"lobby","nick":"bob"}"#).await);
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann", "bob"]),
        "{welcome}"
    );
    let joined = json(next_text(&mut ann).await);
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["nick"], "bob");

    bob.send(Message::text(r#"{"action":"say","text":"hi ann"}"#))
        .await
        .unwrap();
    for client in [&mut ann, &mut bob] {
        let said = json(next_text(client).await);
        assert_eq!(said["type"], "message", "{said}");
        assert_eq!(said["nick"], "bob");
        assert_eq!(said["text"], "hi ann");
    }
    let error = json(ask(&mut ann, "not json").await);
    assert_eq!(error["type"], "error");

    bob.close(None).await.unwrap();
    let left = json(next_text(&mut ann).await);
    assert_eq!(left["type"], "left", "{left}");
    assert_eq!(left["nick"], "bob");
}

#[tokio::test]
async fn two_clients_chat_through_the_wasm_example() {
    two_clients_chat(shared().await, "chat").await;
}

#[tokio::test]
async fn two_clients_chat_through_the_python_lambda_example() {
    two_clients_chat(shared().await, "chat-python").await;
}

#[tokio::test]
async fn the_per_function_connection_cap_refuses_with_429_until_one_closes() {
    let server = Server::start_with(&["--no-examples", "--ws-max-connections", "2"]);
    let _dir = deploy(&server, "ws-cap", "");
    let (mut first, first_id) = connect(&server, "/ws/ws-cap").await;
    let (_second, _) = connect(&server, "/ws/ws-cap").await;
    match tokio_tungstenite::connect_async(ws_url(&server, "/ws/ws-cap")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["x-gureum-error"], "too_many_connections");
        }
        other => panic!("expected 429, got {other:?}"),
    }
    first
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "done".into(),
        }))
        .await
        .unwrap();
    assert_eq!(disconnect_code(&server, "ws-cap", &first_id).await, "1000");
    // The place is free once the connection is gone.
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio_tungstenite::connect_async(ws_url(&server, "/ws/ws-cap")).await {
            Ok(_) => break,
            Err(error) => assert!(Instant::now() < deadline, "never admitted again: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
