//! One park's recall as a pure state machine: a timer, then attempts to
//! ring someone. The engine owns one per park, feeds it deadlines and
//! failures, and turns its [`Action`]s into outputs.
//!
//! A policy is first resolved into a [`Plan`]: an ordered list of stages,
//! each a destination with a ring time and a number of tries. Every
//! `recall_to` mode is such a list, so one small machine serves them all,
//! and "once at the ring group, never back to the parker" holds by
//! construction: the stage index only grows.

use crate::error::PolicyError;
use crate::model::{Destination, ParkState, Party, RecallPolicy, RecallTo};

const MS: u64 = 1000;

/// A policy checked and resolved for one park.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    recall_after_ms: u64,
    retry_ms: u64,
    stages: Vec<Stage>,
    display: String,
}

/// One destination of a recall and how hard to try it.
#[derive(Debug, Clone)]
struct Stage {
    to: Destination,
    ring_for_s: u32,
    /// Attempts before moving on; a retry waits `retry_ms` first.
    tries: u32,
}

impl RecallPolicy {
    /// Checks the policy without parking anything: `Plan::new`'s rules,
    /// tested on their own.
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), PolicyError> {
        Plan::new(self, "", &Party::default()).map(drop)
    }
}

impl Plan {
    pub(crate) fn new(p: &RecallPolicy, parker: &str, parked: &Party) -> Result<Plan, PolicyError> {
        if !(1..=900).contains(&p.recall_time_s) {
            return Err(PolicyError::RecallTime(p.recall_time_s));
        }
        for (value, name) in [
            (p.ring_s, "ring_s"),
            (p.ring_group_wait_s, "ring_group_wait_s"),
            (p.ring_group_ring_s, "ring_group_ring_s"),
            (p.retry_interval_s, "retry_interval_s"),
            (p.max_recall_attempts, "max_recall_attempts"),
        ] {
            if value == 0 {
                return Err(PolicyError::Zero(name));
            }
        }
        let ring_group = || match &p.ring_group {
            Some(g) if !g.is_empty() => Ok(Destination::RingGroup(g.clone())),
            _ => Err(PolicyError::MissingRingGroup),
        };
        let parker = Destination::Extension(parker.to_owned());
        let retried = |to, ring_for_s| Stage {
            to,
            ring_for_s,
            tries: p.max_recall_attempts,
        };
        let mut stages = match &p.recall_to {
            RecallTo::ParkerOnly => vec![retried(parker, p.ring_s)],
            // The parker gets one alert of `ring_group_wait_s`; a failure or
            // the end of the wait moves on at once (BroadWorks: no revert).
            RecallTo::ParkerThenRingGroup => vec![
                Stage {
                    to: parker,
                    ring_for_s: p.ring_group_wait_s,
                    tries: 1,
                },
                retried(ring_group()?, p.ring_group_ring_s),
            ],
            RecallTo::RingGroupOnly => vec![retried(ring_group()?, p.ring_group_ring_s)],
            RecallTo::Number(n) if n.is_empty() => {
                return Err(PolicyError::EmptyNumber("recall_to"))
            }
            RecallTo::Number(n) => vec![retried(Destination::Number(n.clone()), p.ring_s)],
        };
        match &p.final_destination {
            Some(f) if f.is_empty() => return Err(PolicyError::EmptyNumber("final_destination")),
            // A last resort (operator, voicemail): rung once, so the parked
            // caller's wait stays bounded.
            Some(f) => stages.push(Stage {
                to: Destination::Number(f.clone()),
                ring_for_s: p.ring_s,
                tries: 1,
            }),
            None => {}
        }
        let who = if parked.name.is_empty() {
            &parked.number
        } else {
            &parked.name
        };
        let display = match (p.display_prefix.is_empty(), who.is_empty()) {
            (true, _) => who.clone(),
            (false, true) => p.display_prefix.clone(),
            (false, false) => format!("{} {}", p.display_prefix, who),
        };
        Ok(Plan {
            recall_after_ms: u64::from(p.recall_time_s) * MS,
            retry_ms: u64::from(p.retry_interval_s) * MS,
            stages,
            display,
        })
    }
}

/// Where in the plan an attempt is: stage index and try number (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    stage: usize,
    try_no: u32,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for the recall timer.
    Waiting,
    /// `attempt` rings; the deadline ends it.
    Ringing { attempt: u32, step: Step },
    /// `attempt` failed; the deadline starts the next try of the same stage.
    Pausing { attempt: u32, step: Step },
}

/// What the engine must do after a transition, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Ring {
        attempt: u32,
        to: Destination,
        ring_for_s: u32,
    },
    Cancel {
        attempt: u32,
    },
}

/// Whether the recall goes on after a transition.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    Alive,
    /// Nobody left to ring: the engine hangs the call up and ends the park.
    Exhausted,
}

/// One park's recall. It always has exactly one deadline.
#[derive(Debug, Clone)]
pub(crate) struct Recall {
    plan: Plan,
    phase: Phase,
    deadline: u64,
    /// The last attempt number handed out.
    attempts: u32,
}

impl Recall {
    pub(crate) fn new(plan: Plan, now_ms: u64) -> Recall {
        let deadline = now_ms.saturating_add(plan.recall_after_ms);
        Recall {
            plan,
            phase: Phase::Waiting,
            deadline,
            attempts: 0,
        }
    }

    pub(crate) fn deadline(&self) -> u64 {
        self.deadline
    }

    pub(crate) fn display(&self) -> &str {
        &self.plan.display
    }

    /// When the recall starts, while still waiting for it.
    pub(crate) fn recall_at(&self) -> Option<u64> {
        matches!(self.phase, Phase::Waiting).then_some(self.deadline)
    }

    /// The attempt ringing now, if any.
    pub(crate) fn ringing(&self) -> Option<u32> {
        match self.phase {
            Phase::Ringing { attempt, .. } => Some(attempt),
            _ => None,
        }
    }

    pub(crate) fn state(&self) -> ParkState {
        match self.phase {
            Phase::Waiting => ParkState::Parked,
            Phase::Ringing { attempt, step } | Phase::Pausing { attempt, step } => {
                // Only `ring` enters these phases, after finding the stage,
                // so the fallback is never used; it just avoids a panic path.
                ParkState::Recalling {
                    attempt,
                    to: self
                        .stage(step.stage)
                        .map_or(Destination::Number(String::new()), |s| s.to.clone()),
                }
            }
        }
    }

    /// The deadline passed (the engine calls this at or after it): start
    /// the recall, give up on the ringing attempt, or end a pause.
    pub(crate) fn on_deadline(&mut self, now_ms: u64, out: &mut Vec<Action>) -> Next {
        match self.phase {
            Phase::Waiting => self.ring(
                now_ms,
                Step {
                    stage: 0,
                    try_no: 1,
                },
                out,
            ),
            Phase::Ringing { attempt, step } => {
                out.push(Action::Cancel { attempt });
                self.after_failure(now_ms, attempt, step, out)
            }
            Phase::Pausing { step, .. } => self.ring(
                now_ms,
                Step {
                    try_no: step.try_no + 1,
                    ..step
                },
                out,
            ),
        }
    }

    /// The I/O layer reports that `attempt` failed. A stale attempt (not
    /// the one ringing) changes nothing and returns `None`.
    pub(crate) fn on_failed(
        &mut self,
        now_ms: u64,
        attempt: u32,
        out: &mut Vec<Action>,
    ) -> Option<Next> {
        match self.phase {
            Phase::Ringing { attempt: a, step } if a == attempt => {
                Some(self.after_failure(now_ms, a, step, out))
            }
            _ => None,
        }
    }

    fn after_failure(
        &mut self,
        now_ms: u64,
        attempt: u32,
        step: Step,
        out: &mut Vec<Action>,
    ) -> Next {
        let tries = self.stage(step.stage).map_or(0, |s| s.tries);
        if step.try_no < tries {
            self.phase = Phase::Pausing { attempt, step };
            self.deadline = now_ms.saturating_add(self.plan.retry_ms);
            return Next::Alive;
        }
        // The next stage starts at once: a pause belongs between tries of
        // the same destination, not between destinations.
        self.ring(
            now_ms,
            Step {
                stage: step.stage + 1,
                try_no: 1,
            },
            out,
        )
    }

    fn ring(&mut self, now_ms: u64, step: Step, out: &mut Vec<Action>) -> Next {
        let Some(stage) = self.plan.stages.get(step.stage) else {
            return Next::Exhausted;
        };
        self.attempts += 1;
        out.push(Action::Ring {
            attempt: self.attempts,
            to: stage.to.clone(),
            ring_for_s: stage.ring_for_s,
        });
        self.deadline = now_ms.saturating_add(u64::from(stage.ring_for_s) * MS);
        self.phase = Phase::Ringing {
            attempt: self.attempts,
            step,
        };
        Next::Alive
    }

    fn stage(&self, index: usize) -> Option<&Stage> {
        self.plan.stages.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(p: RecallPolicy) -> Plan {
        Plan::new(
            &p,
            "101",
            &Party {
                number: "106".into(),
                name: "Alice".into(),
            },
        )
        .expect("valid")
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |f: fn(&mut RecallPolicy)| {
            let mut p = RecallPolicy::default();
            f(&mut p);
            p.validate().unwrap_err()
        };
        assert_eq!(bad(|p| p.recall_time_s = 0), PolicyError::RecallTime(0));
        assert_eq!(bad(|p| p.recall_time_s = 901), PolicyError::RecallTime(901));
        assert_eq!(bad(|p| p.ring_s = 0), PolicyError::Zero("ring_s"));
        assert_eq!(
            bad(|p| p.max_recall_attempts = 0),
            PolicyError::Zero("max_recall_attempts")
        );
        assert_eq!(
            bad(|p| p.recall_to = RecallTo::RingGroupOnly),
            PolicyError::MissingRingGroup
        );
        assert_eq!(
            bad(|p| p.recall_to = RecallTo::Number(String::new())),
            PolicyError::EmptyNumber("recall_to")
        );
        assert_eq!(RecallPolicy::default().validate(), Ok(()));
        let edge = RecallPolicy {
            recall_time_s: 900,
            ..RecallPolicy::default()
        };
        assert_eq!(edge.validate(), Ok(()));
    }

    #[test]
    fn display_uses_name_then_number() {
        assert_eq!(plan(RecallPolicy::default()).display, "Recall: Alice");
        let p = Plan::new(
            &RecallPolicy::default(),
            "101",
            &Party {
                number: "106".into(),
                name: String::new(),
            },
        );
        assert_eq!(p.expect("valid").display, "Recall: 106");
        let bare = RecallPolicy {
            display_prefix: String::new(),
            ..RecallPolicy::default()
        };
        assert_eq!(plan(bare).display, "Alice");
    }

    #[test]
    fn stale_failure_changes_nothing() {
        let mut r = Recall::new(plan(RecallPolicy::default()), 0);
        let mut out = Vec::new();
        assert_eq!(r.on_failed(45_000, 1, &mut out), None, "not ringing yet");
        assert_eq!(r.on_deadline(45_000, &mut out), Next::Alive);
        assert_eq!(r.on_failed(45_000, 2, &mut out), None, "wrong attempt");
        assert_eq!(r.ringing(), Some(1));
        assert_eq!(r.deadline(), 65_000);
    }
}
