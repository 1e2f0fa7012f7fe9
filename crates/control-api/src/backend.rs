//! The backend services' admin side: users (`/users`, list, show, disable, enable) and
//! collections (`/collections`: rules, indexes, file limits; validated when set).

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use gureum_auth::{Caller, ClientAddr};
use gureum_data::CollectionConfigInput;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::{AdminState, ApiError};

/// Query of the user listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UserListParams {
    /// Only users whose email sorts after this (paging).
    pub after: Option<String>,
    /// Only users whose email starts with this (emails are kept in lower case, so the
    /// search is too).
    pub q: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Users, ordered by email; `q` searches by the start of the email.
#[utoipa::path(get, path = "/api/v1/users", tag = "backend", params(UserListParams),
    responses((status = 200, description = "{users: [...], next: email|null}")))]
pub async fn users(
    State(state): State<AdminState>,
    Query(params): Query<UserListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let prefix = params
        .q
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    let users = state
        .services
        .auth()
        .list_users(params.after.as_deref(), prefix.as_deref(), limit)
        .await?;
    let next = (users.len() == limit as usize)
        .then(|| users.last().map(|u| u.email.clone()))
        .flatten();
    Ok(Json(json!({
        "users": users.iter().map(gureum_auth::user_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

/// One user, by id or email.
#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "backend",
    params(("user" = String, Path, description = "id or email")),
    responses((status = 200, description = "the user"), (status = 404, description = "no such user")))]
pub async fn user(
    State(state): State<AdminState>,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.services.auth().find_user(&user).await? {
        Some(user) => Ok(Json(gureum_auth::user_json(&user))),
        None => Err(ApiError::NotFound(format!(
            "no user with id or email {user:?}"
        ))),
    }
}

async fn set_disabled(
    state: &AdminState,
    user: &str,
    disabled: bool,
) -> Result<Json<Value>, ApiError> {
    let auth = state.services.auth();
    let Some(found) = auth.find_user(user).await? else {
        return Err(ApiError::NotFound(format!(
            "no user with id or email {user:?}"
        )));
    };
    let updated = auth
        .set_disabled(&found.id, disabled)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user with id or email {user:?}")))?;
    Ok(Json(gureum_auth::user_json(&updated)))
}

/// Disables a user: no sign-in or refresh; every refresh token is revoked (issued access
/// tokens expire within 15 minutes).
#[utoipa::path(post, path = "/api/v1/users/{user}/disable", tag = "backend",
    params(("user" = String, Path, description = "id or email")),
    responses((status = 200, description = "the user")))]
pub async fn disable(
    State(state): State<AdminState>,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&state, &user, true).await
}

/// Enables a disabled user again.
#[utoipa::path(post, path = "/api/v1/users/{user}/enable", tag = "backend",
    params(("user" = String, Path, description = "id or email")),
    responses((status = 200, description = "the user")))]
pub async fn enable(
    State(state): State<AdminState>,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&state, &user, false).await
}

fn data_error(error: gureum_data::DataError) -> ApiError {
    match error {
        gureum_data::DataError::BadRequest(message) => ApiError::BadRequest(message),
        gureum_data::DataError::Store(error) => ApiError::Store(error),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// Every configured collection: its config and document count.
#[utoipa::path(get, path = "/api/v1/collections", tag = "backend",
    responses((status = 200, description = "[{name, config, documents}]")))]
pub async fn collections(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    let list = state.data.list_configs().await.map_err(data_error)?;
    Ok(Json(Value::Array(
        list.into_iter()
            .map(|(name, config, documents)| json!({"name": name, "config": config, "documents": documents}))
            .collect(),
    )))
}

/// A collection's config (rules, indexes, file limits) and document count.
#[utoipa::path(get, path = "/api/v1/collections/{name}", tag = "backend",
    params(("name" = String, Path, description = "collection")),
    responses((status = 200, description = "{name, config, documents}")))]
pub async fn collection(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let text = state.store.collection_config(&name).await?;
    let documents = state.store.count_documents(&name).await?;
    let Some(text) = text else {
        return Err(ApiError::NotFound(format!(
            "collection {name:?} has no config (its rules deny everyone but the admin and functions); set one with `gureum collections set {name} FILE`"
        )));
    };
    let config: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Json(
        json!({"name": name, "config": config, "documents": documents}),
    ))
}

/// Sets a collection's config: `{"rules": {"list": "<CEL>", ...}, "indexes": [...],
/// "files": {"max_bytes", "types"}}`. Every problem is reported (rule syntax errors with
/// line:column); nothing changes unless all of it is valid.
#[utoipa::path(put, path = "/api/v1/collections/{name}", tag = "backend",
    params(("name" = String, Path, description = "collection")),
    responses((status = 200, description = "{name, config}"), (status = 400, description = "every problem, one per line")))]
pub async fn set_collection(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let input: CollectionConfigInput = serde_json::from_str(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be a collection config {{\"rules\", \"indexes\", \"files\"}}: {e}"
        ))
    })?;
    let config = state
        .data
        .set_config(&name, input)
        .await
        .map_err(data_error)?;
    Ok(Json(json!({"name": name, "config": config.input})))
}

/// Removes a collection: its config, indexes, documents and files.
#[utoipa::path(delete, path = "/api/v1/collections/{name}", tag = "backend",
    params(("name" = String, Path, description = "collection")),
    responses((status = 200, description = "{deleted: bool}")))]
pub async fn delete_collection(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let deleted = state
        .data
        .delete_collection(&name)
        .await
        .map_err(data_error)?;
    if !deleted {
        return Err(ApiError::NotFound(format!("no collection {name:?}")));
    }
    Ok(Json(json!({"deleted": true})))
}

/// The public data API (`/data/v1/…`: documents, files, realtime streams) as the
/// administrator, so the console and scripts reach every collection from the admin
/// listener without a second origin or token. Rules are skipped as for any admin call.
#[utoipa::path(get, path = "/api/v1/data/{rest}", tag = "backend",
    params(("rest" = String, Path, description = "the rest of a `/data/v1/` path, e.g. `collections/notes/docs`; any method, query and body are passed on")),
    responses((status = 200, description = "what `/data/v1/{rest}` answers the administrator")))]
pub async fn data(State(state): State<AdminState>, request: Request) -> Response {
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let (mut parts, body) = request.into_parts();
    // Nested under /api/v1, the handler sees `/data/REST`; the data router wants
    // `/data/v1/REST`.
    let rest = parts.uri.path().strip_prefix("/data/").unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|query| format!("?{query}"))
        .unwrap_or_default();
    parts.uri = match format!("/data/v1/{rest}{query}").parse() {
        Ok(uri) => uri,
        Err(error) => {
            return ApiError::BadRequest(format!("the path is not a valid URI: {error}"))
                .into_response();
        }
    };
    // Fresh extensions: this route's own path parameters must not reach the data
    // router's extractors (axum keeps them there).
    parts.extensions = axum::http::Extensions::new();
    // The caller is settled; the admin token goes no further.
    parts.headers.remove(axum::http::header::AUTHORIZATION);
    parts.extensions.insert(Caller::Admin);
    parts.extensions.insert(ClientAddr(client));
    let mut response = match state
        .data
        .router()
        .oneshot(Request::from_parts(parts, body))
        .await
    {
        Ok(response) => response,
        Err(never) => match never {},
    };
    // A created document's Location, as it is reached here.
    let location = response
        .headers()
        .get(axum::http::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("/data/v1/"))
        .and_then(|rest| axum::http::HeaderValue::from_str(&format!("/api/v1/data/{rest}")).ok());
    if let Some(location) = location {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, location);
    }
    response
}
