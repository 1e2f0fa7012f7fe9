//! The sandbox of process functions, attacked by a hostile function
//! (`tests/functions/lambda-python/hostile.py`) the way the security audit's finding 1
//! did: every escape that worked against an unsandboxed process must fail in the
//! sandbox, and the same attempts run with `--unsandboxed-processes` must succeed (so
//! the test can tell the two apart).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{Server, isolation_args};
use crate::lambda::{Guest, deploy_lambda, json, pid, processes_with};

/// The hostile function: the Python fixture's `hostile.handler`, with room for a fork
/// bomb's memory (the watchdog would end it first) and a small `/tmp`. Returns what the
/// deploy printed on stderr.
fn deploy_hostile(server: &Server, timeout_ms: u32, extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(Guest::Python.fixture(), dir.path().join("code")).unwrap();
    std::fs::write(
        dir.path().join("gureum.toml"),
        format!(
            "name = \"hostile\"\nruntime = \"lambda\"\nartifact = \"code\"\n\
             command = [\"python3\", \"-m\", \"awslambdaric\", \"hostile.handler\"]\n\
             memory_mb = 4096\ntimeout_ms = {timeout_ms}\nephemeral_storage_mb = 8\n{extra}\n"
        ),
    )
    .unwrap();
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(output.success, "deploy hostile: {output:?}");
    output.stderr
}

/// One attempt: `(escaped, detail)`.
async fn attempt(server: &Server, query: &str) -> (bool, String) {
    let response = server.get(&format!("/fn/hostile/?try={query}")).await;
    let status = response.status();
    let body = json(response).await;
    assert_eq!(status, 200, "{query}: {body}");
    (
        body["escaped"].as_bool().expect("escaped"),
        body["detail"].as_str().unwrap_or_default().to_string(),
    )
}

/// The process group of a host process.
fn process_group(pid: u64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    after_name
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap()
}

/// Host processes with `GUREUM_TEST_DAEMON=marker` in their environment.
fn daemons(marker: &str) -> Vec<u64> {
    let wanted = format!("GUREUM_TEST_DAEMON={marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u64>().ok())
        .filter(|pid| {
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| stat.split(") ").nth(1).unwrap_or("").starts_with('Z'))
                .unwrap_or(true);
            !zombie
                && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                    environ
                        .split(|byte| *byte == 0)
                        .any(|variable| variable == wanted.as_bytes())
                })
        })
        .collect()
}

async fn wait_for_no_daemons(marker: &str, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = daemons(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon of the hostile function outlived {when}: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts a `setsid` daemon from the hostile function and checks that it runs.
async fn start_daemon(server: &Server, marker: &str) {
    let (_, detail) = attempt(server, &format!("daemon&marker={marker}")).await;
    // The daemon's own child execs `sleep` after the function has answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemons(marker).is_empty() {
        assert!(Instant::now() < deadline, "no daemon started: {detail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The code directory of the (Rust) victim: the one with a `bootstrap`.
fn victim_code(data_dir: &Path) -> PathBuf {
    std::fs::read_dir(data_dir.join("code"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .find(|dir| dir.join("bootstrap").exists())
        .expect("the victim's unpacked code")
}

/// Every escape attempt with whether the unsandboxed run must see it succeed
/// (`None`: it depends on the server's user, or there is nothing to try unsandboxed, so
/// only the sandboxed result is checked). `server` is where it runs, `probe` a TCP
/// server on the host's loopback.
fn attempts(
    data_dir: &Path,
    victim_pid: u64,
    server: &Server,
    probe: u16,
) -> Vec<(String, Option<bool>)> {
    let admin_port = server.admin_url.rsplit(':').next().unwrap().to_string();
    let data = data_dir.display();
    let victim_code = victim_code(data_dir).join("bootstrap");
    let root = is_root();
    vec![
        (format!("read&path={data}/admin.token"), Some(true)),
        (format!("read&path={data}/jwt.key"), Some(true)),
        (format!("read&path={data}/gureum.db"), Some(true)),
        // From the working directory (the code, two levels below the data directory).
        ("read&path=../../admin.token".into(), Some(true)),
        (format!("read&path={}", victim_code.display()), Some(true)),
        ("environ".into(), Some(true)),
        (format!("signal&pid={victim_pid}"), Some(true)),
        (format!("ptrace&pid={victim_pid}"), None),
        (
            format!("pgid&pgid={}", process_group(victim_pid)),
            Some(true),
        ),
        ("fork&n=1100".into(), Some(true)),
        ("filltmp&mb=16".into(), Some(true)),
        ("writecode".into(), root.then_some(true)),
        ("unshare".into(), Some(true)),
        ("setuid".into(), root.then_some(true)),
        // The network: the admin listener, PostgreSQL, anything on the host's loopback,
        // also through the relay's socket spoken to directly.
        (
            format!("connect&host=127.0.0.1&port={admin_port}"),
            Some(true),
        ),
        ("connect&host=127.0.0.1&port=5432".into(), Some(true)),
        (format!("connect&host=127.0.0.1&port={probe}"), Some(true)),
        (format!("relay&host=127.0.0.1&port={admin_port}"), None),
        ("relay&host=127.0.0.1&port=5432".into(), None),
    ]
}

/// A plain HTTP server on the host's loopback answering `200 probe`, until dropped.
struct ProbeServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ProbeServer {
    fn start() -> Self {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buffer = [0u8; 1024];
                        let _ = stream.read(&mut buffer);
                        let _ =
                            stream.write_all(b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nprobe");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        ProbeServer { port, stop }
    }
}

impl Drop for ProbeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .is_some_and(|ids| ids.split_whitespace().nth(1) == Some("0"))
}

/// Deploys a victim (Rust, with a secret) and the hostile function on `server` and runs
/// every attempt; returns the victim's host pid and the attempts that got out.
async fn attack(server: &Server, data_dir: &Path) -> (u64, Vec<String>) {
    let _victim = deploy_lambda(server, "victim", Guest::Rust, "[env]\nSECRET = \"hunter2\"");
    let (victim_pid, _) = pid(server, "victim").await;
    deploy_hostile(server, 20_000, "");
    let probe = ProbeServer::start();
    let mut escaped = Vec::new();
    for (query, _) in attempts(data_dir, victim_pid, server, probe.port) {
        let (got_out, detail) = attempt(server, &query).await;
        if got_out {
            escaped.push(format!("{query}: {detail}"));
        }
    }
    (victim_pid, escaped)
}

#[tokio::test]
async fn a_hostile_function_cannot_escape_its_sandbox() {
    use std::os::unix::fs::PermissionsExt as _;
    let temp = tempfile::tempdir().unwrap();
    // Reachable by other local users, as a project directory usually is.
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in(&data_dir, None);
    let (_, mut escaped) = attack(&server, &data_dir).await;
    // Another local user cannot reach an instance's relay socket (its Runtime API, its
    // way out) on the host.
    if is_root() {
        ensure_unprivileged_user();
        let sockets: Vec<PathBuf> = std::fs::read_dir(data_dir.join("tmp"))
            .unwrap()
            .flatten()
            .map(|entry| entry.path().join("relay.sock"))
            .filter(|socket| socket.exists())
            .collect();
        assert!(
            !sockets.is_empty(),
            "no instance sockets under {data_dir:?}/tmp"
        );
        for socket in sockets {
            let connected = std::process::Command::new("setpriv")
                .args(["--reuid", UNPRIVILEGED_USER, "--regid", UNPRIVILEGED_USER])
                .args(["--clear-groups", "/usr/bin/python3", "-c"])
                .arg("import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])")
                .arg(&socket)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&connected.stderr);
            if connected.status.success() {
                escaped.push(format!("local user connected to {}", socket.display()));
            } else {
                // Refused by the file system, not failing for another reason.
                assert!(stderr.contains("PermissionError"), "{stderr}");
            }
        }
    }
    // Mounts are refused too (unsandboxed as root this would mount on the host, so it is
    // tried here only).
    let (mounted, detail) = attempt(&server, "mount").await;
    if mounted {
        escaped.push(format!("mount: {detail}"));
    }
    assert!(escaped.is_empty(), "escapes that worked: {escaped:#?}");

    // Whatever the function started ends with its instance: at the timeout…
    deploy_hostile(&server, 1_000, "");
    start_daemon(&server, "after-timeout").await;
    let response = server.get("/fn/hostile/?try=sleep&ms=5000").await;
    assert_eq!(response.status(), 504);
    wait_for_no_daemons("after-timeout", "the instance's timeout").await;
    // …at a graceful stop…
    start_daemon(&server, "after-stop").await;
    assert_eq!(server.stop(), Some(0));
    wait_for_no_daemons("after-stop", "a graceful stop of gureum").await;
    // …and at a kill -9 of the server (then a restart on the same data).
    let server = Server::start_in(&data_dir, None);
    start_daemon(&server, "after-kill").await;
    server.kill();
    let server = Server::start_in(&data_dir, None);
    wait_for_no_daemons("after-kill", "a kill -9 of gureum and a restart").await;
    drop(server);
}

#[tokio::test]
async fn a_native_function_cannot_escape_either() {
    for sandboxed in [true, false] {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().join("data");
        let server = Server::start_in_with(&data_dir, isolation_args(sandboxed));
        // The victim is Python, the attacker the native (Rust `lambda_http`) testbed.
        let _victim = deploy_lambda(&server, "victim", Guest::Python, "");
        let (victim_pid, _) = pid(&server, "victim").await;
        let _native = deploy_lambda(&server, "native", Guest::Rust, "");
        let data = data_dir.display();
        let admin_port = server.admin_url.rsplit(':').next().unwrap().to_string();
        let tries = [
            format!("read&path={data}/admin.token"),
            format!("read&path={data}/jwt.key"),
            format!("read&path={data}/gureum.db"),
            "read&path=../../admin.token".to_string(),
            "environ".to_string(),
            format!("signal&pid={victim_pid}"),
            format!("connect&host=127.0.0.1&port={admin_port}"),
            "connect&host=127.0.0.1&port=5432".to_string(),
        ];
        let mut wrong = Vec::new();
        for query in tries {
            let response = server.get(&format!("/fn/native/escape?try={query}")).await;
            assert_eq!(response.status(), 200, "{query}");
            let body = json(response).await;
            if body["escaped"].as_bool() == Some(sandboxed) {
                wrong.push(format!("{query}: {body}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{}: {wrong:#?}",
            if sandboxed {
                "escapes that worked in the sandbox"
            } else {
                "attempts that failed even unsandboxed (the test would prove nothing)"
            }
        );
    }
}

#[tokio::test]
async fn without_the_sandbox_the_same_escapes_succeed() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in_with(&data_dir, isolation_args(false));
    let _victim = deploy_lambda(&server, "victim", Guest::Rust, "");
    let (victim_pid, _) = pid(&server, "victim").await;
    let warned = deploy_hostile(&server, 20_000, "");
    assert!(
        warned.contains("without a sandbox"),
        "every deploy warns: {warned}"
    );

    let probe = ProbeServer::start();
    let mut contained = Vec::new();
    for (query, expected) in attempts(&data_dir, victim_pid, &server, probe.port) {
        let (got_out, detail) = attempt(&server, &query).await;
        if expected == Some(true) && !got_out {
            contained.push(format!("{query}: {detail}"));
        }
    }
    assert!(
        contained.is_empty(),
        "these attempts failed even without the sandbox, so the sandboxed test proves nothing for them: {contained:#?}"
    );
    // Unsandboxed, a daemon outlives the instance's timeout (it is stopped here by hand).
    deploy_hostile(&server, 1_000, "");
    start_daemon(&server, "unsandboxed").await;
    let response = server.get("/fn/hostile/?try=sleep&ms=5000").await;
    assert_eq!(response.status(), 504);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = daemons("unsandboxed");
    assert!(!left.is_empty(), "the daemon should have survived");
    for pid in left {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

#[tokio::test]
async fn allowed_hosts_and_the_platform_api_are_reachable_from_the_sandbox() {
    let server = Server::start();
    let allowed = ProbeServer::start();
    let database = ProbeServer::start();
    let other = ProbeServer::start();
    deploy_hostile(
        &server,
        10_000,
        &format!(
            "allowed_outbound_hosts = [\"http://localhost:{}\", \"tcp://localhost:{}\"]",
            allowed.port, database.port
        ),
    );
    // Any TCP protocol to a tcp:// entry (a database, say).
    let (reached, detail) = attempt(
        &server,
        &format!("connect&host=localhost&port={}", database.port),
    )
    .await;
    assert!(reached, "a tcp:// entry is reachable: {detail}");
    let (reached, detail) = attempt(
        &server,
        &format!("fetch&url=http://localhost:{}/", allowed.port),
    )
    .await;
    assert!(reached, "a listed host is reachable: {detail}");
    assert_eq!(detail, "probe");
    let (reached, detail) = attempt(
        &server,
        &format!("fetch&url=http://localhost:{}/", other.port),
    )
    .await;
    assert!(!reached, "an unlisted port is not: {detail}");
    // Nor through the relay's socket, asked directly.
    let (reached, detail) = attempt(
        &server,
        &format!("relay&host=localhost&port={}", other.port),
    )
    .await;
    assert!(!reached, "the relay refuses what is not listed: {detail}");
    // The platform API is always reachable, at GUREUM_API.
    let (reached, detail) = attempt(&server, "fetch&url=http://127.0.0.1:9002/healthz").await;
    assert!(reached, "GUREUM_API answers: {detail}");
}

/// Creates [`UNPRIVILEGED_USER`] when missing (the caller is root).
pub(crate) fn ensure_unprivileged_user() {
    let exists = std::process::Command::new("id")
        .arg(UNPRIVILEGED_USER)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let created = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(UNPRIVILEGED_USER)
            .status()
            .unwrap();
        assert!(created.success(), "useradd {UNPRIVILEGED_USER}");
    }
}

/// The system user the unprivileged test runs gureum as (created when missing).
pub(crate) const UNPRIVILEGED_USER: &str = "gureum-e2e";

#[tokio::test]
async fn an_unprivileged_server_on_postgresql_sandboxes_the_same_way() {
    use std::os::unix::fs::PermissionsExt as _;
    // As root, the test runs gureum as a user of its own; otherwise the test already is
    // unprivileged and the other tests cover it.
    if !is_root() {
        return a_hostile_function_cannot_escape_its_sandbox_as_this_user().await;
    }
    ensure_unprivileged_user();
    let temp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let data_dir = temp.path().join("data");
    let database = gureum_store::testing::fresh_postgres_url().await;
    let server = Server::start_as(
        UNPRIVILEGED_USER,
        &data_dir,
        &["--no-examples", "--store", &database],
    );
    let uid_of =
        |path: &Path| std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(path).unwrap());
    assert_ne!(
        uid_of(&data_dir),
        0,
        "the server runs as {UNPRIVILEGED_USER}"
    );
    let (victim_pid, escaped) = attack(&server, &data_dir).await;
    assert!(escaped.is_empty(), "escapes that worked: {escaped:#?}");
    // The function's processes run as the server's user seen from outside (a user
    // namespace maps uid 993 to it), never as root.
    let owner = std::fs::read_to_string(format!("/proc/{victim_pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:").map(str::to_string))
        .unwrap();
    assert!(!owner.split_whitespace().any(|id| id == "0"), "{owner}");
    drop(server);
    gureum_store::testing::drop_postgres(&database).await;
}

/// The non-root variant of the main test, for a suite run by an ordinary user.
async fn a_hostile_function_cannot_escape_its_sandbox_as_this_user() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in(&data_dir, None);
    let (_, escaped) = attack(&server, &data_dir).await;
    assert!(escaped.is_empty(), "escapes that worked: {escaped:#?}");
}

#[tokio::test]
async fn without_a_sandbox_process_functions_are_refused_with_the_fix() {
    // No bwrap where GUREUM_BWRAP points: the machine cannot sandbox.
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in_env(
        &data_dir,
        &["--no-examples"],
        &[("GUREUM_BWRAP", "/nonexistent/bwrap")],
    );
    let dir = crate::lambda::lambda_dir("refused", Guest::Rust, "");
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(!output.success, "{output:?}");
    for words in [
        "bubblewrap",
        "apt-get install bubblewrap",
        "--unsandboxed-processes",
    ] {
        assert!(output.stderr.contains(words), "{words}: {output:?}");
    }
    // Wasm functions are not affected.
    let _wasm = crate::harness::deploy(&server, "still-wasm", "");
    assert_eq!(server.get("/fn/still-wasm/echo").await.status(), 200);
}

#[tokio::test]
async fn a_relative_data_directory_works_in_the_sandbox() {
    // `gureum up` with its default `./.gureum`: the sandbox must bind absolute paths.
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::start_in_cwd(cwd.path());
    let _dir = deploy_lambda(&server, "relative", Guest::Rust, "");
    let response = server.get("/fn/relative/status?code=200").await;
    let status = response.status();
    assert_eq!(status, 200, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_prepared_sandbox_runs_nothing_until_taken_and_never_an_old_version() {
    let server = Server::start();
    let extra = "idle_ttl_s = 1\n[env]\nMARK = \"one\"\n";
    let _one = deploy_lambda(&server, "prepared", Guest::Python, extra);
    let env = |response: reqwest::Response| async move {
        let cold = response.headers()["x-gureum-cold-start"] == "1";
        (cold, json(response).await)
    };
    let (cold, first) = env(server.get("/fn/prepared/env").await).await;
    assert!(cold);
    assert_eq!(first["MARK"], "one");
    // The AWS SDKs' endpoint variable names the platform API as the sandbox reaches it.
    assert_eq!(first["GUREUM_API"], "http://127.0.0.1:9002");
    assert_eq!(
        first["AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"],
        first["GUREUM_API"]
    );

    // Scaled to zero (idle TTL 1 s): no process of the function runs, but a sandbox for
    // it is held, stopped before the function's command (only the helper and bwrap).
    let marker = "AWS_LAMBDA_FUNCTION_NAME=prepared";
    let deadline = Instant::now() + Duration::from_secs(15);
    let held = loop {
        let processes = processes_with(marker);
        let running: Vec<_> = processes
            .iter()
            .filter(|(_, name)| name.starts_with("python"))
            .collect();
        if running.is_empty() && processes.iter().any(|(_, name)| name == "exec") {
            break processes;
        }
        assert!(
            Instant::now() < deadline,
            "no held sandbox without a running function: {processes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        held.iter()
            .all(|(_, name)| name == "exec" || name == "bwrap"),
        "a held sandbox runs only the helper (and its relay) under bwrap: {held:?}"
    );

    let (cold, second) = env(server.get("/fn/prepared/env").await).await;
    assert!(cold, "after scale-to-zero the next request is a cold start");
    assert_eq!(second["MARK"], "one");
    assert_ne!(
        second["AWS_LAMBDA_LOG_STREAM_NAME"], first["AWS_LAMBDA_LOG_STREAM_NAME"],
        "a new instance"
    );

    // A new version never starts in a sandbox prepared for the old one.
    let _two = deploy_lambda(
        &server,
        "prepared",
        Guest::Python,
        "idle_ttl_s = 1\n[env]\nMARK = \"two\"\n",
    );
    for _ in 0..3 {
        let (_, third) = env(server.get("/fn/prepared/env").await).await;
        assert_eq!(third["MARK"], "two");
        assert_eq!(third["AWS_LAMBDA_FUNCTION_VERSION"], "2");
        tokio::time::sleep(Duration::from_millis(1600)).await;
    }
}
