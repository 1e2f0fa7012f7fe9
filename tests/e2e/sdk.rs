//! The Rust guest SDK (`sdk/`, package `gureum-sdk`) end to end: the `sdk-testbed`
//! fixture, built only on the SDK, deployed to a real server. Every module is checked
//! against an independent view of the same state: key-value through the plain `testbed`
//! (raw `wasi:keyvalue` bindings) redeployed under the same name, documents through the
//! data API with the admin token, WebSockets with real clients, invocations through the
//! records they leave.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::websocket::{Ws, connect};
use crate::{Server, deploy, fixture, function_dir_with, http, shared};

/// Generous bound for anything asynchronous on a loaded machine.
const WAIT: Duration = Duration::from_secs(20);

/// Deploys the SDK fixture as `name` with `extra` manifest lines; keeps its directory.
fn deploy_sdk(server: &Server, name: &str, extra: &str) -> tempfile::TempDir {
    let dir = function_dir_with(name, extra, &fixture("sdk-testbed"));
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(output.success, "deploy {name} failed: {output:?}");
    dir
}

/// `METHOD /fn/NAME{path}` with `body`; returns the status and the body text.
async fn call(
    server: &Server,
    method: reqwest::Method,
    name: &str,
    path: &str,
    body: &str,
) -> (StatusCode, String) {
    let response = http()
        .request(method, format!("{}/fn/{name}{path}", server.public_url))
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|error| panic!("{name}{path}: {error}"));
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn get(server: &Server, name: &str, path: &str) -> (StatusCode, String) {
    call(server, reqwest::Method::GET, name, path, "").await
}

async fn post(server: &Server, name: &str, path: &str, body: &str) -> (StatusCode, String) {
    call(server, reqwest::Method::POST, name, path, body).await
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Parses `text` as JSON, naming it on failure.
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

#[tokio::test]
async fn sdk_handler_answers_and_reads_typed_config() {
    let server = shared().await;
    let name = "sdk-basic";
    let _dir = deploy_sdk(
        server,
        name,
        "[env]\nSDK_NUMBER = \"42\"\nSDK_BAD = \"lots\"\nSDK_TEXT = \"hello there\"",
    );

    let response = http()
        .get(format!("{}/fn/{name}/hello?name=Ada", server.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "Hello, Ada!\n");
    assert_eq!(
        get(server, name, "/hello?name=").await,
        (StatusCode::OK, "Hello, world!\n".to_string())
    );
    assert_eq!(
        get(server, name, "/hello?name=Ada%20L").await.1,
        "Hello, Ada L!\n"
    );

    // config::get: the manifest's [env] and the platform's own values.
    assert_eq!(
        get(server, name, "/config/get?key=SDK_TEXT").await,
        (StatusCode::OK, "hello there".to_string())
    );
    assert_eq!(
        get(server, name, "/config/get?key=GUREUM_FUNCTION_NAME").await,
        (StatusCode::OK, name.to_string())
    );
    let api = get(server, name, "/config/get?key=GUREUM_API").await;
    assert_eq!(api, (StatusCode::OK, server.public_url.clone()));
    assert_eq!(
        get(server, name, "/config/get?key=SDK_NOT_THERE").await,
        (StatusCode::NOT_FOUND, "unset".to_string())
    );

    // config::require::<u32>: the number, or an error naming the key and the problem.
    assert_eq!(
        get(server, name, "/config/require?key=SDK_NUMBER").await,
        (StatusCode::OK, "42".to_string())
    );
    let (status, bad) = get(server, name, "/config/require?key=SDK_BAD").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad,
        "configuration `SDK_BAD` = \"lots\" is invalid: invalid digit found in string"
    );
    let (status, missing) = get(server, name, "/config/require?key=SDK_NOT_THERE").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        missing.starts_with("configuration `SDK_NOT_THERE` is not set"),
        "{missing}"
    );
    // config::get_or: the default only when unset.
    assert_eq!(
        get(server, name, "/config/or?key=SDK_NOT_THERE&default=7")
            .await
            .1,
        "7"
    );
    assert_eq!(
        get(server, name, "/config/or?key=SDK_NUMBER&default=7")
            .await
            .1,
        "42"
    );

    // A handler's Err fails the request: a 502 function_error carrying its text.
    let (status, failed) = get(server, name, "/fail").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{failed}");
    let failed = parse(&failed);
    assert_eq!(failed["error"]["code"], "function_error", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failure requested"),
        "{failed}"
    );
    // The instance was not broken by it.
    assert_eq!(get(server, name, "/hello").await.1, "Hello, world!\n");
}

#[tokio::test]
async fn sdk_key_value_round_trips_and_agrees_with_raw_bindings() {
    let server = shared().await;
    let name = "sdk-kv";
    let put = reqwest::Method::PUT;
    let delete = reqwest::Method::DELETE;
    let _v1 = deploy_sdk(server, name, "");

    assert_eq!(
        call(server, put.clone(), name, "/kv/set/b1/greeting", "hello")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        get(server, name, "/kv/get/b1/greeting").await,
        (StatusCode::OK, "hello".to_string())
    );
    assert_eq!(get(server, name, "/kv/exists/b1/greeting").await.1, "true");
    assert_eq!(get(server, name, "/kv/exists/b1/nothing").await.1, "false");
    assert_eq!(
        get(server, name, "/kv/get/b1/nothing").await,
        (StatusCode::NOT_FOUND, "no such key".to_string())
    );

    // Atomic counters, negative deltas included; they read back as decimal text.
    assert_eq!(post(server, name, "/kv/incr/b1/hits", "").await.1, "1");
    assert_eq!(post(server, name, "/kv/incr/b1/hits?by=5", "").await.1, "6");
    assert_eq!(
        post(server, name, "/kv/incr/b1/hits?by=-10", "").await.1,
        "-4"
    );
    assert_eq!(get(server, name, "/kv/get/b1/hits").await.1, "-4");

    // JSON values.
    let prefs = json!({"theme": "dark", "sizes": [1, 2]});
    let (status, back) = post(server, name, "/kv/json/b1/prefs", &prefs.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(parse(&back), prefs);

    // Batches: set-many, get-many (a missing key is null), delete-many.
    let (status, batch) = post(
        server,
        name,
        "/kv/batch/b1?get=missing",
        r#"{"a": "1", "b": "2"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_eq!(parse(&batch), json!({"a": "1", "b": "2", "missing": null}));
    let (_, batch) = post(
        server,
        name,
        "/kv/batch/b1?delete=a,b&get=a",
        r#"{"c": "3"}"#,
    )
    .await;
    assert_eq!(parse(&batch), json!({"c": "3", "a": null}));

    // Deletes, then the whole key listing in key order.
    assert_eq!(
        call(server, delete, name, "/kv/del/b1/greeting", "")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        get(server, name, "/kv/get/b1/greeting").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        parse(&get(server, name, "/kv/keys/b1").await.1),
        json!(["c", "hits", "prefs"])
    );

    // Paging with cursors: 1,001 keys are two pages (the store's page is 1,000).
    let many: serde_json::Map<String, Value> = (0..1001)
        .map(|i| (format!("k{i:04}"), Value::String(i.to_string())))
        .collect();
    let (status, _) = post(
        server,
        name,
        "/kv/batch/many",
        &Value::Object(many).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let pages = parse(&get(server, name, "/kv/pages/many").await.1);
    let sizes: Vec<usize> = pages
        .as_array()
        .unwrap()
        .iter()
        .map(|page| page.as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![1000, 1]);
    let keys = parse(&get(server, name, "/kv/keys/many").await.1);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 1001);
    assert_eq!(
        (keys[0].as_str(), keys[1000].as_str()),
        (Some("k0000"), Some("k1000"))
    );

    // An invalid bucket name is the host's error, passed on with its message.
    let (status, invalid) = get(server, name, "/kv/get/bad%20name/x").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{invalid}");
    assert_eq!(parse(&invalid)["code"], "kv", "{invalid}");

    // The same function redeployed as the plain testbed (raw wasi:keyvalue bindings)
    // sees exactly what the SDK wrote, and what it writes is read back by the SDK.
    let _v2 = deploy(server, name, "");
    assert_eq!(get(server, name, "/kv/get/b1/hits").await.1, "-4");
    assert_eq!(parse(&get(server, name, "/kv/get/b1/prefs").await.1), prefs);
    assert_eq!(
        parse(&get(server, name, "/kv/keys/b1").await.1),
        json!(["c", "hits", "prefs"])
    );
    assert_eq!(
        call(server, put, name, "/kv/set/b1/raw", "from the testbed")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let _v3 = deploy_sdk(server, name, "");
    assert_eq!(
        get(server, name, "/kv/get/b1/raw").await,
        (StatusCode::OK, "from the testbed".to_string())
    );
}

/// The document as the data API shows it to the admin.
async fn admin_doc(server: &Server, collection: &str, id: &str) -> (StatusCode, Value) {
    let response = http()
        .get(format!(
            "{}/api/v1/data/collections/{collection}/docs/{id}",
            server.admin_url
        ))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sdk_documents_create_query_write_and_delete() {
    let server = shared().await;
    let name = "sdk-docs";
    let col = "sdk-notes";
    let _dir = deploy_sdk(
        server,
        name,
        "[permissions]\ndata = [\"sdk-notes:write\", \"sdk-norules:write\"]",
    );
    let docs = format!("/docs/{col}");

    // Create: the server's fields, owned by the function.
    let (status, first) = post(
        server,
        name,
        &docs,
        r#"{"text": "first", "done": false, "n": 1}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first = parse(&first);
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["owner"], format!("fn:{name}"));
    assert_eq!(first["version"], 1);
    assert!(
        first["created"].as_u64().unwrap() > 1_600_000_000_000,
        "{first}"
    );
    assert_eq!(
        first["data"],
        json!({"text": "first", "done": false, "n": 1})
    );
    let (status, stored) = admin_doc(server, col, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["data"]["text"], "first");
    for body in [
        r#"{"text": "second", "done": true, "n": 2}"#,
        r#"{"text": "third", "done": false, "n": 3}"#,
    ] {
        assert_eq!(post(server, name, &docs, body).await.0, StatusCode::CREATED);
    }

    // Queries: a filter and an order, then pages with a cursor.
    let texts = |page: &Value| -> Vec<String> {
        page["docs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|doc| doc["data"]["text"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, open) = get(
        server,
        name,
        &format!("{docs}?field=done&op=%3D&value=false&sort=-n"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{open}");
    let open = parse(&open);
    assert_eq!(texts(&open), ["third", "first"]);
    assert!(open["next_cursor"].is_null(), "{open}");
    let page1 = parse(&get(server, name, &format!("{docs}?sort=n&limit=2")).await.1);
    assert_eq!(texts(&page1), ["first", "second"]);
    let cursor = page1["next_cursor"].as_str().expect("a next cursor");
    let page2 = get(
        server,
        name,
        &format!("{docs}?sort=n&limit=2&cursor={}", encode(cursor)),
    )
    .await;
    assert_eq!(page2.0, StatusCode::OK, "{}", page2.1);
    let page2 = parse(&page2.1);
    assert_eq!(texts(&page2), ["third"]);
    assert!(page2["next_cursor"].is_null());

    // Get: the document, or None for a missing id.
    let (status, read) = get(server, name, &format!("{docs}/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse(&read), first);
    let (status, missing) = get(server, name, &format!("{docs}/no-such-doc")).await;
    assert_eq!(
        (status, parse(&missing)),
        (StatusCode::NOT_FOUND, json!({"missing": "no-such-doc"}))
    );

    // Merge patch (null removes), conditional writes, replace.
    let patch = reqwest::Method::PATCH;
    let (status, patched) = call(
        server,
        patch.clone(),
        name,
        &format!("{docs}/{id}"),
        r#"{"done": true, "n": null}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let patched = parse(&patched);
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["data"], json!({"text": "first", "done": true}));
    let (status, stale) = call(
        server,
        patch,
        name,
        &format!("{docs}/{id}?if_version=1"),
        r#"{"done": false}"#,
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{stale}");
    assert_eq!(parse(&stale)["code"], "version_mismatch");
    let (status, replaced) = call(
        server,
        reqwest::Method::PUT,
        name,
        &format!("{docs}/{id}?if_version=2"),
        r#"{"text": "replaced"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(parse(&replaced)["version"], 3);
    let (_, stored) = admin_doc(server, col, &id).await;
    assert_eq!(
        (stored["version"].clone(), stored["data"].clone()),
        (json!(3), json!({"text": "replaced"}))
    );

    // Delete: conditional, then for real; a second delete is the API's 404.
    let delete = reqwest::Method::DELETE;
    let (status, _) = call(
        server,
        delete.clone(),
        name,
        &format!("{docs}/{id}?if_version=1"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, _) = call(server, delete.clone(), name, &format!("{docs}/{id}"), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(admin_doc(server, col, &id).await.0, StatusCode::NOT_FOUND);
    let (status, again) = call(server, delete, name, &format!("{docs}/{id}"), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");
    assert_eq!(parse(&again)["code"], "not_found");

    // Typed documents: written and read back as a Rust struct.
    let (status, typed) = post(
        server,
        name,
        &format!("/typed/{col}"),
        r#"{"text": "typed note"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{typed}");
    assert_eq!(typed, format!("typed note|false|1|fn:{name}"));

    // Acting for a user: that user's rules and ownership.
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        rules.path(),
        "[rules]\ncreate = \"auth != null\"\nget = \"auth != null && doc.owner == auth.uid\"\n",
    )
    .unwrap();
    let set = server.cli(&[
        "collections",
        "set",
        "sdk-private",
        rules.path().to_str().unwrap(),
    ]);
    assert!(set.success, "{set:?}");
    let crate::backend::User {
        id: uid, access, ..
    } = crate::backend::signup(server, "sdk-user@example.org").await;
    let as_user = |path: &str, body: &str| {
        http()
            .post(format!("{}/fn/{name}{path}", server.public_url))
            .header("x-user-token", access.clone())
            .body(body.to_owned())
            .send()
    };
    let answer = as_user("/docs/sdk-private", r#"{"text": "mine"}"#)
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let mine: Value = answer.json().await.unwrap();
    assert_eq!(mine["owner"], uid.as_str());
    // A collection without rules denies users (not functions): the API's 403 comes back.
    let answer = as_user("/docs/sdk-norules", r#"{"text": "x"}"#)
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let denied: Value = answer.json().await.unwrap();
    assert_eq!(denied["code"], "permission_denied", "{denied}");
    // The function's own token writes where its [permissions] grant it, rules or not,
    // and nowhere else.
    let (status, _) = post(server, name, "/docs/sdk-norules", r#"{"text": "x"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, refused) = post(server, name, "/docs/sdk-ungranted", r#"{"text": "x"}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused.contains("sdk-ungranted:write"),
        "the refusal names the grant: {refused}"
    );
}

/// The next text or binary message (pings and pongs skipped).
async fn next_message(ws: &mut Ws) -> Message {
    let deadline = Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("no message in time")
            .expect("the connection ended")
            .expect("a WebSocket error");
        match message {
            Message::Ping(_) | Message::Pong(_) => {}
            other => return other,
        }
    }
}

async fn next_text(ws: &mut Ws) -> String {
    match next_message(ws).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

async fn ask(ws: &mut Ws, text: &str) -> String {
    ws.send(Message::text(text)).await.unwrap();
    next_text(ws).await
}

#[tokio::test]
async fn sdk_websocket_events_send_close_and_channels() {
    let server = shared().await;
    let name = "sdk-ws";
    let _dir = deploy_sdk(server, name, "");
    let (mut ann, ann_id) = connect(server, &format!("/ws/{name}")).await;
    let (mut bob, bob_id) = connect(server, &format!("/ws/{name}")).await;
    // Joining with meta (a nick), and plainly.
    assert_eq!(ask(&mut ann, "join room ann").await, "joined");
    assert_eq!(ask(&mut bob, "join room bob").await, "joined");
    assert_eq!(ask(&mut ann, "echo hi there").await, "hi there");

    let members = parse(&ask(&mut ann, "members room").await);
    let seen: BTreeSet<(String, String)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["connectionId"].as_str().unwrap().to_string(),
                m["meta"]["nick"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (ann_id.clone(), "ann".to_string()),
        (bob_id.clone(), "bob".to_string()),
    ]
    .into();
    assert_eq!(seen, expected);

    let info = parse(&ask(&mut ann, "info").await);
    assert_eq!(info["connectionId"], ann_id.as_str());
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");
    assert!(
        info["connectedAt"].as_str().unwrap().ends_with('Z'),
        "{info}"
    );
    assert_eq!(
        info["channels"],
        json!([{"channel": "room", "meta": {"nick": "ann"}}])
    );

    // Broadcast without the sender, and to everyone.
    assert_eq!(
        ask(&mut ann, "broadcast room hello bob").await,
        "delivered 1"
    );
    assert_eq!(next_text(&mut bob).await, "hello bob");
    ann.send(Message::text("broadcast-all room to all"))
        .await
        .unwrap();
    let got: BTreeSet<String> = [next_text(&mut ann).await, next_text(&mut ann).await].into();
    assert_eq!(
        got,
        ["delivered 2".to_string(), "to all".to_string()].into()
    );
    assert_eq!(next_text(&mut bob).await, "to all");

    // Direct sends: text to another connection, binary to itself.
    assert_eq!(
        ask(&mut ann, &format!("send {bob_id} direct")).await,
        "sent"
    );
    assert_eq!(next_text(&mut bob).await, "direct");
    ann.send(Message::text("binary")).await.unwrap();
    match next_message(&mut ann).await {
        Message::Binary(bytes) => assert_eq!(bytes.as_ref(), &[0u8, 255, 1]),
        other => panic!("expected the binary frame, got {other:?}"),
    }
    assert_eq!(next_text(&mut ann).await, "sent binary");
    // A binary frame from the client reaches the handler decoded.
    bob.send(Message::binary(vec![7u8, 8, 9, 10]))
        .await
        .unwrap();
    assert_eq!(next_text(&mut bob).await, "binary 4");

    // Leave, join, and the membership list follows.
    assert_eq!(ask(&mut bob, "leave room").await, "left");
    let members = parse(&ask(&mut ann, "members room").await);
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    assert_eq!(ask(&mut bob, "join other").await, "joined");
    assert_eq!(ask(&mut ann, "broadcast other psst").await, "delivered 1");
    assert_eq!(next_text(&mut bob).await, "psst");

    // close: the function closes its own connection; sending to it is then 410 Gone.
    ann.send(Message::text("close")).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline.into(), ann.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = ask(&mut bob, &format!("send {ann_id} late")).await;
        if answer == "error GoneException" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sending to a closed connection: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // $connect answering 403 refuses the upgrade.
    let url = format!(
        "{}/ws/{name}?reject=1",
        server.public_url.replacen("http://", "ws://", 1)
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
}

#[tokio::test]
async fn sdk_invokes_functions_now_and_queued() {
    let server = shared().await;
    let name = "sdk-inv";
    let _dir = deploy_sdk(server, name, "");

    // Synchronous: the other function's status and body.
    assert_eq!(
        post(
            server,
            name,
            "/invoke/sdk-inv?path=%2Fhello%3Fname%3DBob",
            ""
        )
        .await,
        (StatusCode::OK, "200 Hello, Bob!\n".to_string())
    );
    let (status, unknown) = post(server, name, "/invoke/sdk-nobody", "").await;
    assert_eq!(status, StatusCode::OK, "{unknown}");
    assert!(
        unknown.starts_with("404 ") && unknown.contains("function_not_found"),
        "{unknown}"
    );

    // Queued: the 202's id, then the event runs with that id and the body.
    let (status, queued) = post(
        server,
        name,
        "/invoke-async/sdk-inv?path=%2Frecord%3Fkey%3Dq1",
        "queued hello",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{queued}");
    let queued = parse(&queued);
    let invocation_id = queued["invocation_id"].as_str().unwrap().to_string();
    assert!(!invocation_id.is_empty());
    assert_eq!(queued["duplicate"], false);
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(server, name, "/kv/get/records/q1").await;
        if status == StatusCode::OK {
            assert_eq!(body, "queued hello");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the queued invocation did not run: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        get(server, name, "/kv/get/records/q1.id").await,
        (StatusCode::OK, invocation_id)
    );

    // Queueing for an unknown function is the gateway's 404.
    let (status, missing) = post(server, name, "/invoke-async/sdk-nobody", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(parse(&missing)["code"], "function_not_found");
}
