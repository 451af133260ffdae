//! The web console for supervisors, officers and admins, served by `suivi-server` on the same
//! port under `/console`. Pages are rendered on the server (maud, escaped by construction) and
//! need no JavaScript; the stylesheet is embedded in the binary.
//!
//! Sessions live in the database, so they work across several instances: the cookie holds a
//! random token, the store its SHA-256. Cookies are HttpOnly and SameSite=Strict (Secure under
//! HTTPS); every form carries a CSRF token compared with the session's own. Failed logins slow
//! the next try down per account and per address (growing delays up to a minute), never lock
//! an account: a lockout is something an attacker could use to keep a supervisor out. Every
//! page reads through the one access policy: the caseload list by the reader's scope, a case
//! page only if `policy::may_read` says so (otherwise "not found", so ids reveal nothing).

mod cases;
mod export;
mod indicators;
mod officer;
pub mod overview;
mod pages;
mod report;
mod session;
mod team;
pub mod text;
pub mod throttle;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use suivi_core::forms::IDENTIFICATION;
use suivi_core::policy::{self, Role};
use suivi_core::Lang;

use crate::auth;
use crate::conn::Peer;
use crate::state::AppState;
use crate::storage::{AuditQuery, CaseQuery, ConsoleSession, StorageError, User};
use cases::*;
use officer::*;
use pages::{Filters, Frame};
use report::*;
use session::*;
use team::*;
use text::{t, T};

/// A session ends after this long without a request...
pub const IDLE_SECS: i64 = 30 * 60;
/// ...and after this long in any case.
pub const ABSOLUTE_SECS: i64 = 12 * 3600;
pub use throttle::{login_wait, DELAY_MAX_SECS, FREE_FAILURES};
/// Rows one Excel export holds; a larger one is refused (413) and the CSV serves it.
pub const XLSX_ROWS_MAX: usize = export::xlsx::ROWS_MAX as usize;
/// Cases per page of the caseload.
pub const PAGE_SIZE: u64 = 50;
/// The deepest page: past it, a narrower filter finds a case sooner than paging does, and a
/// deep page would make each list read its whole scope.
pub const PAGES_MAX: u64 = 200;
/// A search or filter longer than this is cut: no name or village is longer.
const FILTER_CHARS_MAX: usize = 100;

const SESSION_COOKIE: &str = "suivi_session";
const LOGIN_CSRF_COOKIE: &str = "suivi_login";
const LANG_COOKIE: &str = "suivi_lang";
/// What a page may load: its own stylesheet, nothing else; no script at all.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The indicators table as the console's CSV download, for `suivi-server indicators`: read
/// over `reader`'s scope (an officer's or an admin's: the whole project), grouped `by` (a
/// dimension's key: province, commune, sector, month, sex, age, agent, team), the months from
/// `from` to `to` (YYYY-MM; empty: all), headers and values in `lang`.
pub fn indicators_table(
    store: &dyn crate::ServerStore,
    forms: &suivi_core::FormRegistry,
    reader: &User,
    (by, from, to): (&str, &str, &str),
    lang: Lang,
) -> Result<Vec<u8>, StorageError> {
    let by = indicators::Dimension::parse(by);
    let (from, to) = (IndicatorsQuery::month(from), IndicatorsQuery::month(to));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let cells = store.indicator_cells(reader, &today)?;
    let spellings = store.place_spellings(reader, &["province", "commune"])?;
    let (rows, total) = indicators::rows(
        &cells,
        &spellings,
        by,
        (&from, &to),
        forms.latest(IDENTIFICATION).ok(),
        lang,
    );
    store.audit(
        chrono::Utc::now().timestamp(),
        &reader.user_id,
        "indicators.exported",
        &format!("{} {from}..{to}", by.as_str()),
    )?;
    Ok(indicators::csv(&rows, &total, by, lang))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/cases") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang/{lang}", get(set_lang))
        .route("/console/cases", get(caseload))
        .route("/console/cases/{case_id}", get(case_page))
        .route("/console/cases/{case_id}/resolve", post(resolve))
        .route("/console/cases/{case_id}/notes", post(add_note))
        .route("/console/cases/{case_id}/closure", post(decide_closure))
        .route("/console/agents", get(agents_page))
        .route("/console/duplicates", get(duplicates_page))
        .route("/console/duplicates/distinct", post(mark_distinct))
        .route("/console/duplicates/merge", post(merge))
        .route("/console/cases/{case_id}/unmerge", post(unmerge))
        .route("/console/reassign", post(reassign_list))
        .route("/console/cases/{case_id}/reassign", post(reassign_case))
        .route("/console/devices/{device_id}/revoke", post(revoke))
        .route("/console/access-log", get(access_log))
        .route("/console/export/{file}", get(export_file))
        .route("/console/indicators", get(indicators_page))
        .route("/console/indicators.csv", get(indicators_csv))
        .route("/console/report", get(report_page))
        .route("/console/referrals", get(referrals_page))
        .route("/console/assets/console.css", get(stylesheet))
        // A login or filter form is a few hundred bytes.
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show children's data: no copy in a shared computer's cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The console speaks French, English and Arabic; a form's further languages (`bm`) are for
/// phones, and a console asked for one reads French.
fn lang_of(headers: &HeaderMap) -> Lang {
    match cookie(headers, LANG_COOKIE) {
        Some(tag) => Lang::from_tag(tag).app(),
        None => Lang::Fr,
    }
}

/// A console cookie. `None` for `max_age` makes it a browser-session cookie: closing the
/// browser on a shared office computer ends it (the server's idle and absolute expiry still
/// hold for a browser left open).
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = if state.https { "; Secure" } else { "" };
    let max_age = max_age.map_or(String::new(), |secs| format!("; Max-Age={secs}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict{max_age}{secure}"
    ))
    .expect("cookie values are hex or fixed words")
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// Console failures: a storage fault is logged and shown as a bare 500, never its cause.
enum ConsoleError {
    Storage(String),
    SignIn,
}

impl From<StorageError> for ConsoleError {
    fn from(e: StorageError) -> Self {
        ConsoleError::Storage(e.to_string())
    }
}

impl From<crate::service::ServiceError> for ConsoleError {
    fn from(e: crate::service::ServiceError) -> Self {
        ConsoleError::Storage(e.to_string())
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::Storage(e) => {
                tracing::error!(error = %e, "console");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
            ConsoleError::SignIn => Redirect::to("/console/login").into_response(),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ConsoleError> + Send + 'static,
) -> Result<T, ConsoleError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ConsoleError::Storage(format!("task: {e}")))?
}

/// A page saying, in words, why an action was refused, with the way back to where it came
/// from (`here`; the caseload for something not found).
fn refused(lang: Lang, signed: &Signed, status: StatusCode, text: &str, here: &str) -> Response {
    let (title, back) = if status == StatusCode::NOT_FOUND {
        (t(lang, T::NotFoundTitle), "/console/cases")
    } else {
        (t(lang, T::Refused), here)
    };
    html(
        status,
        pages::message_back(
            &signed.frame(lang, here),
            title,
            text,
            (back, t(lang, T::Back)),
        ),
    )
}

/// A refusal told inline: `page` is the page the action came from, rendered for a reader
/// `alerted` with the reason, and answered under the refusal's own status so a script reads it
/// too. A page that itself fails (the case gone meanwhile) keeps its own answer.
async fn refused_inline(
    status: StatusCode,
    page: impl std::future::Future<Output = Result<Response, ConsoleError>>,
) -> Result<Response, ConsoleError> {
    let mut response = page.await?;
    if response.status().is_success() {
        *response.status_mut() = status;
    }
    Ok(response)
}

fn forbidden(lang: Lang, signed: &Signed) -> Response {
    refused(
        lang,
        signed,
        StatusCode::FORBIDDEN,
        t(lang, T::Forbidden),
        "/console/cases",
    )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_client_of_a_dual_stack_listener_is_counted_as_itself() {
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:5000"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let plain: SocketAddr = "192.0.2.7:6000".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(ip_key(mapped), "ip:192.0.2.7");
        assert_eq!(ip_key(plain), ip_key(mapped));
        let v6: SocketAddr = "[2001:db8:1:2:3:4:5:6]:1"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(ip_key(v6), "ip:2001:db8:1:2::/64");
    }
}
