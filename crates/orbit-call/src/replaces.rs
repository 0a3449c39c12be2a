//! Replaces (RFC 3891): parsing the header (also inside a Refer-To URI),
//! finding the dialog it names, and an INVITE with Replaces taking the
//! named leg's place in its call (what a BLF key press or a phone-side
//! attended transfer sends).

use std::sync::Arc;

use orbit_media::{Negotiated, SessionDescription};
use orbit_sip::uri::parse_name_addr;
use orbit_sip::{Response, ServerTx};
use orbit_store::Tenant;

use crate::call::{CallState, LegKey, LegState, Party};
use crate::manager::Manager;
use crate::sipmsg::percent_decode;

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
        // Naming the parked caller's dialog (what a BLF key watching a park
        // sends, RFC 5359 §2.15) retrieves that parked call.
        let parked = self
            .calls
            .get(&ck)
            .and_then(|c| c.parked.as_ref())
            .filter(|p| p.side != side)
            .map(|p| p.id);
        if let Some(id) = parked {
            let feature = crate::codes::Feature::RetrieveId(id);
            return self
                .retrieve_by_invite(tx, tenant, caller, feature, sd, neg, se)
                .await;
        }
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
        if self
            .attach_caller(ck, side, tx, caller.clone(), &sd, neg, se)
            .await
            .is_none()
        {
            return;
        }
        let old_party = self
            .legs
            .get(&old)
            .map(|l| l.party.number.clone())
            .unwrap_or_default();
        if let Some(call) = self.calls.get_mut(&ck) {
            call.transfers
                .push(format!("replaced {old_party} by {}", caller.number));
        }
        self.hang_up_leg(old).await;
        self.apply_modes(ck);
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
