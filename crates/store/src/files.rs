//! Files attached to collections: a metadata row per file and its bytes stored once per
//! content (SHA-256) as chunks of up to [`BLOB_CHUNK`] bytes, so an upload is written and a
//! download read a chunk at a time on both backends. A blob goes when its last file does,
//! in the same transaction.

use sqlx::any::AnyRow;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::rows::column;
use crate::{Store, StoreError};

/// Bytes per stored chunk.
pub const BLOB_CHUNK: usize = 1024 * 1024;

const FILE_COLUMNS: &str = "id, name, content_type, size, sha256, owner, created_at_ms";

/// A file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Server-made id, unique in its collection.
    pub id: String,
    /// The name it was uploaded with.
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// Hex SHA-256 of the content (the blob's address).
    pub sha256: String,
    /// The uploader's uid (`fn:NAME` for a function, `None` for the admin).
    pub owner: Option<String>,
    /// Upload time, ms since the epoch.
    pub created_at_ms: i64,
}

/// One page of a file listing, newest first.
#[derive(Debug, Clone, Copy)]
pub struct FilePage<'a> {
    /// Only files of this owner.
    pub owner: Option<&'a str>,
    /// Start after the file with this (upload time, id).
    pub after: Option<(i64, &'a str)>,
    /// Rows to return.
    pub limit: u32,
}

fn file_from_row(row: &AnyRow) -> Result<FileRow, StoreError> {
    Ok(FileRow {
        id: column(row, 0)?,
        name: column(row, 1)?,
        content_type: column(row, 2)?,
        size: column(row, 3)?,
        sha256: column(row, 4)?,
        owner: column(row, 5)?,
        created_at_ms: column(row, 6)?,
    })
}

impl Store {
    /// Stores a file whose content (`file.size` bytes hashing to `file.sha256`, checked by
    /// the caller) is read from `content`; content already stored is not written again.
    pub async fn put_file<R: AsyncRead + Unpin>(
        &self,
        collection: &str,
        file: &FileRow,
        content: &mut R,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let stored: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM blob_chunks WHERE sha256 = $1 AND seq = 0")
                .bind(&file.sha256)
                .fetch_one(&mut *transaction)
                .await?;
        if stored == 0 {
            let mut seq = 0_i64;
            loop {
                let mut chunk = Vec::with_capacity(BLOB_CHUNK);
                let read = (&mut *content)
                    .take(BLOB_CHUNK as u64)
                    .read_to_end(&mut chunk)
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("reading the upload: {e}")))?;
                if read == 0 && seq > 0 {
                    break;
                }
                sqlx::query("INSERT INTO blob_chunks (sha256, seq, data) VALUES ($1, $2, $3)")
                    .bind(&file.sha256)
                    .bind(seq)
                    .bind(chunk)
                    .execute(&mut *transaction)
                    .await?;
                seq += 1;
                if read < BLOB_CHUNK {
                    break;
                }
            }
        }
        sqlx::query(&format!(
            "INSERT INTO files (collection, {FILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(collection)
        .bind(&file.id)
        .bind(&file.name)
        .bind(&file.content_type)
        .bind(file.size)
        .bind(&file.sha256)
        .bind(file.owner.as_deref())
        .bind(file.created_at_ms)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// A file's metadata.
    pub async fn get_file(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<Option<FileRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE collection = $1 AND id = $2"
        ))
        .bind(collection)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(file_from_row).transpose()
    }

    /// One page of a collection's files, newest first (keyset-paged on upload time and id).
    pub async fn list_files(
        &self,
        collection: &str,
        page: &FilePage<'_>,
    ) -> Result<Vec<FileRow>, StoreError> {
        // Optional conditions as `$n IS NULL OR …`, so one statement serves every page.
        let rows = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE collection = $1 \
             AND ($2 IS NULL OR owner = $2) \
             AND ($3 IS NULL OR created_at_ms < $3 OR (created_at_ms = $3 AND id < $4)) \
             ORDER BY created_at_ms DESC, id DESC LIMIT $5"
        ))
        .bind(collection)
        .bind(page.owner)
        .bind(page.after.map(|(created, _)| created))
        .bind(page.after.map(|(_, id)| id))
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// Chunk `seq` of the blob `sha256`.
    pub async fn blob_chunk(&self, sha256: &str, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT data FROM blob_chunks WHERE sha256 = $1 AND seq = $2")
                .bind(sha256)
                .bind(seq)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Deletes a file (and its blob when no other file has the same content).
    pub async fn delete_file(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<Option<FileRow>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "DELETE FROM files WHERE collection = $1 AND id = $2 RETURNING {FILE_COLUMNS}"
        ))
        .bind(collection)
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let file = file_from_row(&row)?;
        sqlx::query(
            "DELETE FROM blob_chunks WHERE sha256 = $1 \
             AND NOT EXISTS (SELECT 1 FROM files WHERE sha256 = $1)",
        )
        .bind(&file.sha256)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Some(file))
    }

    /// How many chunk rows are stored (tests of deduplication and cleanup).
    pub async fn blob_chunk_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blob_chunks")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
