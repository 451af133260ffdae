//! suivi-server: devices sync their caseloads here, and the server enforces who may read and
//! write what. Layers: `api` (HTTP) → `service` (decisions) → `storage` (a trait; SQLite now).

pub mod admin;
pub mod api;
pub mod at_rest;
pub mod auth;
pub mod conn;
pub mod demo;
pub mod service;
pub mod storage;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use api::{app, AppState, RateLimiter};
pub use service::SyncService;
pub use storage::{sqlite::SqliteStore, ServerStore};

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "suivi-server.db";

/// Opens the embedded SQLite store in `data_dir`, encrypted at rest (see `at_rest`).
pub fn open_store(
    data_dir: &Path,
    keys: &at_rest::KeySource,
) -> Result<at_rest::OpenedStore, at_rest::AtRestError> {
    at_rest::open(data_dir, keys)
}

pub fn state(store: Arc<dyn ServerStore>, codes: auth::CodeKey) -> AppState {
    state_with_rate_limit(store, codes, api::RATE_BURST, api::RATE_PER_SEC)
}

/// The same, with a per-device rate limit of `burst` requests refilled at `per_sec`.
pub fn state_with_rate_limit(
    store: Arc<dyn ServerStore>,
    codes: auth::CodeKey,
    burst: u32,
    per_sec: f64,
) -> AppState {
    AppState {
        service: Arc::new(SyncService::new(store, codes)),
        limiter: Arc::new(RateLimiter::new(burst, per_sec)),
        enroll_limiter: Arc::new(RateLimiter::new(
            api::ENROLL_PER_IP_BURST,
            api::ENROLL_PER_IP_PER_SEC,
        )),
        auth_failure_limiter: Arc::new(RateLimiter::new(
            api::AUTH_FAILURES_PER_IP_BURST,
            api::AUTH_FAILURES_PER_IP_PER_SEC,
        )),
        sync_slots: Arc::new(tokio::sync::Semaphore::new(api::SYNC_CONCURRENT_MAX)),
        account_slots: Arc::new(api::AccountSlots::new()),
    }
}

/// A certificate chain and private key, PEM files, for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Binds and serves HTTPS (rustls) in the current tokio runtime, on any address.
pub async fn spawn_tls(
    state: AppState,
    listen: SocketAddr,
    tls: &TlsFiles,
) -> Result<RunningServer, String> {
    // One process-wide crypto provider for rustls; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| format!("TLS certificate or key: {e}"))?;
    let listener =
        std::net::TcpListener::bind(listen).map_err(|e| format!("bind {listen}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let router = app(state);
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .handshake_timeout(conn::IDLE_TIMEOUT)
        .acceptor(conn::CappedAcceptor::new(conn::Limits::default()));
    let handle = tokio::spawn(async move {
        if let Err(e) = axum_server::from_tcp(listener)
            .acceptor(acceptor)
            .serve(router.into_make_service_with_connect_info::<conn::Peer>())
            .await
        {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(RunningServer { addr, handle })
}

/// A server bound to a port, serving until the returned handle is dropped or aborted.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub handle: tokio::task::JoinHandle<()>,
}

/// Binds and serves in the current tokio runtime. Plain HTTP is for loopback only.
pub async fn spawn(state: AppState, listen: SocketAddr) -> Result<RunningServer, String> {
    spawn_with_limits(state, listen, conn::Limits::default()).await
}

/// The same, with other connection limits (tests use small ones).
pub async fn spawn_with_limits(
    state: AppState,
    listen: SocketAddr,
    limits: conn::Limits,
) -> Result<RunningServer, String> {
    if !listen.ip().is_loopback() {
        return Err("plain HTTP is served on loopback only; give --tls-cert and --tls-key to serve HTTPS on other addresses".into());
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let router = app(state);
    let listener = conn::CappedListener::new(listener, limits);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<conn::Peer>(),
        )
        .await
        {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(RunningServer { addr, handle })
}
