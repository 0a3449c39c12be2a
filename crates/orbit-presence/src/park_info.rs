//! The body of Orbit's unsolicited park notification.
//!
//! PortSIP tells a phone about a call parked on its extension with an
//! out-of-dialog `NOTIFY` with `Event: park-info` carrying "the parker,
//! parked, and retrieve information"; its body is not public (research
//! notes, §3.2). Orbit sends the same event with its own small, documented
//! body, `application/x-orbit-park-info+xml`, one document per park and
//! change:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <park-info xmlns="urn:x-orbit:park" action="parked" park-id="17">
//!   <parked-on>103</parked-on>
//!   <group>front</group>                      <!-- group park only -->
//!   <parked-by>101</parked-by>
//!   <caller number="106" name="Alice"/>       <!-- name optional -->
//!   <retrieve>*88103</retrieve>               <!-- what to dial -->
//!   <recall-s>300</recall-s>                  <!-- optional -->
//!   <since-ms>1764045000000</since-ms>         <!-- optional, Unix ms -->
//! </park-info>
//! ```
//!
//! - `action` is `parked` or `cleared`; a cleared document adds
//!   `reason="retrieved|recall-answered|abandoned|recall-exhausted"` and
//!   repeats the park's fields, so a phone can drop the entry by
//!   `park-id` alone or show who it was;
//! - `park-id` is Orbit's park id (unique within a process run; with
//!   `parked-on` it names one parked call for the phone's lifetime);
//! - `retrieve` is what the phone dials to retrieve exactly this call
//!   (a code such as `*88103`, or a per-call address);
//! - `recall-s` is the recall timer in seconds from `since-ms`.
//!
//! Elements come in the order above; absent optional ones are omitted.
//! Phones must ignore elements and attributes they do not know, so the
//! body can grow. The I/O layer sends it to every registered contact of
//! the extension (for a group park every member's, and the parker's when
//! `notify_parker` is on) as `NOTIFY` outside any dialog, with
//! `Event: park-info` and `Content-Type: application/x-orbit-park-info+xml`.

use crate::xml::{attr, escape_into};

/// `Content-Type` of the park notification body.
pub const PARK_INFO_CONTENT_TYPE: &str = "application/x-orbit-park-info+xml";
/// The `Event` of the park notification (PortSIP's name).
pub const PARK_INFO_EVENT: &str = "park-info";

/// What happened to the park.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkAction {
    /// The call was parked.
    Parked,
    /// The park ended; the phone should drop it from its list.
    Cleared(ClearReason),
}

/// Why a park was cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearReason {
    /// Someone retrieved it.
    Retrieved,
    /// Someone answered its recall.
    RecallAnswered,
    /// The parked caller hung up.
    Abandoned,
    /// Nobody answered the recall; the call was hung up.
    RecallExhausted,
}

impl ClearReason {
    /// The `reason` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ClearReason::Retrieved => "retrieved",
            ClearReason::RecallAnswered => "recall-answered",
            ClearReason::Abandoned => "abandoned",
            ClearReason::RecallExhausted => "recall-exhausted",
        }
    }
}

/// One park notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkInfo {
    /// Parked or cleared.
    pub action: ParkAction,
    /// Orbit's park id.
    pub park_id: u64,
    /// The extension the call is parked on.
    pub parked_on: String,
    /// The call park group, for a group park.
    pub group: Option<String>,
    /// The extension that parked it.
    pub parked_by: String,
    /// The parked caller's number.
    pub caller_number: String,
    /// The parked caller's display name.
    pub caller_name: Option<String>,
    /// What to dial to retrieve this call.
    pub retrieve: String,
    /// The recall timer, seconds after `since_ms_unix`.
    pub recall_s: Option<u32>,
    /// When it was parked, Unix time in milliseconds.
    pub since_ms_unix: Option<i64>,
}

/// Renders the `application/x-orbit-park-info+xml` body for `info`.
pub fn render_park_info(info: &ParkInfo) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<park-info");
    attr(&mut out, "xmlns", crate::dialog_info::ORBIT_PARK_NS);
    match info.action {
        ParkAction::Parked => attr(&mut out, "action", "parked"),
        ParkAction::Cleared(reason) => {
            attr(&mut out, "action", "cleared");
            attr(&mut out, "reason", reason.as_str());
        }
    }
    attr(&mut out, "park-id", &info.park_id.to_string());
    out.push_str(">\n");
    element(&mut out, "parked-on", &info.parked_on);
    if let Some(group) = &info.group {
        element(&mut out, "group", group);
    }
    element(&mut out, "parked-by", &info.parked_by);
    out.push_str("  <caller");
    attr(&mut out, "number", &info.caller_number);
    if let Some(name) = &info.caller_name {
        attr(&mut out, "name", name);
    }
    out.push_str("/>\n");
    element(&mut out, "retrieve", &info.retrieve);
    if let Some(s) = info.recall_s {
        element(&mut out, "recall-s", &s.to_string());
    }
    if let Some(ms) = info.since_ms_unix {
        element(&mut out, "since-ms", &ms.to_string());
    }
    out.push_str("</park-info>\n");
    out
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push_str("  <");
    out.push_str(name);
    out.push('>');
    escape_into(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}
