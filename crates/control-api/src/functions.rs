//! Function resources: deploy, list, show, versions, rollback, remove and invoke.

use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gureum_api_types::{
    AsyncConfigView, DeployResponse, ErrorBody, FunctionConfigView, FunctionInfo, RollbackRequest,
    RollbackResponse, ScheduleConfigView, StaticConfigView, StaticSiteInfo, VersionInfo,
};
use gureum_model::{AuthPolicy, FunctionName, FunctionSpec, LIVE_ALIAS};

use crate::{AdminState, ApiError};

/// Deploy a new version (multipart parts `manifest`: the gureum.toml text, `artifact`: the
/// component bytes or lambda zip, empty for a static-only site; `static`: the zip of the
/// `[static]` files, when the manifest has that section) and point `live` at it.
#[utoipa::path(post, path = "/api/v1/functions", tag = "functions",
    request_body(content_type = "multipart/form-data", description = "parts `manifest` (gureum.toml text), `artifact` (the component or lambda zip; empty for a static-only site) and, with [static], `static` (a zip of the files)"),
    responses((status = 201, body = DeployResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn deploy(
    State(state): State<AdminState>,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<DeployResponse>), ApiError> {
    let mut manifest = None;
    let mut artifact = None;
    let mut static_bundle = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| ApiError::BadRequest(format!("malformed multipart body: {error}")))?
    {
        match field.name() {
            Some("manifest") => {
                manifest = Some(field.text().await.map_err(|error| {
                    ApiError::BadRequest(format!("reading part `manifest`: {error}"))
                })?)
            }
            Some("artifact") => {
                artifact = Some(field.bytes().await.map_err(|error| {
                    ApiError::BadRequest(format!("reading part `artifact`: {error}"))
                })?)
            }
            Some("static") => {
                static_bundle = Some(field.bytes().await.map_err(|error| {
                    ApiError::BadRequest(format!("reading part `static`: {error}"))
                })?)
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unexpected multipart part {other:?}; send `manifest`, `artifact` and (with [static]) `static`"
                )));
            }
        }
    }
    let manifest = manifest.ok_or_else(|| {
        ApiError::BadRequest("multipart part `manifest` (the gureum.toml text) is missing".into())
    })?;
    let artifact = artifact.ok_or_else(|| {
        ApiError::BadRequest("multipart part `artifact` (the component bytes) is missing".into())
    })?;
    let deployed = state
        .invoker
        .deploy_with_static(
            &manifest,
            artifact.to_vec(),
            static_bundle.map(|bundle| bundle.to_vec()),
        )
        .await?;
    let mut url = function_url(&state, &deployed.function);
    if deployed.static_files.is_some() {
        url.push('/');
    }
    Ok((
        StatusCode::CREATED,
        Json(DeployResponse {
            url,
            name: deployed.function,
            version: deployed.version,
            artifact_hash: deployed.artifact_hash,
            routes: deployed.routes,
            static_site: deployed.static_files.map(|(files, bytes)| StaticSiteInfo {
                files: files as u64,
                bytes,
            }),
            warnings: deployed.warnings,
            permissions: deployed.permissions,
        }),
    ))
}

/// List deployed functions.
#[utoipa::path(get, path = "/api/v1/functions", tag = "functions",
    responses((status = 200, body = Vec<FunctionInfo>)))]
pub async fn list(State(state): State<AdminState>) -> Result<Json<Vec<FunctionInfo>>, ApiError> {
    let functions = state.store.list_functions().await?;
    Ok(Json(
        functions
            .into_iter()
            .map(|function| FunctionInfo {
                url: function_url(&state, function.name.as_str()),
                runtime: live_runtime(&state, function.name.as_str()),
                name: function.name.to_string(),
                live_version: function.live_version,
                latest_version: function.latest_version,
                created_at_ms: function.created_at_ms,
            })
            .collect(),
    ))
}

/// Show one function.
#[utoipa::path(get, path = "/api/v1/functions/{name}", tag = "functions",
    params(("name" = String, Path, description = "function name")),
    responses((status = 200, body = FunctionInfo), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<FunctionInfo>, ApiError> {
    let functions = state.store.list_functions().await?;
    let function = functions
        .into_iter()
        .find(|function| function.name.as_str() == name)
        .ok_or_else(|| not_deployed(&name))?;
    Ok(Json(FunctionInfo {
        url: function_url(&state, &name),
        runtime: live_runtime(&state, &name),
        name,
        live_version: function.live_version,
        latest_version: function.latest_version,
        created_at_ms: function.created_at_ms,
    }))
}

/// List a function's versions, oldest first.
#[utoipa::path(get, path = "/api/v1/functions/{name}/versions", tag = "functions",
    params(("name" = String, Path, description = "function name")),
    responses((status = 200, body = Vec<VersionInfo>), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<VersionInfo>>, ApiError> {
    let function = parse_name(&name)?;
    let live = state
        .store
        .get_alias(&function, LIVE_ALIAS)
        .await?
        .ok_or_else(|| not_deployed(&name))?;
    let versions = state.store.list_versions(&function).await?;
    let sizes = state.store.version_sizes(&function).await?;
    let mut infos = Vec::with_capacity(versions.len());
    for version in versions {
        // The stored manifest was valid when deployed; a parse failure (a manifest rule
        // tightened since) only leaves the effective config out.
        let config = gureum_manifest::parse(&version.manifest)
            .ok()
            .map(|spec| config_view(&spec));
        let size_bytes = sizes.get(&version.version).copied();
        infos.push(VersionInfo {
            live: version.version == live,
            version: version.version,
            runtime: config
                .as_ref()
                .map(|config| config.runtime.clone())
                .unwrap_or_default(),
            size_bytes,
            config,
            artifact_hash: version.artifact_hash,
            created_at_ms: version.created_at_ms,
            manifest: version.manifest,
        });
    }
    Ok(Json(infos))
}

/// A version's effective configuration for the API.
fn config_view(spec: &FunctionSpec) -> FunctionConfigView {
    let limits = &spec.limits;
    let asynchronous = &spec.async_config;
    FunctionConfigView {
        runtime: spec.runtime.as_str().to_string(),
        command: spec.command.clone(),
        memory_mb: limits.memory_mb,
        timeout_ms: limits.timeout_ms,
        max_instances: limits.max_instances,
        idle_ttl_s: limits.idle_ttl_s,
        ephemeral_storage_mb: limits.ephemeral_storage_mb,
        reuse_instances: spec.reuse_instances,
        routes: spec.routes.clone(),
        schedules: spec
            .schedules
            .iter()
            .map(|schedule| ScheduleConfigView {
                name: schedule.name.clone(),
                cron: schedule.cron.clone(),
                tz: schedule.tz.clone(),
                body: schedule.body.clone(),
                catch_up: schedule.catch_up,
            })
            .collect(),
        auth: match &spec.auth {
            AuthPolicy::None => "public".to_string(),
            AuthPolicy::User => "user".to_string(),
            AuthPolicy::Expression(expression) => expression.clone(),
        },
        env: spec.env.clone(),
        allowed_outbound_hosts: spec.allowed_outbound_hosts.clone(),
        static_site: spec.static_site.as_ref().map(|site| StaticConfigView {
            dir: site.dir.clone(),
            spa: site.spa,
        }),
        async_config: AsyncConfigView {
            retries: asynchronous.retries,
            max_event_age_ms: asynchronous.max_event_age_ms,
            retry_delay_ms: asynchronous.retry_delay_ms,
            max_queued: asynchronous.max_queued,
            max_queued_bytes: asynchronous.max_queued_bytes,
            public: asynchronous.public,
            on_success: asynchronous.on_success.as_ref().map(ToString::to_string),
            on_failure: asynchronous.on_failure.as_ref().map(ToString::to_string),
        },
    }
}

/// The runtime of a function's live version, from the in-memory registry (empty when
/// this node has not loaded it).
fn live_runtime(state: &AdminState, name: &str) -> String {
    state
        .invoker
        .live_function(name)
        .map(|(_, spec)| spec.runtime.as_str().to_string())
        .unwrap_or_default()
}

/// Point `live` at another version (default: the one before the current `live`).
#[utoipa::path(post, path = "/api/v1/functions/{name}/rollback", tag = "functions",
    params(("name" = String, Path, description = "function name")),
    request_body = RollbackRequest,
    responses((status = 200, body = RollbackResponse), (status = 404, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Option<Json<RollbackRequest>>,
) -> Result<Json<RollbackResponse>, ApiError> {
    let to = body.and_then(|Json(request)| request.to);
    let (from, to) = state.invoker.rollback(&name, to).await?;
    Ok(Json(RollbackResponse { name, from, to }))
}

/// Remove a function with all its versions and logs.
#[utoipa::path(delete, path = "/api/v1/functions/{name}", tag = "functions",
    params(("name" = String, Path, description = "function name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.invoker.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invoke a function through the control API (any method; the rest of the path and the
/// query are passed to the function). `NAME@VERSION` pins a version.
#[utoipa::path(post, path = "/api/v1/functions/{name}/invoke", tag = "functions",
    params(("name" = String, Path, description = "function name, optionally NAME@VERSION")),
    request_body(content = String, description = "passed to the function unchanged"),
    responses((status = 200, description = "the function's response, with x-gureum-* headers")))]
pub async fn invoke(State(state): State<AdminState>, request: Request) -> Response {
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let (mut parts, body) = request.into_parts();
    let original = parts.uri.path().to_string();
    // /api/v1/functions/NAME/invoke[/rest] → /fn/NAME[/rest]: the gateway's own path.
    // Inside the nested router the `/api/v1` prefix is already gone.
    let rest = original
        .strip_prefix("/api/v1/functions/")
        .or_else(|| original.strip_prefix("/functions/"))
        .unwrap_or_default();
    let (name, tail) = rest.split_once("/invoke").unwrap_or((rest, ""));
    let mut target = format!("/fn/{name}{tail}");
    if let Some(query) = parts.uri.query() {
        target.push('?');
        target.push_str(query);
    }
    match target.parse::<Uri>() {
        Ok(uri) => parts.uri = uri,
        Err(error) => {
            return ApiError::BadRequest(format!("invalid invoke path: {error}")).into_response();
        }
    }
    parts.headers.remove(axum::http::header::AUTHORIZATION);
    let request = Request::from_parts(parts, body);
    gureum_gateway::handle(
        &state.invoker,
        &state.queue,
        None,
        state.gateway,
        request,
        client,
        gureum_model::Trigger::Api,
    )
    .await
    .map(Body::new)
}

pub(crate) fn parse_name(name: &str) -> Result<FunctionName, ApiError> {
    FunctionName::new(name).map_err(|error| ApiError::BadRequest(error.to_string()))
}

pub(crate) fn not_deployed(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no function named {name:?} is deployed; `gureum ls` lists the deployed functions"
    ))
}

fn function_url(state: &AdminState, name: &str) -> String {
    format!("{}/fn/{name}", state.public_url)
}
