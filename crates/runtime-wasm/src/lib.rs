//! The only crate that knows wasmtime: it compiles `wasi:http/proxy` components once,
//! keeps their machine code in a cache keyed by content hash and engine, and runs
//! requests on instances that enforce the function's timeout, memory limit and
//! outbound-HTTP policy, capturing stdout/stderr per invocation, and give them
//! `wasi:keyvalue` on a pluggable [`KeyValueBackend`].

mod engine;
mod host;
mod instance;
mod keyvalue;
mod logs;
mod outbound;

pub use engine::{
    CompiledComponent, DEFAULT_POOL_INSTANCES, EPOCH_TICK, LoadSource, WasmEngine, WasmEngineConfig,
};
pub use instance::{Completion, Failure, Finished, InstanceSettings, Invocation, WasmInstance};
pub use keyvalue::{
    DEFAULT_BUCKET, FUNCTION_NAME_ENV, KeyPage, KeyValueBackend, MAX_BUCKET_NAME, MAX_CURSORS,
    MemoryKeyValue, NOT_CONFIGURED, bucket_name,
};
pub use logs::CapturedLine;
pub use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Errors of preparing or instantiating a component.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The bytes are not WebAssembly at all.
    #[error(
        "the artifact is not a WebAssembly file (it does not start with \\0asm); build the function for the wasm32-wasip2 target"
    )]
    NotWasm,
    /// A core module where a component is required.
    #[error(
        "the artifact is a core WebAssembly module, not a component; build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`) so it exports wasi:http/incoming-handler"
    )]
    CoreModule,
    /// The component failed to compile.
    #[error("the component is invalid: {0}")]
    Invalid(String),
    /// The component does not export the HTTP handler.
    #[error(
        "the component does not export wasi:http/incoming-handler@0.2.x (its exports: {exports}); build it as a wasi:http/proxy component, e.g. with wstd's #[wstd::http_server]"
    )]
    NoHandler {
        /// What it exports instead.
        exports: String,
    },
    /// The component imports something the platform does not provide.
    #[error(
        "the component needs an import gureum does not provide: {0}; functions may use wasi:http, wasi:cli, wasi:clocks, wasi:random, wasi:io, wasi:filesystem, wasi:config and wasi:keyvalue@0.2.0-draft (store, atomics, batch)"
    )]
    UnsatisfiedImport(String),
    /// Reading or writing the compiled-code cache failed.
    #[error("compiled-code cache {path}: {message}")]
    Cache {
        /// The cache file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Creating an instance failed (e.g. the instance pool is exhausted).
    #[error("instantiating the component failed: {0}")]
    Instantiate(String),
    /// Engine set-up failed.
    #[error("wasm engine set-up failed: {0}")]
    Engine(String),
}
