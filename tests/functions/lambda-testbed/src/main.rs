//! End-to-end test fixture for `runtime = "lambda"`: one AWS Lambda function
//! built on the official `lambda_http` client (buffered responses) with many
//! behaviours, chosen by the request path:
//!
//! * `/echo` — 200 JSON `{"method", "path", "query", "headers", "cookie", "body_base64"}`
//!   describing the request as the function received it.
//! * `/binary` — 200 `application/octet-stream` with the request body verbatim
//!   (sent base64-encoded, `isBase64Encoded: true`).
//! * `/status?code=N` — status N, body `status N`, header `x-testbed: yes`
//!   and the cookies `a=1` and `b=2`.
//! * `/error` — a handler error reported as errorType `TestbedError`, message `boom`.
//! * `/crash` — the process exits at once with code 3, without answering.
//! * `/sleep?ms=N` — 200 `slept N` after N milliseconds.
//! * `/env` — 200 JSON object of the process environment.
//! * `/pid` — 200 JSON `{"pid": N, "stream": S}` (its pid, and its log stream name, which
//!   names the instance: in the sandbox every function's pid is the same).
//! * `/log?n=N` — prints `line i` to stdout and `err i` to stderr for i in
//!   0..N, then 200 `logged N`.
//! * `/hog?mb=N` — allocates and touches N MiB, held until the next
//!   invocation starts (so past the response), 200 `held N`.
//! * `/steal?api=HOST:PORT` — tries to take an invocation from a Runtime API
//!   itself (`GET /2018-06-01/runtime/invocation/next`, 1 s timeout), 200 JSON
//!   `{"status": N|null, "error": "..."|null}`.
//! * `/escape?try=NAME&…` — a native escape attempt (the sandbox tests; the Python
//!   `hostile.py` has more): `read&path=P`, `environ` (another function's environment
//!   in `/proc`), `signal&pid=N`, `connect&host=H&port=P`, `writecode`; 200 JSON
//!   `{"escaped": bool, "detail": "..."}`.
//! * anything else — 200 text `lambda-testbed`.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_http::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use lambda_http::lambda_runtime::Diagnostic;
use lambda_http::{Body, Request, Response, service_fn};
use serde_json::{Map, Value, json};

/// Memory held by `/hog` until the next invocation starts.
static HELD: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// The error `/error` returns; the runtime reports it with errorType `TestbedError`.
#[derive(Debug)]
struct TestbedError(String);

impl From<TestbedError> for Diagnostic {
    fn from(error: TestbedError) -> Self {
        Diagnostic {
            error_type: "TestbedError".into(),
            error_message: error.0,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(service_fn(handle)).await
}

/// Dispatches on the request path.
async fn handle(req: Request) -> Result<Response<Body>, TestbedError> {
    // Whatever `/hog` held has been answered by now.
    HELD.lock().unwrap_or_else(|e| e.into_inner()).take();

    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/echo" => Ok(json_response(echo(&req))),
        "/binary" => Ok(Response::builder()
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(Body::Binary(req.body().as_ref().to_vec()))
            .expect("valid response")),
        "/status" => Ok(status(&req)),
        "/error" => Err(TestbedError("boom".into())),
        "/crash" => std::process::exit(3),
        "/sleep" => {
            let ms = query_num(&req, "ms");
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(text(format!("slept {ms}")))
        }
        "/env" => {
            let vars: Map<String, Value> = std::env::vars_os()
                .map(|(k, v)| {
                    let value = Value::String(v.to_string_lossy().into_owned());
                    (k.to_string_lossy().into_owned(), value)
                })
                .collect();
            Ok(json_response(Value::Object(vars)))
        }
        "/pid" => Ok(json_response(json!({
            "pid": std::process::id(),
            "stream": std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").ok(),
        }))),
        "/log" => {
            let n = query_num(&req, "n");
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr().lock();
            for i in 0..n {
                let _ = writeln!(out, "line {i}");
                let _ = writeln!(err, "err {i}");
            }
            let _ = out.flush();
            let _ = err.flush();
            Ok(text(format!("logged {n}")))
        }
        "/hog" => {
            let mb = query_num(&req, "mb");
            let len = usize::try_from(mb).unwrap_or(usize::MAX / 2) << 20;
            let mut memory = vec![0u8; len];
            // Write every page so the memory is really resident.
            for page in memory.chunks_mut(4096) {
                page[0] = 1;
            }
            *HELD.lock().unwrap_or_else(|e| e.into_inner()) = Some(memory);
            Ok(text(format!("held {mb}")))
        }
        "/steal" => {
            let api = query_param(&req, "api").unwrap_or_default();
            let (status, error) = match steal(&api) {
                Ok(status) => (json!(status), Value::Null),
                Err(e) => (Value::Null, json!(e)),
            };
            Ok(json_response(json!({ "status": status, "error": error })))
        }
        "/escape" => {
            let (escaped, detail) = escape(&req);
            Ok(json_response(
                json!({ "escaped": escaped, "detail": detail }),
            ))
        }
        _ => Ok(text("lambda-testbed".into())),
    }
}

/// One escape attempt of `/escape`: (whether it got what a sandbox must deny, detail).
fn escape(req: &Request) -> (bool, String) {
    let param = |name| query_param(req, name).unwrap_or_default();
    let outcome = |result: std::io::Result<String>| match result {
        Ok(detail) => (true, detail),
        Err(error) => (false, error.to_string()),
    };
    match param("try").as_str() {
        "read" => {
            outcome(std::fs::read(param("path")).map(|bytes| format!("read {} bytes", bytes.len())))
        }
        "environ" => {
            let own = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
            let own = format!("AWS_LAMBDA_FUNCTION_NAME={own}");
            let found = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .find_map(|entry| {
                    let environ = std::fs::read(entry.path().join("environ")).ok()?;
                    environ
                        .split(|byte| *byte == 0)
                        .map(String::from_utf8_lossy)
                        .find(|variable| {
                            variable.starts_with("AWS_LAMBDA_FUNCTION_NAME=") && *variable != own
                        })
                        .map(|variable| variable.into_owned())
                });
            match found {
                Some(variable) => (true, variable),
                None => (false, "no other function's environment".into()),
            }
        }
        "signal" => outcome(signal(param("pid").parse().unwrap_or(0))),
        "connect" => outcome(
            TcpStream::connect_timeout(
                &match (
                    param("host").as_str(),
                    param("port").parse::<u16>().unwrap_or(0),
                )
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut addresses| addresses.next())
                {
                    Some(address) => address,
                    None => return (false, "no address".into()),
                },
                Duration::from_secs(2),
            )
            .map(|_| "connected".to_string()),
        ),
        "writecode" => {
            let root = std::env::var("LAMBDA_TASK_ROOT").unwrap_or_default();
            let path = std::path::Path::new(&root).join("planted");
            outcome(std::fs::write(&path, b"x").map(|()| {
                let _ = std::fs::remove_file(&path);
                format!("wrote {}", path.display())
            }))
        }
        other => (false, format!("unknown attempt {other:?}")),
    }
}

/// `kill(pid, 0)`: whether this process may signal `pid`.
#[allow(unsafe_code)]
fn signal(pid: i32) -> std::io::Result<String> {
    if pid <= 1 {
        return Err(std::io::Error::other("no pid"));
    }
    // SAFETY: kill(2) with plain integers; signal 0 only checks permission.
    if unsafe { libc::kill(pid, 0) } == 0 {
        Ok("signalled".into())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The `/echo` document.
fn echo(req: &Request) -> Value {
    let mut headers = Map::new();
    for name in req.headers().keys() {
        let value = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.insert(name.as_str().to_owned(), Value::String(value));
    }
    let cookie = req
        .headers()
        .get(COOKIE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query().unwrap_or(""),
        "headers": headers,
        "cookie": cookie,
        "body_base64": BASE64.encode(req.body().as_ref()),
    })
}

/// `/status?code=N`.
fn status(req: &Request) -> Response<Body> {
    let code = query_num(req, "code");
    match u16::try_from(code)
        .ok()
        .and_then(|c| lambda_http::http::StatusCode::from_u16(c).ok())
    {
        Some(status) => Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "text/plain")
            .header("x-testbed", "yes")
            .header(SET_COOKIE, "a=1")
            .header(SET_COOKIE, "b=2")
            .body(Body::Text(format!("status {code}")))
            .expect("valid response"),
        None => Response::builder()
            .status(400)
            .header(CONTENT_TYPE, "text/plain")
            .body(Body::Text(format!("bad status code {code}")))
            .expect("valid response"),
    }
}

/// `GET http://API/2018-06-01/runtime/invocation/next` with a 1 s timeout;
/// the HTTP status of the answer, or why there was none.
fn steal(api: &str) -> Result<u16, String> {
    let timeout = Duration::from_secs(1);
    let addr = api
        .to_socket_addrs()
        .map_err(|e| format!("resolving {api:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{api:?} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    // Read the status line only.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().next().unwrap_or_default();
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status line in {line:?}"))
}

/// The raw value of query parameter `name`, if present.
fn query_param(req: &Request, name: &str) -> Option<String> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Query parameter `name` as a number (0 when absent or invalid).
fn query_num(req: &Request, name: &str) -> u64 {
    query_param(req, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A 200 `text/plain` response.
fn text(body: String) -> Response<Body> {
    Response::builder()
        .header(CONTENT_TYPE, "text/plain")
        .body(Body::Text(body))
        .expect("valid response")
}

/// A 200 `application/json` response.
fn json_response(value: Value) -> Response<Body> {
    Response::builder()
        .header(CONTENT_TYPE, "application/json")
        .body(Body::Text(value.to_string()))
        .expect("valid response")
}
