//! Ring groups: a tenant's number that rings a list of its extensions.
//! Their numbers share the tenant's number space with extensions; members
//! and the no-answer destination must exist in the same tenant. Every write
//! is one transaction, then the directory.

use std::collections::HashSet;
use std::ops::RangeInclusive;

use sqlx::AnyConnection;

use crate::error::StoreError;
use crate::model::{RingGroup, RingGroupPatch, RingGroupSpec};
use crate::now_ms;
use crate::park::write_park_changes;
use crate::store::{conflict, Store};

/// At most this many members per ring group.
pub const MAX_RING_GROUP_MEMBERS: usize = 50;

/// Allowed `ring_time_s` (seconds).
pub const RING_TIME_S: RangeInclusive<u32> = 5..=300;

fn invalid(field: &'static str, message: String) -> StoreError {
    StoreError::Invalid { field, message }
}

impl Store {
    pub async fn create_ring_group(
        &self,
        tenant_id: &str,
        spec: RingGroupSpec,
    ) -> Result<RingGroup, StoreError> {
        let _w = self.writes.lock().await;
        if self.directory().tenant(tenant_id).is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        if self.directory().number_in_use(tenant_id, &spec.number) {
            return Err(StoreError::Conflict("number"));
        }
        let now = now_ms();
        let g = RingGroup {
            tenant_id: tenant_id.to_string(),
            number: spec.number,
            name: spec.name,
            members: spec.members,
            strategy: spec.strategy,
            ring_time_s: spec.ring_time_s,
            no_answer_destination: spec.no_answer_destination,
            created_at: now,
            updated_at: now,
        };
        self.check_ring_group(&g)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO ring_groups (tenant_id, number, name, strategy, ring_time_s, no_answer_destination, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&g.tenant_id)
            .bind(&g.number)
            .bind(&g.name)
            .bind(g.strategy.as_str())
            .bind(i64::from(g.ring_time_s))
            .bind(g.no_answer_destination.as_deref())
            .bind(g.created_at)
            .bind(g.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, "number"))?;
        insert_members(&mut tx, &g).await?;
        tx.commit().await?;
        self.edit_directory(|d| d.put_ring_group(g.clone()));
        Ok(g)
    }

    /// Change the fields `patch` sets; `members` is replaced as a whole.
    pub async fn update_ring_group(
        &self,
        tenant_id: &str,
        number: &str,
        patch: RingGroupPatch,
    ) -> Result<RingGroup, StoreError> {
        let _w = self.writes.lock().await;
        if self.directory().tenant(tenant_id).is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        let mut g = (*self
            .directory()
            .ring_group(tenant_id, number)
            .ok_or(StoreError::NotFound("ring group"))?)
        .clone();
        if let Some(name) = patch.name {
            g.name = name;
        }
        let members_changed = patch.members.is_some();
        if let Some(members) = patch.members {
            g.members = members;
        }
        if let Some(strategy) = patch.strategy {
            g.strategy = strategy;
        }
        if let Some(t) = patch.ring_time_s {
            g.ring_time_s = t;
        }
        if let Some(d) = patch.no_answer_destination {
            g.no_answer_destination = d;
        }
        self.check_ring_group(&g)?;
        g.updated_at = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE ring_groups SET name = $1, strategy = $2, ring_time_s = $3, no_answer_destination = $4, updated_at = $5 WHERE tenant_id = $6 AND number = $7")
            .bind(&g.name)
            .bind(g.strategy.as_str())
            .bind(i64::from(g.ring_time_s))
            .bind(g.no_answer_destination.as_deref())
            .bind(g.updated_at)
            .bind(tenant_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        if members_changed {
            sqlx::query("DELETE FROM ring_group_members WHERE tenant_id = $1 AND ring_group = $2")
                .bind(tenant_id)
                .bind(number)
                .execute(&mut *tx)
                .await?;
            insert_members(&mut tx, &g).await?;
        }
        tx.commit().await?;
        self.edit_directory(|d| d.put_ring_group(g.clone()));
        Ok(g)
    }

    /// The tenant's other ring groups that refer to `number` (as a member
    /// or as their no-answer destination), as they become once it is gone.
    /// The database side of the same change is the caller's statements.
    pub(crate) fn groups_without(&self, tenant_id: &str, number: &str, now: i64) -> Vec<RingGroup> {
        self.directory()
            .ring_groups(tenant_id)
            .iter()
            .filter(|g| {
                g.number != number
                    && (g.members.iter().any(|m| m == number)
                        || g.no_answer_destination.as_deref() == Some(number))
            })
            .map(|g| {
                let mut g = (**g).clone();
                g.members.retain(|m| m != number);
                if g.no_answer_destination.as_deref() == Some(number) {
                    g.no_answer_destination = None;
                }
                g.updated_at = now;
                g
            })
            .collect()
    }

    /// Delete a ring group; in the same transaction other groups'
    /// `no_answer_destination` naming it becomes null, and so do the park
    /// recall settings' `ring_group`, `recall_number` and
    /// `final_destination` naming it (tenant settings and park group
    /// overrides); a recall mode left without its ring group or number
    /// falls back to `PARKER_ONLY`.
    pub async fn delete_ring_group(&self, tenant_id: &str, number: &str) -> Result<(), StoreError> {
        let _w = self.writes.lock().await;
        if self.directory().ring_group(tenant_id, number).is_none() {
            return Err(StoreError::NotFound("ring group"));
        }
        let now = now_ms();
        let touched = self.groups_without(tenant_id, number, now);
        let park = self.park_without(tenant_id, number, now);
        let mut tx = self.pool.begin().await?;
        write_park_changes(&mut tx, &park).await?;
        sqlx::query("DELETE FROM ring_group_members WHERE tenant_id = $1 AND ring_group = $2")
            .bind(tenant_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE ring_groups SET no_answer_destination = NULL, updated_at = $1 WHERE tenant_id = $2 AND no_answer_destination = $3")
            .bind(now)
            .bind(tenant_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM ring_groups WHERE tenant_id = $1 AND number = $2")
            .bind(tenant_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.edit_directory(|d| {
            d.remove_ring_group(tenant_id, number);
            for g in touched {
                d.put_ring_group(g);
            }
            d.apply_park_changes(park);
        });
        Ok(())
    }

    /// The rules that depend on other records or bounds: members exist, no
    /// duplicates, at most [`MAX_RING_GROUP_MEMBERS`]; `ring_time_s` in
    /// [`RING_TIME_S`]; the no-answer destination exists and is not the group.
    fn check_ring_group(&self, g: &RingGroup) -> Result<(), StoreError> {
        if !RING_TIME_S.contains(&g.ring_time_s) {
            return Err(invalid(
                "ring_time_s",
                format!(
                    "ring_time_s must be {} to {}",
                    RING_TIME_S.start(),
                    RING_TIME_S.end()
                ),
            ));
        }
        if g.members.len() > MAX_RING_GROUP_MEMBERS {
            return Err(invalid(
                "members",
                format!("members must list at most {MAX_RING_GROUP_MEMBERS} extensions"),
            ));
        }
        let dir = self.directory();
        let mut seen = HashSet::new();
        for m in &g.members {
            if !seen.insert(m.as_str()) {
                return Err(invalid(
                    "members",
                    format!("extension {m} is listed more than once"),
                ));
            }
            if dir.extension(&g.tenant_id, m).is_none() {
                return Err(invalid("members", format!("extension {m} does not exist")));
            }
        }
        if let Some(d) = &g.no_answer_destination {
            if *d == g.number {
                return Err(invalid(
                    "no_answer_destination",
                    "no_answer_destination must not be the ring group itself".to_string(),
                ));
            }
            if dir.extension(&g.tenant_id, d).is_none() && dir.ring_group(&g.tenant_id, d).is_none()
            {
                return Err(invalid(
                    "no_answer_destination",
                    format!("no_answer_destination {d} is neither an extension nor a ring group"),
                ));
            }
        }
        Ok(())
    }
}

async fn insert_members(conn: &mut AnyConnection, g: &RingGroup) -> Result<(), StoreError> {
    for (position, m) in g.members.iter().enumerate() {
        sqlx::query("INSERT INTO ring_group_members (tenant_id, ring_group, position, extension) VALUES ($1, $2, $3, $4)")
            .bind(&g.tenant_id)
            .bind(&g.number)
            .bind(position as i64)
            .bind(m)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
