//! Server transactions (RFC 3261 §17.2) without I/O: the table says whether
//! a request is new, a retransmission to answer again, or an ACK to absorb,
//! and which responses are due for retransmission at a given instant.
//!
//! Time is passed in; nothing here reads a clock or touches a socket.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::request::{Method, Request};

pub const T1: Duration = Duration::from_millis(500);
pub const T2: Duration = Duration::from_secs(4);
pub const T4: Duration = Duration::from_secs(5);
/// How long an INVITE that got a provisional answer may stay open: longer
/// than any ringing Orbit does (sequential ring groups and their no-answer
/// destinations can ring for many minutes), so the final answer is still
/// resent and its ACK absorbed.
pub const PROCEEDING_LIMIT: Duration = Duration::from_secs(3600);

/// RFC 3261 §17.2.3 matching: branch (magic cookie), sent-by and method,
/// with ACK matching its INVITE. Requests from pre-3261 peers without the
/// cookie fall back to Call-ID, CSeq number, From tag and sent-by.
///
/// Kept as a 64-bit keyed hash of those fields: the table holds every
/// transaction of the last 32 s (hundreds of thousands at load), and
/// string keys cost an allocation per copy and cache misses per compare.
/// The hash key is random per process, so collisions (about 1 in 10^8 at a
/// full table) cannot be aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey(u64);

fn key_of(hasher: &RandomState, req: &Request) -> TxKey {
    use std::hash::{BuildHasher, Hash, Hasher};
    let method = match req.method {
        Method::Ack => Method::Invite,
        m => m,
    };
    let mut h = hasher.build_hasher();
    method.hash(&mut h);
    req.via.host.hash(&mut h);
    req.via.port.hash(&mut h);
    match &req.via.branch {
        Some(b) if b.starts_with("z9hG4bK") => b.hash(&mut h),
        _ => {
            req.call_id.hash(&mut h);
            req.cseq.hash(&mut h);
            req.from.tag().hash(&mut h);
        }
    }
    TxKey(h.finish())
}

/// What to do with an incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A new transaction: hand the request to the application.
    New,
    /// A retransmission: send this response again (None while the first
    /// copy is still being processed).
    Retransmit(Option<Bytes>),
    /// The ACK for a non-2xx final response: absorbed here.
    AckAbsorbed,
    /// An ACK that matches no transaction (a 2xx ACK): for the dialog layer.
    AckForDialog,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retransmission<D> {
    pub destination: D,
    pub bytes: Bytes,
}

#[derive(Debug)]
struct Entry<D> {
    last: Option<Bytes>,
    destination: D,
    /// INVITE non-2xx final on an unreliable transport: Timer G state.
    resend: Option<(Instant, Duration)>,
    expires: Instant,
    invite: bool,
    reliable: bool,
    /// The final status sent, 0 before one is.
    final_status: u16,
    confirmed: bool,
}

/// The table of server transactions, bounded in size.
#[derive(Debug)]
pub struct ServerTransactions<D> {
    entries: HashMap<TxKey, Entry<D>>,
    /// Expiry instants, earliest first; entries whose expiry moved since
    /// are skipped when popped.
    order: BinaryHeap<Reverse<(Instant, TxKey)>>,
    /// Timer G instants, earliest first, so `poll` touches only what is due
    /// (the table holds every transaction of the last 32 s).
    resends: BinaryHeap<Reverse<(Instant, TxKey)>>,
    capacity: usize,
    hasher: RandomState,
}

/// The table is full: the request should be refused (503) until it drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many transactions in progress")]
pub struct Overloaded;

impl<D: Clone> ServerTransactions<D> {
    pub fn new(capacity: usize) -> Self {
        // Reserved up front: growing a table of hundreds of thousands of
        // entries rehashes (or copies) all of them at once, a stall of tens
        // of milliseconds on the receive path. Untouched pages cost no memory.
        ServerTransactions {
            entries: HashMap::with_capacity(capacity),
            order: BinaryHeap::with_capacity(capacity * 2),
            resends: BinaryHeap::new(),
            capacity,
            hasher: RandomState::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Classify a request and, when new, open its transaction.
    pub fn on_request(
        &mut self,
        req: &Request,
        destination: D,
        reliable: bool,
        now: Instant,
    ) -> Result<Lookup, Overloaded> {
        let key = key_of(&self.hasher, req);
        if req.method == Method::Ack {
            return Ok(match self.entries.get_mut(&key) {
                // The ACK for our non-2xx final response (RFC 3261 §17.2.1):
                // Completed -> Confirmed once; later copies are absorbed too.
                Some(e) if e.invite && e.final_status >= 300 => {
                    if !e.confirmed {
                        e.confirmed = true;
                        e.resend = None;
                        let linger = if reliable { Duration::ZERO } else { T4 };
                        e.expires = now + linger;
                        self.order.push(Reverse((e.expires, key)));
                    }
                    Lookup::AckAbsorbed
                }
                // An ACK before any final response is meaningless: drop it.
                Some(e) if e.invite && e.final_status == 0 => Lookup::AckAbsorbed,
                _ => Lookup::AckForDialog,
            });
        }
        if let Some(e) = self.entries.get(&key) {
            // Once confirmed, INVITE retransmissions are absorbed silently.
            let last = if e.confirmed { None } else { e.last.clone() };
            return Ok(Lookup::Retransmit(last));
        }
        if self.entries.len() >= self.capacity {
            self.expire(now);
            self.evict_completed();
            if self.entries.len() >= self.capacity {
                return Err(Overloaded);
            }
        }
        // A transaction whose TU never answers still ends (Timer H/J scale).
        let expires = now + 64 * T1;
        self.entries.insert(
            key,
            Entry {
                last: None,
                destination,
                resend: None,
                expires,
                invite: req.method == Method::Invite,
                reliable,
                final_status: 0,
                confirmed: false,
            },
        );
        self.order.push(Reverse((expires, key)));
        Ok(Lookup::New)
    }

    /// Record the response sent for a request's transaction.
    pub fn on_response(&mut self, req: &Request, bytes: Bytes, status: u16, now: Instant) {
        let key = key_of(&self.hasher, req);
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        e.last = Some(bytes);
        if status < 200 {
            // A ringing INVITE waits for its TU longer than the default
            // bound; keep it until the caller's own Timer C would give up.
            if e.invite && e.final_status == 0 {
                let until = now + PROCEEDING_LIMIT;
                if until > e.expires {
                    e.expires = until;
                    self.order.push(Reverse((until, key)));
                }
            }
            return;
        }
        e.final_status = status;
        let linger = match (e.invite, e.reliable, status < 300) {
            // 2xx to INVITE: the TU (dialog) resends it until the ACK, but
            // the transaction stays, silent, for 64*T1 (RFC 6026 "Accepted")
            // so a resent INVITE is absorbed instead of starting a new call.
            (true, _, true) => {
                e.confirmed = true;
                64 * T1
            }
            // Non-2xx to INVITE: Timer H bounds the wait for ACK.
            (true, false, false) => {
                e.resend = Some((now + T1, T1));
                self.resends.push(Reverse((now + T1, key)));
                64 * T1
            }
            (true, true, false) => 64 * T1,
            // Non-INVITE: Timer J (zero on reliable transports).
            (false, false, _) => 64 * T1,
            (false, true, _) => Duration::ZERO,
        };
        e.expires = now + linger;
        self.order.push(Reverse((e.expires, key)));
    }

    /// Responses due for retransmission at `now` (Timer G), after dropping
    /// finished transactions.
    pub fn poll(&mut self, now: Instant) -> Vec<Retransmission<D>> {
        self.expire(now);
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = self.resends.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = self.resends.pop() else {
                break;
            };
            let Some(e) = self.entries.get_mut(&key) else {
                continue;
            };
            // Skip stale heap positions (ACKed, or rescheduled since).
            let (Some((when, interval)), Some(bytes)) = (e.resend, &e.last) else {
                continue;
            };
            if when != at {
                continue;
            }
            let next = (interval * 2).min(T2);
            e.resend = Some((now + next, next));
            self.resends.push(Reverse((now + next, key)));
            due.push(Retransmission {
                destination: e.destination.clone(),
                bytes: bytes.clone(),
            });
        }
        due
    }

    /// The earliest instant `poll` has work to do, for arming one timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        let resend = self.resends.peek().map(|Reverse((at, _))| *at);
        let expiry = self.order.peek().map(|Reverse((at, _))| *at);
        match (resend, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When full, answered transactions (kept only to answer or absorb
    /// retransmissions, and for a non-2xx to INVITE to resend it until the
    /// ACK) go first, oldest first, so a burst degrades retransmission
    /// handling instead of refusing new requests. Transactions still
    /// waiting for their answer are never evicted.
    fn evict_completed(&mut self) {
        let target = self.capacity.saturating_sub((self.capacity / 512).max(1));
        let mut keep = Vec::new();
        while self.entries.len() > target {
            let Some(Reverse((at, key))) = self.order.pop() else {
                break;
            };
            match self.entries.get(&key) {
                Some(e) if e.expires == at && e.final_status != 0 => {
                    self.entries.remove(&key);
                    metrics::counter!("orbit_sip_transactions_evicted_total").increment(1);
                }
                Some(e) if e.expires == at => keep.push(Reverse((at, key))),
                _ => {}
            }
        }
        self.order.extend(keep);
    }

    fn expire(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.order.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = self.order.pop() else {
                break;
            };
            if self.entries.get(&key).is_some_and(|e| e.expires == at) {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Framing;
    use crate::sanity::{check, Inbound, Limits};

    fn req(method: &str, branch: &str) -> Request {
        let text = format!(
            "{method} sip:acme.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\nFrom: <sip:101@acme.test>;tag=1\r\nTo: <sip:102@acme.test>\r\nCall-ID: c1\r\nCSeq: 1 {}\r\nContent-Length: 0\r\n\r\n",
            if method == "ACK" { "ACK" } else { method }
        );
        match check(text.as_bytes(), Framing::Datagram, &Limits::default()) {
            Inbound::Request(r) => *r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_invite_retransmission_gets_same_answer_until_timer_j() {
        let t0 = Instant::now();
        let mut tx = ServerTransactions::new(10);
        let r = req("REGISTER", "z9hG4bKa");
        assert_eq!(tx.on_request(&r, 1, false, t0), Ok(Lookup::New));
        assert_eq!(
            tx.on_request(&r, 1, false, t0),
            Ok(Lookup::Retransmit(None))
        );
        tx.on_response(&r, Bytes::from_static(b"200"), 200, t0);
        let later = t0 + Duration::from_secs(31);
        assert_eq!(
            tx.on_request(&r, 1, false, later),
            Ok(Lookup::Retransmit(Some(Bytes::from_static(b"200"))))
        );
        assert!(tx.poll(t0 + 64 * T1).is_empty());
        assert!(tx.is_empty());
        assert_eq!(tx.on_request(&r, 1, false, t0 + 64 * T1), Ok(Lookup::New));
    }

    #[test]
    fn invite_failure_is_resent_on_timer_g_until_ack() {
        let t0 = Instant::now();
        let mut tx = ServerTransactions::new(10);
        let inv = req("INVITE", "z9hG4bKi");
        assert_eq!(tx.on_request(&inv, 7, false, t0), Ok(Lookup::New));
        tx.on_response(&inv, Bytes::from_static(b"486"), 486, t0);
        assert_eq!(tx.next_deadline(), Some(t0 + T1));
        // Intervals double from T1 and are capped at T2: 0.5, 1.5, 3.5, 7.5, 11.5 s.
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let sends: Vec<_> = [499u64, 500, 1499, 1500, 3500, 7500, 11499, 11500]
            .iter()
            .map(|ms| tx.poll(at(*ms)).len())
            .collect();
        assert_eq!(sends, vec![0, 1, 0, 1, 1, 1, 0, 1]);
        let ack = req("ACK", "z9hG4bKi");
        assert_eq!(
            tx.on_request(&ack, 7, false, t0 + T2 * 2),
            Ok(Lookup::AckAbsorbed)
        );
        assert!(tx.poll(t0 + T2 * 3).is_empty());
        tx.poll(t0 + T2 * 2 + T4);
        assert!(tx.is_empty());
    }

    #[test]
    fn when_full_the_oldest_completed_go_first() {
        let t0 = Instant::now();
        let mut tx = ServerTransactions::new(4);
        let reqs: Vec<_> = (0..4)
            .map(|i| req("OPTIONS", &format!("z9hG4bKe{i}")))
            .collect();
        for (i, r) in reqs.iter().enumerate() {
            let at = t0 + Duration::from_millis(i as u64);
            assert_eq!(tx.on_request(r, 0, false, at), Ok(Lookup::New));
            if i < 3 {
                tx.on_response(r, Bytes::from_static(b"200"), 200, at);
            }
        }
        let next = req("OPTIONS", "z9hG4bKe9");
        assert_eq!(tx.on_request(&next, 0, false, t0), Ok(Lookup::New));
        // The oldest answered one is gone; the unanswered one is kept.
        assert_eq!(tx.on_request(&reqs[0], 0, false, t0), Ok(Lookup::New));
        assert_eq!(
            tx.on_request(&reqs[3], 0, false, t0),
            Ok(Lookup::Retransmit(None))
        );
    }

    #[test]
    fn bounded_and_reliable_transports_do_not_linger() {
        let t0 = Instant::now();
        let mut tx = ServerTransactions::new(1);
        let a = req("OPTIONS", "z9hG4bKa");
        let b = req("OPTIONS", "z9hG4bKb");
        assert_eq!(tx.on_request(&a, 0, true, t0), Ok(Lookup::New));
        assert_eq!(tx.on_request(&b, 0, true, t0), Err(Overloaded));
        tx.on_response(&a, Bytes::new(), 200, t0);
        assert_eq!(tx.on_request(&b, 0, true, t0), Ok(Lookup::New));
    }

    #[test]
    fn invite_resent_after_its_2xx_is_absorbed_not_new() {
        let t0 = Instant::now();
        let mut tx = ServerTransactions::new(10);
        let inv = req("INVITE", "z9hG4bKi");
        assert_eq!(tx.on_request(&inv, 0, false, t0), Ok(Lookup::New));
        tx.on_response(&inv, Bytes::from_static(b"200"), 200, t0);
        // The caller lost the 100/180 and resends: not a second call, and
        // not answered from here (the dialog resends its own 2xx).
        let later = t0 + Duration::from_secs(2);
        assert_eq!(
            tx.on_request(&inv, 0, false, later),
            Ok(Lookup::Retransmit(None))
        );
        assert!(tx.poll(later).is_empty(), "no Timer G for a 2xx");
        let ack = req("ACK", "z9hG4bKother");
        assert_eq!(
            tx.on_request(&ack, 0, false, later),
            Ok(Lookup::AckForDialog)
        );
        // After 64*T1 it is gone.
        tx.poll(t0 + 64 * T1 + Duration::from_millis(1));
        assert_eq!(tx.len(), 0);
    }
}
