//! Presence for phones' BLF and Visual Park keys: SUBSCRIBE/NOTIFY for
//! `Event: dialog` (RFC 6665, RFC 4235). The subscription table and the
//! XML are `orbit-presence`'s; this file authenticates SUBSCRIBEs, builds
//! the dialog state of each resource from the calls and the park engine,
//! and sends the NOTIFYs in each subscription's dialog.
//!
//! Resources (the Request-URI user of a SUBSCRIBE):
//! - `103`: extension 103's calls (classic BLF);
//! - `park-103`: the calls parked on 103 (a Visual Park key);
//! - `parkgroup-<group id>`: the calls parked on any member of a call
//!   park group.

use std::collections::HashMap;
use std::time::Duration;

use orbit_presence::{
    DialogEntry, DialogInfo, DialogState, Direction, Limits, Notify, ParkedMark, Participant,
    Refused, Rendered, Resource, SubId, SubState, SubscribeRequest, Subscriptions,
};
use orbit_sip::response::stable_tag;
use orbit_sip::{Method, Response, ServerTx};

use crate::call::{CallState, LegState};
use crate::dialog::Dialog;
use crate::manager::{peer_of, Manager, Timer};
use crate::records::SubscriptionLog;
use crate::setup::respond_reply;
use orbit_store::{StoredSubscription, SubscriptionOp};

/// Responses to NOTIFYs come back as responses "for a leg" whose key is
/// this plus the subscription id.
pub(crate) const NOTIFY_KEYS: u64 = 1 << 62;

pub(crate) struct PresenceCore {
    pub subs: Subscriptions<Dialog>,
    pub by_dialog: HashMap<(String, String), SubId>,
    pub armed: Option<u64>,
    /// Subscriptions saved for a restart.
    pub log: SubscriptionLog,
}

impl PresenceCore {
    pub(crate) fn new(log: SubscriptionLog, limits: Limits) -> Self {
        PresenceCore {
            subs: Subscriptions::new(limits),
            by_dialog: HashMap::new(),
            armed: None,
            log,
        }
    }
}

/// NOTIFYs sent in one go before the manager lets other tasks run.
const FANOUT_SLICE: usize = 1000;

/// After a restart, versions go on from the saved one plus this, since
/// NOTIFYs sent after the last save were not counted (RFC 4235 wants the
/// version to grow strictly within a subscription).
const RESTART_VERSION_STEP: u32 = 1 << 16;

fn resource_key(r: &Resource) -> String {
    match r {
        Resource::Extension(e) => format!("ext:{e}"),
        Resource::Park(e) => format!("park:{e}"),
        Resource::ParkGroup(g) => format!("group:{g}"),
    }
}

fn resource_from_key(k: &str) -> Option<Resource> {
    let (kind, v) = k.split_once(':')?;
    Some(match kind {
        "ext" => Resource::Extension(v.to_string()),
        "park" => Resource::Park(v.to_string()),
        "group" => Resource::ParkGroup(v.to_string()),
        _ => return None,
    })
}

fn dialog_key(d: &Dialog) -> String {
    format!("{}|{}", d.call_id, d.local_tag)
}

const DIALOG_INFO: &str = orbit_presence::dialog_info::DIALOG_INFO_CONTENT_TYPE;

impl Manager {
    /// The resource a SUBSCRIBE's Request-URI user names, if it exists.
    fn resource_of(&self, tenant_id: &str, user: &str) -> Option<Resource> {
        let r = Resource::from_user(user);
        let d = self.store.directory();
        let exists = match &r {
            Resource::Extension(e) | Resource::Park(e) => d.extension(tenant_id, e).is_some(),
            Resource::ParkGroup(g) => d.park_group(tenant_id, g).is_some(),
        };
        exists.then_some(r)
    }

    pub(crate) async fn on_subscribe(&mut self, tx: ServerTx) {
        let req = tx.request().clone();
        if let Some(tag) = req.to.tag() {
            let id = self
                .presence
                .by_dialog
                .get(&(req.call_id.clone(), tag.to_string()))
                .copied();
            return match id {
                Some(id) => self.refresh_subscription(id, tx).await,
                None => {
                    tx.respond(&Response::new(481, "Subscription Does Not Exist"))
                        .await;
                }
            };
        }
        let Some(tenant) = self.tenant_of(&req) else {
            tx.respond(&Response::new(404, "Not Found (unknown domain)"))
                .await;
            return;
        };
        let event = req.header("event").unwrap_or("");
        if !event
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("dialog")
        {
            tx.respond(&Response::new(489, "Bad Event").header("Allow-Events", "dialog"))
                .await;
            return;
        }
        let accepts = req.header_list("accept");
        if !accepts.is_empty()
            && !accepts.iter().any(|a| {
                a.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case(DIALOG_INFO)
            })
        {
            tx.respond(&Response::new(406, "Not Acceptable").header("Accept", DIALOG_INFO))
                .await;
            return;
        }
        let ext = match self.authenticate_user(&req, tx.source(), &tenant) {
            Ok(ext) => ext,
            Err(reply) => return respond_reply(tx, *reply),
        };
        let user = crate::sipmsg::percent_decode(req.uri.user.as_deref().unwrap_or(""));
        let Some(resource) = self.resource_of(&tenant.id, &user) else {
            tx.respond(&Response::new(404, "Not Found")).await;
            return;
        };
        let expires = req
            .header("expires")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(Limits::default().default_expires_s);
        let local_tag = stable_tag(&req.message);
        let dialog = Dialog::for_incoming(&req, local_tag.clone(), peer_of(tx.source()));
        let now = self.park_now();
        let sub = SubscribeRequest {
            tenant: tenant.id.clone(),
            subscriber: ext.number.clone(),
            contact: format!("{}:{}", tx.source().transport.as_str(), tx.source().remote),
            resource,
            expires_s: expires,
            dialog,
        };
        match self.presence.subs.subscribe(now, sub) {
            Ok(id) => {
                self.presence
                    .by_dialog
                    .insert((req.call_id.clone(), local_tag), id);
                self.save_subscription(id);
                let granted = self
                    .presence
                    .subs
                    .get(id)
                    .map(|s| s.granted_s())
                    .unwrap_or(expires);
                let contact = self.cfg.local.contact(tx.source().transport);
                tx.respond(
                    &Response::new(200, "OK")
                        .header("Expires", granted.to_string())
                        .header("Contact", contact),
                )
                .await;
            }
            Err(e) => {
                tx.respond(&refused(&e)).await;
            }
        }
    }

    async fn refresh_subscription(&mut self, id: SubId, tx: ServerTx) {
        let req = tx.request();
        let cseq_ok = self
            .presence
            .subs
            .get_mut(id)
            .map(|s| s.dialog.accept_remote_cseq(req.cseq))
            .unwrap_or(false);
        if !cseq_ok {
            tx.respond(&Response::new(
                500,
                "Server Internal Error (CSeq out of order)",
            ))
            .await;
            return;
        }
        let expires = req
            .header("expires")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(Limits::default().default_expires_s);
        let now = self.park_now();
        match self.presence.subs.refresh(now, id, expires) {
            Ok(granted) => {
                if granted > 0 {
                    self.save_subscription(id);
                }
                tx.respond(&Response::new(200, "OK").header("Expires", granted.to_string()))
                    .await;
            }
            Err(e) => {
                tx.respond(&refused(&e)).await;
            }
        }
    }

    /// Keep a subscription for a restart (its dialog, version, expiry).
    fn save_subscription(&mut self, id: SubId) {
        let now = self.park_now();
        let Some(s) = self.presence.subs.get(id) else {
            return;
        };
        let left_ms = s.expires_at_ms().saturating_sub(now) as i64;
        let op = SubscriptionOp::Save(StoredSubscription {
            id: dialog_key(&s.dialog),
            tenant_id: s.tenant().to_string(),
            subscriber: s.subscriber().to_string(),
            contact: s.contact().to_string(),
            resource: resource_key(s.resource()),
            dialog: s.dialog.encode(),
            next_version: s.next_version(),
            expires_at: crate::manager::now_ms() + left_ms,
        });
        self.presence.log.record(op);
    }

    /// Subscriptions from before a restart: back in the table, each
    /// re-notified with the full state.
    pub(crate) async fn restore_subscriptions(&mut self) {
        let wall = crate::manager::now_ms();
        let saved = match self.store.live_subscriptions(wall).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read saved subscriptions");
                return;
            }
        };
        let now = self.park_now();
        let mut restored = 0;
        for s in saved {
            let (Some(dialog), Some(resource)) =
                (Dialog::decode(&s.dialog), resource_from_key(&s.resource))
            else {
                self.presence.log.record(SubscriptionOp::Delete(s.id));
                continue;
            };
            let key = (dialog.call_id.clone(), dialog.local_tag.clone());
            let id = self.presence.subs.restore(
                now,
                orbit_presence::SavedSubscription {
                    tenant: s.tenant_id,
                    subscriber: s.subscriber,
                    contact: s.contact,
                    resource,
                    dialog,
                    next_version: s.next_version.saturating_add(RESTART_VERSION_STEP),
                    expires_left_s: ((s.expires_at - wall).max(0) / 1000) as u32,
                },
            );
            self.presence.by_dialog.insert(key, id);
            self.save_subscription(id);
            restored += 1;
        }
        if restored > 0 {
            tracing::info!(subscriptions = restored, "subscriptions restored");
        }
    }

    /// Tell the watchers of everything `ck`'s parties take part in.
    pub(crate) fn presence_changed_for_call(&mut self, tenant_id: &str, numbers: &[String]) {
        let now = self.park_now();
        for n in numbers {
            self.presence
                .subs
                .changed(now, tenant_id, &Resource::Extension(n.clone()));
        }
    }

    /// The park list of `ext` changed: its Visual Park watchers and its
    /// group's watchers hear of it.
    pub(crate) fn presence_park_changed(&mut self, tenant_id: &str, ext: &str) {
        let now = self.park_now();
        self.presence
            .subs
            .changed(now, tenant_id, &Resource::Park(ext.to_string()));
        let group = self.store.directory().park_group_of(tenant_id, ext);
        if let Some(g) = group {
            self.presence
                .subs
                .changed(now, tenant_id, &Resource::ParkGroup(g.id.clone()));
        }
    }

    /// Send every NOTIFY the table has due, and keep a timer for the next.
    pub(crate) async fn drain_presence(&mut self) {
        // Nothing changes a resource while the queue drains (this task owns
        // every call), so each resource is rendered once per drain.
        let mut bodies: HashMap<(String, Resource), Rendered> = HashMap::new();
        // One change fans out to every watcher at once. Tokio's cooperative
        // budget would make this task yield part-way (after ~128 socket
        // sends), and on a busy runtime the rest of the fan-out then waits
        // behind every other ready task: measured as a 20-60 ms tail between
        // a group's first and last watcher. Run the fan-out unbudgeted, and
        // yield on our own terms every FANOUT_SLICE NOTIFYs so a huge one
        // cannot starve the media relays.
        let mut sent = 0usize;
        while let Some(n) = self.presence.subs.poll() {
            tokio::task::unconstrained(self.send_notify(n, &mut bodies)).await;
            sent += 1;
            if sent.is_multiple_of(FANOUT_SLICE) {
                tokio::task::yield_now().await;
            }
        }
        if let Some(d) = self.presence.subs.next_deadline() {
            if self.presence.armed.is_none_or(|a| d < a) {
                self.presence.armed = Some(d);
                let at = self.park.epoch + Duration::from_millis(d);
                self.arm(at, Timer::Presence);
            }
        }
    }

    pub(crate) fn on_presence_timer(&mut self) {
        self.presence.armed = None;
        let now = self.park_now();
        self.presence.subs.tick(now);
    }

    async fn send_notify(&mut self, n: Notify, bodies: &mut HashMap<(String, Resource), Rendered>) {
        let key = (n.tenant.clone(), n.resource.clone());
        let body = match bodies.get(&key) {
            Some(r) => r.with_version(n.version),
            None => {
                let domain = self
                    .store
                    .directory()
                    .tenant(&n.tenant)
                    .map(|t| t.domain.clone())
                    .unwrap_or_default();
                let r = Rendered::new(&self.dialog_info(&n.tenant, &domain, &n.resource));
                let body = r.with_version(n.version);
                bodies.insert(key, r);
                body
            }
        };
        let local = self.cfg.local.clone();
        let Some(sub) = self.presence.subs.get_mut(n.id) else {
            return;
        };
        let state = n.state.header();
        let (text, branch, _) = sub.dialog.request(Method::Notify, &local);
        let peer = sub.dialog.peer;
        let bytes = text
            .header("Contact", local.contact(peer.transport))
            .header("Event", "dialog")
            .header("Subscription-State", state)
            .body(DIALOG_INFO, body)
            .build();
        if matches!(n.state, SubState::Terminated { .. }) {
            let key = (sub.dialog.call_id.clone(), sub.dialog.local_tag.clone());
            self.presence
                .log
                .record(SubscriptionOp::Delete(dialog_key(&sub.dialog)));
            self.presence.by_dialog.remove(&key);
        }
        self.send_request(NOTIFY_KEYS + n.id, Method::Notify, branch, bytes, peer)
            .await;
    }

    /// A NOTIFY's answer: 481 (or no answer at all) means the phone has
    /// forgotten the subscription; drop it (RFC 6665 §4.1.3).
    pub(crate) fn on_notify_answer(&mut self, id: SubId, status: u16) {
        if status == 481 || status == 408 {
            if let Some((key, saved)) = self.presence.subs.get(id).map(|s| {
                (
                    (s.dialog.call_id.clone(), s.dialog.local_tag.clone()),
                    dialog_key(&s.dialog),
                )
            }) {
                self.presence.by_dialog.remove(&key);
                self.presence.log.record(SubscriptionOp::Delete(saved));
            }
            self.presence.subs.forget(id);
        }
    }

    /// The dialog state of a resource now.
    fn dialog_info(&self, tenant_id: &str, domain: &str, resource: &Resource) -> DialogInfo {
        match resource {
            Resource::Extension(ext) => DialogInfo {
                entity: resource.uri(domain),
                full: true,
                dialogs: self.extension_dialogs(tenant_id, domain, ext),
            },
            Resource::Park(ext) => DialogInfo {
                entity: resource.uri(domain),
                full: true,
                dialogs: self.parked_dialogs(tenant_id, domain, std::slice::from_ref(ext)),
            },
            Resource::ParkGroup(id) => {
                let members = self
                    .store
                    .directory()
                    .park_group(tenant_id, id)
                    .map(|g| g.members.clone())
                    .unwrap_or_default();
                DialogInfo {
                    entity: resource.uri(domain),
                    full: true,
                    dialogs: self.parked_dialogs(tenant_id, domain, &members),
                }
            }
        }
    }

    /// Calls of an extension as BLF dialogs: its phone's legs, ringing or
    /// answered, from its own point of view.
    fn extension_dialogs(&self, tenant_id: &str, domain: &str, ext: &str) -> Vec<DialogEntry> {
        let mut out = Vec::new();
        let keys = self
            .legs_by_number
            .get(ext)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for &key in keys {
            let Some(leg) = self.legs.get(&key) else {
                continue;
            };
            let Some(call) = self
                .calls
                .get(&leg.call)
                .filter(|c| c.tenant.id == tenant_id)
            else {
                continue;
            };
            if leg.state == LegState::Ended || !call.party_legs().contains(&key) {
                continue;
            }
            let other = call
                .sides
                .iter()
                .flatten()
                .filter(|k| **k != key)
                .filter_map(|k| self.legs.get(k))
                .map(|l| l.party.clone())
                .next()
                .or_else(|| (leg.side != orbit_media::LegId::A).then(|| call.caller.clone()));
            let state = match (leg.state, call.state) {
                (LegState::Confirmed, CallState::Answered) => DialogState::Confirmed,
                (LegState::Confirmed, CallState::Ringing) => DialogState::Early,
                _ => DialogState::Early,
            };
            out.push(DialogEntry {
                id: format!("leg-{key}"),
                call_id: Some(leg.dialog.call_id.clone()),
                local_tag: leg.dialog.remote_tag.clone(),
                remote_tag: Some(leg.dialog.local_tag.clone()),
                direction: Some(if leg.incoming {
                    Direction::Initiator
                } else {
                    Direction::Recipient
                }),
                state,
                local: Some(Participant {
                    uri: format!("sip:{ext}@{domain}"),
                    display: None,
                    target: None,
                }),
                remote: other.map(|p| Participant {
                    uri: format!("sip:{}@{domain}", p.number),
                    display: Some(p.name).filter(|n| !n.is_empty()),
                    target: None,
                }),
                parked: None,
            });
        }
        out
    }

    /// Calls parked on `exts`, each as a confirmed dialog naming the parked
    /// caller's dialog with Orbit (so an INVITE with Replaces retrieves it)
    /// and its retrieve number as the remote target.
    fn parked_dialogs(&self, tenant_id: &str, domain: &str, exts: &[String]) -> Vec<DialogEntry> {
        let retrieve = self
            .store
            .directory()
            .park_settings(tenant_id)
            .retrieve_code
            .clone();
        let mut out = Vec::new();
        for ext in exts {
            for p in self.park.engine.parked_on(tenant_id, ext) {
                let leg = self
                    .calls
                    .get(&p.call)
                    .and_then(|c| {
                        c.parked
                            .as_ref()
                            .and_then(|pk| c.leg_on(crate::call::other(pk.side)))
                    })
                    .and_then(|k| self.legs.get(&k));
                let target = format!(
                    "sip:{}@{domain}",
                    crate::codes::retrieve_address(&retrieve, p.id)
                );
                out.push(DialogEntry {
                    id: format!("park-{}", p.id),
                    call_id: leg.map(|l| l.dialog.call_id.clone()),
                    local_tag: leg.map(|l| l.dialog.local_tag.clone()),
                    remote_tag: leg.and_then(|l| l.dialog.remote_tag.clone()),
                    direction: Some(Direction::Recipient),
                    state: DialogState::Confirmed,
                    local: Some(Participant {
                        uri: format!("sip:{ext}@{domain}"),
                        display: None,
                        target: None,
                    }),
                    remote: Some(Participant {
                        uri: format!("sip:{}@{domain}", p.parked.number),
                        display: Some(p.parked.name.clone()).filter(|n| !n.is_empty()),
                        target: Some(target),
                    }),
                    parked: Some(ParkedMark {
                        parked_on: ext.clone(),
                        since_ms_unix: None,
                    }),
                });
            }
        }
        out
    }
}

fn refused(e: &Refused) -> Response {
    match e {
        Refused::TooBrief { min_s } => {
            Response::new(423, "Interval Too Brief").header("Min-Expires", min_s.to_string())
        }
        other => Response::new(other.status(), other.to_string()),
    }
}
