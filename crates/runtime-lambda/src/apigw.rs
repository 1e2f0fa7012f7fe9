//! HTTP ↔ Lambda, as API Gateway HTTP APIs do it: a request becomes a payload v2.0
//! event, and the function's answer is read as the v2.0 response shape (or, for any
//! other JSON value, as a 200 `application/json` body). Streamed answers carry the same
//! head as a JSON prelude ended by eight NUL bytes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Content type of a streamed response that starts with the HTTP prelude.
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str =
    "application/vnd.awslambda.http-integration-response";
/// What ends the prelude of a streamed HTTP response.
pub const PRELUDE_SEPARATOR: [u8; 8] = [0; 8];

/// Why a function's answer is not a usable HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The payload is not JSON.
    #[error(
        "the function's response is not JSON ({0}); return the API Gateway v2 shape {{\"statusCode\": 200, \"body\": \"...\"}} or any JSON value"
    )]
    NotJson(String),
    /// A field has the wrong type or value.
    #[error("the function's response has an invalid {field}: {problem}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// What the event needs besides the request itself.
pub struct EventContext<'a> {
    /// The invocation id (`requestContext.requestId`).
    pub request_id: &'a str,
    /// The caller's address, when known.
    pub source_ip: Option<IpAddr>,
    /// When the request arrived, ms since the Unix epoch.
    pub time_ms: i64,
}

/// Builds the payload v2.0 event for a request whose body has been read.
pub fn request_event(parts: &http::request::Parts, body: &[u8], ctx: &EventContext<'_>) -> Vec<u8> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        if name == COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|cookie| !cookie.is_empty())
                    .map(str::to_string),
            );
            continue;
        }
        // Repeated headers are joined with commas, as API Gateway does.
        headers
            .entry(name.as_str().to_string())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value);
        query
            .entry(decode(key))
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let text = is_textual(content_type)
        .then(|| std::str::from_utf8(body).ok())
        .flatten();
    let (body_value, is_base64) = match (body.is_empty(), text) {
        (true, _) => (Value::Null, false),
        (false, Some(text)) => (Value::String(text.to_string()), false),
        (false, None) => (Value::String(BASE64.encode(body)), true),
    };
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.host())
        .unwrap_or("localhost");
    let domain = host.split(':').next().unwrap_or(host);
    let protocol = match parts.version {
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "gureum",
            "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or(domain),
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": protocol,
                "sourceIp": ctx.source_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "127.0.0.1".into()),
                "userAgent": parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": ctx.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": clf_time(ctx.time_ms),
            "timeEpoch": ctx.time_ms,
        },
        "isBase64Encoded": is_base64,
    });
    // The gateway verified the caller's JWT (manifest `auth`) and passed its claims in
    // this header; Lambda functions find them where API Gateway's JWT authorizer puts them.
    if let Some(claims) = headers
        .remove(gureum_model::AUTH_CLAIMS_HEADER)
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
    {
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
        event["headers"] = json!(headers);
    }
    let object = event.as_object_mut().expect("built as an object");
    if !cookies.is_empty() {
        object.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        object.insert("queryStringParameters".into(), json!(query));
    }
    if !body_value.is_null() {
        object.insert("body".into(), body_value);
    }
    serde_json::to_vec(&event).expect("JSON values serialize")
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether a body of this type travels as text (when it is UTF-8) rather than base64.
fn is_textual(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("/json")
        || essence.ends_with("+json")
        || essence.ends_with("/xml")
        || essence.ends_with("+xml")
        || essence == "application/javascript"
        || essence == "application/x-www-form-urlencoded"
        || essence == "application/graphql"
}

/// `12/Mar/2020:19:03:58 +0000`, the format of `requestContext.time`.
fn clf_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day) = civil_date(ms);
    let rem = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month 1-12, day 1-31) in UTC of a time in ms since the Unix epoch
/// (Howard Hinnant's days-to-civil algorithm).
pub(crate) fn civil_date(ms: i64) -> (i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The head of a response: what the v2.0 shape and the streaming prelude share.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    status_code: Option<Value>,
    #[serde(default)]
    headers: Option<Map<String, Value>>,
    #[serde(default)]
    multi_value_headers: Option<Map<String, Value>>,
    #[serde(default)]
    cookies: Option<Vec<String>>,
}

/// A response head read from the function.
#[derive(Debug)]
pub struct ResponseHead {
    /// The status.
    pub status: StatusCode,
    /// The headers, `set-cookie` included.
    pub headers: HeaderMap,
}

impl Head {
    fn into_head(self) -> Result<ResponseHead, ResponseError> {
        let status = match &self.status_code {
            None => StatusCode::OK,
            Some(value) => {
                let code = value
                    .as_u64()
                    .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| invalid("statusCode", format!("{value} is not a number")))?;
                u16::try_from(code)
                    .ok()
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .ok_or_else(|| invalid("statusCode", format!("{code} is not an HTTP status")))?
            }
        };
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers.iter().flatten() {
            let value = scalar(value);
            append(&mut headers, name, &value, "headers")?;
        }
        for (name, values) in self.multi_value_headers.iter().flatten() {
            let values = values
                .as_array()
                .ok_or_else(|| invalid("multiValueHeaders", format!("{name} is not a list")))?;
            headers.remove(name.as_str());
            for value in values {
                append(&mut headers, name, &scalar(value), "multiValueHeaders")?;
            }
        }
        for cookie in self.cookies.iter().flatten() {
            let value = HeaderValue::from_str(cookie).map_err(|_| {
                invalid("cookies", format!("{cookie:?} is not a valid header value"))
            })?;
            headers.append(SET_COOKIE, value);
        }
        Ok(ResponseHead { status, headers })
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn append(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    field: &'static str,
) -> Result<(), ResponseError> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| invalid(field, format!("{name:?} is not a header name")))?;
    let value = HeaderValue::from_str(value).map_err(|_| {
        invalid(
            field,
            format!("the value of {name} is not a valid header value"),
        )
    })?;
    headers.append(header, value);
    Ok(())
}

fn invalid(field: &'static str, problem: String) -> ResponseError {
    ResponseError::Invalid { field, problem }
}

/// Reads a buffered answer: the v2.0 shape when it is an object with `statusCode`,
/// otherwise any JSON value as a 200 `application/json` body.
pub fn read_response(payload: &[u8]) -> Result<(ResponseHead, Bytes), ResponseError> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|error| ResponseError::NotJson(error.to_string()))?;
    let shaped = value
        .as_object()
        .is_some_and(|object| object.contains_key("statusCode"));
    if !shaped {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok((
            ResponseHead {
                status: StatusCode::OK,
                headers,
            },
            Bytes::copy_from_slice(payload),
        ));
    }
    let Value::Object(mut object) = value else {
        unreachable!("checked above")
    };
    let body = object.remove("body");
    let is_base64 = object
        .remove("isBase64Encoded")
        .is_some_and(|flag| flag.as_bool().unwrap_or(false));
    let head: Head = serde_json::from_value(Value::Object(object))
        .map_err(|error| invalid("shape", error.to_string()))?;
    let head = head.into_head()?;
    let body =
        match body {
            None | Some(Value::Null) => Bytes::new(),
            Some(Value::String(text)) if is_base64 => BASE64
                .decode(text.as_bytes())
                .map(Bytes::from)
                .map_err(|error| invalid("body", format!("isBase64Encoded is true but {error}")))?,
            Some(Value::String(text)) => Bytes::from(text),
            Some(other) => Bytes::from(other.to_string()),
        };
    Ok((head, body))
}

/// Reads the JSON prelude of a streamed HTTP response (the bytes before the eight
/// NUL bytes).
pub fn read_prelude(prelude: &[u8]) -> Result<ResponseHead, ResponseError> {
    let head: Head = serde_json::from_slice(prelude)
        .map_err(|error| ResponseError::NotJson(error.to_string()))?;
    head.into_head()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(request: http::Request<()>) -> http::request::Parts {
        request.into_parts().0
    }

    fn event(request: http::Request<()>, body: &[u8]) -> Value {
        let ctx = EventContext {
            request_id: "abc",
            source_ip: Some("10.1.2.3".parse().unwrap()),
            time_ms: 1_583_348_638_390,
        };
        serde_json::from_slice(&request_event(&parts(request), body, &ctx)).unwrap()
    }

    #[test]
    fn a_request_becomes_a_v2_event() {
        let request = http::Request::post("http://example.com:8080/a/b%20c?x=1&x=2&y=%41")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .header("cookie", "a=1; b=2")
            .header("user-agent", "curl/8")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let event = event(request, b"{\"k\":1}");
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["rawPath"], "/a/b%20c");
        assert_eq!(event["rawQueryString"], "x=1&x=2&y=%41");
        assert_eq!(
            event["queryStringParameters"],
            json!({"x": "1,2", "y": "A"})
        );
        assert_eq!(event["headers"]["x-multi"], "one,two");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["body"], "{\"k\":1}");
        assert_eq!(event["isBase64Encoded"], false);
        let http = &event["requestContext"]["http"];
        assert_eq!(http["method"], "POST");
        assert_eq!(http["sourceIp"], "10.1.2.3");
        assert_eq!(http["userAgent"], "curl/8");
        assert_eq!(event["requestContext"]["domainName"], "example.com");
        assert_eq!(
            event["requestContext"]["time"],
            "04/Mar/2020:19:03:58 +0000"
        );
        assert_eq!(event["requestContext"]["timeEpoch"], 1_583_348_638_390_i64);
    }

    #[test]
    fn binary_bodies_are_base64() {
        let request = http::Request::post("/x")
            .header("content-type", "application/octet-stream")
            .body(())
            .unwrap();
        let binary = event(request, b"ab");
        assert_eq!(binary["isBase64Encoded"], true);
        assert_eq!(binary["body"], "YWI=");
        let untyped = event_untyped(&[0xff, 0x00]);
        assert_eq!(untyped["isBase64Encoded"], true);
        let empty = event(http::Request::get("/").body(()).unwrap(), b"");
        assert!(empty.get("body").is_none());
        assert!(empty.get("queryStringParameters").is_none());
    }

    fn event_untyped(body: &[u8]) -> Value {
        event(http::Request::post("/x").body(()).unwrap(), body)
    }

    #[test]
    fn the_v2_response_shape_is_read() {
        let payload = json!({
            "statusCode": 201,
            "headers": {"content-type": "text/plain", "x-n": 5},
            "multiValueHeaders": {"x-m": ["1", "2"]},
            "cookies": ["a=1", "b=2; Path=/"],
            "body": "aGk=",
            "isBase64Encoded": true
        });
        let (head, body) = read_response(&serde_json::to_vec(&payload).unwrap()).unwrap();
        assert_eq!(head.status, 201);
        assert_eq!(head.headers["x-n"], "5");
        assert_eq!(head.headers.get_all("x-m").iter().count(), 2);
        assert_eq!(head.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(body, "hi");
    }

    #[test]
    fn any_other_json_is_a_200_json_body() {
        let (head, body) = read_response(b"{\"hello\":\"world\"}").unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.headers[CONTENT_TYPE], "application/json");
        assert_eq!(body, "{\"hello\":\"world\"}");
        let (_, body) = read_response(b"\"text\"").unwrap();
        assert_eq!(body, "\"text\"");
    }

    #[test]
    fn bad_answers_name_the_problem() {
        let not_json = read_response(b"hello").unwrap_err().to_string();
        assert!(not_json.contains("not JSON"), "{not_json}");
        let bad_status = read_response(b"{\"statusCode\": 99}")
            .unwrap_err()
            .to_string();
        assert!(bad_status.contains("statusCode"), "{bad_status}");
        let bad_b64 =
            read_response(b"{\"statusCode\":200,\"body\":\"%%\",\"isBase64Encoded\":true}")
                .unwrap_err()
                .to_string();
        assert!(bad_b64.contains("isBase64Encoded"), "{bad_b64}");
    }

    #[test]
    fn the_streaming_prelude_is_read() {
        let head =
            read_prelude(b"{\"statusCode\":202,\"headers\":{\"x\":\"y\"},\"cookies\":[\"c=1\"]}")
                .unwrap();
        assert_eq!(head.status, 202);
        assert_eq!(head.headers["x"], "y");
        assert_eq!(head.headers["set-cookie"], "c=1");
    }
}
