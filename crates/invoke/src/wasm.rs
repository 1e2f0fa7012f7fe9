//! The wasm path of a request: a lease from the version's instance pool, the request run
//! on it, the instance returned (reused) or dropped. The lambda path is `lambda.rs`.
//!
//! When the accounting runs depends on when the handler finished. A handler that finished
//! before its response head was handed over (`Finished::Now`, the common case) is
//! accounted right where its response body ends, with no task and no wake-up of another
//! thread (or at once with metering off). One still running (`Finished::Later`:
//! streaming, or waiting on I/O) keeps its instance leased until it returns and is
//! accounted in a task the invoker tracks; its response's end is held until the instance
//! is back in the pool (`body::HoldEnd`).
//!
//! `x-gureum-cold-start` is 1 when the request loaded the version's code or created an
//! instance that will be reused. With `reuse_instances = false` every request gets a
//! fresh instance, which counts as cold only when the code had to be loaded.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gureum_runtime_wasm::Finished;
use http_body_util::BodyExt as _;

use crate::accounting::{Call, completion_parts, failure_error, release_to, status_of};
use crate::{Answer, BoxError, InvokeError, LoadedVersion, Runner, body};

impl crate::Invoker {
    pub(crate) async fn invoke_wasm<B>(
        &self,
        loaded: &Arc<LoadedVersion>,
        mut call: Call,
        request: http::Request<B>,
    ) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let Runner::Wasm {
            component,
            pool,
            settings,
        } = &loaded.runner
        else {
            unreachable!("called for wasm versions only")
        };
        let mut lease = match pool.acquire().await {
            Ok(lease) => lease,
            Err(throttled) => return self.refuse(loaded, call, throttled),
        };
        let mut request = request;
        call.propagate_trace(request.headers_mut());
        let timeout = Duration::from_millis(loaded.spec.limits.timeout_ms);
        let instance = match lease.instance.take() {
            Some(instance) => instance,
            None => {
                call.cold_start |= loaded.spec.reuse_instances;
                match self
                    .parts
                    .engine
                    .instantiate(component, settings, timeout)
                    .await
                {
                    Ok(instance) => instance,
                    Err(error) => {
                        let error = InvokeError::Unavailable(error.to_string());
                        return self.failed_to_start(loaded, call, pool, lease, error);
                    }
                }
            }
        };
        if call.cold_start {
            loaded.metrics.cold_starts.inc();
        }

        let (release, released) =
            release_to(loaded.clone(), lease, |loaded| match &loaded.runner {
                Runner::Wasm { pool, .. } => pool,
                Runner::Lambda { .. } => unreachable!("a wasm lease"),
            });
        let invocation = instance.handle(request, timeout, release).await;
        let now_done = matches!(invocation.completion, Finished::Now(_));
        let response = invocation
            .response
            .map(|response| {
                response.map(|body| {
                    let body = body.map_err(BoxError::from);
                    if now_done {
                        // The instance is back in its pool already: nothing to hold.
                        body.boxed_unsync()
                    } else {
                        body::HoldEnd::new(body, released).boxed_unsync()
                    }
                })
            })
            .map_err(|failure| failure_error(&failure));
        let status = status_of(&response);
        let finish = self.finisher(loaded, &mut call, status);
        match invocation.completion {
            // The handler is done: account when the response body is (no task, no
            // wake-up of another thread), or now with metering off.
            Finished::Now(done) => {
                let duration = call.started.elapsed();
                let tracker = self.accounting.clone();
                let account = move || {
                    let (outcome, lines, failure) = completion_parts(done);
                    finish.run_now(outcome, duration, lines, failure, &tracker);
                };
                if self.parts.metering {
                    call.at_body_end = Some(Box::new(account));
                } else {
                    account();
                }
            }
            // The instance stays leased until the handler returns (its body may still be
            // streaming); accounting happens then, off the request's path.
            Finished::Later(completion) => {
                self.accounting.spawn(async move {
                    let (outcome, lines, failure) = completion_parts(completion.await);
                    finish.run(outcome, lines, failure).await;
                });
            }
        }
        call.answer(loaded, response)
    }
}
