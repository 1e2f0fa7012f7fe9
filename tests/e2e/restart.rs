//! A restart keeps versions, aliases and logs and serves from the compiled-code cache;
//! the same flow runs on PostgreSQL.

use std::time::{Duration, Instant};

use crate::{Server, deploy};

async fn survives_a_restart(store: Option<&str>) {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in(&data_dir, store);
    let _v1 = deploy(&server, "durable", "[env]\nTAG = \"one\"");
    let _v2 = deploy(&server, "durable", "[env]\nTAG = \"two\"");
    assert!(server.cli(&["rollback", "durable"]).success);
    let response = server.get("/fn/durable/log?n=1").await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-gureum-invocation-id"]
        .to_str()
        .unwrap()
        .to_string();
    // SIGTERM flushes the buffered logs before exiting 0.
    assert_eq!(server.stop(), Some(0));

    let server = Server::start_in(&data_dir, store);
    let logs = server.cli(&["logs", "durable", "--invocation", &id]);
    assert!(logs.stdout.contains("stdout line 0"), "{logs:?}");
    let versions = server.cli(&["--json", "versions", "durable"]);
    let listed: serde_json::Value = serde_json::from_str(&versions.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["live"], true, "the rollback survived");
    let echoed: serde_json::Value = server
        .get("/fn/durable/echo?env=TAG")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(echoed["env_value"], "one");

    let metrics = crate::http()
        .get(format!("{}/metrics", server.admin_url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gureum_wasm_compilations_total 0"),
        "a restart must not recompile: {metrics}"
    );
    assert!(
        metrics.contains("gureum_wasm_cache_loads_total 1"),
        "{metrics}"
    );
    assert_eq!(server.stop(), Some(0));
}

#[tokio::test]
async fn a_restart_keeps_versions_aliases_logs_and_compiled_code_on_sqlite() {
    survives_a_restart(None).await;
}

#[tokio::test]
async fn a_restart_keeps_versions_aliases_logs_and_compiled_code_on_postgres() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    survives_a_restart(Some(&url)).await;
    gureum_store::testing::drop_postgres(&url).await;
}

#[tokio::test]
async fn deploy_to_first_200_is_quick() {
    let server = crate::shared().await;
    let started = Instant::now();
    let _dir = deploy(server, "quick", "");
    assert_eq!(server.get("/fn/quick/status?code=200").await.status(), 200);
    // Generous bound for a debug build on a loaded 2-core machine; the benchmark
    // measures the real figure.
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Polls `url` on `server` until the JSON `env_value` equals `expected` (or, for `None`,
/// until the function is gone), within a few registry poll intervals.
async fn wait_for_tag(server: &Server, path: &str, expected: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = server.get(path).await;
        let status = response.status().as_u16();
        let seen = match status {
            200 => response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|json| json["env_value"].as_str().map(str::to_string)),
            _ => None,
        };
        match expected {
            Some(tag) if seen.as_deref() == Some(tag) => return,
            None if status == 404 => return,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "node never saw {expected:?} at {path} (last status {status}, tag {seen:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_nodes_sharing_postgres_follow_each_others_deploys_rollbacks_and_removals() {
    let url = gureum_store::testing::fresh_postgres_url().await;
    let temp = tempfile::tempdir().unwrap();
    let node_a = Server::start_in(&temp.path().join("a"), Some(&url));
    let node_b = Server::start_in(&temp.path().join("b"), Some(&url));
    let path = "/fn/multi/echo?env=TAG";

    let _v1 = deploy(&node_a, "multi", "[env]\nTAG = \"one\"");
    wait_for_tag(&node_b, path, Some("one")).await;
    let _v2 = deploy(&node_b, "multi", "[env]\nTAG = \"two\"");
    wait_for_tag(&node_a, path, Some("two")).await;
    assert!(node_a.cli(&["rollback", "multi"]).success);
    wait_for_tag(&node_b, path, Some("one")).await;
    assert!(node_b.cli(&["rm", "multi"]).success);
    wait_for_tag(&node_a, path, None).await;

    assert_eq!(node_a.stop(), Some(0));
    assert_eq!(node_b.stop(), Some(0));
    gureum_store::testing::drop_postgres(&url).await;
}
