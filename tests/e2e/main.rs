//! End-to-end tests: the real `gureum` binary on ephemeral ports with a temp data dir,
//! driven by the real CLI and an HTTP client (also h2c). One binary (one link on 2 cores);
//! tests share a server per store and isolate by function name. Tests that restart,
//! kill or reconfigure a server run their own, on SQLite and on a fresh PostgreSQL
//! database. WebSocket tests use tokio-tungstenite clients; the `*browser.rs` modules
//! drive Debian's Chromium with playwright-core; `security/` holds one module per audit
//! finding. What needs no separate process is tested in process in
//! `crates/platform/tests`.

mod backend;
mod browser;
mod console;
mod console_browser;
mod early_errors;
mod harness;
mod lambda;
mod lifecycle;
mod metering;
mod notes_browser;
mod operations;
mod queue;
mod restart;
mod sandbox;
mod sdk;
mod security;
mod static_site;
mod templates;
mod tls;
mod usage_cli;
mod validation;
mod websocket;

pub use harness::*;
