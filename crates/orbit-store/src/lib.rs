//! Orbit's store: tenants, extensions, ring groups, API tokens, registrations,
//! call records, call park settings and groups, the park event log and
//! provisioned desk phones in an
//! SQL database (embedded SQLite by default, PostgreSQL by URL), with an
//! in-memory directory the SIP layer reads without touching the database.
//!
//! Every write goes through [`Store`], which updates the database first and
//! the directory after, so the two never disagree for longer than one call.

mod calls;
mod directory;
mod error;
mod model;
mod park;
mod park_events;
mod phones;
mod portal;
mod registrations;
mod ring_groups;
mod store;
mod subscriptions;
pub mod tokens;

pub use calls::{DEFAULT_CALL_RECORDS, MAX_CALL_RECORDS};
pub use directory::Directory;
pub use error::StoreError;
pub use model::{
    ActiveCall, ActiveCalls, Binding, CallRecord, CallRecordQuery, Extension, NoCalls,
    ParkEventQuery, ParkEventRecord, ParkGroup, ParkGroupPatch, ParkGroupSpec, ParkSettings,
    ParkSettingsSpec, Phone, PhoneKey, PhoneKeyKind, PhonePatch, PhoneSpec, RecallSettings,
    RecallTo, RingGroup, RingGroupPatch, RingGroupSpec, RingStrategy, Tenant, Token,
};
pub use park::{
    is_display_prefix, is_feature_code, MAX_DISPLAY_PREFIX, MAX_PARKED_PER_EXTENSION,
    MAX_PARK_GROUP_MEMBERS, MAX_PARK_GROUP_NAME, MAX_RECALL_ATTEMPTS, RECALL_RING_S, RECALL_TIME_S,
    RETRY_INTERVAL_S, RING_GROUP_WAIT_S,
};
pub use park_events::{DEFAULT_PARK_EVENTS, MAX_PARK_EVENTS, PARK_EVENT_KINDS};
pub use phones::{
    is_dial_string, is_phone_mac, normalize_mac, MAX_KEY_LABEL, MAX_PHONE_KEYS, MAX_PHONE_LABEL,
    MAX_PHONE_MODEL, PHONE_VENDORS,
};
pub use portal::{PortalSession, PortalUser};
pub use registrations::BindingOp;
pub use ring_groups::{MAX_RING_GROUP_MEMBERS, RING_TIME_S};
pub use store::{Store, StoreEvent};
pub use subscriptions::{StoredSubscription, SubscriptionOp};

/// The registrations in force now. The registrar's memory answers this:
/// the database trails it by the write-through delay.
pub trait LiveBindings: Send + Sync {
    fn tenant_bindings(&self, tenant_id: &str) -> Vec<Binding>;
}

/// A call parked right now, as the call layer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedCall {
    /// The park's id (also in the park event log).
    pub id: String,
    /// The id of the call that is parked (as in `/calls` and call records).
    pub call_id: String,
    pub tenant_id: String,
    pub parked_on: String,
    pub parked_by: String,
    pub caller_number: String,
    pub caller_name: String,
    /// Unix ms.
    pub parked_at: i64,
    /// Unix ms of the next recall; `None` while a recall rings.
    pub recall_at: Option<i64>,
    /// `parked` or `recalling`.
    pub state: String,
    /// Where the recall rings now, while recalling.
    pub recalling: Option<String>,
    /// What a phone dials to retrieve this very call.
    pub retrieve_number: String,
}

/// What the API may ask of the call layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// Park a call in progress: its caller is parked on `on` (or on the
    /// first available member of the answering extension's park group when
    /// `group`), the answering party is released.
    Park {
        tenant_id: String,
        call_id: String,
        on: Option<String>,
        group: bool,
    },
    /// Ring `to`; when it answers it gets the parked call (if still parked).
    Retrieve {
        tenant_id: String,
        park_id: String,
        to: String,
    },
    /// Hang up a parked call.
    HangUp { tenant_id: String, park_id: String },
    /// Ask the phones registered for `extension` to fetch their
    /// configuration again (`NOTIFY` with `Event: check-sync`).
    CheckSync {
        tenant_id: String,
        extension: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The request is well formed but cannot be done now (409).
    #[error("{message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the call layer is not running")]
    Unavailable,
}

/// Parked calls and call actions, from the call layer.
pub trait CallControl: Send + Sync {
    fn parked_calls(&self, tenant_id: &str) -> Vec<ParkedCall>;
    fn command(&self, cmd: CallCommand)
        -> tokio::sync::oneshot::Receiver<Result<(), CommandError>>;
    /// Every park event as it happens (all tenants; the reader filters).
    fn park_events(&self) -> tokio::sync::broadcast::Receiver<ParkEventRecord>;
}

/// For servers and tests without a call layer.
pub struct NoCallControl;

impl CallControl for NoCallControl {
    fn parked_calls(&self, _tenant_id: &str) -> Vec<ParkedCall> {
        Vec::new()
    }
    fn command(
        &self,
        _cmd: CallCommand,
    ) -> tokio::sync::oneshot::Receiver<Result<(), CommandError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(Err(CommandError::Unavailable));
        rx
    }
    fn park_events(&self) -> tokio::sync::broadcast::Receiver<ParkEventRecord> {
        tokio::sync::broadcast::channel(1).1
    }
}

/// A tenant's music on hold, as the media side holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct MusicInfo {
    /// An uploaded file (false: the built-in music).
    pub custom: bool,
    pub seconds: f64,
}

/// Music on hold per tenant, kept by whoever plays it.
pub trait MusicOnHold: Send + Sync {
    fn info(&self, tenant_id: &str) -> MusicInfo;
    /// Replace the tenant's music with a WAV file; `Err` says, for the
    /// admin, why the file is refused (format expected and found).
    fn replace(&self, tenant_id: &str, wav: &[u8]) -> Result<MusicInfo, String>;
    /// Back to the built-in music.
    fn reset(&self, tenant_id: &str) -> Result<(), String>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
