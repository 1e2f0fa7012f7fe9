//! The writer against a real SQLite store: records that overflow the buffer keep their
//! usage, and shutdown flushes everything handed over.

use gureum_model::{InvocationOutcome, InvocationRecord, MS_PER_DAY, Trigger};
use gureum_store::Store;
use gureum_telemetry::{Metrics, WriterSettings};

fn record(i: u64) -> InvocationRecord {
    InvocationRecord {
        id: format!("inv-{i}"),
        function: "hello".into(),
        version: 1,
        started_at_ms: 20_000 * MS_PER_DAY + i as i64,
        duration_us: 1_500,
        status: 200,
        outcome: InvocationOutcome::Ok,
        cold_start: i == 0,
        memory_mb: 128,
        trigger: Trigger::Http,
        billed_ms: 2,
        bytes_in: 3,
        bytes_out: 5,
    }
}

// One worker thread: the loop below hands over every record before the writer task can
// run, so all but the channel's capacity must overflow.
#[tokio::test(flavor = "current_thread")]
async fn overflowing_records_keep_their_usage_and_shutdown_flushes_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/g.db", dir.path().display()))
        .await
        .unwrap();
    let metrics = Metrics::new();
    let settings = WriterSettings {
        channel_capacity: 8,
        ..WriterSettings::default()
    };
    let (telemetry, writer) =
        gureum_telemetry::start(store.clone(), settings, metrics.records_overflowed.clone());
    for i in 0..1_000 {
        telemetry.invocation(record(i));
    }
    assert_eq!(metrics.records_overflowed.get(), 1_000 - 8);
    writer.shutdown().await;

    let usage = store.usage_since(0).await.unwrap();
    assert_eq!(usage.len(), 1);
    let day = &usage[0];
    assert_eq!(day.requests, 1_000);
    assert_eq!(day.overflowed, 992);
    assert_eq!(day.cold_starts, 1);
    assert_eq!(day.billed_ms, 2_000);
    assert_eq!(day.mb_ms, 2_000 * 128);
    assert_eq!(day.bytes_in, 3_000);
    assert_eq!(day.bytes_out, 5_000);
    // The 8 that fit are stored as rows too.
    let rows = store.list_invocations("hello", 0, 10_000).await.unwrap();
    assert_eq!(rows.len(), 8);
    assert!(
        metrics
            .encode()
            .contains("gureum_invocation_records_overflowed_total 992")
    );
}

#[test]
fn metrics_include_process_and_pool_gauges() {
    struct Pools;
    impl gureum_telemetry::PoolStats for Pools {
        fn pool_samples(&self) -> Vec<gureum_telemetry::PoolSample> {
            vec![gureum_telemetry::PoolSample {
                function: "hello".into(),
                version: 3,
                warm: 2,
                busy: 1,
                waiting: 4,
            }]
        }
    }
    let metrics = Metrics::new();
    metrics.set_pool_stats(std::sync::Arc::new(Pools));
    let text = metrics.encode();
    for expected in [
        "gureum_warm_instances{function=\"hello\",version=\"3\"} 2",
        "gureum_in_flight{function=\"hello\",version=\"3\"} 1",
        "gureum_queue_depth{function=\"hello\",version=\"3\"} 4",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}
