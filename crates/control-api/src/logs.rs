//! Invocation logs and records: query, and follow as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use gureum_api_types::{ErrorBody, InvocationView, LogLineView};
use gureum_model::{InvocationRecord, LogLine};
use gureum_store::LogQuery;
use serde::Deserialize;

use crate::functions::parse_name;
use crate::{AdminState, ApiError};

/// How often a follow polls the store for new lines (the store is the source of truth,
/// so following works across nodes).
pub const FOLLOW_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Default and maximum number of lines per query.
pub const DEFAULT_LOG_LIMIT: u32 = 1_000;

/// Query parameters of the logs endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogParams {
    /// Only lines at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only lines of this invocation.
    pub invocation: Option<String>,
    /// Only lines with a larger sequence number.
    pub after: Option<i64>,
    /// Only lines containing this text (case-sensitive).
    pub grep: Option<String>,
    /// At most this many lines (default and maximum 1000).
    pub limit: Option<u32>,
    /// Keep the response open and stream new lines as server-sent events.
    #[serde(default)]
    pub follow: bool,
}

/// Log lines of a function, oldest first; `follow=true` streams new ones (SSE, one JSON
/// line per event).
#[utoipa::path(get, path = "/api/v1/functions/{name}/logs", tag = "logs",
    params(("name" = String, Path, description = "function name"), LogParams),
    responses((status = 200, body = Vec<LogLineView>), (status = 400, body = ErrorBody)))]
pub async fn logs(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(params): Query<LogParams>,
) -> Result<Response, ApiError> {
    parse_name(&name)?;
    let mut query = LogQuery {
        function: Some(name),
        invocation_id: params.invocation,
        since_ms: params.since_ms,
        after_seq: params.after,
        grep: params.grep.filter(|text| !text.is_empty()),
        limit: params
            .limit
            .unwrap_or(DEFAULT_LOG_LIMIT)
            .min(DEFAULT_LOG_LIMIT),
    };
    if !params.follow {
        let lines = state.store.query_logs(&query).await?;
        return Ok(Json(lines.into_iter().map(view).collect::<Vec<_>>()).into_response());
    }
    let store = state.store.clone();
    let stream = futures::stream::unfold(
        (store, query.clone(), Vec::<LogLine>::new()),
        move |(store, mut query, mut pending)| async move {
            loop {
                if let Some(line) = pending.pop() {
                    let event = Event::default()
                        .id(line.seq.to_string())
                        .json_data(view(line))
                        .unwrap_or_default();
                    return Some((Ok::<_, Infallible>(event), (store, query, pending)));
                }
                match store.query_logs(&query).await {
                    Ok(lines) if !lines.is_empty() => {
                        query.after_seq = lines.last().map(|line| line.seq);
                        pending = lines;
                        pending.reverse();
                    }
                    Ok(_) => tokio::time::sleep(FOLLOW_POLL_INTERVAL).await,
                    Err(error) => {
                        tracing::warn!(%error, "following logs: store query failed");
                        tokio::time::sleep(FOLLOW_POLL_INTERVAL).await;
                    }
                }
            }
        },
    );
    query.limit = DEFAULT_LOG_LIMIT;
    // A comment first, so the response head goes out at once: a client sees the follow
    // is live before the function logs anything (not after the 15 s keep-alive).
    let opened =
        futures::stream::once(async { Ok::<_, Infallible>(Event::default().comment("following")) });
    let stream = futures::StreamExt::chain(opened, stream);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Query parameters of the invocations endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InvocationParams {
    /// Only invocations started at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// At most this many (default and maximum 1000).
    pub limit: Option<u32>,
}

/// Recent invocations of a function, newest first.
#[utoipa::path(get, path = "/api/v1/functions/{name}/invocations", tag = "logs",
    params(("name" = String, Path, description = "function name"), InvocationParams),
    responses((status = 200, body = Vec<InvocationView>)))]
pub async fn invocations(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(params): Query<InvocationParams>,
) -> Result<Json<Vec<InvocationView>>, ApiError> {
    parse_name(&name)?;
    let records = state
        .store
        .list_invocations(
            &name,
            params.since_ms.unwrap_or(0),
            params
                .limit
                .unwrap_or(DEFAULT_LOG_LIMIT)
                .min(DEFAULT_LOG_LIMIT),
        )
        .await?;
    Ok(Json(records.into_iter().map(invocation_view).collect()))
}

/// One invocation record of a function.
#[utoipa::path(get, path = "/api/v1/functions/{name}/invocations/{id}", tag = "logs",
    params(("name" = String, Path, description = "function name"),
        ("id" = String, Path, description = "invocation id (`x-gureum-invocation-id`)")),
    responses((status = 200, body = InvocationView), (status = 404, body = ErrorBody)))]
pub async fn invocation(
    State(state): State<AdminState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<InvocationView>, ApiError> {
    parse_name(&name)?;
    match state.store.get_invocation(&id).await? {
        Some(record) if record.function == name => Ok(Json(invocation_view(record))),
        _ => Err(ApiError::NotFound(format!(
            "no invocation {id:?} of {name:?} is recorded (records are written about 200 ms after the response and kept as long as logs); `gureum logs {name}` lists recent ones"
        ))),
    }
}

fn invocation_view(record: InvocationRecord) -> InvocationView {
    InvocationView {
        id: record.id,
        function: record.function,
        version: record.version,
        started_at_ms: record.started_at_ms,
        duration_us: record.duration_us,
        status: record.status,
        outcome: record.outcome.as_str().to_string(),
        cold_start: record.cold_start,
        trigger: record.trigger.as_str().to_string(),
        memory_mb: record.memory_mb,
        billed_ms: record.billed_ms,
        bytes_in: record.bytes_in,
        bytes_out: record.bytes_out,
    }
}

fn view(line: LogLine) -> LogLineView {
    LogLineView {
        seq: line.seq,
        invocation_id: line.invocation_id,
        function: line.function,
        version: line.version,
        ts_ms: line.ts_ms,
        stream: line.stream.as_str().to_string(),
        message: line.message,
    }
}
