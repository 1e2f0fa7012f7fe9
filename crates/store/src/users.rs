//! Users of the backend services and their refresh tokens. Passwords arrive here already
//! hashed (argon2id PHC strings) and refresh tokens as their SHA-256: the store never
//! sees a secret in clear. Rotation is one transaction, and a refresh token presented
//! again after it was rotated away revokes every session of its user (reuse detection: a
//! stolen token and its rightful holder cannot both keep a session).
//!
//! Every revocation of all of a user's sessions also sets `users.revoked_before_ms`,
//! which every node polls ([`Store::users_revoked_since`]) to end that user's realtime
//! streams.

use sqlx::any::AnyRow;

use crate::rows::column;
use crate::{Store, StoreError};

const USER_COLUMNS: &str = "id, email, password_hash, created_at_ms, disabled, last_sign_in_ms";

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Server-made id (the JWT's `sub`).
    pub id: String,
    /// Normalised (trimmed, lowercase) email; unique.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// When the user signed up (ms since the epoch).
    pub created_at_ms: i64,
    /// A disabled user cannot sign in or refresh.
    pub disabled: bool,
    /// The last successful password sign-in.
    pub last_sign_in_ms: Option<i64>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid: it is revoked and the new one stored; this is its user.
    Rotated(String),
    /// Unknown or expired token: nothing changed.
    Invalid,
    /// The token had already been rotated or revoked: every refresh token of this user is
    /// now revoked.
    Reused(String),
}

fn user_from_row(row: &AnyRow) -> Result<UserRow, StoreError> {
    let disabled: i64 = column(row, 4)?;
    Ok(UserRow {
        id: column(row, 0)?,
        email: column(row, 1)?,
        password_hash: column(row, 2)?,
        created_at_ms: column(row, 3)?,
        disabled: disabled != 0,
        last_sign_in_ms: column(row, 5)?,
    })
}

impl Store {
    /// Stores a new user; `false` when the email is taken (nothing stored).
    pub async fn create_user(&self, user: &UserRow) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (email) DO NOTHING"
        ))
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.created_at_ms)
        .bind(i64::from(user.disabled))
        .bind(user.last_sign_in_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The user with this (normalised) email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Users ordered by email, after `after_email` (for paging), at most `limit`.
    pub async fn list_users(
        &self,
        after_email: Option<&str>,
        email_prefix: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRow>, StoreError> {
        // substr, not LIKE (no escaping of % and _) nor a range (collations differ).
        let prefix = email_prefix.unwrap_or("");
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email > $1 \
             AND substr(email, 1, CAST($3 AS INTEGER)) = $4 ORDER BY email LIMIT $2"
        ))
        .bind(after_email.unwrap_or(""))
        .bind(i64::from(limit))
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Disables or enables a user; disabling also revokes every refresh token of theirs.
    /// `false` when there is no such user.
    pub async fn set_user_disabled(
        &self,
        id: &str,
        disabled: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        if disabled {
            revoke_all(&mut transaction, id, now_ms).await?;
        }
        transaction.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes a successful sign-in.
    pub async fn record_sign_in(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET last_sign_in_ms = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a refresh token's hash for `user_id`.
    pub async fn insert_refresh_token(
        &self,
        token_hash: &str,
        user_id: &str,
        created_at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(created_at_ms)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Exchanges the refresh token hashed `old_hash` for `new_hash` (valid until
    /// `expires_at_ms`) in one transaction; see [`Rotation`]. A disabled user's token is
    /// [`Rotation::Invalid`].
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        now_ms: i64,
        expires_at_ms: i64,
        reuse_window_ms: i64,
    ) -> Result<Rotation, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT t.user_id, t.expires_at_ms, t.revoked_at_ms, u.disabled \
             FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
        )
        .bind(old_hash)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        let user_id: String = column(&row, 0)?;
        let expires: i64 = column(&row, 1)?;
        let revoked: Option<i64> = column(&row, 2)?;
        let disabled: i64 = column(&row, 3)?;
        if let Some(revoked_at) = revoked {
            return self
                .presented_again(
                    transaction,
                    &user_id,
                    new_hash,
                    revoked_at,
                    now_ms,
                    reuse_window_ms,
                )
                .await;
        }
        if expires <= now_ms || disabled != 0 {
            return Ok(Rotation::Invalid);
        }
        // Conditional on still being live: two requests racing with one token (on
        // PostgreSQL both may have read it live) cannot both rotate it; the loser sees
        // the winner's rotation.
        let revoked = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at_ms = $1 \
             WHERE token_hash = $2 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(old_hash)
        .execute(&mut *transaction)
        .await?;
        if revoked.rows_affected() != 1 {
            return self
                .presented_again(
                    transaction,
                    &user_id,
                    new_hash,
                    now_ms,
                    now_ms,
                    reuse_window_ms,
                )
                .await;
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(new_hash)
        .bind(&user_id)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Rotation::Rotated(user_id))
    }

    /// A revoked token presented again. Within `reuse_window_ms` of its rotation, when
    /// its successor (`new_hash`: successors are derived from their parent, so every
    /// presentation names the same one) is a token of the same user that is still live
    /// or itself rotated within the window, it is a second tab refreshing at once:
    /// `Rotated`, nothing changed. Otherwise (a logout revoked it, or too late) it is
    /// reuse: every token of the user is revoked.
    async fn presented_again(
        &self,
        mut transaction: sqlx::Transaction<'static, sqlx::Any>,
        user_id: &str,
        new_hash: &str,
        revoked_at: i64,
        now_ms: i64,
        reuse_window_ms: i64,
    ) -> Result<Rotation, StoreError> {
        // A window of 0 turns the grace off.
        if reuse_window_ms > 0 && now_ms - revoked_at <= reuse_window_ms {
            let successor = sqlx::query(
                "SELECT revoked_at_ms FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2",
            )
            .bind(new_hash)
            .bind(user_id)
            .fetch_optional(&mut *transaction)
            .await?;
            if let Some(successor) = successor {
                let successor_revoked: Option<i64> = column(&successor, 0)?;
                if successor_revoked.is_none_or(|at| now_ms - at <= reuse_window_ms) {
                    return Ok(Rotation::Rotated(user_id.to_string()));
                }
            }
        }
        revoke_all(&mut transaction, user_id, now_ms).await?;
        transaction.commit().await?;
        Ok(Rotation::Reused(user_id.to_string()))
    }

    /// Revokes one refresh token of `user_id`; `false` when it was not a live token of
    /// that user.
    pub async fn revoke_refresh_token(
        &self,
        token_hash: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at_ms = $1 \
             WHERE token_hash = $2 AND user_id = $3 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(token_hash)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Users whose sessions were all revoked after `since_ms`, with that time (see
    /// `revoked_before_ms`: set with every revocation of all of a user's sessions).
    pub async fn users_revoked_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, revoked_before_ms FROM users WHERE revoked_before_ms > $1 \
             ORDER BY revoked_before_ms LIMIT 10000",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((column(row, 0)?, column(row, 1)?)))
            .collect()
    }

    /// Whether `id` is disabled and when all its sessions were last revoked; `None` when
    /// there is no such user.
    pub async fn session_state(&self, id: &str) -> Result<Option<(bool, Option<i64>)>, StoreError> {
        let row = sqlx::query("SELECT disabled, revoked_before_ms FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((column::<i64>(&row, 0)? != 0, column(&row, 1)?)))
            .transpose()
    }

    /// Revokes every live refresh token of `user_id`; how many were live.
    pub async fn revoke_user_refresh_tokens(
        &self,
        user_id: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let revoked = revoke_all(&mut transaction, user_id, now_ms).await?;
        transaction.commit().await?;
        Ok(revoked)
    }

    /// The stored password hashes and token hashes, for tests that assert no secret is
    /// stored in clear.
    pub async fn auth_secrets_for_tests(&self) -> Result<Vec<String>, StoreError> {
        let mut all: Vec<String> = sqlx::query_scalar("SELECT password_hash FROM users")
            .fetch_all(&self.pool)
            .await?;
        let tokens: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
            .fetch_all(&self.pool)
            .await?;
        all.extend(tokens);
        Ok(all)
    }
}

async fn revoke_all(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at_ms = $1 WHERE user_id = $2 AND revoked_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(user_id)
    .execute(&mut **transaction)
    .await?;
    sqlx::query("UPDATE users SET revoked_before_ms = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(user_id)
        .execute(&mut **transaction)
        .await?;
    Ok(done.rows_affected())
}
