//! Answers given before the request body is read (404, 400, 401, 403, 413, 429, and the
//! admin API's 401) reach the client every time, over a kept-alive connection, whatever
//! the body's size or framing.
//!
//! The client is a plain socket that writes the whole request and then reads the answer,
//! as `curl`, Python's `http.client` and wasi-http's outgoing client do. Each path gets
//! one connection for all of its requests: a server that closes it after an early answer
//! (or resets it with the client's bytes unread) fails the test at the first request that
//! follows.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::backend::signup;
use crate::harness::{Server, deploy};

/// Requests per path (the bar: 1,000 without one client-side error).
const REQUESTS: usize = 1000;
/// The gateway's body limit in this test: small, so 413 needs no huge bodies.
const LIMIT: usize = 128 * 1024;

const KIB: usize = 1024;

/// One early-answer path and what to send it.
struct Case {
    what: &'static str,
    /// `public` or `admin` listener.
    admin: bool,
    path: &'static str,
    headers: String,
    /// Body sizes, used in turn.
    sizes: &'static [usize],
    /// Every other request sends its body chunked (no content-length).
    chunked: bool,
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_answers_reach_clients_still_sending_bodies() {
    let limit = LIMIT.to_string();
    let server = Server::start_with(&["--no-examples", "--max-body-bytes", &limit]);
    let _user_only = deploy(&server, "early-user", "auth = \"user\"");
    let _org_only = deploy(
        &server,
        "early-org",
        "auth = 'auth.email.endsWith(\"@example.org\")'",
    );
    let _capped = deploy(&server, "early-capped", "");
    let quota = server.cli(&["quota", "set", "early-capped", "--requests", "1"]);
    assert!(quota.success, "{quota:?}");
    // The one request the cap allows; every later one is refused with 429.
    let first = server.get("/fn/early-capped/echo").await;
    assert_eq!(first.status(), 200);
    let outsider = signup(&server, "someone@elsewhere.net").await;
    let bearer = |token: &str| format!("authorization: Bearer {token}\r\n");

    let small: &'static [usize] = &[0, KIB, 16 * KIB, 100 * KIB];
    let large: &'static [usize] = &[0, KIB, 64 * KIB, 1024 * KIB];
    let cases = vec![
        Case {
            what: "404 route_not_found",
            admin: false,
            path: "/no/such/route",
            headers: String::new(),
            sizes: large,
            chunked: true,
            status: 404,
        },
        Case {
            what: "400 bad_version",
            admin: false,
            path: "/fn/early-user@latest/",
            headers: String::new(),
            sizes: large,
            chunked: true,
            status: 400,
        },
        Case {
            what: "404 function_not_found",
            admin: false,
            path: "/fn/early-nobody/",
            headers: String::new(),
            sizes: small,
            chunked: true,
            status: 404,
        },
        Case {
            what: "401 auth = user",
            admin: false,
            path: "/fn/early-user/echo",
            headers: String::new(),
            sizes: small,
            chunked: true,
            status: 401,
        },
        Case {
            what: "403 auth rule",
            admin: false,
            path: "/fn/early-org/echo",
            headers: bearer(&outsider.access),
            sizes: small,
            chunked: true,
            status: 403,
        },
        Case {
            what: "429 quota_exceeded",
            admin: false,
            path: "/fn/early-capped/echo",
            headers: String::new(),
            sizes: small,
            chunked: true,
            status: 429,
        },
        Case {
            what: "413 payload_too_large",
            admin: false,
            path: "/fn/early-user/echo",
            headers: String::new(),
            sizes: &[LIMIT + 1, 256 * KIB, 1024 * KIB],
            chunked: false,
            status: 413,
        },
        Case {
            what: "401 admin API without the token",
            admin: true,
            path: "/api/v1/functions",
            headers: bearer("not-the-token"),
            sizes: large,
            chunked: true,
            status: 401,
        },
    ];

    let mut runs = Vec::new();
    for case in cases {
        let base = if case.admin {
            &server.admin_url
        } else {
            &server.public_url
        };
        let address = base.trim_start_matches("http://").to_string();
        runs.push(tokio::spawn(async move {
            let outcome =
                tokio::time::timeout(Duration::from_secs(300), run_case(&address, &case)).await;
            match outcome {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(format!("{}: {error}", case.what)),
                Err(_) => Err(format!("{}: not done within 300 s", case.what)),
            }
        }));
    }
    let mut failures = Vec::new();
    for run in runs {
        if let Err(failure) = run.await.unwrap() {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Sends [`REQUESTS`] requests of `case` on one kept-alive connection.
async fn run_case(address: &str, case: &Case) -> Result<(), String> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|error| format!("connect: {error}"))?;
    stream.set_nodelay(true).unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let payload = vec![b'x'; case.sizes.iter().copied().max().unwrap_or(0)];
    for index in 0..REQUESTS {
        let size = case.sizes[index % case.sizes.len()];
        let chunked = case.chunked && index % 2 == 1;
        let body = &payload[..size];
        let mut request = format!(
            "POST {} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/octet-stream\r\n{}",
            case.path, case.headers
        );
        if chunked {
            request.push_str("transfer-encoding: chunked\r\n\r\n");
        } else {
            request.push_str(&format!("content-length: {size}\r\n\r\n"));
        }
        let failed = |step: &str, error: &dyn std::fmt::Display| {
            format!(
                "request {} of {REQUESTS} ({size} bytes{}): {step}: {error}",
                index + 1,
                if chunked { ", chunked" } else { "" }
            )
        };
        writer
            .write_all(request.as_bytes())
            .await
            .map_err(|error| failed("writing the head", &error))?;
        let sent = if chunked {
            write_chunked(&mut writer, body).await
        } else {
            writer.write_all(body).await
        };
        sent.map_err(|error| failed("writing the body", &error))?;
        let (status, close) = read_response(&mut reader)
            .await
            .map_err(|error| failed("reading the answer", &error))?;
        if status != case.status {
            return Err(failed("status", &format!("{status}, not {}", case.status)));
        }
        if close {
            return Err(failed(
                "answer",
                &"connection: close on a kept-alive request",
            ));
        }
    }
    Ok(())
}

/// The body in chunks of at most 32 KiB, then the last chunk.
async fn write_chunked(
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    body: &[u8],
) -> std::io::Result<()> {
    for chunk in body.chunks(32 * KIB) {
        writer
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        writer.write_all(chunk).await?;
        writer.write_all(b"\r\n").await?;
    }
    writer.write_all(b"0\r\n\r\n").await
}

/// Reads one answer with a content-length body; returns its status and whether it said
/// `connection: close`.
async fn read_response(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Result<(u16, bool), String> {
    let mut line = String::new();
    let read = reader
        .read_line(&mut line)
        .await
        .map_err(|error| error.to_string())?;
    if read == 0 {
        return Err("the server closed the connection".to_string());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("not a status line: {line:?}"))?;
    let (mut length, mut close) = (None, false);
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .await
            .map_err(|error| error.to_string())?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("not a header: {header:?}"))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = value.parse::<usize>().ok();
        } else if name == "connection" && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    let length = length.ok_or("the answer has no content-length")?;
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|error| error.to_string())?;
    Ok((status, close))
}
