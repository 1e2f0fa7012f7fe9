//! Ids and plain types shared by every gureum crate: functions, versions, limits,
//! invocations, permissions and log lines. No IO, no async, no wire formats.

use std::collections::BTreeMap;
use std::fmt;

mod permissions;
pub use permissions::{
    DataAccess, DataGrant, EVERY_COLLECTION, FunctionIdentity, Permissions, valid_collection,
};

/// Default memory limit of one instance, in MiB (AWS Lambda's smallest size).
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Default wall-clock limit of one invocation, in milliseconds (AWS Lambda's default).
pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;
/// Default ceiling of concurrent invocations of one function.
pub const DEFAULT_MAX_INSTANCES: u32 = 10;
/// Default time a warm instance is kept after its last request, in seconds.
pub const DEFAULT_IDLE_TTL_S: u64 = 300;
/// Largest `memory_mb` a manifest may ask for (Lambda's ceiling is 10 GiB; ours is the
/// size the pooling allocator reserves per linear memory).
pub const MAX_MEMORY_MB: u32 = 4_096;
/// Default size of a process function's private `/tmp`, in MiB (Lambda's default).
pub const DEFAULT_EPHEMERAL_STORAGE_MB: u32 = 512;
/// Largest `ephemeral_storage_mb` (Lambda's ceiling, 10 GiB).
pub const MAX_EPHEMERAL_STORAGE_MB: u32 = 10_240;
/// Longest `timeout_ms` a manifest may ask for (Lambda's 15 minutes).
pub const MAX_TIMEOUT_MS: u64 = 900_000;
/// Highest `max_instances` a manifest may ask for.
pub const MAX_MAX_INSTANCES: u32 = 1_000;
/// The alias every deploy moves and every unpinned request resolves.
pub const LIVE_ALIAS: &str = "live";

/// Error for a value that does not satisfy a type's invariant.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// A function name outside `[a-z0-9-]{1,63}`.
    #[error(
        "invalid function name {0:?}: use 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
    )]
    InvalidFunctionName(String),
}

/// A function's name: `[a-z0-9-]{1,63}`, not starting or ending with `-` (a DNS label).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionName(String);

impl FunctionName {
    /// Validates `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self, ModelError> {
        let name = name.into();
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if name.is_empty()
            || name.len() > 63
            || !valid_chars
            || name.starts_with('-')
            || name.ends_with('-')
        {
            return Err(ModelError::InvalidFunctionName(name));
        }
        Ok(Self(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a function's artifact is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// A `wasi:http/proxy` WebAssembly component (WASI 0.2).
    Wasm,
    /// A process speaking the AWS Lambda Runtime API (2018-06-01).
    Lambda,
    /// No code: a static-only site (`[static]` without `runtime` and `artifact`), whose
    /// requests are all answered from its files.
    Static,
}

impl Runtime {
    /// The manifest spelling of the runtime.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Wasm => "wasm",
            Runtime::Lambda => "lambda",
            Runtime::Static => "static",
        }
    }
}

/// Resource limits of one function; every field has a `DEFAULT_*` constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory ceiling of one instance, in MiB.
    pub memory_mb: u32,
    /// Wall-clock ceiling of one invocation, in milliseconds.
    pub timeout_ms: u64,
    /// Concurrent invocations of the function, across its instances.
    pub max_instances: u32,
    /// Seconds a warm instance (and the version's loaded code) survives without requests.
    pub idle_ttl_s: u64,
    /// Size of a process function's private `/tmp` (memory-backed), in MiB.
    pub ephemeral_storage_mb: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: DEFAULT_MEMORY_MB,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_instances: DEFAULT_MAX_INSTANCES,
            idle_ttl_s: DEFAULT_IDLE_TTL_S,
            ephemeral_storage_mb: DEFAULT_EPHEMERAL_STORAGE_MB,
        }
    }
}

/// Largest static site (`[static]`): the files' total size, kept in memory while the
/// version is live (Firebase Hosting has no small limit; this one keeps a node's memory
/// predictable).
pub const MAX_STATIC_SITE_BYTES: u64 = 64 * 1024 * 1024;
/// Most files in one static site.
pub const MAX_STATIC_SITE_FILES: usize = 20_000;

/// Static files served at a function's routes (`[static]` in the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSite {
    /// The directory of the files, relative to the manifest's directory.
    pub dir: String,
    /// Single-page app: a GET for a path with no file and no extension gets `index.html`.
    pub spa: bool,
}

/// Header in which the gateway passes a verified caller's JWT claims (JSON) to a function
/// whose manifest sets `auth`; never taken from outside (the gateway removes any incoming
/// one). Lambda functions find the claims in `requestContext.authorizer.jwt.claims`.
pub const AUTH_CLAIMS_HEADER: &str = "x-gureum-auth-claims";

/// Who may call a function's public routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthPolicy {
    /// Anyone.
    None,
    /// Callers with a valid gureum user JWT.
    User,
    /// A CEL expression over the caller's auth claims.
    Expression(String),
}

/// A cron trigger from the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Unique among the function's schedules (default `schedule-N`, N from 1); the
    /// schedule's state (last tick, last result) is kept under it across deploys.
    pub name: String,
    /// Cron line: 6 fields with seconds, 5 fields, a macro, or `@every <duration>`.
    pub cron: String,
    /// IANA time zone the cron fields are read in (`@every` ignores it).
    pub tz: String,
    /// Request body sent to the function on each tick.
    pub body: String,
    /// After downtime: run a missed tick once (true, the default) or skip it.
    pub catch_up: bool,
}

/// Default retries of a failed asynchronous invocation (as Lambda's).
pub const DEFAULT_ASYNC_RETRIES: u32 = 2;
/// Most retries a function may configure.
pub const MAX_ASYNC_RETRIES: u32 = 10;
/// Default age after which a queued event is dropped to the dead-letter list (6 h).
pub const DEFAULT_MAX_EVENT_AGE_MS: u64 = 6 * 3_600_000;
/// Default delay before the first retry; each next one doubles it (with jitter).
pub const DEFAULT_RETRY_DELAY_MS: u64 = 5_000;
/// Default most queued events per function before enqueues get 429.
pub const DEFAULT_MAX_QUEUED: u32 = 100_000;
/// Default most bytes of request bodies a function's queue and dead-letter list hold
/// together before enqueues get 429 (256 MiB): what bounds the disk an async caller can
/// fill, where `max_queued` bounds the count.
pub const DEFAULT_MAX_QUEUED_BYTES: u64 = 256 << 20;

/// How a function's asynchronous invocations are retried and where results go
/// (`[async]` in the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncConfig {
    /// Retries after the first failed attempt.
    pub retries: u32,
    /// An event older than this is not tried again (dead-lettered instead).
    pub max_event_age_ms: u64,
    /// Delay before the first retry; doubled for each next one, with jitter.
    pub retry_delay_ms: u64,
    /// Most events waiting in the function's queue (enqueues beyond get 429).
    pub max_queued: u32,
    /// Most bytes of bodies in the queue and the dead-letter list together.
    pub max_queued_bytes: u64,
    /// Whether anyone may queue events from the public listener; `false`: only signed-in
    /// users and functions (and the admin, through the control API).
    pub public: bool,
    /// Function invoked with a record of each successful asynchronous invocation.
    pub on_success: Option<FunctionName>,
    /// Function invoked with a record of each invocation that exhausted its retries.
    pub on_failure: Option<FunctionName>,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            retries: DEFAULT_ASYNC_RETRIES,
            max_event_age_ms: DEFAULT_MAX_EVENT_AGE_MS,
            retry_delay_ms: DEFAULT_RETRY_DELAY_MS,
            max_queued: DEFAULT_MAX_QUEUED,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            public: false,
            on_success: None,
            on_failure: None,
        }
    }
}

/// A validated `gureum.toml`: everything the platform needs to run one function version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The function's name.
    pub name: FunctionName,
    /// How the artifact runs.
    pub runtime: Runtime,
    /// Artifact path as written in the manifest, relative to the manifest's directory.
    pub artifact: String,
    /// Lambda only: the command run inside the code directory.
    pub command: Vec<String>,
    /// Extra public routes besides `/fn/NAME`; a trailing `/*` matches any suffix.
    pub routes: Vec<String>,
    /// Resource limits.
    pub limits: Limits,
    /// Wasm: whether a warm instance serves later requests (one at a time).
    pub reuse_instances: bool,
    /// Origins (`scheme://host[:port]`) the function may call over outbound HTTP.
    pub allowed_outbound_hosts: Vec<String>,
    /// Who may call the function.
    pub auth: AuthPolicy,
    /// Environment and `wasi:config` values.
    pub env: BTreeMap<String, String>,
    /// Cron triggers.
    pub schedules: Vec<Schedule>,
    /// Retries, event age, queue depth and destinations of asynchronous invocations.
    pub async_config: AsyncConfig,
    /// Static files served before the function is invoked (`[static]`).
    pub static_site: Option<StaticSite>,
    /// What the function's token may do (`[permissions]`).
    pub permissions: Permissions,
}

/// A version number of a function; the first deploy is 1, each deploy adds one.
pub type VersionNumber = u32;

/// One immutable version of a function as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionVersion {
    /// The function.
    pub function: FunctionName,
    /// The version number.
    pub version: VersionNumber,
    /// Hex SHA-256 of the artifact bytes (the artifact's content address).
    pub artifact_hash: String,
    /// The manifest text exactly as deployed (TOML).
    pub manifest: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Hex SHA-256 of the static site bundle (`[static]`), stored as an artifact.
    pub static_hash: Option<String>,
}

/// A function as listed: its name, the version `live` points at, and when it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSummary {
    /// The function.
    pub name: FunctionName,
    /// The version the `live` alias points at.
    pub live_version: VersionNumber,
    /// The newest version number ever created.
    pub latest_version: VersionNumber,
    /// Creation time of the function, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// The function's standard output.
    Stdout,
    /// The function's standard error.
    Stderr,
    /// The platform's own line about the invocation (start, end, errors).
    Platform,
}

impl LogStream {
    /// Stable lowercase name, used in the store and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Platform => "platform",
        }
    }

    /// Parses the stable name back.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "stdout" => Some(LogStream::Stdout),
            "stderr" => Some(LogStream::Stderr),
            "platform" => Some(LogStream::Platform),
            _ => None,
        }
    }
}

/// One line of an invocation's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Store-assigned, increasing sequence number (0 before it is stored).
    pub seq: i64,
    /// The invocation the line belongs to.
    pub invocation_id: String,
    /// The function.
    pub function: String,
    /// The version that ran.
    pub version: VersionNumber,
    /// When the line was produced, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Which stream.
    pub stream: LogStream,
    /// The text, without the trailing newline.
    pub message: String,
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvocationOutcome {
    /// The function answered (any HTTP status it chose).
    Ok,
    /// The function trapped, crashed or returned an error (502).
    Error,
    /// The function ran past its timeout (504).
    Timeout,
    /// Refused before running: over concurrency (429).
    Throttled,
}

impl InvocationOutcome {
    /// Whether it counts as an error: the function failed or ran out of time.
    pub fn is_failure(self) -> bool {
        matches!(self, InvocationOutcome::Error | InvocationOutcome::Timeout)
    }

    /// Stable lowercase name, used in the store and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationOutcome::Ok => "ok",
            InvocationOutcome::Error => "error",
            InvocationOutcome::Timeout => "timeout",
            InvocationOutcome::Throttled => "throttled",
        }
    }

    /// Parses the stable name back.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ok" => Some(InvocationOutcome::Ok),
            "error" => Some(InvocationOutcome::Error),
            "timeout" => Some(InvocationOutcome::Timeout),
            "throttled" => Some(InvocationOutcome::Throttled),
            _ => None,
        }
    }
}

/// The record of one finished invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationRecord {
    /// Unique id (also sent as `x-gureum-invocation-id`).
    pub id: String,
    /// The function.
    pub function: String,
    /// The version that ran.
    pub version: VersionNumber,
    /// Start time, milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// Wall-clock duration in microseconds.
    pub duration_us: i64,
    /// HTTP status returned to the caller.
    pub status: u16,
    /// How it ended.
    pub outcome: InvocationOutcome,
    /// Whether it needed a new instance.
    pub cold_start: bool,
    /// Memory limit it ran with (for GB-seconds).
    pub memory_mb: u32,
    /// What started it.
    pub trigger: Trigger,
    /// Billed duration: `duration_us` rounded up to the next millisecond, at least 1
    /// (0 for a refused invocation, which is not billed).
    pub billed_ms: i64,
    /// Request body bytes the function was given.
    pub bytes_in: i64,
    /// Response body bytes sent back.
    pub bytes_out: i64,
}

impl InvocationRecord {
    /// Whether the invocation ran and is billed (a throttled one is neither).
    pub fn is_billed(&self) -> bool {
        self.outcome != InvocationOutcome::Throttled
    }
}

/// Billed duration of an invocation that ran `duration_us`: rounded up to the next whole
/// millisecond, at least 1 ms (AWS Lambda's rule).
pub fn billed_ms(duration_us: u64) -> u64 {
    duration_us.div_ceil(1000).max(1)
}

/// Milliseconds in a day; usage is rolled up per UTC day (`ms / MS_PER_DAY`).
pub const MS_PER_DAY: i64 = 86_400_000;

/// What started an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// A request on the public listener.
    Http,
    /// `gureum invoke` / the control API.
    Api,
    /// A cron schedule.
    Cron,
    /// The asynchronous queue.
    Queue,
    /// A WebSocket event.
    WebSocket,
}

impl Trigger {
    /// Stable lowercase name, used in the store and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Api => "api",
            Trigger::Cron => "cron",
            Trigger::Queue => "queue",
            Trigger::WebSocket => "websocket",
        }
    }

    /// Parses the stable name back.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Trigger::Http,
            Trigger::Api,
            Trigger::Cron,
            Trigger::Queue,
            Trigger::WebSocket,
        ]
        .into_iter()
        .find(|trigger| trigger.as_str() == value)
    }
}

/// Usage of one function version on one UTC day: the roll-up usage reports and quotas
/// read. The telemetry writer adds deltas of this shape to the stored row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyUsage {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// The function.
    pub function: String,
    /// The version.
    pub version: VersionNumber,
    /// Invocations that ran (billed).
    pub requests: u64,
    /// Of those, the ones that failed or timed out.
    pub errors: u64,
    /// Invocations refused before running (not billed).
    pub throttled: u64,
    /// Invocations that paid a cold start.
    pub cold_starts: u64,
    /// Summed wall time.
    pub duration_us: u64,
    /// Summed billed milliseconds.
    pub billed_ms: u64,
    /// Summed `memory_mb × billed_ms` (GB-seconds × 1,024,000).
    pub mb_ms: u64,
    /// Summed request body bytes.
    pub bytes_in: u64,
    /// Summed response body bytes.
    pub bytes_out: u64,
    /// Invocations counted here whose individual record was not kept (buffer full).
    pub overflowed: u64,
}

impl DailyUsage {
    /// The roll-up key (UTC day, function, version) `record` adds to.
    pub fn key_of(record: &InvocationRecord) -> (i64, String, VersionNumber) {
        (
            record.started_at_ms.div_euclid(MS_PER_DAY),
            record.function.clone(),
            record.version,
        )
    }

    /// Adds `other`'s counters (same key assumed) to this row.
    pub fn merge(&mut self, other: &DailyUsage) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.throttled += other.throttled;
        self.cold_starts += other.cold_starts;
        self.duration_us += other.duration_us;
        self.billed_ms += other.billed_ms;
        self.mb_ms += other.mb_ms;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.overflowed += other.overflowed;
    }

    /// Adds one invocation.
    pub fn add(&mut self, record: &InvocationRecord) {
        if record.is_billed() {
            self.requests += 1;
            if record.outcome.is_failure() {
                self.errors += 1;
            }
            let billed = record.billed_ms.max(0) as u64;
            self.duration_us += record.duration_us.max(0) as u64;
            self.billed_ms += billed;
            self.mb_ms += billed * u64::from(record.memory_mb);
        } else {
            self.throttled += 1;
        }
        self.cold_starts += u64::from(record.cold_start);
        self.bytes_in += record.bytes_in.max(0) as u64;
        self.bytes_out += record.bytes_out.max(0) as u64;
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_follow_dns_label_rules() {
        for good in ["a", "hello", "hello-world-2", &"x".repeat(63)] {
            assert!(FunctionName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Hello", "-a", "a-", "a_b", "a.b", &"x".repeat(64)] {
            assert_eq!(
                FunctionName::new(bad),
                Err(ModelError::InvalidFunctionName(bad.to_string()))
            );
        }
    }
}
