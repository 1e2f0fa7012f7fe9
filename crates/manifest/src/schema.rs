//! The JSON Schema of `gureum.toml` (`gureum schema`), for editors: with taplo (Even Better
//! TOML), a first line `#:schema ./gureum.schema.json` gives completion, hover docs and
//! validation while typing.
//!
//! The types below are the one description of the file's keys, ranges and defaults: the
//! limits come from `gureum_model`'s constants, and the validator's key lists are read
//! from this schema ([`keys`]), so neither can drift from it. [`crate::parse`] remains
//! the judge of values (it also checks what a schema cannot say well, like cron lines and
//! CEL) and reports every problem at once.
//!
//! The schema is draft 7 (what taplo reads). A unit test checks every manifest under
//! `examples/` against it with the `jsonschema` crate, the way editors do.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use gureum_model::{
    DEFAULT_ASYNC_RETRIES, DEFAULT_EPHEMERAL_STORAGE_MB, DEFAULT_IDLE_TTL_S,
    DEFAULT_MAX_EVENT_AGE_MS, DEFAULT_MAX_INSTANCES, DEFAULT_MAX_QUEUED, DEFAULT_MAX_QUEUED_BYTES,
    DEFAULT_MEMORY_MB, DEFAULT_RETRY_DELAY_MS, DEFAULT_TIMEOUT_MS, MAX_ASYNC_RETRIES,
    MAX_EPHEMERAL_STORAGE_MB, MAX_MAX_INSTANCES, MAX_MEMORY_MB, MAX_TIMEOUT_MS,
};
use schemars::JsonSchema;

use crate::validate::{
    MAX_EVENT_AGE_S, MAX_IDLE_TTL_S, MAX_MAX_QUEUED, MAX_QUEUED_BYTES, MAX_RETRY_DELAY_MS,
    MIN_QUEUED_BYTES,
};

/// One gureum function: its code, where it is served and how it runs.
#[derive(JsonSchema)]
#[schemars(title = "gureum.toml", deny_unknown_fields)]
#[allow(dead_code)] // Only the shape matters: the schema is derived from it.
pub(crate) struct ManifestFile {
    /// The function's name: 1 to 63 characters of a-z, 0-9 and '-', not starting or ending
    /// with '-'. It is served at /fn/NAME.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    name: String,
    /// Free text for humans.
    description: Option<String>,
    /// "wasm": a wasi:http/proxy component (WASI 0.2). "lambda": a process speaking the AWS
    /// Lambda Runtime API. Leave out (with artifact) for a static-only site with [static].
    runtime: Option<RuntimeName>,
    /// wasm: the component file. lambda: a file or a directory (the function's code, like
    /// Lambda's /var/task). Relative to this file.
    #[schemars(length(min = 1))]
    artifact: Option<String>,
    /// lambda only: the command run inside the code directory, e.g.
    /// ["python3", "-m", "awslambdaric", "app.handler"]. Default ["./bootstrap"].
    #[schemars(length(min = 1))]
    command: Option<Vec<String>>,
    /// Public routes besides /fn/NAME, e.g. ["/hello", "/hello/*"]; a final "/*" matches any
    /// suffix. /fn/ /ws/ /auth/ /data/ /api/ and /healthz are reserved.
    routes: Option<Vec<Route>>,
    /// Memory limit in MiB (1 to 4096).
    #[schemars(range(min = 1, max = MAX_MEMORY_MB), extend("default" = DEFAULT_MEMORY_MB))]
    memory_mb: Option<u32>,
    /// Time limit of one invocation in milliseconds (1 to 900000).
    #[schemars(range(min = 1, max = MAX_TIMEOUT_MS), extend("default" = DEFAULT_TIMEOUT_MS))]
    timeout_ms: Option<u64>,
    /// Concurrency ceiling (1 to 1000); beyond it requests wait briefly, then get 429.
    #[schemars(
        range(min = 1, max = MAX_MAX_INSTANCES),
        extend("default" = DEFAULT_MAX_INSTANCES)
    )]
    max_instances: Option<u32>,
    /// Seconds a warm instance is kept after its last request (0 to 86400).
    #[schemars(range(min = 0, max = MAX_IDLE_TTL_S), extend("default" = DEFAULT_IDLE_TTL_S))]
    idle_ttl_s: Option<u64>,
    /// lambda: size of the sandbox's private /tmp in MiB (1 to 10240), held in memory.
    #[schemars(
        range(min = 1, max = MAX_EPHEMERAL_STORAGE_MB),
        extend("default" = DEFAULT_EPHEMERAL_STORAGE_MB)
    )]
    ephemeral_storage_mb: Option<u32>,
    /// wasm: a warm instance serves later requests (one at a time); false: a fresh instance
    /// per request (strict isolation).
    #[schemars(extend("default" = true))]
    reuse_instances: Option<bool>,
    /// Outbound HTTP the function may make, e.g. ["https://api.example.com",
    /// "https://*.example.com", "http://localhost:8080"]; "*" allows all. The platform API
    /// (GUREUM_API) is always allowed.
    allowed_outbound_hosts: Option<Vec<String>>,
    /// "none" (default), "user" (callers need a valid gureum JWT), or a CEL expression over
    /// `auth`, e.g. "auth.claims.role == 'admin'".
    #[schemars(length(min = 1), extend("default" = "none"))]
    auth: Option<String>,
    /// Environment (and wasi:config) values; GUREUM_* and AWS_LAMBDA_* are the platform's.
    #[schemars(extend("propertyNames" = { "pattern": "^(?!GUREUM_|AWS_LAMBDA_)[A-Za-z_][A-Za-z0-9_]*$" }))]
    env: Option<BTreeMap<String, String>>,
    /// Cron triggers.
    schedule: Option<Vec<ScheduleTable>>,
    /// Asynchronous invocations (x-gureum-invocation-type: event): retries, age, destinations.
    #[schemars(rename = "async")]
    async_: Option<AsyncTable>,
    /// Static files served at the function's routes before the function is invoked.
    #[schemars(rename = "static")]
    static_: Option<StaticTable>,
    /// How `gureum build` and `gureum dev` produce the artifact; the platform ignores it.
    build: Option<BuildTable>,
    /// What the function's token (GUREUM_FUNCTION_TOKEN) may do besides its own key-value
    /// buckets and WebSocket connections. Nothing by default.
    permissions: Option<PermissionsTable>,
}

/// A function's grants.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct PermissionsTable {
    /// Documents and files, by collection, rules skipped: "notes:read" (get, list, stream),
    /// "orders:write" (read plus create, update, delete), "*:admin" (every collection).
    data: Option<Vec<DataGrantText>>,
    /// Functions this one may queue events for (with its token) although their
    /// [async] public is false; "*" for every function.
    invoke: Option<Vec<FunctionOrEvery>>,
    /// Other functions whose WebSocket connections and channels this one may manage;
    /// "*" for every function.
    websocket: Option<Vec<FunctionOrEvery>>,
}

/// COLLECTION:LEVEL, or *:LEVEL for every collection.
#[derive(JsonSchema)]
#[schemars(transparent)]
#[allow(dead_code)]
struct DataGrantText(
    #[schemars(regex(pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|\*):(read|write|admin)$"))] String,
);

/// A function name, or "*".
#[derive(JsonSchema)]
#[schemars(transparent)]
#[allow(dead_code)]
struct FunctionOrEvery(
    #[schemars(regex(pattern = r"^(\*|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$"))] String,
);

/// The kinds of code gureum runs.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum RuntimeName {
    /// A wasi:http/proxy component (WASI 0.2).
    Wasm,
    /// A process speaking the AWS Lambda Runtime API.
    Lambda,
}

/// A public route: a path starting with '/', optionally ending in "/*".
#[derive(JsonSchema)]
#[schemars(transparent)]
#[allow(dead_code)]
struct Route(#[schemars(regex(pattern = r"^([a-z0-9.-]+)?/\S*$"))] String);

/// A cron trigger.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct ScheduleTable {
    /// Unique within the function; keeps the schedule's state. Default "schedule-N".
    name: Option<String>,
    /// 6 fields with seconds, 5 fields, "@every 10s", or @yearly/@monthly/@weekly/@daily/
    /// @hourly, e.g. "0 */5 * * * *".
    #[schemars(length(min = 1))]
    cron: String,
    /// IANA time zone of the cron fields, e.g. "Europe/Berlin".
    #[schemars(extend("default" = "UTC"))]
    tz: Option<String>,
    /// Request body of each tick.
    #[schemars(extend("default" = ""))]
    body: Option<String>,
    /// After downtime: run a missed tick once, or skip it.
    missed: Option<Missed>,
}

/// What happens to ticks missed while no node ran.
#[derive(JsonSchema)]
#[schemars(rename_all = "kebab-case")]
#[allow(dead_code)]
enum Missed {
    /// The latest missed tick runs once.
    RunOnce,
    /// Missed ticks are dropped.
    Skip,
}

/// Asynchronous invocation settings.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct AsyncTable {
    /// Retries after a failed attempt (status >= 500, timeout), 0 to 10.
    #[schemars(
        range(min = 0, max = MAX_ASYNC_RETRIES),
        extend("default" = DEFAULT_ASYNC_RETRIES)
    )]
    retries: Option<u32>,
    /// Older events go to the dead-letter list untried (1 to 86400 seconds).
    #[schemars(
        range(min = 1, max = MAX_EVENT_AGE_S),
        extend("default" = DEFAULT_MAX_EVENT_AGE_MS / 1000)
    )]
    max_event_age_s: Option<u64>,
    /// First retry after this; each next one doubles, with jitter.
    #[schemars(
        range(min = 1, max = MAX_RETRY_DELAY_MS),
        extend("default" = DEFAULT_RETRY_DELAY_MS)
    )]
    retry_delay_ms: Option<u64>,
    /// Events waiting; enqueues beyond get 429 queue_full.
    #[schemars(range(min = 1, max = MAX_MAX_QUEUED), extend("default" = DEFAULT_MAX_QUEUED))]
    max_queued: Option<u64>,
    /// Bytes of request bodies queued and dead-lettered together; enqueues beyond get 429 queue_full.
    #[schemars(
        range(min = MIN_QUEUED_BYTES, max = MAX_QUEUED_BYTES),
        extend("default" = DEFAULT_MAX_QUEUED_BYTES)
    )]
    max_queued_bytes: Option<u64>,
    /// true: anyone may queue events from the public listener; false: signed-in users and functions only.
    #[schemars(extend("default" = false))]
    public: Option<bool>,
    /// A function invoked with a record of each success.
    on_success: Option<String>,
    /// A function invoked with a record of each event that exhausted its retries.
    on_failure: Option<String>,
}

/// Static files.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct StaticTable {
    /// The directory of static files, relative to this file.
    #[schemars(length(min = 1))]
    dir: String,
    /// true: a GET for a path with no file and no extension gets index.html.
    #[schemars(extend("default" = false))]
    spa: Option<bool>,
}

/// The build step of `gureum build` / `gureum dev`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct BuildTable {
    /// Run with `sh -c` in this file's directory, e.g.
    /// "cargo build --release --target wasm32-wasip2 --target-dir target".
    #[schemars(regex(pattern = r"\S"))]
    command: String,
    /// Files or directories (relative, inside the project) whose changes rebuild and
    /// redeploy in `gureum dev`.
    #[schemars(extend("default" = ["."]))]
    watch: Option<Vec<WatchPath>>,
}

/// A path inside the project: relative, without `..`.
#[derive(JsonSchema)]
#[schemars(transparent)]
#[allow(dead_code)]
struct WatchPath(#[schemars(regex(pattern = r"^(?!/)(?!(.*/)?\.\.(/|$))\S.*$"))] String);

/// The keys of one table of the file, as the schema allows them: `None` for the top
/// level, else the name of a table's definition (`"AsyncTable"`, …). Sorted (the schema's
/// properties are a sorted map).
fn keys(definition: Option<&str>) -> Vec<&'static str> {
    static SCHEMA: LazyLock<serde_json::Value> = LazyLock::new(json_schema);
    let table = match definition {
        None => &*SCHEMA,
        Some(name) => &SCHEMA["definitions"][name],
    };
    table["properties"]
        .as_object()
        .map(|properties| {
            properties
                .keys()
                // Read once per process; the few dozen names live as long as it does.
                .map(|key| &*Box::leak(key.clone().into_boxed_str()))
                .collect()
        })
        .unwrap_or_default()
}

/// The top-level keys.
pub(crate) static TOP_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| keys(None));
/// The keys of a `[[schedule]]`.
pub(crate) static SCHEDULE_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| keys(Some("ScheduleTable")));
/// The keys of `[async]`.
pub(crate) static ASYNC_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| keys(Some("AsyncTable")));
/// The keys of `[static]`.
pub(crate) static STATIC_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| keys(Some("StaticTable")));
/// The keys of `[build]`.
pub(crate) static BUILD_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| keys(Some("BuildTable")));
/// The keys of `[permissions]`.
pub(crate) static PERMISSIONS_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| keys(Some("PermissionsTable")));

/// The JSON Schema (draft 7, which taplo and most editors read) of `gureum.toml`.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<ManifestFile>().to_value();
    drop_null(&mut schema);
    schema
}

/// TOML has no null (an optional key is simply absent), so the `null` schemars allows for
/// `Option` fields would only mislead editors: removed everywhere.
fn drop_null(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(serde_json::Value::Array(options)) = map.get_mut(key) {
                    options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
                    if options.len() == 1 {
                        let only = options.remove(0);
                        map.remove(key);
                        if let serde_json::Value::Object(inner) = only {
                            for (k, v) in inner {
                                map.entry(k).or_insert(v);
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(drop_null);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}
