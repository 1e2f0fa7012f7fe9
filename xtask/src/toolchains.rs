//! The build tools of the templates whose toolchain is not Rust, installed under
//! `TARGET/tools/` so the end-to-end tests can run their `[build] command`:
//!
//! * `python-wasm`: PyPI's `componentize-py`, vendored with
//!   `python3 -m pip install --target TARGET/tools/python` (no virtualenv, and no clash
//!   with an "externally managed" Debian Python), run through the wrapper
//!   `TARGET/tools/bin/componentize-py`, so nothing but `PATH` is needed.
//! * `js-wasm`: npm's `@bytecodealliance/jco` and `@bytecodealliance/componentize-js`,
//!   with exactly the versions and `overrides` of the template's `package.json`, in
//!   `TARGET/tools/node/node_modules/`. The template's build runs `npm install` in a
//!   project without `node_modules`; a test can instead link the project's `node_modules`
//!   to `TARGET/tools/node/node_modules` (same packages) and skip that install.
//!
//! Each install is recorded in a marker file written after it succeeded; a later call with
//! the same pins only checks the markers (milliseconds). Without pip, or without
//! node/npm, the template is left out with a note, like the Node.js Lambda fixture.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::ci::has_program;
use crate::{Workspace, run};

/// The PyPI `componentize-py` version (a CPython >= 3.9 abi3 wheel with the compiler in a
/// native extension; its output imports WASI 0.2.9/0.2.10). `python-wasm/README.md` tells
/// users to install the same one.
pub(crate) const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The `js-wasm` template, whose `package.json` pins the npm tools.
const JS_TEMPLATE: &str = "crates/templates/templates/js-wasm";

/// Installs (or finds already installed) the tools of the `python-wasm` and `js-wasm`
/// templates under `TARGET/tools/`; returns the directories holding their commands.
pub(crate) fn prepare(ws: &Workspace) -> Result<Vec<PathBuf>> {
    let tools = ws.target_dir.join("tools");
    let mut path_dirs = Vec::new();
    if let Some(bin) = prepare_python(&tools)? {
        path_dirs.push(bin);
    }
    if let Some(node_modules) = prepare_node(ws, &tools)? {
        path_dirs.push(node_modules.join(".bin"));
    }
    Ok(path_dirs)
}

/// Vendors `componentize-py` into `TOOLS/python` and writes `TOOLS/bin/componentize-py`;
/// returns `TOOLS/bin`, or `None` (with a note) when python3 has no pip.
fn prepare_python(tools: &Path) -> Result<Option<PathBuf>> {
    let dir = tools.join("python");
    let bin = tools.join("bin");
    let wrapper = bin.join("componentize-py");
    let pinned = format!("componentize-py=={COMPONENTIZE_PY_VERSION}");
    let marker = dir.join(".gureum-installed");

    if read(&marker).as_deref() == Some(pinned.as_str()) && wrapper.is_file() {
        println!("kept  {pinned} in {}", dir.display());
        return Ok(Some(bin));
    }
    if !has_program("python3") || !python_has_pip() {
        eprintln!(
            "note: python3 with pip not found (apt-get install python3-pip); \
             skipping the python-wasm template's tools"
        );
        return Ok(None);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    run(Command::new("python3")
        .args(["-m", "pip", "install", "--target"])
        .arg(&dir)
        .arg(&pinned)
        .args(["--disable-pip-version-check", "--no-warn-script-location"])
        .args(["--no-warn-conflicts", "--quiet"])
        .env("PIP_ROOT_USER_ACTION", "ignore"))
    .with_context(|| format!("installing {pinned} (python3 -m pip install --target)"))?;

    // The console script pip wrote into DIR/bin only works with DIR on PYTHONPATH; this
    // wrapper sets it, so callers need nothing but PATH.
    let python = python_executable()?;
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let script = format!(
        "#!/bin/sh\n\
         # {pinned}, vendored in {dir} by `cargo xtask` (xtask/src/toolchains.rs).\n\
         PYTHONPATH='{dir}'${{PYTHONPATH:+:$PYTHONPATH}} exec '{python}' -c \
         'import sys; from componentize_py import script; sys.argv[0] = \"componentize-py\"; sys.exit(script())' \"$@\"\n",
        dir = dir.display(),
        python = python.display(),
    );
    write_executable(&wrapper, &script)?;
    let version = Command::new(&wrapper)
        .arg("--version")
        .output()
        .with_context(|| format!("running {}", wrapper.display()))?;
    let shown = String::from_utf8_lossy(&version.stdout);
    if !version.status.success() || !shown.contains(COMPONENTIZE_PY_VERSION) {
        bail!(
            "{} --version printed {:?} ({}), expected {COMPONENTIZE_PY_VERSION}: {}",
            wrapper.display(),
            shown.trim(),
            version.status,
            String::from_utf8_lossy(&version.stderr).trim()
        );
    }
    write(&marker, &pinned)?;
    println!("ready {pinned} in {}", dir.display());
    Ok(Some(bin))
}

/// Installs the js-wasm template's pinned npm tools into `TOOLS/node`; returns its
/// `node_modules`, or `None` (with a note) without node/npm.
fn prepare_node(ws: &Workspace, tools: &Path) -> Result<Option<PathBuf>> {
    let dir = tools.join("node");
    let node_modules = dir.join("node_modules");
    let package_json = tools_package_json(&ws.root.join(JS_TEMPLATE).join("package.json"))?;
    let marker = dir.join(".gureum-installed");

    if read(&marker).as_deref() == Some(package_json.as_str())
        && node_modules.join(".bin").join("jco").exists()
    {
        println!(
            "kept  jco and componentize-js in {}",
            node_modules.display()
        );
        return Ok(Some(node_modules));
    }
    if !has_program("node") || !has_program("npm") {
        eprintln!("note: node/npm not found; skipping the js-wasm template's tools");
        return Ok(None);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::remove_file(&marker);
    write(&dir.join("package.json"), &package_json)?;
    run(Command::new("npm")
        .current_dir(&dir)
        .args(["install", "--no-package-lock", "--no-audit", "--no-fund"])
        .arg("--loglevel=error"))
    .context("installing jco and componentize-js (npm install in TARGET/tools/node)")?;
    if !node_modules.join(".bin").join("jco").exists() {
        bail!(
            "npm install in {} finished without node_modules/.bin/jco",
            dir.display()
        );
    }
    write(&marker, &package_json)?;
    println!(
        "ready jco and componentize-js in {}",
        node_modules.display()
    );
    Ok(Some(node_modules))
}

/// The `package.json` of the tools directory: the template's `devDependencies` (as
/// dependencies) and `overrides`, so both install the same packages.
fn tools_package_json(template: &Path) -> Result<String> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", template.display()))?;
    let dependencies = manifest
        .get("devDependencies")
        .filter(|deps| deps.get("@bytecodealliance/jco").is_some())
        .with_context(|| {
            format!(
                "{} has no devDependencies with @bytecodealliance/jco",
                template.display()
            )
        })?;
    let tools = serde_json::json!({
        "name": "gureum-template-tools",
        "private": true,
        "description": "The js-wasm template's build tools, installed by cargo xtask",
        "dependencies": dependencies,
        "overrides": manifest.get("overrides").cloned().unwrap_or_else(|| serde_json::json!({})),
    });
    Ok(serde_json::to_string_pretty(&tools)? + "\n")
}

/// Whether `python3 -m pip` works.
fn python_has_pip() -> bool {
    Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// The absolute path of the `python3` on PATH (what pip installed for).
fn python_executable() -> Result<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .context("running python3")?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || path.is_empty() {
        bail!("python3 did not tell its executable ({})", out.status);
    }
    Ok(PathBuf::from(path))
}

/// A file's text, `None` when it cannot be read.
fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn template(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("crates/templates/templates")
            .join(path)
    }

    #[test]
    fn python_template_readme_pins_the_same_componentize_py() {
        let readme = std::fs::read_to_string(template("python-wasm/README.md")).unwrap();
        assert!(
            readme.contains(&format!("componentize-py=={COMPONENTIZE_PY_VERSION}")),
            "python-wasm/README.md should tell users to install componentize-py=={COMPONENTIZE_PY_VERSION}"
        );
    }

    #[test]
    fn tools_package_json_takes_the_template_pins() {
        let text = tools_package_json(&template("js-wasm/package.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(json["dependencies"]["@bytecodealliance/jco"].is_string());
        assert!(json["dependencies"]["@bytecodealliance/componentize-js"].is_string());
        assert!(json["overrides"]["@bytecodealliance/preview2-shim"].is_string());
        assert!(!text.contains("{{name}}"));
    }
}
