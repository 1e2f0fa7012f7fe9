//! Subcommands: `up` runs the platform; the others talk to its control API.

mod backend;
mod build;
mod deploy;
mod dev;
mod functions;
mod invoke;
mod logs;
mod new;
mod output;
mod queue;
mod quota;
mod tls;
mod up;
mod usage;

use output::Output;

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
    /// Extra trusted CA (PEM) for an https:// --url; default for https: the local CA in
    /// ./.gureum/tls/ca.pem when there is one (`gureum up --tls self-signed`).
    #[arg(long, global = true, env = "GUREUM_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Machine-readable JSON output on stdout (no spinners or status lines).
    #[arg(long, global = true)]
    json: bool,
    /// Only errors and the command's result; no spinners or status lines.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: public gateway, admin API, store.
    #[command(after_help = "Examples:
  gureum up                                   # SQLite in ./.gureum, examples deployed
  gureum up --no-examples --listen 0.0.0.0:8080
  gureum up --store postgres://user@db/gureum # a node of a cluster on PostgreSQL")]
    Up(Box<up::UpArgs>),
    /// Create a project from a template (rust-wasm, rust-lambda, python-lambda, python-wasm,
    /// js-wasm); no network needed.
    New(new::NewArgs),
    /// Build, deploy, watch and redeploy on save, streaming logs; starts a local gureum if
    /// none is running.
    Dev(dev::DevArgs),
    /// Run the manifest's `[build] command`.
    #[command(after_help = "Examples:\n  gureum build\n  gureum build services/api")]
    Build(build::BuildArgs),
    /// Deploy a function (a directory with gureum.toml, or the toml file).
    #[command(after_help = "Examples:
  gureum deploy                 # ./gureum.toml
  gureum deploy --build hi      # run [build] command first
  gureum deploy hi/gureum.toml --json")]
    Deploy(deploy::DeployArgs),
    /// List deployed functions.
    #[command(after_help = "Examples:
  gureum ls
  gureum ls --json | jq '.[].name'")]
    Ls,
    /// List a function's versions.
    #[command(after_help = "Examples:
  gureum versions hi")]
    Versions {
        /// Function name.
        name: String,
    },
    /// Point `live` at an earlier (or any) version.
    #[command(after_help = "Examples:
  gureum rollback hi            # live goes back one version
  gureum rollback hi --to 3")]
    Rollback {
        /// Function name.
        name: String,
        /// Target version; default: the version before the current `live`.
        #[arg(long)]
        to: Option<u32>,
    },
    /// Remove a function with all its versions and logs.
    #[command(after_help = "Examples:
  gureum rm hi")]
    Rm {
        /// Function name.
        name: String,
    },
    /// Invoke a function and print its response body.
    #[command(after_help = "Examples:
  gureum invoke hi
  gureum invoke hi --path '/?name=Ada' -i
  gureum invoke hi@2 -d '{\"n\":1}' -H 'content-type: application/json'
  gureum invoke hi --async -d @event.json --idempotency-key order-42")]
    Invoke(invoke::InvokeArgs),
    /// Show a function's invocation logs.
    #[command(after_help = "Examples:
  gureum logs hi -f
  gureum logs hi --since 2h --grep timeout
  gureum logs hi --invocation 0193f1c2-…")]
    Logs(logs::LogsArgs),
    /// Requests, GB-seconds and cost under the price list, the free tier and this month's
    /// projection; --compare-vm weighs it against an always-on VM.
    #[command(after_help = "Examples:
  gureum usage
  gureum usage hi --since 7d --by day
  gureum usage --compare-vm --vm-monthly 40")]
    Usage(usage::UsageArgs),
    /// Monthly quotas: caps on requests, GB-seconds or cost (ls, set, rm).
    #[command(after_help = "Examples:
  gureum quota
  gureum quota set hi --requests 1000000 --cost 5
  gureum quota set --gb-seconds 400000     # the whole installation
  gureum quota rm hi")]
    Quota(quota::QuotaArgs),
    /// Show the price list and free tier, or replace it: `gureum prices set FILE.toml`.
    #[command(after_help = "Examples:
  gureum prices
  gureum prices set prices.toml")]
    Prices(quota::PricesArgs),
    /// List the cron schedules of the live functions with their next and last runs.
    #[command(after_help = "Examples:
  gureum schedules
  gureum schedules --json")]
    Schedules,
    /// A function's dead-letter list: asynchronous invocations that exhausted their
    /// retries (ls, show, rm, redrive).
    #[command(after_help = "Examples:
  gureum dlq hi
  gureum dlq hi show 0193f1c2-…
  gureum dlq hi redrive --all      # after fixing the function
  gureum dlq hi rm --all")]
    Dlq(queue::DlqArgs),
    /// Users of the backend services (ls, show, disable, enable).
    #[command(after_help = "Examples:
  gureum users
  gureum users show ada@example.org
  gureum users disable ada@example.org")]
    Users(backend::UsersArgs),
    /// Document collections: rules, indexes and file limits (ls, show, set, rm).
    #[command(after_help = "Examples:
  gureum collections
  gureum collections set notes collection.toml
  gureum collections show notes
  gureum collections rm notes")]
    Collections(backend::CollectionsArgs),
    /// HTTPS helpers: `gureum tls ca` prints the local CA of `gureum up --tls self-signed`.
    #[command(after_help = "Examples:
  gureum tls ca > gureum-ca.pem                 # then: curl --cacert gureum-ca.pem https://localhost:8080/fn/hello
  gureum tls ca --data-dir /var/lib/gureum")]
    Tls(tls::TlsArgs),
    /// Print the JSON Schema of gureum.toml (for editors; `gureum new` writes it too).
    #[command(
        after_help = "Examples:\n  gureum schema > gureum.schema.json   # then `#:schema ./gureum.schema.json` atop gureum.toml"
    )]
    Schema,
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  gureum completions bash > ~/.local/share/bash-completion/completions/gureum
  gureum completions zsh > ~/.zfunc/_gureum      # with fpath+=(~/.zfunc) in ~/.zshrc
  gureum completions fish > ~/.config/fish/completions/gureum.fish")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// The command line, with `gureum up --config FILE`'s settings merged in (flags win).
pub fn parse() -> anyhow::Result<Cli> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = Cli::parse_from(&argv);
    up::with_config_file(cli, argv)
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    let output = Output::new(cli.quiet, json);
    let ca = cli.ca_cert.clone();
    let ca = ca.as_deref();
    match cli.command {
        Command::Up(args) => up::run(*args).await,
        Command::Tls(args) => tls::run(args, output),
        Command::New(args) => new::run(args, output),
        Command::Dev(args) => dev::run(&cli.url, cli.token, args, output).await,
        Command::Build(args) => build::run(args, output).await,
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&gureum_manifest::json_schema())?;
            print_all(format!("{schema}\n").as_bytes())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "gureum", &mut script);
            print_all(&script)
        }
        Command::Deploy(args) => deploy::run(&client(&cli.url, cli.token, ca)?, args, output).await,
        Command::Ls => functions::list(&client(&cli.url, cli.token, ca)?, json).await,
        Command::Versions { name } => {
            functions::versions(&client(&cli.url, cli.token, ca)?, &name, json).await
        }
        Command::Rollback { name, to } => {
            functions::rollback(&client(&cli.url, cli.token, ca)?, &name, to, json).await
        }
        Command::Rm { name } => {
            functions::remove(&client(&cli.url, cli.token, ca)?, &name, json).await
        }
        Command::Invoke(args) => invoke::run(&client(&cli.url, cli.token, ca)?, args, json).await,
        Command::Logs(args) => logs::run(&client(&cli.url, cli.token, ca)?, args, json).await,
        Command::Usage(args) => usage::run(&client(&cli.url, cli.token, ca)?, args, json).await,
        Command::Quota(args) => quota::quota(&client(&cli.url, cli.token, ca)?, args, json).await,
        Command::Prices(args) => quota::prices(&client(&cli.url, cli.token, ca)?, args, json).await,
        Command::Schedules => queue::schedules(&client(&cli.url, cli.token, ca)?, json).await,
        Command::Dlq(args) => queue::dlq(&client(&cli.url, cli.token, ca)?, args, json).await,
        Command::Users(args) => backend::users(&client(&cli.url, cli.token, ca)?, args, json).await,
        Command::Collections(args) => {
            backend::collections(&client(&cli.url, cli.token, ca)?, args, json).await
        }
    }
}

/// Writes `bytes` to stdout; a reader that went away (`gureum schema | head`) is not an
/// error worth a message.
fn print_all(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn client(
    url: &str,
    token: Option<String>,
    ca: Option<&std::path::Path>,
) -> anyhow::Result<gureum_client::Client> {
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
    match trusted_ca(url, ca)? {
        Some(pem) => Ok(gureum_client::Client::with_ca(url, &token, &pem)?),
        None => Ok(gureum_client::Client::new(url, &token)),
    }
}

/// The extra root to trust for `url`: `--ca-cert`, else for https the local CA beside
/// the admin token (`./.gureum/tls/ca.pem`), when present.
fn trusted_ca(url: &str, ca: Option<&std::path::Path>) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(path) = ca {
        let pem =
            std::fs::read(path).with_context(|| format!("reading --ca-cert {}", path.display()))?;
        return Ok(Some(pem));
    }
    if !url.starts_with("https://") {
        return Ok(None);
    }
    Ok(std::fs::read(gureum_tls::ca_path(std::path::Path::new(
        up::DEFAULT_DATA_DIR,
    )))
    .ok())
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
