//! Finding 2: a function's token skipped every rule of every collection, never expired and
//! outlived `gureum rm`. Tokens now name their version, grant only what `[permissions]`
//! asks for, stop with the function and outlive their version by a short grace only
//! (the grace itself is unit-tested in `gureum-invoke`'s `retired`).

use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend::{signup, write_config};
use crate::websocket::connect;
use crate::{Server, function_dir, http};

/// Deploys the testbed as `name` with `extra` and returns the CLI's output.
fn deploy_out(server: &Server, name: &str, extra: &str) -> (tempfile::TempDir, String) {
    let dir = function_dir(name, extra);
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(output.success, "deploy {name} failed: {output:?}");
    (dir, output.stdout)
}

/// The function's own `GUREUM_FUNCTION_TOKEN`, as it reads it.
async fn token_of(server: &Server, name: &str) -> String {
    let echo: Value = server
        .get(&format!("/fn/{name}/echo?env=GUREUM_FUNCTION_TOKEN"))
        .await
        .json()
        .await
        .unwrap();
    echo["env_value"].as_str().expect("a token").to_string()
}

/// `METHOD path` on the public listener with `token`; the status and the error message.
async fn with_token(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = http()
        .request(method, format!("{}{path}", server.public_url))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| {
            body["error"]["message"]
                .as_str()
                .or(body["message"].as_str())
                .map(str::to_string)
        })
        .unwrap_or(text);
    (status, message)
}

async fn queue_for(server: &Server, function: &str, token: &str) -> (StatusCode, String) {
    let answer = http()
        .post(format!("{}/fn/{function}/job", server.public_url))
        .header("x-gureum-invocation-type", "event")
        .bearer_auth(token)
        .body("x")
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

#[tokio::test]
async fn a_function_token_grants_its_permissions_only_and_ends_with_its_function() {
    use reqwest::Method;
    let server = Server::start();
    // Alice's private document in an owner-ruled collection.
    let rules = write_config(
        "[rules]\nlist = \"auth != null && doc.owner == auth.uid\"\nget = \"auth != null && doc.owner == auth.uid\"\ncreate = \"auth != null\"\ndelete = \"auth != null && doc.owner == auth.uid\"\n",
    );
    let set = server.cli(&[
        "collections",
        "set",
        "secrets",
        rules.path().to_str().unwrap(),
    ]);
    assert!(set.success, "{set:?}");
    let alice = signup(&server, "alice@example.org").await;
    let (status, _) = with_token(
        &server,
        Method::POST,
        "/data/v1/collections/secrets/docs",
        &alice.access,
        Some(json!({"pin": "1234"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let docs = "/data/v1/collections/secrets/docs";
    let (_worker, _) = deploy_out(&server, "worker", "");

    // No [permissions]: the audit's reads, deletes and queued calls are refused, each
    // naming the grant that would allow it; its own key-value bucket still works.
    let (_victim, out) = deploy_out(&server, "victim", "");
    assert!(out.contains("grants: data: none"), "{out}");
    let victim = token_of(&server, "victim").await;
    assert!(victim.starts_with("gft.victim.1."), "{victim}");
    let (status, message) = with_token(&server, Method::GET, docs, &victim, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{message}");
    assert!(message.contains("data = [\"secrets:read\"]"), "{message}");
    let (status, _) = with_token(
        &server,
        Method::GET,
        "/data/v1/collections/secrets/docs?where=owner%20%3D%20%22x%22",
        &victim,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a where clause is no way in");
    let (status, _) = with_token(
        &server,
        Method::PUT,
        "/kv/v1/buckets/b/keys/k",
        &victim,
        Some(json!("v")),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = queue_for(&server, "worker", &victim).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("invoke = [\\\"worker\\\"]"), "{body}");

    // A grant opens what it names: reading secrets, queueing for worker; not deleting.
    let (_reader, out) = deploy_out(
        &server,
        "reader",
        "[permissions]\ndata = [\"secrets:read\"]\ninvoke = [\"worker\"]",
    );
    assert!(out.contains("grants: data: secrets:read"), "{out}");
    assert!(out.contains("invoke: worker"), "{out}");
    let reader_v1 = token_of(&server, "reader").await;
    let (status, listed) = with_token(&server, Method::GET, docs, &reader_v1, None).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let id = listed["docs"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(listed["docs"][0]["data"]["pin"], "1234");
    let (status, message) = with_token(
        &server,
        Method::DELETE,
        &format!("{docs}/{id}"),
        &reader_v1,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message.contains("data = [\"secrets:write\"]"), "{message}");
    assert_eq!(
        queue_for(&server, "worker", &reader_v1).await.0,
        StatusCode::ACCEPTED
    );

    // A new version without the grant: its own token reads nothing; the replaced
    // version's token keeps its grants for the grace (its instances may still be busy).
    let (_reader, _) = deploy_out(&server, "reader", "");
    let reader_v2 = token_of(&server, "reader").await;
    assert!(reader_v2.starts_with("gft.reader.2."), "{reader_v2}");
    assert_eq!(
        with_token(&server, Method::GET, docs, &reader_v2, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        with_token(&server, Method::GET, docs, &reader_v1, None)
            .await
            .0,
        StatusCode::OK
    );
    // A token made up for a version that never ran here (or ran before this server
    // started) is refused, and so is one with another function's name.
    let forged = reader_v1.replacen("gft.reader.1.", "gft.reader.7.", 1);
    assert_eq!(
        with_token(&server, Method::GET, docs, &forged, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // `*:admin` is the only way to the Admin SDK's reach: every collection, every write.
    let (_admin, out) = deploy_out(&server, "janitor", "[permissions]\ndata = [\"*:admin\"]");
    assert!(out.contains("data: *:admin"), "{out}");
    let janitor = token_of(&server, "janitor").await;
    assert_eq!(
        with_token(
            &server,
            Method::DELETE,
            &format!("{docs}/{id}"),
            &janitor,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );

    // Removal ends every token of the function at once, on every path.
    let removed = server.cli(&["rm", "reader"]);
    assert!(removed.success, "{removed:?}");
    for token in [&reader_v1, &reader_v2] {
        let (status, message) = with_token(&server, Method::GET, docs, token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{message}");
        assert!(message.contains("not deployed"), "{message}");
        let (status, _) =
            with_token(&server, Method::GET, "/kv/v1/buckets/b/keys/k", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            queue_for(&server, "worker", token).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn websocket_connections_of_another_function_need_a_grant() {
    let server = Server::start();
    let (_chat, _) = deploy_out(&server, "chatty", "");
    let (mut client, id) = connect(&server, "/ws/chatty").await;
    let (_other, _) = deploy_out(&server, "intruder", "");
    let intruder = token_of(&server, "intruder").await;
    let post = |token: String, path: String| {
        let url = format!("{}{path}", server.public_url);
        async move {
            let answer = http()
                .post(url)
                .bearer_auth(token)
                .body("hello")
                .send()
                .await
                .unwrap();
            (answer.status(), answer.text().await.unwrap())
        }
    };
    let (status, body) = post(intruder.clone(), format!("/@connections/{id}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("websocket = [\\\"chatty\\\"]"), "{body}");
    let (status, _) = post(intruder, "/channels/room/messages?function=chatty".into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Granted: it posts to chatty's connection and broadcasts on chatty's channels.
    let (_notifier, out) = deploy_out(
        &server,
        "notifier",
        "[permissions]\nwebsocket = [\"chatty\"]",
    );
    assert!(out.contains("websocket: notifier, chatty"), "{out}");
    let notifier = token_of(&server, "notifier").await;
    let (status, body) = post(notifier.clone(), format!("/@connections/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let received = tokio::time::timeout(std::time::Duration::from_secs(10), client.next())
        .await
        .expect("the message within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(received.into_text().unwrap().as_str(), "hello");
    let (status, body) = post(notifier, "/channels/room/messages?function=chatty".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
