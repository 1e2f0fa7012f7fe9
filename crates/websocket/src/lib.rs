//! Serverless WebSockets: the gateway holds each connection and stateless functions handle
//! its events, the way API Gateway WebSocket APIs work.
//!
//! - [`Hub::accept`] answers `GET /ws/NAME`: it invokes NAME with a `$connect` event (a
//!   non-2xx answer refuses the upgrade with that status), then holds the connection,
//!   invoking `$default` per message (a non-empty answer goes back to the caller) and
//!   `$disconnect` when it ends, whoever ends it.
//! - [`Hub::platform_api`] serves the management API functions call with their
//!   `GUREUM_FUNCTION_TOKEN`: `@connections/{id}` (send, close, info — the shape the AWS
//!   SDKs' API Gateway management clients speak) and channels (join, leave, members,
//!   broadcast).
//! - Broadcasts go through a [`Bus`]; [`LocalBus`] delivers within this process, and a
//!   shared bus can deliver to connections held by other nodes.
//!
//! Limits keep one connection from hurting the others: message size (close 1009), idle
//! time and age (close 1001), a per-function connection cap, a bounded send queue (a
//! consumer that does not keep up is closed with 1013), and pings to find dead peers.
//!
//! At shutdown [`Hub::shutdown`] closes every connection (1001) and waits for their
//! `$disconnect`s before the public listener stops, so functions can still call the
//! platform API meanwhile.

mod bus;
mod connection;
mod event;
mod platform;
mod registry;

use std::sync::Arc;
use std::time::Duration;

use gureum_invoke::Invoker;
use gureum_telemetry::{Metrics, Telemetry};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use bus::{Bus, BusError, ChannelMessage, LocalBus};
pub use connection::AcceptError;
pub use registry::{Frame, Registry};

/// Default largest message in either direction (API Gateway's frame limit is 32 KiB,
/// its message limit 128 KiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Default time without a message before a connection is closed (API Gateway: 10 min).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default longest life of a connection (API Gateway: 2 h).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(2 * 60 * 60);
/// Default most connections open at once per function on one node.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default messages waiting to be written to one client before it counts as too slow.
pub const DEFAULT_SEND_QUEUE: usize = 256;
/// Default time between keep-alive pings; a peer silent for two of them is dropped.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
/// Longest time writing one message to a client may take before it counts as too slow.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits of WebSocket connections.
#[derive(Debug, Clone, Copy)]
pub struct WsSettings {
    /// Largest message, in bytes, either way.
    pub max_message_bytes: usize,
    /// Time without a message either way before the connection is closed.
    pub idle_timeout: Duration,
    /// Longest life of a connection.
    pub max_age: Duration,
    /// Most open connections per function on this node.
    pub max_connections: usize,
    /// Messages queued for one client before it is closed as too slow.
    pub send_queue: usize,
    /// Time between keep-alive pings.
    pub ping_interval: Duration,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_age: DEFAULT_MAX_AGE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            send_queue: DEFAULT_SEND_QUEUE,
            ping_interval: DEFAULT_PING_INTERVAL,
        }
    }
}

/// Every WebSocket connection of this node, and what they need.
pub struct Hub {
    invoker: Arc<Invoker>,
    metrics: Arc<Metrics>,
    telemetry: Telemetry,
    settings: WsSettings,
    registry: Arc<Registry>,
    bus: Arc<dyn Bus>,
    // Connection tasks, waited for at shutdown (each ends with its `$disconnect`).
    tasks: TaskTracker,
    closing: CancellationToken,
}

impl Hub {
    /// A hub delivering broadcasts within this process.
    pub fn new(
        invoker: Arc<Invoker>,
        metrics: Arc<Metrics>,
        telemetry: Telemetry,
        settings: WsSettings,
    ) -> Arc<Self> {
        let registry = Arc::new(Registry::default());
        let bus = Arc::new(LocalBus::new(registry.clone(), metrics.clone()));
        Self::with_bus(invoker, metrics, telemetry, settings, registry, bus)
    }

    /// A hub with its own bus (one that reaches other nodes), sharing `registry` with it.
    pub fn with_bus(
        invoker: Arc<Invoker>,
        metrics: Arc<Metrics>,
        telemetry: Telemetry,
        settings: WsSettings,
        registry: Arc<Registry>,
        bus: Arc<dyn Bus>,
    ) -> Arc<Self> {
        Arc::new(Self {
            invoker,
            metrics,
            telemetry,
            settings,
            registry,
            bus,
            tasks: TaskTracker::new(),
            closing: CancellationToken::new(),
        })
    }

    /// The limits in force.
    pub fn settings(&self) -> &WsSettings {
        &self.settings
    }

    /// Open connections on this node.
    pub fn open_connections(&self) -> usize {
        self.registry.len()
    }

    /// Open connections per function on this node.
    pub fn open_per_function(&self) -> Vec<(String, usize)> {
        self.registry.counts()
    }

    /// Closes every connection (1001, going away) and waits up to `grace` for their
    /// `$disconnect` invocations; new upgrades are refused from now on. Runs while the
    /// public listener still serves, so functions can call the platform API meanwhile.
    pub async fn shutdown(&self, grace: Duration) {
        self.closing.cancel();
        let open = self.registry.close_all(1001, "the server is shutting down");
        if open > 0 {
            tracing::info!(open, "closing WebSocket connections");
        }
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "WebSocket connections still closing after the shutdown grace period"
            );
        }
    }
}
