//! Operating the platform: the outbound-HTTP policy, listing and removing functions,
//! following logs, invoking through the CLI, API error shapes, graceful shutdown and
//! deploying the examples into a fresh platform.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Server, deploy, http, shared};

/// `GET {public}/fn/{function}/fetch?url={target}` with the target URL-encoded.
async fn fetch_through(server: &Server, function: &str, target: &str) -> (u16, String) {
    let response = http()
        .get(format!("{}/fn/{function}/fetch", server.public_url))
        .query(&[("url", target)])
        .send()
        .await
        .expect("public request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The `host:port` of a listener's base URL.
fn authority(base_url: &str) -> &str {
    base_url
        .strip_prefix("http://")
        .expect("an http:// base URL")
        .trim_end_matches('/')
}

/// A JSON error body's code.
async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// How many times each outbound case is tried: a failure that shows only now and then
/// (a race in the outbound path) must still fail the test.
const OUTBOUND_TRIES: usize = 20;

/// Fetches `target` through `function` [`OUTBOUND_TRIES`] times; every (status, body)
/// that differs from `expected` is returned with its count.
async fn fetch_outcomes(
    server: &Server,
    function: &str,
    target: &str,
    expected: impl Fn(u16, &str) -> bool,
) -> Vec<(u16, String)> {
    let mut unexpected = Vec::new();
    for _ in 0..OUTBOUND_TRIES {
        let (status, body) = fetch_through(server, function, target).await;
        if !expected(status, &body) {
            unexpected.push((status, body));
        }
    }
    unexpected
}

#[tokio::test]
async fn outbound_http_is_denied_unless_the_host_is_allowed_and_the_platform_api_always_is() {
    let server = shared().await;
    let admin_port = authority(&server.admin_url)
        .rsplit_once(':')
        .map(|(_, port)| port.to_string())
        .unwrap();
    let admin_health = format!("{}/healthz", server.admin_url);
    let public_health = format!("{}/healthz", server.public_url);
    assert_ne!(
        authority(&server.admin_url),
        authority(&server.public_url),
        "the admin listener is another origin than GUREUM_API"
    );
    let _none = deploy(server, "outbound-none", "");
    let _allowed = deploy(
        server,
        "outbound-allowed",
        &format!("allowed_outbound_hosts = [\"http://127.0.0.1:{admin_port}\"]"),
    );
    let ok = |status: u16, body: &str| status == 200 && body.trim() == "ok";

    // (a) Nothing allowed: the admin listener is out of reach, and the guest is told
    // why (HttpRequestDenied), not handed something that looks like a network failure.
    let denied = fetch_outcomes(server, "outbound-none", &admin_health, |status, body| {
        status == 599 && body.to_lowercase().contains("denied")
    })
    .await;
    // (b) The admin origin allowed explicitly.
    let allowed = fetch_outcomes(server, "outbound-allowed", &admin_health, ok).await;
    // (c) The platform API (GUREUM_API, the public listener) needs no entry.
    let platform = fetch_outcomes(server, "outbound-none", &public_health, ok).await;

    assert!(
        denied.is_empty() && allowed.is_empty() && platform.is_empty(),
        "unexpected answers out of {OUTBOUND_TRIES} tries each:\n\
         (a) denied (want 599 naming the denial): {denied:?}\n\
         (b) allowed (want 200 ok): {allowed:?}\n\
         (c) platform API (want 200 ok): {platform:?}"
    );
}

#[tokio::test]
async fn ls_lists_functions_with_versions_and_urls() {
    let server = shared().await;
    let _v1 = deploy(server, "listed", "");
    let _v2 = deploy(server, "listed", "");
    let rolled = server.cli(&["rollback", "listed"]);
    assert!(rolled.success, "{rolled:?}");
    let url = format!("{}/fn/listed", server.public_url);

    let human = server.cli(&["ls"]);
    assert!(human.success, "{human:?}");
    let header: Vec<&str> = human
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "LIVE", "LATEST", "URL"], "{human:?}");
    let row: Vec<&str> = human
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.first() == Some(&"listed"))
        .unwrap_or_else(|| panic!("listed is not in `gureum ls`: {human:?}"));
    assert_eq!(row, ["listed", "1", "2", url.as_str()], "{human:?}");

    let json = server.cli(&["--json", "ls"]);
    assert!(json.success, "{json:?}");
    let functions: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let listed = functions
        .as_array()
        .unwrap()
        .iter()
        .find(|function| function["name"] == "listed")
        .unwrap_or_else(|| panic!("listed is not in `gureum --json ls`: {json:?}"));
    assert_eq!(listed["live_version"], 1, "{listed}");
    assert_eq!(listed["latest_version"], 2, "{listed}");
    assert_eq!(listed["url"], url.as_str(), "{listed}");
}

#[tokio::test]
async fn rm_removes_a_function_its_routes_and_versions_and_the_name_can_be_reused() {
    let server = shared().await;
    let _v1 = deploy(server, "removable", "routes = [\"/removable-route/*\"]");
    let _v2 = deploy(server, "removable", "routes = [\"/removable-route/*\"]");
    assert_eq!(server.get("/fn/removable/echo").await.status(), 200);
    assert_eq!(server.get("/removable-route/echo").await.status(), 200);

    let removed = server.cli(&["rm", "removable"]);
    assert!(removed.success, "{removed:?}");
    assert!(removed.stdout.contains("removable"), "{removed:?}");

    let gone = server.get("/fn/removable/echo").await;
    assert_eq!(gone.status(), 404);
    assert_eq!(error_code(gone).await, "function_not_found");
    let pinned = server.get("/fn/removable@1/echo").await;
    assert_eq!(pinned.status(), 404);
    assert_eq!(error_code(pinned).await, "function_not_found");
    let route = server.get("/removable-route/echo").await;
    assert_eq!(route.status(), 404);
    assert_eq!(error_code(route).await, "route_not_found");

    let versions = server.cli(&["versions", "removable"]);
    assert!(!versions.success, "{versions:?}");
    assert!(
        versions.stderr.contains("removable") && versions.stderr.contains("no function named"),
        "versions of a removed function says it is not deployed: {versions:?}"
    );
    let listed = server.cli(&["ls"]);
    assert!(
        !listed
            .stdout
            .lines()
            .any(|line| line.split_whitespace().next() == Some("removable")),
        "{listed:?}"
    );
    let again = server.cli(&["rm", "removable"]);
    assert!(!again.success, "a second rm must fail: {again:?}");
    assert!(again.stderr.contains("removable"), "{again:?}");

    // The name (and its route) can be deployed again, starting over at version 1.
    let _fresh = deploy(server, "removable", "routes = [\"/removable-route/*\"]");
    let back = server.get("/fn/removable/echo").await;
    assert_eq!(back.status(), 200);
    assert_eq!(back.headers()["x-gureum-version"], "1");
    assert_eq!(server.get("/removable-route/echo").await.status(), 200);
    let versions = server.cli(&["--json", "versions", "removable"]);
    assert!(versions.success, "{versions:?}");
    let listed: serde_json::Value = serde_json::from_str(&versions.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

/// Kills (and reaps) a CLI child when the test ends, also on a failed assertion.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a line containing `needle` from a child's stdout; panics after `deadline`
/// with everything seen so far.
fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    needle: &str,
    deadline: Instant,
    seen: &mut Vec<String>,
) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(error) => panic!("no line with {needle:?} ({error}); printed so far: {seen:#?}"),
        }
    }
}

#[tokio::test]
async fn logs_follow_prints_new_lines_and_since_and_json_work() {
    let server = shared().await;
    let _dir = deploy(server, "follower", "");
    let first = server.get("/fn/follower/log?n=1").await;
    assert_eq!(first.status(), 200);

    let mut child = server
        .cli_command(&["logs", "follower", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning gureum logs -f");
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    // The backlog in the default window: the line logged before the follow started.
    wait_for_line(&lines, "stdout line 0", deadline, &mut seen);
    // A line that did not exist when the follow started: it really follows.
    let second = server.get("/fn/follower/log?n=2").await;
    assert_eq!(second.status(), 200);
    let second_id = second.headers()["x-gureum-invocation-id"]
        .to_str()
        .unwrap()
        .to_string();
    wait_for_line(&lines, "stdout line 1", deadline, &mut seen);
    let followed = seen.last().unwrap();
    assert!(followed.contains(&second_id), "{followed}");
    assert!(followed.contains("stdout"), "{followed}");
    drop(child);

    // --since picks a window; the lines are there (the last one may be written in a
    // later telemetry batch than the one the follow saw).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let since = server.cli(&["logs", "follower", "--since", "1m"]);
        assert!(since.success, "{since:?}");
        if since.stdout.contains("stderr line 1") {
            assert!(since.stdout.contains("stdout line 1"), "{since:?}");
            assert!(since.stdout.contains(&second_id), "{since:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{since:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // --json: one JSON object per line.
    let json = server.cli(&["--json", "logs", "follower", "--since", "1m"]);
    assert!(json.success, "{json:?}");
    let parsed: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    assert!(parsed.len() >= 6, "1 + 1 + 2 + 2 lines: {json:?}");
    for line in &parsed {
        assert!(line["seq"].is_i64(), "{line}");
        assert!(line["invocation_id"].is_string(), "{line}");
        assert!(
            line["stream"] == "stdout" || line["stream"] == "stderr",
            "{line}"
        );
        assert!(line["message"].is_string(), "{line}");
    }
    let seqs: Vec<i64> = parsed
        .iter()
        .map(|line| line["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "oldest first: {seqs:?}"
    );
    assert!(
        parsed
            .iter()
            .any(|line| line["invocation_id"] == second_id.as_str()
                && line["stream"] == "stderr"
                && line["message"] == "stderr line 1"),
        "{json:?}"
    );
}

#[tokio::test]
async fn invoke_through_the_cli_sends_method_path_headers_and_body() {
    let server = shared().await;
    let _dir = deploy(server, "cli-invoke", "");
    let put = server.cli(&[
        "invoke",
        "cli-invoke",
        "-X",
        "PUT",
        "-d",
        "hello",
        "--path",
        "/echo?x=1",
        "-H",
        "x-test: yes",
    ]);
    assert!(put.success, "{put:?}");
    let echoed: serde_json::Value = serde_json::from_str(&put.stdout).unwrap();
    assert_eq!(echoed["method"], "PUT", "{echoed}");
    assert_eq!(echoed["path"], "/echo?x=1", "{echoed}");
    assert_eq!(
        echoed["headers"]["x-test"],
        serde_json::json!(["yes"]),
        "{echoed}"
    );
    assert_eq!(echoed["body"], "hello", "{echoed}");
    assert!(
        echoed["headers"].get("authorization").is_none(),
        "the admin token is not passed to the function: {echoed}"
    );

    // -d @FILE reads the body from a file; with a body the default method is POST.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "from a file\nline two").unwrap();
    let data = format!("@{}", file.path().display());
    let posted = server.cli(&["invoke", "cli-invoke", "-d", &data, "--path", "/echo"]);
    assert!(posted.success, "{posted:?}");
    let echoed: serde_json::Value = serde_json::from_str(&posted.stdout).unwrap();
    assert_eq!(echoed["method"], "POST", "{echoed}");
    assert_eq!(echoed["body"], "from a file\nline two", "{echoed}");

    // A status the function chose is its answer, not a platform error: printed, exit 0.
    let chosen = server.cli(&["invoke", "cli-invoke", "--path", "/status?code=500"]);
    assert!(chosen.success, "{chosen:?}");
    assert_eq!(chosen.stdout, "status 500");

    // A platform error (here: an unknown function) exits non-zero with its message.
    let unknown = server.cli(&["invoke", "nobody-invoked-here"]);
    assert!(!unknown.success, "{unknown:?}");
    assert!(unknown.stderr.contains("404"), "{unknown:?}");
    assert!(unknown.stdout.is_empty(), "{unknown:?}");
}

#[tokio::test]
async fn api_errors_have_stable_codes() {
    let server = shared().await;
    // A wrong admin token.
    let denied = http()
        .get(format!("{}/api/v1/functions", server.admin_url))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(error_code(denied).await, "unauthorized");
    let metrics = http()
        .get(format!("{}/metrics", server.admin_url))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 401);
    // The CLI with a wrong token fails and says so.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gureum"))
        .args(["--url", &server.admin_url, "--token", "not-the-token", "ls"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("token"), "{stderr}");

    // The public listener: an unknown route, a bad version.
    let unknown = server.get("/no-function-routes-here/x").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.headers()["x-gureum-error"], "route_not_found");
    assert_eq!(error_code(unknown).await, "route_not_found");
    let bad_version = server.get("/fn/anything@abc/").await;
    assert_eq!(bad_version.status(), 400);
    assert_eq!(bad_version.headers()["x-gureum-error"], "bad_version");
    let body: serde_json::Value = bad_version.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_version", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("abc"),
        "{body}"
    );
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_exits_0() {
    let server = Server::start();
    let _dir = deploy(&server, "graceful", "timeout_ms = 5000");
    // Warm up, so the slow request starts right away.
    assert_eq!(
        server.get("/fn/graceful/status?code=200").await.status(),
        200
    );
    let url = format!("{}/fn/graceful/sleep?ms=1500", server.public_url);
    let in_flight = tokio::spawn(async move {
        let response = http().get(url).send().await.expect("in-flight request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("in-flight body"))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let public = authority(&server.public_url).to_string();
    let admin = authority(&server.admin_url).to_string();
    let stopped = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(stopped, Some(0), "gureum up exits 0 after SIGTERM");
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "slept 1500");
    for address in [public, admin] {
        assert!(
            std::net::TcpStream::connect(&address).is_err(),
            "{address} still accepts connections after the server stopped"
        );
    }
}

#[tokio::test]
async fn a_fresh_platform_deploys_the_examples() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    assert!(
        std::path::Path::new(examples)
            .join("hello/hello.wasm")
            .exists(),
        "examples/hello/hello.wasm is missing: run `cargo xtask build-fixtures` first"
    );
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in_with(&data_dir, &["--examples-dir", examples]);

    let hello = server.get("/fn/hello").await;
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.text().await.unwrap(), "hello from gureum\n");
    let greet = server.get("/greet/alice").await;
    assert_eq!(greet.status(), 200);
    assert_eq!(greet.text().await.unwrap(), "hello, alice!");
    for (route, language) in [
        ("/hello-lambda-rust?name=ada", "Rust"),
        ("/hello-lambda-python?name=ada", "Python"),
    ] {
        let response = server.get(route).await;
        assert_eq!(response.status(), 200, "{route}");
        assert_eq!(
            response.text().await.unwrap(),
            format!("Hello, ada, from a {language} Lambda function on gureum!")
        );
    }

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data_dir.join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin.token mode {mode:o}");
    // The notes example: its page, and its collection configured from collection.toml.
    let notes = server.get("/notes/").await;
    assert_eq!(notes.status(), 200);
    assert!(notes.text().await.unwrap().contains("<html"));
    let collection = server.cli(&["--json", "collections", "show", "notes"]);
    assert!(
        collection.success && collection.stdout.contains("doc.owner == auth.uid"),
        "{collection:?}"
    );

    // Only an empty platform gets the examples: a restart deploys nothing new, and a
    // removed example stays removed.
    assert!(server.cli(&["rm", "greet"]).success);
    assert_eq!(server.stop(), Some(0));
    let server = Server::start_in_with(&data_dir, &["--examples-dir", examples]);
    let listed = server.cli(&["--json", "ls"]);
    let functions: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let names: Vec<&str> = functions
        .as_array()
        .unwrap()
        .iter()
        .map(|function| function["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "chat",
            "chat-python",
            "hello",
            "hello-lambda-python",
            "hello-lambda-rust",
            "notes"
        ],
        "{listed:?}"
    );
    assert_eq!(functions[0]["latest_version"], 1, "{listed:?}");
    assert_eq!(server.stop(), Some(0));
}

/// `gureum up --config FILE`: the file sets what no flag or variable sets; a flag given
/// as well wins (here `--listen` and `--admin-listen` of the harness, while the file names
/// an address this machine does not have); a bad key names itself.
#[tokio::test]
async fn a_config_file_sets_what_flags_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gureum-server.toml");
    std::fs::write(
        &file,
        "# the flags of gureum up, without dashes\nmax-body-bytes = 100\nlisten = \"203.0.113.1:8080\"\nadmin_listen = \"203.0.113.1:8081\"\nno-examples = true\ntrusted-proxy = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let server = Server::start_with(&["--config", file.to_str().unwrap()]);
    let _tb = deploy(&server, "cfg", "");
    let post = |size: usize| {
        http()
            .post(format!("{}/fn/cfg/echo", server.public_url))
            .body(vec![b'x'; size])
            .send()
    };
    assert_eq!(post(50).await.unwrap().status(), 200);
    assert_eq!(post(200).await.unwrap().status(), 413, "the file's limit");
    let functions = server.cli(&["ls"]);
    assert!(
        !functions.stdout.contains("hello"),
        "no-examples from the file: {functions:?}"
    );

    std::fs::write(&file, "max-body-byte = 100\n").unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_gureum"))
        .args(["up", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("unknown key `max-body-byte`") && stderr.contains("gureum-server.toml"),
        "{stderr}"
    );
}
