//! JSON shapes of the control API (`/api/v1`), shared by the server, the client and
//! the tests. Internal types are converted to these at the edge; nothing here knows
//! about the store or the runtime.

mod error;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use error::{ERROR_HEADER, Failure, PublicError, render};

/// Answer to a deploy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeployResponse {
    /// Function name.
    pub name: String,
    /// The new version, now `live`.
    pub version: u32,
    /// Hex SHA-256 of the artifact.
    pub artifact_hash: String,
    /// Public URL of the function (`/fn/NAME`; a static site's ends with `/`, so relative
    /// links resolve inside it).
    pub url: String,
    /// Extra public routes from the manifest.
    pub routes: Vec<String>,
    /// The static site deployed with the version (`[static]`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_site: Option<StaticSiteInfo>,
    /// What the deployer should know, e.g. that a process function runs unsandboxed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the version's token (`GUREUM_FUNCTION_TOKEN`) may do, one line per kind
    /// (`data: notes:read, orders:write`, `invoke: mailer`, `websocket: chat`, `kv: …`),
    /// from `[permissions]`; empty for a static-only site.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

/// A deployed static site.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StaticSiteInfo {
    /// How many files it serves.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// A deployed function.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FunctionInfo {
    /// Function name.
    pub name: String,
    /// Version `live` points at.
    pub live_version: u32,
    /// Newest version.
    pub latest_version: u32,
    /// When the function was first deployed (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// Public URL of the function.
    pub url: String,
    /// How its live version runs: `wasm`, `lambda` or `static`.
    #[serde(default)]
    pub runtime: String,
}

/// One immutable version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    /// Version number.
    pub version: u32,
    /// Hex SHA-256 of the artifact.
    pub artifact_hash: String,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// Whether `live` points here.
    pub live: bool,
    /// The manifest as deployed.
    pub manifest: String,
    /// How it runs: `wasm`, `lambda` or `static`.
    #[serde(default)]
    pub runtime: String,
    /// Size of the artifact in bytes (none for a static-only site).
    #[serde(default)]
    pub size_bytes: Option<u64>,
    /// The manifest as the platform reads it, defaults filled in.
    #[serde(default)]
    pub config: Option<FunctionConfigView>,
}

/// A version's effective configuration: its manifest with every default filled in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FunctionConfigView {
    /// `wasm`, `lambda` or `static`.
    pub runtime: String,
    /// Lambda: the command run in the code directory.
    pub command: Vec<String>,
    /// Memory limit in MB.
    pub memory_mb: u32,
    /// Timeout of one invocation in ms.
    pub timeout_ms: u64,
    /// Most instances running at once.
    pub max_instances: u32,
    /// Seconds an idle warm instance is kept.
    pub idle_ttl_s: u64,
    /// Lambda: size of the sandbox's private `/tmp` in MiB.
    pub ephemeral_storage_mb: u32,
    /// Wasm: whether a warm instance serves later requests.
    pub reuse_instances: bool,
    /// Extra public routes besides `/fn/NAME`.
    pub routes: Vec<String>,
    /// Cron triggers.
    pub schedules: Vec<ScheduleConfigView>,
    /// Who may call it: `public`, `user` or a CEL expression.
    pub auth: String,
    /// Environment and `wasi:config` values.
    pub env: std::collections::BTreeMap<String, String>,
    /// Origins it may call over outbound HTTP.
    pub allowed_outbound_hosts: Vec<String>,
    /// Static files served before the function (`[static]`).
    #[serde(rename = "static")]
    pub static_site: Option<StaticConfigView>,
    /// Asynchronous invocation settings (`[async]`).
    #[serde(rename = "async")]
    pub async_config: AsyncConfigView,
}

/// A cron trigger of a version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScheduleConfigView {
    /// Its name.
    pub name: String,
    /// The cron expression.
    pub cron: String,
    /// Time zone of the expression.
    pub tz: String,
    /// Body of each tick's event.
    pub body: String,
    /// Whether missed ticks are fired after a downtime.
    pub catch_up: bool,
}

/// `[static]` of a version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StaticConfigView {
    /// The directory, relative to the manifest.
    pub dir: String,
    /// Unknown paths answer `index.html`.
    pub spa: bool,
}

/// `[async]` of a version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AsyncConfigView {
    /// Retries after a failed attempt.
    pub retries: u32,
    /// Oldest an event may get before it is dead-lettered, ms.
    pub max_event_age_ms: u64,
    /// First retry delay, ms (doubles each attempt).
    pub retry_delay_ms: u64,
    /// Most events waiting in the queue.
    pub max_queued: u32,
    /// Most bytes of bodies queued and dead-lettered together.
    #[serde(default)]
    pub max_queued_bytes: u64,
    /// Whether anyone may queue events from the public listener.
    #[serde(default)]
    pub public: bool,
    /// Function sent a record of each success.
    pub on_success: Option<String>,
    /// Function sent a record of each final failure.
    pub on_failure: Option<String>,
}

/// Invocation statistics over a window: totals, per function, and a time series.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    /// The function reported on; none for every function.
    pub function: Option<String>,
    /// Start of the first step (aligned to the step), ms since the Unix epoch.
    pub since_ms: i64,
    /// End of the window (now).
    pub until_ms: i64,
    /// Length of one step in ms.
    pub step_ms: i64,
    /// The whole window.
    pub total: StatsSummaryView,
    /// Per function, most requests first.
    pub functions: Vec<StatsSummaryView>,
    /// One point per step from `since_ms`, zero-filled.
    pub series: Vec<StatsPointView>,
}

/// Totals of a window, for the whole installation or one function.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsSummaryView {
    /// The function (absent in the total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Invocations that ran.
    pub requests: u64,
    /// Of those, the ones that failed or timed out.
    pub errors: u64,
    /// Invocations refused before running (429).
    pub throttled: u64,
    /// Invocations that paid a cold start.
    pub cold_starts: u64,
    /// Cold starts ÷ all invocations (0 to 1).
    pub cold_start_share: f64,
    /// Median duration in ms (within 3%); none without requests.
    pub p50_ms: Option<f64>,
    /// 95th percentile duration in ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile duration in ms.
    pub p99_ms: Option<f64>,
    /// Longest duration in ms.
    pub max_ms: Option<f64>,
    /// Most invocations running at one moment.
    pub peak_concurrency: u64,
    /// GB-seconds used, decimal.
    pub gb_seconds: String,
    /// Cost at list price without the free tier, USD decimal.
    pub cost: String,
}

/// One step of a time series.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsPointView {
    /// Start of the step, ms since the Unix epoch.
    pub t_ms: i64,
    /// Invocations that ran.
    pub requests: u64,
    /// Of those, failed or timed out.
    pub errors: u64,
    /// Refused before running.
    pub throttled: u64,
    /// Paid a cold start.
    pub cold_starts: u64,
    /// Median duration in ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile duration in ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile duration in ms.
    pub p99_ms: Option<f64>,
    /// Busy time of the invocations started in the step ÷ the step.
    pub avg_concurrency: f64,
    /// Most invocations running at one moment in the step.
    pub peak_concurrency: u64,
    /// GB-seconds used, decimal.
    pub gb_seconds: String,
    /// List-price cost, USD decimal.
    pub cost: String,
}

/// A function's asynchronous queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueDepthView {
    /// The function.
    pub function: String,
    /// Events waiting or running.
    pub depth: u64,
    /// Enqueue time of the oldest waiting event (ms since the Unix epoch).
    pub oldest_enqueued_at_ms: Option<i64>,
    /// Events that failed every attempt.
    pub dead_letters: u64,
}

/// Open WebSocket connections on this node.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebSocketsView {
    /// All open connections.
    pub open: u64,
    /// Per function with any open, most first.
    pub functions: Vec<WebSocketCountView>,
}

/// Open WebSocket connections of one function.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebSocketCountView {
    /// The function.
    pub function: String,
    /// Its open connections.
    pub open: u64,
}

/// Body of a rollback request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// Target version; default: the version before the current `live`.
    #[serde(default)]
    pub to: Option<u32>,
}

/// Answer to a rollback.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RollbackResponse {
    /// Function name.
    pub name: String,
    /// Previous live version.
    pub from: u32,
    /// New live version.
    pub to: u32,
}

/// One log line of an invocation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogLineView {
    /// Increasing sequence number (use as `after` to page or follow).
    pub seq: i64,
    /// The invocation.
    pub invocation_id: String,
    /// The function.
    pub function: String,
    /// The version that ran.
    pub version: u32,
    /// Time (ms since the Unix epoch).
    pub ts_ms: i64,
    /// `stdout`, `stderr` or `platform`.
    pub stream: String,
    /// The text.
    pub message: String,
}

/// One finished invocation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvocationView {
    /// Invocation id.
    pub id: String,
    /// The function.
    pub function: String,
    /// The version that ran.
    pub version: u32,
    /// Start time (ms since the Unix epoch).
    pub started_at_ms: i64,
    /// Wall time in microseconds.
    pub duration_us: i64,
    /// HTTP status returned.
    pub status: u16,
    /// `ok`, `error`, `timeout` or `throttled`.
    pub outcome: String,
    /// Whether it was a cold start.
    pub cold_start: bool,
    /// What started it: `http`, `api`, `cron`, `queue` or `websocket`.
    pub trigger: String,
    /// Memory limit it ran with (MiB).
    pub memory_mb: u32,
    /// Billed duration: the wall time rounded up to the next millisecond, at least 1
    /// (0 when it was refused and not billed).
    pub billed_ms: i64,
    /// Request body bytes the function was given.
    pub bytes_in: i64,
    /// Response body bytes sent back.
    pub bytes_out: i64,
}

/// Error body of every failed call: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable message naming what is wrong and how to fix it.
    pub message: String,
    /// For invalid manifests: every problem with its field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// One problem of an invalid input.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// Field path, e.g. `memory_mb` or `env.GREETING`.
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

// ---------------------------------------------------------------------------------------
// Metering: usage reports, the price list and quotas. Money and GB-seconds are exact
// decimals written as strings ("0.0000166667", "6.86668"): a JSON number would pass through
// a binary float in most clients. Counts are integers.
// ---------------------------------------------------------------------------------------

/// A usage report: `GET /api/v1/usage`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageReportView {
    /// The function reported on; none for every function.
    pub function: Option<String>,
    /// How groups are formed: `day`, `function` or `version`.
    pub by: String,
    /// Start of the period asked for (ms since the Unix epoch); the report covers whole
    /// UTC days from the day containing it.
    pub since_ms: i64,
    /// When the report was made (ms since the Unix epoch).
    pub now_ms: i64,
    /// First UTC day of the period, `2026-10-26`.
    pub since_day: String,
    /// Last UTC day of the period (today), `2026-11-25`.
    pub until_day: String,
    /// One entry per day, function or version with usage in the period, in order.
    pub groups: Vec<UsageGroupView>,
    /// The whole period.
    pub total: UsageTotalsView,
    /// The installation's free tier this month.
    pub free_tier: FreeTierView,
    /// This month extrapolated from its usage so far.
    pub projected_month: ProjectionView,
    /// The price list the costs were computed with.
    pub prices: PricesView,
    /// How the free tier is shared out among days and functions.
    pub free_tier_rule: String,
    /// The comparison with an always-on VM, when asked for (`compare_vm=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_vm: Option<VmComparisonView>,
}

/// One group of a usage report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageGroupView {
    /// The group for people: `2026-11-02`, `hello` or `hello v3`.
    pub key: String,
    /// The UTC day (`by=day`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// The function (`by=function` and `by=version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The version (`by=version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Its usage and cost.
    pub totals: UsageTotalsView,
}

/// Usage and its cost.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageTotalsView {
    /// Invocations that ran (billed).
    pub requests: u64,
    /// Of those, the ones that failed or timed out.
    pub errors: u64,
    /// Invocations refused before running (not billed).
    pub throttled: u64,
    /// Invocations that paid a cold start.
    pub cold_starts: u64,
    /// Summed billed milliseconds.
    pub billed_ms: u64,
    /// GB-seconds: Σ memory_mb × billed_ms / 1,024,000, exact.
    pub gb_seconds: String,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
    /// Cost at list price, before the free tier (USD).
    pub cost_list: String,
    /// Cost after the free tier (USD).
    pub cost: String,
}

/// The installation's free tier in the current calendar month (UTC).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FreeTierView {
    /// The month, `2026-11`.
    pub month: String,
    /// Free requests used this month.
    pub requests_used: u64,
    /// Free requests left this month.
    pub requests_left: u64,
    /// Free GB-seconds used this month.
    pub gb_seconds_used: String,
    /// Free GB-seconds left this month.
    pub gb_seconds_left: String,
    /// When the free tier starts again (RFC 3339, UTC): `2026-12-01T00:00:00Z`.
    pub resets_at: String,
}

/// The current month extrapolated linearly from its usage so far.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectionView {
    /// Requests expected this month.
    pub requests: u64,
    /// GB-seconds expected this month.
    pub gb_seconds: String,
    /// Their cost at list price (USD).
    pub cost_list: String,
    /// Their cost after the free tier (USD).
    pub cost: String,
}

/// The price list and free tier. The field names are the keys of the price file
/// (`gureum up --prices FILE`, `gureum prices set FILE`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PricesView {
    /// USD per 1,000,000 requests, `"0.20"`.
    pub requests_per_million: String,
    /// USD per GB-second, `"0.0000166667"`.
    pub gb_second: String,
    /// Requests free each calendar month (UTC), for the whole installation.
    pub free_requests_per_month: u64,
    /// GB-seconds free each calendar month (UTC), for the whole installation.
    pub free_gb_seconds_per_month: String,
}

/// The serverless cost of the observed traffic against an always-on VM.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VmComparisonView {
    /// The comparison in one sentence.
    pub sentence: String,
    /// Whether the period had any traffic (otherwise the figures assume requests of
    /// 128 MB for 100 ms).
    pub has_traffic: bool,
    /// Observed requests per second over the period.
    pub requests_per_second: String,
    /// The observed rate over a 30-day month.
    pub requests_per_month: String,
    /// GB-seconds per request.
    pub gb_seconds_per_request: String,
    /// What that month costs serverless, after the free tier (USD).
    pub serverless_monthly: String,
    /// What the VM costs a month (USD).
    pub vm_monthly: String,
    /// The rate above which the VM is cheaper; none when it never is.
    pub break_even_requests_per_second: Option<String>,
    /// The monthly request count above which the VM is cheaper.
    pub break_even_requests_per_month: Option<String>,
    /// Monthly costs at a few rates (0.1 to 1,000 requests/s) and the observed one.
    pub table: Vec<VmRowView>,
}

/// One rate of the VM comparison.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VmRowView {
    /// Requests per second.
    pub requests_per_second: String,
    /// Requests in a 30-day month at that rate.
    pub requests_per_month: String,
    /// Serverless cost of that month, after the free tier (USD).
    pub serverless_monthly: String,
    /// The VM's monthly cost (USD).
    pub vm_monthly: String,
    /// `serverless` or `vm`.
    pub cheaper: String,
    /// Whether this is the observed rate.
    pub observed: bool,
}

/// A monthly quota with this month's usage: `GET /api/v1/quotas`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuotaView {
    /// `global` (the whole installation) or the function's name.
    pub scope: String,
    /// Cap on requests a month.
    pub requests: Option<u64>,
    /// Cap on GB-seconds a month.
    pub gb_seconds: Option<String>,
    /// Cap on cost a month (USD): after the free tier for `global`, at list price for a
    /// function.
    pub cost: Option<String>,
    /// Usage (percent of a cap) from which a warning is logged, once a month.
    pub warn_percent: u8,
    /// This month's usage counted against the caps.
    pub used: QuotaUsageView,
}

/// This month's usage counted against a quota.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuotaUsageView {
    /// Requests admitted.
    pub requests: u64,
    /// GB-seconds used.
    pub gb_seconds: String,
    /// Cost (USD), counted as the cost cap is.
    pub cost: String,
}

/// Body of `PUT /api/v1/quotas/{scope}`: sets the whole quota (caps left out are not
/// capped). At least one cap is needed. Decimals are strings; whole numbers may be JSON
/// numbers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaBody {
    /// Cap on requests a month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Cap on GB-seconds a month, `"1000.5"`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "decimal_text::option"
    )]
    pub gb_seconds: Option<String>,
    /// Cap on cost a month in USD, `"5.00"`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "decimal_text::option"
    )]
    pub cost: Option<String>,
    /// Percent of a cap from which a warning is logged (1 to 100; default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_percent: Option<u8>,
}

/// Decimals given as JSON: a string kept as written, or a whole number; a fractional JSON
/// number is refused, since the parser has already made it a binary float.
mod decimal_text {
    use std::fmt;

    use serde::Deserializer;
    use serde::de::{self, Visitor};

    struct DecimalText;

    impl Visitor<'_> for DecimalText {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a decimal as a string, like \"0.25\", or a whole number")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Err(E::custom(format_args!(
                "the number {v} would be inexact: write it as a string, like \"{v}\""
            )))
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    pub(super) fn option<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        deserializer.deserialize_any(DecimalText)
    }
}

/// A cron schedule of a live function: `GET /api/v1/schedules`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScheduleInfo {
    /// The function.
    pub function: String,
    /// The schedule's name (`schedule-N` unless the manifest names it).
    pub name: String,
    /// The cron line.
    pub cron: String,
    /// The time zone its fields are read in.
    pub tz: String,
    /// The next tick (RFC 3339, UTC).
    pub next_run: Option<String>,
    /// The last tick fired (or skipped).
    pub last_run: Option<String>,
    /// The invocation id of the last fired tick (`gureum logs NAME --invocation ID`).
    pub last_invocation_id: Option<String>,
    /// `succeeded`, `failed` (in the dead-letter list), `pending` (running or waiting for
    /// a retry), or none yet.
    pub last_result: Option<String>,
    /// When the last run finished (RFC 3339).
    pub last_finished: Option<String>,
}

/// One failed attempt of an asynchronous invocation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptError {
    /// Attempt number, from 1.
    pub attempt: u32,
    /// When it failed (RFC 3339).
    pub at: String,
    /// The HTTP status it ended with (502 crash, 504 timeout, the function's own 5xx…).
    pub status: u16,
    /// What went wrong.
    pub error: String,
}

/// An event in a function's dead-letter list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterInfo {
    /// The invocation id (every attempt ran under it; a redrive keeps it).
    pub id: String,
    /// The function.
    pub function: String,
    /// The pinned version, if the request pinned one.
    pub version: Option<u32>,
    /// `queue` (asynchronous request or destination) or `cron`.
    pub trigger: String,
    /// The schedule (cron) or originating invocation (destination).
    pub source: Option<String>,
    /// Method of the stored request.
    pub method: String,
    /// Path and query of the stored request.
    pub path: String,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its body as text (UTF-8, lossy), or base64 when `body_base64` is set.
    pub body: String,
    /// Whether `body` is base64.
    pub body_base64: bool,
    /// When it was enqueued (RFC 3339).
    pub enqueued: String,
    /// When it was dead-lettered (RFC 3339).
    pub failed: String,
    /// Attempts made.
    pub attempts: u32,
    /// `retries_exhausted`, `event_too_old` or `function_removed`.
    pub reason: String,
    /// Every failed attempt.
    pub errors: Vec<AttemptError>,
}

/// Answer to deleting or redriving dead letters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterCount {
    /// How many were deleted or queued again.
    pub count: u64,
}

/// Answer to an asynchronous invocation (`202 Accepted`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueuedInvocation {
    /// The invocation id.
    pub invocation_id: String,
    /// Always `queued`.
    pub status: String,
    /// True when the idempotency key was used before: nothing new was queued and the id
    /// is the first invocation's.
    pub duplicate: bool,
}
