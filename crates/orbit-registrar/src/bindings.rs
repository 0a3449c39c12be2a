//! The location table: contacts bound to each extension, with the RFC 3261
//! §10.3 rules for adding, refreshing and removing them. Pure: time is
//! passed in and changes come back as store operations to write through.

use std::collections::HashMap;

use orbit_sip::uri::{parse_uri, SipUri};
use orbit_store::{Binding, BindingOp};

/// One Contact of a REGISTER, already validated.
#[derive(Debug, Clone)]
pub struct ContactUpdate {
    pub uri: SipUri,
    /// Header parameters other than `expires`, as text (`;q=0.5;...`).
    pub params: String,
    /// Seconds; 0 removes.
    pub expires_s: u32,
}

/// Facts about the REGISTER that every binding it makes records.
#[derive(Debug, Clone)]
pub struct RegisterMeta {
    pub call_id: String,
    pub cseq: u32,
    pub source: String,
    pub transport: String,
    pub user_agent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyError {
    /// Same Call-ID with a CSeq not above the stored one (RFC 3261 §10.3 step 7).
    OutOfOrder,
}

/// Two contacts are the same binding when scheme, user, host, port and
/// transport agree (RFC 3261 §19.1.4, reduced to what phones vary).
pub fn same_contact(a: &SipUri, b: &SipUri) -> bool {
    let transport = |u: &SipUri| u.param("transport").flatten().map(str::to_ascii_lowercase);
    a.scheme == b.scheme
        && a.user == b.user
        && a.host == b.host
        && a.port == b.port
        && transport(a) == transport(b)
}

#[derive(Debug, Default)]
pub struct Location {
    map: HashMap<(String, String), Vec<Binding>>,
    /// Expiry last written to the store, per (tenant, extension, contact).
    /// A refresh that changes nothing but the expiry is written only once
    /// the stored expiry covers less than half of the new interval: after a
    /// restart the binding then still outlives the phone's next refresh,
    /// and a phone refreshing every minute does not cost a write a minute.
    persisted: HashMap<(String, String, String), i64>,
}

impl Location {
    pub fn load(bindings: Vec<Binding>) -> Location {
        let mut loc = Location::default();
        for b in bindings {
            loc.persisted.insert(
                (b.tenant_id.clone(), b.extension.clone(), b.contact.clone()),
                b.expires_at,
            );
            loc.map
                .entry((b.tenant_id.clone(), b.extension.clone()))
                .or_default()
                .push(b);
        }
        loc
    }

    pub fn get(&self, tenant_id: &str, extension: &str) -> &[Binding] {
        self.map
            .get(&(tenant_id.to_string(), extension.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Every binding of a tenant, ordered by extension then contact.
    pub fn for_tenant(&self, tenant_id: &str) -> Vec<Binding> {
        let mut v: Vec<Binding> = self
            .map
            .iter()
            .filter(|((t, _), _)| t == tenant_id)
            .flat_map(|(_, list)| list.iter().cloned())
            .collect();
        v.sort_by(|a, b| (&a.extension, &a.contact).cmp(&(&b.extension, &b.contact)));
        v
    }

    pub fn count(&self) -> usize {
        self.map.values().map(Vec::len).sum()
    }

    /// Apply one REGISTER's contacts. All or nothing: on error nothing changes.
    pub fn apply(
        &mut self,
        tenant_id: &str,
        extension: &str,
        updates: &[ContactUpdate],
        meta: &RegisterMeta,
        now_ms: i64,
        max_contacts: usize,
    ) -> Result<Vec<BindingOp>, ApplyError> {
        let key = (tenant_id.to_string(), extension.to_string());
        let mut list = self.map.get(&key).cloned().unwrap_or_default();
        list.retain(|b| b.expires_at > now_ms);
        let mut ops = Vec::new();
        for u in updates {
            let existing = list.iter().position(|b| {
                parse_uri(&b.contact)
                    .map(|c| same_contact(&c, &u.uri))
                    .unwrap_or(false)
            });
            if let Some(i) = existing {
                if list[i].call_id == meta.call_id && list[i].cseq >= meta.cseq as i64 {
                    return Err(ApplyError::OutOfOrder);
                }
            }
            if u.expires_s == 0 {
                if let Some(i) = existing {
                    let old = list.remove(i);
                    ops.push(BindingOp::Remove {
                        tenant_id: old.tenant_id,
                        extension: old.extension,
                        contact: old.contact,
                    });
                }
                continue;
            }
            let binding = Binding {
                tenant_id: tenant_id.to_string(),
                extension: extension.to_string(),
                contact: u.uri.raw.clone(),
                contact_params: u.params.clone(),
                expires_at: now_ms + u.expires_s as i64 * 1000,
                call_id: meta.call_id.clone(),
                cseq: meta.cseq as i64,
                source: meta.source.clone(),
                transport: meta.transport.clone(),
                user_agent: meta.user_agent.clone(),
                registered_at: existing.map(|i| list[i].registered_at).unwrap_or(now_ms),
            };
            // Call-ID and CSeq are not part of this: the stored copies only
            // order requests across a restart, and a refresh with a newer
            // Call-ID is accepted whatever the stored one says.
            let unchanged = existing.is_some_and(|i| {
                let old = &list[i];
                old.contact == binding.contact
                    && old.contact_params == binding.contact_params
                    && old.source == binding.source
                    && old.user_agent == binding.user_agent
            });
            let pkey = (
                binding.tenant_id.clone(),
                binding.extension.clone(),
                binding.contact.clone(),
            );
            let stored = self.persisted.get(&pkey).copied().unwrap_or(i64::MIN);
            let covered = stored.saturating_sub(now_ms) >= (binding.expires_at - now_ms) / 2;
            match existing {
                Some(i) => {
                    if list[i].contact != binding.contact {
                        ops.push(BindingOp::Remove {
                            tenant_id: list[i].tenant_id.clone(),
                            extension: list[i].extension.clone(),
                            contact: list[i].contact.clone(),
                        });
                    }
                    list[i] = binding.clone();
                }
                None => list.push(binding.clone()),
            }
            if !(unchanged && covered) {
                self.persisted.insert(pkey, binding.expires_at);
                ops.push(BindingOp::Upsert(binding));
            }
        }
        // Over the bound, contacts this request did not touch make room,
        // the one closest to expiry first: a phone that rebooted leaves a
        // stale binding behind more often than a rogue device pushes out a
        // live one, and the request's own contacts are never the ones to go.
        while list.len() > max_contacts {
            let touched = |b: &Binding| updates.iter().any(|u| u.uri.raw == b.contact);
            let Some(victim) = list
                .iter()
                .enumerate()
                .filter(|(_, b)| !touched(b))
                .min_by_key(|(_, b)| b.expires_at)
                .map(|(i, _)| i)
            else {
                break;
            };
            let old = list.remove(victim);
            ops.push(BindingOp::Remove {
                tenant_id: old.tenant_id,
                extension: old.extension,
                contact: old.contact,
            });
        }
        for op in &ops {
            if let BindingOp::Remove {
                tenant_id,
                extension,
                contact,
            } = op
            {
                self.persisted
                    .remove(&(tenant_id.clone(), extension.clone(), contact.clone()));
            }
        }
        if list.is_empty() {
            self.map.remove(&key);
        } else {
            self.map.insert(key, list);
        }
        Ok(ops)
    }

    /// Remove every binding of an extension (`Contact: *`).
    pub fn remove_all(&mut self, tenant_id: &str, extension: &str) -> Vec<BindingOp> {
        self.persisted
            .retain(|(t, e, _), _| !(t == tenant_id && e == extension));
        self.map
            .remove(&(tenant_id.to_string(), extension.to_string()))
            .unwrap_or_default()
            .into_iter()
            .map(|b| BindingOp::Remove {
                tenant_id: b.tenant_id,
                extension: b.extension,
                contact: b.contact,
            })
            .collect()
    }

    /// Drop expired bindings; returns how many went.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let before = self.count();
        self.persisted.retain(|_, at| *at > now_ms);
        self.map.retain(|_, list| {
            list.retain(|b| b.expires_at > now_ms);
            !list.is_empty()
        });
        before - self.count()
    }

    /// Every binding, and the persisted expiries reset to match: used to
    /// rewrite the store wholesale after a failed write.
    pub fn resync(&mut self) -> Vec<Binding> {
        let all: Vec<Binding> = self.map.values().flatten().cloned().collect();
        self.persisted = all
            .iter()
            .map(|b| {
                (
                    (b.tenant_id.clone(), b.extension.clone(), b.contact.clone()),
                    b.expires_at,
                )
            })
            .collect();
        all
    }

    /// Drop bindings of extensions that no longer exist (a deletion whose
    /// event was missed, or that raced with a REGISTER).
    pub fn retain_extensions(&mut self, exists: impl Fn(&str, &str) -> bool) -> usize {
        let before = self.count();
        self.map.retain(|(t, e), _| exists(t, e));
        self.persisted.retain(|(t, e, _), _| exists(t, e));
        before - self.count()
    }

    pub fn forget_tenant(&mut self, tenant_id: &str) {
        self.persisted.retain(|(t, _, _), _| t != tenant_id);
        self.map.retain(|(t, _), _| t != tenant_id);
    }

    pub fn forget_extension(&mut self, tenant_id: &str, extension: &str) {
        self.persisted
            .retain(|(t, e, _), _| !(t == tenant_id && e == extension));
        self.map
            .remove(&(tenant_id.to_string(), extension.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd(uri: &str, expires_s: u32) -> ContactUpdate {
        ContactUpdate {
            uri: parse_uri(uri).unwrap(),
            params: String::new(),
            expires_s,
        }
    }

    fn meta(call_id: &str, cseq: u32) -> RegisterMeta {
        RegisterMeta {
            call_id: call_id.into(),
            cseq,
            source: "udp:192.0.2.1:5060".into(),
            transport: "udp".into(),
            user_agent: "ua".into(),
        }
    }

    #[test]
    fn add_refresh_remove() {
        let mut loc = Location::default();
        let ops = loc
            .apply(
                "t",
                "101",
                &[upd("sip:101@192.0.2.1:5060", 60)],
                &meta("c", 1),
                0,
                5,
            )
            .unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(loc.get("t", "101")[0].expires_at, 60_000);
        // Refresh with the same Call-ID needs a higher CSeq.
        assert_eq!(
            loc.apply(
                "t",
                "101",
                &[upd("sip:101@192.0.2.1:5060", 60)],
                &meta("c", 1),
                1000,
                5
            ),
            Err(ApplyError::OutOfOrder)
        );
        loc.apply(
            "t",
            "101",
            &[upd("sip:101@192.0.2.1:5060", 120)],
            &meta("c", 2),
            1000,
            5,
        )
        .unwrap();
        assert_eq!(loc.get("t", "101").len(), 1);
        assert_eq!(loc.get("t", "101")[0].expires_at, 121_000);
        assert_eq!(loc.get("t", "101")[0].registered_at, 0);
        loc.apply(
            "t",
            "101",
            &[upd("sip:101@192.0.2.1:5060", 0)],
            &meta("c", 3),
            2000,
            5,
        )
        .unwrap();
        assert!(loc.get("t", "101").is_empty());
    }

    #[test]
    fn plain_refreshes_are_written_only_when_the_stored_expiry_runs_short() {
        let mut loc = Location::default();
        let c = [upd("sip:101@192.0.2.1", 3600)];
        assert_eq!(
            loc.apply("t", "101", &c, &meta("c", 1), 0, 5)
                .unwrap()
                .len(),
            1
        );
        // A minute later the stored expiry still covers more than half.
        assert!(loc
            .apply("t", "101", &c, &meta("c", 2), 60_000, 5)
            .unwrap()
            .is_empty());
        assert_eq!(loc.get("t", "101")[0].expires_at, 3_660_000);
        // Half an hour later it no longer does.
        assert_eq!(
            loc.apply("t", "101", &c, &meta("c", 3), 1_900_000, 5)
                .unwrap()
                .len(),
            1
        );
        // Nor is a refresh with a new Call-ID when nothing else changed.
        assert!(loc
            .apply("t", "101", &c, &meta("d", 1), 1_900_000, 5)
            .unwrap()
            .is_empty());
        // A change of source is always written.
        let mut moved = meta("c", 4);
        moved.source = "udp:192.0.2.2:5060".into();
        assert_eq!(
            loc.apply("t", "101", &c, &moved, 1_900_001, 5)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn bound_evicts_the_stalest() {
        let mut loc = Location::default();
        for i in 0..3u32 {
            let c = format!("sip:101@192.0.2.{i}");
            loc.apply(
                "t",
                "101",
                &[upd(&c, 60 + i)],
                &meta(&format!("c{i}"), 1),
                0,
                2,
            )
            .unwrap();
        }
        let left: Vec<_> = loc
            .get("t", "101")
            .iter()
            .map(|b| b.contact.clone())
            .collect();
        assert_eq!(left, vec!["sip:101@192.0.2.1", "sip:101@192.0.2.2"]);
    }

    #[test]
    fn a_new_contact_with_a_short_expiry_is_not_its_own_victim() {
        let mut loc = Location::default();
        for i in 0..2u32 {
            let c = format!("sip:101@192.0.2.{i}");
            loc.apply(
                "t",
                "101",
                &[upd(&c, 3600)],
                &meta(&format!("c{i}"), 1),
                0,
                2,
            )
            .unwrap();
        }
        loc.apply(
            "t",
            "101",
            &[upd("sip:101@192.0.2.9", 600)],
            &meta("n", 1),
            1000,
            2,
        )
        .unwrap();
        let left: Vec<_> = loc
            .get("t", "101")
            .iter()
            .map(|b| b.contact.clone())
            .collect();
        assert!(left.contains(&"sip:101@192.0.2.9".to_string()), "{left:?}");
        assert_eq!(left.len(), 2);
    }

    #[test]
    fn expiry_and_tenant_isolation() {
        let mut loc = Location::default();
        loc.apply(
            "a",
            "101",
            &[upd("sip:101@192.0.2.1", 10)],
            &meta("x", 1),
            0,
            5,
        )
        .unwrap();
        loc.apply(
            "b",
            "101",
            &[upd("sip:101@192.0.2.1", 100)],
            &meta("x", 1),
            0,
            5,
        )
        .unwrap();
        assert_eq!(loc.get("a", "101").len(), 1);
        assert_eq!(loc.expire(10_000), 1);
        assert!(loc.get("a", "101").is_empty());
        assert_eq!(loc.get("b", "101").len(), 1);
        loc.forget_tenant("b");
        assert_eq!(loc.count(), 0);
    }
}
