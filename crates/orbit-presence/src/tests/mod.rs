//! Tests: golden bodies, and the subscription table driven through a
//! [`Sim`] in fake time (as quinn-proto's tests drive a `Pair`).

mod bodies;
mod prop;
mod table;

use crate::{Limits, Notify, Resource, SubId, SubscribeRequest, Subscriptions};

pub(crate) const A: &str = "acme";
pub(crate) const B: &str = "globex";

/// A table, a fake clock and everything polled so far, with its time.
pub(crate) struct Sim {
    pub subs: Subscriptions<u32>,
    pub now: u64,
    pub log: Vec<(u64, Notify)>,
}

pub(crate) fn park(ext: &str) -> Resource {
    Resource::Park(ext.into())
}

pub(crate) fn req(
    tenant: &str,
    contact: &str,
    resource: Resource,
    expires_s: u32,
) -> SubscribeRequest<u32> {
    SubscribeRequest {
        tenant: tenant.into(),
        subscriber: "101".into(),
        contact: contact.into(),
        resource,
        expires_s,
        dialog: 7,
    }
}

impl Sim {
    pub fn new(limits: Limits) -> Sim {
        Sim {
            subs: Subscriptions::new(limits),
            now: 0,
            log: Vec::new(),
        }
    }

    pub fn subscribe(&mut self, r: SubscribeRequest<u32>) -> SubId {
        let id = self.subs.subscribe(self.now, r).expect("subscribed");
        self.drain();
        id
    }

    /// Moves the clock to `t`, stopping at every deadline on the way.
    pub fn run_to(&mut self, t: u64) -> Vec<Notify> {
        assert!(t >= self.now, "time goes forward");
        let mut outs = Vec::new();
        while let Some(d) = self.subs.next_deadline().filter(|&d| d <= t) {
            self.now = self.now.max(d);
            self.subs.tick(self.now);
            outs.extend(self.drain());
        }
        self.now = t;
        self.subs.tick(t);
        outs.extend(self.drain());
        outs
    }

    pub fn drain(&mut self) -> Vec<Notify> {
        let mut outs = Vec::new();
        while let Some(n) = self.subs.poll() {
            assert!(
                self.subs.get(n.id).is_some(),
                "polled subscription readable"
            );
            self.log.push((self.now, n.clone()));
            outs.push(n);
        }
        outs
    }
}
