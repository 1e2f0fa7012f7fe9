//! Named leases with an expiry (the ACME renewal lock): one holder at a time across
//! nodes, until the lease expires. Taking one is a single `INSERT … ON CONFLICT DO UPDATE
//! … WHERE` (its holder extends it, anyone takes an expired one), so two nodes racing for
//! a free lease never both get it. The `leases` table came with migration 7.

use crate::{Store, StoreError};

impl Store {
    /// Takes (or extends) the lease `name` for `holder` until `until_ms`: `true` when
    /// `holder` now holds it, `false` while another holder's lease has not expired. One
    /// statement, so two nodes racing for a free lease never both get it.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             until_ms = excluded.until_ms \
             WHERE leases.holder = excluded.holder OR leases.until_ms < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until_ms)
        .bind(gureum_model::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives up `holder`'s lease `name` (nothing when someone else holds it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
