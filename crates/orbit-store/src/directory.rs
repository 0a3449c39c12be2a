//! The in-memory copy of tenants, extension credentials, ring groups and
//! call park settings and groups, read on every SIP request without a
//! database round trip.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Extension, ParkGroup, ParkSettings, Phone, RingGroup, Tenant};

#[derive(Debug, Default, Clone)]
pub struct Directory {
    by_id: HashMap<String, Arc<Tenant>>,
    by_domain: HashMap<String, String>,
    extensions: HashMap<(String, String), Arc<Extension>>,
    ring_groups: HashMap<(String, String), Arc<RingGroup>>,
    /// Tenants that stored park settings; the others have the defaults.
    park_settings: HashMap<String, Arc<ParkSettings>>,
    /// By id.
    park_groups: HashMap<String, Arc<ParkGroup>>,
    /// (tenant, extension) to the id of the park group it is in.
    park_group_by_member: HashMap<(String, String), String>,
    /// Phones by id.
    phones: HashMap<String, Arc<Phone>>,
    /// MAC (stored form) to phone id; MACs are unique across tenants.
    phone_by_mac: HashMap<String, String>,
}

impl Directory {
    pub fn tenant(&self, id: &str) -> Option<Arc<Tenant>> {
        self.by_id.get(id).cloned()
    }

    pub fn tenant_by_domain(&self, domain: &str) -> Option<Arc<Tenant>> {
        let id = self.by_domain.get(&domain.to_ascii_lowercase())?;
        self.by_id.get(id).cloned()
    }

    /// Look up by id first, then by domain: the API accepts either.
    pub fn tenant_by_key(&self, key: &str) -> Option<Arc<Tenant>> {
        self.tenant(key).or_else(|| self.tenant_by_domain(key))
    }

    pub fn tenants(&self) -> Vec<Arc<Tenant>> {
        let mut v: Vec<_> = self.by_id.values().cloned().collect();
        v.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then(a.domain.cmp(&b.domain))
        });
        v
    }

    pub fn extension(&self, tenant_id: &str, number: &str) -> Option<Arc<Extension>> {
        self.extensions
            .get(&(tenant_id.to_string(), number.to_string()))
            .cloned()
    }

    pub fn extensions(&self, tenant_id: &str) -> Vec<Arc<Extension>> {
        let mut v: Vec<_> = self
            .extensions
            .values()
            .filter(|e| e.tenant_id == tenant_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.number.len(), &a.number).cmp(&(b.number.len(), &b.number)));
        v
    }

    pub fn ring_group(&self, tenant_id: &str, number: &str) -> Option<Arc<RingGroup>> {
        self.ring_groups
            .get(&(tenant_id.to_string(), number.to_string()))
            .cloned()
    }

    /// The tenant's ring groups, by number (shorter numbers first).
    pub fn ring_groups(&self, tenant_id: &str) -> Vec<Arc<RingGroup>> {
        let mut v: Vec<_> = self
            .ring_groups
            .values()
            .filter(|g| g.tenant_id == tenant_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.number.len(), &a.number).cmp(&(b.number.len(), &b.number)));
        v
    }

    /// Whether `number` is taken in the tenant by an extension or a ring group.
    pub fn number_in_use(&self, tenant_id: &str, number: &str) -> bool {
        let key = (tenant_id.to_string(), number.to_string());
        self.extensions.contains_key(&key) || self.ring_groups.contains_key(&key)
    }

    pub(crate) fn put_ring_group(&mut self, g: RingGroup) {
        self.ring_groups
            .insert((g.tenant_id.clone(), g.number.clone()), Arc::new(g));
    }

    pub(crate) fn remove_ring_group(&mut self, tenant_id: &str, number: &str) {
        self.ring_groups
            .remove(&(tenant_id.to_string(), number.to_string()));
    }

    pub(crate) fn put_tenant(&mut self, t: Tenant) {
        if let Some(old) = self.by_id.get(&t.id) {
            self.by_domain.remove(&old.domain);
        }
        self.by_domain.insert(t.domain.clone(), t.id.clone());
        self.by_id.insert(t.id.clone(), Arc::new(t));
    }

    pub(crate) fn remove_tenant(&mut self, id: &str) {
        if let Some(old) = self.by_id.remove(id) {
            self.by_domain.remove(&old.domain);
        }
        self.extensions.retain(|(t, _), _| t != id);
        self.ring_groups.retain(|(t, _), _| t != id);
        self.park_settings.remove(id);
        self.park_groups.retain(|_, g| g.tenant_id != id);
        self.park_group_by_member.retain(|(t, _), _| t != id);
        self.phones.retain(|_, p| p.tenant_id != id);
        let phones = &self.phones;
        self.phone_by_mac.retain(|_, pid| phones.contains_key(pid));
    }

    pub(crate) fn put_extension(&mut self, e: Extension) {
        self.extensions
            .insert((e.tenant_id.clone(), e.number.clone()), Arc::new(e));
    }

    pub(crate) fn remove_extension(&mut self, tenant_id: &str, number: &str) {
        self.extensions
            .remove(&(tenant_id.to_string(), number.to_string()));
    }

    /// The tenant's call park settings: the defaults
    /// ([`ParkSettings::defaults`], `updated_at` 0) until some are stored.
    pub fn park_settings(&self, tenant_id: &str) -> Arc<ParkSettings> {
        self.park_settings
            .get(tenant_id)
            .cloned()
            .unwrap_or_else(|| Arc::new(ParkSettings::defaults(tenant_id)))
    }

    /// The tenant's park group with this id.
    pub fn park_group(&self, tenant_id: &str, id: &str) -> Option<Arc<ParkGroup>> {
        self.park_groups
            .get(id)
            .filter(|g| g.tenant_id == tenant_id)
            .cloned()
    }

    /// The tenant's park groups, by name (ignoring case).
    pub fn park_groups(&self, tenant_id: &str) -> Vec<Arc<ParkGroup>> {
        let mut v: Vec<_> = self
            .park_groups
            .values()
            .filter(|g| g.tenant_id == tenant_id)
            .cloned()
            .collect();
        v.sort_by_cached_key(|g| (g.name.to_lowercase(), g.id.clone()));
        v
    }

    /// The park group `extension` is a member of, if any.
    pub fn park_group_of(&self, tenant_id: &str, extension: &str) -> Option<Arc<ParkGroup>> {
        let id = self
            .park_group_by_member
            .get(&(tenant_id.to_string(), extension.to_string()))?;
        self.park_groups.get(id).cloned()
    }

    pub(crate) fn put_park_settings(&mut self, s: ParkSettings) {
        self.park_settings.insert(s.tenant_id.clone(), Arc::new(s));
    }

    pub(crate) fn put_park_group(&mut self, g: ParkGroup) {
        self.remove_park_group(&g.id);
        for m in &g.members {
            self.park_group_by_member
                .insert((g.tenant_id.clone(), m.clone()), g.id.clone());
        }
        self.park_groups.insert(g.id.clone(), Arc::new(g));
    }

    pub(crate) fn apply_park_changes(&mut self, changes: crate::park::ParkChanges) {
        if let Some(s) = changes.settings {
            self.put_park_settings(s);
        }
        for g in changes.groups {
            self.put_park_group(g);
        }
    }

    pub(crate) fn remove_park_group(&mut self, id: &str) {
        if let Some(old) = self.park_groups.remove(id) {
            for m in &old.members {
                let key = (old.tenant_id.clone(), m.clone());
                if self.park_group_by_member.get(&key).map(String::as_str) == Some(id) {
                    self.park_group_by_member.remove(&key);
                }
            }
        }
    }

    /// The tenant's phone with this id.
    pub fn phone(&self, tenant_id: &str, id: &str) -> Option<Arc<Phone>> {
        self.phones
            .get(id)
            .filter(|p| p.tenant_id == tenant_id)
            .cloned()
    }

    /// Any tenant's phone with this id.
    pub fn phone_by_id(&self, id: &str) -> Option<Arc<Phone>> {
        self.phones.get(id).cloned()
    }

    /// The phone with this MAC (stored form: 12 lower-case hex digits),
    /// whatever its tenant: the provisioning server looks phones up so.
    pub fn phone_by_mac(&self, mac: &str) -> Option<Arc<Phone>> {
        let id = self.phone_by_mac.get(mac)?;
        self.phones.get(id).cloned()
    }

    /// The tenant's phones, by MAC.
    pub fn phones(&self, tenant_id: &str) -> Vec<Arc<Phone>> {
        let mut v: Vec<_> = self
            .phones
            .values()
            .filter(|p| p.tenant_id == tenant_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.mac.cmp(&b.mac));
        v
    }

    pub(crate) fn put_phone(&mut self, p: Phone) {
        self.remove_phone(&p.id);
        self.phone_by_mac.insert(p.mac.clone(), p.id.clone());
        self.phones.insert(p.id.clone(), Arc::new(p));
    }

    pub(crate) fn remove_phone(&mut self, id: &str) {
        if let Some(old) = self.phones.remove(id) {
            if self.phone_by_mac.get(&old.mac).map(String::as_str) == Some(id) {
                self.phone_by_mac.remove(&old.mac);
            }
        }
    }
}
