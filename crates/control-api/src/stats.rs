//! Live statistics for charts and dashboards: `/stats` (time series of invocations),
//! `/queue` (depths and dead letters) and `/websockets` (open connections).
//!
//! `/stats` streams the window's invocation records in one query over the start-time index
//! (`Store::scan_invocations`: no sort, no paging, one row in memory at a time) and folds
//! them with `gureum_metering::SeriesBuilder` (per step and per function: counts,
//! percentiles within about 3%, exact peak concurrency, average concurrency, list-price
//! cost), so memory is bounded by steps × functions, not by invocations. The window
//! defaults to an hour (at most 31 days), the step to about 60 points (at most 1,440).
//! `/websockets` is this node's hub.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use gureum_api_types::{
    ErrorBody, QueueDepthView, StatsPointView, StatsSummaryView, StatsView, WebSocketCountView,
    WebSocketsView,
};
use gureum_metering::{MAX_POINTS, Sample, SeriesBuilder, Stats};
use gureum_model::InvocationOutcome;
use serde::Deserialize;

use crate::functions::parse_name;
use crate::metering::{decimal, parse_since};
use crate::{AdminState, ApiError};

/// Window of `/stats` without `since`.
const DEFAULT_WINDOW: &str = "1h";
/// Longest window: the invocation records rarely live longer (log retention).
const MAX_WINDOW_MS: i64 = 31 * 86_400_000;
/// Points a series gets when the caller names no step.
const DEFAULT_POINTS: i64 = 60;

/// Query parameters of `/stats`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StatsParams {
    /// How far back, as a duration: `15m`, `1h`, `24h`, `7d` (default 1h, at most 31d).
    pub since: Option<String>,
    /// Length of one step, as a duration (default: about 60 steps; at most 1440 steps).
    pub step: Option<String>,
    /// Only this function.
    pub function: Option<String>,
}

/// Requests, errors, duration percentiles, cold starts, concurrency and list-price cost
/// over a window: totals, per function, and one point per step (zero-filled), from the
/// invocation records.
#[utoipa::path(get, path = "/api/v1/stats", tag = "metering", params(StatsParams),
    responses((status = 200, body = StatsView), (status = 400, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AdminState>,
    Query(params): Query<StatsParams>,
) -> Result<Json<StatsView>, ApiError> {
    let now = gureum_model::now_ms();
    let since = params
        .since
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .unwrap_or(DEFAULT_WINDOW);
    let window = parse_since(since)?;
    if window <= 0 || window > MAX_WINDOW_MS {
        return Err(ApiError::BadRequest(format!(
            "since={since:?} is outside 1ms..31d; give a window like since=1h or since=7d"
        )));
    }
    let step = match params.step.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => {
            let step = humantime::parse_duration(text).map_err(|error| {
                ApiError::BadRequest(format!(
                    "step={text:?} is not a duration ({error}); use e.g. step=1m or step=1h"
                ))
            })?;
            let step = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
            // A step longer than the window would widen it (the start is aligned to
            // the step). The window's steps, plus the partial one the alignment adds,
            // must fit in MAX_POINTS.
            if step > window {
                return Err(ApiError::BadRequest(format!(
                    "step={text:?} is longer than since={since:?}; give a step of at most the window"
                )));
            }
            if step < 1_000 || window.div_euclid(step) + 1 > MAX_POINTS {
                return Err(ApiError::BadRequest(format!(
                    "step={text:?} cuts since={since:?} into more than {MAX_POINTS} steps or is under 1s; give a longer step or leave it out"
                )));
            }
            step
        }
        _ => gureum_metering::nice_step_ms(window, DEFAULT_POINTS),
    };
    let function = params.function.filter(|name| !name.is_empty());
    if let Some(name) = &function {
        parse_name(name)?;
    }

    let mut builder = SeriesBuilder::new(now - window, now, step);
    let since_ms = builder.since_ms();
    state
        .store
        .scan_invocations(function.as_deref(), since_ms, now, |record| {
            builder.add(&Sample {
                function: &record.function,
                started_at_ms: record.started_at_ms,
                duration_us: record.duration_us,
                billed: record.outcome != InvocationOutcome::Throttled,
                error: record.outcome.is_failure(),
                cold_start: record.cold_start,
                memory_mb: record.memory_mb,
                billed_ms: record.billed_ms,
            });
        })
        .await?;
    let series = builder.finish(&state.invoker.quotas().prices());
    Ok(Json(StatsView {
        function,
        since_ms: series.since_ms,
        until_ms: series.until_ms,
        step_ms: series.step_ms,
        total: summary(None, &series.total),
        functions: series
            .functions
            .iter()
            .map(|(name, stats)| summary(Some(name.clone()), stats))
            .collect(),
        series: series
            .points
            .iter()
            .map(|(t_ms, stats)| StatsPointView {
                t_ms: *t_ms,
                requests: stats.requests,
                errors: stats.errors,
                throttled: stats.throttled,
                cold_starts: stats.cold_starts,
                p50_ms: stats.p50_ms,
                p95_ms: stats.p95_ms,
                p99_ms: stats.p99_ms,
                avg_concurrency: stats.avg_concurrency,
                peak_concurrency: stats.peak_concurrency,
                gb_seconds: decimal(stats.gb_seconds),
                cost: decimal(stats.cost),
            })
            .collect(),
    }))
}

fn summary(function: Option<String>, stats: &Stats) -> StatsSummaryView {
    StatsSummaryView {
        function,
        requests: stats.requests,
        errors: stats.errors,
        throttled: stats.throttled,
        cold_starts: stats.cold_starts,
        cold_start_share: stats.cold_start_share(),
        p50_ms: stats.p50_ms,
        p95_ms: stats.p95_ms,
        p99_ms: stats.p99_ms,
        max_ms: stats.max_ms,
        peak_concurrency: stats.peak_concurrency,
        gb_seconds: decimal(stats.gb_seconds),
        cost: decimal(stats.cost),
    }
}

/// Every deployed function's asynchronous queue: events waiting or running, the oldest
/// one's age, and dead letters.
#[utoipa::path(get, path = "/api/v1/queue", tag = "queue",
    responses((status = 200, body = Vec<QueueDepthView>)))]
pub async fn queue(State(state): State<AdminState>) -> Result<Json<Vec<QueueDepthView>>, ApiError> {
    let functions = state.store.list_functions().await?;
    let depths = state.store.queue_depths().await?;
    let dead = state.store.dead_letter_counts().await?;
    // A removed function's leftovers are listed too: they are still in the store.
    let mut views: BTreeMap<String, QueueDepthView> = BTreeMap::new();
    for function in &functions {
        slot(&mut views, function.name.as_str());
    }
    for depth in depths {
        let view = slot(&mut views, &depth.function);
        view.depth = depth.depth;
        view.oldest_enqueued_at_ms = Some(depth.oldest_enqueued_at_ms);
    }
    for (function, count) in dead {
        slot(&mut views, &function).dead_letters = count;
    }
    let views: Vec<QueueDepthView> = views.into_values().collect();
    Ok(Json(views))
}

/// The view of `function`, added empty when missing.
fn slot<'a>(
    views: &'a mut BTreeMap<String, QueueDepthView>,
    function: &str,
) -> &'a mut QueueDepthView {
    views
        .entry(function.to_string())
        .or_insert_with(|| QueueDepthView {
            function: function.to_string(),
            depth: 0,
            oldest_enqueued_at_ms: None,
            dead_letters: 0,
        })
}

/// Open WebSocket connections on this node, per function.
#[utoipa::path(get, path = "/api/v1/websockets", tag = "websockets",
    responses((status = 200, body = WebSocketsView)))]
pub async fn websockets(State(state): State<AdminState>) -> Json<WebSocketsView> {
    let mut functions: Vec<WebSocketCountView> = state
        .websockets
        .open_per_function()
        .into_iter()
        .map(|(function, open)| WebSocketCountView {
            function,
            open: open as u64,
        })
        .collect();
    functions.sort_by(|a, b| {
        b.open
            .cmp(&a.open)
            .then_with(|| a.function.cmp(&b.function))
    });
    Json(WebSocketsView {
        open: state.websockets.open_connections() as u64,
        functions,
    })
}
