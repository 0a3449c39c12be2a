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

/// Where a parked call goes when nobody retrieves it in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecallTo {
    /// Ring the extension that parked the call, again after
    /// `retry_interval_s` while it is busy, unreachable or not answering.
    #[default]
    ParkerOnly,
    /// The parker first, then (after `ring_group_wait_s`) the recall ring
    /// group; once the ring group is reached, the parker is not rung again.
    ParkerThenRingGroup,
    /// The recall ring group only.
    RingGroupOnly,
    /// `recall_number`: an extension or a ring group.
    Number,
}

impl RecallTo {
    pub fn as_str(self) -> &'static str {
        match self {
            RecallTo::ParkerOnly => "PARKER_ONLY",
            RecallTo::ParkerThenRingGroup => "PARKER_THEN_RING_GROUP",
            RecallTo::RingGroupOnly => "RING_GROUP_ONLY",
            RecallTo::Number => "NUMBER",
        }
    }

    pub fn parse(s: &str) -> Option<RecallTo> {
        match s {
            "PARKER_ONLY" => Some(RecallTo::ParkerOnly),
            "PARKER_THEN_RING_GROUP" => Some(RecallTo::ParkerThenRingGroup),
            "RING_GROUP_ONLY" => Some(RecallTo::RingGroupOnly),
            "NUMBER" => Some(RecallTo::Number),
            _ => None,
        }
    }

    /// Whether this mode rings `RecallSettings::ring_group`.
    pub fn uses_ring_group(self) -> bool {
        matches!(
            self,
            RecallTo::ParkerThenRingGroup | RecallTo::RingGroupOnly
        )
    }
}

/// How a parked call that nobody retrieves comes back. Per tenant in
/// [`ParkSettings`], overridable per [`ParkGroup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecallSettings {
    /// Seconds from the park to the first recall ([`crate::RECALL_TIME_S`]).
    pub recall_time_s: u32,
    pub recall_to: RecallTo,
    /// For [`RecallTo::Number`] (required there, unused by the other
    /// modes): an extension or ring group number of the tenant.
    pub recall_number: Option<String>,
    /// The recall ring group's number; required by the modes whose
    /// [`RecallTo::uses_ring_group`] is true, unused by the others.
    pub ring_group: Option<String>,
    /// [`RecallTo::ParkerThenRingGroup`]: seconds of recalling the parker
    /// before the ring group is rung.
    pub ring_group_wait_s: u32,
    /// Seconds one recall attempt rings the parker or `recall_number`.
    pub ring_s: u32,
    /// Seconds between recall attempts.
    pub retry_interval_s: u32,
    /// Attempts before the call goes to `final_destination`.
    pub max_recall_attempts: u32,
    /// An extension or ring group number of the tenant; `None` = hang up.
    pub final_destination: Option<String>,
    /// Put before the parked caller's name on the recalled phone.
    pub display_prefix: String,
}

impl Default for RecallSettings {
    fn default() -> Self {
        RecallSettings {
            recall_time_s: 45,
            recall_to: RecallTo::ParkerOnly,
            recall_number: None,
            ring_group: None,
            ring_group_wait_s: 20,
            ring_s: 20,
            retry_interval_s: 10,
            max_recall_attempts: 3,
            final_destination: None,
            display_prefix: "Recall:".to_string(),
        }
    }
}

impl RecallSettings {
    /// Drop every reference to `number` (a deleted extension or ring
    /// group). A mode that loses what it rings falls back to
    /// [`RecallTo::ParkerOnly`]. Returns whether anything changed.
    pub(crate) fn forget(&mut self, number: &str) -> bool {
        let mut changed = false;
        for slot in [
            &mut self.recall_number,
            &mut self.ring_group,
            &mut self.final_destination,
        ] {
            if slot.as_deref() == Some(number) {
                *slot = None;
                changed = true;
            }
        }
        if (self.recall_to.uses_ring_group() && self.ring_group.is_none())
            || (self.recall_to == RecallTo::Number && self.recall_number.is_none())
        {
            self.recall_to = RecallTo::ParkerOnly;
        }
        changed
    }
}

/// A tenant's call park settings. A tenant that never stored any has
/// [`ParkSettings::defaults`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkSettings {
    pub tenant_id: String,
    pub enabled: bool,
    /// Feature codes: `*` or `#` and 1 to 6 digits; the three differ and
    /// none is a prefix of another.
    pub park_code: String,
    pub group_park_code: String,
    pub retrieve_code: String,
    /// Tell the parker too when a group park lands on another member.
    pub notify_parker: bool,
    /// Calls parked on one extension at once ([`crate::MAX_PARKED_PER_EXTENSION`]).
    pub max_parked_per_extension: u32,
    pub recall: RecallSettings,
    /// Unix ms of the last change; 0 = never stored (the defaults).
    pub updated_at: i64,
}

impl ParkSettings {
    /// What a tenant has before anyone sets its park settings.
    pub fn defaults(tenant_id: &str) -> ParkSettings {
        ParkSettings::from_spec(tenant_id, ParkSettingsSpec::default(), 0)
    }

    pub(crate) fn from_spec(tenant_id: &str, spec: ParkSettingsSpec, updated_at: i64) -> Self {
        ParkSettings {
            tenant_id: tenant_id.to_string(),
            enabled: spec.enabled,
            park_code: spec.park_code,
            group_park_code: spec.group_park_code,
            retrieve_code: spec.retrieve_code,
            notify_parker: spec.notify_parker,
            max_parked_per_extension: spec.max_parked_per_extension,
            recall: spec.recall,
            updated_at,
        }
    }
}

/// The fields of [`ParkSettings`] a writer sets; `Default` gives the
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkSettingsSpec {
    pub enabled: bool,
    pub park_code: String,
    pub group_park_code: String,
    pub retrieve_code: String,
    pub notify_parker: bool,
    pub max_parked_per_extension: u32,
    pub recall: RecallSettings,
}

impl Default for ParkSettingsSpec {
    fn default() -> Self {
        ParkSettingsSpec {
            enabled: true,
            park_code: "*68".to_string(),
            group_park_code: "*58".to_string(),
            retrieve_code: "*88".to_string(),
            notify_parker: false,
            max_parked_per_extension: 10,
            recall: RecallSettings::default(),
        }
    }
}

/// A call park group: group park hunts its members in order and parks on
/// the first available one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkGroup {
    /// Generated (a UUID without hyphens).
    pub id: String,
    pub tenant_id: String,
    /// Unique within the tenant, ignoring case.
    pub name: String,
    /// Extension numbers of the tenant in hunting order, no duplicates;
    /// an extension is in at most one park group of its tenant.
    pub members: Vec<String>,
    /// Replaces the tenant's recall settings for calls parked through this
    /// group; `None` = the tenant's.
    pub recall: Option<RecallSettings>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a new park group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParkGroupSpec {
    pub name: String,
    pub members: Vec<String>,
    pub recall: Option<RecallSettings>,
}

/// A change to a park group: `None` keeps a field; `members` is replaced
/// as a whole; `recall: Some(None)` drops the override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParkGroupPatch {
    pub name: Option<String>,
    pub members: Option<Vec<String>>,
    pub recall: Option<Option<RecallSettings>>,
}

/// One entry of the park event log, as the park engine writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkEventRecord {
    /// Unique; appending an id that is stored already does nothing.
    pub id: String,
    pub tenant_id: String,
    /// Unix ms.
    pub at_ms: i64,
    /// One of [`crate::PARK_EVENT_KINDS`].
    pub kind: String,
    /// The parked call's id in the park engine, if it got one.
    pub park_id: Option<String>,
    /// The extension the call is (or was to be) parked on.
    pub extension: String,
    pub call_id: String,
    /// The extension that parked the call.
    pub parker: String,
    /// The parked party.
    pub parked_number: String,
    pub parked_name: String,
    /// The reason, who retrieved or answered, or where the recall went.
    pub detail: String,
}

/// Which park events [`crate::Store::park_events`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParkEventQuery {
    /// Matches `extension` or `parker`.
    pub extension: Option<String>,
    /// `at_ms >= since_ms`.
    pub since_ms: Option<i64>,
    /// `at_ms < until_ms`.
    pub until_ms: Option<i64>,
    /// Any of these kinds; empty = all.
    pub kinds: Vec<String>,
    /// At most this many, capped to [`crate::MAX_PARK_EVENTS`]; 0 means
    /// [`crate::DEFAULT_PARK_EVENTS`].
    pub limit: u32,
}

/// What a phone's function key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneKeyKind {
    /// The LED shows calls parked on an extension (the phone's own when
    /// the key has no target); a press lists them for retrieval.
    VisualPark,
    /// The same for every member of the phone's extension's call park group.
    VisualGroupPark,
    /// Busy lamp of another extension of the tenant (target required).
    Blf,
    /// Dials a number (target required).
    SpeedDial,
}

impl PhoneKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneKeyKind::VisualPark => "visual_park",
            PhoneKeyKind::VisualGroupPark => "visual_group_park",
            PhoneKeyKind::Blf => "blf",
            PhoneKeyKind::SpeedDial => "speed_dial",
        }
    }

    pub fn parse(s: &str) -> Option<PhoneKeyKind> {
        match s {
            "visual_park" => Some(PhoneKeyKind::VisualPark),
            "visual_group_park" => Some(PhoneKeyKind::VisualGroupPark),
            "blf" => Some(PhoneKeyKind::Blf),
            "speed_dial" => Some(PhoneKeyKind::SpeedDial),
            _ => None,
        }
    }
}

/// One function key of a phone, in the phone's key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneKey {
    pub kind: PhoneKeyKind,
    /// An extension of the tenant (`visual_park`, `blf`), a number to dial
    /// (`speed_dial`), or `None` (`visual_park` on the phone's own
    /// extension, `visual_group_park`).
    pub target: Option<String>,
    /// Shown on the key; `None` = a default for the kind.
    pub label: Option<String>,
}

/// A desk phone Orbit provisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// Generated (a UUID without hyphens).
    pub id: String,
    pub tenant_id: String,
    /// 12 lower-case hex digits; unique across all tenants.
    pub mac: String,
    /// `snom`.
    pub vendor: String,
    /// e.g. `D785`.
    pub model: String,
    /// The extension it registers as; `None` after that extension was
    /// deleted (the configuration then carries no identity).
    pub extension: Option<String>,
    pub label: String,
    pub keys: Vec<PhoneKey>,
    /// SHA-256 (hex) of the provisioning password.
    pub password_hash: String,
    /// Raised by every change to the phone's record.
    pub config_version: i64,
    /// Unix ms of the last successful configuration fetch.
    pub provisioned_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a new phone (the store checks them all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneSpec {
    pub mac: String,
    pub vendor: String,
    pub model: String,
    pub extension: Option<String>,
    pub label: String,
    pub keys: Vec<PhoneKey>,
}

/// A change to a phone: `None` keeps a field; `keys` is replaced as a
/// whole; `extension: Some(None)` leaves the phone without identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhonePatch {
    pub model: Option<String>,
    pub extension: Option<Option<String>>,
    pub label: Option<String>,
    pub keys: Option<Vec<PhoneKey>>,
}
