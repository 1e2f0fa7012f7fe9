//! The invoke path of `runtime = "lambda"` versions: the request is read whole and
//! turned into an API Gateway v2.0 event, a warm process is leased (or started: a cold
//! start), and its answer is read back as an HTTP response. Process output reaches the
//! logs line by line as it is printed, attributed to the running invocation.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gureum_model::{InvocationOutcome, LogLine, VersionNumber};
use gureum_runtime_lambda::apigw::{self, EventContext, ResponseHead};
use gureum_runtime_lambda::{Failure, LogSink, ProcessLine, Reply};
use gureum_telemetry::Telemetry;
use http_body_util::{BodyExt as _, Full};

use crate::{
    BoxError, Call, InvokeError, Invoker, LoadedVersion, Runner, body, release_to, status_of,
};

impl Invoker {
    pub(crate) async fn invoke_lambda<B>(
        &self,
        loaded: &Arc<LoadedVersion>,
        mut call: Call,
        request: http::Request<B>,
        client: Option<IpAddr>,
    ) -> crate::Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let Runner::Lambda { pool, settings } = &loaded.runner else {
            unreachable!("called for lambda versions only")
        };
        let (parts, body) = request.into_parts();
        // The whole body goes into the event, so it is read before a process is taken.
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                return call.answer(
                    loaded,
                    Err(InvokeError::Unavailable(format!(
                        "reading the request body failed: {error}"
                    ))),
                );
            }
        };
        let raw = parts
            .extensions
            .get::<crate::RawEvent>()
            .map(|raw| raw.0.clone());
        let event = match &raw {
            Some(event) => event.to_vec(),
            None => apigw::request_event(
                &parts,
                &body,
                &EventContext {
                    request_id: &call.invocation_id,
                    source_ip: client,
                    time_ms: call.started_at_ms,
                },
            ),
        };
        let mut lease = match pool.acquire().await {
            Ok(lease) => lease,
            Err(throttled) => return self.refuse(loaded, call, throttled),
        };
        // A process that died while idle is replaced, not handed an event.
        let warm = lease.instance.take().filter(|instance| instance.is_alive());
        let instance = match warm {
            Some(instance) => instance,
            None => {
                call.cold_start = true;
                loaded.metrics.cold_starts.inc();
                match self.parts.lambda.start(settings, &call.invocation_id).await {
                    Ok(instance) => instance,
                    Err(failure) => {
                        let error = lambda_error(&failure);
                        return self.failed_to_start(loaded, call, pool, lease, error);
                    }
                }
            }
        };

        let timeout = Duration::from_millis(loaded.spec.limits.timeout_ms);
        let (release, released) =
            release_to(loaded.clone(), lease, |loaded| match &loaded.runner {
                Runner::Lambda { pool, .. } => pool,
                Runner::Wasm { .. } => unreachable!("a lambda lease"),
            });
        let trace_id = call.span.as_ref().map(|span| span.xray_trace_id());
        let invocation = instance
            .invoke(
                &call.invocation_id,
                Bytes::from(event),
                trace_id,
                timeout,
                release,
            )
            .await;
        let response = match invocation.reply {
            // A handler of a raw event that returns nothing (`None`) answers 200, no body.
            Ok(Reply::Buffered(payload)) if raw.is_some() && is_null(&payload) => Ok(respond(
                ResponseHead {
                    status: http::StatusCode::OK,
                    headers: http::HeaderMap::new(),
                },
                body::HoldEnd::new(Full::new(Bytes::new()).map_err(BoxError::from), released)
                    .boxed_unsync(),
            )),
            Ok(Reply::Buffered(payload)) => match apigw::read_response(&payload) {
                Ok((head, bytes)) => Ok(respond(
                    head,
                    body::HoldEnd::new(Full::new(bytes).map_err(BoxError::from), released)
                        .boxed_unsync(),
                )),
                Err(error) => Err(InvokeError::FunctionError(error.to_string())),
            },
            Ok(Reply::Streaming {
                head,
                content_type,
                body: stream,
            }) => {
                let head = head.unwrap_or_else(|| {
                    let mut headers = http::HeaderMap::new();
                    if let Some(content_type) = content_type {
                        headers.insert(http::header::CONTENT_TYPE, content_type);
                    }
                    ResponseHead {
                        status: http::StatusCode::OK,
                        headers,
                    }
                });
                Ok(respond(
                    head,
                    body::HoldEnd::new(stream, released).boxed_unsync(),
                ))
            }
            Err(failure) => Err(lambda_error(&failure)),
        };
        let status = status_of(&response);
        let early_failure = response.as_ref().err().map(ToString::to_string);
        let completion = invocation.completion;
        let finish = self.finisher(loaded, &mut call, status);
        self.accounting.spawn(async move {
            let late = completion.await;
            let outcome = match (&late, &early_failure) {
                (Some(Failure::Timeout { .. }), _) => InvocationOutcome::Timeout,
                (Some(_), _) | (None, Some(_)) => InvocationOutcome::Error,
                (None, None) => InvocationOutcome::Ok,
            };
            let failure =
                early_failure.or_else(|| late.map(|failure| lambda_error(&failure).to_string()));
            finish.run(outcome, std::iter::empty(), failure).await;
        });
        call.answer(loaded, response)
    }

    /// The unpacked code of a lambda package, unpacking it from the store on first use.
    pub(crate) async fn lambda_code(&self, hash: &str) -> Result<std::path::PathBuf, InvokeError> {
        let runtime = self.parts.lambda.clone();
        let bytes = self
            .stored_artifact_unless(runtime.code_dir(hash).is_dir(), hash)
            .await?;
        let hash = hash.to_string();
        tokio::task::spawn_blocking(move || runtime.ensure_code(&hash, || bytes))
            .await
            .map_err(|error| InvokeError::Unavailable(error.to_string()))?
            .map_err(|error| InvokeError::Unavailable(error.to_string()))
    }
}

fn respond(head: ResponseHead, body: crate::ResponseBody) -> http::Response<crate::ResponseBody> {
    let mut response = http::Response::new(body);
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    response
}

/// The invoke error a process failure is answered with.
fn lambda_error(failure: &Failure) -> InvokeError {
    match failure {
        Failure::Timeout { timeout_ms } => InvokeError::Timeout {
            timeout_ms: *timeout_ms,
        },
        Failure::MemoryLimit { memory_mb } => InvokeError::MemoryLimit {
            memory_mb: *memory_mb,
        },
        other => InvokeError::FunctionError(other.to_string()),
    }
}

/// Where a version's process output goes: straight to telemetry, one line at a time.
pub(crate) fn log_sink(telemetry: &Telemetry, function: &str, version: VersionNumber) -> LogSink {
    let telemetry = telemetry.clone();
    let function: Arc<str> = function.into();
    Arc::new(move |line: ProcessLine| {
        let telemetry = telemetry.clone();
        let function = function.to_string();
        Box::pin(async move {
            telemetry
                .log(LogLine {
                    seq: 0,
                    invocation_id: line.invocation_id.to_string(),
                    function,
                    version,
                    ts_ms: line.ts_ms,
                    stream: line.stream,
                    message: line.message,
                })
                .await;
        })
    })
}

/// An empty or `null` payload.
fn is_null(payload: &[u8]) -> bool {
    let text = payload.trim_ascii();
    text.is_empty() || text == b"null"
}
