//! The whole HTTP application: the device API and the console on one router, with what every
//! response gets (request spans without query strings, HSTS under HTTPS, the body limit). A
//! function of the state, so tests call it without a socket.

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::response::Response;
use axum::Router;
use suivi_core::sync::protocol;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// `Strict-Transport-Security` under HTTPS: a year, so a browser that has once reached the
/// console over TLS never sends a session cookie over plain HTTP to it.
const HSTS: &str = "max-age=31536000";

pub fn app(state: AppState) -> Router {
    let https = state.https;
    crate::api::routes()
        .merge(crate::console::routes())
        .layer(DefaultBodyLimit::max(protocol::SYNC_BODY_BYTES_MAX))
        // A request's span names its method and path, never its query string (a console search
        // is a child's name) nor any header or body, at every level.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path()
                )
            }),
        )
        .layer(axum::middleware::map_response(
            move |mut r: Response| async move {
                if https {
                    r.headers_mut().insert(
                        header::STRICT_TRANSPORT_SECURITY,
                        header::HeaderValue::from_static(HSTS),
                    );
                }
                r
            },
        ))
        .with_state(state)
}
