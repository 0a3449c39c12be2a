//! The model the property test checks the engine against: what each park
//! must be doing, derived from the engine's outputs alone, and the checks
//! run after every engine call. The operations are in `ops.rs`.

mod ops;

use std::collections::{BTreeMap, HashMap, HashSet};

use orbit_park::*;

use crate::{Policy, EXTS, TENANTS};

/// Where the model believes a park's recall is, from the outputs alone.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Waiting,
    Ringing { until: u64 },
    Pausing { until: u64 },
}

#[derive(Debug)]
pub struct Model {
    tenant: usize,
    ext: usize,
    call: CallRef,
    parker: String,
    policy: Policy,
    recall_at: u64,
    phase: Phase,
    pub alive: bool,
    pub ending: Option<&'static str>,
    pub handed: u32,
    pub live: Option<u32>,
    last_attempt: u32,
    reached_group: bool,
    reached_final: bool,
    hung_up: bool,
}

impl Model {
    fn deadline(&self) -> u64 {
        match self.phase {
            Phase::Waiting => self.recall_at,
            Phase::Ringing { until } | Phase::Pausing { until } => until,
        }
    }
}

type Lists = HashMap<(usize, usize), Vec<ParkedInfo>>;

pub struct Driver {
    pub engine: Engine,
    now: u64,
    up: HashSet<(usize, usize)>,
    pub parks: BTreeMap<ParkId, Model>,
    legs: Vec<(ParkId, u32)>,
}

impl Driver {
    /// An engine with `bound` calls per extension; `up[t * EXTS.len() + e]`
    /// says whether extension `e` of tenant `t` starts available.
    pub fn new(bound: usize, up: Vec<bool>) -> Driver {
        let up = up
            .into_iter()
            .enumerate()
            .filter(|(_, on)| *on)
            .map(|(i, _)| (i / EXTS.len(), i % EXTS.len()));
        Driver {
            engine: Engine::new(bound),
            now: 0,
            up: up.collect(),
            parks: BTreeMap::new(),
            legs: Vec::new(),
        }
    }

    fn lists(&self) -> Lists {
        let mut lists = HashMap::new();
        for (t, tenant) in TENANTS.iter().enumerate() {
            for (e, ext) in EXTS.iter().enumerate() {
                lists.insert((t, e), self.engine.parked_on(tenant, ext));
            }
        }
        lists
    }

    fn run<R>(&mut self, f: impl FnOnce(&mut Engine, u64) -> R) -> (R, Vec<Output>, Lists) {
        let before = self.lists();
        let r = f(&mut self.engine, self.now);
        let outs = std::iter::from_fn(|| self.engine.poll()).collect();
        (r, outs, before)
    }

    fn on_ext(&self, tenant: usize, ext: usize) -> Vec<ParkId> {
        self.parks
            .iter()
            .filter(|(_, p)| p.alive && p.tenant == tenant && p.ext == ext)
            .map(|(id, _)| *id)
            .collect()
    }

    /// A ringing leg, or with `stale` (or none ringing) any leg ever rung.
    fn pick_leg(&self, k: usize, stale: bool) -> Option<(ParkId, u32)> {
        let ringing: Vec<(ParkId, u32)> = self
            .parks
            .iter()
            .filter_map(|(id, p)| p.live.map(|a| (*id, a)))
            .collect();
        let pool = if stale || ringing.is_empty() {
            &self.legs
        } else {
            &ringing
        };
        pool.get(k % pool.len().max(1)).copied()
    }

    /// Jumps to the next deadline and ticks; false when there is none.
    pub fn jump_to_deadline(&mut self) -> bool {
        let Some(at) = self.engine.next_deadline() else {
            return false;
        };
        self.now = at;
        let ((), outs, before) = self.run(|e, now| e.tick(now));
        assert!(!outs.is_empty(), "every deadline has work");
        self.absorb(&outs, before);
        true
    }

    /// Checks one engine call's outputs against the model and updates it,
    /// then checks the engine's lists and deadline.
    fn absorb(&mut self, outs: &[Output], before: Lists) {
        let now = self.now;
        let mut changed = HashSet::new();
        for out in outs {
            match out {
                Output::Event(e) => self.event(e),
                Output::Ring {
                    park,
                    tenant,
                    call,
                    attempt,
                    to,
                    display,
                    ring_for_s,
                } => {
                    let p = self.parks.get_mut(park).expect("ring for a known park");
                    assert!(
                        p.alive && p.live.is_none(),
                        "one attempt at a time, only while parked"
                    );
                    assert!(*attempt > p.last_attempt, "attempt numbers grow");
                    assert!(!p.reached_final, "the final destination is rung once");
                    assert_eq!(
                        (tenant.as_str(), *call, display.as_str()),
                        (TENANTS[p.tenant], p.call, "Recall: Alice")
                    );
                    let pol = &p.policy;
                    let want_s = match to {
                        Destination::Extension(e) => {
                            assert!(
                                pol.to <= 1 && !p.reached_group && *e == p.parker,
                                "never back to the parker"
                            );
                            if pol.to == 1 {
                                pol.wait_s
                            } else {
                                pol.ring_s
                            }
                        }
                        Destination::RingGroup(g) => {
                            assert!(matches!(pol.to, 1 | 2) && g == "600");
                            p.reached_group = true;
                            pol.rg_ring_s
                        }
                        Destination::Number(n) => {
                            assert!((n == "300" && pol.to == 3) || (n == "200" && pol.last_resort));
                            p.reached_final |= n == "200";
                            pol.ring_s
                        }
                    };
                    assert_eq!(*ring_for_s, want_s);
                    p.live = Some(*attempt);
                    p.last_attempt = *attempt;
                    p.phase = Phase::Ringing {
                        until: now + u64::from(want_s) * 1000,
                    };
                    self.legs.push((*park, *attempt));
                }
                Output::CancelRecall { park, attempt } => {
                    let p = self.parks.get_mut(park).expect("known park");
                    assert_eq!(
                        p.live,
                        Some(*attempt),
                        "cancel only a ringing attempt, once"
                    );
                    p.live = None;
                    p.phase = Phase::Pausing {
                        until: now + u64::from(p.policy.retry_s) * 1000,
                    };
                }
                Output::HangUp { park, call } => {
                    let p = self.parks.get_mut(park).expect("known park");
                    assert!(p.alive && p.call == *call && p.live.is_none());
                    p.hung_up = true;
                }
                Output::Changed { tenant, ext } => {
                    assert!(
                        changed.insert((tenant.clone(), ext.clone())),
                        "one Changed per extension per call"
                    );
                }
            }
        }
        let after = self.lists();
        let differ: HashSet<(String, String)> = after
            .iter()
            .filter(|(k, list)| before.get(k) != Some(list))
            .map(|((t, e), _)| (TENANTS[*t].to_owned(), EXTS[*e].to_owned()))
            .collect();
        assert_eq!(
            changed, differ,
            "Changed exactly for the lists that changed"
        );
        for (t, name) in TENANTS.iter().enumerate() {
            let listed = self.engine.parked(name);
            let alive: Vec<(&ParkId, &Model)> = self
                .parks
                .iter()
                .filter(|(_, p)| p.alive && p.tenant == t)
                .collect();
            assert_eq!(
                listed.iter().map(|i| i.id).collect::<Vec<_>>(),
                alive.iter().map(|(id, _)| **id).collect::<Vec<_>>()
            );
            for (info, (_, p)) in listed.iter().zip(alive) {
                let waiting = matches!(p.phase, Phase::Waiting);
                assert_eq!((info.parked_on.as_str(), info.call), (EXTS[p.ext], p.call));
                assert_eq!(info.recall_at_ms, waiting.then_some(p.recall_at));
                assert_eq!(info.state == ParkState::Parked, waiting);
            }
        }
        let expected = self
            .parks
            .values()
            .filter(|p| p.alive)
            .map(Model::deadline)
            .min();
        assert_eq!(
            self.engine.next_deadline(),
            expected,
            "deadlines at exact times"
        );
        assert!(
            expected.is_none_or(|d| d > now),
            "nothing due is left behind"
        );
    }

    fn event(&mut self, e: &ParkEvent) {
        assert_eq!(e.at_ms, self.now);
        let Some(id) = e.park else { return };
        let Some(p) = self.parks.get_mut(&id) else {
            return;
        };
        if p.tenant
            != TENANTS
                .iter()
                .position(|t| *t == e.tenant)
                .expect("known tenant")
        {
            assert!(
                e.call.is_none() && e.parked_on.is_none(),
                "nothing revealed across tenants"
            );
            return;
        }
        match &e.kind {
            EventKind::RecallStarted { .. } => {
                assert!(
                    p.alive && self.now >= p.recall_at,
                    "no recall before its time"
                );
            }
            kind if kind.is_terminal() => {
                assert!(p.alive && p.ending.is_none(), "a park ends exactly once");
                assert!(
                    p.live.is_none(),
                    "a ringing attempt is cancelled or answered first"
                );
                assert_eq!(matches!(kind, EventKind::Ended { .. }), p.hung_up);
                assert_eq!(e.call, Some(p.call));
                p.alive = false;
                p.ending = Some(kind.name());
            }
            _ => {}
        }
    }
}
