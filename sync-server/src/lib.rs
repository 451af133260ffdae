//! suivi-server: devices sync their caseloads here, and the server enforces who may read and
//! write what. Layers: `http` (the app: `api` for devices, `console` for people, both over
//! `state`) → `service` (decisions) → `storage` (a trait; SQLite and PostgreSQL).

pub mod admin;
pub mod api;
pub mod at_rest;
pub mod auth;
pub mod conn;
pub mod console;
pub mod demo;
pub mod erasure;
pub mod evidence;
pub mod forms;
pub mod http;
pub mod journal;
pub mod service;
pub mod state;
pub mod storage;
pub mod summary;
#[doc(hidden)]
pub mod testing;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

pub use http::app;
pub use service::SyncService;
pub use state::{AppState, RateLimiter};
pub use storage::{postgres::PostgresStore, sqlite::SqliteStore, ServerStore};

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "suivi-server.db";

/// Where the server keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: one SQLCipher file in the data directory.
    Sqlite,
    /// A PostgreSQL database (`postgres://…`), shared by any number of instances.
    Postgres(String),
}

impl Database {
    /// `sqlite` (or nothing) for the embedded store, a `postgres://` or `postgresql://` URL for
    /// PostgreSQL.
    pub fn parse(text: Option<&str>) -> Result<Database, String> {
        match text.map(str::trim) {
            None | Some("") | Some("sqlite") => Ok(Database::Sqlite),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Database::Postgres(url.to_string()))
            }
            Some(_) => Err(
                "--database is `sqlite` (the default) or a postgres://user:password@host:port/name URL"
                    .into(),
            ),
        }
    }

    /// For logs: the kind and, for PostgreSQL, the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite => "sqlite".into(),
            Database::Postgres(url) => at_rest::redact_url(url),
        }
    }
}

/// Opens the server's store, encrypted at rest (see `at_rest`): the embedded SQLite store in
/// `data_dir`, or a PostgreSQL database (the data directory then keeps this host's journals).
pub fn open_store(
    data_dir: &Path,
    keys: &at_rest::KeySource,
    database: &Database,
) -> Result<at_rest::OpenedStore, at_rest::AtRestError> {
    let opened = match database {
        Database::Sqlite => at_rest::open(data_dir, keys),
        Database::Postgres(url) => at_rest::open_postgres(url, data_dir, keys),
    }?;
    // The built-in forms are a project's first versions: every instance publishes them when it
    // opens the store, unless they are there (a second publication is harmless).
    forms::seed_builtin(opened.store.as_ref(), chrono::Utc::now().timestamp()).map_err(|e| {
        at_rest::AtRestError::Storage(storage::StorageError::Backend(format!(
            "built-in forms: {e}"
        )))
    })?;
    Ok(opened)
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
        bodies_in_flight: Arc::new(tokio::sync::Semaphore::new(api::BODIES_IN_FLIGHT_MAX)),
        account_slots: Arc::new(state::AccountSlots::new()),
        password_gate: Arc::new(auth::PasswordGate::new()),
        https: false,
        revocation_journal: None,
        checkpoints: None,
        zone: suivi_core::words::Zone::default(),
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
    spawn_tls_with_limits(state, listen, tls, conn::Limits::default()).await
}

/// The same, with other connection limits.
pub async fn spawn_tls_with_limits(
    state: AppState,
    listen: SocketAddr,
    tls: &TlsFiles,
    limits: conn::Limits,
) -> Result<RunningServer, String> {
    // One process-wide crypto provider for rustls; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| format!("TLS certificate or key: {e}"))?;
    // HTTP/1.1 only (see `conn::Http1Only`): the handshake offers nothing else.
    let mut http1 = (*config.get_inner()).clone();
    http1.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(http1));
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .handshake_timeout(limits.idle_timeout)
        .acceptor(conn::CappedAcceptor::new(limits));
    let state = AppState {
        https: true,
        ..state
    };
    serve(state, listen, acceptor, limits)
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
    serve(state, listen, conn::CappedAcceptor::new(limits), limits)
}

/// A health-check listener of its own, on loopback: `/healthz` only, with its own connection
/// caps, so a monitor is answered while a flood of idle connections fills the main listener's
/// (that path closes idle ones after `conn::IDLE_TIMEOUT`, but meanwhile refuses everyone).
pub async fn spawn_health(listen: SocketAddr) -> Result<RunningServer, String> {
    if !listen.ip().is_loopback() {
        return Err("the health listener is served on loopback only".into());
    }
    let (listener, addr) = bind(listen)?;
    let limits = conn::Limits {
        connections_max: HEALTH_CONNECTIONS_MAX,
        per_ip_max: HEALTH_CONNECTIONS_MAX,
        ..conn::Limits::default()
    };
    let router = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let handle = start(
        listener,
        conn::CappedAcceptor::new(limits),
        router,
        limits,
        "health listener",
    );
    Ok(RunningServer { addr, handle })
}

/// Connections the health listener holds at once: a monitor or two.
pub const HEALTH_CONNECTIONS_MAX: usize = 16;

/// One serving path for plain HTTP and HTTPS: the acceptor (capped, then TLS or not) and the
/// app, with the forms cache kept fresh.
fn serve<A>(
    state: AppState,
    listen: SocketAddr,
    acceptor: A,
    limits: conn::Limits,
) -> Result<RunningServer, String>
where
    A: Acceptor,
    A::Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    A::Service:
        axum_server::service::SendService<axum::http::Request<hyper::body::Incoming>> + Send,
    A::Future: Send,
{
    let (listener, addr) = bind(listen)?;
    // Forms published by the command or another instance reach this one's console within
    // `FORMS_REFRESH_EVERY`; syncs read the store themselves.
    // Held weakly: the loop ends once the server (and its router) is gone.
    let service = Arc::downgrade(&state.service);
    tokio::spawn(async move {
        while let Some(service) = service.upgrade() {
            if tokio::task::spawn_blocking(move || service.refresh_forms())
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(forms::FORMS_REFRESH_EVERY).await;
        }
    });
    let handle = start(listener, acceptor, app(state), limits, "server");
    Ok(RunningServer { addr, handle })
}

/// What accepts a connection for `start`: capped, then TLS or not.
trait Acceptor:
    axum_server::accept::Accept<
        tokio::net::TcpStream,
        axum::middleware::AddExtension<axum::Router, axum::extract::ConnectInfo<conn::Peer>>,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<A> Acceptor for A where
    A: axum_server::accept::Accept<
            tokio::net::TcpStream,
            axum::middleware::AddExtension<axum::Router, axum::extract::ConnectInfo<conn::Peer>>,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// A loopback or public listener, bound and non-blocking, with the address it got.
fn bind(listen: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), String> {
    let listener =
        std::net::TcpListener::bind(listen).map_err(|e| format!("bind {listen}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}

/// Serves `router` on `listener`, HTTP/1 only (`conn::Http1Only`), with hyper's own
/// header-read timeout, which needs a timer to be given.
fn start<A>(
    listener: std::net::TcpListener,
    acceptor: A,
    router: axum::Router,
    limits: conn::Limits,
    what: &'static str,
) -> tokio::task::JoinHandle<()>
where
    A: Acceptor,
    A::Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    A::Service:
        axum_server::service::SendService<axum::http::Request<hyper::body::Incoming>> + Send,
    A::Future: Send,
{
    let mut server = axum_server::from_tcp(listener).acceptor(conn::Http1Only(acceptor));
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::spawn(async move {
        if let Err(e) = server
            .serve(router.into_make_service_with_connect_info::<conn::Peer>())
            .await
        {
            tracing::error!(error = %e, "{what} stopped");
        }
    })
}
