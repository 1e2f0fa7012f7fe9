//! Bad manifests and bad artifacts are refused with clear errors; the old version keeps
//! serving; route conflicts between functions are refused.

use crate::{deploy, fixture, function_dir, function_dir_with, shared};

#[tokio::test]
async fn bad_manifests_are_refused_naming_the_field_and_the_old_version_serves() {
    let server = shared().await;
    let _good = deploy(server, "guarded", "");
    let cases = [
        ("memroy_mb = 64", "memroy_mb"),
        ("memory_mb = \"lots\"", "memory_mb"),
        ("timeout_ms = 0", "timeout_ms"),
        ("routes = [\"fn/x\"]", "routes[0]"),
        ("max_instances = -1", "max_instances"),
    ];
    for (extra, field) in cases {
        let dir = function_dir("guarded", extra);
        let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
        assert!(!output.success, "{extra} was accepted");
        assert!(output.stderr.contains(field), "{extra}: {output:?}");
    }
    // A bad name and a missing artifact.
    let dir = function_dir("Bad_Name", "");
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(
        !output.success && output.stderr.contains("name"),
        "{output:?}"
    );
    let dir = function_dir("guarded", "");
    std::fs::remove_file(dir.path().join("fn.wasm")).unwrap();
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(
        !output.success && output.stderr.contains("fn.wasm"),
        "{output:?}"
    );

    // The server validates too (a client that skips local checks).
    let refused = server
        .client()
        .deploy(
            "name = \"guarded\"\nartifact = \"x.wasm\"\nbogus = 1\n".into(),
            vec![],
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("bogus"), "{refused}");

    let still = server.get("/fn/guarded/status?code=200").await;
    assert_eq!(still.status(), 200);
    assert_eq!(still.headers()["x-gureum-version"], "1");
}

#[tokio::test]
async fn bad_artifacts_get_a_clear_400_and_never_a_panic() {
    let server = shared().await;
    let _good = deploy(server, "artifacts", "");
    let manifest = "name = \"artifacts\"\nartifact = \"fn.wasm\"\n".to_string();
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let random: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 256) as u8).collect();
    let not_handler = std::fs::read(fixture("not-handler")).unwrap();
    let cases = [
        (core_module, "core WebAssembly module"),
        (random, "not a WebAssembly file"),
        (not_handler, "does not export wasi:http/incoming-handler"),
        (b"\0asm\x0d\0\x01\0garbage".to_vec(), "invalid"),
    ];
    for (bytes, expected) in cases {
        let error = server
            .client()
            .deploy(manifest.clone(), bytes)
            .await
            .unwrap_err();
        match &error {
            gureum_client::ClientError::Api { status, code, .. } => {
                assert_eq!(*status, 400, "{error}");
                assert_eq!(code, "invalid_artifact");
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(error.to_string().contains(expected), "{error}");
    }
    // Through the CLI as well.
    let dir = function_dir_with("artifacts", "", &fixture("not-handler"));
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(!output.success);
    assert!(output.stderr.contains("incoming-handler"), "{output:?}");

    let still = server.get("/fn/artifacts/status?code=200").await;
    assert_eq!(still.status(), 200);
    assert_eq!(still.headers()["x-gureum-version"], "1");
}

#[tokio::test]
async fn a_route_owned_by_another_function_is_refused() {
    let server = shared().await;
    let _owner = deploy(server, "route-owner", "routes = [\"/owned\", \"/owned/*\"]");
    let dir = function_dir("route-thief", "routes = [\"/owned/*\"]");
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(!output.success);
    assert!(output.stderr.contains("route-owner"), "{output:?}");
    assert_eq!(
        server.get("/owned").await.status(),
        404,
        "testbed: no such route"
    );
    let via_route = server.get("/owned/echo").await;
    assert_eq!(via_route.status(), 200);
}
