//! Backend services' tables on both backends: users and refresh-token rotation,
//! documents (filters, keyset pagination, versions, indexes), key-value counters, files.

use std::collections::BTreeSet;

use gureum_store::{
    Cursor, DocQuery, DocumentRow, FieldPath, FileRow, Filter, FilterOp, Rotation, Store, UserRow,
    WriteOutcome,
};
use serde_json::{Value, json};

use crate::Ctx;

on_both_backends!(
    users_are_unique_and_refresh_tokens_rotate_once,
    documents_filter_sort_and_paginate_each_once,
    document_writes_check_versions,
    declared_indexes_serve_the_listing,
    kv_increments_are_exact_under_concurrency,
    files_are_stored_once_per_content_and_cleaned_up,
    notifications_reach_every_listening_node,
);

fn user(id: &str, email: &str) -> UserRow {
    UserRow {
        id: id.into(),
        email: email.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at_ms: 1_000,
        disabled: false,
        last_sign_in_ms: None,
    }
}

async fn users_are_unique_and_refresh_tokens_rotate_once(ctx: Ctx) {
    let store = ctx.store;
    assert!(
        store
            .create_user(&user("u1", "a@example.org"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_user(&user("u2", "a@example.org"))
            .await
            .unwrap(),
        "email taken"
    );
    assert!(
        store
            .create_user(&user("u3", "b@example.org"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .user_by_email("a@example.org")
            .await
            .unwrap()
            .unwrap()
            .id,
        "u1"
    );
    assert_eq!(
        store.user_by_id("u3").await.unwrap().unwrap().email,
        "b@example.org"
    );
    let listed = store.list_users(None, None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["u1", "u3"]
    );
    assert_eq!(
        store
            .list_users(Some("a@example.org"), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let store_ref = &store;
    let found = |prefix: &'static str| async move {
        store_ref
            .list_users(None, Some(prefix), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(found("b@").await, ["u3"]);
    assert_eq!(found("").await, ["u1", "u3"]);
    assert!(
        found("%").await.is_empty(),
        "a LIKE wildcard is a plain character"
    );
    assert!(found("a@example.org-longer").await.is_empty());

    store
        .insert_refresh_token("h1", "u1", 10, 1_000_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh_token("h1", "h2", 20, 1_000_000, 0)
            .await
            .unwrap(),
        Rotation::Rotated("u1".into())
    );
    // h2 is live; presenting h1 again is reuse: every token of u1 is revoked, h2 too.
    assert_eq!(
        store
            .rotate_refresh_token("h1", "h3", 30, 1_000_000, 0)
            .await
            .unwrap(),
        Rotation::Reused("u1".into())
    );
    assert_eq!(
        store
            .rotate_refresh_token("h2", "h4", 40, 1_000_000, 0)
            .await
            .unwrap(),
        Rotation::Reused("u1".into())
    );
    assert_eq!(
        store
            .rotate_refresh_token("nope", "h5", 40, 1_000_000, 0)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    // Expired.
    store
        .insert_refresh_token("e1", "u3", 10, 50)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh_token("e1", "e2", 60, 1_000_000, 0)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    // Logout of one token, then of all; disabling revokes and blocks refresh.
    store
        .insert_refresh_token("l1", "u3", 10, 1_000_000)
        .await
        .unwrap();
    store
        .insert_refresh_token("l2", "u3", 10, 1_000_000)
        .await
        .unwrap();
    assert!(store.revoke_refresh_token("l1", "u3", 70).await.unwrap());
    assert!(
        !store.revoke_refresh_token("l2", "u1", 70).await.unwrap(),
        "not u1's token"
    );
    // l2, and e1 (expired, never revoked) gets its mark too.
    assert_eq!(store.revoke_user_refresh_tokens("u3", 80).await.unwrap(), 2);
    store
        .insert_refresh_token("d1", "u3", 10, 1_000_000)
        .await
        .unwrap();
    assert!(store.set_user_disabled("u3", true, 90).await.unwrap());
    assert!(store.user_by_id("u3").await.unwrap().unwrap().disabled);
    assert_eq!(
        store
            .rotate_refresh_token("d1", "d2", 95, 1_000_000, 0)
            .await
            .unwrap(),
        Rotation::Reused("u3".into()),
        "disabling revoked the token"
    );
    assert!(!store.set_user_disabled("ghost", true, 90).await.unwrap());
    // Each revocation of all sessions is visible to the nodes polling for it; rotating
    // the reused token above (at 95) counted as one too.
    assert_eq!(
        store.users_revoked_since(79).await.unwrap(),
        vec![("u3".to_string(), 95)]
    );
    assert!(store.users_revoked_since(95).await.unwrap().is_empty());
    assert_eq!(
        store.session_state("u3").await.unwrap(),
        Some((true, Some(95)))
    );
    assert_eq!(store.session_state("ghost").await.unwrap(), None);
    // Racing presentations of one token from two nodes: exactly one rotates.
    store
        .insert_refresh_token("race", "u1", 10, 1_000_000)
        .await
        .unwrap();
    let second = Store::open(&ctx.url).await.unwrap();
    let rotated = race([&store, &second], "race", "next", 100, 0)
        .await
        .into_iter()
        .filter(|rotation| matches!(rotation, Rotation::Rotated(_)))
        .count();
    assert_eq!(rotated, 1, "one token, one rotation");
    // With a reuse window, racers presenting one token (and so naming one successor)
    // are all given it; a different successor, or the window passed, is reuse.
    assert!(
        store
            .create_user(&user("u5", "tabs@example.org"))
            .await
            .unwrap()
    );
    store
        .insert_refresh_token("tabs", "u5", 10, 1_000_000)
        .await
        .unwrap();
    for rotation in race([&store, &second], "tabs", "tabs-next", 200, 10_000).await {
        assert_eq!(rotation, Rotation::Rotated("u5".into()));
    }
    assert_eq!(
        store
            .rotate_refresh_token("tabs", "tabs-next", 20_201, 1_000_000, 10_000)
            .await
            .unwrap(),
        Rotation::Reused("u5".into()),
        "after the window"
    );
    store
        .insert_refresh_token("tabs2", "u5", 30_000, 1_000_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh_token("tabs2", "tabs2-next", 30_100, 1_000_000, 10_000)
            .await
            .unwrap(),
        Rotation::Rotated("u5".into())
    );
    assert_eq!(
        store
            .rotate_refresh_token("tabs2", "not-its-successor", 30_200, 1_000_000, 10_000)
            .await
            .unwrap(),
        Rotation::Reused("u5".into()),
        "within the window, but naming another successor"
    );
    second.close().await;
    store.record_sign_in("u1", 123).await.unwrap();
    assert_eq!(
        store
            .user_by_id("u1")
            .await
            .unwrap()
            .unwrap()
            .last_sign_in_ms,
        Some(123)
    );
}

/// Eight concurrent presentations of `token` (each naming `successor`), alternating
/// between two connection pools (two nodes).
async fn race(
    nodes: [&Store; 2],
    token: &'static str,
    successor: &'static str,
    now_ms: i64,
    window_ms: i64,
) -> Vec<Rotation> {
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let node = nodes[i % 2].clone();
            tokio::spawn(async move {
                node.rotate_refresh_token(token, successor, now_ms, 1_000_000, window_ms)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut rotations = Vec::new();
    for racer in racers {
        rotations.push(racer.await.unwrap());
    }
    rotations
}

fn doc(i: i64) -> DocumentRow {
    // `maybe` is missing on every third document and JSON null on every fifth, so sorting
    // and paging must handle both.
    let tag = ["a", "b", "c"][(i % 3) as usize];
    let mut data =
        json!({"n": i % 10, "s": format!("name-{i:03}"), "tag": tag, "nested": {"x": i}});
    if i % 3 != 0 {
        data["maybe"] = if i % 5 == 0 {
            Value::Null
        } else {
            json!(i % 7)
        };
    }
    DocumentRow {
        id: format!("d{i:04}"),
        owner: Some(if i % 2 == 0 { "alice" } else { "bob" }.into()),
        created_at_ms: 1_000 + i,
        updated_at_ms: 1_000 + i,
        version: 1,
        data: data.to_string(),
    }
}

async fn all_pages(store: &Store, mut query: DocQuery) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let page = store.query_documents("things", &query).await.unwrap();
        let Some(last) = page.last() else { break };
        query.after = Some(Cursor {
            value: query.sort.value_in(last),
            id: last.id.clone(),
        });
        let full = page.len() == query.limit as usize;
        ids.extend(page.into_iter().map(|d| d.id));
        if !full {
            break;
        }
        assert!(ids.len() <= 1_000, "paging does not end");
    }
    ids
}

/// Which documents a filter case should return.
type Keep = dyn Fn(&Value, &DocumentRow) -> bool + Send + Sync;

fn query(filters: Vec<Filter>, sort: &str, descending: bool, limit: u32) -> DocQuery {
    DocQuery {
        filters,
        sort: FieldPath::parse(sort).unwrap(),
        descending,
        limit,
        after: None,
    }
}

fn filter(field: &str, op: FilterOp, value: Value) -> Filter {
    Filter {
        field: FieldPath::parse(field).unwrap(),
        op,
        value,
    }
}

/// The expected ids: the documents `keep` accepts ordered like the store orders `sort`
/// (NULL first ascending, then by value, ties by id).
fn expected(
    docs: &[DocumentRow],
    keep: impl Fn(&Value, &DocumentRow) -> bool,
    sort: &str,
    descending: bool,
) -> Vec<String> {
    let field = FieldPath::parse(sort).unwrap();
    let mut rows: Vec<(Option<f64>, String)> = docs
        .iter()
        .filter(|d| keep(&serde_json::from_str(&d.data).unwrap(), d))
        .map(|d| (field.value_in(d).as_f64(), d.id.clone()))
        .collect();
    rows.sort_by(|a, b| {
        let key = |r: &(Option<f64>, String)| (r.0.is_some(), r.0.unwrap_or(0.0));
        key(a).partial_cmp(&key(b)).unwrap().then(a.1.cmp(&b.1))
    });
    if descending {
        rows.reverse();
    }
    rows.into_iter().map(|r| r.1).collect()
}

async fn documents_filter_sort_and_paginate_each_once(ctx: Ctx) {
    let store = ctx.store;
    let docs: Vec<DocumentRow> = (0..250).map(doc).collect();
    store.insert_documents("things", &docs).await.unwrap();
    store.insert_document("other", &doc(1)).await.unwrap();
    assert_eq!(store.count_documents("things").await.unwrap(), 250);

    for (sort, descending) in [
        ("maybe", false),
        ("maybe", true),
        ("created", true),
        ("data.n", false),
        ("id", true),
    ] {
        for limit in [7, 1000] {
            let got = all_pages(&store, query(vec![], sort, descending, limit)).await;
            let unique: BTreeSet<_> = got.iter().collect();
            assert_eq!(
                unique.len(),
                250,
                "{sort} desc={descending} limit={limit}: each once"
            );
            if sort != "id" {
                assert_eq!(
                    got,
                    expected(&docs, |_, _| true, sort, descending),
                    "{sort} desc={descending} limit={limit}: order"
                );
            }
        }
    }

    let cases: Vec<(Vec<Filter>, Box<Keep>)> = vec![
        (
            vec![filter("n", FilterOp::Eq, json!(3))],
            Box::new(|d, _| d["n"] == 3),
        ),
        (
            vec![filter("data.n", FilterOp::Ne, json!(3))],
            Box::new(|d, _| d["n"] != 3),
        ),
        (
            vec![
                filter("n", FilterOp::Ge, json!(7)),
                filter("tag", FilterOp::Eq, json!("b")),
            ],
            Box::new(|d, _| d["n"].as_i64().unwrap() >= 7 && d["tag"] == "b"),
        ),
        (
            vec![filter("n", FilterOp::Lt, json!(2.5))],
            Box::new(|d, _| d["n"].as_i64().unwrap() < 3),
        ),
        (
            vec![filter("tag", FilterOp::In, json!(["a", "c"]))],
            Box::new(|d, _| d["tag"] != "b"),
        ),
        (
            vec![filter("maybe", FilterOp::Eq, Value::Null)],
            Box::new(|d, _| d.get("maybe").is_none_or(Value::is_null)),
        ),
        (
            vec![
                filter("maybe", FilterOp::Ne, Value::Null),
                filter("maybe", FilterOp::Le, json!(3)),
            ],
            Box::new(|d, _| {
                d.get("maybe")
                    .and_then(Value::as_i64)
                    .is_some_and(|m| m <= 3)
            }),
        ),
        (
            vec![filter("owner", FilterOp::Eq, json!("alice"))],
            Box::new(|_, r| r.owner.as_deref() == Some("alice")),
        ),
        (
            vec![filter("created", FilterOp::Gt, json!(1_200))],
            Box::new(|_, r| r.created_at_ms > 1_200),
        ),
        (
            vec![filter("nested.x", FilterOp::Le, json!(10))],
            Box::new(|d, _| d["nested"]["x"].as_i64().unwrap() <= 10),
        ),
        (
            vec![filter("s", FilterOp::Ge, json!("name-240"))],
            Box::new(|d, _| d["s"].as_str().unwrap() >= "name-240"),
        ),
        (
            vec![filter("tag", FilterOp::In, json!([]))],
            Box::new(|_, _| false),
        ),
    ];
    for (index, (filters, keep)) in cases.iter().enumerate() {
        let got = all_pages(&store, query(filters.clone(), "maybe", true, 9)).await;
        assert_eq!(
            got,
            expected(&docs, keep, "maybe", true),
            "case {index}: {filters:?}"
        );
    }

    // Values that cannot be compared with their field are refused with the reason.
    let error = store
        .query_documents(
            "things",
            &query(
                vec![filter("created", FilterOp::Eq, json!("x"))],
                "id",
                false,
                5,
            ),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("created"), "{error}");
    let error = store
        .query_documents(
            "things",
            &query(vec![filter("n", FilterOp::Lt, Value::Null)], "id", false, 5),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("null"), "{error}");
    assert!(FieldPath::parse("a'b").is_err());
    assert!(FieldPath::parse("a..b").is_err());
}

async fn document_writes_check_versions(ctx: Ctx) {
    let store = ctx.store;
    store.insert_document("things", &doc(1)).await.unwrap();
    let WriteOutcome::Done(updated) = store
        .update_document("things", "d0001", Some(1), r#"{"n": 42}"#, 5_000)
        .await
        .unwrap()
    else {
        panic!("update with the right version")
    };
    assert_eq!((updated.version, updated.updated_at_ms), (2, 5_000));
    assert_eq!(
        serde_json::from_str::<Value>(&updated.data).unwrap(),
        json!({"n": 42})
    );
    assert_eq!(
        store
            .update_document("things", "d0001", Some(1), "{}", 6_000)
            .await
            .unwrap(),
        WriteOutcome::VersionMismatch(2)
    );
    assert_eq!(
        store
            .update_document("things", "nope", None, "{}", 6_000)
            .await
            .unwrap(),
        WriteOutcome::NotFound
    );
    assert!(matches!(
        store
            .update_document("things", "d0001", None, r#"{"n": 43}"#, 7_000)
            .await
            .unwrap(),
        WriteOutcome::Done(DocumentRow { version: 3, .. })
    ));
    assert_eq!(
        store
            .delete_document("things", "d0001", Some(2))
            .await
            .unwrap(),
        WriteOutcome::VersionMismatch(3)
    );
    assert!(matches!(
        store
            .delete_document("things", "d0001", Some(3))
            .await
            .unwrap(),
        WriteOutcome::Done(_)
    ));
    assert_eq!(store.get_document("things", "d0001").await.unwrap(), None);
}

async fn plan(store: &Store, query: &DocQuery) -> String {
    store.explain_document_query("things", query).await.unwrap()
}

async fn declared_indexes_serve_the_listing(ctx: Ctx) {
    let store = ctx.store;
    let docs: Vec<DocumentRow> = (0..300).map(doc).collect();
    store.insert_documents("things", &docs).await.unwrap();
    let n = FieldPath::parse("n").unwrap();
    let listing = query(vec![filter("n", FilterOp::Eq, json!(4))], "n", false, 10);
    let unindexed = query(vec![filter("n", FilterOp::Ge, json!(4))], "n", false, 11);
    let before = plan(&store, &unindexed).await;
    assert!(!before.contains("docidx_"), "no index yet: {before}");
    store
        .put_collection("things", "{}", std::slice::from_ref(&n), &[])
        .await
        .unwrap();
    let after = plan(&store, &listing).await;
    assert!(
        after.contains("docidx_"),
        "the index on data.n is used: {after}"
    );
    let sorted = plan(&store, &query(vec![], "n", true, 10)).await;
    assert!(
        sorted.contains("docidx_"),
        "sorting by data.n uses it: {sorted}"
    );
    // Same answers with the index.
    let got = all_pages(
        &store,
        query(vec![filter("n", FilterOp::Eq, json!(4))], "n", true, 7),
    )
    .await;
    assert_eq!(got.len(), 30);
    // Dropped when no longer declared.
    store
        .put_collection("things", "{}", &[], std::slice::from_ref(&n))
        .await
        .unwrap();
    let dropped = plan(&store, &listing).await;
    assert!(!dropped.contains("docidx_"), "{dropped}");
    assert_eq!(
        store.collection_config("things").await.unwrap().as_deref(),
        Some("{}")
    );
    assert!(store.delete_collection("things", &[]).await.unwrap());
    assert_eq!(store.count_documents("things").await.unwrap(), 0);
}

async fn kv_increments_are_exact_under_concurrency(ctx: Ctx) {
    let store = ctx.store;
    let second = Store::open(&ctx.url).await.unwrap();
    store
        .kv_set_many(
            "fn-a",
            "b",
            &[("k1".into(), b"v1".to_vec()), ("k2".into(), b"v2".to_vec())],
        )
        .await
        .unwrap();
    assert_eq!(
        store.kv_get("fn-a", "b", "k1").await.unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(
        store.kv_get("fn-b", "b", "k1").await.unwrap(),
        None,
        "scopes are separate"
    );
    assert_eq!(
        store
            .kv_get_many("fn-a", "b", &["k2".into(), "zz".into()])
            .await
            .unwrap(),
        vec![Some(b"v2".to_vec()), None]
    );
    let mut tasks = Vec::new();
    for i in 0..40 {
        let node = if i % 2 == 0 {
            store.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                node.kv_increment("fn-a", "counters", "hits", 1)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        store
            .kv_increment("fn-a", "counters", "hits", 0)
            .await
            .unwrap(),
        200
    );
    assert_eq!(
        store.kv_get("fn-a", "counters", "hits").await.unwrap(),
        Some(b"200".to_vec())
    );
    let error = store.kv_increment("fn-a", "b", "k1", 1).await.unwrap_err();
    assert!(error.to_string().contains("not an integer"), "{error}");
    // Listing pages through every key once.
    let entries: Vec<(String, Vec<u8>)> = (0..1_205)
        .map(|i| (format!("key-{i:05}"), vec![1]))
        .collect();
    store.kv_set_many("fn-a", "many", &entries).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (keys, next) = store
            .kv_list("fn-a", "many", cursor.as_deref())
            .await
            .unwrap();
        seen.extend(keys);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        entries.iter().map(|e| e.0.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        store
            .kv_delete_many("fn-a", "b", &["k1".into(), "nope".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.kv_get("fn-a", "b", "k1").await.unwrap(), None);
    second.close().await;
}

async fn files_are_stored_once_per_content_and_cleaned_up(ctx: Ctx) {
    let store = ctx.store;
    let content: Vec<u8> = (0..(2 * gureum_store::BLOB_CHUNK + 12_345))
        .map(|i| (i % 251) as u8)
        .collect();
    let file = |id: &str| FileRow {
        id: id.into(),
        name: "data.bin".into(),
        content_type: "application/octet-stream".into(),
        size: content.len() as i64,
        sha256: "abc123".into(),
        owner: Some("alice".into()),
        created_at_ms: 1_000,
    };
    store
        .put_file("things", &file("f1"), &mut content.as_slice())
        .await
        .unwrap();
    assert_eq!(store.blob_chunk_count().await.unwrap(), 3);
    store
        .put_file("things", &file("f2"), &mut content.as_slice())
        .await
        .unwrap();
    assert_eq!(
        store.blob_chunk_count().await.unwrap(),
        3,
        "same content stored once"
    );
    let mut read = Vec::new();
    for seq in 0..3 {
        read.extend(store.blob_chunk("abc123", seq).await.unwrap().unwrap());
    }
    assert_eq!(read, content);
    assert_eq!(
        store.get_file("things", "f1").await.unwrap(),
        Some(file("f1"))
    );
    let page = |owner, after, limit| gureum_store::FilePage {
        owner,
        after,
        limit,
    };
    let all = store
        .list_files("things", &page(None, None, 10))
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].created_at_ms >= all[1].created_at_ms, "newest first");
    let first = store
        .list_files("things", &page(None, None, 1))
        .await
        .unwrap();
    let after = (first[0].created_at_ms, first[0].id.as_str());
    let second = store
        .list_files("things", &page(None, Some(after), 1))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        second[0].id, all[1].id,
        "the next page starts after the cursor"
    );
    let last = (second[0].created_at_ms, second[0].id.as_str());
    assert!(
        store
            .list_files("things", &page(None, Some(last), 1))
            .await
            .unwrap()
            .is_empty()
    );
    let nobody = store
        .list_files("things", &page(Some("nobody"), None, 10))
        .await
        .unwrap();
    assert!(nobody.is_empty(), "only the owner's files");
    assert!(store.delete_file("things", "f1").await.unwrap().is_some());
    assert_eq!(
        store.blob_chunk_count().await.unwrap(),
        3,
        "f2 still uses it"
    );
    assert!(store.delete_file("things", "f2").await.unwrap().is_some());
    assert_eq!(store.blob_chunk_count().await.unwrap(), 0);
    assert!(store.delete_file("things", "f2").await.unwrap().is_none());
    // An empty file has one empty chunk.
    let empty = FileRow {
        size: 0,
        sha256: "e3b0".into(),
        ..file("f3")
    };
    store
        .put_file("things", &empty, &mut [].as_slice())
        .await
        .unwrap();
    assert_eq!(store.blob_chunk("e3b0", 0).await.unwrap(), Some(vec![]));
}

async fn notifications_reach_every_listening_node(ctx: Ctx) {
    let store = ctx.store;
    let Some(mut listening) = store.listen("test_channel").await.unwrap() else {
        assert_eq!(
            store.backend(),
            gureum_store::Backend::Sqlite,
            "only SQLite has no listener"
        );
        store
            .notify("test_channel", "nobody hears this")
            .await
            .unwrap();
        return;
    };
    let other = Store::open(&ctx.url).await.unwrap();
    other.notify("test_channel", "first").await.unwrap();
    other.notify("elsewhere", "not for us").await.unwrap();
    other.notify("test_channel", "second").await.unwrap();
    let mut heard = Vec::new();
    for _ in 0..2 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), listening.next())
            .await
            .expect("a notification within 10 s");
        heard.push(next.unwrap());
    }
    assert_eq!(heard, ["first", "second"]);
    let too_big = "x".repeat(gureum_store::MAX_NOTIFY_BYTES + 1);
    assert!(other.notify("test_channel", &too_big).await.is_err());
    other.close().await;
}
