//! Persistence for gureum behind one API with two real backends: embedded SQLite (the
//! default, one WAL-mode file under the data dir) and PostgreSQL (shared by several
//! nodes).
//!
//! Design choice: both backends run through sqlx's `Any` driver with one portable SQL
//! text (`$N` placeholders, which sqlx's SQLite driver also maps; BIGINT integers; times
//! as ms since the epoch; `ON CONFLICT` upserts and `RETURNING`, which both databases
//! speak), so every query exists once and the same test suite covers both
//! (`tests/suite.rs` and `tests/suite/baas.rs`). Only the embedded migrations differ per
//! backend (BLOB vs BYTEA, AUTOINCREMENT vs BIGSERIAL). A trait with two implementations
//! would have duplicated every query for no feature we need. Where the backends do differ
//! in behaviour, the code branches on [`Backend`] (write transactions on SQLite start
//! with `BEGIN IMMEDIATE` so they queue on the lock instead of failing).
//!
//! A SQLite file never shrinks by itself, so it uses incremental auto-vacuum (set up in
//! `connect.rs`): the queue's monitor calls [`Store::reclaim_space`] each minute, and the
//! pages of consumed events and deleted data go back to the disk.
//!
//! Log sequence numbers come from the database (AUTOINCREMENT / BIGSERIAL), so they
//! increase in insertion order; on PostgreSQL with several nodes writing at once, a line
//! may commit after a line with a larger number, which a tail polling `after_seq` can
//! miss.
//!
//! Rooms: `connect.rs` (URL, pool, migrations), `functions.rs`, `invocations.rs`,
//! `logs.rs`, `settings.rs`, `leases.rs`, `documents.rs`, `files.rs`, `users.rs`,
//! `kv.rs`, `queue.rs`, `notify.rs`, `rows.rs` (decoding), `testing.rs` (PostgreSQL for
//! tests).

mod connect;
mod documents;
mod files;
mod functions;
mod invocations;
mod kv;
mod leases;
mod logs;
mod notify;
mod queue;
mod rows;
mod settings;
pub mod testing;
mod users;

use sqlx::{Any, AnyPool, Transaction};

pub use connect::redact;
pub use documents::{
    Cursor, DocQuery, DocumentRow, FieldPath, Filter, FilterOp, WriteOutcome, valid_collection,
};
pub use files::{BLOB_CHUNK, FilePage, FileRow};
pub use invocations::InvocationTiming;
pub use kv::KV_LIST_PAGE;
pub use logs::LogQuery;
pub use notify::{MAX_NOTIFY_BYTES, Notifications};
pub use queue::{
    DeadLetter, Enqueued, IDEMPOTENCY_KEY_TTL_MS, QueueDepth, QueuedEvent, ScheduleState,
};
pub use users::{Rotation, UserRow};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported backend.
    #[error(
        "unsupported store URL {0:?}: use sqlite://PATH (embedded, the default) or postgres://USER@HOST:PORT/DATABASE (postgresql:// works too)"
    )]
    UnsupportedUrl(String),
    /// The URL names a supported backend but cannot be used as written.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A file-system step of opening a SQLite store failed.
    #[error("preparing the SQLite store at {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database could not be reached or opened.
    #[error("connecting to the store at {target}: {source}")]
    Connect {
        /// The URL (password hidden) or SQLite file.
        target: String,
        /// The underlying error.
        source: sqlx::Error,
    },
    /// A referenced row does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Applying the schema migrations failed.
    #[error("migrating the store schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The request cannot be carried out on the stored data (a key that holds no
    /// integer incremented, a value that cannot be compared with its field).
    #[error("{0}")]
    Invalid(String),
    /// A stored value is not what this version of gureum writes.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Which database backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The store: a connection pool and the backend it talks to. Cheap to clone; clones
/// share the pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The PostgreSQL URL, for the dedicated connection of [`Store::listen`].
    postgres_url: Option<std::sync::Arc<str>>,
}

impl Store {
    /// Opens the store at `url` and applies pending migrations.
    ///
    /// `sqlite://PATH` opens (creating it and its parent directories if missing) a SQLite
    /// file; a relative PATH is relative to the working directory, `sqlite:///abs/path`
    /// is absolute. `postgres://…` or `postgresql://…` connects to an existing database.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let target = connect::parse_url(url)?;
        let (pool, backend) = connect::connect(&target).await?;
        let postgres_url = match &target {
            connect::Target::Postgres(url) => Some(std::sync::Arc::from(url.as_str())),
            connect::Target::Sqlite(_) => None,
        };
        Ok(Store {
            pool,
            backend,
            postgres_url,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Gives free pages back to the file system (SQLite with incremental auto-vacuum: at
    /// most `max_pages` per call, a short write; PostgreSQL's autovacuum reuses space on
    /// its own, so nothing there). Returns the pages freed.
    pub async fn reclaim_space(&self, max_pages: u32) -> Result<u64, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&self.pool)
            .await?;
        if free == 0 {
            return Ok(0);
        }
        // The pool's connections are each their own: one runs the whole pragma.
        let mut connection = self.pool.acquire().await?;
        sqlx::query(&format!("PRAGMA incremental_vacuum({max_pages})"))
            .execute(&mut *connection)
            .await?;
        Ok(u64::try_from(free).unwrap_or(0).min(u64::from(max_pages)))
    }

    /// Closes every connection, waiting for queries in flight; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a transaction that will write. SQLite's default deferred BEGIN takes the
    /// write lock only at the first write, and a transaction that read first then fails
    /// at once (busy_timeout cannot help); `BEGIN IMMEDIATE` queues on the lock up front.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// A count as a BIGINT; counts never come near `i64::MAX`, but saturate rather than wrap.
pub(crate) fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
