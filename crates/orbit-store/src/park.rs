//! Call park configuration: a tenant's park settings (feature codes, bounds,
//! recall) and its park groups (ordered extensions that group park hunts,
//! each with an optional recall override). References to extensions and
//! ring groups are checked under the store's write lock, and deleting an
//! extension or a ring group clears them (see [`crate::RecallSettings`]'s
//! fallback). Every write is one transaction, then the directory.

use std::collections::HashSet;
use std::ops::RangeInclusive;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;
use crate::model::{
    ParkGroup, ParkGroupPatch, ParkGroupSpec, ParkSettings, ParkSettingsSpec, RecallSettings,
    RecallTo,
};
use crate::now_ms;
use crate::store::{conflict, Store};

/// Allowed `recall_time_s` (seconds).
pub const RECALL_TIME_S: RangeInclusive<u32> = 1..=900;
/// Allowed `ring_group_wait_s` (seconds).
pub const RING_GROUP_WAIT_S: RangeInclusive<u32> = 5..=300;
/// Allowed `ring_s` of a recall attempt (seconds).
pub const RECALL_RING_S: RangeInclusive<u32> = 5..=300;
/// Allowed `retry_interval_s` (seconds).
pub const RETRY_INTERVAL_S: RangeInclusive<u32> = 1..=300;
/// Allowed `max_recall_attempts`.
pub const MAX_RECALL_ATTEMPTS: RangeInclusive<u32> = 1..=20;
/// Allowed `max_parked_per_extension`.
pub const MAX_PARKED_PER_EXTENSION: RangeInclusive<u32> = 1..=100;
/// `display_prefix` is at most this many characters.
pub const MAX_DISPLAY_PREFIX: usize = 16;
/// At most this many members per park group.
pub const MAX_PARK_GROUP_MEMBERS: usize = 100;
/// A park group's name is 1 to this many characters.
pub const MAX_PARK_GROUP_NAME: usize = 64;

/// A feature code: `*` or `#`, then 1 to 6 digits (`*68`, `#58`).
pub fn is_feature_code(code: &str) -> bool {
    let b = code.as_bytes();
    matches!(b.first(), Some(b'*' | b'#'))
        && (2..=7).contains(&b.len())
        && b[1..].iter().all(u8::is_ascii_digit)
}

/// Whether `prefix` can go before a display name in a SIP header: no
/// control characters, quotes or backslashes.
pub fn is_display_prefix(prefix: &str) -> bool {
    prefix.chars().count() <= MAX_DISPLAY_PREFIX
        && !prefix
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
}

fn invalid(field: &'static str, message: String) -> StoreError {
    StoreError::Invalid { field, message }
}

fn range(field: &'static str, v: u32, r: &RangeInclusive<u32>) -> Result<(), StoreError> {
    if r.contains(&v) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{field} must be {} to {}", r.start(), r.end()),
        ))
    }
}

/// What deleting a number changes in a tenant's park configuration.
#[derive(Default)]
pub(crate) struct ParkChanges {
    pub settings: Option<ParkSettings>,
    pub groups: Vec<ParkGroup>,
}

impl Store {
    /// Replace a tenant's park settings as a whole.
    pub async fn put_park_settings(
        &self,
        tenant_id: &str,
        spec: ParkSettingsSpec,
    ) -> Result<ParkSettings, StoreError> {
        let _w = self.writes.lock().await;
        if self.directory().tenant(tenant_id).is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        let s = ParkSettings::from_spec(tenant_id, spec, now_ms());
        self.check_park_settings(&s)?;
        let mut tx = self.pool.begin().await?;
        write_settings(&mut tx, &s).await?;
        tx.commit().await?;
        self.edit_directory(|d| d.put_park_settings(s.clone()));
        Ok(s)
    }

    pub async fn create_park_group(
        &self,
        tenant_id: &str,
        spec: ParkGroupSpec,
    ) -> Result<ParkGroup, StoreError> {
        let _w = self.writes.lock().await;
        if self.directory().tenant(tenant_id).is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        let now = now_ms();
        let g = ParkGroup {
            id: uuid::Uuid::new_v4().simple().to_string(),
            tenant_id: tenant_id.to_string(),
            name: spec.name,
            members: spec.members,
            recall: spec.recall,
            created_at: now,
            updated_at: now,
        };
        self.check_park_group(&g)?;
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO park_groups (id, tenant_id, name, {RECALL_COLUMNS}, created_at, updated_at) \
             VALUES ($1, $2, $3, {}, $14, $15)",
            params(4, 10)
        );
        let q = sqlx::query(&sql)
            .bind(g.id.clone())
            .bind(g.tenant_id.clone())
            .bind(g.name.clone());
        bind_recall(q, g.recall.as_ref())
            .bind(g.created_at)
            .bind(g.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, "name"))?;
        insert_members(&mut tx, &g).await?;
        tx.commit().await?;
        self.edit_directory(|d| d.put_park_group(g.clone()));
        Ok(g)
    }

    /// Change the fields `patch` sets; `members` is replaced as a whole and
    /// `recall: Some(None)` drops the group's override.
    pub async fn update_park_group(
        &self,
        tenant_id: &str,
        id: &str,
        patch: ParkGroupPatch,
    ) -> Result<ParkGroup, StoreError> {
        let _w = self.writes.lock().await;
        let mut g = (*self
            .directory()
            .park_group(tenant_id, id)
            .ok_or(StoreError::NotFound("park group"))?)
        .clone();
        if let Some(name) = patch.name {
            g.name = name;
        }
        let members_changed = patch.members.is_some();
        if let Some(members) = patch.members {
            g.members = members;
        }
        if let Some(recall) = patch.recall {
            g.recall = recall;
        }
        self.check_park_group(&g)?;
        g.updated_at = now_ms();
        let mut tx = self.pool.begin().await?;
        update_group_row(&mut tx, &g).await?;
        if members_changed {
            replace_members(&mut tx, &g).await?;
        }
        tx.commit().await?;
        self.edit_directory(|d| d.put_park_group(g.clone()));
        Ok(g)
    }

    pub async fn delete_park_group(&self, tenant_id: &str, id: &str) -> Result<(), StoreError> {
        let _w = self.writes.lock().await;
        if self.directory().park_group(tenant_id, id).is_none() {
            return Err(StoreError::NotFound("park group"));
        }
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM park_group_members WHERE park_group = $1",
            "DELETE FROM park_groups WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.edit_directory(|d| d.remove_park_group(id));
        Ok(())
    }

    /// The tenant's park settings and groups that refer to `number` (a
    /// member, `recall_number`, `ring_group` or `final_destination`), as
    /// they become once it is gone. Written by [`write_park_changes`] in
    /// the caller's transaction; the caller holds the write lock.
    pub(crate) fn park_without(&self, tenant_id: &str, number: &str, now: i64) -> ParkChanges {
        let dir = self.directory();
        let mut s = (*dir.park_settings(tenant_id)).clone();
        let settings = if s.recall.forget(number) {
            s.updated_at = now;
            Some(s)
        } else {
            None
        };
        let groups = dir
            .park_groups(tenant_id)
            .iter()
            .filter_map(|g| {
                let mut g = (**g).clone();
                let before = g.members.len();
                g.members.retain(|m| m != number);
                let recall_changed = g.recall.as_mut().is_some_and(|r| r.forget(number));
                if g.members.len() == before && !recall_changed {
                    return None;
                }
                g.updated_at = now;
                Some(g)
            })
            .collect();
        ParkChanges { settings, groups }
    }

    /// The rules of the settings: ranges, feature codes, recall.
    fn check_park_settings(&self, s: &ParkSettings) -> Result<(), StoreError> {
        let codes = [
            ("park_code", &s.park_code),
            ("group_park_code", &s.group_park_code),
            ("retrieve_code", &s.retrieve_code),
        ];
        for (field, code) in codes {
            if !is_feature_code(code) {
                return Err(invalid(
                    field,
                    format!("{field} must be * or # followed by 1 to 6 digits"),
                ));
            }
        }
        for j in 1..codes.len() {
            for i in 0..j {
                let ((fi, ci), (fj, cj)) = (codes[i], codes[j]);
                if ci.starts_with(cj.as_str()) || cj.starts_with(ci.as_str()) {
                    return Err(invalid(
                        fj,
                        format!(
                            "{fj} {cj} clashes with {fi} {ci}: the codes must differ and none may begin another"
                        ),
                    ));
                }
            }
        }
        range(
            "max_parked_per_extension",
            s.max_parked_per_extension,
            &MAX_PARKED_PER_EXTENSION,
        )?;
        self.check_recall(&s.tenant_id, &s.recall)
    }

    /// The rules of recall settings, with the fields named as the API
    /// nests them (`recall.ring_group`).
    fn check_recall(&self, tenant_id: &str, r: &RecallSettings) -> Result<(), StoreError> {
        range("recall.recall_time_s", r.recall_time_s, &RECALL_TIME_S)?;
        range(
            "recall.ring_group_wait_s",
            r.ring_group_wait_s,
            &RING_GROUP_WAIT_S,
        )?;
        range("recall.ring_s", r.ring_s, &RECALL_RING_S)?;
        range(
            "recall.retry_interval_s",
            r.retry_interval_s,
            &RETRY_INTERVAL_S,
        )?;
        range(
            "recall.max_recall_attempts",
            r.max_recall_attempts,
            &MAX_RECALL_ATTEMPTS,
        )?;
        if !is_display_prefix(&r.display_prefix) {
            return Err(invalid(
                "recall.display_prefix",
                format!(
                    "recall.display_prefix must be at most {MAX_DISPLAY_PREFIX} characters without control characters, quotes or backslashes"
                ),
            ));
        }
        let dir = self.directory();
        let is_number = |n: &str| {
            dir.extension(tenant_id, n).is_some() || dir.ring_group(tenant_id, n).is_some()
        };
        if let Some(g) = &r.ring_group {
            if dir.ring_group(tenant_id, g).is_none() {
                return Err(invalid(
                    "recall.ring_group",
                    format!("recall.ring_group {g} is not a ring group"),
                ));
            }
        } else if r.recall_to.uses_ring_group() {
            return Err(invalid(
                "recall.ring_group",
                format!(
                    "recall.ring_group is required with recall_to {}",
                    r.recall_to.as_str()
                ),
            ));
        }
        if let Some(n) = &r.recall_number {
            if !is_number(n) {
                return Err(invalid(
                    "recall.recall_number",
                    format!("recall.recall_number {n} is neither an extension nor a ring group"),
                ));
            }
        } else if r.recall_to == RecallTo::Number {
            return Err(invalid(
                "recall.recall_number",
                "recall.recall_number is required with recall_to NUMBER".to_string(),
            ));
        }
        if let Some(n) = &r.final_destination {
            if !is_number(n) {
                return Err(invalid(
                    "recall.final_destination",
                    format!(
                        "recall.final_destination {n} is neither an extension nor a ring group"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The rules of a park group: 422 for bad members and recall, then 409
    /// for a name taken (ignoring case) or a member in another group.
    fn check_park_group(&self, g: &ParkGroup) -> Result<(), StoreError> {
        let n = g.name.chars().count();
        if n == 0 || n > MAX_PARK_GROUP_NAME {
            return Err(invalid(
                "name",
                format!("name must be 1 to {MAX_PARK_GROUP_NAME} characters"),
            ));
        }
        if g.members.len() > MAX_PARK_GROUP_MEMBERS {
            return Err(invalid(
                "members",
                format!("members must list at most {MAX_PARK_GROUP_MEMBERS} extensions"),
            ));
        }
        {
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
        }
        if let Some(r) = &g.recall {
            self.check_recall(&g.tenant_id, r)?;
        }
        let dir = self.directory();
        let name = g.name.to_lowercase();
        if dir
            .park_groups(&g.tenant_id)
            .iter()
            .any(|o| o.id != g.id && o.name.to_lowercase() == name)
        {
            return Err(StoreError::Conflict("name"));
        }
        for m in &g.members {
            if let Some(other) = dir.park_group_of(&g.tenant_id, m) {
                if other.id != g.id {
                    return Err(StoreError::Clash {
                        field: "members",
                        message: format!(
                            "extension {m} is already in park group {:?} ({})",
                            other.name, other.id
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Write what [`Store::park_without`] computed.
pub(crate) async fn write_park_changes(
    conn: &mut AnyConnection,
    changes: &ParkChanges,
) -> Result<(), StoreError> {
    if let Some(s) = &changes.settings {
        write_settings(conn, s).await?;
    }
    for g in &changes.groups {
        update_group_row(conn, g).await?;
        replace_members(conn, g).await?;
    }
    Ok(())
}

/// The recall columns, in [`bind_recall`]'s order, as in both tables.
const RECALL_COLUMNS: &str = "recall_time_s, recall_to, recall_number, recall_ring_group, ring_group_wait_s, ring_s, retry_interval_s, max_recall_attempts, final_destination, display_prefix";

const SETTINGS_COLUMNS: [&str; 7] = [
    "enabled",
    "park_code",
    "group_park_code",
    "retrieve_code",
    "notify_parker",
    "max_parked_per_extension",
    "updated_at",
];

/// `$first, ..., $(first + n - 1)`.
fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, AnyArguments<'q>>;

/// Bind the ten recall columns; `None` binds NULLs (no override).
fn bind_recall<'q>(q: AnyQuery<'q>, r: Option<&RecallSettings>) -> AnyQuery<'q> {
    let int = |f: fn(&RecallSettings) -> u32| r.map(|r| i64::from(f(r)));
    q.bind(int(|r| r.recall_time_s))
        .bind(r.map(|r| r.recall_to.as_str().to_string()))
        .bind(r.and_then(|r| r.recall_number.clone()))
        .bind(r.and_then(|r| r.ring_group.clone()))
        .bind(int(|r| r.ring_group_wait_s))
        .bind(int(|r| r.ring_s))
        .bind(int(|r| r.retry_interval_s))
        .bind(int(|r| r.max_recall_attempts))
        .bind(r.and_then(|r| r.final_destination.clone()))
        .bind(r.map(|r| r.display_prefix.clone()))
}

async fn write_settings(conn: &mut AnyConnection, s: &ParkSettings) -> Result<(), StoreError> {
    let set = SETTINGS_COLUMNS
        .iter()
        .copied()
        .chain(RECALL_COLUMNS.split(", "))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO park_settings (tenant_id, {}, {RECALL_COLUMNS}) VALUES ({}) \
         ON CONFLICT (tenant_id) DO UPDATE SET {set}",
        SETTINGS_COLUMNS.join(", "),
        params(1, 18)
    );
    let q = sqlx::query(&sql)
        .bind(s.tenant_id.clone())
        .bind(i64::from(s.enabled))
        .bind(s.park_code.clone())
        .bind(s.group_park_code.clone())
        .bind(s.retrieve_code.clone())
        .bind(i64::from(s.notify_parker))
        .bind(i64::from(s.max_parked_per_extension))
        .bind(s.updated_at);
    bind_recall(q, Some(&s.recall)).execute(&mut *conn).await?;
    Ok(())
}

async fn update_group_row(conn: &mut AnyConnection, g: &ParkGroup) -> Result<(), StoreError> {
    let set = RECALL_COLUMNS
        .split(", ")
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("UPDATE park_groups SET name = $1, {set}, updated_at = $12 WHERE id = $13");
    let q = sqlx::query(&sql).bind(g.name.clone());
    bind_recall(q, g.recall.as_ref())
        .bind(g.updated_at)
        .bind(g.id.clone())
        .execute(&mut *conn)
        .await
        .map_err(|e| conflict(e, "name"))?;
    Ok(())
}

async fn insert_members(conn: &mut AnyConnection, g: &ParkGroup) -> Result<(), StoreError> {
    for (position, m) in g.members.iter().enumerate() {
        sqlx::query("INSERT INTO park_group_members (tenant_id, park_group, position, extension) VALUES ($1, $2, $3, $4)")
            .bind(&g.tenant_id)
            .bind(&g.id)
            .bind(position as i64)
            .bind(m)
            .execute(&mut *conn)
            .await
            .map_err(|e| conflict(e, "members"))?;
    }
    Ok(())
}

async fn replace_members(conn: &mut AnyConnection, g: &ParkGroup) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM park_group_members WHERE park_group = $1")
        .bind(&g.id)
        .execute(&mut *conn)
        .await?;
    insert_members(conn, g).await
}

fn u32_at(row: &AnyRow, i: usize) -> Result<Option<u32>, sqlx::Error> {
    let v: Option<i64> = row.try_get(i)?;
    v.map(|v| {
        u32::try_from(v).map_err(|_| {
            sqlx::Error::Decode(format!("park column {i}: {v} is out of range").into())
        })
    })
    .transpose()
}

/// Ten recall columns from `first` on, in [`RECALL_COLUMNS`] order;
/// `None` when `recall_to` is NULL.
fn recall_at(row: &AnyRow, first: usize) -> Result<Option<RecallSettings>, sqlx::Error> {
    let recall_to: Option<String> = row.try_get(first + 1)?;
    let Some(recall_to) = recall_to else {
        return Ok(None);
    };
    let missing = || sqlx::Error::Decode("park recall column is NULL".into());
    let int = |i: usize| u32_at(row, first + i)?.ok_or_else(missing);
    Ok(Some(RecallSettings {
        recall_time_s: int(0)?,
        recall_to: RecallTo::parse(&recall_to).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown recall_to {recall_to:?}").into())
        })?,
        recall_number: row.try_get(first + 2)?,
        ring_group: row.try_get(first + 3)?,
        ring_group_wait_s: int(4)?,
        ring_s: int(5)?,
        retry_interval_s: int(6)?,
        max_recall_attempts: int(7)?,
        final_destination: row.try_get(first + 8)?,
        display_prefix: row
            .try_get::<Option<String>, _>(first + 9)?
            .ok_or_else(missing)?,
    }))
}

pub(crate) const SELECT_SETTINGS: &str = "SELECT tenant_id, enabled, park_code, group_park_code, retrieve_code, notify_parker, max_parked_per_extension, updated_at, recall_time_s, recall_to, recall_number, recall_ring_group, ring_group_wait_s, ring_s, retry_interval_s, max_recall_attempts, final_destination, display_prefix FROM park_settings";

pub(crate) fn settings_of(row: &AnyRow) -> Result<ParkSettings, sqlx::Error> {
    let flag = |i: usize| -> Result<bool, sqlx::Error> { Ok(row.try_get::<i64, _>(i)? != 0) };
    Ok(ParkSettings {
        tenant_id: row.try_get(0)?,
        enabled: flag(1)?,
        park_code: row.try_get(2)?,
        group_park_code: row.try_get(3)?,
        retrieve_code: row.try_get(4)?,
        notify_parker: flag(5)?,
        max_parked_per_extension: u32_at(row, 6)?.unwrap_or_default(),
        updated_at: row.try_get(7)?,
        recall: recall_at(row, 8)?
            .ok_or_else(|| sqlx::Error::Decode("park_settings.recall_to is NULL".into()))?,
    })
}

pub(crate) const SELECT_GROUPS: &str = "SELECT id, tenant_id, name, created_at, updated_at, recall_time_s, recall_to, recall_number, recall_ring_group, ring_group_wait_s, ring_s, retry_interval_s, max_recall_attempts, final_destination, display_prefix FROM park_groups";

/// A park group without its members (they come from their own table).
pub(crate) fn group_of(row: &AnyRow) -> Result<ParkGroup, sqlx::Error> {
    Ok(ParkGroup {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        name: row.try_get(2)?,
        members: Vec::new(),
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
        recall: recall_at(row, 5)?,
    })
}
