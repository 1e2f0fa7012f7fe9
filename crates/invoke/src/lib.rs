//! The one path from (function, request) to response. The [`Invoker`] keeps the routing
//! table and each function's live version in memory, loads a version's code on its
//! first request (a cold start), leases instances from the version's pool, runs the
//! request and hands logs, the invocation record and metrics to telemetry without
//! waiting on the store. Deploy and rollback commit to the store first and then swap the
//! in-memory state, so a request sees either the old or the new version, never a mix.

mod body;
mod deploy;
mod lambda;
mod routes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gureum_model::{
    FunctionName, FunctionSpec, InvocationOutcome, InvocationRecord, LogLine, LogStream, Runtime,
    VersionNumber,
};
use gureum_pool::{InstancePool, Lease, PoolError, PoolSettings};
use gureum_runtime_lambda::{LambdaInstance, LambdaRuntime, ProcessSettings};
use gureum_runtime_wasm::{
    CompiledComponent, Failure, InstanceSettings, LoadSource, WasmEngine, WasmInstance,
};
use gureum_store::Store;
use gureum_telemetry::{FunctionLabels, Metrics, OutcomeLabels, Telemetry};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::OnceCell;

pub use deploy::{DeployError, Deployed};
pub use routes::RouteTable;

/// How often a node checks whether another node changed what is live.
pub const REGISTRY_POLL_INTERVAL: Duration = Duration::from_secs(1);
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
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            InvokeError::NotFound(_) => 404,
            InvokeError::Throttled(_) => 429,
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
}

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
}

/// A version's loaded code, filled once by the first request that needs it.
type LoadSlot = Arc<OnceCell<Arc<LoadedVersion>>>;

#[derive(Default)]
struct Registry {
    functions: HashMap<String, Arc<LiveFunction>>,
    routes: RouteTable,
}

#[derive(Clone)]
struct LiveFunction {
    version: VersionNumber,
    spec: Arc<FunctionSpec>,
    artifact_hash: String,
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
            Runner::Wasm { pool, .. } => pool.is_expired(now),
            Runner::Lambda { pool, .. } => pool.is_expired(now),
        }
    }
}

/// Metric handles resolved once per loaded version, so the request path does not look
/// up (and allocate) label sets.
struct VersionMetrics {
    ok: Counter,
    error: Counter,
    timeout: Counter,
    throttled: Counter,
    cold_starts: Counter,
    duration: Histogram,
    warm: Gauge,
}

impl VersionMetrics {
    fn new(metrics: &Metrics, function: &str) -> Self {
        let labels = FunctionLabels {
            function: function.to_string(),
        };
        let outcome = |outcome: InvocationOutcome| {
            metrics
                .invocations
                .get_or_create(&OutcomeLabels {
                    function: function.to_string(),
                    outcome: outcome.as_str().to_string(),
                })
                .clone()
        };
        Self {
            ok: outcome(InvocationOutcome::Ok),
            error: outcome(InvocationOutcome::Error),
            timeout: outcome(InvocationOutcome::Timeout),
            throttled: outcome(InvocationOutcome::Throttled),
            cold_starts: metrics.cold_starts.get_or_create(&labels).clone(),
            duration: metrics.duration_seconds.get_or_create(&labels).clone(),
            warm: metrics.warm_instances.get_or_create(&labels).clone(),
        }
    }

    fn outcome(&self, outcome: InvocationOutcome) -> &Counter {
        match outcome {
            InvocationOutcome::Ok => &self.ok,
            InvocationOutcome::Error => &self.error,
            InvocationOutcome::Timeout => &self.timeout,
            InvocationOutcome::Throttled => &self.throttled,
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
        })
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
                    functions.insert(
                        name,
                        Arc::new(LiveFunction {
                            version: version.version,
                            spec: Arc::new(spec),
                            artifact_hash: version.artifact_hash,
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
        let mut state = write(&self.state);
        state.routes = route_table(&functions);
        state.functions = functions;
        drop(state);
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

    /// The function serving a manifest route.
    pub fn route(&self, path: &str) -> Option<String> {
        read(&self.state).routes.lookup(path).map(str::to_string)
    }

    /// Runs one request on `function`; `client` is the caller's address, when known.
    pub async fn invoke<B>(
        &self,
        function: &str,
        selector: VersionSelector,
        request: http::Request<B>,
        client: Option<std::net::IpAddr>,
    ) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let started = Instant::now();
        let started_at_ms = gureum_model::now_ms();
        let invocation_id = uuid::Uuid::now_v7().simple().to_string();
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
        let fail = |error: InvokeError, cold_start: bool| Answer {
            invocation_id: invocation_id.clone(),
            version,
            cold_start,
            response: Err(error),
        };

        let (loaded, cold_start) = match self.loaded_version(function, version, &live).await {
            Ok(found) => found,
            Err(error) => return fail(error, true),
        };
        let call = Call {
            invocation_id,
            started,
            started_at_ms,
            cold_start,
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
                        return call
                            .answer(loaded, Err(InvokeError::Unavailable(error.to_string())));
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
        let response = invocation
            .response
            .map(|response| {
                response.map(|body| {
                    body::HoldEnd::new(body.map_err(BoxError::from), released).boxed_unsync()
                })
            })
            .map_err(|failure| failure_error(&failure));
        let status = status_of(&response);
        // The instance stays leased until the handler returns (its body may still be
        // streaming); accounting happens then, off the request's path.
        let completion = invocation.completion;
        let finish = self.finisher(loaded, &call, status);
        tokio::spawn(async move {
            let done = completion.await;
            let outcome = match &done.failure {
                None => InvocationOutcome::Ok,
                Some(Failure::Timeout { .. }) => InvocationOutcome::Timeout,
                Some(_) => InvocationOutcome::Error,
            };
            let lines = done
                .lines
                .into_iter()
                .map(|line| (line.stream, line.ts_ms, line.message));
            let failure = done
                .failure
                .as_ref()
                .map(|failure| failure_error(failure).to_string());
            finish.run(outcome, lines, failure).await;
        });
        call.answer(loaded, response)
    }

    fn refuse(&self, loaded: &LoadedVersion, call: Call, throttled: PoolError) -> Answer {
        self.record_refusal(
            loaded,
            &call.invocation_id,
            call.started_at_ms,
            call.started,
        );
        call.answer(loaded, Err(InvokeError::Throttled(throttled)))
    }

    /// What the accounting of one invocation needs once the function is done.
    fn finisher(&self, loaded: &Arc<LoadedVersion>, call: &Call, status: u16) -> Finish {
        Finish {
            telemetry: self.parts.telemetry.clone(),
            loaded: loaded.clone(),
            id: call.invocation_id.clone(),
            started: call.started,
            started_at_ms: call.started_at_ms,
            cold_start: call.cold_start,
            status,
        }
    }

    /// Drops idle instances past their TTL and the code of versions nobody used for
    /// their TTL (scale to zero).
    pub fn reap(&self, now: Instant) {
        let mut map = lock(&self.loaded);
        map.retain(|_, versions| {
            versions.retain(|_, cell| {
                let Some(loaded) = cell.get() else {
                    return true;
                };
                let idle = loaded.runner.reap(now);
                loaded.metrics.warm.set(idle as i64);
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
                    code_dir,
                    logs: lambda::log_sink(&self.parts.telemetry, function, version),
                },
            },
        };
        LoadedVersion {
            function: function.to_string(),
            version,
            runner,
            metrics: VersionMetrics::new(&self.parts.metrics, function),
            spec,
        }
    }

    fn record_refusal(
        &self,
        loaded: &LoadedVersion,
        invocation_id: &str,
        started_at_ms: i64,
        started: Instant,
    ) {
        loaded.metrics.throttled.inc();
        let telemetry = self.parts.telemetry.clone();
        let record = InvocationRecord {
            id: invocation_id.to_string(),
            function: loaded.function.clone(),
            version: loaded.version,
            started_at_ms,
            duration_us: started.elapsed().as_micros() as i64,
            status: 429,
            outcome: InvocationOutcome::Throttled,
            cold_start: false,
            memory_mb: loaded.spec.limits.memory_mb,
        };
        tokio::spawn(async move { telemetry.invocation(record).await });
    }
}

/// One request on its way through the invoker.
struct Call {
    invocation_id: String,
    started: Instant,
    started_at_ms: i64,
    cold_start: bool,
}

impl Call {
    fn answer(
        self,
        loaded: &LoadedVersion,
        response: Result<http::Response<ResponseBody>, InvokeError>,
    ) -> Answer {
        Answer {
            invocation_id: self.invocation_id,
            version: loaded.version,
            cold_start: self.cold_start,
            response,
        }
    }
}

/// The accounting of one invocation, run after the function is done with it: metrics,
/// the log lines it produced, a platform line for a failure and the invocation record.
struct Finish {
    telemetry: Telemetry,
    loaded: Arc<LoadedVersion>,
    id: String,
    started: Instant,
    started_at_ms: i64,
    cold_start: bool,
    status: u16,
}

impl Finish {
    async fn run(
        self,
        outcome: InvocationOutcome,
        lines: impl Iterator<Item = (LogStream, i64, String)>,
        failure: Option<String>,
    ) {
        let loaded = &self.loaded;
        let duration = self.started.elapsed();
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
            lines.push(line(LogStream::Platform, gureum_model::now_ms(), failure));
        }
        loaded.metrics.outcome(outcome).inc();
        loaded.metrics.duration.observe(duration.as_secs_f64());
        self.telemetry.logs(lines).await;
        self.telemetry
            .invocation(InvocationRecord {
                id: self.id.clone(),
                function: loaded.function.clone(),
                version: loaded.version,
                started_at_ms: self.started_at_ms,
                duration_us: duration.as_micros() as i64,
                status: self.status,
                outcome,
                cold_start: self.cold_start,
                memory_mb: loaded.spec.limits.memory_mb,
            })
            .await;
    }
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

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
