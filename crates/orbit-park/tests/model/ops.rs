//! The operations of the property test, each with the model's prediction
//! of its result.

use orbit_park::*;

use super::{Driver, Model, Phase};
use crate::{Op, Policy, What, BOUND, EXTS, TENANTS};

impl Driver {
    pub fn step(&mut self, op: Op) {
        match op {
            Op::Park {
                tenant,
                call,
                parker,
                target,
                policy,
            } => self.park(tenant, call, parker, target, policy),
            Op::Retrieve {
                tenant,
                by,
                what,
                twice,
            } => {
                let what = match what {
                    What::Oldest(e) => Retrieve::Oldest {
                        ext: EXTS[e].into(),
                    },
                    What::Seen(k) if !self.parks.is_empty() => Retrieve::Id(
                        *self
                            .parks
                            .keys()
                            .nth(k % self.parks.len())
                            .expect("in range"),
                    ),
                    What::Seen(_) => Retrieve::Id(1),
                    What::Unknown(id) => Retrieve::Id(1_000 + id),
                };
                for round in 0..1 + usize::from(twice) {
                    self.retrieve(tenant, EXTS[(by + round) % EXTS.len()], what.clone());
                }
            }
            Op::Abandon(call) => {
                let target = self
                    .parks
                    .iter()
                    .find(|(_, p)| p.alive && p.call == call)
                    .map(|(id, _)| *id);
                let ((), outs, before) = self.run(|e, now| e.abandon(now, call));
                self.absorb(&outs, before);
                match target {
                    Some(id) => assert_eq!(self.parks[&id].ending, Some("abandoned")),
                    None => assert_eq!(outs, []),
                }
            }
            Op::Answer { leg, stale } => {
                let Some((id, attempt)) = self.pick_leg(leg, stale) else {
                    return;
                };
                let live = self.parks[&id].alive && self.parks[&id].live == Some(attempt);
                let (won, outs, before) =
                    self.run(|e, now| e.recall_answered(now, id, attempt, "199"));
                assert_eq!(
                    won, live,
                    "an answer wins exactly when its attempt is the one ringing"
                );
                if won {
                    let p = self.parks.get_mut(&id).expect("known");
                    p.live = None;
                    p.handed += 1;
                }
                self.absorb(&outs, before);
                if won {
                    assert_eq!(self.parks[&id].ending, Some("recall_answered"));
                } else {
                    assert_eq!(outs, []);
                }
            }
            Op::Fail { leg, stale, why } => {
                let Some((id, attempt)) = self.pick_leg(leg, stale) else {
                    return;
                };
                let why = [
                    RecallFailure::Busy,
                    RecallFailure::NoAnswer,
                    RecallFailure::Unreachable,
                ][usize::from(why)];
                let now = self.now;
                let p = self.parks.get_mut(&id).expect("known");
                let live = p.alive && p.live == Some(attempt);
                if live {
                    p.live = None;
                    p.phase = Phase::Pausing {
                        until: now + u64::from(p.policy.retry_s) * 1000,
                    };
                }
                let ((), outs, before) = self.run(|e, now| e.recall_failed(now, id, attempt, why));
                self.absorb(&outs, before);
                if !live {
                    assert_eq!(outs, [], "stale failures are ignored");
                }
            }
            Op::Available(t, e, true) => {
                self.up.insert((t, e));
            }
            Op::Available(t, e, false) => {
                self.up.remove(&(t, e));
            }
            Op::Advance(ms) => {
                self.now += ms;
                let ((), outs, before) = self.run(|e, now| e.tick(now));
                self.absorb(&outs, before);
            }
            Op::ToDeadline => {
                self.jump_to_deadline();
            }
        }
    }

    fn park(
        &mut self,
        tenant: usize,
        call: CallRef,
        parker: usize,
        target: Result<usize, Vec<usize>>,
        policy: Policy,
    ) {
        let free =
            |d: &Driver, m: usize| d.up.contains(&(tenant, m)) && d.on_ext(tenant, m).is_empty();
        let expected = if self.parks.values().any(|p| p.alive && p.call == call) {
            Err(ParkError::AlreadyParked)
        } else {
            match &target {
                Ok(e) if self.on_ext(tenant, *e).len() >= BOUND => Err(ParkError::ExtensionFull),
                Ok(e) => Ok(*e),
                Err(members) => members
                    .iter()
                    .copied()
                    .find(|&m| free(self, m))
                    .ok_or(ParkError::NoMemberAvailable),
            }
        };
        let up = self.up.clone();
        let index = |list: &[&str], s: &str| list.iter().position(|x| *x == s);
        let dir = move |t: &str, e: &str| match (index(&TENANTS, t), index(&EXTS, e)) {
            (Some(t), Some(e)) => up.contains(&(t, e)),
            _ => false,
        };
        let req = ParkRequest {
            tenant: TENANTS[tenant].into(),
            call,
            parker: EXTS[parker].into(),
            parked: Party {
                number: "106".into(),
                name: "Alice".into(),
            },
            target: match target {
                Ok(e) => Target::Extension(EXTS[e].into()),
                Err(members) => Target::Group {
                    name: "g".into(),
                    members: members.iter().map(|&m| EXTS[m].into()).collect(),
                },
            },
            policy: policy.build(),
        };
        let (result, outs, before) = self.run(|e, now| e.park(now, req, &dir));
        match (result, expected) {
            (Ok(id), Ok(ext)) => {
                assert!(self.parks.keys().all(|old| *old < id), "ids only grow");
                let recall_at = self.now + u64::from(policy.recall_s) * 1000;
                let model = Model {
                    tenant,
                    ext,
                    call,
                    parker: EXTS[parker].into(),
                    policy,
                    recall_at,
                    phase: Phase::Waiting,
                    alive: true,
                    ending: None,
                    handed: 0,
                    live: None,
                    last_attempt: 0,
                    reached_group: false,
                    reached_final: false,
                    hung_up: false,
                };
                self.parks.insert(id, model);
            }
            (Err(got), Err(want)) => assert_eq!(got, want),
            (got, want) => panic!("park gave {got:?}, the model expected {want:?}"),
        }
        self.absorb(&outs, before);
    }

    fn retrieve(&mut self, tenant: usize, by: &str, what: Retrieve) {
        let expected = match &what {
            Retrieve::Oldest { ext } => {
                let e = EXTS.iter().position(|x| x == ext).expect("known ext");
                self.on_ext(tenant, e)
                    .first()
                    .copied()
                    .ok_or(RetrieveError::NotFound)
            }
            Retrieve::Id(id) => match self.parks.get(id) {
                Some(p) if p.tenant == tenant && p.alive => Ok(*id),
                Some(p) if p.tenant == tenant && p.handed > 0 => {
                    Err(RetrieveError::AlreadyRetrieved)
                }
                _ => Err(RetrieveError::NotFound),
            },
        };
        let (result, outs, before) = self.run(|e, now| e.retrieve(now, TENANTS[tenant], by, what));
        assert_eq!(result.clone().map(|r| r.park), expected, "retrieve by {by}");
        if let Ok(got) = &result {
            let p = self.parks.get_mut(&got.park).expect("known");
            assert_eq!((got.call, got.parked_on.as_str()), (p.call, EXTS[p.ext]));
            p.handed += 1;
        }
        self.absorb(&outs, before);
        if let Ok(got) = result {
            assert_eq!(self.parks[&got.park].ending, Some("retrieved"));
        }
    }
}
