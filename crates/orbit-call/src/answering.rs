//! Orbit as the answerer of an INVITE: the 2xx is resent until the ACK
//! comes (RFC 3261 §13.3.1.4), and lost ACKs of Orbit's own are sent again
//! when a phone resends its 2xx.

use std::time::Instant;

use orbit_media::{
    negotiate, Direction, LegConfig, LegId, LocalMedia, Negotiated, SessionDescription,
};
use orbit_sip::frame::Message;
use orbit_sip::response::stable_tag;
use orbit_sip::transaction::{T1, T2};
use orbit_sip::{Request, Response, ServerTx, Transport};
use tracing::info;

use crate::call::{other, CallKey, LegKey, Party, Unacked};
use crate::dialog::Dialog;
use crate::manager::peer_of;
use crate::manager::{Manager, Timer};
use crate::setup::*;
use crate::sipmsg::name_addr;

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
    /// Answer a caller's INVITE by putting it on media side `side` of call
    /// `ck` (a retrieve, a Replaces): a new leg, an SDP answer on that
    /// side's port, the other party's identity in the 200. The side's old
    /// leg, if any, is the caller's to hang up.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn attach_caller(
        &mut self,
        ck: CallKey,
        side: LegId,
        tx: ServerTx,
        caller: Party,
        sd: &SessionDescription,
        neg: Negotiated,
        se: Option<u32>,
    ) -> Option<LegKey> {
        let req = tx.request().clone();
        let key = self.next_key();
        let local_tag = stable_tag(&req.message);
        let dialog = Dialog::for_incoming(&req, local_tag.clone(), peer_of(tx.source()));
        let mut leg = self.new_leg(key, ck, side, caller, dialog, true);
        leg.holding = sd.is_hold();
        leg.session_expires = se;
        let call = self.calls.get(&ck)?;
        let port = call.media.local_port(side);
        let body = leg
            .sdp
            .render_answer(&LocalMedia::answer(&neg, port, Direction::SendRecv), &neg);
        leg.negotiated = Some(neg.clone());
        let other_party = call
            .leg_on(other(side))
            .and_then(|l| self.legs.get(&l))
            .map(|l| l.party.clone());
        let domain = call.tenant.domain.clone();
        let mut resp = Response::new(200, "OK")
            .header("Contact", self.cfg.local.contact(leg.dialog.peer.transport))
            .header("Allow", ALLOW)
            .header("Supported", "replaces, timer");
        if let Some(p) = &other_party {
            resp = resp.header(
                "P-Asserted-Identity",
                name_addr(&p.name, &p.number, &domain),
            );
        }
        resp.body = Some(("application/sdp".into(), body.into()));
        let resp = with_session_timer(resp, se);
        self.by_dialog.insert((req.call_id.clone(), local_tag), key);
        self.insert_leg(key, leg);
        self.send_invite_2xx(key, tx, &resp).await;
        let call = self.calls.get_mut(&ck)?;
        call.set_leg(side, Some(key));
        call.media.set_config(side, LegConfig::from(&neg));
        Some(key)
    }

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
        // The last wait ends at the give-up time, not after it.
        let next = (now + u.interval).min(u.give_up);
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
