//! `gureum deploy`: validate the manifest locally, optionally build, then upload it with its
//! artifact.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use gureum_api_types::DeployResponse;

use super::build::{self, Built};
use super::output::Output;

/// Arguments of `gureum deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Directory containing gureum.toml, or the toml file itself.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Run the manifest's `[build] command` first (as `gureum build` does).
    #[arg(long)]
    build: bool,
}

pub async fn run(
    client: &gureum_client::Client,
    args: DeployArgs,
    output: Output,
) -> anyhow::Result<ExitCode> {
    if args.build {
        let project = gureum_manifest::read_project(&args.path)?;
        match build::build(&project, output).await? {
            Built::Ok => {}
            Built::Nothing => output.warn("no [build] section in gureum.toml; deploying as is"),
            Built::Failed { status, log } => {
                build::report_failure(output, &project.spec.name.to_string(), &status, &log);
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let deployed = upload(client, &args.path, output).await?;
    if output.json {
        println!("{}", serde_json::to_string_pretty(&deployed)?);
    } else {
        println!("deployed {} version {}", deployed.name, deployed.version);
        println!("  url:    {}", deployed.url);
        for route in &deployed.routes {
            println!("  route:  {route}");
        }
        if let Some(site) = &deployed.static_site {
            println!(
                "  static: {} files, {}",
                site.files,
                human_bytes(site.bytes)
            );
        }
        // What the version's token is granted ([permissions]), so a deploy never widens
        // access unseen.
        for (i, line) in deployed.permissions.iter().enumerate() {
            let label = if i == 0 { "grants:" } else { "       " };
            println!("  {label} {line}");
        }
    }
    for warning in &deployed.warnings {
        output.warn(warning);
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the manifest at `path` with its artifact and static files and uploads them as a
/// new version, with a spinner while the server compiles and stores it.
pub async fn upload(
    client: &gureum_client::Client,
    path: &Path,
    output: Output,
) -> anyhow::Result<DeployResponse> {
    // Validating here first gives the same field-by-field errors without an upload. Reading
    // and zipping (a Python build/ can be tens of MB) happen off the async threads.
    let path = path.to_path_buf();
    let (loaded, artifact, static_bundle) = tokio::task::spawn_blocking(move || {
        let loaded = gureum_manifest::load(&path)?;
        let artifact = super::read_artifact(&loaded)
            .with_context(|| format!("reading the artifact {}", loaded.artifact_path.display()))?;
        let static_bundle = super::read_static(&loaded)?;
        anyhow::Ok((loaded, artifact, static_bundle))
    })
    .await
    .context("reading the function's files")??;
    let size = artifact.len() as u64 + static_bundle.as_ref().map_or(0, |b| b.len() as u64);
    let spinner = output.spinner(&format!(
        "deploying {} ({})",
        output.bold(loaded.spec.name.as_str()),
        human_bytes(size)
    ));
    match client
        .deploy_with_static(loaded.text, artifact, static_bundle)
        .await
    {
        Ok(deployed) => {
            spinner.done(&format!(
                "deployed {} version {}",
                output.bold(&deployed.name),
                deployed.version
            ));
            Ok(deployed)
        }
        Err(error) => {
            spinner.fail();
            Err(error.into())
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}
