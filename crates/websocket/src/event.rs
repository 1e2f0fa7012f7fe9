//! API Gateway WebSocket–shaped events (`$connect`, `$default`, `$disconnect`), the JSON
//! Lambda users' handlers already read.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::registry::Conn;

/// What every event of a connection shares.
pub(crate) struct EventContext<'a> {
    pub conn: &'a Conn,
    pub domain: &'a str,
    pub request_id: &'a str,
}

fn request_context(
    ctx: &EventContext<'_>,
    route_key: &str,
    event_type: &str,
) -> Map<String, Value> {
    let now = gureum_model::now_ms();
    let mut context = Map::new();
    context.insert("routeKey".into(), route_key.into());
    context.insert("eventType".into(), event_type.into());
    context.insert("connectionId".into(), ctx.conn.id.clone().into());
    context.insert("connectedAt".into(), ctx.conn.connected_at_ms.into());
    context.insert("requestId".into(), ctx.request_id.into());
    context.insert("extendedRequestId".into(), ctx.request_id.into());
    context.insert("requestTimeEpoch".into(), now.into());
    context.insert("messageDirection".into(), "IN".into());
    context.insert("stage".into(), "$default".into());
    context.insert("apiId".into(), "gureum".into());
    context.insert("domainName".into(), ctx.domain.into());
    context.insert(
        "identity".into(),
        json!({"sourceIp": ctx.conn.source_ip, "userAgent": ctx.conn.user_agent}),
    );
    context
}

/// `$connect`, with the upgrade request's headers and query.
pub(crate) fn connect(ctx: &EventContext<'_>, parts: &http::request::Parts) -> Value {
    let mut headers = BTreeMap::<String, String>::new();
    let mut multi_headers = BTreeMap::<String, Vec<String>>::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.clone());
        multi_headers
            .entry(name.as_str().to_string())
            .or_default()
            .push(value);
    }
    let mut query = BTreeMap::<String, String>::new();
    let mut multi_query = BTreeMap::<String, Vec<String>>::new();
    if let Some(raw) = parts.uri.query() {
        for (key, value) in form_pairs(raw) {
            query.insert(key.clone(), value.clone());
            multi_query.entry(key).or_default().push(value);
        }
    }
    let mut event = Map::new();
    event.insert(
        "requestContext".into(),
        Value::Object(request_context(ctx, "$connect", "CONNECT")),
    );
    event.insert("headers".into(), json!(headers));
    event.insert("multiValueHeaders".into(), json!(multi_headers));
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), json!(query));
        event.insert("multiValueQueryStringParameters".into(), json!(multi_query));
    }
    event.insert("isBase64Encoded".into(), false.into());
    Value::Object(event)
}

/// `$default`: one message from the client (binary frames base64-encoded).
pub(crate) fn message(ctx: &EventContext<'_>, message_id: &str, body: MessageBody<'_>) -> Value {
    let mut context = request_context(ctx, "$default", "MESSAGE");
    context.insert("messageId".into(), message_id.into());
    let (body, base64) = match body {
        MessageBody::Text(text) => (text.to_string(), false),
        MessageBody::Binary(bytes) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            true,
        ),
    };
    json!({
        "requestContext": Value::Object(context),
        "body": body,
        "isBase64Encoded": base64,
    })
}

/// `$disconnect`, with the close code and reason.
pub(crate) fn disconnect(ctx: &EventContext<'_>, code: u16, reason: &str) -> Value {
    let mut context = request_context(ctx, "$disconnect", "DISCONNECT");
    context.insert("disconnectStatusCode".into(), code.into());
    context.insert("disconnectReason".into(), reason.into());
    json!({
        "requestContext": Value::Object(context),
        "isBase64Encoded": false,
    })
}

/// A client message.
pub(crate) enum MessageBody<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// `a=1&b=x%20y` → pairs, percent- and `+`-decoded.
fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_decoded() {
        assert_eq!(
            form_pairs("room=a%20b&nick=x+y&flag&bad=%zz&end=%4"),
            vec![
                ("room".into(), "a b".into()),
                ("nick".into(), "x y".into()),
                ("flag".into(), String::new()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
    }
}
