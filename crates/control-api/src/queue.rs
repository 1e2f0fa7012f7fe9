//! Schedules and dead letters: `/schedules` and `/functions/{name}/dead-letters`.

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine as _;
use gureum_api_types::{AttemptError, DeadLetterCount, DeadLetterInfo, ScheduleInfo};
use gureum_store::DeadLetter;
use serde::Deserialize;

use crate::functions::parse_name;
use crate::{AdminState, ApiError};

/// Most dead letters one listing returns.
const MAX_LIST: u32 = 1_000;

/// Query of the dead-letter listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Every live function's cron schedules with their next run and last result.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "queue",
    responses((status = 200, body = Vec<ScheduleInfo>)))]
pub async fn schedules(
    State(state): State<AdminState>,
) -> Result<Json<Vec<ScheduleInfo>>, ApiError> {
    let views = state.queue.schedules().await?;
    Ok(Json(
        views
            .into_iter()
            .map(|view| ScheduleInfo {
                last_result: match (&view.last_status, &view.last_invocation_id) {
                    (Some(status), _) => Some(status.clone()),
                    (None, Some(_)) => Some("pending".to_string()),
                    (None, None) => None,
                },
                function: view.function,
                name: view.name,
                cron: view.cron,
                tz: view.tz,
                next_run: view.next_at_ms.map(gureum_queue::rfc3339),
                last_run: view.last_tick_ms.map(gureum_queue::rfc3339),
                last_invocation_id: view.last_invocation_id,
                last_finished: view.last_finished_at_ms.map(gureum_queue::rfc3339),
            })
            .collect(),
    ))
}

/// A function's dead-letter list, newest first.
#[utoipa::path(get, path = "/api/v1/functions/{name}/dead-letters", tag = "queue",
    params(("name" = String, Path, description = "function name"), ListParams),
    responses((status = 200, body = Vec<DeadLetterInfo>)))]
pub async fn dead_letters(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<DeadLetterInfo>>, ApiError> {
    let name = parse_name(&name)?;
    let limit = params.limit.unwrap_or(100).min(MAX_LIST);
    let letters = state.store.list_dead_letters(name.as_str(), limit).await?;
    Ok(Json(letters.iter().map(info).collect()))
}

/// One dead letter with its request and every attempt's error.
#[utoipa::path(get, path = "/api/v1/functions/{name}/dead-letters/{id}", tag = "queue",
    params(("name" = String, Path, description = "function name"), ("id" = String, Path, description = "invocation id")),
    responses((status = 200, body = DeadLetterInfo), (status = 404, body = gureum_api_types::ErrorBody)))]
pub async fn dead_letter(
    State(state): State<AdminState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<DeadLetterInfo>, ApiError> {
    let name = parse_name(&name)?;
    match state.store.get_dead_letter(name.as_str(), &id).await? {
        Some(letter) => Ok(Json(info(&letter))),
        None => Err(missing(name.as_str(), &id)),
    }
}

/// Deletes one dead letter.
#[utoipa::path(delete, path = "/api/v1/functions/{name}/dead-letters/{id}", tag = "queue",
    params(("name" = String, Path, description = "function name"), ("id" = String, Path, description = "invocation id")),
    responses((status = 200, body = DeadLetterCount), (status = 404, body = gureum_api_types::ErrorBody)))]
pub async fn delete_one(
    State(state): State<AdminState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<DeadLetterCount>, ApiError> {
    let name = parse_name(&name)?;
    let count = state
        .store
        .delete_dead_letters(name.as_str(), Some(&id))
        .await?;
    if count == 0 {
        return Err(missing(name.as_str(), &id));
    }
    Ok(Json(DeadLetterCount { count }))
}

/// Deletes a function's whole dead-letter list.
#[utoipa::path(delete, path = "/api/v1/functions/{name}/dead-letters", tag = "queue",
    params(("name" = String, Path, description = "function name")),
    responses((status = 200, body = DeadLetterCount)))]
pub async fn delete_all(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<DeadLetterCount>, ApiError> {
    let name = parse_name(&name)?;
    let count = state.store.delete_dead_letters(name.as_str(), None).await?;
    Ok(Json(DeadLetterCount { count }))
}

/// Queues one dead letter again (same invocation id, attempts from zero).
#[utoipa::path(post, path = "/api/v1/functions/{name}/dead-letters/{id}/redrive", tag = "queue",
    params(("name" = String, Path, description = "function name"), ("id" = String, Path, description = "invocation id")),
    responses((status = 200, body = DeadLetterCount), (status = 404, body = gureum_api_types::ErrorBody)))]
pub async fn redrive_one(
    State(state): State<AdminState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<DeadLetterCount>, ApiError> {
    let name = parse_name(&name)?;
    let count = state
        .store
        .redrive_dead_letters(name.as_str(), Some(&id), gureum_model::now_ms())
        .await?;
    if count == 0 {
        return Err(missing(name.as_str(), &id));
    }
    Ok(Json(DeadLetterCount { count }))
}

/// Queues a function's whole dead-letter list again.
#[utoipa::path(post, path = "/api/v1/functions/{name}/dead-letters/redrive", tag = "queue",
    params(("name" = String, Path, description = "function name")),
    responses((status = 200, body = DeadLetterCount)))]
pub async fn redrive_all(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<DeadLetterCount>, ApiError> {
    let name = parse_name(&name)?;
    let count = state
        .store
        .redrive_dead_letters(name.as_str(), None, gureum_model::now_ms())
        .await?;
    Ok(Json(DeadLetterCount { count }))
}

fn missing(function: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no dead letter {id:?} for {function:?}; `gureum dlq {function}` lists them"
    ))
}

fn info(letter: &DeadLetter) -> DeadLetterInfo {
    let event = &letter.event;
    let (body, body_base64) = match std::str::from_utf8(&event.body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&event.body),
            true,
        ),
    };
    DeadLetterInfo {
        id: event.id.clone(),
        function: event.function.clone(),
        version: event.version,
        trigger: event.trigger.clone(),
        source: event.source.clone(),
        method: event.method.clone(),
        path: event.path.clone(),
        headers: serde_json::from_str(&event.headers).unwrap_or_default(),
        body,
        body_base64,
        enqueued: gureum_queue::rfc3339(event.enqueued_at_ms),
        failed: gureum_queue::rfc3339(letter.failed_at_ms),
        attempts: event.attempts,
        reason: letter.reason.clone(),
        errors: serde_json::from_str::<Vec<AttemptError>>(&event.errors).unwrap_or_default(),
    }
}
