//! `cargo xtask ci` and `cargo xtask up`: the two commands the README promises.
//!
//! Provisioning lives here too, so the machine needs nothing but the two commands:
//! PostgreSQL installed and made ready (local connections trusted), Debian's `pebble` and
//! `bubblewrap` installed with apt-get when missing (`up` needs only bubblewrap).

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::{Workspace, build_fixtures, run};

/// Address of the PostgreSQL the tests use (trust auth, user `postgres`).
const POSTGRES_HOST: &str = "127.0.0.1";
const POSTGRES_PORT: &str = "5432";

/// fmt, clippy, fixtures, then every test (unit, store suite on both backends, e2e),
/// with each phase's time printed at the end.
pub fn ci(ws: &Workspace) -> Result<()> {
    let mut phases = Phases::default();
    let outcome = ci_phases(ws, &mut phases);
    phases.print();
    outcome
}

fn ci_phases(ws: &Workspace, phases: &mut Phases) -> Result<()> {
    phases.run("prepare the machine", || {
        ensure_postgres()?;
        ensure_pebble()?;
        ensure_bubblewrap()?;
        // The wasm clippy below needs the target before build_fixtures would install it.
        crate::ensure_wasm_target()?;
        // The binary embeds the console's assets: build them before anything compiles it.
        crate::console::build(ws).map(|_| ())
    })?;
    phases.run("fmt", || {
        run(ws.cargo().args(["fmt", "--all", "--", "--check"]))
            .context("formatting differs: run `cargo fmt --all`")
    })?;
    phases.run("clippy", || {
        run(ws
            .cargo()
            .args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
        // The native lambda guests are workspace members outside the default set.
        let mut guests = ws.cargo();
        guests.arg("clippy");
        for (package, _) in crate::lambda::RUST_LAMBDAS {
            guests.args(["-p", package]);
        }
        run(guests.args(["--", "-D", "warnings"]))?;
        // The guest SDK and its testbed target wasm32-wasip2 (outside the default set).
        run(ws.cargo().args([
            "clippy",
            "--target",
            crate::WASM_TARGET,
            "-p",
            "gureum-sdk",
            "-p",
            "sdk-testbed",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    phases.run("fixtures", || build_fixtures(ws).map(|_| ()))?;
    let (passed, failed) = phases.run("tests", || run_tests(ws))?;
    // One closing line for the whole suite, so the total is not hidden behind the
    // last test binary's own summary.
    println!("ci: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        bail!("the test suite failed ({failed} failed, {passed} passed)");
    }
    Ok(())
}

/// `cargo xtask test`: every test (as CI runs them, without fmt and clippy), or with
/// `quick` the inner loop: unit tests, the store suite on SQLite and the in-process
/// platform tests (no e2e, no PostgreSQL).
pub fn test(ws: &Workspace, quick: bool) -> Result<()> {
    let mut phases = Phases::default();
    let outcome = (|| {
        let (passed, failed) = if quick {
            // The platform tests (core, queue) deploy the wasm testbed.
            phases.run("wasm fixtures", || crate::build_wasm_guests(ws).map(|_| ()))?;
            // One cargo run, so the three layers share one build (separate `-p` runs
            // unify features differently and rebuild each other's dependencies).
            phases.run("unit, store (SQLite) and platform tests", || {
                run_counted(
                    ws,
                    &[
                        "test",
                        "--lib",
                        "--bins",
                        "--test",
                        "suite",
                        "--test",
                        "core",
                        "--test",
                        "queue",
                        "--test",
                        "error_codes",
                        "--",
                        "--skip",
                        "postgres::",
                    ],
                )
            })?
        } else {
            phases.run("prepare the machine", || {
                ensure_postgres()?;
                ensure_pebble()?;
                ensure_bubblewrap()?;
                crate::console::build(ws).map(|_| ())
            })?;
            phases.run("fixtures", || build_fixtures(ws).map(|_| ()))?;
            phases.run("tests", || run_tests(ws))?
        };
        println!("test: {passed} passed, {failed} failed");
        if failed > 0 || passed == 0 {
            bail!("the tests failed ({failed} failed, {passed} passed)");
        }
        Ok(())
    })();
    phases.print();
    outcome
}

/// How long each phase of a run took, printed as a table at the end.
#[derive(Default)]
struct Phases {
    done: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn run<T>(&mut self, name: &'static str, phase: impl FnOnce() -> Result<T>) -> Result<T> {
        println!("== {name}");
        let started = std::time::Instant::now();
        let outcome = phase();
        self.done.push((name, started.elapsed()));
        outcome
    }

    fn print(&self) {
        let total: std::time::Duration = self.done.iter().map(|(_, took)| *took).sum();
        println!("{:<40} {:>9}", "phase", "time");
        for (name, took) in &self.done {
            println!("{name:<40} {:>7.1} s", took.as_secs_f64());
        }
        println!("{:<40} {:>7.1} s", "total", total.as_secs_f64());
    }
}

/// Debian's `pebble` (a test ACME server, with `pebble-challtestsrv` for its DNS), which
/// the HTTPS tests issue certificates from; installed with apt-get when missing.
fn ensure_pebble() -> Result<()> {
    ensure_debian_package("/usr/bin/pebble", "pebble", "the ACME tests use it")
}

/// bubblewrap, the sandbox of process functions (gureum-sandbox).
pub(crate) fn ensure_bubblewrap() -> Result<()> {
    ensure_debian_package(
        "/usr/bin/bwrap",
        "bubblewrap",
        "process functions run in its sandbox",
    )
}

/// Installs Debian's `package` with apt-get unless `path` exists.
fn ensure_debian_package(path: &str, package: &str, why: &str) -> Result<()> {
    if std::path::Path::new(path).exists() {
        return Ok(());
    }
    eprintln!("{path} is missing ({why}); installing {package} with apt-get");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .with_context(|| format!("installing {package} (apt-get install {package})"))?;
    if !std::path::Path::new(path).exists() {
        bail!("apt-get installed {package} but {path} is still missing");
    }
    Ok(())
}

/// Runs every test: all targets of the default members (they have no doc tests), then the
/// guest SDK on the host with its doc tests (an example on every item); echoes the output
/// and adds up the `test result:` lines.
fn run_tests(ws: &Workspace) -> Result<(u64, u64)> {
    let (passed, failed) = run_counted(ws, &["test", "--no-fail-fast", "--all-targets"])?;
    let (sdk_passed, sdk_failed) =
        run_counted(ws, &["test", "--no-fail-fast", "-p", "gureum-sdk"])?;
    Ok((passed + sdk_passed, failed + sdk_failed))
}

/// Runs `cargo ARGS`, echoing its output, and adds up its `test result:` lines.
fn run_counted(ws: &Workspace, args: &[&str]) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let mut child = ws
        .cargo()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(summary) = line.strip_prefix("test result: ") {
            passed += count_before(summary, " passed");
            failed += count_before(summary, " failed");
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("cargo test failed ({status}) before reporting a failed test");
    }
    Ok((passed, failed))
}

/// In `ok. 18 passed; 0 failed; …`, the number before `label`.
fn count_before(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .find(|part| part.trim_end().ends_with(label.trim()))
        .and_then(|part| part.split_whitespace().rev().nth(1))
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

/// Builds the release binary and the examples and runs `gureum up` in the workspace
/// root, so `./examples` is deployed into an empty `./.gureum`.
pub fn up(ws: &Workspace, args: &[String]) -> Result<()> {
    ensure_bubblewrap()?;
    crate::build_functions(ws)?;
    crate::console::build(ws)?;
    run(ws.cargo().args(["build", "--release", "-p", "gureum"]))?;
    let binary = ws.target_dir.join("release").join("gureum");
    let mut command = Command::new(&binary);
    command.current_dir(&ws.root).arg("up").args(args);
    run(&mut command)
}

/// Makes sure PostgreSQL answers on 127.0.0.1:5432 with trust auth for `postgres`:
/// starts the installed cluster, or installs Debian's package and configures it.
fn ensure_postgres() -> Result<()> {
    if postgres_ready() {
        return Ok(());
    }
    eprintln!("PostgreSQL is not answering on {POSTGRES_HOST}:{POSTGRES_PORT}; starting it");
    if !has_program("pg_ctlcluster") {
        run(Command::new("apt-get").arg("update"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        trust_local_connections()?;
    }
    // Start every installed cluster (Debian's layout); fall back to the service.
    let clusters = Command::new("pg_lsclusters").arg("-h").output();
    if let Ok(output) = clusters {
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 2 {
                let _ = Command::new("pg_ctlcluster")
                    .args([fields[0], fields[1], "start"])
                    .status();
            }
        }
    }
    if !postgres_ready() {
        let _ = Command::new("service")
            .args(["postgresql", "start"])
            .status();
    }
    for _ in 0..60 {
        if postgres_ready() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    bail!(
        "PostgreSQL did not become ready on {POSTGRES_HOST}:{POSTGRES_PORT}; the store and end-to-end tests need it (trust auth, user postgres)"
    )
}

fn postgres_ready() -> bool {
    Command::new("psql")
        .args([
            "-h",
            POSTGRES_HOST,
            "-p",
            POSTGRES_PORT,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
            "SELECT 1",
        ])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false)
}

/// A freshly installed cluster asks for passwords on TCP; the tests connect as
/// `postgres` without one, as on the development machines.
fn trust_local_connections() -> Result<()> {
    let configs = std::fs::read_dir("/etc/postgresql").context("listing /etc/postgresql")?;
    for version in configs.filter_map(Result::ok) {
        let hba = version.path().join("main").join("pg_hba.conf");
        if hba.exists() {
            let current = std::fs::read_to_string(&hba)?;
            let trusted = format!(
                "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust\n{current}"
            );
            std::fs::write(&hba, trusted)?;
        }
    }
    Ok(())
}

/// Whether `name` is a command on PATH.
pub(crate) fn has_program(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_read_from_a_test_result_line() {
        let summary = "ok. 18 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(super::count_before(summary, " passed"), 18);
        assert_eq!(super::count_before(summary, " failed"), 2);
    }
}
