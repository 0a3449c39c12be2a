//! Registrations are written through from the registrar's memory: the
//! registrar sends [`BindingOp`]s and this applies a batch in one transaction.

use std::collections::HashMap;

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
    /// Make the stored set exactly this (after writes were lost).
    ReplaceAll(Vec<Binding>),
}

/// Rows per INSERT statement (11 parameters each). sqlx resolves `$n`
/// parameter names one by one against SQLite's list, which costs more than
/// the insert itself for very long statements (seen in a profile); 32 rows
/// keep that small while still cutting statements per batch 32-fold.
const ROWS_PER_STATEMENT: usize = 32;

async fn upsert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[&Binding],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = format!("INSERT INTO registrations ({COLUMNS}) VALUES ");
        for i in 0..chunk.len() {
            let p = i * 11;
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            sql.push_str(
                &(1..=11)
                    .map(|k| format!("${}", p + k))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            sql.push(')');
        }
        sql.push_str(
            " ON CONFLICT (tenant_id, extension, contact) DO UPDATE SET contact_params = excluded.contact_params, \
             expires_at = excluded.expires_at, call_id = excluded.call_id, cseq = excluded.cseq, source = excluded.source, \
             transport = excluded.transport, user_agent = excluded.user_agent, registered_at = excluded.registered_at",
        );
        let mut q = sqlx::query(&sql);
        for b in chunk {
            q = q
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
                .bind(b.registered_at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

const COLUMNS: &str = "tenant_id, extension, contact, contact_params, expires_at, call_id, cseq, source, transport, user_agent, registered_at";

impl Store {
    /// Apply a batch in one transaction. Consecutive upserts are merged
    /// (the last one per binding wins) and written as multi-row
    /// `INSERT ... ON CONFLICT DO UPDATE`, which SQLite and PostgreSQL
    /// both accept; each statement is a round trip to the database
    /// worker, so fewer statements is what makes write-through cheap.
    pub async fn apply_bindings(&self, ops: &[BindingOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let mut pending: Vec<&Binding> = Vec::new();
        let mut index: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for op in ops {
            match op {
                BindingOp::Upsert(b) => {
                    let key = (
                        b.tenant_id.as_str(),
                        b.extension.as_str(),
                        b.contact.as_str(),
                    );
                    match index.get(&key) {
                        Some(&i) => pending[i] = b,
                        None => {
                            index.insert(key, pending.len());
                            pending.push(b);
                        }
                    }
                }
                BindingOp::Remove {
                    tenant_id,
                    extension,
                    contact,
                } => {
                    upsert_rows(&mut tx, &pending).await?;
                    pending.clear();
                    index.clear();
                    sqlx::query("DELETE FROM registrations WHERE tenant_id = $1 AND extension = $2 AND contact = $3")
                        .bind(tenant_id)
                        .bind(extension)
                        .bind(contact)
                        .execute(&mut *tx)
                        .await?;
                }
                BindingOp::ReplaceAll(all) => {
                    pending.clear();
                    index.clear();
                    sqlx::query("DELETE FROM registrations")
                        .execute(&mut *tx)
                        .await?;
                    let rows: Vec<&Binding> = all.iter().collect();
                    upsert_rows(&mut tx, &rows).await?;
                }
                BindingOp::Expire { now_ms } => {
                    upsert_rows(&mut tx, &pending).await?;
                    pending.clear();
                    index.clear();
                    sqlx::query("DELETE FROM registrations WHERE expires_at <= $1")
                        .bind(*now_ms)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        upsert_rows(&mut tx, &pending).await?;
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
