//! `runtime = "lambda"`: functions built with the unmodified official AWS runtime
//! clients (Rust `lambda_http`, Python `awslambdaric`, Node `aws-lambda-ric` where it
//! installs) run as warm processes behind the Runtime API: HTTP round trips through
//! API Gateway v2.0 events, handler errors, crashes, timeouts, memory, concurrency,
//! idle expiry, response streaming, logs, isolation between functions, and both stores.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::{Server, http, shared};

/// A lambda guest built by `cargo xtask build-fixtures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guest {
    /// `lambda_http`, buffered.
    Rust,
    /// `lambda_http`, response streaming.
    RustStream,
    /// `awslambdaric`.
    Python,
    /// `aws-lambda-ric`.
    Node,
}

impl Guest {
    pub(crate) fn fixture(self) -> PathBuf {
        let name = match self {
            Guest::Rust => "lambda-testbed",
            Guest::RustStream => "lambda-stream",
            Guest::Python => "lambda-python",
            Guest::Node => "lambda-node",
        };
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        target.join("fixtures").join(name)
    }

    fn command(self) -> &'static str {
        match self {
            Guest::Rust | Guest::RustStream => "",
            Guest::Python => "command = [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]",
            Guest::Node => NODE_COMMAND,
        }
    }

    /// The guests every behaviour is checked with.
    fn all() -> Vec<Guest> {
        let mut guests = vec![Guest::Rust, Guest::Python];
        if Guest::Node.fixture().join("index.js").exists() {
            guests.push(Guest::Node);
        }
        guests
    }

    fn error_type(self) -> &'static str {
        match self {
            Guest::Python => "ValueError",
            _ => "TestbedError",
        }
    }
}

/// aws-lambda-ric 4 takes its handler from `_HANDLER`, which gureum sets to the last
/// argument of the command.
const NODE_COMMAND: &str =
    "command = [\"node\", \"node_modules/aws-lambda-ric/index.mjs\", \"index.handler\"]";

/// Writes a function directory for `guest` (the code dir is a symlink to the fixture,
/// which `gureum deploy` packs) and deploys it with the CLI.
pub(crate) fn deploy_lambda(
    server: &Server,
    name: &str,
    guest: Guest,
    extra: &str,
) -> tempfile::TempDir {
    let dir = lambda_dir(name, guest, extra);
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(output.success, "deploy {name} failed: {output:?}");
    dir
}

pub(crate) fn lambda_dir(name: &str, guest: Guest, extra: &str) -> tempfile::TempDir {
    let fixture = guest.fixture();
    assert!(
        fixture.exists(),
        "{} is missing: run `cargo xtask build-fixtures` first",
        fixture.display()
    );
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&fixture, dir.path().join("code")).unwrap();
    std::fs::write(
        dir.path().join("gureum.toml"),
        format!(
            "name = \"{name}\"\nruntime = \"lambda\"\nartifact = \"code\"\n{}\n{extra}\n",
            guest.command()
        ),
    )
    .unwrap();
    dir
}

fn name(prefix: &str, guest: Guest) -> String {
    format!("{prefix}-{}", format!("{guest:?}").to_lowercase())
}

pub(crate) async fn json(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
}

/// The host pid of the function's process that answers `/fn/{function}/pid`, and
/// whether that request was a cold start. Inside its sandbox every process function
/// is pid 2, so the process is found by its instance's log stream name in its
/// environment (the last of the sandbox's processes that have it: the function's own).
pub(crate) async fn pid(server: &Server, function: &str) -> (u64, bool) {
    let response = server.get(&format!("/fn/{function}/pid")).await;
    assert_eq!(response.status(), 200);
    let cold = response.headers()["x-gureum-cold-start"] == "1";
    let body = json(response).await;
    let stream = body["stream"].as_str().expect("a log stream name");
    let wanted = format!("AWS_LAMBDA_LOG_STREAM_NAME={stream}");
    let host_pid = processes_with(&wanted)
        .into_iter()
        .map(|(pid, _)| pid)
        .max()
        .unwrap_or_else(|| panic!("no process of {function} has {wanted}"));
    (host_pid, cold)
}

/// Host processes whose environment holds `variable` (exactly), with their names.
pub(crate) fn processes_with(variable: &str) -> Vec<(u64, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u64>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|entry| entry == variable.as_bytes())
            })
        })
        .filter_map(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some((pid, name.trim().to_string()))
        })
        .collect()
}

fn process_exists(pid: u64) -> bool {
    // A zombie is gone for our purposes: it runs nothing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.split(") ").nth(1).unwrap_or("").starts_with('Z'))
        .unwrap_or(false)
}

async fn wait_until_gone(pid: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn requests_round_trip_through_api_gateway_v2_events() {
    let server = shared().await;
    for guest in Guest::all() {
        let function = name("roundtrip", guest);
        let _dir = deploy_lambda(server, &function, guest, "");
        let body = "hello, lambda ✓";
        let response = http()
            .post(format!(
                "{}/fn/{function}/echo?a=1&a=2&b=x%20y",
                server.public_url
            ))
            .header("x-multi", "one")
            .header("x-multi", "two")
            .header("cookie", "c1=v1; c2=v2")
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{guest:?}");
        assert_eq!(response.headers()["x-gureum-cold-start"], "1");
        let echo = json(response).await;
        assert_eq!(echo["method"], "POST", "{guest:?}: {echo}");
        assert_eq!(echo["path"], "/echo", "{guest:?}: {echo}");
        assert_eq!(echo["query"], "a=1&a=2&b=x%20y", "{guest:?}: {echo}");
        assert_eq!(echo["headers"]["x-multi"], "one,two", "{guest:?}: {echo}");
        assert_eq!(echo["cookie"], "c1=v1; c2=v2", "{guest:?}: {echo}");
        assert_eq!(
            echo["body_base64"],
            BASE64.encode(body.as_bytes()),
            "{guest:?}: {echo}"
        );

        // Binary bodies travel base64-encoded both ways and arrive byte for byte.
        let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let response = http()
            .post(format!("{}/fn/{function}/binary", server.public_url))
            .header("content-type", "application/octet-stream")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{guest:?}");
        assert_eq!(response.headers()["x-gureum-cold-start"], "0", "{guest:?}");
        assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());

        // Status, headers and cookies of the v2.0 response shape.
        let response = server.get(&format!("/fn/{function}/status?code=201")).await;
        assert_eq!(response.status(), 201, "{guest:?}");
        assert_eq!(response.headers()["x-testbed"], "yes");
        let cookies: Vec<_> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|value| value.to_str().unwrap().to_string())
            .collect();
        assert_eq!(cookies, ["a=1", "b=2"], "{guest:?}");
        assert_eq!(response.text().await.unwrap(), "status 201");
    }
}

#[tokio::test]
async fn the_process_gets_the_lambda_environment_and_any_json_is_a_200() {
    let server = shared().await;
    let function = "lambda-env";
    let _dir = deploy_lambda(
        server,
        function,
        Guest::Python,
        "memory_mb = 256\n[env]\nGREETING = \"hi\"",
    );
    let env = json(server.get(&format!("/fn/{function}/env")).await).await;
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], function);
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "1");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/lambda-env");
    assert_eq!(env["_HANDLER"], "app.handler");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["GREETING"], "hi");
    assert!(env["GUREUM_API"].as_str().unwrap().starts_with("http://"));
    // The code is at /var/task in the sandbox, as on Lambda.
    assert_eq!(env["LAMBDA_TASK_ROOT"], "/var/task");
    assert_eq!(env["TMPDIR"], "/tmp");
    let api = env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap();
    assert!(api.starts_with("127.0.0.1:"), "{api}");

    // A plain JSON value (no statusCode) is a 200 application/json body.
    let response = server.get(&format!("/fn/{function}/json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(json(response).await, serde_json::json!({"hello": "world"}));

    // The context object matches the invocation.
    let response = server.get(&format!("/fn/{function}/context")).await;
    let id = response.headers()["x-gureum-invocation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let context = json(response).await;
    assert_eq!(context["aws_request_id"], id.as_str());
    assert_eq!(context["function_name"], function);
    assert_eq!(context["memory_limit_in_mb"], "256");
    let remaining = context["remaining_time_in_millis"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 3_000, "{context}");
    assert_eq!(
        context["invoked_function_arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:lambda-env"
    );
}

#[tokio::test]
async fn a_handler_error_gives_502_with_its_type_and_the_process_lives_on() {
    let server = shared().await;
    for guest in Guest::all() {
        let function = name("failing", guest);
        let _dir = deploy_lambda(server, &function, guest, "");
        let (before, _) = pid(server, &function).await;
        let response = server.get(&format!("/fn/{function}/error")).await;
        assert_eq!(response.status(), 502, "{guest:?}");
        let id = response.headers()["x-gureum-invocation-id"]
            .to_str()
            .unwrap()
            .to_string();
        let error = json(response).await;
        assert_eq!(error["error"]["code"], "function_error");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(guest.error_type()) && message.contains("boom"),
            "{guest:?}: {message}"
        );
        let (after, cold) = pid(server, &function).await;
        assert_eq!(
            before, after,
            "{guest:?}: a handler error keeps the process"
        );
        assert!(!cold);
        // The error is in the invocation's logs.
        wait_for_log(server, &function, &id, &[guest.error_type()]).await;
        if guest == Guest::Python {
            // awslambdaric sends a traceback as one record with `\r` between its lines:
            // shown as lines (indented under the first), never as one run-on line.
            let output = server.cli(&["logs", &function, "--invocation", &id]);
            assert!(!output.stdout.contains('\r'), "{output:?}");
            assert!(
                output.stdout.lines().any(|line| line
                    .trim_start()
                    .starts_with("Traceback (most recent call last)")
                    || line.trim_start().starts_with("File ")),
                "the traceback's lines: {}",
                output.stdout
            );
        }
    }
}

#[tokio::test]
async fn a_crash_gives_502_and_a_new_process_serves_the_next_request() {
    let server = shared().await;
    for guest in Guest::all() {
        let function = name("crashing", guest);
        let _dir = deploy_lambda(server, &function, guest, "");
        let (before, _) = pid(server, &function).await;
        let response = server.get(&format!("/fn/{function}/crash")).await;
        assert_eq!(response.status(), 502, "{guest:?}");
        let error = json(response).await;
        assert_eq!(error["error"]["code"], "function_error");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("exited with status 3"),
            "{guest:?}: {error}"
        );
        let (after, cold) = pid(server, &function).await;
        assert_ne!(before, after, "{guest:?}");
        assert!(cold, "{guest:?}: the replacement is a cold start");
    }
}

#[tokio::test]
async fn a_sleep_past_the_timeout_gives_504_and_kills_the_process() {
    let server = shared().await;
    for guest in Guest::all() {
        let function = name("slow", guest);
        let _dir = deploy_lambda(server, &function, guest, "timeout_ms = 1000");
        let (before, _) = pid(server, &function).await;
        let started = Instant::now();
        let response = server.get(&format!("/fn/{function}/sleep?ms=20000")).await;
        assert_eq!(response.status(), 504, "{guest:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{guest:?}");
        let error = json(response).await;
        assert_eq!(error["error"]["code"], "function_timeout");
        wait_until_gone(before).await;
        let (after, cold) = pid(server, &function).await;
        assert_ne!(before, after);
        assert!(cold);
    }
}

#[tokio::test]
async fn memory_over_the_limit_gives_502_naming_it() {
    let server = shared().await;
    for guest in [Guest::Rust, Guest::Python] {
        let function = name("hungry", guest);
        let _dir = deploy_lambda(server, &function, guest, "memory_mb = 128");
        let response = server.get(&format!("/fn/{function}/hog?mb=2048")).await;
        assert_eq!(response.status(), 502, "{guest:?}");
        let error = json(response).await;
        assert_eq!(
            error["error"]["code"], "function_memory_limit",
            "{guest:?}: {error}"
        );
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("128 MiB"),
            "{error}"
        );
        let fits = server.get(&format!("/fn/{function}/hog?mb=16")).await;
        assert_eq!(fits.status(), 200, "{guest:?}");
    }
}

#[tokio::test]
async fn parallel_requests_start_processes_up_to_max_instances_then_429() {
    let server = shared().await;
    let function = "lambda-narrow";
    let _dir = deploy_lambda(
        server,
        function,
        Guest::Rust,
        "max_instances = 2\ntimeout_ms = 10000",
    );
    let sleep = |ms: u64| {
        let url = format!("{}/fn/{function}/sleep?ms={ms}", server.public_url);
        tokio::spawn(async move { http().get(url).send().await.unwrap() })
    };
    // Two at once: two processes, both cold.
    let pair = [sleep(800), sleep(800)];
    for request in pair {
        let response = request.await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-gureum-cold-start"], "1");
    }
    // Far more than two slots and their queue: some are throttled.
    let burst: Vec<_> = (0..16).map(|_| sleep(1500)).collect();
    let (mut ok, mut throttled) = (0, 0);
    for request in burst {
        let response = request.await.unwrap();
        match response.status().as_u16() {
            200 => {
                assert_eq!(response.headers()["x-gureum-cold-start"], "0");
                ok += 1;
            }
            429 => {
                assert_eq!(response.headers()["retry-after"], "1");
                throttled += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 2 && throttled >= 1, "ok {ok}, throttled {throttled}");
}

#[tokio::test]
async fn after_the_idle_ttl_the_process_is_stopped_and_the_next_request_is_cold() {
    let server = shared().await;
    let function = "lambda-idle";
    let _dir = deploy_lambda(server, function, Guest::Rust, "idle_ttl_s = 1");
    let (first, cold) = pid(server, function).await;
    assert!(cold);
    let (again, cold) = pid(server, function).await;
    assert_eq!(first, again, "a warm process serves the next request");
    assert!(!cold);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    wait_until_gone(first).await;
    let (later, cold) = pid(server, function).await;
    assert_ne!(first, later);
    assert!(cold);
}

#[tokio::test]
async fn one_function_cannot_read_another_functions_events() {
    let server = shared().await;
    let _victim = deploy_lambda(server, "lambda-victim", Guest::Rust, "");
    let _thief = deploy_lambda(server, "lambda-thief", Guest::Rust, "");
    let env = json(server.get("/fn/lambda-victim/env").await).await;
    let api = env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap().to_string();
    assert!(process_exists(pid(server, "lambda-victim").await.0));

    // Another function's process, knowing the endpoint, gets nothing from it.
    let stolen = json(
        server
            .get(&format!("/fn/lambda-thief/steal?api={api}"))
            .await,
    )
    .await;
    // Every sandbox has its own network, with its own Runtime API at the same address
    // (127.0.0.1:9001, as on Lambda): the thief reaches its own API, busy with this very
    // request, and never the victim's events.
    assert_eq!(api, "127.0.0.1:9001");
    assert!(stolen["status"].is_null(), "{stolen}");
    // Nor does any other local process (here: the test itself).
    let direct = tokio::time::timeout(
        Duration::from_secs(2),
        http()
            .get(format!("http://{api}/2018-06-01/runtime/invocation/next"))
            .send(),
    )
    .await;
    assert!(
        matches!(&direct, Ok(Err(_))),
        "closed at once, not answered nor left waiting: {direct:?}"
    );
    // The victim still gets its own events.
    let response = server.get("/fn/lambda-victim/status?code=200").await;
    assert_eq!(response.status(), 200);
}

async fn wait_for_log(server: &Server, function: &str, id: &str, wanted: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = server.cli(&["logs", function, "--invocation", id]);
        assert!(output.success, "{output:?}");
        if wanted.iter().all(|text| output.stdout.contains(text)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "log lines {wanted:?} never arrived: {output:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn process_output_is_stored_with_its_invocation() {
    let server = shared().await;
    for guest in [Guest::Rust, Guest::Python] {
        let function = name("chatty", guest);
        let _dir = deploy_lambda(server, &function, guest, "");
        let response = server.get(&format!("/fn/{function}/log?n=3")).await;
        assert_eq!(response.status(), 200);
        let id = response.headers()["x-gureum-invocation-id"]
            .to_str()
            .unwrap()
            .to_string();
        wait_for_log(server, &function, &id, &["line 2", "err 2"]).await;
    }
}

#[tokio::test]
async fn init_failures_give_502_with_the_output() {
    let server = shared().await;
    let dir = lambda_dir("lambda-broken", Guest::Python, "");
    let manifest = dir.path().join("gureum.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("app.handler", "broken.handler");
    std::fs::write(&manifest, text).unwrap();
    assert!(
        server
            .cli(&["deploy", dir.path().to_str().unwrap()])
            .success
    );
    let response = server.get("/fn/lambda-broken").await;
    assert_eq!(response.status(), 502);
    let error = json(response).await;
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("failed to initialize"), "{message}");
    assert!(message.contains("broken at import"), "{message}");

    // A process that exits before asking for its first event.
    let dir = lambda_dir(
        "lambda-dies",
        Guest::Python,
        "command = [\"sh\", \"-c\", \"echo dying early; exit 7\"]",
    );
    let manifest = dir.path().join("gureum.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replacen(Guest::Python.command(), "", 1);
    std::fs::write(&manifest, text).unwrap();
    assert!(
        server
            .cli(&["deploy", dir.path().to_str().unwrap()])
            .success
    );
    let error = json(server.get("/fn/lambda-dies").await).await;
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("dying early") && message.contains("exited with status 7"),
        "{message}"
    );
}

#[tokio::test]
async fn streamed_responses_arrive_chunk_by_chunk() {
    let server = shared().await;
    let _dir = deploy_lambda(server, "lambda-stream", Guest::RustStream, "");
    let response = server.get("/fn/lambda-stream/stream?n=5").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-streamed"], "yes");
    let text = response.text().await.unwrap();
    let expected: String = (0..5).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(text, expected);

    // An error mid-stream cuts the response short and is logged.
    let response = server.get("/fn/lambda-stream/stream-error").await;
    assert_eq!(response.status(), 200, "the head was already sent");
    let id = response.headers()["x-gureum-invocation-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        response.bytes().await.is_err(),
        "the body must not end cleanly"
    );
    wait_for_log(server, "lambda-stream", &id, &["mid-stream"]).await;
    // The process serves the next stream.
    let again = server.get("/fn/lambda-stream/stream?n=2").await;
    assert_eq!(again.text().await.unwrap(), "chunk 0\nchunk 1\n");
}

#[tokio::test]
async fn a_package_without_its_program_is_refused_at_deploy() {
    let server = shared().await;
    let dir = lambda_dir("lambda-missing", Guest::Python, "");
    let manifest = dir.path().join("gureum.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace(Guest::Python.command(), "command = [\"./server\"]");
    std::fs::write(&manifest, text).unwrap();
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(!output.success);
    assert!(
        output
            .stderr
            .contains("\"./server\" is not in the artifact"),
        "{output:?}"
    );
}

#[tokio::test]
async fn lambda_functions_survive_a_restart_on_sqlite_and_postgresql() {
    for backend in ["sqlite", "postgres"] {
        let temp = tempfile::tempdir().unwrap();
        let database = if backend == "postgres" {
            Some(gureum_store::testing::fresh_postgres_url().await)
        } else {
            None
        };
        let store = database.as_deref();
        let server = Server::start_in(&temp.path().join("a"), store);
        let _dir = deploy_lambda(&server, "lambda-durable", Guest::Rust, "");
        assert_eq!(pid_status(&server).await, 200, "{backend}");
        assert_eq!(server.stop(), Some(0));
        // A new data dir: the code is unpacked again from the store's copy.
        let data_dir = match backend {
            "postgres" => temp.path().join("b"),
            _ => temp.path().join("a"),
        };
        let server = Server::start_in(&data_dir, store);
        assert_eq!(pid_status(&server).await, 200, "{backend} after restart");
        assert_eq!(server.stop(), Some(0));
        if let Some(url) = database {
            gureum_store::testing::drop_postgres(&url).await;
        }
    }
}

async fn pid_status(server: &Server) -> u16 {
    server.get("/fn/lambda-durable/pid").await.status().as_u16()
}

#[tokio::test]
async fn processes_stop_with_the_server_and_orphans_of_a_killed_server_are_stopped() {
    for sandboxed in [true, false] {
        processes_stop_with_the_server(sandboxed).await;
    }
}

/// In the sandbox a killed server takes its processes with it (the sandbox dies with
/// its parent); unsandboxed, the next start stops what the killed one left.
async fn processes_stop_with_the_server(sandboxed: bool) {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let args = crate::harness::isolation_args(sandboxed);
    let server = Server::start_in_with(&data_dir, args);
    let _dir = deploy_lambda(&server, "lambda-owned", Guest::Rust, "");
    let (first, _) = pid(&server, "lambda-owned").await;
    assert_eq!(server.stop(), Some(0));
    wait_until_gone(first).await;

    // A server killed outright cannot stop its processes; the next start does. The
    // process is kept busy, so it does not notice that its Runtime API went away.
    let server = Server::start_in_with(&data_dir, args);
    let (orphan, _) = pid(&server, "lambda-owned").await;
    let busy = http()
        .get(format!(
            "{}/fn/lambda-owned/sleep?ms=2500",
            server.public_url
        ))
        .send();
    let busy = tokio::spawn(busy);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(server); // SIGKILL
    let _ = busy.await;
    if sandboxed {
        wait_until_gone(orphan).await;
    } else {
        assert!(
            process_exists(orphan),
            "the busy process outlives a killed server"
        );
    }
    let server = Server::start_in_with(&data_dir, args);
    wait_until_gone(orphan).await;
    let (fresh, cold) = pid(&server, "lambda-owned").await;
    assert_ne!(fresh, orphan);
    assert!(cold);
    assert_eq!(server.stop(), Some(0));
}
