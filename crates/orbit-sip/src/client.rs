//! Client transactions (RFC 3261 §17.1) without I/O: retransmission of
//! requests over UDP (Timers A and E), timeouts (B and F), absorbing
//! retransmitted final responses (Timers D and K) and re-sending the ACK
//! for a retransmitted non-2xx final response to INVITE.
//!
//! Time is passed in; nothing here reads a clock or touches a socket.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::transaction::{Retransmission, T1, T2, T4};

/// An INVITE that has had a provisional response is given up after this
/// long without another one (RFC 3261 §16.6 Timer C is "greater than 3 minutes").
pub const PROCEEDING_LIMIT: Duration = Duration::from_secs(181);

/// A client transaction is named by the branch Orbit generated and the
/// method (a CANCEL shares its INVITE's branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    pub branch: String,
    pub method: String,
}

/// What the transaction layer makes of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Hand it to the transaction user.
    Deliver,
    /// A retransmission of a final response already delivered; for a
    /// non-2xx to INVITE the ACK is sent again.
    Absorb { resend_ack: Option<Bytes> },
    /// No transaction matches.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Proceeding,
    Completed,
}

#[derive(Debug)]
struct Entry<D> {
    request: Bytes,
    destination: D,
    invite: bool,
    reliable: bool,
    state: State,
    resend: Option<(Instant, Duration)>,
    /// Timer B/F while waiting; Timer D/K once completed.
    deadline: Instant,
    ack: Option<Bytes>,
}

#[derive(Debug)]
pub struct ClientTransactions<D> {
    entries: HashMap<ClientKey, Entry<D>>,
    /// Every instant something may be due (a resend or a deadline), earliest
    /// first; `poll` checks each against the entry, so stale ones are skipped.
    timers: BinaryHeap<Reverse<(Instant, ClientKey)>>,
}

impl<D> Default for ClientTransactions<D> {
    fn default() -> Self {
        ClientTransactions {
            entries: HashMap::new(),
            timers: BinaryHeap::new(),
        }
    }
}

impl<D: Clone> ClientTransactions<D> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Open a transaction for a request that is being sent now.
    pub fn start(
        &mut self,
        key: ClientKey,
        request: Bytes,
        destination: D,
        reliable: bool,
        now: Instant,
    ) {
        let invite = key.method == "INVITE";
        let resend = (!reliable).then_some((now + T1, T1));
        if let Some((at, _)) = resend {
            self.timers.push(Reverse((at, key.clone())));
        }
        self.timers.push(Reverse((now + 64 * T1, key.clone())));
        self.entries.insert(
            key,
            Entry {
                request,
                destination,
                invite,
                reliable,
                state: State::Calling,
                resend,
                deadline: now + 64 * T1,
                ack: None,
            },
        );
    }

    /// Classify a response. For a non-2xx final response to INVITE the
    /// caller must then pass the ACK it sent to [`Self::set_ack`].
    pub fn on_response(&mut self, key: &ClientKey, status: u16, now: Instant) -> Disposition {
        let Some(e) = self.entries.get_mut(key) else {
            return Disposition::Unknown;
        };
        if e.state == State::Completed {
            return Disposition::Absorb {
                resend_ack: if status >= 300 { e.ack.clone() } else { None },
            };
        }
        if status < 200 {
            e.state = State::Proceeding;
            if e.invite {
                // Timer A stops once anything is heard back, and Timer B only
                // runs in Calling: a phone may ring for minutes. The TU bounds
                // ringing (Timer C); this bound only keeps a lost dialog from
                // living forever, and each provisional renews it.
                e.resend = None;
                e.deadline = now + PROCEEDING_LIMIT;
                self.timers.push(Reverse((e.deadline, key.clone())));
            } else if let Some((_, interval)) = e.resend {
                // Timer E continues at T2 in Proceeding.
                e.resend = Some((now + T2, interval.max(T2)));
                self.timers.push(Reverse((now + T2, key.clone())));
            }
            return Disposition::Deliver;
        }
        if e.invite && status < 300 {
            // The 2xx and its ACK belong to the dialog (RFC 6026 aside).
            self.entries.remove(key);
            return Disposition::Deliver;
        }
        e.state = State::Completed;
        e.resend = None;
        let linger = match (e.reliable, e.invite) {
            (true, _) => Duration::ZERO,
            (false, true) => Duration::from_secs(32),
            (false, false) => T4,
        };
        e.deadline = now + linger;
        self.timers.push(Reverse((e.deadline, key.clone())));
        Disposition::Deliver
    }

    pub fn set_ack(&mut self, key: &ClientKey, ack: Bytes) {
        if let Some(e) = self.entries.get_mut(key) {
            e.ack = Some(ack);
        }
    }

    /// Where a transaction's request went (to send its ACK again).
    pub fn destination(&self, key: &ClientKey) -> Option<D> {
        self.entries.get(key).map(|e| e.destination.clone())
    }

    /// Stop retransmitting and forget a transaction (e.g. its TU gave up).
    pub fn remove(&mut self, key: &ClientKey) {
        self.entries.remove(key);
    }

    /// Requests due for retransmission, and transactions that timed out
    /// without a final response (the TU treats those as 408).
    pub fn poll(&mut self, now: Instant) -> (Vec<Retransmission<D>>, Vec<ClientKey>) {
        let mut due = Vec::new();
        let mut timed_out = Vec::new();
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, key))) = self.timers.pop() else {
                break;
            };
            let Some(e) = self.entries.get_mut(&key) else {
                continue;
            };
            if e.deadline <= now {
                if e.state != State::Completed {
                    timed_out.push(key.clone());
                }
                self.entries.remove(&key);
                continue;
            }
            if let Some((when, interval)) = e.resend {
                if when <= now {
                    let next = if e.invite {
                        interval * 2
                    } else {
                        (interval * 2).min(T2)
                    };
                    e.resend = Some((now + next, next));
                    self.timers.push(Reverse((now + next, key.clone())));
                    due.push(Retransmission {
                        destination: e.destination.clone(),
                        bytes: e.request.clone(),
                    });
                }
            }
        }
        (due, timed_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(method: &str) -> ClientKey {
        ClientKey {
            branch: "z9hG4bKc1".into(),
            method: method.into(),
        }
    }

    #[test]
    fn invite_retransmits_doubling_until_provisional() {
        let t0 = Instant::now();
        let mut c = ClientTransactions::default();
        c.start(key("INVITE"), Bytes::from_static(b"INVITE"), 1, false, t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(c.poll(at(499)).0.len(), 0);
        assert_eq!(c.poll(at(500)).0.len(), 1);
        assert_eq!(c.poll(at(1499)).0.len(), 0);
        assert_eq!(c.poll(at(1500)).0.len(), 1);
        assert_eq!(
            c.on_response(&key("INVITE"), 180, at(1600)),
            Disposition::Deliver
        );
        assert_eq!(c.poll(at(10_000)).0.len(), 0);
        assert_eq!(
            c.on_response(&key("INVITE"), 486, at(11_000)),
            Disposition::Deliver
        );
        c.set_ack(&key("INVITE"), Bytes::from_static(b"ACK"));
        assert_eq!(
            c.on_response(&key("INVITE"), 486, at(11_100)),
            Disposition::Absorb {
                resend_ack: Some(Bytes::from_static(b"ACK"))
            }
        );
        c.poll(at(11_000 + 32_000));
        assert!(c.is_empty());
    }

    #[test]
    fn ringing_longer_than_timer_b_is_not_a_timeout() {
        let t0 = Instant::now();
        let mut c = ClientTransactions::default();
        c.start(key("INVITE"), Bytes::new(), 1, true, t0);
        c.on_response(&key("INVITE"), 180, t0 + Duration::from_secs(1));
        assert!(c.poll(t0 + Duration::from_secs(60)).1.is_empty());
        assert_eq!(
            c.on_response(&key("INVITE"), 200, t0 + Duration::from_secs(60)),
            Disposition::Deliver
        );
    }

    #[test]
    fn non_invite_times_out_with_timer_f() {
        let t0 = Instant::now();
        let mut c = ClientTransactions::default();
        c.start(key("BYE"), Bytes::from_static(b"BYE"), 1, false, t0);
        let mut sends = 0;
        let mut ms = 0;
        let mut timed_out = Vec::new();
        while timed_out.is_empty() {
            ms += 100;
            let (due, t) = c.poll(t0 + Duration::from_millis(ms));
            sends += due.len();
            timed_out = t;
        }
        assert_eq!(ms, 32_000);
        // 0.5, 1.5, 3.5, 7.5, then every 4 s up to 31.5: 10 resends.
        assert_eq!(sends, 10);
        assert_eq!(timed_out, vec![key("BYE")]);
    }

    #[test]
    fn two_hundred_to_invite_ends_the_transaction() {
        let t0 = Instant::now();
        let mut c = ClientTransactions::default();
        c.start(key("INVITE"), Bytes::new(), 1, true, t0);
        assert_eq!(c.on_response(&key("INVITE"), 200, t0), Disposition::Deliver);
        assert!(c.is_empty());
        assert_eq!(c.on_response(&key("INVITE"), 200, t0), Disposition::Unknown);
    }
}
