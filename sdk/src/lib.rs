//! # gureum-sdk
//!
//! The guest SDK for [gureum](https://github.com/gureum) wasm functions: a function is a
//! `wasi:http/incoming-handler` component (WASI 0.2, target `wasm32-wasip2`), and this
//! crate is a thin layer over the standard interfaces plus typed clients of the
//! platform's services.
//!
//! | module | what | talks to |
//! |--------|------|----------|
//! | [`export_handler!`], [`http`] | the entry point, request/response types and small helpers | `wasi:http` (through [`wstd`](https://docs.rs/wstd)) |
//! | [`config`] | typed settings from the manifest's `[env]` | environment variables (`wasi:cli/environment`) |
//! | [`kv`] (feature `kv`, on by default) | buckets of bytes, atomic counters | `wasi:keyvalue@0.2.0-draft` |
//! | [`documents`] | JSON documents in collections | `$GUREUM_API/data/v1` |
//! | [`websocket`] | events of `/ws/NAME` connections, sending, channels | `$GUREUM_API/@connections`, `/channels` |
//! | [`invoke`] | calling other functions, now or queued | `$GUREUM_API/fn/NAME` |
//!
//! A component that uses only [`export_handler!`], [`http`] and [`config`] imports nothing
//! beyond `wasi:http`, `wasi:cli`, `wasi:io`, `wasi:clocks` and `wasi:random`, so it also
//! runs on any other `wasi:http` host (`wasmtime serve`, Spin, …). [`kv`] adds the
//! `wasi:keyvalue` imports only when a [`kv::Bucket`] is really used; [`documents`],
//! [`websocket`] and [`invoke`] are plain outgoing HTTP to gureum's platform API, found
//! through the environment variables `GUREUM_API` and `GUREUM_FUNCTION_TOKEN` that gureum
//! gives every function.
//!
//! ```no_run
//! use gureum_sdk::http::{Body, Error, Request, Response, StatusCode};
//!
//! async fn handle(request: Request<Body>) -> Result<Response<Body>, Error> {
//!     let name = gureum_sdk::http::query_param(request.uri(), "name");
//!     let name = name.as_deref().unwrap_or("world");
//!     Ok(gureum_sdk::http::text(StatusCode::OK, format!("Hello, {name}!\n")))
//! }
//!
//! gureum_sdk::export_handler!(handle);
//! ```
//!
//! ## Features
//!
//! - `kv` (default): the [`kv`] module and its `wasi:keyvalue` bindings. Turning it off
//!   (`default-features = false`) only saves compile time: without calls into [`kv`] a
//!   component imports no `wasi:keyvalue` either way.
//!
//! Build with `cargo build --release --target wasm32-wasip2`. The crate also compiles for
//! the host, so `cargo test` of a function's pure logic works; calls into WASI (outgoing
//! HTTP, key-value) exist only inside a component and panic on the host.

mod api;
pub mod config;
pub mod documents;
mod error;
pub mod http;
pub mod invoke;
#[cfg(feature = "kv")]
pub mod kv;
pub mod websocket;

pub use error::{Error, KeyValueError};
/// The `serde_json` crate the SDK uses (`Value`, `json!`), so functions need not depend
/// on it themselves.
///
/// ```
/// use gureum_sdk::serde_json::{json, Value};
///
/// let value: Value = json!({"ok": true});
/// assert_eq!(value["ok"], true);
/// ```
pub use serde_json;

/// Runs a future to completion on wstd's single-threaded WASI event loop.
///
/// [`export_handler!`] already runs the handler on it; call this yourself only in tests
/// (on the host, a future that does no WASI I/O completes fine — building and reading
/// in-memory requests and responses is pure) or in a `wasi:cli` command.
///
/// ```
/// use gureum_sdk::http::{Body, Request, Response, StatusCode};
///
/// async fn handle(_request: Request<Body>) -> Result<Response<Body>, gureum_sdk::http::Error> {
///     Ok(gureum_sdk::http::text(StatusCode::OK, "hi\n"))
/// }
///
/// let request = Request::get("/hello").body(Body::empty()).unwrap();
/// let mut response = gureum_sdk::block_on(handle(request)).unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
/// let body = gureum_sdk::block_on(response.body_mut().str_contents()).unwrap().to_owned();
/// assert_eq!(body, "hi\n");
/// ```
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    wstd::runtime::block_on(future)
}

/// Exports an async function as the component's `wasi:http/incoming-handler`.
///
/// The function takes the [`http::Request`] and returns a [`http::Response`]:
///
/// ```text
/// async fn NAME(request: Request<Body>) -> Result<Response<B>, E>
/// ```
///
/// where `B: Into<Body>` (a `Body`, `String`, `Vec<u8>`, `&'static str`, …) and
/// `E: Into<gureum_sdk::http::Error>` ([`http::Error`] itself, [`Error`], or any
/// `std::error::Error + Send + Sync + 'static`). A closure returning a future works too.
///
/// Every request runs the function once, on the instance's event loop. `Ok` sends the
/// response (a streamed body keeps streaming after the head is sent); `Err` fails the
/// request, which gureum answers with a 502 `function_error` and logs with the error's
/// text. A panic traps the instance (also a 502; the instance is discarded).
///
/// The macro also defines `fn main`, so the handler can live in `src/main.rs` of a binary
/// crate. Built for the host, `main` only explains that the program is a component; the
/// handler stays an ordinary function that tests can call (see [`block_on`]).
///
/// ```no_run
/// use gureum_sdk::http::{Body, Error, Request, Response, StatusCode};
///
/// async fn handle(request: Request<Body>) -> Result<Response<Body>, Error> {
///     let path = request.uri().path().to_owned();
///     Ok(gureum_sdk::http::text(StatusCode::OK, format!("you asked for {path}\n")))
/// }
///
/// gureum_sdk::export_handler!(handle);
/// ```
#[macro_export]
macro_rules! export_handler {
    ($handler:expr $(,)?) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct GureumHandler;

            impl $crate::__private::wasip2::exports::http::incoming_handler::Guest for GureumHandler {
                fn handle(
                    request: $crate::__private::wasip2::http::types::IncomingRequest,
                    response_out: $crate::__private::wasip2::http::types::ResponseOutparam,
                ) {
                    $crate::__private::serve(request, response_out, $handler)
                }
            }

            $crate::__private::wasip2::http::proxy::export!(
                GureumHandler with_types_in $crate::__private::wasip2
            );
        };

        // On the host the handler is not exported; naming it here keeps it "used".
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = $handler;
        };

        /// Not the entry point of a `wasi:http` component (hosts call the exported
        /// handler); it exists because a binary crate needs a `main`.
        #[allow(dead_code)]
        fn main() {
            $crate::__private::not_a_command(env!("CARGO_PKG_NAME"))
        }
    };
}

/// What [`export_handler!`] expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    pub use wstd::__internal::wasip2;
    use wstd::http::{Body, Error, Request, Response};

    /// Runs one request through `handler` and sends its answer.
    pub fn serve<F, Fut, B, E>(
        request: wasip2::http::types::IncomingRequest,
        response_out: wasip2::http::types::ResponseOutparam,
        handler: F,
    ) where
        F: FnOnce(Request<Body>) -> Fut,
        Fut: Future<Output = Result<Response<B>, E>>,
        B: Into<Body>,
        E: Into<Error>,
    {
        let responder = wstd::http::server::Responder::new(response_out);
        wstd::runtime::block_on(async move {
            let request = match wstd::http::request::try_from_incoming(request) {
                Ok(request) => request,
                Err(error) => return responder.fail(error),
            };
            match handler(request).await {
                Ok(response) => {
                    // The head is already out when the body fails (e.g. the client went
                    // away mid-stream): nothing can be answered any more, only logged.
                    if let Err(error) = responder.respond(response).await {
                        eprintln!("sending the response body failed: {error:#}");
                    }
                }
                Err(error) => responder.fail(error.into()),
            }
        })
    }

    /// The `main` of a handler component, when something runs it as a command.
    pub fn not_a_command(package: &str) -> ! {
        eprintln!(
            "{package} is a wasi:http component, not a program: build it with \
             `cargo build --release --target wasm32-wasip2` and run it with gureum \
             (`gureum dev`) or another wasi:http host"
        );
        std::process::exit(2)
    }
}
