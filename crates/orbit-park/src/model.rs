//! The engine's inputs and answers: who is parked, where, under which
//! recall policy, and what a query or a retrieve hands back.

/// The call layer's id of the parked call. Opaque to the engine; it only
/// has to be unique among the calls parked at one time.
pub type CallRef = u64;

/// A park, assigned by the engine in increasing order and never reused
/// within a process, so a stale id can never reach a newer park.
pub type ParkId = u64;

/// An identity as phones show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Party {
    /// The user part / number (`106`, `+4930...`).
    pub number: String,
    /// The display name; may be empty.
    pub name: String,
}

/// Who a recall rings, BroadWorks' `recallTo` plus PortSIP's "number".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RecallTo {
    /// The parker, retried every `retry_interval_s`.
    #[default]
    ParkerOnly,
    /// The parker for `ring_group_wait_s`, then the ring group for good.
    ParkerThenRingGroup,
    /// The ring group from the start.
    RingGroupOnly,
    /// Like `ParkerOnly`, to this extension or ring group number.
    Number(String),
}

/// The recall settings for one park, resolved by the engine's caller
/// (tenant settings, overridden per call park group). Checked when a call
/// is parked (an invalid one is `ParkError::InvalidPolicy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecallPolicy {
    /// Seconds parked before the recall starts; 1..=900, default 45.
    pub recall_time_s: u32,
    /// Who is rung; default [`RecallTo::ParkerOnly`].
    pub recall_to: RecallTo,
    /// The recall ring group's number; required by the ring group modes.
    pub ring_group: Option<String>,
    /// `ParkerThenRingGroup`: how long the parker rings before the ring
    /// group takes over; default 20.
    pub ring_group_wait_s: u32,
    /// How long one attempt to the parker, a number or the final
    /// destination rings; default 20.
    pub ring_s: u32,
    /// How long the ring group is alerted per attempt; default 60.
    pub ring_group_ring_s: u32,
    /// Pause after a busy, unreachable or unanswered attempt before the
    /// same destination is rung again; default 10.
    pub retry_interval_s: u32,
    /// Attempts to the retried destination (parker, number or ring group)
    /// before the final destination; default 3.
    pub max_recall_attempts: u32,
    /// Extension or ring group number rung once when the attempts are
    /// used up; `None` hangs the parked call up.
    pub final_destination: Option<String>,
    /// Put before the parked party on the recalled phone; default `Recall:`.
    pub display_prefix: String,
}

impl Default for RecallPolicy {
    fn default() -> Self {
        RecallPolicy {
            recall_time_s: 45,
            recall_to: RecallTo::ParkerOnly,
            ring_group: None,
            ring_group_wait_s: 20,
            ring_s: 20,
            ring_group_ring_s: 60,
            retry_interval_s: 10,
            max_recall_attempts: 3,
            final_destination: None,
            display_prefix: "Recall:".to_owned(),
        }
    }
}

/// Where to park.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// On this extension, registered or not (parking on a colleague who
    /// is out is allowed; they retrieve it when back, or it recalls).
    Extension(String),
    /// Group park: hunt the members in this order.
    Group {
        /// The group's name (for logs; the engine does not look it up).
        name: String,
        /// Extensions in hunting order.
        members: Vec<String>,
    },
}

/// One park as the I/O layer asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkRequest {
    /// The tenant of the parker and of every extension named here.
    pub tenant: String,
    /// The call to park.
    pub call: CallRef,
    /// The extension that asked.
    pub parker: String,
    /// The parked caller's identity.
    pub parked: Party,
    /// Where to park.
    pub target: Target,
    /// How to recall it.
    pub policy: RecallPolicy,
}

/// Which parked call a retriever wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retrieve {
    /// The one parked longest on `ext` (`*88<ext>`).
    Oldest {
        /// The extension the call is parked on.
        ext: String,
    },
    /// This one (the per-call retrieve address, a BLF pickup, the API).
    Id(ParkId),
}

/// Why a recall attempt ended without an answer, as the I/O layer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecallFailure {
    /// 486/600 or all ring group members busy.
    Busy,
    /// Rang out on the phone's or the ring group's side.
    NoAnswer,
    /// Not registered, DND, or the destination does not exist.
    Unreachable,
}

/// What a recall attempt rings.
///
/// `Number` is for destinations the engine cannot classify (`RecallTo::Number`
/// and the final destination): the I/O layer resolves it against the
/// tenant's extensions and ring groups, as it does for a dialled number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An extension (the parker).
    Extension(String),
    /// The recall ring group.
    RingGroup(String),
    /// An extension or a ring group, to be resolved by the I/O layer.
    Number(String),
}

/// Extension state the engine needs when it decides, passed in per call
/// and never stored, so it is never stale.
pub trait Directory {
    /// Registered and not in do-not-disturb.
    fn available(&self, tenant: &str, ext: &str) -> bool;
}

/// Lets tests and simple callers pass a closure as a directory.
impl<F: Fn(&str, &str) -> bool> Directory for F {
    fn available(&self, tenant: &str, ext: &str) -> bool {
        self(tenant, ext)
    }
}

/// A parked call's state, as the API and BLF show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParkState {
    /// Waiting for someone to retrieve it or for the recall timer.
    Parked,
    /// The recall has started; `attempt` is the attempt ringing now, or the
    /// last one while waiting `retry_interval_s` before the next.
    Recalling {
        /// The attempt number, as in [`crate::Output::Ring`].
        attempt: u32,
        /// Whom that attempt rings.
        to: Destination,
    },
}

/// One parked call, for the API and for BLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedInfo {
    /// The park.
    pub id: ParkId,
    /// The parked call.
    pub call: CallRef,
    /// Its tenant.
    pub tenant: String,
    /// The extension it is parked on.
    pub parked_on: String,
    /// The extension that parked it.
    pub parker: String,
    /// The parked caller.
    pub parked: Party,
    /// When it was parked.
    pub parked_at_ms: u64,
    /// When the recall starts; `Some` only while waiting for it.
    pub recall_at_ms: Option<u64>,
    /// Waiting or recalling.
    pub state: ParkState,
}

/// A successful retrieve: the I/O layer bridges `call` to the retriever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieved {
    /// The park that ended.
    pub park: ParkId,
    /// The parked call to bridge.
    pub call: CallRef,
    /// Its identity, shown to the retriever.
    pub parked: Party,
    /// The extension it was parked on.
    pub parked_on: String,
    /// The extension that parked it.
    pub parker: String,
}
