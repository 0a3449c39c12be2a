//! The thin I/O shell around the pure parts: input checks, the transaction
//! table and the application's [`Handler`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace};

use crate::frame::{self, FrameError, Framing};
use crate::outbound::{ClientEvent, Outbound, Outgoing, SendError};
use crate::request::Request;
use crate::response::{self, Response};
use crate::sanity::{self, Inbound, Limits};
use crate::transaction::{Lookup, ServerTransactions};
use crate::transport::{ReplyPath, Source};

/// What the application answers to a request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub response: Response,
    /// Hold the answer back this long (used to slow down password guessing).
    pub delay: Option<Duration>,
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        Reply {
            response,
            delay: None,
        }
    }
}

/// The application above the transaction layer. Called once per new
/// transaction, never for retransmissions or absorbed ACKs.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: &Request, source: &Source) -> Reply;

    /// Like `handle`, with the transaction at hand: returning `None` keeps
    /// it open, to be answered later through `tx` (calls ring for a while).
    fn handle_tx(&self, request: &Request, source: &Source, tx: ServerTx) -> Option<Reply> {
        let _ = tx;
        Some(self.handle(request, source))
    }

    /// An ACK that matched no server transaction: the ACK for a 2xx, which
    /// belongs to a dialog.
    fn ack(&self, _request: &Request, _source: &Source) {}

    /// A response that matched no client transaction (a retransmitted 2xx
    /// to INVITE, answered by the dialog with a new ACK).
    fn stray_response(&self, _response: &frame::Message, _source: &Source) {}
}

#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub limits: Limits,
    pub max_transactions: usize,
    /// Requests per second accepted from one source address; 0 turns it off.
    pub rate_limit_per_source: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            limits: Limits::default(),
            max_transactions: 524_288,
            rate_limit_per_source: 500,
        }
    }
}

type Destination = (ReplyPath, SocketAddr);

pub struct Endpoint {
    handler: Arc<dyn Handler>,
    config: EndpointConfig,
    transactions: Mutex<ServerTransactions<Destination>>,
    rate: Mutex<RateLimiter>,
    outbound: Outbound,
}

impl Endpoint {
    pub fn new(handler: Arc<dyn Handler>, config: EndpointConfig) -> Arc<Self> {
        let rate = RateLimiter::new(config.rate_limit_per_source);
        Arc::new(Endpoint {
            handler,
            transactions: Mutex::new(ServerTransactions::new(config.max_transactions)),
            rate: Mutex::new(rate),
            outbound: Outbound::default(),
            config,
        })
    }

    /// Send a request in a new client transaction; its responses (and a
    /// timeout) arrive on the returned channel. UDP goes out from a socket
    /// served by this endpoint; TCP and TLS need an open connection from
    /// that peer (phones register over the connection they keep open).
    pub async fn send_request(
        &self,
        out: Outgoing,
    ) -> Result<mpsc::Receiver<ClientEvent>, SendError> {
        self.outbound.send(out).await
    }

    /// Record the ACK sent for a non-2xx final response to an INVITE.
    pub fn set_ack(&self, branch: &str, ack: Bytes) {
        self.outbound.set_ack(branch, ack);
    }

    /// Send bytes outside any transaction (the ACK for a 2xx, which
    /// belongs to the dialog).
    pub async fn send_raw(
        &self,
        transport: crate::Transport,
        target: SocketAddr,
        bytes: Bytes,
    ) -> Result<(), SendError> {
        self.outbound.send_raw(transport, target, bytes).await
    }

    pub(crate) fn add_udp_socket(&self, socket: Arc<tokio::net::UdpSocket>) {
        self.outbound.add_udp(socket);
    }

    pub(crate) fn connection_opened(&self, source: &Source, tx: mpsc::Sender<Bytes>) {
        self.outbound
            .connection_opened(source.transport, source.remote, tx);
    }

    pub(crate) fn connection_closed(&self, source: &Source) {
        self.outbound
            .connection_closed(source.transport, source.remote);
    }

    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    pub async fn on_message(
        self: &Arc<Self>,
        bytes: &[u8],
        framing: Framing,
        source: Source,
        path: ReplyPath,
    ) {
        if !lock(&self.rate).allow(source.remote.ip(), Instant::now()) {
            metrics::counter!("orbit_sip_rate_limited_total").increment(1);
            return;
        }
        match sanity::check(bytes, framing, &self.config.limits) {
            Inbound::Drop(reason) => {
                metrics::counter!("orbit_sip_dropped_total").increment(1);
                debug!(src = %source.remote, reason, "dropped message");
            }
            Inbound::Response(msg) => {
                let msg = *msg;
                if !self.outbound.on_response(msg.clone()).await {
                    trace!(src = %source.remote, "response without a client transaction");
                    self.handler.stray_response(&msg, &source);
                }
            }
            Inbound::Reject(r) => {
                let resp = Response {
                    status: r.status,
                    reason: r.reason.clone(),
                    headers: r.headers.clone(),
                    body: None,
                };
                debug!(src = %source.remote, status = r.status, reason = %r.reason, "rejected request");
                self.send_stateless(&r.message, &resp, source, &path).await;
            }
            Inbound::Request(req) => self.on_request(*req, source, path).await,
        }
    }

    async fn on_request(self: &Arc<Self>, req: Request, source: Source, path: ReplyPath) {
        metrics::counter!("orbit_sip_requests_total", "method" => req.method.as_str()).increment(1);
        let reliable = source.transport.is_reliable();
        let target = if reliable {
            source.remote
        } else {
            req.via.response_target(source.remote)
        };
        let now = Instant::now();
        let lookup =
            lock(&self.transactions).on_request(&req, (path.clone(), target), reliable, now);
        match lookup {
            Err(_) => {
                let resp = Response::new(503, "Service Unavailable").header("Retry-After", "5");
                self.send_stateless(&req.message, &resp, source, &path)
                    .await;
            }
            Ok(Lookup::Retransmit(Some(bytes))) => path.send(bytes, target).await,
            Ok(Lookup::Retransmit(None) | Lookup::AckAbsorbed) => {}
            Ok(Lookup::AckForDialog) => self.handler.ack(&req, &source),
            Ok(Lookup::New) => {
                metrics::counter!("orbit_sip_transactions_total").increment(1);
                let started = Instant::now();
                let req = Arc::new(req);
                let tx = ServerTx {
                    endpoint: Arc::downgrade(self),
                    request: req.clone(),
                    source,
                    path: path.clone(),
                    target,
                };
                let Some(reply) = self.handler.handle_tx(&req, &source, tx) else {
                    return;
                };
                let bytes = response::encode(&req.message, source.remote, &reply.response);
                let status = reply.response.status;
                metrics::counter!("orbit_sip_responses_total", "class" => class_of(status))
                    .increment(1);
                debug!(
                    method = %req.method,
                    call_id = %req.call_id,
                    status,
                    src = %source.remote,
                    transport = source.transport.as_str(),
                    micros = started.elapsed().as_micros() as u64,
                    "sip transaction"
                );
                match reply.delay {
                    None => {
                        lock(&self.transactions).on_response(
                            &req,
                            bytes.clone(),
                            status,
                            Instant::now(),
                        );
                        path.send(bytes, target).await;
                    }
                    Some(delay) => {
                        let this = self.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            lock(&this.transactions).on_response(
                                &req,
                                bytes.clone(),
                                status,
                                Instant::now(),
                            );
                            path.send(bytes, target).await;
                        });
                    }
                }
            }
        }
    }

    async fn send_stateless(
        &self,
        req: &frame::Message,
        resp: &Response,
        source: Source,
        path: &ReplyPath,
    ) {
        metrics::counter!("orbit_sip_responses_total", "class" => class_of(resp.status))
            .increment(1);
        let target = match (
            &path,
            req.header("via").and_then(|v| {
                crate::uri::split_list(v)
                    .first()
                    .and_then(|f| crate::via::Via::parse(f))
            }),
        ) {
            (ReplyPath::Udp(_), Some(via)) => via.response_target(source.remote),
            _ => source.remote,
        };
        path.send(response::encode(req, source.remote, resp), target)
            .await;
    }

    /// Answer what can be answered of a stream that cannot be framed.
    pub async fn reject_unframeable(
        &self,
        buf: &[u8],
        status: u16,
        err: &FrameError,
        source: Source,
        tx: &mpsc::Sender<Bytes>,
    ) {
        // A header section that never ended is read up to its last complete
        // line, closed with a blank line, so an oversize request still gets
        // its 513 when Via, From, To, Call-ID and CSeq came before the flood.
        let head: std::borrow::Cow<'_, [u8]> = match frame::header_end(buf) {
            Some(end) => buf[..end].into(),
            None => {
                let Some(last_nl) = buf.iter().rposition(|b| *b == b'\n') else {
                    return;
                };
                let mut head = buf[..=last_nl].to_vec();
                head.extend_from_slice(b"\r\n");
                head.into()
            }
        };
        let Ok(parsed) = frame::parse_lenient(&head, Framing::Datagram) else {
            return;
        };
        if parsed.message.header("via").is_none()
            || !matches!(parsed.message.start, frame::StartLine::Request { .. })
        {
            return;
        }
        let reason = if status == 513 {
            "Message Too Large".to_string()
        } else {
            format!("Bad Request ({err})")
        };
        let resp = Response::new(status, reason);
        self.send_stateless(
            &parsed.message,
            &resp,
            source,
            &ReplyPath::Stream(tx.clone()),
        )
        .await;
    }

    /// Retransmit and expire transactions until cancelled.
    pub async fn run_timers(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut last_sweep = Instant::now();
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (due, active) = {
                let mut t = lock(&self.transactions);
                (t.poll(Instant::now()), t.len())
            };
            metrics::gauge!("orbit_sip_transactions_active").set(active as f64);
            self.outbound.on_tick(Instant::now()).await;
            for r in due {
                let (path, target) = r.destination;
                path.send(r.bytes, target).await;
            }
            if last_sweep.elapsed() >= Duration::from_secs(5) {
                last_sweep = Instant::now();
                lock(&self.rate).sweep(last_sweep);
            }
        }
    }
}

/// An open server transaction, answered later by the application. The
/// endpoint keeps retransmitting what was sent last, as for any answer.
#[derive(Clone)]
pub struct ServerTx {
    endpoint: Weak<Endpoint>,
    request: Arc<Request>,
    source: Source,
    path: ReplyPath,
    target: SocketAddr,
}

impl std::fmt::Debug for ServerTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTx")
            .field("method", &self.request.method)
            .field("call_id", &self.request.call_id)
            .field("source", &self.source)
            .finish()
    }
}

impl ServerTx {
    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Send a response in this transaction; returns the bytes sent, which
    /// the dialog resends for a 2xx to INVITE until the ACK comes.
    pub async fn respond(&self, resp: &Response) -> Bytes {
        let bytes = response::encode(&self.request.message, self.source.remote, resp);
        metrics::counter!("orbit_sip_responses_total", "class" => class_of(resp.status))
            .increment(1);
        if let Some(ep) = self.endpoint.upgrade() {
            lock(&ep.transactions).on_response(
                &self.request,
                bytes.clone(),
                resp.status,
                Instant::now(),
            );
        }
        self.path.send(bytes.clone(), self.target).await;
        bytes
    }

    /// Send bytes again to where this transaction's answers go.
    pub async fn resend(&self, bytes: Bytes) {
        self.path.send(bytes, self.target).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn class_of(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "6xx",
    }
}

/// Token bucket per source (an IPv4 address, or an IPv6 /64, since one
/// host can hold a whole /64); a bucket holds two seconds of burst.
#[derive(Debug)]
struct RateLimiter {
    rate: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
    last_full_sweep: Option<Instant>,
}

/// The address a limit applies to: IPv6 sources are grouped by /64.
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl RateLimiter {
    const MAX_TRACKED: usize = 100_000;

    fn new(rate: u32) -> Self {
        RateLimiter {
            rate: rate as f64,
            buckets: HashMap::new(),
            last_full_sweep: None,
        }
    }

    fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let ip = source_key(ip);
        if self.buckets.len() >= Self::MAX_TRACKED && !self.buckets.contains_key(&ip) {
            // A full table is swept at most once a second; in between, new
            // sources pass untracked rather than costing a scan each.
            if self
                .last_full_sweep
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
            {
                return true;
            }
            self.last_full_sweep = Some(now);
            self.sweep(now);
            if self.buckets.len() >= Self::MAX_TRACKED {
                return true;
            }
        }
        let burst = self.rate * 2.0;
        let (tokens, last) = self.buckets.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forget sources idle long enough for their bucket to be full again.
    fn sweep(&mut self, now: Instant) {
        if self.buckets.len() < 1024 {
            return;
        }
        self.buckets
            .retain(|_, (_, last)| now.duration_since(*last) < Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_refills() {
        let mut r = RateLimiter::new(10);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        let allowed = (0..50).filter(|_| r.allow(ip, t0)).count();
        assert_eq!(allowed, 20);
        assert!(r.allow(ip, t0 + Duration::from_millis(150)));
        assert!(RateLimiter::new(0).allow(ip, t0));
    }
}
