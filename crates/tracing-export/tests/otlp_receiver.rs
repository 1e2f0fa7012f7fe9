//! End to end over real HTTP: a `Tracer::otlp` exporting to an in-process OTLP/HTTP receiver
//! (`gureum_tracing::testing`), which decodes the protobuf and checks what arrived.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gureum_tracing::testing::{OtlpReceiver, ReceivedSpan};
use gureum_tracing::{InvocationAttrs, Tracer};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const WAIT: Duration = Duration::from_secs(5);

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "exactly one {name:?} span in {spans:#?}");
    found[0]
}

fn unix_nanos(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_nanos()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_and_deploy_spans_reach_the_collector() {
    let receiver = OtlpReceiver::start().await.expect("receiver");
    let tracer = Tracer::otlp(&receiver.url).expect("tracer");
    assert!(tracer.is_enabled());

    let before = SystemTime::now();
    let span = tracer.invocation(
        "hello",
        7,
        "cron",
        Some(&format!("00-{TRACE_ID}-{PARENT_ID}-01")),
        Some("vendor=x"),
    );
    let traceparent = span.traceparent().expect("traceparent");
    let xray = span.xray_trace_id();
    // The span may move into another task before it ends.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        span.end(InvocationAttrs {
            invocation_id: "inv-42".into(),
            status: 200,
            outcome: "ok",
            cold_start: true,
            billed_ms: 21,
            memory_mb: 128,
            bytes_in: 5,
            bytes_out: 11,
            error: None,
        });
    })
    .await
    .unwrap();

    let failing = tracer.invocation("boom", 1, "http", None, None);
    let failing_traceparent = failing.traceparent().expect("root traceparent");
    failing.end(InvocationAttrs {
        invocation_id: "inv-43".into(),
        status: 502,
        outcome: "error",
        cold_start: false,
        billed_ms: 1,
        memory_mb: 256,
        bytes_in: 0,
        bytes_out: 0,
        error: Some("function crashed".into()),
    });

    let deploy_started = SystemTime::now() - Duration::from_millis(300);
    tracer.deploy("hello", Some(7), true, None, deploy_started);
    tracer.deploy(
        "broken",
        None,
        false,
        Some("bad manifest"),
        SystemTime::now(),
    );

    // Shutdown flushes the batch (it would otherwise wait for the 5 s schedule).
    tokio::time::timeout(WAIT + Duration::from_secs(1), tracer.shutdown())
        .await
        .expect("shutdown is bounded");
    let spans = receiver.wait_for(4, WAIT).await;
    assert_eq!(spans.len(), 4, "{spans:#?}");
    assert!(receiver.requests() >= 1);
    assert_eq!(receiver.rejected(), 0);

    // The invocation: a child of the incoming traceparent.
    let invoke = by_name(&spans, "invoke hello");
    assert_eq!(invoke.trace_id_hex, TRACE_ID);
    assert_eq!(invoke.parent_span_id_hex, PARENT_ID);
    assert_ne!(invoke.span_id_hex, PARENT_ID);
    assert_eq!(invoke.span_id_hex.len(), 16);
    assert_eq!(invoke.kind, "server");
    assert_eq!(invoke.status, "unset");
    assert_eq!(
        traceparent,
        format!("00-{TRACE_ID}-{}-01", invoke.span_id_hex),
        "the function sees the exported span as its parent"
    );
    assert_eq!(
        xray,
        format!(
            "Root=1-{}-{};Parent={};Sampled=1",
            &TRACE_ID[..8],
            &TRACE_ID[8..],
            invoke.span_id_hex
        )
    );
    for (key, value) in [
        ("faas.name", "hello"),
        ("faas.version", "7"),
        ("faas.trigger", "timer"),
        ("gureum.trigger", "cron"),
        ("faas.invocation_id", "inv-42"),
        ("faas.coldstart", "true"),
        ("faas.max_memory", "134217728"),
        ("http.response.status_code", "200"),
        ("http.request.body.size", "5"),
        ("http.response.body.size", "11"),
        ("gureum.outcome", "ok"),
        ("gureum.billed_ms", "21"),
        ("gureum.memory_mb", "128"),
    ] {
        assert_eq!(invoke.attr(key), Some(value), "{key} in {invoke:#?}");
    }
    assert!(invoke.attr("error.type").is_none());
    let duration_ms: u64 = invoke.attr("gureum.duration_ms").unwrap().parse().unwrap();
    assert!(duration_ms >= 20, "{duration_ms}");
    assert!(invoke.start_unix_nano >= unix_nanos(before));
    assert!(invoke.end_unix_nano - invoke.start_unix_nano >= 20_000_000);
    assert_eq!(invoke.resource_attr("service.name"), Some("gureum"));
    assert_eq!(invoke.scope, "gureum");

    // A failed invocation without an incoming trace: a new root, status error.
    let boom = by_name(&spans, "invoke boom");
    assert_eq!(boom.parent_span_id_hex, "");
    assert_ne!(boom.trace_id_hex, TRACE_ID);
    assert_eq!(
        failing_traceparent,
        format!("00-{}-{}-01", boom.trace_id_hex, boom.span_id_hex)
    );
    assert_eq!(boom.status, "error");
    assert_eq!(boom.status_message, "function crashed");
    assert_eq!(boom.attr("error.type"), Some("error"));
    assert_eq!(boom.attr("faas.trigger"), Some("http"));
    assert_eq!(boom.attr("http.response.status_code"), Some("502"));
    assert_eq!(boom.attr("faas.coldstart"), Some("false"));

    // The deploys: their own root spans, from the given start to the moment of the call.
    let deploy = by_name(&spans, "deploy hello");
    assert_eq!(deploy.parent_span_id_hex, "");
    assert_eq!(deploy.kind, "internal");
    assert_eq!(deploy.status, "unset");
    assert_eq!(deploy.attr("faas.name"), Some("hello"));
    assert_eq!(deploy.attr("faas.version"), Some("7"));
    assert_eq!(deploy.attr("gureum.deploy.outcome"), Some("ok"));
    assert_eq!(deploy.start_unix_nano, unix_nanos(deploy_started));
    assert!(deploy.end_unix_nano - deploy.start_unix_nano >= 300_000_000);

    let broken = by_name(&spans, "deploy broken");
    assert_eq!(broken.status, "error");
    assert_eq!(broken.status_message, "bad manifest");
    assert_eq!(broken.attr("gureum.deploy.outcome"), Some("error"));
    assert_eq!(broken.attr("faas.version"), None);
    assert_ne!(broken.trace_id_hex, deploy.trace_id_hex);
}

/// The default single-threaded test runtime works too: shutdown runs off the runtime thread,
/// so the export requests it waits for can still run on it.
#[tokio::test]
async fn exports_on_a_current_thread_runtime() {
    let receiver = OtlpReceiver::start().await.expect("receiver");
    let tracer = Tracer::otlp(&format!("{}/v1/traces", receiver.url)).expect("tracer");
    tracer.deploy("solo", Some(1), true, None, SystemTime::now());
    tokio::time::timeout(WAIT + Duration::from_secs(1), tracer.shutdown())
        .await
        .expect("shutdown is bounded");
    let spans = receiver.wait_for(1, WAIT).await;
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].name, "deploy solo");
}

/// Nothing listening: shutdown still returns within its bound, and nothing panics.
#[tokio::test]
async fn shutdown_is_bounded_when_the_collector_is_down() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let tracer = Tracer::otlp(&format!("http://127.0.0.1:{port}")).expect("tracer");
    for i in 0..10 {
        tracer
            .invocation("hello", 1, "http", None, None)
            .end(InvocationAttrs {
                invocation_id: format!("inv-{i}"),
                status: 200,
                outcome: "ok",
                cold_start: false,
                billed_ms: 1,
                memory_mb: 128,
                bytes_in: 0,
                bytes_out: 0,
                error: None,
            });
    }
    let started = std::time::Instant::now();
    tracer.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}
