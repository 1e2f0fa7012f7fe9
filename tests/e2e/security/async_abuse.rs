//! Finding 10: anyone could queue events for any function with
//! `x-gureum-invocation-type: event`, each with up to 6 MiB of body kept in the store
//! (and in the dead-letter list after failing); 30 requests grew the database by 160 MB
//! in a second, and the file never shrank. Now anonymous callers queue events only where
//! `[async] public = true`; an event's body is at most 1 MiB; a function's queue and
//! dead letters hold at most `max_queued_bytes`; and freed pages go back to the disk.

use crate::backend::signup;
use crate::queue::{PUBLIC_ASYNC, Recorder};
use crate::{Server, deploy, http};
use serde_json::Value;

async fn queue(
    server: &Server,
    function: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = http()
        .post(format!(
            "{}/fn/{function}/job?sleep=3000",
            server.public_url
        ))
        .header("x-gureum-invocation-type", "event")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn anonymous_callers_queue_only_where_the_function_allows_it() {
    let server = Server::start();
    let recorder = Recorder::start().await;
    let _closed = deploy(&server, "closed", &recorder.env());
    let _open = deploy(
        &server,
        "open",
        &format!("{}{PUBLIC_ASYNC}", recorder.env()),
    );

    let (status, body) = queue(&server, "closed", None, b"x".to_vec()).await;
    assert_eq!(status, 401, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("[async] public = true"), "{message}");
    // A signed-in user may; so may anyone where the function says so.
    let user = signup(&server, "queuer@example.org").await;
    assert_eq!(
        queue(&server, "closed", Some(&user.access), b"x".to_vec())
            .await
            .0,
        202
    );
    assert_eq!(queue(&server, "open", None, b"x".to_vec()).await.0, 202);
    // A synchronous call is unaffected.
    let sync = http()
        .post(format!("{}/fn/closed/job", server.public_url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), 200);
}

#[tokio::test]
async fn queued_bodies_are_bounded_per_event_and_per_function() {
    let server = Server::start();
    let recorder = Recorder::start().await;
    let _open = deploy(
        &server,
        "budget",
        &format!(
            "max_instances = 1\n{}[async]\npublic = true\nmax_queued_bytes = 2097152\n",
            recorder.env()
        ),
    );
    // One event's body: 1 MiB at most (a synchronous call still takes 6 MiB).
    let (status, body) = queue(&server, "budget", None, vec![b'x'; (1 << 20) + 1]).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-async-body-bytes")
    );
    let sync = http()
        .post(format!("{}/fn/budget/sleep?ms=0", server.public_url))
        .body(vec![b'x'; 3 << 20])
        .send()
        .await
        .unwrap();
    let status = sync.status();
    assert_eq!(status, 200, "{:?}", sync.text().await);
    // The function's budget (2 MiB) holds two 900 KiB events, not three, while they
    // wait behind the one instance.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            queue(&server, "budget", None, vec![b'y'; 900 << 10])
                .await
                .0,
        );
    }
    assert_eq!(&statuses[..2], [202, 202], "{statuses:?}");
    assert!(statuses[2..].iter().all(|s| *s == 429), "{statuses:?}");
}
