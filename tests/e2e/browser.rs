//! A real browser: two people open the chat page (examples/chat) in Chromium and chat.
//! `tests/browser/chat.mjs` drives Debian's `/usr/bin/chromium` with playwright-core;
//! `cargo xtask build-fixtures` installs both.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::Server;

/// The browser `chat.mjs` launches.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Bound for the whole browser run (each of its waits is bounded at 15 s).
const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn two_people_chat_in_two_browser_tabs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_tests = root.join("tests/browser");
    for (needed, what) in [
        (Path::new(CHROMIUM).to_path_buf(), "Chromium"),
        (
            browser_tests.join("node_modules/playwright-core"),
            "playwright-core",
        ),
        (root.join("examples/chat/chat.wasm"), "the chat example"),
    ] {
        assert!(
            needed.exists(),
            "{} ({what}) is missing: run `cargo xtask build-fixtures`",
            needed.display()
        );
    }

    let server = Server::start();
    let deployed = server.cli(&["deploy", root.join("examples/chat").to_str().unwrap()]);
    assert!(deployed.success, "deploying examples/chat: {deployed:?}");

    let started = Instant::now();
    let run = tokio::process::Command::new("node")
        .arg(browser_tests.join("chat.mjs"))
        .arg(&server.public_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running node (needed for the browser tests; see `cargo xtask build-fixtures`)");
    let output = tokio::time::timeout(TIMEOUT, run.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tests/browser/chat.mjs did not finish within {TIMEOUT:?}"))
        .expect("waiting for node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/browser/chat.mjs failed ({}) after {:.1?}:\n{stdout}{stderr}",
        output.status,
        started.elapsed()
    );
    println!("{stdout}browser run took {:.1?}", started.elapsed());
}
