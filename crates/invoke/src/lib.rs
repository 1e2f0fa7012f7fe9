//! The one path from (function, request) to response. The [`Invoker`] keeps the routing
//! table and each function's live version in memory, loads a version's code on its
//! first request (a cold start), leases instances from the version's pool, runs the
//! request and hands logs, the invocation record and metrics to telemetry without
//! waiting on the store. Deploy and rollback commit to the store first and then swap the
//! in-memory state, so a request sees either the old or the new version, never a mix.

mod body;
mod deploy;
mod kv;
mod lambda;
mod metrics;
mod quota;
mod retired;
mod routes;
pub mod static_site;
mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gureum_model::{
    FunctionIdentity, FunctionName, FunctionSpec, InvocationOutcome, InvocationRecord, LogLine,
    LogStream, Runtime, Trigger, VersionNumber,
};
use gureum_pool::{InstancePool, Lease, PoolError, PoolSettings};
use gureum_runtime_lambda::{LambdaInstance, LambdaRuntime, ProcessSettings};
use gureum_runtime_wasm::{
    CompiledComponent, Failure, Finished, InstanceSettings, LoadSource, WasmEngine, WasmInstance,
};
use gureum_store::Store;
use gureum_telemetry::{Metrics, PoolSample, PoolStats, Telemetry};
use gureum_tracing::{InvocationAttrs, InvocationSpan, Tracer};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::sync::OnceCell;
use tokio_util::task::TaskTracker;

use crate::metrics::VersionMetrics;
use crate::static_site::{Asked, Outcome, Site};

pub use deploy::{DeployError, Deployed};
pub use kv::StoreKeyValue;
pub use quota::{QuotaError, QuotaRefusal, Quotas};
pub use retired::TOKEN_GRACE;
pub use routes::RouteTable;
pub use static_site::{MountRoot, StaticError};
pub use tokens::{FunctionTokens, TOKEN_KEY_SETTING};

/// Why a presented function token is not honoured; the message is the 401's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Not minted by this installation (or altered).
    #[error("not a function token of this installation")]
    Unknown,
    /// Its function is not deployed (any more).
    #[error("function {0:?} is not deployed; a removed function's tokens stop working with it")]
    Removed(String),
    /// Its version was replaced longer ago than the grace.
    #[error(
        "the token of {function:?} version {version} expired: that version is no longer live (live is {live}) and was replaced more than {grace_min} minutes ago, or before this server started"
    )]
    Retired {
        /// The function.
        function: String,
        /// The token's version.
        version: VersionNumber,
        /// The live version.
        live: VersionNumber,
        /// The grace in minutes.
        grace_min: u64,
    },
}

/// How often a node checks whether another node changed what is live.
pub const REGISTRY_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a wasm version's loaded code outlives its last instance (at least its idle
/// TTL): a cold start within it instantiates without loading code.
pub const WASM_CODE_TTL: Duration = Duration::from_secs(600);
/// How often idle instances and unused code are looked for.
pub const REAP_INTERVAL: Duration = Duration::from_millis(250);

/// Why a request got no answer from the function.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No such function, or no such version.
    #[error("{0}")]
    NotFound(String),
    /// Over the function's concurrency limit.
    #[error(transparent)]
    Throttled(#[from] PoolError),
    /// The function ran past its timeout.
    #[error("function timed out after {timeout_ms} ms (timeout_ms in gureum.toml)")]
    Timeout {
        /// The limit.
        timeout_ms: u64,
    },
    /// The function hit its memory limit.
    #[error("function exceeded its memory limit of {memory_mb} MiB (memory_mb in gureum.toml)")]
    MemoryLimit {
        /// The limit.
        memory_mb: u32,
    },
    /// The function crashed, trapped or answered with an error.
    #[error("function failed: {0}")]
    FunctionError(String),
    /// The platform could not run the function (code missing, instance pool full...).
    #[error("function unavailable: {0}")]
    Unavailable(String),
    /// A monthly quota is used up.
    #[error(transparent)]
    QuotaExceeded(Box<QuotaRefusal>),
}

impl InvokeError {
    /// Stable error code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::NotFound(_) => "function_not_found",
            InvokeError::Throttled(_) => "too_many_requests",
            InvokeError::Timeout { .. } => "function_timeout",
            InvokeError::MemoryLimit { .. } => "function_memory_limit",
            InvokeError::FunctionError(_) => "function_error",
            InvokeError::Unavailable(_) => "function_unavailable",
            InvokeError::QuotaExceeded(_) => "quota_exceeded",
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            InvokeError::NotFound(_) => 404,
            InvokeError::Throttled(_) | InvokeError::QuotaExceeded(_) => 429,
            InvokeError::Timeout { .. } => 504,
            InvokeError::MemoryLimit { .. } | InvokeError::FunctionError(_) => 502,
            InvokeError::Unavailable(_) => 503,
        }
    }
}

/// Error type of a response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every function response, whatever the runtime.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// What the gateway needs to answer: the response plus platform metadata.
pub struct Answer {
    /// The invocation's id.
    pub invocation_id: String,
    /// The version that ran (or would have).
    pub version: VersionNumber,
    /// Whether the request paid for loading code or creating an instance.
    pub cold_start: bool,
    /// The function's response, or why there is none.
    pub response: Result<http::Response<ResponseBody>, InvokeError>,
}

/// Which version to run.
#[derive(Debug, Clone, Copy)]
pub enum VersionSelector {
    /// The version the `live` alias points at.
    Live,
    /// A pinned version (`/fn/NAME@V`).
    Pinned(VersionNumber),
}

/// Shared services the invoker is built from.
pub struct InvokerParts {
    /// The persistent store.
    pub store: Store,
    /// The wasm engine.
    pub engine: WasmEngine,
    /// The process runtime for `runtime = "lambda"`.
    pub lambda: Arc<LambdaRuntime>,
    /// Where logs and records go.
    pub telemetry: Telemetry,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Environment added to every function (e.g. `GUREUM_API`), below the manifest's.
    pub platform_env: Vec<(String, String)>,
    /// Trace export (a no-op when disabled).
    pub tracer: Tracer,
    /// Monthly quotas and this month's usage they are checked against.
    pub quotas: Arc<Quotas>,
    /// Off only to measure metering's cost (`gureum up --no-metering`, for benchmarks):
    /// no invocation records, byte counts, quota accounting or invocation metrics.
    pub metering: bool,
    /// Mints each function's `GUREUM_FUNCTION_TOKEN`.
    pub tokens: FunctionTokens,
    /// Whether functions' allowed outbound names may resolve to private addresses
    /// (`gureum up --outbound-private`).
    pub outbound_private: gureum_manifest::PrivateDestinations,
}

/// A request extension: the event a lambda function receives as is, instead of the
/// The URI of a request the platform makes for a function (WebSocket and queued
/// events): `http://HOST/PATH` with the client's `Host` when it is a plain authority
/// (no user info, nothing but host and port), else `localhost`, so that no header can
/// change the path the function sees or fail the request.
pub fn platform_uri(host: Option<&str>, path_and_query: &str) -> http::Uri {
    let host = host.and_then(plain_authority).unwrap_or("localhost");
    let slash = if path_and_query.starts_with('/') {
        ""
    } else {
        "/"
    };
    let path_and_query = format!("{slash}{path_and_query}");
    format!("http://{host}{path_and_query}")
        .parse()
        .or_else(|_| format!("http://localhost{path_and_query}").parse())
        .unwrap_or_else(|_| http::Uri::from_static("http://localhost/"))
}

/// `host` if it is a plain authority (host and port, no user info): what a client's
/// `Host` may contribute to a URI the platform builds.
pub fn plain_authority(host: &str) -> Option<&str> {
    (!host.contains('@') && host.parse::<http::uri::Authority>().is_ok()).then_some(host)
}

#[cfg(test)]
mod platform_uri_tests {
    use super::platform_uri;

    #[test]
    fn a_host_header_can_neither_change_the_path_nor_fail_the_request() {
        let uri = |host| platform_uri(host, "/.gureum/websocket?x=1").to_string();
        assert_eq!(
            uri(Some("example.org:8080")),
            "http://example.org:8080/.gureum/websocket?x=1"
        );
        assert_eq!(
            uri(Some("[::1]:80")),
            "http://[::1]:80/.gureum/websocket?x=1"
        );
        for hostile in [
            "a b",
            "x/p?",
            "x#y",
            "user@evil",
            "",
            "x\\y",
            "ex ample.org/..%2f",
        ] {
            assert_eq!(
                uri(Some(hostile)),
                "http://localhost/.gureum/websocket?x=1",
                "{hostile:?}"
            );
        }
        assert_eq!(uri(None), "http://localhost/.gureum/websocket?x=1");
        assert_eq!(
            platform_uri(None, "job").to_string(),
            "http://localhost/job"
        );
    }
}

/// API Gateway HTTP event built from the request (WebSocket, cron and queue events).
/// Wasm functions get the request itself, whose body carries the same JSON.
#[derive(Debug, Clone)]
pub struct RawEvent(pub Bytes);

/// A request extension: the invocation id to run under instead of a new one (the queue
/// passes its event id, so every attempt of an asynchronous invocation shares it, as
/// Lambda's request id does).
#[derive(Debug, Clone)]
pub struct InvocationId(pub String);

/// The in-memory registry of functions and their loaded versions.
pub struct Invoker {
    parts: InvokerParts,
    state: RwLock<Registry>,
    // Keyed by function, then version, so a lookup borrows the name instead of
    // allocating a key on every request.
    loaded: Mutex<HashMap<String, HashMap<VersionNumber, LoadSlot>>>,
    // Serializes deploy/rollback/remove/reload so route checks and swaps do not interleave.
    control: tokio::sync::Mutex<()>,
    // The store's registry generation the in-memory registry reflects.
    generation: AtomicI64,
    // The accounting tasks still running (waiting for a response body to end), which a
    // graceful shutdown waits for before the telemetry flush.
    accounting: TaskTracker,
    // Every static site in memory by bundle hash, so versions sharing a bundle share it.
    sites: Mutex<HashMap<String, Weak<Site>>>,
    // The static sites of pinned, non-live versions in use (`/fn/NAME@V/…`).
    pinned_sites: Mutex<HashMap<(String, VersionNumber), Arc<PinnedSite>>>,
}

/// A pinned version's spec and static site (`None`: it has no site), loaded on first use
/// and dropped when unused for [`WASM_CODE_TTL`].
#[derive(Default)]
struct PinnedSite {
    cell: OnceCell<Option<(Arc<FunctionSpec>, Arc<Site>)>>,
    used_ms: AtomicI64,
}

/// A version's loaded code, filled once by the first request that needs it.
type LoadSlot = Arc<OnceCell<Arc<LoadedVersion>>>;

#[derive(Default)]
struct Registry {
    functions: HashMap<String, Arc<LiveFunction>>,
    routes: RouteTable,
    /// Versions replaced recently, whose tokens are still honoured.
    retired: retired::RetiredVersions,
}

impl Registry {
    /// Makes `functions` what is live, noting which versions stopped being live.
    fn install(&mut self, functions: HashMap<String, Arc<LiveFunction>>) {
        let now = Instant::now();
        for (name, old) in &self.functions {
            match functions.get(name) {
                None => self.retired.forget(name),
                Some(new) if new.version != old.version => {
                    self.retired
                        .retire(name, old.version, old.spec.clone(), now);
                }
                Some(_) => {}
            }
        }
        for (name, live) in &functions {
            self.retired.revive(name, live.version);
        }
        self.routes = route_table(&functions);
        self.functions = functions;
    }
}

#[derive(Clone)]
struct LiveFunction {
    version: VersionNumber,
    spec: Arc<FunctionSpec>,
    artifact_hash: String,
    /// The version's static files (`[static]`), in memory while it is live.
    site: Option<Arc<Site>>,
}

struct LoadedVersion {
    function: String,
    version: VersionNumber,
    spec: Arc<FunctionSpec>,
    runner: Runner,
    metrics: VersionMetrics,
}

/// What runs a version's requests.
enum Runner {
    Wasm {
        component: CompiledComponent,
        pool: InstancePool<WasmInstance>,
        settings: InstanceSettings,
    },
    Lambda {
        pool: InstancePool<LambdaInstance>,
        settings: ProcessSettings,
    },
}

/// A version's code, ready to be assembled into a [`LoadedVersion`].
enum Code {
    Wasm(CompiledComponent),
    Lambda(std::path::PathBuf),
}

impl Runner {
    fn reap(&self, now: Instant) -> usize {
        match self {
            Runner::Wasm { pool, .. } => {
                pool.reap(now);
                pool.idle_count()
            }
            Runner::Lambda { pool, .. } => {
                pool.reap(now);
                pool.idle_count()
            }
        }
    }

    fn is_expired(&self, now: Instant) -> bool {
        match self {
            // Instances go after the idle TTL (scale to zero); the code, mapped from the
            // compiled cache (file-backed, reclaimable by the kernel), stays a while
            // longer so that the next cold start only instantiates.
            Runner::Wasm { pool, .. } => pool.is_expired_after(now, WASM_CODE_TTL),
            Runner::Lambda { pool, .. } => pool.is_expired(now),
        }
    }

    /// (idle, busy, waiting) of the version's pool.
    fn pool_counts(&self) -> (u64, u64, u64) {
        match self {
            Runner::Wasm { pool, .. } => (
                pool.idle_count() as u64,
                pool.busy_count() as u64,
                pool.waiting_count() as u64,
            ),
            Runner::Lambda { pool, .. } => (
                pool.idle_count() as u64,
                pool.busy_count() as u64,
                pool.waiting_count() as u64,
            ),
        }
    }
}

impl Invoker {
    /// An invoker with an empty registry; call [`Invoker::load`] to fill it.
    pub fn new(parts: InvokerParts) -> Arc<Self> {
        Arc::new(Self {
            parts,
            state: RwLock::new(Registry::default()),
            loaded: Mutex::new(HashMap::new()),
            control: tokio::sync::Mutex::new(()),
            generation: AtomicI64::new(i64::MIN),
            accounting: TaskTracker::new(),
            sites: Mutex::new(HashMap::new()),
            pinned_sites: Mutex::new(HashMap::new()),
        })
    }

    /// Registers this invoker as the source of the pool gauges in `/metrics`.
    pub fn export_pool_metrics(self: &Arc<Self>) {
        let source: Arc<dyn PoolStats> = self.clone();
        self.parts.metrics.set_pool_stats(source);
    }

    /// Waits until every invocation handed over so far has been accounted for (its
    /// response body ended and its record went to telemetry). Call after the listeners
    /// stopped and before flushing telemetry.
    pub async fn finish_accounting(&self) {
        self.accounting.close();
        self.accounting.wait().await;
    }

    /// The function tokens.
    pub fn tokens(&self) -> &FunctionTokens {
        &self.parts.tokens
    }

    /// The function version a presented token belongs to, if it may still use it: the
    /// version is live, or was replaced less than [`TOKEN_GRACE`] ago on this node. Its
    /// spec carries what the token may do (`[permissions]`).
    pub fn function_identity(&self, token: &str) -> Result<FunctionIdentity, TokenRefusal> {
        let (name, version) = self
            .parts
            .tokens
            .verify(token)
            .ok_or(TokenRefusal::Unknown)?;
        let state = read(&self.state);
        let Some(live) = state.functions.get(&name) else {
            return Err(TokenRefusal::Removed(name));
        };
        let spec = if live.version == version {
            live.spec.clone()
        } else {
            match state.retired.lookup(&name, version, Instant::now()) {
                retired::Retirement::Recent(spec) => spec,
                retired::Retirement::Expired => {
                    return Err(TokenRefusal::Retired {
                        live: live.version,
                        function: name,
                        version,
                        grace_min: TOKEN_GRACE.as_secs() / 60,
                    });
                }
            }
        };
        Ok(FunctionIdentity {
            name,
            version,
            spec,
        })
    }

    /// The quotas, to change them (control API).
    pub fn quotas(&self) -> &Arc<Quotas> {
        &self.parts.quotas
    }

    /// The trace exporter.
    pub fn tracer(&self) -> &Tracer {
        &self.parts.tracer
    }

    /// Loads every function's live version from the store into the routing table.
    pub async fn load(&self) -> Result<usize, DeployError> {
        let _control = self.control.lock().await;
        self.load_locked().await
    }

    /// Starts the background task that picks up deploys, rollbacks and removals made by
    /// other nodes sharing the store (a cheap generation read; a reload only on change).
    pub fn spawn_registry_sync(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let invoker = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REGISTRY_POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(invoker) = invoker.upgrade() else {
                    return;
                };
                let changed = match invoker.parts.store.registry_generation().await {
                    Ok(generation) => generation != invoker.generation.load(Ordering::Acquire),
                    Err(error) => {
                        tracing::warn!(%error, "reading the registry generation failed");
                        false
                    }
                };
                if changed && let Err(error) = invoker.load().await {
                    tracing::warn!(%error, "reloading the registry failed");
                }
            }
        })
    }

    async fn load_locked(&self) -> Result<usize, DeployError> {
        // Read the generation first: a change committed while loading bumps it again
        // and the next poll reloads.
        let generation = self.parts.store.registry_generation().await?;
        let versions = self.parts.store.live_versions().await?;
        let current = read(&self.state).functions.clone();
        let mut functions = HashMap::new();
        for version in versions {
            let name = version.function.to_string();
            if let Some(live) = current.get(&name)
                && live.version == version.version
            {
                functions.insert(name, live.clone());
                continue;
            }
            match gureum_manifest::parse(&version.manifest) {
                Ok(spec) => {
                    let site = match &version.static_hash {
                        None => None,
                        Some(hash) => match self.load_site(hash).await {
                            Ok(site) => Some(site),
                            Err(error) => {
                                tracing::error!(function = %version.function, %error, "static site cannot be loaded; function not served");
                                continue;
                            }
                        },
                    };
                    functions.insert(
                        name,
                        Arc::new(LiveFunction {
                            version: version.version,
                            spec: Arc::new(spec),
                            artifact_hash: version.artifact_hash,
                            site,
                        }),
                    );
                }
                Err(error) => {
                    tracing::error!(function = %version.function, %error, "stored manifest no longer parses; function not served");
                }
            }
        }
        let count = functions.len();
        lock(&self.loaded).retain(|function, _| functions.contains_key(function));
        lock(&self.pinned_sites).retain(|(function, _), _| functions.contains_key(function));
        write(&self.state).install(functions);
        self.generation.store(generation, Ordering::Release);
        Ok(count)
    }

    /// Starts the background task that drops idle instances and unused code.
    pub fn spawn_reaper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let invoker = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAP_INTERVAL);
            loop {
                tick.tick().await;
                let Some(invoker) = invoker.upgrade() else {
                    return;
                };
                invoker.reap(Instant::now());
            }
        })
    }

    /// The live version and spec of every deployed function.
    pub fn live_functions(&self) -> Vec<(String, VersionNumber, Arc<FunctionSpec>)> {
        read(&self.state)
            .functions
            .iter()
            .map(|(name, live)| (name.clone(), live.version, live.spec.clone()))
            .collect()
    }

    /// The live version and spec of one function.
    pub fn live_function(&self, function: &str) -> Option<(VersionNumber, Arc<FunctionSpec>)> {
        read(&self.state)
            .functions
            .get(function)
            .map(|live| (live.version, live.spec.clone()))
    }

    /// The function serving a manifest route on `host` (lowercase, without a port).
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<String> {
        read(&self.state)
            .routes
            .lookup(host, path)
            .map(str::to_string)
    }

    /// Runs one request on `function`; `client` is the caller's address, when known.
    pub async fn invoke<B>(
        &self,
        function: &str,
        selector: VersionSelector,
        request: http::Request<B>,
        client: Option<std::net::IpAddr>,
        trigger: Trigger,
    ) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let started = Instant::now();
        let started_at_ms = gureum_model::now_ms();
        let invocation_id = match request.extensions().get::<InvocationId>() {
            Some(InvocationId(id)) => id.clone(),
            None => uuid::Uuid::now_v7().simple().to_string(),
        };
        let live = read(&self.state).functions.get(function).cloned();
        let Some(live) = live else {
            return Answer {
                invocation_id,
                version: 0,
                cold_start: false,
                response: Err(InvokeError::NotFound(format!(
                    "no function named {function:?} is deployed; `gureum ls` lists the deployed functions"
                ))),
            };
        };
        let version = match selector {
            VersionSelector::Live => live.version,
            VersionSelector::Pinned(version) => version,
        };
        // Static files first (Firebase Hosting's order: files, then the function), from
        // memory; not metered as invocations.
        if matches!(trigger, Trigger::Http | Trigger::Api)
            && (live.site.is_some() || version != live.version)
        {
            let asked = Asked::of(&request);
            if let Some(response) = self.serve_static(function, version, &live, &asked).await {
                return Answer {
                    invocation_id: String::new(),
                    version,
                    cold_start: false,
                    response: Ok(response),
                };
            }
        }
        let fail = |error: InvokeError, cold_start: bool| Answer {
            invocation_id: invocation_id.clone(),
            version,
            cold_start,
            response: Err(error),
        };
        let metering = self.parts.metering;
        if metering && let Err(refusal) = self.parts.quotas.admit(function) {
            self.parts
                .metrics
                .rejections
                .get_or_create(&gureum_telemetry::RejectionLabels {
                    function: function.to_string(),
                    reason: "quota".into(),
                })
                .inc();
            return fail(InvokeError::QuotaExceeded(refusal), false);
        }

        let (loaded, cold_start) = match self.loaded_version(function, version, &live).await {
            Ok(found) => found,
            Err(error) => {
                if metering {
                    self.parts.quotas.refund(function);
                }
                return fail(error, true);
            }
        };
        // In a block: a borrow of the request must not live across an await (the body
        // type need not be Sync).
        let span = {
            let headers = request.headers();
            let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
            self.parts.tracer.invocation(
                function,
                u64::from(version),
                trigger.as_str(),
                header("traceparent"),
                header("tracestate"),
            )
        };
        let meter = if metering {
            Meter::counting()
        } else {
            Meter::off()
        };
        let counted = meter.body_end.as_ref().map(|_| meter.bytes_in.clone());
        let request = request.map(move |body| {
            body.map_frame(move |frame| {
                if let (Some(counted), Some(data)) = (&counted, frame.data_ref()) {
                    counted.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                frame
            })
        });
        let call = Call {
            invocation_id,
            started,
            started_at_ms,
            cold_start,
            trigger,
            span: Some(span),
            meter,
            at_body_end: None,
        };
        match &loaded.runner {
            Runner::Wasm { .. } => self.invoke_wasm(&loaded, call, request).await,
            Runner::Lambda { .. } => self.invoke_lambda(&loaded, call, request, client).await,
        }
    }

    async fn invoke_wasm<B>(
        &self,
        loaded: &Arc<LoadedVersion>,
        mut call: Call,
        request: http::Request<B>,
    ) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let Runner::Wasm {
            component,
            pool,
            settings,
        } = &loaded.runner
        else {
            unreachable!("called for wasm versions only")
        };
        let mut lease = match pool.acquire().await {
            Ok(lease) => lease,
            Err(throttled) => return self.refuse(loaded, call, throttled),
        };
        let mut request = request;
        call.propagate_trace(request.headers_mut());
        let timeout = Duration::from_millis(loaded.spec.limits.timeout_ms);
        let instance = match lease.instance.take() {
            Some(instance) => instance,
            None => {
                call.cold_start |= loaded.spec.reuse_instances;
                match self
                    .parts
                    .engine
                    .instantiate(component, settings, timeout)
                    .await
                {
                    Ok(instance) => instance,
                    Err(error) => {
                        pool.release(lease, None);
                        let error = InvokeError::Unavailable(error.to_string());
                        let finish = self.finisher(loaded, &mut call, error.status());
                        let message = error.to_string();
                        self.accounting.spawn(finish.run(
                            InvocationOutcome::Error,
                            std::iter::empty(),
                            Some(message),
                        ));
                        return call.answer(loaded, Err(error));
                    }
                }
            }
        };
        if call.cold_start {
            loaded.metrics.cold_starts.inc();
        }

        let (release, released) =
            release_to(loaded.clone(), lease, |loaded| match &loaded.runner {
                Runner::Wasm { pool, .. } => pool,
                Runner::Lambda { .. } => unreachable!("a wasm lease"),
            });
        let invocation = instance.handle(request, timeout, release).await;
        let now_done = matches!(invocation.completion, Finished::Now(_));
        let response = invocation
            .response
            .map(|response| {
                response.map(|body| {
                    let body = body.map_err(BoxError::from);
                    if now_done {
                        // The instance is back in its pool already: nothing to hold.
                        body.boxed_unsync()
                    } else {
                        body::HoldEnd::new(body, released).boxed_unsync()
                    }
                })
            })
            .map_err(|failure| failure_error(&failure));
        let status = status_of(&response);
        let finish = self.finisher(loaded, &mut call, status);
        match invocation.completion {
            // The handler is done: account when the response body is (no task, no
            // wake-up of another thread), or now with metering off.
            Finished::Now(done) => {
                let duration = call.started.elapsed();
                let tracker = self.accounting.clone();
                let account = move || {
                    let (outcome, lines, failure) = completion_parts(done);
                    finish.run_now(outcome, duration, lines, failure, &tracker);
                };
                if self.parts.metering {
                    call.at_body_end = Some(Box::new(account));
                } else {
                    account();
                }
            }
            // The instance stays leased until the handler returns (its body may still be
            // streaming); accounting happens then, off the request's path.
            Finished::Later(completion) => {
                self.accounting.spawn(async move {
                    let (outcome, lines, failure) = completion_parts(completion.await);
                    finish.run(outcome, lines, failure).await;
                });
            }
        }
        call.answer(loaded, response)
    }

    fn refuse(&self, loaded: &LoadedVersion, mut call: Call, throttled: PoolError) -> Answer {
        loaded.metrics.concurrency_rejections.inc();
        if !self.parts.metering {
            return call.answer(loaded, Err(InvokeError::Throttled(throttled)));
        }
        self.parts.quotas.refund(&loaded.function);
        loaded
            .metrics
            .invocations(429, InvocationOutcome::Throttled)
            .inc();
        self.parts.telemetry.invocation(InvocationRecord {
            id: call.invocation_id.clone(),
            function: loaded.function.clone(),
            version: loaded.version,
            started_at_ms: call.started_at_ms,
            duration_us: call.started.elapsed().as_micros() as i64,
            status: 429,
            outcome: InvocationOutcome::Throttled,
            cold_start: false,
            memory_mb: loaded.spec.limits.memory_mb,
            trigger: call.trigger,
            billed_ms: 0,
            bytes_in: 0,
            bytes_out: 0,
        });
        if let Some(span) = call.span.take() {
            span.end(InvocationAttrs {
                invocation_id: call.invocation_id.clone(),
                status: 429,
                outcome: InvocationOutcome::Throttled.as_str(),
                cold_start: false,
                billed_ms: 0,
                memory_mb: loaded.spec.limits.memory_mb,
                bytes_in: 0,
                bytes_out: 0,
                error: Some(throttled.to_string()),
            });
        }
        call.answer(loaded, Err(InvokeError::Throttled(throttled)))
    }

    /// What the accounting of one invocation needs once the function is done. Takes the
    /// call's trace span and the signal of its response body's end.
    fn finisher(&self, loaded: &Arc<LoadedVersion>, call: &mut Call, status: u16) -> Finish {
        Finish {
            metering: self.parts.metering,
            telemetry: self.parts.telemetry.clone(),
            quotas: self.parts.quotas.clone(),
            loaded: loaded.clone(),
            id: call.invocation_id.clone(),
            started: call.started,
            started_at_ms: call.started_at_ms,
            cold_start: call.cold_start,
            trigger: call.trigger,
            status,
            span: call.span.take(),
            bytes_in: call.meter.bytes_in.clone(),
            bytes_out: call.meter.bytes_out.clone(),
            body_done: call.meter.body_done.take(),
        }
    }

    /// The static site's answer to `asked`, or `None` when the function (if any) handles
    /// it: the version has no site, or the path names no file.
    async fn serve_static(
        &self,
        function: &str,
        version: VersionNumber,
        live: &LiveFunction,
        asked: &Asked,
    ) -> Option<http::Response<ResponseBody>> {
        let (spec, site) = if version == live.version {
            (live.spec.clone(), live.site.clone()?)
        } else {
            self.pinned_site(function, version).await?
        };
        let spa = spec.static_site.as_ref().is_some_and(|site| site.spa);
        match site.respond(asked, spa, spec.runtime != Runtime::Static) {
            Outcome::Served(response) => Some(response),
            Outcome::Pass => None,
        }
    }

    /// A pinned, non-live version's spec and site, loaded on first use; `None` when it has
    /// no site or cannot be loaded (the invocation path then reports why).
    async fn pinned_site(
        &self,
        function: &str,
        version: VersionNumber,
    ) -> Option<(Arc<FunctionSpec>, Arc<Site>)> {
        let key = (function.to_string(), version);
        let slot = lock(&self.pinned_sites)
            .entry(key.clone())
            .or_default()
            .clone();
        slot.used_ms
            .store(gureum_model::now_ms(), Ordering::Relaxed);
        let loaded = slot
            .cell
            .get_or_try_init(|| async {
                let name = FunctionName::new(function).map_err(|_| ())?;
                let stored = self
                    .parts
                    .store
                    .get_version(&name, version)
                    .await
                    .map_err(|_| ())?
                    .ok_or(())?;
                let Some(hash) = stored.static_hash else {
                    return Ok(None);
                };
                let spec = gureum_manifest::parse(&stored.manifest).map_err(|_| ())?;
                match self.load_site(&hash).await {
                    Ok(site) => Ok(Some((Arc::new(spec), site))),
                    Err(error) => {
                        tracing::warn!(%function, version, %error, "static site of a pinned version cannot be loaded");
                        Err(())
                    }
                }
            })
            .await;
        match loaded {
            Ok(found) => found.clone(),
            Err(()) => {
                lock(&self.pinned_sites).remove(&key);
                None
            }
        }
    }

    /// The static site stored as artifact `hash`: the one in memory if any version uses
    /// it, else loaded from the store (off the request path: at deploy, rollback, start,
    /// or a pinned version's first use).
    async fn load_site(&self, hash: &str) -> Result<Arc<Site>, DeployError> {
        if let Some(site) = lock(&self.sites).get(hash).and_then(Weak::upgrade) {
            return Ok(site);
        }
        let bundle = self.parts.store.get_artifact(hash).await?.ok_or_else(|| {
            DeployError::Static(StaticError::Corrupt(format!(
                "bundle {hash} is missing from the store"
            )))
        })?;
        let owned = hash.to_string();
        let site = tokio::task::spawn_blocking(move || Site::from_bundle(&bundle, &owned))
            .await
            .map_err(|error| DeployError::Internal(error.to_string()))??;
        Ok(self.share_site(site))
    }

    /// `site` as the one shared copy of its bundle.
    fn share_site(&self, site: Site) -> Arc<Site> {
        let mut sites = lock(&self.sites);
        if let Some(existing) = sites.get(site.hash()).and_then(Weak::upgrade) {
            return existing;
        }
        let site = Arc::new(site);
        sites.insert(site.hash().to_string(), Arc::downgrade(&site));
        site
    }

    /// Drops idle instances past their TTL and the code of versions nobody used for
    /// their TTL (scale to zero).
    pub fn reap(&self, now: Instant) {
        let unused_since = gureum_model::now_ms() - WASM_CODE_TTL.as_millis() as i64;
        lock(&self.pinned_sites)
            .retain(|_, slot| slot.used_ms.load(Ordering::Relaxed) >= unused_since);
        lock(&self.sites).retain(|_, site| site.strong_count() > 0);
        let mut map = lock(&self.loaded);
        map.retain(|_, versions| {
            versions.retain(|_, cell| {
                let Some(loaded) = cell.get() else {
                    return true;
                };
                loaded.runner.reap(now);
                !loaded.runner.is_expired(now)
            });
            !versions.is_empty()
        });
    }

    /// Returns the loaded version, loading its code if needed (the `bool` says it was).
    async fn loaded_version(
        &self,
        function: &str,
        version: VersionNumber,
        live: &LiveFunction,
    ) -> Result<(Arc<LoadedVersion>, bool), InvokeError> {
        let cell = {
            let mut map = lock(&self.loaded);
            match map
                .get(function)
                .and_then(|versions| versions.get(&version))
            {
                Some(cell) => cell.clone(),
                None => map
                    .entry(function.to_string())
                    .or_default()
                    .entry(version)
                    .or_default()
                    .clone(),
            }
        };
        if let Some(loaded) = cell.get() {
            return Ok((loaded.clone(), false));
        }
        let loaded = cell
            .get_or_try_init(|| self.load_version(function, version, live))
            .await?;
        Ok((loaded.clone(), true))
    }

    async fn load_version(
        &self,
        function: &str,
        version: VersionNumber,
        live: &LiveFunction,
    ) -> Result<Arc<LoadedVersion>, InvokeError> {
        let (spec, hash) = if version == live.version {
            (live.spec.clone(), live.artifact_hash.clone())
        } else {
            let name = FunctionName::new(function)
                .map_err(|error| InvokeError::NotFound(error.to_string()))?;
            let stored = self
                .parts
                .store
                .get_version(&name, version)
                .await
                .map_err(|error| InvokeError::Unavailable(error.to_string()))?
                .ok_or_else(|| {
                    InvokeError::NotFound(format!(
                        "function {function:?} has no version {version}; `gureum versions {function}` lists them"
                    ))
                })?;
            let spec = gureum_manifest::parse(&stored.manifest)
                .map_err(|error| InvokeError::Unavailable(error.to_string()))?;
            (Arc::new(spec), stored.artifact_hash)
        };
        let code = match spec.runtime {
            Runtime::Wasm => Code::Wasm(self.component(&hash).await?),
            Runtime::Lambda => Code::Lambda(self.lambda_code(&hash).await?),
            Runtime::Static => {
                return Err(InvokeError::Unavailable(format!(
                    "{function:?} is a static-only site: it serves its files over HTTP and runs no code (add runtime and artifact to gureum.toml to handle events)"
                )));
            }
        };
        Ok(Arc::new(self.assemble(function, version, spec, code)))
    }

    /// The artifact from the store, fetched only when there is no local copy to use.
    async fn stored_artifact_unless(
        &self,
        local_copy: bool,
        hash: &str,
    ) -> Result<Option<Vec<u8>>, InvokeError> {
        if local_copy {
            return Ok(None);
        }
        self.parts
            .store
            .get_artifact(hash)
            .await
            .map_err(|error| InvokeError::Unavailable(error.to_string()))
    }

    async fn component(&self, hash: &str) -> Result<CompiledComponent, InvokeError> {
        let bytes = self
            .stored_artifact_unless(self.parts.engine.is_cached(hash), hash)
            .await?;
        let engine = self.parts.engine.clone();
        let owned_hash = hash.to_string();
        let (component, source) =
            tokio::task::spawn_blocking(move || engine.load(&owned_hash, || bytes))
                .await
                .map_err(|error| InvokeError::Unavailable(error.to_string()))?
                .map_err(|error| InvokeError::Unavailable(error.to_string()))?;
        match source {
            LoadSource::Cache => self.parts.metrics.cache_loads.inc(),
            LoadSource::Compiled => self.parts.metrics.compilations.inc(),
        };
        Ok(component)
    }

    fn assemble(
        &self,
        function: &str,
        version: VersionNumber,
        spec: Arc<FunctionSpec>,
        code: Code,
    ) -> LoadedVersion {
        let mut env = self.parts.platform_env.clone();
        env.push(("GUREUM_FUNCTION_NAME".into(), function.to_string()));
        env.push(("GUREUM_FUNCTION_VERSION".into(), version.to_string()));
        let token = self.parts.tokens.token_for(function, version);
        if spec.runtime == Runtime::Lambda {
            // The AWS SDKs sign platform API calls (e.g. boto3's apigatewaymanagementapi)
            // with these; the platform reads the token from the access key id.
            env.push(("AWS_ACCESS_KEY_ID".into(), token.clone()));
            env.push(("AWS_SECRET_ACCESS_KEY".into(), "gureum".into()));
            // Unchanged AWS code creating an API Gateway management client without an
            // endpoint finds the platform API through the SDKs' per-service variable.
            if let Some((_, api)) = self
                .parts
                .platform_env
                .iter()
                .find(|(key, _)| key == "GUREUM_API")
            {
                env.push((
                    "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI".into(),
                    api.clone(),
                ));
            }
        }
        env.push(("GUREUM_FUNCTION_TOKEN".into(), token));
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let limits = spec.limits;
        let pool_settings = PoolSettings::new(
            limits.max_instances,
            Duration::from_secs(limits.idle_ttl_s),
            spec.reuse_instances || spec.runtime == Runtime::Lambda,
        );
        let runner = match code {
            Code::Wasm(component) => {
                // The platform API is always reachable (INTERFACE: "GUREUM_API is always allowed").
                let mut allowed_outbound_hosts = spec.allowed_outbound_hosts.clone();
                allowed_outbound_hosts.extend(
                    self.parts
                        .platform_env
                        .iter()
                        .filter(|(key, _)| key == "GUREUM_API")
                        .map(|(_, url)| url.clone()),
                );
                Runner::Wasm {
                    component,
                    pool: InstancePool::new(pool_settings),
                    settings: InstanceSettings {
                        env,
                        memory_mb: limits.memory_mb,
                        allowed_outbound_hosts: Arc::new(allowed_outbound_hosts),
                        outbound_private: self.parts.outbound_private,
                    },
                }
            }
            Code::Lambda(code_dir) => Runner::Lambda {
                pool: InstancePool::new(pool_settings),
                settings: ProcessSettings {
                    function: function.to_string(),
                    version,
                    command: spec.command.clone(),
                    env,
                    memory_mb: limits.memory_mb,
                    ephemeral_storage_mb: limits.ephemeral_storage_mb,
                    outbound_endpoints: gureum_manifest::exact_endpoints(
                        &spec.allowed_outbound_hosts,
                    ),
                    outbound_private: self.parts.outbound_private,
                    code_dir,
                    logs: lambda::log_sink(&self.parts.telemetry, function, version),
                },
            },
        };
        LoadedVersion {
            function: function.to_string(),
            version,
            runner,
            metrics: VersionMetrics::new(&self.parts.metrics, function, version),
            spec,
        }
    }
}

/// One request on its way through the invoker.
struct Call {
    invocation_id: String,
    started: Instant,
    started_at_ms: i64,
    cold_start: bool,
    trigger: Trigger,
    span: Option<InvocationSpan>,
    meter: Meter,
    /// Run when the response body is done (ended or dropped), instead of signalling
    /// the accounting task: the accounting of a handler that already finished.
    at_body_end: Option<Box<dyn FnOnce() + Send>>,
}

/// Runs its closure when dropped: held by the response body, so it runs when the body
/// is done, however it ends.
struct AtDrop(Option<Box<dyn FnOnce() + Send>>);

impl Drop for AtDrop {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            run();
        }
    }
}

/// Body bytes in and out of one invocation, and the signal that its response body is
/// done (ended or dropped), after which the record can say how many bytes went out.
struct Meter {
    bytes_in: Arc<AtomicU64>,
    bytes_out: Arc<AtomicU64>,
    body_end: Option<tokio::sync::oneshot::Sender<()>>,
    body_done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Meter {
    fn counting() -> Self {
        let (end, done) = tokio::sync::oneshot::channel();
        Self {
            bytes_in: Arc::default(),
            bytes_out: Arc::default(),
            body_end: Some(end),
            body_done: Some(done),
        }
    }

    /// Counts nothing and waits for nothing (metering off).
    fn off() -> Self {
        Self {
            bytes_in: Arc::default(),
            bytes_out: Arc::default(),
            body_end: None,
            body_done: None,
        }
    }
}

impl Call {
    /// Sets the W3C trace headers the function sees: the invocation's span as parent.
    fn propagate_trace(&self, headers: &mut http::HeaderMap) {
        let Some(span) = &self.span else { return };
        if let Some(value) = span
            .traceparent()
            .and_then(|value| http::HeaderValue::from_str(&value).ok())
        {
            headers.insert("traceparent", value);
        }
        if let Some(value) = span
            .tracestate()
            .and_then(|value| http::HeaderValue::from_str(&value).ok())
        {
            headers.insert("tracestate", value);
        }
    }

    fn answer(
        mut self,
        loaded: &LoadedVersion,
        response: Result<http::Response<ResponseBody>, InvokeError>,
    ) -> Answer {
        // No body: nothing to wait for.
        if response.is_err()
            && let Some(run) = self.at_body_end.take()
        {
            run();
        }
        // The response body counts what it sends and, when it is dropped, releases the
        // accounting that waits for it (or runs it).
        let response = response.map(|response| {
            let counted = self.meter.bytes_out.clone();
            let end = match (self.at_body_end.take(), self.meter.body_end.take()) {
                (Some(run), _) => AtDrop(Some(run)),
                (None, Some(end)) => AtDrop(Some(Box::new(move || drop(end)))),
                (None, None) => return response,
            };
            response.map(move |body| {
                body.map_frame(move |frame| {
                    let _keep_until_dropped = &end;
                    if let Some(data) = frame.data_ref() {
                        counted.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    frame
                })
                .boxed_unsync()
            })
        });
        Answer {
            invocation_id: self.invocation_id,
            version: loaded.version,
            cold_start: self.cold_start,
            response,
        }
    }
}

/// The accounting of one invocation, run after the function is done with it: metrics,
/// the log lines it produced, a platform line for a failure, the invocation record (once
/// the response body is done, to know the bytes sent), this month's quota usage and the
/// trace span.
struct Finish {
    metering: bool,
    telemetry: Telemetry,
    quotas: Arc<Quotas>,
    loaded: Arc<LoadedVersion>,
    id: String,
    started: Instant,
    started_at_ms: i64,
    cold_start: bool,
    trigger: Trigger,
    status: u16,
    span: Option<InvocationSpan>,
    bytes_in: Arc<AtomicU64>,
    bytes_out: Arc<AtomicU64>,
    body_done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Finish {
    /// Accounts the invocation from a task of its own: waits for room for the log lines
    /// and for the response body's end.
    async fn run(
        mut self,
        outcome: InvocationOutcome,
        lines: impl Iterator<Item = (LogStream, i64, String)>,
        failure: Option<String>,
    ) {
        let duration = self.started.elapsed();
        let lines = self.log_lines(lines, failure.as_deref());
        self.count(outcome, duration);
        self.telemetry.logs(lines).await;
        if !self.metering {
            return;
        }
        if let Some(done) = self.body_done.take() {
            let _ = done.await;
        }
        self.record(outcome, duration, failure);
    }

    /// Accounts the invocation right here, without a task: for a handler that finished
    /// before its response was handed over, called when the response body is done (or
    /// at once with metering off). Log lines that find the telemetry channel full are
    /// sent from a tracked task instead.
    fn run_now(
        self,
        outcome: InvocationOutcome,
        duration: Duration,
        lines: impl Iterator<Item = (LogStream, i64, String)>,
        failure: Option<String>,
        tracker: &TaskTracker,
    ) {
        let lines = self.log_lines(lines, failure.as_deref());
        self.count(outcome, duration);
        let unsent = self.telemetry.try_logs(lines);
        if !unsent.is_empty() {
            let telemetry = self.telemetry.clone();
            tracker.spawn(async move { telemetry.logs(unsent).await });
        }
        if self.metering {
            self.record(outcome, duration, failure);
        }
    }

    /// The function's lines, and a platform line for a failure.
    fn log_lines(
        &self,
        lines: impl Iterator<Item = (LogStream, i64, String)>,
        failure: Option<&str>,
    ) -> Vec<LogLine> {
        let loaded = &self.loaded;
        let line = |stream, ts_ms, message| LogLine {
            seq: 0,
            invocation_id: self.id.clone(),
            function: loaded.function.clone(),
            version: loaded.version,
            ts_ms,
            stream,
            message,
        };
        let mut lines: Vec<LogLine> = lines
            .map(|(stream, ts_ms, message)| line(stream, ts_ms, message))
            .collect();
        if let Some(failure) = failure {
            lines.push(line(
                LogStream::Platform,
                gureum_model::now_ms(),
                failure.to_string(),
            ));
        }
        lines
    }

    /// Metrics of the invocation, and this month's quota usage: counted at once (quotas
    /// must not lag behind a slow client).
    fn count(&self, outcome: InvocationOutcome, duration: Duration) {
        if !self.metering {
            return;
        }
        let loaded = &self.loaded;
        let metrics = &loaded.metrics;
        metrics.invocations(self.status, outcome).inc();
        if outcome.is_failure() {
            metrics.errors.inc();
        }
        metrics.duration.observe(duration.as_secs_f64());
        let billed_ms = gureum_model::billed_ms(duration.as_micros() as u64);
        self.quotas.record(
            &loaded.function,
            billed_ms * u64::from(loaded.spec.limits.memory_mb),
        );
    }

    /// The invocation record (once the response body is done, so it can say how many
    /// bytes went out) and the trace span.
    fn record(self, outcome: InvocationOutcome, duration: Duration, failure: Option<String>) {
        let loaded = &self.loaded;
        let metrics = &loaded.metrics;
        let billed_ms = gureum_model::billed_ms(duration.as_micros() as u64);
        let memory_mb = loaded.spec.limits.memory_mb;
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let bytes_out = self.bytes_out.load(Ordering::Relaxed);
        metrics.request_bytes.inc_by(bytes_in);
        metrics.response_bytes.inc_by(bytes_out);
        self.telemetry.invocation(InvocationRecord {
            id: self.id.clone(),
            function: loaded.function.clone(),
            version: loaded.version,
            started_at_ms: self.started_at_ms,
            duration_us: duration.as_micros() as i64,
            status: self.status,
            outcome,
            cold_start: self.cold_start,
            memory_mb,
            trigger: self.trigger,
            billed_ms: billed_ms as i64,
            bytes_in: bytes_in as i64,
            bytes_out: bytes_out as i64,
        });
        if let Some(span) = self.span {
            span.end(InvocationAttrs {
                invocation_id: self.id,
                status: self.status,
                outcome: outcome.as_str(),
                cold_start: self.cold_start,
                billed_ms,
                memory_mb,
                bytes_in,
                bytes_out,
                error: failure,
            });
        }
    }
}

impl PoolStats for Invoker {
    fn pool_samples(&self) -> Vec<PoolSample> {
        let map = lock(&self.loaded);
        let mut samples = Vec::new();
        for versions in map.values() {
            for cell in versions.values() {
                let Some(loaded) = cell.get() else { continue };
                let (warm, busy, waiting) = loaded.runner.pool_counts();
                samples.push(PoolSample {
                    function: loaded.function.clone(),
                    version: loaded.version,
                    warm,
                    busy,
                    waiting,
                });
            }
        }
        samples
    }
}

/// A wasm handler's end as the accounting needs it: outcome, log lines, failure text.
fn completion_parts(
    done: gureum_runtime_wasm::Completion,
) -> (
    InvocationOutcome,
    impl Iterator<Item = (LogStream, i64, String)>,
    Option<String>,
) {
    let outcome = match &done.failure {
        None => InvocationOutcome::Ok,
        Some(Failure::Timeout { .. }) => InvocationOutcome::Timeout,
        Some(_) => InvocationOutcome::Error,
    };
    let failure = done
        .failure
        .as_ref()
        .map(|failure| failure_error(failure).to_string());
    let lines = done
        .lines
        .into_iter()
        .map(|line| (line.stream, line.ts_ms, line.message));
    (outcome, lines, failure)
}

/// A callback that hands an instance back to its pool and then signals `released`
/// (which holds the response's end, see [`body::HoldEnd`]).
fn release_to<I: Send + 'static>(
    loaded: Arc<LoadedVersion>,
    lease: Lease<I>,
    pool: fn(&LoadedVersion) -> &InstancePool<I>,
) -> (
    impl FnOnce(Option<I>) + Send + 'static,
    tokio::sync::oneshot::Receiver<()>,
) {
    let (sender, released) = tokio::sync::oneshot::channel();
    let release = move |instance| {
        pool(&loaded).release(lease, instance);
        let _ = sender.send(());
    };
    (release, released)
}

fn status_of<T>(response: &Result<http::Response<T>, InvokeError>) -> u16 {
    match response {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.status(),
    }
}

fn failure_error(failure: &Failure) -> InvokeError {
    match failure {
        Failure::Timeout { timeout_ms } => InvokeError::Timeout {
            timeout_ms: *timeout_ms,
        },
        Failure::MemoryLimit { memory_mb } => InvokeError::MemoryLimit {
            memory_mb: *memory_mb,
        },
        Failure::Trap(message) => InvokeError::FunctionError(message.clone()),
        Failure::NoResponse => {
            InvokeError::FunctionError("the handler returned without setting a response".into())
        }
        Failure::GuestError(code) => {
            InvokeError::FunctionError(format!("the handler answered with error {code}"))
        }
    }
}

fn route_table(functions: &HashMap<String, Arc<LiveFunction>>) -> RouteTable {
    RouteTable::build(
        functions
            .iter()
            .map(|(name, live)| (name.as_str(), live.spec.routes.as_slice())),
    )
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
