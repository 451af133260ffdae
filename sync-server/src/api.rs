//! The device API (axum): enrollment, sync, the per-document fallback, the wipe confirmation.
//! One `AppError` turns failures into responses: client faults get a 4xx with a JSON message;
//! an internal fault gets a bare 500 whose cause is logged, never sent.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use suivi_core::sync::protocol::{self, EnrollRequest, ErrorBody};

use crate::conn::Peer;
use crate::service::{AuthedDevice, ServiceError, StreamStart, SyncFirst, STREAM_PAGES_MAX};
pub use crate::state::{AccountSlots, AppState, RateLimiter};

#[derive(Debug)]
pub enum AppError {
    Service(ServiceError),
    RateLimited,
    Busy,
    Body(StatusCode, String),
}

impl From<ServiceError> for AppError {
    fn from(err: ServiceError) -> Self {
        AppError::Service(err)
    }
}

fn error_response(status: StatusCode, error: &str, message: String, wipe: bool) -> Response {
    let body = ErrorBody {
        error: error.to_string(),
        message,
        wipe,
    };
    (status, Json(body)).into_response()
}

/// What a device receives for a service error: the status and, but for an internal failure,
/// the JSON body it reads. The HTTP layer sends this; the deterministic simulation, which
/// calls the service in-process, answers its phones with the same.
pub fn service_error_reply(err: &ServiceError) -> (u16, Option<ErrorBody>) {
    let body = |error: &str, message: String, wipe: bool| {
        Some(ErrorBody {
            error: error.to_string(),
            message,
            wipe,
        })
    };
    match err {
        ServiceError::Unauthorized => (
            401,
            body(
                "unauthorized",
                "missing or invalid device credential".into(),
                false,
            ),
        ),
        ServiceError::Revoked => (
            401,
            body(
                "device_revoked",
                "this device was revoked: erase its case data".into(),
                true,
            ),
        ),
        ServiceError::UpgradeRequired(_) => (
            protocol::UPGRADE_REQUIRED_STATUS,
            body(protocol::UPGRADE_REQUIRED, err.to_string(), false),
        ),
        ServiceError::BadRequest(m) => (400, body("bad_request", m.clone(), false)),
        ServiceError::Forbidden(m) => (403, body("forbidden", m.clone(), false)),
        // A busy store: the device retries later, as for any busy server.
        ServiceError::Storage(e) if e.is_retryable() => (
            503,
            body("busy", "the server is busy; retry later".into(), false),
        ),
        ServiceError::Storage(_) | ServiceError::Internal(_) => (500, None),
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Service(err) => {
                let (status, body) = service_error_reply(&err);
                match &err {
                    ServiceError::Storage(e) if e.is_retryable() => {
                        tracing::warn!(error = %e, "storage busy")
                    }
                    ServiceError::Storage(_) | ServiceError::Internal(_) => {
                        tracing::error!(error = %err, "internal failure")
                    }
                    _ => {}
                }
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                match body {
                    Some(body) => (status, Json(body)).into_response(),
                    None => status.into_response(),
                }
            }
            AppError::RateLimited => error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this device; retry later".into(),
                false,
            ),
            AppError::Busy => error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is busy; retry later".into(),
                false,
            ),
            AppError::Body(status, m) => error_response(status, "bad_body", m, false),
        }
    }
}

/// Requests per device allowed in a burst, and refilled per second.
pub const RATE_BURST: u32 = 600;
pub const RATE_PER_SEC: f64 = 20.0;
/// Enrollment attempts per IP: a district office enrolls its phones in one sitting behind one
/// address; a code guesser gets a handful a minute.
pub const ENROLL_PER_IP_BURST: u32 = 30;
pub const ENROLL_PER_IP_PER_SEC: f64 = 0.2;
/// Failed authentications per IP before it is told to wait.
pub const AUTH_FAILURES_PER_IP_BURST: u32 = 20;
pub const AUTH_FAILURES_PER_IP_PER_SEC: f64 = 0.5;
/// Sync bodies read at once: 128 MiB at most in flight.
pub const BODIES_IN_FLIGHT_MAX: usize = 32;
/// Sync requests worked on at once, and how long one waits for a slot before "busy".
pub const SYNC_CONCURRENT_MAX: usize = 8;
pub const SYNC_SLOT_WAIT: Duration = Duration::from_secs(30);
/// A whole request body, once authenticated: 4 MiB at 2G speed with room to spare.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(300);

/// The device endpoints (`/healthz` and `/v1/…`); `http::app` puts them beside the console.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/enroll", post(enroll))
        .route("/v1/sync", post(sync))
        .route("/v1/docsync", post(doc_sync))
        .route("/v1/cases", post(fetch_cases))
        .route("/v1/wipe-confirm", post(wipe_confirm))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Service(ServiceError::Internal(format!("task: {e}"))))?
        .map_err(AppError::from)
}

/// Authenticates from the headers alone, before any body byte is read: a per-IP limit on
/// failures, one indexed lookup, then the per-device limit.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    allow_revoked: bool,
) -> Result<AuthedDevice, AppError> {
    let ip = peer.ip().to_string();
    if !state.auth_failure_limiter.has_room(&ip) {
        return Err(AppError::RateLimited);
    }
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let service = state.service.clone();
    let device =
        match blocking(move || service.authenticate(header.as_deref(), allow_revoked)).await {
            Err(AppError::Service(ServiceError::Unauthorized)) => {
                state.auth_failure_limiter.allow(&ip);
                return Err(AppError::Service(ServiceError::Unauthorized));
            }
            other => other?,
        };
    if !state.limiter.allow(&device.device.device_id) {
        tracing::warn!(device = %device.device.device_id, "rate limited");
        return Err(AppError::RateLimited);
    }
    Ok(device)
}

/// A body must arrive at this rate at least, averaged from its start, once `BODY_RATE_GRACE`
/// has passed: a 2G upload runs at about 12 KiB/s, a drip of a byte a second holds a slot for
/// nothing.
pub const BODY_RATE_MIN_BYTES_PER_SEC: u64 = 1024;
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(10);
/// An enrollment body is a code and a device name.
pub const ENROLL_BODY_BYTES_MAX: usize = 4 * 1024;

/// Reads a body within `limit` bytes, `BODY_READ_TIMEOUT`, and above the minimum rate: a body
/// that falls below `BODY_RATE_MIN_BYTES_PER_SEC` (averaged, after `BODY_RATE_GRACE`) is cut
/// with 408 at the moment it falls behind.
async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, AppError> {
    use tokio_stream::StreamExt;
    let started = tokio::time::Instant::now();
    // Sized from the declared length (within the limit) so the buffer does not double as it
    // grows.
    let declared = usize::try_from(axum::body::HttpBody::size_hint(&body).lower()).unwrap_or(limit);
    let mut received: Vec<u8> = Vec::with_capacity(declared.min(limit));
    let mut stream = body.into_data_stream();
    loop {
        // The latest moment the next bytes may come: when what has arrived falls below the
        // rate (never before the grace ends), and never after the whole-body timeout.
        let behind_at =
            Duration::from_secs_f64(received.len() as f64 / BODY_RATE_MIN_BYTES_PER_SEC as f64)
                .max(BODY_RATE_GRACE)
                .min(BODY_READ_TIMEOUT);
        match tokio::time::timeout_at(started + behind_at, stream.next()).await {
            Err(_) => {
                return Err(AppError::Body(
                    StatusCode::REQUEST_TIMEOUT,
                    "body too slow or not received in time".into(),
                ))
            }
            Ok(None) => return Ok(Bytes::from(received)),
            Ok(Some(Err(_))) => {
                return Err(AppError::Body(StatusCode::BAD_REQUEST, "body cut".into()))
            }
            Ok(Some(Ok(chunk))) => {
                if received.len() + chunk.len() > limit {
                    return Err(AppError::Body(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body too large".into(),
                    ));
                }
                received.extend_from_slice(&chunk);
            }
        }
    }
}

/// The slots a sync request holds while it is read and worked on.
type SyncSlots = (
    tokio::sync::OwnedSemaphorePermit,
    tokio::sync::OwnedSemaphorePermit,
);

/// Authenticated, holding its account's slot and a shared sync slot, with its body: what
/// `/v1/sync` and `/v1/docsync` need. Both waits together stay within `SYNC_SLOT_WAIT`.
async fn sync_request(
    state: &AppState,
    peer: SocketAddr,
    request: Request,
) -> Result<(AuthedDevice, Bytes, SyncSlots), AppError> {
    let (parts, body) = request.into_parts();
    let device = authenticate(state, &parts.headers, peer, false).await?;
    // The account's slot first: one body per account is read at a time. The body then arrives
    // whole (above the minimum rate) before a shared slot is taken, so slow uploads hold no
    // shared slot; at most `BODIES_IN_FLIGHT_MAX` are read at once (the memory they hold).
    let account = state.account_slots.for_account(&device.user.user_id);
    let (mine, reading) = tokio::time::timeout(SYNC_SLOT_WAIT, async {
        let mine = account.acquire_owned().await;
        let reading = state.bodies_in_flight.clone().acquire_owned().await;
        Ok::<_, tokio::sync::AcquireError>((mine?, reading?))
    })
    .await
    .map_err(|_| AppError::Busy)?
    .map_err(|_| AppError::Busy)?;
    let raw = read_body(body, protocol::SYNC_BODY_BYTES_MAX).await?;
    drop(reading);
    // A wait of its own: a 2G phone that spent most of a minute uploading must not be told
    // "busy" at once and upload again.
    let shared = tokio::time::timeout(SYNC_SLOT_WAIT, state.sync_slots.clone().acquire_owned())
        .await
        .map_err(|_| AppError::Busy)?
        .map_err(|_| AppError::Busy)?;
    Ok((device, raw, (mine, shared)))
}

async fn enroll(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    request: Request,
) -> Result<Response, AppError> {
    if !state.enroll_limiter.allow(&peer.ip().to_string()) {
        return Err(AppError::RateLimited);
    }
    // Whole, small and timely before any check: a dripped enrollment holds nothing for long.
    let raw = read_body(request.into_body(), ENROLL_BODY_BYTES_MAX).await?;
    let request: EnrollRequest = serde_json::from_slice(&raw)
        .map_err(|e| AppError::Service(ServiceError::BadRequest(format!("enroll: {e}"))))?;
    let service = state.service.clone();
    let response = blocking(move || service.enroll(&request, now())).await?;
    tracing::info!(device = %response.device_id, role = %response.role, "device enrolled");
    Ok(Json(response).into_response())
}

fn sync_reply(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, protocol::CONTENT_TYPE)], bytes).into_response()
}

async fn sync(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    request: Request,
) -> Result<Response, AppError> {
    let (device, raw, slots) = sync_request(&state, peer, request).await?;
    let service = state.service.clone();
    let device_id = device.device.device_id.clone();
    let bytes_in = raw.len();
    let authed = device.clone();
    let SyncFirst {
        page: first,
        stats,
        stream,
    } = blocking(move || service.sync_first(&authed, &raw, now())).await?;
    tracing::info!(
        device = %device_id,
        bytes_in,
        bytes_out = first.len(),
        stored = stats.changes_stored,
        refused = stats.cases_refused,
        pulled = stats.changes_pulled,
        "sync"
    );
    // The push is stored and the first page built: the rest of a stream takes a shared slot
    // page by page, and none while the phone reads.
    drop(slots);
    match stream {
        None => Ok(sync_reply(first)),
        Some(start) => Ok(stream_reply(state, device, first, start)),
    }
}

/// How long the server waits for a phone to take the next page of its stream before ending
/// it (the phone asks again from its last committed page).
pub const PAGE_SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// A sync answered as a stream of pages (version 8): the first is built, the next ones are
/// built as the phone takes the ones before, each with a shared sync slot and a short read of
/// its own. A page that cannot be built ends the stream cleanly; the phone, told more waits,
/// asks again and hears why.
fn stream_reply(
    state: AppState,
    device: AuthedDevice,
    first: Vec<u8>,
    StreamStart { rows, mut position }: StreamStart,
) -> Response {
    use protocol::stream::{self, FrameKind};
    // One page queued: a phone that reads slowly leaves the next page unbuilt.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        let send = |bytes: Vec<u8>| {
            let tx = tx.clone();
            async move {
                matches!(
                    tokio::time::timeout(PAGE_SEND_TIMEOUT, tx.send(Ok(Bytes::from(bytes)))).await,
                    Ok(Ok(()))
                )
            }
        };
        // The list rows first (a first sync), then the first page.
        let mut head = stream::STREAM_MAGIC.to_vec();
        for body in &rows {
            head.extend(stream::frame(FrameKind::Rows, body));
        }
        head.extend(stream::frame(FrameKind::Page, &first));
        if !send(head).await {
            return;
        }
        let mut pages = 1;
        while position.more && pages < STREAM_PAGES_MAX {
            let Ok(Ok(slot)) =
                tokio::time::timeout(SYNC_SLOT_WAIT, state.sync_slots.clone().acquire_owned())
                    .await
            else {
                break;
            };
            let (service, authed, at) = (state.service.clone(), device.clone(), position.clone());
            let next = blocking(move || service.next_page(&authed, &at)).await;
            drop(slot);
            let (page, next) = match next {
                Ok((page, _, next)) if next.moved_from(&position) => (page, next),
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(device = %device.device.device_id, error = ?e, "stream page");
                    break;
                }
            };
            if !send(stream::frame(FrameKind::Page, &page)).await {
                tracing::info!(device = %device.device.device_id, pages, "stream left unread");
                return;
            }
            position = next;
            pages += 1;
        }
        send(stream::STREAM_END.to_vec()).await;
        tracing::info!(device = %device.device.device_id, pages, "stream sent");
    });
    (
        [(header::CONTENT_TYPE, protocol::CONTENT_TYPE)],
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response()
}

async fn doc_sync(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    request: Request,
) -> Result<Response, AppError> {
    let (device, raw, _slot) = sync_request(&state, peer, request).await?;
    let service = state.service.clone();
    let reply = blocking(move || service.doc_sync(&device, &raw, now())).await?;
    Ok(sync_reply(reply))
}

/// Cases a phone opens before its first sync brought them, fetched by id.
async fn fetch_cases(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    request: Request,
) -> Result<Response, AppError> {
    let (device, raw, _slot) = sync_request(&state, peer, request).await?;
    let service = state.service.clone();
    let reply = blocking(move || service.fetch_cases(&device, &raw)).await?;
    Ok(sync_reply(reply))
}

async fn wipe_confirm(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let device = authenticate(&state, &headers, peer, true).await?;
    let device_id = device.device.device_id.clone();
    let service = state.service.clone();
    blocking(move || service.confirm_wipe(&device, now())).await?;
    tracing::info!(device = %device_id, "wipe confirmed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::prelude::*;
    use crate::storage::{AcceptedCase, Device, Role, StorageError, User};
    use std::sync::Arc;

    /// A phone that reads its stream slowly holds no sync slot: past the first page, each page
    /// is built with a slot of its own, and none is held while the server waits for the phone
    /// to take it. Read at last, the stream holds every page and its end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_read_slowly_holds_no_sync_slot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::SqliteStore::open(&dir.path().join("s.db"), None).unwrap());
        let fatima = User {
            user_id: "fatima".into(),
            role: Role::Supervisor,
            team: "sikasso".into(),
            password_hash: None,
        };
        store.add_user(&fatima, 0).unwrap();
        // Changes that do not compress (48 KiB of noise each): a page or so each.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        };
        let cases: Vec<AcceptedCase> = (0..8)
            .map(|n| AcceptedCase {
                case_id: format!("{n:032x}"),
                new_case: Some(("amina".into(), "sikasso".into())),
                changes: vec![(format!("h{n}"), noise(48 * 1024))],
                summary: None,
            })
            .collect();
        store.store_changes("dev-a", &cases, None, 0).unwrap();
        let state = crate::state(store, crate::auth::CodeKey::generate());
        let device = AuthedDevice {
            device: Device {
                device_id: "dev-f".into(),
                user_id: "fatima".into(),
                actor: "f1".repeat(16),
                name: "phone".into(),
                token_hash: String::new(),
                revoked: false,
                wiped: false,
            },
            user: fatima,
        };
        let body = protocol::encode(&protocol::SyncRequest::pushing(0, vec![])).unwrap();
        let first = state.service.sync_first(&device, &body, 0).unwrap();
        let start = first
            .stream
            .expect("a version 8 request is answered as a stream");
        assert!(start.position.more, "several pages wait");
        let response = stream_reply(state.clone(), device, first.page, start);
        // The phone reads nothing: the next page is built and waits for it, holding no slot.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(state.sync_slots.available_permits(), SYNC_CONCURRENT_MAX);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let pages = protocol::stream::pages(&bytes).expect("a whole stream, ended");
        assert!(pages.len() >= 4, "{} pages", pages.len());
        let last = protocol::decode_response(pages.last().unwrap()).unwrap();
        assert!(!last.more);
        assert_eq!(state.sync_slots.available_permits(), SYNC_CONCURRENT_MAX);
    }

    /// A busy store tells the device to retry later (503, which it reads as "offline, nothing
    /// lost"); any other storage failure is an internal error (500).
    #[test]
    fn a_busy_store_is_a_503_and_a_broken_one_a_500() {
        let status = |e: StorageError| {
            AppError::Service(ServiceError::Storage(e))
                .into_response()
                .status()
        };
        assert_eq!(
            status(StorageError::Retryable("database is locked".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(StorageError::Backend("disk I/O error".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
