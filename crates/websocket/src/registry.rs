//! The open connections of this node and their channel memberships. Everything here is
//! in memory and synchronous: a send is a `try_send` into the connection's bounded
//! queue, so a broadcast never waits for a slow client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;

/// A message for a client: text when it is UTF-8, else binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Bytes),
}

impl Frame {
    /// Text when `bytes` are UTF-8, else binary (how posted data is sent on).
    pub fn from_bytes(bytes: Bytes) -> Self {
        match std::str::from_utf8(&bytes) {
            Ok(text) => Frame::Text(text.to_string()),
            Err(_) => Frame::Binary(bytes),
        }
    }

    pub(crate) fn message(&self) -> Message {
        match self {
            Frame::Text(text) => Message::text(text.as_str()),
            Frame::Binary(bytes) => Message::Binary(bytes.clone()),
        }
    }
}

/// Why a send did not reach the client's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The connection is closed or closing.
    Gone,
    /// Its queue was full: it has been closed with 1013.
    TooSlow,
}

/// How a connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseReason {
    pub code: u16,
    pub reason: String,
}

/// One open connection.
pub(crate) struct Conn {
    pub id: String,
    pub function: String,
    pub connected_at_ms: i64,
    pub last_active_ms: AtomicI64,
    pub source_ip: String,
    pub user_agent: String,
    queue: mpsc::Sender<Message>,
    gone: AtomicBool,
    close: Mutex<Option<CloseReason>>,
    close_notify: Notify,
    /// channel → the meta given when joining.
    pub channels: Mutex<HashMap<String, serde_json::Value>>,
    pub slow_consumer: AtomicBool,
}

impl Conn {
    pub fn new(
        id: String,
        function: String,
        source_ip: String,
        user_agent: String,
        queue: mpsc::Sender<Message>,
    ) -> Self {
        let now = gureum_model::now_ms();
        Self {
            id,
            function,
            connected_at_ms: now,
            last_active_ms: AtomicI64::new(now),
            source_ip,
            user_agent,
            queue,
            gone: AtomicBool::new(false),
            close: Mutex::new(None),
            close_notify: Notify::new(),
            channels: Mutex::default(),
            slow_consumer: AtomicBool::new(false),
        }
    }

    /// Queues `message` for the client without waiting.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        if self.gone.load(Ordering::Acquire) {
            return Err(SendError::Gone);
        }
        match self.queue.try_send(message) {
            Ok(()) => {
                self.touch();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.slow_consumer.store(true, Ordering::Release);
                self.close(1013, "the client did not read its messages fast enough");
                Err(SendError::TooSlow)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Gone),
        }
    }

    /// Queues a control frame (ping) without counting it as activity; a full queue
    /// drops it, as the data already waiting shows the peer is behind.
    pub fn send_control(&self, message: Message) -> Result<(), SendError> {
        if self.is_gone() {
            return Err(SendError::Gone);
        }
        self.queue.try_send(message).map_err(|_| SendError::Gone)
    }

    /// Marks activity (for the idle timeout).
    pub fn touch(&self) {
        self.last_active_ms
            .store(gureum_model::now_ms(), Ordering::Relaxed);
    }

    /// Asks the connection to close with `code`; the first reason wins.
    pub fn close(&self, code: u16, reason: &str) {
        self.gone.store(true, Ordering::Release);
        let mut close = lock(&self.close);
        if close.is_none() {
            *close = Some(CloseReason {
                code,
                reason: reason.to_string(),
            });
        }
        drop(close);
        self.close_notify.notify_waiters();
        self.close_notify.notify_one();
    }

    /// The reason it was asked to close, if it was.
    pub fn close_reason(&self) -> Option<CloseReason> {
        lock(&self.close).clone()
    }

    /// Resolves once [`Conn::close`] was called.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let notified = self.close_notify.notified();
            if let Some(reason) = self.close_reason() {
                return reason;
            }
            notified.await;
        }
    }

    /// Marks the connection closed by the client (sends now fail with Gone).
    pub fn mark_gone(&self) {
        self.gone.store(true, Ordering::Release);
    }

    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }
}

type ChannelKey = (String, String);

/// Connections by id and channel memberships, per function.
#[derive(Default)]
pub struct Registry {
    connections: RwLock<HashMap<String, Arc<Conn>>>,
    per_function: Mutex<HashMap<String, usize>>,
    channels: RwLock<HashMap<ChannelKey, HashMap<String, Arc<Conn>>>>,
}

impl Registry {
    /// Open connections.
    pub fn len(&self) -> usize {
        read(&self.connections).len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `conn` unless its function is at `cap`.
    pub(crate) fn insert(&self, conn: Arc<Conn>, cap: usize) -> bool {
        let mut counts = lock(&self.per_function);
        let count = counts.entry(conn.function.clone()).or_default();
        if *count >= cap {
            return false;
        }
        *count += 1;
        drop(counts);
        write(&self.connections).insert(conn.id.clone(), conn);
        true
    }

    /// Removes a connection and its memberships.
    pub(crate) fn remove(&self, id: &str) {
        let Some(conn) = write(&self.connections).remove(id) else {
            return;
        };
        let joined: Vec<String> = lock(&conn.channels).drain().map(|(k, _)| k).collect();
        if !joined.is_empty() {
            let mut channels = write(&self.channels);
            for channel in joined {
                let key = (conn.function.clone(), channel);
                if let Some(members) = channels.get_mut(&key) {
                    members.remove(id);
                    if members.is_empty() {
                        channels.remove(&key);
                    }
                }
            }
        }
        let mut counts = lock(&self.per_function);
        if let Some(count) = counts.get_mut(&conn.function) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&conn.function);
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Conn>> {
        read(&self.connections).get(id).cloned()
    }

    /// Open connections of `function` on this node.
    pub fn count(&self, function: &str) -> usize {
        lock(&self.per_function).get(function).copied().unwrap_or(0)
    }

    /// Open connections per function on this node.
    pub fn counts(&self) -> Vec<(String, usize)> {
        lock(&self.per_function)
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(function, count)| (function.clone(), *count))
            .collect()
    }

    /// Asks every connection to close; returns how many there were.
    pub(crate) fn close_all(&self, code: u16, reason: &str) -> usize {
        let all: Vec<Arc<Conn>> = read(&self.connections).values().cloned().collect();
        for conn in &all {
            conn.close(code, reason);
        }
        all.len()
    }

    pub(crate) fn join(&self, conn: &Arc<Conn>, channel: &str, meta: serde_json::Value) {
        lock(&conn.channels).insert(channel.to_string(), meta);
        write(&self.channels)
            .entry((conn.function.clone(), channel.to_string()))
            .or_default()
            .insert(conn.id.clone(), conn.clone());
    }

    pub(crate) fn leave(&self, conn: &Conn, channel: &str) {
        lock(&conn.channels).remove(channel);
        let key = (conn.function.clone(), channel.to_string());
        let mut channels = write(&self.channels);
        if let Some(members) = channels.get_mut(&key) {
            members.remove(&conn.id);
            if members.is_empty() {
                channels.remove(&key);
            }
        }
    }

    /// (connection id, meta) of every member of a channel on this node.
    pub(crate) fn members(
        &self,
        function: &str,
        channel: &str,
    ) -> Vec<(String, serde_json::Value)> {
        let key = (function.to_string(), channel.to_string());
        let members: Vec<Arc<Conn>> = read(&self.channels)
            .get(&key)
            .map(|members| members.values().cloned().collect())
            .unwrap_or_default();
        let mut list: Vec<(String, serde_json::Value)> = members
            .iter()
            .filter(|conn| !conn.is_gone())
            .map(|conn| {
                let meta = lock(&conn.channels)
                    .get(channel)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null);
                (conn.id.clone(), meta)
            })
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// Queues `frame` for every member of a channel on this node except `exclude`;
    /// returns (delivered, closed as too slow).
    pub fn deliver(
        &self,
        function: &str,
        channel: &str,
        frame: &Frame,
        exclude: Option<&str>,
    ) -> (usize, usize) {
        let key = (function.to_string(), channel.to_string());
        // Collected first so no lock is held while queueing (a full queue closes a
        // connection, which must not wait on this lock).
        let members: Vec<Arc<Conn>> = read(&self.channels)
            .get(&key)
            .map(|members| members.values().cloned().collect())
            .unwrap_or_default();
        let message = frame.message();
        let (mut delivered, mut slow) = (0, 0);
        for conn in members {
            if exclude == Some(conn.id.as_str()) {
                continue;
            }
            match conn.send(message.clone()) {
                Ok(()) => delivered += 1,
                Err(SendError::TooSlow) => slow += 1,
                Err(SendError::Gone) => {}
            }
        }
        (delivered, slow)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, function: &str, queue: usize) -> (Arc<Conn>, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(queue);
        (
            Arc::new(Conn::new(
                id.into(),
                function.into(),
                "127.0.0.1".into(),
                String::new(),
                tx,
            )),
            rx,
        )
    }

    #[test]
    fn the_cap_counts_per_function_and_removal_frees_a_place() {
        let registry = Registry::default();
        let (a, _ra) = conn("a", "chat", 1);
        let (b, _rb) = conn("b", "chat", 1);
        let (c, _rc) = conn("c", "other", 1);
        assert!(registry.insert(a, 1));
        assert!(!registry.insert(b.clone(), 1));
        assert!(registry.insert(c, 1));
        registry.remove("a");
        assert!(registry.insert(b, 1));
        assert_eq!(registry.count("chat"), 1);
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn channels_are_per_function_and_a_full_queue_closes_with_1013() {
        let registry = Registry::default();
        let (a, mut ra) = conn("a", "chat", 1);
        let (b, _rb) = conn("b", "chat", 1);
        let (c, mut rc) = conn("c", "other", 4);
        for conn in [&a, &b, &c] {
            registry.insert(conn.clone(), 10);
            registry.join(conn, "lobby", serde_json::json!({"id": conn.id}));
        }
        let frame = Frame::Text("hi".into());
        assert_eq!(registry.deliver("chat", "lobby", &frame, Some("b")), (1, 0));
        assert_eq!(ra.try_recv().unwrap(), Message::text("hi"));
        assert!(rc.try_recv().is_err(), "another function's channel");
        // b's queue (1) fills with the first message; the second closes it.
        assert_eq!(registry.deliver("chat", "lobby", &frame, None), (2, 0));
        assert_eq!(registry.deliver("chat", "lobby", &frame, Some("a")), (0, 1));
        assert_eq!(b.close_reason().unwrap().code, 1013);
        assert_eq!(registry.members("chat", "lobby").len(), 1, "b is gone");
        registry.leave(&a, "lobby");
        assert!(registry.members("chat", "lobby").is_empty());
        registry.remove("c");
        assert!(registry.members("other", "lobby").is_empty());
    }
}
