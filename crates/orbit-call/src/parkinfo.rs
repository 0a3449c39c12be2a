//! Unsolicited park notification (as PortSIP's `park-info`): when a call is
//! parked on an extension, that extension's phones (for a group park every
//! member's, and the parker's when `notify_parker` is on) get a NOTIFY
//! outside any dialog saying who parked which call where and how to
//! retrieve it; the same phones hear when it is cleared. The body is
//! documented in `orbit_presence::park_info`.

use orbit_park::{EventKind, ParkEvent};
use orbit_presence::{render_park_info, ClearReason, ParkAction, ParkInfo};
use orbit_sip::{new_branch, Method};

use crate::dialog::Peer;
use crate::manager::Manager;
use crate::sipmsg::{token, RequestText};

/// Answers to these NOTIFYs need nothing; they come back under this key.
pub(crate) const PARK_INFO_KEY: u64 = crate::presence::NOTIFY_KEYS + (1 << 60);

/// Who is told about one park, kept from the park until it is cleared.
#[derive(Debug, Clone)]
pub(crate) struct Told {
    pub extensions: Vec<String>,
    pub group: Option<String>,
    pub recall_s: u32,
    pub since_ms: i64,
}

impl Manager {
    /// `NOTIFY` with `Event: check-sync;reboot=false` to every phone
    /// registered for `ext`: Snom (and most desk phones) then fetch their
    /// configuration again.
    pub(crate) async fn check_sync(&mut self, tenant_id: &str, ext: &str) {
        let Some(tenant) = self.store.directory().tenant(tenant_id) else {
            return;
        };
        for b in self.registrar.bindings(tenant_id, ext) {
            let Some(peer) = Peer::parse(&b.source) else {
                continue;
            };
            let branch = new_branch();
            let bytes = RequestText::new(Method::Notify, b.contact.clone())
                .via(&self.cfg.local, peer.transport, &branch)
                .header("Max-Forwards", "70")
                .header(
                    "From",
                    format!("<sip:{ext}@{}>;tag={}", tenant.domain, token()),
                )
                .header("To", format!("<sip:{ext}@{}>", tenant.domain))
                .header("Call-ID", format!("{}@orbit", token()))
                .header("CSeq", "1 NOTIFY")
                .header("Contact", self.cfg.local.contact(peer.transport))
                .header("Event", "check-sync;reboot=false")
                .header("Subscription-State", "terminated;reason=noresource")
                .build();
            self.send_request(PARK_INFO_KEY, Method::Notify, branch, bytes, peer)
                .await;
        }
    }

    /// Remember who hears about park `id` (called when the park succeeds).
    pub(crate) fn park_audience(&mut self, id: u64, told: Told) {
        self.park.told.insert(id, told);
    }

    /// Send the park-info NOTIFYs an engine event calls for.
    pub(crate) async fn park_info_for(&mut self, e: &ParkEvent) {
        let Some(id) = e.park else { return };
        let action = match &e.kind {
            EventKind::Parked => ParkAction::Parked,
            EventKind::Retrieved { .. } => ParkAction::Cleared(ClearReason::Retrieved),
            EventKind::RecallAnswered { .. } => ParkAction::Cleared(ClearReason::RecallAnswered),
            EventKind::Abandoned => ParkAction::Cleared(ClearReason::Abandoned),
            EventKind::Ended { .. } => ParkAction::Cleared(ClearReason::RecallExhausted),
            _ => return,
        };
        let told = match action {
            ParkAction::Parked => self.park.told.get(&id).cloned(),
            ParkAction::Cleared(_) => self.park.told.remove(&id),
        };
        let Some(told) = told else { return };
        let Some(tenant) = self.store.directory().tenant(&e.tenant) else {
            return;
        };
        let code = self
            .store
            .directory()
            .park_settings(&e.tenant)
            .retrieve_code
            .clone();
        let retrieve = crate::codes::retrieve_address(&code, id);
        let parked = e.parked.clone().unwrap_or_default();
        let body = render_park_info(&ParkInfo {
            action,
            park_id: id,
            parked_on: e.parked_on.clone().unwrap_or_default(),
            group: told.group.clone(),
            parked_by: e.parker.clone().unwrap_or_default(),
            caller_number: parked.number,
            caller_name: Some(parked.name).filter(|n| !n.is_empty()),
            retrieve,
            recall_s: Some(told.recall_s),
            since_ms_unix: Some(told.since_ms),
        });
        for ext in &told.extensions {
            for b in self.registrar.bindings(&tenant.id, ext) {
                let Some(peer) = Peer::parse(&b.source) else {
                    continue;
                };
                let branch = new_branch();
                let bytes = RequestText::new(Method::Notify, b.contact.clone())
                    .via(&self.cfg.local, peer.transport, &branch)
                    .header("Max-Forwards", "70")
                    .header(
                        "From",
                        format!("<sip:park@{}>;tag={}", tenant.domain, token()),
                    )
                    .header("To", format!("<sip:{ext}@{}>", tenant.domain))
                    .header("Call-ID", format!("{}@orbit", token()))
                    .header("CSeq", "1 NOTIFY")
                    .header("Contact", self.cfg.local.contact(peer.transport))
                    .header("Event", orbit_presence::park_info::PARK_INFO_EVENT)
                    .header("Subscription-State", "terminated;reason=noresource")
                    .body(
                        orbit_presence::park_info::PARK_INFO_CONTENT_TYPE,
                        body.clone(),
                    )
                    .build();
                self.send_request(PARK_INFO_KEY, Method::Notify, branch, bytes, peer)
                    .await;
            }
        }
    }
}
