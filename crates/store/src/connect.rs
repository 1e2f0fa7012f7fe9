//! Turning a store URL into a ready connection pool: URL checks, the SQLite file and its
//! WAL mode, pool sizes, and the embedded per-backend migrations.
//!
//! The migrations are applied by sqlx's migrator, which records each applied one with a
//! checksum and, on PostgreSQL, holds an advisory lock meanwhile, so nodes starting
//! together migrate once.

use std::borrow::Cow;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, ConnectOptions, Connection};

use crate::{Backend, StoreError};

/// How long a SQLite writer waits for another writer's lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLite allows one writer at a time; a few connections let reads run beside it.
const SQLITE_CONNECTIONS: u32 = 4;
/// Enough for the request path's reads plus the batch writer, modest for a shared server.
const POSTGRES_CONNECTIONS: u32 = 8;
/// How long a caller waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening waits for PostgreSQL to answer before reporting it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One embedded migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

/// SQLite migrations, oldest first; same versions and descriptions as [`POSTGRES_MIGRATIONS`].
pub(crate) const SQLITE_MIGRATIONS: &[Embedded] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "registry generation",
        include_str!("../migrations/sqlite/0002_registry_generation.sql"),
    ),
    (
        3,
        "metering",
        include_str!("../migrations/sqlite/0003_metering.sql"),
    ),
    (
        4,
        "queue",
        include_str!("../migrations/sqlite/0004_queue.sql"),
    ),
    (
        5,
        "static sites",
        include_str!("../migrations/sqlite/0005_static.sql"),
    ),
    (
        6,
        "backend services",
        include_str!("../migrations/sqlite/0006_baas.sql"),
    ),
    (
        7,
        "leases",
        include_str!("../migrations/sqlite/0007_leases.sql"),
    ),
    (
        8,
        "session revocations",
        include_str!("../migrations/sqlite/0008_revocations.sql"),
    ),
];

/// PostgreSQL migrations, oldest first; same versions and descriptions as [`SQLITE_MIGRATIONS`].
pub(crate) const POSTGRES_MIGRATIONS: &[Embedded] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "registry generation",
        include_str!("../migrations/postgres/0002_registry_generation.sql"),
    ),
    (
        3,
        "metering",
        include_str!("../migrations/postgres/0003_metering.sql"),
    ),
    (
        4,
        "queue",
        include_str!("../migrations/postgres/0004_queue.sql"),
    ),
    (
        5,
        "static sites",
        include_str!("../migrations/postgres/0005_static.sql"),
    ),
    (
        6,
        "backend services",
        include_str!("../migrations/postgres/0006_baas.sql"),
    ),
    (
        7,
        "leases",
        include_str!("../migrations/postgres/0007_leases.sql"),
    ),
    (
        8,
        "session revocations",
        include_str!("../migrations/postgres/0008_revocations.sql"),
    ),
];

/// Where a store URL points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SQLite file, as written after `sqlite://`.
    Sqlite(PathBuf),
    /// A PostgreSQL URL, passed through to the driver.
    Postgres(String),
}

/// Parses a store URL without touching the file system or the network.
pub(crate) fn parse_url(url: &str) -> Result<Target, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if path.is_empty() {
            return Err(invalid(
                "the path is empty; use sqlite://DATA_DIR/gureum.db",
            ));
        }
        if path.contains('?') {
            return Err(invalid(
                "query parameters are not supported; gureum sets the SQLite options itself",
            ));
        }
        if path == ":memory:" {
            return Err(invalid(
                "in-memory SQLite is not supported; use a file (a temp dir in tests)",
            ));
        }
        return Ok(Target::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_string()));
    }
    Err(StoreError::UnsupportedUrl(redact(url)))
}

/// `url` with the password of its user info replaced by `***`, for error messages.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|index| index + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

/// Opens the pool for `target` and applies the migrations.
pub(crate) async fn connect(target: &Target) -> Result<(AnyPool, Backend), StoreError> {
    sqlx::any::install_default_drivers();
    let (pool, backend) = match target {
        Target::Sqlite(path) => {
            let path = prepare_sqlite_file(path).await?;
            let pool = AnyPoolOptions::new()
                .max_connections(SQLITE_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        // The Any driver cannot carry these options in the URL, so every
                        // new connection sets them: wait for writers instead of failing
                        // at once, and enforce the schema's foreign keys.
                        let busy =
                            format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis());
                        sqlx::query(&busy).execute(&mut *connection).await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *connection)
                            .await?;
                        Ok(())
                    })
                })
                .connect(&sqlite_any_url(&path))
                .await?;
            (pool, Backend::Sqlite)
        }
        Target::Postgres(url) => {
            // The pool would retry a refused connection until its acquire timeout and then
            // report only "pool timed out"; one direct attempt first gives a clear error.
            let connect_error = |source| StoreError::Connect {
                target: redact(url),
                source,
            };
            let probe = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::AnyConnection::connect(url))
                .await
                .map_err(|_| {
                    connect_error(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {CONNECT_TIMEOUT:?}"),
                    )))
                })?
                .map_err(connect_error)?;
            probe.close().await.map_err(connect_error)?;
            let pool = AnyPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect(url)
                .await?;
            (pool, Backend::Postgres)
        }
    };
    if let Err(error) = migrate(&pool, backend).await {
        // On PostgreSQL a failed run may leave the migrator's session advisory lock held
        // by a pooled connection; closing the pool ends that session and frees the lock
        // for the other nodes.
        pool.close().await;
        return Err(error);
    }
    Ok((pool, backend))
}

/// Creates the SQLite file (and its parent directories) if missing and switches it to WAL.
/// Returns the absolute, canonical path so the URL built from it cannot be misread.
async fn prepare_sqlite_file(path: &Path) -> Result<PathBuf, StoreError> {
    let io_error = |path: &Path, source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| StoreError::InvalidUrl {
        url: format!("sqlite://{}", path.display()),
        reason: "the path must end with a file name".to_string(),
    })?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(|error| io_error(&parent, error))?;
    let parent = tokio::fs::canonicalize(&parent)
        .await
        .map_err(|error| io_error(&parent, error))?;
    let path = parent.join(file_name);
    // WAL lets readers run beside the batch writer. It is a property of the file, so one
    // connection sets it before the pool opens: switching needs an exclusive lock that
    // busy_timeout cannot wait for, and pooled connections racing for it would fail.
    // Incremental auto-vacuum lets the file give back the pages that consumed events,
    // deleted files and dead letters leave free (`Store::reclaim_space`); without it a
    // SQLite file never shrinks. It takes effect on a new file only; an older one is
    // converted once by a VACUUM if it is small enough to do so quickly at start.
    let mut connection = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .auto_vacuum(SqliteAutoVacuum::Incremental)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await
        .map_err(|source| StoreError::Connect {
            target: path.display().to_string(),
            source,
        })?;
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(&mut connection)
        .await?;
    if mode != 2 {
        let size = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
        if size <= VACUUM_AT_START_BYTES {
            tracing::info!(path = %path.display(), size, "converting the database to incremental auto-vacuum (once)");
            sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
                .execute(&mut connection)
                .await?;
            sqlx::query("VACUUM").execute(&mut connection).await?;
        } else {
            tracing::warn!(
                path = %path.display(),
                size,
                "the database does not give free pages back to the disk; stop gureum and run `sqlite3 FILE 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'` once"
            );
        }
    }
    connection.close().await?;
    Ok(path)
}

/// Largest SQLite file converted to incremental auto-vacuum at start (a VACUUM rewrites
/// the whole file, about a second per few hundred MB).
const VACUUM_AT_START_BYTES: u64 = 256 << 20;

/// The Any driver only takes URLs (which it normalizes), so every byte of the path
/// outside a safe set is percent-encoded; the SQLite driver decodes it again.
fn sqlite_any_url(path: &Path) -> String {
    let mut url = String::from("sqlite://");
    for byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'_' | b'.' | b'~') {
            url.push(char::from(*byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url.push_str("?mode=rw");
    url
}

/// The embedded migrations of one backend, in the form sqlx's migrator takes.
#[derive(Debug)]
struct EmbeddedSource(&'static [Embedded]);

impl MigrationSource<'static> for EmbeddedSource {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>> + Send>>
    {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// Applies the backend's pending migrations. sqlx records each applied version with a
/// checksum (an edited, already applied migration is an error) and, on PostgreSQL, holds
/// an advisory lock meanwhile, so nodes starting together migrate once.
async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let source = match backend {
        Backend::Sqlite => EmbeddedSource(SQLITE_MIGRATIONS),
        Backend::Postgres => EmbeddedSource(POSTGRES_MIGRATIONS),
    };
    let migrator = Migrator::new(source).await?;
    migrator.run(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migrations() {
        let key = |list: &[Embedded]| -> Vec<(i64, &str)> {
            list.iter()
                .map(|&(version, name, _)| (version, name))
                .collect()
        };
        assert_eq!(key(SQLITE_MIGRATIONS), key(POSTGRES_MIGRATIONS));
        assert!(
            SQLITE_MIGRATIONS
                .windows(2)
                .all(|pair| pair[0].0 < pair[1].0)
        );
    }

    #[test]
    fn urls_are_parsed_into_targets() {
        assert_eq!(
            parse_url("sqlite:///tmp/x/gureum.db").ok(),
            Some(Target::Sqlite(PathBuf::from("/tmp/x/gureum.db")))
        );
        assert_eq!(
            parse_url("sqlite://data/gureum.db").ok(),
            Some(Target::Sqlite(PathBuf::from("data/gureum.db")))
        );
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h:5432/db?sslmode=disable",
        ] {
            assert_eq!(parse_url(url).ok(), Some(Target::Postgres(url.to_string())));
        }
        for bad in ["sqlite://", "sqlite://x.db?mode=rwc", "sqlite://:memory:"] {
            assert!(
                matches!(parse_url(bad), Err(StoreError::InvalidUrl { .. })),
                "{bad}"
            );
        }
        for unsupported in ["mysql://h/db", "", "/tmp/gureum.db", "sqlite:x.db"] {
            assert!(
                matches!(parse_url(unsupported), Err(StoreError::UnsupportedUrl(_))),
                "{unsupported}"
            );
        }
    }

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("no scheme"), "no scheme");
        assert!(
            !parse_url("mysql://root:pw@h/db")
                .unwrap_err()
                .to_string()
                .contains("pw")
        );
    }

    #[test]
    fn sqlite_paths_are_percent_encoded() {
        assert_eq!(
            sqlite_any_url(Path::new("/tmp/a b/#1?/g.db")),
            "sqlite:///tmp/a%20b/%231%3F/g.db?mode=rw"
        );
    }
}
