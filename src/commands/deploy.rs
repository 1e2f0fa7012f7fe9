//! `gureum deploy`: validate the manifest locally, upload it with its artifact.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `gureum deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Directory containing gureum.toml, or the toml file itself.
    #[arg(default_value = ".")]
    path: PathBuf,
}

pub async fn run(
    client: &gureum_client::Client,
    args: DeployArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // Validating here first gives the same field-by-field errors without an upload.
    let loaded = gureum_manifest::load(&args.path)?;
    let artifact = super::read_artifact(&loaded)
        .with_context(|| format!("reading the artifact {}", loaded.artifact_path.display()))?;
    let static_bundle = super::read_static(&loaded)?;
    let deployed = client
        .deploy_with_static(loaded.text, artifact, static_bundle)
        .await?;
    if json {
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
    }
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}
