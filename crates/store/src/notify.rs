//! Cross-node notifications over PostgreSQL's LISTEN/NOTIFY: what one node writes, the
//! others hear about at once (realtime document changes). SQLite is one node, so there is
//! nothing to carry: [`Store::notify`] does nothing and [`Store::listen`] answers `None`.
//!
//! NOTIFY is transactional and delivered to every listening session of the database,
//! the sender's own included (receivers skip what they sent themselves). A payload is at
//! most [`MAX_NOTIFY_BYTES`]. The listening connection reconnects by itself after a
//! failure; notifications sent while it was down are lost, which receivers must allow
//! for (realtime subscribers re-read on `reset`).

use sqlx::postgres::PgListener;

use crate::{Store, StoreError};

/// Largest payload PostgreSQL accepts (8000 bytes), less a margin.
pub const MAX_NOTIFY_BYTES: usize = 7_900;

/// A stream of notification payloads on one channel.
#[derive(Debug)]
pub struct Notifications {
    listener: PgListener,
}

impl Notifications {
    /// The next payload; `None` once the connection cannot be re-established.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            match self.listener.try_recv().await {
                Ok(Some(notification)) => return Some(notification.payload().to_string()),
                // The connection dropped and was re-established: go on listening.
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%error, "listening for notifications failed; retrying in 1 s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
}

impl Store {
    /// Sends `payload` (at most [`MAX_NOTIFY_BYTES`]) to every node listening on
    /// `channel`; nothing on SQLite.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        if self.postgres_url.is_none() {
            return Ok(());
        }
        if payload.len() > MAX_NOTIFY_BYTES {
            return Err(StoreError::Invalid(format!(
                "notification of {} bytes is over {MAX_NOTIFY_BYTES}",
                payload.len()
            )));
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Listens on `channel` on a dedicated connection; `None` on SQLite.
    pub async fn listen(&self, channel: &str) -> Result<Option<Notifications>, StoreError> {
        let Some(url) = &self.postgres_url else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url).await?;
        listener.listen(channel).await?;
        Ok(Some(Notifications { listener }))
    }
}
