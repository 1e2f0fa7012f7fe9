//! Metering on the real server: `/metrics` read by a Prometheus text parser matches the
//! invocations made; a SIGTERM in the middle of a load loses no record of an answered
//! request; OTLP spans reach a real OTLP/HTTP receiver with the caller's trace continued
//! into wasm and lambda functions; log retention and `logs --grep` on both stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gureum_model::{LogLine, LogStream, MS_PER_DAY};
use gureum_store::{LogQuery, Store};
use gureum_tracing::testing::OtlpReceiver;

use crate::lambda::{Guest, deploy_lambda, json};
use crate::{Server, deploy, http, shared};

/// Samples of `name` in a Prometheus text exposition, as (labels, value).
pub(crate) fn samples(
    text: &str,
    name: &str,
) -> Vec<(std::collections::HashMap<String, String>, f64)> {
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    scrape
        .samples
        .into_iter()
        .filter(|sample| sample.metric == name)
        .map(|sample| {
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("{name} is not a plain value: {other:?}"),
            };
            let labels = sample
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (labels, value)
        })
        .collect()
}

pub(crate) fn sum_where(
    samples: &[(std::collections::HashMap<String, String>, f64)],
    pairs: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(labels, _)| {
            pairs
                .iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, value)| value)
        .sum()
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_every_invocation() {
    let server = Server::start_with(&["--no-examples", "--metrics-public"]);
    let _dir = deploy(&server, "metered", "");
    let mut response_bytes = 0;
    for i in 0..5 {
        let response = http()
            .post(format!("{}/fn/metered/echo", server.public_url))
            .body(format!("body{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response_bytes += response.bytes().await.unwrap().len();
    }
    let response = server.get("/fn/metered/status?code=404").await;
    assert_eq!(response.status(), 404);
    response_bytes += response.bytes().await.unwrap().len();

    // Public: no token needed. Counters are updated when each response body ended,
    // just after the client read it, so poll briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = http()
            .get(format!("{}/metrics", server.admin_url))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .expect("/metrics is public with --metrics-public")
            .text()
            .await
            .unwrap();
        let invocations = samples(&text, "gureum_invocations_total");
        let responses = samples(&text, "gureum_response_body_bytes_total");
        if sum_where(&invocations, &[("function", "metered")]) == 6.0
            && sum_where(&responses, &[("function", "metered")]) == response_bytes as f64
        {
            break text;
        }
        assert!(Instant::now() < deadline, "metrics never matched:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let invocations = samples(&text, "gureum_invocations_total");
    fn of<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut pairs = vec![("function", "metered"), ("version", "1")];
        pairs.extend_from_slice(extra);
        pairs
    }
    assert_eq!(
        sum_where(&invocations, &of(&[("status", "200"), ("outcome", "ok")])),
        5.0
    );
    assert_eq!(sum_where(&invocations, &of(&[("status", "404")])), 1.0);
    assert_eq!(
        sum_where(&samples(&text, "gureum_cold_starts_total"), &of(&[])),
        1.0
    );
    assert_eq!(
        sum_where(&samples(&text, "gureum_request_body_bytes_total"), &of(&[])),
        25.0
    );
    assert_eq!(
        sum_where(&samples(&text, "gureum_invocation_errors_total"), &of(&[])),
        0.0
    );
    assert_eq!(
        sum_where(&samples(&text, "gureum_warm_instances"), &of(&[])),
        1.0
    );
    assert_eq!(
        sum_where(&samples(&text, "gureum_in_flight"), &of(&[])),
        0.0
    );
    assert_eq!(
        sum_where(&samples(&text, "gureum_queue_depth"), &of(&[])),
        0.0
    );
    let histogram_count = text
        .lines()
        .find(|line| {
            line.starts_with("gureum_invocation_duration_seconds_count{")
                && line.contains("function=\"metered\"")
        })
        .expect("a duration histogram");
    assert!(histogram_count.ends_with(" 6"), "{histogram_count}");
    let rss = sum_where(&samples(&text, "process_resident_memory_bytes"), &[]);
    assert!(rss > 1e6, "resident memory {rss}");
    assert!(sum_where(&samples(&text, "process_open_fds"), &[]) > 0.0);

    // Without --metrics-public the token is required.
    let shared = shared().await;
    let response = http()
        .get(format!("{}/metrics", shared.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_sigterm_under_load_loses_no_record_of_an_answered_request() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in(&data_dir, None);
    let _dir = deploy(&server, "loaded", "max_instances = 4");
    let answered = Arc::new(AtomicU64::new(0));
    let url = format!("{}/fn/loaded/echo", server.public_url);
    let mut clients = Vec::new();
    for _ in 0..8 {
        let answered = answered.clone();
        let url = url.clone();
        clients.push(tokio::spawn(async move {
            let client = http();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                match client.post(&url).body("payload").send().await {
                    Ok(response) if response.status().is_success() => {
                        // Answered means the whole body arrived.
                        if response.bytes().await.is_ok() {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Ok(response) if response.status() == 429 => {}
                    Ok(response) => panic!("unexpected status {}", response.status()),
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_stop = answered.load(Ordering::SeqCst);
    assert!(before_stop > 50, "the load barely ran: {before_stop}");
    let code = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "graceful exit");
    for client in clients {
        client.await.unwrap();
    }
    let answered = answered.load(Ordering::SeqCst);

    // After a restart the store's usage equals what the clients saw answered.
    let server = Server::start_in(&data_dir, None);
    let store = Store::open(&format!(
        "sqlite://{}",
        data_dir.join("gureum.db").display()
    ))
    .await
    .unwrap();
    let requests: u64 = store
        .usage_since(0)
        .await
        .unwrap()
        .iter()
        .filter(|row| row.function == "loaded")
        .map(|row| row.requests)
        .sum();
    assert_eq!(requests, answered, "usage must equal the answered requests");
    let records = store.list_invocations("loaded", 0, 100_000).await.unwrap();
    assert_eq!(records.len() as u64, answered);
    assert!(records.iter().all(|record| record.bytes_in == 7
        && record.bytes_out > 0
        && record.billed_ms >= 1
        && record.trigger == gureum_model::Trigger::Http));
    store.close().await;
    drop(server);
}

#[tokio::test]
async fn invocations_and_deploys_export_otlp_spans_continuing_the_callers_trace() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let server = Server::start_with(&["--no-examples", "--otlp-endpoint", &receiver.url]);
    let _wasm = deploy(&server, "traced", "");
    let _lambda = deploy_lambda(&server, "traced-py", Guest::Python, "");
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{parent}-01");

    let response = http()
        .get(format!("{}/fn/traced/echo", server.public_url))
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = json(response).await["headers"]["traceparent"][0]
        .as_str()
        .expect("the function sees a traceparent")
        .to_string();
    let fields: Vec<&str> = seen.split('-').collect();
    assert_eq!(fields.len(), 4, "{seen}");
    assert_eq!(fields[1], trace, "same trace");
    assert_ne!(fields[2], parent, "the invocation's span is the new parent");
    let wasm_span_id = fields[2].to_string();

    let response = http()
        .get(format!("{}/fn/traced-py/env", server.public_url))
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let env = json(response).await;
    let xray = env["_X_AMZN_TRACE_ID"]
        .as_str()
        .unwrap_or_else(|| panic!("no _X_AMZN_TRACE_ID in {env}"));
    assert!(
        xray.starts_with("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent="),
        "{xray}"
    );

    // Shutdown flushes the exporter.
    assert_eq!(
        tokio::task::spawn_blocking(move || server.stop())
            .await
            .unwrap(),
        Some(0)
    );
    let spans = receiver.wait_for(4, Duration::from_secs(10)).await;
    let find = |name: &str| {
        spans
            .iter()
            .filter(|span| span.name == name)
            .collect::<Vec<_>>()
    };
    let wasm = find("invoke traced");
    assert_eq!(wasm.len(), 1, "{spans:#?}");
    assert_eq!(wasm[0].trace_id_hex, trace);
    assert_eq!(wasm[0].parent_span_id_hex, parent);
    assert_eq!(wasm[0].span_id_hex, wasm_span_id);
    assert_eq!(wasm[0].attr("faas.name"), Some("traced"));
    assert_eq!(wasm[0].attr("faas.trigger"), Some("http"));
    assert_eq!(wasm[0].attr("http.response.status_code"), Some("200"));
    assert_eq!(wasm[0].attr("faas.coldstart"), Some("true"));
    let lambda = find("invoke traced-py");
    assert_eq!(lambda.len(), 1, "{spans:#?}");
    assert_eq!(lambda[0].trace_id_hex, trace);
    assert!(
        xray.contains(&format!("Parent={}", lambda[0].span_id_hex)),
        "{xray} vs {:?}",
        lambda[0]
    );
    assert_eq!(find("deploy traced").len(), 1, "{spans:#?}");
    assert_eq!(find("deploy traced-py").len(), 1, "{spans:#?}");
}

/// Log lines and a record three days old, written straight into the store.
async fn write_old_telemetry(store: &Store, function: &str) {
    let old = gureum_model::now_ms() - 3 * MS_PER_DAY;
    let line = |message: &str| LogLine {
        seq: 0,
        invocation_id: "old-invocation".into(),
        function: function.into(),
        version: 1,
        ts_ms: old,
        stream: LogStream::Stdout,
        message: message.into(),
    };
    store
        .insert_logs(&[line("ancient line one"), line("ancient line two")])
        .await
        .unwrap();
    store
        .insert_invocations(
            &[gureum_model::InvocationRecord {
                id: "old-invocation".into(),
                function: function.into(),
                version: 1,
                started_at_ms: old,
                duration_us: 1_000,
                status: 200,
                outcome: gureum_model::InvocationOutcome::Ok,
                cold_start: false,
                memory_mb: 128,
                trigger: gureum_model::Trigger::Http,
                billed_ms: 1,
                bytes_in: 0,
                bytes_out: 0,
            }],
            &[],
        )
        .await
        .unwrap();
}

async fn retention_deletes_old_logs_and_grep_filters(store_url: Option<&str>) {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in(&data_dir, store_url);
    let _dir = deploy(&server, "retained", "");
    assert_eq!(server.get("/fn/retained/log?n=3").await.status(), 200);
    server.stop();
    let url = store_url
        .map(str::to_string)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("gureum.db").display()));
    let store = Store::open(&url).await.unwrap();
    write_old_telemetry(&store, "retained").await;
    let query = LogQuery {
        function: Some("retained".into()),
        limit: 100,
        ..LogQuery::default()
    };
    assert_eq!(store.query_logs(&query).await.unwrap().len(), 6 + 2);

    // Restarted with one day of retention: the task runs at start.
    let mut args = vec!["--no-examples", "--log-retention-days", "1"];
    if let Some(url) = store_url {
        args.extend(["--store", url]);
    }
    let server = Server::start_in_with(&data_dir, &args);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = store.query_logs(&query).await.unwrap();
        // The purge deletes old logs first, then old invocation records: wait for both.
        let record = store.get_invocation("old-invocation").await.unwrap();
        if lines.len() == 6 && record.is_none() {
            assert!(
                lines
                    .iter()
                    .all(|line| !line.message.starts_with("ancient"))
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old lines or record not deleted: {lines:?} {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let usage: u64 = store
        .usage_since(0)
        .await
        .unwrap()
        .iter()
        .filter(|row| row.function == "retained")
        .map(|row| row.requests)
        .sum();
    assert_eq!(usage, 2, "usage totals outlive retention");

    // --grep: only the matching lines, through the CLI.
    let output = server.cli(&[
        "logs",
        "retained",
        "--since",
        "1h",
        "--grep",
        "stderr line 1",
    ]);
    assert!(output.success, "{output:?}");
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{output:?}");
    assert!(lines[0].ends_with("stderr line 1"), "{output:?}");
    let output = server.cli(&["logs", "retained", "--since", "1h", "--grep", "line"]);
    assert_eq!(output.stdout.lines().count(), 6, "{output:?}");
    store.close().await;
    drop(server);
}

#[tokio::test]
async fn retention_deletes_old_logs_and_grep_filters_on_sqlite() {
    retention_deletes_old_logs_and_grep_filters(None).await;
}

#[tokio::test]
async fn retention_deletes_old_logs_and_grep_filters_on_postgres() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    retention_deletes_old_logs_and_grep_filters(Some(&url)).await;
    gureum_store::testing::drop_postgres(&url).await;
}
