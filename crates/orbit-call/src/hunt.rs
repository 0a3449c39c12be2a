//! Ringing: which phones a number rings (an extension, or a ring group
//! all at once or in turn, then its no-answer destination), sending the
//! INVITEs, ring timeouts and CANCEL.

use crate::call::{CallKey, CallState, Hunt, LegKey, LegState, OutInvite, Party, Step};
use crate::dialog::{Dialog, Peer};
use crate::manager::{Manager, Timer};
use crate::setup::*;
use crate::sipmsg::name_addr;
use orbit_media::{Codec, Direction, LegId, LocalMedia};
use orbit_sip::transaction::T1;
use orbit_sip::{new_branch, Method};
use orbit_store::{RingStrategy, Tenant};
use std::time::{Duration, Instant};

/// Ring group destinations followed before giving up (A -> B -> A loops).
const MAX_HOPS: u8 = 8;

/// How a rung phone is shown the call: who calls (From and
/// `P-Asserted-Identity`), an optional display name in From (a recall's
/// prefix), and an `Alert-Info` for a distinctive ring.
#[derive(Debug, Clone)]
pub(crate) struct Shown {
    pub party: Party,
    pub display: Option<String>,
    pub alert_info: Option<String>,
}

impl Shown {
    pub(crate) fn caller(party: Party) -> Shown {
        Shown {
            party,
            display: None,
            alert_info: None,
        }
    }
}

impl Manager {
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
                    let shown = Shown::caller(call.caller.clone());
                    let rung = self.ring(ck, &step.numbers, LegId::B, &shown).await;
                    if !rung.is_empty() {
                        if let Some(call) = self.calls.get_mut(&ck) {
                            call.hunt.rang = true;
                            call.hunt.forks.extend(rung);
                        }
                        self.touch_parties(ck);
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
    /// `side`, showing `shown` as the caller; returns the new outgoing legs
    /// (the caller keeps them in its hunt, transfer or recall).
    pub(crate) async fn ring(
        &mut self,
        ck: CallKey,
        numbers: &[String],
        side: LegId,
        shown: &Shown,
    ) -> Vec<LegKey> {
        let Some(call) = self.calls.get(&ck) else {
            return Vec::new();
        };
        let tenant = call.tenant.clone();
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
        let mut sent = Vec::new();
        let from = name_addr(
            shown.display.as_deref().unwrap_or(&shown.party.name),
            &shown.party.number,
            &tenant.domain,
        );
        let pai = name_addr(&shown.party.name, &shown.party.number, &tenant.domain);
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
                let dialog = Dialog::outgoing(
                    from.clone(),
                    name_addr(&name, number, &tenant.domain),
                    binding.contact.clone(),
                    peer,
                );
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
                let offer =
                    leg.sdp
                        .render_offer(&LocalMedia::offer(port, &codecs, Direction::SendRecv));
                let branch = new_branch();
                let mut text = leg
                    .dialog
                    .request_with(Method::Invite, &self.cfg.local, &branch, 1)
                    .header("Contact", self.cfg.local.contact(peer.transport))
                    .header("P-Asserted-Identity", pai.clone())
                    .header("Allow", ALLOW)
                    .header("Supported", "replaces");
                if let Some(alert) = &shown.alert_info {
                    text = text.header("Alert-Info", alert.clone());
                }
                let bytes = text.body("application/sdp", offer).build();
                leg.out_invite = Some(OutInvite {
                    branch: branch.clone(),
                    cseq: 1,
                    uri: binding.contact.clone(),
                    reinvite: false,
                });
                self.by_dialog.insert(
                    (leg.dialog.call_id.clone(), leg.dialog.local_tag.clone()),
                    key,
                );
                self.insert_leg(key, leg);
                self.send_request(key, Method::Invite, branch, bytes, peer)
                    .await;
                sent.push(key);
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
}
