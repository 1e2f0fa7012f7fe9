//! The core in process: a [`Platform`] on SQLite in a temp dir, its real listeners on
//! free loopback ports, the wasm `testbed` fixture (`cargo xtask build-fixtures`) deployed
//! through the invoker. What only a separate process shows (the CLI, restarts, `kill -9`,
//! TLS, browsers, several nodes) stays in `tests/e2e`.

mod common;

use std::time::Duration;

use common::testbed;
use gureum_platform::{Config, Platform, PlatformError};
use reqwest::StatusCode;
use serde_json::Value;

/// A node with its own data directory.
struct Node {
    platform: Platform,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start() -> Node {
        Node::start_with(|_| {}).await
    }

    async fn start_with(change: impl FnOnce(&mut Config)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::ephemeral(dir.path().join("data"));
        config.shutdown_grace = Duration::from_secs(5);
        change(&mut config);
        let platform = Platform::start(config).await.expect("the platform starts");
        Node {
            platform,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// Deploys the testbed as `name` with `extra` manifest lines; the new version.
    async fn deploy(&self, name: &str, extra: &str) -> u32 {
        let manifest = format!("name = \"{name}\"\nartifact = \"fn.wasm\"\n{extra}\n");
        self.platform
            .invoker()
            .deploy(&manifest, testbed())
            .await
            .expect("deploys")
            .version
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.platform.public_url()))
            .send()
            .await
            .unwrap()
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn a_warm_instance_serves_the_next_request_and_a_deploy_starts_cold() {
    let node = Node::start().await;
    node.deploy("tb", "").await;
    let first = node.get("/fn/tb/count").await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "x-gureum-cold-start"), "1");
    assert_eq!(header(&first, "x-gureum-version"), "1");
    assert!(!header(&first, "x-gureum-invocation-id").is_empty());
    assert_eq!(first.text().await.unwrap(), "1");
    let second = node.get("/fn/tb/count").await;
    assert_eq!(header(&second, "x-gureum-cold-start"), "0");
    assert_eq!(second.text().await.unwrap(), "2", "the same instance, warm");

    // A new version is a new instance; the old one stays reachable pinned.
    assert_eq!(node.deploy("tb", "[env]\nWHO = \"two\"").await, 2);
    let third = node.get("/fn/tb/count").await;
    assert_eq!(header(&third, "x-gureum-version"), "2");
    assert_eq!(header(&third, "x-gureum-cold-start"), "1");
    assert_eq!(third.text().await.unwrap(), "1");
    let pinned: Value = node
        .get("/fn/tb@1/echo?env=WHO")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pinned["env_value"], Value::Null);

    // Rollback makes version 1 live again, at once.
    let (from, to) = node
        .platform
        .invoker()
        .rollback("tb", None)
        .await
        .expect("rolls back");
    assert_eq!((from, to), (2, 1));
    let after = node.get("/fn/tb/echo?env=WHO").await;
    assert_eq!(header(&after, "x-gureum-version"), "1");
    node.platform.shutdown().await;
}

#[tokio::test]
async fn failures_render_as_json_errors_with_their_code() {
    let node = Node::start_with(|config| config.gateway.max_body_bytes = 1024).await;
    node.deploy("tb", "timeout_ms = 300").await;
    let cases: [(&str, &str, StatusCode, &str); 4] = [
        (
            "GET",
            "/fn/nobody/",
            StatusCode::NOT_FOUND,
            "function_not_found",
        ),
        (
            "GET",
            "/fn/tb/spin",
            StatusCode::GATEWAY_TIMEOUT,
            "function_timeout",
        ),
        (
            "GET",
            "/fn/tb/panic",
            StatusCode::BAD_GATEWAY,
            "function_error",
        ),
        (
            "POST",
            "/fn/tb/body",
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (method, path, status, code) in cases {
        let mut request = node.http.request(
            method.parse().unwrap(),
            format!("{}{path}", node.platform.public_url()),
        );
        if method == "POST" {
            request = request.body(vec![b'x'; 4096]);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), status, "{method} {path}");
        assert_eq!(header(&answer, "x-gureum-error"), code, "{method} {path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{method} {path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{method} {path}: {body}"
        );
    }
    // The services on the same listener answer the same way, header included.
    let public = node.platform.public_url();
    let answers = [
        node.http
            .get(format!("{public}/data/v1/collections/notes/docs"))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap(),
        node.http
            .post(format!("{public}/data/v1/collections/notes/docs"))
            .json(&serde_json::json!({"text": "x"}))
            .send()
            .await
            .unwrap(),
        node.http
            .post(format!("{public}/auth/v1/token?grant_type=password"))
            .json(&serde_json::json!({"email": "nobody@example.org", "password": "wrong password"}))
            .send()
            .await
            .unwrap(),
        node.http
            .get(format!("{public}/kv/v1/buckets/b/keys/k"))
            .send()
            .await
            .unwrap(),
    ];
    let mut statuses = Vec::new();
    for answer in answers {
        let status = answer.status();
        let code = header(&answer, "x-gureum-error").to_string();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], code.as_str(), "{status}: {body}");
        assert!(!code.is_empty(), "{status}: {body}");
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [401, 403, 400, 401]);
    // A function's own status passes through untouched.
    let teapot = node.get("/fn/tb/status?code=418").await;
    assert_eq!(teapot.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(header(&teapot, "x-gureum-error"), "");
    node.platform.shutdown().await;
}

#[tokio::test]
async fn routes_reach_their_function_and_reserved_paths_stay_the_platforms() {
    let node = Node::start().await;
    node.deploy("tb", "routes = [\"/tbapi/*\", \"/tb\"]").await;
    let echo: Value = node.get("/tbapi/echo?x=1").await.json().await.unwrap();
    assert_eq!(echo["path"], "/tbapi/echo?x=1", "a route keeps its path");
    let prefixed = node.get("/fn/tb/echo").await;
    let forwarded = header(&prefixed, "x-gureum-version").to_string();
    let echo: Value = prefixed.json().await.unwrap();
    assert_eq!(echo["path"], "/echo", "the /fn/NAME prefix is stripped");
    assert_eq!(forwarded, "1");
    assert_eq!(node.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(node.get("/nowhere").await.status(), StatusCode::NOT_FOUND);
    node.platform.shutdown().await;
}

#[tokio::test]
async fn shutdown_flushes_every_acknowledged_invocation_to_the_store() {
    let node = Node::start().await;
    node.deploy("tb", "").await;
    let mut answered = 0;
    for _ in 0..20 {
        if node.get("/fn/tb/echo").await.status() == StatusCode::OK {
            answered += 1;
        }
    }
    assert_eq!(answered, 20);
    let store_url = format!(
        "sqlite://{}",
        node._dir.path().join("data/gureum.db").display()
    );
    let Node { platform, _dir, .. } = node;
    platform.shutdown().await;
    let store = gureum_store::Store::open(&store_url).await.unwrap();
    let records = store.list_invocations("tb", 0, 100).await.unwrap();
    assert_eq!(records.len(), 20, "one record per answered request");
    store.close().await;
}

#[tokio::test]
async fn a_taken_port_is_refused_with_the_listener_and_the_flag_to_change() {
    let first = Node::start().await;
    let taken: std::net::SocketAddr = first
        .platform
        .public_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::ephemeral(dir.path());
    config.listen = taken;
    let error = Platform::start(config)
        .await
        .expect_err("the port is taken");
    assert!(
        matches!(
            error,
            PlatformError::Bind {
                listener: "public",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("--listen"), "{error}");
    first.platform.shutdown().await;
}
