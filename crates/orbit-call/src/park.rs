//! Call park in the call manager. The park engine (`orbit-park`) decides
//! everything: where a call parks, who wins a retrieve, when and where a
//! recall rings. This file is its I/O: it parks the transferee of a REFER
//! to a park code, answers a retriever onto the parked call's empty side,
//! runs the engine's outputs (recall attempts are rung by `recall`), and
//! logs the engine's events.
//!
//! A parked call stays an ordinary call with one side empty: the parked
//! caller hears the tenant's music from the relay and is never
//! re-INVITEd; whoever takes the empty side is bridged by the relay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orbit_media::{LegConfig, Negotiated, SessionDescription};
use orbit_park::{
    Destination, Engine, EventKind, Output, ParkError, ParkRequest, RecallPolicy, Retrieve,
    RetrieveError, Target,
};
use orbit_sip::{Response, ServerTx};
use orbit_store::{ParkEventRecord, ParkSettings, RecallSettings, RecallTo, Tenant};
use tracing::info;

use crate::call::{other, CallKey, CallState, LegKey, Parked, Party};
use crate::codes::{Codes, Feature};
use crate::manager::{now_ms, Manager, Timer};
use crate::records::ParkLog;

/// `Alert-Info` of a recall: Snom and Yealink both read a ring name, one
/// from the URI's last segment, the other from `info`.
pub const RECALL_ALERT_INFO: &str = "<http://127.0.0.1/Bellcore-dr3>;info=Bellcore-dr3";

/// How long a phone hears the reorder tone after its park failed.
const REORDER_FOR: Duration = Duration::from_secs(2);

pub(crate) struct ParkCore {
    pub engine: Engine,
    /// The engine's clock is milliseconds since this instant.
    pub epoch: Instant,
    /// The engine deadline a timer is armed for.
    pub armed: Option<u64>,
    pub log: ParkLog,
    /// Who hears park-info NOTIFYs about each park.
    pub told: std::collections::HashMap<u64, crate::parkinfo::Told>,
    /// The call of each park, until the park ends.
    pub calls: std::collections::HashMap<u64, CallKey>,
}

impl ParkCore {
    pub(crate) fn new(max_per_extension: usize, log: ParkLog) -> Self {
        ParkCore {
            engine: Engine::new(max_per_extension),
            epoch: Instant::now(),
            armed: None,
            log,
            told: std::collections::HashMap::new(),
            calls: std::collections::HashMap::new(),
        }
    }
}

/// The tenant's codes as the parser wants them.
pub(crate) fn codes_of(s: &ParkSettings) -> Codes {
    Codes {
        park: s.park_code.clone(),
        group_park: s.group_park_code.clone(),
        retrieve: s.retrieve_code.clone(),
    }
}

fn policy(r: &RecallSettings) -> RecallPolicy {
    RecallPolicy {
        recall_time_s: r.recall_time_s,
        recall_to: match r.recall_to {
            RecallTo::ParkerOnly => orbit_park::RecallTo::ParkerOnly,
            RecallTo::ParkerThenRingGroup => orbit_park::RecallTo::ParkerThenRingGroup,
            RecallTo::RingGroupOnly => orbit_park::RecallTo::RingGroupOnly,
            RecallTo::Number => {
                orbit_park::RecallTo::Number(r.recall_number.clone().unwrap_or_default())
            }
        },
        ring_group: r.ring_group.clone(),
        ring_group_wait_s: r.ring_group_wait_s,
        ring_s: r.ring_s,
        ring_group_ring_s: RecallPolicy::default().ring_group_ring_s,
        retry_interval_s: r.retry_interval_s,
        max_recall_attempts: r.max_recall_attempts,
        final_destination: r.final_destination.clone(),
        display_prefix: r.display_prefix.clone(),
    }
}

/// SIP status and reason for a park that failed, for the sipfrag NOTIFY.
fn park_failure(e: &ParkError) -> (u16, &'static str) {
    match e {
        ParkError::ExtensionFull => (486, "Busy Here"),
        ParkError::NoMemberAvailable => (486, "Busy Here"),
        ParkError::AlreadyParked => (491, "Request Pending"),
        ParkError::InvalidPolicy(_) => (500, "Server Internal Error"),
    }
}

impl Manager {
    pub(crate) fn park_now(&self) -> u64 {
        self.park.epoch.elapsed().as_millis() as u64
    }

    /// The feature a dialled number asks for, if parking is on for the tenant.
    pub(crate) fn feature_of(&self, tenant: &Tenant, dialled: &str) -> Option<Feature> {
        let settings = self.store.directory().park_settings(&tenant.id);
        if !settings.enabled {
            return None;
        }
        crate::codes::parse(
            &crate::sipmsg::percent_decode(dialled),
            &codes_of(&settings),
        )
    }

    /// A REFER (blind, or attended to a park-code consult call) asked to park
    /// the transferor's other party.
    pub(crate) async fn park_by_refer(
        &mut self,
        ck: CallKey,
        transferor: LegKey,
        feature: Feature,
    ) {
        let _ = self.park_leg(ck, transferor, feature, true).await;
    }

    /// Park the party across from `transferor` (who is released), as
    /// `feature` asks. With `via_refer` the transferor hears of it in
    /// sipfrag NOTIFYs; a failure leaves the call as it was.
    pub(crate) async fn park_leg(
        &mut self,
        ck: CallKey,
        transferor: LegKey,
        feature: Feature,
        via_refer: bool,
    ) -> Result<(), (u16, &'static str)> {
        let gone = (481, "Call/Transaction Does Not Exist");
        let Some(call) = self.calls.get(&ck) else {
            return Err(gone);
        };
        let tenant = call.tenant.clone();
        let Some(x) = self.legs.get(&transferor) else {
            return Err(gone);
        };
        let (side, parker) = (x.side, x.party.clone());
        let Some(parked_party) = call
            .leg_on(other(side))
            .and_then(|l| self.legs.get(&l))
            .map(|l| l.party.clone())
        else {
            return self
                .park_refused(ck, transferor, 403, "Forbidden", via_refer)
                .await;
        };
        // Decided with the directory read lock held, acted on after it is
        // released (the guard must not live across an await).
        let decided: Result<_, (u16, &'static str)> = {
            let d = self.store.directory();
            let settings = d.park_settings(&tenant.id);
            match &feature {
                Feature::Park { on } => {
                    let ext = on.clone().unwrap_or_else(|| parker.number.clone());
                    if d.extension(&tenant.id, &ext).is_none() {
                        Err((404, "Not Found"))
                    } else if self.park.engine.count_on(&tenant.id, &ext)
                        >= settings.max_parked_per_extension as usize
                    {
                        Err((486, "Busy Here"))
                    } else {
                        let group = d.park_group_of(&tenant.id, &ext);
                        Ok((settings, Target::Extension(ext), group))
                    }
                }
                Feature::GroupPark => match d.park_group_of(&tenant.id, &parker.number) {
                    Some(g) => Ok((
                        settings,
                        Target::Group {
                            name: g.name.clone(),
                            members: g.members.clone(),
                        },
                        Some(g),
                    )),
                    None => Err((403, "Forbidden (not in a call park group)")),
                },
                Feature::RetrieveOldest { .. } | Feature::RetrieveId(_) => Err((403, "Forbidden")),
            }
        };
        let (settings, target, group) = match decided {
            Ok(d) => d,
            Err((status, reason)) => {
                return self
                    .park_refused(ck, transferor, status, reason, via_refer)
                    .await;
            }
        };
        let recall = group
            .as_ref()
            .and_then(|g| g.recall.as_ref())
            .unwrap_or(&settings.recall);
        let (group_members, group_name) = match &target {
            Target::Group { name, members } => (Some(members.clone()), Some(name.clone())),
            Target::Extension(_) => (None, None),
        };
        let recall_time_s = recall.recall_time_s;
        let req = ParkRequest {
            tenant: tenant.id.clone(),
            call: ck,
            parker: parker.number.clone(),
            parked: orbit_park::Party {
                number: parked_party.number.clone(),
                name: parked_party.name.clone(),
            },
            target,
            policy: policy(recall),
        };
        let now = self.park_now();
        let registrar = self.registrar.clone();
        let available = move |t: &str, e: &str| !registrar.bindings(t, e).is_empty();
        match self.park.engine.park(now, req, &available) {
            Ok(id) => {
                let parked_on = self
                    .park
                    .engine
                    .parked(&tenant.id)
                    .into_iter()
                    .find(|p| p.id == id)
                    .map(|p| p.parked_on)
                    .unwrap_or_default();
                info!(call = ck, park = id, on = %parked_on, by = %parker.number, "parked");
                let mut extensions = match &group_members {
                    Some(members) => members.clone(),
                    None => vec![parked_on.clone()],
                };
                if settings.notify_parker && !extensions.contains(&parker.number) {
                    extensions.push(parker.number.clone());
                }
                self.park.calls.insert(id, ck);
                self.park_audience(
                    id,
                    crate::parkinfo::Told {
                        extensions,
                        group: group_name.clone(),
                        recall_s: recall_time_s,
                        since_ms: now_ms(),
                    },
                );
                if via_refer {
                    self.notify_refer(transferor, 200, "OK", true).await;
                }
                self.hang_up_leg(transferor).await;
                if let Some(call) = self.calls.get_mut(&ck) {
                    call.set_leg(side, None);
                    call.transfers
                        .push(format!("parked on {parked_on} by {}", parker.number));
                    call.parked = Some(Parked {
                        id,
                        side,
                        recall: None,
                        retrievers: Vec::new(),
                    });
                }
                self.apply_modes(ck);
                Ok(())
            }
            Err(e) => {
                let (status, reason) = park_failure(&e);
                info!(call = ck, error = %e, "park refused");
                self.park_refused(ck, transferor, status, reason, via_refer)
                    .await
            }
        }
    }

    /// Tell the transferor its park failed; it keeps the call and hears
    /// the reorder tone for a moment.
    async fn park_refused(
        &mut self,
        ck: CallKey,
        transferor: LegKey,
        status: u16,
        reason: &'static str,
        via_refer: bool,
    ) -> Result<(), (u16, &'static str)> {
        if via_refer {
            self.notify_refer(transferor, status, reason, true).await;
        }
        let Some(side) = self.legs.get(&transferor).map(|l| l.side) else {
            return Err((status, reason));
        };
        let tone = self.music.reorder();
        if let Some(call) = self.calls.get_mut(&ck) {
            call.media.set_mode(side, orbit_media::Mode::Music(tone));
            call.heard[crate::call::Call::side_index(side)] = crate::call::Heard::Reorder;
        }
        self.arm(Instant::now() + REORDER_FOR, Timer::Modes(ck));
        Err((status, reason))
    }

    /// A call to a retrieve code (or to a parked call's retrieve address):
    /// connect the caller to the parked call, or refuse.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn retrieve_by_invite(
        &mut self,
        tx: ServerTx,
        tenant: Arc<Tenant>,
        caller: Party,
        feature: Feature,
        sd: SessionDescription,
        neg: Negotiated,
        se: Option<u32>,
    ) {
        let what = match feature {
            Feature::RetrieveOldest { from } => Retrieve::Oldest {
                ext: from.unwrap_or_else(|| caller.number.clone()),
            },
            Feature::RetrieveId(id) => Retrieve::Id(id),
            Feature::Park { .. } | Feature::GroupPark => {
                return self
                    .park_consult(tx, tenant, caller, feature, sd, neg)
                    .await;
            }
        };
        let now = self.park_now();
        let got = self
            .park
            .engine
            .retrieve(now, &tenant.id, &caller.number, what);
        let retrieved = match got {
            Ok(r) => r,
            Err(e) => {
                let reason = match e {
                    RetrieveError::NotFound => "Not Found (no such parked call)",
                    RetrieveError::AlreadyRetrieved => "Not Found (already retrieved)",
                };
                tx.respond(&Response::new(404, reason)).await;
                return;
            }
        };
        let ck = retrieved.call;
        let Some(side) = self
            .calls
            .get(&ck)
            .and_then(|c| c.parked.as_ref())
            .map(|p| p.side)
        else {
            tx.respond(&Response::new(404, "Not Found (no such parked call)"))
                .await;
            return;
        };
        self.cancel_recall_forks(ck).await;
        if let Some(call) = self.calls.get_mut(&ck) {
            call.parked = None;
            call.transfers
                .push(format!("retrieved by {}", caller.number));
        }
        let by = caller.number.clone();
        if self
            .attach_caller(ck, side, tx, caller, &sd, neg, se)
            .await
            .is_some()
        {
            info!(call = ck, by = %by, "retrieved");
        }
        self.apply_modes(ck);
    }

    /// A call to a park code, as the consultation leg of an attended
    /// transfer: answered (the phone hears silence) so the phone can send
    /// REFER with Replaces naming it; hung up if nothing comes.
    async fn park_consult(
        &mut self,
        tx: ServerTx,
        tenant: Arc<Tenant>,
        caller: Party,
        feature: Feature,
        sd: SessionDescription,
        neg: Negotiated,
    ) {
        let dialled = tx.request().uri.user.clone().unwrap_or_default();
        let hunt = crate::call::Hunt::default();
        let Some(ck) = self
            .new_call_for(&tx, tenant, caller, dialled, &sd, neg, None, hunt)
            .await
        else {
            return;
        };
        if let Some(call) = self.calls.get_mut(&ck) {
            call.consult = Some(feature);
            call.state = CallState::Answered;
            call.answered_at_ms = Some(now_ms());
        }
        self.answer_leg_a(ck, None).await;
        self.arm(
            Instant::now() + Duration::from_secs(30),
            Timer::ConsultTimeout(ck),
        );
        self.publish(ck);
    }

    pub(crate) async fn on_consult_timeout(&mut self, ck: CallKey) {
        if self.calls.get(&ck).is_some_and(|c| c.consult.is_some()) {
            self.end_call(ck, "consult_unused", None).await;
        }
    }

    /// Run the engine's outputs until none is left, and keep a timer armed
    /// for its next deadline.
    pub(crate) async fn drain_park(&mut self) {
        while let Some(out) = self.park.engine.poll() {
            match out {
                Output::Event(e) => {
                    if let (Some(park), true) = (e.park, e.kind.is_terminal()) {
                        self.park.calls.remove(&park);
                    }
                    self.park_info_for(&e).await;
                    self.log_park_event(e);
                }
                Output::Ring {
                    park,
                    tenant: _,
                    call,
                    attempt,
                    to,
                    display,
                    ring_for_s: _,
                } => self.ring_recall(park, call, attempt, to, display).await,
                Output::CancelRecall { park, attempt } => {
                    // Attempt numbers are per park: match both.
                    let ck = self.park.calls.get(&park).copied().filter(|ck| {
                        self.calls
                            .get(ck)
                            .and_then(|c| c.parked.as_ref())
                            .is_some_and(|p| {
                                p.id == park
                                    && p.recall.as_ref().is_some_and(|r| r.attempt == attempt)
                            })
                    });
                    if let Some(ck) = ck {
                        self.cancel_recall_forks(ck).await;
                    }
                }
                Output::HangUp { park: _, call } => {
                    self.end_call(call, "recall_exhausted", None).await;
                }
                Output::Changed { tenant, ext } => {
                    self.publish_parked(&tenant, &ext);
                    self.presence_park_changed(&tenant, &ext);
                }
            }
        }
        if let Some(d) = self.park.engine.next_deadline() {
            if self.park.armed.is_none_or(|a| d < a) {
                self.park.armed = Some(d);
                let at = self.park.epoch + Duration::from_millis(d);
                self.arm(at, Timer::Park);
            }
        }
    }

    /// Refresh the API's list of the tenant's parked calls.
    /// Refresh the API's copy of the calls parked on `ext`. Only that
    /// extension's entries are rebuilt: rebuilding the tenant's whole list
    /// on every change cost time in proportion to everything parked.
    fn publish_parked(&self, tenant_id: &str, ext: &str) {
        let now_wall = now_ms();
        let now = self.park_now();
        let retrieve = self
            .store
            .directory()
            .park_settings(tenant_id)
            .retrieve_code
            .clone();
        let fresh: Vec<(u64, orbit_store::ParkedCall)> = self
            .park
            .engine
            .parked_on(tenant_id, ext)
            .into_iter()
            .map(|p| {
                let wall = |t: u64| now_wall + t as i64 - now as i64;
                let (state, recalling) = match &p.state {
                    orbit_park::ParkState::Parked => ("parked", None),
                    orbit_park::ParkState::Recalling { to, .. } => {
                        ("recalling", Some(dest_name(to)))
                    }
                };
                let entry = orbit_store::ParkedCall {
                    id: p.id.to_string(),
                    call_id: self
                        .calls
                        .get(&p.call)
                        .map(|c| c.id.clone())
                        .unwrap_or_default(),
                    tenant_id: p.tenant.clone(),
                    parked_on: p.parked_on.clone(),
                    parked_by: p.parker.clone(),
                    caller_number: p.parked.number.clone(),
                    caller_name: p.parked.name.clone(),
                    parked_at: wall(p.parked_at_ms),
                    recall_at: p.recall_at_ms.map(wall),
                    state: state.to_string(),
                    recalling,
                    retrieve_number: crate::codes::retrieve_address(&retrieve, p.id),
                };
                (p.id, entry)
            })
            .collect();
        let mut map = self.shared.parked.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(tenant_id.to_string()).or_default();
        list.retain(|_, c| c.parked_on != ext);
        list.extend(fresh);
        if list.is_empty() {
            map.remove(tenant_id);
        }
    }

    pub(crate) fn on_park_timer(&mut self) {
        self.park.armed = None;
        let now = self.park_now();
        self.park.engine.tick(now);
    }

    fn log_park_event(&self, e: orbit_park::ParkEvent) {
        let tenant = e.tenant.clone();
        let call_id = e
            .call
            .and_then(|c| self.calls.get(&c))
            .map(|c| c.id.clone())
            .unwrap_or_default();
        let detail = match &e.kind {
            EventKind::ParkFailed { reason } => reason.to_string(),
            EventKind::Retrieved { by } | EventKind::RecallAnswered { by } => by.clone(),
            EventKind::RetrieveFailed { by, reason } => format!("{by}: {reason}"),
            EventKind::RecallStarted { attempt, to } => {
                format!("attempt {attempt} to {}", dest_name(to))
            }
            EventKind::Ended { reason } => reason.name().to_string(),
            EventKind::Parked | EventKind::Abandoned => String::new(),
        };
        metrics::counter!("orbit_park_events_total", "kind" => e.kind.name()).increment(1);
        let parked = e.parked.clone().unwrap_or_default();
        let record = ParkEventRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            tenant_id: tenant,
            at_ms: now_ms(),
            kind: e.kind.name().to_string(),
            park_id: e.park.map(|p| p.to_string()),
            extension: e.parked_on.clone().unwrap_or_default(),
            call_id,
            parker: e.parker.clone().unwrap_or_default(),
            parked_number: parked.number,
            parked_name: parked.name,
            detail,
        };
        // Nobody listening is fine; the log keeps it.
        let _ = self.shared.park_events.send(record.clone());
        self.park.log.record(record);
    }

    /// Leg `key` (an answered recall or retriever) takes the parked call's
    /// empty side; `others` ringing for the same purpose are cancelled.
    pub(crate) async fn take_parked_side(
        &mut self,
        ck: CallKey,
        key: LegKey,
        neg: Negotiated,
        others: &[LegKey],
        note: String,
    ) {
        for f in others {
            self.cancel_leg(*f).await;
        }
        if let Some(leg) = self.legs.get_mut(&key) {
            leg.negotiated = Some(neg.clone());
        }
        if let Some(call) = self.calls.get_mut(&ck) {
            if let Some(p) = call.parked.take() {
                call.set_leg(p.side, Some(key));
                call.media.set_config(p.side, LegConfig::from(&neg));
            }
            call.transfers.push(note);
        }
        self.apply_modes(ck);
    }

    /// The parked caller is gone (hung up, or the call ended otherwise).
    pub(crate) fn park_abandoned(&mut self, ck: CallKey) {
        let now = self.park_now();
        self.park.engine.abandon(now, ck);
    }
}

fn dest_name(d: &Destination) -> String {
    match d {
        Destination::Extension(n) => n.clone(),
        Destination::RingGroup(n) => format!("ring group {n}"),
        Destination::Number(n) => n.clone(),
    }
}
