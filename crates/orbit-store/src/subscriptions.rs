//! Subscriptions (SUBSCRIBE dialogs) kept across restarts. The call layer
//! saves one when it is made or refreshed and deletes it when it ends; on
//! start it reads back those not yet expired.

use sqlx::Row;

use crate::error::StoreError;
use crate::store::Store;

/// One subscription as stored; `dialog` is the call layer's encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub id: String,
    pub tenant_id: String,
    pub subscriber: String,
    pub contact: String,
    pub resource: String,
    pub dialog: String,
    pub next_version: u32,
    /// Unix ms.
    pub expires_at: i64,
}

/// A change to the stored subscriptions, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionOp {
    Save(StoredSubscription),
    Delete(String),
}

impl Store {
    /// Apply saves and deletes in order, in one transaction. Saving an id
    /// that exists replaces it, so a batch can be retried whole.
    pub async fn apply_subscription_ops(&self, ops: &[SubscriptionOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for op in ops {
            match op {
                SubscriptionOp::Save(s) => {
                    sqlx::query(
                        "INSERT INTO subscriptions (id, tenant_id, subscriber, contact, resource, dialog, next_version, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (id) DO UPDATE SET next_version = excluded.next_version, expires_at = excluded.expires_at, dialog = excluded.dialog",
                    )
                    .bind(&s.id)
                    .bind(&s.tenant_id)
                    .bind(&s.subscriber)
                    .bind(&s.contact)
                    .bind(&s.resource)
                    .bind(&s.dialog)
                    .bind(s.next_version as i64)
                    .bind(s.expires_at)
                    .execute(&mut *tx)
                    .await?;
                }
                SubscriptionOp::Delete(id) => {
                    sqlx::query("DELETE FROM subscriptions WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Subscriptions expiring after `now_ms`; older ones are deleted.
    pub async fn live_subscriptions(
        &self,
        now_ms: i64,
    ) -> Result<Vec<StoredSubscription>, StoreError> {
        sqlx::query("DELETE FROM subscriptions WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT id, tenant_id, subscriber, contact, resource, dialog, next_version, expires_at FROM subscriptions",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let tenant_id: String = r.try_get("tenant_id")?;
            if self.directory().tenant(&tenant_id).is_none() {
                continue;
            }
            out.push(StoredSubscription {
                id: r.try_get("id")?,
                tenant_id,
                subscriber: r.try_get("subscriber")?,
                contact: r.try_get("contact")?,
                resource: r.try_get("resource")?,
                dialog: r.try_get("dialog")?,
                next_version: r
                    .try_get::<i64, _>("next_version")?
                    .clamp(0, u32::MAX as i64) as u32,
                expires_at: r.try_get("expires_at")?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn saved_subscriptions_come_back_until_they_expire() {
        let dir =
            std::env::temp_dir().join(format!("orbit-subs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        let t = store.create_tenant("Acme", "acme.test").await.unwrap();
        let sub = |id: &str, expires_at| StoredSubscription {
            id: id.into(),
            tenant_id: t.id.clone(),
            subscriber: "103".into(),
            contact: "udp:127.0.0.1:5062".into(),
            resource: "park:103".into(),
            dialog: "d".into(),
            next_version: 3,
            expires_at,
        };
        store
            .apply_subscription_ops(&[
                SubscriptionOp::Save(sub("a", 2_000)),
                SubscriptionOp::Save(sub("b", 5_000)),
                SubscriptionOp::Save(StoredSubscription {
                    next_version: 9,
                    ..sub("b", 6_000)
                }),
                SubscriptionOp::Save(sub("c", 6_000)),
                SubscriptionOp::Delete("c".into()),
            ])
            .await
            .unwrap();
        let reopened = Store::open(&url).await.unwrap();
        let live = reopened.live_subscriptions(3_000).await.unwrap();
        assert_eq!(live.len(), 1, "{live:?}");
        assert_eq!(
            (
                live[0].id.as_str(),
                live[0].next_version,
                live[0].expires_at
            ),
            ("b", 9, 6_000)
        );
        reopened.delete_tenant(&t.id).await.unwrap();
        assert!(reopened.live_subscriptions(3_000).await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
