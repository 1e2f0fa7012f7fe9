//! One function process: started with the environment a Lambda runtime expects,
//! ready once it asks for its first event (within [`INIT_TIMEOUT`], 10 s), then given one
//! event at a time. Its output is read line by line and attributed to the invocation it
//! is running. Dropping the instance kills its whole process group, and so does an
//! event that outlives the function's timeout (a `Failure::Timeout`, which the gateway
//! answers 504); a crashed or timed-out instance is never reused.
//!
//! The process starts in a process group of its own through `posix_spawn`: no `pre_exec`
//! hook, whose `fork` of the whole multi-threaded server cost about 10 ms per cold start.
//! Unsandboxed, its Runtime API is a loopback port of the host (`127.0.0.1:0`) served to
//! its process group only (see `peer`); sandboxed, it arrives through the relay (see
//! `relay`). Every instance records its process group in its scratch directory under
//! `DATA_DIR/tmp`, so the next start kills what a server killed outright left behind (a
//! sandboxed one dies with bubblewrap anyway).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use gureum_model::LogStream;
use http::HeaderValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::api::{self, Dispatch, InitState, Pending, RawReply, Shared, StreamedBody};
use crate::apigw::ResponseHead;
use crate::limits::{self, InstanceLimit, MemoryEnforcement};

/// How long a process may take from start to its first `next` (Lambda's init limit).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest output line kept; longer output is split.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Output lines kept for an init-failure message.
const INIT_OUTPUT_LINES: usize = 20;
/// The file in an instance's scratch directory that holds its process group id.
pub(crate) const PGID_FILE: &str = ".gureum-pgid";
/// Region reported to functions unless their `env` sets `AWS_REGION`.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A line a process printed.
#[derive(Debug, Clone)]
pub struct ProcessLine {
    /// The invocation it is attributed to.
    pub invocation_id: Arc<str>,
    /// stdout or stderr.
    pub stream: LogStream,
    /// When it was read, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The text without its newline.
    pub message: String,
}

/// Where output lines go; awaited, so a slow consumer slows the process, never loses lines.
pub type LogSink = Arc<dyn Fn(ProcessLine) -> BoxFuture<'static, ()> + Send + Sync>;

/// Everything needed to start processes of one function version.
#[derive(Clone)]
pub struct ProcessSettings {
    /// Function name.
    pub function: String,
    /// Version number.
    pub version: u32,
    /// Program and arguments, run in `code_dir`.
    pub command: Vec<String>,
    /// Platform and manifest environment, on top of the Lambda variables.
    pub env: Vec<(String, String)>,
    /// Memory limit.
    pub memory_mb: u32,
    /// Size of the sandbox's private `/tmp`.
    pub ephemeral_storage_mb: u32,
    /// The `(host, port)` pairs of `allowed_outbound_hosts` the sandbox offers
    /// (`gureum_manifest::exact_endpoints`).
    pub outbound_endpoints: Vec<(String, u16)>,
    /// Whether those endpoints' names may resolve to private addresses
    /// (`gureum up --outbound-private`).
    pub outbound_private: gureum_manifest::PrivateDestinations,
    /// The unpacked code (`LAMBDA_TASK_ROOT`; bound at `/var/task` in the sandbox).
    pub code_dir: PathBuf,
    /// Where stdout/stderr lines go.
    pub logs: LogSink,
}

/// Why an invocation produced no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// The deadline passed; the process was killed.
    #[error("function timed out after {timeout_ms} ms (timeout_ms in gureum.toml)")]
    Timeout {
        /// The limit.
        timeout_ms: u64,
    },
    /// The process ran out of its memory limit.
    #[error("function exceeded its memory limit of {memory_mb} MiB (memory_mb in gureum.toml)")]
    MemoryLimit {
        /// The limit.
        memory_mb: u32,
    },
    /// The handler reported an error.
    #[error("the handler returned an error: {error_type}: {message}")]
    Handler {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
    /// The process exited while running the invocation.
    #[error(
        "the function's process exited during the invocation ({0}); it is replaced for the next request"
    )]
    Crashed(String),
    /// The process did not start or failed its initialization.
    #[error("the function failed to initialize: {0}")]
    InitFailed(String),
    /// A streamed response broke off with an error after its head was sent.
    #[error("{0}")]
    Stream(String),
    /// The answer was larger than the Runtime API accepts.
    #[error(
        "the function's response is larger than 6 MiB; use response streaming for large bodies"
    )]
    TooLarge,
}

/// The answer of one invocation.
pub enum Reply {
    /// A buffered payload (for HTTP, a v2.0 response or other JSON).
    Buffered(Bytes),
    /// A streamed response.
    Streaming {
        /// The head from the HTTP prelude, when the stream had one.
        head: Option<ResponseHead>,
        /// The stream's content type, when it had no prelude.
        content_type: Option<HeaderValue>,
        /// The body as the process sends it.
        body: StreamedBody,
    },
}

/// A started invocation: its answer, and a future that resolves when the process is
/// done with it (for a stream, after its last byte), with any late failure.
pub struct LambdaInvocation {
    /// The answer or why there is none.
    pub reply: Result<Reply, Failure>,
    /// Resolves once the instance is released.
    pub completion: BoxFuture<'static, Option<Failure>>,
}

/// A running function process with its own Runtime API endpoint.
pub struct LambdaInstance {
    shared: Arc<Shared>,
    events: mpsc::Sender<Dispatch>,
    pgid: u32,
    exited: watch::Receiver<Option<String>>,
    limit: Arc<InstanceLimit>,
    api_task: tokio::task::JoinHandle<()>,
    function_arn: Arc<str>,
    memory_mb: u32,
    /// Set by the watchdog when it killed the process for its memory.
    over_memory: Arc<AtomicBool>,
    /// Whether an event is running (the watchdog looks more often then).
    busy: Arc<AtomicBool>,
}

impl Drop for LambdaInstance {
    fn drop(&mut self) {
        self.kill();
        self.api_task.abort();
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A function process started up to the point where it would run the function's
/// command. Sandboxed, the sandbox is complete and waits for [`Spawned::launch`]
/// (so that one can be made ahead of the request that needs it); unsandboxed, the
/// process already runs. Dropping it unlaunched kills it.
pub(crate) struct Spawned(Option<SpawnedParts>);

struct SpawnedParts {
    child: tokio::process::Child,
    /// The sandbox's stdin: writing [`gureum_sandbox::GO`] runs the command.
    go: Option<tokio::process::ChildStdin>,
    api: ApiEndpoint,
    scratch: tempfile::TempDir,
    limit: Arc<InstanceLimit>,
    pgid: u32,
    function_arn: Arc<str>,
    memory_mb: u32,
    logs: LogSink,
}

/// Where the instance's Runtime API connections arrive.
enum ApiEndpoint {
    /// A loopback port of the host, served to the process group only (unsandboxed).
    Port(TcpListener),
    /// The sandbox's relay socket, with what the relay may reach for the function.
    Relay(tokio::net::UnixListener, Arc<crate::relay::Reach>),
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Launched, the instance owns the process; unlaunched, nothing else stops it,
        // reaps it or removes its cgroup and scratch directory.
        let Some(mut parts) = self.0.take() else {
            return;
        };
        limits::kill_group(parts.pgid);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = parts.child.wait().await;
                parts.limit.cleanup();
                drop(parts);
            });
        }
    }
}

impl Spawned {
    /// Starts the process (or makes its sandbox). Returns once it is spawned.
    pub(crate) async fn spawn(
        settings: &ProcessSettings,
        enforcement: &MemoryEnforcement,
        isolation: &crate::Isolation,
        scratch_root: &std::path::Path,
    ) -> Result<Self, Failure> {
        let init_failed = |what: &dyn std::fmt::Display| Failure::InitFailed(what.to_string());
        if let crate::Isolation::Unavailable(reason) = isolation {
            return Err(init_failed(reason));
        }
        let sandboxed = matches!(isolation, crate::Isolation::Sandboxed(_));
        // Unsandboxed, the Runtime API is a loopback port of the host that only the
        // instance's process group is served on; sandboxed, it is relayed (below).
        let listener = if sandboxed {
            None
        } else {
            Some(
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|error| init_failed(&format!("binding its Runtime API: {error}")))?,
            )
        };
        let api_addr = match &listener {
            Some(listener) => listener.local_addr().map_err(|error| init_failed(&error))?,
            None => gureum_sandbox::network::RUNTIME_API
                .parse()
                .map_err(|error| init_failed(&error))?,
        };
        let instance_id = uuid::Uuid::now_v7().simple().to_string();
        std::fs::create_dir_all(scratch_root).map_err(|error| init_failed(&error))?;
        // Private: each instance's directory holds its relay socket (0666, so that the
        // function's own uid can use it from inside), which no other local user may
        // reach; the sandbox binds the instance's directory itself, not this one.
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(scratch_root, std::fs::Permissions::from_mode(0o700))
                .map_err(|error| init_failed(&error))?;
        }
        let scratch = tempfile::Builder::new()
            .prefix("fn-")
            .tempdir_in(scratch_root)
            .map_err(|error| init_failed(&format!("creating its /tmp: {error}")))?;
        let limit = Arc::new(
            InstanceLimit::prepare(enforcement, &instance_id, settings.memory_mb)
                .map_err(|error| init_failed(&format!("setting its memory limit: {error}")))?,
        );
        let region = settings
            .env
            .iter()
            .find(|(key, _)| key == "AWS_REGION")
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let function_arn: Arc<str> = format!(
            "arn:aws:lambda:{region}:000000000000:function:{}",
            settings.function
        )
        .into();

        let Some((program, args)) = settings.command.split_first() else {
            return Err(init_failed(&"the manifest has an empty command"));
        };
        let mut relay_listener = None;
        let (mut command, paths) = match isolation {
            crate::Isolation::Sandboxed(sandbox) => {
                let plan = gureum_sandbox::network::Plan::new(&settings.outbound_endpoints);
                for skipped in &plan.skipped {
                    tracing::warn!(function = %settings.function, "allowed_outbound_hosts: {skipped}");
                }
                std::fs::write(
                    scratch.path().join(gureum_sandbox::network::HOSTS_FILE),
                    &plan.hosts,
                )
                .map_err(|error| init_failed(&format!("writing its /etc/hosts: {error}")))?;
                relay_listener = Some(crate::relay::listen(scratch.path()).map_err(|error| {
                    init_failed(&format!("making its network socket: {error}"))
                })?);
                (
                    sandbox.command(&gureum_sandbox::Instance {
                        function: &settings.function,
                        code_dir: &settings.code_dir,
                        command: &settings.command,
                        tmp_bytes: u64::from(settings.ephemeral_storage_mb) * 1024 * 1024,
                        network: Some(gureum_sandbox::Network {
                            dir: scratch.path(),
                            plan: &plan,
                        }),
                    }),
                    Paths {
                        code: gureum_sandbox::TASK_ROOT.to_string(),
                        tmp: "/tmp".to_string(),
                        path: "/usr/local/bin:/usr/bin:/bin".to_string(),
                    },
                )
            }
            _ => {
                let mut command = tokio::process::Command::new(program);
                command.args(args);
                (
                    command,
                    Paths {
                        code: settings.code_dir.display().to_string(),
                        tmp: scratch.path().display().to_string(),
                        path: std::env::var("PATH")
                            .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
                    },
                )
            }
        };
        command
            // Also for the sandbox: orphans of a killed server are recognised by it.
            .current_dir(&settings.code_dir)
            .env_clear()
            .envs(lambda_env(
                settings,
                &api_addr,
                &region,
                &instance_id,
                &paths,
                sandboxed,
            ))
            // The sandbox's stdin is its go signal (the function gets /dev/null).
            .stdin(if sandboxed {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        limit.apply(&mut command);
        let mut child = command.spawn().map_err(|error| {
            init_failed(&format!(
                "command {:?} could not be started in the code directory: {error}",
                settings.command
            ))
        })?;
        let pgid = child.id().unwrap_or(0);
        // Recorded so that a server killed without cleaning up can stop this process
        // group when it starts again (see `LambdaRuntime::new`).
        let _ = std::fs::write(scratch.path().join(PGID_FILE), pgid.to_string());
        if let Err(error) = limit.attach(pgid) {
            limits::kill_group(pgid);
            return Err(init_failed(&format!("moving it into its cgroup: {error}")));
        }
        let api = match (listener, relay_listener) {
            (Some(listener), _) => ApiEndpoint::Port(listener),
            (None, Some(relay_listener)) => ApiEndpoint::Relay(
                relay_listener,
                Arc::new(crate::relay::Reach {
                    function: settings.function.clone(),
                    platform: platform_address(&settings.env),
                    endpoints: settings.outbound_endpoints.clone(),
                    private: settings.outbound_private,
                }),
            ),
            (None, None) => {
                limits::kill_group(pgid);
                return Err(init_failed(&"no Runtime API"));
            }
        };
        Ok(Spawned(Some(SpawnedParts {
            go: child.stdin.take(),
            child,
            api,
            scratch,
            limit,
            pgid,
            function_arn,
            memory_mb: settings.memory_mb,
            logs: settings.logs.clone(),
        })))
    }

    /// Whether the process (or its held sandbox) has already ended.
    pub(crate) fn has_exited(&mut self) -> bool {
        self.0
            .as_mut()
            .is_none_or(|parts| !matches!(parts.child.try_wait(), Ok(None)))
    }

    /// Runs the function's command (sandboxed) and waits until it asks for its first
    /// event. Output printed during the start is attributed to `first_invocation`.
    pub(crate) async fn launch(
        mut self,
        first_invocation: &str,
    ) -> Result<LambdaInstance, Failure> {
        let SpawnedParts {
            mut child,
            go,
            api,
            scratch,
            limit,
            pgid,
            function_arn,
            memory_mb,
            logs,
        } = self
            .0
            .take()
            .ok_or_else(|| Failure::InitFailed("launched twice".into()))?;
        if let Some(mut go) = go {
            use tokio::io::AsyncWriteExt as _;
            // A failed write means the sandbox died; waiting for it below says how.
            let _ = go.write_all(&[gureum_sandbox::GO]).await;
        }
        let (events, receiver) = mpsc::channel(1);
        let shared = Arc::new(Shared::new(receiver, first_invocation.into()));
        let api_task = match api {
            ApiEndpoint::Port(listener) => tokio::spawn(api::serve(listener, shared.clone(), pgid)),
            ApiEndpoint::Relay(listener, reach) => {
                tokio::spawn(crate::relay::serve(listener, shared.clone(), reach))
            }
        };
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(read_lines(
                stdout,
                LogStream::Stdout,
                shared.clone(),
                logs.clone(),
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(read_lines(stderr, LogStream::Stderr, shared.clone(), logs));
        }
        let (exit_sender, exited) = watch::channel(None);
        let cleanup = limit.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => describe_exit(status),
                Err(error) => format!("waiting for it failed: {error}"),
            };
            let _ = exit_sender.send(Some(status));
            cleanup.cleanup();
            drop(scratch);
        });

        let over_memory = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicBool::new(true));
        if let Some(bytes) = limit.watched_bytes() {
            tokio::spawn(watch_memory(
                pgid,
                bytes,
                exited.clone(),
                busy.clone(),
                over_memory.clone(),
            ));
        }
        let instance = LambdaInstance {
            over_memory,
            busy,
            shared,
            events,
            pgid,
            exited,
            limit,
            api_task,
            function_arn,
            memory_mb,
        };
        instance.wait_ready().await?;
        Ok(instance)
    }
}

impl LambdaInstance {
    async fn wait_ready(&self) -> Result<(), Failure> {
        let mut init = self.shared.init.subscribe();
        let mut exited = self.exited.clone();
        let result = tokio::select! {
            state = init.wait_for(|state| *state != InitState::Starting) => match state.map(|s| s.clone()) {
                Ok(InitState::Ready) => return Ok(()),
                Ok(InitState::Failed(reason)) => format!("it reported {reason}"),
                _ => "its Runtime API stopped".to_string(),
            },
            status = exited.wait_for(Option::is_some) => {
                let status = status.map(|s| s.clone().unwrap_or_default()).unwrap_or_default();
                format!("the process {status} before asking for its first event")
            }
            () = tokio::time::sleep(INIT_TIMEOUT) => format!(
                "it did not ask for its first event within {} s", INIT_TIMEOUT.as_secs()
            ),
        };
        self.kill();
        // Give the output readers a moment to catch the last lines of a dying process.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let output = lock(&self.shared.init_output).join("\n");
        let output = if output.is_empty() {
            "(no output)".to_string()
        } else {
            output
        };
        Err(Failure::InitFailed(format!(
            "{result}; its output:\n{output}"
        )))
    }

    /// Whether the process is still running.
    pub fn is_alive(&self) -> bool {
        self.exited.borrow().is_none()
    }

    fn kill(&self) {
        if self.is_alive() {
            limits::kill_group(self.pgid);
        }
    }

    fn crash_failure(&self) -> Failure {
        if self.over_memory.load(Ordering::Acquire)
            || self.limit.oom_killed()
            || self.shared.oom_hint.load(Ordering::Acquire)
        {
            return Failure::MemoryLimit {
                memory_mb: self.memory_mb,
            };
        }
        Failure::Crashed(
            self.exited
                .borrow()
                .clone()
                .unwrap_or_else(|| "exited".into()),
        )
    }

    /// Runs one event. `release` gets the instance back when it may serve again, or
    /// `None` when it was killed or died; it is called before `completion` resolves.
    /// `trace_id` is the X-Ray header value the process sees (`Lambda-Runtime-Trace-Id`).
    pub async fn invoke(
        self,
        id: &str,
        payload: Bytes,
        trace_id: Option<String>,
        timeout: Duration,
        release: impl FnOnce(Option<LambdaInstance>) + Send + 'static,
    ) -> LambdaInvocation {
        let deadline = Instant::now() + timeout;
        let deadline_ms = gureum_model::now_ms() + timeout.as_millis() as i64;
        self.busy.store(true, Ordering::Release);
        let busy = self.busy.clone();
        let release = move |instance: Option<LambdaInstance>| {
            busy.store(false, Ordering::Release);
            release(instance);
        };
        let id: Arc<str> = id.into();
        *lock(&self.shared.log_target) = id.clone();
        self.shared.oom_hint.store(false, Ordering::Release);
        let (reply_sender, reply) = oneshot::channel();
        *lock(&self.shared.pending) = Some(Pending {
            id: id.clone(),
            reply: reply_sender,
        });
        let dispatched = self
            .events
            .send(Dispatch {
                id,
                payload,
                deadline_ms,
                function_arn: self.function_arn.clone(),
                trace_id,
            })
            .await;
        let timeout_ms = timeout.as_millis() as u64;
        let ready = |failure: Option<Failure>| -> BoxFuture<'static, Option<Failure>> {
            Box::pin(std::future::ready(failure))
        };
        fn fail(
            instance: LambdaInstance,
            failure: Failure,
            keep: bool,
            release: impl FnOnce(Option<LambdaInstance>),
        ) -> LambdaInvocation {
            release(keep.then_some(instance));
            LambdaInvocation {
                reply: Err(failure.clone()),
                completion: Box::pin(std::future::ready(Some(failure))),
            }
        }
        if dispatched.is_err() {
            let failure = self.crash_failure();
            return fail(self, failure, false, release);
        }
        let mut exited = self.exited.clone();
        let answer = tokio::select! {
            answer = reply => answer.ok(),
            _ = exited.wait_for(Option::is_some) => None,
            () = tokio::time::sleep_until(deadline) => {
                self.kill();
                return fail(self, Failure::Timeout { timeout_ms }, false, release);
            }
        };
        match answer {
            None => {
                let failure = self.crash_failure();
                fail(self, failure, false, release)
            }
            Some(RawReply::Buffered(payload)) => {
                release(Some(self));
                LambdaInvocation {
                    reply: Ok(Reply::Buffered(payload)),
                    completion: ready(None),
                }
            }
            Some(RawReply::TooLarge) => fail(self, Failure::TooLarge, true, release),
            Some(RawReply::Error {
                error_type,
                message,
            }) => {
                if self.shared.oom_hint.load(Ordering::Acquire)
                    || error_type == "MemoryError"
                    || error_type == "Runtime.OutOfMemory"
                {
                    let failure = Failure::MemoryLimit {
                        memory_mb: self.memory_mb,
                    };
                    return fail(self, failure, false, release);
                }
                fail(
                    self,
                    Failure::Handler {
                        error_type,
                        message,
                    },
                    true,
                    release,
                )
            }
            Some(RawReply::Streaming {
                head,
                content_type,
                body,
                done,
            }) => {
                let completion = Box::pin(async move {
                    let mut exited = self.exited.clone();
                    tokio::select! {
                        ended = done => {
                            release(Some(self));
                            ended.ok().flatten().map(Failure::Stream)
                        }
                        _ = exited.wait_for(Option::is_some) => {
                            let failure = self.crash_failure();
                            release(None);
                            Some(failure)
                        }
                        () = tokio::time::sleep_until(deadline) => {
                            self.kill();
                            release(None);
                            Some(Failure::Timeout { timeout_ms })
                        }
                    }
                });
                LambdaInvocation {
                    reply: Ok(Reply::Streaming {
                        head,
                        content_type,
                        body,
                    }),
                    completion,
                }
            }
        }
    }
}

/// Kills the process group once the process and its children hold more than `bytes`
/// of resident memory; runs until the process is gone.
async fn watch_memory(
    pid: u32,
    bytes: u64,
    mut exited: watch::Receiver<Option<String>>,
    busy: Arc<AtomicBool>,
    over: Arc<AtomicBool>,
) {
    loop {
        let interval = if busy.load(Ordering::Acquire) {
            limits::WATCH_INTERVAL_BUSY
        } else {
            limits::WATCH_INTERVAL_IDLE
        };
        tokio::select! {
            _ = exited.wait_for(Option::is_some) => return,
            () = tokio::time::sleep(interval) => {}
        }
        match limits::resident_bytes(pid) {
            Some(resident) if resident > bytes => {
                over.store(true, Ordering::Release);
                limits::kill_group(pid);
                return;
            }
            Some(_) => {}
            None => return,
        }
    }
}

/// The server's address of `GUREUM_API` (`http://127.0.0.1:PORT`), which the sandbox's
/// relay connects to.
fn platform_address(env: &[(String, String)]) -> Option<std::net::SocketAddr> {
    let url = &env.iter().find(|(key, _)| key == "GUREUM_API")?.1;
    let rest = url.strip_prefix("http://")?;
    rest.split('/').next()?.parse().ok()
}

/// Where the process finds things, as it sees them.
struct Paths {
    /// Its code (`LAMBDA_TASK_ROOT`).
    code: String,
    /// Its writable directory (`TMPDIR`, `HOME`).
    tmp: String,
    /// The system's part of `PATH`.
    path: String,
}

/// The environment of a Lambda runtime, then the platform's and the manifest's.
fn lambda_env(
    settings: &ProcessSettings,
    api: &std::net::SocketAddr,
    region: &str,
    instance_id: &str,
    paths: &Paths,
    sandboxed: bool,
) -> Vec<(String, String)> {
    let code = paths.code.clone();
    let handler = match settings.command.as_slice() {
        [_, .., last] => last.clone(),
        _ => "bootstrap".to_string(),
    };
    let inherited_path = &paths.path;
    let (year, month, day) = crate::apigw::civil_date(gureum_model::now_ms());
    let mut env: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), api.to_string()),
        ("_HANDLER".into(), handler),
        ("LAMBDA_TASK_ROOT".into(), code.clone()),
        ("LAMBDA_RUNTIME_DIR".into(), code.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), settings.function.clone()),
        (
            "AWS_LAMBDA_FUNCTION_VERSION".into(),
            settings.version.to_string(),
        ),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            settings.memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{}", settings.function),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME".into(),
            format!(
                "{year}/{month:02}/{day:02}/[{}]{instance_id}",
                settings.version
            ),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        ("AWS_REGION".into(), region.to_string()),
        ("AWS_DEFAULT_REGION".into(), region.to_string()),
        ("TZ".into(), ":UTC".into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("PATH".into(), format!("{code}/bin:{inherited_path}")),
        ("LD_LIBRARY_PATH".into(), format!("{code}/lib")),
        ("HOME".into(), paths.tmp.clone()),
        ("TMPDIR".into(), paths.tmp.clone()),
        // Output reaches the logs as it is printed, not when a buffer fills.
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    for (key, value) in &settings.env {
        match env.iter_mut().find(|(existing, _)| existing == key) {
            Some(slot) => slot.1 = value.clone(),
            None => env.push((key.clone(), value.clone())),
        }
    }
    if sandboxed {
        // Inside, the platform API is the relay's (the server's loopback is not there),
        // also where a variable names the server's address (the AWS SDKs' endpoint).
        let platform = format!("http://{}", gureum_sandbox::network::PLATFORM_API);
        let outside = env
            .iter()
            .find(|(key, _)| key == "GUREUM_API")
            .map(|(_, value)| value.clone());
        match &outside {
            Some(outside) => {
                for (_, value) in env.iter_mut().filter(|(_, value)| value == outside) {
                    value.clone_from(&platform);
                }
            }
            None => env.push(("GUREUM_API".into(), platform)),
        }
    }
    env
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "exited".to_string(),
    }
}

async fn read_lines(
    pipe: impl AsyncRead + Unpin,
    stream: LogStream,
    shared: Arc<Shared>,
    sink: crate::LogSink,
) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    while let Ok(available) = reader.fill_buf().await {
        if available.is_empty() {
            break;
        }
        let (take, complete) = match available.iter().position(|&byte| byte == b'\n') {
            Some(at) => (at, true),
            None => (available.len(), false),
        };
        let room = MAX_LINE_BYTES - line.len();
        let taken = take.min(room);
        line.extend_from_slice(&available[..taken]);
        let consumed = if complete && taken == take {
            take + 1
        } else {
            taken
        };
        reader.consume(consumed);
        if (complete && taken == take) || line.len() >= MAX_LINE_BYTES {
            emit(&mut line, stream, &shared, &sink).await;
        }
    }
    if !line.is_empty() {
        emit(&mut line, stream, &shared, &sink).await;
    }
}

async fn emit(line: &mut Vec<u8>, stream: LogStream, shared: &Shared, sink: &crate::LogSink) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    // awslambdaric separates the lines of one record (a traceback) with `\r`, so that
    // an error stays one log record, as on CloudWatch; shown as the lines they are.
    let message = String::from_utf8_lossy(line).replace('\r', "\n");
    line.clear();
    if limits::looks_like_out_of_memory(&message) {
        shared.oom_hint.store(true, Ordering::Release);
    }
    if *shared.init.borrow() == InitState::Starting {
        let mut kept = lock(&shared.init_output);
        if kept.len() == INIT_OUTPUT_LINES {
            kept.remove(0);
        }
        kept.push(message.clone());
    }
    let invocation_id = lock(&shared.log_target).clone();
    sink(ProcessLine {
        invocation_id,
        stream,
        ts_ms: gureum_model::now_ms(),
        message,
    })
    .await;
}
