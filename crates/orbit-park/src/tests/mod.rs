//! Simulations of the engine in fake time: each test drives a [`Sim`] and
//! checks the exact outputs, as quinn-proto's tests drive a `Pair`.

mod abandon;
mod park;
mod recall;
mod retrieve;
mod scale;

use std::collections::HashSet;

use crate::{
    CallRef, Destination, Engine, EventKind, Output, ParkError, ParkEvent, ParkId, ParkRequest,
    Party, RecallPolicy, Target,
};

pub(crate) const T: &str = "acme";

/// An engine, a fake clock and a directory in which every extension is
/// available unless listed in `away`.
pub(crate) struct Sim {
    pub engine: Engine,
    pub now: u64,
    pub away: HashSet<String>,
}

pub(crate) fn alice() -> Party {
    Party {
        number: "106".into(),
        name: "Alice".into(),
    }
}

pub(crate) fn group(members: &[&str]) -> Target {
    Target::Group {
        name: "front".into(),
        members: members.iter().map(|m| m.to_string()).collect(),
    }
}

impl Sim {
    pub fn new(max_per_ext: usize) -> Sim {
        Sim {
            engine: Engine::new(max_per_ext),
            now: 0,
            away: HashSet::new(),
        }
    }

    pub fn request(&self, call: CallRef, target: Target, policy: RecallPolicy) -> ParkRequest {
        ParkRequest {
            tenant: T.into(),
            call,
            parker: "101".into(),
            parked: alice(),
            target,
            policy,
        }
    }

    pub fn park_req(&mut self, req: ParkRequest) -> Result<ParkId, ParkError> {
        let away = self.away.clone();
        let dir = move |_: &str, ext: &str| !away.contains(ext);
        self.engine.park(self.now, req, &dir)
    }

    pub fn park(
        &mut self,
        call: CallRef,
        target: Target,
        policy: RecallPolicy,
    ) -> Result<ParkId, ParkError> {
        let req = self.request(call, target, policy);
        self.park_req(req)
    }

    /// Parks on `ext` with the default policy and drains the outputs.
    pub fn park_on(&mut self, call: CallRef, ext: &str) -> ParkId {
        let id = self
            .park(call, Target::Extension(ext.into()), RecallPolicy::default())
            .expect("parked");
        self.drain();
        id
    }

    /// Moves the clock to `t` and ticks.
    pub fn at(&mut self, t: u64) -> Vec<Output> {
        assert!(t >= self.now, "time goes forward");
        self.now = t;
        self.engine.tick(t);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.engine.poll()).collect()
    }
}

/// The event kinds among `outs`, in order.
pub(crate) fn kinds(outs: &[Output]) -> Vec<EventKind> {
    events(outs).into_iter().map(|e| e.kind).collect()
}

pub(crate) fn events(outs: &[Output]) -> Vec<ParkEvent> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// `(attempt, destination, ring_for_s)` of each `Ring` among `outs`.
pub(crate) fn rings(outs: &[Output]) -> Vec<(u32, Destination, u32)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Ring {
                attempt,
                to,
                ring_for_s,
                ..
            } => Some((*attempt, to.clone(), *ring_for_s)),
            _ => None,
        })
        .collect()
}

pub(crate) fn changed(ext: &str) -> Output {
    Output::Changed {
        tenant: T.into(),
        ext: ext.into(),
    }
}

pub(crate) fn ext(e: &str) -> Destination {
    Destination::Extension(e.into())
}

/// The `Ring` a park of tenant [`T`] with the default display prefix and
/// [`alice`] as the parked party produces.
pub(crate) fn ring(
    park: ParkId,
    call: CallRef,
    attempt: u32,
    to: Destination,
    ring_for_s: u32,
) -> Output {
    Output::Ring {
        park,
        tenant: T.into(),
        call,
        attempt,
        to,
        display: "Recall: Alice".into(),
        ring_for_s,
    }
}
