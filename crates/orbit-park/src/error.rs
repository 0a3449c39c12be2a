//! Why a park or a retrieve was refused.
//!
//! `PolicyError` is the caller's mistake (settings that should have been
//! refused when they were saved); the rest are conflicts with the current
//! state that a user can cause and must be told about. Mapping them to SIP
//! answers or tones is the call layer's job: this crate knows nothing of SIP.

/// A recall policy that cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// `recall_time_s` outside 1..=900.
    #[error("recall_time_s must be between 1 and 900, not {0}")]
    RecallTime(u32),
    /// A duration that must be at least one second is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// A ring group mode without `ring_group`.
    #[error("recall_to needs a ring_group")]
    MissingRingGroup,
    /// An empty number where a destination is needed.
    #[error("{0} must not be empty")]
    EmptyNumber(&'static str),
}

/// Why a call could not be parked; the parker keeps the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParkError {
    /// The extension holds `max_parked_per_extension` calls already.
    #[error("the extension has as many parked calls as allowed")]
    ExtensionFull,
    /// That call is parked already.
    #[error("the call is parked already")]
    AlreadyParked,
    /// Group park: every member is unavailable or holds a parked call.
    #[error("no member of the call park group is available")]
    NoMemberAvailable,
    /// The recall policy is invalid.
    #[error("invalid recall policy: {0}")]
    InvalidPolicy(#[from] PolicyError),
}

/// Why a retrieve got nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetrieveError {
    /// Nothing parked there, no such park, or another tenant's (which is
    /// never revealed).
    #[error("no such parked call")]
    NotFound,
    /// Someone else got that park first (a retriever or a recall answer).
    #[error("the parked call was already retrieved")]
    AlreadyRetrieved,
}
