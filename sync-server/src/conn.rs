//! Connection hygiene, on plain HTTP and TLS alike: a cap on open connections (one past it is
//! closed at once, so a flood of half-open sockets cannot exhaust file descriptors), a cap per
//! IP address (so one address dripping a byte a minute cannot take every slot), an idle timeout
//! on every connection (no byte either way for `IDLE_TIMEOUT` closes it: a stalled header, a
//! stalled body, a forgotten keep-alive) and a lifetime cap (a drip just fast enough to stay
//! active still ends). The header-read timeout is hyper's own, set where the server is built
//! (`lib.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections open at once. A district's phones sync a few at a time; this leaves room for a
/// whole region's morning rush and still far below the process's file-descriptor limit.
pub const CONNECTIONS_MAX: usize = 512;
/// Connections from one IP address at once. Phones behind one carrier-grade NAT share an
/// address, so this is generous; one address still cannot hold the whole server.
pub const CONNECTIONS_PER_IP_MAX: usize = 64;
/// No byte in either direction for this long closes a connection. A 2G link stalls for
/// seconds, not a minute.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// However busy, a connection lives this long at most; the device reconnects for its next
/// round trip (a sync's pages are committed one by one, so a cut costs one page at most).
pub const LIFETIME_MAX: Duration = Duration::from_secs(30 * 60);

/// A request's headers are a few hundred bytes: even on 2G they arrive in seconds.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The limits a listener applies to every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connections_max: usize,
    pub per_ip_max: usize,
    pub idle_timeout: Duration,
    pub lifetime_max: Duration,
    /// A request's headers must all arrive within this (hyper's own timeout).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections_max: CONNECTIONS_MAX,
            per_ip_max: CONNECTIONS_PER_IP_MAX,
            idle_timeout: IDLE_TIMEOUT,
            lifetime_max: LIFETIME_MAX,
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// Open connections per address, shared by a listener and its connections.
#[derive(Default)]
struct PerIp(std::sync::Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in `PerIp`, given back when the connection closes.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn take(table: &Arc<PerIp>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut open = table.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What admits a connection: a slot under the total cap and one under its address's cap.
#[derive(Clone)]
struct Admission {
    slots: Arc<Semaphore>,
    per_ip: Arc<PerIp>,
    limits: Limits,
}

impl Admission {
    fn new(limits: Limits) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(limits.connections_max)),
            per_ip: Arc::new(PerIp::default()),
            limits,
        }
    }

    fn admit<T>(&self, io: T, ip: IpAddr) -> Option<Guarded<T>> {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        let ip_slot = PerIp::take(&self.per_ip, ip, self.limits.per_ip_max)?;
        Some(Guarded {
            io,
            idle_timeout: self.limits.idle_timeout,
            idle: Box::pin(tokio::time::sleep(self.limits.idle_timeout)),
            lifetime: Box::pin(tokio::time::sleep(self.limits.lifetime_max)),
            _permit: permit,
            _ip_slot: ip_slot,
        })
    }
}

/// A connection that holds one of the capped slots and closes when idle or too old.
pub struct Guarded<T> {
    io: T,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    lifetime: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
    _ip_slot: IpSlot,
}

impl<T> Guarded<T> {
    fn touched(&mut self) {
        let at = Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(at);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        // Both polled, so both wake this connection when they fire.
        let idle = self.idle.as_mut().poll(cx).is_ready();
        let old = self.lifetime.as_mut().poll(cx).is_ready();
        idle || old
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle")
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touched();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touched();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The acceptor for both paths (axum-server): limits applied before a byte is read, and before
/// the TLS handshake on HTTPS.
#[derive(Clone)]
pub struct CappedAcceptor {
    admission: Admission,
}

impl CappedAcceptor {
    pub fn new(limits: Limits) -> CappedAcceptor {
        CappedAcceptor {
            admission: Admission::new(limits),
        }
    }
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for CappedAcceptor {
    type Stream = Guarded<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let ip = stream.peer_addr().map(|a| a.ip());
        std::future::ready(
            match ip.ok().and_then(|ip| self.admission.admit(stream, ip)) {
                Some(guarded) => Ok((guarded, service)),
                None => Err(io::Error::other("connection cap reached")),
            },
        )
    }
}

/// The peer's address, as the handlers see it (per-IP limits), on both paths.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<SocketAddr> for Peer {
    fn connect_info(addr: SocketAddr) -> Peer {
        Peer(addr)
    }
}

/// HTTP/2 is refused on both paths. Nothing here needs it (phones send one request at a time,
/// the console is a few pages), and hyper's header-read timeout, which ends a connection whose
/// headers drip, holds for HTTP/1 only. axum-server serves a connection with upgrades, where
/// hyper ignores `http1_only`, so a connection whose first bytes are HTTP/2's preface (`PRI `,
/// a method no HTTP/1 client sends) is closed here before hyper reads it. Under TLS the
/// handshake offers only `http/1.1`, so a client never negotiates HTTP/2 either.
#[derive(Clone)]
pub struct Http1Only<A>(pub A);

impl<I, S, A> axum_server::accept::Accept<I, S> for Http1Only<A>
where
    A: axum_server::accept::Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = RefuseH2<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((
                RefuseH2 {
                    io: stream,
                    seen: 0,
                },
                service,
            ))
        })
    }
}

/// HTTP/2's connection preface starts with this; no HTTP/1 method does.
const H2_PREFACE_START: &[u8] = b"PRI ";

/// A connection that fails its first read if it starts with HTTP/2's preface.
pub struct RefuseH2<T> {
    io: T,
    /// Bytes of the preface's start matched so far; `usize::MAX` once the start differs.
    seen: usize,
}

impl<T: AsyncRead + Unpin> AsyncRead for RefuseH2<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            for &byte in &buf.filled()[before..] {
                if self.seen >= H2_PREFACE_START.len() {
                    break;
                }
                if byte != H2_PREFACE_START[self.seen] {
                    self.seen = usize::MAX;
                    break;
                }
                self.seen += 1;
            }
            if self.seen == H2_PREFACE_START.len() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "HTTP/2 is not served",
                )));
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for RefuseH2<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
