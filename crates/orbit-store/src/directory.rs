//! The in-memory copy of tenants and extension credentials, read on every
//! SIP request without a database round trip.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Extension, Tenant};

#[derive(Debug, Default, Clone)]
pub struct Directory {
    by_id: HashMap<String, Arc<Tenant>>,
    by_domain: HashMap<String, String>,
    extensions: HashMap<(String, String), Arc<Extension>>,
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
    }

    pub(crate) fn put_extension(&mut self, e: Extension) {
        self.extensions
            .insert((e.tenant_id.clone(), e.number.clone()), Arc::new(e));
    }

    pub(crate) fn remove_extension(&mut self, tenant_id: &str, number: &str) {
        self.extensions
            .remove(&(tenant_id.to_string(), number.to_string()));
    }
}
