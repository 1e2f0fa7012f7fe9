//! The security audit's findings (`SECURITY.md`, issue 23), one module each: every test
//! reproduces the attack against the real binary and asserts that it now fails, next to
//! the legitimate use it must not break.

mod admin_token;
mod async_abuse;
mod bearer;
mod client_address;
mod data_dir;
mod function_tokens;
mod host_header;
mod idempotency;
mod listing_oracle;
mod login_limits;
mod missing_files;
mod origins;
mod outbound_dns;
mod platform_headers;
mod realtime_revocation;
mod refresh_race;
mod reserved_routes;
mod slow_clients;

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Sends `request` as is over a new TCP connection to `base` (`http://HOST:PORT`) and
/// returns the answer's head and its `content-length` body (what came back before the
/// server closed or 5 s passed).
pub(crate) async fn raw_exchange(base: &str, request: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(read)) => {
                answer.extend_from_slice(&buffer[..read]);
                if let Some(end) = answer.windows(4).position(|window| window == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if answer.len() >= end + 4 + length {
                        break;
                    }
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}
