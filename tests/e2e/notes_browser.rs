//! A real browser on a static-only site backed by gureum's built-in services: the notes
//! page (examples/notes) signs people up (/auth/v1), keeps each one's private notes in the
//! `notes` collection (/data/v1, rules in examples/notes/collection.toml) and shows
//! changes live in every tab (Server-Sent Events). `tests/browser/notes.mjs` drives
//! Debian's `/usr/bin/chromium` with playwright-core; `cargo xtask build-fixtures`
//! installs both. Screenshots of every page go to `$SCREENSHOT_DIR`, by default
//! `target/tmp/notes-browser/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::Server;

/// The browser `notes.mjs` launches.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Bound for the whole browser run (each of its waits is bounded at 15 s).
const TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn private_notes_update_live_in_two_browser_tabs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_tests = root.join("tests/browser");
    for (needed, what) in [
        (Path::new(CHROMIUM).to_path_buf(), "Chromium"),
        (
            browser_tests.join("node_modules/playwright-core"),
            "playwright-core",
        ),
    ] {
        assert!(
            needed.exists(),
            "{} ({what}) is missing: run `cargo xtask build-fixtures`",
            needed.display()
        );
    }

    let server = Server::start();
    let site = root.join("examples/notes");
    let deployed = server.cli(&["deploy", site.to_str().unwrap()]);
    assert!(deployed.success, "deploying examples/notes: {deployed:?}");
    let configured = server.cli(&[
        "collections",
        "set",
        "notes",
        site.join("collection.toml").to_str().unwrap(),
    ]);
    assert!(
        configured.success,
        "gureum collections set notes examples/notes/collection.toml: {configured:?}"
    );

    // The site answers before a browser starts: a clearer failure than a browser timeout.
    let index = server.get("/notes/").await;
    let status = index.status();
    let body = index.text().await.unwrap_or_default();
    assert!(
        status.is_success() && body.contains("gureum notes"),
        "GET /notes/ answered {status}, not the notes page:\n{body}"
    );

    let screenshots = std::env::var_os("SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("notes-browser"));
    let started = Instant::now();
    let run = tokio::process::Command::new("node")
        .arg(browser_tests.join("notes.mjs"))
        .arg(&server.public_url)
        .env("SCREENSHOT_DIR", &screenshots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running node (needed for the browser tests; see `cargo xtask build-fixtures`)");
    let output = tokio::time::timeout(TIMEOUT, run.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tests/browser/notes.mjs did not finish within {TIMEOUT:?}"))
        .expect("waiting for node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/browser/notes.mjs failed ({}) after {:.1?} (screenshots in {}):\n{stdout}{stderr}",
        output.status,
        started.elapsed(),
        screenshots.display()
    );
    println!("{stdout}browser run took {:.1?}", started.elapsed());
}
