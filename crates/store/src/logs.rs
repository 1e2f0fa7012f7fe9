//! Function log lines: written in batches by telemetry, read by `gureum logs` and the
//! console (filters, paging by sequence number).

use gureum_model::LogLine;

use crate::rows::{insert_chunks, log_from_row, multi_row_insert};
use crate::{Backend, Store, StoreError};

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

pub(crate) const LOG_COLUMNS: &str =
    "seq, invocation_id, function, version, ts_ms, stream, message";

impl Store {
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
}
