//! The client side of the endpoint: sending requests over the right socket
//! or connection, matching responses to their client transactions, and
//! resending or timing them out. The pure rules are in [`crate::client`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use rand::RngCore;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::client::{ClientKey, ClientTransactions, Disposition};
use crate::frame::Message;
use crate::request::Method;
use crate::transport::{ReplyPath, Transport};
use crate::uri;
use crate::via::Via;

/// A request to send, already serialised with a Via carrying `branch`.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    pub branch: String,
    pub bytes: Bytes,
    pub transport: Transport,
    pub target: SocketAddr,
}

/// What becomes of a request sent with [`crate::Endpoint::send_request`].
#[derive(Debug)]
pub enum ClientEvent {
    Response(Box<Message>),
    /// No final response in time (Timer B or F): treat as 408.
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no {0} socket to send from")]
    NoSocket(&'static str),
    #[error("no connection to {0}")]
    NoConnection(SocketAddr),
}

/// A fresh RFC 3261 branch (magic cookie plus 64 random bits).
pub fn new_branch() -> String {
    let mut raw = [0u8; 8];
    rand::rng().fill_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("z9hG4bK{hex}")
}

type Target = (ReplyPath, SocketAddr);

#[derive(Default)]
pub(crate) struct Outbound {
    transactions: Mutex<ClientTransactions<Target>>,
    waiters: Mutex<HashMap<ClientKey, mpsc::Sender<ClientEvent>>>,
    udp: Mutex<Vec<std::sync::Arc<UdpSocket>>>,
    /// Open stream connections by peer address, so requests to a phone go
    /// over the connection it registered on (it may sit behind NAT).
    connections: Mutex<HashMap<(Transport, SocketAddr), mpsc::Sender<Bytes>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outbound {
    pub(crate) fn add_udp(&self, socket: std::sync::Arc<UdpSocket>) {
        lock(&self.udp).push(socket);
    }

    pub(crate) fn connection_opened(
        &self,
        transport: Transport,
        remote: SocketAddr,
        tx: mpsc::Sender<Bytes>,
    ) {
        lock(&self.connections).insert((transport, remote), tx);
    }

    pub(crate) fn connection_closed(&self, transport: Transport, remote: SocketAddr) {
        lock(&self.connections).remove(&(transport, remote));
    }

    fn path_for(&self, transport: Transport, target: SocketAddr) -> Result<ReplyPath, SendError> {
        match transport {
            Transport::Udp => lock(&self.udp)
                .iter()
                .find(|s| {
                    s.local_addr()
                        .map(|a| a.is_ipv6() == target.is_ipv6())
                        .unwrap_or(false)
                })
                .cloned()
                .map(ReplyPath::Udp)
                .ok_or(SendError::NoSocket(if target.is_ipv6() {
                    "IPv6 UDP"
                } else {
                    "IPv4 UDP"
                })),
            t => lock(&self.connections)
                .get(&(t, target))
                .cloned()
                .map(ReplyPath::Stream)
                .ok_or(SendError::NoConnection(target)),
        }
    }

    pub(crate) async fn send(
        &self,
        out: Outgoing,
    ) -> Result<mpsc::Receiver<ClientEvent>, SendError> {
        let path = self.path_for(out.transport, out.target)?;
        let key = ClientKey {
            branch: out.branch.clone(),
            method: out.method.as_str().to_string(),
        };
        let (tx, rx) = mpsc::channel(16);
        lock(&self.waiters).insert(key.clone(), tx);
        lock(&self.transactions).start(
            key,
            out.bytes.clone(),
            (path.clone(), out.target),
            out.transport.is_reliable(),
            Instant::now(),
        );
        metrics::counter!("orbit_sip_requests_sent_total", "method" => out.method.as_str())
            .increment(1);
        path.send(out.bytes, out.target).await;
        Ok(rx)
    }

    pub(crate) async fn send_raw(
        &self,
        transport: Transport,
        target: SocketAddr,
        bytes: Bytes,
    ) -> Result<(), SendError> {
        let path = self.path_for(transport, target)?;
        path.send(bytes, target).await;
        Ok(())
    }

    /// Give a response to its client transaction. Returns false when none
    /// matches (a 2xx retransmission for a dialog, or a stray).
    pub(crate) async fn on_response(&self, msg: Message) -> bool {
        let Some(key) = key_of(&msg) else {
            return false;
        };
        let status = match &msg.start {
            crate::frame::StartLine::Response { code, .. } => *code,
            _ => return false,
        };
        let disposition = lock(&self.transactions).on_response(&key, status, Instant::now());
        match disposition {
            Disposition::Unknown => false,
            Disposition::Absorb { resend_ack } => {
                if let Some(ack) = resend_ack {
                    let dest = lock(&self.transactions).destination(&key);
                    if let Some((path, target)) = dest {
                        path.send(ack, target).await;
                    }
                }
                true
            }
            Disposition::Deliver => {
                let waiter = {
                    let mut w = lock(&self.waiters);
                    if status >= 200 {
                        w.remove(&key)
                    } else {
                        w.get(&key).cloned()
                    }
                };
                // Never wait on a slow transaction user here: this runs on the
                // receive loop. A full queue loses a provisional, not the call.
                if let Some(tx) = waiter {
                    let _ = tx.try_send(ClientEvent::Response(Box::new(msg)));
                }
                true
            }
        }
    }

    /// Record the ACK sent for a non-2xx final response to INVITE, so a
    /// retransmitted final response gets it again.
    pub fn set_ack(&self, branch: &str, ack: Bytes) {
        let key = ClientKey {
            branch: branch.to_string(),
            method: "INVITE".into(),
        };
        lock(&self.transactions).set_ack(&key, ack);
    }

    pub(crate) async fn on_tick(&self, now: Instant) {
        let (due, timed_out) = lock(&self.transactions).poll(now);
        for r in due {
            let (path, target) = r.destination;
            path.send(r.bytes, target).await;
        }
        for key in timed_out {
            let waiter = lock(&self.waiters).remove(&key);
            if let Some(tx) = waiter {
                let _ = tx.try_send(ClientEvent::Timeout);
            }
        }
    }
}

fn key_of(msg: &Message) -> Option<ClientKey> {
    let via = msg
        .header("via")
        .and_then(|v| uri::split_list(v).first().and_then(|f| Via::parse(f)))?;
    let method = msg.header("cseq")?.split_whitespace().nth(1)?.to_string();
    Some(ClientKey {
        branch: via.branch?,
        method,
    })
}
