//! The Runtime API (2018-06-01) one instance's process talks to: `next` long-polls for
//! an event, `response` / `error` answer it (buffered or streamed), `init/error`
//! reports a failed start. Each instance has its own listener and only its own
//! process group may use it (see `peer`). A buffered response is at most
//! [`MAX_RESPONSE_BYTES`] (6 MiB); a streamed one starts with the HTTP prelude and reports
//! a failure in band or in trailers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::apigw::{self, HTTP_INTEGRATION_CONTENT_TYPE, PRELUDE_SEPARATOR, ResponseHead};

/// Largest buffered response or error payload (Lambda's synchronous limit).
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Largest streamed-response prelude.
pub const MAX_PRELUDE_BYTES: usize = 64 * 1024;

const PREFIX: &str = "/2018-06-01/runtime";
const FUNCTION_ERROR_TYPE: &str = "lambda-runtime-function-error-type";
const FUNCTION_ERROR_BODY: &str = "lambda-runtime-function-error-body";
const RESPONSE_MODE: &str = "lambda-runtime-function-response-mode";

/// Error type of a boxed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One event handed to the process.
pub(crate) struct Dispatch {
    pub(crate) id: Arc<str>,
    pub(crate) payload: Bytes,
    pub(crate) deadline_ms: i64,
    pub(crate) function_arn: Arc<str>,
    /// X-Ray trace header value continuing the caller's trace, when the invoker has one.
    pub(crate) trace_id: Option<String>,
}

/// Where the process stands in its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InitState {
    Starting,
    Ready,
    Failed(String),
}

/// What the process answered.
pub(crate) enum RawReply {
    Buffered(Bytes),
    Streaming {
        head: Option<ResponseHead>,
        content_type: Option<HeaderValue>,
        body: StreamedBody,
        /// Fires when the stream ended, with its mid-stream error if there was one.
        done: oneshot::Receiver<Option<String>>,
    },
    Error {
        error_type: String,
        message: String,
    },
    TooLarge,
}

/// The invocation the process is working on.
pub(crate) struct Pending {
    pub(crate) id: Arc<str>,
    pub(crate) reply: oneshot::Sender<RawReply>,
}

/// State shared by an instance and its Runtime API server.
pub(crate) struct Shared {
    pub(crate) events: tokio::sync::Mutex<mpsc::Receiver<Dispatch>>,
    pub(crate) pending: Mutex<Option<Pending>>,
    pub(crate) init: watch::Sender<InitState>,
    /// The invocation that stdout/stderr lines are attributed to.
    pub(crate) log_target: Mutex<Arc<str>>,
    /// Set when output of the current invocation looks like an allocation failure.
    pub(crate) oom_hint: AtomicBool,
    /// Last lines printed before the process was ready, for init-failure messages.
    pub(crate) init_output: Mutex<Vec<String>>,
}

impl Shared {
    pub(crate) fn new(events: mpsc::Receiver<Dispatch>, first: Arc<str>) -> Self {
        Self {
            events: tokio::sync::Mutex::new(events),
            pending: Mutex::new(None),
            init: watch::Sender::new(InitState::Starting),
            log_target: Mutex::new(first),
            oom_hint: AtomicBool::new(false),
            init_output: Mutex::new(Vec::new()),
        }
    }
}

/// Serves the Runtime API on `listener` for the processes in group `pgid` until the
/// task is aborted.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, pgid: u32) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!(%error, "accepting a Runtime API connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            if !trusted(local, peer, pgid).await {
                tracing::warn!(%peer, "refused a Runtime API connection from outside the instance's process group");
                return;
            }
            serve_connection(stream, shared).await;
        });
    }
}

/// Serves the Runtime API on one connection already known to come from the instance
/// (in the sandbox: relayed through the instance's own socket).
pub(crate) async fn serve_connection<I>(io: I, shared: Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(route(&shared, request).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

async fn trusted(local: SocketAddr, peer: SocketAddr, pgid: u32) -> bool {
    tokio::task::spawn_blocking(move || crate::peer::belongs_to_group(local, peer, pgid))
        .await
        .unwrap_or(false)
}

type ApiBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn reply(status: StatusCode, body: serde_json::Value) -> Response<ApiBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response<ApiBody> {
    reply(
        status,
        json!({"errorType": error_type, "errorMessage": message}),
    )
}

fn accepted() -> Response<ApiBody> {
    reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
}

async fn route(shared: &Shared, request: Request<Incoming>) -> Response<ApiBody> {
    let path = request.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "unknown Runtime API path",
        );
    };
    match (request.method().clone(), rest) {
        (Method::GET, "/invocation/next") => next(shared).await,
        (Method::POST, "/init/error") => {
            let (error_type, message) = read_error(request).await;
            shared
                .init
                .send_replace(InitState::Failed(format!("{error_type}: {message}")));
            accepted()
        }
        (Method::POST, rest) => match rest
            .strip_prefix("/invocation/")
            .and_then(|rest| rest.rsplit_once('/'))
        {
            Some((id, "response")) => respond(shared, id, request).await,
            Some((id, "error")) => {
                let Some(pending) = take_pending(shared, id) else {
                    return unknown_id(id);
                };
                let (error_type, message) = read_error(request).await;
                let _ = pending.reply.send(RawReply::Error {
                    error_type,
                    message,
                });
                accepted()
            }
            _ => api_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "unknown Runtime API path",
            ),
        },
        _ => api_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed on this Runtime API path",
        ),
    }
}

async fn next(shared: &Shared) -> Response<ApiBody> {
    shared.init.send_if_modified(|state| {
        let starting = *state == InitState::Starting;
        if starting {
            *state = InitState::Ready;
        }
        starting
    });
    let mut events = shared.events.lock().await;
    let Some(event) = events.recv().await else {
        return api_error(
            StatusCode::GONE,
            "InstanceStopped",
            "this instance is shutting down",
        );
    };
    let mut response = Response::new(Full::new(event.payload).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(&event.id) {
        headers.insert("lambda-runtime-aws-request-id", id.clone());
        // X-Ray's format: Root=1-<8 hex epoch seconds>-<24 hex>. Without a trace from
        // the invoker, one is derived from the request id (Lambda always sends one).
        let seconds = event.deadline_ms / 1000;
        let trace = event.trace_id.clone().unwrap_or_else(|| {
            format!(
                "Root=1-{seconds:08x}-{:0>24.24};Parent={:0>16.16};Sampled=0",
                &event.id,
                &event.id[event.id.len().saturating_sub(16)..]
            )
        });
        if let Ok(trace) = HeaderValue::from_str(&trace) {
            headers.insert("lambda-runtime-trace-id", trace);
        }
    }
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from(event.deadline_ms),
    );
    if let Ok(arn) = HeaderValue::from_str(&event.function_arn) {
        headers.insert("lambda-runtime-invoked-function-arn", arn);
    }
    response
}

fn take_pending(shared: &Shared, id: &str) -> Option<Pending> {
    let mut pending = shared
        .pending
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if pending.as_ref().is_some_and(|p| &*p.id == id) {
        pending.take()
    } else {
        None
    }
}

fn unknown_id(id: &str) -> Response<ApiBody> {
    api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("invocation {id:?} is not the one this instance is running"),
    )
}

async fn read_error(request: Request<Incoming>) -> (String, String) {
    let header_type = request
        .headers()
        .get(FUNCTION_ERROR_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_limited(request.into_body(), MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let body_type = parsed
        .get("errorType")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let message = parsed
        .get("errorMessage")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let error_type = body_type
        .or(header_type)
        .unwrap_or_else(|| "Unhandled".to_string());
    (error_type, message)
}

async fn read_limited(mut body: Incoming, limit: usize) -> Option<Bytes> {
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            if buffer.len() + data.len() > limit {
                return None;
            }
            buffer.extend_from_slice(&data);
        }
    }
    Some(buffer.freeze())
}

async fn respond(shared: &Shared, id: &str, request: Request<Incoming>) -> Response<ApiBody> {
    let Some(pending) = take_pending(shared, id) else {
        return unknown_id(id);
    };
    let streaming = request
        .headers()
        .get(RESPONSE_MODE)
        .is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if !streaming {
        return match read_limited(request.into_body(), MAX_RESPONSE_BYTES).await {
            Some(payload) => {
                let _ = pending.reply.send(RawReply::Buffered(payload));
                accepted()
            }
            None => {
                let _ = pending.reply.send(RawReply::TooLarge);
                api_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Function.ResponseSizeTooLarge",
                    "response payload exceeds 6 MiB; stream larger responses",
                )
            }
        };
    }
    let content_type = request.headers().get(http::header::CONTENT_TYPE).cloned();
    let with_prelude = content_type
        .as_ref()
        .is_some_and(|value| value.as_bytes() == HTTP_INTEGRATION_CONTENT_TYPE.as_bytes());
    let mut body = request.into_body();
    let (sender, receiver) = mpsc::channel(16);
    let (done_sender, done) = oneshot::channel();
    let mut rest = Bytes::new();
    let head = if with_prelude {
        let mut prelude = BytesMut::new();
        loop {
            if let Some(at) = find(&prelude, &PRELUDE_SEPARATOR) {
                rest = prelude.split_off(at + PRELUDE_SEPARATOR.len()).freeze();
                prelude.truncate(at);
                break;
            }
            if prelude.len() > MAX_PRELUDE_BYTES {
                let _ = pending.reply.send(RawReply::Error {
                    error_type: "Runtime.InvalidStreamingResponse".into(),
                    message: "the streamed response's prelude is longer than 64 KiB or has no end"
                        .into(),
                });
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPrelude",
                    "prelude too long",
                );
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        prelude.extend_from_slice(&data);
                    }
                }
                _ => break,
            }
        }
        match apigw::read_prelude(&prelude) {
            Ok(head) => Some(head),
            Err(error) => {
                let _ = pending.reply.send(RawReply::Error {
                    error_type: "Runtime.InvalidStreamingResponse".into(),
                    message: error.to_string(),
                });
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPrelude",
                    &error.to_string(),
                );
            }
        }
    } else {
        None
    };
    if pending
        .reply
        .send(RawReply::Streaming {
            head,
            content_type: if with_prelude { None } else { content_type },
            body: StreamedBody::new(receiver),
            done,
        })
        .is_err()
    {
        return accepted();
    }
    if !rest.is_empty() {
        let _ = sender.send(Ok(Frame::data(rest))).await;
    }
    let mut stream_failure = None;
    while let Some(frame) = body.frame().await {
        let item = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => match in_band_error(&data) {
                    None => Ok(Frame::data(data)),
                    Some((at, error)) => {
                        if at > 0 {
                            let _ = sender.send(Ok(Frame::data(data.slice(..at)))).await;
                        }
                        Err(error)
                    }
                },
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => match trailers.get(FUNCTION_ERROR_TYPE) {
                        Some(error_type) => {
                            Err(stream_error(error_type, trailers.get(FUNCTION_ERROR_BODY)))
                        }
                        None => continue,
                    },
                    Err(_) => continue,
                },
            },
            Err(error) => Err(format!("the function's response stream broke: {error}").into()),
        };
        let failure = item.as_ref().err().map(ToString::to_string);
        // A caller that went away stops reading; keep draining so the process finishes.
        let _ = sender.send(item).await;
        if failure.is_some() {
            stream_failure = failure;
            break;
        }
    }
    drop(sender);
    let _ = done_sender.send(stream_failure);
    accepted()
}

fn stream_error(error_type: &HeaderValue, body: Option<&HeaderValue>) -> BoxError {
    stream_error_text(error_type.as_bytes(), body.map(HeaderValue::as_bytes))
}

fn stream_error_text(error_type: &[u8], body: Option<&[u8]>) -> BoxError {
    use base64::Engine as _;
    let decoded = body.and_then(|body| {
        base64::engine::general_purpose::STANDARD
            .decode(body.trim_ascii())
            .ok()
    });
    let detail = decoded
        .as_deref()
        .map(
            |bytes| match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(value) => value
                    .get("errorMessage")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| value.to_string()),
                Err(_) => String::from_utf8_lossy(bytes).into_owned(),
            },
        )
        .unwrap_or_default();
    format!(
        "the function failed mid-stream: {}: {detail}",
        String::from_utf8_lossy(error_type.trim_ascii())
    )
    .into()
}

/// Some runtime clients (the Rust one among them) send the error "trailers" of a
/// streamed response in-band, as the last body chunk:
/// `Lambda-Runtime-Function-Error-Type: T\r\nLambda-Runtime-Function-Error-Body: B64\r\n`.
/// Returns where that chunk starts and the error it carries.
fn in_band_error(data: &[u8]) -> Option<(usize, BoxError)> {
    const TYPE: &[u8] = b"Lambda-Runtime-Function-Error-Type: ";
    const BODY: &[u8] = b"Lambda-Runtime-Function-Error-Body: ";
    let at = find(data, TYPE)?;
    let rest = &data[at + TYPE.len()..];
    let type_end = find(rest, b"\r\n")?;
    let error_type = &rest[..type_end];
    let after = &rest[type_end + 2..];
    let body = after
        .strip_prefix(BODY)
        .map(|body| body.strip_suffix(b"\r\n").unwrap_or(body));
    if !(after.is_empty() || body.is_some()) {
        return None;
    }
    Some((at, stream_error_text(error_type, body)))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The body of a streamed response, fed by the process's `response` request.
pub struct StreamedBody {
    receiver: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    /// An error held back for one poll (see `poll_frame`).
    failed: Option<BoxError>,
}

impl StreamedBody {
    fn new(receiver: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>) -> Self {
        Self {
            receiver,
            failed: None,
        }
    }
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(error) = self.failed.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match self.receiver.poll_recv(cx) {
            // The server aborts the connection on a body error, dropping what it has not
            // written yet; one Pending first lets it flush the head and the chunks before,
            // so the caller sees the status and the partial body, then the cut.
            Poll::Ready(Some(Err(error))) => {
                self.failed = Some(error);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_band_stream_error_is_recognized() {
        let chunk = b"tail of the bodyLambda-Runtime-Function-Error-Type: Runtime.StreamError\r\nLambda-Runtime-Function-Error-Body: dXNlciBib2R5IHdyaXRlIGFib3J0ZWQ=\r\n";
        let (at, error) = in_band_error(chunk).expect("an error chunk");
        assert_eq!(&chunk[..at], b"tail of the body");
        assert_eq!(
            error.to_string(),
            "the function failed mid-stream: Runtime.StreamError: user body write aborted"
        );
        assert!(in_band_error(b"an ordinary chunk of text").is_none());
    }
}
