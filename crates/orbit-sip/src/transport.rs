//! Sockets: UDP datagrams and TCP/TLS streams, bounded in size and count.
//! Everything received goes to the [`Endpoint`]; everything sent goes back
//! over the path the request came on.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::datagram;
use crate::endpoint::Endpoint;
use crate::frame::{self, FrameError, Framing};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn as_str(&self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub transport: Transport,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// When the message reached this host: for a UDP datagram the kernel's
    /// receive time, so the time it sat in the socket buffer counts; for a
    /// stream, when it was framed. Overload decisions measure from here.
    pub received: Instant,
}

/// How to send bytes back to the peer a request came from.
#[derive(Debug, Clone)]
pub enum ReplyPath {
    Udp(Arc<UdpSocket>),
    Stream(mpsc::Sender<Bytes>),
}

impl ReplyPath {
    /// `target` is used for datagrams only; a stream goes back on itself.
    pub async fn send(&self, bytes: Bytes, target: SocketAddr) {
        match self {
            ReplyPath::Udp(sock) => {
                if let Err(e) = sock.send_to(&bytes, target).await {
                    debug!(%target, error = %e, "udp send failed");
                }
            }
            ReplyPath::Stream(tx) => {
                // A full queue means a peer that does not read: drop, it will retransmit or time out.
                if tx.try_send(bytes).is_err() {
                    debug!(%target, "stream send queue full or closed");
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct StreamLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// Bind a UDP socket with receive/send buffers sized for bursts; IPv6
/// sockets are v6-only so `0.0.0.0` and `[::]` can both be bound.
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Bind a TCP listener (v6-only for IPv6, like [`bind_udp`]).
pub fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Receive datagrams until cancelled. The socket is made available for
/// outgoing requests at once, before the returned future first runs.
pub fn serve_udp(
    endpoint: Arc<Endpoint>,
    socket: Arc<UdpSocket>,
    cancel: CancellationToken,
) -> impl std::future::Future<Output = ()> {
    endpoint.add_udp_socket(socket.clone());
    async move {
        // A bug that panics on one datagram must not silence the socket:
        // log it and keep receiving.
        loop {
            let task = tokio::spawn(receive_datagrams(
                endpoint.clone(),
                socket.clone(),
                cancel.clone(),
            ));
            match task.await {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    tracing::error!("udp receive loop panicked; restarting it");
                    metrics::counter!("orbit_sip_receive_panics_total").increment(1);
                }
                Err(_) => return,
            }
        }
    }
}

async fn receive_datagrams(
    endpoint: Arc<Endpoint>,
    socket: Arc<UdpSocket>,
    cancel: CancellationToken,
) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "udp socket has no local address");
            return;
        }
    };
    // One byte more than the limit tells an oversize datagram from a full one.
    let mut buf = vec![0u8; endpoint.limits().max_message_size.max(65_535) + 1];
    let stamped = datagram::enable_timestamps(&socket);
    if !stamped {
        debug!("no kernel receive timestamps on this socket; using read time");
    }
    loop {
        let (len, remote, received) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = datagram::receive(&socket, &mut buf, stamped) => match r {
                Ok(v) => v,
                Err(e) => {
                    debug!(error = %e, "udp receive error");
                    continue;
                }
            },
        };
        let source = Source {
            transport: Transport::Udp,
            remote,
            local,
            received,
        };
        endpoint
            .on_message(
                &buf[..len],
                Framing::Datagram,
                source,
                ReplyPath::Udp(socket.clone()),
            )
            .await;
    }
}

/// Accept TCP connections (plain, or TLS when `tls` is set) until cancelled.
pub async fn serve_stream(
    endpoint: Arc<Endpoint>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: StreamLimits,
    cancel: CancellationToken,
) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "tcp listener has no local address");
            return;
        }
    };
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, remote) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            debug!(%remote, "connection limit reached; refusing");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        open.fetch_add(1, Ordering::Relaxed);
        let (endpoint, open, cancel, tls, limits) = (
            endpoint.clone(),
            open.clone(),
            cancel.clone(),
            tls.clone(),
            limits.clone(),
        );
        tokio::spawn(async move {
            // Released however the task ends, a panic included.
            let _slot = Slot(open);
            let transport = if tls.is_some() {
                Transport::Tls
            } else {
                Transport::Tcp
            };
            let source = Source {
                transport,
                remote,
                local,
                received: Instant::now(),
            };
            match tls {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(s)) => run_stream(endpoint, s, source, limits, cancel).await,
                        _ => debug!(%remote, "tls handshake failed"),
                    }
                }
                None => run_stream(endpoint, stream, source, limits, cancel).await,
            }
        });
    }
}

/// One of the listener's connection slots, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Forgets a connection for outgoing requests when its task ends.
struct Registered {
    endpoint: Arc<Endpoint>,
    source: Source,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.endpoint.connection_closed(&self.source);
    }
}

const CRLF_PING: &[u8] = b"\r\n\r\n";

async fn run_stream<S>(
    endpoint: Arc<Endpoint>,
    stream: S,
    source: Source,
    limits: StreamLimits,
    cancel: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    endpoint.connection_opened(&source, tx.clone());
    let registered = Registered {
        endpoint: endpoint.clone(),
        source,
    };
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let max = endpoint.limits().max_message_size;
    let mut buf = BytesMut::with_capacity(8192);
    let mut scanned = 0;
    'conn: loop {
        // Frame every complete message already buffered.
        loop {
            // RFC 5626 §4.4.1 keep-alive: a CRLFCRLF ping gets a CRLF pong.
            if buf.starts_with(CRLF_PING) {
                let _ = buf.split_to(CRLF_PING.len());
                scanned = 0;
                let _ = tx.try_send(Bytes::from_static(b"\r\n"));
                continue;
            }
            match frame::stream_message_len(&buf, max, &mut scanned) {
                Ok(Some(len)) => {
                    let msg = buf.split_to(len);
                    scanned = 0;
                    let source = Source {
                        received: Instant::now(),
                        ..source
                    };
                    endpoint
                        .on_message(&msg, Framing::Stream, source, ReplyPath::Stream(tx.clone()))
                        .await;
                }
                Ok(None) => break,
                Err(e) => {
                    // The stream cannot be re-synchronised: answer if we can, then close.
                    let status = if e == FrameError::TooLarge { 513 } else { 400 };
                    endpoint
                        .reject_unframeable(&buf, status, &e, source, &tx)
                        .await;
                    break 'conn;
                }
            }
        }
        let read = tokio::select! {
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(limits.idle_timeout, reader.read_buf(&mut buf)) => r,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(_)) => {}
        }
    }
    drop(registered);
    drop(tx);
    let _ = writer_task.await;
}

/// Build a TLS acceptor from PEM files (certificate chain and private key).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Cert(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Cert(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Cert("no certificate in file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate: {0}")]
    Cert(String),
    #[error("TLS private key: {0}")]
    Key(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}
