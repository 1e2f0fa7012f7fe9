//! Captures a guest's stdout and stderr as lines, held per instance until the invoke
//! layer attributes them to the invocation that produced them. Lines longer than
//! [`MAX_LINE_BYTES`] (8 KiB) are split, and at most [`MAX_CAPTURE_BYTES`] (1 MiB) is kept
//! per invocation.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gureum_model::LogStream;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line kept; longer output is split so one runaway write cannot hold memory.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Output kept per invocation; the rest is dropped with a note.
pub const MAX_CAPTURE_BYTES: usize = 1024 * 1024;

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedLine {
    /// stdout or stderr.
    pub stream: LogStream,
    /// When the line was completed, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The text without its newline.
    pub message: String,
}

#[derive(Default)]
struct Capture {
    lines: Vec<CapturedLine>,
    partial_stdout: Vec<u8>,
    partial_stderr: Vec<u8>,
    bytes: usize,
    truncated: bool,
}

/// Shared between an instance's stdout and stderr pipes and the instance itself.
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<Mutex<Capture>>);

impl LogCapture {
    pub(crate) fn pipe(&self, stream: LogStream) -> LogPipe {
        LogPipe {
            capture: self.clone(),
            stream,
        }
    }

    /// Takes every line captured so far, including unterminated ones.
    pub(crate) fn take(&self) -> Vec<CapturedLine> {
        let mut capture = self.lock();
        let now = gureum_model::now_ms();
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let partial = match stream {
                LogStream::Stdout => std::mem::take(&mut capture.partial_stdout),
                _ => std::mem::take(&mut capture.partial_stderr),
            };
            if !partial.is_empty() {
                capture.lines.push(CapturedLine {
                    stream,
                    ts_ms: now,
                    message: String::from_utf8_lossy(&partial).into_owned(),
                });
            }
        }
        if capture.truncated {
            capture.lines.push(CapturedLine {
                stream: LogStream::Platform,
                ts_ms: now,
                message: format!(
                    "output beyond {} KiB in this invocation was dropped",
                    MAX_CAPTURE_BYTES / 1024
                ),
            });
        }
        capture.bytes = 0;
        capture.truncated = false;
        std::mem::take(&mut capture.lines)
    }

    /// Adds a line from the platform itself (e.g. why an outbound request was refused)
    /// to the invocation's log.
    pub(crate) fn platform_line(&self, message: String) {
        self.lock().lines.push(CapturedLine {
            stream: LogStream::Platform,
            ts_ms: gureum_model::now_ms(),
            message,
        });
    }

    fn write(&self, stream: LogStream, bytes: &[u8]) {
        let mut capture = self.lock();
        if capture.bytes + bytes.len() > MAX_CAPTURE_BYTES {
            capture.truncated = true;
            return;
        }
        capture.bytes += bytes.len();
        let capture = &mut *capture;
        let partial = match stream {
            LogStream::Stdout => &mut capture.partial_stdout,
            _ => &mut capture.partial_stderr,
        };
        for &byte in bytes {
            if byte == b'\n' || partial.len() >= MAX_LINE_BYTES {
                let mut text = std::mem::take(partial);
                if text.last() == Some(&b'\r') {
                    text.pop();
                }
                capture.lines.push(CapturedLine {
                    stream,
                    ts_ms: gureum_model::now_ms(),
                    message: String::from_utf8_lossy(&text).into_owned(),
                });
                if byte == b'\n' {
                    continue;
                }
            }
            partial.push(byte);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Capture> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A guest's stdout or stderr.
#[derive(Clone)]
pub(crate) struct LogPipe {
    capture: LogCapture,
    stream: LogStream,
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.capture.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always writable: output beyond the cap is dropped rather than blocking the guest.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.capture.write(self.stream, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_split_into_lines_per_stream() {
        let capture = LogCapture::default();
        capture.write(LogStream::Stdout, b"one\ntw");
        capture.write(LogStream::Stderr, b"err\r\n");
        capture.write(LogStream::Stdout, b"o\nthree");
        let lines: Vec<(LogStream, String)> = capture
            .take()
            .into_iter()
            .map(|line| (line.stream, line.message))
            .collect();
        assert_eq!(
            lines,
            vec![
                (LogStream::Stdout, "one".to_string()),
                (LogStream::Stderr, "err".to_string()),
                (LogStream::Stdout, "two".to_string()),
                (LogStream::Stdout, "three".to_string()),
            ]
        );
        assert!(capture.take().is_empty());
    }

    #[test]
    fn output_beyond_the_cap_is_dropped_with_a_note() {
        let capture = LogCapture::default();
        let chunk = vec![b'x'; MAX_CAPTURE_BYTES / 2];
        for _ in 0..3 {
            capture.write(LogStream::Stdout, &chunk);
        }
        let lines = capture.take();
        assert_eq!(lines.last().unwrap().stream, LogStream::Platform);
        assert!(lines.last().unwrap().message.contains("dropped"));
    }
}
