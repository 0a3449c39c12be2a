//! Requests inside a leg's dialog: BYE, re-INVITE and UPDATE (hold,
//! resume, session refresh), INFO, and REFER (in `transfer`).

use std::time::Instant;

use orbit_media::{negotiate, Direction, LegConfig, LocalMedia};
use orbit_sip::{Method, Response, ServerTx};

use crate::answering::with_session_timer;
use crate::call::{LegKey, LegState};
use crate::dialog::contact_uri;
use crate::manager::Manager;
use crate::setup::{not_acceptable, sdp_of, session_expires, ALLOW, CODECS};

impl Manager {
    pub(crate) async fn on_in_dialog(&mut self, key: LegKey, tx: ServerTx) {
        let req = tx.request();
        let Some(leg) = self.legs.get_mut(&key) else {
            tx.respond(&Response::new(481, "Call/Transaction Does Not Exist"))
                .await;
            return;
        };
        if !leg.dialog.accept_remote_cseq(req.cseq) {
            tx.respond(&Response::new(
                500,
                "Server Internal Error (CSeq out of order)",
            ))
            .await;
            return;
        }
        let live = leg.state != LegState::Ended && self.calls.contains_key(&leg.call);
        match req.method {
            Method::Bye => {
                tx.respond(&Response::new(200, "OK")).await;
                if live {
                    self.leg_hung_up(key).await;
                }
            }
            _ if !live => {
                tx.respond(&Response::new(481, "Call/Transaction Does Not Exist"))
                    .await;
            }
            Method::Invite => self.on_reinvite(key, tx).await,
            Method::Update => self.on_update(key, tx).await,
            Method::Refer => self.on_refer(key, tx).await,
            // DTMF by INFO is not relayed (RFC 4733 events are); answer so the
            // phone does not tear the call down.
            Method::Info | Method::Options | Method::Notify => {
                tx.respond(&Response::new(200, "OK")).await;
            }
            _ => {
                tx.respond(&Response::new(405, "Method Not Allowed").header("Allow", ALLOW))
                    .await;
            }
        }
    }

    /// Apply an offer from the phone on `key` (re-INVITE or UPDATE) and
    /// return the SDP answer, or the response refusing it.
    fn take_offer(&mut self, key: LegKey, tx: &ServerTx) -> Result<String, Response> {
        let req = tx.request();
        let Some(leg) = self.legs.get_mut(&key) else {
            return Err(Response::new(481, "Call/Transaction Does Not Exist"));
        };
        let Some(call) = self.calls.get(&leg.call) else {
            return Err(Response::new(481, "Call/Transaction Does Not Exist"));
        };
        let port = call.media.local_port(leg.side);
        let body = match sdp_of(&req.message) {
            None => {
                // No offer (often a session refresh): offer what we have;
                // the answer comes in the ACK.
                let media = match &leg.negotiated {
                    Some(n) => LocalMedia::answer(n, port, Direction::SendRecv),
                    None => LocalMedia::offer(port, &CODECS, Direction::SendRecv),
                };
                return Ok(leg.sdp.render_offer(&LocalMedia {
                    direction: Direction::SendRecv,
                    ..media
                }));
            }
            Some(Err(())) => return Err(not_acceptable("the SDP offer could not be read")),
            Some(Ok(sd)) => sd,
        };
        let Ok(neg) = negotiate(&body, &CODECS) else {
            return Err(not_acceptable("audio with PCMU or PCMA is required"));
        };
        leg.holding = body.is_hold();
        if call.leg_on(leg.side) == Some(key) {
            call.media.set_config(leg.side, LegConfig::from(&neg));
        }
        let answer = leg
            .sdp
            .render_answer(&LocalMedia::answer(&neg, port, Direction::SendRecv), &neg);
        leg.negotiated = Some(neg);
        Ok(answer)
    }

    async fn on_reinvite(&mut self, key: LegKey, tx: ServerTx) {
        let Some(leg) = self.legs.get(&key) else {
            return;
        };
        // RFC 3261 §14: our own re-INVITE is pending on this dialog (glare).
        if leg.out_invite.is_some() {
            tx.respond(&Response::new(491, "Request Pending")).await;
            return;
        }
        let answer = match self.take_offer(key, &tx) {
            Ok(a) => a,
            Err(resp) => {
                tx.respond(&resp).await;
                return;
            }
        };
        let local = self.cfg.local.clone();
        let se = session_expires(tx.request());
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        if let Some(target) = contact_uri(&tx.request().message) {
            leg.dialog.remote_target = target;
        }
        leg.refreshed_at = Instant::now();
        if se.is_some() {
            leg.session_expires = se;
        }
        let mut resp = Response::new(200, "OK")
            .header("Contact", local.contact(leg.dialog.peer.transport))
            .header("Allow", ALLOW)
            .header("Supported", "replaces, timer");
        resp.body = Some(("application/sdp".into(), answer.into()));
        let resp = with_session_timer(resp, leg.session_expires);
        let ck = leg.call;
        self.send_invite_2xx(key, tx, &resp).await;
        self.apply_modes(ck);
    }

    async fn on_update(&mut self, key: LegKey, tx: ServerTx) {
        let has_offer = !tx.request().message.body.is_empty();
        let se = session_expires(tx.request());
        let mut resp = Response::new(200, "OK");
        if has_offer {
            match self.take_offer(key, &tx) {
                Ok(answer) => resp.body = Some(("application/sdp".into(), answer.into())),
                Err(r) => {
                    tx.respond(&r).await;
                    return;
                }
            }
        }
        let local = self.cfg.local.clone();
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        leg.refreshed_at = Instant::now();
        if se.is_some() {
            leg.session_expires = se;
        }
        resp = resp.header("Contact", local.contact(leg.dialog.peer.transport));
        let resp = with_session_timer(resp, leg.session_expires);
        let ck = leg.call;
        tx.respond(&resp).await;
        self.apply_modes(ck);
    }
}
