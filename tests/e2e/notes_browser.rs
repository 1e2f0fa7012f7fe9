//! A real browser on a static-only site backed by gureum's built-in services: the notes
//! page (examples/notes) signs people up (/auth/v1), keeps each one's private notes in the
//! `notes` collection (/data/v1, rules in examples/notes/collection.toml) and shows
//! changes live in every tab (Server-Sent Events). `tests/browser/notes.mjs` drives
//! Debian's `/usr/bin/chromium` with playwright-core; `cargo xtask build-fixtures`
//! installs both. Screenshots of every page go to `$SCREENSHOT_DIR`, by default
//! `target/tmp/notes-browser/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Server;

/// Bound for the whole browser run (each of its waits is bounded at 15 s).
const TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn private_notes_update_live_in_two_browser_tabs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::browser::check_prerequisites(&[]);

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
    let hint = format!(" (screenshots in {})", screenshots.display());
    crate::browser::run_script(
        "notes.mjs",
        &server.public_url,
        &[("SCREENSHOT_DIR", screenshots.as_path())],
        TIMEOUT,
        &hint,
    )
    .await;
}
