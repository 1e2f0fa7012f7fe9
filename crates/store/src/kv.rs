//! Key-value buckets of functions (`wasi:keyvalue` and the platform API's `/kv/v1`).
//! Keys live under (scope, bucket); the scope is the function's name, so a function
//! never sees another's buckets. Counters are decimal text, so `get` of a counter reads
//! as its number; an increment is one transaction that locks the row (PostgreSQL) or the
//! database (SQLite), so concurrent increments from many invocations never lose one.

use crate::rows::column;
use crate::{Backend, Store, StoreError};

/// Keys per page of a listing.
pub const KV_LIST_PAGE: u32 = 1000;

impl Store {
    /// The value of a key.
    pub async fn kv_get(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar(
                "SELECT value FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3",
            )
            .bind(scope)
            .bind(bucket)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?,
        )
    }

    /// Sets keys (one transaction).
    pub async fn kv_set_many(
        &self,
        scope: &str,
        bucket: &str,
        entries: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let now = gureum_model::now_ms();
        let mut transaction = self.begin_write().await?;
        for (key, value) in entries {
            sqlx::query(
                "INSERT INTO kv (scope, bucket, key, value, updated_at_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (scope, bucket, key) DO UPDATE SET value = excluded.value, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .bind(scope)
            .bind(bucket)
            .bind(key.as_str())
            .bind(value.as_slice())
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Values of keys, in order (`None` for a missing one).
    pub async fn kv_get_many(
        &self,
        scope: &str,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.kv_get(scope, bucket, key).await?);
        }
        Ok(values)
    }

    /// Deletes keys (one transaction); how many existed.
    pub async fn kv_delete_many(
        &self,
        scope: &str,
        bucket: &str,
        keys: &[String],
    ) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut deleted = 0;
        for key in keys {
            deleted += sqlx::query("DELETE FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3")
                .bind(scope)
                .bind(bucket)
                .bind(key.as_str())
                .execute(&mut *transaction)
                .await?
                .rows_affected();
        }
        transaction.commit().await?;
        Ok(deleted)
    }

    /// Keys of a bucket after `cursor` (exclusive), in order, at most [`KV_LIST_PAGE`];
    /// the second value is the cursor of the next page, if there may be one.
    pub async fn kv_list(
        &self,
        scope: &str,
        bucket: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM kv WHERE scope = $1 AND bucket = $2 AND key > $3 ORDER BY key LIMIT $4",
        )
        .bind(scope)
        .bind(bucket)
        .bind(cursor.unwrap_or(""))
        .bind(i64::from(KV_LIST_PAGE))
        .fetch_all(&self.pool)
        .await?;
        let next = (keys.len() == KV_LIST_PAGE as usize)
            .then(|| keys.last().cloned())
            .flatten();
        Ok((keys, next))
    }

    /// Adds `delta` to the counter at `key` (a missing key counts from 0) and answers the
    /// new value. A value that is not a decimal integer is an error naming it.
    pub async fn kv_increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, StoreError> {
        let now = gureum_model::now_ms();
        let mut transaction = self.begin_write().await?;
        // The row exists before it is locked, so two first increments cannot both insert.
        sqlx::query(
            "INSERT INTO kv (scope, bucket, key, value, updated_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (scope, bucket, key) DO NOTHING",
        )
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .bind(b"0".as_slice())
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        };
        let row = sqlx::query(&format!(
            "SELECT value FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3{lock}"
        ))
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .fetch_one(&mut *transaction)
        .await?;
        let current: Vec<u8> = column(&row, 0)?;
        let current: i64 = std::str::from_utf8(&current)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "key {key:?} holds a value that is not an integer, so it cannot be incremented"
                ))
            })?;
        let next = current.checked_add(delta).ok_or_else(|| {
            StoreError::Invalid(format!("incrementing key {key:?} by {delta} overflows i64"))
        })?;
        sqlx::query(
            "UPDATE kv SET value = $1, updated_at_ms = $2 WHERE scope = $3 AND bucket = $4 AND key = $5",
        )
        .bind(next.to_string().into_bytes())
        .bind(now)
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(next)
    }
}
