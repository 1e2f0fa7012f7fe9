//! A real browser: two people open the chat page (examples/chat) in Chromium and chat.
//! `tests/browser/chat.mjs` drives Debian's `/usr/bin/chromium` with playwright-core;
//! `cargo xtask build-fixtures` installs both.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::Server;

/// The browser `chat.mjs` launches.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Bound for the whole browser run (each of its waits is bounded at 15 s).
const TIMEOUT: Duration = Duration::from_secs(120);

/// Asserts that Chromium, playwright-core and `extra` are installed.
pub(crate) fn check_prerequisites(extra: &[(PathBuf, &str)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut needed = vec![
        (Path::new(CHROMIUM).to_path_buf(), "Chromium"),
        (
            root.join("tests/browser/node_modules/playwright-core"),
            "playwright-core",
        ),
    ];
    needed.extend(extra.iter().cloned());
    for (path, what) in needed {
        assert!(
            path.exists(),
            "{} ({what}) is missing: run `cargo xtask build-fixtures`",
            path.display()
        );
    }
}

/// Runs `tests/browser/SCRIPT BASE_URL` with `env` (bounded by `timeout`), asserts it
/// succeeded (its output and `hint` in the failure) and returns its stdout.
pub(crate) async fn run_script(
    script: &str,
    base_url: &str,
    env: &[(&str, &Path)],
    timeout: Duration,
    hint: &str,
) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .arg(base_url)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running node (needed for the browser tests; see `cargo xtask build-fixtures`)");
    let output = tokio::time::timeout(timeout, run.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tests/browser/{script} did not finish within {timeout:?}"))
        .expect("waiting for node");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/browser/{script} failed ({}) after {:.1?}{hint}:\n{stdout}{stderr}",
        output.status,
        started.elapsed()
    );
    println!("{stdout}browser run took {:.1?}", started.elapsed());
    stdout
}

#[tokio::test]
async fn two_people_chat_in_two_browser_tabs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    check_prerequisites(&[(root.join("examples/chat/chat.wasm"), "the chat example")]);

    let server = Server::start();
    let deployed = server.cli(&["deploy", root.join("examples/chat").to_str().unwrap()]);
    assert!(deployed.success, "deploying examples/chat: {deployed:?}");

    run_script("chat.mjs", &server.public_url, &[], TIMEOUT, "").await;
}
