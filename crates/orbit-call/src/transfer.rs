//! Transfers: blind (REFER, RFC 3515) and attended (REFER with Replaces,
//! RFC 3891).
//!
//! A blind transfer rings the target on the transferor's media side while
//! the transferee hears music; the first answer takes the side and the
//! transferor is released. An attended transfer moves the other party of
//! the consultation call into this call with a re-INVITE pointing its
//! media at this call's port, then releases both of the transferor's legs.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Times a re-INVITE refused with 491 is sent again before the transfer fails.
const MAX_GLARE_RETRIES: u32 = 3;

use orbit_media::{negotiate, Direction, LegConfig, LegId, LocalMedia, Negotiated};
use orbit_sip::{Method, Response, ServerTx};
use orbit_store::Tenant;
use tracing::info;

use crate::call::{other, CallKey, CallState, Hunt, LegKey, LegState, OutInvite, Party, Transfer};
use crate::hunt::Shown;
use crate::manager::{Manager, Timer};
use crate::replaces::{parse_refer_to, Replaces};
use crate::setup::{sdp_of, ALLOW, CODECS};
use crate::sipmsg::{reason_phrase, sipfrag};

impl Manager {
    /// NOTIFY the transferor of a REFER's progress (RFC 3515 §2.4.5).
    pub(crate) async fn notify_refer(
        &mut self,
        key: LegKey,
        status: u16,
        reason: &str,
        last: bool,
    ) {
        let local = self.cfg.local.clone();
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        if leg.state == LegState::Ended {
            return;
        }
        let Some(id) = leg.refer_id else { return };
        let (text, branch, _) = leg.dialog.request(Method::Notify, &local);
        let state = if last {
            "terminated;reason=noresource".to_string()
        } else {
            "active;expires=60".to_string()
        };
        let bytes = text
            .header("Contact", local.contact(leg.dialog.peer.transport))
            .header("Event", format!("refer;id={id}"))
            .header("Subscription-State", state)
            .body("message/sipfrag;version=2.0", sipfrag(status, reason))
            .build();
        if last {
            leg.refer_id = None;
        }
        let peer = leg.dialog.peer;
        self.send_request(key, Method::Notify, branch, bytes, peer)
            .await;
    }

    pub(crate) async fn on_refer(&mut self, key: LegKey, tx: ServerTx) {
        let req = tx.request();
        let targets: Vec<&str> = req.header_list("refer-to");
        let parsed = match targets.as_slice() {
            [one] => parse_refer_to(one),
            _ => None,
        };
        let Some((target, replaces)) = parsed else {
            tx.respond(&Response::new(
                400,
                "Bad Request (one valid Refer-To is required)",
            ))
            .await;
            return;
        };
        let Some(leg) = self.legs.get(&key) else {
            return;
        };
        let (ck, side) = (leg.call, leg.side);
        let Some(call) = self.calls.get(&ck) else {
            return;
        };
        if call.state != CallState::Answered || call.leg_on(side) != Some(key) {
            tx.respond(&Response::new(403, "Forbidden (the call is not connected)"))
                .await;
            return;
        }
        if call.transfer.is_some() {
            tx.respond(&Response::new(
                491,
                "Request Pending (a transfer is in progress)",
            ))
            .await;
            return;
        }
        if call.leg_on(other(side)).is_none() {
            tx.respond(&Response::new(403, "Forbidden (nobody to transfer)"))
                .await;
            return;
        }
        let tenant = call.tenant.clone();
        let cseq = req.cseq;
        tx.respond(&Response::new(202, "Accepted")).await;
        if let Some(leg) = self.legs.get_mut(&key) {
            leg.refer_id = Some(cseq);
        }
        self.notify_refer(key, 100, "Trying", false).await;
        if replaces.is_none() {
            if let Some(feature) = self.feature_of(&tenant, &target) {
                return self.park_by_refer(ck, key, feature).await;
            }
        }
        match replaces {
            Some(r) => self.attended(ck, key, &tenant, r).await,
            None => self.blind(ck, key, &tenant, &target).await,
        }
    }

    async fn blind(&mut self, ck: CallKey, transferor: LegKey, tenant: &Arc<Tenant>, target: &str) {
        let Some(hunt) = self.plan(tenant, target) else {
            self.notify_refer(transferor, 404, "Not Found", true).await;
            return;
        };
        let Some(side) = self.legs.get(&transferor).map(|l| l.side) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        info!(call = ck, target, "blind transfer");
        call.transfer = Some(Transfer {
            transferor,
            side,
            hunt,
            replacing: None,
        });
        self.apply_modes(ck);
        self.transfer_next_step(ck).await;
    }

    pub(crate) async fn transfer_next_step(&mut self, ck: CallKey) {
        loop {
            let Some(call) = self.calls.get_mut(&ck) else {
                return;
            };
            let Some(t) = &mut call.transfer else { return };
            match t.hunt.steps.pop_front() {
                Some(step) => {
                    t.hunt.step_seq += 1;
                    let (seq, side) = (t.hunt.step_seq, t.side);
                    let shown = self.transferee(ck, side);
                    let rung = self.ring(ck, &step.numbers, side, &shown).await;
                    if let Some(t) = self.calls.get_mut(&ck).and_then(|c| c.transfer.as_mut()) {
                        t.hunt.forks.extend(rung.iter().copied());
                    }
                    if !rung.is_empty() {
                        self.arm(Instant::now() + step.ring_for, Timer::TransferRing(ck, seq));
                        return;
                    }
                }
                None => {
                    let status = if t.hunt.busy_seen { 486 } else { 480 };
                    return self.transfer_failed(ck, status).await;
                }
            }
        }
    }

    /// The party a transfer target sees calling: the one being transferred.
    fn transferee(&self, ck: CallKey, transferor_side: LegId) -> Shown {
        let party = self
            .calls
            .get(&ck)
            .and_then(|c| c.leg_on(other(transferor_side)))
            .and_then(|l| self.legs.get(&l))
            .map(|l| l.party.clone())
            .or_else(|| self.calls.get(&ck).map(|c| c.caller.clone()))
            .unwrap_or(Party {
                number: String::new(),
                name: String::new(),
            });
        Shown::caller(party)
    }

    pub(crate) async fn on_transfer_ring_timeout(&mut self, ck: CallKey, seq: u64) {
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let Some(t) = &mut call.transfer else { return };
        if t.hunt.step_seq != seq {
            return;
        }
        let forks = std::mem::take(&mut t.hunt.forks);
        for f in forks {
            self.cancel_leg(f).await;
        }
        self.transfer_next_step(ck).await;
    }

    /// The transfer did not happen: tell the transferor, and give the call
    /// back to it (or end it, if the transferor already hung up).
    async fn transfer_failed(&mut self, ck: CallKey, status: u16) {
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let Some(t) = call.transfer.take() else {
            return;
        };
        for f in t.hunt.forks {
            self.cancel_leg(f).await;
        }
        self.notify_refer(t.transferor, status, reason_phrase(status), true)
            .await;
        let still_there = self
            .calls
            .get(&ck)
            .is_some_and(|c| c.leg_on(t.side) == Some(t.transferor));
        if still_there {
            self.apply_modes(ck);
        } else {
            self.end_call(ck, "transfer_failed", None).await;
        }
    }

    /// The blind transfer's target answered on `key`.
    pub(crate) async fn transfer_answered(&mut self, ck: CallKey, key: LegKey, neg: Negotiated) {
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let Some(t) = call.transfer.take() else {
            return;
        };
        let others: Vec<LegKey> = t.hunt.forks.iter().copied().filter(|f| *f != key).collect();
        let from = self
            .legs
            .get(&t.transferor)
            .map(|l| l.party.number.clone())
            .unwrap_or_default();
        let to = self
            .legs
            .get(&key)
            .map(|l| l.party.number.clone())
            .unwrap_or_default();
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        call.transfers.push(format!("blind {from} -> {to}"));
        call.set_leg(t.side, Some(key));
        for f in others {
            self.cancel_leg(f).await;
        }
        // The transferor first hears how it ended, then is released; only
        // then does the new party's media take the side.
        self.notify_refer(t.transferor, 200, "OK", true).await;
        self.hang_up_leg(t.transferor).await;
        if let Some(leg) = self.legs.get_mut(&key) {
            leg.negotiated = Some(neg.clone());
        }
        if let Some(call) = self.calls.get_mut(&ck) {
            call.media.set_config(t.side, LegConfig::from(&neg));
        }
        self.apply_modes(ck);
    }

    /// REFER with Replaces: join this call's other party with the other
    /// party of the call the Replaces names.
    async fn attended(
        &mut self,
        ck: CallKey,
        transferor: LegKey,
        tenant: &Arc<Tenant>,
        r: Replaces,
    ) {
        let consult = self.find_replaced(&r).filter(|l| *l != transferor);
        let Some(consult_leg) = consult.and_then(|l| self.legs.get(&l)) else {
            self.notify_refer(transferor, 481, "Call/Transaction Does Not Exist", true)
                .await;
            return;
        };
        let (ck2, consult_side) = (consult_leg.call, consult_leg.side);
        let Some(call2) = self
            .calls
            .get(&ck2)
            .filter(|c| c.tenant.id == tenant.id && c.key != ck && c.state == CallState::Answered)
        else {
            self.notify_refer(transferor, 481, "Call/Transaction Does Not Exist", true)
                .await;
            return;
        };
        // The consultation went to a park code: park this call's other party.
        if let Some(feature) = call2.consult.clone() {
            self.park_by_refer(ck, transferor, feature).await;
            self.end_call(ck2, "consult_done", None).await;
            return;
        }
        let Some(mover) = call2.leg_on(other(consult_side)) else {
            self.notify_refer(transferor, 481, "Call/Transaction Does Not Exist", true)
                .await;
            return;
        };
        let Some(side) = self.legs.get(&transferor).map(|l| l.side) else {
            return;
        };
        let busy = self
            .legs
            .get(&mover)
            .is_none_or(|m| m.out_invite.is_some() || m.state != LegState::Confirmed);
        if busy {
            self.notify_refer(transferor, 491, "Request Pending", true)
                .await;
            return;
        }
        info!(call = ck, consult = ck2, "attended transfer");
        if let Some(call) = self.calls.get_mut(&ck) {
            call.transfer = Some(Transfer {
                transferor,
                side,
                hunt: Hunt::default(),
                replacing: Some((mover, ck2)),
            });
        }
        self.apply_modes(ck);
        self.send_move(ck, mover, side).await;
    }

    /// Re-INVITE `mover` with an offer on call `ck`'s media side `side`.
    async fn send_move(&mut self, ck: CallKey, mover: LegKey, side: LegId) {
        let Some(call) = self.calls.get(&ck) else {
            return;
        };
        let port = call.media.local_port(side);
        let local = self.cfg.local.clone();
        let Some(m) = self.legs.get_mut(&mover) else {
            return;
        };
        let codecs: Vec<_> = m
            .negotiated
            .as_ref()
            .map(|n| n.codecs.clone())
            .unwrap_or_else(|| CODECS.to_vec());
        let offer = m
            .sdp
            .render_offer(&LocalMedia::offer(port, &codecs, Direction::SendRecv));
        let (text, branch, cseq) = m.dialog.request(Method::Invite, &local);
        let bytes = text
            .header("Contact", local.contact(m.dialog.peer.transport))
            .header("Allow", ALLOW)
            .body("application/sdp", offer)
            .build();
        m.out_invite = Some(OutInvite {
            branch: branch.clone(),
            cseq,
            uri: m.dialog.remote_target.clone(),
            reinvite: true,
        });
        let peer = m.dialog.peer;
        self.send_request(mover, Method::Invite, branch, bytes, peer)
            .await;
    }

    /// A move refused with 491 is tried again (RFC 3261 §14.1: 2.1–4 s,
    /// since Orbit owns that dialog's Call-ID), a few times at most.
    pub(crate) async fn on_move_retry(&mut self, ck: CallKey, mover: LegKey) {
        let side = self
            .calls
            .get(&ck)
            .and_then(|c| c.transfer.as_ref())
            .filter(|t| t.replacing.is_some_and(|(m, _)| m == mover))
            .map(|t| t.side);
        let Some(side) = side else { return };
        let idle = self
            .legs
            .get(&mover)
            .is_some_and(|m| m.out_invite.is_none() && m.state == LegState::Confirmed);
        if idle {
            self.send_move(ck, mover, side).await;
        } else {
            self.transfer_failed(ck, 491).await;
        }
    }

    /// The answer to a re-INVITE Orbit sent (the move of an attended
    /// transfer).
    pub(crate) async fn on_reinvite_answer(
        &mut self,
        key: LegKey,
        status: u16,
        msg: Option<Box<orbit_sip::frame::Message>>,
    ) {
        if status < 200 {
            return;
        }
        let Some(inv) = self.legs.get(&key).and_then(|l| l.out_invite.clone()) else {
            return;
        };
        let moving_into = self.calls.iter().find_map(|(ck, c)| {
            c.transfer
                .as_ref()
                .and_then(|t| t.replacing)
                .filter(|(m, _)| *m == key)
                .map(|(_, from)| (*ck, from))
        });
        let answer = match (&msg, status) {
            (Some(m), 200..=299) => {
                self.confirm_outgoing(key, m).await;
                match sdp_of(m) {
                    Some(Ok(sd)) => negotiate(&sd, &CODECS).ok(),
                    _ => None,
                }
            }
            (Some(m), _) => {
                self.ack_failure(key, &inv, m).await;
                None
            }
            (None, _) => {
                if let Some(l) = self.legs.get_mut(&key) {
                    l.out_invite = None;
                }
                None
            }
        };
        let Some((ck, ck2)) = moving_into else { return };
        if status == 491 {
            let tries = self
                .legs
                .get_mut(&key)
                .map(|l| {
                    l.glare_retries += 1;
                    l.glare_retries
                })
                .unwrap_or(u32::MAX);
            if tries <= MAX_GLARE_RETRIES {
                let wait = Duration::from_millis(2100 + rand::random::<u64>() % 1900);
                self.arm(Instant::now() + wait, Timer::MoveRetry(ck, key));
                return;
            }
        }
        let Some(neg) = answer else {
            return self
                .transfer_failed(ck, if status >= 300 { status } else { 488 })
                .await;
        };
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let Some(t) = call.transfer.take() else {
            return;
        };
        // The moved party leaves its old call, which then ends.
        if let Some(c2) = self.calls.get_mut(&ck2) {
            for s in [LegId::A, LegId::B] {
                if c2.leg_on(s) == Some(key) {
                    c2.set_leg(s, None);
                }
            }
            c2.transfers.push("attended: joined to another call".into());
        }
        let from = self
            .legs
            .get(&t.transferor)
            .map(|l| l.party.number.clone())
            .unwrap_or_default();
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        leg.call = ck;
        leg.side = t.side;
        leg.negotiated = Some(neg.clone());
        leg.holding = false;
        let to = leg.party.number.clone();
        if let Some(call) = self.calls.get_mut(&ck) {
            call.set_leg(t.side, Some(key));
            call.transfers.push(format!("attended {from} -> {to}"));
        }
        self.notify_refer(t.transferor, 200, "OK", true).await;
        self.hang_up_leg(t.transferor).await;
        self.end_call(ck2, "transferred", None).await;
        if let Some(call) = self.calls.get_mut(&ck) {
            call.media.set_config(t.side, LegConfig::from(&neg));
        }
        self.apply_modes(ck);
    }
}
