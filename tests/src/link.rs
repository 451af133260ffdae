//! The link emulator: a loopback TCP proxy that shapes traffic like a 2G or 3G link (latency
//! and bandwidth per direction), can cut the connection after N bytes either way, hold it still
//! after N bytes (so a test can kill a process at that exact point), drop connections at random,
//! capture what devices send (to duplicate or replay it later), and counts bytes each way and
//! connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Latency and bandwidth of a link. `None` bandwidth means unshaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkProfile {
    pub name: &'static str,
    pub rtt: Duration,
    pub down_bits_per_sec: Option<u64>,
    pub up_bits_per_sec: Option<u64>,
}

/// EDGE as our agents meet it: 600 ms round trip, 200 kbit/s down, 100 kbit/s up.
pub const PROFILE_2G: LinkProfile = LinkProfile {
    name: "2g",
    rtt: Duration::from_millis(600),
    down_bits_per_sec: Some(200_000),
    up_bits_per_sec: Some(100_000),
};
pub const PROFILE_3G: LinkProfile = LinkProfile {
    name: "3g",
    rtt: Duration::from_millis(200),
    down_bits_per_sec: Some(1_000_000),
    up_bits_per_sec: Some(500_000),
};
pub const PROFILE_LAN: LinkProfile = LinkProfile {
    name: "lan",
    rtt: Duration::ZERO,
    down_bits_per_sec: None,
    up_bits_per_sec: None,
};

impl LinkProfile {
    pub fn by_name(name: &str) -> Option<LinkProfile> {
        [PROFILE_2G, PROFILE_3G, PROFILE_LAN]
            .into_iter()
            .find(|p| p.name == name)
    }
}

/// Which way bytes travel: up is device → server, down is server → device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// Faults, changeable while the emulator runs.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Cut every open connection once this many bytes have gone this way since the fault was
    /// armed; new connections are refused until `heal()`.
    pub cut_after: Option<(Direction, u64)>,
    /// Stop forwarding (the connection stays open) once this many bytes have gone this way
    /// since the fault was armed, until `heal()`.
    pub hold_after: Option<(Direction, u64)>,
    /// Probability, per chunk forwarded, that the connection is dropped.
    pub drop_probability: f64,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    pub connections: AtomicU64,
}

impl Counters {
    pub fn up(&self) -> u64 {
        self.bytes_up.load(Ordering::SeqCst)
    }
    pub fn down(&self) -> u64 {
        self.bytes_down.load(Ordering::SeqCst)
    }
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

struct Shared {
    profile: LinkProfile,
    faults: Mutex<Faults>,
    /// Bytes each way since a cut or hold was armed.
    up_since_armed: AtomicU64,
    down_since_armed: AtomicU64,
    cut: AtomicBool,
    /// A hold was reached: the link stands still.
    held: AtomicBool,
    /// Whether new connections record what the device sends.
    capture: AtomicBool,
    /// The bytes each captured connection sent up, in the order the connections ended.
    captured: Mutex<Vec<Vec<u8>>>,
    /// Bumped by `cut_now`: connections opened before the bump are dropped.
    epoch: AtomicU64,
    counters: Counters,
}

pub struct LinkEmulator {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

const CHUNK_BYTES: usize = 1460;

impl LinkEmulator {
    /// Starts a proxy on 127.0.0.1 (a free port) forwarding to `target`, on the current runtime.
    pub async fn start(target: SocketAddr, profile: LinkProfile) -> std::io::Result<LinkEmulator> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            profile,
            faults: Mutex::new(Faults::default()),
            up_since_armed: AtomicU64::new(0),
            down_since_armed: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            held: AtomicBool::new(false),
            capture: AtomicBool::new(false),
            captured: Mutex::new(Vec::new()),
            epoch: AtomicU64::new(0),
            counters: Counters::default(),
        });
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = accept_shared.clone();
                if shared.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                shared.counters.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        proxy(client, server, shared).await;
                    }
                });
            }
        });
        Ok(LinkEmulator { addr, shared, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    pub fn reset_counters(&self) {
        let c = &self.shared.counters;
        c.bytes_up.store(0, Ordering::SeqCst);
        c.bytes_down.store(0, Ordering::SeqCst);
        c.connections.store(0, Ordering::SeqCst);
    }

    /// Arms a cut after `bytes` more bytes down.
    pub fn cut_after_down_bytes(&self, bytes: u64) {
        self.cut_after(Direction::Down, bytes);
    }

    /// Arms a cut after `bytes` more bytes going `direction`.
    pub fn cut_after(&self, direction: Direction, bytes: u64) {
        self.rearm();
        self.faults().cut_after = Some((direction, bytes));
    }

    /// Arms a hold: after `bytes` more bytes going `direction`, the link stops forwarding
    /// (both ways, connections left open) until `heal()`. `is_held` tells when it happened.
    pub fn hold_after(&self, direction: Direction, bytes: u64) {
        self.rearm();
        self.faults().hold_after = Some((direction, bytes));
    }

    /// Whether an armed hold was reached.
    pub fn is_held(&self) -> bool {
        self.shared.held.load(Ordering::SeqCst)
    }

    fn rearm(&self) {
        self.shared.up_since_armed.store(0, Ordering::SeqCst);
        self.shared.down_since_armed.store(0, Ordering::SeqCst);
        self.shared.cut.store(false, Ordering::SeqCst);
        self.shared.held.store(false, Ordering::SeqCst);
    }

    /// Starts or stops recording what devices send, per connection (for `take_captured`).
    pub fn capture(&self, on: bool) {
        self.shared.capture.store(on, Ordering::SeqCst);
    }

    /// What each captured connection sent up since the last call, oldest first.
    pub fn take_captured(&self) -> Vec<Vec<u8>> {
        std::mem::take(
            &mut *self
                .shared
                .captured
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    pub fn set_drop_probability(&self, p: f64) {
        self.faults().drop_probability = p;
    }

    /// Drops every open connection now, as a lost signal does; new connections work.
    pub fn cut_now(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Removes every fault: the link works again and a held link goes on.
    pub fn heal(&self) {
        *self.faults() = Faults::default();
        self.shared.cut.store(false, Ordering::SeqCst);
        self.shared.held.store(false, Ordering::SeqCst);
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.shared.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for LinkEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy(client: TcpStream, server: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, shared.clone(), Direction::Up);
    let down = pump(server_read, client_write, shared, Direction::Down);
    // When either side ends (or a fault cuts), drop both: the connection is gone.
    tokio::select! {
        _ = up => {},
        _ = down => {},
    }
}

/// Moves bytes one way: a reader stamps each chunk with the time it finishes crossing the link
/// (serialisation at the link's bandwidth, then half the round trip), a writer delivers it then.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
    direction: Direction,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let epoch = shared.epoch.load(Ordering::SeqCst);
    let latency = shared.profile.rtt / 2;
    let bits_per_sec = match direction {
        Direction::Up => shared.profile.up_bits_per_sec,
        Direction::Down => shared.profile.down_bits_per_sec,
    };
    let reader_shared = shared.clone();
    let reader = async move {
        let mut link_free_at = Instant::now();
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let now = Instant::now();
            let serialise = bits_per_sec
                .map(|bps| Duration::from_secs_f64(n as f64 * 8.0 / bps as f64))
                .unwrap_or_default();
            link_free_at = link_free_at.max(now) + serialise;
            if tx
                .send((link_free_at + latency, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
            if reader_shared.cut.load(Ordering::SeqCst) {
                break;
            }
        }
    };
    // What this connection sends up, kept when it ends however it ends (the future may be
    // dropped when the other direction closes first).
    let mut capture =
        (direction == Direction::Up && shared.capture.load(Ordering::SeqCst)).then(|| Captured {
            bytes: Vec::new(),
            shared: shared.clone(),
        });
    let writer = async move {
        let since_armed = match direction {
            Direction::Up => &shared.up_since_armed,
            Direction::Down => &shared.down_since_armed,
        };
        let counter = match direction {
            Direction::Up => &shared.counters.bytes_up,
            Direction::Down => &shared.counters.bytes_down,
        };
        while let Some((deliver_at, mut chunk)) = rx.recv().await {
            tokio::time::sleep_until(deliver_at).await;
            // A held link stands still both ways until it is healed or cut.
            while shared.held.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            if shared.cut.load(Ordering::SeqCst) || shared.epoch.load(Ordering::SeqCst) != epoch {
                return;
            }
            let (cut_after, hold_after, drop_p) = {
                let f = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
                (f.cut_after, f.hold_after, f.drop_probability)
            };
            if drop_p > 0.0 && rand::thread_rng().gen_bool(drop_p.min(1.0)) {
                return;
            }
            let cut_limit = cut_after.filter(|(d, _)| *d == direction).map(|(_, n)| n);
            let hold_limit = hold_after.filter(|(d, _)| *d == direction).map(|(_, n)| n);
            if let Some(limit) = cut_limit.or(hold_limit) {
                let before = since_armed.load(Ordering::SeqCst);
                if before + chunk.len() as u64 >= limit {
                    // Deliver up to the limit, then cut or stand still.
                    let rest = chunk.split_off(limit.saturating_sub(before) as usize);
                    if deliver(&mut to, &chunk, since_armed, counter, &mut capture)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if cut_limit.is_some() {
                        shared.cut.store(true, Ordering::SeqCst);
                        return;
                    }
                    shared.held.store(true, Ordering::SeqCst);
                    while shared.held.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    if shared.cut.load(Ordering::SeqCst)
                        || shared.epoch.load(Ordering::SeqCst) != epoch
                    {
                        return;
                    }
                    chunk = rest;
                }
            }
            if deliver(&mut to, &chunk, since_armed, counter, &mut capture)
                .await
                .is_err()
            {
                return;
            }
        }
    };
    // The writer drains what the reader queued; when it stops (end of stream or a fault), the
    // reader is stopped too.
    let reader = tokio::spawn(reader);
    writer.await;
    reader.abort();
}

async fn deliver(
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    chunk: &[u8],
    since_armed: &AtomicU64,
    counter: &AtomicU64,
    capture: &mut Option<Captured>,
) -> std::io::Result<()> {
    to.write_all(chunk).await?;
    since_armed.fetch_add(chunk.len() as u64, Ordering::SeqCst);
    counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
    if let Some(capture) = capture {
        capture.bytes.extend_from_slice(chunk);
    }
    Ok(())
}

struct Captured {
    bytes: Vec<u8>,
    shared: Arc<Shared>,
}

impl Drop for Captured {
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            self.shared
                .captured
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(std::mem::take(&mut self.bytes));
        }
    }
}

/// Sends what a device once sent, again, straight to `target`: each HTTP/1.1 request found in
/// `sent` on its own connection, reading each response to its end. Returns the status of each
/// (0 when the server closed without one). A duplicated or replayed request, as a flaky network
/// or an attacker with a copy of the traffic produces.
pub async fn replay(target: SocketAddr, sent: &[u8]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for request in split_requests(sent) {
        let status = tokio::time::timeout(Duration::from_secs(30), exchange(target, &request))
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
        statuses.push(status);
    }
    statuses
}

async fn exchange(target: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(target).await.ok()?;
    stream.write_all(request).await.ok()?;
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some((head_end, length)) = http_head(&received) {
            if received.len() >= head_end + length.unwrap_or(0) {
                break;
            }
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    let status_line = received.split(|b| *b == b'\n').next()?;
    std::str::from_utf8(status_line)
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The end of an HTTP/1.1 head in `bytes` and its Content-Length, once the head is complete.
fn http_head(bytes: &[u8]) -> Option<(usize, Option<usize>)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    Some((end, length))
}

/// The requests in what one connection sent up (keep-alive sends several).
fn split_requests(mut sent: &[u8]) -> Vec<Vec<u8>> {
    let mut requests = Vec::new();
    while !sent.is_empty() {
        let Some((head_end, length)) = http_head(sent) else {
            break;
        };
        let end = (head_end + length.unwrap_or(0)).min(sent.len());
        requests.push(sent[..end].to_vec());
        sent = &sent[end..];
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_requests_are_split_at_their_content_length() {
        let one = b"POST /v1/sync HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc".to_vec();
        let two = b"POST /v1/sync HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec();
        let sent = [one.clone(), two.clone()].concat();
        assert_eq!(split_requests(&sent), vec![one, two]);
        assert_eq!(split_requests(b"GET / HTTP/1.1\r\n"), Vec::<Vec<u8>>::new());
    }
}
