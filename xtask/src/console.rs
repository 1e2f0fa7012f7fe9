//! The web console's assets (`crates/console/web`, a Vite project): `npm ci` when the
//! lockfile changed, `npm run build` into `web/dist/` when a source is newer than the
//! last build. The gureum binary embeds `web/dist/` (crate gureum-console), so this runs
//! before cargo builds it in `cargo xtask up` and `cargo xtask ci`. The built files are
//! not committed: npm's registry is reachable wherever gureum is built from source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context as _, Result};

use crate::ci::has_program;
use crate::{Workspace, run};

/// The console's npm project, relative to the workspace root.
const WEB: &str = "crates/console/web";

/// Builds the console's assets when they are missing or stale; returns `web/dist`.
/// Without node/npm it says so and returns nothing: gureum still builds and its
/// console page then says how to build the assets.
pub(crate) fn build(ws: &Workspace) -> Result<Vec<PathBuf>> {
    if !has_program("node") || !has_program("npm") {
        eprintln!(
            "note: node/npm not found; the console is not built (gureum serves a page saying so). Install Node.js 20.19+ and run `cargo xtask console`"
        );
        return Ok(Vec::new());
    }
    let web = ws.root.join(WEB);
    let node_modules = web.join("node_modules");
    let installed = modified(&node_modules.join(".package-lock.json"));
    if installed.is_none() || installed < modified(&web.join("package-lock.json")) {
        run(Command::new("npm").current_dir(&web).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))
        .context("installing the console's packages (npm ci in crates/console/web)")?;
    }
    let dist = web.join("dist");
    let built = modified(&dist.join("index.html"));
    let newest_source = newest(&web, &[node_modules.as_path(), dist.as_path()]);
    if built.is_none() || built < newest_source {
        run(Command::new("npm")
            .current_dir(&web)
            .args(["run", "build", "--silent"]))
        .context("building the console (npm run build in crates/console/web)")?;
    } else {
        println!("kept  {}", dist.display());
    }
    println!("ready console           {}", dist.display());
    Ok(vec![dist])
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Newest modification time of the files under `dir`, skipping `skip`.
fn newest(dir: &Path, skip: &[&Path]) -> Option<SystemTime> {
    let mut latest = None;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return None;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if skip.contains(&path.as_path()) {
            continue;
        }
        let time = if path.is_dir() {
            newest(&path, skip)
        } else {
            modified(&path)
        };
        latest = latest.max(time);
    }
    latest
}
