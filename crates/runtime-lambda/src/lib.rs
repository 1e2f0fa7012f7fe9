//! The only crate that runs function processes. A `runtime = "lambda"` function is a
//! program speaking the AWS Lambda Runtime API (any official runtime client works
//! unchanged): its code package is unpacked once per version, each instance is a
//! process in a sandbox of its own (`gureum-sandbox`) with its own Runtime API endpoint
//! that only its process group may use, and HTTP requests reach it as API Gateway v2.0
//! events.

mod api;
pub mod apigw;
mod instance;
mod limits;
pub mod package;
mod peer;
mod prepared;
mod relay;

use std::path::{Path, PathBuf};

pub use api::{BoxError, MAX_RESPONSE_BYTES, StreamedBody};
pub use instance::{
    DEFAULT_REGION, Failure, INIT_TIMEOUT, LambdaInstance, LambdaInvocation, LogSink, ProcessLine,
    ProcessSettings, Reply,
};
pub use limits::{MemoryEnforcement, WATCH_INTERVAL_BUSY, WATCH_INTERVAL_IDLE};
pub use package::PackageError;

/// How function processes are isolated from the server and from each other.
#[derive(Debug, Clone)]
pub enum Isolation {
    /// Each instance in a sandbox of its own (the default).
    Sandboxed(gureum_sandbox::Sandbox),
    /// The machine cannot sandbox: starting (and deploying) process functions fails
    /// with this reason, which says how to fix it.
    Unavailable(String),
    /// `--unsandboxed-processes`: ordinary processes of the server's user (trusted code).
    Unsandboxed,
}

impl Isolation {
    /// The strongest isolation this machine gives, unless `unsandboxed` is asked for.
    /// `helper` is the `gureum` binary (see `gureum_sandbox::Sandbox::detect`).
    pub fn detect(unsandboxed: bool, helper: &Path) -> Self {
        if unsandboxed {
            return Isolation::Unsandboxed;
        }
        match gureum_sandbox::Sandbox::detect(helper) {
            Ok(sandbox) => Isolation::Sandboxed(sandbox),
            Err(error) => {
                Isolation::Unavailable(format!("process functions cannot run here: {error}"))
            }
        }
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        match self {
            Isolation::Sandboxed(sandbox) => sandbox.describe(),
            Isolation::Unavailable(reason) => reason.clone(),
            Isolation::Unsandboxed => "process functions run WITHOUT a sandbox (--unsandboxed-processes): every process function can read the data directory, the admin token and the other functions; deploy only code you trust".to_string(),
        }
    }
}

/// Starts and tracks function processes for one data directory.
pub struct LambdaRuntime {
    code_root: PathBuf,
    spawner: std::sync::Arc<Spawner>,
    prepared: std::sync::Arc<prepared::Prepared>,
}

impl LambdaRuntime {
    /// A runtime keeping unpacked code in `DATA_DIR/code` and each instance's writable
    /// scratch directory (its `/tmp` when unsandboxed) in `DATA_DIR/tmp`, emptied here.
    pub fn new(data_dir: &Path, isolation: Isolation) -> Self {
        // Absolute: the sandbox binds these paths, and bwrap runs in the code directory
        // (the default data directory, `./.gureum`, is relative).
        let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let data_dir = data_dir.as_path();
        let scratch_root = data_dir.join("tmp");
        let code_root = data_dir.join("code");
        stop_orphans(&scratch_root, &code_root);
        // Scratch of processes from an earlier run is garbage now.
        let _ = std::fs::remove_dir_all(&scratch_root);
        let enforcement = MemoryEnforcement::detect();
        tracing::info!("{}", enforcement.describe());
        match &isolation {
            Isolation::Sandboxed(_) => tracing::info!("{}", isolation.describe()),
            _ => tracing::warn!("{}", isolation.describe()),
        }
        Self {
            code_root,
            spawner: std::sync::Arc::new(Spawner {
                scratch_root,
                enforcement,
                isolation,
            }),
            prepared: std::sync::Arc::new(prepared::Prepared::new(prepared::CAPACITY)),
        }
    }

    /// How processes are isolated.
    pub fn isolation(&self) -> &Isolation {
        &self.spawner.isolation
    }

    /// Whether process functions can run here; the error says why not and how to fix it.
    pub fn check_available(&self) -> Result<(), String> {
        match &self.spawner.isolation {
            Isolation::Unavailable(reason) => Err(reason.clone()),
            Isolation::Sandboxed(_) | Isolation::Unsandboxed => Ok(()),
        }
    }

    /// How memory limits are enforced on this machine.
    pub fn enforcement(&self) -> &MemoryEnforcement {
        &self.spawner.enforcement
    }

    /// The directory a package with this hash is unpacked to.
    pub fn code_dir(&self, hash: &str) -> PathBuf {
        self.code_root.join(hash)
    }

    /// Unpacks a package unless it already is (blocking: call off the async threads).
    /// `bytes` is asked for only when the directory is missing.
    pub fn ensure_code(
        &self,
        hash: &str,
        bytes: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<PathBuf, PackageError> {
        let dir = self.code_dir(hash);
        if dir.is_dir() {
            return Ok(dir);
        }
        let bytes = bytes().ok_or_else(|| PackageError::Unpack {
            path: dir.display().to_string(),
            message: "the code package is missing from the store".into(),
        })?;
        package::unpack(&bytes, &dir)?;
        Ok(dir)
    }

    /// Starts a process and waits until it is ready for its first event (a cold start).
    /// Sandboxed, the sandbox is taken from those prepared for this version when there
    /// is one, and a new one is prepared for the next start once this one succeeded.
    pub async fn start(
        &self,
        settings: &ProcessSettings,
        first_invocation: &str,
    ) -> Result<LambdaInstance, Failure> {
        let key = prepared::key(settings);
        let spawned = match self.prepared.take(key) {
            Some(spawned) => spawned,
            None => self.spawner.spawn(settings).await?,
        };
        let instance = spawned.launch(first_invocation).await?;
        if matches!(self.spawner.isolation, Isolation::Sandboxed(_)) && self.prepared.claim(key) {
            let (prepared, spawner, settings) = (
                self.prepared.clone(),
                self.spawner.clone(),
                settings.clone(),
            );
            tokio::spawn(async move {
                match spawner.spawn(&settings).await {
                    Ok(spawned) => prepared.fill(key, spawned),
                    Err(error) => {
                        prepared.release(key);
                        tracing::warn!(function = %settings.function, %error, "preparing a sandbox ahead of the next start failed");
                    }
                }
            });
        }
        Ok(instance)
    }
}

/// What starting a process needs besides its settings (shared with the task that
/// prepares sandboxes ahead).
struct Spawner {
    scratch_root: PathBuf,
    enforcement: MemoryEnforcement,
    isolation: Isolation,
}

impl Spawner {
    async fn spawn(&self, settings: &ProcessSettings) -> Result<instance::Spawned, Failure> {
        instance::Spawned::spawn(
            settings,
            &self.enforcement,
            &self.isolation,
            &self.scratch_root,
        )
        .await
    }
}

/// Stops the process groups an earlier run of the server left behind (it was killed
/// before it could stop them): each instance's scratch directory names its group, which
/// is killed only if its leader still runs in this data directory's code.
fn stop_orphans(scratch_root: &Path, code_root: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch_root) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pgid) = std::fs::read_to_string(entry.path().join(instance::PGID_FILE))
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let ours = std::fs::read_link(format!("/proc/{pgid}/cwd"))
            .is_ok_and(|cwd| cwd.starts_with(code_root));
        if ours {
            tracing::warn!(pgid, "stopping a function process left by an earlier run");
            limits::kill_group(pgid);
        }
    }
}
