//! The bus behind channel broadcasts. One interface so a broadcast reaches the members a
//! node holds: [`LocalBus`] delivers within this process (`Registry::deliver`); a bus over
//! a shared store (the scale-out work) publishes to every node, each delivering to its own
//! connections.

use std::sync::Arc;

use gureum_telemetry::{Metrics, WebSocketLabels};

use crate::registry::{Frame, Registry};

/// A broadcast to one channel of one function.
#[derive(Debug, Clone)]
pub struct ChannelMessage {
    /// The function whose channel it is (channels are scoped per function).
    pub function: String,
    /// The channel.
    pub channel: String,
    /// What every member gets.
    pub frame: Frame,
    /// A connection left out (typically the sender).
    pub exclude: Option<String>,
}

/// Why a broadcast could not be published.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The shared bus is unreachable.
    #[error("the broadcast bus is unavailable: {0}")]
    Unavailable(String),
}

/// Publishes broadcasts to every node holding members.
#[async_trait::async_trait]
pub trait Bus: Send + Sync {
    /// Delivers `message`; returns how many connections it was queued for on this node.
    async fn publish(&self, message: ChannelMessage) -> Result<usize, BusError>;
}

/// Delivers broadcasts to the connections of this process.
pub struct LocalBus {
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
}

impl LocalBus {
    /// A bus over `registry`.
    pub fn new(registry: Arc<Registry>, metrics: Arc<Metrics>) -> Self {
        Self { registry, metrics }
    }
}

#[async_trait::async_trait]
impl Bus for LocalBus {
    async fn publish(&self, message: ChannelMessage) -> Result<usize, BusError> {
        // Connections closed as too slow are counted when they end.
        let (delivered, _slow) = self.registry.deliver(
            &message.function,
            &message.channel,
            &message.frame,
            message.exclude.as_deref(),
        );
        self.metrics
            .websocket_messages_out
            .get_or_create(&WebSocketLabels {
                function: message.function,
            })
            .inc_by(delivered as u64);
        Ok(delivered)
    }
}
