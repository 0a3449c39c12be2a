//! RFC 4235 `application/dialog-info+xml` bodies: what BLF and Visual Park
//! keys are told.
//!
//! [`render`] writes one document: the XML declaration, `<dialog-info>`
//! with `xmlns="urn:ietf:params:xml:ns:dialog-info"`, `version`,
//! `state="full|partial"` and `entity`, then one `<dialog>` per
//! [`DialogEntry`] with its children in the schema's order (`state`,
//! `local`, `remote`, then elements of other namespaces). Every value is
//! escaped (`& < > " '`). No dialogs in a full document means "idle"
//! (RFC 4235 §4.1: a full document lists every dialog there is).
//!
//! # A parked call (the shape of a Visual Park key)
//! The resource a Visual Park key watches (the park of an extension, or of
//! a group) lists one dialog per parked call:
//! - `state` [`PARKED_STATE`] = `confirmed`, `direction`
//!   [`PARKED_DIRECTION`] = `recipient`: the parked caller's call reached
//!   the park and was answered by it, as the park server reports it in
//!   RFC 5359 §2.15 (F16–F18: `state=confirmed` for the park dialog);
//! - `call-id`, `local-tag`, `remote-tag` of the parked caller's dialog
//!   with Orbit and a `remote` participant (the parked caller's identity)
//!   with a `target`: what a plain BLF press needs for an INVITE with
//!   `Replaces` (or, without tags, a call to the target; service.snom.com
//!   call pick-up page, methods 1 and 2). `orbit-call` retrieves a parked
//!   call on a `Replaces` naming that dialog, with or without `early-only`;
//! - the BroadWorks `callpark` element (below) naming the parked party,
//!   and Orbit's own `orbit:park` element saying where and since when.
//!
//! Why `confirmed`, per vendor (all sources found with the search tool):
//! - **Snom**: `confirmed` turns the BLF LED steady on, `early` makes it
//!   blink fast ("Idle → off, Ringing → blinking rapidly, Busy or
//!   Connected → on"; <https://service.snom.com/display/wiki/BLF+-+Busy+lamp+field>).
//!   Snom also has a `PARKED` LED status (`led_blink_slow` list,
//!   <https://docs.snom.com/display/wiki/How+to+change+the+LED+colour+and+behaviour+for+monitored+extensions>);
//!   which NOTIFY content maps to it is not documented. The Snom Visual
//!   Park key is built as an XML definition, which reads state and
//!   `bw:callpark` with XPath and sends the `Replaces` INVITE itself, so
//!   the press does not depend on the LED state.
//! - **Yealink**: `confirmed` = solid red ("busy or in a call"), `early` =
//!   fast flashing; "a call is parked to the monitored line" has its own
//!   slow-flashing red (T4x/T5x admin guide, BLF LED table,
//!   <https://manualshive.com/en/manual/yealink/sip-t5-series/3909785?page=439>).
//!   Yealink is BroadWorks-certified; the park indication is the
//!   BroadWorks `callpark` element inside dialog-info [inferred: the guide
//!   says "requires server support" and names no other mechanism].
//! - **Polycom/Poly**: since SIP 3.1, `early` and `confirmed` both show a
//!   solid busy lamp (FreeSWITCH PRESENCE_IN notes, tested with phones,
//!   <https://developer.signalwire.com/freeswitch/FreeSWITCH-Explained/Examples/PRESENCE-IN-event-example_13173553>);
//!   park orbits are watched as `automata` resources (Engineering Advisory
//!   62475, <https://studylib.net/doc/18383840/using-statically-configured-busy-lamp-field>).
//! - **OBi/Poly OBi edition**: the BroadWorks park status is exactly this
//!   shape, `<state>confirmed</state>` plus `bw:callpark`/`bw:parked`
//!   (OBi1000 admin guide p. 82,
//!   <https://manualshive.com/en/manual/obihai/obi1062/3153653?page=82>).
//!   Its "Call Park Monitor" key instead expects one *ringing* call per
//!   orbit (p. 96 of the 2017 guide,
//!   <https://manualshive.com/en/manual/obihai-technology/obi1032/3151346?page=96>),
//!   as sipXecs chose `early` for parked calls so a press picks them up
//!   (<https://www.mail-archive.com/sipx-dev@list.sipfoundry.org/msg02667.html>).
//!
//! So `confirmed` lights every phone above and is what RFC 5359 and the
//! BroadWorks example send; a deployment whose keys only pick up in the
//! ringing state may render parked entries with [`DialogState::Early`]
//! instead: the renderer writes whatever state the entry carries.
//!
//! # The BroadWorks callpark element
//! Source: the OBi1000 admin guide p. 82 (URL above) and
//! `InterLinked1/phreakscript` `res/res_pjsip_sca_body_generator.c`
//! (namespace and the `callpark`/`parked`/`identity` nesting). The
//! namespace is declared on the root with the prefix `bw` (as in the OBi
//! example); `identity` inside it is in the dialog-info namespace:
//! ```xml
//! <bw:callpark><bw:parked><identity display="Alice">sip:106@acme.example</identity></bw:parked></bw:callpark>
//! ```

use crate::xml::{attr, escape_into};

/// `Content-Type` of a dialog-info body.
pub const DIALOG_INFO_CONTENT_TYPE: &str = "application/dialog-info+xml";
/// The `Event` package name.
pub const DIALOG_EVENT: &str = "dialog";
/// RFC 4235 namespace.
pub const DIALOG_INFO_NS: &str = "urn:ietf:params:xml:ns:dialog-info";
/// BroadWorks call park namespace, bound to the prefix `bw`.
pub const CALLPARK_NS: &str = "http://schema.broadsoft.com/callpark";
/// Orbit's park namespace, bound to the prefix `orbit`.
pub const ORBIT_PARK_NS: &str = "urn:x-orbit:park";
/// The state a parked call is shown in (see the module docs).
pub const PARKED_STATE: DialogState = DialogState::Confirmed;
/// The direction a parked call is shown with.
pub const PARKED_DIRECTION: Direction = Direction::Recipient;

/// RFC 4235 §3.7.1 dialog states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// A request was sent, nothing came back yet (off hook, dialling).
    Trying,
    /// A provisional response without a to-tag.
    Proceeding,
    /// Ringing: a provisional response with a to-tag.
    Early,
    /// Answered.
    Confirmed,
    /// Ended.
    Terminated,
}

impl DialogState {
    /// The `<state>` text.
    pub fn as_str(self) -> &'static str {
        match self {
            DialogState::Trying => "trying",
            DialogState::Proceeding => "proceeding",
            DialogState::Early => "early",
            DialogState::Confirmed => "confirmed",
            DialogState::Terminated => "terminated",
        }
    }
}

/// Who started the dialog, seen from the watched resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The resource sent the INVITE (an outgoing call).
    Initiator,
    /// The resource received it (an incoming call, a parked call).
    Recipient,
}

impl Direction {
    /// The `direction` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Initiator => "initiator",
            Direction::Recipient => "recipient",
        }
    }
}

/// A `<local>` or `<remote>` participant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Participant {
    /// `<identity>`: the participant's URI.
    pub uri: String,
    /// `<identity display="...">`.
    pub display: Option<String>,
    /// `<target uri="...">`: where a call to this participant goes.
    pub target: Option<String>,
}

/// Marks a dialog as a parked call: rendered as the BroadWorks
/// `bw:callpark` element (naming the `remote` participant) and Orbit's
/// `<orbit:park on="..." since-ms="..."/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParkedMark {
    /// The extension the call is parked on.
    pub parked_on: String,
    /// When it was parked, Unix time in milliseconds (for "how long").
    pub since_ms_unix: Option<i64>,
}

/// One `<dialog>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogEntry {
    /// `id`: unique within the document and stable across versions.
    pub id: String,
    /// `call-id` of the dialog (Orbit's leg to the phone).
    pub call_id: Option<String>,
    /// `local-tag`: Orbit's tag in that dialog.
    pub local_tag: Option<String>,
    /// `remote-tag`: the phone's tag in that dialog.
    pub remote_tag: Option<String>,
    /// `direction`.
    pub direction: Option<Direction>,
    /// `<state>`.
    pub state: DialogState,
    /// `<local>`: the watched resource's side.
    pub local: Option<Participant>,
    /// `<remote>`: the other party (for a parked call, the parked caller).
    pub remote: Option<Participant>,
    /// Set for a parked call.
    pub parked: Option<ParkedMark>,
}

/// One document's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogInfo {
    /// `entity`: the watched resource's URI.
    pub entity: String,
    /// `state="full"` (every dialog listed) or `"partial"` (changes only).
    pub full: bool,
    /// The dialogs, in the order to render.
    pub dialogs: Vec<DialogEntry>,
}

/// Renders `info` as document number `version` of its subscription.
pub fn render(info: &DialogInfo, version: u32) -> String {
    Rendered::new(info).with_version(version)
}

/// A resource's body rendered once, for every watcher: only the `version`
/// differs per subscription, so a change watched by a hundred phones is
/// serialised once and spliced a hundred times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Up to the `version` attribute's value.
    head: String,
    /// From the closing quote of the `version` attribute to the end.
    tail: String,
}

impl Rendered {
    /// Renders everything but the version.
    pub fn new(info: &DialogInfo) -> Self {
        let mut head = String::with_capacity(256);
        head.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dialog-info");
        attr(&mut head, "xmlns", DIALOG_INFO_NS);
        if info.dialogs.iter().any(|d| d.parked.is_some()) {
            attr(&mut head, "xmlns:bw", CALLPARK_NS);
            attr(&mut head, "xmlns:orbit", ORBIT_PARK_NS);
        }
        head.push_str(" version=\"");
        let mut tail = String::with_capacity(128 + 512 * info.dialogs.len());
        tail.push('"');
        attr(
            &mut tail,
            "state",
            if info.full { "full" } else { "partial" },
        );
        attr(&mut tail, "entity", &info.entity);
        tail.push_str(">\n");
        for d in &info.dialogs {
            dialog(&mut tail, d);
        }
        tail.push_str("</dialog-info>\n");
        Rendered { head, tail }
    }

    /// The body as one subscription's NOTIFY carries it.
    pub fn with_version(&self, version: u32) -> String {
        let v = version.to_string();
        let mut out = String::with_capacity(self.head.len() + v.len() + self.tail.len());
        out.push_str(&self.head);
        out.push_str(&v);
        out.push_str(&self.tail);
        out
    }
}

fn dialog(out: &mut String, d: &DialogEntry) {
    out.push_str("  <dialog");
    attr(out, "id", &d.id);
    for (name, value) in [
        ("call-id", &d.call_id),
        ("local-tag", &d.local_tag),
        ("remote-tag", &d.remote_tag),
    ] {
        if let Some(v) = value {
            attr(out, name, v);
        }
    }
    if let Some(dir) = d.direction {
        attr(out, "direction", dir.as_str());
    }
    out.push_str(">\n    <state>");
    out.push_str(d.state.as_str());
    out.push_str("</state>\n");
    if let Some(p) = &d.local {
        participant(out, "local", p);
    }
    if let Some(p) = &d.remote {
        participant(out, "remote", p);
    }
    if let Some(mark) = &d.parked {
        out.push_str("    <bw:callpark>\n      <bw:parked>");
        if let Some(p) = &d.remote {
            identity(out, p);
        }
        out.push_str("</bw:parked>\n    </bw:callpark>\n    <orbit:park");
        attr(out, "on", &mark.parked_on);
        if let Some(since) = mark.since_ms_unix {
            attr(out, "since-ms", &since.to_string());
        }
        out.push_str("/>\n");
    }
    out.push_str("  </dialog>\n");
}

fn participant(out: &mut String, element: &str, p: &Participant) {
    out.push_str("    <");
    out.push_str(element);
    out.push_str(">\n      ");
    identity(out, p);
    out.push('\n');
    if let Some(target) = &p.target {
        out.push_str("      <target");
        attr(out, "uri", target);
        out.push_str("/>\n");
    }
    out.push_str("    </");
    out.push_str(element);
    out.push_str(">\n");
}

fn identity(out: &mut String, p: &Participant) {
    out.push_str("<identity");
    if let Some(display) = &p.display {
        attr(out, "display", display);
    }
    out.push('>');
    escape_into(out, &p.uri);
    out.push_str("</identity>");
}
