//! Info item 1: the admin token worked on the public listener too, even as
//! `?access_token=` in a URL (which lands in logs, histories and `Referer`s, on the origin
//! where functions serve pages). It now works on the admin listener only, and a token in
//! the query string counts only where a browser cannot send a header: event streams and
//! WebSockets.

use crate::backend::{owner_files, signup};
use crate::{Server, http};
use serde_json::Value;

#[tokio::test]
async fn the_admin_token_is_refused_on_the_public_listener() {
    let server = Server::start();
    let docs = owner_files(&server, "max_bytes = 1000").replace("/files", "/docs");
    let public = http()
        .get(&docs)
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 401);
    let body: Value = public.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_token");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/data/"),
        "{body}"
    );
    let in_url = http()
        .get(format!("{docs}?access_token={}", server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(in_url.status(), 401);
    let stream = http()
        .get(docs.replace("/docs", "/stream") + &format!("?access_token={}", server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 401, "not on streams either");
    // The same read on the admin listener works.
    let admin = http()
        .get(format!(
            "{}/api/v1/data/collections/notes/docs",
            server.admin_url
        ))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
}

#[tokio::test]
async fn query_tokens_count_only_for_streams_and_websockets() {
    let server = Server::start();
    let docs = owner_files(&server, "max_bytes = 1000").replace("/files", "/docs");
    let user = signup(&server, "q@example.org").await;
    let own = format!("owner = \"{}\"", user.id);
    let header = http()
        .get(&docs)
        .query(&[("where", own.as_str())])
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 200);
    let query = http()
        .get(&docs)
        .query(&[
            ("where", own.as_str()),
            ("access_token", user.access.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        query.status(),
        401,
        "a plain request's query token is ignored"
    );
    let stream = http()
        .get(docs.replace("/docs", "/stream"))
        .query(&[
            ("where", own.as_str()),
            ("access_token", user.access.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200, "EventSource cannot send headers");
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
}
