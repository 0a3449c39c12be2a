//! Setting calls up: the caller's INVITE (authentication, routing, media),
//! ringing the callee's phones in parallel, the first answer winning, and
//! CANCEL, ring timeouts and the 2xx/ACK handshake.

use std::time::{Duration, Instant};

use orbit_media::{
    negotiate, Codec, Direction, LegConfig, LegId, LocalMedia, LocalSession, MediaSession,
    SessionDescription,
};
use orbit_registrar::AuthOutcome;
use orbit_sip::frame::Message;
use orbit_sip::response::stable_tag;
use orbit_sip::transaction::{T1, T2};
use orbit_sip::{new_branch, ClientEvent, Method, Reply, Request, Response, ServerTx, Transport};
use orbit_store::{RingStrategy, Tenant};
use tracing::{debug, info};

use crate::call::{Call, CallKey, CallState, Heard, Hunt, Leg, LegKey, LegState, OutInvite, Party, Step, Unacked};
use crate::dialog::{Dialog, Peer};
use crate::manager::{now_ms, peer_of, Manager, Timer};
use crate::sipmsg::name_addr;

/// Ring group destinations followed before giving up (A -> B -> A loops).
const MAX_HOPS: u8 = 8;
pub(crate) const CODECS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, REFER, UPDATE, INFO, NOTIFY";

/// Answer a transaction now, or after the reply's delay (guard slow-down).
pub(crate) fn respond_reply(tx: ServerTx, reply: Reply) {
    tokio::spawn(async move {
        if let Some(d) = reply.delay {
            tokio::time::sleep(d).await;
        }
        tx.respond(&reply.response).await;
    });
}

pub(crate) fn sdp_of(msg: &Message) -> Option<Result<SessionDescription, ()>> {
    if msg.body.is_empty() {
        return None;
    }
    let ctype = msg.header("content-type").unwrap_or("application/sdp");
    if !ctype.trim().to_ascii_lowercase().starts_with("application/sdp") {
        return Some(Err(()));
    }
    Some(
        std::str::from_utf8(&msg.body)
            .map_err(|_| ())
            .and_then(|t| SessionDescription::parse(t).map_err(|_| ())),
    )
}

pub(crate) fn not_acceptable(why: &str) -> Response {
    Response::new(488, "Not Acceptable Here").header("Warning", format!("305 orbit \"{why}\""))
}

/// RFC 4028: the Session-Expires a request asks for, in seconds.
pub(crate) fn session_expires(req: &Request) -> Option<u32> {
    let v = req.header("session-expires").or_else(|| req.header("x"))?;
    v.split(';').next()?.trim().parse().ok()
}

impl Manager {
    pub(crate) async fn on_new_invite(&mut self, tx: ServerTx) {
        let req = tx.request().clone();
        let source = *tx.source();
        let tenant = {
            let d = self.store.directory();
            d.tenant_by_domain(&req.uri.host)
                .or_else(|| d.tenant_by_domain(&req.to.uri.host))
        };
        let Some(tenant) = tenant else {
            tx.respond(&Response::new(404, "Not Found (unknown domain)")).await;
            return;
        };
        if self.draining() {
            tx.respond(&Response::new(503, "Service Unavailable (shutting down)").header("Retry-After", "30"))
                .await;
            return;
        }
        let ext = {
            let store = self.store.clone();
            let tid = tenant.id.clone();
            match self.auth.authenticate(
                &req,
                &source,
                &tenant,
                |u| store.directory().extension(&tid, u),
                true,
            ) {
                AuthOutcome::Authenticated(ext) => ext,
                AuthOutcome::Respond(reply) => return respond_reply(tx, reply),
            }
        };
        if req.from.uri.user.as_deref() != Some(ext.number.as_str()) {
            tx.respond(&Response::new(403, "Forbidden (From does not match the credentials)"))
                .await;
            return;
        }
        if self.calls.len() >= self.cfg.max_calls {
            metrics::counter!("orbit_calls_refused_total", "why" => "limit").increment(1);
            tx.respond(
                &Response::new(503, "Service Unavailable (call limit reached)")
                    .header("Retry-After", "10"),
            )
            .await;
            return;
        }
        let se = session_expires(&req);
        if let Some(se) = se {
            if se < self.cfg.min_session_expires {
                tx.respond(
                    &Response::new(422, "Session Interval Too Small")
                        .header("Min-SE", self.cfg.min_session_expires.to_string()),
                )
                .await;
                return;
            }
        }
        let sd = match sdp_of(&req.message) {
            Some(Ok(sd)) => sd,
            Some(Err(())) => {
                tx.respond(&not_acceptable("the SDP offer could not be read")).await;
                return;
            }
            None => {
                tx.respond(&not_acceptable("an SDP offer is required in the INVITE"))
                    .await;
                return;
            }
        };
        let Ok(neg) = negotiate(&sd, &CODECS) else {
            tx.respond(&not_acceptable("audio with PCMU or PCMA is required"))
                .await;
            return;
        };
        let caller = Party {
            number: ext.number.clone(),
            name: ext.display_name.clone(),
        };
        if req.header("replaces").is_some() {
            return self
                .on_invite_replaces(tx, tenant, caller, sd, neg, se)
                .await;
        }
        let number = req.uri.user.clone().unwrap_or_default();
        let Some(hunt) = self.plan(&tenant, &number) else {
            tx.respond(&Response::new(404, "Not Found")).await;
            return;
        };
        let (a, b) = match (self.ports.allocate(), self.ports.allocate()) {
            (Ok(a), Ok(b)) => (a, b),
            _ => {
                metrics::counter!("orbit_calls_refused_total", "why" => "ports").increment(1);
                tx.respond(
                    &Response::new(503, "Service Unavailable (no media ports left)")
                        .header("Retry-After", "10"),
                )
                .await;
                return;
            }
        };
        let media = MediaSession::start(a, b);
        media.set_config(LegId::A, LegConfig::from(&neg));

        let call_key = self.next_key();
        let leg_key = self.next_key();
        let local_tag = stable_tag(&req.message);
        let dialog = Dialog::for_incoming(&req, local_tag.clone(), peer_of(&source));
        self.by_dialog
            .insert((req.call_id.clone(), local_tag), leg_key);
        if let Some(branch) = &req.via.branch {
            self.by_branch
                .insert((req.call_id.clone(), branch.clone()), leg_key);
        }
        let leg = self.new_leg(leg_key, call_key, LegId::A, caller.clone(), dialog, true);
        self.legs.insert(
            leg_key,
            Leg {
                negotiated: Some(neg),
                holding: sd.is_hold(),
                session_expires: se,
                ..leg
            },
        );
        info!(call = call_key, tenant = %tenant.domain, from = %caller.number, to = %number, "call");
        self.calls.insert(
            call_key,
            Call {
                key: call_key,
                id: uuid::Uuid::new_v4().to_string(),
                tenant,
                caller,
                dialled: number,
                started_at_ms: now_ms(),
                answered_at_ms: None,
                answered_by: None,
                transfers: Vec::new(),
                state: CallState::Ringing,
                sides: [Some(leg_key), None],
                hunt,
                pending_invite: Some(tx.clone()),
                sent_ringing: false,
                media,
                heard: [Heard::Other, Heard::Other],
                transfer: None,
            },
        );
        metrics::counter!("orbit_calls_total").increment(1);
        tx.respond(&Response::new(100, "Trying")).await;
        self.publish(call_key);
        self.next_step(call_key).await;
    }

    pub(crate) fn new_leg(
        &self,
        key: LegKey,
        call: CallKey,
        side: LegId,
        party: Party,
        dialog: Dialog,
        incoming: bool,
    ) -> Leg {
        Leg {
            key,
            call,
            side,
            party,
            dialog,
            state: if incoming {
                LegState::Confirmed
            } else {
                LegState::Calling
            },
            incoming,
            sdp: LocalSession::new(self.cfg.media_ip, rand::random::<u32>() as u64),
            negotiated: None,
            holding: false,
            out_invite: None,
            unacked: None,
            ack: None,
            session_expires: None,
            refreshed_at: Instant::now(),
            refer_id: None,
        }
    }

    /// How a number of the tenant is rung: an extension alone, or a ring
    /// group's members (all together, or one after another).
    pub(crate) fn plan(&self, tenant: &Tenant, number: &str) -> Option<Hunt> {
        let d = self.store.directory();
        if d.extension(&tenant.id, number).is_some() {
            return Some(Hunt {
                steps: [Step {
                    numbers: vec![number.to_string()],
                    ring_for: self.cfg.ring_timeout,
                }]
                .into(),
                ..Hunt::default()
            });
        }
        let group = d.ring_group(&tenant.id, number)?;
        let ring_for = Duration::from_secs(group.ring_time_s.max(1) as u64);
        let steps = match group.strategy {
            RingStrategy::RingAll => [Step {
                numbers: group.members.clone(),
                ring_for,
            }]
            .into(),
            RingStrategy::Sequential => group
                .members
                .iter()
                .map(|m| Step {
                    numbers: vec![m.clone()],
                    ring_for,
                })
                .collect(),
        };
        Some(Hunt {
            steps,
            fallback: group.no_answer_destination.clone(),
            ..Hunt::default()
        })
    }

    /// Ring the next step of the call's hunt, or give the caller the final
    /// answer when nothing is left.
    pub(crate) async fn next_step(&mut self, ck: CallKey) {
        loop {
            let Some(call) = self.calls.get_mut(&ck) else {
                return;
            };
            if call.state != CallState::Ringing {
                return;
            }
            match call.hunt.steps.pop_front() {
                Some(step) => {
                    call.hunt.step_seq += 1;
                    let seq = call.hunt.step_seq;
                    let rung = self.ring(ck, &step.numbers, LegId::B).await;
                    if rung > 0 {
                        if let Some(call) = self.calls.get_mut(&ck) {
                            call.hunt.rang = true;
                        }
                        self.arm(Instant::now() + step.ring_for, Timer::Ring(ck, seq));
                        return;
                    }
                }
                None => {
                    let tenant = call.tenant.clone();
                    let next = match call.hunt.fallback.take() {
                        Some(dest) if call.hunt.hops < MAX_HOPS => self.plan(&tenant, &dest),
                        _ => None,
                    };
                    let Some(call) = self.calls.get_mut(&ck) else {
                        return;
                    };
                    match next {
                        Some(h) => {
                            call.hunt.steps = h.steps;
                            call.hunt.fallback = h.fallback;
                            call.hunt.hops += 1;
                        }
                        None => {
                            let (status, reason) = if call.hunt.busy_seen {
                                (486, "busy")
                            } else if call.hunt.rang {
                                (480, "no_answer")
                            } else {
                                (480, "unavailable")
                            };
                            self.end_call(ck, reason, Some(status)).await;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Send INVITEs to every registered contact of `numbers` on media side
    /// `side`; returns how many went out. Forks join the call's hunt, or the
    /// transfer's when one is in progress.
    pub(crate) async fn ring(&mut self, ck: CallKey, numbers: &[String], side: LegId) -> usize {
        let Some(call) = self.calls.get(&ck) else {
            return 0;
        };
        let tenant = call.tenant.clone();
        // Who the rung phone sees calling: the caller, or for a transfer the
        // party being transferred.
        let presented = match &call.transfer {
            Some(_) => call
                .leg_on(crate::call::other(side))
                .and_then(|l| self.legs.get(&l))
                .map(|l| l.party.clone())
                .unwrap_or_else(|| call.caller.clone()),
            None => call.caller.clone(),
        };
        let exclude: Vec<Peer> = call
            .sides
            .iter()
            .flatten()
            .filter_map(|l| self.legs.get(l))
            .map(|l| l.dialog.peer)
            .collect();
        let preferred = call
            .leg_on(crate::call::other(side))
            .and_then(|l| self.legs.get(&l))
            .and_then(|l| l.negotiated.as_ref())
            .map(|n| n.codec())
            .unwrap_or(Codec::Pcmu);
        let port = call.media.local_port(side);
        let mut sent = 0;
        for number in numbers {
            let name = self
                .store
                .directory()
                .extension(&tenant.id, number)
                .map(|e| e.display_name.clone())
                .unwrap_or_default();
            for binding in self.registrar.bindings(&tenant.id, number) {
                let Some(peer) = Peer::parse(&binding.source) else {
                    continue;
                };
                if exclude.contains(&peer) {
                    continue;
                }
                let key = self.next_key();
                let mut dialog = Dialog::outgoing(
                    name_addr(&presented.name, &presented.number, &tenant.domain),
                    name_addr(&name, number, &tenant.domain),
                    binding.contact.clone(),
                    peer,
                );
                dialog.local_cseq = 1;
                let mut leg = self.new_leg(
                    key,
                    ck,
                    side,
                    Party {
                        number: number.clone(),
                        name: name.clone(),
                    },
                    dialog,
                    false,
                );
                let codecs = if preferred == Codec::Pcma {
                    [Codec::Pcma, Codec::Pcmu]
                } else {
                    CODECS
                };
                let offer = leg
                    .sdp
                    .render_offer(&LocalMedia::offer(port, &codecs, Direction::SendRecv));
                let branch = new_branch();
                let bytes = leg
                    .dialog
                    .request_with(Method::Invite, &self.cfg.local, &branch, 1)
                    .header("Contact", self.cfg.local.contact(peer.transport))
                    .header(
                        "P-Asserted-Identity",
                        name_addr(&presented.name, &presented.number, &tenant.domain),
                    )
                    .header("Allow", ALLOW)
                    .header("Supported", "replaces")
                    .body("application/sdp", offer)
                    .build();
                leg.out_invite = Some(OutInvite {
                    branch: branch.clone(),
                    cseq: 1,
                    uri: binding.contact.clone(),
                    reinvite: false,
                });
                self.by_dialog
                    .insert((leg.dialog.call_id.clone(), leg.dialog.local_tag.clone()), key);
                self.legs.insert(key, leg);
                if let Some(call) = self.calls.get_mut(&ck) {
                    match &mut call.transfer {
                        Some(t) => t.hunt.forks.push(key),
                        None => call.hunt.forks.push(key),
                    }
                }
                self.send_request(key, Method::Invite, branch, bytes, peer).await;
                sent += 1;
            }
        }
        sent
    }

    pub(crate) async fn on_ring_timeout(&mut self, ck: CallKey, seq: u64) {
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        if call.state != CallState::Ringing || call.hunt.step_seq != seq {
            return;
        }
        let forks = std::mem::take(&mut call.hunt.forks);
        for f in forks {
            self.cancel_leg(f).await;
        }
        self.next_step(ck).await;
    }

    /// CANCEL an outgoing INVITE; the leg lingers to ACK whatever final
    /// answer comes (and hang up a 2xx that crossed the CANCEL).
    pub(crate) async fn cancel_leg(&mut self, key: LegKey) {
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        if leg.state != LegState::Calling {
            return;
        }
        leg.state = LegState::Cancelling;
        let Some(inv) = leg.out_invite.clone() else {
            return;
        };
        let mut d = leg.dialog.clone();
        d.remote_tag = None;
        d.remote_target = inv.uri.clone();
        let bytes = d
            .request_with(Method::Cancel, &self.cfg.local, &inv.branch, inv.cseq)
            .build();
        let peer = leg.dialog.peer;
        self.send_request(key, Method::Cancel, inv.branch, bytes, peer)
            .await;
        self.arm(Instant::now() + 64 * T1, Timer::Forget(key));
    }

    pub(crate) async fn on_response(&mut self, key: LegKey, method: Method, event: ClientEvent) {
        let Some(leg) = self.legs.get(&key) else {
            return;
        };
        if method != Method::Invite {
            // BYE, CANCEL, NOTIFY answers need nothing; a timeout on them
            // changes nothing either (the leg is gone or going).
            return;
        }
        let (status, msg) = match event {
            ClientEvent::Timeout => (408, None),
            ClientEvent::Response(m) => match m.start {
                orbit_sip::frame::StartLine::Response { code, .. } => (code, Some(m)),
                _ => return,
            },
        };
        let Some(inv) = leg.out_invite.clone() else {
            return;
        };
        if let Some(m) = &msg {
            let cseq = m
                .header("cseq")
                .and_then(|c| c.split_whitespace().next())
                .and_then(|n| n.parse::<u32>().ok());
            if cseq != Some(inv.cseq) {
                return;
            }
        }
        if inv.reinvite {
            return self.on_reinvite_answer(key, status, msg).await;
        }
        match (leg.state, status) {
            (_, 100) => {}
            (LegState::Calling, 101..=199) => {
                if let Some(m) = &msg {
                    self.on_ringing(key, m).await;
                }
            }
            (LegState::Cancelling, 101..=199) => {}
            (_, 200..=299) => {
                let Some(m) = msg else { return };
                self.confirm_outgoing(key, &m).await;
                let cancelled = self.legs.get(&key).map(|l| l.state) == Some(LegState::Cancelling);
                if cancelled {
                    self.hang_up_leg(key).await;
                } else {
                    self.on_fork_answered(key, &m).await;
                }
            }
            (_, _) => {
                if let Some(m) = &msg {
                    self.ack_failure(key, &inv, m).await;
                }
                self.on_fork_failed(key, status).await;
            }
        }
    }

    async fn on_ringing(&mut self, key: LegKey, msg: &Message) {
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        leg.dialog.update_from_response(msg);
        let ck = leg.call;
        let side = leg.side;
        let early = match sdp_of(msg) {
            Some(Ok(sd)) => negotiate(&sd, &CODECS).ok(),
            _ => None,
        };
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        if call.transfer.is_some() || call.state != CallState::Ringing {
            return;
        }
        let Some(tx) = call.pending_invite.clone() else {
            return;
        };
        match early {
            // Early media (ringback or announcements from the callee's
            // side): relay it, from the first fork that offers it.
            Some(neg) if !call.sent_ringing => {
                call.media.set_config(side, LegConfig::from(&neg));
                call.sent_ringing = true;
                let port = call.media.local_port(LegId::A);
                let Some(a) = call.leg_on(LegId::A).and_then(|a| self.legs.get_mut(&a)) else {
                    return;
                };
                let Some(a_neg) = a.negotiated.clone() else {
                    return;
                };
                let body = a.sdp.render_answer(
                    &LocalMedia::answer(&a_neg, port, Direction::SendRecv),
                    &a_neg,
                );
                let contact = self.cfg.local.contact(a.dialog.peer.transport);
                let mut resp = Response::new(183, "Session Progress").header("Contact", contact);
                resp.body = Some(("application/sdp".into(), body.into()));
                tx.respond(&resp).await;
            }
            _ if !call.sent_ringing => {
                call.sent_ringing = true;
                let contact = self
                    .legs
                    .get(&call.sides[0].unwrap_or_default())
                    .map(|a| self.cfg.local.contact(a.dialog.peer.transport))
                    .unwrap_or_default();
                tx.respond(&Response::new(180, "Ringing").header("Contact", contact))
                    .await;
            }
            _ => {}
        }
    }

    /// A 2xx to an outgoing INVITE: complete the dialog and ACK it.
    pub(crate) async fn confirm_outgoing(&mut self, key: LegKey, msg: &Message) {
        let local = self.cfg.local.clone();
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        let Some(inv) = leg.out_invite.take() else {
            return;
        };
        leg.dialog.update_from_response(msg);
        let ack = leg.dialog.ack_2xx(&local, inv.cseq);
        leg.ack = Some(ack.clone());
        if leg.state == LegState::Calling {
            leg.state = LegState::Confirmed;
        }
        let peer = leg.dialog.peer;
        let _ = self.endpoint.send_raw(peer.transport, peer.addr, ack).await;
    }

    /// The ACK for a non-2xx final answer (same branch as the INVITE).
    pub(crate) async fn ack_failure(&mut self, key: LegKey, inv: &OutInvite, msg: &Message) {
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        leg.out_invite = None;
        let mut d = leg.dialog.clone();
        d.update_from_response(msg);
        d.remote_target = inv.uri.clone();
        if !inv.reinvite {
            d.route_set.clear();
        }
        let ack = d
            .request_with(Method::Ack, &self.cfg.local, &inv.branch, inv.cseq)
            .build();
        let peer = leg.dialog.peer;
        self.endpoint.set_ack(&inv.branch, ack.clone());
        let _ = self.endpoint.send_raw(peer.transport, peer.addr, ack).await;
    }

    async fn on_fork_failed(&mut self, key: LegKey, status: u16) {
        let Some(leg) = self.legs.get(&key) else {
            return;
        };
        let ck = leg.call;
        let was_cancelling = leg.state == LegState::Cancelling;
        self.forget_leg(key);
        if was_cancelling {
            return;
        }
        let busy = matches!(status, 486 | 600 | 603);
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        if let Some(t) = &mut call.transfer {
            if t.hunt.forks.contains(&key) {
                t.hunt.forks.retain(|f| *f != key);
                t.hunt.busy_seen |= busy;
                if t.hunt.forks.is_empty() {
                    self.transfer_next_step(ck).await;
                }
                return;
            }
        }
        if call.hunt.forks.contains(&key) {
            call.hunt.forks.retain(|f| *f != key);
            call.hunt.busy_seen |= busy;
            if call.hunt.forks.is_empty() {
                self.next_step(ck).await;
            }
        }
    }

    async fn on_fork_answered(&mut self, key: LegKey, msg: &Message) {
        let Some(leg) = self.legs.get(&key) else {
            return;
        };
        let ck = leg.call;
        let Some(call) = self.calls.get(&ck) else {
            return self.hang_up_leg(key).await;
        };
        let in_transfer = call
            .transfer
            .as_ref()
            .is_some_and(|t| t.hunt.forks.contains(&key));
        let in_hunt = call.state == CallState::Ringing && call.hunt.forks.contains(&key);
        let neg = match sdp_of(msg) {
            Some(Ok(sd)) => negotiate(&sd, &CODECS).ok(),
            _ => None,
        };
        let Some(neg) = neg.filter(|_| in_transfer || in_hunt) else {
            // A second phone answered too late, or answered without usable
            // media: hang it up; the others keep ringing.
            debug!(leg = key, "answer not taken");
            self.hang_up_leg(key).await;
            if in_hunt || in_transfer {
                self.on_fork_failed(key, 488).await;
            }
            return;
        };
        if in_transfer {
            return self.transfer_answered(ck, key, neg).await;
        }
        self.answer_call(ck, key, neg).await;
    }

    /// `key` answered the call: connect it to the caller.
    pub(crate) async fn answer_call(&mut self, ck: CallKey, key: LegKey, neg: orbit_media::Negotiated) {
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let others: Vec<LegKey> = call.hunt.forks.drain(..).filter(|f| *f != key).collect();
        call.hunt.step_seq += 1;
        call.state = CallState::Answered;
        call.answered_at_ms = Some(now_ms());
        call.media.set_config(LegId::B, LegConfig::from(&neg));
        call.set_leg(LegId::B, Some(key));
        let tx = call.pending_invite.take();
        let port_a = call.media.local_port(LegId::A);
        let domain = call.tenant.domain.clone();
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        leg.negotiated = Some(neg);
        let callee = leg.party.clone();
        if let Some(call) = self.calls.get_mut(&ck) {
            call.answered_by = Some(callee.number.clone());
        }
        for f in others {
            self.cancel_leg(f).await;
        }
        let Some(tx) = tx else { return };
        let a_key = self.calls.get(&ck).and_then(|c| c.leg_on(LegId::A));
        let Some(a) = a_key.and_then(|k| self.legs.get_mut(&k)) else {
            return;
        };
        if let Some(branch) = &tx.request().via.branch {
            self.by_branch
                .remove(&(tx.request().call_id.clone(), branch.clone()));
        }
        let Some(a_neg) = a.negotiated.clone() else {
            return;
        };
        let body = a
            .sdp
            .render_answer(&LocalMedia::answer(&a_neg, port_a, Direction::SendRecv), &a_neg);
        let mut resp = Response::new(200, "OK")
            .header("Contact", self.cfg.local.contact(a.dialog.peer.transport))
            .header("Allow", ALLOW)
            .header("Supported", "replaces, timer")
            .header(
                "P-Asserted-Identity",
                name_addr(&callee.name, &callee.number, &domain),
            );
        if let Some(se) = a.session_expires {
            resp = resp
                .header("Session-Expires", format!("{se};refresher=uac"))
                .header("Require", "timer");
        }
        resp.body = Some(("application/sdp".into(), body.into()));
        let bytes = tx.respond(&resp).await;
        let now = Instant::now();
        a.refreshed_at = now;
        a.unacked = Some(Unacked {
            tx,
            bytes,
            next: now + T1,
            interval: T1,
            give_up: now + 64 * T1,
        });
        let a_key = a.key;
        self.arm(now + T1, Timer::Resend2xx(a_key));
        self.publish(ck);
    }

    /// Resend an unacknowledged 2xx (UDP), or give up on the call.
    pub(crate) async fn resend_2xx(&mut self, key: LegKey, now: Instant) {
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        let Some(u) = &mut leg.unacked else {
            return;
        };
        if now >= u.give_up {
            leg.unacked = None;
            let ck = leg.call;
            info!(leg = key, "no ACK for 2xx; ending the call");
            self.end_call(ck, "failed", None).await;
            return;
        }
        let reliable = u.tx.source().transport != Transport::Udp;
        if !reliable {
            u.tx.resend(u.bytes.clone()).await;
        }
        u.interval = (u.interval * 2).min(T2);
        u.next = now + u.interval;
        let next = u.next;
        self.arm(next, Timer::Resend2xx(key));
    }

    pub(crate) async fn on_cancel(&mut self, tx: ServerTx) {
        let req = tx.request();
        let key = req
            .via
            .branch
            .as_ref()
            .map(|b| (req.call_id.clone(), b.clone()));
        let leg = key.and_then(|k| self.by_branch.get(&k).copied());
        let Some(call) = leg
            .and_then(|l| self.legs.get(&l))
            .map(|l| l.call)
            .filter(|c| {
                self.calls
                    .get(c)
                    .is_some_and(|c| c.state == CallState::Ringing)
            })
        else {
            tx.respond(&Response::new(481, "Call/Transaction Does Not Exist"))
                .await;
            return;
        };
        tx.respond(&Response::new(200, "OK")).await;
        self.end_call(call, "cancelled", Some(487)).await;
    }

    pub(crate) async fn on_ack(&mut self, req: &Request) {
        let Some(tag) = req.to.tag() else { return };
        let Some(key) = self
            .by_dialog
            .get(&(req.call_id.clone(), tag.to_string()))
            .copied()
        else {
            return;
        };
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        let pending = leg.unacked.as_ref().is_some_and(|u| u.tx.request().cseq == req.cseq);
        if pending {
            leg.unacked = None;
        }
        // An answer in the ACK (our 2xx carried the offer).
        if let Some(Ok(sd)) = sdp_of(&req.message) {
            if let Ok(neg) = negotiate(&sd, &CODECS) {
                let (ck, side) = (leg.call, leg.side);
                leg.holding = sd.is_hold();
                leg.negotiated = Some(neg.clone());
                if let Some(call) = self.calls.get(&ck) {
                    if call.leg_on(side) == Some(key) {
                        call.media.set_config(side, LegConfig::from(&neg));
                    }
                }
                self.apply_modes(ck);
            }
        }
    }

    /// A 2xx resent by a phone whose ACK got lost: ACK it again.
    pub(crate) async fn on_stray(&mut self, msg: &Message) {
        let is_invite_2xx = matches!(msg.start, orbit_sip::frame::StartLine::Response { code, .. } if (200..300).contains(&code))
            && msg
                .header("cseq")
                .is_some_and(|c| c.split_whitespace().nth(1) == Some("INVITE"));
        if !is_invite_2xx {
            return;
        }
        let from_tag = msg
            .header("from")
            .and_then(|f| orbit_sip::uri::parse_name_addr(f).ok())
            .and_then(|na| na.tag().map(str::to_string));
        let (Some(call_id), Some(tag)) = (msg.header("call-id"), from_tag) else {
            return;
        };
        let Some(key) = self.by_dialog.get(&(call_id.to_string(), tag)).copied() else {
            return;
        };
        if let Some(leg) = self.legs.get(&key) {
            if let Some(ack) = leg.ack.clone() {
                let peer = leg.dialog.peer;
                let _ = self.endpoint.send_raw(peer.transport, peer.addr, ack).await;
            }
        }
    }
}

