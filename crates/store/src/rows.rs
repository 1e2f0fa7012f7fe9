//! Row decoding and batch-statement building shared by the store's queries. Decoding
//! never panics: a stored value this code did not write becomes [`StoreError::Corrupt`].

use gureum_model::{
    DailyUsage, FunctionName, FunctionVersion, InvocationOutcome, InvocationRecord, LogLine,
    LogStream, Trigger,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Decode, Row, Type};

use crate::{Backend, StoreError};

/// Most rows per multi-row INSERT: big batches in few round trips, while 512 rows × 9
/// columns stay far below SQLite's (32,766) and PostgreSQL's (65,535) parameter limits.
pub(crate) const INSERT_CHUNK_ROWS: usize = 512;

/// Splits a batch into chunks whose sizes are powers of two (at most
/// [`INSERT_CHUNK_ROWS`]), so that only ten statement texts per table ever exist and
/// each stays in the connection's prepared-statement cache; a batch of any size would
/// otherwise prepare a new statement for its remainder every time.
pub(crate) fn insert_chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = if rest.len() >= INSERT_CHUNK_ROWS {
            INSERT_CHUNK_ROWS
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// `head` followed by `rows` groups of `columns` placeholders and `tail`: numbered from
/// `$1` on PostgreSQL, anonymous `?` on SQLite. SQLite finds a numbered parameter's slot
/// by a linear scan of the statement's parameter names, once per bound value, so a
/// batch of n numbered parameters costs O(n²) — with 512 rows of 13 columns that was a
/// third of the server's CPU under load; anonymous ones bind by position.
pub(crate) fn multi_row_insert(
    backend: Backend,
    head: &str,
    columns: usize,
    rows: usize,
    tail: &str,
) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * columns * 7);
    sql.push_str(head);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => sql.push_str(&format!("${}", row * columns + column + 1)),
            }
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// Column `index` decoded as `T`; a mismatch is an error, not a panic.
pub(crate) fn column<'r, T>(row: &'r AnyRow, index: usize) -> Result<T, StoreError>
where
    T: Decode<'r, Any> + Type<Any>,
{
    Ok(row.try_get(index)?)
}

/// A BIGINT column that holds a `u32` (versions, memory sizes).
pub(crate) fn u32_column(row: &AnyRow, index: usize, what: &str) -> Result<u32, StoreError> {
    let value: i64 = column(row, index)?;
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} = {value}")))
}

/// A stored function name, validated again.
pub(crate) fn function_name(name: String) -> Result<FunctionName, StoreError> {
    FunctionName::new(name).map_err(|error| StoreError::Corrupt(error.to_string()))
}

/// A row of `VERSION_COLUMNS`.
pub(crate) fn version_from_row(row: &AnyRow) -> Result<FunctionVersion, StoreError> {
    Ok(FunctionVersion {
        function: function_name(column(row, 0)?)?,
        version: u32_column(row, 1, "versions.version")?,
        artifact_hash: column(row, 2)?,
        manifest: column(row, 3)?,
        created_at_ms: column(row, 4)?,
        static_hash: column(row, 5)?,
    })
}

/// A row of `INVOCATION_COLUMNS`.
pub(crate) fn invocation_from_row(row: &AnyRow) -> Result<InvocationRecord, StoreError> {
    let outcome: String = column(row, 6)?;
    let status: i64 = column(row, 5)?;
    Ok(InvocationRecord {
        id: column(row, 0)?,
        function: column(row, 1)?,
        version: u32_column(row, 2, "invocations.version")?,
        started_at_ms: column(row, 3)?,
        duration_us: column(row, 4)?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("invocations.status = {status}")))?,
        outcome: InvocationOutcome::parse(&outcome)
            .ok_or_else(|| StoreError::Corrupt(format!("invocations.outcome = {outcome:?}")))?,
        cold_start: column::<i64>(row, 7)? != 0,
        memory_mb: u32_column(row, 8, "invocations.memory_mb")?,
        trigger: {
            let trigger: String = column(row, 9)?;
            Trigger::parse(&trigger).ok_or_else(|| {
                StoreError::Corrupt(format!("invocations.trigger_kind = {trigger:?}"))
            })?
        },
        billed_ms: column(row, 10)?,
        bytes_in: column(row, 11)?,
        bytes_out: column(row, 12)?,
    })
}

/// A BIGINT column that holds a count (never negative).
fn count_column(row: &AnyRow, index: usize) -> Result<u64, StoreError> {
    let value: i64 = column(row, index)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative usage count {value}")))
}

/// A row of `USAGE_COLUMNS`.
pub(crate) fn usage_from_row(row: &AnyRow) -> Result<DailyUsage, StoreError> {
    Ok(DailyUsage {
        day: column(row, 0)?,
        function: column(row, 1)?,
        version: u32_column(row, 2, "usage_daily.version")?,
        requests: count_column(row, 3)?,
        errors: count_column(row, 4)?,
        throttled: count_column(row, 5)?,
        cold_starts: count_column(row, 6)?,
        duration_us: count_column(row, 7)?,
        billed_ms: count_column(row, 8)?,
        mb_ms: count_column(row, 9)?,
        bytes_in: count_column(row, 10)?,
        bytes_out: count_column(row, 11)?,
        overflowed: count_column(row, 12)?,
    })
}

/// A row of `LOG_COLUMNS`.
pub(crate) fn log_from_row(row: &AnyRow) -> Result<LogLine, StoreError> {
    let stream: String = column(row, 5)?;
    Ok(LogLine {
        seq: column(row, 0)?,
        invocation_id: column(row, 1)?,
        function: column(row, 2)?,
        version: u32_column(row, 3, "logs.version")?,
        ts_ms: column(row, 4)?,
        stream: LogStream::parse(&stream)
            .ok_or_else(|| StoreError::Corrupt(format!("logs.stream = {stream:?}")))?,
        message: column(row, 6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_into_power_of_two_chunks() {
        let rows: Vec<usize> = (0..1_300).collect();
        let sizes: Vec<usize> = insert_chunks(&rows).map(<[usize]>::len).collect();
        assert_eq!(sizes, [512, 512, 256, 16, 4]);
        let joined: Vec<usize> = insert_chunks(&rows).flatten().copied().collect();
        assert_eq!(joined, rows);
        assert_eq!(insert_chunks::<u8>(&[]).count(), 0);
    }

    #[test]
    fn multi_row_inserts_number_placeholders_across_rows() {
        assert_eq!(
            multi_row_insert(
                Backend::Postgres,
                "INSERT INTO t (a, b) VALUES ",
                2,
                3,
                " ON CONFLICT DO NOTHING"
            ),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            multi_row_insert(Backend::Sqlite, "INSERT INTO t (a, b) VALUES ", 2, 2, ""),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
    }
}
