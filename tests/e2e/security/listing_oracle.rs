//! Finding 3: a listing ran the caller's `where` over every document and filtered the
//! page by the `list` rule afterwards, setting `next_cursor` when the *unfiltered* page was
//! full: with `limit=1`, "is there a cursor" answered "does a hidden document match", and a
//! binary search read another user's field in 14 queries. Anonymous callers also told 401
//! from 200. Listings are now decided from the query alone: the rule must hold for every
//! document the query can return ("rules are not filters"), else the query is refused
//! with the `where` it lacks, whatever is stored.

use crate::backend::{owner_files, signup};
use crate::{Server, http};
use serde_json::{Value, json};

async fn list(docs: &str, token: Option<&str>, query: &[(&str, &str)]) -> (u16, Value) {
    let mut request = http().get(docs).query(query);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hidden_documents_do_not_answer_through_cursors_or_statuses() {
    let server = Server::start();
    let docs = owner_files(&server, "max_bytes = 1000").replace("/files", "/docs");
    let alice = signup(&server, "alice@example.org").await;
    let mallory = signup(&server, "mallory@example.org").await;
    for pin in ["4821", "1234"] {
        let created = http()
            .post(&docs)
            .bearer_auth(&alice.access)
            .json(&json!({"text": "pin", "pin": pin}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let owner = format!("owner = \"{}\"", alice.id);

    // The oracle: every probe gets the same refusal, whether or not a hidden doc matches.
    let mut answers = Vec::new();
    for probe in [
        "pin >= \"4\"",
        "pin >= \"5\"",
        "pin = \"4821\"",
        "pin = \"0000\"",
    ] {
        let answer = list(
            &docs,
            Some(&mallory.access),
            &[("limit", "1"), ("where", &owner), ("where", probe)],
        )
        .await;
        assert_eq!(answer.0, 403, "{probe}: {answer:?}");
        answers.push(answer);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // Without the owner the query is unbounded: refused, naming the clause to add.
    let (status, body) = list(&docs, Some(&mallory.access), &[("where", "pin >= \"4\"")]).await;
    assert_eq!(status, 403);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("where=owner = VALUE"), "{message}");
    // Anonymous: one answer (401) whether or not anything matches.
    for probe in ["pin >= \"4\"", "pin >= \"9\""] {
        let (status, _) = list(&docs, None, &[("limit", "1"), ("where", probe)]).await;
        assert_eq!(status, 401, "{probe}");
    }

    // The owner's own listing pages through every document once, cursors included.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1".to_string()), ("where", owner.clone())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = list(&docs, Some(&alice.access), &query).await;
        assert_eq!(status, 200, "{body}");
        for doc in body["docs"].as_array().unwrap() {
            seen.push(doc["data"]["pin"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["1234", "4821"]);
    // `in` over the owner bounds the rule too; a second owner in it does not.
    let mine = format!("owner in [\"{}\"]", alice.id);
    assert_eq!(
        list(&docs, Some(&alice.access), &[("where", &mine)])
            .await
            .0,
        200
    );
    let both = format!("owner in [\"{}\", \"{}\"]", alice.id, mallory.id);
    assert_eq!(
        list(&docs, Some(&alice.access), &[("where", &both)])
            .await
            .0,
        403
    );
}
