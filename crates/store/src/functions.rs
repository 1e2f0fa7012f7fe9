//! Functions, their immutable versions and artifacts, the aliases (`live`) that point
//! at a version, and the registry generation every node polls to notice a change.

use std::collections::HashMap;

use gureum_model::{FunctionName, FunctionSummary, FunctionVersion, LIVE_ALIAS, VersionNumber};
use sqlx::{Any, Transaction};

use crate::rows::{self, column, function_name, u32_column, version_from_row};
use crate::{Store, StoreError};

pub(crate) const VERSION_COLUMNS: &str =
    "function, version, artifact_hash, manifest, created_at_ms, static_hash";

/// Points `alias` at `version` inside a transaction that already checked the version.
pub(crate) async fn upsert_alias(
    transaction: &mut Transaction<'static, Any>,
    function: &FunctionName,
    alias: &str,
    version: VersionNumber,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO aliases (function, alias, version) VALUES ($1, $2, $3) \
         ON CONFLICT (function, alias) DO UPDATE SET version = excluded.version",
    )
    .bind(function.as_str())
    .bind(alias)
    .bind(i64::from(version))
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Marks a change of what is live, inside the caller's transaction.
pub(crate) async fn bump_generation(
    transaction: &mut Transaction<'static, Any>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE registry_generation SET generation = generation + 1 WHERE id = 1")
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

impl Store {
    /// Stores an artifact under its content hash (hex SHA-256, computed by the caller);
    /// storing the same hash again is a no-op.
    pub async fn put_artifact(&self, hash: &str, bytes: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO artifacts (hash, bytes, size, created_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash)
        .bind(bytes)
        .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
        .bind(gureum_model::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The artifact stored under `hash`.
    pub async fn get_artifact(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT bytes FROM artifacts WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| rows::column(&row, 0)).transpose()
    }

    /// Creates the next version of `function` (creating the function if new) and points
    /// `live` at it, in one transaction. The number is the previous highest plus one and
    /// is never reused, even after a rollback; concurrent deploys, also from other nodes,
    /// each get their own number.
    pub async fn create_version(
        &self,
        function: &FunctionName,
        artifact_hash: &str,
        manifest: &str,
        now_ms: i64,
    ) -> Result<FunctionVersion, StoreError> {
        self.create_version_with_static(function, artifact_hash, None, manifest, now_ms)
            .await
    }

    /// [`Store::create_version`] for a version with a static site, whose bundle is stored
    /// as the artifact `static_hash`.
    pub async fn create_version_with_static(
        &self,
        function: &FunctionName,
        artifact_hash: &str,
        static_hash: Option<&str>,
        manifest: &str,
        now_ms: i64,
    ) -> Result<FunctionVersion, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO functions (name, created_at_ms, latest_version) VALUES ($1, $2, 0) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(function.as_str())
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?;
        // The UPDATE holds the function row's write lock until commit, so concurrent
        // deploys are serialized and each reads the counter its predecessor committed.
        let row = sqlx::query(
            "UPDATE functions SET latest_version = latest_version + 1 WHERE name = $1 \
             RETURNING latest_version",
        )
        .bind(function.as_str())
        .fetch_one(&mut *transaction)
        .await?;
        let version = u32_column(&row, 0, "functions.latest_version")?;
        sqlx::query(&format!(
            "INSERT INTO versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(function.as_str())
        .bind(i64::from(version))
        .bind(artifact_hash)
        .bind(manifest)
        .bind(now_ms)
        .bind(static_hash)
        .execute(&mut *transaction)
        .await?;
        upsert_alias(&mut transaction, function, LIVE_ALIAS, version).await?;
        bump_generation(&mut transaction).await?;
        transaction.commit().await?;
        Ok(FunctionVersion {
            function: function.clone(),
            version,
            artifact_hash: artifact_hash.to_string(),
            manifest: manifest.to_string(),
            created_at_ms: now_ms,
            static_hash: static_hash.map(str::to_string),
        })
    }

    /// One version of a function.
    pub async fn get_version(
        &self,
        function: &FunctionName,
        version: VersionNumber,
    ) -> Result<Option<FunctionVersion>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE function = $1 AND version = $2"
        ))
        .bind(function.as_str())
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Artifact size in bytes of each of a function's versions that has a stored
    /// artifact, by version number.
    pub async fn version_sizes(
        &self,
        function: &FunctionName,
    ) -> Result<HashMap<VersionNumber, u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT v.version, a.size FROM versions v \
             JOIN artifacts a ON a.hash = v.artifact_hash WHERE v.function = $1",
        )
        .bind(function.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let size: i64 = column(row, 1)?;
                Ok((
                    u32_column(row, 0, "versions.version")?,
                    u64::try_from(size).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Every version of a function, oldest first (empty for an unknown function).
    pub async fn list_versions(
        &self,
        function: &FunctionName,
    ) -> Result<Vec<FunctionVersion>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE function = $1 ORDER BY version"
        ))
        .bind(function.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Every function with its live and latest version, ordered by name.
    pub async fn list_functions(&self) -> Result<Vec<FunctionSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.name, a.version, f.latest_version, f.created_at_ms FROM functions f \
             JOIN aliases a ON a.function = f.name AND a.alias = $1 ORDER BY f.name",
        )
        .bind(LIVE_ALIAS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FunctionSummary {
                    name: function_name(rows::column(row, 0)?)?,
                    live_version: u32_column(row, 1, "aliases.version")?,
                    latest_version: u32_column(row, 2, "functions.latest_version")?,
                    created_at_ms: rows::column(row, 3)?,
                })
            })
            .collect()
    }

    /// The version `alias` of `function` points at.
    pub async fn get_alias(
        &self,
        function: &FunctionName,
        alias: &str,
    ) -> Result<Option<VersionNumber>, StoreError> {
        let row = sqlx::query("SELECT version FROM aliases WHERE function = $1 AND alias = $2")
            .bind(function.as_str())
            .bind(alias)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| u32_column(&row, 0, "aliases.version"))
            .transpose()
    }

    /// Points `alias` (e.g. `live`, for a rollback) at an existing version; a missing
    /// function or version is [`StoreError::NotFound`].
    pub async fn set_alias(
        &self,
        function: &FunctionName,
        alias: &str,
        version: VersionNumber,
    ) -> Result<(), StoreError> {
        // One statement that only writes when the version exists: no read-then-write
        // window for a concurrent delete, and no lock upgrade for SQLite to refuse.
        let mut transaction = self.begin_write().await?;
        let written = sqlx::query(
            "INSERT INTO aliases (function, alias, version) \
             SELECT function, $2, version FROM versions WHERE function = $1 AND version = $3 \
             ON CONFLICT (function, alias) DO UPDATE SET version = excluded.version",
        )
        .bind(function.as_str())
        .bind(alias)
        .bind(i64::from(version))
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if written == 0 {
            return Err(StoreError::NotFound(format!(
                "function {:?} has no version {version}",
                function.as_str()
            )));
        }
        bump_generation(&mut transaction).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Deletes a function with its versions, aliases, invocations and logs; `false` if it
    /// did not exist. Artifacts stay: they are content-addressed and may be shared. A
    /// function created again later starts over at version 1.
    pub async fn delete_function(&self, function: &FunctionName) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        for statement in [
            "DELETE FROM logs WHERE function = $1",
            "DELETE FROM invocations WHERE function = $1",
            "DELETE FROM aliases WHERE function = $1",
            "DELETE FROM versions WHERE function = $1",
        ] {
            sqlx::query(statement)
                .bind(function.as_str())
                .execute(&mut *transaction)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM functions WHERE name = $1")
            .bind(function.as_str())
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if deleted > 0 {
            bump_generation(&mut transaction).await?;
        }
        transaction.commit().await?;
        Ok(deleted > 0)
    }

    /// A number that changes whenever what is live changes (deploy, rollback, removal)
    /// on any node sharing this store.
    pub async fn registry_generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT generation FROM registry_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        rows::column(&row, 0)
    }

    /// Every function's live version record, ordered by name, for loading the routing
    /// table at start.
    pub async fn live_versions(&self) -> Result<Vec<FunctionVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT v.function, v.version, v.artifact_hash, v.manifest, v.created_at_ms, \
             v.static_hash FROM versions v JOIN aliases a ON a.function = v.function AND a.version = v.version \
             WHERE a.alias = $1 ORDER BY v.function",
        )
        .bind(LIVE_ALIAS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }
}
