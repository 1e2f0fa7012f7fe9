//! The web console in a real browser against a real `gureum up`: sign in with the admin
//! token, functions deployed with the CLI appear, test-invoke, rollback and promote from
//! the UI change what `/fn/NAME/` serves, the live log tail shows a new invocation and
//! links to it, charts get data points, every page renders at desktop and phone width,
//! keyboard navigation, sign-out, and no error in the page console.
//! `tests/browser/console.mjs` drives Debian's `/usr/bin/chromium` with playwright-core.
//! Screenshots of the main pages go to `$SCREENSHOT_DIR`, by default
//! `target/tmp/console-browser/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Server, function_dir, function_dir_with};

/// Bound for the whole browser run (each of its waits is bounded at 15 s).
const TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test]
async fn the_console_manages_and_watches_functions_in_a_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let greet = root.join("examples/greet/greet.wasm");
    crate::browser::check_prerequisites(&[(greet.clone(), "examples/greet/greet.wasm")]);

    let server = Server::start();
    let index = crate::http()
        .get(format!("{}/", server.admin_url))
        .send()
        .await
        .expect("GET / on the admin listener");
    assert_eq!(
        index.status(),
        200,
        "the admin listener does not serve the console (503: its assets were not built; run `cargo xtask console` and rebuild)"
    );

    let v1 = function_dir_with("greeter", "[env]\nGREETING = \"version one\"", &greet);
    let v2 = function_dir_with("greeter", "[env]\nGREETING = \"version two\"", &greet);
    let testbed = function_dir("testbed", "");

    let screenshots = std::env::var_os("SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-browser"));
    let hint = format!(" (screenshots in {})", screenshots.display());
    let public_url = PathBuf::from(&server.public_url);
    let token = PathBuf::from(&server.token);
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_gureum"));
    crate::browser::run_script(
        "console.mjs",
        &server.admin_url,
        &[
            ("PUBLIC_URL", public_url.as_path()),
            ("ADMIN_TOKEN", token.as_path()),
            ("GUREUM_BIN", binary.as_path()),
            ("GREETER_V1", v1.path()),
            ("GREETER_V2", v2.path()),
            ("TESTBED_DIR", testbed.path()),
            ("SCREENSHOT_DIR", screenshots.as_path()),
        ],
        TIMEOUT,
        &hint,
    )
    .await;

    // What the browser did is real: the rollback and promote went through the API.
    let versions = server.client().versions("greeter").await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(
        versions[1].live,
        "the run ends with version 2 promoted back"
    );
    let served = server.get("/fn/greeter/").await.text().await.unwrap();
    assert_eq!(served, "version two, world!");
}
