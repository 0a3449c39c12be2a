#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub domain: String,
    pub realm: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An extension as the directory holds it: HA1 values, never a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub tenant_id: String,
    pub number: String,
    pub display_name: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One registered contact of an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub tenant_id: String,
    pub extension: String,
    pub contact: String,
    /// Header parameters of the Contact other than `expires`, e.g. `;q=0.5;+sip.instance="<urn:...>"`.
    pub contact_params: String,
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: i64,
    /// `transport:ip:port` the REGISTER arrived from.
    pub source: String,
    pub transport: String,
    pub user_agent: String,
    pub registered_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub created_at: i64,
}

/// How a ring group rings its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingStrategy {
    /// Every member at once, for `ring_time_s`.
    RingAll,
    /// One member after another in list order, `ring_time_s` each.
    Sequential,
}

impl RingStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            RingStrategy::RingAll => "ring_all",
            RingStrategy::Sequential => "sequential",
        }
    }

    pub fn parse(s: &str) -> Option<RingStrategy> {
        match s {
            "ring_all" => Some(RingStrategy::RingAll),
            "sequential" => Some(RingStrategy::Sequential),
            _ => None,
        }
    }
}

/// A ring group: a number of a tenant that rings a list of its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingGroup {
    pub tenant_id: String,
    pub number: String,
    pub name: String,
    /// Extension numbers of the same tenant, in ring order, no duplicates.
    pub members: Vec<String>,
    pub strategy: RingStrategy,
    /// Seconds; for [`RingStrategy::Sequential`], per member.
    pub ring_time_s: u32,
    /// Where an unanswered call goes: an extension or another ring group
    /// of the same tenant. `None` = hang up.
    pub no_answer_destination: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a new ring group (the store checks references and
/// uniqueness; field syntax is the caller's job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingGroupSpec {
    pub number: String,
    pub name: String,
    pub members: Vec<String>,
    pub strategy: RingStrategy,
    pub ring_time_s: u32,
    pub no_answer_destination: Option<String>,
}

/// A change to a ring group: `None` keeps a field; `members` is replaced as
/// a whole; `no_answer_destination: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RingGroupPatch {
    pub name: Option<String>,
    pub members: Option<Vec<String>>,
    pub strategy: Option<RingStrategy>,
    pub ring_time_s: Option<u32>,
    pub no_answer_destination: Option<Option<String>>,
}

/// One finished call, as the call layer writes it when the call ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub id: String,
    pub tenant_id: String,
    /// The calling extension's number.
    pub caller: String,
    /// Its display name.
    pub caller_name: String,
    /// The number dialled.
    pub callee: String,
    /// The extension that answered, if any.
    pub answered_by: Option<String>,
    /// Unix ms.
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: i64,
    /// e.g. `caller_hangup`, `callee_hangup`, `cancelled`, `busy`,
    /// `no_answer`, `unavailable`, `not_found`, `forbidden`, `failed`,
    /// `rtp_timeout`, `shutdown`, `transferred`.
    pub end_reason: String,
    /// Transfer targets in order (stored as a JSON array of strings).
    pub transfers: Vec<String>,
}

/// Which call records [`crate::Store::call_records`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRecordQuery {
    /// Matches `caller`, `callee` or `answered_by`.
    pub extension: Option<String>,
    /// `started_at >= since_ms`.
    pub since_ms: Option<i64>,
    /// `started_at < until_ms`.
    pub until_ms: Option<i64>,
    /// At most this many, capped to [`crate::MAX_CALL_RECORDS`]; 0 means
    /// [`crate::DEFAULT_CALL_RECORDS`].
    pub limit: u32,
}

/// A call in progress, as the call layer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveCall {
    pub id: String,
    pub tenant_id: String,
    pub caller: String,
    pub callee: String,
    pub answered_by: Option<String>,
    /// `ringing`, `answered`, `held` or `transferring`.
    pub state: String,
    /// Unix ms.
    pub started_at: i64,
    pub answered_at: Option<i64>,
}

/// The calls in progress now; the call layer answers this from memory.
pub trait ActiveCalls: Send + Sync {
    fn active_calls(&self, tenant_id: &str) -> Vec<ActiveCall>;
}

/// For servers and tests without a call layer.
pub struct NoCalls;

impl ActiveCalls for NoCalls {
    fn active_calls(&self, _tenant_id: &str) -> Vec<ActiveCall> {
        Vec::new()
    }
}
