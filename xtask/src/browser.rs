//! The real-browser tests' tools (`tests/browser`, run by `tests/e2e/browser.rs`):
//! Debian's Chromium at `/usr/bin/chromium` (installed with apt-get when missing) and
//! `playwright-core` from npm in `tests/browser/node_modules/` (no browser download).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::ci::has_program;
use crate::{Workspace, run};

/// The browser the tests drive (tests/browser/*.mjs launch exactly this one).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The npm project of the browser tests, relative to the workspace root.
const BROWSER_TESTS: &str = "tests/browser";

/// Makes sure Chromium and the tests' npm packages are installed; returns the
/// `node_modules` directory. Without apt-get (for a missing Chromium) or npm this
/// only prints a note, like the Node.js Lambda fixture: the platform does not need
/// them, and `tests/e2e/browser.rs` fails saying what is missing.
pub(crate) fn prepare(ws: &Workspace) -> Result<Vec<PathBuf>> {
    if !Path::new(CHROMIUM).exists() {
        if !has_program("apt-get") {
            eprintln!(
                "note: {CHROMIUM} not found and no apt-get; skipping the browser tests' setup"
            );
            return Ok(Vec::new());
        }
        install_chromium()?;
    }
    if !has_program("node") || !has_program("npm") {
        eprintln!("note: node/npm not found; skipping the browser tests' setup");
        return Ok(Vec::new());
    }
    let dir = ws.root.join(BROWSER_TESTS);
    let node_modules = dir.join("node_modules");
    if needs_install(&dir.join("package.json"), &node_modules) {
        run(Command::new("npm")
            .current_dir(&dir)
            .args(["install", "--no-package-lock", "--no-audit", "--no-fund"])
            .arg("--loglevel=error"))
        .context("installing the browser tests' packages (npm install in tests/browser)")?;
    } else {
        println!("kept  {}", node_modules.display());
    }
    println!("ready browser tests     {} with {CHROMIUM}", dir.display());
    Ok(vec![node_modules])
}

/// Installs Debian's `chromium` package.
fn install_chromium() -> Result<()> {
    eprintln!("{CHROMIUM} is missing (the browser tests drive it); installing it with apt-get");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    if !Path::new(CHROMIUM).exists() {
        bail!("apt-get installed chromium but {CHROMIUM} is still missing");
    }
    Ok(())
}

/// Whether `npm install` is due: `node_modules` is missing or older than `package.json`.
fn needs_install(package_json: &Path, node_modules: &Path) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    // npm rewrites its hidden lockfile on every install.
    match (
        modified(package_json),
        modified(&node_modules.join(".package-lock.json")),
    ) {
        (Some(manifest), Some(installed)) => manifest > installed,
        _ => true,
    }
}
