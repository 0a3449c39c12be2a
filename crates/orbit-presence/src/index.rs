//! The table's lookup structures, so no operation walks every
//! subscription: live subscriptions by tenant and resource, by tenant and
//! subscriber, and the counts the bounds need.

use std::collections::{BTreeSet, HashMap};

use crate::model::{Resource, SubId};

type Nested<K> = HashMap<String, HashMap<K, BTreeSet<SubId>>>;

/// Live (not terminated) subscriptions only.
#[derive(Debug, Default)]
pub(crate) struct Index {
    by_resource: Nested<Resource>,
    by_subscriber: Nested<String>,
    per_contact: HashMap<(String, String), usize>,
    per_tenant: HashMap<String, usize>,
}

/// The keys a subscription is filed under.
pub(crate) struct Keys<'a> {
    pub tenant: &'a str,
    pub subscriber: &'a str,
    pub contact: &'a str,
    pub resource: &'a Resource,
}

fn insert<K: std::hash::Hash + Eq + Clone>(map: &mut Nested<K>, tenant: &str, key: &K, id: SubId) {
    map.entry(tenant.to_owned())
        .or_default()
        .entry(key.clone())
        .or_default()
        .insert(id);
}

/// Removes `id`, dropping emptied entries so memory follows the table.
fn remove<K: std::hash::Hash + Eq>(map: &mut Nested<K>, tenant: &str, key: &K, id: SubId) {
    let Some(inner) = map.get_mut(tenant) else {
        return;
    };
    if let Some(ids) = inner.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            inner.remove(key);
        }
    }
    if inner.is_empty() {
        map.remove(tenant);
    }
}

impl Index {
    pub(crate) fn insert(&mut self, k: &Keys<'_>, id: SubId) {
        insert(&mut self.by_resource, k.tenant, k.resource, id);
        insert(
            &mut self.by_subscriber,
            k.tenant,
            &k.subscriber.to_owned(),
            id,
        );
        *self
            .per_contact
            .entry((k.tenant.to_owned(), k.contact.to_owned()))
            .or_default() += 1;
        *self.per_tenant.entry(k.tenant.to_owned()).or_default() += 1;
    }

    pub(crate) fn remove(&mut self, k: &Keys<'_>, id: SubId) {
        remove(&mut self.by_resource, k.tenant, k.resource, id);
        remove(
            &mut self.by_subscriber,
            k.tenant,
            &k.subscriber.to_owned(),
            id,
        );
        let key = (k.tenant.to_owned(), k.contact.to_owned());
        if let Some(n) = self.per_contact.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.per_contact.remove(&key);
            }
        }
        if let Some(n) = self.per_tenant.get_mut(k.tenant) {
            *n -= 1;
            if *n == 0 {
                self.per_tenant.remove(k.tenant);
            }
        }
    }

    pub(crate) fn watchers<'a>(
        &'a self,
        tenant: &str,
        resource: &Resource,
    ) -> impl Iterator<Item = SubId> + 'a {
        self.by_resource
            .get(tenant)
            .and_then(|m| m.get(resource))
            .into_iter()
            .flatten()
            .copied()
    }

    pub(crate) fn by_subscriber(&self, tenant: &str, ext: &str) -> Vec<SubId> {
        self.by_subscriber
            .get(tenant)
            .and_then(|m| m.get(ext))
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn in_tenant(&self, tenant: &str) -> Vec<SubId> {
        let mut ids: Vec<SubId> = self
            .by_resource
            .get(tenant)
            .into_iter()
            .flat_map(|m| m.values().flatten().copied())
            .collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn per_contact(&self, tenant: &str, contact: &str) -> usize {
        // One lookup without building a key String pair would need a
        // borrowed tuple; the allocation is fine next to a SUBSCRIBE.
        self.per_contact
            .get(&(tenant.to_owned(), contact.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn per_tenant(&self, tenant: &str) -> usize {
        self.per_tenant.get(tenant).copied().unwrap_or(0)
    }
}
