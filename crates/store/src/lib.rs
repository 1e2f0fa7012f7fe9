//! Persistence for gureum behind one API with two real backends: embedded SQLite (the
//! default, one WAL-mode file under the data dir) and PostgreSQL (shared by several nodes).
//!
//! Design choice: both backends run through sqlx's `Any` driver with one portable SQL text
//! (`$N` placeholders, which sqlx's SQLite driver also maps; BIGINT integers; times as ms
//! since the epoch; `ON CONFLICT` upserts and `RETURNING`, which both databases speak), so
//! every query exists once and the same test suite covers both. Only the embedded
//! migrations differ per backend (BLOB vs BYTEA, AUTOINCREMENT vs BIGSERIAL). A trait with
//! two implementations would have duplicated every query for no feature we need. Where the
//! backends do differ in behaviour, the code branches on [`Backend`] (write transactions
//! on SQLite start with `BEGIN IMMEDIATE` so they queue on the lock instead of failing).
//!
//! Log sequence numbers come from the database (AUTOINCREMENT / BIGSERIAL), so they
//! increase in insertion order; on PostgreSQL with several nodes writing at once, a line
//! may commit after a line with a larger number, which a tail polling `after_seq` can miss.

mod connect;
mod documents;
mod files;
mod kv;
mod notify;
mod queue;
mod rows;
pub mod testing;
mod users;

use std::collections::HashMap;

use futures::TryStreamExt as _;
use gureum_model::{
    DailyUsage, FunctionName, FunctionSummary, FunctionVersion, InvocationOutcome,
    InvocationRecord, LIVE_ALIAS, LogLine, VersionNumber,
};
use sqlx::{Any, AnyPool, Transaction};

pub use documents::{
    Cursor, DocQuery, DocumentRow, FieldPath, Filter, FilterOp, WriteOutcome, valid_collection,
};
pub use files::{BLOB_CHUNK, FilePage, FileRow};
pub use kv::KV_LIST_PAGE;
pub use notify::{MAX_NOTIFY_BYTES, Notifications};
pub use queue::{
    DeadLetter, Enqueued, IDEMPOTENCY_KEY_TTL_MS, QueueDepth, QueuedEvent, ScheduleState,
};
pub use users::{Rotation, UserRow};

use crate::rows::{
    column, function_name, insert_chunks, invocation_from_row, log_from_row, multi_row_insert,
    u32_column, usage_from_row, version_from_row,
};

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

/// What charts need of an invocation record ([`Store::scan_invocations`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationTiming {
    /// The function.
    pub function: String,
    /// Start, ms since the Unix epoch.
    pub started_at_ms: i64,
    /// Wall time in microseconds.
    pub duration_us: i64,
    /// How it ended.
    pub outcome: InvocationOutcome,
    /// Whether it paid a cold start.
    pub cold_start: bool,
    /// Memory limit it ran with.
    pub memory_mb: u32,
    /// Billed milliseconds (0 when refused).
    pub billed_ms: i64,
}

/// A log query; `None` fields do not filter, and every given filter must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this function's lines.
    pub function: Option<String>,
    /// Only this invocation's lines.
    pub invocation_id: Option<String>,
    /// Only lines produced at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only lines with a larger sequence number (for paging and tailing).
    pub after_seq: Option<i64>,
    /// Only lines whose message contains this text (case-sensitive substring).
    pub grep: Option<String>,
    /// At most this many lines (0 returns none).
    pub limit: u32,
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

const VERSION_COLUMNS: &str =
    "function, version, artifact_hash, manifest, created_at_ms, static_hash";
const INVOCATION_COLUMNS: &str = "id, function, version, started_at_ms, duration_us, status, \
     outcome, cold_start, memory_mb, trigger_kind, billed_ms, bytes_in, bytes_out";
const USAGE_COLUMNS: &str = "day, function, version, requests, errors, throttled, cold_starts, \
     duration_us, billed_ms, mb_ms, bytes_in, bytes_out, overflowed";
/// Rows deleted per statement by retention, so a large purge never holds the write lock
/// for long.
const PURGE_BATCH: i64 = 5_000;
const LOG_COLUMNS: &str = "seq, invocation_id, function, version, ts_ms, stream, message";

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

    /// Stores an artifact under its content hash (hex SHA-256, computed by the caller);
    /// storing the same hash again is a no-op.
    pub async fn put_artifact(&self, hash: &str, bytes: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO artifacts (hash, bytes, size, created_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash)
        .bind(bytes)
        .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
        .bind(gureum_model::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The artifact stored under `hash`.
    pub async fn get_artifact(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT bytes FROM artifacts WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| rows::column(&row, 0)).transpose()
    }

    /// Creates the next version of `function` (creating the function if new) and points
    /// `live` at it, in one transaction. The number is the previous highest plus one and
    /// is never reused, even after a rollback; concurrent deploys, also from other nodes,
    /// each get their own number.
    pub async fn create_version(
        &self,
        function: &FunctionName,
        artifact_hash: &str,
        manifest: &str,
        now_ms: i64,
    ) -> Result<FunctionVersion, StoreError> {
        self.create_version_with_static(function, artifact_hash, None, manifest, now_ms)
            .await
    }

    /// [`Store::create_version`] for a version with a static site, whose bundle is stored
    /// as the artifact `static_hash`.
    pub async fn create_version_with_static(
        &self,
        function: &FunctionName,
        artifact_hash: &str,
        static_hash: Option<&str>,
        manifest: &str,
        now_ms: i64,
    ) -> Result<FunctionVersion, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO functions (name, created_at_ms, latest_version) VALUES ($1, $2, 0) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(function.as_str())
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?;
        // The UPDATE holds the function row's write lock until commit, so concurrent
        // deploys are serialized and each reads the counter its predecessor committed.
        let row = sqlx::query(
            "UPDATE functions SET latest_version = latest_version + 1 WHERE name = $1 \
             RETURNING latest_version",
        )
        .bind(function.as_str())
        .fetch_one(&mut *transaction)
        .await?;
        let version = u32_column(&row, 0, "functions.latest_version")?;
        sqlx::query(&format!(
            "INSERT INTO versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(function.as_str())
        .bind(i64::from(version))
        .bind(artifact_hash)
        .bind(manifest)
        .bind(now_ms)
        .bind(static_hash)
        .execute(&mut *transaction)
        .await?;
        upsert_alias(&mut transaction, function, LIVE_ALIAS, version).await?;
        bump_generation(&mut transaction).await?;
        transaction.commit().await?;
        Ok(FunctionVersion {
            function: function.clone(),
            version,
            artifact_hash: artifact_hash.to_string(),
            manifest: manifest.to_string(),
            created_at_ms: now_ms,
            static_hash: static_hash.map(str::to_string),
        })
    }

    /// One version of a function.
    pub async fn get_version(
        &self,
        function: &FunctionName,
        version: VersionNumber,
    ) -> Result<Option<FunctionVersion>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE function = $1 AND version = $2"
        ))
        .bind(function.as_str())
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Artifact size in bytes of each of a function's versions that has a stored
    /// artifact, by version number.
    pub async fn version_sizes(
        &self,
        function: &FunctionName,
    ) -> Result<HashMap<VersionNumber, u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT v.version, a.size FROM versions v \
             JOIN artifacts a ON a.hash = v.artifact_hash WHERE v.function = $1",
        )
        .bind(function.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let size: i64 = column(row, 1)?;
                Ok((
                    u32_column(row, 0, "versions.version")?,
                    u64::try_from(size).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Every version of a function, oldest first (empty for an unknown function).
    pub async fn list_versions(
        &self,
        function: &FunctionName,
    ) -> Result<Vec<FunctionVersion>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE function = $1 ORDER BY version"
        ))
        .bind(function.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Every function with its live and latest version, ordered by name.
    pub async fn list_functions(&self) -> Result<Vec<FunctionSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.name, a.version, f.latest_version, f.created_at_ms FROM functions f \
             JOIN aliases a ON a.function = f.name AND a.alias = $1 ORDER BY f.name",
        )
        .bind(LIVE_ALIAS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FunctionSummary {
                    name: function_name(rows::column(row, 0)?)?,
                    live_version: u32_column(row, 1, "aliases.version")?,
                    latest_version: u32_column(row, 2, "functions.latest_version")?,
                    created_at_ms: rows::column(row, 3)?,
                })
            })
            .collect()
    }

    /// The version `alias` of `function` points at.
    pub async fn get_alias(
        &self,
        function: &FunctionName,
        alias: &str,
    ) -> Result<Option<VersionNumber>, StoreError> {
        let row = sqlx::query("SELECT version FROM aliases WHERE function = $1 AND alias = $2")
            .bind(function.as_str())
            .bind(alias)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| u32_column(&row, 0, "aliases.version"))
            .transpose()
    }

    /// Points `alias` (e.g. `live`, for a rollback) at an existing version; a missing
    /// function or version is [`StoreError::NotFound`].
    pub async fn set_alias(
        &self,
        function: &FunctionName,
        alias: &str,
        version: VersionNumber,
    ) -> Result<(), StoreError> {
        // One statement that only writes when the version exists: no read-then-write
        // window for a concurrent delete, and no lock upgrade for SQLite to refuse.
        let mut transaction = self.begin_write().await?;
        let written = sqlx::query(
            "INSERT INTO aliases (function, alias, version) \
             SELECT function, $2, version FROM versions WHERE function = $1 AND version = $3 \
             ON CONFLICT (function, alias) DO UPDATE SET version = excluded.version",
        )
        .bind(function.as_str())
        .bind(alias)
        .bind(i64::from(version))
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if written == 0 {
            return Err(StoreError::NotFound(format!(
                "function {:?} has no version {version}",
                function.as_str()
            )));
        }
        bump_generation(&mut transaction).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Deletes a function with its versions, aliases, invocations and logs; `false` if it
    /// did not exist. Artifacts stay: they are content-addressed and may be shared. A
    /// function created again later starts over at version 1.
    pub async fn delete_function(&self, function: &FunctionName) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        for statement in [
            "DELETE FROM logs WHERE function = $1",
            "DELETE FROM invocations WHERE function = $1",
            "DELETE FROM aliases WHERE function = $1",
            "DELETE FROM versions WHERE function = $1",
        ] {
            sqlx::query(statement)
                .bind(function.as_str())
                .execute(&mut *transaction)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM functions WHERE name = $1")
            .bind(function.as_str())
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if deleted > 0 {
            bump_generation(&mut transaction).await?;
        }
        transaction.commit().await?;
        Ok(deleted > 0)
    }

    /// A number that changes whenever what is live changes (deploy, rollback, removal)
    /// on any node sharing this store.
    pub async fn registry_generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT generation FROM registry_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        rows::column(&row, 0)
    }

    /// Every function's live version record, ordered by name, for loading the routing
    /// table at start.
    pub async fn live_versions(&self) -> Result<Vec<FunctionVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT v.function, v.version, v.artifact_hash, v.manifest, v.created_at_ms, \
             v.static_hash FROM versions v JOIN aliases a ON a.function = v.function AND a.version = v.version \
             WHERE a.alias = $1 ORDER BY v.function",
        )
        .bind(LIVE_ALIAS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Stores a batch of invocation records and adds them, plus `overflow` (usage of
    /// invocations whose records were not kept), to the daily usage roll-up, all in one
    /// transaction so the roll-up always equals what the records say. A record whose id
    /// is already stored is skipped, so retrying a failed batch is safe.
    pub async fn insert_invocations(
        &self,
        records: &[InvocationRecord],
        overflow: &[DailyUsage],
    ) -> Result<(), StoreError> {
        if records.is_empty() && overflow.is_empty() {
            return Ok(());
        }
        let mut usage: HashMap<(i64, String, VersionNumber), DailyUsage> = HashMap::new();
        for record in records {
            let key = DailyUsage::key_of(record);
            usage
                .entry(key.clone())
                .or_insert_with(|| DailyUsage {
                    day: key.0,
                    function: key.1,
                    version: key.2,
                    ..DailyUsage::default()
                })
                .add(record);
        }
        for extra in overflow {
            let row = usage
                .entry((extra.day, extra.function.clone(), extra.version))
                .or_insert_with(|| DailyUsage {
                    day: extra.day,
                    function: extra.function.clone(),
                    version: extra.version,
                    ..DailyUsage::default()
                });
            row.merge(extra);
        }
        let usage: Vec<DailyUsage> = usage.into_values().collect();

        let mut transaction = self.begin_write().await?;
        for chunk in insert_chunks(records) {
            let sql = multi_row_insert(
                self.backend,
                &format!("INSERT INTO invocations ({INVOCATION_COLUMNS}) VALUES "),
                13,
                chunk.len(),
                " ON CONFLICT (id) DO NOTHING",
            );
            let mut query = sqlx::query(&sql);
            for record in chunk {
                query = query
                    .bind(record.id.as_str())
                    .bind(record.function.as_str())
                    .bind(i64::from(record.version))
                    .bind(record.started_at_ms)
                    .bind(record.duration_us)
                    .bind(i64::from(record.status))
                    .bind(record.outcome.as_str())
                    .bind(i64::from(record.cold_start))
                    .bind(i64::from(record.memory_mb))
                    .bind(record.trigger.as_str())
                    .bind(record.billed_ms)
                    .bind(record.bytes_in)
                    .bind(record.bytes_out);
            }
            query.execute(&mut *transaction).await?;
        }
        for chunk in insert_chunks(&usage) {
            let sql = multi_row_insert(
                self.backend,
                &format!("INSERT INTO usage_daily ({USAGE_COLUMNS}) VALUES "),
                13,
                chunk.len(),
                " ON CONFLICT (day, function, version) DO UPDATE SET \
                 requests = usage_daily.requests + excluded.requests, \
                 errors = usage_daily.errors + excluded.errors, \
                 throttled = usage_daily.throttled + excluded.throttled, \
                 cold_starts = usage_daily.cold_starts + excluded.cold_starts, \
                 duration_us = usage_daily.duration_us + excluded.duration_us, \
                 billed_ms = usage_daily.billed_ms + excluded.billed_ms, \
                 mb_ms = usage_daily.mb_ms + excluded.mb_ms, \
                 bytes_in = usage_daily.bytes_in + excluded.bytes_in, \
                 bytes_out = usage_daily.bytes_out + excluded.bytes_out, \
                 overflowed = usage_daily.overflowed + excluded.overflowed",
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(row.day)
                    .bind(row.function.as_str())
                    .bind(i64::from(row.version))
                    .bind(clamp(row.requests))
                    .bind(clamp(row.errors))
                    .bind(clamp(row.throttled))
                    .bind(clamp(row.cold_starts))
                    .bind(clamp(row.duration_us))
                    .bind(clamp(row.billed_ms))
                    .bind(clamp(row.mb_ms))
                    .bind(clamp(row.bytes_in))
                    .bind(clamp(row.bytes_out))
                    .bind(clamp(row.overflowed));
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The daily usage roll-up from `from_day` (days since 1970-01-01, UTC) on, every
    /// function, ordered by day, function and version.
    pub async fn usage_since(&self, from_day: i64) -> Result<Vec<DailyUsage>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {USAGE_COLUMNS} FROM usage_daily WHERE day >= $1 \
             ORDER BY day, function, version"
        ))
        .bind(from_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(usage_from_row).collect()
    }

    /// An installation setting (price list, quotas...), as the text it was stored as.
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Settings whose key starts with `prefix`, as (key, value), ordered by key.
    pub async fn list_settings(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT key, value FROM settings ORDER BY key")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .collect())
    }

    /// The value of `key`, storing `value` first when the key is absent; with several
    /// nodes starting at once, every one gets the value the first one stored.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(gureum_model::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Creates or replaces a setting.
    pub async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .bind(key)
        .bind(value)
        .bind(gureum_model::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a setting; `false` when there was none.
    pub async fn delete_setting(&self, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes (or extends) the lease `name` for `holder` until `until_ms`: `true` when
    /// `holder` now holds it, `false` while another holder's lease has not expired. One
    /// statement, so two nodes racing for a free lease never both get it.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             until_ms = excluded.until_ms \
             WHERE leases.holder = excluded.holder OR leases.until_ms < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until_ms)
        .bind(gureum_model::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives up `holder`'s lease `name` (nothing when someone else holds it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes log lines produced before `before_ms` and invocation records started
    /// before it, in bounded batches; the daily usage roll-up is kept. Returns (log
    /// lines, invocation records) deleted.
    pub async fn purge_before(&self, before_ms: i64) -> Result<(u64, u64), StoreError> {
        let logs = self
            .purge_batches(
                "DELETE FROM logs WHERE seq IN \
                 (SELECT seq FROM logs WHERE ts_ms < $1 LIMIT $2)",
                before_ms,
            )
            .await?;
        let invocations = self
            .purge_batches(
                "DELETE FROM invocations WHERE id IN \
                 (SELECT id FROM invocations WHERE started_at_ms < $1 LIMIT $2)",
                before_ms,
            )
            .await?;
        Ok((logs, invocations))
    }

    async fn purge_batches(&self, sql: &str, before_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let mut transaction = self.begin_write().await?;
            let done = sqlx::query(sql)
                .bind(before_ms)
                .bind(PURGE_BATCH)
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
            total += done.rows_affected();
            if done.rows_affected() < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// One invocation record by id.
    pub async fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INVOCATION_COLUMNS} FROM invocations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(invocation_from_row).transpose()
    }

    /// A function's invocations started at or after `since_ms`, newest first, at most
    /// `limit`.
    pub async fn list_invocations(
        &self,
        function: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INVOCATION_COLUMNS} FROM invocations \
             WHERE function = $1 AND started_at_ms >= $2 \
             ORDER BY started_at_ms DESC, id DESC LIMIT $3"
        ))
        .bind(function)
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invocation_from_row).collect()
    }

    /// Invocations started in `[since_ms, until_ms)`, of one function or all, handed to
    /// `each` in start order as they are read: one query streamed over the start-time
    /// index (no sort, no paging), so a window of any size costs one pass and the memory
    /// of one row. Returns how many were read.
    pub async fn scan_invocations(
        &self,
        function: Option<&str>,
        since_ms: i64,
        until_ms: i64,
        mut each: impl FnMut(InvocationTiming),
    ) -> Result<u64, StoreError> {
        let function_clause = if function.is_some() {
            "function = $3 AND "
        } else {
            ""
        };
        let sql = format!(
            "SELECT function, started_at_ms, duration_us, outcome, cold_start, memory_mb, \
             billed_ms FROM invocations \
             WHERE {function_clause}started_at_ms >= $1 AND started_at_ms < $2 \
             ORDER BY started_at_ms"
        );
        let mut query = sqlx::query(&sql).bind(since_ms).bind(until_ms);
        if let Some(function) = function {
            query = query.bind(function);
        }
        let mut rows = query.fetch(&self.pool);
        let mut read = 0;
        while let Some(row) = rows.try_next().await? {
            let outcome: String = column(&row, 3)?;
            each(InvocationTiming {
                function: column(&row, 0)?,
                started_at_ms: column(&row, 1)?,
                duration_us: column(&row, 2)?,
                outcome: InvocationOutcome::parse(&outcome).ok_or_else(|| {
                    StoreError::Corrupt(format!("invocations.outcome = {outcome:?}"))
                })?,
                cold_start: column::<i64>(&row, 4)? != 0,
                memory_mb: u32_column(&row, 5, "invocations.memory_mb")?,
                billed_ms: column(&row, 6)?,
            });
            read += 1;
        }
        Ok(read)
    }

    /// Stores a batch of log lines in one transaction (multi-row INSERTs). The store
    /// assigns each line's `seq` in input order; the input `seq` is ignored.
    pub async fn insert_logs(&self, lines: &[LogLine]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut transaction = self.begin_write().await?;
        for chunk in insert_chunks(lines) {
            let sql = multi_row_insert(
                self.backend,
                "INSERT INTO logs (invocation_id, function, version, ts_ms, stream, message) VALUES ",
                6,
                chunk.len(),
                "",
            );
            let mut query = sqlx::query(&sql);
            for line in chunk {
                query = query
                    .bind(line.invocation_id.as_str())
                    .bind(line.function.as_str())
                    .bind(i64::from(line.version))
                    .bind(line.ts_ms)
                    .bind(line.stream.as_str())
                    .bind(line.message.as_str());
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Log lines matching every filter of `query`, ascending by `seq`, at most
    /// `query.limit`.
    pub async fn query_logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
        // Only the given filters go into the SQL (at most 16 statement texts), so each
        // combination gets a plan that uses its index; `x IS NULL OR` tricks would not.
        let mut sql = format!("SELECT {LOG_COLUMNS} FROM logs WHERE 1 = 1");
        let mut parameters = 0;
        let mut filter = |sql: &mut String, condition: &str| {
            parameters += 1;
            sql.push_str(&format!(" AND {condition} ${parameters}"));
        };
        if query.function.is_some() {
            filter(&mut sql, "function =");
        }
        if query.invocation_id.is_some() {
            filter(&mut sql, "invocation_id =");
        }
        if query.since_ms.is_some() {
            filter(&mut sql, "ts_ms >=");
        }
        if query.after_seq.is_some() {
            filter(&mut sql, "seq >");
        }
        if query.grep.is_some() {
            // Substring search without LIKE, whose case rules and wildcards differ
            // between the backends.
            match self.backend {
                Backend::Sqlite => filter(&mut sql, "instr(message,"),
                Backend::Postgres => filter(&mut sql, "strpos(message,"),
            }
            sql.push_str(") > 0");
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT ${}", parameters + 1));
        // Bind in the same order the filters were added.
        let mut statement = sqlx::query(&sql);
        if let Some(function) = &query.function {
            statement = statement.bind(function.as_str());
        }
        if let Some(invocation_id) = &query.invocation_id {
            statement = statement.bind(invocation_id.as_str());
        }
        if let Some(since_ms) = query.since_ms {
            statement = statement.bind(since_ms);
        }
        if let Some(after_seq) = query.after_seq {
            statement = statement.bind(after_seq);
        }
        if let Some(grep) = &query.grep {
            statement = statement.bind(grep.as_str());
        }
        let rows = statement
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(log_from_row).collect()
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
fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Points `alias` at `version` inside a transaction that already checked the version.
async fn upsert_alias(
    transaction: &mut Transaction<'static, Any>,
    function: &FunctionName,
    alias: &str,
    version: VersionNumber,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO aliases (function, alias, version) VALUES ($1, $2, $3) \
         ON CONFLICT (function, alias) DO UPDATE SET version = excluded.version",
    )
    .bind(function.as_str())
    .bind(alias)
    .bind(i64::from(version))
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Marks a change of what is live, inside the caller's transaction.
async fn bump_generation(transaction: &mut Transaction<'static, Any>) -> Result<(), StoreError> {
    sqlx::query("UPDATE registry_generation SET generation = generation + 1 WHERE id = 1")
        .execute(&mut **transaction)
        .await?;
    Ok(())
}
