//! REST control API on the admin listener: `/api/v1` (deploy, versions, rollback,
//! remove, invoke, logs, invocations, stats, usage, prices, quotas, schedules, queue, dead
//! letters, WebSockets, users, collections, documents), its OpenAPI 3.1 document generated
//! from the handlers, `/metrics`, `/healthz` and the web console's files (`/`,
//! `/assets/…`, crate gureum-console). Every route but `/healthz` and the console's files
//! needs the admin bearer token (`/metrics` too, unless `--metrics-public`), compared in
//! constant time. `/api/v1/data/{rest}` calls the `/data/v1` router in process as
//! `Caller::Admin` (`backend.rs`), so the console needs no token on the public listener.
//! Request bodies an answer did not need are drained (`gureum_gateway::DrainOnDrop`).

mod backend;
mod error;
mod functions;
mod logs;
mod metering;
mod openapi;
mod queue;
mod stats;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use gureum_gateway::GatewaySettings;
use gureum_invoke::Invoker;
use gureum_store::Store;
use gureum_telemetry::Metrics;

pub use error::ApiError;
pub use openapi::ApiDoc;

/// Largest artifact a deploy may upload.
pub const DEFAULT_MAX_ARTIFACT_BYTES: usize = 256 * 1024 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The invoker (deploys and invocations go through it).
    pub invoker: Arc<Invoker>,
    /// The store (listings, logs).
    pub store: Store,
    /// Metrics for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The admin bearer token.
    pub token: Arc<String>,
    /// Base URL of the public listener, for the URLs in answers.
    pub public_url: Arc<String>,
    /// Gateway limits applied to invocations made through the API.
    pub gateway: GatewaySettings,
    /// Serve `/metrics` without the token (`--metrics-public`).
    pub metrics_public: bool,
    /// The asynchronous queue (async invokes, schedules, dead letters).
    pub queue: Arc<gureum_queue::Queue>,
    /// The public listener's backend services (users through its auth service).
    pub services: Arc<gureum_gateway::Services>,
    /// The data services (collection configs, documents through `/api/v1/data`).
    pub data: Arc<gureum_data::DataService>,
    /// The WebSocket hub (open connections).
    pub websockets: Arc<gureum_websocket::Hub>,
}

/// The admin listener's router.
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/functions", get(functions::list).post(functions::deploy))
        .route(
            "/functions/{name}",
            get(functions::show).delete(functions::remove),
        )
        .route("/functions/{name}/versions", get(functions::versions))
        .route("/functions/{name}/rollback", post(functions::rollback))
        .route("/functions/{name}/logs", get(logs::logs))
        .route("/functions/{name}/invocations", get(logs::invocations))
        .route("/functions/{name}/invocations/{id}", get(logs::invocation))
        .route("/functions/{name}/invoke", any(functions::invoke))
        .route("/functions/{name}/invoke/{*path}", any(functions::invoke))
        .route("/schedules", get(queue::schedules))
        .route(
            "/functions/{name}/dead-letters",
            get(queue::dead_letters).delete(queue::delete_all),
        )
        .route(
            "/functions/{name}/dead-letters/redrive",
            post(queue::redrive_all),
        )
        .route(
            "/functions/{name}/dead-letters/{id}",
            get(queue::dead_letter).delete(queue::delete_one),
        )
        .route(
            "/functions/{name}/dead-letters/{id}/redrive",
            post(queue::redrive_one),
        )
        .route("/users", get(backend::users))
        .route("/users/{user}", get(backend::user))
        .route("/users/{user}/disable", post(backend::disable))
        .route("/users/{user}/enable", post(backend::enable))
        .route("/collections", get(backend::collections))
        .route(
            "/collections/{name}",
            get(backend::collection)
                .put(backend::set_collection)
                .delete(backend::delete_collection),
        )
        .route("/data/{*rest}", any(backend::data))
        .route("/stats", get(stats::stats))
        .route("/queue", get(stats::queue))
        .route("/websockets", get(stats::websockets))
        .route("/usage", get(metering::usage))
        .route("/prices", get(metering::prices).put(metering::set_prices))
        .route("/quotas", get(metering::quotas))
        // A literal segment wins over `{name}`, so `global` is the installation's quota.
        .route(
            "/quotas/global",
            put(metering::set_global_quota).delete(metering::remove_global_quota),
        )
        .route(
            "/quotas/{name}",
            put(metering::set_function_quota).delete(metering::remove_function_quota),
        )
        .layer(DefaultBodyLimit::max(DEFAULT_MAX_ARTIFACT_BYTES));
    let mut router = Router::new().nest("/api/v1", api);
    // Routes added after the token layer are outside it.
    if !state.metrics_public {
        router = router.route("/metrics", get(metrics));
    }
    router = router.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        require_token,
    ));
    if state.metrics_public {
        router = router.route("/metrics", get(metrics));
    }
    // The console's files need no token: the page asks for it and sends it to /api/v1.
    router
        .route("/", get(gureum_console::serve))
        .route("/index.html", get(gureum_console::serve))
        .route("/favicon.svg", get(gureum_console::serve))
        .route("/assets/{*path}", get(gureum_console::serve))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(axum::middleware::map_request(drain_unread_bodies))
        .with_state(state)
}

/// Request bodies an answer did not need are read after it (`DrainOnDrop`), so a client
/// still sending gets the answer, e.g. the 401 to a deploy without the token.
async fn drain_unread_bodies(request: Request) -> Request {
    let version = request.version();
    request.map(|body| axum::body::Body::new(gureum_gateway::DrainOnDrop::new(body, version)))
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let presented = gureum_auth::bearer_token(request.headers()).unwrap_or_default();
    if !gureum_auth::constant_time_eq(presented.as_bytes(), state.token.as_bytes()) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}
