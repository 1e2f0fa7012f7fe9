//! One connection's life: the upgrade (`$connect` decides), the read loop (`$default` per
//! message, in order), the writer (the bounded queue to the socket), the limits, and the
//! end (`$disconnect`, then its memberships go).
//!
//! [`Hub::accept`](crate::Hub::accept) checks the upgrade headers and the per-function cap,
//! invokes `$connect` through the same `Invoker::invoke` as HTTP (trigger `websocket`; a
//! wasm function gets `POST /.gureum/websocket` with the event's JSON, a lambda function
//! the event itself as a `RawEvent`), and on a 2xx registers the connection and answers
//! 101. A task per connection reads frames (the answer to `$default` is queued back to the
//! sender), watches the idle and age deadlines and pings; a writer task drains the
//! connection's bounded queue to the socket. Every send anywhere is a `try_send` into that
//! queue: a full one closes the connection with 1013 instead of buffering. The end, whatever
//! its cause, marks the connection gone (the management API answers 410 from then on),
//! invokes `$disconnect`, and only then removes it and its channel memberships.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use gureum_invoke::{InvokeError, RawEvent, ResponseBody, VersionSelector};
use gureum_model::{LogLine, LogStream, Trigger};
use gureum_telemetry::WebSocketLabels;
use http::header::{
    CONNECTION, CONTENT_TYPE, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE, USER_AGENT,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, handshake::derive_accept_key};

use crate::Hub;
use crate::event::{self, EventContext, MessageBody};
use crate::registry::{CloseReason, Conn, Frame};

/// Most bytes of a function's answer to an event that are read (the answer to
/// `$default` goes to the client, so it obeys the message limit too).
const MAX_ANSWER_BYTES: usize = 6 * 1024 * 1024;

/// Why an upgrade was not accepted (the gateway turns these into JSON errors).
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Not a WebSocket upgrade request.
    #[error("{0}")]
    NotWebSocket(String),
    /// The function has as many connections as allowed.
    #[error(
        "function {function:?} has {cap} open WebSocket connections, its limit (--ws-max-connections)"
    )]
    TooManyConnections {
        /// The function.
        function: String,
        /// The cap.
        cap: usize,
    },
    /// The server is shutting down.
    #[error("the server is shutting down; connect again in a moment")]
    ShuttingDown,
    /// `$connect` could not run.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
}

impl Hub {
    /// Answers `GET /ws/NAME`: runs `$connect` and, when it answers 2xx, switches
    /// protocols and holds the connection; otherwise returns the function's answer.
    pub async fn accept<B>(
        self: &Arc<Self>,
        function: &str,
        mut request: Request<B>,
        client: Option<IpAddr>,
    ) -> Result<Response<ResponseBody>, AcceptError>
    where
        B: http_body::Body + Send + 'static,
    {
        let key = check_upgrade(&request)?;
        if self.closing.is_cancelled() {
            return Err(AcceptError::ShuttingDown);
        }
        let cap = self.settings.max_connections;
        if self.registry.count(function) >= cap {
            return Err(AcceptError::TooManyConnections {
                function: function.to_string(),
                cap,
            });
        }
        let on_upgrade = hyper::upgrade::on(&mut request);
        let (parts, _) = request.into_parts();
        // The event's `domainName`: the client's Host when it is a valid authority.
        let domain = header(&parts.headers, http::header::HOST.as_str())
            .and_then(gureum_invoke::plain_authority)
            .unwrap_or_default()
            .to_string();
        let (queue, outbox) = mpsc::channel(self.settings.send_queue.max(1));
        let conn = Arc::new(Conn::new(
            connection_id(),
            function.to_string(),
            client.map(|ip| ip.to_string()).unwrap_or_default(),
            header(&parts.headers, USER_AGENT.as_str())
                .unwrap_or_default()
                .to_string(),
            queue,
        ));
        let request_id = uuid::Uuid::now_v7().to_string();
        let ctx = EventContext {
            conn: &conn,
            domain: &domain,
            request_id: &request_id,
        };
        let connect = event::connect(&ctx, &parts);
        let (status, headers, body) = self
            .invoke_event(function, &conn, &domain, "$connect", &connect)
            .await?;
        if !status.is_success() {
            let mut refused = Response::new(
                Full::new(body)
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            *refused.status_mut() = status;
            if let Some(content_type) = headers.get(CONTENT_TYPE) {
                refused
                    .headers_mut()
                    .insert(CONTENT_TYPE, content_type.clone());
            }
            return Ok(refused);
        }
        if !self.registry.insert(conn.clone(), cap) {
            // Others connected while `$connect` ran.
            let hub = self.clone();
            let conn = conn.clone();
            let name = function.to_string();
            self.tasks.spawn(async move {
                hub.disconnect(&name, &conn, &domain, 1013, "too many connections")
                    .await;
            });
            return Err(AcceptError::TooManyConnections {
                function: function.to_string(),
                cap,
            });
        }
        let labels = WebSocketLabels {
            function: function.to_string(),
        };
        self.metrics
            .websocket_connections
            .get_or_create(&labels)
            .inc();
        self.platform_log(
            function,
            format!(
                "websocket {} connected from {}",
                conn.id,
                if conn.source_ip.is_empty() {
                    "?"
                } else {
                    &conn.source_ip
                }
            ),
        );

        let hub = self.clone();
        let function = function.to_string();
        let held = conn.clone();
        self.tasks.spawn(async move {
            let conn = held;
            let reason = match on_upgrade.await {
                Ok(upgraded) => {
                    let config = WebSocketConfig::default()
                        // Small buffers: 10,000 idle connections must stay cheap.
                        .read_buffer_size(4 * 1024)
                        .write_buffer_size(0)
                        .max_write_buffer_size(hub.settings.max_message_bytes * 2 + 64 * 1024)
                        .max_message_size(Some(hub.settings.max_message_bytes))
                        .max_frame_size(Some(hub.settings.max_message_bytes));
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    hub.run(&function, &conn, &domain, socket, outbox).await
                }
                Err(error) => CloseReason {
                    code: 1006,
                    reason: format!("the upgrade did not complete: {error}"),
                },
            };
            hub.metrics
                .websocket_connections
                .get_or_create(&labels)
                .dec();
            if conn.slow_consumer.load(Ordering::Acquire) {
                hub.metrics
                    .websocket_slow_consumers
                    .get_or_create(&labels)
                    .inc();
            }
            hub.disconnect(&function, &conn, &domain, reason.code, &reason.reason)
                .await;
            hub.registry.remove(&conn.id);
        });

        let mut response = Response::new(
            Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let out = response.headers_mut();
        out.insert(UPGRADE, HeaderValue::from_static("websocket"));
        out.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
            out.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        // A function choosing a subprotocol answers `$connect` with this header.
        if let Some(protocol) = headers.get(http::header::SEC_WEBSOCKET_PROTOCOL) {
            out.insert(http::header::SEC_WEBSOCKET_PROTOCOL, protocol.clone());
        }
        if let Ok(id) = HeaderValue::from_str(&conn.id) {
            out.insert("x-gureum-connection-id", id);
        }
        Ok(response)
    }

    /// The read loop; returns how the connection ended.
    async fn run(
        &self,
        function: &str,
        conn: &Arc<Conn>,
        domain: &str,
        socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
        outbox: mpsc::Receiver<Message>,
    ) -> CloseReason {
        let (sink, mut stream) = socket.split();
        let writer = tokio::spawn(write_loop(conn.clone(), sink, outbox));
        let labels = WebSocketLabels {
            function: function.to_string(),
        };
        let settings = self.settings;
        let age_deadline = Instant::now() + settings.max_age;
        let mut ping = tokio::time::interval_at(
            Instant::now() + settings.ping_interval,
            settings.ping_interval,
        );
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let reason = loop {
            let idle_for = Duration::from_millis(
                (gureum_model::now_ms() - conn.last_active_ms.load(Ordering::Relaxed)).max(0)
                    as u64,
            );
            let idle_deadline = Instant::now() + settings.idle_timeout.saturating_sub(idle_for);
            tokio::select! {
                biased;
                reason = conn.closed() => break reason,
                () = tokio::time::sleep_until(age_deadline) => {
                    break close(conn, 1001, "the connection reached its maximum age");
                }
                () = tokio::time::sleep_until(idle_deadline) => {
                    let idle = gureum_model::now_ms() - conn.last_active_ms.load(Ordering::Relaxed);
                    if idle >= settings.idle_timeout.as_millis() as i64 {
                        break close(conn, 1001, "the connection was idle too long");
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > settings.ping_interval * 2 {
                        break close(conn, 1001, "the client stopped answering pings");
                    }
                    // Best effort: a full queue already means trouble, handled there.
                    let _ = conn.send_control(Message::Ping(Bytes::new()));
                }
                frame = stream.next() => {
                    last_heard = Instant::now();
                    match frame {
                        None => {
                            conn.mark_gone();
                            break CloseReason { code: 1006, reason: "the client went away".into() };
                        }
                        Some(Err(WsError::Capacity(error))) => {
                            break close(conn, 1009, &format!("message too big: {error}"));
                        }
                        Some(Err(error)) => {
                            conn.mark_gone();
                            break CloseReason { code: 1006, reason: format!("connection error: {error}") };
                        }
                        Some(Ok(Message::Close(frame))) => {
                            conn.mark_gone();
                            break match frame {
                                Some(frame) => CloseReason {
                                    code: u16::from(frame.code),
                                    reason: frame.reason.to_string(),
                                },
                                None => CloseReason { code: 1005, reason: "closed by the client".into() },
                            };
                        }
                        Some(Ok(Message::Text(text))) => {
                            conn.touch();
                            self.metrics.websocket_messages_in.get_or_create(&labels).inc();
                            self.on_message(function, conn, domain, MessageBody::Text(text.as_str())).await;
                            // Pongs were not read while the function ran.
                            last_heard = Instant::now();
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            conn.touch();
                            self.metrics.websocket_messages_in.get_or_create(&labels).inc();
                            self.on_message(function, conn, domain, MessageBody::Binary(&bytes)).await;
                            last_heard = Instant::now();
                        }
                        Some(Ok(_)) => {} // ping (answered by tungstenite), pong, raw frame
                    }
                }
            }
        };
        // The writer sends the close frame (or finds the socket gone) and ends.
        if conn.close_reason().is_none() {
            conn.close(reason.code, &reason.reason);
        }
        if tokio::time::timeout(Duration::from_secs(2), writer)
            .await
            .is_err()
        {
            tracing::debug!(connection = %conn.id, "writer did not finish; dropped");
        }
        drop(stream);
        reason
    }

    /// Runs `$default` for one message and sends a non-empty answer back.
    async fn on_message(
        &self,
        function: &str,
        conn: &Arc<Conn>,
        domain: &str,
        body: MessageBody<'_>,
    ) {
        let message_id = uuid::Uuid::now_v7().simple().to_string();
        let request_id = uuid::Uuid::now_v7().to_string();
        let ctx = EventContext {
            conn,
            domain,
            request_id: &request_id,
        };
        let event = event::message(&ctx, &message_id, body);
        match self
            .invoke_event(function, conn, domain, "$default", &event)
            .await
        {
            Ok((_, _, answer)) if !answer.is_empty() => {
                if answer.len() > self.settings.max_message_bytes {
                    self.platform_log(
                        function,
                        format!(
                            "websocket {}: the $default answer ({} bytes) is over the message limit ({} bytes); not sent",
                            conn.id,
                            answer.len(),
                            self.settings.max_message_bytes
                        ),
                    );
                    return;
                }
                if conn.send(Frame::from_bytes(answer).message()).is_ok() {
                    self.metrics
                        .websocket_messages_out
                        .get_or_create(&WebSocketLabels {
                            function: function.to_string(),
                        })
                        .inc();
                }
            }
            Ok(_) => {}
            // The invocation's own record and log say what went wrong.
            Err(error) => tracing::debug!(connection = %conn.id, %error, "$default failed"),
        }
    }

    /// Runs `$disconnect` (errors only logged: the connection is gone either way).
    async fn disconnect(
        &self,
        function: &str,
        conn: &Arc<Conn>,
        domain: &str,
        code: u16,
        reason: &str,
    ) {
        conn.mark_gone();
        let request_id = uuid::Uuid::now_v7().to_string();
        let ctx = EventContext {
            conn,
            domain,
            request_id: &request_id,
        };
        let event = event::disconnect(&ctx, code, reason);
        if let Err(error) = self
            .invoke_event(function, conn, domain, "$disconnect", &event)
            .await
        {
            tracing::debug!(connection = %conn.id, %error, "$disconnect failed");
        }
        self.platform_log(
            function,
            format!("websocket {} disconnected: {code} {reason}", conn.id),
        );
    }

    /// Invokes `function`'s live version with one event: wasm functions get
    /// `POST /.gureum/websocket` with the JSON, lambda functions the JSON itself.
    async fn invoke_event(
        &self,
        function: &str,
        conn: &Conn,
        domain: &str,
        route_key: &str,
        event: &serde_json::Value,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), InvokeError> {
        let body = Bytes::from(serde_json::to_vec(event).unwrap_or_default());
        let uri = gureum_invoke::platform_uri(Some(domain), "/.gureum/websocket");
        let mut request = Request::post(uri)
            .header(CONTENT_TYPE, "application/json")
            .header("x-gureum-route-key", route_key)
            .header("x-gureum-connection-id", conn.id.as_str())
            .body(Full::new(body.clone()))
            .map_err(|error| InvokeError::Unavailable(format!("building the event: {error}")))?;
        request.extensions_mut().insert(RawEvent(body));
        let client = conn.source_ip.parse().ok();
        let answer = self
            .invoker
            .invoke(
                function,
                VersionSelector::Live,
                request,
                client,
                Trigger::WebSocket,
            )
            .await;
        let response = answer.response?;
        let (parts, body) = response.into_parts();
        let bytes = match read_limited(body, MAX_ANSWER_BYTES).await {
            Ok(bytes) => bytes,
            Err(error) => {
                return Err(InvokeError::FunctionError(format!(
                    "reading the answer to {route_key} failed: {error}"
                )));
            }
        };
        Ok((parts.status, parts.headers, bytes))
    }

    /// A platform line in the function's log (`gureum logs NAME` shows connections).
    pub(crate) fn platform_log(&self, function: &str, message: String) {
        let telemetry = self.telemetry.clone();
        let line = LogLine {
            seq: 0,
            invocation_id: String::new(),
            function: function.to_string(),
            version: 0,
            ts_ms: gureum_model::now_ms(),
            stream: LogStream::Platform,
            message,
        };
        tokio::spawn(async move { telemetry.log(line).await });
    }
}

/// Sends queued messages until the connection is asked to close, then the close frame.
async fn write_loop<S>(conn: Arc<Conn>, mut sink: S, mut outbox: mpsc::Receiver<Message>)
where
    S: futures::Sink<Message, Error = WsError> + Unpin,
{
    loop {
        tokio::select! {
            biased;
            reason = conn.closed() => {
                if !conn_was_closed_by_client(&reason) {
                    let frame = CloseFrame {
                        code: CloseCode::from(reason.code),
                        reason: truncate_reason(&reason.reason).into(),
                    };
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        sink.send(Message::Close(Some(frame))),
                    )
                    .await;
                }
                break;
            }
            message = outbox.recv() => {
                let Some(message) = message else { break };
                match tokio::time::timeout(crate::SEND_TIMEOUT, sink.send(message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => {
                        conn.mark_gone();
                        break;
                    }
                    Err(_) => {
                        conn.slow_consumer.store(true, Ordering::Release);
                        conn.close(1013, "the client did not read its messages fast enough");
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

fn conn_was_closed_by_client(reason: &CloseReason) -> bool {
    reason.code == 1006 || reason.code == 1005
}

/// Close reasons are limited to 123 bytes by the protocol.
fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

fn close(conn: &Conn, code: u16, reason: &str) -> CloseReason {
    conn.close(code, reason);
    conn.close_reason().unwrap_or(CloseReason {
        code,
        reason: reason.to_string(),
    })
}

fn check_upgrade<B>(request: &Request<B>) -> Result<String, AcceptError> {
    let headers = request.headers();
    let not = |what: &str| {
        AcceptError::NotWebSocket(format!(
            "{what}; /ws/NAME takes a WebSocket upgrade (GET with `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`)"
        ))
    };
    if request.method() != http::Method::GET {
        return Err(not(&format!("{} is not GET", request.method())));
    }
    let upgrade = header(headers, UPGRADE.as_str()).unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(not("the request has no `Upgrade: websocket` header"));
    }
    let connection = header(headers, CONNECTION.as_str()).unwrap_or_default();
    if !connection
        .split(',')
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    {
        return Err(not("the `Connection` header does not say `Upgrade`"));
    }
    if header(headers, SEC_WEBSOCKET_VERSION.as_str()) != Some("13") {
        return Err(not("`Sec-WebSocket-Version` is not 13"));
    }
    header(headers, SEC_WEBSOCKET_KEY.as_str())
        .map(str::to_string)
        .ok_or_else(|| not("`Sec-WebSocket-Key` is missing"))
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// 16 random bytes, URL-safe base64 without padding (22 characters).
fn connection_id() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a body whole, refusing more than `limit` bytes.
pub(crate) async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, String>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| error.to_string())?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > limit {
                return Err(format!("the body is over {limit} bytes"));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out.freeze())
}
