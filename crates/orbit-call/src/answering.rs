//! Orbit as the answerer of an INVITE: the 2xx is resent until the ACK
//! comes (RFC 3261 §13.3.1.4), and lost ACKs of Orbit's own are sent again
//! when a phone resends its 2xx.

use std::time::Instant;

use orbit_media::{negotiate, LegConfig};
use orbit_sip::frame::Message;
use orbit_sip::transaction::{T1, T2};
use orbit_sip::{Request, Response, ServerTx, Transport};
use tracing::info;

use crate::call::{LegKey, Unacked};
use crate::manager::{Manager, Timer};
use crate::setup::*;

/// RFC 4028 headers for a leg that uses session timers (the phone refreshes).
pub(crate) fn with_session_timer(resp: Response, se: Option<u32>) -> Response {
    match se {
        Some(se) => resp
            .header("Session-Expires", format!("{se};refresher=uac"))
            .header("Require", "timer"),
        None => resp,
    }
}

impl Manager {
    /// Send a 2xx to an INVITE on leg `key` and resend it until the ACK.
    pub(crate) async fn send_invite_2xx(&mut self, key: LegKey, tx: ServerTx, resp: &Response) {
        let bytes = tx.respond(resp).await;
        let now = Instant::now();
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        leg.refreshed_at = now;
        leg.unacked = Some(Unacked {
            tx,
            bytes,
            next: now + T1,
            interval: T1,
            give_up: now + 64 * T1,
        });
        self.arm(now + T1, Timer::Resend2xx(key));
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
        let pending = leg
            .unacked
            .as_ref()
            .is_some_and(|u| u.tx.request().cseq == req.cseq);
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
