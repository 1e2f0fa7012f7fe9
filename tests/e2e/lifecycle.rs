//! Deploy, versions, rollback, pinned versions, logs, limits and warm reuse.

use std::time::{Duration, Instant};

use crate::{deploy, http, shared};

#[tokio::test]
async fn deploy_redeploy_rollback_and_pinned_versions_serve_the_right_code() {
    let server = shared().await;
    let _v1 = deploy(server, "versions", "[env]\nTAG = \"one\"");
    let body = |response: reqwest::Response| async move {
        let json: serde_json::Value = response.json().await.unwrap();
        json["env_value"].as_str().unwrap_or_default().to_string()
    };
    let first = server.get("/fn/versions/echo?env=TAG").await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-gureum-version"], "1");
    assert_eq!(body(first).await, "one");

    let _v2 = deploy(server, "versions", "[env]\nTAG = \"two\"");
    assert_eq!(
        body(server.get("/fn/versions/echo?env=TAG").await).await,
        "two"
    );

    let rolled = server.cli(&["rollback", "versions"]);
    assert!(rolled.success, "{rolled:?}");
    assert!(rolled.stdout.contains("from version 2 to 1"), "{rolled:?}");
    let after = server.get("/fn/versions/echo?env=TAG").await;
    assert_eq!(after.headers()["x-gureum-version"], "1");
    assert_eq!(body(after).await, "one");

    let pinned = server.get("/fn/versions@2/echo?env=TAG").await;
    assert_eq!(pinned.headers()["x-gureum-version"], "2");
    assert_eq!(body(pinned).await, "two");
    let missing = server.get("/fn/versions@9/echo").await;
    assert_eq!(missing.status(), 404);

    // A redeploy of identical content still gets a new version.
    let _v3 = deploy(server, "versions", "[env]\nTAG = \"one\"");
    let versions = server.cli(&["--json", "versions", "versions"]);
    let listed: serde_json::Value = serde_json::from_str(&versions.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[2]["live"], true);

    let rolled_to = server.cli(&["rollback", "versions", "--to", "2"]);
    assert!(rolled_to.success, "{rolled_to:?}");
    assert_eq!(
        body(server.get("/fn/versions/echo?env=TAG").await).await,
        "two"
    );
}

#[tokio::test]
async fn the_mount_prefix_is_stripped_and_manifest_routes_pass_unchanged() {
    let server = shared().await;
    let _dir = deploy(server, "paths", "routes = [\"/paths-route/*\"]");
    let stripped: serde_json::Value = server
        .get("/fn/paths/echo?a=1&b=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stripped["path"], "/echo?a=1&b=2");
    assert_eq!(stripped["headers"]["x-forwarded-prefix"][0], "/fn/paths");
    let routed = server.get("/paths-route/x").await;
    assert_eq!(
        routed.status(),
        404,
        "testbed answers 404 for unknown paths"
    );
    assert_eq!(routed.text().await.unwrap(), "no such testbed route");
    let unknown = server.get("/fn/nobody-here/").await;
    assert_eq!(unknown.status(), 404);
    let error: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(error["error"]["code"], "function_not_found");
}

#[tokio::test]
async fn logs_show_the_invocations_stdout_and_stderr() {
    let server = shared().await;
    let _dir = deploy(server, "logger", "");
    let response = server.get("/fn/logger/log?n=3").await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-gureum-invocation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = server.cli(&["logs", "logger", "--invocation", &id]);
        assert!(output.success, "{output:?}");
        if output.stdout.contains("stdout line 2") && output.stdout.contains("stderr line 2") {
            assert!(output.stdout.contains(&id));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "log lines never arrived: {output:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The CLI's invoke prints the body.
    let invoked = server.cli(&["invoke", "logger", "--path", "/log?n=1"]);
    assert!(invoked.success, "{invoked:?}");
    assert_eq!(invoked.stdout, "logged 1");
}

#[tokio::test]
async fn a_looping_function_is_stopped_with_504_at_its_timeout() {
    let server = shared().await;
    let _dir = deploy(server, "spinner", "timeout_ms = 500");
    let started = Instant::now();
    let response = server.get("/fn/spinner/spin").await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 504);
    assert!(
        elapsed < Duration::from_millis(500 + 1_500),
        "took {elapsed:?}"
    );
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "function_timeout");
    // The instance was discarded; the function still serves.
    assert_eq!(
        server.get("/fn/spinner/status?code=200").await.status(),
        200
    );
    // The CLI exits non-zero on a function error.
    let invoked = server.cli(&["invoke", "spinner", "--path", "/spin"]);
    assert!(!invoked.success);
    assert!(invoked.stderr.contains("timed out"), "{invoked:?}");
}

#[tokio::test]
async fn a_memory_hog_gets_502_naming_the_limit() {
    let server = shared().await;
    let _dir = deploy(server, "hog", "memory_mb = 32");
    let response = server.get("/fn/hog/hog?mb=100").await;
    assert_eq!(response.status(), 502);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "function_memory_limit");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("32 MiB"),
        "{error}"
    );
    let fits = server.get("/fn/hog/hog?mb=8").await;
    assert_eq!(fits.status(), 200);
}

#[tokio::test]
async fn a_trap_gives_502_and_the_next_request_succeeds() {
    let server = shared().await;
    let _dir = deploy(server, "panicker", "");
    let response = server.get("/fn/panicker/panic").await;
    assert_eq!(response.status(), 502);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "function_error");
    assert_eq!(
        server.get("/fn/panicker/status?code=201").await.status(),
        201
    );
}

#[tokio::test]
async fn concurrency_over_max_instances_gets_429_with_retry_after() {
    let server = shared().await;
    let _dir = deploy(server, "narrow", "max_instances = 1\ntimeout_ms = 10000");
    let url = format!("{}/fn/narrow/sleep?ms=1500", server.public_url);
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { http().get(url).send().await.unwrap() })
        })
        .collect();
    let mut ok = 0;
    let mut throttled = 0;
    for request in requests {
        let response = request.await.unwrap();
        match response.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert_eq!(response.headers()["retry-after"], "1");
                throttled += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 1, "at least one request runs");
    assert!(
        throttled >= 1,
        "requests beyond the slot and queue are throttled"
    );
}

#[tokio::test]
async fn warm_instances_are_reused_and_reuse_can_be_turned_off() {
    let server = shared().await;
    let _warm = deploy(server, "warm", "");
    let mut counts = Vec::new();
    for _ in 0..3 {
        counts.push(server.get("/fn/warm/count").await.text().await.unwrap());
    }
    assert_eq!(counts, ["1", "2", "3"], "one warm instance keeps its state");

    let _fresh = deploy(server, "fresh", "reuse_instances = false");
    for _ in 0..3 {
        assert_eq!(
            server.get("/fn/fresh/count").await.text().await.unwrap(),
            "1"
        );
    }
}

#[tokio::test]
async fn after_the_idle_ttl_the_next_request_is_a_cold_start() {
    let server = shared().await;
    let _dir = deploy(server, "sleepy", "idle_ttl_s = 1");
    let cold = |response: &reqwest::Response| response.headers()["x-gureum-cold-start"].clone();
    assert_eq!(cold(&server.get("/fn/sleepy/count").await), "1");
    assert_eq!(cold(&server.get("/fn/sleepy/count").await), "0");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let again = server.get("/fn/sleepy/count").await;
    assert_eq!(cold(&again), "1");
    assert_eq!(
        again.text().await.unwrap(),
        "1",
        "a new instance starts from scratch"
    );
}

#[tokio::test]
async fn bodies_stream_both_ways_and_oversized_bodies_get_413() {
    let server = shared().await;
    let _dir = deploy(server, "bodies", "");
    let payload: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let echoed = http()
        .post(format!("{}/fn/bodies/body", server.public_url))
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    assert_eq!(echoed.bytes().await.unwrap().as_ref(), payload.as_slice());

    let too_big = http()
        .post(format!("{}/fn/bodies/body", server.public_url))
        .body(vec![0u8; 7 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    let error: serde_json::Value = too_big.json().await.unwrap();
    assert_eq!(error["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn http2_without_tls_is_served() {
    let server = shared().await;
    let _dir = deploy(server, "h2", "");
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/fn/h2/status?code=200", server.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn control_api_needs_the_token_and_publishes_openapi() {
    let server = shared().await;
    for url in [&server.public_url, &server.admin_url] {
        let health = http().get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }
    let denied = http()
        .get(format!("{}/api/v1/functions", server.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let document = server.client().openapi().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/api/v1/functions"].is_object());
    let metrics = http()
        .get(format!("{}/metrics", server.admin_url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("gureum_invocations_total"), "{metrics}");
}
