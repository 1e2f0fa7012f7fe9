//! A small in-process OTLP/HTTP trace receiver for tests (feature `testing`): it listens on
//! `127.0.0.1:0`, accepts `POST /v1/traces` with `application/x-protobuf` bodies, decodes
//! them with the OTLP protobuf types and keeps the spans for assertions.
//!
//! ```no_run
//! # async fn demo() {
//! use gureum_tracing::{Tracer, testing::OtlpReceiver};
//! use std::time::Duration;
//!
//! let receiver = OtlpReceiver::start().await.unwrap();
//! let tracer = Tracer::otlp(&receiver.url).unwrap();
//! tracer.deploy("hello", Some(1), true, None, std::time::SystemTime::now());
//! tracer.shutdown().await;
//! let spans = receiver.wait_for(1, Duration::from_secs(5)).await;
//! assert_eq!(spans[0].name, "deploy hello");
//! # }
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode as SpanStatus};
use prost::Message as _;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One span as the receiver got it, ids in lowercase hex and attribute values as strings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// 32 hex digits.
    pub trace_id_hex: String,
    /// 16 hex digits.
    pub span_id_hex: String,
    /// 16 hex digits, or empty for a root span.
    pub parent_span_id_hex: String,
    /// The span name.
    pub name: String,
    /// `"server"`, `"internal"`, `"client"`, `"producer"`, `"consumer"` or `"unspecified"`.
    pub kind: String,
    /// `"unset"`, `"ok"` or `"error"`.
    pub status: String,
    /// The status description (empty unless set).
    pub status_message: String,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// Span attributes; strings as they are, numbers in decimal, booleans as `true`/`false`.
    pub attributes: Vec<(String, String)>,
    /// The attributes of the resource the span came with (`service.name`, …).
    pub resource: Vec<(String, String)>,
    /// The instrumentation scope name.
    pub scope: String,
}

impl ReceivedSpan {
    /// The value of span attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&str> {
        find(&self.attributes, key)
    }

    /// The value of resource attribute `key`, if present.
    pub fn resource_attr(&self, key: &str) -> Option<&str> {
        find(&self.resource, key)
    }
}

fn find<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn value_string(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex(b),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| value_string(Some(v))).collect();
            format!("[{}]", items.join(","))
        }
        Some(other) => format!("{other:?}"),
    }
}

fn pairs(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), value_string(kv.value.as_ref())))
        .collect()
}

fn received_spans(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| pairs(&r.attributes))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for span in scope_spans.spans {
                let kind = match span.kind() {
                    SpanKind::Unspecified => "unspecified",
                    SpanKind::Internal => "internal",
                    SpanKind::Server => "server",
                    SpanKind::Client => "client",
                    SpanKind::Producer => "producer",
                    SpanKind::Consumer => "consumer",
                };
                let (status, status_message) = match &span.status {
                    None => ("unset", String::new()),
                    Some(s) => (
                        match s.code() {
                            SpanStatus::Unset => "unset",
                            SpanStatus::Ok => "ok",
                            SpanStatus::Error => "error",
                        },
                        s.message.clone(),
                    ),
                };
                out.push(ReceivedSpan {
                    trace_id_hex: hex(&span.trace_id),
                    span_id_hex: hex(&span.span_id),
                    parent_span_id_hex: hex(&span.parent_span_id),
                    name: span.name.clone(),
                    kind: kind.to_owned(),
                    status: status.to_owned(),
                    status_message,
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    attributes: pairs(&span.attributes),
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

/// State shared with the server task.
#[derive(Default)]
struct Shared {
    spans: Mutex<Vec<ReceivedSpan>>,
    arrived: Notify,
    requests: AtomicUsize,
    rejected: AtomicUsize,
}

impl Shared {
    fn spans(&self) -> MutexGuard<'_, Vec<ReceivedSpan>> {
        self.spans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn export_traces(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/x-protobuf" || headers.contains_key(header::CONTENT_ENCODING) {
        shared.rejected.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    shared.spans().extend(received_spans(request));
    shared.arrived.notify_waiters();
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// An OTLP/HTTP trace receiver on `127.0.0.1`, stopped when dropped.
pub struct OtlpReceiver {
    /// The base URL to give [`crate::Tracer::otlp`], like `http://127.0.0.1:40123`.
    pub url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("url", &self.url)
            .field("spans", &self.shared.spans().len())
            .finish()
    }
}

impl OtlpReceiver {
    /// Binds `127.0.0.1:0` and serves `POST /v1/traces` on the current tokio runtime.
    pub async fn start() -> std::io::Result<OtlpReceiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .route("/v1/traces", post(export_traces))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(OtlpReceiver {
            url,
            shared,
            server,
        })
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.shared.spans().clone()
    }

    /// Waits until at least `n` spans have arrived, or `timeout` has passed, and returns
    /// the spans received by then (check the length: fewer than `n` means a timeout).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let mut arrived = std::pin::pin!(arrived);
            // Register before looking, so that no notification is missed in between.
            arrived.as_mut().enable();
            {
                let spans = self.shared.spans();
                if spans.len() >= n {
                    return spans.clone();
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.spans();
            }
        }
    }

    /// How many export requests arrived (accepted or not).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// How many export requests were rejected (wrong content type, encoding or body).
    pub fn rejected(&self) -> usize {
        self.shared.rejected.load(Ordering::Relaxed)
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}
