//! The engine's lookup structures, so no operation walks every park:
//! parks by tenant and extension, and a short memory of taken parks.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::model::ParkId;

/// Parks by tenant, then extension. Ids are handed out in increasing
/// order, so a `BTreeSet` of ids is the arrival order for free.
#[derive(Debug, Default)]
pub(crate) struct ByExtension {
    tenants: HashMap<String, HashMap<String, BTreeSet<ParkId>>>,
}

impl ByExtension {
    pub(crate) fn insert(&mut self, tenant: &str, ext: &str, id: ParkId) {
        self.tenants
            .entry(tenant.to_owned())
            .or_default()
            .entry(ext.to_owned())
            .or_default()
            .insert(id);
    }

    /// Removes `id`, dropping emptied entries so memory follows the parks.
    pub(crate) fn remove(&mut self, tenant: &str, ext: &str, id: ParkId) {
        let Some(exts) = self.tenants.get_mut(tenant) else {
            return;
        };
        if let Some(ids) = exts.get_mut(ext) {
            ids.remove(&id);
            if ids.is_empty() {
                exts.remove(ext);
            }
        }
        if exts.is_empty() {
            self.tenants.remove(tenant);
        }
    }

    /// The parks on `ext`, oldest first.
    pub(crate) fn on(&self, tenant: &str, ext: &str) -> impl Iterator<Item = ParkId> + '_ {
        self.tenants
            .get(tenant)
            .and_then(|exts| exts.get(ext))
            .into_iter()
            .flatten()
            .copied()
    }

    pub(crate) fn count(&self, tenant: &str, ext: &str) -> usize {
        self.tenants
            .get(tenant)
            .and_then(|exts| exts.get(ext))
            .map_or(0, BTreeSet::len)
    }

    /// All parks of `tenant` in arrival order (which is also arrival order
    /// per extension).
    pub(crate) fn in_tenant(&self, tenant: &str) -> Vec<ParkId> {
        let mut ids: Vec<ParkId> = self
            .tenants
            .get(tenant)
            .into_iter()
            .flat_map(|e| e.values().flatten())
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// Parks recently taken by a retriever or a recall answer, so that the
/// loser of a race hears "already retrieved" rather than "not found".
/// Bounded: after `cap` later takes, an old park is merely not found.
#[derive(Debug)]
pub(crate) struct Taken {
    tenant_of: HashMap<ParkId, String>,
    order: VecDeque<ParkId>,
    cap: usize,
}

impl Taken {
    pub(crate) fn new(cap: usize) -> Self {
        Taken {
            tenant_of: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    pub(crate) fn record(&mut self, id: ParkId, tenant: &str) {
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.tenant_of.remove(&old);
            }
        }
        self.order.push_back(id);
        self.tenant_of.insert(id, tenant.to_owned());
    }

    /// Only for the same tenant: another tenant must not learn that the id
    /// ever existed.
    pub(crate) fn contains(&self, id: ParkId, tenant: &str) -> bool {
        self.tenant_of.get(&id).is_some_and(|t| t == tenant)
    }
}

/// The extensions whose list changed during one engine call, each once,
/// in the order they first changed.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    order: Vec<(String, String)>,
    seen: HashSet<(String, String)>,
}

impl Changes {
    pub(crate) fn mark(&mut self, tenant: &str, ext: &str) {
        let key = (tenant.to_owned(), ext.to_owned());
        if self.seen.insert(key.clone()) {
            self.order.push(key);
        }
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (String, String)> + '_ {
        self.seen.clear();
        self.order.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emptied_entries_are_dropped() {
        let mut idx = ByExtension::default();
        idx.insert("t", "101", 2);
        idx.insert("t", "101", 1);
        assert_eq!(idx.on("t", "101").collect::<Vec<_>>(), [1, 2]);
        idx.remove("t", "101", 1);
        idx.remove("t", "101", 2);
        assert!(idx.tenants.is_empty());
    }

    #[test]
    fn taken_is_bounded_and_tenant_scoped() {
        let mut taken = Taken::new(2);
        taken.record(1, "a");
        taken.record(2, "a");
        taken.record(3, "b");
        assert!(!taken.contains(1, "a"), "forgotten beyond the bound");
        assert!(taken.contains(2, "a"));
        assert!(!taken.contains(3, "a"));
        assert_eq!(taken.tenant_of.len(), 2);
    }
}
