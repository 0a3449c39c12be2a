//! The park event log: the park engine appends events in batches, the API
//! reads them back newest first. Same rules as call records: idempotent by
//! id, all or nothing per batch, events of a tenant that is gone dropped.

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::StoreError;
use crate::model::{ParkEventQuery, ParkEventRecord};
use crate::store::Store;

/// The kinds of park events.
pub const PARK_EVENT_KINDS: &[&str] = &[
    "parked",
    "park_failed",
    "retrieved",
    "retrieve_failed",
    "recall_started",
    "recall_answered",
    "abandoned",
    "ended",
];

/// [`Store::park_events`] returns at most this many events.
pub const MAX_PARK_EVENTS: u32 = 1000;

/// How many events [`Store::park_events`] returns for `limit: 0`.
pub const DEFAULT_PARK_EVENTS: u32 = 100;

/// Rows per INSERT statement (11 parameters each); see registrations.rs.
const ROWS_PER_STATEMENT: usize = 32;

const COLUMNS: &str = "id, tenant_id, at_ms, kind, park_id, extension, call_id, parker, parked_number, parked_name, detail";

impl Store {
    /// Store park events in one transaction (all or nothing), as multi-row
    /// `INSERT ... ON CONFLICT (id) DO NOTHING`: an id stored already is
    /// left as it is, so a failed batch can be retried whole; within
    /// `events` the first of an id wins. Events of a tenant that does not
    /// exist (any more) are dropped.
    pub async fn append_park_events(&self, events: &[ParkEventRecord]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // Held across the check and the insert, as delete_tenant holds it.
        let _w = self.writes.lock().await;
        let rows: Vec<&ParkEventRecord> = {
            let dir = self.directory();
            let mut seen = HashSet::new();
            events
                .iter()
                .filter(|e| dir.tenant(&e.tenant_id).is_some() && seen.insert(e.id.as_str()))
                .collect()
        };
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let values = (0..chunk.len())
                .map(|i| {
                    let p = (1..=11)
                        .map(|k| format!("${}", i * 11 + k))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!("({p})")
                })
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                "INSERT INTO park_events ({COLUMNS}) VALUES {values} ON CONFLICT (id) DO NOTHING"
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(&e.id)
                    .bind(&e.tenant_id)
                    .bind(e.at_ms)
                    .bind(&e.kind)
                    .bind(e.park_id.as_deref())
                    .bind(&e.extension)
                    .bind(&e.call_id)
                    .bind(&e.parker)
                    .bind(&e.parked_number)
                    .bind(&e.parked_name)
                    .bind(&e.detail);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A tenant's park events, newest first (by `at_ms`, then id).
    /// `extension` matches the extension parked on or the parker;
    /// `since_ms <= at_ms < until_ms`; `kinds` (any of them, empty = all);
    /// at most `limit` (0 = 100, capped to 1000).
    pub async fn park_events(
        &self,
        tenant_id: &str,
        q: &ParkEventQuery,
    ) -> Result<Vec<ParkEventRecord>, StoreError> {
        if self.directory().tenant(tenant_id).is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM park_events WHERE tenant_id = $1");
        let mut n = 1;
        let mut param = || {
            n += 1;
            format!("${n}")
        };
        if q.extension.is_some() {
            let (a, b) = (param(), param());
            sql.push_str(&format!(" AND (extension = {a} OR parker = {b})"));
        }
        if q.since_ms.is_some() {
            sql.push_str(&format!(" AND at_ms >= {}", param()));
        }
        if q.until_ms.is_some() {
            sql.push_str(&format!(" AND at_ms < {}", param()));
        }
        if !q.kinds.is_empty() {
            let list = q.kinds.iter().map(|_| param()).collect::<Vec<_>>();
            sql.push_str(&format!(" AND kind IN ({})", list.join(", ")));
        }
        sql.push_str(&format!(" ORDER BY at_ms DESC, id DESC LIMIT {}", param()));
        let mut query = sqlx::query(&sql).bind(tenant_id);
        if let Some(e) = &q.extension {
            query = query.bind(e).bind(e);
        }
        if let Some(t) = q.since_ms {
            query = query.bind(t);
        }
        if let Some(t) = q.until_ms {
            query = query.bind(t);
        }
        for k in &q.kinds {
            query = query.bind(k);
        }
        let limit = match q.limit {
            0 => DEFAULT_PARK_EVENTS,
            l => l.min(MAX_PARK_EVENTS),
        };
        query = query.bind(i64::from(limit));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(park_event_of)
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

fn park_event_of(row: &AnyRow) -> Result<ParkEventRecord, sqlx::Error> {
    Ok(ParkEventRecord {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        at_ms: row.try_get(2)?,
        kind: row.try_get(3)?,
        park_id: row.try_get(4)?,
        extension: row.try_get(5)?,
        call_id: row.try_get(6)?,
        parker: row.try_get(7)?,
        parked_number: row.try_get(8)?,
        parked_name: row.try_get(9)?,
        detail: row.try_get(10)?,
    })
}
