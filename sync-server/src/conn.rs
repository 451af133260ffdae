//! Connection hygiene, on plain HTTP and TLS alike: a cap on open connections (one past it is
//! closed at once, so a flood of half-open sockets cannot exhaust file descriptors) and an idle
//! timeout on every connection (no byte either way for `IDLE_TIMEOUT` closes it: a stalled
//! header, a stalled body, a forgotten keep-alive).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections open at once. A district's phones sync a few at a time; this leaves room for a
/// whole region's morning rush and still far below the process's file-descriptor limit.
pub const CONNECTIONS_MAX: usize = 512;
/// No byte in either direction for this long closes a connection. A 2G link stalls for
/// seconds, not a minute.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection that holds one of the capped slots and closes when idle.
pub struct Guarded<T> {
    io: T,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl<T> Guarded<T> {
    fn new(io: T, permit: OwnedSemaphorePermit, idle_timeout: Duration) -> Guarded<T> {
        Guarded {
            io,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            _permit: permit,
        }
    }

    fn touched(&mut self) {
        let at = Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(at);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.idle.as_mut().poll(cx).is_ready()
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

/// The plain-HTTP listener: capped, idle-timed connections.
pub struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle_timeout: Duration,
}

impl CappedListener {
    pub fn new(
        inner: TcpListener,
        connections_max: usize,
        idle_timeout: Duration,
    ) -> CappedListener {
        CappedListener {
            inner,
            slots: Arc::new(Semaphore::new(connections_max)),
            idle_timeout,
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = Guarded<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => match self.slots.clone().try_acquire_owned() {
                    Ok(permit) => return (Guarded::new(stream, permit, self.idle_timeout), addr),
                    // Over the cap: closed at once, before a byte is read.
                    Err(_) => drop(stream),
                },
                // Out of descriptors or a reset before accept: wait a little, go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The same cap and idle timeout for the TLS path (axum-server), applied before the handshake.
#[derive(Clone)]
pub struct CappedAcceptor {
    slots: Arc<Semaphore>,
}

impl CappedAcceptor {
    pub fn new(connections_max: usize) -> CappedAcceptor {
        CappedAcceptor {
            slots: Arc::new(Semaphore::new(connections_max)),
        }
    }
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for CappedAcceptor {
    type Stream = Guarded<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok((Guarded::new(stream, permit, IDLE_TIMEOUT), service)),
            Err(_) => Err(io::Error::other("connection cap reached")),
        })
    }
}

/// The peer's address, as the handlers see it (per-IP limits), on both paths.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, CappedListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'a, CappedListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<SocketAddr> for Peer {
    fn connect_info(addr: SocketAddr) -> Peer {
        Peer(addr)
    }
}
