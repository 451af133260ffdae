//! The HTTP API (axum). `app()` builds the router so tests can call it without a socket. One
//! `AppError` turns failures into responses: client faults get a 4xx with a JSON message; an
//! internal fault gets a bare 500 whose cause is logged, never sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use suivi_core::sync::protocol::{self, EnrollRequest, ErrorBody};
use tower_http::trace::TraceLayer;

use crate::service::{AuthedDevice, ServiceError, SyncService};

#[derive(Debug)]
pub enum AppError {
    Service(ServiceError),
    RateLimited,
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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Service(ServiceError::Unauthorized) => error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid device credential".into(),
                false,
            ),
            AppError::Service(ServiceError::Revoked) => error_response(
                StatusCode::UNAUTHORIZED,
                "device_revoked",
                "this device was revoked: erase its case data".into(),
                true,
            ),
            AppError::Service(err @ ServiceError::UpgradeRequired(_)) => error_response(
                StatusCode::from_u16(protocol::UPGRADE_REQUIRED_STATUS)
                    .unwrap_or(StatusCode::BAD_REQUEST),
                protocol::UPGRADE_REQUIRED,
                err.to_string(),
                false,
            ),
            AppError::Service(ServiceError::BadRequest(m)) => {
                error_response(StatusCode::BAD_REQUEST, "bad_request", m, false)
            }
            AppError::Service(ServiceError::Forbidden(m)) => {
                error_response(StatusCode::FORBIDDEN, "forbidden", m, false)
            }
            AppError::Service(err @ (ServiceError::Storage(_) | ServiceError::Internal(_))) => {
                tracing::error!(error = %err, "internal failure");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            AppError::RateLimited => error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this device; retry later".into(),
                false,
            ),
            AppError::Body(status, m) => error_response(status, "bad_body", m, false),
        }
    }
}

/// A token bucket per device: bursts for a first sync's pages, a ceiling for a runaway client.
pub struct RateLimiter {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(burst: u32, per_sec: f64) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst),
            per_sec,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn allow(&self, key: &str) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_sec).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<SyncService>,
    pub limiter: Arc<RateLimiter>,
}

/// Requests per device allowed in a burst, and refilled per second.
pub const RATE_BURST: u32 = 600;
pub const RATE_PER_SEC: f64 = 20.0;

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/enroll", post(enroll))
        .route("/v1/sync", post(sync))
        .route("/v1/docsync", post(doc_sync))
        .route("/v1/wipe-confirm", post(wipe_confirm))
        .layer(DefaultBodyLimit::max(protocol::SYNC_BODY_BYTES_MAX))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, AppError> {
    body.map_err(|r| AppError::Body(r.status(), r.body_text()))
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

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    allow_revoked: bool,
) -> Result<AuthedDevice, AppError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let service = state.service.clone();
    let device = blocking(move || service.authenticate(header.as_deref(), allow_revoked)).await?;
    if !state.limiter.allow(&device.device.device_id) {
        tracing::warn!(device = %device.device.device_id, "rate limited");
        return Err(AppError::RateLimited);
    }
    Ok(device)
}

async fn enroll(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let raw = body(raw)?;
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
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let device = authenticate(&state, &headers, false).await?;
    let raw = body(raw)?;
    let service = state.service.clone();
    let device_id = device.device.device_id.clone();
    let bytes_in = raw.len();
    let (reply, stats) = blocking(move || service.sync(&device, &raw, now())).await?;
    tracing::info!(
        device = %device_id,
        bytes_in,
        bytes_out = reply.len(),
        stored = stats.changes_stored,
        refused = stats.cases_refused,
        pulled = stats.changes_pulled,
        "sync"
    );
    Ok(sync_reply(reply))
}

async fn doc_sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let device = authenticate(&state, &headers, false).await?;
    let raw = body(raw)?;
    let service = state.service.clone();
    let reply = blocking(move || service.doc_sync(&device, &raw, now())).await?;
    Ok(sync_reply(reply))
}

async fn wipe_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let device = authenticate(&state, &headers, true).await?;
    let device_id = device.device.device_id.clone();
    let service = state.service.clone();
    blocking(move || service.confirm_wipe(&device, now())).await?;
    tracing::info!(device = %device_id, "wipe confirmed");
    Ok(StatusCode::NO_CONTENT.into_response())
}
