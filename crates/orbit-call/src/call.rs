//! What the call manager keeps per call and per leg.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use orbit_media::{LegId, LocalSession, MediaSession, Negotiated};
use orbit_sip::ServerTx;
use orbit_store::Tenant;

use crate::dialog::Dialog;

pub type CallKey = u64;
pub type LegKey = u64;

/// An extension taking part in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub number: String,
    pub name: String,
}

/// A step of a hunt: these numbers ring together for `ring_for`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub numbers: Vec<String>,
    pub ring_for: Duration,
}

/// Where a call (or a transfer) is ringing and what comes next.
#[derive(Debug, Clone, Default)]
pub struct Hunt {
    pub steps: VecDeque<Step>,
    /// Where to go when every step is done (a ring group's destination).
    pub fallback: Option<String>,
    /// Destinations followed so far; bounded against ring group loops.
    pub hops: u8,
    /// A callee said busy (486/600/603) somewhere on the way.
    pub busy_seen: bool,
    /// Increases with each step, so a stale ring timer is recognised.
    pub step_seq: u64,
    /// Outgoing legs ringing in the current step.
    pub forks: Vec<LegKey>,
    /// Some phone was rung (so "no answer" rather than "unavailable").
    pub rang: bool,
}

/// What a media side hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Other,
    Music,
    /// The reorder tone, for a moment after a feature failed.
    Reorder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    Ringing,
    Answered,
}

/// A blind or attended transfer in progress, asked for by `transferor`.
#[derive(Debug)]
pub struct Transfer {
    pub transferor: LegKey,
    /// The media side the new party takes.
    pub side: LegId,
    pub hunt: Hunt,
    /// Attended: the leg being moved in from another call, and that call.
    pub replacing: Option<(LegKey, CallKey)>,
}

pub struct Call {
    pub key: CallKey,
    pub id: String,
    pub tenant: Arc<Tenant>,
    pub caller: Party,
    pub dialled: String,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub answered_by: Option<String>,
    pub transfers: Vec<String>,
    pub state: CallState,
    /// The leg on each media side (A: the caller's, B: the callee's).
    pub sides: [Option<LegKey>; 2],
    pub hunt: Hunt,
    /// The caller's INVITE until it gets its final answer.
    pub pending_invite: Option<ServerTx>,
    pub sent_ringing: bool,
    pub media: MediaSession,
    pub heard: [Heard; 2],
    pub transfer: Option<Transfer>,
    /// Parked: the park engine's id, the empty side, any recall ringing.
    pub parked: Option<Parked>,
    /// A call to a park code made to consult before an attended transfer:
    /// what the code asks for.
    pub consult: Option<crate::codes::Feature>,
}

/// A parked call as the call layer sees it.
#[derive(Debug, Clone)]
pub struct Parked {
    pub id: u64,
    /// The side without a party: a retriever or answered recall takes it.
    pub side: LegId,
    pub recall: Option<RecallRing>,
    /// Phones rung by the API to take the call (`parked-calls/{id}/retrieve`).
    pub retrievers: Vec<LegKey>,
}

/// The phones one recall attempt is ringing.
#[derive(Debug, Clone)]
pub struct RecallRing {
    pub attempt: u32,
    pub forks: Vec<LegKey>,
    pub busy: bool,
    /// Members of a sequential ring group not rung yet, in order.
    pub rest: VecDeque<String>,
    /// How long each of them rings (sequential groups only).
    pub step: Option<Duration>,
    /// Counts the steps rung; a step timer is stale once it moved on.
    pub step_seq: u64,
    pub(crate) shown: crate::hunt::Shown,
}

impl Call {
    pub fn side_index(side: LegId) -> usize {
        match side {
            LegId::A => 0,
            LegId::B => 1,
        }
    }

    pub fn leg_on(&self, side: LegId) -> Option<LegKey> {
        self.sides[Self::side_index(side)]
    }

    pub fn set_leg(&mut self, side: LegId, leg: Option<LegKey>) {
        self.sides[Self::side_index(side)] = leg;
    }

    /// Every leg that takes part in the call now: the two sides, phones
    /// ringing for it (hunt, transfer, recall, API retrieve) and a
    /// transferor still on the line. BLF state is built from these.
    pub fn party_legs(&self) -> Vec<LegKey> {
        let mut legs: Vec<LegKey> = self.sides.iter().flatten().copied().collect();
        legs.extend(self.hunt.forks.iter().copied());
        if let Some(t) = &self.transfer {
            legs.extend(t.hunt.forks.iter().copied());
            legs.push(t.transferor);
        }
        if let Some(p) = &self.parked {
            legs.extend(p.recall.iter().flat_map(|r| r.forks.iter().copied()));
            legs.extend(p.retrievers.iter().copied());
        }
        legs.sort_unstable();
        legs.dedup();
        legs
    }
}

pub fn other(side: LegId) -> LegId {
    match side {
        LegId::A => LegId::B,
        LegId::B => LegId::A,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    /// Outgoing INVITE sent, no answer yet (maybe ringing).
    Calling,
    /// Answered (2xx sent or received).
    Confirmed,
    /// CANCEL sent; waiting for the final answer to tidy up.
    Cancelling,
    /// BYE sent or received.
    Ended,
}

/// A 2xx Orbit sent for an INVITE, resent until the ACK (RFC 3261 §13.3.1.4).
pub struct Unacked {
    pub tx: ServerTx,
    pub bytes: Bytes,
    pub interval: Duration,
    pub give_up: Instant,
}

/// An INVITE Orbit sent on a leg and has no final answer for.
#[derive(Debug, Clone)]
pub struct OutInvite {
    pub branch: String,
    pub cseq: u32,
    pub uri: String,
    /// A re-INVITE (the dialog exists) rather than the initial one.
    pub reinvite: bool,
}

pub struct Leg {
    pub key: LegKey,
    pub call: CallKey,
    pub side: LegId,
    pub party: Party,
    pub dialog: Dialog,
    pub state: LegState,
    pub incoming: bool,
    pub sdp: LocalSession,
    pub negotiated: Option<Negotiated>,
    /// This phone holds the call (sendonly/inactive/0.0.0.0 from it).
    pub holding: bool,
    pub out_invite: Option<OutInvite>,
    pub unacked: Option<Unacked>,
    /// The ACK sent for its 2xx, resent when the 2xx is.
    pub ack: Option<Bytes>,
    /// RFC 4028: seconds, when the phone asked for session timers.
    pub session_expires: Option<u32>,
    pub refreshed_at: Instant,
    /// Subscriptions implied by REFERs from this leg: the CSeq of the REFER.
    pub refer_id: Option<u32>,
    /// DTMF digits the phone sent lately (a feature code in progress).
    pub digits: String,
    pub digits_at: Option<Instant>,
    /// Orbit's re-INVITEs on this leg refused with 491 so far.
    pub glare_retries: u32,
}
