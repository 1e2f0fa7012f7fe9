//! One suite, run against SQLite in a temp dir and a fresh PostgreSQL database.

use super::*;

async fn suite(store: &Store) {
    let name = FunctionName::new("suite-fn").unwrap();
    assert!(store.list_functions().await.unwrap().is_empty());

    // Artifacts are content-addressed and idempotent.
    store.put_artifact("h1", b"one").await.unwrap();
    store.put_artifact("h1", b"one").await.unwrap();
    assert_eq!(store.get_artifact("h1").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(store.get_artifact("nope").await.unwrap(), None);

    // Versions increment; live follows deploys; rollback via set_alias.
    let v1 = store.create_version(&name, "h1", "m1", 10).await.unwrap();
    let v2 = store.create_version(&name, "h1", "m2", 20).await.unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(store.get_alias(&name, "live").await.unwrap(), Some(2));
    store.set_alias(&name, "live", 1).await.unwrap();
    assert_eq!(store.get_alias(&name, "live").await.unwrap(), Some(1));
    assert!(matches!(
        store.set_alias(&name, "live", 9).await,
        Err(StoreError::NotFound(_))
    ));
    let v3 = store.create_version(&name, "h1", "m3", 30).await.unwrap();
    assert_eq!(v3.version, 3, "numbers are never reused after a rollback");
    assert_eq!(store.get_version(&name, 2).await.unwrap().unwrap().manifest, "m2");
    assert_eq!(store.list_versions(&name).await.unwrap().len(), 3);
    let listed = store.list_functions().await.unwrap();
    assert_eq!((listed[0].live_version, listed[0].latest_version), (3, 3));
    let live = store.live_versions().await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].version, 3);

    // Racing deploys get distinct numbers.
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            let name = name.clone();
            tokio::spawn(async move { store.create_version(&name, "h1", "race", 40).await })
        })
        .collect();
    let mut numbers = Vec::new();
    for racer in racers {
        numbers.push(racer.await.unwrap().unwrap().version);
    }
    numbers.sort();
    assert_eq!(numbers, vec![4, 5, 6, 7, 8, 9]);

    // Invocations and logs.
    let record = InvocationRecord {
        id: "inv-1".into(),
        function: "suite-fn".into(),
        version: 3,
        started_at_ms: 100,
        duration_us: 1234,
        status: 200,
        outcome: InvocationOutcome::Ok,
        cold_start: true,
        memory_mb: 128,
    };
    store.insert_invocations(&[record.clone()]).await.unwrap();
    assert_eq!(store.get_invocation("inv-1").await.unwrap(), Some(record));
    assert_eq!(store.list_invocations("suite-fn", 0, 10).await.unwrap().len(), 1);
    let lines: Vec<LogLine> = (0..450)
        .map(|i| LogLine {
            seq: 0,
            invocation_id: if i < 300 { "inv-1" } else { "inv-2" }.into(),
            function: "suite-fn".into(),
            version: 3,
            ts_ms: 1000 + i,
            stream: LogStream::Stdout,
            message: format!("line {i}"),
        })
        .collect();
    store.insert_logs(&lines).await.unwrap();
    let all = store
        .query_logs(&LogQuery { function: Some("suite-fn".into()), limit: 1000, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(all.len(), 450);
    assert!(all.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    let by_invocation = store
        .query_logs(&LogQuery { invocation_id: Some("inv-2".into()), limit: 1000, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(by_invocation.len(), 150);
    let since = store
        .query_logs(&LogQuery { since_ms: Some(1440), limit: 1000, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(since.len(), 10);
    let after = store
        .query_logs(&LogQuery { after_seq: Some(all[99].seq), limit: 5, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(after.len(), 5);
    assert_eq!(after[0].message, "line 100");

    // Deleting a function takes its versions, aliases and logs.
    assert!(store.delete_function(&name).await.unwrap());
    assert!(!store.delete_function(&name).await.unwrap());
    assert!(store.list_functions().await.unwrap().is_empty());
    assert!(store.list_versions(&name).await.unwrap().is_empty());
    assert!(store
        .query_logs(&LogQuery { function: Some("suite-fn".into()), limit: 10, ..Default::default() })
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.get_artifact("h1").await.unwrap(), Some(b"one".to_vec()));
}

#[tokio::test]
async fn the_store_suite_passes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/gureum.db", dir.path().display());
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    suite(&store).await;
    // Reopening keeps data and re-running migrations is a no-op.
    store.put_artifact("kept", b"x").await.unwrap();
    store.close().await;
    let reopened = Store::open(&url).await.unwrap();
    assert_eq!(reopened.get_artifact("kept").await.unwrap(), Some(b"x".to_vec()));
}

#[tokio::test]
async fn the_store_suite_passes_on_postgres() {
    let url = testing::fresh_postgres_url().await;
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    suite(&store).await;
    store.close().await;
    let reopened = Store::open(&url).await.unwrap();
    reopened.close().await;
    testing::drop_postgres(&url).await;
}

#[tokio::test]
async fn an_unsupported_url_names_the_valid_schemes() {
    let error = Store::open("mysql://localhost/x").await.err().unwrap();
    let message = error.to_string();
    assert!(message.contains("sqlite://") && message.contains("postgres://"), "{message}");
}
