//! Ending calls and legs, what each side hears, and the periodic sweep
//! (RTP inactivity, expired session timers).

use std::time::Instant;

use orbit_media::{LegId, Mode};
use orbit_sip::transaction::T1;
use orbit_sip::{Method, Response};
use orbit_store::CallRecord;
use tracing::info;

use crate::call::{other, CallKey, CallState, Heard, LegKey, LegState};
use crate::manager::{now_ms, Manager, Timer};
use crate::sipmsg::reason_phrase;

impl Manager {
    /// End a call: answer the caller's INVITE if still open (with
    /// `status`), cancel ringing phones, hang up answered legs, write the
    /// record. Legs already hung up are left alone.
    pub(crate) async fn end_call(&mut self, ck: CallKey, reason: &str, status: Option<u16>) {
        self.touch_parties(ck);
        let Some(mut call) = self.calls.remove(&ck) else {
            return;
        };
        info!(call = ck, reason, "call ended");
        if let Some(tx) = call.pending_invite.take() {
            let status = status.unwrap_or(500);
            if let Some(branch) = &tx.request().via.branch {
                self.by_branch
                    .remove(&(tx.request().call_id.clone(), branch.clone()));
            }
            tx.respond(&Response::new(status, reason_phrase(status)))
                .await;
            // The caller's leg ends with its INVITE; the ACK is absorbed
            // by the transaction layer.
            if let Some(a) = call.leg_on(LegId::A) {
                if let Some(l) = self.legs.get_mut(&a) {
                    l.state = LegState::Ended;
                }
                self.arm(Instant::now() + 64 * T1, Timer::Forget(a));
            }
        }
        let mut forks = std::mem::take(&mut call.hunt.forks);
        if let Some(p) = call.parked.take() {
            forks.extend(p.recall.map(|r| r.forks).unwrap_or_default());
            forks.extend(p.retrievers);
            self.park_abandoned(ck);
        }
        let mut transferor = None;
        if let Some(t) = call.transfer.take() {
            forks.extend(t.hunt.forks);
            transferor = Some(t.transferor);
            // An attended move in flight: the moving leg stays in its call.
        }
        for f in forks {
            // Legs are looked up by key; a fork's call is gone, so its
            // answer will be hung up on arrival.
            self.cancel_leg(f).await;
        }
        let mut legs: Vec<LegKey> = call.sides.iter().flatten().copied().collect();
        legs.extend(transferor);
        for l in legs {
            if let Some(status) = transferor.filter(|t| *t == l).map(|_| 487) {
                self.notify_refer(l, status, reason_phrase(status), true)
                    .await;
            }
            self.hang_up_leg(l).await;
        }
        self.unpublish(ck);
        metrics::counter!("orbit_call_records_total", "reason" => reason.to_string()).increment(1);
        self.recorder.record(CallRecord {
            id: call.id.clone(),
            tenant_id: call.tenant.id.clone(),
            caller: call.caller.number.clone(),
            caller_name: call.caller.name.clone(),
            callee: call.dialled.clone(),
            answered_by: call.answered_by.clone(),
            started_at: call.started_at_ms,
            answered_at: call.answered_at_ms,
            ended_at: now_ms(),
            end_reason: reason.to_string(),
            transfers: call.transfers.clone(),
        });
        // Dropping the call's media stops its relay and frees its ports.
    }

    /// Send BYE on a confirmed leg (once) and forget it later.
    pub(crate) async fn hang_up_leg(&mut self, key: LegKey) {
        let local = self.cfg.local.clone();
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        match leg.state {
            LegState::Confirmed | LegState::Cancelling
                if leg.dialog.remote_tag.is_some() || leg.incoming =>
            {
                leg.state = LegState::Ended;
                leg.unacked = None;
                let (text, branch, _) = leg.dialog.request(Method::Bye, &local);
                let peer = leg.dialog.peer;
                self.send_request(key, Method::Bye, branch, text.build(), peer)
                    .await;
            }
            LegState::Calling => {
                self.cancel_leg(key).await;
                return;
            }
            _ => {}
        }
        self.arm(Instant::now() + 64 * T1, Timer::Forget(key));
    }

    pub(crate) fn forget_leg(&mut self, key: LegKey) {
        if let Some(leg) = self.legs.get(&key) {
            // A leg still part of a live call is not forgotten.
            let live = self
                .calls
                .get(&leg.call)
                .is_some_and(|c| c.sides.contains(&Some(key)))
                && leg.state != LegState::Ended;
            if live {
                return;
            }
        }
        if let Some(leg) = self.legs.remove(&key) {
            self.by_dialog
                .remove(&(leg.dialog.call_id.clone(), leg.dialog.local_tag.clone()));
            if let Some(keys) = self.legs_by_number.get_mut(&leg.party.number) {
                keys.retain(|k| *k != key);
                if keys.is_empty() {
                    self.legs_by_number.remove(&leg.party.number);
                }
            }
        }
    }

    /// The phone on `key` hung up (BYE already answered).
    pub(crate) async fn leg_hung_up(&mut self, key: LegKey) {
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        leg.state = LegState::Ended;
        leg.unacked = None;
        let (ck, side) = (leg.call, leg.side);
        self.arm(Instant::now() + 64 * T1, Timer::Forget(key));
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        // The transferor may leave once it has handed the call over.
        if let Some(t) = &call.transfer {
            if t.transferor == key {
                if call.leg_on(side) == Some(key) {
                    call.set_leg(side, None);
                }
                self.apply_modes(ck);
                return;
            }
        }
        if call.leg_on(side) != Some(key) {
            return;
        }
        let reason = if call.state == CallState::Ringing {
            "cancelled"
        } else if side == LegId::A {
            "caller_hangup"
        } else {
            "callee_hangup"
        };
        call.set_leg(side, None);
        self.end_call(ck, reason, Some(487)).await;
    }

    /// Make each side hear what it should: the other party, or music while
    /// the other party holds, is being transferred, or is not there.
    pub(crate) fn apply_modes(&mut self, ck: CallKey) {
        self.set_modes(ck);
        // What a side hears is part of the call's published state (held).
        self.publish(ck);
    }

    fn set_modes(&mut self, ck: CallKey) {
        let Some(call) = self.calls.get(&ck) else {
            return;
        };
        if call.state != CallState::Answered {
            return;
        }
        let mut wanted = [Heard::Other, Heard::Other];
        for side in [LegId::A, LegId::B] {
            let idx = crate::call::Call::side_index(side);
            let other_leg = call.leg_on(other(side)).and_then(|l| self.legs.get(&l));
            let transferring_other = call
                .transfer
                .as_ref()
                .is_some_and(|t| t.side == other(side));
            wanted[idx] = match other_leg {
                Some(l) if l.holding => Heard::Music,
                Some(_) if transferring_other => Heard::Music,
                Some(_) => Heard::Other,
                None => Heard::Music,
            };
        }
        let tenant_id = call.tenant.id.clone();
        let current = call.heard;
        if current == wanted {
            return;
        }
        let player = if wanted.contains(&Heard::Music) {
            Some(self.music.player(&tenant_id))
        } else {
            None
        };
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        for side in [LegId::A, LegId::B] {
            let idx = crate::call::Call::side_index(side);
            if current[idx] == wanted[idx] {
                continue;
            }
            let mode = match (wanted[idx], &player) {
                (Heard::Music, Some(p)) => Mode::Music(p.clone()),
                _ => Mode::Bridge,
            };
            call.media.set_mode(side, mode);
            call.heard[idx] = wanted[idx];
        }
    }

    /// End calls whose media stopped or whose session timer ran out.
    pub(crate) async fn sweep(&mut self, now: Instant) {
        let mut dead = Vec::new();
        for (ck, call) in &self.calls {
            if call.state != CallState::Answered {
                continue;
            }
            if !self.cfg.rtp_timeout.is_zero() {
                let answered_for = call
                    .answered_at_ms
                    .map(|t| (now_ms() - t).max(0) as u64)
                    .unwrap_or(0);
                let idle =
                    [LegId::A, LegId::B]
                        .iter()
                        .all(|s| match call.media.stats(*s).idle_for(now) {
                            Some(d) => d >= self.cfg.rtp_timeout,
                            None => answered_for >= self.cfg.rtp_timeout.as_millis() as u64,
                        });
                if idle {
                    dead.push((*ck, "rtp_timeout"));
                    continue;
                }
            }
            let expired = call
                .sides
                .iter()
                .flatten()
                .filter_map(|l| self.legs.get(l))
                .any(|l| {
                    l.session_expires.is_some_and(|se| {
                        now.saturating_duration_since(l.refreshed_at).as_secs() > se as u64 + 32
                    })
                });
            if expired {
                dead.push((*ck, "session_expired"));
            }
        }
        for (ck, reason) in dead {
            self.end_call(ck, reason, None).await;
        }
    }
}
