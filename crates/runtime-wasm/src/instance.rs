//! One component instance and the run of one request on it.
//!
//! A request is bounded twice: the epoch deadline (each engine tick makes a spinning guest
//! yield, and past the deadline the tick traps) and a tokio timeout around the call. The
//! response comes back through wasi:http's response outparam as soon as the guest sets its
//! head, and its body streams while the guest still runs. The guest runs in the request's
//! own task until it finishes or sets its head; only a guest still running then
//! (streaming, or waiting on I/O) moves to a task of its own: [`Finished::Now`] versus
//! [`Finished::Later`]. An instance that failed in any way is never reused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Body;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::WasmError;
use crate::engine::{CompiledComponent, WasmEngine};
use crate::host::{HostState, MemoryLimiter, OutboundPolicy};
use crate::keyvalue::KeyValueCtx;
use crate::logs::{CapturedLine, LogCapture};
use gureum_model::LogStream;

/// Why an invocation produced no (complete) response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The function ran past its timeout.
    Timeout {
        /// The limit, in milliseconds.
        timeout_ms: u64,
    },
    /// The function tried to grow its memory past the limit.
    MemoryLimit {
        /// The limit, in MiB.
        memory_mb: u32,
    },
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access...).
    Trap(String),
    /// The handler returned without setting a response.
    NoResponse,
    /// The guest answered with a wasi:http error code instead of a response.
    GuestError(String),
}

/// Settings of a new instance.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    /// Environment and wasi:config values. Its first `GUREUM_FUNCTION_NAME` is the
    /// function's name, the scope of its `wasi:keyvalue` buckets.
    pub env: Vec<(String, String)>,
    /// Memory limit in MiB.
    pub memory_mb: u32,
    /// Outbound HTTP allow-list.
    pub allowed_outbound_hosts: Arc<Vec<String>>,
    /// Whether allowed names may resolve to private addresses
    /// (`gureum up --outbound-private`).
    pub outbound_private: gureum_manifest::PrivateDestinations,
}

/// A live component instance; it serves one request at a time.
pub struct WasmInstance {
    store: Store<HostState>,
    proxy: Proxy,
    capture: LogCapture,
    memory_mb: u32,
}

/// The answer to one request: the response as soon as the guest sets it (its body
/// streams while the guest still runs), and the completion of the guest's handler.
pub struct Invocation {
    /// The response, or why there is none.
    pub response: Result<http::Response<HyperOutgoingBody>, Failure>,
    /// How the handler ended (after the instance was released): already known when it
    /// finished before its response was handed over, else a future of it.
    pub completion: Finished,
}

/// The end of the guest's handler, now or later.
pub enum Finished {
    /// It returned before the response was handed over (no task was spawned for it).
    Now(Completion),
    /// It still runs in a task of its own (a streaming body, or waiting on I/O).
    Later(std::pin::Pin<Box<dyn Future<Output = Completion> + Send>>),
}

impl Finished {
    /// Waits for the end, whichever it is.
    pub async fn wait(self) -> Completion {
        match self {
            Finished::Now(done) => done,
            Finished::Later(future) => future.await,
        }
    }
}

/// How the guest's handler ended.
pub struct Completion {
    /// Why it failed, if it did (also after a response was sent, e.g. mid-body).
    pub failure: Option<Failure>,
    /// The stdout/stderr lines written during the invocation.
    pub lines: Vec<CapturedLine>,
}

impl WasmEngine {
    /// Creates an instance of `component` with its own memory limit, environment and
    /// outbound policy.
    pub async fn instantiate(
        &self,
        component: &CompiledComponent,
        settings: &InstanceSettings,
        timeout: Duration,
    ) -> Result<WasmInstance, WasmError> {
        let capture = LogCapture::default();
        let wasi = WasiCtx::builder()
            .envs(&settings.env)
            .stdout(capture.pipe(LogStream::Stdout))
            .stderr(capture.pipe(LogStream::Stderr))
            .build();
        let state = HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            config: WasiConfigVariables::from_iter(settings.env.iter().cloned()),
            limiter: MemoryLimiter {
                limit_bytes: settings.memory_mb as usize * 1024 * 1024,
                hit: false,
            },
            outbound: OutboundPolicy {
                allowed: settings.allowed_outbound_hosts.clone(),
                private: settings.outbound_private,
                capture: capture.clone(),
            },
            key_value: KeyValueCtx::new(self.key_value.clone(), &settings.env),
            deadline: Instant::now() + timeout,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // On every epoch tick the guest yields to the executor: a guest that spins (a
        // CPU loop, or a busy poll loop) must not starve tasks queued on its worker
        // thread, such as the connection task that drains its own response body. Past
        // the invocation's deadline the tick traps instead.
        store.epoch_deadline_callback(|context| {
            if Instant::now() >= context.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        let proxy = component
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| WasmError::Instantiate(format!("{e:#}")))?;
        Ok(WasmInstance {
            store,
            proxy,
            capture,
            memory_mb: settings.memory_mb,
        })
    }
}

impl WasmInstance {
    /// Runs one request with a wall-clock `timeout` covering the whole handler,
    /// including a streamed response body.
    ///
    /// `release` receives the instance (or `None` when it must not serve again) the moment
    /// the handler returns, on the task that ran it: the caller's pool gets it back
    /// before anything else is scheduled.
    pub async fn handle<B>(
        mut self,
        request: http::Request<B>,
        timeout: Duration,
        release: impl FnOnce(Option<WasmInstance>) + Send + 'static,
    ) -> Invocation
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        use http_body_util::BodyExt;

        let request = request.map(|body| {
            body.map_err(|error| wasmtime_wasi_http::Error::InternalError(Some(error.to_string())))
        });
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = self
            .store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .and_then(|request| {
                let out = self.store.data_mut().http().new_response_outparam(sender)?;
                Ok((request, out))
            });
        let (request, out) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                let failure = Failure::Trap(format!("{error:#}"));
                let lines = self.capture.take();
                release(None);
                let done = Completion {
                    failure: None,
                    lines,
                };
                return Invocation::failed(failure, done);
            }
        };
        self.store.data_mut().limiter.hit = false;
        self.store.data_mut().deadline = Instant::now() + timeout;
        self.store.set_epoch_deadline(1);
        let timeout_ms = timeout.as_millis() as u64;
        let mut call = Box::pin(async move {
            let call =
                self.proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut self.store, request, out);
            let result = tokio::time::timeout(timeout, call).await;
            let lines = self.capture.take();
            let failure = match result {
                Ok(Ok(())) => None,
                Err(_elapsed) => Some(Failure::Timeout { timeout_ms }),
                Ok(Err(error)) => Some(classify_trap(
                    &error,
                    self.store.data().limiter.hit,
                    self.memory_mb,
                    timeout_ms,
                )),
            };
            // An instance that failed in any way may hold broken state: never reuse it.
            release(failure.is_none().then_some(self));
            Completion { failure, lines }
        });
        let mut receiver = receiver;
        // The guest runs in this task first: a handler that answers and finishes
        // without waiting (the common case: its body fits the body channel) costs no
        // task spawn and no wake-up of another thread. Only when it is still running
        // once its response head is set (streaming, or waiting on I/O) does the rest of
        // it move to a task of its own, so the response can be returned meanwhile.
        let first = tokio::select! {
            biased;
            done = &mut call => First::Done(done),
            set = &mut receiver => First::Set(set),
        };
        let (set, completion) = match first {
            First::Done(done) => {
                let set = match receiver.try_recv() {
                    Ok(set) => set,
                    // Never set: the handler's outcome says why.
                    Err(_) => {
                        let failure = done.failure.clone().unwrap_or(Failure::NoResponse);
                        return Invocation::failed(failure, done);
                    }
                };
                (set, Finished::Now(done))
            }
            First::Set(set) => {
                let task = tokio::spawn(call);
                let mut completion = Box::pin(async move {
                    task.await.unwrap_or_else(|join| Completion {
                        failure: Some(Failure::Trap(join.to_string())),
                        lines: Vec::new(),
                    })
                });
                let set = match set {
                    Ok(set) => set,
                    // The outparam was dropped unset while the handler still runs:
                    // its outcome says why.
                    Err(_) => {
                        let done = (&mut completion).await;
                        let failure = done.failure.clone().unwrap_or(Failure::NoResponse);
                        return Invocation::failed(failure, done);
                    }
                };
                (set, Finished::Later(completion))
            }
        };
        let response = match set {
            Ok(response) => Ok(response),
            Err(code) => Err(Failure::GuestError(format!("{code:?}"))),
        };
        Invocation {
            response,
            completion,
        }
    }
}

/// What happened first when the guest started: it finished, or it set its response.
enum First<R> {
    Done(Completion),
    Set(R),
}

impl Invocation {
    fn failed(failure: Failure, mut done: Completion) -> Self {
        done.failure = Some(failure.clone());
        Invocation {
            response: Err(failure),
            completion: Finished::Now(done),
        }
    }
}

fn classify_trap(
    error: &wasmtime::Error,
    memory_hit: bool,
    memory_mb: u32,
    timeout_ms: u64,
) -> Failure {
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>()
        && *trap == wasmtime::Trap::Interrupt
    {
        return Failure::Timeout { timeout_ms };
    }
    if memory_hit {
        return Failure::MemoryLimit { memory_mb };
    }
    Failure::Trap(format!("{error:#}"))
}
