//! Finding 6: the login limiter counted an attempt only after its password hash had
//! run, so a burst of concurrent attempts all passed the check (60 at once: 55
//! evaluated against a limit of 5; 40 sign-ups against 20), and every one of them ran
//! argon2 (19 MiB each) at once: the server grew by a gigabyte.

use futures::future::join_all;
use serde_json::json;

use crate::backend::{error_code, password_grant, signup};
use crate::{Server, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_attempts_gets_exactly_the_limit_through_in_flat_memory() {
    let server = Server::start();
    signup(&server, "victim@example.org").await;
    // Hashing threads keep their working memory (19 MiB each, 2 per core): from here on
    // the server must not grow by much more than that, however many attempts arrive.
    let start = server.rss_kib();

    // 60 wrong passwords at once for one account (limit: 5 failures per account).
    let answers =
        join_all((0..60).map(|_| password_grant(&server, "victim@example.org", "wrong password!")))
            .await;
    let mut evaluated = 0;
    for answer in answers {
        match answer.status().as_u16() {
            400 => {
                assert_eq!(error_code(answer).await, "invalid_credentials");
                evaluated += 1;
            }
            429 | 503 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        (1..=5).contains(&evaluated),
        "{evaluated} passwords were tried against a limit of 5"
    );

    // 40 sign-ups at once from one address (limit: 20 per address; one made above).
    let answers = join_all((0..40).map(|n| {
        http()
            .post(format!("{}/auth/v1/signup", server.public_url))
            .json(&json!({"email": format!("burst{n}@example.org"), "password": "correct horse battery"}))
            .send()
    }))
    .await;
    let created = answers
        .into_iter()
        .filter(|answer| answer.as_ref().unwrap().status() == 201)
        .count();
    assert!(
        created <= 19,
        "{created} sign-ups got through a limit of 20 (one was made before)"
    );

    // 500 attempts at once against many accounts: the limiter and the bounded hashing
    // pool keep memory flat (each argon2 hash takes 19 MiB).
    let answers = join_all((0..500).map(|n| {
        let email = format!("nobody{n}@example.org");
        let server = &server;
        async move { password_grant(server, &email, "wrong password!").await }
    }))
    .await;
    let after = server.rss_kib();

    assert!(
        answers
            .iter()
            .all(|answer| [400, 429, 503].contains(&answer.status().as_u16()))
    );
    assert!(
        after < start + 160 * 1024,
        "the server grew from {start} KiB to {after} KiB during the bursts"
    );
}
