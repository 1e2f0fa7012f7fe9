//! The durable parts of asynchronous invocation and cron: queued events with leases, dead
//! letters, enqueue deduplication keys and schedule state. Every state change of an event
//! is one transaction (a success and its destination event commit together, so do a dead
//! letter and its failure destination), so nothing acknowledged is lost between two
//! steps.
//!
//! A claim is one statement, `UPDATE … WHERE id IN (SELECT … ORDER BY next_at_ms LIMIT n
//! FOR UPDATE SKIP LOCKED)`, which sets the lease and counts the attempt. On PostgreSQL
//! the lock clause keeps nodes sharing one database from claiming the same event at once;
//! SQLite has none and serializes writers anyway. [`Store::fire_schedule`] is a
//! compare-and-set of the schedule's last tick, committed with the tick's queued event.

use sqlx::any::AnyRow;

use crate::rows::column;
use crate::{Backend, Store, StoreError};

const EVENT_COLUMNS: &str = "id, function, version, trigger_kind, source, method, path, \
     headers, body, raw_event, enqueued_at_ms, attempts, next_at_ms, errors";
const DEAD_LETTER_COLUMNS: &str = "id, function, version, trigger_kind, source, method, path, \
     headers, body, raw_event, enqueued_at_ms, attempts, errors, failed_at_ms, reason";
/// Dead letters read in the events' column order (the failure time where an event has
/// its next run), so one decoder serves both.
const DEAD_LETTER_SELECT: &str = "id, function, version, trigger_kind, source, method, path, \
     headers, body, raw_event, enqueued_at_ms, attempts, failed_at_ms, errors, reason";
const SCHEDULE_COLUMNS: &str = "function, name, last_tick_ms, last_fired_at_ms, \
     last_invocation_id, last_status, last_finished_at_ms";
/// How long an idempotency key keeps answering with its first invocation.
pub const IDEMPOTENCY_KEY_TTL_MS: i64 = 24 * 3_600_000;

/// An event as queued: a request to replay, or a raw event for lambda functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// The invocation id every attempt runs under.
    pub id: String,
    /// The function to run.
    pub function: String,
    /// A pinned version, or `None` for the version live when the event runs.
    pub version: Option<u32>,
    /// `queue` or `cron` (the invocation record's trigger).
    pub trigger: String,
    /// The schedule's name (cron) or the originating invocation id (destinations).
    pub source: Option<String>,
    /// HTTP method of the replayed request.
    pub method: String,
    /// Path and query of the replayed request, as the function sees it.
    pub path: String,
    /// JSON array of `[name, value]` pairs (opaque here).
    pub headers: String,
    /// The request body.
    pub body: Vec<u8>,
    /// The event a lambda function receives as is, if not the request's API Gateway event.
    pub raw_event: Option<String>,
    /// When it was first enqueued (ms since the epoch).
    pub enqueued_at_ms: i64,
    /// Attempts started so far (a claim counts one).
    pub attempts: u32,
    /// Not run before this time.
    pub next_at_ms: i64,
    /// JSON array of the failed attempts (opaque here).
    pub errors: String,
}

/// A queued event that exhausted its retries (or its age) and will not run again unless
/// redriven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The event as it was when it stopped (`next_at_ms` is the failure time).
    pub event: QueuedEvent,
    /// When it was dead-lettered.
    pub failed_at_ms: i64,
    /// `retries_exhausted`, `event_too_old` or `function_removed`.
    pub reason: String,
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The event is stored under its own id.
    New,
    /// Its idempotency key was used before (within 24 h): nothing stored, this is the
    /// invocation the key first enqueued.
    Duplicate(String),
}

/// The state of one cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    /// The function.
    pub function: String,
    /// The schedule's name.
    pub name: String,
    /// The last tick that fired (or was skipped), ms since the epoch.
    pub last_tick_ms: i64,
    /// When that tick was fired.
    pub last_fired_at_ms: Option<i64>,
    /// The invocation it enqueued.
    pub last_invocation_id: Option<String>,
    /// `succeeded`, `failed` (dead-lettered) or `None` while it has not finished.
    pub last_status: Option<String>,
    /// When that invocation finished.
    pub last_finished_at_ms: Option<i64>,
}

/// Depth and age of one function's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    /// The function.
    pub function: String,
    /// Events waiting or running.
    pub depth: u64,
    /// Enqueue time of the oldest of them.
    pub oldest_enqueued_at_ms: i64,
}

impl Store {
    /// Stores `events` in one transaction. An event with an idempotency key (the second
    /// element) already used for its function within 24 h is not stored; its outcome
    /// names the first invocation instead.
    pub async fn enqueue_events(
        &self,
        events: &[(QueuedEvent, Option<String>)],
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut outcomes = Vec::with_capacity(events.len());
        let mut transaction = self.begin_write().await?;
        for (event, key) in events {
            if let Some(key) = key {
                let fresh_after = event.enqueued_at_ms - IDEMPOTENCY_KEY_TTL_MS;
                // An expired key is replaced; a live one names its first invocation.
                let existing = sqlx::query(
                    "SELECT invocation_id, created_at_ms FROM idempotency_keys \
                     WHERE function = $1 AND idempotency_key = $2",
                )
                .bind(event.function.as_str())
                .bind(key.as_str())
                .fetch_optional(&mut *transaction)
                .await?;
                if let Some(row) = existing {
                    let created: i64 = column(&row, 1)?;
                    if created > fresh_after {
                        outcomes.push(Enqueued::Duplicate(column(&row, 0)?));
                        continue;
                    }
                }
                sqlx::query(
                    "INSERT INTO idempotency_keys (function, idempotency_key, invocation_id, \
                     created_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (function, \
                     idempotency_key) DO UPDATE SET invocation_id = excluded.invocation_id, \
                     created_at_ms = excluded.created_at_ms",
                )
                .bind(event.function.as_str())
                .bind(key.as_str())
                .bind(event.id.as_str())
                .bind(event.enqueued_at_ms)
                .execute(&mut *transaction)
                .await?;
            }
            insert_event(&mut transaction, event).await?;
            outcomes.push(Enqueued::New);
        }
        transaction.commit().await?;
        Ok(outcomes)
    }

    /// Claims up to `limit` due events for `owner` until `lease_until_ms`, counting an
    /// attempt on each, oldest due first, skipping the functions in `exclude` (those at
    /// their concurrency limit on this node).
    pub async fn claim_events(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
        exclude: &[String],
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let mut filter = String::new();
        if !exclude.is_empty() {
            filter.push_str(" AND function NOT IN (");
            for i in 0..exclude.len() {
                if i > 0 {
                    filter.push_str(", ");
                }
                filter.push_str(&format!("${}", i + 5));
            }
            filter.push(')');
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE async_events SET lease_owner = $1, lease_until_ms = $2, \
             attempts = attempts + 1 WHERE id IN (SELECT id FROM async_events \
             WHERE next_at_ms <= $3 AND (lease_until_ms IS NULL OR lease_until_ms < $3){filter} \
             ORDER BY next_at_ms LIMIT $4{lock}) RETURNING {EVENT_COLUMNS}"
        );
        let mut query = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until_ms)
            .bind(now_ms)
            .bind(i64::from(limit));
        for function in exclude {
            query = query.bind(function.as_str());
        }
        let mut transaction = self.begin_write().await?;
        let rows = query.fetch_all(&mut *transaction).await?;
        transaction.commit().await?;
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|event| event.next_at_ms);
        Ok(events)
    }

    /// Extends every lease `owner` holds to `until_ms`; returns how many.
    pub async fn renew_leases(&self, owner: &str, until_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("UPDATE async_events SET lease_until_ms = $2 WHERE lease_owner = $1")
                .bind(owner)
                .bind(until_ms)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// Frees every lease `owner` holds (a restarted node's events run again at once
    /// instead of after their lease expires); returns how many.
    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE async_events SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Removes a succeeded event, enqueues its destination event if any, and records the
    /// result of a cron tick, in one transaction.
    pub async fn complete_event(
        &self,
        event: &QueuedEvent,
        follow_up: Option<&QueuedEvent>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("DELETE FROM async_events WHERE id = $1")
            .bind(event.id.as_str())
            .execute(&mut *transaction)
            .await?;
        if let Some(follow_up) = follow_up {
            insert_event(&mut transaction, follow_up).await?;
        }
        schedule_result(&mut transaction, event, "succeeded", now_ms).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Puts a claimed event back to run at `next_at_ms`, with its attempt errors; a
    /// throttled attempt is not counted.
    pub async fn retry_event(
        &self,
        id: &str,
        next_at_ms: i64,
        errors: &str,
        count_attempt: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE async_events SET lease_owner = NULL, lease_until_ms = NULL, \
             next_at_ms = $2, errors = $3, attempts = attempts - $4 WHERE id = $1",
        )
        .bind(id)
        .bind(next_at_ms)
        .bind(errors)
        .bind(if count_attempt { 0_i64 } else { 1 })
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves an event to the dead-letter list with its errors and why it stopped,
    /// enqueues its failure destination event if any, and records a cron tick's result,
    /// in one transaction.
    pub async fn dead_letter_event(
        &self,
        event: &QueuedEvent,
        errors: &str,
        reason: &str,
        follow_up: Option<&QueuedEvent>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(&format!(
            "INSERT INTO dead_letters ({DEAD_LETTER_COLUMNS}) SELECT id, function, version, \
             trigger_kind, source, method, path, headers, body, raw_event, enqueued_at_ms, \
             attempts, $2, $3, $4 FROM async_events WHERE id = $1 \
             ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, \
             errors = excluded.errors, failed_at_ms = excluded.failed_at_ms, \
             reason = excluded.reason"
        ))
        .bind(event.id.as_str())
        .bind(errors)
        .bind(now_ms)
        .bind(reason)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM async_events WHERE id = $1")
            .bind(event.id.as_str())
            .execute(&mut *transaction)
            .await?;
        if let Some(follow_up) = follow_up {
            insert_event(&mut transaction, follow_up).await?;
        }
        schedule_result(&mut transaction, event, "failed", now_ms).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// One queued (waiting or running) event.
    pub async fn get_event(&self, id: &str) -> Result<Option<QueuedEvent>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM async_events WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    /// Depth and oldest enqueue time of every non-empty queue.
    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let rows = sqlx::query(
            "SELECT function, COUNT(*), MIN(enqueued_at_ms) FROM async_events GROUP BY function",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let depth: i64 = column(row, 1)?;
                Ok(QueueDepth {
                    function: column(row, 0)?,
                    depth: u64::try_from(depth).unwrap_or(0),
                    oldest_enqueued_at_ms: column(row, 2)?,
                })
            })
            .collect()
    }

    /// Bytes of request bodies each function holds in its queue and dead-letter list
    /// together (functions with none are left out): what `[async] max_queued_bytes` bounds.
    /// `LENGTH` of a blob reads its size, not its content, on both backends.
    pub async fn queued_bytes(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT function, CAST(SUM(bytes) AS BIGINT) FROM ( \
             SELECT function, LENGTH(body) AS bytes FROM async_events \
             UNION ALL SELECT function, LENGTH(body) AS bytes FROM dead_letters \
             ) AS held GROUP BY function",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let bytes: i64 = column(row, 1)?;
                Ok((column(row, 0)?, u64::try_from(bytes).unwrap_or(0)))
            })
            .collect()
    }

    /// How many dead letters each function has (functions without any are left out).
    pub async fn dead_letter_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query("SELECT function, COUNT(*) FROM dead_letters GROUP BY function")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let count: i64 = column(row, 1)?;
                Ok((column(row, 0)?, u64::try_from(count).unwrap_or(0)))
            })
            .collect()
    }

    /// Deletes idempotency keys older than their 24 h; returns how many.
    pub async fn purge_idempotency_keys(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at_ms < $1")
            .bind(now_ms - IDEMPOTENCY_KEY_TTL_MS)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// A function's dead letters, newest first.
    pub async fn list_dead_letters(
        &self,
        function: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DEAD_LETTER_SELECT} FROM dead_letters WHERE function = $1 \
             ORDER BY failed_at_ms DESC, id DESC LIMIT $2"
        ))
        .bind(function)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dead_letter_from_row).collect()
    }

    /// One dead letter of a function.
    pub async fn get_dead_letter(
        &self,
        function: &str,
        id: &str,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEAD_LETTER_SELECT} FROM dead_letters WHERE function = $1 AND id = $2"
        ))
        .bind(function)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(dead_letter_from_row).transpose()
    }

    /// Deletes one dead letter (`Some(id)`) or all of a function's; returns how many.
    pub async fn delete_dead_letters(
        &self,
        function: &str,
        id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let done = match id {
            Some(id) => {
                sqlx::query("DELETE FROM dead_letters WHERE function = $1 AND id = $2")
                    .bind(function)
                    .bind(id)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM dead_letters WHERE function = $1")
                    .bind(function)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }

    /// Queues one dead letter (`Some(id)`) or all of a function's again, as fresh events
    /// (same invocation id, no attempts, age from now); returns how many.
    pub async fn redrive_dead_letters(
        &self,
        function: &str,
        id: Option<&str>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let filter = if id.is_some() {
            "function = $1 AND id = $3"
        } else {
            "function = $1"
        };
        let mut transaction = self.begin_write().await?;
        let insert_sql = format!(
            "INSERT INTO async_events ({EVENT_COLUMNS}, lease_owner, lease_until_ms) \
             SELECT id, function, version, trigger_kind, source, method, path, headers, body, \
             raw_event, $2, 0, $2, '[]', NULL, NULL FROM dead_letters WHERE {filter}"
        );
        let delete_sql = format!(
            "DELETE FROM dead_letters WHERE {}",
            filter.replace("$3", "$2")
        );
        let mut insert = sqlx::query(&insert_sql).bind(function).bind(now_ms);
        let mut delete = sqlx::query(&delete_sql).bind(function);
        if let Some(id) = id {
            insert = insert.bind(id);
            delete = delete.bind(id);
        }
        let moved = insert.execute(&mut *transaction).await?.rows_affected();
        delete.execute(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(moved)
    }

    /// Every schedule's state.
    pub async fn schedule_states(&self) -> Result<Vec<ScheduleState>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedule_state ORDER BY function, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// The state of a schedule, created with `last_tick_ms` as its last tick if new.
    pub async fn schedule_state_or_insert(
        &self,
        function: &str,
        name: &str,
        last_tick_ms: i64,
    ) -> Result<ScheduleState, StoreError> {
        sqlx::query(
            "INSERT INTO schedule_state (function, name, last_tick_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (function, name) DO NOTHING",
        )
        .bind(function)
        .bind(name)
        .bind(last_tick_ms)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedule_state WHERE function = $1 AND name = $2"
        ))
        .bind(function)
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        schedule_from_row(&row)
    }

    /// Fires tick `tick_ms` of a schedule: moves its last tick forward (only if it is
    /// still before `tick_ms`) and, in the same transaction, enqueues `event` (none for a
    /// skipped tick). Returns false, storing nothing, when another node got there first.
    pub async fn fire_schedule(
        &self,
        function: &str,
        name: &str,
        tick_ms: i64,
        event: Option<&QueuedEvent>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let moved = match event {
            Some(event) => sqlx::query(
                "UPDATE schedule_state SET last_tick_ms = $3, last_fired_at_ms = $4, \
                 last_invocation_id = $5, last_status = NULL, last_finished_at_ms = NULL \
                 WHERE function = $1 AND name = $2 AND last_tick_ms < $3",
            )
            .bind(function)
            .bind(name)
            .bind(tick_ms)
            .bind(now_ms)
            .bind(event.id.as_str()),
            None => sqlx::query(
                "UPDATE schedule_state SET last_tick_ms = $3 \
                 WHERE function = $1 AND name = $2 AND last_tick_ms < $3",
            )
            .bind(function)
            .bind(name)
            .bind(tick_ms),
        }
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if moved == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        if let Some(event) = event {
            insert_event(&mut transaction, event).await?;
        }
        transaction.commit().await?;
        Ok(true)
    }
}

async fn insert_event(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    event: &QueuedEvent,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO async_events ({EVENT_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(event.id.as_str())
    .bind(event.function.as_str())
    .bind(event.version.map(i64::from))
    .bind(event.trigger.as_str())
    .bind(event.source.as_deref())
    .bind(event.method.as_str())
    .bind(event.path.as_str())
    .bind(event.headers.as_str())
    .bind(event.body.as_slice())
    .bind(event.raw_event.as_deref())
    .bind(event.enqueued_at_ms)
    .bind(i64::from(event.attempts))
    .bind(event.next_at_ms)
    .bind(event.errors.as_str())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Records how a cron tick's invocation ended, if `event` is one.
async fn schedule_result(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    event: &QueuedEvent,
    status: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    if event.trigger != "cron" {
        return Ok(());
    }
    let Some(name) = &event.source else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE schedule_state SET last_status = $4, last_finished_at_ms = $5 \
         WHERE function = $1 AND name = $2 AND last_invocation_id = $3",
    )
    .bind(event.function.as_str())
    .bind(name.as_str())
    .bind(event.id.as_str())
    .bind(status)
    .bind(now_ms)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

fn optional_u32(row: &AnyRow, index: usize, what: &str) -> Result<Option<u32>, StoreError> {
    let value: Option<i64> = column(row, index)?;
    value
        .map(|value| {
            u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} = {value}")))
        })
        .transpose()
}

fn event_from_row(row: &AnyRow) -> Result<QueuedEvent, StoreError> {
    let attempts: i64 = column(row, 11)?;
    Ok(QueuedEvent {
        id: column(row, 0)?,
        function: column(row, 1)?,
        version: optional_u32(row, 2, "async_events.version")?,
        trigger: column(row, 3)?,
        source: column(row, 4)?,
        method: column(row, 5)?,
        path: column(row, 6)?,
        headers: column(row, 7)?,
        body: column(row, 8)?,
        raw_event: column(row, 9)?,
        enqueued_at_ms: column(row, 10)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_at_ms: column(row, 12)?,
        errors: column(row, 13)?,
    })
}

fn dead_letter_from_row(row: &AnyRow) -> Result<DeadLetter, StoreError> {
    let event = event_from_row(row)?;
    Ok(DeadLetter {
        failed_at_ms: event.next_at_ms,
        event,
        reason: column(row, 14)?,
    })
}

fn schedule_from_row(row: &AnyRow) -> Result<ScheduleState, StoreError> {
    Ok(ScheduleState {
        function: column(row, 0)?,
        name: column(row, 1)?,
        last_tick_ms: column(row, 2)?,
        last_fired_at_ms: column(row, 3)?,
        last_invocation_id: column(row, 4)?,
        last_status: column(row, 5)?,
        last_finished_at_ms: column(row, 6)?,
    })
}
