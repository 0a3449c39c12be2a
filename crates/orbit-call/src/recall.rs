//! Ringing a recall attempt. The park engine says when an attempt starts,
//! where it rings and when it gives up; this file rings the phones on the
//! parked call's empty side and reports back what became of them.
//!
//! A ring group is rung the way it is configured: all members at once, or
//! (sequential) one member after another for the group's `ring_time_s`
//! each, within the engine's limit for the attempt. When every member has
//! been tried the attempt has failed, and the engine decides what follows
//! (another attempt, the final destination, or hanging up).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use orbit_media::Negotiated;
use orbit_park::{Destination, RecallFailure};
use orbit_store::{RingStrategy, Tenant};

use crate::call::{other, CallKey, LegKey, RecallRing};
use crate::hunt::Shown;
use crate::manager::{Manager, Timer};
use crate::park::RECALL_ALERT_INFO;

/// Who a recall attempt rings: `first` now, then each of `rest` in turn
/// for `step` (a sequential ring group); `rest` is empty otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecallPlan {
    pub first: Vec<String>,
    pub rest: VecDeque<String>,
    pub step: Option<Duration>,
}

/// The plan for a destination: an extension alone, or a ring group of the
/// tenant by its own strategy.
pub(crate) fn plan(group: Option<&orbit_store::RingGroup>, number: &str) -> RecallPlan {
    match group {
        Some(g) if g.strategy == RingStrategy::Sequential && !g.members.is_empty() => {
            let mut rest: VecDeque<String> = g.members.iter().cloned().collect();
            let first = rest.pop_front().into_iter().collect();
            RecallPlan {
                first,
                rest,
                step: Some(Duration::from_secs(u64::from(g.ring_time_s.max(1)))),
            }
        }
        Some(g) => RecallPlan {
            first: g.members.clone(),
            rest: VecDeque::new(),
            step: None,
        },
        None => RecallPlan {
            first: vec![number.to_string()],
            rest: VecDeque::new(),
            step: None,
        },
    }
}

impl Manager {
    /// Ring one recall attempt on the parked call's empty side.
    pub(crate) async fn ring_recall(
        &mut self,
        park: u64,
        ck: CallKey,
        attempt: u32,
        to: Destination,
        display: String,
    ) {
        let Some(call) = self.calls.get(&ck) else {
            let now = self.park_now();
            self.park
                .engine
                .recall_failed(now, park, attempt, RecallFailure::Unreachable);
            return;
        };
        let Some(side) = call.parked.as_ref().map(|p| p.side) else {
            return;
        };
        let parked_party = call
            .leg_on(other(side))
            .and_then(|l| self.legs.get(&l))
            .map(|l| l.party.clone())
            .unwrap_or_else(|| call.caller.clone());
        let plan = self.recall_plan(&call.tenant.clone(), &to);
        let shown = Shown {
            party: parked_party,
            display: Some(display),
            alert_info: Some(RECALL_ALERT_INFO.to_string()),
        };
        self.cancel_recall_forks(ck).await;
        if let Some(p) = self.calls.get_mut(&ck).and_then(|c| c.parked.as_mut()) {
            p.recall = Some(RecallRing {
                attempt,
                forks: Vec::new(),
                busy: false,
                rest: plan.rest,
                step: plan.step,
                step_seq: 0,
                shown: shown.clone(),
            });
        }
        let forks = self.ring(ck, &plan.first, side, &shown).await;
        if !forks.is_empty() {
            self.recall_rang(ck, forks);
        } else if !self.ring_next_member(ck).await {
            self.recall_attempt_failed(ck);
        }
    }

    fn recall_plan(&self, tenant: &Tenant, to: &Destination) -> RecallPlan {
        let n = match to {
            Destination::Extension(n) | Destination::RingGroup(n) | Destination::Number(n) => n,
        };
        let d = self.store.directory();
        plan(d.ring_group(&tenant.id, n).as_deref(), n)
    }

    /// The recall attempt ringing for call `ck`, if any.
    fn recall_ring_mut(&mut self, ck: CallKey) -> Option<&mut RecallRing> {
        self.calls
            .get_mut(&ck)
            .and_then(|c| c.parked.as_mut())
            .and_then(|p| p.recall.as_mut())
    }

    /// Phones now ring for the call's recall: note them, and for a
    /// sequential group arm the step timer.
    fn recall_rang(&mut self, ck: CallKey, forks: Vec<LegKey>) {
        let Some(ring) = self.recall_ring_mut(ck) else {
            return;
        };
        ring.forks.extend(forks);
        ring.step_seq += 1;
        let (step, seq) = (ring.step, ring.step_seq);
        if let Some(step) = step {
            self.arm(Instant::now() + step, Timer::RecallStep(ck, seq));
        }
        self.touch_parties(ck);
    }

    /// Ring the next member of a sequential recall that rings anywhere.
    /// False when none is left.
    async fn ring_next_member(&mut self, ck: CallKey) -> bool {
        loop {
            let Some(p) = self.calls.get_mut(&ck).and_then(|c| c.parked.as_mut()) else {
                return false;
            };
            let side = p.side;
            let Some(ring) = p.recall.as_mut() else {
                return false;
            };
            let Some(next) = ring.rest.pop_front() else {
                return false;
            };
            let shown = ring.shown.clone();
            let forks = self.ring(ck, &[next], side, &shown).await;
            if !forks.is_empty() {
                self.recall_rang(ck, forks);
                return true;
            }
        }
    }

    /// A sequential recall's member rang its time: on to the next.
    pub(crate) async fn on_recall_step(&mut self, ck: CallKey, seq: u64) {
        let ring = self.recall_ring_mut(ck).filter(|r| r.step_seq == seq);
        let Some(ring) = ring else {
            return;
        };
        let ringing = std::mem::take(&mut ring.forks);
        for f in ringing {
            self.cancel_leg(f).await;
        }
        if !self.ring_next_member(ck).await {
            self.recall_attempt_failed(ck);
        }
    }

    /// Cancel whatever rings for the call's recall (a retrieve won, the
    /// engine gave up on the attempt, or a new attempt begins).
    pub(crate) async fn cancel_recall_forks(&mut self, ck: CallKey) {
        let ring = self
            .calls
            .get_mut(&ck)
            .and_then(|c| c.parked.as_mut())
            .and_then(|p| p.recall.take());
        if let Some(ring) = ring {
            for f in ring.forks {
                self.cancel_leg(f).await;
            }
        }
    }

    /// Whether `key` rings for a recall of call `ck`.
    pub(crate) fn is_recall_fork(&self, ck: CallKey, key: LegKey) -> bool {
        self.calls
            .get(&ck)
            .and_then(|c| c.parked.as_ref())
            .and_then(|p| p.recall.as_ref())
            .is_some_and(|r| r.forks.contains(&key))
    }

    /// A recalled phone answered on `key`: the engine says whether it wins.
    pub(crate) async fn recall_answered(&mut self, ck: CallKey, key: LegKey, neg: Negotiated) {
        let Some(p) = self.calls.get(&ck).and_then(|c| c.parked.clone()) else {
            return self.hang_up_leg(key).await;
        };
        let Some(ring) = p.recall.clone() else {
            return self.hang_up_leg(key).await;
        };
        let by = self
            .legs
            .get(&key)
            .map(|l| l.party.number.clone())
            .unwrap_or_default();
        let now = self.park_now();
        if !self
            .park
            .engine
            .recall_answered(now, p.id, ring.attempt, &by)
        {
            return self.hang_up_leg(key).await;
        }
        let others: Vec<LegKey> = ring.forks.iter().copied().filter(|f| *f != key).collect();
        self.take_parked_side(ck, key, neg, &others, format!("recalled to {by}"))
            .await;
    }

    /// A recalled phone failed. When nothing of the attempt rings any more
    /// the next member of a sequential group is tried, and when none is
    /// left the engine decides what comes next.
    pub(crate) async fn recall_fork_failed(&mut self, ck: CallKey, key: LegKey, busy: bool) {
        let Some(ring) = self.recall_ring_mut(ck) else {
            return;
        };
        ring.forks.retain(|f| *f != key);
        ring.busy |= busy;
        if !ring.forks.is_empty() {
            return;
        }
        if !self.ring_next_member(ck).await {
            self.recall_attempt_failed(ck);
        }
    }

    /// Nothing of the attempt rings and nobody is left to try.
    fn recall_attempt_failed(&mut self, ck: CallKey) {
        let Some(p) = self.calls.get_mut(&ck).and_then(|c| c.parked.as_mut()) else {
            return;
        };
        let id = p.id;
        let Some(ring) = p.recall.take() else {
            return;
        };
        let why = if ring.busy {
            RecallFailure::Busy
        } else if ring.step_seq == 0 {
            RecallFailure::Unreachable
        } else {
            RecallFailure::NoAnswer
        };
        let now = self.park_now();
        self.park.engine.recall_failed(now, id, ring.attempt, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbit_store::RingGroup;

    fn group(strategy: RingStrategy) -> RingGroup {
        RingGroup {
            tenant_id: "t".into(),
            number: "600".into(),
            name: "Front".into(),
            members: vec!["101".into(), "102".into(), "103".into()],
            strategy,
            ring_time_s: 15,
            no_answer_destination: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn an_extension_rings_alone() {
        let p = plan(None, "101");
        assert_eq!(p.first, ["101"]);
        assert!(p.rest.is_empty() && p.step.is_none());
    }

    #[test]
    fn ring_all_rings_every_member_at_once() {
        let p = plan(Some(&group(RingStrategy::RingAll)), "600");
        assert_eq!(p.first, ["101", "102", "103"]);
        assert!(p.rest.is_empty() && p.step.is_none());
    }

    #[test]
    fn sequential_rings_members_in_order_for_the_group_time_each() {
        let p = plan(Some(&group(RingStrategy::Sequential)), "600");
        assert_eq!(p.first, ["101"]);
        assert_eq!(p.rest, ["102", "103"]);
        assert_eq!(p.step, Some(Duration::from_secs(15)));
    }
}
