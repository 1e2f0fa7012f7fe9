//! Fresh PostgreSQL databases for tests of any gureum crate: each test creates its own
//! `gureum_test_*` database and drops it afterwards. Tests fail (never skip) when the
//! server is unreachable.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, PgConnection};

/// Env var with the base URL of the test server; its database is the maintenance DB.
pub const POSTGRES_ENV: &str = "GUREUM_TEST_POSTGRES";
/// Base URL used when [`POSTGRES_ENV`] is unset (local server, trust auth).
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Prefix of every database these helpers create, and the only ones they drop.
const PREFIX: &str = "gureum_test_";
/// A test waits this long for the server before failing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The base URL of the test server: `$GUREUM_TEST_POSTGRES` or [`DEFAULT_POSTGRES`].
pub fn postgres_base_url() -> String {
    std::env::var(POSTGRES_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES.to_string())
}

/// Creates a fresh, empty database and returns its URL (pass it to `Store::open`, then
/// to [`drop_postgres`]).
///
/// # Panics
///
/// When PostgreSQL is unreachable or refuses, with a message that says how to fix it:
/// a test that needs PostgreSQL must fail, not pass silently.
pub async fn fresh_postgres_url() -> String {
    match create_database(&postgres_base_url()).await {
        Ok(url) => url,
        Err(message) => panic!("{message}"),
    }
}

/// Drops a database made by [`fresh_postgres_url`], closing its remaining connections.
/// Only `gureum_test_*` databases are touched; failures are printed, not raised, since
/// this runs in cleanup paths.
pub async fn drop_postgres(url: &str) {
    let Some(name) = database_name(url).filter(|name| is_test_database(name)) else {
        eprintln!("drop_postgres: {url:?} does not name a {PREFIX}* database; left alone");
        return;
    };
    let base = postgres_base_url();
    let result = async {
        let mut connection = connect(&base).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut connection)
            .await?;
        connection.close().await
    }
    .await;
    if let Err(error) = result {
        eprintln!("drop_postgres: dropping {name} at {base}: {error}");
    }
}

/// Creates a `gureum_test_*` database on the server of `base`; the error is the message
/// a failing test shows.
async fn create_database(base: &str) -> Result<String, String> {
    // Many tests create databases at once on a loaded machine; a transient refusal
    // (a connect timeout, template1 briefly busy) deserves another try before failing.
    let mut attempt = 1;
    loop {
        match create_database_once(base).await {
            Ok(url) => return Ok(url),
            Err(message) if attempt >= 3 => return Err(message),
            Err(message) => {
                eprintln!("creating a test database, attempt {attempt}: {message}");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250 * attempt)).await;
            }
        }
    }
}

async fn create_database_once(base: &str) -> Result<String, String> {
    let unreachable = |error: &dyn std::fmt::Display| {
        format!(
            "PostgreSQL for tests is unavailable at {base}: {error}. Start a server \
             (127.0.0.1:5432, trust auth, user postgres) or set {POSTGRES_ENV} to a base URL; \
             PostgreSQL tests never skip."
        )
    };
    let mut connection = connect(base).await.map_err(|error| unreachable(&error))?;
    let name = format!("{PREFIX}{:016x}", random_u64());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .map_err(|error| unreachable(&error))?;
    let _ = connection.close().await;
    Ok(with_database(base, &name))
}

async fn connect(base: &str) -> Result<PgConnection, sqlx::Error> {
    let options: sqlx::postgres::PgConnectOptions = base.parse()?;
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {CONNECT_TIMEOUT:?}"),
        ))),
    }
}

/// `base` with its database replaced by `name`, keeping any query string.
fn with_database(base: &str, name: &str) -> String {
    let (main, query) = match base.split_once('?') {
        Some((main, query)) => (main, format!("?{query}")),
        None => (base, String::new()),
    };
    let authority_start = main.find("://").map_or(0, |index| index + 3);
    let server = match main[authority_start..].find('/') {
        Some(slash) => &main[..authority_start + slash],
        None => main,
    };
    format!("{server}/{name}{query}")
}

/// The database named by a PostgreSQL URL.
fn database_name(url: &str) -> Option<&str> {
    let main = url.split('?').next().unwrap_or(url);
    let authority_start = main.find("://")? + 3;
    let path = &main[authority_start..];
    let slash = path.find('/')?;
    Some(&path[slash + 1..])
}

fn is_test_database(name: &str) -> bool {
    name.starts_with(PREFIX)
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

/// 64 random bits from the standard library's per-process random hash keys, mixed with
/// the time and a counter so names differ across processes and calls.
fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_i64(gureum_model::now_ms());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_the_new_database_and_keep_the_rest() {
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/postgres",
                "gureum_test_1"
            ),
            "postgres://postgres@127.0.0.1:5432/gureum_test_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "gureum_test_1"),
            "postgres://u:p@h/gureum_test_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://u@h:5432", "gureum_test_1"),
            "postgresql://u@h:5432/gureum_test_1"
        );
        assert_eq!(
            database_name("postgres://u@h/gureum_test_ab?x=1"),
            Some("gureum_test_ab")
        );
        assert!(is_test_database("gureum_test_0123abcd"));
        assert!(!is_test_database("postgres"));
        assert!(!is_test_database("gureum_test_x; DROP TABLE y"));
        assert_ne!(random_u64(), random_u64());
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_with_a_clear_message() {
        // Port 1 on localhost: nothing listens there.
        let error = create_database("postgres://postgres@127.0.0.1:1/postgres")
            .await
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("unavailable at postgres://postgres@127.0.0.1:1/postgres")
                && error.contains(POSTGRES_ENV),
            "{error}"
        );
    }
}
