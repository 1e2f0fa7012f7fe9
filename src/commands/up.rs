//! `gureum up`: the server's flags, a banner and signals around
//! [`gureum_platform::Platform`], which starts and stops everything.
//!
//! Each visible flag is also a `GUREUM_*` variable and a key of `--config FILE`
//! ([`with_config_file`]); `UpArgs::config` turns them into the platform's `Config` after
//! checking that the TLS flags fit together. `run` then calls `Platform::start`, deploys
//! the examples into an empty platform (`deploy_examples`), prints the banner, and waits
//! for SIGTERM or SIGINT, or for the end of stdin with the hidden `--exit-on-stdin-close`
//! (what the test harness and `gureum dev` use, so the server dies with its parent),
//! before `Platform::shutdown`. The hidden `--no-metering` exists only for the benchmark.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use gureum_invoke::Invoker;
use gureum_platform::{Config, Platform};

pub use gureum_platform::{DEFAULT_DATA_DIR, TOKEN_FILE};

/// Arguments of `gureum up`; every flag also reads a `GUREUM_*` environment variable.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// A server config file (TOML) whose keys are these flags' names, e.g.
    /// `listen = "0.0.0.0:8080"`, `queue-lease = "30s"`, `trusted-proxy = ["10.0.0.0/8"]`;
    /// a flag or GUREUM_* variable given as well wins over the file.
    #[arg(long, env = "GUREUM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory: SQLite store, compiled-code cache, admin token.
    #[arg(long, env = "GUREUM_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Public listener: functions, WebSockets, data/auth APIs.
    #[arg(long, env = "GUREUM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Admin listener: control API, /metrics, console.
    #[arg(long, env = "GUREUM_ADMIN_LISTEN", default_value = "127.0.0.1:8081")]
    admin_listen: SocketAddr,
    /// Store URL: sqlite://PATH or postgres://…; default sqlite://DATA_DIR/gureum.db.
    #[arg(long, env = "GUREUM_STORE")]
    store: Option<String>,
    /// Do not deploy the examples into an empty platform.
    #[arg(long, env = "GUREUM_NO_EXAMPLES")]
    no_examples: bool,
    /// Where the example functions are (each subdirectory with a gureum.toml).
    #[arg(long, env = "GUREUM_EXAMPLES_DIR", default_value = "examples")]
    examples_dir: PathBuf,
    /// Largest request body the gateway accepts, in bytes.
    #[arg(long, env = "GUREUM_MAX_BODY_BYTES", default_value_t = gureum_gateway::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: u64,
    /// Serve every function at NAME.DOMAIN too (all its paths, an origin of its own, as
    /// Lambda function URLs), e.g. `fn.example.org` with a wildcard DNS record
    /// `*.fn.example.org`.
    #[arg(long, env = "GUREUM_FUNCTIONS_DOMAIN", value_name = "DOMAIN")]
    functions_domain: Option<String>,
    /// Largest body of an asynchronous invocation, in bytes (it is stored until it runs).
    #[arg(long, env = "GUREUM_MAX_ASYNC_BODY_BYTES", default_value_t = gureum_gateway::DEFAULT_MAX_ASYNC_BODY_BYTES)]
    max_async_body_bytes: u64,
    /// A proxy or load balancer in front of gureum (CIDR or address; repeatable or
    /// comma-separated): requests from it are attributed to the client its
    /// `X-Forwarded-For` / `Forwarded` names (rate limits, `sourceIp`, idempotency
    /// scopes), and its `X-Forwarded-Proto` is believed. From anyone else these headers
    /// are ignored.
    #[arg(long, env = "GUREUM_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    trusted_proxy: Vec<ipnet::IpNet>,
    /// Time a client has to send a request's headers, on every listener (a slow or silent
    /// client is disconnected after it), e.g. 30s.
    #[arg(long, env = "GUREUM_HEADER_TIMEOUT", default_value = "30s")]
    header_timeout: humantime::Duration,
    /// An HTTP connection with no request in flight this long is closed, on every
    /// listener (WebSockets and streaming responses are requests in flight), e.g. 60s.
    #[arg(long, env = "GUREUM_IDLE_TIMEOUT", default_value = "60s")]
    idle_timeout: humantime::Duration,
    /// Most connections the public listener (with --http-listen's) holds at once; when
    /// full, new ones wait in the kernel's backlog until one closes. Default: the open-file
    /// limit (raised to its hard limit at start) minus room for the admin listener and the
    /// server's own files.
    #[arg(long, env = "GUREUM_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most connections the admin listener holds at once (its own count: a full public
    /// listener never blocks it).
    #[arg(long, env = "GUREUM_ADMIN_MAX_CONNECTIONS", default_value_t = gureum_gateway::DEFAULT_ADMIN_MAX_CONNECTIONS)]
    admin_max_connections: usize,
    /// Whether functions reach private addresses (loopback, RFC 1918, link-local and
    /// the cloud metadata service, CGNAT, ULA) through names in allowed_outbound_hosts.
    /// deny: only entries naming the address itself or localhost reach them; allow: for
    /// functions that call internal services by name.
    #[arg(
        long,
        env = "GUREUM_OUTBOUND_PRIVATE",
        default_value = "deny",
        value_enum
    )]
    outbound_private: OutboundPrivate,
    /// How long in-flight requests may finish after SIGTERM/SIGINT, e.g. 10s.
    #[arg(long, env = "GUREUM_SHUTDOWN_GRACE", default_value = "10s")]
    shutdown_grace: humantime::Duration,
    /// Shut down when standard input closes (lets a supervising process, e.g. a test
    /// harness, stop the server by exiting).
    #[arg(long, hide = true)]
    exit_on_stdin_close: bool,
    /// How long a rotated refresh token presented again gets the same successor (two
    /// tabs refreshing at once) instead of signing the account out everywhere.
    #[arg(
        long,
        env = "GUREUM_REFRESH_REUSE_INTERVAL",
        default_value = "10s",
        hide = true
    )]
    refresh_reuse_interval: humantime::Duration,
    /// Server log format: text or json (filter with RUST_LOG).
    #[arg(long, env = "GUREUM_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Price list (TOML: requests_per_million, gb_second, free_requests_per_month,
    /// free_gb_seconds_per_month); replaces the stored one at start. Default: AWS
    /// Lambda's x86 prices and free tier.
    #[arg(long, env = "GUREUM_PRICES")]
    prices: Option<PathBuf>,
    /// Serve /metrics without the admin token (for a Prometheus on a trusted network).
    #[arg(long, env = "GUREUM_METRICS_PUBLIC")]
    metrics_public: bool,
    /// Export a trace span per invocation and per deploy over OTLP/HTTP to this
    /// collector, e.g. http://127.0.0.1:4318.
    #[arg(long, env = "GUREUM_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Days of function logs and invocation records to keep (0 keeps them forever);
    /// usage totals are kept regardless.
    #[arg(long, env = "GUREUM_LOG_RETENTION_DAYS", default_value_t = 30)]
    log_retention_days: u32,
    /// How often logs past retention are deleted, e.g. 1h.
    #[arg(
        long,
        env = "GUREUM_LOG_RETENTION_INTERVAL",
        default_value = "1h",
        hide = true
    )]
    log_retention_interval: humantime::Duration,
    /// Runs process functions (`runtime = "lambda"`) as ordinary processes of this
    /// server's user, without their sandbox: only for code you trust (it can read the
    /// data directory and the admin token). Warned about at start and on every deploy.
    #[arg(long, env = "GUREUM_UNSANDBOXED_PROCESSES")]
    unsandboxed_processes: bool,
    /// Turns metering off (no invocation records, usage, quotas or invocation metrics):
    /// only for the benchmark that measures what metering costs.
    #[arg(long, hide = true)]
    no_metering: bool,
    /// Largest WebSocket message either way, in bytes (bigger: close 1009).
    #[arg(long, env = "GUREUM_WS_MAX_MESSAGE_BYTES", default_value_t = gureum_websocket::DEFAULT_MAX_MESSAGE_BYTES)]
    ws_max_message_bytes: usize,
    /// A WebSocket connection without messages this long is closed, e.g. 10m.
    #[arg(long, env = "GUREUM_WS_IDLE_TIMEOUT", default_value = "10m")]
    ws_idle_timeout: humantime::Duration,
    /// Longest life of a WebSocket connection, e.g. 2h.
    #[arg(long, env = "GUREUM_WS_MAX_AGE", default_value = "2h")]
    ws_max_age: humantime::Duration,
    /// Most open WebSocket connections per function on this node.
    #[arg(long, env = "GUREUM_WS_MAX_CONNECTIONS", default_value_t = gureum_websocket::DEFAULT_MAX_CONNECTIONS)]
    ws_max_connections: usize,
    /// Messages queued for one WebSocket client before it is closed as too slow (1013).
    #[arg(long, env = "GUREUM_WS_SEND_QUEUE", default_value_t = gureum_websocket::DEFAULT_SEND_QUEUE)]
    ws_send_queue: usize,
    /// Time between WebSocket keep-alive pings, e.g. 30s.
    #[arg(long, env = "GUREUM_WS_PING_INTERVAL", default_value = "30s")]
    ws_ping_interval: humantime::Duration,
    /// Asynchronous events (queued invocations, cron ticks) this node runs at once.
    #[arg(long, env = "GUREUM_QUEUE_CONCURRENCY", default_value_t = 64)]
    queue_concurrency: usize,
    /// How long a node's claim on a running event lasts without renewal (renewed every
    /// third of it); after a node dies its events run again on another node this late.
    #[arg(long, env = "GUREUM_QUEUE_LEASE", default_value = "30s")]
    queue_lease: humantime::Duration,
    /// HTTPS on both listeners: off, self-signed (a local CA in DATA_DIR/tls), acme
    /// (certificates from Let's Encrypt or another ACME server) or cert (--cert/--key).
    #[arg(long, env = "GUREUM_TLS", default_value = "off", value_enum)]
    tls: TlsChoice,
    /// A name the certificate covers (repeat for more); required for --tls acme.
    #[arg(long = "domain", env = "GUREUM_DOMAINS", value_delimiter = ',')]
    domains: Vec<String>,
    /// Contact address of the ACME account (expiry and policy notices).
    #[arg(long, env = "GUREUM_ACME_EMAIL")]
    acme_email: Option<String>,
    /// ACME directory URL; default Let's Encrypt (staging:
    /// https://acme-staging-v02.api.letsencrypt.org/directory).
    #[arg(long, env = "GUREUM_ACME_DIRECTORY", default_value = gureum_tls::LETS_ENCRYPT)]
    acme_directory: String,
    /// Extra trusted roots (PEM) for reaching the ACME server, e.g. a test CA's.
    #[arg(long, env = "GUREUM_ACME_CA_BUNDLE")]
    acme_ca_bundle: Option<PathBuf>,
    /// First retry delay after a failed ACME order (doubles up to an hour).
    #[arg(long, env = "GUREUM_ACME_RETRY", default_value = "30s", hide = true)]
    acme_retry: humantime::Duration,
    /// Certificate chain (PEM, leaf first) for --tls cert; reloaded when it changes.
    #[arg(long, env = "GUREUM_CERT")]
    cert: Option<PathBuf>,
    /// Private key (PEM) for --tls cert.
    #[arg(long, env = "GUREUM_KEY")]
    key: Option<PathBuf>,
    /// How often --cert/--key are checked for changes.
    #[arg(
        long,
        env = "GUREUM_CERT_RELOAD_INTERVAL",
        default_value = "2s",
        hide = true
    )]
    cert_reload_interval: humantime::Duration,
    /// A plain-HTTP listener beside the HTTPS ones, e.g. 0.0.0.0:80: answers ACME
    /// HTTP-01 challenges and serves like the public listener (or redirects, with
    /// --http-redirect).
    #[arg(long, env = "GUREUM_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Redirect everything on --http-listen (but ACME challenges) to HTTPS.
    #[arg(long, env = "GUREUM_HTTP_REDIRECT")]
    http_redirect: bool,
    /// Send Strict-Transport-Security with this max-age on HTTPS responses, e.g. 365d
    /// (browsers then refuse plain HTTP to the host for that long).
    #[arg(long, env = "GUREUM_HSTS")]
    hsts: Option<humantime::Duration>,
}

/// `--outbound-private`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutboundPrivate {
    Deny,
    Allow,
}

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TlsChoice {
    Off,
    SelfSigned,
    Acme,
    Cert,
}

impl UpArgs {
    /// The platform's settings from the flags (and the `--config` file they were merged
    /// with, see [`with_config_file`]).
    fn config(&self) -> anyhow::Result<Config> {
        Ok(Config {
            tls: self.tls_mode()?,
            data_dir: self.data_dir.clone(),
            listen: self.listen,
            admin_listen: self.admin_listen,
            store: self.store.clone(),
            gateway: gureum_gateway::GatewaySettings {
                max_body_bytes: self.max_body_bytes,
                max_async_body_bytes: self.max_async_body_bytes,
            },
            functions_domain: self.functions_domain.clone(),
            trusted_proxies: self.trusted_proxy.clone(),
            connections: gureum_gateway::ConnectionSettings {
                header_timeout: self.header_timeout.into(),
                idle_timeout: self.idle_timeout.into(),
            },
            max_connections: self.max_connections,
            admin_max_connections: self.admin_max_connections,
            outbound_private: match self.outbound_private {
                OutboundPrivate::Deny => gureum_manifest::PrivateDestinations::Deny,
                OutboundPrivate::Allow => gureum_manifest::PrivateDestinations::Allow,
            },
            shutdown_grace: self.shutdown_grace.into(),
            refresh_reuse_interval: self.refresh_reuse_interval.into(),
            prices: self.prices.clone(),
            metrics_public: self.metrics_public,
            otlp_endpoint: self.otlp_endpoint.clone(),
            log_retention_days: self.log_retention_days,
            log_retention_interval: self.log_retention_interval.into(),
            unsandboxed_processes: self.unsandboxed_processes,
            metering: !self.no_metering,
            websocket: gureum_websocket::WsSettings {
                max_message_bytes: self.ws_max_message_bytes,
                idle_timeout: self.ws_idle_timeout.into(),
                max_age: self.ws_max_age.into(),
                max_connections: self.ws_max_connections,
                send_queue: self.ws_send_queue,
                ping_interval: self.ws_ping_interval.into(),
            },
            queue_concurrency: self.queue_concurrency,
            queue_lease: self.queue_lease.into(),
            domains: self.domains.clone(),
            http_listen: self.http_listen,
            http_redirect: self.http_redirect,
            hsts: self.hsts.map(Into::into),
        })
    }

    /// The TLS settings, or a message naming the flag that is missing or out of place.
    fn tls_mode(&self) -> anyhow::Result<Option<gureum_tls::TlsMode>> {
        let off = self.tls == TlsChoice::Off;
        let misplaced = |flag: &str, belongs: &str| {
            anyhow::bail!("{flag} only applies to {belongs}; add it or drop {flag}")
        };
        if self.tls != TlsChoice::Cert && (self.cert.is_some() || self.key.is_some()) {
            misplaced("--cert/--key", "--tls cert")?;
        }
        if self.tls != TlsChoice::Acme
            && (self.acme_email.is_some() || self.acme_ca_bundle.is_some())
        {
            misplaced("--acme-email/--acme-ca-bundle", "--tls acme")?;
        }
        if off && (self.hsts.is_some() || self.http_redirect || self.http_listen.is_some()) {
            misplaced("--hsts/--http-listen/--http-redirect", "HTTPS (--tls …)")?;
        }
        if off && !self.domains.is_empty() {
            misplaced("--domain", "HTTPS (--tls …)")?;
        }
        if self.http_redirect && self.http_listen.is_none() {
            anyhow::bail!(
                "--http-redirect redirects the plain-HTTP listener: add --http-listen ADDR, e.g. 0.0.0.0:80"
            );
        }
        Ok(match self.tls {
            TlsChoice::Off => None,
            TlsChoice::SelfSigned => Some(gureum_tls::TlsMode::SelfSigned),
            TlsChoice::Cert => {
                let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
                    anyhow::bail!(
                        "--tls cert needs --cert FILE (PEM chain, leaf first) and --key FILE (PEM private key)"
                    );
                };
                Some(gureum_tls::TlsMode::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                    reload_interval: self.cert_reload_interval.into(),
                })
            }
            TlsChoice::Acme => {
                if self.http_listen.is_none() {
                    anyhow::bail!(
                        "--tls acme proves the domains with HTTP-01 challenges on plain HTTP: add --http-listen 0.0.0.0:80 (port 80 of every --domain must reach it), usually with --http-redirect"
                    );
                }
                Some(gureum_tls::TlsMode::Acme(gureum_tls::AcmeOptions {
                    domains: Vec::new(),
                    email: self.acme_email.clone(),
                    directory: self.acme_directory.clone(),
                    ca_bundle: self.acme_ca_bundle.clone(),
                    retry_after_failure: Duration::from(self.acme_retry)
                        .max(Duration::from_millis(100)),
                }))
            }
        })
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    init_tracing(&args.log_format);
    let config = args.config()?;
    let platform = Platform::start(config).await?;
    let public_url = platform.public_url().to_string();
    let admin_url = platform.admin_url().to_string();
    let fresh = platform.functions_loaded() == 0 && !args.no_examples;
    if fresh {
        deploy_examples(
            platform.invoker(),
            platform.data(),
            &args.examples_dir,
            &public_url,
        )
        .await;
    }
    println!("gureum is up");
    println!("  functions:   {public_url}   (GET /fn/NAME/…)");
    if let Some(tls) = platform.tls() {
        println!("  https:       {}", tls.summary());
        match tls.ca_path() {
            Some(ca) if tls.is_self_signed() => println!(
                "               trust it: curl --cacert {} {public_url}/fn/hello   (`gureum tls ca` prints it)",
                ca.display()
            ),
            Some(ca) => println!(
                "               https://127.0.0.1 and localhost get the local CA's certificate: gureum --ca-cert {} --url {admin_url} …",
                ca.display()
            ),
            None => {}
        }
    }
    if let Some(address) = args.http_listen {
        println!(
            "  plain http:  http://{address}   ({})",
            if args.http_redirect {
                "ACME challenges; everything else redirects to HTTPS"
            } else {
                "ACME challenges and everything the public listener serves"
            }
        );
    }
    println!(
        "  control API: {admin_url}/api/v1   (token in {})",
        platform.token_path().display()
    );
    println!("  metrics:     {admin_url}/metrics");
    println!("  console:     {admin_url}/   (sign in with the admin token)");
    if fresh {
        println!("try:");
        println!("  curl {public_url}/fn/hello");
        println!("  curl {public_url}/greet/alice");
        println!(
            "  open {public_url}/notes/ in a browser (sign up, keep private notes, live in every tab)"
        );
    }

    if args.exit_on_stdin_close {
        tokio::select! {
            () = shutdown_signal() => {}
            () = stdin_closed() => {}
        }
    } else {
        shutdown_signal().await;
    }
    platform.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// `gureum up --config FILE`: parses the command line again with the file's settings
/// added as flags wherever neither a flag nor its `GUREUM_*` variable gave one, so a file
/// setting goes through the same parser and checks as its flag (each setting is
/// described once, by its flag). Keys are the flags' names (`admin-listen`, or
/// `admin_listen`); arrays repeat a flag; `true` sets a switch.
pub fn with_config_file(cli: super::Cli, argv: Vec<OsString>) -> anyhow::Result<super::Cli> {
    use clap::parser::ValueSource;
    use clap::{CommandFactory as _, Parser as _};
    let super::Command::Up(up) = &cli.command else {
        return Ok(cli);
    };
    let Some(path) = up.config.clone() else {
        return Ok(cli);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the server config {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let command = super::Cli::command();
    let matches = command.clone().try_get_matches_from(&argv)?;
    let given = matches
        .subcommand_matches("up")
        .context("the command line names `up`")?;
    let up_command = command
        .find_subcommand("up")
        .context("gureum has an `up` command")?;
    let mut extra: Vec<OsString> = Vec::new();
    for (key, value) in &table {
        let Some(arg) = up_command.get_arguments().find(|arg| {
            arg.get_long().is_some()
                && !arg.is_hide_set()
                && (arg.get_long() == Some(key.as_str())
                    || arg.get_id().as_str() == key.replace('-', "_"))
        }) else {
            anyhow::bail!(
                "{}: unknown key `{key}`: the keys are the flags of `gureum up` without their dashes (listen, admin-listen, data-dir, store, queue-lease, …; `gureum up --help` lists them)",
                path.display()
            );
        };
        let id = arg.get_id().as_str();
        let long = arg.get_long().unwrap_or(id);
        if id == "config" {
            anyhow::bail!(
                "{}: `config` cannot name another file from inside one",
                path.display()
            );
        }
        if matches!(
            given.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = OsString::from(format!("--{long}"));
        if !arg.get_action().takes_values() {
            match value {
                toml::Value::Boolean(true) => extra.push(flag),
                toml::Value::Boolean(false) => {}
                other => anyhow::bail!(
                    "{}: `{key}` is a switch: write {key} = true or false, not {other}",
                    path.display()
                ),
            }
            continue;
        }
        let items = match value {
            toml::Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for item in items {
            let text = match item {
                toml::Value::String(text) => text,
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Float(number) => number.to_string(),
                toml::Value::Boolean(flag) => flag.to_string(),
                other => anyhow::bail!(
                    "{}: `{key}` takes a string or a number (as --{long} does), not {other}",
                    path.display()
                ),
            };
            extra.push(flag.clone());
            extra.push(OsString::from(text));
        }
    }
    let mut merged = argv;
    merged.extend(extra);
    super::Cli::try_parse_from(merged)
        .map_err(|error| anyhow::anyhow!("with the settings of {}: {error}", path.display()))
}

/// Deploys every example directory with a manifest; an example's `collection.toml`
/// configures the collection named like the example (rules, indexes, file limits).
async fn deploy_examples(
    invoker: &Invoker,
    data: &gureum_data::DataService,
    examples_dir: &Path,
    public_url: &str,
) {
    let Ok(entries) = std::fs::read_dir(examples_dir) else {
        tracing::info!(dir = %examples_dir.display(), "no examples directory; nothing to deploy");
        return;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join(gureum_manifest::MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let deployed = async {
            let loaded = gureum_manifest::load(&dir)?;
            let artifact = super::read_artifact(&loaded).with_context(|| {
                format!(
                    "reading {} (run `cargo xtask build-fixtures` to build it)",
                    loaded.artifact_path.display()
                )
            })?;
            let static_bundle = super::read_static(&loaded)?;
            anyhow::Ok(
                invoker
                    .deploy_with_static(&loaded.text, artifact, static_bundle)
                    .await?,
            )
        }
        .await;
        match deployed {
            Ok(deployed) => println!(
                "deployed example {} version {} at {public_url}/fn/{}",
                deployed.function, deployed.version, deployed.function
            ),
            Err(error) => eprintln!("skipped example {}: {error:#}", dir.display()),
        }
        let collection = dir.join("collection.toml");
        if collection.is_file() {
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let configured = async {
                let text = std::fs::read_to_string(&collection)?;
                let input: gureum_data::CollectionConfigInput = toml::from_str(&text)?;
                data.set_config(&name, input).await?;
                anyhow::Ok(())
            }
            .await;
            match configured {
                Ok(()) => println!("configured collection {name} from {}", collection.display()),
                Err(error) => eprintln!("skipped {}: {error:#}", collection.display()),
            }
        }
    }
}

/// A `--trusted-proxy` value: a CIDR range, or one address (its /32 or /128).
fn parse_proxy(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("{value:?} is not an address or a CIDR range (e.g. 10.0.0.0/8, 127.0.0.1, ::1)")
        })
}

async fn stdin_closed() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 64];
    while let Ok(read) = stdin.read(&mut buffer).await {
        if read == 0 {
            return;
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal and without NO_COLOR, as the CLI does: a log file or a
    // collector must not be full of escape codes.
    use std::io::IsTerminal as _;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
