//! Fresh PostgreSQL databases for tests: each test gets its own and drops it after.

use sqlx::Connection;

/// Base URL of the PostgreSQL server the tests use (env `GUREUM_TEST_POSTGRES`).
pub fn postgres_base_url() -> String {
    std::env::var("GUREUM_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates a database with a random name and returns its URL. Panics with a clear
/// message when PostgreSQL is unreachable: these tests must fail, never skip.
pub async fn fresh_postgres_url() -> String {
    use rand::Rng;
    let base = postgres_base_url();
    let name = format!("gureum_test_{:016x}", rand::rng().random::<u64>());
    let mut connection = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|error| {
        panic!("PostgreSQL at {base} is unreachable ({error}); start it or set GUREUM_TEST_POSTGRES")
    });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .expect("creating the test database");
    let _ = connection.close().await;
    match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("GUREUM_TEST_POSTGRES must end with /DATABASE"),
    }
}

/// Drops a database made by [`fresh_postgres_url`].
pub async fn drop_postgres(url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut connection) = sqlx::PgConnection::connect(&postgres_base_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut connection)
            .await;
        let _ = connection.close().await;
    }
}
