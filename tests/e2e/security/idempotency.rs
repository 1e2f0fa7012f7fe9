//! Finding 16: an idempotency key was unique per function whoever sent it, so a caller
//! who guessed another's key (an order id) made the victim's event a no-op and learnt
//! its invocation id. Keys are now the caller's own.

use serde_json::Value;

use crate::backend::signup;
use crate::queue::Recorder;
use crate::{Server, deploy};

async fn enqueue_as(
    client: &reqwest::Client,
    server: &Server,
    function: &str,
    token: Option<&str>,
) -> (bool, String) {
    let mut request = client
        .post(format!("{}/fn/{function}/job", server.public_url))
        .header("x-gureum-invocation-type", "event")
        .header("idempotency-key", "order-42")
        .body("x");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status(), 202);
    let body: Value = answer.json().await.unwrap();
    (
        body["duplicate"].as_bool().unwrap(),
        body["invocation_id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_its_caller() {
    let server = Server::start();
    let recorder = Recorder::start().await;
    let _users = deploy(
        &server,
        "idem-user",
        &format!("auth = \"user\"\n{}", recorder.env()),
    );
    let _anyone = deploy(
        &server,
        "idem-anyone",
        &format!("{}{}", recorder.env(), crate::queue::PUBLIC_ASYNC),
    );
    let client = reqwest::Client::new();

    let alice = signup(&server, "alice@example.org").await;
    let mallory = signup(&server, "mallory@example.org").await;
    let (duplicate, mallorys) =
        enqueue_as(&client, &server, "idem-user", Some(&mallory.access)).await;
    assert!(!duplicate);
    let (duplicate, alices) = enqueue_as(&client, &server, "idem-user", Some(&alice.access)).await;
    assert!(
        !duplicate,
        "another user's key must not swallow alice's event"
    );
    assert_ne!(alices, mallorys);
    let (duplicate, again) = enqueue_as(&client, &server, "idem-user", Some(&alice.access)).await;
    assert!(duplicate, "alice's own repeat is the duplicate");
    assert_eq!(again, alices);

    // Anonymous callers: one key per client address (127.0.0.2 is loopback too).
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let (_, first) = enqueue_as(&client, &server, "idem-anyone", None).await;
    let (duplicate, second) = enqueue_as(&other, &server, "idem-anyone", None).await;
    assert!(!duplicate);
    assert_ne!(first, second);
    let (duplicate, repeat) = enqueue_as(&other, &server, "idem-anyone", None).await;
    assert!(duplicate);
    assert_eq!(repeat, second);
}
