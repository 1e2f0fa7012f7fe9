//! Walks the parsed TOML table key by key, collecting every problem with its path, and builds
//! the `FunctionSpec` only when there is none.

use std::collections::BTreeMap;

use gureum_model::{
    AsyncConfig, AuthPolicy, DEFAULT_EPHEMERAL_STORAGE_MB, DEFAULT_IDLE_TTL_S,
    DEFAULT_MAX_INSTANCES, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS, DataGrant, FunctionName,
    FunctionSpec, Limits, MAX_ASYNC_RETRIES, MAX_EPHEMERAL_STORAGE_MB, MAX_MAX_INSTANCES,
    MAX_MEMORY_MB, MAX_TIMEOUT_MS, Permissions, Runtime, Schedule, StaticSite,
};
use toml::{Table, Value};

use crate::schema::{
    ASYNC_KEYS, BUILD_KEYS, PERMISSIONS_KEYS, SCHEDULE_KEYS, STATIC_KEYS, TOP_KEYS,
};
use crate::{Build, Problem, cadence::Cadence, cron, outbound};

/// Longest `max_event_age_s` (a day).
pub(crate) const MAX_EVENT_AGE_S: u64 = 86_400;
/// Longest `retry_delay_ms` (an hour).
pub(crate) const MAX_RETRY_DELAY_MS: u64 = 3_600_000;
/// Most `max_queued`.
pub(crate) const MAX_MAX_QUEUED: u32 = 10_000_000;
/// Least and most `max_queued_bytes` (1 MiB, 64 GiB).
pub(crate) const MIN_QUEUED_BYTES: u64 = 1 << 20;
pub(crate) const MAX_QUEUED_BYTES: u64 = 64 << 30;
/// Keys that configure running code, refused for a static-only site (which runs none).
const CODE_KEYS: &[&str] = &[
    "command",
    "memory_mb",
    "timeout_ms",
    "max_instances",
    "idle_ttl_s",
    "ephemeral_storage_mb",
    "reuse_instances",
    "allowed_outbound_hosts",
    "env",
    "schedule",
    "async",
    "permissions",
];

pub(crate) const MAX_IDLE_TTL_S: u64 = 86_400;
const DEFAULT_COMMAND: &str = "./bootstrap";
const NAME_RULE: &str = "1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'";
/// Every prefix the gateway serves itself before a function route could match (the
/// services, the WebSocket management API, ACME challenges, the platform's own events).
const RESERVED_PREFIXES: &[&str] = &[
    "/fn/",
    "/ws/",
    "/auth/",
    "/data/",
    "/api/",
    "/kv/",
    "/@connections/",
    "/channels/",
    "/.gureum/",
    "/.well-known/acme-challenge/",
];
const RESERVED_PATHS: &[&str] = &["/healthz", "/fn", "/ws"];
const RESERVED_ENV_PREFIXES: &[&str] = &["GUREUM_", "AWS_LAMBDA_"];
// Lambda refuses these too, and the lambda runtime sets them for the process.
const RESERVED_ENV_NAMES: &[&str] = &["_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"];

/// A valid manifest.
pub(crate) struct Validated {
    pub spec: FunctionSpec,
    pub build: Option<Build>,
}

pub(crate) fn validate(table: &Table) -> Result<Validated, Vec<Problem>> {
    let mut c = Checker::default();
    c.unknown_keys("", table, &TOP_KEYS);

    let name = c.name(table.get("name"));
    if let Some(value) = table.get("description") {
        c.string("description", value, "a string");
    }
    // `[static]` without runtime and artifact: a static-only site, which runs no code.
    let static_only = table.contains_key("static")
        && !table.contains_key("runtime")
        && !table.contains_key("artifact");
    let (runtime, artifact) = if static_only {
        c.code_only_keys(table);
        (Some(Runtime::Static), Some(String::new()))
    } else {
        (
            c.runtime(table.get("runtime")),
            c.artifact(table.get("artifact")),
        )
    };
    let command = c.command(table.get("command"), runtime);
    let routes = c.routes(table.get("routes"));
    let limits = Limits {
        memory_mb: c
            .integer(table, "memory_mb", "MiB", 1, MAX_MEMORY_MB.into())
            .unwrap_or(DEFAULT_MEMORY_MB),
        timeout_ms: c
            .integer(
                table,
                "timeout_ms",
                "milliseconds",
                1,
                MAX_TIMEOUT_MS as i64,
            )
            .unwrap_or(DEFAULT_TIMEOUT_MS),
        max_instances: c
            .integer(
                table,
                "max_instances",
                "concurrent invocations",
                1,
                MAX_MAX_INSTANCES.into(),
            )
            .unwrap_or(DEFAULT_MAX_INSTANCES),
        idle_ttl_s: c
            .integer(table, "idle_ttl_s", "seconds", 0, MAX_IDLE_TTL_S as i64)
            .unwrap_or(DEFAULT_IDLE_TTL_S),
        ephemeral_storage_mb: c
            .integer(
                table,
                "ephemeral_storage_mb",
                "MiB",
                1,
                MAX_EPHEMERAL_STORAGE_MB.into(),
            )
            .unwrap_or(DEFAULT_EPHEMERAL_STORAGE_MB),
    };
    let reuse_instances = table
        .get("reuse_instances")
        .and_then(|value| c.boolean("reuse_instances", value))
        .unwrap_or(true);
    let allowed_outbound_hosts = c.outbound_hosts(table.get("allowed_outbound_hosts"));
    let auth = c.auth(table.get("auth"));
    let env = c.env(table.get("env"));
    let schedules = c.schedules(table.get("schedule"));
    let async_config = c.async_config(table.get("async"));
    let permissions = c.permissions(table.get("permissions"));
    let static_site = c.static_site(table.get("static"));
    let build = c.build(table.get("build"));

    match (name, runtime, artifact) {
        (Some(name), Some(runtime), Some(artifact)) if c.problems.is_empty() => Ok(Validated {
            spec: FunctionSpec {
                name,
                runtime,
                artifact,
                command,
                routes,
                limits,
                reuse_instances,
                allowed_outbound_hosts,
                auth,
                env,
                schedules,
                async_config,
                static_site,
                permissions,
            },
            build,
        }),
        _ => Err(c.problems),
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(field, message));
    }

    fn unknown_keys(&mut self, prefix: &str, table: &Table, valid: &[&str]) {
        for key in table.keys().filter(|key| !valid.contains(&key.as_str())) {
            let hint = if let Some(near) = closest(key, valid) {
                format!(": did you mean `{near}`?")
            } else if !prefix.is_empty() && TOP_KEYS.contains(&key.as_str()) {
                format!(": `{key}` is a top-level key; move it above the first [table] header")
            } else if prefix.is_empty() && key.bytes().any(|b| b.is_ascii_uppercase()) {
                ": environment variables go under [env]".to_string()
            } else {
                String::new()
            };
            self.problem(
                join(prefix, key),
                format!(
                    "unknown key `{key}`{hint} (valid keys: {})",
                    valid.join(", ")
                ),
            );
        }
    }

    fn string<'a>(&mut self, field: &str, value: &'a Value, expected: &str) -> Option<&'a str> {
        match value {
            Value::String(text) => Some(text),
            other => {
                self.problem(
                    field,
                    format!("expected {expected}, got {}", describe(other)),
                );
                None
            }
        }
    }

    /// A string that must be present and not blank.
    fn required_text(
        &mut self,
        field: &str,
        value: Option<&Value>,
        expected: &str,
        example: &str,
    ) -> Option<String> {
        let Some(value) = value else {
            self.problem(
                field,
                format!("missing required key: expected {expected}, e.g. {example}"),
            );
            return None;
        };
        let text = self.string(field, value, expected)?;
        if text.trim().is_empty() {
            self.problem(
                field,
                format!("expected {expected}, e.g. {example}, got an empty string"),
            );
            return None;
        }
        Some(text.to_string())
    }

    fn boolean(&mut self, field: &str, value: &Value) -> Option<bool> {
        match value {
            Value::Boolean(flag) => Some(*flag),
            other => {
                self.problem(
                    field,
                    format!("expected true or false, got {}", describe(other)),
                );
                None
            }
        }
    }

    /// An integer key of `table` in `min..=max`; `None` when absent or invalid.
    fn integer<T: TryFrom<i64>>(
        &mut self,
        table: &Table,
        key: &str,
        unit: &str,
        min: i64,
        max: i64,
    ) -> Option<T> {
        self.integer_in("", table, key, unit, min, max)
    }

    /// [`Checker::integer`] for a key of the section `prefix` (named `prefix.key`).
    fn integer_in<T: TryFrom<i64>>(
        &mut self,
        prefix: &str,
        table: &Table,
        key: &str,
        unit: &str,
        min: i64,
        max: i64,
    ) -> Option<T> {
        let field = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        match table.get(key)? {
            Value::Integer(n) if (min..=max).contains(n) => T::try_from(*n).ok(),
            Value::Integer(n) => {
                self.problem(
                    field,
                    format!("expected an integer from {min} to {max} ({unit}), got {n}"),
                );
                None
            }
            other => {
                self.problem(
                    field,
                    format!("expected an integer ({unit}), got {}", describe(other)),
                );
                None
            }
        }
    }

    /// The string items of an array; non-strings are reported by index and skipped.
    fn string_list<'a>(
        &mut self,
        field: &str,
        value: &'a Value,
        expected: &str,
    ) -> Option<Vec<(usize, &'a str)>> {
        let Value::Array(items) = value else {
            self.problem(
                field,
                format!("expected {expected}, got {}", describe(value)),
            );
            return None;
        };
        let mut strings = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(text) => strings.push((i, text.as_str())),
                other => self.problem(
                    format!("{field}[{i}]"),
                    format!("expected a string, got {}", describe(other)),
                ),
            }
        }
        Some(strings)
    }

    fn name(&mut self, value: Option<&Value>) -> Option<FunctionName> {
        let expected = "a function name";
        let Some(value) = value else {
            self.problem(
                "name",
                format!("missing required key: expected {expected} of {NAME_RULE}, e.g. name = \"hello\""),
            );
            return None;
        };
        let text = self.string("name", value, expected)?;
        match FunctionName::new(text) {
            Ok(name) => Some(name),
            Err(_) => {
                self.problem(
                    "name",
                    format!("expected {expected} of {NAME_RULE}, got {text:?}"),
                );
                None
            }
        }
    }

    /// `None` when invalid, so rules that depend on the runtime are skipped.
    fn runtime(&mut self, value: Option<&Value>) -> Option<Runtime> {
        let Some(value) = value else {
            return Some(Runtime::Wasm);
        };
        let expected = "\"wasm\" or \"lambda\"";
        match self.string("runtime", value, expected)? {
            "wasm" => Some(Runtime::Wasm),
            "lambda" => Some(Runtime::Lambda),
            other => {
                self.problem("runtime", format!("expected {expected}, got {other:?}"));
                None
            }
        }
    }

    fn artifact(&mut self, value: Option<&Value>) -> Option<String> {
        self.required_text(
            "artifact",
            value,
            "the artifact's path relative to gureum.toml",
            "artifact = \"hello.wasm\" (a static-only site leaves runtime and artifact out and has a [static] section)",
        )
    }

    /// Reports every key that only makes sense with code, for a static-only site.
    fn code_only_keys(&mut self, table: &Table) {
        for key in CODE_KEYS.iter().filter(|key| table.contains_key(**key)) {
            self.problem(
                *key,
                "only allowed for a function with code: a static-only site ([static] without runtime and artifact) runs none; remove it, or add runtime and artifact to run a function beside the files",
            );
        }
    }

    fn command(&mut self, value: Option<&Value>, runtime: Option<Runtime>) -> Vec<String> {
        let Some(value) = value else {
            return match runtime {
                Some(Runtime::Lambda) => vec![DEFAULT_COMMAND.to_string()],
                _ => Vec::new(),
            };
        };
        if runtime == Some(Runtime::Static) {
            // Reported by `code_only_keys`.
            return Vec::new();
        }
        if runtime == Some(Runtime::Wasm) {
            self.problem(
                "command",
                "only allowed with runtime = \"lambda\" (a wasm component has no command): remove it or set runtime = \"lambda\"",
            );
            return Vec::new();
        }
        let expected = "a list of non-empty strings, e.g. [\"./bootstrap\"] or [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]";
        let Some(items) = self.string_list("command", value, expected) else {
            return Vec::new();
        };
        if let Value::Array(all) = value
            && all.is_empty()
        {
            self.problem(
                "command",
                format!("expected {expected}, got an empty list (leave command out for the default [\"{DEFAULT_COMMAND}\"])"),
            );
        }
        for (i, item) in &items {
            if item.trim().is_empty() {
                self.problem(
                    format!("command[{i}]"),
                    "expected a non-empty string (a program or one of its arguments)",
                );
            }
        }
        items
            .into_iter()
            .map(|(_, item)| item.to_string())
            .collect()
    }

    fn routes(&mut self, value: Option<&Value>) -> Vec<String> {
        let Some(value) = value else {
            return Vec::new();
        };
        let Some(items) = self.string_list(
            "routes",
            value,
            "a list of paths, e.g. [\"/hello\", \"/hello/*\"]",
        ) else {
            return Vec::new();
        };
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for &(i, route) in &items {
            let field = format!("routes[{i}]");
            if let Err(reason) = check_route(route) {
                self.problem(field, format!("{reason}, got {route:?}"));
            } else if let Some(first) = seen.get(route) {
                self.problem(
                    field,
                    format!("duplicate of routes[{first}] {route:?}: list each route once"),
                );
            } else {
                seen.insert(route, i);
            }
        }
        items
            .into_iter()
            .map(|(_, route)| route.to_string())
            .collect()
    }

    fn outbound_hosts(&mut self, value: Option<&Value>) -> Vec<String> {
        let Some(value) = value else {
            return Vec::new();
        };
        let Some(items) = self.string_list(
            "allowed_outbound_hosts",
            value,
            "a list of origins, e.g. [\"https://api.example.com\"]",
        ) else {
            return Vec::new();
        };
        for &(i, entry) in &items {
            if let Err(reason) = outbound::Pattern::parse(entry) {
                self.problem(
                    format!("allowed_outbound_hosts[{i}]"),
                    format!("{reason}; {}, got {entry:?}", outbound::FORMS),
                );
            }
        }
        items
            .into_iter()
            .map(|(_, entry)| entry.to_string())
            .collect()
    }

    fn auth(&mut self, value: Option<&Value>) -> AuthPolicy {
        let Some(value) = value else {
            return AuthPolicy::None;
        };
        let expected = "\"none\", \"user\" or a CEL expression over auth";
        match self.string("auth", value, expected) {
            Some("none") | None => AuthPolicy::None,
            Some("user") => AuthPolicy::User,
            Some(expression) if expression.trim().is_empty() => {
                self.problem("auth", format!("expected {expected}, got an empty string"));
                AuthPolicy::None
            }
            Some(expression) => {
                // Checked here so a typo fails the deploy, not every request after it.
                if let Err(error) = gureum_rules::Rule::compile(expression) {
                    self.problem(
                        "auth",
                        format!("the CEL expression does not compile: {error} (it can use `auth`, e.g. auth.uid in [\"0193…\"] or auth.role == \"editor\")"),
                    );
                }
                AuthPolicy::Expression(expression.to_string())
            }
        }
    }

    fn env(&mut self, value: Option<&Value>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Some(value) = value else {
            return env;
        };
        let Value::Table(table) = value else {
            self.problem(
                "env",
                format!(
                    "expected a table ([env] followed by KEY = \"value\" lines), got {}",
                    describe(value)
                ),
            );
            return env;
        };
        for (key, value) in table {
            let field = join("env", key);
            if !is_env_name(key) {
                self.problem(
                    &field,
                    format!("invalid variable name {key:?}: expected letters, digits and '_', not starting with a digit (e.g. GREETING)"),
                );
            } else if is_reserved_env(key) {
                self.problem(
                    &field,
                    format!("the name {key} is reserved by the platform (GUREUM_*, AWS_LAMBDA_*, _HANDLER, LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR): choose another name"),
                );
            }
            match value {
                Value::String(text) if text.contains('\0') => {
                    self.problem(&field, "expected a string without NUL characters")
                }
                Value::String(text) => {
                    env.insert(key.clone(), text.clone());
                }
                Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_) => {
                    self.problem(
                        &field,
                        format!(
                            "expected a string, got {}: quote it, e.g. {} = \"{value}\"{}",
                            describe(value),
                            bare_or_quoted(key),
                            misplaced_hint(key)
                        ),
                    )
                }
                other => self.problem(
                    &field,
                    format!("expected a string, got {}", describe(other)),
                ),
            }
        }
        env
    }

    fn schedules(&mut self, value: Option<&Value>) -> Vec<Schedule> {
        let Some(value) = value else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            let hint = if value.is_table() {
                ": write [[schedule]] (double brackets), not [schedule]"
            } else {
                ""
            };
            self.problem(
                "schedule",
                format!(
                    "expected an array of tables ([[schedule]] sections with cron and body), got {}{hint}",
                    describe(value)
                ),
            );
            return Vec::new();
        };
        let mut schedules: Vec<Schedule> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let field = format!("schedule[{i}]");
            let Value::Table(table) = item else {
                self.problem(
                    &field,
                    format!(
                        "expected a table with cron and body, got {}",
                        describe(item)
                    ),
                );
                continue;
            };
            self.unknown_keys(&field, table, &SCHEDULE_KEYS);
            let name = match table.get("name") {
                None => Some(format!("schedule-{}", i + 1)),
                Some(value) => {
                    let name_field = format!("{field}.name");
                    self.string(&name_field, value, "a string").and_then(|name| {
                        let valid = !name.is_empty()
                            && name.len() <= 63
                            && name.bytes().all(|b| {
                                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
                            });
                        if !valid {
                            self.problem(
                                &name_field,
                                format!("expected {NAME_RULE}, got {name:?}"),
                            );
                            return None;
                        }
                        if schedules.iter().any(|other| other.name == name) {
                            self.problem(
                                &name_field,
                                format!("another schedule is already named {name:?}: names must be unique"),
                            );
                            return None;
                        }
                        Some(name.to_string())
                    })
                }
            };
            let tz = match table.get("tz") {
                None => Some("UTC".to_string()),
                Some(value) => {
                    let tz_field = format!("{field}.tz");
                    self.string(&tz_field, value, "an IANA time zone name")
                        .and_then(|tz| match crate::cadence::parse_tz(tz) {
                            Ok(_) => Some(tz.to_string()),
                            Err(reason) => {
                                self.problem(&tz_field, reason);
                                None
                            }
                        })
                }
            };
            let cron_field = format!("{field}.cron");
            let cron = match table.get("cron") {
                None => {
                    self.problem(
                        &cron_field,
                        format!("missing required key: {}", cron::FORMS),
                    );
                    None
                }
                Some(value) => {
                    self.string(&cron_field, value, "a string").and_then(
                        |line| match Cadence::parse(line, tz.as_deref().unwrap_or("UTC")) {
                            Ok(_) => Some(line.to_string()),
                            Err(reason) => {
                                self.problem(
                                    &cron_field,
                                    format!("{reason}; {}, got {line:?}", cron::FORMS),
                                );
                                None
                            }
                        },
                    )
                }
            };
            let body = match table.get("body") {
                None => Some(String::new()),
                Some(value) => self
                    .string(
                        &format!("{field}.body"),
                        value,
                        "a string (the request body sent on each tick)",
                    )
                    .map(str::to_string),
            };
            let catch_up = match table.get("missed") {
                None => Some(true),
                Some(value) => {
                    let missed_field = format!("{field}.missed");
                    match self.string(&missed_field, value, "\"run-once\" or \"skip\"") {
                        Some("run-once") => Some(true),
                        Some("skip") => Some(false),
                        Some(other) => {
                            self.problem(
                                &missed_field,
                                format!("expected \"run-once\" (run a tick missed while the server was down, once) or \"skip\", got {other:?}"),
                            );
                            None
                        }
                        None => None,
                    }
                }
            };
            if let (Some(name), Some(cron), Some(tz), Some(body), Some(catch_up)) =
                (name, cron, tz, body, catch_up)
            {
                schedules.push(Schedule {
                    name,
                    cron,
                    tz,
                    body,
                    catch_up,
                });
            }
        }
        schedules
    }

    fn async_config(&mut self, value: Option<&Value>) -> AsyncConfig {
        let mut config = AsyncConfig::default();
        let Some(value) = value else {
            return config;
        };
        let Value::Table(table) = value else {
            self.problem(
                "async",
                format!(
                    "expected a table ([async] with retries, max_event_age_s, retry_delay_ms, max_queued, max_queued_bytes, public, on_success, on_failure), got {}",
                    describe(value)
                ),
            );
            return config;
        };
        self.unknown_keys("async", table, &ASYNC_KEYS);
        if let Some(retries) = self.integer_in(
            "async",
            table,
            "retries",
            "retries after a failed attempt",
            0,
            MAX_ASYNC_RETRIES.into(),
        ) {
            config.retries = retries;
        }
        if let Some(age) = self.integer_in::<u64>(
            "async",
            table,
            "max_event_age_s",
            "seconds",
            1,
            MAX_EVENT_AGE_S as i64,
        ) {
            config.max_event_age_ms = age * 1000;
        }
        if let Some(delay) = self.integer_in(
            "async",
            table,
            "retry_delay_ms",
            "milliseconds before the first retry",
            1,
            MAX_RETRY_DELAY_MS as i64,
        ) {
            config.retry_delay_ms = delay;
        }
        if let Some(max) = self.integer_in(
            "async",
            table,
            "max_queued",
            "events waiting",
            1,
            MAX_MAX_QUEUED.into(),
        ) {
            config.max_queued = max;
        }
        if let Some(max) = self.integer_in(
            "async",
            table,
            "max_queued_bytes",
            "bytes of queued and dead-lettered bodies",
            MIN_QUEUED_BYTES as i64,
            MAX_QUEUED_BYTES as i64,
        ) {
            config.max_queued_bytes = max;
        }
        if let Some(value) = table.get("public") {
            config.public = self.boolean("async.public", value).unwrap_or(false);
        }
        for (key, slot) in [
            ("on_success", &mut config.on_success),
            ("on_failure", &mut config.on_failure),
        ] {
            if let Some(value) = table.get(key) {
                let field = format!("async.{key}");
                if let Some(name) = self.string(&field, value, "a function name") {
                    match FunctionName::new(name) {
                        Ok(name) => *slot = Some(name),
                        Err(_) => self.problem(
                            &field,
                            format!("expected a function name ({NAME_RULE}), got {name:?}"),
                        ),
                    }
                }
            }
        }
        config
    }

    fn permissions(&mut self, value: Option<&Value>) -> Permissions {
        let mut permissions = Permissions::default();
        let Some(value) = value else {
            return permissions;
        };
        let Value::Table(table) = value else {
            self.problem(
                "permissions",
                format!(
                    "expected a table ([permissions] with data, invoke, websocket), got {}",
                    describe(value)
                ),
            );
            return permissions;
        };
        if table.contains_key("kv") {
            self.problem(
                "permissions.kv",
                "a function's key-value buckets are always its own and no grant widens them; share data between functions through documents (data = [\"COLLECTION:write\"])",
            );
        }
        let mut rest = table.clone();
        rest.remove("kv");
        self.unknown_keys("permissions", &rest, &PERMISSIONS_KEYS);
        if let Some(value) = table.get("data")
            && let Some(items) = self.string_list(
                "permissions.data",
                value,
                "a list of COLLECTION:LEVEL grants, e.g. [\"notes:read\", \"orders:write\"]",
            )
        {
            for (i, entry) in items {
                match DataGrant::parse(entry) {
                    Ok(grant) => permissions.data.push(grant),
                    Err(reason) => self.problem(format!("permissions.data[{i}]"), reason),
                }
            }
        }
        for (key, slot) in [
            ("invoke", &mut permissions.invoke),
            ("websocket", &mut permissions.websocket),
        ] {
            let Some(value) = table.get(key) else {
                continue;
            };
            let field = format!("permissions.{key}");
            let Some(items) = self.string_list(
                &field,
                value,
                "a list of function names, or [\"*\"] for every function",
            ) else {
                continue;
            };
            for (i, entry) in items {
                if entry == "*" || FunctionName::new(entry).is_ok() {
                    slot.push(entry.to_string());
                } else {
                    self.problem(
                        format!("{field}[{i}]"),
                        format!("expected a function name ({NAME_RULE}) or \"*\", got {entry:?}"),
                    );
                }
            }
        }
        permissions
    }

    fn static_site(&mut self, value: Option<&Value>) -> Option<StaticSite> {
        let value = value?;
        let Value::Table(table) = value else {
            self.problem(
                "static",
                format!(
                    "expected a table ([static] with dir and spa), got {}",
                    describe(value)
                ),
            );
            return None;
        };
        self.unknown_keys("static", table, &STATIC_KEYS);
        let spa = match table.get("spa") {
            Some(value) => self.boolean("static.spa", value).unwrap_or(false),
            None => false,
        };
        let dir = self.required_text(
            "static.dir",
            table.get("dir"),
            "the directory of static files relative to gureum.toml",
            "dir = \"public\"",
        )?;
        Some(StaticSite { dir, spa })
    }

    /// `[build]`: how the CLI (`gureum build`, `gureum dev`) produces the artifact. The
    /// platform never runs it, but a typo here should fail as loudly as anywhere else.
    fn build(&mut self, value: Option<&Value>) -> Option<Build> {
        let value = value?;
        let Value::Table(table) = value else {
            self.problem(
                "build",
                format!(
                    "expected a table ([build] with command and watch), got {}",
                    describe(value)
                ),
            );
            return None;
        };
        self.unknown_keys("build", table, &BUILD_KEYS);
        let command = self.required_text(
            "build.command",
            table.get("command"),
            "a shell command run in the manifest's directory",
            "command = \"cargo build --release --target wasm32-wasip2\"",
        );
        let mut watch = Vec::new();
        if let Some(value) = table.get("watch") {
            for (i, path) in self
                .string_list("build.watch", value, "a list of files or directories")
                .unwrap_or_default()
            {
                let field = format!("build.watch[{i}]");
                if path.trim().is_empty() {
                    self.problem(field, "expected a file or directory, got an empty string");
                } else if std::path::Path::new(path).is_absolute()
                    || path.split('/').any(|part| part == "..")
                {
                    self.problem(
                        field,
                        format!("expected a path inside the project (relative, without '..'), got {path:?}"),
                    );
                } else {
                    watch.push(path.to_string());
                }
            }
        } else {
            watch.push(".".to_string());
        }
        Some(Build {
            command: command?,
            watch,
        })
    }
}

/// A hint for a top-level key that landed in `[env]` because it was written below the header.
fn misplaced_hint(key: &str) -> String {
    if TOP_KEYS.contains(&key) {
        format!(" (or, if `{key}` is meant as the top-level key, move it above [env])")
    } else {
        String::new()
    }
}

/// Why `route` is not a valid public route; each reason also says what would be valid.
/// A route's host (`notes.example.org` of `notes.example.org/*`), if it names one, and
/// its path. Routes that start with `/` match on every host.
pub fn split_route(route: &str) -> (Option<&str>, &str) {
    if route.starts_with('/') {
        return (None, route);
    }
    match route.find('/') {
        Some(slash) => (Some(&route[..slash]), &route[slash..]),
        None => (Some(route), ""),
    }
}

/// A route's host: a lowercase DNS name of two labels or more (labels of `a-z0-9-`, not
/// starting or ending with `-`), without a port.
fn check_route_host(host: &str) -> Result<(), String> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    // At least two labels: "fn/x" is far more likely a path missing its '/'.
    if host.len() > 253 || !host.contains('.') || !host.split('.').all(label_ok) {
        return Err(format!(
            "expected a path starting with '/' (e.g. \"/hello\"), or a host as a lowercase DNS name without a port and a path (e.g. \"notes.example.org/*\"); the host {host:?} is neither"
        ));
    }
    Ok(())
}

fn check_route(route: &str) -> Result<(), String> {
    let (host, route) = split_route(route);
    if let Some(host) = host {
        check_route_host(host)?;
    }
    if !route.starts_with('/') {
        return Err(
            "expected a path starting with '/' (e.g. \"/hello\"), or a host and a path (e.g. \"notes.example.org/*\")"
                .to_string(),
        );
    }
    if route
        .chars()
        .any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err(
            "expected a path without spaces or control characters (percent-encode them, e.g. %20)"
                .to_string(),
        );
    }
    if route.contains(['?', '#']) {
        return Err(
            "expected a path without a query or fragment ('?' or '#'); routes match the path only"
                .to_string(),
        );
    }
    let without_wildcard = route.strip_suffix("/*").unwrap_or(route);
    if without_wildcard.contains('*') {
        return Err(
            "expected '*' only as a final \"/*\" segment matching any suffix, e.g. \"/hello/*\""
                .to_string(),
        );
    }
    let reserved = RESERVED_PREFIXES
        .iter()
        .any(|prefix| route.starts_with(prefix))
        || RESERVED_PATHS.contains(&route)
        // A wildcard route may also match its own base path.
        || RESERVED_PATHS.contains(&without_wildcard);
    if reserved {
        return Err(format!(
            "reserved by the platform ({}, {}): choose another path",
            RESERVED_PREFIXES
                .iter()
                .map(|prefix| format!("{prefix}*"))
                .collect::<Vec<_>>()
                .join(", "),
            RESERVED_PATHS.join(", ")
        ));
    }
    Ok(())
}

fn is_env_name(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_reserved_env(key: &str) -> bool {
    // Case-insensitive so `gureum_api` cannot shadow the platform's value where lookups fold case.
    let upper = key.to_ascii_uppercase();
    RESERVED_ENV_PREFIXES
        .iter()
        .any(|prefix| upper.starts_with(prefix))
        || RESERVED_ENV_NAMES.contains(&upper.as_str())
}

/// Names a value's TOML type for "got ..." messages, with short scalars shown.
fn describe(value: &Value) -> String {
    match value {
        Value::String(text) if text.chars().count() > 40 => {
            let head: String = text.chars().take(40).collect();
            format!("a string {:?}", format!("{head}…"))
        }
        Value::String(text) => format!("a string {text:?}"),
        Value::Integer(n) => format!("an integer {n}"),
        Value::Float(x) => format!("a float {x:?}"),
        Value::Boolean(flag) => format!("a boolean {flag}"),
        Value::Datetime(at) => format!("a date-time {at}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// `prefix.key`, quoting keys that TOML would need quoted.
fn join(prefix: &str, key: &str) -> String {
    let key = bare_or_quoted(key);
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

fn bare_or_quoted(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// The valid key a misspelled `key` most likely meant, if any is close enough.
fn closest<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase().replace('-', "_");
    valid
        .iter()
        .map(|candidate| {
            // Optimal string alignment: Levenshtein plus adjacent transpositions, so
            // `memroy` is one edit from `memory`.
            let distance = strsim::osa_distance(&key, candidate);
            // A key cut short of its unit suffix (`timeout`, `memory`) is a near miss too.
            let truncated = key.len() >= 4 && candidate.starts_with(key.as_str());
            (if truncated { 0 } else { distance }, *candidate)
        })
        .filter(|&(distance, candidate)| distance <= (candidate.len() / 3).max(1))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}
