//! `testbed`: the end-to-end test fixture.
//!
//! One `wasi:http/incoming-handler` component whose behaviour is chosen by
//! the last segment of the request path (so `/echo`, `/fn/tb/echo` with the
//! prefix stripped, and a manifest route `/tb/echo` all reach `echo`):
//!
//! | route            | behaviour |
//! |------------------|-----------|
//! | `/echo[?env=V]`  | JSON: method, path (with query), headers (name → values), body length, body (lossy UTF-8), `env_value` of env var `V` |
//! | `/body`          | streams the request body back unchanged, frame by frame (≤ 64 KiB each) |
//! | `/count`         | bumps a process-global counter and answers its new value: 1, 2, 3… on a reused instance, always 1 on fresh ones |
//! | `/log?n=N`       | N lines `stdout line i` on stdout and N lines `stderr line i` on stderr, answers `logged N` |
//! | `/sleep?ms=N`    | waits N ms on the WASI monotonic clock (async, no busy wait), answers `slept N` |
//! | `/spin`          | burns CPU forever (for timeouts) |
//! | `/hog?mb=N`      | allocates and touches N MiB (default 10 000) in 1 MiB chunks, answers `allocated N` (for memory limits) |
//! | `/panic`         | panics with `testbed panic requested` (a trap for the host) |
//! | `/fetch?url=U`   | outbound GET of U: answers with the upstream status and body, or 599 and the error text |
//! | `/status?code=N` | answers status N with body `status N` |
//! | `/headers`       | answers with `x-testbed: yes` and two `set-cookie` headers |
//! | `/job[?sleep=MS&report=URL]`, `/` | an asynchronous event: POSTs a JSON report (id, attempt, trigger, schedule, scheduled time, destination headers, body) to URL, sleeps, prints `job ID attempt N trigger T`, answers env `JOB_STATUS` (default 200) |
//! | `/.gureum/websocket` | WebSocket events, see [`websocket`] |
//! | `/kv/OP/BUCKET[/KEY]` (anywhere in the path) | `wasi:keyvalue`, see [`keyvalue`] |
//! | anything else    | 404 `no such testbed route` |

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};
use wstd::http::body::{Body, HttpBody as _};
use wstd::http::{Client, Error, Request, Response, StatusCode};

/// Requests served by this instance through `/count`.
static COUNT: AtomicU64 = AtomicU64::new(0);

/// One MiB.
const MIB: usize = 1 << 20;

/// Guest bindings of `wasi:keyvalue@0.2.0-draft` (`wit/`).
mod bindings {
    #![allow(unsafe_code, missing_docs)]
    wit_bindgen::generate!({
        path: "wit",
        world: "gureum:testbed/testbed",
        // The world's imports come from another package (wit/deps/keyvalue).
        generate_all,
    });
}

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    if let Some(call) = keyvalue::KvCall::parse(request.uri().path()) {
        return keyvalue::handle(request, call).await;
    }
    let route = request
        .uri()
        .path()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("")
        .to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    match route.as_str() {
        "echo" => echo(request, &query).await,
        "job" | "" => job(request, &query).await,
        "body" => body(request),
        "count" => {
            let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
            text(StatusCode::OK, n.to_string())
        }
        "log" => {
            let n = number(&query, "n").unwrap_or(1);
            for i in 0..n {
                println!("stdout line {i}");
            }
            for i in 0..n {
                eprintln!("stderr line {i}");
            }
            text(StatusCode::OK, format!("logged {n}"))
        }
        "sleep" => {
            let ms = number(&query, "ms").unwrap_or(0);
            wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slept {ms}"))
        }
        "spin" => spin(),
        "hog" => {
            let mb = number(&query, "mb").unwrap_or(10_000);
            let mut kept: Vec<Vec<u8>> = Vec::new();
            for i in 0..mb {
                // A non-zero fill writes every page, so the memory is really used.
                kept.push(vec![(i as u8) | 1; MIB]);
            }
            let total: usize = std::hint::black_box(&kept).iter().map(Vec::len).sum();
            text(StatusCode::OK, format!("allocated {}", total / MIB))
        }
        "panic" => panic!("testbed panic requested"),
        "fetch" => fetch(&query).await,
        "status" => match number(&query, "code").and_then(|c| u16::try_from(c).ok()) {
            Some(code) => match StatusCode::from_u16(code) {
                Ok(status) => text(status, format!("status {code}")),
                Err(_) => text(StatusCode::BAD_REQUEST, format!("invalid status {code}")),
            },
            None => text(StatusCode::BAD_REQUEST, "status needs ?code=N".to_owned()),
        },
        "websocket" => websocket(request).await,
        "headers" => Ok(Response::builder()
            .header("content-type", "text/plain; charset=utf-8")
            .header("x-testbed", "yes")
            .header("set-cookie", "a=1; Path=/")
            .header("set-cookie", "b=2; Path=/; HttpOnly")
            .body(Body::from("headers"))?),
        _ => text(StatusCode::NOT_FOUND, "no such testbed route".to_owned()),
    }
}

/// `/job` (and `/`, where cron ticks and destination records arrive): reports the
/// event to the test's recorder, then answers `JOB_STATUS`.
async fn job(mut request: Request<Body>, query: &str) -> Result<Response<Body>, Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let id = header("x-gureum-invocation-id");
    let attempt = header("x-gureum-attempt");
    let trigger = header("x-gureum-trigger");
    let report = json!({
        "id": id,
        "attempt": attempt,
        "trigger": trigger,
        "schedule": header("x-gureum-schedule"),
        "scheduled_time": header("x-gureum-scheduled-time"),
        "destination_of": header("x-gureum-destination-of"),
        "condition": header("x-gureum-destination-condition"),
        "path": request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
        "body": String::from_utf8_lossy(request.body_mut().contents().await?),
    });
    let report_url = query_param(query, "report").or_else(|| std::env::var("JOB_REPORT").ok());
    if let Some(url) = report_url {
        let post = Request::post(url.as_str())
            .header("content-type", "application/json")
            .body(Body::from(report.to_string()))?;
        if let Err(error) = Client::new().send(post).await {
            return text(StatusCode::BAD_GATEWAY, format!("report failed: {error:#}"));
        }
    }
    if let Some(ms) = number(query, "sleep") {
        wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
    }
    println!("job {id} attempt {attempt} trigger {trigger}");
    let status = std::env::var("JOB_STATUS")
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    text(status, format!("job {id} answered {}", status.as_u16()))
}

/// `/echo`: describes the request as JSON.
async fn echo(mut request: Request<Body>, query: &str) -> Result<Response<Body>, Error> {
    let mut headers = Map::new();
    for name in request.headers().keys() {
        let values = request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    let env_value = query_param(query, "env").and_then(|name| std::env::var(name).ok());
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let body = request.body_mut().contents().await?;
    let doc = json!({
        "method": method,
        "path": path,
        "headers": headers,
        "body_len": body.len(),
        "body": String::from_utf8_lossy(body),
        "env_value": env_value,
    });
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(doc.to_string()))?)
}

/// `/body`: streams the request body back. Each frame read from the incoming
/// body (at most 64 KiB) is written out before the next one is read, so the
/// body is never held whole in guest memory.
fn body(request: Request<Body>) -> Result<Response<Body>, Error> {
    let incoming = request.into_body().into_boxed_body();
    let mut response = Response::builder().header("content-type", "application/octet-stream");
    if let Some(len) = incoming.size_hint().exact() {
        response = response.header("content-length", len);
    }
    Ok(response.body(Body::from_http_body(incoming))?)
}

/// `/spin`: a CPU loop the optimiser cannot remove; never returns.
fn spin() -> ! {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// WebSocket events (`POST /.gureum/websocket`, the event JSON as body):
///
/// - `$connect`: answers `?reject=N` of the connect URL as the status (refusing the
///   upgrade), else 200.
/// - `$default`, by the message text: `echo X` → answers X; `silent` → no answer;
///   `big N` → N bytes of `x`; `close` → DELETE its own connection; `send ID X` → POST X
///   to connection ID (answers the status); `join CH` / `leave CH` → channel membership
///   (answers the status); `broadcast CH X` → to every member but itself (answers the
///   JSON); `info` → GET its own connection (answers the JSON); `members CH`.
/// - `$disconnect`: prints `disconnect ID CODE` (the tests read it in the logs).
async fn websocket(mut request: Request<Body>) -> Result<Response<Body>, Error> {
    let id = request
        .headers()
        .get("x-gureum-connection-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = request.body_mut().contents().await?.to_vec();
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let route = event["requestContext"]["routeKey"].as_str().unwrap_or("");
    match route {
        "$connect" => {
            // `?claims=1`: refuse, showing the claims header the event carried (a test
            // that clients cannot forge it).
            if event["queryStringParameters"]["claims"] == "1" {
                let claims = event["headers"]["x-gureum-auth-claims"]
                    .as_str()
                    .unwrap_or("absent")
                    .to_owned();
                return text(StatusCode::FORBIDDEN, format!("claims: {claims}"));
            }
            let reject = event["queryStringParameters"]["reject"]
                .as_str()
                .and_then(|code| code.parse::<u16>().ok())
                .and_then(|code| StatusCode::from_u16(code).ok());
            match reject {
                Some(status) => text(status, "rejected by the testbed".to_owned()),
                None => text(StatusCode::OK, String::new()),
            }
        }
        "$disconnect" => {
            let code = &event["requestContext"]["disconnectStatusCode"];
            println!("disconnect {id} {code}");
            text(StatusCode::OK, String::new())
        }
        _ => {
            let message = event["body"].as_str().unwrap_or("").to_owned();
            let (command, rest) = message.split_once(' ').unwrap_or((message.as_str(), ""));
            let answer = match command {
                "echo" => rest.to_owned(),
                "silent" => String::new(),
                "big" => "x".repeat(rest.parse().unwrap_or(0)),
                "close" => api("DELETE", &format!("/@connections/{id}"), "").await.0,
                "info" => api("GET", &format!("/@connections/{id}"), "").await.1,
                "send" => {
                    let (to, data) = rest.split_once(' ').unwrap_or((rest, ""));
                    api("POST", &format!("/@connections/{to}"), data).await.0
                }
                "join" => {
                    api("POST", &format!("/channels/{rest}/members/{id}"), "")
                        .await
                        .0
                }
                "leave" => {
                    api("DELETE", &format!("/channels/{rest}/members/{id}"), "")
                        .await
                        .0
                }
                "members" => api("GET", &format!("/channels/{rest}/members"), "").await.1,
                "broadcast" => {
                    let (channel, data) = rest.split_once(' ').unwrap_or((rest, ""));
                    api(
                        "POST",
                        &format!("/channels/{channel}/messages?exclude={id}"),
                        data,
                    )
                    .await
                    .1
                }
                other => format!("unknown command {other:?}"),
            };
            text(StatusCode::OK, answer)
        }
    }
}

/// A platform API call with the function's token: (status, body), or ("error", message).
async fn api(method: &str, path: &str, body: &str) -> (String, String) {
    let base = std::env::var("GUREUM_API").unwrap_or_default();
    let token = std::env::var("GUREUM_FUNCTION_TOKEN").unwrap_or_default();
    let request = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_owned()));
    let request = match request {
        Ok(request) => request,
        Err(e) => return ("error".into(), e.to_string()),
    };
    match Client::new().send(request).await {
        Ok(response) => {
            let status = response.status().as_u16().to_string();
            let mut body = response.into_body();
            let text = match body.contents().await {
                Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Err(e) => e.to_string(),
            };
            (status, text)
        }
        Err(e) => ("error".into(), format!("{e:#}")),
    }
}

/// `/fetch?url=U`: outbound GET through `wasi:http/outgoing-handler`.
async fn fetch(query: &str) -> Result<Response<Body>, Error> {
    let Some(url) = query_param(query, "url") else {
        return text(StatusCode::BAD_REQUEST, "fetch needs ?url=URL".to_owned());
    };
    let failed = |e: Error| {
        text(
            StatusCode::from_u16(599).expect("599 is valid"),
            format!("fetch failed: {e:#}"),
        )
    };
    let request = match Request::get(url.as_str()).body(Body::empty()) {
        Ok(r) => r,
        Err(e) => return failed(e.into()),
    };
    let response = match Client::new().send(request).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let (parts, mut upstream) = response.into_parts();
    let content = match upstream.contents().await {
        Ok(c) => c.to_vec(),
        Err(e) => return failed(e),
    };
    let mut out = Response::builder().status(parts.status);
    if let Some(ct) = parts.headers.get("content-type") {
        out = out.header("content-type", ct);
    }
    Ok(out.body(Body::from(content))?)
}

/// A plain-text response.
fn text(status: StatusCode, body: String) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from(body))?)
}

/// Query parameter `name` as a number.
fn number(query: &str, name: &str) -> Option<u64> {
    query_param(query, name)?.trim().parse().ok()
}

/// The first value of query parameter `name`, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes are kept as-is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one hex digit.
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `wasi:keyvalue` routes. The path holds `/kv/OP/BUCKET[/KEY]` (anywhere, so a
/// stripped `/fn/NAME` prefix or a manifest route before it does not matter); BUCKET and
/// KEY are percent-decoded (`+` reads as a space), KEY is the rest of the path (it may
/// contain `/`):
///
/// | route | behaviour |
/// |-------|-----------|
/// | `GET /kv/get/B/K` | 200 with the value, or 404 `no such key` |
/// | `PUT /kv/set/B/K` | stores the request body, 204 |
/// | `DELETE /kv/del/B/K` | 204 |
/// | `GET /kv/exists/B/K` | `true` or `false` |
/// | `POST /kv/incr/B/K?by=N` | atomic increment by N (an `i64`, default 1), answers the new value |
/// | `GET /kv/keys/B` | JSON array of every key, following the cursors; header `x-kv-pages` |
/// | `POST /kv/batch/B[?get=K1,K2]` | JSON object `{key: value}` → `set-many`, then `get-many` of its keys (and the `get` ones) → JSON object `{key: value or null}` |
/// | `POST /kv/delmany/B` | JSON array of keys → `delete-many`, 204 |
///
/// A `wasi:keyvalue` error answers 500 with its text (`other(...)`: the message).
mod keyvalue {
    use serde_json::{Map, Value};
    use wstd::http::body::Body;
    use wstd::http::{Error, Request, Response, StatusCode};

    use crate::bindings::wasi::keyvalue::{atomics, batch, store};
    use crate::{percent_decode, query_param, text};

    /// The operation a `/kv/...` path asks for.
    pub struct KvCall {
        op: String,
        bucket: String,
        key: String,
    }

    const OPS: &[&str] = &[
        "get", "set", "del", "exists", "incr", "keys", "batch", "delmany",
    ];

    impl KvCall {
        /// The call of a path holding `/kv/OP/BUCKET[/KEY]`, if it does.
        pub fn parse(path: &str) -> Option<Self> {
            let segments: Vec<&str> = path.split('/').collect();
            let at = segments
                .windows(2)
                .position(|pair| pair[0] == "kv" && OPS.contains(&pair[1]))?;
            let op = segments[at + 1].to_owned();
            let bucket = percent_decode(segments.get(at + 2)?);
            let key = segments
                .get(at + 3..)
                .map(|rest| rest.join("/"))
                .unwrap_or_default();
            Some(Self {
                op,
                bucket,
                key: percent_decode(&key),
            })
        }
    }

    /// Runs one `/kv/...` call.
    pub async fn handle(mut request: Request<Body>, call: KvCall) -> Result<Response<Body>, Error> {
        let query = request.uri().query().unwrap_or("").to_owned();
        let body = request.body_mut().contents().await?.to_vec();
        match run(&call, &query, body) {
            Ok(response) => response,
            Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, describe(&error)),
        }
    }

    fn describe(error: &store::Error) -> String {
        match error {
            store::Error::NoSuchStore => "no-such-store".to_owned(),
            store::Error::AccessDenied => "access-denied".to_owned(),
            store::Error::Other(message) => message.clone(),
        }
    }

    type Answer = Result<Response<Body>, Error>;

    fn run(call: &KvCall, query: &str, body: Vec<u8>) -> Result<Answer, store::Error> {
        let bucket = store::open(&call.bucket)?;
        let key = call.key.as_str();
        Ok(match call.op.as_str() {
            "get" => match bucket.get(key)? {
                Some(value) => Response::builder()
                    .header("content-type", "application/octet-stream")
                    .body(Body::from(value))
                    .map_err(Error::from),
                None => text(StatusCode::NOT_FOUND, "no such key".to_owned()),
            },
            "set" => {
                bucket.set(key, &body)?;
                empty()
            }
            "del" => {
                bucket.delete(key)?;
                empty()
            }
            "exists" => text(StatusCode::OK, bucket.exists(key)?.to_string()),
            "incr" => {
                let by = query_param(query, "by")
                    .map(|by| by.trim().parse::<i64>())
                    .transpose();
                let Ok(by) = by else {
                    return Ok(text(
                        StatusCode::BAD_REQUEST,
                        "by must be an i64".to_owned(),
                    ));
                };
                // The WIT counts in u64: a negative delta travels in two's complement.
                let delta = by.unwrap_or(1).cast_unsigned();
                let value = atomics::increment(&bucket, key, delta)?;
                text(StatusCode::OK, value.cast_signed().to_string())
            }
            "keys" => {
                let mut keys = Vec::new();
                let mut cursor = None;
                let mut pages = 0u64;
                loop {
                    let page = bucket.list_keys(cursor)?;
                    pages += 1;
                    keys.extend(page.keys.into_iter().map(Value::String));
                    match page.cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                json(Value::Array(keys), pages)
            }
            "batch" => {
                let Ok(Value::Object(entries)) = serde_json::from_slice::<Value>(&body) else {
                    return Ok(text(
                        StatusCode::BAD_REQUEST,
                        "batch needs a JSON object".to_owned(),
                    ));
                };
                let pairs: Vec<(String, Vec<u8>)> = entries
                    .into_iter()
                    .map(|(key, value)| {
                        let bytes = match value {
                            Value::String(s) => s.into_bytes(),
                            other => other.to_string().into_bytes(),
                        };
                        (key, bytes)
                    })
                    .collect();
                batch::set_many(&bucket, &pairs)?;
                let mut keys: Vec<String> = pairs.into_iter().map(|(key, _)| key).collect();
                if let Some(extra) = query_param(query, "get") {
                    keys.extend(
                        extra
                            .split(',')
                            .filter(|k| !k.is_empty())
                            .map(str::to_owned),
                    );
                }
                let found = batch::get_many(&bucket, &keys)?;
                let mut out = Map::new();
                for (key, value) in keys.iter().zip(found) {
                    let value = match value {
                        Some((_, bytes)) => {
                            Value::String(String::from_utf8_lossy(&bytes).into_owned())
                        }
                        None => Value::Null,
                    };
                    out.insert(key.clone(), value);
                }
                json(Value::Object(out), 1)
            }
            "delmany" => {
                let Ok(keys) = serde_json::from_slice::<Vec<String>>(&body) else {
                    return Ok(text(
                        StatusCode::BAD_REQUEST,
                        "delmany needs a JSON array of keys".to_owned(),
                    ));
                };
                batch::delete_many(&bucket, &keys)?;
                empty()
            }
            other => text(StatusCode::NOT_FOUND, format!("no kv operation {other}")),
        })
    }

    fn empty() -> Answer {
        Ok(Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())?)
    }

    fn json(value: Value, pages: u64) -> Answer {
        Ok(Response::builder()
            .header("content-type", "application/json")
            .header("x-kv-pages", pages)
            .body(Body::from(value.to_string()))?)
    }
}
