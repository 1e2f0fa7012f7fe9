//! Document collections: JSON documents with server-set id, owner, times and version, and
//! each collection's config (rules, indexed fields) as opaque JSON text.
//!
//! Queries are built here because they are the one place where the two backends' SQL
//! differs in substance: a data field is `data ->> '$."a"."b"'` on SQLite and
//! `NULLIF(data #> '{a,b}', 'null'::jsonb)` on PostgreSQL (JSON null and a missing field
//! both become SQL NULL on both, so filters, sorting and cursors agree). SQLite uses
//! `->>`, not `json_extract`, whose result subtype (SQLite 3.45+) keeps the planner from
//! matching it to an expression index.
//!
//! A declared index is a partial expression index `(collection, expr, id) WHERE
//! collection = 'x'`, which the planner uses only for a query that names the collection
//! and the field expression literally. That is why field paths and collection names are
//! validated by [`FieldPath::parse`] / [`valid_collection`] and then inlined; every value
//! is a bound parameter.
//!
//! Listing is keyset-paginated on (sort key, id): NULLs first ascending, last descending,
//! on both backends, so a page boundary never skips or repeats a document.

use serde_json::Value;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Arguments};

use crate::rows::column;
use crate::{Backend, Store, StoreError};

const DOC_COLUMNS_SQLITE: &str = "id, owner, created_at_ms, updated_at_ms, version, data";
const DOC_COLUMNS_PG: &str = "id, owner, created_at_ms, updated_at_ms, version, data::text";

/// A document as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRow {
    /// Server-made id, unique in its collection.
    pub id: String,
    /// The creator's uid (or `fn:NAME` for a function, `None` for the admin).
    pub owner: Option<String>,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Last write, ms since the epoch.
    pub updated_at_ms: i64,
    /// 1 at creation, +1 per write (the ETag).
    pub version: i64,
    /// The user's fields: a JSON object, as text.
    pub data: String,
}

/// A field a query filters or sorts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    /// The document id.
    Id,
    /// The owner's uid.
    Owner,
    /// Creation time (ms).
    Created,
    /// Last write time (ms).
    Updated,
    /// A path into the data object, e.g. `["author", "name"]`.
    Data(Vec<String>),
}

/// The comparison of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in` (the value is an array)
    In,
}

/// One condition; a query's filters all must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The field.
    pub field: FieldPath,
    /// The comparison.
    pub op: FilterOp,
    /// A JSON scalar (an array for `in`); `null` only with `=` / `!=`.
    pub value: Value,
}

/// Where the previous page ended: its last document's sort value and id.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The sort field's value in that document (`null` when it had none).
    pub value: Value,
    /// That document's id.
    pub id: String,
}

/// A listing.
#[derive(Debug, Clone, PartialEq)]
pub struct DocQuery {
    /// Conditions, all of which must hold.
    pub filters: Vec<Filter>,
    /// Sort field; ties broken by id in the same direction.
    pub sort: FieldPath,
    /// Descending instead of ascending.
    pub descending: bool,
    /// Rows to return.
    pub limit: u32,
    /// Start after this position.
    pub after: Option<Cursor>,
}

/// What a conditional write found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written (or deleted): the document as it now is (as it was, for a delete).
    Done(DocumentRow),
    /// No such document.
    NotFound,
    /// The document's version is not the expected one; this is the current version.
    VersionMismatch(i64),
}

/// Longest field path segment and most segments.
const MAX_SEGMENT: usize = 64;
const MAX_SEGMENTS: usize = 8;

/// Whether `name` may name a collection: `[a-z0-9_-]`, 1–63 characters, starting with a
/// letter or digit. Collection names are inlined into SQL (for partial indexes), so this
/// check is what keeps them safe.
pub fn valid_collection(name: &str) -> bool {
    gureum_model::valid_collection(name)
}

impl FieldPath {
    /// Parses `id`, `owner`, `created`, `updated`, `data.a.b` or `a.b` (a data path).
    /// Segments are `[A-Za-z0-9_-]`, at most 64 bytes, at most 8 of them.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        match text {
            "id" => return Ok(FieldPath::Id),
            "owner" => return Ok(FieldPath::Owner),
            "created" => return Ok(FieldPath::Created),
            "updated" => return Ok(FieldPath::Updated),
            _ => {}
        }
        let path = text.strip_prefix("data.").unwrap_or(text);
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(format!(
                "field {text:?} is nested too deeply: at most {MAX_SEGMENTS} segments"
            ));
        }
        for segment in &segments {
            let ok = !segment.is_empty()
                && segment.len() <= MAX_SEGMENT
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(format!(
                    "field {text:?}: each dot-separated part must be 1-{MAX_SEGMENT} of A-Z a-z 0-9 _ - \
                     (or use id, owner, created, updated)"
                ));
            }
        }
        Ok(FieldPath::Data(segments))
    }

    /// The canonical text (`data.a.b` for data paths).
    pub fn text(&self) -> String {
        match self {
            FieldPath::Id => "id".into(),
            FieldPath::Owner => "owner".into(),
            FieldPath::Created => "created".into(),
            FieldPath::Updated => "updated".into(),
            FieldPath::Data(path) => format!("data.{}", path.join(".")),
        }
    }

    /// The SQL expression of the field on `backend`.
    fn sql(&self, backend: Backend) -> String {
        match self {
            FieldPath::Id => "id".into(),
            FieldPath::Owner => "owner".into(),
            FieldPath::Created => "created_at_ms".into(),
            FieldPath::Updated => "updated_at_ms".into(),
            FieldPath::Data(path) => match backend {
                Backend::Sqlite => {
                    // Segments are quoted so digits and dashes stay keys.
                    let quoted: Vec<String> = path.iter().map(|s| format!("\"{s}\"")).collect();
                    // `->>` rather than json_extract: since SQLite 3.45 json_extract marks
                    // its result with a subtype, which keeps the planner from matching it to
                    // an expression index; `->>` answers the same SQL value without one.
                    format!("(data ->> '$.{}')", quoted.join("."))
                }
                Backend::Postgres => {
                    format!("NULLIF(data #> '{{{}}}', 'null'::jsonb)", path.join(","))
                }
            },
        }
    }

    fn nullable(&self) -> bool {
        matches!(self, FieldPath::Owner | FieldPath::Data(_))
    }

    /// The field's value in `row` (`null` when absent), as a cursor keeps it.
    pub fn value_in(&self, row: &DocumentRow) -> Value {
        match self {
            FieldPath::Id => Value::String(row.id.clone()),
            FieldPath::Owner => row.owner.clone().map_or(Value::Null, Value::String),
            FieldPath::Created => Value::from(row.created_at_ms),
            FieldPath::Updated => Value::from(row.updated_at_ms),
            FieldPath::Data(path) => {
                let mut value: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
                for segment in path {
                    value = match value {
                        Value::Object(mut map) => map.remove(segment).unwrap_or(Value::Null),
                        _ => Value::Null,
                    };
                }
                value
            }
        }
    }
}

/// Bound values of a query being built, with placeholder numbering.
struct Binds {
    backend: Backend,
    values: Vec<Bound>,
}

enum Bound {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Binds {
    fn new(backend: Backend) -> Self {
        Binds {
            backend,
            values: Vec::new(),
        }
    }

    /// A placeholder for a plain column value (`id`, `owner`, times).
    fn plain(&mut self, value: Bound) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    /// A placeholder comparable with `field`'s SQL expression.
    fn for_field(&mut self, field: &FieldPath, value: &Value) -> Result<String, String> {
        match field {
            FieldPath::Id | FieldPath::Owner => match value {
                Value::String(text) => Ok(self.plain(Bound::Text(text.clone()))),
                other => Err(format!("{} is a string; got {other}", field.text())),
            },
            FieldPath::Created | FieldPath::Updated => match value.as_i64() {
                Some(ms) => Ok(self.plain(Bound::Int(ms))),
                None => Err(format!(
                    "{} is a time in ms since the epoch (an integer); got {value}",
                    field.text()
                )),
            },
            FieldPath::Data(_) => match self.backend {
                Backend::Postgres => {
                    let placeholder = self.plain(Bound::Text(value.to_string()));
                    Ok(format!("CAST({placeholder} AS jsonb)"))
                }
                Backend::Sqlite => Ok(match value {
                    Value::Bool(b) => self.plain(Bound::Int(i64::from(*b))),
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => self.plain(Bound::Int(i)),
                        None => self.plain(Bound::Float(n.as_f64().unwrap_or(f64::NAN))),
                    },
                    Value::String(s) => self.plain(Bound::Text(s.clone())),
                    // json_extract answers objects and arrays as minified JSON text.
                    other => self.plain(Bound::Text(other.to_string())),
                }),
            },
        }
    }

    fn apply<'q>(&'q self, sql: &'q str) -> Query<'q, Any, AnyArguments<'q>> {
        let mut arguments = AnyArguments::default();
        for value in &self.values {
            // Encoding into AnyArguments only fails for unsupported types, which these are not.
            let _ = match value {
                Bound::Int(v) => arguments.add(*v),
                Bound::Float(v) => arguments.add(*v),
                Bound::Text(v) => arguments.add(v.as_str()),
            };
        }
        sqlx::query_with(sql, arguments)
    }
}

fn doc_from_row(row: &AnyRow) -> Result<DocumentRow, StoreError> {
    Ok(DocumentRow {
        id: column(row, 0)?,
        owner: column(row, 1)?,
        created_at_ms: column(row, 2)?,
        updated_at_ms: column(row, 3)?,
        version: column(row, 4)?,
        data: column(row, 5)?,
    })
}

/// The name of the index on `field` of `collection` (stable, ≤ 63 bytes).
fn index_name(collection: &str, field: &FieldPath) -> String {
    // FNV-1a: a short stable name; the full field is in the collection's config.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in collection.bytes().chain([0]).chain(field.text().bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("docidx_{hash:016x}")
}

impl Store {
    fn doc_columns(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => DOC_COLUMNS_SQLITE,
            Backend::Postgres => DOC_COLUMNS_PG,
        }
    }

    fn data_param(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => format!("${n}"),
            Backend::Postgres => format!("CAST(${n} AS jsonb)"),
        }
    }

    /// A collection's config JSON.
    pub async fn collection_config(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT config FROM collections WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every collection's (name, config JSON), by name.
    pub async fn list_collections(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT name, config FROM collections ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Stores a collection's config and makes its indexes exactly `indexes`: indexes on
    /// fields no longer listed in `old_indexes` are dropped, new ones built (which reads
    /// the whole collection once).
    pub async fn put_collection(
        &self,
        name: &str,
        config: &str,
        indexes: &[FieldPath],
        old_indexes: &[FieldPath],
    ) -> Result<(), StoreError> {
        if !valid_collection(name) {
            return Err(StoreError::Invalid(format!(
                "invalid collection name {name:?}"
            )));
        }
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO collections (name, config, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET config = excluded.config, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .bind(name)
        .bind(config)
        .bind(gureum_model::now_ms())
        .execute(&mut *transaction)
        .await?;
        for old in old_indexes.iter().filter(|f| !indexes.contains(f)) {
            sqlx::query(&format!("DROP INDEX IF EXISTS {}", index_name(name, old)))
                .execute(&mut *transaction)
                .await?;
        }
        for field in indexes {
            let nulls = match self.backend {
                Backend::Sqlite => "",
                Backend::Postgres => " NULLS FIRST",
            };
            sqlx::query(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON documents (collection, {}{nulls}, id) WHERE collection = '{name}'",
                index_name(name, field),
                field.sql(self.backend)
            ))
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        if !indexes.is_empty() {
            // Fresh statistics, so the planner knows what a new expression index holds
            // (PostgreSQL would otherwise guess until autovacuum analyzes the table;
            // SQLite's planner needs no statistics to use it).
            if self.backend == Backend::Postgres {
                sqlx::query("ANALYZE documents").execute(&self.pool).await?;
            }
        }
        Ok(())
    }

    /// Removes a collection's config, indexes, documents and file records (blobs no other
    /// file uses go too); `false` when there was no such config and no document.
    pub async fn delete_collection(
        &self,
        name: &str,
        indexes: &[FieldPath],
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut changed = sqlx::query("DELETE FROM collections WHERE name = $1")
            .bind(name)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        changed += sqlx::query("DELETE FROM documents WHERE collection = $1")
            .bind(name)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM files WHERE collection = $1")
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM blob_chunks WHERE sha256 NOT IN (SELECT sha256 FROM files)")
            .execute(&mut *transaction)
            .await?;
        for field in indexes {
            sqlx::query(&format!("DROP INDEX IF EXISTS {}", index_name(name, field)))
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(changed > 0)
    }

    /// Stores a new document (`version` should be 1).
    pub async fn insert_document(
        &self,
        collection: &str,
        doc: &DocumentRow,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO documents (collection, id, owner, created_at_ms, updated_at_ms, version, data) \
             VALUES ($1, $2, $3, $4, $5, $6, {})",
            self.data_param(7)
        ))
        .bind(collection)
        .bind(&doc.id)
        .bind(doc.owner.as_deref())
        .bind(doc.created_at_ms)
        .bind(doc.updated_at_ms)
        .bind(doc.version)
        .bind(&doc.data)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Many new documents in one transaction (imports, benchmarks).
    pub async fn insert_documents(
        &self,
        collection: &str,
        docs: &[DocumentRow],
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO documents (collection, id, owner, created_at_ms, updated_at_ms, version, data) \
             VALUES ($1, $2, $3, $4, $5, $6, {})",
            self.data_param(7)
        );
        let mut transaction = self.begin_write().await?;
        for doc in docs {
            sqlx::query(&sql)
                .bind(collection)
                .bind(&doc.id)
                .bind(doc.owner.as_deref())
                .bind(doc.created_at_ms)
                .bind(doc.updated_at_ms)
                .bind(doc.version)
                .bind(&doc.data)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// One document.
    pub async fn get_document(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<Option<DocumentRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM documents WHERE collection = $1 AND id = $2",
            self.doc_columns()
        ))
        .bind(collection)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(doc_from_row).transpose()
    }

    /// Replaces a document's data (version + 1, updated = `now_ms`) if its version is
    /// `expected_version` (any version when `None`).
    pub async fn update_document(
        &self,
        collection: &str,
        id: &str,
        expected_version: Option<i64>,
        data: &str,
        now_ms: i64,
    ) -> Result<WriteOutcome, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE documents SET data = {}, version = version + 1, updated_at_ms = $2 \
             WHERE collection = $3 AND id = $4 AND ($5 < 0 OR version = $5) RETURNING {}",
            self.data_param(1),
            self.doc_columns()
        ))
        .bind(data)
        .bind(now_ms)
        .bind(collection)
        .bind(id)
        .bind(expected_version.unwrap_or(-1))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(WriteOutcome::Done(doc_from_row(&row)?)),
            None => self.missing_or_mismatch(collection, id).await,
        }
    }

    /// Deletes a document if its version is `expected_version` (any when `None`).
    pub async fn delete_document(
        &self,
        collection: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> Result<WriteOutcome, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM documents WHERE collection = $1 AND id = $2 AND ($3 < 0 OR version = $3) \
             RETURNING {}",
            self.doc_columns()
        ))
        .bind(collection)
        .bind(id)
        .bind(expected_version.unwrap_or(-1))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(WriteOutcome::Done(doc_from_row(&row)?)),
            None => self.missing_or_mismatch(collection, id).await,
        }
    }

    async fn missing_or_mismatch(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<WriteOutcome, StoreError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM documents WHERE collection = $1 AND id = $2")
                .bind(collection)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(version.map_or(WriteOutcome::NotFound, WriteOutcome::VersionMismatch))
    }

    /// Documents of `collection` matching `query`, in its order. A value that cannot be
    /// compared with its field (a string for `created`, say) is [`StoreError::Invalid`]
    /// with the reason; callers validate first.
    pub async fn query_documents(
        &self,
        collection: &str,
        query: &DocQuery,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        let (sql, binds) = self
            .list_sql(collection, query)
            .map_err(StoreError::Invalid)?;
        let rows = binds.apply(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(doc_from_row).collect()
    }

    /// The database's plan for a listing (one line per plan row), to check that declared
    /// indexes serve it. PostgreSQL is told to avoid sequential scans for this one
    /// statement, as it would on a large collection; a small test table would otherwise
    /// always be scanned.
    pub async fn explain_document_query(
        &self,
        collection: &str,
        query: &DocQuery,
    ) -> Result<String, StoreError> {
        let (sql, binds) = self
            .list_sql(collection, query)
            .map_err(StoreError::Invalid)?;
        let mut connection = self.pool.acquire().await?;
        let explain = match self.backend {
            Backend::Sqlite => {
                // EXPLAIN does not check the connection's cached schema against the file
                // (a real query would, and re-plan): read something first so an index
                // created on another connection is seen.
                sqlx::query("SELECT COUNT(*) FROM sqlite_master")
                    .execute(&mut *connection)
                    .await?;
                format!("EXPLAIN QUERY PLAN {sql}")
            }
            Backend::Postgres => {
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut *connection)
                    .await?;
                format!("EXPLAIN {sql}")
            }
        };
        // Not kept in the statement cache: a cached EXPLAIN would show a stale plan.
        let rows = binds
            .apply(&explain)
            .persistent(false)
            .fetch_all(&mut *connection)
            .await;
        if self.backend == Backend::Postgres {
            sqlx::query("RESET enable_seqscan")
                .execute(&mut *connection)
                .await?;
        }
        let lines = rows?
            .iter()
            .map(|row| {
                use sqlx::Row;
                row.try_get::<String, _>(row.len() - 1).unwrap_or_default()
            })
            .collect::<Vec<_>>();
        Ok(lines.join("\n"))
    }

    fn list_sql(&self, collection: &str, query: &DocQuery) -> Result<(String, Binds), String> {
        if !valid_collection(collection) {
            return Err(format!("collection name {collection:?}"));
        }
        let backend = self.backend;
        let mut binds = Binds::new(backend);
        let mut sql = format!(
            "SELECT {} FROM documents WHERE collection = '{collection}'",
            self.doc_columns()
        );
        for filter in &query.filters {
            let expr = filter.field.sql(backend);
            let condition = match (filter.op, &filter.value) {
                (FilterOp::Eq, Value::Null) => format!("{expr} IS NULL"),
                (FilterOp::Ne, Value::Null) => format!("{expr} IS NOT NULL"),
                (_, Value::Null) => {
                    return Err(format!(
                        "{}: null can only be compared with = or !=",
                        filter.field.text()
                    ));
                }
                (FilterOp::In, Value::Array(items)) => {
                    if items.is_empty() {
                        "1 = 0".to_owned()
                    } else {
                        let mut placeholders = Vec::with_capacity(items.len());
                        for item in items {
                            placeholders.push(binds.for_field(&filter.field, item)?);
                        }
                        format!("{expr} IN ({})", placeholders.join(", "))
                    }
                }
                (FilterOp::In, other) => {
                    return Err(format!("`in` takes a JSON array; got {other}"));
                }
                (op, value) => {
                    let symbol = match op {
                        FilterOp::Eq => "=",
                        FilterOp::Ne => "<>",
                        FilterOp::Lt => "<",
                        FilterOp::Le => "<=",
                        FilterOp::Gt => ">",
                        FilterOp::Ge => ">=",
                        FilterOp::In => unreachable!("handled above"),
                    };
                    let placeholder = binds.for_field(&filter.field, value)?;
                    format!("{expr} {symbol} {placeholder}")
                }
            };
            sql.push_str(" AND ");
            sql.push_str(&condition);
        }
        let expr = query.sort.sql(backend);
        if let Some(cursor) = &query.after {
            let id = binds.plain(Bound::Text(cursor.id.clone()));
            let condition = match (&cursor.value, query.descending) {
                (Value::Null, false) => format!("({expr} IS NOT NULL OR id > {id})"),
                (Value::Null, true) => format!("({expr} IS NULL AND id < {id})"),
                (value, descending) => {
                    let v = binds.for_field(&query.sort, value)?;
                    let v2 = binds.for_field(&query.sort, value)?;
                    let (cmp, id_cmp) = if descending { ("<", "<") } else { (">", ">") };
                    let nulls_after = if descending && query.sort.nullable() {
                        format!(" OR {expr} IS NULL")
                    } else {
                        String::new()
                    };
                    format!(
                        "({expr} {cmp} {v} OR ({expr} = {v2} AND id {id_cmp} {id}){nulls_after})"
                    )
                }
            };
            sql.push_str(" AND ");
            sql.push_str(&condition);
        }
        let direction = if query.descending { "DESC" } else { "ASC" };
        // SQLite already sorts NULLs first ascending and last descending; saying so
        // explicitly could keep its planner from using an index for the order.
        let nulls = match (backend, query.sort.nullable(), query.descending) {
            (Backend::Sqlite, _, _) | (_, false, _) => "",
            (_, true, false) => " NULLS FIRST",
            (_, true, true) => " NULLS LAST",
        };
        if query.sort == FieldPath::Id {
            sql.push_str(&format!(" ORDER BY id {direction}"));
        } else {
            sql.push_str(&format!(
                " ORDER BY {expr} {direction}{nulls}, id {direction}"
            ));
        }
        let limit = binds.plain(Bound::Int(i64::from(query.limit)));
        sql.push_str(&format!(" LIMIT {limit}"));
        Ok((sql, binds))
    }

    /// How many documents `collection` holds.
    pub async fn count_documents(&self, collection: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE collection = $1")
            .bind(collection)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
