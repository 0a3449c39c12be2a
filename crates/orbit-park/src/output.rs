//! What the engine tells the I/O layer, drained with [`crate::Engine::poll`].

use crate::error::{ParkError, RetrieveError};
use crate::model::{CallRef, Destination, ParkId, Party};

/// One thing for the I/O layer to do or record, in the order produced.
///
/// Within one engine call, leg actions come first (`CancelRecall` before
/// the event that explains it, `Ring` right after its `RecallStarted`),
/// and the `Changed` notices come last, one per extension whose list
/// changed in that call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Append to the tenant's park event log.
    Event(ParkEvent),
    /// Ring `to` for `ring_for_s` seconds, showing `display`. Report the
    /// outcome with `recall_answered` / `recall_failed` and this `attempt`.
    /// The engine ends the attempt itself (`CancelRecall`) when the time is
    /// up, so the I/O layer need not time it.
    Ring {
        /// The park being recalled.
        park: ParkId,
        /// The tenant, to resolve `to` in. (Added to the agreed shape: the
        /// I/O layer should not need a lookup to know where to ring.)
        tenant: String,
        /// The parked call, to bridge on answer.
        call: CallRef,
        /// This attempt's number, unique within the park.
        attempt: u32,
        /// Whom to ring.
        to: Destination,
        /// The display prefix and the parked party (`Recall: Alice`).
        display: String,
        /// How long the engine lets it ring.
        ring_for_s: u32,
    },
    /// Stop ringing that attempt (retrieved or abandoned meanwhile, or its
    /// ring time is over). Sent at most once per attempt, and never for an
    /// attempt the I/O layer reported as answered or failed.
    CancelRecall {
        /// The park.
        park: ParkId,
        /// The attempt to stop.
        attempt: u32,
    },
    /// Hang the parked call up: the recall found nobody.
    HangUp {
        /// The park, which has ended.
        park: ParkId,
        /// The call to hang up.
        call: CallRef,
    },
    /// `parked_on(tenant, ext)` answers differently than before this
    /// engine call: refresh BLF and notifications for `ext`.
    Changed {
        /// The tenant.
        tenant: String,
        /// The extension.
        ext: String,
    },
}

/// One entry for the park event log. Fields are `None` only where the
/// engine does not know them: a failed park has no id (and no extension
/// when group hunting found none); a failed retrieve names only what the
/// retriever asked for, so another tenant's park is never revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkEvent {
    /// Engine time of the event.
    pub at_ms: u64,
    /// The tenant whose log it belongs to.
    pub tenant: String,
    /// The park.
    pub park: Option<ParkId>,
    /// The extension the call is (or was to be) parked on.
    pub parked_on: Option<String>,
    /// The parked call.
    pub call: Option<CallRef>,
    /// The extension that parked it.
    pub parker: Option<String>,
    /// The parked caller.
    pub parked: Option<Party>,
    /// What happened.
    pub kind: EventKind,
}

/// What happened. Each park ends with exactly one of `Retrieved`,
/// `RecallAnswered`, `Abandoned` and `Ended`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The call is parked.
    Parked,
    /// The call could not be parked; the parker keeps it.
    ParkFailed {
        /// Why.
        reason: ParkError,
    },
    /// `by` retrieved the call; the park ended.
    Retrieved {
        /// The retrieving extension.
        by: String,
    },
    /// A retrieve by `by` got nothing.
    RetrieveFailed {
        /// The extension that tried.
        by: String,
        /// Why.
        reason: RetrieveError,
    },
    /// A recall attempt started ringing. Logged per attempt, so the log
    /// shows every destination tried.
    RecallStarted {
        /// The attempt, as in [`Output::Ring`].
        attempt: u32,
        /// Whom it rings.
        to: Destination,
    },
    /// `by` answered a recall; the park ended.
    RecallAnswered {
        /// Who answered (for a ring group, the member).
        by: String,
    },
    /// The parked caller hung up; the park ended.
    Abandoned,
    /// The park ended without anyone taking the call.
    Ended {
        /// Why.
        reason: EndReason,
    },
}

impl EventKind {
    /// The event's name in the log and on the API (`park_failed`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Parked => "parked",
            EventKind::ParkFailed { .. } => "park_failed",
            EventKind::Retrieved { .. } => "retrieved",
            EventKind::RetrieveFailed { .. } => "retrieve_failed",
            EventKind::RecallStarted { .. } => "recall_started",
            EventKind::RecallAnswered { .. } => "recall_answered",
            EventKind::Abandoned => "abandoned",
            EventKind::Ended { .. } => "ended",
        }
    }

    /// Whether this event ends a park.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::Retrieved { .. }
                | EventKind::RecallAnswered { .. }
                | EventKind::Abandoned
                | EventKind::Ended { .. }
        )
    }
}

/// Why a park ended without being retrieved or answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Every recall attempt and the final destination failed, or there was
    /// no final destination; the call was hung up.
    RecallExhausted,
}

impl EndReason {
    /// The reason's name in the log (`recall_exhausted`).
    pub fn name(&self) -> &'static str {
        match self {
            EndReason::RecallExhausted => "recall_exhausted",
        }
    }
}
