//! The link emulator: a loopback TCP proxy that shapes traffic like a 2G or 3G link (latency
//! and bandwidth per direction), can cut the connection after N bytes or drop connections at
//! random, and counts bytes each way and connections.

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

/// Faults, changeable while the emulator runs.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Cut every open connection once this many bytes have gone down (server → device) since
    /// the fault was armed; new connections are refused until `heal()`.
    pub cut_after_down_bytes: Option<u64>,
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
    /// Bytes down since the cut fault was armed.
    down_since_armed: AtomicU64,
    cut: AtomicBool,
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
            down_since_armed: AtomicU64::new(0),
            cut: AtomicBool::new(false),
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
        self.shared.down_since_armed.store(0, Ordering::SeqCst);
        self.shared.cut.store(false, Ordering::SeqCst);
        self.faults().cut_after_down_bytes = Some(bytes);
    }

    pub fn set_drop_probability(&self, p: f64) {
        self.faults().drop_probability = p;
    }

    /// Drops every open connection now, as a lost signal does; new connections work.
    pub fn cut_now(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Removes every fault: the link works again.
    pub fn heal(&self) {
        *self.faults() = Faults::default();
        self.shared.cut.store(false, Ordering::SeqCst);
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

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Up,
    Down,
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
    let writer = async move {
        while let Some((deliver_at, mut chunk)) = rx.recv().await {
            tokio::time::sleep_until(deliver_at).await;
            if shared.cut.load(Ordering::SeqCst) || shared.epoch.load(Ordering::SeqCst) != epoch {
                return;
            }
            let (cut_after, drop_p) = {
                let f = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
                (f.cut_after_down_bytes, f.drop_probability)
            };
            if drop_p > 0.0 && rand::thread_rng().gen_bool(drop_p.min(1.0)) {
                return;
            }
            if direction == Direction::Down {
                if let Some(limit) = cut_after {
                    let before = shared
                        .down_since_armed
                        .fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    if before + chunk.len() as u64 >= limit {
                        // Deliver up to the limit, then cut.
                        chunk.truncate(limit.saturating_sub(before) as usize);
                        let _ = to.write_all(&chunk).await;
                        shared
                            .counters
                            .bytes_down
                            .fetch_add(chunk.len() as u64, Ordering::SeqCst);
                        shared.cut.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            let counter = match direction {
                Direction::Up => &shared.counters.bytes_up,
                Direction::Down => &shared.counters.bytes_down,
            };
            counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
    };
    // The writer drains what the reader queued; when it stops (end of stream or a fault), the
    // reader is stopped too.
    let reader = tokio::spawn(reader);
    writer.await;
    reader.abort();
}
