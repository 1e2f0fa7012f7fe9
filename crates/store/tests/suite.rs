//! The store's behaviour suite, written once and run against both real backends: SQLite in
//! a temp dir and a fresh PostgreSQL database per test (which fails, never skips, when
//! PostgreSQL is unreachable).

use std::future::Future;

use gureum_model::{
    DailyUsage, FunctionName, InvocationOutcome, InvocationRecord, LIVE_ALIAS, LogLine, LogStream,
    MS_PER_DAY, Trigger,
};
use gureum_store::{Backend, Enqueued, LogQuery, QueuedEvent, Store, StoreError, testing};
use sqlx::Connection;

/// What each test gets: an open store and its URL, to open it again as a second node.
struct Ctx {
    store: Store,
    url: String,
}

/// Runs `test` on a SQLite store in a fresh temp dir (with a nested, not yet existing
/// directory whose name needs URL escaping).
async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let url = format!("sqlite://{}/nested dir #1/gureum.db", dir.path().display());
    let store = Store::open(&url).await.expect("opening the SQLite store");
    assert_eq!(store.backend(), Backend::Sqlite);
    let outcome = tokio::spawn(test(Ctx {
        store: store.clone(),
        url,
    }))
    .await;
    store.close().await;
    drop(dir);
    rethrow(outcome);
}

/// Runs `test` on a fresh PostgreSQL database and drops it afterwards, also when the
/// test panics (the body runs in its own task so the panic can be caught and re-raised).
async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = testing::fresh_postgres_url().await;
    let store = match Store::open(&url).await {
        Ok(store) => store,
        Err(error) => {
            testing::drop_postgres(&url).await;
            panic!("opening the PostgreSQL store at {url}: {error}");
        }
    };
    assert_eq!(store.backend(), Backend::Postgres);
    let outcome = tokio::spawn(test(Ctx {
        store: store.clone(),
        url: url.clone(),
    }))
    .await;
    store.close().await;
    testing::drop_postgres(&url).await;
    rethrow(outcome);
}

fn rethrow(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(error) = outcome {
        if error.is_panic() {
            std::panic::resume_unwind(error.into_panic());
        }
        panic!("test task failed: {error}");
    }
}

/// Instantiates every listed test once per backend: `sqlite::NAME` and `postgres::NAME`.
/// Migrations each backend has (the files under migrations/<backend>/).
const MIGRATIONS: i64 = 8;

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::run_sqlite(super::$test).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::run_postgres(super::$test).await;
                }
            )*
        }
    };
}

#[path = "suite/baas.rs"]
mod baas;

on_both_backends!(
    versions_increment_and_are_immutable,
    deploys_move_the_live_alias,
    set_alias_rolls_back_and_numbers_are_never_reused,
    set_alias_to_a_missing_version_is_not_found,
    racing_deploys_from_two_nodes_get_distinct_numbers,
    delete_function_removes_all_but_artifacts,
    live_versions_and_list_functions_cover_every_function,
    artifacts_are_content_addressed_and_idempotent,
    invocations_round_trip,
    invocations_are_scanned_in_start_order_within_the_window,
    logs_are_batch_inserted_and_filtered,
    reopening_keeps_data_and_migrations_run_once,
    every_change_of_what_is_live_bumps_the_registry_generation,
    usage_rolls_up_with_the_records_and_the_overflow,
    settings_round_trip,
    a_lease_has_one_holder_until_it_expires_or_is_released,
    purge_deletes_old_logs_and_records_but_keeps_usage,
    logs_grep_is_a_case_sensitive_substring,
    queued_events_are_claimed_once_and_leases_expire,
    two_nodes_never_claim_the_same_event,
    events_retry_complete_and_dead_letter_with_follow_ups,
    idempotency_keys_deduplicate_enqueues,
    schedule_ticks_fire_once,
);

fn name(name: &str) -> FunctionName {
    FunctionName::new(name).expect("a valid test function name")
}

fn invocation(id: &str, function: &str, started_at_ms: i64) -> InvocationRecord {
    InvocationRecord {
        id: id.to_string(),
        function: function.to_string(),
        version: 1,
        started_at_ms,
        duration_us: 1_234,
        status: 200,
        outcome: InvocationOutcome::Ok,
        cold_start: false,
        memory_mb: 128,
        trigger: Trigger::Http,
        billed_ms: 2,
        bytes_in: 10,
        bytes_out: 20,
    }
}

fn log_line(invocation_id: &str, function: &str, ts_ms: i64, message: &str) -> LogLine {
    LogLine {
        // The store assigns seq; a made-up input value must be ignored.
        seq: 999,
        invocation_id: invocation_id.to_string(),
        function: function.to_string(),
        version: 1,
        ts_ms,
        stream: LogStream::Stdout,
        message: message.to_string(),
    }
}

fn logs_query(limit: u32) -> LogQuery {
    LogQuery {
        limit,
        ..LogQuery::default()
    }
}

/// A number from a table, read with a separate raw connection (what a second tool sees).
async fn raw_count(url: &str, sql: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(url)
        .await
        .expect("raw connection");
    let count: i64 = sqlx::query_scalar(sql)
        .fetch_one(&mut connection)
        .await
        .expect("raw count");
    connection
        .close()
        .await
        .expect("closing the raw connection");
    count
}

async fn versions_increment_and_are_immutable(ctx: Ctx) {
    let store = &ctx.store;
    let hello = name("hello");
    let v1 = store.create_version(&hello, "h1", "m1", 10).await.unwrap();
    let v2 = store.create_version(&hello, "h2", "m2", 20).await.unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(
        (v1.function.as_str(), v1.artifact_hash.as_str()),
        ("hello", "h1")
    );
    assert_eq!((v1.manifest.as_str(), v1.created_at_ms), ("m1", 10));
    // Version 1 is unchanged by the later deploy.
    assert_eq!(
        store.get_version(&hello, 1).await.unwrap(),
        Some(v1.clone())
    );
    assert_eq!(
        store.get_version(&hello, 2).await.unwrap(),
        Some(v2.clone())
    );
    assert_eq!(store.get_version(&hello, 3).await.unwrap(), None);
    assert_eq!(store.get_version(&name("other"), 1).await.unwrap(), None);
    assert_eq!(store.list_versions(&hello).await.unwrap(), vec![v1, v2]);
    assert!(
        store
            .list_versions(&name("other"))
            .await
            .unwrap()
            .is_empty()
    );
    // Another function numbers its versions independently.
    let other = store
        .create_version(&name("other"), "h1", "m", 30)
        .await
        .unwrap();
    assert_eq!(other.version, 1);
}

async fn deploys_move_the_live_alias(ctx: Ctx) {
    let store = &ctx.store;
    let hello = name("hello");
    assert_eq!(store.get_alias(&hello, LIVE_ALIAS).await.unwrap(), None);
    store.create_version(&hello, "h1", "m1", 10).await.unwrap();
    assert_eq!(store.get_alias(&hello, LIVE_ALIAS).await.unwrap(), Some(1));
    store.create_version(&hello, "h2", "m2", 20).await.unwrap();
    assert_eq!(store.get_alias(&hello, LIVE_ALIAS).await.unwrap(), Some(2));
    assert_eq!(store.get_alias(&hello, "canary").await.unwrap(), None);
}

async fn set_alias_rolls_back_and_numbers_are_never_reused(ctx: Ctx) {
    let store = &ctx.store;
    let hello = name("hello");
    for (hash, now) in [("h1", 1), ("h2", 2), ("h3", 3)] {
        store.create_version(&hello, hash, "m", now).await.unwrap();
    }
    store.set_alias(&hello, LIVE_ALIAS, 1).await.unwrap();
    assert_eq!(store.get_alias(&hello, LIVE_ALIAS).await.unwrap(), Some(1));
    let summary = &store.list_functions().await.unwrap()[0];
    assert_eq!((summary.live_version, summary.latest_version), (1, 3));
    // Other aliases are independent of live.
    store.set_alias(&hello, "canary", 3).await.unwrap();
    assert_eq!(store.get_alias(&hello, "canary").await.unwrap(), Some(3));
    assert_eq!(store.get_alias(&hello, LIVE_ALIAS).await.unwrap(), Some(1));
    // The next deploy continues after the highest number, not after the live one.
    let next = store.create_version(&hello, "h4", "m", 4).await.unwrap();
    assert_eq!(next.version, 4);
    assert_eq!(store.get_alias(&hello, LIVE_ALIAS).await.unwrap(), Some(4));
    assert_eq!(store.get_alias(&hello, "canary").await.unwrap(), Some(3));
}

async fn set_alias_to_a_missing_version_is_not_found(ctx: Ctx) {
    let store = &ctx.store;
    let hello = name("hello");
    store.create_version(&hello, "h1", "m", 1).await.unwrap();
    let error = store.set_alias(&hello, LIVE_ALIAS, 7).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    assert!(error.to_string().contains("no version 7"), "{error}");
    assert_eq!(store.get_alias(&hello, LIVE_ALIAS).await.unwrap(), Some(1));
    let error = store
        .set_alias(&name("ghost"), LIVE_ALIAS, 1)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    assert_eq!(
        store.get_alias(&name("ghost"), LIVE_ALIAS).await.unwrap(),
        None
    );
}

async fn racing_deploys_from_two_nodes_get_distinct_numbers(ctx: Ctx) {
    // Two stores on one database are two nodes with separate connection pools.
    let node_b = Store::open(&ctx.url).await.unwrap();
    let hello = name("hello");
    let mut racers = Vec::new();
    for task in 0..8 {
        let store = if task % 2 == 0 {
            ctx.store.clone()
        } else {
            node_b.clone()
        };
        let hello = hello.clone();
        racers.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for deploy in 0..3 {
                let hash = format!("h{task}-{deploy}");
                numbers.push(
                    store
                        .create_version(&hello, &hash, "m", 1)
                        .await
                        .unwrap()
                        .version,
                );
            }
            numbers
        }));
    }
    let mut numbers = Vec::new();
    for racer in racers {
        numbers.extend(racer.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=24).collect::<Vec<_>>());
    assert_eq!(ctx.store.list_versions(&hello).await.unwrap().len(), 24);
    // Each deploy moved live inside its own transaction, so the last one wins.
    assert_eq!(
        node_b.get_alias(&hello, LIVE_ALIAS).await.unwrap(),
        Some(24)
    );
    node_b.close().await;
}

async fn delete_function_removes_all_but_artifacts(ctx: Ctx) {
    let store = &ctx.store;
    let (doomed, kept) = (name("doomed"), name("kept"));
    store.put_artifact("shared", b"wasm").await.unwrap();
    for function in [&doomed, &kept] {
        store
            .create_version(function, "shared", "m", 1)
            .await
            .unwrap();
        store
            .create_version(function, "shared", "m", 2)
            .await
            .unwrap();
        store
            .insert_invocations(
                &[invocation(&format!("{function}-inv"), function.as_str(), 5)],
                &[],
            )
            .await
            .unwrap();
        store
            .insert_logs(&[log_line(
                &format!("{function}-inv"),
                function.as_str(),
                5,
                "hi",
            )])
            .await
            .unwrap();
    }
    store.set_alias(&doomed, "canary", 1).await.unwrap();

    assert!(store.delete_function(&doomed).await.unwrap());
    assert!(!store.delete_function(&doomed).await.unwrap());
    assert!(!store.delete_function(&name("never")).await.unwrap());
    assert!(store.list_versions(&doomed).await.unwrap().is_empty());
    assert_eq!(store.get_alias(&doomed, LIVE_ALIAS).await.unwrap(), None);
    assert_eq!(store.get_alias(&doomed, "canary").await.unwrap(), None);
    assert_eq!(store.get_invocation("doomed-inv").await.unwrap(), None);
    assert!(
        store
            .list_invocations("doomed", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let doomed_logs = LogQuery {
        function: Some("doomed".into()),
        ..logs_query(10)
    };
    assert!(store.query_logs(&doomed_logs).await.unwrap().is_empty());
    // The artifact and the other function are untouched.
    assert_eq!(
        store.get_artifact("shared").await.unwrap(),
        Some(b"wasm".to_vec())
    );
    assert_eq!(store.list_versions(&kept).await.unwrap().len(), 2);
    assert!(store.get_invocation("kept-inv").await.unwrap().is_some());
    assert_eq!(store.query_logs(&logs_query(10)).await.unwrap().len(), 1);
    let names: Vec<_> = store
        .list_functions()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, vec![kept]);
    // A function created again under the same name is a new function.
    let again = store
        .create_version(&doomed, "shared", "m", 9)
        .await
        .unwrap();
    assert_eq!(again.version, 1);
}

async fn live_versions_and_list_functions_cover_every_function(ctx: Ctx) {
    let store = &ctx.store;
    assert!(store.live_versions().await.unwrap().is_empty());
    assert!(store.list_functions().await.unwrap().is_empty());
    let zeta = name("zeta");
    let alpha = name("alpha");
    store.create_version(&zeta, "z1", "zm1", 100).await.unwrap();
    let zeta2 = store.create_version(&zeta, "z2", "zm2", 200).await.unwrap();
    let alpha1 = store
        .create_version(&alpha, "a1", "am1", 300)
        .await
        .unwrap();
    store
        .create_version(&alpha, "a2", "am2", 400)
        .await
        .unwrap();
    store.set_alias(&alpha, LIVE_ALIAS, 1).await.unwrap();

    assert_eq!(store.live_versions().await.unwrap(), vec![alpha1, zeta2]);
    let summaries = store.list_functions().await.unwrap();
    let view: Vec<_> = summaries
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.live_version,
                s.latest_version,
                s.created_at_ms,
            )
        })
        .collect();
    assert_eq!(view, vec![("alpha", 1, 2, 300), ("zeta", 2, 2, 100)]);
}

async fn artifacts_are_content_addressed_and_idempotent(ctx: Ctx) {
    let store = &ctx.store;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    store.put_artifact("big", &big).await.unwrap();
    store.put_artifact("big", &big).await.unwrap();
    store.put_artifact("empty", b"").await.unwrap();
    store.put_artifact("zeros", &[0, 0, 255, 0]).await.unwrap();
    assert_eq!(store.get_artifact("big").await.unwrap(), Some(big));
    assert_eq!(store.get_artifact("empty").await.unwrap(), Some(Vec::new()));
    assert_eq!(
        store.get_artifact("zeros").await.unwrap(),
        Some(vec![0, 0, 255, 0])
    );
    assert_eq!(store.get_artifact("missing").await.unwrap(), None);
}

async fn invocations_round_trip(ctx: Ctx) {
    let store = &ctx.store;
    store.insert_invocations(&[], &[]).await.unwrap();
    let outcomes = [
        InvocationOutcome::Ok,
        InvocationOutcome::Error,
        InvocationOutcome::Timeout,
        InvocationOutcome::Throttled,
    ];
    // More than one multi-row chunk, in one batch.
    let records: Vec<InvocationRecord> = (0..1_100)
        .map(|i| InvocationRecord {
            version: if i == 7 { u32::MAX } else { 3 },
            duration_us: i64::from(i) * 1_000_003,
            status: [200, 502, 504, 429][i as usize % 4],
            outcome: outcomes[i as usize % 4],
            cold_start: i % 3 == 0,
            memory_mb: if i == 8 { 4_096 } else { 128 },
            trigger: [Trigger::Http, Trigger::Api, Trigger::Cron][(i % 3) as usize],
            bytes_out: i64::from(i) * 1_000_000_007,
            ..invocation(&format!("inv-{i:04}"), "busy", 1_000 + i64::from(i))
        })
        .collect();
    store.insert_invocations(&records, &[]).await.unwrap();
    store
        .insert_invocations(&[invocation("quiet-1", "quiet", 1_500)], &[])
        .await
        .unwrap();
    for record in [&records[0], &records[7], &records[8], &records[1_099]] {
        assert_eq!(
            store.get_invocation(&record.id).await.unwrap().as_ref(),
            Some(record)
        );
    }
    assert_eq!(store.get_invocation("nope").await.unwrap(), None);

    let all = store.list_invocations("busy", 0, 5_000).await.unwrap();
    let mut newest_first = records.clone();
    newest_first.reverse();
    assert_eq!(all, newest_first);
    let since = store.list_invocations("busy", 2_000, 5_000).await.unwrap();
    assert_eq!(since.len(), 100);
    assert!(since.iter().all(|record| record.started_at_ms >= 2_000));
    let limited = store.list_invocations("busy", 0, 3).await.unwrap();
    let ids: Vec<_> = limited.iter().map(|record| record.id.as_str()).collect();
    assert_eq!(ids, ["inv-1099", "inv-1098", "inv-1097"]);
    assert_eq!(
        store.list_invocations("quiet", 0, 10).await.unwrap().len(),
        1
    );
    assert!(
        store
            .list_invocations("none", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Retrying a batch the writer already flushed skips the stored records.
    store.insert_invocations(&records[..10], &[]).await.unwrap();
    assert_eq!(
        store
            .list_invocations("busy", 0, 5_000)
            .await
            .unwrap()
            .len(),
        1_100
    );
}

/// `/stats` reads a window in one streamed pass: start order, one function or all,
/// nothing outside `[since, until)`.
async fn invocations_are_scanned_in_start_order_within_the_window(ctx: Ctx) {
    let store = &ctx.store;
    // Inserted out of start order; two start in the same millisecond.
    let records: Vec<InvocationRecord> = [10_003, 10_000, 10_002, 10_000, 10_001]
        .into_iter()
        .enumerate()
        .map(|(i, ms)| InvocationRecord {
            outcome: if i == 2 {
                InvocationOutcome::Throttled
            } else {
                InvocationOutcome::Ok
            },
            cold_start: i == 1,
            ..invocation(&format!("s-{i}"), "scanned", ms)
        })
        .collect();
    store.insert_invocations(&records, &[]).await.unwrap();
    store
        .insert_invocations(
            &[
                invocation("other", "elsewhere", 10_001),
                invocation("early", "scanned", 9_999),
                invocation("late", "scanned", 10_004),
            ],
            &[],
        )
        .await
        .unwrap();
    for (function, expected) in [
        (
            Some("scanned"),
            vec![10_000, 10_000, 10_001, 10_002, 10_003],
        ),
        (None, vec![10_000, 10_000, 10_001, 10_001, 10_002, 10_003]),
    ] {
        let mut seen = Vec::new();
        let read = store
            .scan_invocations(function, 10_000, 10_004, |timing| seen.push(timing))
            .await
            .unwrap();
        assert_eq!(read, expected.len() as u64);
        let starts: Vec<i64> = seen.iter().map(|t| t.started_at_ms).collect();
        assert_eq!(starts, expected, "function {function:?}");
        if function.is_some() {
            assert!(seen.iter().all(|t| t.function == "scanned"));
        }
    }
    let mut seen = Vec::new();
    store
        .scan_invocations(Some("scanned"), 10_002, 10_003, |timing| seen.push(timing))
        .await
        .unwrap();
    assert_eq!(
        seen,
        [gureum_store::InvocationTiming {
            function: "scanned".into(),
            started_at_ms: 10_002,
            duration_us: 1_234,
            outcome: InvocationOutcome::Throttled,
            cold_start: false,
            memory_mb: 128,
            billed_ms: 2,
        }],
        "every field read back"
    );
}

async fn logs_are_batch_inserted_and_filtered(ctx: Ctx) {
    let store = &ctx.store;
    store.insert_logs(&[]).await.unwrap();
    let streams = [LogStream::Stdout, LogStream::Stderr, LogStream::Platform];
    let lines: Vec<LogLine> = (0..1_200)
        .map(|i| LogLine {
            stream: streams[i % 3],
            ..log_line(
                if i < 800 { "a-1" } else { "a-2" },
                "fn-a",
                1_000 + i as i64,
                &format!("line {i}"),
            )
        })
        .collect();
    store.insert_logs(&lines[..600]).await.unwrap();
    store
        .insert_logs(&[
            log_line("b-1", "fn-b", 1_100, "ünïcödé ☁️ 구름"),
            log_line("b-1", "fn-b", 1_101, ""),
        ])
        .await
        .unwrap();
    store.insert_logs(&lines[600..]).await.unwrap();

    let function_a = LogQuery {
        function: Some("fn-a".into()),
        ..logs_query(5_000)
    };
    let all_a = store.query_logs(&function_a).await.unwrap();
    assert_eq!(all_a.len(), 1_200);
    assert!(all_a.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    for (stored, sent) in all_a.iter().zip(&lines) {
        assert_eq!(
            LogLine {
                seq: 999,
                ..stored.clone()
            },
            *sent
        );
    }
    let b_lines = store
        .query_logs(&LogQuery {
            function: Some("fn-b".into()),
            ..logs_query(10)
        })
        .await
        .unwrap();
    let b_messages: Vec<_> = b_lines.iter().map(|line| line.message.as_str()).collect();
    assert_eq!(b_messages, ["ünïcödé ☁️ 구름", ""]);
    // Sequence numbers follow insertion order across batches and functions.
    assert!(all_a[599].seq < b_lines[0].seq && b_lines[1].seq < all_a[600].seq);

    let count = |query: LogQuery| async move { store.query_logs(&query).await.unwrap().len() };
    assert_eq!(count(logs_query(5_000)).await, 1_202);
    let by_invocation = LogQuery {
        invocation_id: Some("a-2".into()),
        ..logs_query(5_000)
    };
    assert_eq!(count(by_invocation.clone()).await, 400);
    let mismatched = LogQuery {
        function: Some("fn-b".into()),
        ..by_invocation
    };
    assert_eq!(count(mismatched).await, 0);
    let since = LogQuery {
        since_ms: Some(2_190),
        ..function_a.clone()
    };
    assert_eq!(count(since).await, 10);
    assert_eq!(count(logs_query(7)).await, 7);
    assert_eq!(count(logs_query(0)).await, 0);
    let after = store
        .query_logs(&LogQuery {
            after_seq: Some(all_a[99].seq),
            ..LogQuery {
                limit: 3,
                ..function_a.clone()
            }
        })
        .await
        .unwrap();
    let messages: Vec<_> = after.iter().map(|line| line.message.as_str()).collect();
    assert_eq!(messages, ["line 100", "line 101", "line 102"]);
    let everything = LogQuery {
        function: Some("fn-a".into()),
        invocation_id: Some("a-1".into()),
        since_ms: Some(1_500),
        after_seq: Some(all_a[549].seq),
        grep: Some("line ".into()),
        limit: 1_000,
    };
    let narrowed = store.query_logs(&everything).await.unwrap();
    assert_eq!(narrowed.len(), 250);
    assert_eq!(narrowed[0].message, "line 550");

    // Paging with after_seq visits every line once, in order.
    let mut paged = Vec::new();
    let mut page = LogQuery {
        limit: 128,
        ..function_a
    };
    loop {
        let lines = store.query_logs(&page).await.unwrap();
        let Some(last) = lines.last() else { break };
        page.after_seq = Some(last.seq);
        paged.extend(lines);
    }
    assert_eq!(paged, all_a);
}

async fn reopening_keeps_data_and_migrations_run_once(ctx: Ctx) {
    let hello = name("hello");
    ctx.store.put_artifact("kept", b"bytes").await.unwrap();
    ctx.store
        .create_version(&hello, "kept", "m", 1)
        .await
        .unwrap();
    ctx.store
        .insert_logs(&[log_line("i", "hello", 1, "before")])
        .await
        .unwrap();
    ctx.store.close().await;
    for _ in 0..2 {
        let reopened = Store::open(&ctx.url).await.unwrap();
        assert_eq!(
            reopened.get_artifact("kept").await.unwrap(),
            Some(b"bytes".to_vec())
        );
        assert_eq!(
            reopened.get_alias(&hello, LIVE_ALIAS).await.unwrap(),
            Some(1)
        );
        assert_eq!(reopened.query_logs(&logs_query(10)).await.unwrap().len(), 1);
        reopened.close().await;
    }
    let reopened = Store::open(&ctx.url).await.unwrap();
    let next = reopened
        .create_version(&hello, "kept", "m", 2)
        .await
        .unwrap();
    assert_eq!(next.version, 2);
    reopened.close().await;
    let applied = raw_count(&raw_url(&ctx.url), "SELECT COUNT(*) FROM _sqlx_migrations").await;
    assert_eq!(applied, MIGRATIONS, "every migration recorded once");
}

/// The URL a raw sqlx connection accepts: SQLite needs `mode` and an escaped path.
fn raw_url(url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(path) => format!(
            "sqlite://{}?mode=ro",
            path.replace(' ', "%20").replace('#', "%23")
        ),
        None => url.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_starting_together_migrate_once() {
    let url = testing::fresh_postgres_url().await;
    let url_for_task = url.clone();
    let outcome = tokio::spawn(async move {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let url = url_for_task.clone();
                tokio::spawn(async move { Store::open(&url).await })
            })
            .collect();
        for open in opens {
            let store = open.await.unwrap().expect("every node opens the store");
            store.close().await;
        }
        assert_eq!(
            raw_count(&url_for_task, "SELECT COUNT(*) FROM _sqlx_migrations").await,
            MIGRATIONS
        );
    })
    .await;
    testing::drop_postgres(&url).await;
    rethrow(outcome);
}

#[tokio::test]
async fn sqlite_files_use_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/gureum.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.put_artifact("h", b"x").await.unwrap();
    assert!(path.exists());
    assert!(
        dir.path().join("a/b/gureum.db-wal").exists(),
        "WAL file beside the database"
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite_files_give_freed_pages_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gureum.db").display());
    let store = Store::open(&url).await.unwrap();
    assert_eq!(
        raw_count(&url, "PRAGMA auto_vacuum").await,
        2,
        "incremental"
    );
    let mut events = Vec::new();
    for i in 0..8 {
        let mut big = event(&format!("big{i}"), "work", 1_000);
        big.body = vec![7; 1 << 20];
        events.push((big, None));
    }
    store.enqueue_events(&events).await.unwrap();
    let full = raw_count(&url, "PRAGMA page_count").await;
    for (event, _) in &events {
        store.complete_event(event, None, 2_000).await.unwrap();
    }
    assert!(store.reclaim_space(100_000).await.unwrap() > 1000);
    let after = raw_count(&url, "PRAGMA page_count").await;
    assert!(after < full / 4, "{full} pages before, {after} after");
    assert_eq!(
        store.reclaim_space(100_000).await.unwrap(),
        0,
        "nothing left"
    );
    store.close().await;
}

#[tokio::test]
async fn bad_urls_get_errors_that_say_what_works() {
    for url in ["mysql://localhost/x", "gureum.db", "", "http://example.com"] {
        let error = Store::open(url).await.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, StoreError::UnsupportedUrl(_)),
            "{url}: {error:?}"
        );
        assert!(
            message.contains("sqlite://PATH") && message.contains("postgres://"),
            "{message}"
        );
    }
    let error = Store::open("sqlite://").await.unwrap_err();
    assert!(error.to_string().contains("path is empty"), "{error}");
    // An unreachable server is reported at once, naming where it looked.
    let error = Store::open("postgres://postgres:pw@127.0.0.1:1/nothing")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Connect { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("postgres://postgres:***@127.0.0.1:1/nothing"),
        "{message}"
    );
}

async fn every_change_of_what_is_live_bumps_the_registry_generation(ctx: Ctx) {
    let store = &ctx.store;
    let hello = name("hello");
    let start = store.registry_generation().await.unwrap();
    store.create_version(&hello, "h1", "m", 1).await.unwrap();
    let deployed = store.registry_generation().await.unwrap();
    assert!(deployed > start);
    store.create_version(&hello, "h2", "m", 2).await.unwrap();
    store.set_alias(&hello, LIVE_ALIAS, 1).await.unwrap();
    let rolled_back = store.registry_generation().await.unwrap();
    assert!(rolled_back > deployed + 1);
    // Reads, logs and failed changes do not count.
    store.put_artifact("h3", b"x").await.unwrap();
    assert!(store.set_alias(&hello, LIVE_ALIAS, 9).await.is_err());
    assert_eq!(store.registry_generation().await.unwrap(), rolled_back);
    assert!(store.delete_function(&hello).await.unwrap());
    assert!(store.registry_generation().await.unwrap() > rolled_back);
}

async fn usage_rolls_up_with_the_records_and_the_overflow(ctx: Ctx) {
    let store = &ctx.store;
    let day = 20_000;
    let at = |offset_ms: i64| day * MS_PER_DAY + offset_ms;
    let record = |id: &str, function: &str, offset_ms: i64, outcome, billed_ms, memory_mb| {
        InvocationRecord {
            outcome,
            billed_ms,
            memory_mb,
            duration_us: billed_ms * 1_000 - 1,
            cold_start: id.ends_with("cold"),
            ..invocation(id, function, at(offset_ms))
        }
    };
    store
        .insert_invocations(
            &[
                record("a1-cold", "a", 0, InvocationOutcome::Ok, 3, 128),
                record("a2", "a", 10, InvocationOutcome::Error, 5, 128),
                record("a3", "a", 20, InvocationOutcome::Throttled, 0, 128),
                // The last millisecond of the day, then the first of the next.
                record(
                    "b1",
                    "b",
                    MS_PER_DAY - 1,
                    InvocationOutcome::Timeout,
                    7,
                    1_024,
                ),
                record("b2", "b", MS_PER_DAY, InvocationOutcome::Ok, 1, 1_024),
            ],
            &[DailyUsage {
                day,
                function: "a".into(),
                version: 1,
                requests: 4,
                mb_ms: 512,
                overflowed: 4,
                ..DailyUsage::default()
            }],
        )
        .await
        .unwrap();
    // A second batch adds to the same rows instead of replacing them; a retried record
    // (same id) is neither stored nor counted twice... unless the first attempt committed,
    // which the writer never retries.
    store
        .insert_invocations(&[record("a4", "a", 30, InvocationOutcome::Ok, 2, 256)], &[])
        .await
        .unwrap();

    let rows = store.usage_since(day).await.unwrap();
    let expected_a = DailyUsage {
        day,
        function: "a".into(),
        version: 1,
        requests: 3 + 4,
        errors: 1,
        throttled: 1,
        cold_starts: 1,
        duration_us: 2_999 + 4_999 + 1_999,
        billed_ms: 3 + 5 + 2,
        mb_ms: 3 * 128 + 5 * 128 + 2 * 256 + 512,
        bytes_in: 40,
        bytes_out: 80,
        overflowed: 4,
    };
    let expected_b1 = DailyUsage {
        day,
        function: "b".into(),
        version: 1,
        requests: 1,
        errors: 1,
        duration_us: 6_999,
        billed_ms: 7,
        mb_ms: 7 * 1_024,
        bytes_in: 10,
        bytes_out: 20,
        ..DailyUsage::default()
    };
    let expected_b2 = DailyUsage {
        day: day + 1,
        requests: 1,
        errors: 0,
        duration_us: 999,
        billed_ms: 1,
        mb_ms: 1_024,
        ..expected_b1.clone()
    };
    assert_eq!(rows, vec![expected_a, expected_b1, expected_b2.clone()]);
    assert_eq!(store.usage_since(day + 1).await.unwrap(), vec![expected_b2]);
    assert_eq!(store.usage_since(day + 2).await.unwrap(), vec![]);
}

async fn settings_round_trip(ctx: Ctx) {
    let store = &ctx.store;
    assert_eq!(store.get_setting("prices").await.unwrap(), None);
    store.put_setting("prices", "a = 1").await.unwrap();
    store.put_setting("prices", "a = 2").await.unwrap();
    store.put_setting("quota:hello", "{}").await.unwrap();
    store
        .put_setting("quota:", "{\"requests\":1}")
        .await
        .unwrap();
    assert_eq!(
        store.get_setting("prices").await.unwrap().as_deref(),
        Some("a = 2")
    );
    assert_eq!(
        store.list_settings("quota:").await.unwrap(),
        vec![
            ("quota:".to_string(), "{\"requests\":1}".to_string()),
            ("quota:hello".to_string(), "{}".to_string()),
        ]
    );
    assert!(store.delete_setting("quota:hello").await.unwrap());
    assert!(!store.delete_setting("quota:hello").await.unwrap());
    assert_eq!(store.list_settings("quota:").await.unwrap().len(), 1);
    // The first value stored wins; later callers get it back.
    assert_eq!(
        store.setting_or_insert("key", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        store.setting_or_insert("key", "second").await.unwrap(),
        "first"
    );
}

async fn a_lease_has_one_holder_until_it_expires_or_is_released(ctx: Ctx) {
    let store = &ctx.store;
    let now = gureum_model::now_ms();
    assert!(
        store
            .acquire_lease("acme", "node-a", now + 60_000)
            .await
            .unwrap()
    );
    // Held: another node is refused, the holder may extend it.
    assert!(
        !store
            .acquire_lease("acme", "node-b", now + 60_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease("acme", "node-a", now + 120_000)
            .await
            .unwrap()
    );
    // Other names are independent.
    assert!(
        store
            .acquire_lease("other", "node-b", now + 60_000)
            .await
            .unwrap()
    );
    // Releasing someone else's lease does nothing; the holder's release frees it.
    store.release_lease("acme", "node-b").await.unwrap();
    assert!(
        !store
            .acquire_lease("acme", "node-b", now + 60_000)
            .await
            .unwrap()
    );
    store.release_lease("acme", "node-a").await.unwrap();
    assert!(
        store
            .acquire_lease("acme", "node-b", now + 60_000)
            .await
            .unwrap()
    );
    // An expired lease goes to whoever asks next.
    assert!(
        store
            .acquire_lease("short", "node-a", now - 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease("short", "node-b", now + 60_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire_lease("short", "node-a", now + 60_000)
            .await
            .unwrap()
    );
}

async fn purge_deletes_old_logs_and_records_but_keeps_usage(ctx: Ctx) {
    let store = &ctx.store;
    // More old rows than one purge batch, so the batching loop runs more than once.
    let old_lines: Vec<LogLine> = (0..12_000)
        .map(|i| log_line("old", "f", 1_000 + i, "old"))
        .collect();
    store.insert_logs(&old_lines).await.unwrap();
    store
        .insert_logs(&[log_line("new", "f", 50_000, "kept")])
        .await
        .unwrap();
    store
        .insert_invocations(
            &[
                invocation("old", "f", 1_000),
                invocation("new", "f", 50_000),
            ],
            &[],
        )
        .await
        .unwrap();

    assert_eq!(store.purge_before(50_000).await.unwrap(), (12_000, 1));
    let left = store.query_logs(&logs_query(100)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].message, "kept");
    assert_eq!(store.get_invocation("old").await.unwrap(), None);
    assert!(store.get_invocation("new").await.unwrap().is_some());
    let usage = store.usage_since(0).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].requests, 2, "usage outlives the records");
    assert_eq!(store.purge_before(50_000).await.unwrap(), (0, 0));
}

async fn logs_grep_is_a_case_sensitive_substring(ctx: Ctx) {
    let store = &ctx.store;
    store
        .insert_logs(&[
            log_line("i", "f", 1, "User 42 logged in"),
            log_line("i", "f", 2, "user 43 logged out"),
            log_line("i", "f", 3, "100% done_ok"),
            log_line("i", "g", 4, "User 44 logged in"),
        ])
        .await
        .unwrap();
    let grep = |text: &str| LogQuery {
        function: Some("f".into()),
        grep: Some(text.into()),
        ..logs_query(10)
    };
    let messages = |lines: Vec<LogLine>| -> Vec<String> {
        lines.into_iter().map(|line| line.message).collect()
    };
    assert_eq!(
        messages(store.query_logs(&grep("User")).await.unwrap()),
        ["User 42 logged in"]
    );
    assert_eq!(
        messages(store.query_logs(&grep("logged")).await.unwrap()).len(),
        2
    );
    // LIKE wildcards are plain text here.
    assert_eq!(
        messages(store.query_logs(&grep("%")).await.unwrap()),
        ["100% done_ok"]
    );
    assert_eq!(
        messages(store.query_logs(&grep("d_n")).await.unwrap()),
        Vec::<String>::new()
    );
}

fn event(id: &str, function: &str, now_ms: i64) -> QueuedEvent {
    QueuedEvent {
        id: id.to_string(),
        function: function.to_string(),
        version: None,
        trigger: "queue".to_string(),
        source: None,
        method: "POST".to_string(),
        path: "/jobs?x=1".to_string(),
        headers: r#"[["content-type","text/plain"]]"#.to_string(),
        body: vec![0, 159, 146, 150, b'x'],
        raw_event: None,
        enqueued_at_ms: now_ms,
        attempts: 0,
        next_at_ms: now_ms,
        errors: "[]".to_string(),
    }
}

async fn queued_events_are_claimed_once_and_leases_expire(ctx: Ctx) {
    let store = &ctx.store;
    let mut pinned = event("e2", "work", 1_000);
    pinned.version = Some(3);
    pinned.raw_event = Some("{}".to_string());
    let mut later = event("e3", "work", 1_000);
    later.next_at_ms = 5_000;
    let outcomes = store
        .enqueue_events(&[
            (event("e1", "work", 1_000), None),
            (pinned.clone(), None),
            (later, None),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes, [Enqueued::New, Enqueued::New, Enqueued::New]);
    let claimed = store
        .claim_events("node-a", 2_000, 32_000, 10, &[])
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}: e3 is not due yet");
    let got = claimed.iter().find(|e| e.id == "e2").unwrap();
    assert_eq!(got.attempts, 1);
    assert_eq!(got.version, Some(3));
    assert_eq!(got.body, pinned.body);
    assert_eq!(got.raw_event.as_deref(), Some("{}"));
    // Leased events are not claimed again, and a skipped function is left alone.
    assert!(
        store
            .claim_events("node-b", 6_000, 36_000, 10, &[])
            .await
            .unwrap()
            .iter()
            .all(|e| e.id == "e3")
    );
    // node-b now holds e3; a renewal by node-a covers only its own two.
    assert_eq!(store.renew_leases("node-a", 50_000).await.unwrap(), 2);
    // After the lease expires, another node gets them (a second attempt).
    let again = store
        .claim_events("node-b", 50_001, 90_000, 10, &["other".to_string()])
        .await
        .unwrap();
    // e3's lease (node-b's, to 36 000) has expired too.
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|e| e.attempts == 2));
    assert!(
        store
            .claim_events("node-c", 50_002, 90_000, 10, &["work".to_string()])
            .await
            .unwrap()
            .is_empty()
    );
    // A restarted node frees its leases at once.
    assert_eq!(store.release_leases("node-b").await.unwrap(), 3);
    assert_eq!(
        store
            .claim_events("node-b", 50_003, 90_000, 10, &[])
            .await
            .unwrap()
            .len(),
        3
    );
    let depths = store.queue_depths().await.unwrap();
    assert_eq!(depths.len(), 1);
    assert_eq!(
        (depths[0].depth, depths[0].oldest_enqueued_at_ms),
        (3, 1_000)
    );
    // Three bodies of five bytes each.
    assert_eq!(
        store.queued_bytes().await.unwrap(),
        vec![("work".to_string(), 15)]
    );
}

async fn two_nodes_never_claim_the_same_event(ctx: Ctx) {
    let node_b = Store::open(&ctx.url).await.unwrap();
    let events: Vec<(QueuedEvent, Option<String>)> = (0..200)
        .map(|i| (event(&format!("ev{i:03}"), "work", 1_000), None))
        .collect();
    ctx.store.enqueue_events(&events).await.unwrap();
    let mut racers = Vec::new();
    for node in 0..4 {
        let store = if node % 2 == 0 {
            ctx.store.clone()
        } else {
            node_b.clone()
        };
        racers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store
                    .claim_events(&format!("node-{node}"), 2_000, 60_000, 7, &[])
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|e| e.id));
            }
        }));
    }
    let mut all = Vec::new();
    for racer in racers {
        all.extend(racer.await.unwrap());
    }
    all.sort();
    let claimed = all.len();
    all.dedup();
    assert_eq!(claimed, 200, "every event claimed exactly once");
    assert_eq!(all.len(), 200);
    node_b.close().await;
}

async fn events_retry_complete_and_dead_letter_with_follow_ups(ctx: Ctx) {
    let store = &ctx.store;
    store
        .enqueue_events(&[
            (event("ok", "work", 1_000), None),
            (event("bad", "work", 1_000), None),
        ])
        .await
        .unwrap();
    let claimed = store
        .claim_events("n", 1_000, 9_000, 10, &[])
        .await
        .unwrap();
    let ok = claimed.iter().find(|e| e.id == "ok").unwrap();
    assert!(claimed.iter().any(|e| e.id == "bad"));
    let mut destination = event("dest-1", "audit", 2_000);
    destination.source = Some("ok".to_string());
    store
        .complete_event(ok, Some(&destination), 2_000)
        .await
        .unwrap();
    assert!(store.get_event("ok").await.unwrap().is_none());
    assert_eq!(
        store.get_event("dest-1").await.unwrap().unwrap().function,
        "audit"
    );
    // A throttled attempt is not counted; a failed one is.
    store.retry_event("bad", 3_000, "[]", false).await.unwrap();
    assert_eq!(store.get_event("bad").await.unwrap().unwrap().attempts, 0);
    assert!(
        store
            .claim_events("n", 2_999, 9_000, 10, &["audit".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let bad = store
        .claim_events("n", 3_000, 9_000, 10, &["audit".into()])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(bad.attempts, 1);
    store
        .retry_event("bad", 4_000, r#"[{"attempt":1}]"#, true)
        .await
        .unwrap();
    let stored = store.get_event("bad").await.unwrap().unwrap();
    assert_eq!(
        (stored.attempts, stored.errors.as_str()),
        (1, r#"[{"attempt":1}]"#)
    );
    let bad2 = store
        .claim_events("n", 4_000, 9_000, 10, &["audit".into()])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(bad2.attempts, 2);
    let mut failure = event("dest-2", "alert", 5_000);
    failure.source = Some("bad".to_string());
    store
        .dead_letter_event(
            &bad2,
            r#"[{"attempt":1},{"attempt":2}]"#,
            "retries_exhausted",
            Some(&failure),
            5_000,
        )
        .await
        .unwrap();
    assert!(store.get_event("bad").await.unwrap().is_none());
    assert!(store.get_event("dest-2").await.unwrap().is_some());
    let letters = store.list_dead_letters("work", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event.attempts, 2);
    assert_eq!(letters[0].event.body, event("x", "work", 0).body);
    assert_eq!(letters[0].reason, "retries_exhausted");
    assert_eq!(letters[0].failed_at_ms, 5_000);
    assert!(
        store
            .get_dead_letter("other", "bad")
            .await
            .unwrap()
            .is_none()
    );
    // Redrive: back in the queue with no attempts and a fresh age.
    assert_eq!(
        store
            .redrive_dead_letters("work", Some("bad"), 6_000)
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .list_dead_letters("work", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let redriven = store.get_event("bad").await.unwrap().unwrap();
    assert_eq!(
        (
            redriven.attempts,
            redriven.enqueued_at_ms,
            redriven.errors.as_str()
        ),
        (0, 6_000, "[]")
    );
    // Delete: one or all.
    let again = store
        .claim_events("n", 6_000, 9_000, 10, &["audit".into(), "alert".into()])
        .await
        .unwrap()
        .remove(0);
    store
        .dead_letter_event(&again, "[]", "event_too_old", None, 7_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_dead_letters("work", Some("nope"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.delete_dead_letters("work", None).await.unwrap(), 1);
}

async fn idempotency_keys_deduplicate_enqueues(ctx: Ctx) {
    let store = &ctx.store;
    let key = Some("order-17".to_string());
    let first = store
        .enqueue_events(&[(event("i1", "work", 1_000), key.clone())])
        .await
        .unwrap();
    assert_eq!(first, [Enqueued::New]);
    // Same key, same function: the first invocation; in one batch too.
    let second = store
        .enqueue_events(&[
            (event("i2", "work", 2_000), key.clone()),
            (event("i3", "other", 2_000), key.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(
        second,
        [Enqueued::Duplicate("i1".to_string()), Enqueued::New]
    );
    assert!(store.get_event("i2").await.unwrap().is_none());
    // After 24 h the key is fresh again.
    let day_later = 1_000 + gureum_store::IDEMPOTENCY_KEY_TTL_MS + 1;
    let third = store
        .enqueue_events(&[(event("i4", "work", day_later), key)])
        .await
        .unwrap();
    assert_eq!(third, [Enqueued::New]);
    assert_eq!(
        store
            .purge_idempotency_keys(day_later + 1_500)
            .await
            .unwrap(),
        1
    );
}

async fn schedule_ticks_fire_once(ctx: Ctx) {
    let node_b = Store::open(&ctx.url).await.unwrap();
    let state = ctx
        .store
        .schedule_state_or_insert("tick", "s1", 10_000)
        .await
        .unwrap();
    assert_eq!(state.last_tick_ms, 10_000);
    // A second insert keeps the first state.
    let state = node_b
        .schedule_state_or_insert("tick", "s1", 99_000)
        .await
        .unwrap();
    assert_eq!(state.last_tick_ms, 10_000);
    let mut fired = 0;
    for (i, store) in [&ctx.store, &node_b, &ctx.store].into_iter().enumerate() {
        let mut tick_event = event(&format!("t{i}"), "tick", 11_000);
        tick_event.trigger = "cron".to_string();
        tick_event.source = Some("s1".to_string());
        if store
            .fire_schedule("tick", "s1", 11_000, Some(&tick_event), 11_001)
            .await
            .unwrap()
        {
            fired += 1;
        }
    }
    assert_eq!(fired, 1, "one firing per tick");
    let depths = ctx.store.queue_depths().await.unwrap();
    assert_eq!(depths[0].depth, 1);
    // A skipped tick moves the state without an event.
    assert!(
        ctx.store
            .fire_schedule("tick", "s1", 12_000, None, 12_001)
            .await
            .unwrap()
    );
    assert_eq!(ctx.store.queue_depths().await.unwrap()[0].depth, 1);
    // The tick's result lands on the schedule.
    let claimed = ctx
        .store
        .claim_events("n", 20_000, 30_000, 10, &[])
        .await
        .unwrap();
    let state = ctx.store.schedule_states().await.unwrap().remove(0);
    assert_eq!(state.last_tick_ms, 12_000);
    assert_eq!(state.last_status, None);
    ctx.store
        .complete_event(&claimed[0], None, 21_000)
        .await
        .unwrap();
    let state = ctx.store.schedule_states().await.unwrap().remove(0);
    assert_eq!(state.last_status.as_deref(), Some("succeeded"));
    assert_eq!(state.last_finished_at_ms, Some(21_000));
    assert_eq!(state.last_invocation_id, Some(claimed[0].id.clone()));
    node_b.close().await;
}
