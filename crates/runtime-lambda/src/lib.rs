//! The only crate that runs function processes. A `runtime = "lambda"` function is a
//! program speaking the AWS Lambda Runtime API (any official runtime client works
//! unchanged): its code package is unpacked once per version, each instance is a
//! process with its own Runtime API endpoint that only its process group may use, and
//! HTTP requests reach it as API Gateway v2.0 events.

mod api;
pub mod apigw;
mod instance;
mod limits;
pub mod package;
mod peer;

use std::path::{Path, PathBuf};

pub use api::{BoxError, MAX_RESPONSE_BYTES, StreamedBody};
pub use instance::{
    DEFAULT_REGION, Failure, INIT_TIMEOUT, LambdaInstance, LambdaInvocation, LogSink, ProcessLine,
    ProcessSettings, Reply,
};
pub use limits::{MemoryEnforcement, WATCH_INTERVAL_BUSY, WATCH_INTERVAL_IDLE};
pub use package::PackageError;

/// Starts and tracks function processes for one data directory.
pub struct LambdaRuntime {
    code_root: PathBuf,
    scratch_root: PathBuf,
    enforcement: MemoryEnforcement,
}

impl LambdaRuntime {
    /// A runtime keeping unpacked code in `DATA_DIR/code` and each instance's writable
    /// scratch directory (its `/tmp`) in `DATA_DIR/tmp`, emptied here.
    pub fn new(data_dir: &Path) -> Self {
        let scratch_root = data_dir.join("tmp");
        let code_root = data_dir.join("code");
        stop_orphans(&scratch_root, &code_root);
        // Scratch of processes from an earlier run is garbage now.
        let _ = std::fs::remove_dir_all(&scratch_root);
        let enforcement = MemoryEnforcement::detect();
        tracing::info!("{}", enforcement.describe());
        Self {
            code_root,
            scratch_root,
            enforcement,
        }
    }

    /// How memory limits are enforced on this machine.
    pub fn enforcement(&self) -> &MemoryEnforcement {
        &self.enforcement
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
    pub async fn start(
        &self,
        settings: &ProcessSettings,
        first_invocation: &str,
    ) -> Result<LambdaInstance, Failure> {
        LambdaInstance::start(
            settings,
            &self.enforcement,
            &self.scratch_root,
            first_invocation,
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
