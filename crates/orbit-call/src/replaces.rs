//! Replaces (RFC 3891): parsing the header (also inside a Refer-To URI),
//! finding the dialog it names, and an INVITE with Replaces taking the
//! named leg's place in its call (what a BLF key press or a phone-side
//! attended transfer sends).

use std::sync::Arc;

use orbit_media::{Direction, LegConfig, LocalMedia, Negotiated, SessionDescription};
use orbit_sip::response::stable_tag;
use orbit_sip::uri::parse_name_addr;
use orbit_sip::{Response, ServerTx};
use orbit_store::Tenant;

use crate::answering::with_session_timer;
use crate::call::{other, CallState, LegKey, LegState, Party};
use crate::dialog::Dialog;
use crate::manager::{peer_of, Manager};
use crate::setup::ALLOW;
use crate::sipmsg::name_addr;

/// The dialog a Replaces header names (RFC 3891 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    pub early_only: bool,
}

impl Replaces {
    pub fn parse(value: &str) -> Option<Replaces> {
        let mut parts = value.split(';');
        let call_id = parts.next()?.trim().to_string();
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for p in parts {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            match n.trim().to_ascii_lowercase().as_str() {
                "to-tag" => to_tag = Some(v.trim().to_string()),
                "from-tag" => from_tag = Some(v.trim().to_string()),
                "early-only" => early_only = true,
                _ => {}
            }
        }
        if call_id.is_empty() {
            return None;
        }
        Some(Replaces {
            call_id,
            to_tag: to_tag?,
            from_tag: from_tag?,
            early_only,
        })
    }
}

/// `%XX` decoding for URI header values.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The target user and an embedded Replaces of a Refer-To value.
pub fn parse_refer_to(value: &str) -> Option<(String, Option<Replaces>)> {
    let na = parse_name_addr(value).ok()?;
    let raw = &na.uri.raw;
    let user = na.uri.user.clone()?;
    let replaces = raw.split_once('?').and_then(|(_, headers)| {
        headers.split('&').find_map(|h| {
            let (n, v) = h.split_once('=')?;
            n.eq_ignore_ascii_case("replaces")
                .then(|| Replaces::parse(&percent_decode(v)))
                .flatten()
        })
    });
    Some((user, replaces))
}

impl Manager {
    /// The leg whose dialog the Replaces names: both tags must match, one
    /// as Orbit's tag and the other as the phone's (senders differ in which
    /// side they call `to-tag`), so a guessed Call-ID alone finds nothing.
    pub(crate) fn find_replaced(&self, r: &Replaces) -> Option<LegKey> {
        [(&r.to_tag, &r.from_tag), (&r.from_tag, &r.to_tag)]
            .iter()
            .find_map(|(ours, theirs)| {
                let key = self
                    .by_dialog
                    .get(&(r.call_id.clone(), ours.to_string()))
                    .copied()?;
                let leg = self.legs.get(&key)?;
                (leg.dialog.remote_tag.as_deref() == Some(theirs.as_str())).then_some(key)
            })
    }

    /// An INVITE with Replaces (RFC 3891): the new phone takes over the
    /// named leg's place in its call.
    pub(crate) async fn on_invite_replaces(
        &mut self,
        tx: ServerTx,
        tenant: Arc<Tenant>,
        caller: Party,
        sd: SessionDescription,
        neg: Negotiated,
        se: Option<u32>,
    ) {
        let req = tx.request().clone();
        let Some(r) = req.header("replaces").and_then(Replaces::parse) else {
            tx.respond(&Response::new(400, "Bad Request (malformed Replaces)"))
                .await;
            return;
        };
        let found = self.find_replaced(&r).and_then(|k| {
            let l = self.legs.get(&k)?;
            let c = self.calls.get(&l.call)?;
            (c.tenant.id == tenant.id && c.leg_on(l.side) == Some(k))
                .then_some((k, l.call, l.side, l.state))
        });
        let Some((old, ck, side, state)) = found else {
            tx.respond(&Response::new(481, "Call/Transaction Does Not Exist"))
                .await;
            return;
        };
        let answered = self
            .calls
            .get(&ck)
            .is_some_and(|c| c.state == CallState::Answered);
        if r.early_only && answered {
            tx.respond(&Response::new(486, "Busy Here")).await;
            return;
        }
        if !answered || state != LegState::Confirmed {
            // Replacing a dialog still ringing (call pickup) is not offered.
            tx.respond(&Response::new(481, "Call/Transaction Does Not Exist"))
                .await;
            return;
        }
        let key = self.next_key();
        let local_tag = stable_tag(&req.message);
        let dialog = Dialog::for_incoming(&req, local_tag.clone(), peer_of(tx.source()));
        self.by_dialog.insert((req.call_id.clone(), local_tag), key);
        let mut leg = self.new_leg(key, ck, side, caller.clone(), dialog, true);
        leg.holding = sd.is_hold();
        leg.session_expires = se;
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
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
        self.legs.insert(key, leg);
        self.send_invite_2xx(key, tx, &resp).await;
        let old_party = self
            .legs
            .get(&old)
            .map(|l| l.party.number.clone())
            .unwrap_or_default();
        if let Some(call) = self.calls.get_mut(&ck) {
            call.set_leg(side, Some(key));
            call.transfers
                .push(format!("replaced {old_party} by {}", caller.number));
        }
        self.hang_up_leg(old).await;
        if let Some(call) = self.calls.get_mut(&ck) {
            call.media.set_config(side, LegConfig::from(&neg));
        }
        self.apply_modes(ck);
        self.publish(ck);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_with_replaces() {
        let (user, r) =
            parse_refer_to("<sip:103@acme.test?Replaces=abc%40host%3Bto-tag%3Dt1%3Bfrom-tag%3Df1>")
                .unwrap();
        assert_eq!(user, "103");
        let r = r.unwrap();
        assert_eq!(r.call_id, "abc@host");
        assert_eq!(r.to_tag, "t1");
        assert_eq!(r.from_tag, "f1");
        assert!(!r.early_only);
        let (user, r) = parse_refer_to("sip:104@acme.test").unwrap();
        assert_eq!((user.as_str(), r), ("104", None));
    }

    #[test]
    fn replaces_header() {
        let r = Replaces::parse("x@y;from-tag=a;to-tag=b;early-only").unwrap();
        assert!(r.early_only);
        assert_eq!((r.to_tag.as_str(), r.from_tag.as_str()), ("b", "a"));
        assert!(Replaces::parse("x@y;to-tag=b").is_none());
        assert_eq!(percent_decode("a%3Bb%zz%4"), "a;b%zz%4");
    }
}
