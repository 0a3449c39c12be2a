//! The subscription table: every SUBSCRIBE dialog of a process, their
//! expiry, versions and coalesced NOTIFYs.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::error::{Bound, Refused};
use crate::index::{Index, Keys};
use crate::model::{
    Limits, Notify, Resource, SavedSubscription, SubId, SubState, SubscribeRequest, TermReason,
};
use crate::subscription::Subscription;

/// All subscriptions of a process, as a state machine without I/O.
///
/// Methods by kind:
/// - commands: [`subscribe`](Self::subscribe), [`refresh`](Self::refresh),
///   [`changed`](Self::changed), [`remove_tenant`](Self::remove_tenant),
///   [`remove_subscriber`](Self::remove_subscriber),
///   [`remove_resource`](Self::remove_resource), [`forget`](Self::forget),
///   [`restore`](Self::restore);
/// - time: [`tick`](Self::tick) fires expiries and coalesced NOTIFYs that
///   are due, [`next_deadline`](Self::next_deadline) says when to call it
///   next (re-arm after every call);
/// - [`poll`](Self::poll) drains the NOTIFYs to send, in order. Call it
///   after every command or tick and handle each NOTIFY (render its body
///   from the resource's state *now*) before polling the next: the body
///   rendered at poll time is what makes "the latest state wins" true, and
///   a terminal NOTIFY's subscription stays readable only until the next
///   poll;
/// - queries: [`get`](Self::get), [`watchers`](Self::watchers),
///   [`len`](Self::len), [`saved`](Self::saved).
///
/// `now_ms` is any monotonic millisecond clock; it must not go backwards.
///
/// NOTIFY timing: the NOTIFY after a subscribe, refresh or restore is
/// queued at once (RFC 6665 §4.2.1.2) and carries the latest state. A
/// change queues one at once while the subscription's budget allows
/// (`notify_burst` at once, then one per `coalesce_ms`, as a token bucket);
/// beyond it one NOTIFY is due when the budget next allows, at most
/// `coalesce_ms` later, and covers every change until then. So a park
/// reaches its watchers without delay, and a storm of changes (a whole
/// group's calls ending at once) still becomes a few NOTIFYs. A change
/// while a NOTIFY is queued and not yet polled needs none: that one
/// renders the latest state. Terminal NOTIFYs are never delayed.
#[derive(Debug)]
pub struct Subscriptions<D> {
    limits: Limits,
    next_id: SubId,
    subs: HashMap<SubId, Subscription<D>>,
    index: Index,
    /// One entry per live subscription: `(expires_at_ms, id)`.
    expiries: BTreeSet<(u64, SubId)>,
    /// One entry per subscription with a coalesced NOTIFY waiting.
    due: BTreeSet<(u64, SubId)>,
    out: VecDeque<Notify>,
    /// The subscription of the last polled terminal NOTIFY.
    last_ended: Option<(SubId, Subscription<D>)>,
}

impl<D> Subscriptions<D> {
    /// An empty table with these bounds.
    pub fn new(limits: Limits) -> Self {
        Subscriptions {
            limits,
            next_id: 1,
            subs: HashMap::new(),
            index: Index::default(),
            expiries: BTreeSet::new(),
            due: BTreeSet::new(),
            out: VecDeque::new(),
            last_ended: None,
        }
    }

    /// The bounds.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Accepts a SUBSCRIBE and queues its first NOTIFY (version 0, full
    /// state). `expires_s` above the maximum is shortened (see
    /// [`Subscription::granted_s`]). `Expires: 0` is a fetch: the one NOTIFY
    /// queued is already `terminated;reason=timeout`, and the fetch counts
    /// against no bound.
    pub fn subscribe(&mut self, now_ms: u64, req: SubscribeRequest<D>) -> Result<SubId, Refused> {
        let fetch = req.expires_s == 0;
        if !fetch {
            if req.expires_s < self.limits.min_expires_s {
                return Err(Refused::TooBrief {
                    min_s: self.limits.min_expires_s,
                });
            }
            if self.index.per_contact(&req.tenant, &req.contact) >= self.limits.max_per_contact {
                return Err(Refused::TooMany(Bound::Contact));
            }
            if self.index.per_tenant(&req.tenant) >= self.limits.max_per_tenant {
                return Err(Refused::TooMany(Bound::Tenant));
            }
        }
        let granted_s = req.expires_s.min(self.limits.max_expires_s);
        let id = self.insert(now_ms, req, granted_s, 0);
        if fetch {
            self.terminate(id, TermReason::Timeout);
        } else {
            self.emit_active(id, now_ms);
        }
        Ok(id)
    }

    /// A refresh (a SUBSCRIBE in the subscription's dialog): returns the
    /// granted `Expires` and queues a full NOTIFY at once. `Expires: 0`
    /// unsubscribes: the NOTIFY queued is the last one,
    /// `terminated;reason=timeout` (RFC 6665 §4.1.2.3: an unsubscribe
    /// triggers a final NOTIFY; `timeout` because the subscription's time
    /// is up, at the subscriber's request), and 0 is returned.
    pub fn refresh(&mut self, now_ms: u64, id: SubId, expires_s: u32) -> Result<u32, Refused> {
        let (min_s, max_s) = (self.limits.min_expires_s, self.limits.max_expires_s);
        let Some(sub) = self.subs.get_mut(&id).filter(|s| s.ended.is_none()) else {
            return Err(Refused::NoSuchSubscription);
        };
        if expires_s == 0 {
            sub.granted_s = 0;
            self.terminate(id, TermReason::Timeout);
            return Ok(0);
        }
        if expires_s < min_s {
            return Err(Refused::TooBrief { min_s });
        }
        let granted = expires_s.min(max_s);
        self.expiries.remove(&(sub.expires_at_ms, id));
        sub.granted_s = granted;
        sub.expires_at_ms = now_ms + u64::from(granted) * 1000;
        self.expiries.insert((sub.expires_at_ms, id));
        self.emit_active(id, now_ms);
        Ok(granted)
    }

    /// `resource` of `tenant` changed: every live watcher gets a NOTIFY,
    /// coalesced as described on the type. Other tenants' watchers are
    /// never touched.
    pub fn changed(&mut self, now_ms: u64, tenant: &str, resource: &Resource) {
        let ids: Vec<SubId> = self.index.watchers(tenant, resource).collect();
        let tolerance = self.burst_tolerance_ms();
        for id in ids {
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            if sub.queued > 0 || sub.due_ms.is_some() {
                continue;
            }
            let allowed_at = sub.tat_ms.saturating_sub(tolerance);
            if now_ms >= allowed_at {
                self.emit_active(id, now_ms);
            } else {
                sub.due_ms = Some(allowed_at);
                self.due.insert((allowed_at, id));
            }
        }
    }

    /// The tenant is gone: all its subscriptions end with
    /// `reason=noresource`.
    pub fn remove_tenant(&mut self, tenant: &str) {
        for id in self.index.in_tenant(tenant) {
            self.terminate(id, TermReason::NoResource);
        }
    }

    /// The extension `ext` of `tenant` was removed (or may no longer
    /// subscribe): the subscriptions it made end with `reason=rejected`
    /// (RFC 6665 §4.1.3: a change of authorization, do not retry). Call
    /// [`remove_resource`](Self::remove_resource) for its own resources.
    pub fn remove_subscriber(&mut self, tenant: &str, ext: &str) {
        for id in self.index.by_subscriber(tenant, ext) {
            self.terminate(id, TermReason::Rejected);
        }
    }

    /// `resource` no longer exists (a removed extension's `Extension` and
    /// `Park`, a removed group): its watchers end with `reason=noresource`.
    pub fn remove_resource(&mut self, tenant: &str, resource: &Resource) {
        let ids: Vec<SubId> = self.index.watchers(tenant, resource).collect();
        for id in ids {
            self.terminate(id, TermReason::NoResource);
        }
    }

    /// Drops a subscription without a NOTIFY, including any queued and not
    /// yet polled: for when the subscriber is gone (a NOTIFY answered 481,
    /// or timed out; RFC 6665 §4.2.2).
    pub fn forget(&mut self, id: SubId) -> Option<Subscription<D>> {
        if self.last_ended.as_ref().is_some_and(|(i, _)| *i == id) {
            return self.last_ended.take().map(|(_, s)| s);
        }
        let sub = self.subs.remove(&id)?;
        if sub.ended.is_none() {
            self.index.remove(&sub.keys(), id);
            self.expiries.remove(&(sub.expires_at_ms, id));
        }
        if let Some(due) = sub.due_ms {
            self.due.remove(&(due, id));
        }
        self.out.retain(|n| n.id != id);
        Some(sub)
    }

    /// Fires what is due at `now_ms`: expiries first
    /// (`terminated;reason=timeout`, exactly at `expires_at_ms`), then
    /// coalesced NOTIFYs.
    pub fn tick(&mut self, now_ms: u64) {
        while let Some(&(at, id)) = self.expiries.first() {
            if at > now_ms {
                break;
            }
            self.terminate(id, TermReason::Timeout);
        }
        while let Some(&(at, id)) = self.due.first() {
            if at > now_ms {
                break;
            }
            self.due.remove(&(at, id));
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.due_ms = None;
            }
            self.emit_active(id, now_ms);
        }
    }

    /// When [`tick`](Self::tick) has something to do next.
    pub fn next_deadline(&self) -> Option<u64> {
        let expiry = self.expiries.first().map(|&(at, _)| at);
        let due = self.due.first().map(|&(at, _)| at);
        match (expiry, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next NOTIFY to send.
    pub fn poll(&mut self) -> Option<Notify> {
        self.last_ended = None;
        let n = self.out.pop_front()?;
        match n.state {
            SubState::Active { .. } => {
                if let Some(sub) = self.subs.get_mut(&n.id) {
                    sub.queued = sub.queued.saturating_sub(1);
                }
            }
            SubState::Terminated { .. } => {
                self.last_ended = self.subs.remove(&n.id).map(|s| (n.id, s));
            }
        }
        Some(n)
    }

    /// A subscription, live or with its terminal NOTIFY queued or just
    /// polled.
    pub fn get(&self, id: SubId) -> Option<&Subscription<D>> {
        match &self.last_ended {
            Some((i, s)) if *i == id => Some(s),
            _ => self.subs.get(&id),
        }
    }

    /// As [`get`](Self::get), for the I/O layer's dialog state.
    pub fn get_mut(&mut self, id: SubId) -> Option<&mut Subscription<D>> {
        match &mut self.last_ended {
            Some((i, s)) if *i == id => Some(s),
            _ => self.subs.get_mut(&id),
        }
    }

    /// The live subscriptions watching `resource` of `tenant`.
    pub fn watchers<'a>(
        &'a self,
        tenant: &str,
        resource: &Resource,
    ) -> impl Iterator<Item = SubId> + 'a {
        self.index.watchers(tenant, resource)
    }

    /// Live subscriptions (those with a terminal NOTIFY queued excluded).
    pub fn len(&self) -> usize {
        self.expiries.len()
    }

    /// No live subscription.
    pub fn is_empty(&self) -> bool {
        self.expiries.is_empty()
    }

    /// What to store to [`restore`](Self::restore) a live subscription
    /// after a restart.
    pub fn saved(&self, id: SubId, now_ms: u64) -> Option<SavedSubscription<D>>
    where
        D: Clone,
    {
        let s = self.subs.get(&id).filter(|s| s.ended.is_none())?;
        Some(SavedSubscription {
            tenant: s.tenant.clone(),
            subscriber: s.subscriber.clone(),
            contact: s.contact.clone(),
            resource: s.resource.clone(),
            dialog: s.dialog.clone(),
            next_version: s.next_version,
            expires_left_s: left_s(s.expires_at_ms, now_ms),
        })
    }

    /// Re-inserts a subscription saved before a restart, under a new id,
    /// and queues a full NOTIFY carrying its next version (or, with no time
    /// left, its terminal one, `reason=timeout`). Bounds are not applied:
    /// it was admitted before.
    pub fn restore(&mut self, now_ms: u64, saved: SavedSubscription<D>) -> SubId {
        let left = saved.expires_left_s;
        let req = SubscribeRequest {
            tenant: saved.tenant,
            subscriber: saved.subscriber,
            contact: saved.contact,
            resource: saved.resource,
            expires_s: left,
            dialog: saved.dialog,
        };
        let id = self.insert(now_ms, req, left, saved.next_version);
        if left == 0 {
            self.terminate(id, TermReason::Timeout);
        } else {
            self.emit_active(id, now_ms);
        }
        id
    }

    /// Files a new live subscription.
    fn insert(
        &mut self,
        now_ms: u64,
        req: SubscribeRequest<D>,
        granted_s: u32,
        version: u32,
    ) -> SubId {
        let id = self.next_id;
        self.next_id += 1;
        let sub = Subscription {
            tenant: req.tenant,
            subscriber: req.subscriber,
            contact: req.contact,
            resource: req.resource,
            dialog: req.dialog,
            granted_s,
            expires_at_ms: now_ms + u64::from(granted_s) * 1000,
            next_version: version,
            tat_ms: 0,
            due_ms: None,
            queued: 0,
            ended: None,
        };
        self.index.insert(&sub.keys(), id);
        self.expiries.insert((sub.expires_at_ms, id));
        self.subs.insert(id, sub);
        id
    }

    /// Queues an active NOTIFY now; it replaces a coalesced one waiting.
    fn emit_active(&mut self, id: SubId, now_ms: u64) {
        // The budget's next state, capped so that a run of refreshes (which
        // are answered at once, whatever the budget) never delays the next
        // change by more than one spacing; a change-driven NOTIFY is within
        // the cap anyway.
        let spacing = self.limits.coalesce_ms;
        let cap = now_ms + self.burst_tolerance_ms() + spacing;
        let Some(sub) = self.subs.get_mut(&id).filter(|s| s.ended.is_none()) else {
            return;
        };
        if let Some(due) = sub.due_ms.take() {
            self.due.remove(&(due, id));
        }
        sub.tat_ms = (sub.tat_ms.max(now_ms) + spacing).min(cap);
        sub.queued += 1;
        let version = sub.next_version;
        sub.next_version += 1;
        self.out.push_back(Notify {
            id,
            tenant: sub.tenant.clone(),
            resource: sub.resource.clone(),
            version,
            state: SubState::Active {
                expires_left_s: left_s(sub.expires_at_ms, now_ms),
            },
        });
    }

    /// How far ahead of now the budget may run before a change waits: the
    /// burst beyond the first NOTIFY, in spacings.
    fn burst_tolerance_ms(&self) -> u64 {
        self.limits.coalesce_ms * u64::from(self.limits.notify_burst.max(1) - 1)
    }

    /// Ends a live subscription: unfiled at once, terminal NOTIFY queued.
    fn terminate(&mut self, id: SubId, reason: TermReason) {
        let Some(sub) = self.subs.get_mut(&id).filter(|s| s.ended.is_none()) else {
            return;
        };
        sub.ended = Some(reason);
        let keys = Keys {
            tenant: &sub.tenant,
            subscriber: &sub.subscriber,
            contact: &sub.contact,
            resource: &sub.resource,
        };
        self.index.remove(&keys, id);
        self.expiries.remove(&(sub.expires_at_ms, id));
        if let Some(due) = sub.due_ms.take() {
            self.due.remove(&(due, id));
        }
        let version = sub.next_version;
        sub.next_version += 1;
        self.out.push_back(Notify {
            id,
            tenant: sub.tenant.clone(),
            resource: sub.resource.clone(),
            version,
            state: SubState::Terminated { reason },
        });
    }
}

/// Whole seconds left until `at_ms`, rounded up.
fn left_s(at_ms: u64, now_ms: u64) -> u32 {
    let ms = at_ms.saturating_sub(now_ms);
    u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)
}
