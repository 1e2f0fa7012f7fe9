//! Subcommands: `up` runs the platform; the others talk to its control API.

mod backend;
mod deploy;
mod functions;
mod invoke;
mod logs;
mod queue;
mod quota;
mod up;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// gureum: a self-hosted serverless platform in one binary.
#[derive(Debug, Parser)]
#[command(name = "gureum", version, about)]
pub struct Cli {
    /// Control API URL of a running `gureum up`.
    #[arg(
        long,
        global = true,
        env = "GUREUM_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    url: String,
    /// Admin token; default: the admin.token file in ./.gureum.
    #[arg(long, global = true, env = "GUREUM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: public gateway, admin API, store.
    Up(up::UpArgs),
    /// Deploy a function (a directory with gureum.toml, or the toml file).
    Deploy(deploy::DeployArgs),
    /// List deployed functions.
    Ls,
    /// List a function's versions.
    Versions {
        /// Function name.
        name: String,
    },
    /// Point `live` at an earlier (or any) version.
    Rollback {
        /// Function name.
        name: String,
        /// Target version; default: the version before the current `live`.
        #[arg(long)]
        to: Option<u32>,
    },
    /// Remove a function with all its versions and logs.
    Rm {
        /// Function name.
        name: String,
    },
    /// Invoke a function and print its response body.
    Invoke(invoke::InvokeArgs),
    /// Show a function's invocation logs.
    Logs(logs::LogsArgs),
    /// Requests, GB-seconds and cost under the price list, the free tier and this month's
    /// projection; --compare-vm weighs it against an always-on VM.
    Usage(usage::UsageArgs),
    /// Monthly quotas: caps on requests, GB-seconds or cost (ls, set, rm).
    Quota(quota::QuotaArgs),
    /// Show the price list and free tier, or replace it: `gureum prices set FILE.toml`.
    Prices(quota::PricesArgs),
    /// List the cron schedules of the live functions with their next and last runs.
    Schedules,
    /// A function's dead-letter list: asynchronous invocations that exhausted their
    /// retries (ls, show, rm, redrive).
    Dlq(queue::DlqArgs),
    /// Users of the backend services (ls, show, disable, enable).
    Users(backend::UsersArgs),
    /// Document collections: rules, indexes and file limits (ls, show, set, rm).
    Collections(backend::CollectionsArgs),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Deploy(args) => deploy::run(&client(&cli.url, cli.token)?, args, json).await,
        Command::Ls => functions::list(&client(&cli.url, cli.token)?, json).await,
        Command::Versions { name } => {
            functions::versions(&client(&cli.url, cli.token)?, &name, json).await
        }
        Command::Rollback { name, to } => {
            functions::rollback(&client(&cli.url, cli.token)?, &name, to, json).await
        }
        Command::Rm { name } => functions::remove(&client(&cli.url, cli.token)?, &name, json).await,
        Command::Invoke(args) => invoke::run(&client(&cli.url, cli.token)?, args, json).await,
        Command::Logs(args) => logs::run(&client(&cli.url, cli.token)?, args, json).await,
        Command::Usage(args) => usage::run(&client(&cli.url, cli.token)?, args, json).await,
        Command::Quota(args) => quota::quota(&client(&cli.url, cli.token)?, args, json).await,
        Command::Prices(args) => quota::prices(&client(&cli.url, cli.token)?, args, json).await,
        Command::Schedules => queue::schedules(&client(&cli.url, cli.token)?, json).await,
        Command::Dlq(args) => queue::dlq(&client(&cli.url, cli.token)?, args, json).await,
        Command::Users(args) => backend::users(&client(&cli.url, cli.token)?, args, json).await,
        Command::Collections(args) => {
            backend::collections(&client(&cli.url, cli.token)?, args, json).await
        }
    }
}

fn client(url: &str, token: Option<String>) -> anyhow::Result<gureum_client::Client> {
    let token = match token {
        Some(token) => token,
        None => {
            let path = PathBuf::from(up::DEFAULT_DATA_DIR).join(up::TOKEN_FILE);
            std::fs::read_to_string(&path)
                .with_context(|| {
                    format!(
                        "reading the admin token from {}; pass --token or set GUREUM_TOKEN when gureum up runs elsewhere",
                        path.display()
                    )
                })?
                .trim()
                .to_string()
        }
    };
    Ok(gureum_client::Client::new(url, &token))
}

/// Formats ms since the Unix epoch as RFC 3339 (UTC, milliseconds).
fn format_time(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

/// The bytes to upload for a manifest's artifact: a wasm component as it is; for a
/// lambda function, its code directory or file packed as a zip (a .zip is kept).
pub fn read_artifact(loaded: &gureum_manifest::LoadedManifest) -> anyhow::Result<Vec<u8>> {
    Ok(match loaded.spec.runtime {
        gureum_model::Runtime::Wasm => std::fs::read(&loaded.artifact_path)?,
        gureum_model::Runtime::Lambda => {
            gureum_runtime_lambda::package::pack(&loaded.artifact_path)?
        }
        // A static-only site has no artifact; its files travel as the static bundle.
        gureum_model::Runtime::Static => Vec::new(),
    })
}

/// The bundle of the manifest's `[static]` files, if it has that section.
pub fn read_static(loaded: &gureum_manifest::LoadedManifest) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(dir) = &loaded.static_dir else {
        return Ok(None);
    };
    let bundle = gureum_invoke::static_site::pack(dir)
        .with_context(|| format!("packing the static files of {}", dir.display()))?;
    Ok(Some(bundle))
}
