//! `gureum up`: open the store, start the engine, the invoker, both listeners, deploy
//! the examples into an empty platform, and shut down gracefully on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gureum_gateway::GatewaySettings;
use gureum_invoke::{Invoker, InvokerParts};
use gureum_runtime_wasm::{WasmEngine, WasmEngineConfig};
use gureum_telemetry::{Metrics, WriterSettings};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".gureum";
/// The admin token's file name inside the data directory.
pub const TOKEN_FILE: &str = "admin.token";

/// Arguments of `gureum up`; every flag also reads a `GUREUM_*` environment variable.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
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

/// File in the data directory holding this node's id (the owner of its queue leases).
pub const NODE_ID_FILE: &str = "node.id";

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    init_tracing(&args.log_format);
    let tls_mode = args.tls_mode()?;
    let store_url = match &args.store {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", args.data_dir.join("gureum.db").display()),
    };
    super::data_dir::prepare_data_dir(
        &args.data_dir,
        &store_url,
        &[TOKEN_FILE, NODE_ID_FILE, gureum_auth::KEY_FILE],
    )?;
    let token_path = args.data_dir.join(TOKEN_FILE);
    let token = admin_token(&token_path)?;
    let store = gureum_store::Store::open(&store_url)
        .await
        .with_context(|| format!("opening the store {}", redact(&store_url)))?;
    let prices = match &args.prices {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the price list {}", path.display()))?;
            Some(
                gureum_metering::Prices::from_toml(&text)
                    .with_context(|| format!("in the price list {}", path.display()))?,
            )
        }
        None => None,
    };
    let tracer = match &args.otlp_endpoint {
        Some(endpoint) => gureum_tracing::Tracer::otlp(endpoint)
            .with_context(|| format!("--otlp-endpoint {endpoint}"))?,
        None => gureum_tracing::Tracer::disabled(),
    };

    let open_files = raise_open_file_limit();
    let public_slots = gureum_tls::ConnectionSlots::new(
        "public",
        args.max_connections
            .unwrap_or_else(|| default_max_connections(open_files, args.admin_max_connections)),
    );
    let admin_slots = gureum_tls::ConnectionSlots::new("admin", args.admin_max_connections);
    tracing::info!(
        open_files,
        public = public_slots.limit(),
        admin = admin_slots.limit(),
        "connection limits"
    );
    let connections = gureum_gateway::ConnectionSettings {
        header_timeout: args.header_timeout.into(),
        idle_timeout: args.idle_timeout.into(),
    };
    let public_listener = TcpListener::bind(args.listen).await.with_context(|| {
        format!(
            "binding the public listener to {}; pass --listen ADDR to use another",
            args.listen
        )
    })?;
    let admin_listener = TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| {
            format!(
                "binding the admin listener to {}; pass --admin-listen ADDR to use another",
                args.admin_listen
            )
        })?;
    let node_id = node_id(&args.data_dir)?;
    let mut tls = match tls_mode {
        Some(mode) => Some(
            gureum_tls::Tls::start(
                gureum_tls::TlsOptions {
                    mode,
                    domains: args.domains.clone(),
                    data_dir: args.data_dir.clone(),
                    node_id: node_id.clone(),
                },
                &store,
            )
            .await
            .context("setting up HTTPS (--tls)")?,
        ),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = format!("{scheme}://{}", public_listener.local_addr()?);
    let admin_url = format!("{scheme}://{}", admin_listener.local_addr()?);
    let (public_listener, admin_listener) = match &tls {
        Some(tls) => (
            gureum_tls::Listener::tls(public_listener, tls.server_config(), public_slots.clone())?,
            gureum_tls::Listener::tls(admin_listener, tls.server_config(), admin_slots)?,
        ),
        None => (
            gureum_tls::Listener::plain(public_listener, public_slots.clone())?,
            gureum_tls::Listener::plain(admin_listener, admin_slots)?,
        ),
    };
    let http_listener = match args.http_listen {
        Some(address) => Some(gureum_tls::Listener::plain(
            TcpListener::bind(address).await.with_context(|| {
                format!("binding the plain-HTTP listener to {address} (--http-listen)")
            })?,
            public_slots.clone(),
        )?),
        None => None,
    };
    // Functions call the platform back (GUREUM_API) over a loopback listener in plain
    // HTTP: they need no trust in the certificate (a local CA's is in no function's
    // roots) and the internal hop pays no handshake.
    let internal_listener = match &tls {
        Some(_) => Some(gureum_tls::Listener::plain(
            TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding the loopback listener for functions' platform calls")?,
            // Part of the public plane: it shares the public listener's count, so the
            // descriptors it may take are already budgeted.
            public_slots,
        )?),
        None => None,
    };
    let platform_url = match &internal_listener {
        Some(listener) => format!("http://{}", listener.local_addr()),
        None => public_url.clone(),
    };

    let metrics = Arc::new(Metrics::new());
    let (telemetry, telemetry_writer) = gureum_telemetry::start(
        store.clone(),
        WriterSettings::default(),
        metrics.records_overflowed.clone(),
    );
    let quotas =
        gureum_invoke::Quotas::load(store.clone(), metrics.clone(), telemetry.clone(), prices)
            .await
            .context("loading the price list and quotas")?;
    let engine = WasmEngine::new(&WasmEngineConfig {
        cache_dir: args.data_dir.join("cache"),
        pool_instances: gureum_runtime_wasm::DEFAULT_POOL_INSTANCES,
    })?
    .with_key_value(Arc::new(gureum_invoke::StoreKeyValue::new(store.clone())));
    let token_key = store
        .setting_or_insert(
            gureum_invoke::TOKEN_KEY_SETTING,
            &gureum_invoke::FunctionTokens::generate_key(),
        )
        .await
        .context("reading the function token key from the store")?;
    let tokens = gureum_invoke::FunctionTokens::new(token_key.as_bytes());
    let invoker = Invoker::new(InvokerParts {
        store: store.clone(),
        engine,
        lambda: Arc::new(gureum_runtime_lambda::LambdaRuntime::new(
            &args.data_dir,
            // The sandbox runs this binary as its last step.
            gureum_runtime_lambda::Isolation::detect(
                args.unsandboxed_processes,
                &gureum_sandbox::Sandbox::this_binary(),
            ),
        )),
        telemetry: telemetry.clone(),
        metrics: metrics.clone(),
        platform_env: vec![("GUREUM_API".into(), platform_url.clone())],
        tracer: tracer.clone(),
        quotas: quotas.clone(),
        metering: !args.no_metering,
        tokens,
        outbound_private: match args.outbound_private {
            OutboundPrivate::Deny => gureum_manifest::PrivateDestinations::Deny,
            OutboundPrivate::Allow => gureum_manifest::PrivateDestinations::Allow,
        },
    });
    invoker.export_pool_metrics();
    // The registry decides whether a function token's version may still use it and what
    // its [permissions] grant; weak, so the services do not keep the invoker alive.
    let registry = Arc::downgrade(&invoker);
    let auth = gureum_auth::AuthService::open(
        store.clone(),
        &args.data_dir,
        token.clone(),
        Box::new(move |presented| match registry.upgrade() {
            Some(invoker) => invoker
                .function_identity(presented)
                .map_err(|refusal| refusal.to_string()),
            None => Err("the server is shutting down".into()),
        }),
        *args.refresh_reuse_interval,
    )
    .await
    .context("opening the auth service")?;
    let data = gureum_data::DataService::new(store.clone(), &args.data_dir)
        .await
        .context("opening the data services")?;
    let services = gureum_gateway::Services::new(auth, &data);
    let loaded = invoker.load().await?;
    let reaper = invoker.spawn_reaper();
    let registry_sync = invoker.spawn_registry_sync();
    let quota_refresh = quotas.spawn_refresh();
    let retention = gureum_telemetry::spawn_retention(
        store.clone(),
        args.log_retention_days,
        args.log_retention_interval.into(),
    );
    if loaded == 0 && !args.no_examples {
        deploy_examples(&invoker, &data, &args.examples_dir, &public_url).await;
    }

    let gateway = GatewaySettings {
        max_body_bytes: args.max_body_bytes,
        max_async_body_bytes: args.max_async_body_bytes,
    };
    let (stop_sender, stop) = watch::channel(false);
    let grace: Duration = args.shutdown_grace.into();
    let hub = gureum_websocket::Hub::new(
        invoker.clone(),
        metrics.clone(),
        telemetry.clone(),
        gureum_websocket::WsSettings {
            max_message_bytes: args.ws_max_message_bytes,
            idle_timeout: args.ws_idle_timeout.into(),
            max_age: args.ws_max_age.into(),
            max_connections: args.ws_max_connections,
            send_queue: args.ws_send_queue,
            ping_interval: args.ws_ping_interval.into(),
        },
    );
    let queue = gureum_queue::Queue::start(
        store.clone(),
        invoker.clone(),
        metrics.clone(),
        node_id,
        gureum_queue::QueueSettings {
            concurrency: args.queue_concurrency.max(1),
            lease: Duration::from(args.queue_lease).max(Duration::from_secs(1)),
            ..gureum_queue::QueueSettings::default()
        },
    )
    .await
    .context("starting the asynchronous queue")?;
    let plane = gureum_gateway::PublicPlane {
        invoker: invoker.clone(),
        hub: hub.clone(),
        queue: queue.clone(),
        services: services.clone(),
        acme: tls.as_ref().and_then(gureum_tls::Tls::challenges),
        functions_domain: args
            .functions_domain
            .as_deref()
            .map(|domain| Arc::from(domain.trim_end_matches('.').to_ascii_lowercase())),
    };
    let trusted_proxies = Arc::new(args.trusted_proxy.clone());
    if !trusted_proxies.is_empty() {
        tracing::info!(
            proxies = ?trusted_proxies,
            "reading the client address from X-Forwarded-For / Forwarded of these proxies"
        );
    }
    let hsts = match args.hsts {
        Some(max_age) => Some(
            http::HeaderValue::from_str(&format!("max-age={}", Duration::from(max_age).as_secs()))
                .context("--hsts")?,
        ),
        None => None,
    };
    let https_port = public_listener.local_addr().port();
    let public = tokio::spawn(gureum_gateway::serve_connections(
        public_listener,
        plane.clone(),
        gateway,
        gureum_gateway::ListenerOptions {
            hsts: hsts.clone(),
            redirect_to_https: None,
            trusted_proxies: trusted_proxies.clone(),
            connections,
        },
        wait_for(stop.clone()),
        grace,
    ));
    let mut side_listeners = Vec::new();
    if let Some(listener) = http_listener {
        side_listeners.push(tokio::spawn(gureum_gateway::serve_connections(
            listener,
            plane.clone(),
            gateway,
            gureum_gateway::ListenerOptions {
                hsts: None,
                redirect_to_https: args.http_redirect.then_some(https_port),
                trusted_proxies: trusted_proxies.clone(),
                connections,
            },
            wait_for(stop.clone()),
            grace,
        )));
    }
    if let Some(listener) = internal_listener {
        side_listeners.push(tokio::spawn(gureum_gateway::serve_connections(
            listener,
            plane,
            gateway,
            gureum_gateway::ListenerOptions {
                connections,
                ..gureum_gateway::ListenerOptions::default()
            },
            wait_for(stop.clone()),
            grace,
        )));
    }
    let admin_router = gureum_control_api::router(gureum_control_api::AdminState {
        invoker: invoker.clone(),
        store: store.clone(),
        metrics,
        token: Arc::new(token),
        public_url: Arc::new(public_url.clone()),
        gateway,
        metrics_public: args.metrics_public,
        queue: queue.clone(),
        services,
        data,
        websockets: hub.clone(),
    });
    let admin_router = match hsts {
        Some(hsts) => admin_router.layer(axum::middleware::map_response(
            move |mut response: axum::response::Response| {
                let hsts = hsts.clone();
                async move {
                    response
                        .headers_mut()
                        .insert(http::header::STRICT_TRANSPORT_SECURITY, hsts);
                    response
                }
            },
        )),
        None => admin_router,
    };
    // Its own accept loop and connection slots, with the public listener's timeouts:
    // a public listener full of slow clients leaves the control API reachable.
    let admin = tokio::spawn(gureum_gateway::serve_router(
        admin_listener,
        connections,
        admin_router,
        wait_for(stop),
        grace,
    ));

    // Ordering starts only now that the listeners answer the CA's HTTP-01 requests.
    if let Some(tls) = &mut tls {
        tls.start_renewal();
    }
    println!("gureum is up");
    println!("  functions:   {public_url}   (GET /fn/NAME/…)");
    if let Some(tls) = &tls {
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
        token_path.display()
    );
    println!("  metrics:     {admin_url}/metrics");
    println!("  console:     {admin_url}/   (sign in with the admin token)");
    if loaded == 0 && !args.no_examples {
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
    // WebSocket clients get their close and functions their `$disconnect` while the
    // public listener still serves the platform API those functions may call.
    hub.shutdown(grace).await;
    // Events still running get the grace to finish; the leases of any that do not are
    // freed, so they run again (on another node, or after the restart).
    queue.shutdown(grace).await;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    let _ = stop_sender.send(true);
    let _ = public.await;
    for listener in side_listeners {
        let _ = listener.await;
    }
    if tokio::time::timeout(grace, admin).await.is_err() {
        tracing::warn!("admin listener did not stop within the grace period");
    }
    // Accounting of the last invocations (records wait for their response bodies) is
    // handed to telemetry before the flush, so no acknowledged request goes unrecorded.
    if tokio::time::timeout(grace, invoker.finish_accounting())
        .await
        .is_err()
    {
        tracing::warn!("invocation accounting did not finish within the grace period");
    }
    drop(tls);
    reaper.abort();
    registry_sync.abort();
    quota_refresh.abort();
    if let Some(retention) = retention {
        retention.abort();
    }
    telemetry_writer.shutdown().await;
    tracer.shutdown().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// This node's id, created on first start and kept in the data directory, so a restarted
/// node recognises (and frees at once) the queue leases it held before.
/// Raises the soft limit on open files to the hard limit (systemd's default soft limit
/// of 1024 is what a thousand idle sockets exhausted in audit finding 7) and returns the
/// limit now in force.
fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return limit.maximum.unwrap_or(u64::MAX),
            Err(error) => tracing::warn!(%error, current, "could not raise the open-file limit"),
        }
    }
    current
}

/// The public listener's connection cap when `--max-connections` is not given: what the
/// open-file limit leaves after the admin listener's cap and room for the server's own
/// files (store, compiled code, process functions, outbound connections), an eighth of
/// the limit and at least 256.
fn default_max_connections(open_files: u64, admin_max_connections: usize) -> usize {
    let open_files = usize::try_from(open_files).unwrap_or(usize::MAX);
    let reserve = (open_files / 8).max(256);
    open_files
        .saturating_sub(reserve)
        .saturating_sub(admin_max_connections)
        .max(64)
}

fn node_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::now_v7().simple().to_string();
            write_private(&path, &id).with_context(|| format!("writing {}", path.display()))?;
            Ok(id)
        }
    }
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

fn admin_token(path: &Path) -> anyhow::Result<String> {
    if let Ok(token) = std::fs::read_to_string(path) {
        let token = token.trim().to_string();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let token: String = {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    };
    write_private(path, &token)
        .with_context(|| format!("writing the admin token to {}", path.display()))?;
    Ok(token)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
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

fn redact(url: &str) -> String {
    // Hide a password in postgres://user:password@host/db.
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
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

async fn wait_for(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
