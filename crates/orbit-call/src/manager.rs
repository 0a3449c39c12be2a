//! The call manager: one task owns every call and leg, so operations that
//! span calls (attended transfer, Replaces, and later park and retrieve)
//! are plain state changes with no locks between calls. SIP events reach
//! it through a bounded queue; media runs in its own tasks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use orbit_media::PortPool;
use orbit_registrar::{Authenticator, Registrar};
use orbit_sip::frame::Message;
use orbit_sip::{
    ClientEvent, Endpoint, Method, Outgoing, Reply, Request, Response, ServerTx, Source,
};
use orbit_store::{ActiveCall, Store};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::call::{Call, CallKey, Leg, LegKey};
use crate::dialog::Peer;
use crate::music::MusicLibrary;
use crate::records::Recorder;
use crate::sipmsg::LocalAddr;

#[derive(Debug, Clone)]
pub struct CallConfig {
    pub local: LocalAddr,
    /// Address written into SDP for the relayed media.
    pub media_ip: IpAddr,
    /// How long a callee rings before the caller gets 480.
    pub ring_timeout: Duration,
    pub max_calls: usize,
    /// End a call when neither side sent RTP for this long; zero: never.
    pub rtp_timeout: Duration,
    /// Smallest Session-Expires accepted (RFC 4028 Min-SE).
    pub min_session_expires: u32,
    /// Live SUBSCRIBE dialogs per tenant, and per tenant and contact.
    pub max_subscriptions_per_tenant: usize,
    pub max_subscriptions_per_contact: usize,
    /// A new call or subscription still unhandled this long after it
    /// reached the host gets 503 (overload); zero: never.
    pub shed_after: Duration,
}

pub(crate) enum Event {
    Request(ServerTx),
    Ack(Box<Request>),
    Stray(Box<Message>),
    Response {
        leg: LegKey,
        method: Method,
        event: ClientEvent,
    },
    HangupAll(oneshot::Sender<()>),
    Dtmf {
        call: CallKey,
        side: orbit_media::LegId,
        digit: char,
    },
    Command(
        orbit_store::CallCommand,
        oneshot::Sender<Result<(), orbit_store::CommandError>>,
    ),
}

/// Timers the manager arms; each is checked against current state when it
/// fires, so a timer for something that moved on does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A hunt step rang long enough (call, step sequence).
    Ring(CallKey, u64),
    /// Same for a transfer's hunt.
    TransferRing(CallKey, u64),
    /// Resend an unacknowledged 2xx.
    Resend2xx(LegKey),
    /// Check RTP activity and session timers of every call.
    Sweep,
    /// Forget a leg that was cancelled or hung up and never answered.
    Forget(LegKey),
    /// The park engine's next deadline.
    Park,
    /// Recompute what each side hears (after a tone played for a while).
    Modes(CallKey),
    /// A consultation call to a park code that no REFER used.
    ConsultTimeout(CallKey),
    /// No more DTMF digits came after a possible feature code (leg, digits then).
    DtmfDone(LegKey, usize),
    /// Send a re-INVITE refused with 491 again (call, leg).
    MoveRetry(CallKey, LegKey),
    /// The subscription table's next deadline.
    Presence,
    /// A member of a sequential ring group rang its time for a recall
    /// (call, step sequence).
    RecallStep(CallKey, u64),
}

/// The handle the rest of Orbit holds: feeds SIP events in, answers the
/// API's questions about active calls.
#[derive(Clone)]
pub struct Calls {
    tx: mpsc::Sender<Event>,
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub active: Mutex<HashMap<CallKey, ActiveCall>>,
    pub count: AtomicUsize,
    pub draining: AtomicBool,
    /// Calls parked now, per tenant id and park id (so in arrival order),
    /// for the API; updated per extension as the park engine reports it.
    pub parked: Mutex<HashMap<String, BTreeMap<u64, orbit_store::ParkedCall>>>,
    /// `CallConfig::shed_after` in ms, for the check before queueing.
    pub shed_after_ms: AtomicU64,
    /// Park events as they happen, for the API's event stream.
    pub park_events: tokio::sync::broadcast::Sender<orbit_store::ParkEventRecord>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            active: Mutex::default(),
            count: AtomicUsize::default(),
            draining: AtomicBool::default(),
            parked: Mutex::default(),
            shed_after_ms: AtomicU64::default(),
            park_events: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

pub struct CallsInbox {
    rx: mpsc::Receiver<Event>,
    tx: mpsc::Sender<Event>,
    shared: Arc<Shared>,
}

/// Events waiting for the manager at most; beyond, new requests get 503.
const QUEUE: usize = 16_384;

/// What a request shed for overload is told.
const SHED_RETRY_AFTER_S: &str = "2";

/// Overload: a request that starts something new (a call, a subscription)
/// and reached this host longer than `after` ago is refused at once.
/// Refusing costs little, so the calls already in progress keep their
/// time and the phone may try again; taking it would only lengthen the
/// queue until every transaction times out. The time counts from the
/// kernel's receive stamp, so a backlog in the socket buffer shows.
///
/// Calls to a feature code (`*88…`, `park-…`) are never shed: a retrieve
/// ends a park, and a refused one leaves the caller parked with music
/// playing, which is more load, not less (measured: refusing retrieves
/// turned 1,000 offered cycles/s into 311 achieved).
fn shed(tx: &ServerTx, after: Duration) -> bool {
    let req = tx.request();
    let feature = req
        .uri
        .user
        .as_deref()
        .is_some_and(|u| u.starts_with(['*', '#']) || u.starts_with("park-"));
    let starts_something = matches!(req.method, Method::Invite | Method::Subscribe)
        && req.to.tag().is_none()
        && !feature;
    let late = after > Duration::ZERO && tx.source().received.elapsed() > after;
    if starts_something && late {
        metrics::counter!("orbit_call_shed_total").increment(1);
        return true;
    }
    false
}

fn shed_response() -> Response {
    Response::new(503, "Service Unavailable").header("Retry-After", SHED_RETRY_AFTER_S)
}

pub fn calls_channel() -> (Calls, CallsInbox) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let shared = Arc::new(Shared::default());
    (
        Calls {
            tx: tx.clone(),
            shared: shared.clone(),
        },
        CallsInbox { rx, tx, shared },
    )
}

impl Calls {
    /// A new transaction for the call layer; answered later through `tx`.
    pub fn on_request(&self, tx: ServerTx) -> Option<Reply> {
        if self.overloaded(&tx) {
            return Some(shed_response().into());
        }
        match self.tx.try_send(Event::Request(tx)) {
            Ok(()) => None,
            Err(_) => {
                metrics::counter!("orbit_call_queue_full_total").increment(1);
                Some(
                    Response::new(503, "Service Unavailable")
                        .header("Retry-After", "5")
                        .into(),
                )
            }
        }
    }

    pub fn on_ack(&self, req: &Request) {
        let _ = self.tx.try_send(Event::Ack(Box::new(req.clone())));
    }

    pub fn on_stray_response(&self, msg: &Message) {
        let _ = self.tx.try_send(Event::Stray(Box::new(msg.clone())));
    }

    /// Whether this request is to be shed before it is even queued.
    fn overloaded(&self, tx: &ServerTx) -> bool {
        let ms = self.shared.shed_after_ms.load(Ordering::Relaxed);
        shed(tx, Duration::from_millis(ms))
    }

    pub fn active_count(&self) -> usize {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// Refuse new calls from now on (503); active calls go on.
    pub fn stop_accepting(&self) {
        self.shared.draining.store(true, Ordering::Relaxed);
    }

    /// Stop accepting, wait up to `grace` for active calls to end, then
    /// hang up what is left.
    pub async fn drain(&self, grace: Duration) {
        self.stop_accepting();
        let until = tokio::time::Instant::now() + grace;
        while self.active_count() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Event::HangupAll(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

impl orbit_store::CallControl for Calls {
    fn parked_calls(&self, tenant_id: &str) -> Vec<orbit_store::ParkedCall> {
        let map = self.shared.parked.lock().unwrap_or_else(|e| e.into_inner());
        map.get(tenant_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn command(
        &self,
        cmd: orbit_store::CallCommand,
    ) -> oneshot::Receiver<Result<(), orbit_store::CommandError>> {
        let (tx, rx) = oneshot::channel();
        if let Err(
            mpsc::error::TrySendError::Full(Event::Command(_, tx))
            | mpsc::error::TrySendError::Closed(Event::Command(_, tx)),
        ) = self.tx.try_send(Event::Command(cmd, tx))
        {
            let _ = tx.send(Err(orbit_store::CommandError::Unavailable));
        }
        rx
    }

    fn park_events(&self) -> tokio::sync::broadcast::Receiver<orbit_store::ParkEventRecord> {
        self.shared.park_events.subscribe()
    }
}

impl orbit_store::ActiveCalls for Calls {
    fn active_calls(&self, tenant_id: &str) -> Vec<ActiveCall> {
        let map = self.shared.active.lock().unwrap_or_else(|e| e.into_inner());
        let mut calls: Vec<ActiveCall> = map
            .values()
            .filter(|c| c.tenant_id == tenant_id)
            .cloned()
            .collect();
        calls.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        calls
    }
}

pub struct Deps {
    pub endpoint: Arc<Endpoint>,
    pub store: Store,
    pub registrar: Arc<Registrar>,
    pub auth: Arc<Authenticator>,
    pub ports: PortPool,
    pub music: Arc<MusicLibrary>,
}

pub struct Manager {
    pub(crate) cfg: CallConfig,
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) store: Store,
    pub(crate) registrar: Arc<Registrar>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) ports: PortPool,
    pub(crate) music: Arc<MusicLibrary>,
    pub(crate) recorder: Recorder,
    pub(crate) shared: Arc<Shared>,
    events: mpsc::Receiver<Event>,
    pub(crate) events_tx: mpsc::Sender<Event>,
    pub(crate) calls: HashMap<CallKey, Call>,
    pub(crate) legs: HashMap<LegKey, Leg>,
    /// Legs by their party's number (all tenants), so that an extension's
    /// BLF state is found without scanning every call.
    pub(crate) legs_by_number: HashMap<String, Vec<LegKey>>,
    /// (Call-ID, Orbit's tag) of every leg's dialog.
    pub(crate) by_dialog: HashMap<(String, String), LegKey>,
    /// (Call-ID, Via branch) of callers' INVITEs still unanswered, for CANCEL.
    pub(crate) by_branch: HashMap<(String, String), LegKey>,
    pub(crate) park: crate::park::ParkCore,
    pub(crate) presence: crate::presence::PresenceCore,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    timer_seq: u64,
    next_key: u64,
}

impl Manager {
    /// Start the manager task. `Calls::drain` flushes what it writes.
    pub fn spawn(inbox: CallsInbox, cfg: CallConfig, deps: Deps) {
        let shed_ms = u64::try_from(cfg.shed_after.as_millis()).unwrap_or(u64::MAX);
        inbox.shared.shed_after_ms.store(shed_ms, Ordering::Relaxed);
        let recorder = crate::records::call_records(deps.store.clone());
        let park_log = crate::records::park_events(deps.store.clone());
        let subscription_log = crate::records::subscription_ops(deps.store.clone());
        let presence_limits = orbit_presence::Limits {
            max_per_tenant: cfg.max_subscriptions_per_tenant,
            max_per_contact: cfg.max_subscriptions_per_contact,
            ..orbit_presence::Limits::default()
        };
        let mut m = Manager {
            music: deps.music,
            cfg,
            endpoint: deps.endpoint,
            store: deps.store,
            registrar: deps.registrar,
            auth: deps.auth,
            ports: deps.ports,
            recorder,
            presence: crate::presence::PresenceCore::new(subscription_log, presence_limits),
            park: crate::park::ParkCore::new(
                orbit_store::MAX_PARKED_PER_EXTENSION.end().to_owned() as usize,
                park_log,
            ),
            shared: inbox.shared,
            events: inbox.rx,
            events_tx: inbox.tx,
            calls: HashMap::new(),
            legs: HashMap::new(),
            legs_by_number: HashMap::new(),
            by_dialog: HashMap::new(),
            by_branch: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            next_key: 1,
        };
        m.arm(Instant::now() + SWEEP_EVERY, Timer::Sweep);
        tokio::spawn(async move { m.run().await });
    }

    async fn run(&mut self) {
        self.restore_subscriptions().await;
        self.drain_presence().await;
        loop {
            let next = self.timers.peek().map(|Reverse((at, _, _))| *at);
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => self.on_event(ev).await,
                    None => return,
                },
                _ = sleep => self.on_timers().await,
            }
            // Whatever happened may have given the park engine and the
            // subscription table work.
            self.drain_park().await;
            self.drain_presence().await;
        }
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Request(tx) => self.on_request(tx).await,
            Event::Ack(req) => self.on_ack(&req).await,
            Event::Stray(msg) => self.on_stray(&msg).await,
            // Answers to out-of-dialog NOTIFYs (park-info, check-sync) need nothing.
            Event::Response { leg, .. } if leg == crate::parkinfo::PARK_INFO_KEY => {}
            Event::Response { leg, event, .. } if leg >= crate::presence::NOTIFY_KEYS => {
                let status = match &event {
                    ClientEvent::Timeout => 408,
                    ClientEvent::Response(m) => match m.start {
                        orbit_sip::frame::StartLine::Response { code, .. } => code,
                        _ => 0,
                    },
                };
                self.on_notify_answer(leg - crate::presence::NOTIFY_KEYS, status);
            }
            Event::Response { leg, method, event } => self.on_response(leg, method, event).await,
            Event::Dtmf { call, side, digit } => self.on_dtmf(call, side, digit).await,
            Event::Command(cmd, reply) => {
                let result = self.on_command(cmd).await;
                let _ = reply.send(result);
            }
            Event::HangupAll(done) => {
                let keys: Vec<CallKey> = self.calls.keys().copied().collect();
                for k in keys {
                    self.end_call(k, "shutdown", None).await;
                }
                self.drain_park().await;
                self.recorder.flush().await;
                self.park.log.flush().await;
                self.presence.log.flush().await;
                let _ = done.send(());
            }
        }
    }

    async fn on_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, _, timer))) = self.timers.pop() else {
                break;
            };
            match timer {
                Timer::Ring(call, seq) => self.on_ring_timeout(call, seq).await,
                Timer::TransferRing(call, seq) => self.on_transfer_ring_timeout(call, seq).await,
                Timer::Resend2xx(leg) => self.resend_2xx(leg, now).await,
                Timer::Sweep => {
                    self.sweep(now).await;
                    self.arm(now + SWEEP_EVERY, Timer::Sweep);
                }
                Timer::Forget(leg) => self.forget_leg(leg),
                Timer::Park => self.on_park_timer(),
                Timer::Modes(ck) => self.apply_modes(ck),
                Timer::ConsultTimeout(ck) => self.on_consult_timeout(ck).await,
                Timer::DtmfDone(leg, len) => self.on_dtmf_done(leg, len).await,
                Timer::MoveRetry(ck, leg) => self.on_move_retry(ck, leg).await,
                Timer::Presence => self.on_presence_timer(),
                Timer::RecallStep(ck, seq) => self.on_recall_step(ck, seq).await,
            }
        }
    }

    pub(crate) fn arm(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at, self.timer_seq, timer)));
    }

    /// Files a leg, also under its party's number.
    pub(crate) fn insert_leg(&mut self, key: LegKey, leg: Leg) {
        self.legs_by_number
            .entry(leg.party.number.clone())
            .or_default()
            .push(key);
        self.legs.insert(key, leg);
    }

    pub(crate) fn next_key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    async fn on_request(&mut self, tx: ServerTx) {
        let req = tx.request();
        if req.method == Method::Cancel {
            return self.on_cancel(tx).await;
        }
        // Checked again here: the wait in this task's queue counts too.
        if shed(&tx, self.cfg.shed_after) {
            tx.respond(&shed_response()).await;
            return;
        }
        if req.method == Method::Subscribe {
            return self.on_subscribe(tx).await;
        }
        let to_tag = req.to.tag().map(str::to_string);
        match to_tag {
            None if req.method == Method::Invite => self.on_new_invite(tx).await,
            None => {
                tx.respond(&Response::new(481, "Call/Transaction Does Not Exist"))
                    .await;
            }
            Some(tag) => {
                let key = (req.call_id.clone(), tag);
                match self.by_dialog.get(&key).copied() {
                    Some(leg) => self.on_in_dialog(leg, tx).await,
                    None => {
                        tx.respond(&Response::new(481, "Call/Transaction Does Not Exist"))
                            .await;
                    }
                }
            }
        }
    }

    /// Send a request on a leg in a new client transaction; its answers
    /// come back as `Event::Response` for that leg.
    pub(crate) async fn send_request(
        &mut self,
        leg: LegKey,
        method: Method,
        branch: String,
        bytes: Bytes,
        peer: Peer,
    ) {
        let out = Outgoing {
            method,
            branch,
            bytes,
            transport: peer.transport,
            target: peer.addr,
        };
        match self.endpoint.send_request(out).await {
            Ok(mut rx) => {
                let events = self.events_tx.clone();
                tokio::spawn(async move {
                    while let Some(event) = rx.recv().await {
                        if events
                            .send(Event::Response { leg, method, event })
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                });
            }
            Err(e) => {
                debug!(leg, error = %e, "cannot send to the phone");
                // As if the request timed out: no way to reach the phone.
                let events = self.events_tx.clone();
                tokio::spawn(async move {
                    let _ = events
                        .send(Event::Response {
                            leg,
                            method,
                            event: ClientEvent::Timeout,
                        })
                        .await;
                });
            }
        }
    }

    /// Publish the call's row for the API, and tell the BLF watchers of
    /// its parties.
    pub(crate) fn publish(&mut self, call: CallKey) {
        self.touch_parties(call);
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let state = if c.parked.is_some() {
            "parked"
        } else if c.transfer.is_some() {
            "transferring"
        } else if c.state == crate::call::CallState::Ringing {
            "ringing"
        } else if c
            .sides
            .iter()
            .flatten()
            .any(|l| self.legs.get(l).is_some_and(|l| l.holding))
        {
            "held"
        } else {
            "answered"
        };
        let row = ActiveCall {
            id: c.id.clone(),
            tenant_id: c.tenant.id.clone(),
            caller: c.caller.number.clone(),
            callee: c.dialled.clone(),
            answered_by: c.answered_by.clone(),
            state: state.to_string(),
            started_at: c.started_at_ms,
            answered_at: c.answered_at_ms,
        };
        let mut map = self.shared.active.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(call, row);
        self.shared.count.store(map.len(), Ordering::Relaxed);
        metrics::gauge!("orbit_calls_active").set(map.len() as f64);
    }

    /// The extensions taking part in a call (legs on either side and
    /// phones ringing for it) have a changed BLF state.
    pub(crate) fn touch_parties(&mut self, call: CallKey) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let tenant = c.tenant.id.clone();
        let mut numbers: Vec<String> = c
            .party_legs()
            .iter()
            .filter_map(|l| self.legs.get(l))
            .map(|l| l.party.number.clone())
            .collect();
        numbers.push(c.caller.number.clone());
        numbers.sort();
        numbers.dedup();
        self.presence_changed_for_call(&tenant, &numbers);
    }

    pub(crate) fn unpublish(&self, call: CallKey) {
        let mut map = self.shared.active.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&call);
        self.shared.count.store(map.len(), Ordering::Relaxed);
        metrics::gauge!("orbit_calls_active").set(map.len() as f64);
    }

    pub(crate) fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }
}

const SWEEP_EVERY: Duration = Duration::from_secs(5);

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where the caller's requests came from, as a peer to send to.
pub(crate) fn peer_of(source: &Source) -> Peer {
    Peer {
        transport: source.transport,
        addr: source.remote,
    }
}
