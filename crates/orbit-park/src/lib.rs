//! Orbit's call park engine: park, group park, retrieve and recall, as a
//! pure state machine.
//!
//! Park decisions only: no sockets, no tokio, no SQL, no clock reads. Time
//! comes in as `now_ms` (any monotonic millisecond clock), extension state
//! as a [`Directory`] passed to the call that needs it, and everything the
//! engine decides comes out of [`Engine::poll`] as [`Output`]s.
//!
//! # What the engine decides
//! - where a call is parked: on the named extension (up to a bound per
//!   extension, registered or not), or for a group on the first member in
//!   hunting order that is available and holds no parked call;
//! - who gets a parked call: exactly one of the retrievers, a recall
//!   answer, the parked caller hanging up, or recall exhaustion ends each
//!   park, and whoever comes first wins;
//! - when and whom a recall rings, for how long, when it retries, when it
//!   gives up and hangs up;
//! - the park event log entries and when an extension's list changed.
//!
//! # What it leaves to the I/O layer (the call manager)
//! - SIP: answering REFERs and INVITEs, mapping errors to answers or tones;
//! - media: music for the parked caller, bridging on retrieve or answer;
//! - ringing: turning a [`Output::Ring`] into calls (resolving a
//!   [`Destination::Number`] to an extension or a ring group), reporting
//!   the answer or failure with that ring's attempt number, hanging up legs
//!   the engine cancels or refuses;
//! - the timer: one, armed at [`Engine::next_deadline`], calling
//!   [`Engine::tick`];
//! - storing events, BLF and park notifications, resolving the recall
//!   policy from tenant and group settings, keeping the engine's calls in
//!   step with calls that end (`abandon`).
//!
//! # A recall
//! A [`RecallPolicy`] becomes a list of stages; each rings one destination
//! for a ring time, up to a number of tries:
//!
//! | `recall_to`            | stages (then `final_destination`, once, `ring_s`)          |
//! |------------------------|------------------------------------------------------------|
//! | `ParkerOnly`           | parker, `ring_s`, `max_recall_attempts` tries              |
//! | `ParkerThenRingGroup`  | parker, `ring_group_wait_s`, 1 try; ring group, `ring_group_ring_s`, `max_recall_attempts` tries |
//! | `RingGroupOnly`        | ring group, `ring_group_ring_s`, `max_recall_attempts` tries |
//! | `Number(n)`            | `n`, `ring_s`, `max_recall_attempts` tries                 |
//!
//! ```text
//!  park ──▶ Waiting ──(recall_time_s)──▶ Ringing(stage s, try n) ──answered──▶ RecallAnswered
//!                                          │        ▲
//!                    ring time over ───────┤        │ retry_interval_s
//!                    (CancelRecall)        │        │
//!                    or recall_failed      ▼        │
//!                                   n < tries(s)? ─yes─▶ Pausing
//!                                          │ no
//!                                          ▼
//!                              stage s+1 exists? ─yes─▶ Ringing(s+1, try 1), at once
//!                                          │ no
//!                                          ▼
//!                              HangUp + Ended{recall_exhausted}
//!
//!  From any state: retrieve ──▶ Retrieved, abandon ──▶ Abandoned
//!  (with CancelRecall first when an attempt is ringing).
//! ```
//! Stages only move forward, so a recall that reached the ring group never
//! goes back to the parker. At most one attempt rings at a time.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod engine;
mod error;
mod index;
mod model;
mod output;
mod recall;
mod record;
#[cfg(test)]
mod tests;

pub use engine::Engine;
pub use error::{ParkError, PolicyError, RetrieveError};
pub use model::{
    CallRef, Destination, Directory, ParkId, ParkRequest, ParkState, ParkedInfo, Party,
    RecallFailure, RecallPolicy, RecallTo, Retrieve, Retrieved, Target,
};
pub use output::{EndReason, EventKind, Output, ParkEvent};
