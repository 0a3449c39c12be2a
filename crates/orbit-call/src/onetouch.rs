//! One-touch park: the park code dialled as RFC 4733 DTMF during a call
//! (a phone key that sends `*68`, `*68103#` or `*58`) parks the other
//! party, as a REFER to the same code would.
//!
//! Digits are collected per leg; a run that can no longer become a park
//! code is dropped, `#` (or the group park code alone) completes one, and
//! a park code followed by nothing for a moment completes too.

use std::time::{Duration, Instant};

use orbit_media::LegId;

use crate::call::{CallKey, CallState, LegKey};
use crate::codes::{self, Feature};
use crate::manager::{Manager, Timer};
use crate::park::codes_of;

/// Digits further apart than this start a new run.
const INTER_DIGIT: Duration = Duration::from_secs(3);
/// Silence after `*68` (or `*68103`) that means "that's all".
const COMPLETE_AFTER: Duration = Duration::from_millis(1500);

impl Manager {
    pub(crate) async fn on_dtmf(&mut self, ck: CallKey, side: LegId, digit: char) {
        let Some(call) = self.calls.get(&ck) else {
            return;
        };
        let idle = call.state == CallState::Answered
            && call.parked.is_none()
            && call.transfer.is_none()
            && call.consult.is_none();
        let Some(key) = call.leg_on(side).filter(|_| idle) else {
            return;
        };
        let settings = self.store.directory().park_settings(&call.tenant.id);
        if !settings.enabled {
            return;
        }
        let codes = codes_of(&settings);
        let now = Instant::now();
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        if leg
            .digits_at
            .is_none_or(|t| now.duration_since(t) > INTER_DIGIT)
        {
            leg.digits.clear();
        }
        leg.digits.push(digit);
        leg.digits_at = Some(now);
        let run = leg.digits.clone();
        let may_become = [&codes.park, &codes.group_park]
            .iter()
            .any(|c| c.starts_with(run.as_str()) || run.starts_with(c.as_str()));
        if !may_become || run.len() > 24 {
            leg.digits.clear();
            return;
        }
        if run.ends_with('#') || run == codes.group_park {
            leg.digits.clear();
            return self.one_touch(ck, key, &run).await;
        }
        if run.starts_with(codes.park.as_str()) {
            self.arm(now + COMPLETE_AFTER, Timer::DtmfDone(key, run.len()));
        }
    }

    pub(crate) async fn on_dtmf_done(&mut self, key: LegKey, len: usize) {
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        if leg.digits.len() != len {
            return;
        }
        let run = std::mem::take(&mut leg.digits);
        let ck = leg.call;
        self.one_touch(ck, key, &run).await;
    }

    async fn one_touch(&mut self, ck: CallKey, key: LegKey, run: &str) {
        let Some(call) = self.calls.get(&ck) else {
            return;
        };
        let settings = self.store.directory().park_settings(&call.tenant.id);
        if let Some(f @ (Feature::Park { .. } | Feature::GroupPark)) =
            codes::parse(run, &codes_of(&settings))
        {
            let _ = self.park_leg(ck, key, f, false).await;
        }
    }
}
