//! The subscription table's inputs and outputs.

/// A subscription, assigned by the table in increasing order and never
/// reused within a process (a restored subscription gets a new one).
pub type SubId = u64;

/// What a subscription watches, within its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// An extension's calls: the classic BLF.
    Extension(String),
    /// The calls parked on an extension: a Visual Park key.
    Park(String),
    /// The calls parked on any member of a call park group (its id).
    ParkGroup(String),
}

impl Resource {
    /// The Request-URI user a phone subscribes to: `103`, `park-103` or
    /// `parkgroup-<id>` (what provisioning writes into keys).
    pub fn user(&self) -> String {
        match self {
            Resource::Extension(e) => e.clone(),
            Resource::Park(e) => format!("park-{e}"),
            Resource::ParkGroup(g) => format!("parkgroup-{g}"),
        }
    }

    /// The resource a Request-URI user names (whether it exists is for the
    /// caller to check).
    pub fn from_user(user: &str) -> Resource {
        if let Some(ext) = user.strip_prefix("park-") {
            Resource::Park(ext.to_string())
        } else if let Some(id) = user.strip_prefix("parkgroup-") {
            Resource::ParkGroup(id.to_string())
        } else {
            Resource::Extension(user.to_string())
        }
    }

    /// The resource's SIP URI in a tenant's domain.
    pub fn uri(&self, domain: &str) -> String {
        format!("sip:{}@{domain}", self.user())
    }
}

/// A SUBSCRIBE the I/O layer has authenticated and mapped to a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest<D> {
    /// The tenant, from the Request-URI's domain.
    pub tenant: String,
    /// The authenticated extension that subscribes.
    pub subscriber: String,
    /// What the per-contact bound counts by: the phone's Contact URI, or
    /// its source address.
    pub contact: String,
    /// What is watched.
    pub resource: Resource,
    /// The `Expires` asked for, in seconds; 0 is a fetch. The I/O layer
    /// puts [`Limits::default_expires_s`] here when the header is absent.
    pub expires_s: u32,
    /// The I/O layer's dialog state (Call-ID, tags, route, CSeq, where to
    /// send). The table only stores it.
    pub dialog: D,
}

/// The table's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Shorter non-zero `Expires` are refused with 423 (default 60).
    pub min_expires_s: u32,
    /// Longer ones are shortened to this (default 3600).
    pub max_expires_s: u32,
    /// For a SUBSCRIBE without `Expires` (default 600).
    pub default_expires_s: u32,
    /// Live subscriptions per tenant and contact (default 200).
    pub max_per_contact: usize,
    /// Live subscriptions per tenant (default 10 000).
    pub max_per_tenant: usize,
    /// Sustained spacing of change-driven NOTIFYs per subscription, in
    /// milliseconds (default 5, so at most 200 a second).
    pub coalesce_ms: u64,
    /// How many NOTIFYs a subscription may get at once before the spacing
    /// applies (default 10). A single change after a quiet spell goes out
    /// at once; only a burst beyond this is coalesced.
    pub notify_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_expires_s: 60,
            max_expires_s: 3600,
            default_expires_s: 600,
            max_per_contact: 200,
            max_per_tenant: 10_000,
            coalesce_ms: 5,
            notify_burst: 10,
        }
    }
}

/// What the store keeps of a live subscription to restore it after a
/// restart ([`crate::Subscriptions::saved`], [`crate::Subscriptions::restore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSubscription<D> {
    /// The tenant.
    pub tenant: String,
    /// The subscribing extension.
    pub subscriber: String,
    /// The per-contact key.
    pub contact: String,
    /// What is watched.
    pub resource: Resource,
    /// The I/O layer's dialog state.
    pub dialog: D,
    /// The version the next NOTIFY carries.
    pub next_version: u32,
    /// Seconds of the subscription left when it was saved, less the time
    /// the server was down (the store computes this from wall-clock
    /// time); 0 ends it with `reason=timeout` at once.
    pub expires_left_s: u32,
}

/// One NOTIFY to send, drained with [`crate::Subscriptions::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The subscription; its dialog is at [`crate::Subscriptions::get_mut`]
    /// until the next `poll`, also for a terminal NOTIFY.
    pub id: SubId,
    /// Its tenant.
    pub tenant: String,
    /// What to render.
    pub resource: Resource,
    /// The dialog-info `version`: 0 for a subscription's first NOTIFY, +1
    /// for each one after (RFC 4235 §4.1), across refreshes and restarts.
    pub version: u32,
    /// The `Subscription-State` header. Every NOTIFY carries the
    /// resource's full state (`state="full"`), so a lost or reordered one
    /// is repaired by the next.
    pub state: SubState,
}

/// A NOTIFY's `Subscription-State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// `active;expires=N`.
    Active {
        /// Seconds left, rounded up.
        expires_left_s: u32,
    },
    /// `terminated;reason=R`: the subscription's last NOTIFY.
    Terminated {
        /// Why.
        reason: TermReason,
    },
}

impl SubState {
    /// The header value (`active;expires=600`, `terminated;reason=timeout`).
    pub fn header(&self) -> String {
        match self {
            SubState::Active { expires_left_s } => format!("active;expires={expires_left_s}"),
            SubState::Terminated { reason } => format!("terminated;reason={}", reason.as_str()),
        }
    }
}

/// RFC 6665 §4.1.3 reasons Orbit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermReason {
    /// Not refreshed in time, an unsubscribe (`Expires: 0`) or a fetch.
    Timeout,
    /// The subscriber should subscribe again at once (not used by the
    /// table itself; for the I/O layer's migrations).
    Deactivated,
    /// The subscribing extension was removed or lost its rights
    /// ([`crate::Subscriptions::remove_subscriber`]); do not retry.
    Rejected,
    /// The watched resource (or its whole tenant) no longer exists.
    NoResource,
}

impl TermReason {
    /// The `reason` parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            TermReason::Timeout => "timeout",
            TermReason::Deactivated => "deactivated",
            TermReason::Rejected => "rejected",
            TermReason::NoResource => "noresource",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Resource;

    #[test]
    fn resources_name_the_uris_keys_watch() {
        let cases = [
            (Resource::Extension("102".into()), "sip:102@acme.test"),
            (Resource::Park("101".into()), "sip:park-101@acme.test"),
            (
                Resource::ParkGroup("9f0c".into()),
                "sip:parkgroup-9f0c@acme.test",
            ),
        ];
        for (r, uri) in cases {
            assert_eq!(r.uri("acme.test"), uri);
            assert_eq!(Resource::from_user(&r.user()), r);
        }
    }
}
