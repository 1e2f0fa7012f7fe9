//! `cargo xtask`: project automation for gureum (alias in `.cargo/config.toml`).
//!
//! Commands:
//! * `build-fixtures` — builds the guest functions and puts them where the
//!   examples and the end-to-end tests expect them:
//!   - wasm (`wasm32-wasip2` components): `examples/hello/hello.wasm`,
//!     `examples/greet/greet.wasm`, `examples/chat/chat.wasm`, `target/fixtures/testbed.wasm`,
//!     `target/fixtures/not-handler.wasm`;
//!   - Lambda (official AWS clients, see `lambda.rs`): Rust binaries as
//!     `examples/hello-lambda-rust/bootstrap`,
//!     `target/fixtures/lambda-testbed/bootstrap`,
//!     `target/fixtures/lambda-stream/bootstrap`; Python code directories with
//!     `awslambdaric` vendored, `examples/hello-lambda-python/build/`,
//!     `examples/chat-python/build/` (also boto3 and the chat page) and
//!     `target/fixtures/lambda-python/`; Node.js with `aws-lambda-ric` in
//!     `target/fixtures/lambda-node/` (skipped without npm);
//!   - the tools of the python-wasm and js-wasm templates (see `toolchains.rs`):
//!     `componentize-py`, `jco` and `componentize-js` under `TARGET_DIR/tools/`;
//!   - the real-browser tests (see `browser.rs`): Debian's `/usr/bin/chromium`
//!     (apt-get install when missing) and `tests/browser/node_modules/`.
//! * `console` — the web console's assets (`crates/console/web` → `web/dist/`, embedded
//!   by the binary; see `console.rs`), built when stale. `up` and `ci` run it first.
//! * `ci` — everything CI checks: PostgreSQL ready, fmt, clippy, fixtures, all tests,
//!   then each phase's time.
//! * `test [--quick]` — the tests alone; `--quick` runs unit tests, the store suite on
//!   SQLite and the in-process platform tests (the inner loop, no e2e).
//! * `up` — builds the release binary and the examples (not the browser tools) and
//!   runs `gureum up`.

mod bench;
mod browser;
mod ci;
mod console;
mod lambda;
mod tidy;
mod toolchains;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use clap::{Parser, Subcommand};

/// The guest target: WASI 0.2 components.
pub(crate) const WASM_TARGET: &str = "wasm32-wasip2";

/// Guest packages: (cargo package = wasm file stem, destination relative to
/// the workspace root; `None` = the fixtures directory under the target dir).
const GUESTS: &[(&str, Option<&str>)] = &[
    ("hello", Some("examples/hello")),
    ("greet", Some("examples/greet")),
    ("chat", Some("examples/chat")),
    ("testbed", None),
    ("not-handler", None),
    ("sdk-testbed", None),
];

/// gureum project automation.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// The available commands.
#[derive(Subcommand)]
enum Cmd {
    /// Build the guest functions (wasm32-wasip2 components and Lambda
    /// functions) and put them in examples/ and TARGET_DIR/fixtures/.
    BuildFixtures,
    /// Benchmark gureum against wasmtime serve and bare hyper; prints a table of
    /// medians and ratios and writes BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Run everything CI checks (what `.ci/run` calls): PostgreSQL, fmt, clippy,
    /// fixtures, unit and end-to-end tests on SQLite and PostgreSQL.
    Ci,
    /// Run the tests without fmt and clippy: everything CI runs, or with --quick the
    /// inner loop (unit tests, the store suite on SQLite, the in-process platform tests).
    Test {
        /// Only the fast layers: no end-to-end tests, no PostgreSQL.
        #[arg(long)]
        quick: bool,
    },
    /// Build the web console's assets (npm ci + vite build in crates/console/web) when
    /// they are missing or older than their sources.
    Console,
    /// Build the release binary and the examples, then run `gureum up` with the
    /// examples deployed (extra arguments are passed to `gureum up`).
    Up {
        /// Arguments for `gureum up`, e.g. `-- --listen 0.0.0.0:8080`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let ws = Workspace::locate()?;
    match cli.command {
        Cmd::BuildFixtures => build_fixtures(&ws).map(|_| ()),
        Cmd::Ci => ci::ci(&ws),
        Cmd::Test { quick } => ci::test(&ws, quick),
        Cmd::Console => console::build(&ws).map(|_| ()),
        Cmd::Bench(args) => bench::bench(&ws, &args),
        Cmd::Up { args } => ci::up(&ws, &args),
    }
}

/// Where things are.
pub(crate) struct Workspace {
    /// The workspace root (the parent of xtask's manifest directory).
    pub(crate) root: PathBuf,
    /// Cargo's target directory: `$CARGO_TARGET_DIR` or `ROOT/target`.
    pub(crate) target_dir: PathBuf,
}

impl Workspace {
    fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask's manifest dir has no parent")?
            .to_path_buf();
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
            // Cargo resolves a relative CARGO_TARGET_DIR against the current
            // directory; make it absolute before running cargo elsewhere.
            Some(dir) => {
                std::path::absolute(PathBuf::from(dir)).context("resolving CARGO_TARGET_DIR")?
            }
            None => root.join("target"),
        };
        Ok(Self { root, target_dir })
    }

    /// The directory for test fixtures.
    fn fixtures_dir(&self) -> PathBuf {
        self.target_dir.join("fixtures")
    }

    /// A `cargo` command run from the workspace root, on the same toolchain
    /// as the one running xtask.
    pub(crate) fn cargo(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target_dir);
        cmd
    }
}

/// `cargo xtask build-fixtures`; returns the paths written.
pub(crate) fn build_fixtures(ws: &Workspace) -> Result<Vec<PathBuf>> {
    let mut written = build_functions(ws)?;
    written.extend(lambda::build_node(ws)?);
    written.extend(browser::prepare(ws)?);
    // The python-wasm and js-wasm templates' tools, for the e2e tests of `gureum new`.
    written.extend(toolchains::prepare(ws)?);
    Ok(written)
}

/// Every guest function (wasm and lambda) but the Node.js test fixture, without the
/// browser tests' tools: what `cargo xtask up` needs.
pub(crate) fn build_functions(ws: &Workspace) -> Result<Vec<PathBuf>> {
    let mut written = build_wasm_guests(ws)?;
    written.extend(lambda::build(ws)?);
    Ok(written)
}

/// The wasm guests: components copied to `examples/*/NAME.wasm` and the
/// fixtures directory.
pub(crate) fn build_wasm_guests(ws: &Workspace) -> Result<Vec<PathBuf>> {
    let mut build = wasm_guest_build(ws)?;
    for (package, _) in GUESTS {
        build.args(["-p", package]);
    }
    run(&mut build)?;

    let built = ws.target_dir.join(WASM_TARGET).join("release");
    let fixtures = ws.fixtures_dir();
    std::fs::create_dir_all(&fixtures)
        .with_context(|| format!("creating {}", fixtures.display()))?;
    let mut written = Vec::new();
    for (package, dest) in GUESTS {
        let file = format!("{package}.wasm");
        let from = built.join(&file);
        let to = match dest {
            Some(dir) => ws.root.join(dir).join(&file),
            None => fixtures.join(&file),
        };
        check_component(&from)?;
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        let size = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
        println!(
            "built {package:<12} {} ({} KiB)",
            to.display(),
            size.div_ceil(1024)
        );
        written.push(to);
    }
    Ok(written)
}

/// `cargo build --release --target wasm32-wasip2` for guest packages (add `-p NAME`),
/// after making sure the target is installed. The component lands in
/// `TARGET_DIR/wasm32-wasip2/release/NAME.wasm`.
pub(crate) fn wasm_guest_build(ws: &Workspace) -> Result<Command> {
    ensure_wasm_target()?;
    let mut build = ws.cargo();
    build.args(["build", "--release", "--target", WASM_TARGET]);
    // The workspace release profile keeps line tables for the host binary;
    // in a component they (and std's debug info) make it ~10x bigger. Drop
    // them for the guests only, keeping the name section so traps still show
    // function names. An explicit setting in the environment wins.
    for (var, value) in [
        ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
        ("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"),
    ] {
        if std::env::var_os(var).is_none() {
            build.env(var, value);
        }
    }
    Ok(build)
}

/// Installs the wasm32-wasip2 target through rustup when it is missing.
pub(crate) fn ensure_wasm_target() -> Result<()> {
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match listed {
        Ok(out) if out.status.success() => {
            let installed = String::from_utf8_lossy(&out.stdout);
            if !installed.lines().any(|l| l.trim() == WASM_TARGET) {
                run(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
            }
        }
        // No rustup (e.g. a distro toolchain): let cargo report a missing target.
        _ => eprintln!(
            "note: could not ask rustup for installed targets; assuming {WASM_TARGET} is present"
        ),
    }
    Ok(())
}

/// Fails unless `path` is a WebAssembly component (not a core module).
fn check_component(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.len() >= 8 && bytes[..4] == *b"\0asm",
        "{} is not WebAssembly",
        path.display()
    );
    // Bytes 4..8: version + layer. Core modules are 01 00 00 00; components
    // are 0d 00 01 00 (layer 1).
    if bytes[6..8] != [0x01, 0x00] {
        bail!("{} is a core module, not a component", path.display());
    }
    Ok(())
}

/// Runs `cmd`, echoing it, and fails on a non-zero exit.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("$ {shown}");
    let status = cmd.status().with_context(|| format!("running {shown}"))?;
    ensure!(status.success(), "`{shown}` failed ({status})");
    Ok(())
}
