//! The `runtime = "lambda"` part of `cargo xtask build-fixtures`: guest
//! functions written with the unmodified official AWS Lambda clients, packaged
//! the way Lambda users package them.
//!
//! * Rust (`lambda_http`): host binaries, copied as `bootstrap` (the file
//!   Lambda's custom runtimes run) to `examples/hello-lambda-rust/` and
//!   `TARGET/fixtures/{lambda-testbed,lambda-stream}/`.
//! * Python (`awslambdaric`): the `.py` sources plus the runtime interface
//!   client vendored with `python3 -m pip install --target DIR`, in
//!   `examples/hello-lambda-python/build/`, `examples/chat-python/build/`
//!   (with boto3 too, and the chat page from `examples/chat`) and
//!   `TARGET/fixtures/lambda-python/`.
//! * Node.js (npm `aws-lambda-ric`, which compiles a native addon and needs
//!   cmake): `index.js`, `package.json` and `node_modules/` in
//!   `TARGET/fixtures/lambda-node/`; skipped with a note when npm is missing; a
//!   missing cmake is installed with apt-get.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::ci::has_program;
use crate::{Workspace, run};

/// Rust Lambda packages: (cargo package = binary name, destination directory
/// relative to the workspace root; `None` = `TARGET/fixtures/PACKAGE/`).
pub(crate) const RUST_LAMBDAS: &[(&str, Option<&str>)] = &[
    ("hello-lambda-rust", Some("examples/hello-lambda-rust")),
    ("lambda-testbed", None),
    ("lambda-stream", None),
];

/// The PyPI `awslambdaric` version vendored into the Python functions (tested
/// with CPython 3.11, where it installs as a manylinux wheel).
const AWSLAMBDARIC_VERSION: &str = "4.2.2";

/// The PyPI `boto3` version vendored into the functions that call the
/// platform API the AWS way (tested with CPython 3.11; pure Python).
const BOTO3_VERSION: &str = "1.44.8";

/// A Python Lambda function to package.
struct PythonLambda {
    /// Its source directory, relative to the workspace root; every `.py` file
    /// in it is copied.
    src: &'static str,
    /// The package directory, relative to the workspace root; `None` =
    /// `TARGET/fixtures/lambda-python/`.
    dest: Option<&'static str>,
    /// Other files to copy in (relative to the workspace root, each landing
    /// under its file name), e.g. a page shared with another example: the
    /// package must be self-contained.
    files: &'static [&'static str],
    /// PyPI packages vendored besides `awslambdaric`: (name, pinned version).
    packages: &'static [(&'static str, &'static str)],
}

/// Python Lambda functions.
const PYTHON_LAMBDAS: &[PythonLambda] = &[
    PythonLambda {
        src: "examples/hello-lambda-python",
        dest: Some("examples/hello-lambda-python/build"),
        files: &[],
        packages: &[],
    },
    PythonLambda {
        src: "examples/chat-python",
        dest: Some("examples/chat-python/build"),
        files: &["examples/chat/index.html"],
        packages: &[("boto3", BOTO3_VERSION)],
    },
    PythonLambda {
        src: "tests/functions/lambda-python",
        dest: None,
        files: &[],
        packages: &[],
    },
];

/// The Node.js Lambda function's sources (relative to the workspace root).
const NODE_LAMBDA: &str = "tests/functions/lambda-node";

/// Builds and packages every Lambda guest; returns the paths written.
pub(crate) fn build(ws: &Workspace) -> Result<Vec<PathBuf>> {
    let mut written = build_rust(ws)?;
    written.extend(build_python(ws)?);
    Ok(written)
}

/// `cargo build` (debug, host target) and copy each binary to `DIR/bootstrap`.
fn build_rust(ws: &Workspace) -> Result<Vec<PathBuf>> {
    let mut build = ws.cargo();
    build.arg("build");
    for (package, _) in RUST_LAMBDAS {
        build.args(["-p", package]);
    }
    run(&mut build)?;

    let built = ws.target_dir.join("debug");
    let mut written = Vec::new();
    for (package, dest) in RUST_LAMBDAS {
        let dir = match dest {
            Some(dir) => ws.root.join(dir),
            None => ws.fixtures_dir().join(package),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let to = dir.join("bootstrap");
        install_executable(&built.join(package), &to)?;
        let size = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
        println!(
            "built {package:<17} {} ({} KiB)",
            to.display(),
            size.div_ceil(1024)
        );
        written.push(to);
    }
    Ok(written)
}

/// Copies `from` to `to` with mode 0755, replacing `to` by a rename so a
/// process still running the old file is not disturbed.
fn install_executable(from: &Path, to: &Path) -> Result<()> {
    let partial = to.with_extension("partial");
    std::fs::copy(from, &partial)
        .with_context(|| format!("copying {} to {}", from.display(), partial.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", partial.display()))?;
    }
    std::fs::rename(&partial, to)
        .with_context(|| format!("renaming {} to {}", partial.display(), to.display()))
}

/// Copies the `.py` sources (and any extra files) and vendors `awslambdaric`
/// (and any other pinned packages) next to them.
fn build_python(ws: &Workspace) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut ext_suffix = None;
    for lambda in PYTHON_LAMBDAS {
        let src = ws.root.join(lambda.src);
        let dir = match lambda.dest {
            Some(dir) => ws.root.join(dir),
            None => ws.fixtures_dir().join("lambda-python"),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for entry in
            std::fs::read_dir(&src).with_context(|| format!("listing {}", src.display()))?
        {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "py") {
                let to = dir.join(path.file_name().context("a file name")?);
                std::fs::copy(&path, &to)
                    .with_context(|| format!("copying {} to {}", path.display(), to.display()))?;
            }
        }
        for file in lambda.files {
            let from = ws.root.join(file);
            let to = dir.join(from.file_name().context("a file name")?);
            std::fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
        // The native part must match the interpreter the function command runs.
        let suffix = match &ext_suffix {
            Some(suffix) => suffix,
            None => ext_suffix.insert(python_ext_suffix()?),
        };
        let packages: Vec<(&str, &str)> = std::iter::once(("awslambdaric", AWSLAMBDARIC_VERSION))
            .chain(lambda.packages.iter().copied())
            .collect();
        let pinned = packages
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect::<Vec<_>>()
            .join(", ");
        let native = dir.join(format!("runtime_client{suffix}"));
        let installed = packages
            .iter()
            .all(|(name, version)| dir.join(format!("{name}-{version}.dist-info")).is_dir());
        if installed && native.is_file() {
            println!("kept  {pinned} in {}", dir.display());
        } else {
            // One pip run for all of them, so it resolves their shared
            // dependencies together.
            let mut pip = Command::new("python3");
            pip.args(["-m", "pip", "install", "--upgrade", "--target"])
                .arg(&dir)
                .args(
                    packages
                        .iter()
                        .map(|(name, version)| format!("{name}=={version}")),
                )
                .args(["--disable-pip-version-check", "--no-warn-script-location"])
                // pip compares the new packages with the interpreter's own
                // site-packages (e.g. a system awscli pinning another
                // botocore), not with DIR, and prints a false "ERROR".
                .arg("--no-warn-conflicts")
                .env("PIP_ROOT_USER_ACTION", "ignore");
            run(&mut pip)
                .with_context(|| format!("vendoring {pinned} (python3 -m pip install --target)"))?;
        }
        println!("built python lambda     {}", dir.display());
        written.push(dir);
    }
    Ok(written)
}

/// The file name suffix of the `python3` on PATH's extension modules, e.g.
/// `.cpython-311-x86_64-linux-gnu.so`.
fn python_ext_suffix() -> Result<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))",
        ])
        .output()
        .context("running python3 (needed for the Python Lambda functions)")?;
    if !out.status.success() {
        bail!(
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Copies the Node function and runs `npm install` in its fixture directory
/// unless the pinned `aws-lambda-ric` is already there.
/// The Node.js Lambda fixture (npm, and cmake for `aws-lambda-ric`'s native part): only
/// the test suite runs it, so `cargo xtask up` does not build it.
pub(crate) fn build_node(ws: &Workspace) -> Result<Vec<PathBuf>> {
    let src = ws.root.join(NODE_LAMBDA);
    let dir = ws.fixtures_dir().join("lambda-node");
    if !has_program("node") || !has_program("npm") {
        eprintln!("note: node/npm not found; skipping the Node.js Lambda fixture");
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for file in ["index.js", "package.json"] {
        let (from, to) = (src.join(file), dir.join(file));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    let wanted = pinned_ric_version(&src.join("package.json"))?;
    let ric = dir.join("node_modules").join("aws-lambda-ric");
    let installed = package_version(&ric.join("package.json")).ok();
    if installed.as_deref() == Some(wanted.as_str()) && ric.join("rapid-client.node").is_file() {
        println!("kept  aws-lambda-ric {wanted} in {}", dir.display());
    } else {
        // aws-lambda-ric builds curl and aws-lambda-cpp from source with cmake.
        if !has_program("cmake") {
            if has_program("apt-get") {
                eprintln!("cmake is missing (aws-lambda-ric needs it); installing it with apt-get");
                run(Command::new("apt-get").arg("update"))?;
                run(Command::new("apt-get")
                    .args(["install", "-y", "--no-install-recommends", "cmake"])
                    .env("DEBIAN_FRONTEND", "noninteractive"))?;
            } else {
                eprintln!(
                    "note: cmake not found (aws-lambda-ric compiles a native addon with it); skipping the Node.js Lambda fixture"
                );
                return Ok(Vec::new());
            }
        }
        run(Command::new("npm")
            .current_dir(&dir)
            .args(["install", "--omit=dev", "--no-package-lock"])
            .args(["--no-audit", "--no-fund", "--loglevel=error"]))
        .context("installing aws-lambda-ric (npm install)")?;
    }
    println!("built node lambda       {}", dir.display());
    Ok(vec![dir])
}

/// The exact `aws-lambda-ric` version a package.json depends on.
fn pinned_ric_version(package_json: &Path) -> Result<String> {
    let manifest = read_json(package_json)?;
    manifest["dependencies"]["aws-lambda-ric"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "{} does not depend on aws-lambda-ric",
                package_json.display()
            )
        })
}

/// The `version` of a package.json.
fn package_version(package_json: &Path) -> Result<String> {
    read_json(package_json)?["version"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{} has no version", package_json.display()))
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
