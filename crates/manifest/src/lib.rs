//! Reads `gureum.toml` into a validated [`FunctionSpec`], reporting every problem at once with
//! the field it concerns and what would be valid, and matches outbound requests against the
//! manifest's `allowed_outbound_hosts`.
//!
//! [`parse`] and [`load`] give the spec; [`read_project`] also returns `[build]` (command,
//! watch), which is validated here but kept out of `FunctionSpec` because the platform
//! never runs it, and does not require the artifact to exist yet. [`Cadence`] says when a
//! `[[schedule]]` ticks. `destination` says which resolved addresses are not public
//! ([`check_resolved`]); [`outbound_allowance`] says whether the entry that allowed a
//! request names the address itself. Both runtimes use them: the wasm runtime's outbound
//! client and the process functions' relay resolve a name once and connect to exactly the
//! addresses checked.

mod cadence;
mod cron;
mod destination;

pub use cadence::Cadence;
mod outbound;
mod schema;
mod validate;

pub use schema::json_schema;
pub use validate::split_route;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use gureum_model::{FunctionSpec, Runtime};

pub use destination::{PrivateDestinations, ProhibitedAddress, check_resolved, non_public};
pub use outbound::{
    Allowance, exact_endpoints, names_address, outbound_allowance, outbound_allowed,
};

/// File name looked up when [`load`] is given a directory.
pub const MANIFEST_FILE: &str = "gureum.toml";

/// A complete manifest stating every key with its default; `gureum new` can start from it.
pub const EXAMPLE: &str = r#"# gureum.toml: one function. Every key but name and artifact is optional;
# the values below are the defaults unless marked "example".
name = "hello"                  # [a-z0-9-]{1,63}, not starting or ending with '-'
description = ""                # free text for humans
runtime = "wasm"                # "wasm": a wasi:http/proxy component (WASI 0.2)
                                # "lambda": a process speaking the AWS Lambda Runtime API
artifact = "hello.wasm"         # wasm: the component file. lambda: a file or a directory (the
                                # function's code, like Lambda's /var/task), relative to this file
# command = ["./bootstrap"]     # lambda only (rejected for wasm); run inside the code dir.
                                # e.g. ["python3", "-m", "awslambdaric", "app.handler"]
routes = ["/hello", "/hello/*"] # example; default []. Public routes besides /fn/NAME; a final
                                # "/*" matches any suffix; "app.example.org/*" matches on that
                                # host only (an origin of the app's own). /fn/ /ws/ /auth/
                                # /data/ /api/ and /healthz are reserved
memory_mb = 128                 # 1 to 4096
timeout_ms = 3000               # 1 to 900000
max_instances = 10              # 1 to 1000; concurrency ceiling (429 beyond, after a short queue)
idle_ttl_s = 300                # 0 to 86400; warm instance kept this long after its last request
ephemeral_storage_mb = 512      # lambda: 1 to 10240; size of the sandbox's private /tmp
reuse_instances = true          # wasm: a warm instance serves later requests (one at a time);
                                # false: a fresh instance per request (strict isolation)
allowed_outbound_hosts = []     # outbound HTTP the function may make, e.g.
                                # ["https://api.example.com", "https://*.example.com",
                                #  "http://localhost:8080", "*://db.internal:*"]; "*" allows all.
                                # The platform API (GUREUM_API) is always allowed
auth = "none"                   # "user": callers need a valid gureum JWT; or a CEL expression
                                # over auth, e.g. "auth.claims.role == 'admin'"

# [static]                      # static files served at the function's routes, before the
                                # function is invoked; with [static], runtime and artifact may
                                # be left out (a static-only site, which takes none of the
                                # keys about running code)
# dir = "public"                # required in [static]; relative to this file
# spa = false                   # true: a GET for a path with no file and no extension gets
                                # index.html (single-page apps)

[async]                         # asynchronous invocations (x-gureum-invocation-type: event)
retries = 2                     # 0 to 10; retries after a failed attempt (status >= 500, timeout)
max_event_age_s = 21600         # 1 to 86400; older events go to the dead-letter list untried
retry_delay_ms = 5000           # first retry after this, each next one doubles (with jitter)
max_queued = 100000             # events waiting; enqueues beyond get 429 queue_full
max_queued_bytes = 268435456    # bodies queued and dead-lettered (1 MiB to 64 GiB); beyond: 429
public = false                  # true: anyone may queue events from the public listener;
                                # false: signed-in users and functions only (401 otherwise)
# on_success = "audit"          # a function invoked with a record of each success
# on_failure = "alert"          # ... and of each event that exhausted its retries

[permissions]                   # what the function's token (GUREUM_FUNCTION_TOKEN) may do;
                                # without grants: its own KV buckets and WebSocket connections
data = []                       # e.g. ["notes:read", "orders:write"]: read = get, list, stream;
                                # write = read + create, update, delete; "*:admin" = every
                                # collection (rules are skipped for granted collections)
invoke = []                     # functions it may queue events for whose [async] public is false
websocket = []                  # other functions whose /ws/ connections and channels it manages

[env]                           # example; default empty. Environment / wasi:config values;
GREETING = "hi"                 # keys [A-Za-z_][A-Za-z0-9_]*, values strings. GUREUM_* and
                                # AWS_LAMBDA_* are set by the platform

[[schedule]]                    # example; default none. Cron triggers
name = "report"                 # default "schedule-N"; unique; keeps the schedule's state
cron = "0 */5 * * * *"          # 6 fields with seconds, 5 fields, @every 10s, or
                                # @yearly/@monthly/@weekly/@daily/@hourly
tz = "UTC"                      # IANA time zone of the cron fields, e.g. "Europe/Berlin"
body = "{}"                     # request body of each tick; default ""
missed = "run-once"             # after downtime run a missed tick once, or "skip"

[build]                         # example; default none. Used by `gureum build` / `gureum dev`
command = "cargo build --release --target wasm32-wasip2"  # run with sh -c in this directory
watch = ["src", "Cargo.toml"]   # default ["."]; changes here rebuild and redeploy in `gureum dev`
"#;

/// `[build]`: how the CLI turns sources into the artifact (`gureum build`, `gureum dev`).
/// The platform ignores it; it travels with the manifest text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// Run with `sh -c` in the manifest's directory.
    pub command: String,
    /// Files or directories, relative to the manifest, whose changes trigger a rebuild in
    /// `gureum dev`; default `["."]`.
    pub watch: Vec<String>,
}

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the offending key, e.g. `memory_mb`, `env.GREETING`, `schedule[1].cron`.
    pub field: String,
    /// What is wrong and what would be valid, lowercase, without a trailing period.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a manifest could not be loaded or accepted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("cannot read {}: {}", .path.display(), describe_io(.source))]
    Io {
        /// The file that was looked for.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The text is not valid TOML.
    #[error(
        "gureum.toml is not valid TOML at line {line}, column {column}: {message}\n  | {source_line}\n  | {caret:>column$}",
        caret = "^"
    )]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// The TOML parser's description.
        message: String,
        /// The text of the offending line, shown under the message.
        source_line: String,
    },
    /// The TOML is well-formed but breaks the manifest's rules; every problem found is listed.
    #[error("{}", list_problems(.0))]
    Invalid(Vec<Problem>),
}

impl ManifestError {
    /// The rule violations, for machine-readable answers; empty for IO and syntax errors.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ManifestError::Invalid(problems) => problems,
            ManifestError::Io { .. } | ManifestError::Syntax { .. } => &[],
        }
    }
}

fn describe_io(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::NotFound {
        format!(
            "file not found; expected a {MANIFEST_FILE} there (pass the function's directory or its toml file)"
        )
    } else {
        error.to_string()
    }
}

fn list_problems(problems: &[Problem]) -> String {
    let count = match problems.len() {
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    };
    let mut out = format!("invalid gureum.toml ({count}):");
    for problem in problems {
        out.push_str("\n  - ");
        out.push_str(&problem.to_string());
    }
    out
}

/// A manifest read from disk, with its artifact located.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    /// The validated manifest.
    pub spec: FunctionSpec,
    /// The manifest text exactly as read (stored with each version).
    pub text: String,
    /// The toml file that was read.
    pub manifest_path: PathBuf,
    /// The artifact, resolved against the manifest's directory; it exists (a static-only
    /// site has none: then this is the manifest's directory).
    pub artifact_path: PathBuf,
    /// `[static] dir`, resolved against the manifest's directory; it is a directory.
    pub static_dir: Option<PathBuf>,
    /// The `[build]` section, if any.
    pub build: Option<Build>,
}

/// A manifest read and validated without looking at the filesystem: what `gureum build`
/// needs before the artifact exists.
#[derive(Debug, Clone)]
pub struct Project {
    /// The validated manifest.
    pub spec: FunctionSpec,
    /// The `[build]` section, if any.
    pub build: Option<Build>,
    /// The toml file that was read.
    pub manifest_path: PathBuf,
    /// The directory holding it; `[build]` runs here and its paths are relative to it.
    pub dir: PathBuf,
}

/// Reads and validates the manifest at `path` (a directory or the toml file) without
/// requiring the artifact to exist yet.
pub fn read_project(path: &Path) -> Result<Project, ManifestError> {
    let (manifest_path, text) = read_text(path)?;
    let validated = parse_full(&text)?;
    let dir = match manifest_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(Project {
        spec: validated.spec,
        build: validated.build,
        manifest_path,
        dir,
    })
}

fn read_text(path: &Path) -> Result<(PathBuf, String), ManifestError> {
    let manifest_path = if path.is_dir() {
        path.join(MANIFEST_FILE)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&manifest_path).map_err(|source| ManifestError::Io {
        path: manifest_path.clone(),
        source,
    })?;
    Ok((manifest_path, text))
}

/// Parses and validates manifest text; every rule that does not need the filesystem is checked.
pub fn parse(text: &str) -> Result<FunctionSpec, ManifestError> {
    parse_full(text).map(|validated| validated.spec)
}

fn parse_full(text: &str) -> Result<validate::Validated, ManifestError> {
    let table: toml::Table = text.parse().map_err(|error| syntax_error(text, &error))?;
    validate::validate(&table).map_err(ManifestError::Invalid)
}

fn syntax_error(text: &str, error: &toml::de::Error) -> ManifestError {
    let start = error.span().map_or(0, |span| span.start).min(text.len());
    // The span may split a multi-byte character; back up to a boundary before slicing.
    let start = (0..=start)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &text[..start];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    ManifestError::Syntax {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
        message: error.message().trim_end().to_string(),
        source_line: text[line_start..line_end].trim_end().to_string(),
    }
}

/// Reads `path` (a directory holding `gureum.toml`, or the toml file itself), validates it and
/// checks that the artifact exists relative to the manifest's directory.
pub fn load(path: &Path) -> Result<LoadedManifest, ManifestError> {
    let (manifest_path, text) = read_text(path)?;
    let validated = parse_full(&text)?;
    let base = manifest_path.parent().unwrap_or(Path::new(""));
    let artifact_path = base.join(&validated.spec.artifact);

    let mut problems = Vec::new();
    let wanted = match validated.spec.runtime {
        Runtime::Wasm => Some(Wanted::File),
        Runtime::Lambda => Some(Wanted::FileOrDir),
        Runtime::Static => None,
    };
    if let Some(wanted) = wanted
        && let Some(message) = check_path(&artifact_path, wanted)
    {
        problems.push(Problem::new("artifact", message));
    }
    let static_dir = validated
        .spec
        .static_site
        .as_ref()
        .map(|site| base.join(&site.dir));
    if let Some(dir) = &static_dir
        && let Some(message) = check_path(dir, Wanted::Dir)
    {
        problems.push(Problem::new("static.dir", message));
    }
    if !problems.is_empty() {
        return Err(ManifestError::Invalid(problems));
    }
    Ok(LoadedManifest {
        spec: validated.spec,
        text,
        manifest_path,
        artifact_path,
        static_dir,
        build: validated.build,
    })
}

#[derive(Clone, Copy)]
enum Wanted {
    File,
    Dir,
    FileOrDir,
}

/// Says what is wrong with `path` for its purpose, or `None` when it fits.
fn check_path(path: &Path, wanted: Wanted) -> Option<String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Some(format!(
            "{shown} does not exist; expected {} (paths are relative to the directory of gureum.toml; build it first or fix the path)",
            wanted.describe()
        )),
        Err(error) => Some(format!("cannot access {shown}: {error}")),
        Ok(meta) => match wanted {
            Wanted::File if !meta.is_file() => Some(format!(
                "{shown} is not a file; expected {}",
                wanted.describe()
            )),
            Wanted::Dir if !meta.is_dir() => Some(format!(
                "{shown} is not a directory; expected {}",
                wanted.describe()
            )),
            _ => None,
        },
    }
}

impl Wanted {
    fn describe(self) -> &'static str {
        match self {
            Wanted::File => "the wasm component file",
            Wanted::Dir => "a directory of static files",
            Wanted::FileOrDir => "the function's code: a file or a directory",
        }
    }
}
