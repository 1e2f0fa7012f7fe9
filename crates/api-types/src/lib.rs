//! JSON shapes of the control API (`/api/v1`), shared by the server, the client and
//! the tests. Internal types are converted to these at the edge; nothing here knows
//! about the store or the runtime.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Answer to a deploy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeployResponse {
    /// Function name.
    pub name: String,
    /// The new version, now `live`.
    pub version: u32,
    /// Hex SHA-256 of the artifact.
    pub artifact_hash: String,
    /// Public URL of the function (`/fn/NAME`).
    pub url: String,
    /// Extra public routes from the manifest.
    pub routes: Vec<String>,
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
