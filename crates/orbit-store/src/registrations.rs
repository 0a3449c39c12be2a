//! Registrations are written through from the registrar's memory: the
//! registrar sends [`BindingOp`]s and this applies a batch in one transaction.

use sqlx::Row;

use crate::error::StoreError;
use crate::model::Binding;
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingOp {
    Upsert(Binding),
    Remove {
        tenant_id: String,
        extension: String,
        contact: String,
    },
    /// Drop everything expired at this instant (ms).
    Expire {
        now_ms: i64,
    },
}

const COLUMNS: &str = "tenant_id, extension, contact, contact_params, expires_at, call_id, cseq, source, transport, user_agent, registered_at";

impl Store {
    pub async fn apply_bindings(&self, ops: &[BindingOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for op in ops {
            match op {
                BindingOp::Upsert(b) => {
                    // Delete + insert is portable where UPSERT syntax differs.
                    sqlx::query("DELETE FROM registrations WHERE tenant_id = $1 AND extension = $2 AND contact = $3")
                        .bind(&b.tenant_id)
                        .bind(&b.extension)
                        .bind(&b.contact)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(&format!(
                        "INSERT INTO registrations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                    ))
                    .bind(&b.tenant_id)
                    .bind(&b.extension)
                    .bind(&b.contact)
                    .bind(&b.contact_params)
                    .bind(b.expires_at)
                    .bind(&b.call_id)
                    .bind(b.cseq)
                    .bind(&b.source)
                    .bind(&b.transport)
                    .bind(&b.user_agent)
                    .bind(b.registered_at)
                    .execute(&mut *tx)
                    .await?;
                }
                BindingOp::Remove {
                    tenant_id,
                    extension,
                    contact,
                } => {
                    sqlx::query("DELETE FROM registrations WHERE tenant_id = $1 AND extension = $2 AND contact = $3")
                        .bind(tenant_id)
                        .bind(extension)
                        .bind(contact)
                        .execute(&mut *tx)
                        .await?;
                }
                BindingOp::Expire { now_ms } => {
                    sqlx::query("DELETE FROM registrations WHERE expires_at <= $1")
                        .bind(*now_ms)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Bindings still valid at `now_ms`, for one tenant or all.
    pub async fn bindings(
        &self,
        tenant_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<Binding>, StoreError> {
        let rows = match tenant_id {
            Some(t) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM registrations WHERE tenant_id = $1 AND expires_at > $2 ORDER BY extension, contact"
                ))
                .bind(t)
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM registrations WHERE expires_at > $1 ORDER BY tenant_id, extension, contact"
                ))
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(Binding {
                    tenant_id: r.try_get(0)?,
                    extension: r.try_get(1)?,
                    contact: r.try_get(2)?,
                    contact_params: r.try_get(3)?,
                    expires_at: r.try_get(4)?,
                    call_id: r.try_get(5)?,
                    cseq: r.try_get(6)?,
                    source: r.try_get(7)?,
                    transport: r.try_get(8)?,
                    user_agent: r.try_get(9)?,
                    registered_at: r.try_get(10)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
