//! Finding 9: a realtime stream kept the caller of the moment it opened: after the admin
//! disabled Eve and she signed out everywhere, her stream still carried Bob's new
//! documents, and a stream outlived its access token. Streams now end at the token's
//! `exp` (`event: token_expired`) and within seconds of a revocation of all the user's
//! sessions, made on any node (`event: revoked`); and a user (or an address) holds a
//! bounded number of them.

use std::time::Duration;

use crate::backend::{installation_key, read_events, signup, write_config};
use crate::{Server, http};
use serde_json::{Value, json};

const OPEN_RULES: &str = r#"
[rules]
list   = "auth != null"
get    = "auth != null"
create = "auth != null"
"#;

fn open_collection(server: &Server) -> String {
    let config = write_config(OPEN_RULES);
    let set = server.cli(&[
        "collections",
        "set",
        "plans",
        config.path().to_str().unwrap(),
    ]);
    assert!(set.success, "{set:?}");
    format!("{}/data/v1/collections/plans", server.public_url)
}

async fn open_stream(collection: &str, token: &str) -> reqwest::Response {
    let stream = http()
        .get(format!("{collection}/stream"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream
}

/// Reads the rest of a stream that must end within `within`; its event names.
async fn rest_of(stream: &mut reqwest::Response, within: Duration) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("the stream did not end; events so far: {events:?}"));
        let Some(chunk) = chunk.unwrap() else {
            return events;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let name = frame.lines().find_map(|l| l.strip_prefix("event: "));
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
            if let Some(name) = name {
                let data = data.and_then(|d| serde_json::from_str(d).ok());
                events.push((name.to_string(), data.unwrap_or(Value::Null)));
            }
        }
    }
}

async fn write(collection: &str, token: &str, text: &str) {
    let answer = http()
        .post(format!("{collection}/docs"))
        .bearer_auth(token)
        .json(&json!({"text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
}

#[tokio::test]
async fn streams_end_when_the_user_is_disabled_or_signs_out_everywhere() {
    let server = Server::start();
    let plans = open_collection(&server);
    let eve = signup(&server, "eve@example.org").await;
    let bob = signup(&server, "bob@example.org").await;

    // Disabled by the admin: the stream says so and ends before Bob's next write.
    let mut stream = open_stream(&plans, &eve.access).await;
    let mut events = Vec::new();
    read_events(&mut stream, &mut events, |e| !e.is_empty()).await;
    let disabled = server.cli(&["users", "disable", "eve@example.org"]);
    assert!(disabled.success, "{disabled:?}");
    let rest = rest_of(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(
        rest.last().map(|e| e.0.as_str()),
        Some("revoked"),
        "{rest:?}"
    );
    // The stream has ended (`rest_of` returned), so Bob's next write cannot reach it.
    // Her access token is still within its 15 minutes, but opens no new stream, even
    // once she is enabled again (it was issued before the revocation).
    assert!(server.cli(&["users", "enable", "eve@example.org"]).success);
    let again = http()
        .get(format!("{plans}/stream"))
        .bearer_auth(&eve.access)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);

    // Signing out everywhere ends the streams of every session.
    let alice = signup(&server, "alice@example.org").await;
    let mut first = open_stream(&plans, &alice.access).await;
    let mut second = open_stream(&plans, &alice.access).await;
    let signed_out = http()
        .post(format!("{}/auth/v1/logout", server.public_url))
        .bearer_auth(&alice.access)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(signed_out.status().is_success());
    for stream in [&mut first, &mut second] {
        let rest = rest_of(stream, Duration::from_secs(10)).await;
        assert_eq!(
            rest.last().map(|e| e.0.as_str()),
            Some("revoked"),
            "{rest:?}"
        );
    }
    // Another user's stream goes on.
    let mut bobs = open_stream(&plans, &bob.access).await;
    let mut events = Vec::new();
    read_events(&mut bobs, &mut events, |e| !e.is_empty()).await;
    write(&plans, &bob.access, "still here").await;
    read_events(&mut bobs, &mut events, |e| e.len() >= 2).await;
    assert_eq!(events[1].0, "created");
}

#[tokio::test]
async fn streams_end_when_the_access_token_expires() {
    let server = Server::start();
    let plans = open_collection(&server);
    let carol = signup(&server, "carol@example.org").await;
    let now = gureum_model::now_ms() as u64 / 1000;
    let mut claims = gureum_auth::Claims::new(&carol.id, "carol@example.org", now);
    claims.exp = now + 3;
    let short = installation_key(&server).sign(&claims);
    let mut stream = open_stream(&plans, &short).await;
    let started = std::time::Instant::now();
    let rest = rest_of(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(
        rest.last().map(|e| e.0.as_str()),
        Some("token_expired"),
        "{rest:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before exp"
    );
}

#[tokio::test]
async fn one_user_holds_a_bounded_number_of_streams() {
    let server = Server::start();
    let plans = open_collection(&server);
    let dave = signup(&server, "dave@example.org").await;
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(open_stream(&plans, &dave.access).await);
    }
    let over = http()
        .get(format!("{plans}/stream"))
        .bearer_auth(&dave.access)
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 429);
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams");
    // Closing one gives its place back.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let again = http()
            .get(format!("{plans}/stream"))
            .bearer_auth(&dave.access)
            .send()
            .await
            .unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_revocation_on_one_node_ends_streams_on_another() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let admin_node = Server::start_in(&dirs.0.path().join("data"), Some(&url));
    let stream_node = Server::start_in(&dirs.1.path().join("data"), Some(&url));
    let plans =
        open_collection(&admin_node).replace(&admin_node.public_url, &stream_node.public_url);
    let eve = signup(&admin_node, "eve@example.org").await;
    let mut stream = open_stream(&plans, &eve.access).await;
    let mut events = Vec::new();
    read_events(&mut stream, &mut events, |e| !e.is_empty()).await;
    assert!(
        admin_node
            .cli(&["users", "disable", "eve@example.org"])
            .success
    );
    let rest = rest_of(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(
        rest.last().map(|e| e.0.as_str()),
        Some("revoked"),
        "{rest:?}"
    );
    drop((admin_node, stream_node));
    gureum_store::testing::drop_postgres(&url).await;
}
