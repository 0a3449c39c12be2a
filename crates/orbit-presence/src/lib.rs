//! Orbit's presence layer: SUBSCRIBE/NOTIFY for the dialog event package
//! (RFC 6665, RFC 4235), behind BLF and Visual Park keys, and the body of
//! the unsolicited park notification.
//!
//! Subscription decisions and body rendering only: no sockets, no tokio,
//! no SQL, no clock reads. Time comes in as `now_ms` (any monotonic
//! millisecond clock), and every NOTIFY to send comes out of
//! [`Subscriptions::poll`] as a [`Notify`].
//!
//! # What the crate decides
//! - admission: `Expires` bounds (423 below the minimum, shortened above
//!   the maximum), a bound per contact and per tenant ([`Refused`] maps
//!   each refusal to its status code);
//! - the life of a subscription: refresh, unsubscribe, fetch
//!   (`Expires: 0`), expiry exactly at its deadline, ending with a reason
//!   when its tenant, subscriber or resource goes away, restore after a
//!   restart; every subscription ends with exactly one terminated NOTIFY
//!   (unless the I/O layer [`forget`](Subscriptions::forget)s it);
//! - when to NOTIFY: at once on subscribe and refresh; on a change at once
//!   while the subscription's budget allows (a burst of `notify_burst`,
//!   then one per `coalesce_ms`), else once when it next allows, for the
//!   whole burst; the `version` of each (0 first, +1 each, per
//!   subscription, kept across refreshes and restarts);
//! - the bodies: [`render`] (dialog-info, with the BroadWorks `callpark`
//!   element for parked calls) and [`render_park_info`].
//!
//! # What the I/O layer must do
//! - **SUBSCRIBE** with `Event: dialog` (others: 489 `Bad Event`) whose
//!   `Accept`, if present, allows `application/dialog-info+xml` (else 406):
//!   authenticate it like any request from a user (407), take the tenant
//!   from the Request-URI's domain, map the Request-URI user to a
//!   [`Resource`] of that tenant (unknown: 404), and call
//!   [`Subscriptions::subscribe`] (no `Expires` header:
//!   [`Limits::default_expires_s`]). A SUBSCRIBE inside an existing
//!   subscription's dialog is a [`Subscriptions::refresh`]. Answer `200`
//!   with `Expires:` [`Subscription::granted_s`] (a refused refresh: the
//!   status of [`Refused::status`]; 423 with `Min-Expires`, 503 with
//!   `Retry-After`).
//! - **Changes**: whenever what a resource shows changes (a call of the
//!   extension rings, is answered or ends; a park on the extension or a
//!   group member starts or ends), call [`Subscriptions::changed`] for
//!   each affected resource: `Extension(ext)` for its calls, `Park(ext)`
//!   for its parks, `ParkGroup(group)` for each group `ext` belongs to.
//! - **Timer**: one, armed at [`Subscriptions::next_deadline`] after every
//!   call, calling [`Subscriptions::tick`].
//! - **NOTIFY**: for each polled [`Notify`], before polling the next: a
//!   NOTIFY in the subscription's dialog ([`Subscriptions::get_mut`] has
//!   its `dialog`; bump its CSeq) with `Event: dialog`,
//!   `Subscription-State:` [`SubState::header`],
//!   `Content-Type: application/dialog-info+xml` and the body
//!   [`render`]`(&info, notify.version)`, where `info` is the resource's
//!   state at that moment (full state) and `entity` the
//!   resource's URI. A terminated NOTIFY carries the last state too. If a
//!   NOTIFY is answered 481 or times out, [`Subscriptions::forget`] the
//!   subscription (RFC 6665 §4.2.2).
//! - **Store**: save [`Subscriptions::saved`] for live subscriptions
//!   (with wall-clock time to compute the time left) and on start
//!   [`Subscriptions::restore`] each; the restored ones get a full NOTIFY
//!   at once, so phones see fresh state without resubscribing.
//! - **Park notification**: on park and on its end, send the
//!   [`render_park_info`] body in a NOTIFY outside any dialog with
//!   `Event: park-info` to the registered contacts concerned (see
//!   [`park_info`]).
//!
//! What the resource's dialogs are is the I/O layer's business too; the
//! shape of a parked call's entry, and why, is in [`dialog_info`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dialog_info;
mod error;
mod index;
mod model;
pub mod park_info;
mod subscription;
mod subscriptions;
#[cfg(test)]
mod tests;
pub mod xml;

pub use dialog_info::{
    render, DialogEntry, DialogInfo, DialogState, Direction, ParkedMark, Participant, Rendered,
};
pub use error::{Bound, Refused};
pub use model::{
    Limits, Notify, Resource, SavedSubscription, SubId, SubState, SubscribeRequest, TermReason,
};
pub use park_info::{render_park_info, ClearReason, ParkAction, ParkInfo};
pub use subscription::Subscription;
pub use subscriptions::Subscriptions;
