use std::sync::{Arc, RwLock, RwLockReadGuard};

use orbit_auth::digest::{ha1, Algorithm};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tokio::sync::broadcast;

use crate::directory::Directory;
use crate::error::StoreError;
use crate::model::{Extension, RingGroup, RingStrategy, Tenant};
use crate::now_ms;
use crate::park;

/// Changes other layers must react to (the registrar drops the bindings of
/// a deleted extension, for one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    TenantDeleted { tenant_id: String },
    ExtensionDeleted { tenant_id: String, number: String },
}

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    directory: Arc<RwLock<Directory>>,
    events: broadcast::Sender<StoreEvent>,
    /// Serialises writes whose checks span tables (extension and ring group
    /// numbers share one space; members must exist), so check and write are
    /// one step.
    pub(crate) writes: Arc<tokio::sync::Mutex<()>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Open (creating if needed) the database at `url`, run migrations and
    /// load the directory. `sqlite://path` or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 10 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL lets the API read while registrations are written;
                        // the busy timeout serialises writers instead of failing them.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let (events, _) = broadcast::channel(1024);
        let store = Store {
            pool,
            directory: Arc::new(RwLock::new(Directory::default())),
            events,
            writes: Arc::new(tokio::sync::Mutex::new(())),
        };
        store.reload().await?;
        Ok(store)
    }

    /// Rebuild the in-memory directory from the database.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut dir = Directory::default();
        for row in
            sqlx::query("SELECT id, name, domain, realm, created_at, updated_at FROM tenants")
                .fetch_all(&self.pool)
                .await?
        {
            dir.put_tenant(tenant_of(&row)?);
        }
        for row in sqlx::query(
            "SELECT tenant_id, number, display_name, ha1_md5, ha1_sha256, created_at, updated_at FROM extensions",
        )
        .fetch_all(&self.pool)
        .await?
        {
            dir.put_extension(extension_of(&row)?);
        }
        let mut groups = std::collections::HashMap::new();
        for row in sqlx::query(
            "SELECT tenant_id, number, name, strategy, ring_time_s, no_answer_destination, created_at, updated_at FROM ring_groups",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let g = ring_group_of(&row)?;
            groups.insert((g.tenant_id.clone(), g.number.clone()), g);
        }
        for row in sqlx::query(
            "SELECT tenant_id, ring_group, extension FROM ring_group_members ORDER BY tenant_id, ring_group, position",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let key: (String, String) = (row.try_get(0)?, row.try_get(1)?);
            if let Some(g) = groups.get_mut(&key) {
                g.members.push(row.try_get(2)?);
            }
        }
        for g in groups.into_values() {
            dir.put_ring_group(g);
        }
        for row in sqlx::query(park::SELECT_SETTINGS)
            .fetch_all(&self.pool)
            .await?
        {
            dir.put_park_settings(park::settings_of(&row)?);
        }
        let mut park_groups = std::collections::HashMap::new();
        for row in sqlx::query(park::SELECT_GROUPS)
            .fetch_all(&self.pool)
            .await?
        {
            let g = park::group_of(&row)?;
            park_groups.insert(g.id.clone(), g);
        }
        for row in sqlx::query(
            "SELECT park_group, extension FROM park_group_members ORDER BY park_group, position",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let id: String = row.try_get(0)?;
            if let Some(g) = park_groups.get_mut(&id) {
                g.members.push(row.try_get(1)?);
            }
        }
        for g in park_groups.into_values() {
            dir.put_park_group(g);
        }
        for row in sqlx::query(&crate::phones::select_phones())
            .fetch_all(&self.pool)
            .await?
        {
            dir.put_phone(crate::phones::phone_of(&row)?);
        }
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = dir;
        Ok(())
    }

    /// The directory, for lookups on the hot path. Hold the guard briefly.
    pub fn directory(&self) -> RwLockReadGuard<'_, Directory> {
        self.directory.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn edit_directory(&self, f: impl FnOnce(&mut Directory)) {
        f(&mut self.directory.write().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get::<String, _>(0)?),
            None => None,
        })
    }

    /// Set a value only if the key has none; returns the value in force.
    pub async fn meta_init(&self, key: &str, value: &str) -> Result<String, StoreError> {
        if let Some(v) = self.meta(key).await? {
            return Ok(v);
        }
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(value.to_string())
    }

    pub async fn create_tenant(&self, name: &str, domain: &str) -> Result<Tenant, StoreError> {
        if self.directory().tenant_by_domain(domain).is_some() {
            return Err(StoreError::Conflict("domain"));
        }
        let now = now_ms();
        let t = Tenant {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name: name.to_string(),
            domain: domain.to_ascii_lowercase(),
            realm: domain.to_ascii_lowercase(),
            created_at: now,
            updated_at: now,
        };
        sqlx::query("INSERT INTO tenants (id, name, domain, realm, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.domain)
            .bind(&t.realm)
            .bind(t.created_at)
            .bind(t.updated_at)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict(e, "domain"))?;
        self.edit_directory(|d| d.put_tenant(t.clone()));
        Ok(t)
    }

    pub async fn update_tenant(
        &self,
        id: &str,
        name: Option<&str>,
        domain: Option<&str>,
    ) -> Result<Tenant, StoreError> {
        let mut t = (*self
            .directory()
            .tenant(id)
            .ok_or(StoreError::NotFound("tenant"))?)
        .clone();
        if let Some(domain) = domain {
            let domain = domain.to_ascii_lowercase();
            if let Some(other) = self.directory().tenant_by_domain(&domain) {
                if other.id != t.id {
                    return Err(StoreError::Conflict("domain"));
                }
            }
            t.domain = domain;
        }
        if let Some(name) = name {
            t.name = name.to_string();
        }
        t.updated_at = now_ms();
        sqlx::query("UPDATE tenants SET name = $1, domain = $2, updated_at = $3 WHERE id = $4")
            .bind(&t.name)
            .bind(&t.domain)
            .bind(t.updated_at)
            .bind(&t.id)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict(e, "domain"))?;
        self.edit_directory(|d| d.put_tenant(t.clone()));
        Ok(t)
    }

    /// Delete a tenant with everything it owns, in one transaction.
    pub async fn delete_tenant(&self, id: &str) -> Result<(), StoreError> {
        let _w = self.writes.lock().await;
        if self.directory().tenant(id).is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM registrations WHERE tenant_id = $1",
            "DELETE FROM api_tokens WHERE tenant_id = $1",
            "DELETE FROM call_records WHERE tenant_id = $1",
            "DELETE FROM park_events WHERE tenant_id = $1",
            "DELETE FROM subscriptions WHERE tenant_id = $1",
            "DELETE FROM park_group_members WHERE tenant_id = $1",
            "DELETE FROM park_groups WHERE tenant_id = $1",
            "DELETE FROM park_settings WHERE tenant_id = $1",
            "DELETE FROM phones WHERE tenant_id = $1",
            "DELETE FROM ring_group_members WHERE tenant_id = $1",
            "DELETE FROM ring_groups WHERE tenant_id = $1",
            "DELETE FROM extensions WHERE tenant_id = $1",
            "DELETE FROM tenants WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.edit_directory(|d| d.remove_tenant(id));
        let _ = self.events.send(StoreEvent::TenantDeleted {
            tenant_id: id.to_string(),
        });
        Ok(())
    }

    pub async fn create_extension(
        &self,
        tenant_id: &str,
        number: &str,
        display_name: &str,
        password: &str,
    ) -> Result<Extension, StoreError> {
        let _w = self.writes.lock().await;
        let tenant = self
            .directory()
            .tenant(tenant_id)
            .ok_or(StoreError::NotFound("tenant"))?;
        // Extensions and ring groups share the tenant's numbers.
        if self.directory().number_in_use(tenant_id, number) {
            return Err(StoreError::Conflict("number"));
        }
        let now = now_ms();
        let e = Extension {
            tenant_id: tenant_id.to_string(),
            number: number.to_string(),
            display_name: display_name.to_string(),
            ha1_md5: ha1(Algorithm::Md5, number, &tenant.realm, password),
            ha1_sha256: ha1(Algorithm::Sha256, number, &tenant.realm, password),
            created_at: now,
            updated_at: now,
        };
        sqlx::query("INSERT INTO extensions (tenant_id, number, display_name, ha1_md5, ha1_sha256, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&e.tenant_id)
            .bind(&e.number)
            .bind(&e.display_name)
            .bind(&e.ha1_md5)
            .bind(&e.ha1_sha256)
            .bind(e.created_at)
            .bind(e.updated_at)
            .execute(&self.pool)
            .await
            .map_err(|err| conflict(err, "number"))?;
        self.edit_directory(|d| d.put_extension(e.clone()));
        Ok(e)
    }

    pub async fn update_extension(
        &self,
        tenant_id: &str,
        number: &str,
        display_name: Option<&str>,
        password: Option<&str>,
    ) -> Result<Extension, StoreError> {
        let tenant = self
            .directory()
            .tenant(tenant_id)
            .ok_or(StoreError::NotFound("tenant"))?;
        let mut e = (*self
            .directory()
            .extension(tenant_id, number)
            .ok_or(StoreError::NotFound("extension"))?)
        .clone();
        if let Some(d) = display_name {
            e.display_name = d.to_string();
        }
        if let Some(p) = password {
            e.ha1_md5 = ha1(Algorithm::Md5, number, &tenant.realm, p);
            e.ha1_sha256 = ha1(Algorithm::Sha256, number, &tenant.realm, p);
        }
        e.updated_at = now_ms();
        sqlx::query("UPDATE extensions SET display_name = $1, ha1_md5 = $2, ha1_sha256 = $3, updated_at = $4 WHERE tenant_id = $5 AND number = $6")
            .bind(&e.display_name)
            .bind(&e.ha1_md5)
            .bind(&e.ha1_sha256)
            .bind(e.updated_at)
            .bind(tenant_id)
            .bind(number)
            .execute(&self.pool)
            .await?;
        self.edit_directory(|d| d.put_extension(e.clone()));
        Ok(e)
    }

    /// Delete an extension with its registrations; in the same transaction
    /// it leaves every ring group's and park group's members, and a
    /// `no_answer_destination`, `recall_number` or `final_destination`
    /// naming it becomes null (a `NUMBER` recall then falls back to
    /// `PARKER_ONLY`). Phones registering as it keep their row with no
    /// extension, and lose keys watching it (their `config_version` rises).
    pub async fn delete_extension(&self, tenant_id: &str, number: &str) -> Result<(), StoreError> {
        let _w = self.writes.lock().await;
        if self.directory().extension(tenant_id, number).is_none() {
            return Err(StoreError::NotFound("extension"));
        }
        let now = now_ms();
        let touched = self.groups_without(tenant_id, number, now);
        let park = self.park_without(tenant_id, number, now);
        let phones = self.phones_without(tenant_id, number, now);
        let mut tx = self.pool.begin().await?;
        park::write_park_changes(&mut tx, &park).await?;
        for p in &phones {
            crate::phones::write_phone(&mut tx, p).await?;
        }
        for sql in [
            "DELETE FROM registrations WHERE tenant_id = $1 AND extension = $2",
            "DELETE FROM ring_group_members WHERE tenant_id = $1 AND extension = $2",
            "UPDATE ring_groups SET no_answer_destination = NULL WHERE tenant_id = $1 AND no_answer_destination = $2",
        ] {
            sqlx::query(sql)
                .bind(tenant_id)
                .bind(number)
                .execute(&mut *tx)
                .await?;
        }
        for g in &touched {
            sqlx::query(
                "UPDATE ring_groups SET updated_at = $1 WHERE tenant_id = $2 AND number = $3",
            )
            .bind(now)
            .bind(tenant_id)
            .bind(&g.number)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM extensions WHERE tenant_id = $1 AND number = $2")
            .bind(tenant_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.edit_directory(|d| {
            d.remove_extension(tenant_id, number);
            for g in touched {
                d.put_ring_group(g);
            }
            d.apply_park_changes(park);
            for p in phones {
                d.put_phone(p);
            }
        });
        let _ = self.events.send(StoreEvent::ExtensionDeleted {
            tenant_id: tenant_id.to_string(),
            number: number.to_string(),
        });
        Ok(())
    }
}

pub(crate) fn conflict(e: sqlx::Error, field: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(field),
        _ => StoreError::Db(e),
    }
}

fn tenant_of(row: &AnyRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        domain: row.try_get(2)?,
        realm: row.try_get(3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

fn extension_of(row: &AnyRow) -> Result<Extension, sqlx::Error> {
    Ok(Extension {
        tenant_id: row.try_get(0)?,
        number: row.try_get(1)?,
        display_name: row.try_get(2)?,
        ha1_md5: row.try_get(3)?,
        ha1_sha256: row.try_get(4)?,
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
    })
}

fn ring_group_of(row: &AnyRow) -> Result<RingGroup, sqlx::Error> {
    let strategy: String = row.try_get(3)?;
    let ring_time_s: i64 = row.try_get(4)?;
    Ok(RingGroup {
        tenant_id: row.try_get(0)?,
        number: row.try_get(1)?,
        name: row.try_get(2)?,
        members: Vec::new(),
        strategy: RingStrategy::parse(&strategy).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown ring group strategy {strategy:?}").into())
        })?,
        ring_time_s: u32::try_from(ring_time_s)
            .map_err(|_| sqlx::Error::Decode(format!("bad ring_time_s {ring_time_s}").into()))?,
        no_answer_destination: row.try_get(5)?,
        created_at: row.try_get(6)?,
        updated_at: row.try_get(7)?,
    })
}
