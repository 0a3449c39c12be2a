//! Answers from the phones Orbit rang: ringing and early media relayed to
//! the caller, the first 2xx wins, failures move the hunt on, and the
//! ACKs Orbit owes as the caller of each leg.

use crate::answering::with_session_timer;
use crate::call::{CallKey, CallState, LegKey, LegState, OutInvite, Party};
use crate::manager::{now_ms, Manager};
use crate::setup::*;
use crate::sipmsg::name_addr;
use orbit_media::{negotiate, Direction, LegConfig, LegId, LocalMedia};
use orbit_sip::frame::Message;
use orbit_sip::{ClientEvent, Method, Response};
use tracing::debug;

impl Manager {
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
        if self.is_recall_fork(ck, key) {
            return self.recall_fork_failed(ck, key, busy).await;
        }
        if let Some(p) = self.calls.get_mut(&ck).and_then(|c| c.parked.as_mut()) {
            p.retrievers.retain(|f| *f != key);
        }
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
        let in_recall = self.is_recall_fork(ck, key);
        let in_retrieve = self.is_retriever_fork(ck, key);
        let neg = match sdp_of(msg) {
            Some(Ok(sd)) => negotiate(&sd, &CODECS).ok(),
            _ => None,
        };
        let Some(neg) = neg.filter(|_| in_transfer || in_hunt || in_recall || in_retrieve) else {
            // A second phone answered too late, or answered without usable
            // media: hang it up; the others keep ringing.
            debug!(leg = key, "answer not taken");
            self.hang_up_leg(key).await;
            if in_hunt || in_transfer || in_recall {
                self.on_fork_failed(key, 488).await;
            }
            return;
        };
        if in_recall {
            return self.recall_answered(ck, key, neg).await;
        }
        if in_retrieve {
            return self.retriever_answered(ck, key, neg).await;
        }
        if in_transfer {
            return self.transfer_answered(ck, key, neg).await;
        }
        self.answer_call(ck, key, neg).await;
    }

    /// Send the caller its 200 (SDP for side A, `shown` as the answering
    /// party), resent until the ACK.
    pub(crate) async fn answer_leg_a(&mut self, ck: CallKey, shown: Option<Party>) {
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let Some(tx) = call.pending_invite.take() else {
            return;
        };
        let port_a = call.media.local_port(LegId::A);
        let domain = call.tenant.domain.clone();
        let Some(a) = call.leg_on(LegId::A).and_then(|k| self.legs.get_mut(&k)) else {
            return;
        };
        if let Some(branch) = &tx.request().via.branch {
            self.by_branch
                .remove(&(tx.request().call_id.clone(), branch.clone()));
        }
        let Some(a_neg) = a.negotiated.clone() else {
            return;
        };
        let body = a.sdp.render_answer(
            &LocalMedia::answer(&a_neg, port_a, Direction::SendRecv),
            &a_neg,
        );
        let mut resp = Response::new(200, "OK")
            .header("Contact", self.cfg.local.contact(a.dialog.peer.transport))
            .header("Allow", ALLOW)
            .header("Supported", "replaces, timer");
        if let Some(p) = shown {
            resp = resp.header(
                "P-Asserted-Identity",
                name_addr(&p.name, &p.number, &domain),
            );
        }
        let se = a.session_expires;
        let a_key = a.key;
        resp.body = Some(("application/sdp".into(), body.into()));
        let resp = with_session_timer(resp, se);
        self.send_invite_2xx(a_key, tx, &resp).await;
    }

    /// `key` answered the call: connect it to the caller.
    pub(crate) async fn answer_call(
        &mut self,
        ck: CallKey,
        key: LegKey,
        neg: orbit_media::Negotiated,
    ) {
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let others: Vec<LegKey> = call.hunt.forks.drain(..).filter(|f| *f != key).collect();
        call.hunt.step_seq += 1;
        call.state = CallState::Answered;
        call.answered_at_ms = Some(now_ms());
        call.media.set_config(LegId::B, LegConfig::from(&neg));
        call.set_leg(LegId::B, Some(key));
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
        self.answer_leg_a(ck, Some(callee)).await;
        self.publish(ck);
    }
}
