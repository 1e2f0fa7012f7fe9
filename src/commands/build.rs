//! `gureum build`: runs the manifest's `[build] command` (also used by `deploy --build`
//! and `gureum dev`), showing a spinner with the latest output line and, on failure, the
//! whole output so the compiler's message is the first thing a person reads.
//!
//! The command runs with `sh -c` in the project directory, its stderr merged into stdout
//! so a compiler's notes and errors stay in order, and under `set -e` so a failing line
//! of a multi-line command fails the build.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::output::Output;

/// Arguments of `gureum build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Directory containing gureum.toml, or the toml file itself.
    #[arg(default_value = ".")]
    path: PathBuf,
}

/// What a build did.
pub enum Built {
    /// The command exited 0.
    Ok,
    /// The command failed; `log` is everything it printed (stdout and stderr, in order).
    Failed {
        /// How it ended, e.g. `exit status: 101`.
        status: String,
        /// Its output.
        log: String,
    },
    /// The manifest has no `[build]` section.
    Nothing,
}

pub async fn run(args: BuildArgs, output: Output) -> anyhow::Result<ExitCode> {
    let project = gureum_manifest::read_project(&args.path)?;
    match build(&project, output).await? {
        Built::Ok => Ok(ExitCode::SUCCESS),
        Built::Nothing => {
            output.warn(&format!(
                "{} has no [build] section; nothing to build (add `[build] command = \"…\"`)",
                project.manifest_path.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Built::Failed { status, log } => {
            report_failure(output, &project.spec.name.to_string(), &status, &log);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Prints a failed build's output, then one line saying what failed.
pub fn report_failure(output: Output, name: &str, status: &str, log: &str) {
    let log = log.trim_end();
    if !log.is_empty() {
        eprintln!("{log}");
    }
    output.error(&format!("building {name} failed ({status})"));
}

/// Runs `[build] command` with `sh -c` in the project directory.
pub async fn build(project: &gureum_manifest::Project, output: Output) -> anyhow::Result<Built> {
    let Some(build) = &project.build else {
        return Ok(Built::Nothing);
    };
    let name = project.spec.name.to_string();
    let spinner = output.spinner(&format!("building {}", output.bold(&name)));
    if !spinner.is_visible() {
        output.info(&format!("building {name}: {}", build.command.trim()));
    }
    let started = Instant::now();
    let mut command = tokio::process::Command::new("sh");
    // One stream, so a compiler's notes and errors stay in the order it wrote them; `set -e`
    // so a failing line of a multi-line command fails the build (and nothing is deployed).
    command
        .arg("-c")
        .arg(format!("exec 2>&1\nset -e\n{}", build.command))
        .current_dir(&project.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if output.colored() {
        // Compilers see a pipe, not a terminal; ask the common ones for color anyway.
        command.env("CARGO_TERM_COLOR", "always");
        command.env("FORCE_COLOR", "1");
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting the build command of {name} with sh -c"))?;
    let stdout = child.stdout.take().context("the build command's output")?;
    let mut reader = BufReader::new(stdout);
    let mut log = String::new();
    let mut buffer = Vec::new();
    // Bytes, not `lines()`: a tool printing invalid UTF-8 must not stop the reading (the
    // build would then block on a full pipe).
    while reader.read_until(b'\n', &mut buffer).await.unwrap_or(0) > 0 {
        let line = String::from_utf8_lossy(&buffer)
            .trim_end_matches(['\n', '\r'])
            .to_string();
        buffer.clear();
        let shown = console::strip_ansi_codes(&line);
        let shown = shown.trim();
        if !shown.is_empty() {
            spinner.set_message(&format!(
                "building {} {}",
                output.bold(&name),
                output.dim(&console::truncate_str(shown, 70, "…"))
            ));
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child
        .wait()
        .await
        .context("waiting for the build command")?;
    let elapsed = started.elapsed();
    if status.success() {
        spinner.done(&format!(
            "built {} in {:.1} s",
            output.bold(&name),
            elapsed.as_secs_f64()
        ));
        Ok(Built::Ok)
    } else {
        spinner.fail();
        Ok(Built::Failed {
            status: status.to_string(),
            log,
        })
    }
}
