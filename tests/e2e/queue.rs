//! Cron schedules and durable asynchronous invocations, on SQLite and PostgreSQL: ticks
//! fire on time and once per tick with two nodes, lambda functions get EventBridge
//! events, every queued event runs (once when nothing fails, at least once across a
//! kill -9), failures retry with growing gaps into the dead-letter list and redrive,
//! destinations fire, a full queue answers 429, idempotency keys deduplicate.
//!
//! The testbed's `/job` route POSTs a report of every attempt to a recorder run by the
//! test, so what the function saw is known even when the server is killed before its
//! logs are flushed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lambda::{Guest, deploy_lambda};
use crate::{Server, deploy, http, shared};

/// Collects the testbed's reports: (arrival time, report JSON).
pub(crate) struct Recorder {
    url: String,
    reports: Arc<Mutex<Vec<(Instant, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub(crate) async fn start() -> Recorder {
        let reports: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
        let sink = reports.clone();
        let app = axum::Router::new().route(
            "/report",
            axum::routing::post(move |body: String| {
                let sink = sink.clone();
                async move {
                    let value: Value = serde_json::from_str(&body).expect("a JSON report");
                    sink.lock().unwrap().push((Instant::now(), value));
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/report", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Recorder { url, reports, task }
    }

    pub(crate) fn reports(&self) -> Vec<(Instant, Value)> {
        self.reports.lock().unwrap().clone()
    }

    /// The reports about `function`'s invocations (by the id prefix-free field match).
    pub(crate) fn of(&self, key: &str, value: &str) -> Vec<(Instant, Value)> {
        self.reports()
            .into_iter()
            .filter(|(_, report)| report[key] == value)
            .collect()
    }

    /// Waits until `done` holds for the reports, failing after `limit`.
    pub(crate) async fn wait_until(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[(Instant, Value)]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.reports()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; reports: {:#?}",
                self.reports().iter().map(|(_, r)| r).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The manifest lines that make a testbed report here.
    pub(crate) fn env(&self) -> String {
        format!(
            "allowed_outbound_hosts = [\"http://127.0.0.1:*\"]\n[env]\nJOB_REPORT = \"{}\"\n",
            self.url
        )
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What lets anonymous callers queue events for a function (`[async] public`).
pub(crate) const PUBLIC_ASYNC: &str = "[async]\npublic = true\n";

/// POSTs an asynchronous invocation; returns the status and the JSON answer.
pub(crate) async fn enqueue(
    server: &Server,
    path: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = http()
        .post(format!("{}{path}", server.public_url))
        .header("x-gureum-invocation-type", "event")
        .body(body.to_string());
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("enqueue request");
    let status = response.status().as_u16();
    let id_header = response
        .headers()
        .get("x-gureum-invocation-id")
        .map(|v| v.to_str().unwrap().to_string());
    let value: Value = response.json().await.expect("a JSON answer");
    if status == 202 {
        assert_eq!(id_header.as_deref(), value["invocation_id"].as_str());
    }
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_second_fires_five_times_in_five_seconds() {
    let server = shared().await;
    let recorder = Recorder::start().await;
    let _dir = deploy(
        server,
        "cron-tick",
        &format!(
            "{}[[schedule]]\nname = \"tick\"\ncron = \"@every 1s\"\nbody = '{{\"n\": 1}}'\n",
            recorder.env()
        ),
    );
    recorder
        .wait_until(Duration::from_secs(10), "the first tick", |r| !r.is_empty())
        .await;
    let first = recorder.reports()[0].0;
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    let window: Vec<Value> = recorder
        .reports()
        .into_iter()
        .filter(|(at, _)| *at >= first && at.duration_since(first) < Duration::from_secs(5))
        .map(|(_, report)| report)
        .collect();
    assert!(
        (4..=6).contains(&window.len()),
        "@every 1s fired {} times in 5 s: {window:#?}",
        window.len()
    );
    for report in &window {
        assert_eq!(report["trigger"], "cron");
        assert_eq!(report["schedule"], "tick");
        assert_eq!(report["attempt"], "1");
        assert_eq!(report["body"], "{\"n\": 1}");
    }
    // Ticks are whole seconds, one apart.
    let mut times: Vec<String> = window
        .iter()
        .map(|r| r["scheduled_time"].as_str().unwrap().to_string())
        .collect();
    times.sort();
    times.dedup();
    assert_eq!(times.len(), window.len(), "a tick fired twice: {times:?}");
    assert!(times.iter().all(|t| t.ends_with(".000Z")), "{times:?}");

    let listed = server.cli(&["--json", "schedules"]);
    assert!(listed.success, "{listed:?}");
    let schedules: Value = serde_json::from_str(&listed.stdout).unwrap();
    let ours = schedules
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["function"] == "cron-tick")
        .expect("the schedule is listed");
    assert_eq!(ours["name"], "tick");
    assert_eq!(ours["cron"], "@every 1s");
    assert!(ours["next_run"].is_string());
    assert!(ours["last_run"].is_string());
    let table = server.cli(&["schedules"]);
    assert!(
        table.stdout.contains("cron-tick") && table.stdout.contains("NEXT RUN"),
        "{table:?}"
    );
    assert!(server.cli(&["rm", "cron-tick"]).success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgres_fire_each_tick_once() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    let data = tempfile::tempdir().unwrap();
    let node_a = Server::start_in(&data.path().join("a"), Some(&url));
    let node_b = Server::start_in(&data.path().join("b"), Some(&url));
    let recorder = Recorder::start().await;
    let _dir = deploy(
        &node_a,
        "cron-twice",
        &format!("{}[[schedule]]\ncron = \"@every 1s\"\n", recorder.env()),
    );
    // Node b picks the deploy up within a second (registry sync); then both run the
    // scheduler for the same schedule.
    recorder
        .wait_until(Duration::from_secs(10), "the first tick", |r| !r.is_empty())
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let reports = recorder.reports();
    let mut per_tick: HashMap<String, usize> = HashMap::new();
    for (_, report) in &reports {
        *per_tick
            .entry(report["scheduled_time"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(per_tick.len() >= 5, "ticks: {per_tick:?}");
    assert!(
        per_tick.values().all(|count| *count == 1),
        "a tick fired more than once: {per_tick:?}"
    );
    assert_eq!(node_a.stop(), Some(0));
    assert_eq!(node_b.stop(), Some(0));
    gureum_store::testing::drop_postgres(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_lambda_gets_an_eventbridge_scheduled_event() {
    let server = shared().await;
    let _dir = deploy_lambda(
        server,
        "cron-python",
        Guest::Python,
        "[[schedule]]\nname = \"nightly\"\ncron = \"@every 1s\"\nbody = '{\"job\": \"nightly\"}'\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let event: Value = loop {
        let logs = server.cli(&["logs", "cron-python"]);
        if let Some(line) = logs.stdout.lines().find_map(|l| {
            l.split_once("eventbridge ")
                .map(|(_, json)| json.to_string())
        }) {
            break serde_json::from_str(&line).expect("the event as JSON");
        }
        assert!(
            Instant::now() < deadline,
            "no EventBridge event logged: {logs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(server.cli(&["rm", "cron-python"]).success);
    assert_eq!(event["source"], "aws.events");
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["version"], "0");
    assert_eq!(event["detail"]["job"], "nightly");
    assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
    let time = event["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 20, "time {time:?}");
    assert!(
        event["resources"][0]
            .as_str()
            .unwrap()
            .ends_with("rule/cron-python-nightly"),
        "{event}"
    );
}

/// 1,000 asynchronous requests: every one acknowledged, run, and run once.
async fn thousand_events_run_once(server: &Server, function: &str) {
    let recorder = Recorder::start().await;
    let _dir = deploy(
        server,
        function,
        &format!("max_instances = 10\n{}{PUBLIC_ASYNC}", recorder.env()),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    let path = format!("/fn/{function}/job");
    for worker in 0..16 {
        let public = server.public_url.clone();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let client = http();
            let mut ids = Vec::new();
            let mut latencies = Vec::new();
            for i in 0..(1000 / 16 + usize::from(worker < 1000 % 16)) {
                let sent = Instant::now();
                let response = client
                    .post(format!("{public}{path}"))
                    .header("x-gureum-invocation-type", "event")
                    .body(format!("event {worker}-{i}"))
                    .send()
                    .await
                    .unwrap();
                latencies.push(sent.elapsed());
                assert_eq!(response.status().as_u16(), 202);
                let value: Value = response.json().await.unwrap();
                ids.push(value["invocation_id"].as_str().unwrap().to_string());
            }
            (ids, latencies)
        }));
    }
    let mut ids = Vec::new();
    let mut latencies = Vec::new();
    for task in tasks {
        let (some, times) = task.await.unwrap();
        ids.extend(some);
        latencies.extend(times);
    }
    let enqueued = started.elapsed();
    assert_eq!(ids.len(), 1000);
    recorder
        .wait_until(Duration::from_secs(120), "1000 runs", |r| r.len() >= 1000)
        .await;
    let finished = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reports = recorder.reports();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, report) in &reports {
        *seen
            .entry(report["id"].as_str().unwrap().to_string())
            .or_default() += 1;
        assert_eq!(report["attempt"], "1");
        assert_eq!(report["trigger"], "queue");
    }
    assert_eq!(reports.len(), 1000, "an event ran twice");
    for id in &ids {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "event {id} ran {:?} times",
            seen.get(id)
        );
    }
    latencies.sort();
    eprintln!(
        "async on {function}: 1000 enqueued in {enqueued:?} (p50 {:?}, p99 {:?} per enqueue at 16 concurrent), all run after {finished:?} ({:.0} events/s end to end)",
        latencies[500],
        latencies[989],
        1000.0 / finished.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_async_events_run_once_on_sqlite() {
    thousand_events_run_once(shared().await, "bulk-sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_async_events_run_once_on_postgres() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(&data.path().join("data"), Some(&url));
    thousand_events_run_once(&server, "bulk-postgres").await;
    assert_eq!(server.stop(), Some(0));
    gureum_store::testing::drop_postgres(&url).await;
}

/// kill -9 with events queued and running; after the restart every acknowledged event
/// has run at least once.
async fn killed_server_runs_every_acknowledged_event(store: Option<&str>) {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let recorder = Recorder::start().await;
    let server = Server::start_in(&data_dir, store);
    let _dir = deploy(
        &server,
        "durable",
        &format!("max_instances = 4\n{}{PUBLIC_ASYNC}", recorder.env()),
    );
    let mut ids = Vec::new();
    for i in 0..60 {
        let (status, value) =
            enqueue(&server, "/fn/durable/job?sleep=150", &format!("{i}"), &[]).await;
        assert_eq!(status, 202, "{value}");
        ids.push(value["invocation_id"].as_str().unwrap().to_string());
    }
    recorder
        .wait_until(Duration::from_secs(30), "some events to start", |r| {
            r.len() >= 8
        })
        .await;
    server.kill();
    let before = recorder.reports().len();
    assert!(
        before < 60,
        "all events finished before the kill; make them slower"
    );
    let server = Server::start_in(&data_dir, store);
    recorder
        .wait_until(Duration::from_secs(60), "every acknowledged event", |r| {
            ids.iter()
                .all(|id| r.iter().any(|(_, report)| report["id"] == id.as_str()))
        })
        .await;
    // Each report carries the invocation id the function can deduplicate on; those
    // interrupted by the kill ran again under the same id.
    let reports = recorder.reports();
    assert!(reports.len() >= 60);
    assert_eq!(server.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_event_on_sqlite() {
    killed_server_runs_every_acknowledged_event(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_event_on_postgres() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    killed_server_runs_every_acknowledged_event(Some(&url)).await;
    gureum_store::testing::drop_postgres(&url).await;
}

/// A failing function: retries with growing gaps, the dead-letter list with every
/// attempt's error and a failure record to `on_failure`; after the fix, a redrive runs
/// it again and `on_success` gets a record.
async fn failures_retry_dead_letter_and_redrive(server: &Server, suffix: &str) {
    let recorder = Recorder::start().await;
    let flaky = format!("flaky-{suffix}");
    let alert = format!("alert-{suffix}");
    let audit = format!("audit-{suffix}");
    let _alert = deploy(server, &alert, &recorder.env());
    let _audit = deploy(server, &audit, &recorder.env());
    let config = format!(
        "[async]\nretries = 2\nretry_delay_ms = 400\non_failure = \"{alert}\"\non_success = \"{audit}\"\n"
    );
    let _flaky = deploy(
        server,
        &flaky,
        &format!("{}JOB_STATUS = \"500\"\n{config}", recorder.env()),
    );
    let queued = server.cli(&[
        "invoke",
        &flaky,
        "--async",
        "--path",
        "/job",
        "-d",
        "{\"order\": 7}",
    ]);
    assert!(queued.success, "{queued:?}");
    let id = queued.stdout.trim().to_string();
    assert_eq!(id.len(), 32, "{queued:?}");

    recorder
        .wait_until(
            Duration::from_secs(20),
            "three attempts and the failure record",
            |r| {
                r.iter().filter(|(_, x)| x["id"] == id.as_str()).count() >= 3
                    && r.iter().any(|(_, x)| x["destination_of"] == id.as_str())
            },
        )
        .await;
    let attempts = recorder.of("id", &id);
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    let numbers: Vec<&str> = attempts
        .iter()
        .map(|(_, r)| r["attempt"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["1", "2", "3"]);
    let first_gap = attempts[1].0 - attempts[0].0;
    let second_gap = attempts[2].0 - attempts[1].0;
    assert!(first_gap >= Duration::from_millis(250), "{first_gap:?}");
    assert!(
        second_gap > first_gap,
        "gaps must grow: {first_gap:?} then {second_gap:?}"
    );

    let failure = recorder.of("destination_of", &id);
    assert_eq!(failure.len(), 1);
    assert_eq!(failure[0].1["condition"], "RetriesExhausted");
    let record: Value = serde_json::from_str(failure[0].1["body"].as_str().unwrap()).unwrap();
    assert_eq!(record["requestContext"]["requestId"], id.as_str());
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["requestPayload"]["order"], 7);
    assert_eq!(record["responseContext"]["statusCode"], 500);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["errors"].as_array().unwrap().len(), 3);

    let listed = server.cli(&["--json", "dlq", &flaky]);
    assert!(listed.success, "{listed:?}");
    let letters: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters}");
    let letter = &letters[0];
    assert_eq!(letter["id"], id.as_str());
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["reason"], "retries_exhausted");
    assert_eq!(letter["path"], "/job");
    assert_eq!(letter["body"], "{\"order\": 7}");
    let errors = letter["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e["status"] == 500), "{errors:?}");
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("answered 500"),
        "{errors:?}"
    );
    let shown = server.cli(&["dlq", &flaky, "show", &id]);
    assert!(
        shown.stdout.contains("attempt 3") && shown.stdout.contains("retries_exhausted"),
        "{shown:?}"
    );

    // Fix the function, then redrive.
    let _fixed = deploy(server, &flaky, &format!("{}{config}", recorder.env()));
    let redriven = server.cli(&["dlq", &flaky, "redrive", &id]);
    assert!(
        redriven.success && redriven.stdout.contains("queued 1"),
        "{redriven:?}"
    );
    recorder
        .wait_until(
            Duration::from_secs(20),
            "the redriven run and its success record",
            |r| {
                r.iter().filter(|(_, x)| x["id"] == id.as_str()).count() >= 4
                    && r.iter()
                        .filter(|(_, x)| x["destination_of"] == id.as_str())
                        .count()
                        >= 2
            },
        )
        .await;
    let runs = recorder.of("id", &id);
    assert_eq!(runs[3].1["attempt"], "1", "a redrive starts over");
    let success = recorder.of("condition", "Success");
    assert_eq!(success.len(), 1);
    let record: Value = serde_json::from_str(success[0].1["body"].as_str().unwrap()).unwrap();
    assert_eq!(record["requestContext"]["requestId"], id.as_str());
    assert_eq!(record["responseContext"]["statusCode"], 200);
    assert!(
        record["responsePayload"]
            .as_str()
            .unwrap()
            .contains("answered 200")
    );
    let empty = server.cli(&["dlq", &flaky]);
    assert!(empty.stdout.contains("is empty"), "{empty:?}");
    let missing = server.cli(&["dlq", &flaky, "show", &id]);
    assert!(
        !missing.success && missing.stderr.contains("no dead letter"),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_dead_letter_and_redrive_on_sqlite() {
    failures_retry_dead_letter_and_redrive(shared().await, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_dead_letter_and_redrive_on_postgres() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(&data.path().join("data"), Some(&url));
    failures_retry_dead_letter_and_redrive(&server, "postgres").await;
    assert_eq!(server.stop(), Some(0));
    gureum_store::testing::drop_postgres(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_and_keys_deduplicate() {
    let server = shared().await;
    let recorder = Recorder::start().await;
    let _dir = deploy(
        server,
        "narrow",
        &format!(
            "max_instances = 1\n{}[async]\nmax_queued = 3\npublic = true\n",
            recorder.env()
        ),
    );
    let mut statuses = Vec::new();
    for i in 0..6 {
        let (status, value) =
            enqueue(server, "/fn/narrow/job?sleep=1500", &i.to_string(), &[]).await;
        if status == 429 {
            assert_eq!(value["error"]["code"], "queue_full", "{value}");
            assert!(
                value["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("max_queued")
            );
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429, 429]);
    // The gauges come from a count of the store each second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let text = http()
            .get(format!("{}/metrics", server.admin_url))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("gureum_async_queue_depth{function=\"narrow\"} 3")
            || Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for expected in [
        "gureum_async_events_total{function=\"narrow\",result=\"rejected\"} 3",
        "gureum_async_events_total{function=\"narrow\",result=\"enqueued\"} 3",
        "gureum_async_queue_depth{function=\"narrow\"} 3",
        "gureum_async_oldest_event_age_seconds{function=\"narrow\"}",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }

    // Lambda's header works too; a repeated idempotency key queues nothing new.
    let key = [("idempotency-key", "order-42")];
    let (first, one) = enqueue(server, "/fn/cron-idem-none/job", "x", &key).await;
    assert_eq!(first, 404, "{one}");
    let _other = deploy(server, "idem", &format!("{}{PUBLIC_ASYNC}", recorder.env()));
    let response = http()
        .post(format!("{}/fn/idem/job", server.public_url))
        .header("X-Amz-Invocation-Type", "Event")
        .header("idempotency-key", "order-42")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let one: Value = response.json().await.unwrap();
    let (status, two) = enqueue(server, "/fn/idem/job", "x", &key).await;
    assert_eq!(status, 202);
    assert_eq!(two["invocation_id"], one["invocation_id"]);
    assert_eq!(two["duplicate"], true);
    assert_eq!(one["duplicate"], false);
    let id = one["invocation_id"].as_str().unwrap().to_string();
    recorder
        .wait_until(Duration::from_secs(10), "the keyed event", |r| {
            r.iter().any(|(_, x)| x["id"] == id.as_str())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(recorder.of("id", &id).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_missed_while_down_runs_once_or_is_skipped() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let server = Server::start_in(&data_dir, None);
    let runs = Recorder::start().await;
    let skips = Recorder::start().await;
    let _run = deploy(
        &server,
        "missed-run",
        &format!("{}[[schedule]]\ncron = \"@every 3s\"\n", runs.env()),
    );
    let _skip = deploy(
        &server,
        "missed-skip",
        &format!(
            "{}[[schedule]]\ncron = \"@every 3s\"\nmissed = \"skip\"\n",
            skips.env()
        ),
    );
    // Stop right after a tick both ran, stay down over two more ticks, come back
    // before the third.
    let both_ran = |count: usize| {
        let (runs, skips) = (&runs, &skips);
        move || runs.reports().len() >= count && skips.reports().len() >= count
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !both_ran(1)() {
        assert!(Instant::now() < deadline, "the schedules never fired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last_tick = |recorder: &Recorder| -> String {
        recorder
            .reports()
            .iter()
            .map(|(_, r)| r["scheduled_time"].as_str().unwrap().to_string())
            .max()
            .unwrap()
    };
    let stopped_at = Instant::now();
    assert_eq!(server.stop(), Some(0));
    let before = last_tick(&runs).max(last_tick(&skips));
    tokio::time::sleep(Duration::from_millis(7_000).saturating_sub(stopped_at.elapsed())).await;
    let restarted = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let server = Server::start_in(&data_dir, None);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let missed = |recorder: &Recorder| -> Vec<String> {
        recorder
            .reports()
            .iter()
            .map(|(_, r)| r["scheduled_time"].as_str().unwrap().to_string())
            .filter(|t| *t > before && *t < restarted)
            .collect()
    };
    let caught_up = missed(&runs);
    assert_eq!(
        caught_up.len(),
        1,
        "run-once: one missed tick runs, got {caught_up:?} (last before the stop {before}, restart {restarted})"
    );
    assert!(
        missed(&skips).is_empty(),
        "skip: no missed tick runs, got {:?}",
        missed(&skips)
    );
    // Both go on with their regular ticks.
    let deadline = Instant::now() + Duration::from_secs(6);
    while !(skips
        .reports()
        .iter()
        .any(|(_, r)| r["scheduled_time"].as_str().unwrap() > restarted.as_str()))
    {
        assert!(
            Instant::now() < deadline,
            "no regular tick after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.stop(), Some(0));
}
