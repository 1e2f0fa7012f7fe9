//! The one path from (function, request) to response. The [`Invoker`] keeps the routing
//! table and each function's live version in memory, loads a version's code on its first
//! request (a cold start), leases instances from the version's pool, runs the request and
//! hands logs, the invocation record and metrics to telemetry without waiting on the
//! store. Deploy and rollback commit to the store first and then swap the in-memory
//! state, so a request sees either the old or the new version, never a mix.
//!
//! [`Invoker::invoke`], in order:
//! 1. The registry (in memory, behind an `RwLock`) gives the function's live version and
//!    spec; an unknown function is a 404.
//! 2. For HTTP and API triggers, a `[static]` site answers from memory when the path
//!    names one of its files (a static-only site answers everything), and nothing below
//!    runs.
//! 3. [`Quotas::admit`] counts the request; at a cap it is a 429 `quota_exceeded`. A
//!    request that then does not run (its code fails to load, or its pool is full) is
//!    refunded.
//! 4. The loaded version comes from the `loaded` map (function, then version, to a
//!    `OnceCell`); an empty cell is a cold start, filled once (`load.rs`).
//! 5. The trace span starts, continuing an incoming `traceparent` (a no-op without
//!    `--otlp-endpoint`), and the request body is wrapped to count the bytes in.
//! 6. The version's `Runner` (wasm or lambda) runs it. Its response body is wrapped to
//!    count the bytes out, and its end sets off the accounting.
//!
//! The gateway then adds `x-gureum-invocation-id`, `x-gureum-version` and
//! `x-gureum-cold-start` to the answer.
//!
//! Invariant: the request path never awaits a store write. It reads the store only for
//! what this node has not loaded yet: a pinned, non-live version's manifest (and static
//! site) on its first use, and a version's artifact when the node has no local copy of
//! its code (`load.rs`).
//!
//! Rooms: `registry.rs` (what is live, routes, token identities, the sync task),
//! `load.rs` (the cold start), `wasm.rs` and `lambda.rs` (running a request on each
//! runtime), `accounting.rs` (records, logs, metrics and spans, after the response),
//! `reaper.rs` (scale to zero), `static_site.rs` (files before the function), `deploy.rs`
//! (deploy, rollback, remove), `quota.rs`, `tokens.rs` and `retired.rs` (function tokens
//! and their grace), `routes.rs`, `kv.rs` (`wasi:keyvalue` on the store).

mod accounting;
mod body;
mod deploy;
mod error;
mod kv;
mod lambda;
mod load;
mod metrics;
mod quota;
mod reaper;
mod registry;
mod retired;
mod routes;
pub mod static_site;
mod tokens;
mod wasm;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gureum_model::{FunctionSpec, Trigger, VersionNumber};
use gureum_pool::InstancePool;
use gureum_runtime_lambda::{LambdaInstance, LambdaRuntime, ProcessSettings};
use gureum_runtime_wasm::{CompiledComponent, InstanceSettings, WasmEngine, WasmInstance};
use gureum_store::Store;
use gureum_telemetry::{Metrics, PoolStats, Telemetry};
use gureum_tracing::Tracer;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::sync::OnceCell;
use tokio_util::task::TaskTracker;

use crate::accounting::{Call, Meter, release_to, status_of};
use crate::metrics::VersionMetrics;
use crate::registry::{LiveFunction, Registry};
use crate::static_site::{Asked, Site};

pub use deploy::{DeployError, Deployed};
pub use error::InvokeError;
pub use kv::StoreKeyValue;
pub use quota::{QuotaError, QuotaRefusal, Quotas};
pub use reaper::REAP_INTERVAL;
pub use registry::{REGISTRY_POLL_INTERVAL, TokenRefusal};
pub use retired::TOKEN_GRACE;
pub use routes::RouteTable;
pub use static_site::{MountRoot, StaticError};
pub use tokens::{FunctionTokens, TOKEN_KEY_SETTING};

/// How long a wasm version's loaded code outlives its last instance (at least its idle
/// TTL): a cold start within it instantiates without loading code.
pub const WASM_CODE_TTL: Duration = Duration::from_secs(600);

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

    /// The quotas, to change them (control API).
    pub fn quotas(&self) -> &Arc<Quotas> {
        &self.parts.quotas
    }

    /// The trace exporter.
    pub fn tracer(&self) -> &Tracer {
        &self.parts.tracer
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
