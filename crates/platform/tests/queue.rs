//! The queue worker and the scheduler in process: events queued through the public
//! listener and cron ticks run on a [`Platform`] with SQLite in a temp dir; the wasm
//! `testbed` reports each attempt to a recorder served by the test itself.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::testbed;
use gureum_platform::{Config, Platform};
use reqwest::StatusCode;
use serde_json::Value;

/// Collects the JSON reports the testbed posts for each attempt.
struct Recorder {
    url: String,
    reports: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start() -> Recorder {
        let reports: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = reports.clone();
        let app = axum::Router::new().route(
            "/report",
            axum::routing::post(move |body: String| {
                let sink = sink.clone();
                async move {
                    let report: Value = serde_json::from_str(&body).expect("a JSON report");
                    sink.lock().unwrap().push(report);
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

    /// Manifest lines: the outbound grant and `[env]` with the report URL and `env`.
    fn manifest(&self, env: &str) -> String {
        format!(
            "allowed_outbound_hosts = [\"http://127.0.0.1:*\"]\n[env]\nJOB_REPORT = \"{}\"\n{env}\n",
            self.url
        )
    }

    /// The reports `matching` holds for, once there are `count` of them (bounded).
    async fn wait_for(&self, count: usize, matching: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found: Vec<Value> = self
                .reports
                .lock()
                .unwrap()
                .iter()
                .filter(|report| matching(report))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{count} reports did not arrive; got {:#?}",
                self.reports.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> (Platform, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::ephemeral(dir.path().join("data"));
    config.shutdown_grace = Duration::from_secs(5);
    (Platform::start(config).await.unwrap(), dir)
}

async fn deploy(platform: &Platform, name: &str, extra: &str) {
    let manifest = format!("name = \"{name}\"\nartifact = \"fn.wasm\"\n{extra}\n");
    platform
        .invoker()
        .deploy(&manifest, testbed())
        .await
        .expect("deploys");
}

async fn enqueue(platform: &Platform, function: &str) -> String {
    let answer = reqwest::Client::new()
        .post(format!("{}/fn/{function}/job", platform.public_url()))
        .header("x-gureum-invocation-type", "event")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let body: Value = answer.json().await.unwrap();
    body["invocation_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_queued_event_runs_once_and_a_failing_one_retries_into_the_dead_letters() {
    let (platform, _dir) = start().await;
    let recorder = Recorder::start().await;
    deploy(
        &platform,
        "job-ok",
        &recorder.manifest("[async]\npublic = true"),
    )
    .await;
    let id = enqueue(&platform, "job-ok").await;
    let reports = recorder
        .wait_for(1, |report| report["id"] == id.as_str())
        .await;
    assert_eq!(reports[0]["attempt"], "1");
    assert_eq!(reports[0]["trigger"], "queue");
    assert_eq!(reports[0]["body"], "payload");

    deploy(
        &platform,
        "job-fail",
        &recorder.manifest(
            "JOB_STATUS = \"500\"\n[async]\npublic = true\nretries = 1\nretry_delay_ms = 100",
        ),
    )
    .await;
    let id = enqueue(&platform, "job-fail").await;
    let attempts = recorder
        .wait_for(2, |report| report["id"] == id.as_str())
        .await;
    let mut numbers: Vec<&str> = attempts
        .iter()
        .map(|report| report["attempt"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["1", "2"], "the first try and one retry");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dead = platform
            .store()
            .list_dead_letters("job-fail", 10)
            .await
            .unwrap();
        if let Some(letter) = dead.first() {
            assert_eq!(letter.event.id, id);
            assert_eq!(letter.reason, "retries_exhausted");
            break;
        }
        assert!(Instant::now() < deadline, "no dead letter for {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Exactly two attempts: a dead letter is not tried again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        recorder
            .wait_for(2, |report| report["id"] == id.as_str())
            .await
            .len(),
        2
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn a_cron_schedule_ticks_through_the_queue() {
    let (platform, _dir) = start().await;
    let recorder = Recorder::start().await;
    deploy(
        &platform,
        "ticker",
        &recorder.manifest("[[schedule]]\nname = \"every-second\"\ncron = \"@every 1s\""),
    )
    .await;
    let ticks = recorder
        .wait_for(2, |report| report["trigger"] == "cron")
        .await;
    assert_eq!(ticks[0]["schedule"], "every-second");
    assert_ne!(ticks[0]["id"], ticks[1]["id"], "each tick is its own event");
    platform.shutdown().await;
}
