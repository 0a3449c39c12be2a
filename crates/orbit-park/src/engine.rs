//! The park engine: every park of a process, their recalls and deadlines.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::error::{ParkError, RetrieveError};
use crate::index::{ByExtension, Changes, Taken};
use crate::model::{
    CallRef, Directory, ParkId, ParkRequest, ParkedInfo, RecallFailure, Retrieve, Retrieved, Target,
};
use crate::output::{EndReason, EventKind, Output, ParkEvent};
use crate::recall::{Action, Next, Plan, Recall};
use crate::record::Park;

/// How many taken parks are remembered for "already retrieved" answers.
const TAKEN_MEMORY: usize = 4096;

/// All parked calls of a process, as a state machine without I/O.
///
/// Methods by kind:
/// - commands: [`park`](Self::park), [`retrieve`](Self::retrieve),
///   [`abandon`](Self::abandon), [`recall_answered`](Self::recall_answered),
///   [`recall_failed`](Self::recall_failed);
/// - time: [`tick`](Self::tick) fires what is due, [`next_deadline`](Self::next_deadline)
///   says when to call it next (the driver arms one timer and re-arms it
///   after every call, since any command may move the deadline);
/// - [`poll`](Self::poll) drains the outputs; call it after every command
///   or tick, before anything else is fed in, so outputs are acted on in
///   the order they were decided;
/// - queries: [`parked`](Self::parked), [`parked_on`](Self::parked_on).
///
/// `now_ms` is any monotonic millisecond clock; it must not go backwards.
#[derive(Debug)]
pub struct Engine {
    max_per_ext: usize,
    next_id: ParkId,
    parks: HashMap<ParkId, Park>,
    by_call: HashMap<CallRef, ParkId>,
    by_ext: ByExtension,
    /// Exactly one entry per park: `(its recall's deadline, id)`.
    deadlines: BTreeSet<(u64, ParkId)>,
    taken: Taken,
    out: VecDeque<Output>,
    /// Extensions whose list changed in the current engine call.
    changed: Changes,
}

impl Engine {
    /// An empty engine allowing `max_parked_per_extension` calls on one
    /// extension (at least 1: a bound of 0 would refuse every park).
    pub fn new(max_parked_per_extension: usize) -> Self {
        Engine {
            max_per_ext: max_parked_per_extension.max(1),
            next_id: 1,
            parks: HashMap::new(),
            by_call: HashMap::new(),
            by_ext: ByExtension::default(),
            deadlines: BTreeSet::new(),
            taken: Taken::new(TAKEN_MEMORY),
            out: VecDeque::new(),
            changed: Changes::default(),
        }
    }

    /// Parks `req.call`. A group target parks on the first member, in the
    /// given order, that is available in `dir` and holds no parked call.
    /// On failure the parker keeps the call; a `ParkFailed` event says why.
    pub fn park(
        &mut self,
        now_ms: u64,
        req: ParkRequest,
        dir: &dyn Directory,
    ) -> Result<ParkId, ParkError> {
        let decided = self.decide(&req, dir);
        let (ext, plan) = match decided {
            Ok(ok) => ok,
            Err(reason) => {
                let parked_on = match req.target {
                    Target::Extension(ext) => Some(ext),
                    Target::Group { .. } => None,
                };
                self.out.push_back(Output::Event(ParkEvent {
                    at_ms: now_ms,
                    tenant: req.tenant,
                    park: None,
                    parked_on,
                    call: Some(req.call),
                    parker: Some(req.parker),
                    parked: Some(req.parked),
                    kind: EventKind::ParkFailed {
                        reason: reason.clone(),
                    },
                }));
                return Err(reason);
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        let park = Park {
            tenant: req.tenant,
            call: req.call,
            parker: req.parker,
            parked: req.parked,
            parked_on: ext,
            parked_at_ms: now_ms,
            recall: Recall::new(plan, now_ms),
        };
        self.by_call.insert(park.call, id);
        self.by_ext.insert(&park.tenant, &park.parked_on, id);
        self.deadlines.insert((park.recall.deadline(), id));
        self.out
            .push_back(park.event(id, now_ms, EventKind::Parked));
        self.mark_changed(&park.tenant, &park.parked_on);
        self.parks.insert(id, park);
        self.flush_changed();
        Ok(id)
    }

    fn decide(&self, req: &ParkRequest, dir: &dyn Directory) -> Result<(String, Plan), ParkError> {
        if self.by_call.contains_key(&req.call) {
            return Err(ParkError::AlreadyParked);
        }
        let plan = Plan::new(&req.policy, &req.parker, &req.parked)?;
        let ext = match &req.target {
            Target::Extension(ext) if self.by_ext.count(&req.tenant, ext) >= self.max_per_ext => {
                return Err(ParkError::ExtensionFull)
            }
            Target::Extension(ext) => ext.clone(),
            Target::Group { members, .. } => members
                .iter()
                .find(|m| self.by_ext.count(&req.tenant, m) == 0 && dir.available(&req.tenant, m))
                .cloned()
                .ok_or(ParkError::NoMemberAvailable)?,
        };
        Ok((ext, plan))
    }

    /// Hands a parked call of `tenant` to `by`. The park ends at once, so
    /// of two retrievers exactly one wins; a retrieve during a recall wins
    /// over it and cancels the ringing attempt. Another tenant's park is
    /// `NotFound`, never revealed.
    pub fn retrieve(
        &mut self,
        now_ms: u64,
        tenant: &str,
        by: &str,
        what: Retrieve,
    ) -> Result<Retrieved, RetrieveError> {
        let found = match &what {
            Retrieve::Oldest { ext } => self.by_ext.on(tenant, ext).next(),
            Retrieve::Id(id) => self
                .parks
                .get(id)
                .filter(|p| p.tenant == tenant)
                .map(|_| *id),
        };
        let Some((id, park)) = found.and_then(|id| self.end(id)) else {
            let (park, parked_on, reason) = match what {
                Retrieve::Id(id) if self.taken.contains(id, tenant) => {
                    (Some(id), None, RetrieveError::AlreadyRetrieved)
                }
                Retrieve::Id(id) => (Some(id), None, RetrieveError::NotFound),
                Retrieve::Oldest { ext } => (None, Some(ext), RetrieveError::NotFound),
            };
            self.out.push_back(Output::Event(ParkEvent {
                at_ms: now_ms,
                tenant: tenant.to_owned(),
                park,
                parked_on,
                call: None,
                parker: None,
                parked: None,
                kind: EventKind::RetrieveFailed {
                    by: by.to_owned(),
                    reason: reason.clone(),
                },
            }));
            return Err(reason);
        };
        self.cancel_ringing(id, &park);
        self.taken.record(id, &park.tenant);
        self.out
            .push_back(park.event(id, now_ms, EventKind::Retrieved { by: by.to_owned() }));
        self.flush_changed();
        Ok(Retrieved {
            park: id,
            call: park.call,
            parked: park.parked,
            parked_on: park.parked_on,
            parker: park.parker,
        })
    }

    /// The parked caller hung up (at any stage): the park ends and any
    /// ringing recall attempt is cancelled. Unknown calls are ignored, so
    /// the call layer may report every hang-up.
    pub fn abandon(&mut self, now_ms: u64, call: CallRef) {
        let Some(id) = self.by_call.get(&call).copied() else {
            return;
        };
        let Some((id, park)) = self.end(id) else {
            return;
        };
        self.cancel_ringing(id, &park);
        self.out
            .push_back(park.event(id, now_ms, EventKind::Abandoned));
        self.flush_changed();
    }

    /// `by` answered recall `attempt`. True: the park has ended, bridge the
    /// leg to the parked call. False: too late (retrieved, abandoned, the
    /// attempt was cancelled or is not the current one); hang the leg up.
    pub fn recall_answered(&mut self, now_ms: u64, park: ParkId, attempt: u32, by: &str) -> bool {
        let current = self.parks.get(&park).and_then(|p| p.recall.ringing());
        if current != Some(attempt) {
            return false;
        }
        let Some((id, ended)) = self.end(park) else {
            return false;
        };
        self.taken.record(id, &ended.tenant);
        self.out.push_back(ended.event(
            id,
            now_ms,
            EventKind::RecallAnswered { by: by.to_owned() },
        ));
        self.flush_changed();
        true
    }

    /// Recall `attempt` ended unanswered on the I/O side. The engine moves
    /// on (retry, next stage or hang-up) without a `CancelRecall`, since
    /// that leg is over already. Stale attempts are ignored.
    pub fn recall_failed(&mut self, now_ms: u64, park: ParkId, attempt: u32, why: RecallFailure) {
        // Busy, no answer and unreachable all lead to the same next step;
        // `why` is for the driver's logs and for future policies.
        let _ = why;
        let Some(p) = self.parks.get_mut(&park) else {
            return;
        };
        let before = p.recall.deadline();
        let mut actions = Vec::new();
        let Some(next) = p.recall.on_failed(now_ms, attempt, &mut actions) else {
            return;
        };
        self.deadlines.remove(&(before, park));
        self.apply(now_ms, park, actions, next);
        self.flush_changed();
    }

    /// Fires every deadline `<= now_ms`, earliest first. Each fired
    /// transition is timed from `now_ms`, so a late tick delays what
    /// follows instead of cutting a ring short.
    pub fn tick(&mut self, now_ms: u64) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now_ms {
                break;
            }
            self.deadlines.pop_first();
            let Some(p) = self.parks.get_mut(&id) else {
                continue;
            };
            let mut actions = Vec::new();
            let next = p.recall.on_deadline(now_ms, &mut actions);
            self.apply(now_ms, id, actions, next);
        }
        self.flush_changed();
    }

    /// When [`tick`](Self::tick) next has work; `None` with nothing parked.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// The next output, in the order decided.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The tenant's parked calls in arrival order.
    pub fn parked(&self, tenant: &str) -> Vec<ParkedInfo> {
        self.infos(self.by_ext.in_tenant(tenant))
    }

    /// The calls parked on `ext`, oldest first.
    pub fn parked_on(&self, tenant: &str, ext: &str) -> Vec<ParkedInfo> {
        self.infos(self.by_ext.on(tenant, ext))
    }

    /// How many calls are parked on `ext` (without listing them).
    pub fn count_on(&self, tenant: &str, ext: &str) -> usize {
        self.by_ext.count(tenant, ext)
    }

    /// How many calls are parked, all tenants together.
    pub fn len(&self) -> usize {
        self.parks.len()
    }

    /// Whether nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.parks.is_empty()
    }

    fn infos(&self, ids: impl IntoIterator<Item = ParkId>) -> Vec<ParkedInfo> {
        ids.into_iter()
            .filter_map(|id| self.parks.get(&id).map(|p| p.info(id)))
            .collect()
    }

    /// Routes a recall's actions after its deadline was taken out of the
    /// set, then puts the new deadline in or ends the park.
    fn apply(&mut self, now_ms: u64, id: ParkId, actions: Vec<Action>, next: Next) {
        let Some(p) = self.parks.get(&id) else { return };
        let mut outputs = Vec::with_capacity(actions.len() * 2);
        let mut rang = false;
        for action in actions {
            match action {
                Action::Cancel { attempt } => {
                    outputs.push(Output::CancelRecall { park: id, attempt })
                }
                Action::Ring {
                    attempt,
                    to,
                    ring_for_s,
                } => {
                    rang = true;
                    outputs.push(p.event(
                        id,
                        now_ms,
                        EventKind::RecallStarted {
                            attempt,
                            to: to.clone(),
                        },
                    ));
                    outputs.push(Output::Ring {
                        park: id,
                        tenant: p.tenant.clone(),
                        call: p.call,
                        attempt,
                        to,
                        display: p.recall.display().to_owned(),
                        ring_for_s,
                    });
                }
            }
        }
        // A new attempt is the only change a recall makes to what
        // `parked_on` shows (state and attempt), hence the only `Changed`.
        let (tenant, ext) = (p.tenant.clone(), p.parked_on.clone());
        let deadline = p.recall.deadline();
        self.out.extend(outputs);
        if rang {
            self.mark_changed(&tenant, &ext);
        }
        match next {
            Next::Alive => {
                self.deadlines.insert((deadline, id));
            }
            Next::Exhausted => {
                if let Some((id, park)) = self.end(id) {
                    self.out.push_back(Output::HangUp {
                        park: id,
                        call: park.call,
                    });
                    let kind = EventKind::Ended {
                        reason: EndReason::RecallExhausted,
                    };
                    self.out.push_back(park.event(id, now_ms, kind));
                }
            }
        }
    }

    /// Takes a park out of every index; the caller emits its end.
    fn end(&mut self, id: ParkId) -> Option<(ParkId, Park)> {
        let park = self.parks.remove(&id)?;
        self.by_call.remove(&park.call);
        self.by_ext.remove(&park.tenant, &park.parked_on, id);
        self.deadlines.remove(&(park.recall.deadline(), id));
        self.mark_changed(&park.tenant, &park.parked_on);
        Some((id, park))
    }

    fn cancel_ringing(&mut self, id: ParkId, park: &Park) {
        if let Some(attempt) = park.recall.ringing() {
            self.out
                .push_back(Output::CancelRecall { park: id, attempt });
        }
    }

    fn mark_changed(&mut self, tenant: &str, ext: &str) {
        self.changed.mark(tenant, ext);
    }

    fn flush_changed(&mut self) {
        let changed = self
            .changed
            .drain()
            .map(|(tenant, ext)| Output::Changed { tenant, ext });
        self.out.extend(changed);
    }
}
