//! Random sequences of subscribe, refresh, change, time and removals,
//! checked against the table's promises.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::{req, Sim};
use crate::{Limits, Refused, Resource, SubId, SubState};

const TENANTS: [&str; 2] = ["acme", "globex"];
const EXTS: [&str; 2] = ["101", "102"];
const WINDOW: u64 = 50;

fn resource(i: usize) -> Resource {
    match i {
        0 => Resource::Extension("103".into()),
        1 => Resource::Park("103".into()),
        _ => Resource::ParkGroup("front".into()),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe {
        t: usize,
        ext: usize,
        contact: usize,
        r: usize,
        expires: u32,
    },
    Refresh {
        pick: usize,
        expires: u32,
    },
    Changed {
        t: usize,
        r: usize,
    },
    Advance {
        ms: u64,
    },
    RemoveTenant {
        t: usize,
    },
    RemoveSubscriber {
        t: usize,
        ext: usize,
    },
    RemoveResource {
        t: usize,
        r: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let expires = prop::sample::select(vec![0u32, 30, 60, 61, 120, 5_000]);
    prop_oneof![
        4 => (0..2usize, 0..2usize, 0..3usize, 0..3usize, expires.clone()).prop_map(
            |(t, ext, contact, r, expires)| Op::Subscribe { t, ext, contact, r, expires }
        ),
        2 => (any::<usize>(), expires).prop_map(|(pick, expires)| Op::Refresh { pick, expires }),
        5 => (0..2usize, 0..3usize).prop_map(|(t, r)| Op::Changed { t, r }),
        4 => prop_oneof![0..120u64, 0..130_000u64].prop_map(|ms| Op::Advance { ms }),
        1 => (0..2usize).prop_map(|t| Op::RemoveTenant { t }),
        1 => (0..2usize, 0..2usize).prop_map(|(t, ext)| Op::RemoveSubscriber { t, ext }),
        1 => (0..2usize, 0..3usize).prop_map(|(t, r)| Op::RemoveResource { t, r }),
    ]
}

/// What was observed, checked as each NOTIFY is polled.
#[derive(Default)]
struct Check {
    tenant: HashMap<SubId, String>,
    contact: HashMap<SubId, (String, String)>,
    last_version: HashMap<SubId, u32>,
    terminated: HashSet<SubId>,
    /// `(subscription, latest time a NOTIFY must be polled)`.
    owed: Vec<(SubId, u64)>,
    seen: usize,
}

impl Check {
    fn observe(&mut self, sim: &Sim) -> Result<(), TestCaseError> {
        for (at, n) in &sim.log[self.seen..] {
            prop_assert_eq!(
                Some(&n.tenant),
                self.tenant.get(&n.id),
                "tenant of {}",
                n.id
            );
            prop_assert!(
                !self.terminated.contains(&n.id),
                "NOTIFY after terminated: {:?}",
                n
            );
            match self.last_version.insert(n.id, n.version) {
                Some(v) => prop_assert!(n.version > v, "version {} after {}", n.version, v),
                None => prop_assert_eq!(n.version, 0),
            }
            if let SubState::Terminated { .. } = n.state {
                self.terminated.insert(n.id);
            }
            for &(id, by) in &self.owed {
                prop_assert!(
                    id != n.id || *at <= by,
                    "{} notified at {} > {}",
                    id,
                    at,
                    by
                );
            }
            self.owed.retain(|&(id, _)| id != n.id);
        }
        self.seen = sim.log.len();
        for &(id, by) in &self.owed {
            prop_assert!(
                by >= sim.now,
                "{} owed a NOTIFY by {}, now {}",
                id,
                by,
                sim.now
            );
        }
        let live = self.tenant.len() - self.terminated.len();
        prop_assert_eq!(sim.subs.len(), live);
        let mut per_contact: HashMap<&(String, String), usize> = HashMap::new();
        for (id, key) in &self.contact {
            if !self.terminated.contains(id) {
                *per_contact.entry(key).or_default() += 1;
            }
        }
        prop_assert!(per_contact.values().all(|&n| n <= 3));
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(Limits {
        max_per_contact: 3,
        max_per_tenant: 5,
        coalesce_ms: WINDOW,
        notify_burst: 3,
        ..Limits::default()
    });
    let mut check = Check::default();
    let mut ids: Vec<SubId> = Vec::new();
    for op in ops {
        let now = sim.now;
        match op {
            Op::Subscribe {
                t,
                ext,
                contact,
                r,
                expires,
            } => {
                let mut rq = req(TENANTS[t], &format!("c{contact}"), resource(r), expires);
                rq.subscriber = EXTS[ext].into();
                match sim.subs.subscribe(now, rq) {
                    Ok(id) => {
                        check.tenant.insert(id, TENANTS[t].into());
                        check
                            .contact
                            .insert(id, (TENANTS[t].into(), format!("c{contact}")));
                        ids.push(id);
                    }
                    Err(Refused::TooBrief { min_s }) => {
                        prop_assert!(expires > 0 && expires < min_s)
                    }
                    Err(e) => {
                        prop_assert_eq!(e.status() / 100, if e.status() == 503 { 5 } else { 4 })
                    }
                }
            }
            Op::Refresh { pick, expires } if !ids.is_empty() => {
                let id = ids[pick % ids.len()];
                match sim.subs.refresh(now, id, expires) {
                    Ok(granted) => prop_assert!(granted == 0 || (60..=3600).contains(&granted)),
                    Err(Refused::NoSuchSubscription) => {
                        prop_assert!(check.terminated.contains(&id))
                    }
                    Err(e) => prop_assert_eq!(e, Refused::TooBrief { min_s: 60 }),
                }
            }
            Op::Refresh { .. } => {}
            Op::Changed { t, r } => {
                let watchers: Vec<SubId> = sim.subs.watchers(TENANTS[t], &resource(r)).collect();
                for id in &watchers {
                    prop_assert_eq!(check.tenant.get(id).map(String::as_str), Some(TENANTS[t]));
                    check.owed.push((*id, now + WINDOW));
                }
                sim.subs.changed(now, TENANTS[t], &resource(r));
                let outs = sim.drain();
                prop_assert!(
                    outs.iter().all(|n| n.tenant == TENANTS[t]),
                    "other tenant notified"
                );
            }
            Op::Advance { ms } => {
                sim.run_to(now + ms);
            }
            Op::RemoveTenant { t } => sim.subs.remove_tenant(TENANTS[t]),
            Op::RemoveSubscriber { t, ext } => sim.subs.remove_subscriber(TENANTS[t], EXTS[ext]),
            Op::RemoveResource { t, r } => sim.subs.remove_resource(TENANTS[t], &resource(r)),
        }
        sim.drain();
        check.observe(&sim)?;
    }
    // The end: whatever is left ends when its time is up.
    sim.run_to(sim.now + 3_601_000);
    check.observe(&sim)?;
    prop_assert!(sim.subs.is_empty());
    prop_assert_eq!(sim.subs.next_deadline(), None);
    prop_assert!(check.owed.is_empty());
    let ended: HashSet<SubId> = check.tenant.keys().copied().collect();
    prop_assert_eq!(
        &check.terminated,
        &ended,
        "every subscription ends exactly once"
    );
    let terminal_count = sim
        .log
        .iter()
        .filter(|(_, n)| matches!(n.state, SubState::Terminated { .. }))
        .count();
    prop_assert_eq!(terminal_count, ended.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn random_sequences_keep_the_promises(ops in prop::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
