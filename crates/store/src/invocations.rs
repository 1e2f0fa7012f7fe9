//! Invocation records and the daily usage roll-up kept equal to them (one transaction),
//! reads of both, and retention: old records and logs are deleted `PURGE_BATCH` (5,000)
//! rows per statement and transaction, so a large purge never holds the write lock for
//! long.

use std::collections::HashMap;

use futures::TryStreamExt as _;
use gureum_model::{DailyUsage, InvocationOutcome, InvocationRecord, VersionNumber};

use crate::rows::{
    column, insert_chunks, invocation_from_row, multi_row_insert, u32_column, usage_from_row,
};
use crate::{Store, StoreError, clamp};

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

pub(crate) const INVOCATION_COLUMNS: &str = "id, function, version, started_at_ms, duration_us, status, \
     outcome, cold_start, memory_mb, trigger_kind, billed_ms, bytes_in, bytes_out";

pub(crate) const USAGE_COLUMNS: &str = "day, function, version, requests, errors, throttled, cold_starts, \
     duration_us, billed_ms, mb_ms, bytes_in, bytes_out, overflowed";

/// Rows deleted per statement by retention, so a large purge never holds the write lock
/// for long.
pub(crate) const PURGE_BATCH: i64 = 5_000;

impl Store {
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

    pub(crate) async fn purge_batches(&self, sql: &str, before_ms: i64) -> Result<u64, StoreError> {
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
}
