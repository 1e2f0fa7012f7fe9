//! Everything a node is started with, typed. `gureum up` fills it from its flags (each
//! also an environment variable and a key of `--config FILE`); tests fill it directly.
//! The defaults here are the flags' defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gureum_gateway::{ConnectionSettings, GatewaySettings};
use gureum_manifest::PrivateDestinations;
use gureum_websocket::WsSettings;

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".gureum";

/// A node's settings; see `gureum up --help` for each.
#[derive(Debug, Clone)]
pub struct Config {
    /// SQLite store (unless `store` is set), compiled-code cache, admin token, keys.
    pub data_dir: PathBuf,
    /// Public listener: functions, WebSockets, data/auth APIs (port 0: any free port).
    pub listen: SocketAddr,
    /// Admin listener: control API, metrics, console.
    pub admin_listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; `None`: `sqlite://DATA_DIR/gureum.db`.
    pub store: Option<String>,
    /// Request body limits.
    pub gateway: GatewaySettings,
    /// Serve every function at `NAME.DOMAIN` too.
    pub functions_domain: Option<String>,
    /// Proxies whose forwarding headers name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Header and idle timeouts of every listener.
    pub connections: ConnectionSettings,
    /// Most connections of the public listener; `None`: from the open-file limit.
    pub max_connections: Option<usize>,
    /// Most connections of the admin listener.
    pub admin_max_connections: usize,
    /// Whether functions reach private addresses through names.
    pub outbound_private: PrivateDestinations,
    /// How long in-flight work may finish at shutdown.
    pub shutdown_grace: Duration,
    /// How long a rotated refresh token presented again gets the same successor.
    pub refresh_reuse_interval: Duration,
    /// A price list (TOML) replacing the stored one at start.
    pub prices: Option<PathBuf>,
    /// Serve `/metrics` without the admin token.
    pub metrics_public: bool,
    /// OTLP/HTTP collector for trace spans.
    pub otlp_endpoint: Option<String>,
    /// Days of logs and invocation records kept (0: forever).
    pub log_retention_days: u32,
    /// How often logs past retention are deleted.
    pub log_retention_interval: Duration,
    /// Process functions without their sandbox (trusted code only).
    pub unsandboxed_processes: bool,
    /// Invocation records, usage, quotas and invocation metrics (off only to measure
    /// what they cost).
    pub metering: bool,
    /// WebSocket limits.
    pub websocket: WsSettings,
    /// Asynchronous events this node runs at once.
    pub queue_concurrency: usize,
    /// How long a claim on a running event lasts without renewal.
    pub queue_lease: Duration,
    /// HTTPS on both listeners, and where its certificate comes from.
    pub tls: Option<gureum_tls::TlsMode>,
    /// Names the certificate covers.
    pub domains: Vec<String>,
    /// A plain-HTTP listener beside the HTTPS ones (ACME challenges, redirects).
    pub http_listen: Option<SocketAddr>,
    /// Redirect the plain-HTTP listener to HTTPS.
    pub http_redirect: bool,
    /// `Strict-Transport-Security` max-age on HTTPS answers.
    pub hsts: Option<Duration>,
}

impl Config {
    /// The defaults, with the data directory at `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            store: None,
            gateway: GatewaySettings {
                max_body_bytes: gureum_gateway::DEFAULT_MAX_BODY_BYTES,
                max_async_body_bytes: gureum_gateway::DEFAULT_MAX_ASYNC_BODY_BYTES,
            },
            functions_domain: None,
            trusted_proxies: Vec::new(),
            connections: ConnectionSettings {
                header_timeout: gureum_gateway::DEFAULT_HEADER_TIMEOUT,
                idle_timeout: gureum_gateway::DEFAULT_IDLE_TIMEOUT,
            },
            max_connections: None,
            admin_max_connections: gureum_gateway::DEFAULT_ADMIN_MAX_CONNECTIONS,
            outbound_private: PrivateDestinations::Deny,
            shutdown_grace: Duration::from_secs(10),
            refresh_reuse_interval: Duration::from_secs(10),
            prices: None,
            metrics_public: false,
            otlp_endpoint: None,
            log_retention_days: 30,
            log_retention_interval: Duration::from_secs(3600),
            unsandboxed_processes: false,
            metering: true,
            websocket: WsSettings::default(),
            queue_concurrency: 64,
            queue_lease: Duration::from_secs(30),
            tls: None,
            domains: Vec::new(),
            http_listen: None,
            http_redirect: false,
            hsts: None,
        }
    }

    /// For tests: the defaults with both listeners on free loopback ports.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::new(data_dir)
        }
    }

    /// The store's URL: `store`, or the SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        match &self.store {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("gureum.db").display()),
        }
    }
}
