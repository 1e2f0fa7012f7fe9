//! The platform API functions call (base URL `GUREUM_API`, credential
//! `GUREUM_FUNCTION_TOKEN`): `@connections/{id}` in the shape of API Gateway's management
//! API, so the AWS SDKs' clients work given that endpoint, and channels.
//!
//! Errors follow the AWS REST-JSON convention the SDKs parse: the status, an
//! `x-amzn-ErrorType` header naming the exception, and `{"message": …}`.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use gureum_invoke::ResponseBody;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};

use gureum_model::FunctionIdentity;

use crate::Hub;
use crate::bus::ChannelMessage;
use crate::registry::Frame;

/// Longest channel name.
pub const MAX_CHANNEL_NAME: usize = 128;

impl Hub {
    /// Answers a platform API request (`/@connections/…`, `/channels/…`); `None` when
    /// the path is not one of them.
    pub async fn platform_api<B>(&self, request: Request<B>) -> Option<Response<ResponseBody>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let path = request.uri().path().to_string();
        let route = if let Some(id) = path.strip_prefix("/@connections/") {
            Route::Connection(decode(id))
        } else if let Some(rest) = path.strip_prefix("/channels/") {
            let segments: Vec<&str> = rest.split('/').collect();
            match segments.as_slice() {
                [channel, "members"] => Route::Members(decode(channel)),
                [channel, "members", id] => Route::Member(decode(channel), decode(id)),
                [channel, "messages"] => Route::Messages(decode(channel)),
                _ => {
                    return Some(error(
                        StatusCode::NOT_FOUND,
                        "NotFoundException",
                        "no such channel endpoint; use /channels/{channel}/members[/{connectionId}] or /channels/{channel}/messages",
                    ));
                }
            }
        } else {
            return None;
        };
        Some(self.platform_route(route, request).await)
    }

    async fn platform_route<B>(&self, route: Route, request: Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let caller = match caller(self, request.headers()) {
            Ok(caller) => caller,
            Err(reason) => {
                return error(
                    StatusCode::FORBIDDEN,
                    "ForbiddenException",
                    &format!(
                        "a valid function token is required: `Authorization: Bearer $GUREUM_FUNCTION_TOKEN` (or AWS SigV4 with the token as access key id); {reason}"
                    ),
                );
            }
        };
        let method = request.method().clone();
        let query = request.uri().query().map(str::to_string);
        // Channels belong to a function's /ws/ route: its own, or with `?function=NAME`
        // another's that `[permissions] websocket` grants.
        let function = query
            .as_deref()
            .and_then(|query| {
                query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("function="))
                    .map(decode)
            })
            .unwrap_or_else(|| caller.name.clone());
        if !caller
            .permissions()
            .may_manage_connections(&caller.name, &function)
        {
            return error(
                StatusCode::FORBIDDEN,
                "ForbiddenException",
                &not_granted(&caller.name, &function),
            );
        }
        let limit = self.settings.max_message_bytes;
        let body = match crate::connection::read_limited(request.into_body(), limit).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PayloadTooLargeException",
                    &format!("the body is over the message limit of {limit} bytes"),
                );
            }
        };
        if let Route::Member(channel, _) | Route::Members(channel) | Route::Messages(channel) =
            &route
            && let Err(message) = check_channel(channel)
        {
            return error(StatusCode::BAD_REQUEST, "BadRequestException", &message);
        }
        match (route, method) {
            (Route::Connection(id), Method::POST) => {
                let conn = match self.own_connection(&caller, &id) {
                    Ok(conn) => conn,
                    Err(response) => return response,
                };
                if conn.send(Frame::from_bytes(body).message()).is_err() {
                    return gone(&id);
                }
                self.metrics
                    .websocket_messages_out
                    .get_or_create(&gureum_telemetry::WebSocketLabels {
                        function: conn.function.clone(),
                    })
                    .inc();
                ok(StatusCode::OK, None)
            }
            (Route::Connection(id), Method::DELETE) => {
                let conn = match self.own_connection(&caller, &id) {
                    Ok(conn) => conn,
                    Err(response) => return response,
                };
                conn.close(1000, "closed by the function");
                ok(StatusCode::NO_CONTENT, None)
            }
            (Route::Connection(id), Method::GET) => {
                // Still readable during its `$disconnect`, so the function can see
                // which channels it was in.
                let Some(conn) = self.registry.get(&id).filter(|conn| {
                    caller
                        .permissions()
                        .may_manage_connections(&caller.name, &conn.function)
                }) else {
                    return gone(&id);
                };
                let channels: Vec<Value> = {
                    let joined = conn
                        .channels
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    let mut list: Vec<Value> = joined
                        .iter()
                        .map(|(channel, meta)| json!({"channel": channel, "meta": meta}))
                        .collect();
                    list.sort_by(|a, b| a["channel"].as_str().cmp(&b["channel"].as_str()));
                    list
                };
                ok(
                    StatusCode::OK,
                    Some(json!({
                        "connectedAt": iso(conn.connected_at_ms),
                        "lastActiveAt": iso(conn.last_active_ms.load(std::sync::atomic::Ordering::Relaxed)),
                        "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
                        "connectionId": conn.id,
                        "channels": channels,
                    })),
                )
            }
            (Route::Member(channel, id), Method::POST | Method::PUT) => {
                let conn = match self.own_connection(&caller, &id) {
                    Ok(conn) => conn,
                    Err(response) => return response,
                };
                if conn.function != function {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "BadRequestException",
                        &format!(
                            "connection {id} belongs to /ws/{}, and channels are per function: add it to a channel of {} (?function={})",
                            conn.function, conn.function, conn.function
                        ),
                    );
                }
                let meta = if body.iter().all(u8::is_ascii_whitespace) {
                    Value::Null
                } else {
                    match serde_json::from_slice(&body) {
                        Ok(meta) => meta,
                        Err(parse) => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                "BadRequestException",
                                &format!("the member's meta must be JSON: {parse}"),
                            );
                        }
                    }
                };
                self.registry.join(&conn, &channel, meta);
                ok(StatusCode::OK, Some(json!({})))
            }
            (Route::Member(channel, id), Method::DELETE) => {
                if let Some(conn) = self
                    .registry
                    .get(&id)
                    .filter(|conn| conn.function == function)
                {
                    self.registry.leave(&conn, &channel);
                }
                ok(StatusCode::NO_CONTENT, None)
            }
            (Route::Members(channel), Method::GET) => {
                let members: Vec<Value> = self
                    .registry
                    .members(&function, &channel)
                    .into_iter()
                    .map(|(id, meta)| json!({"connectionId": id, "meta": meta}))
                    .collect();
                ok(StatusCode::OK, Some(json!({"members": members})))
            }
            (Route::Messages(channel), Method::POST) => {
                let exclude = query.as_deref().and_then(|query| {
                    query
                        .split('&')
                        .find_map(|pair| pair.strip_prefix("exclude="))
                        .map(decode)
                });
                let message = ChannelMessage {
                    function,
                    channel,
                    frame: Frame::from_bytes(body),
                    exclude,
                };
                match self.bus.publish(message).await {
                    Ok(delivered) => ok(StatusCode::OK, Some(json!({"delivered": delivered}))),
                    Err(bus) => error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailableException",
                        &bus.to_string(),
                    ),
                }
            }
            (_, method) => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowedException",
                &format!("{method} is not allowed here"),
            ),
        }
    }

    /// An open connection the caller may manage (its own, or of a function its
    /// `[permissions] websocket` names), or the error answer.
    #[allow(clippy::result_large_err)]
    fn own_connection(
        &self,
        caller: &FunctionIdentity,
        id: &str,
    ) -> Result<std::sync::Arc<crate::registry::Conn>, Response<ResponseBody>> {
        match self.registry.get(id) {
            Some(conn)
                if !caller
                    .permissions()
                    .may_manage_connections(&caller.name, &conn.function) =>
            {
                Err(error(
                    StatusCode::FORBIDDEN,
                    "ForbiddenException",
                    &format!(
                        "connection {id} belongs to /ws/{}; {}",
                        conn.function,
                        not_granted(&caller.name, &conn.function)
                    ),
                ))
            }
            Some(conn) if !conn.is_gone() => Ok(conn),
            _ => Err(gone(id)),
        }
    }
}

enum Route {
    Connection(String),
    Members(String),
    Member(String, String),
    Messages(String),
}

/// The function version whose token authorizes the request: `Bearer TOKEN`, or SigV4
/// with the token as access key id (`AWS4-HMAC-SHA256 Credential=TOKEN/date/region/…`);
/// the error says why there is none.
fn caller(hub: &Hub, headers: &http::HeaderMap) -> Result<FunctionIdentity, String> {
    let missing = || "none was sent".to_string();
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(missing)?
        .trim();
    let token = if let Some(token) = gureum_auth::bearer_token(headers) {
        token
    } else if let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256") {
        rest.split(',')
            .find_map(|part| part.trim().strip_prefix("Credential="))
            .and_then(|credential| credential.split('/').next())
            .ok_or_else(missing)?
    } else {
        return Err(missing());
    };
    hub.invoker
        .function_identity(token)
        .map_err(|refusal| refusal.to_string())
}

fn not_granted(caller: &str, function: &str) -> String {
    format!(
        "function {caller:?} may not manage the connections of /ws/{function}: add websocket = [{function:?}] to [permissions] in {caller:?}'s gureum.toml and deploy it"
    )
}

fn check_channel(channel: &str) -> Result<(), String> {
    let valid = !channel.is_empty()
        && channel.len() <= MAX_CHANNEL_NAME
        && channel
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(&byte));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{channel:?} is not a channel name: use 1 to {MAX_CHANNEL_NAME} characters of A-Z a-z 0-9 . _ : -"
        ))
    }
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// `2026-11-28T04:00:00.000Z`.
fn iso(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

fn ok(status: StatusCode, body: Option<Value>) -> Response<ResponseBody> {
    let bytes = body
        .map(|body| Bytes::from(body.to_string()))
        .unwrap_or_default();
    let mut response = Response::new(
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    if status != StatusCode::NO_CONTENT {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

fn gone(id: &str) -> Response<ResponseBody> {
    error(
        StatusCode::GONE,
        "GoneException",
        &format!("connection {id} is not connected (it closed, or never existed)"),
    )
}

fn error(status: StatusCode, kind: &'static str, message: &str) -> Response<ResponseBody> {
    let mut response = ok(status, Some(json!({"message": message})));
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert!(check_channel("room:lobby-1.a_b").is_ok());
        assert!(check_channel("").is_err());
        assert!(check_channel("with space").is_err());
        assert!(check_channel(&"x".repeat(129)).is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_with_millis() {
        assert_eq!(iso(1_764_300_000_123), "2025-11-28T03:20:00.123Z");
    }
}
