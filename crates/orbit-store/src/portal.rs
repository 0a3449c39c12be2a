//! Web portal accounts and sessions. Password hashes are made and checked
//! by the portal (argon2); this module only stores them. Session cookies
//! are stored as their SHA-256, like API tokens.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::StoreError;
use crate::now_ms;
use crate::store::{conflict, Store};
use crate::tokens::token_hash;

/// A portal account: a system admin (`tenant_id` `None`) or the admin of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalUser {
    pub id: String,
    pub username: String,
    /// argon2 PHC string.
    pub password_hash: String,
    pub tenant_id: Option<String>,
    /// Failed sign-ins in a row.
    pub failed_logins: i64,
    /// Unix ms until which sign-in is refused (0: not locked).
    pub locked_until: i64,
    pub created_at: i64,
}

/// A signed-in session, found by its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub user: PortalUser,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    pub expires_at: i64,
}

const USER_COLUMNS: &str =
    "id, username, password_hash, tenant_id, failed_logins, locked_until, created_at";

fn user_of(row: &AnyRow) -> Result<PortalUser, sqlx::Error> {
    Ok(PortalUser {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        tenant_id: row.try_get(3)?,
        failed_logins: row.try_get(4)?,
        locked_until: row.try_get(5)?,
        created_at: row.try_get(6)?,
    })
}

impl Store {
    /// How many portal accounts exist (first start creates one when none).
    pub async fn portal_user_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM portal_users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Create an account; a taken username is a conflict on `username`.
    pub async fn create_portal_user(
        &self,
        username: &str,
        password_hash: &str,
        tenant_id: Option<&str>,
    ) -> Result<PortalUser, StoreError> {
        if let Some(t) = tenant_id {
            if self.directory().tenant(t).is_none() {
                return Err(StoreError::NotFound("tenant"));
            }
        }
        let u = PortalUser {
            id: uuid::Uuid::new_v4().simple().to_string(),
            username: username.to_string(),
            password_hash: password_hash.to_string(),
            tenant_id: tenant_id.map(str::to_string),
            failed_logins: 0,
            locked_until: 0,
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO portal_users (id, username, password_hash, tenant_id, failed_logins, locked_until, created_at) VALUES ($1, $2, $3, $4, 0, 0, $5)")
            .bind(&u.id)
            .bind(&u.username)
            .bind(&u.password_hash)
            .bind(u.tenant_id.clone())
            .bind(u.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict(e, "username"))?;
        Ok(u)
    }

    pub async fn portal_user_by_name(
        &self,
        username: &str,
    ) -> Result<Option<PortalUser>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM portal_users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_of).transpose()?)
    }

    /// The admins of one tenant, or with `None` the system admins; by username.
    pub async fn portal_users(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<PortalUser>, StoreError> {
        let rows = match tenant_id {
            Some(t) => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM portal_users WHERE tenant_id = $1 ORDER BY username"
                ))
                .bind(t)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                "SELECT {USER_COLUMNS} FROM portal_users WHERE tenant_id IS NULL ORDER BY username"
            ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.iter().map(user_of).collect::<Result<_, _>>()?)
    }

    pub async fn delete_portal_user(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM portal_sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM portal_users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        tx.commit().await?;
        Ok(())
    }

    /// A failed sign-in: counts it, and locks the account until
    /// `lock_until` (Unix ms) when given (the count starts again then).
    pub async fn portal_login_failed(
        &self,
        id: &str,
        lock_until: Option<i64>,
    ) -> Result<(), StoreError> {
        match lock_until {
            Some(until) => {
                sqlx::query(
                    "UPDATE portal_users SET failed_logins = 0, locked_until = $1 WHERE id = $2",
                )
                .bind(until)
                .bind(id)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "UPDATE portal_users SET failed_logins = failed_logins + 1 WHERE id = $1",
                )
                .bind(id)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(())
    }

    /// A successful sign-in: starts a session (the cookie value is
    /// `token`) and clears the failure count.
    pub async fn create_portal_session(
        &self,
        user_id: &str,
        token: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE portal_users SET failed_logins = 0, locked_until = 0 WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM portal_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO portal_sessions (token_hash, user_id, csrf, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash(token))
            .bind(user_id)
            .bind(csrf)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The unexpired session whose cookie is `token`, with its user.
    pub async fn portal_session(&self, token: &str) -> Result<Option<PortalSession>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.password_hash, u.tenant_id, u.failed_logins, u.locked_until, u.created_at, s.csrf, s.expires_at \
             FROM portal_sessions s JOIN portal_users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash(token))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(PortalSession {
            user: user_of(&row)?,
            csrf: row.try_get(7)?,
            expires_at: row.try_get(8)?,
        }))
    }

    /// Sign out: the session's cookie stops working.
    pub async fn delete_portal_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A new password hash; every other session of the user ends (the one
    /// whose cookie is `keep_token` goes on).
    pub async fn set_portal_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep_token: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE portal_users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM portal_sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(user_id)
            .bind(token_hash(keep_token))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
