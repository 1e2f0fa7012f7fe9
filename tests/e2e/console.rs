//! What the web console stands on, checked through the real binary: its files on the
//! admin listener (no token, security headers, caching), and the control API endpoints
//! it added: `/stats` (time series), `/queue`, `/websockets`, one invocation record,
//! versions with size and effective config, and `/api/v1/data/…` (the data API as the
//! administrator).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Server, deploy, fixture, http};

/// Bound for the telemetry writer to store what a test just caused.
const SETTLE: Duration = Duration::from_secs(15);

fn api(server: &Server, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    http()
        .request(method, format!("{}/api/v1{path}", server.admin_url))
        .bearer_auth(&server.token)
}

async fn get_json(server: &Server, path: &str) -> (reqwest::StatusCode, Value) {
    let response = api(server, reqwest::Method::GET, path)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!("GET {path} answered {status} with non-JSON ({error}): {text}")
    });
    (status, body)
}

/// Polls `GET path` until `done` holds for its JSON (bounded by [`SETTLE`]).
async fn wait_json(server: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + SETTLE;
    loop {
        let (status, body) = get_json(server, path).await;
        if status.is_success() && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} did not get there within {SETTLE:?}; last answer {status}: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn console_files_need_no_token_and_keep_to_their_origin() {
    let server = crate::shared().await;
    let index = http()
        .get(format!("{}/", server.admin_url))
        .send()
        .await
        .unwrap();
    assert_ne!(
        index.status(),
        503,
        "the console's assets were not built into this binary: run `cargo xtask console` (cargo xtask ci does) and rebuild"
    );
    assert_eq!(index.status(), 200, "GET / on the admin listener");
    let headers = index.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-cache");
    let html = index.text().await.unwrap();
    let script = html
        .split("src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default())
        .find(|src| src.starts_with("/assets/") && src.ends_with(".js"))
        .unwrap_or_else(|| panic!("index.html loads no /assets/*.js:\n{html}"));
    assert!(
        html.split("<script").skip(1).all(|tag| tag
            .split('>')
            .next()
            .is_some_and(|attributes| attributes.contains("src="))),
        "every script is a file (the policy forbids inline ones):\n{html}"
    );

    let asset = http()
        .get(format!("{}{script}", server.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), 200, "GET {script}");
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert!(
        asset.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = asset.headers()["etag"].clone();
    let again = http()
        .get(format!("{}{script}", server.admin_url))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "a cached asset is not sent again");

    let missing = http()
        .get(format!("{}/assets/nope.js", server.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // The files are public; the API behind them is not.
    let api = http()
        .get(format!("{}/api/v1/functions", server.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401, "the control API still needs the token");
}

#[tokio::test]
async fn stats_count_requests_errors_cold_starts_and_durations_over_time() {
    let server = crate::shared().await;
    let name = "console-stats";
    let _dir = deploy(server, name, "");
    for _ in 0..5 {
        let response = server.get(&format!("/fn/{name}/echo")).await;
        assert_eq!(response.status(), 200);
    }
    for _ in 0..2 {
        let response = server.get(&format!("/fn/{name}/panic")).await;
        assert_eq!(response.status(), 502, "a panicking guest is a 502");
    }
    let slow = server.get(&format!("/fn/{name}/sleep?ms=60")).await;
    assert_eq!(slow.status(), 200);

    let path = format!("/stats?since=1h&function={name}");
    let stats = wait_json(server, &path, |body| body["total"]["requests"] == 8).await;
    assert_eq!(stats["function"], name);
    let total = &stats["total"];
    assert_eq!(total["errors"], 2, "{total:#}");
    assert_eq!(total["throttled"], 0);
    assert!(
        total["cold_starts"].as_u64().unwrap() >= 1,
        "the first request was cold"
    );
    let share = total["cold_start_share"].as_f64().unwrap();
    assert!(share > 0.0 && share <= 1.0, "cold start share {share}");
    let p50 = total["p50_ms"].as_f64().unwrap();
    let p99 = total["p99_ms"].as_f64().unwrap();
    let max = total["max_ms"].as_f64().unwrap();
    assert!(
        p50 <= p99 && p99 <= max,
        "p50 {p50} ≤ p99 {p99} ≤ max {max}"
    );
    assert!(
        max >= 60.0,
        "the 60 ms sleep is the longest run, got {max} ms"
    );
    assert!(total["peak_concurrency"].as_u64().unwrap() >= 1);
    assert!(
        total["gb_seconds"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    assert!(total["cost"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
    assert_eq!(stats["functions"].as_array().unwrap().len(), 1);
    assert_eq!(stats["functions"][0]["function"], name);

    assert_eq!(stats["step_ms"], 60_000, "1 h is cut into 1-minute steps");
    let series = stats["series"].as_array().unwrap();
    assert!((60..=61).contains(&series.len()), "{} points", series.len());
    let summed: u64 = series.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
    assert_eq!(summed, 8, "every request is in one step");
    let times: Vec<i64> = series.iter().map(|p| p["t_ms"].as_i64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[1] - w[0] == 60_000),
        "steps are contiguous"
    );
    assert!(
        series.iter().any(|p| p["p99_ms"].is_f64()) && series.iter().any(|p| p["p99_ms"].is_null()),
        "steps with requests have percentiles, empty steps null"
    );

    // The installation-wide view holds this function among others.
    let (status, all) = get_json(server, "/stats?since=15m&step=30s").await;
    assert_eq!(status, 200);
    assert_eq!(all["function"], Value::Null);
    assert_eq!(all["step_ms"], 30_000);
    assert!(
        all["functions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["function"] == name && f["requests"] == 8)
    );

    for (query, words) in [
        ("since=soon", "since=\"soon\" is not a duration"),
        ("since=90d", "outside 1ms..31d"),
        ("since=7d&step=1s", "more than 1440 steps"),
        ("since=15m&step=1h", "longer than since"),
        ("function=Not_A_Name", "function name"),
    ] {
        let (status, body) = get_json(server, &format!("/stats?{query}")).await;
        assert_eq!(status, 400, "/stats?{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "/stats?{query}: {message}");
    }
}

#[tokio::test]
async fn versions_show_size_runtime_and_effective_config() {
    let server = crate::shared().await;
    let name = "console-config";
    let _dir = deploy(
        server,
        name,
        "routes = [\"/console-config/*\"]\ntimeout_ms = 1234\n[env]\nCOLOR = \"teal\"",
    );
    let (status, versions) = get_json(server, &format!("/functions/{name}/versions")).await;
    assert_eq!(status, 200);
    let version = &versions[0];
    assert_eq!(version["runtime"], "wasm");
    let size = std::fs::metadata(fixture("testbed")).unwrap().len();
    assert_eq!(version["size_bytes"], size, "the artifact's size");
    let config = &version["config"];
    assert_eq!(config["timeout_ms"], 1234);
    assert_eq!(config["routes"], json!(["/console-config/*"]));
    assert_eq!(config["env"]["COLOR"], "teal");
    assert_eq!(config["auth"], "public");
    assert!(
        config["memory_mb"].as_u64().unwrap() > 0,
        "defaults are filled in"
    );
    assert_eq!(config["static"], Value::Null);
    assert!(config["async"]["retries"].is_u64());

    let (_, list) = get_json(server, "/functions").await;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap();
    assert_eq!(listed["runtime"], "wasm");
}

#[tokio::test]
async fn one_invocation_queue_depths_and_open_websockets() {
    let server = crate::shared().await;
    let name = "console-observe";
    let _dir = deploy(server, name, "");
    let response = server.get(&format!("/fn/{name}/log?n=1")).await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-gureum-invocation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let record = wait_json(
        server,
        &format!("/functions/{name}/invocations/{id}"),
        |_| true,
    )
    .await;
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["status"], 200);
    assert_eq!(record["function"], name);
    let (status, body) = get_json(
        server,
        &format!("/functions/console-stats/invocations/{id}"),
    )
    .await;
    assert_eq!(
        status, 404,
        "another function's id is not found under this one: {body}"
    );
    let (status, body) = get_json(server, &format!("/functions/{name}/invocations/nope")).await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));

    let (status, queue) = get_json(server, "/queue").await;
    assert_eq!(status, 200);
    let mine = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["function"] == name)
        .unwrap_or_else(|| panic!("/queue lists every deployed function: {queue:#}"));
    assert_eq!(
        (mine["depth"].as_u64(), mine["dead_letters"].as_u64()),
        (Some(0), Some(0))
    );

    let (_ws, _) = crate::websocket::connect(server, &format!("/ws/{name}")).await;
    let websockets = wait_json(server, "/websockets", |body| {
        body["functions"]
            .as_array()
            .is_some_and(|all| all.iter().any(|f| f["function"] == name && f["open"] == 1))
    })
    .await;
    assert!(websockets["open"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn the_data_api_is_reachable_as_the_administrator() {
    let server = crate::shared().await;
    let collection = "console-docs";
    let configured = api(
        server,
        reqwest::Method::PUT,
        &format!("/collections/{collection}"),
    )
    .body(r#"{"rules": {}}"#)
    .send()
    .await
    .unwrap();
    assert_eq!(
        configured.status(),
        200,
        "{}",
        configured.text().await.unwrap()
    );
    let created = api(
        server,
        reqwest::Method::POST,
        &format!("/data/collections/{collection}/docs"),
    )
    .json(&json!({"title": "from the console"}))
    .send()
    .await
    .unwrap();
    let status = created.status();
    let location = created.headers().get("location").cloned();
    let doc: Value = created.json().await.unwrap();
    assert_eq!(status, 201, "create through /api/v1/data: {doc}");
    let id = doc["id"].as_str().unwrap();
    assert_eq!(
        location.as_ref().and_then(|value| value.to_str().ok()),
        Some(format!("/api/v1/data/collections/{collection}/docs/{id}").as_str()),
        "the new document's location as reached through the admin listener"
    );

    let (status, list) = get_json(
        server,
        &format!("/data/collections/{collection}/docs?limit=10"),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert!(list.to_string().contains("from the console"), "{list:#}");
    let patched = api(
        server,
        reqwest::Method::PATCH,
        &format!("/data/collections/{collection}/docs/{id}"),
    )
    .json(&json!({"title": "edited"}))
    .send()
    .await
    .unwrap();
    assert_eq!(patched.status(), 200);
    // Users still meet the rules: none are set, so the public API denies anonymous reads.
    let public = server
        .get(&format!("/data/v1/collections/{collection}/docs/{id}"))
        .await;
    assert!(
        public.status() == 401 || public.status() == 403,
        "anonymous read without a rule: {}",
        public.status()
    );
    let anonymous = http()
        .get(format!(
            "{}/api/v1/data/collections/{collection}/docs",
            server.admin_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "the admin mirror needs the admin token"
    );
}

#[tokio::test]
async fn users_are_searched_by_the_start_of_their_email() {
    let server = crate::shared().await;
    crate::backend::signup(server, "console-ada@example.org").await;
    crate::backend::signup(server, "console-alan@example.org").await;
    crate::backend::signup(server, "console-bob@example.org").await;
    let emails = |body: &Value| -> Vec<String> {
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|user| user["email"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, found) = get_json(server, "/users?q=Console-A").await;
    assert_eq!(status, 200);
    assert_eq!(
        emails(&found),
        ["console-ada@example.org", "console-alan@example.org"],
        "case-insensitive prefix, in email order"
    );
    let (_, paged) = get_json(server, "/users?q=console-a&limit=1").await;
    assert_eq!(emails(&paged), ["console-ada@example.org"]);
    assert_eq!(paged["next"], "console-ada@example.org");
    let (_, rest) = get_json(
        server,
        "/users?q=console-a&limit=1&after=console-ada%40example.org",
    )
    .await;
    assert_eq!(emails(&rest), ["console-alan@example.org"]);
    let (_, none) = get_json(server, "/users?q=console-%25").await;
    assert!(emails(&none).is_empty(), "% is a plain character: {none}");
}
