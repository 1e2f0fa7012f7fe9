//! The platform as a value: [`Platform::start`] assembles a node from a [`Config`], and
//! [`Platform::shutdown`] takes it apart without losing anything acknowledged. `gureum
//! up` is flags, a banner and signals around it; tests start it in process
//! (`crates/platform/tests`) and talk to its real sockets.
//!
//! `Platform::start`, in order: the data directory made private (`data_dir.rs`) and the
//! admin token (`files.rs`); the store; the open-file limit raised and the public and
//! admin ports bound; the node id (`files.rs`); TLS; the plain-HTTP and loopback
//! listeners; telemetry, quotas, the wasm engine and the invoker; the auth and data
//! services; the deployed functions loaded and the background tasks started (reaper,
//! registry sync, quota refresh, log retention); the WebSocket hub and the queue; then
//! the listeners serve. It returns once both listeners answer, and only then does ACME
//! ordering start, as the CA's HTTP-01 requests can now be answered.
//!
//! The public, `--http-listen` and loopback listeners (the loopback one is the functions'
//! `GUREUM_API` when TLS is on) share one `ConnectionSlots` count (`--max-connections`,
//! by default derived from the raised open-file limit). The admin listener has its own
//! (`--admin-max-connections`), so a public listener full of slow clients leaves the
//! control API reachable.
//!
//! `Platform::shutdown`, each step bounded by `--shutdown-grace`: WebSocket connections
//! are closed with 1001 and their `$disconnect`s run, while the platform API still
//! answers; the queue stops claiming, lets running events finish and frees the leases of
//! the rest; the listeners stop accepting and finish in-flight requests;
//! `Invoker::finish_accounting` waits until every answered request has handed its record
//! over. Then the background tasks are stopped, telemetry flushed, spans exported and the
//! store closed.
//!
//! Errors are [`PlatformError`]; `Bind` names the listener and how to choose another
//! address.

mod config;
mod data_dir;
mod files;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gureum_data::DataService;
use gureum_invoke::{Invoker, InvokerParts};
use gureum_queue::Queue;
use gureum_runtime_wasm::{WasmEngine, WasmEngineConfig};
use gureum_store::Store;
use gureum_telemetry::{Metrics, TelemetryWriter, WriterSettings};
use gureum_tracing::Tracer;
use gureum_websocket::Hub;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Config, DEFAULT_DATA_DIR};
pub use files::{NODE_ID_FILE, TOKEN_FILE};

/// Why the platform did not start.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A file or directory of the installation.
    #[error("{what}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A listener's address is taken or not allowed.
    #[error("binding the {listener} listener to {address}; {hint}")]
    Bind {
        /// Which listener.
        listener: &'static str,
        /// Its address.
        address: SocketAddr,
        /// How to choose another.
        hint: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A part of the platform failed to start.
    #[error("{what}")]
    Start {
        /// Which part, and with what.
        what: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PlatformError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        PlatformError::Io {
            what: what.into(),
            source,
        }
    }

    fn start(
        what: impl Into<String>,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Self {
        let what = what.into();
        move |source| PlatformError::Start { what, source }
    }
}

/// Wraps any error as the failed start of `what`.
trait Starting<T> {
    fn starting(self, what: impl Into<String>) -> Result<T, PlatformError>;
}

impl<T, E: Into<Box<dyn std::error::Error + Send + Sync>>> Starting<T> for Result<T, E> {
    fn starting(self, what: impl Into<String>) -> Result<T, PlatformError> {
        self.map_err(|error| PlatformError::start(what)(error.into()))
    }
}

/// A running installation node.
pub struct Platform {
    public_url: String,
    admin_url: String,
    admin_token: String,
    token_path: PathBuf,
    functions_loaded: usize,
    grace: Duration,
    store: Store,
    invoker: Arc<Invoker>,
    data: Arc<DataService>,
    hub: Arc<Hub>,
    queue: Arc<Queue>,
    tls: Option<gureum_tls::Tls>,
    stop: watch::Sender<bool>,
    public: JoinHandle<()>,
    side_listeners: Vec<JoinHandle<()>>,
    admin: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    telemetry_writer: TelemetryWriter,
    tracer: Tracer,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("public_url", &self.public_url)
            .field("admin_url", &self.admin_url)
            .finish_non_exhaustive()
    }
}

impl Platform {
    /// Starts a node with `config`: once this returns, both listeners answer.
    pub async fn start(config: Config) -> Result<Platform, PlatformError> {
        let store_url = config.store_url();
        data_dir::prepare_data_dir(
            &config.data_dir,
            &store_url,
            &[TOKEN_FILE, NODE_ID_FILE, gureum_auth::KEY_FILE],
        )?;
        let token_path = config.data_dir.join(TOKEN_FILE);
        let admin_token = files::admin_token(&token_path)?;
        let store = Store::open(&store_url).await.starting(format!(
            "opening the store {}",
            gureum_store::redact(&store_url)
        ))?;
        let prices = match &config.prices {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    PlatformError::io(format!("reading the price list {}", path.display()), e)
                })?;
                Some(
                    gureum_metering::Prices::from_toml(&text)
                        .starting(format!("in the price list {}", path.display()))?,
                )
            }
            None => None,
        };
        let tracer = match &config.otlp_endpoint {
            Some(endpoint) => {
                Tracer::otlp(endpoint).starting(format!("--otlp-endpoint {endpoint}"))?
            }
            None => Tracer::disabled(),
        };

        let open_files = files::raise_open_file_limit();
        let public_slots = gureum_tls::ConnectionSlots::new(
            "public",
            config.max_connections.unwrap_or_else(|| {
                files::default_max_connections(open_files, config.admin_max_connections)
            }),
        );
        let admin_slots = gureum_tls::ConnectionSlots::new("admin", config.admin_max_connections);
        tracing::info!(
            open_files,
            public = public_slots.limit(),
            admin = admin_slots.limit(),
            "connection limits"
        );
        let public_listener =
            bind(config.listen, "public", "pass --listen ADDR to use another").await?;
        let admin_listener = bind(
            config.admin_listen,
            "admin",
            "pass --admin-listen ADDR to use another",
        )
        .await?;
        let node_id = files::node_id(&config.data_dir)?;
        let mut tls = match &config.tls {
            Some(mode) => Some(
                gureum_tls::Tls::start(
                    gureum_tls::TlsOptions {
                        mode: mode.clone(),
                        domains: config.domains.clone(),
                        data_dir: config.data_dir.clone(),
                        node_id: node_id.clone(),
                    },
                    &store,
                )
                .await
                .starting("setting up HTTPS (--tls)")?,
            ),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = format!("{scheme}://{}", local_addr(&public_listener)?);
        let admin_url = format!("{scheme}://{}", local_addr(&admin_listener)?);
        let (public_listener, admin_listener) = match &tls {
            Some(tls) => (
                gureum_tls::Listener::tls(
                    public_listener,
                    tls.server_config(),
                    public_slots.clone(),
                )
                .starting("the public listener")?,
                gureum_tls::Listener::tls(admin_listener, tls.server_config(), admin_slots)
                    .starting("the admin listener")?,
            ),
            None => (
                gureum_tls::Listener::plain(public_listener, public_slots.clone())
                    .starting("the public listener")?,
                gureum_tls::Listener::plain(admin_listener, admin_slots)
                    .starting("the admin listener")?,
            ),
        };
        let http_listener = match config.http_listen {
            Some(address) => Some(
                gureum_tls::Listener::plain(
                    bind(address, "plain-HTTP", "check --http-listen").await?,
                    public_slots.clone(),
                )
                .starting("the plain-HTTP listener")?,
            ),
            None => None,
        };
        // Functions call the platform back (GUREUM_API) over a loopback listener in plain
        // HTTP: they need no trust in the certificate (a local CA's is in no function's
        // roots) and the internal hop pays no handshake. It shares the public listener's
        // connection count, so the descriptors it may take are already budgeted.
        let internal_listener = match &tls {
            Some(_) => Some(
                gureum_tls::Listener::plain(
                    bind(
                        SocketAddr::from(([127, 0, 0, 1], 0)),
                        "loopback platform",
                        "functions call the platform there",
                    )
                    .await?,
                    public_slots,
                )
                .starting("the loopback listener for functions' platform calls")?,
            ),
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
                .starting("loading the price list and quotas")?;
        let engine = WasmEngine::new(&WasmEngineConfig {
            cache_dir: config.data_dir.join("cache"),
            pool_instances: gureum_runtime_wasm::DEFAULT_POOL_INSTANCES,
        })
        .starting("starting the wasm engine")?
        .with_key_value(Arc::new(gureum_invoke::StoreKeyValue::new(store.clone())));
        let token_key = store
            .setting_or_insert(
                gureum_invoke::TOKEN_KEY_SETTING,
                &gureum_invoke::FunctionTokens::generate_key(),
            )
            .await
            .starting("reading the function token key from the store")?;
        let invoker = Invoker::new(InvokerParts {
            store: store.clone(),
            engine,
            lambda: Arc::new(gureum_runtime_lambda::LambdaRuntime::new(
                &config.data_dir,
                // The sandbox runs this binary as its last step.
                gureum_runtime_lambda::Isolation::detect(
                    config.unsandboxed_processes,
                    &gureum_sandbox::Sandbox::this_binary(),
                ),
            )),
            telemetry: telemetry.clone(),
            metrics: metrics.clone(),
            platform_env: vec![("GUREUM_API".into(), platform_url)],
            tracer: tracer.clone(),
            quotas: quotas.clone(),
            metering: config.metering,
            tokens: gureum_invoke::FunctionTokens::new(token_key.as_bytes()),
            outbound_private: config.outbound_private,
        });
        invoker.export_pool_metrics();
        // The registry decides whether a function token's version may still use it and
        // what its [permissions] grant; weak, so the services do not keep it alive.
        let registry = Arc::downgrade(&invoker);
        let auth = gureum_auth::AuthService::open(
            store.clone(),
            &config.data_dir,
            admin_token.clone(),
            Box::new(move |presented| match registry.upgrade() {
                Some(invoker) => invoker
                    .function_identity(presented)
                    .map_err(|refusal| refusal.to_string()),
                None => Err("the server is shutting down".into()),
            }),
            config.refresh_reuse_interval,
        )
        .await
        .starting("opening the auth service")?;
        let data = DataService::new(store.clone(), &config.data_dir)
            .await
            .starting("opening the data services")?;
        let services = gureum_gateway::Services::new(auth, &data);
        let functions_loaded = invoker
            .load()
            .await
            .starting("loading the deployed functions")?;
        let mut background = vec![
            invoker.spawn_reaper(),
            invoker.spawn_registry_sync(),
            quotas.spawn_refresh(),
        ];
        background.extend(gureum_telemetry::spawn_retention(
            store.clone(),
            config.log_retention_days,
            config.log_retention_interval,
        ));

        let (stop, stopped) = watch::channel(false);
        let grace = config.shutdown_grace;
        let hub = Hub::new(
            invoker.clone(),
            metrics.clone(),
            telemetry.clone(),
            config.websocket,
        );
        let queue = Queue::start(
            store.clone(),
            invoker.clone(),
            metrics.clone(),
            node_id,
            gureum_queue::QueueSettings {
                concurrency: config.queue_concurrency.max(1),
                lease: config.queue_lease.max(Duration::from_secs(1)),
                ..gureum_queue::QueueSettings::default()
            },
        )
        .await
        .starting("starting the asynchronous queue")?;
        let plane = gureum_gateway::PublicPlane {
            invoker: invoker.clone(),
            hub: hub.clone(),
            queue: queue.clone(),
            services: services.clone(),
            acme: tls.as_ref().and_then(gureum_tls::Tls::challenges),
            functions_domain: config
                .functions_domain
                .as_deref()
                .map(|domain| Arc::from(domain.trim_end_matches('.').to_ascii_lowercase())),
        };
        let trusted_proxies = Arc::new(config.trusted_proxies.clone());
        if !trusted_proxies.is_empty() {
            tracing::info!(
                proxies = ?trusted_proxies,
                "reading the client address from X-Forwarded-For / Forwarded of these proxies"
            );
        }
        let hsts = match config.hsts {
            Some(max_age) => Some(
                http::HeaderValue::from_str(&format!("max-age={}", max_age.as_secs()))
                    .starting("--hsts")?,
            ),
            None => None,
        };
        let https_port = public_listener.local_addr().port();
        let connections = config.connections;
        let gateway = config.gateway;
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
            wait_for(stopped.clone()),
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
                    redirect_to_https: config.http_redirect.then_some(https_port),
                    trusted_proxies: trusted_proxies.clone(),
                    connections,
                },
                wait_for(stopped.clone()),
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
                wait_for(stopped.clone()),
                grace,
            )));
        }
        let admin_router = gureum_control_api::router(gureum_control_api::AdminState {
            invoker: invoker.clone(),
            store: store.clone(),
            metrics,
            token: Arc::new(admin_token.clone()),
            public_url: Arc::new(public_url.clone()),
            gateway,
            metrics_public: config.metrics_public,
            queue: queue.clone(),
            services,
            data: data.clone(),
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
            wait_for(stopped),
            grace,
        ));
        // Ordering starts only now that the listeners answer the CA's HTTP-01 requests.
        if let Some(tls) = &mut tls {
            tls.start_renewal();
        }
        Ok(Platform {
            public_url,
            admin_url,
            admin_token,
            token_path,
            functions_loaded,
            grace,
            store,
            invoker,
            data,
            hub,
            queue,
            tls,
            stop,
            public,
            side_listeners,
            admin,
            background,
            telemetry_writer,
            tracer,
        })
    }

    /// `http(s)://ADDR` of the public listener (functions, WebSockets, services).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// `http(s)://ADDR` of the admin listener (control API, console, metrics).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The admin token (control API).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Where the admin token is kept.
    pub fn token_path(&self) -> &Path {
        &self.token_path
    }

    /// How many functions were deployed when the node started.
    pub fn functions_loaded(&self) -> usize {
        self.functions_loaded
    }

    /// The invoker (deploys, invocations, the registry).
    pub fn invoker(&self) -> &Arc<Invoker> {
        &self.invoker
    }

    /// The data services (collections, documents, files).
    pub fn data(&self) -> &Arc<DataService> {
        &self.data
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// HTTPS, when on.
    pub fn tls(&self) -> Option<&gureum_tls::Tls> {
        self.tls.as_ref()
    }

    /// Stops the node, each part given the configured grace: WebSocket clients get their
    /// close (and functions their `$disconnect`) while the platform API still answers;
    /// running events finish or give their leases back; the listeners stop taking
    /// connections and finish what is in flight; the last invocations are accounted and
    /// flushed to the store before it closes. Nothing acknowledged is lost.
    pub async fn shutdown(self) {
        let grace = self.grace;
        self.hub.shutdown(grace).await;
        self.queue.shutdown(grace).await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = self.stop.send(true);
        let _ = self.public.await;
        for listener in self.side_listeners {
            let _ = listener.await;
        }
        if tokio::time::timeout(grace, self.admin).await.is_err() {
            tracing::warn!("admin listener did not stop within the grace period");
        }
        // Records wait for their response bodies: hand the last ones to telemetry
        // before the flush, so no acknowledged request goes unrecorded.
        if tokio::time::timeout(grace, self.invoker.finish_accounting())
            .await
            .is_err()
        {
            tracing::warn!("invocation accounting did not finish within the grace period");
        }
        drop(self.tls);
        for task in self.background {
            task.abort();
        }
        self.telemetry_writer.shutdown().await;
        self.tracer.shutdown().await;
        self.store.close().await;
        tracing::info!("stopped");
    }
}

async fn bind(
    address: SocketAddr,
    listener: &'static str,
    hint: &'static str,
) -> Result<TcpListener, PlatformError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| PlatformError::Bind {
            listener,
            address,
            hint,
            source,
        })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, PlatformError> {
    listener
        .local_addr()
        .map_err(|e| PlatformError::io("reading a listener's address", e))
}

async fn wait_for(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
