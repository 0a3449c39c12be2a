//! One subscription as the table keeps it.

use crate::index::Keys;
use crate::model::{Resource, TermReason};

/// One subscription. The table owns it; [`crate::Subscriptions::get_mut`] hands
/// out the I/O layer's `dialog`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription<D> {
    pub(crate) tenant: String,
    pub(crate) subscriber: String,
    pub(crate) contact: String,
    pub(crate) resource: Resource,
    /// The I/O layer's dialog state (e.g. bump its CSeq per NOTIFY).
    pub dialog: D,
    pub(crate) granted_s: u32,
    pub(crate) expires_at_ms: u64,
    pub(crate) next_version: u32,
    /// The NOTIFY budget as a generic cell rate algorithm's theoretical
    /// arrival time: a change may be notified at once from
    /// `tat_ms - (burst - 1) * spacing` on; each NOTIFY moves it one
    /// spacing past `max(tat_ms, now)`.
    pub(crate) tat_ms: u64,
    /// A coalesced NOTIFY waits until then (also in the `due` set).
    pub(crate) due_ms: Option<u64>,
    /// Active NOTIFYs queued and not yet polled.
    pub(crate) queued: u32,
    pub(crate) ended: Option<TermReason>,
}

impl<D> Subscription<D> {
    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    /// The subscribing extension.
    pub fn subscriber(&self) -> &str {
        &self.subscriber
    }
    /// The per-contact key.
    pub fn contact(&self) -> &str {
        &self.contact
    }
    /// What is watched.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }
    /// The `Expires` granted by the last subscribe or refresh (0 for a
    /// fetch or an unsubscribe): the value for the 200's `Expires`.
    pub fn granted_s(&self) -> u32 {
        self.granted_s
    }
    /// When it expires, in table time.
    pub fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }
    /// The version the next NOTIFY will carry.
    pub fn next_version(&self) -> u32 {
        self.next_version
    }
    /// Why it ended, once its terminal NOTIFY is queued.
    pub fn ended(&self) -> Option<TermReason> {
        self.ended
    }
    pub(crate) fn keys(&self) -> Keys<'_> {
        Keys {
            tenant: &self.tenant,
            subscriber: &self.subscriber,
            contact: &self.contact,
            resource: &self.resource,
        }
    }
}
