//! Persistence for gureum behind one API with two real backends: embedded SQLite (the
//! default, a file under the data dir) and PostgreSQL (shared by several nodes). Both run
//! through sqlx's `Any` driver with one portable SQL text (`$N` placeholders, BIGINT
//! integers, ms timestamps), so every query exists once; only the migrations differ per
//! backend (BLOB vs BYTEA, AUTOINCREMENT vs BIGSERIAL). The store never sees HTTP, wasm
//! or processes.

pub mod testing;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use gureum_model::{
    FunctionName, FunctionSummary, FunctionVersion, InvocationOutcome, InvocationRecord, LogLine,
    LogStream, VersionNumber,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row};

/// Rows per multi-row INSERT (well under both backends' parameter limits).
const INSERT_CHUNK: usize = 200;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported backend.
    #[error(
        "unsupported store URL {0:?}: use sqlite://PATH (embedded, the default) or postgres://USER@HOST:PORT/DATABASE"
    )]
    UnsupportedUrl(String),
    /// A referenced row does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Applying the schema migrations failed.
    #[error("migrating the store schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value is not what this version of gureum wrote.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Which database backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A log query; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only this function's lines.
    pub function: Option<String>,
    /// Only this invocation's lines.
    pub invocation_id: Option<String>,
    /// Only lines at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only lines with a larger sequence number.
    pub after_seq: Option<i64>,
    /// At most this many lines.
    pub limit: u32,
}

/// The store: a connection pool and the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) the store at `url` and applies migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, connect_url, connections) = if let Some(path) = url.strip_prefix("sqlite://") {
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?;
            }
            // Validate the path through the SQLite options parser before connecting.
            sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
            (Backend::Sqlite, format!("{url}?mode=rwc"), 4)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string(), 8)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the batch writer; busy_timeout makes
                        // concurrent writers wait instead of failing; foreign keys give the
                        // cascading deletes.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            sqlx::query(pragma).execute(&mut *connection).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await?;
        let store = Store { pool, backend };
        store.migrator().run(&store.pool).await?;
        Ok(store)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores an artifact under its content hash; storing it again is a no-op.
    pub async fn put_artifact(&self, hash: &str, bytes: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO artifacts (hash, bytes, size, created_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash)
        .bind(bytes.to_vec())
        .bind(bytes.len() as i64)
        .bind(gureum_model::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The artifact with this hash.
    pub async fn get_artifact(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT bytes FROM artifacts WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.get::<Vec<u8>, _>(0)))
    }

    /// Creates the next version of `function` (creating the function if new) and points
    /// `live` at it, in one transaction. Numbers are never reused.
    pub async fn create_version(
        &self,
        function: &FunctionName,
        artifact_hash: &str,
        manifest: &str,
        now_ms: i64,
    ) -> Result<FunctionVersion, StoreError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO functions (name, created_at_ms, latest_version) VALUES ($1, $2, 0) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(function.as_str())
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?;
        // The UPDATE takes the row's write lock, so concurrent deploys (also from other
        // nodes on PostgreSQL) are serialized and each gets its own number.
        let version: i64 = sqlx::query(
            "UPDATE functions SET latest_version = latest_version + 1 WHERE name = $1 \
             RETURNING latest_version",
        )
        .bind(function.as_str())
        .fetch_one(&mut *transaction)
        .await?
        .get(0);
        sqlx::query(
            "INSERT INTO versions (function, version, artifact_hash, manifest, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(function.as_str())
        .bind(version)
        .bind(artifact_hash)
        .bind(manifest)
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?;
        upsert_alias(&mut transaction, function.as_str(), gureum_model::LIVE_ALIAS, version).await?;
        transaction.commit().await?;
        Ok(FunctionVersion {
            function: function.clone(),
            version: version as VersionNumber,
            artifact_hash: artifact_hash.to_string(),
            manifest: manifest.to_string(),
            created_at_ms: now_ms,
        })
    }

    /// One version of a function.
    pub async fn get_version(
        &self,
        function: &FunctionName,
        version: VersionNumber,
    ) -> Result<Option<FunctionVersion>, StoreError> {
        let row = sqlx::query(
            "SELECT function, version, artifact_hash, manifest, created_at_ms FROM versions \
             WHERE function = $1 AND version = $2",
        )
        .bind(function.as_str())
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| version_from_row(&row)).transpose()
    }

    /// Every version of a function, oldest first.
    pub async fn list_versions(
        &self,
        function: &FunctionName,
    ) -> Result<Vec<FunctionVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT function, version, artifact_hash, manifest, created_at_ms FROM versions \
             WHERE function = $1 ORDER BY version",
        )
        .bind(function.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Every function with its live version, by name.
    pub async fn list_functions(&self) -> Result<Vec<FunctionSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.name, a.version, f.latest_version, f.created_at_ms FROM functions f \
             JOIN aliases a ON a.function = f.name AND a.alias = $1 ORDER BY f.name",
        )
        .bind(gureum_model::LIVE_ALIAS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FunctionSummary {
                    name: function_name(row.get(0))?,
                    live_version: row.get::<i64, _>(1) as VersionNumber,
                    latest_version: row.get::<i64, _>(2) as VersionNumber,
                    created_at_ms: row.get(3),
                })
            })
            .collect()
    }

    /// The version an alias points at.
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
        Ok(row.map(|row| row.get::<i64, _>(0) as VersionNumber))
    }

    /// Points an alias at an existing version.
    pub async fn set_alias(
        &self,
        function: &FunctionName,
        alias: &str,
        version: VersionNumber,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM versions WHERE function = $1 AND version = $2")
            .bind(function.as_str())
            .bind(i64::from(version))
            .fetch_optional(&mut *transaction)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!(
                "function {:?} has no version {version}",
                function.as_str()
            )));
        }
        upsert_alias(&mut transaction, function.as_str(), alias, i64::from(version)).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Deletes a function with its versions, aliases, invocations and logs. Artifacts
    /// stay: they are content-addressed and may be shared.
    pub async fn delete_function(&self, function: &FunctionName) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
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
        transaction.commit().await?;
        Ok(deleted > 0)
    }

    /// Every function's live version, for loading the routing table.
    pub async fn live_versions(&self) -> Result<Vec<FunctionVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT v.function, v.version, v.artifact_hash, v.manifest, v.created_at_ms \
             FROM versions v JOIN aliases a ON a.function = v.function AND a.version = v.version \
             WHERE a.alias = $1 ORDER BY v.function",
        )
        .bind(gureum_model::LIVE_ALIAS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Stores invocation records in one transaction.
    pub async fn insert_invocations(&self, records: &[InvocationRecord]) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        for chunk in records.chunks(INSERT_CHUNK) {
            let sql = multi_row_insert(
                "INSERT INTO invocations (id, function, version, started_at_ms, duration_us, status, outcome, cold_start, memory_mb) VALUES ",
                9,
                chunk.len(),
                " ON CONFLICT (id) DO NOTHING",
            );
            let mut query = sqlx::query(&sql);
            for record in chunk {
                query = query
                    .bind(record.id.clone())
                    .bind(record.function.clone())
                    .bind(i64::from(record.version))
                    .bind(record.started_at_ms)
                    .bind(record.duration_us)
                    .bind(i64::from(record.status))
                    .bind(record.outcome.as_str())
                    .bind(i64::from(record.cold_start))
                    .bind(i64::from(record.memory_mb));
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// One invocation record.
    pub async fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>, StoreError> {
        let row = sqlx::query(&format!("{INVOCATION_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| invocation_from_row(&row)).transpose()
    }

    /// A function's invocations since a time, newest first.
    pub async fn list_invocations(
        &self,
        function: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{INVOCATION_COLUMNS} WHERE function = $1 AND started_at_ms >= $2 \
             ORDER BY started_at_ms DESC, id DESC LIMIT $3"
        ))
        .bind(function)
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invocation_from_row).collect()
    }

    /// Stores log lines in one transaction; the store assigns their sequence numbers.
    pub async fn insert_logs(&self, lines: &[LogLine]) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        for chunk in lines.chunks(INSERT_CHUNK) {
            let sql = multi_row_insert(
                "INSERT INTO logs (invocation_id, function, version, ts_ms, stream, message) VALUES ",
                6,
                chunk.len(),
                "",
            );
            let mut query = sqlx::query(&sql);
            for line in chunk {
                query = query
                    .bind(line.invocation_id.clone())
                    .bind(line.function.clone())
                    .bind(i64::from(line.version))
                    .bind(line.ts_ms)
                    .bind(line.stream.as_str())
                    .bind(line.message.clone());
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Log lines matching `query`, ascending by sequence number.
    pub async fn query_logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
        // Every filter is always bound; a NULL parameter switches it off, which keeps one
        // statement text (and one prepared statement) for every combination.
        let rows = sqlx::query(
            "SELECT seq, invocation_id, function, version, ts_ms, stream, message FROM logs \
             WHERE ($1 IS NULL OR function = $1) AND ($2 IS NULL OR invocation_id = $2) \
             AND ($3 IS NULL OR ts_ms >= $3) AND ($4 IS NULL OR seq > $4) \
             ORDER BY seq LIMIT $5",
        )
        .bind(query.function.clone())
        .bind(query.invocation_id.clone())
        .bind(query.since_ms)
        .bind(query.after_seq)
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let stream: String = row.get(5);
                Ok(LogLine {
                    seq: row.get(0),
                    invocation_id: row.get(1),
                    function: row.get(2),
                    version: row.get::<i64, _>(3) as VersionNumber,
                    ts_ms: row.get(4),
                    stream: LogStream::parse(&stream)
                        .ok_or_else(|| StoreError::Corrupt(format!("log stream {stream:?}")))?,
                    message: row.get(6),
                })
            })
            .collect()
    }

    fn migrator(&self) -> Migrator {
        let sql = match self.backend {
            Backend::Sqlite => include_str!("../migrations/sqlite/0001_init.sql"),
            Backend::Postgres => include_str!("../migrations/postgres/0001_init.sql"),
        };
        Migrator {
            migrations: Cow::Owned(vec![Migration::new(
                1,
                Cow::Borrowed("init"),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )]),
            ignore_missing: false,
            locking: true,
            no_tx: false,
        }
    }
}

const INVOCATION_COLUMNS: &str = "SELECT id, function, version, started_at_ms, duration_us, status, \
     outcome, cold_start, memory_mb FROM invocations";

async fn upsert_alias(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    function: &str,
    alias: &str,
    version: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO aliases (function, alias, version) VALUES ($1, $2, $3) \
         ON CONFLICT (function, alias) DO UPDATE SET version = excluded.version",
    )
    .bind(function)
    .bind(alias)
    .bind(version)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

fn multi_row_insert(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::from(head);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

fn function_name(name: String) -> Result<FunctionName, StoreError> {
    FunctionName::new(name).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn version_from_row(row: &AnyRow) -> Result<FunctionVersion, StoreError> {
    Ok(FunctionVersion {
        function: function_name(row.get(0))?,
        version: row.get::<i64, _>(1) as VersionNumber,
        artifact_hash: row.get(2),
        manifest: row.get(3),
        created_at_ms: row.get(4),
    })
}

fn invocation_from_row(row: &AnyRow) -> Result<InvocationRecord, StoreError> {
    let outcome: String = row.get(6);
    Ok(InvocationRecord {
        id: row.get(0),
        function: row.get(1),
        version: row.get::<i64, _>(2) as VersionNumber,
        started_at_ms: row.get(3),
        duration_us: row.get(4),
        status: row.get::<i64, _>(5) as u16,
        outcome: InvocationOutcome::parse(&outcome)
            .ok_or_else(|| StoreError::Corrupt(format!("invocation outcome {outcome:?}")))?,
        cold_start: row.get::<i64, _>(7) != 0,
        memory_mb: row.get::<i64, _>(8) as u32,
    })
}

#[cfg(test)]
mod tests;
