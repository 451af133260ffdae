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

mod export;
mod indicators;
mod pages;
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

use crate::api::AppState;
use crate::auth;
use crate::conn::Peer;
use crate::storage::{AuditQuery, CaseQuery, ConsoleSession, StorageError, User};
use pages::{Filters, Frame};
use text::{t, T};

/// A session ends after this long without a request...
pub const IDLE_SECS: i64 = 30 * 60;
/// ...and after this long in any case.
pub const ABSOLUTE_SECS: i64 = 12 * 3600;
pub use throttle::{login_wait, DELAY_MAX_SECS, FREE_FAILURES};
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
        .route("/console/agents", get(agents_page))
        .route("/console/duplicates", get(duplicates_page))
        .route("/console/duplicates/distinct", post(mark_distinct))
        .route("/console/duplicates/merge", post(merge))
        .route("/console/reassign", post(reassign_list))
        .route("/console/cases/{case_id}/reassign", post(reassign_case))
        .route("/console/devices/{device_id}/revoke", post(revoke))
        .route("/console/access-log", get(access_log))
        .route("/console/export/{file}", get(export_file))
        .route("/console/indicators", get(indicators_page))
        .route("/console/indicators.csv", get(indicators_csv))
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

fn lang_of(headers: &HeaderMap) -> Lang {
    match cookie(headers, LANG_COOKIE) {
        Some(tag) => Lang::from_tag(tag),
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

/// A signed-in console user.
struct Signed {
    user: User,
    session: ConsoleSession,
}

impl Signed {
    /// The page frame for this user, on page `here`.
    fn frame<'a>(&'a self, lang: Lang, here: &'a str) -> Frame<'a> {
        Frame {
            lang,
            user: Some(&self.user),
            csrf: &self.session.csrf_token,
            here,
        }
    }
}

/// The session the cookie names, if it is live: expired ones are ended here, and a live one is
/// touched (at most once a minute, to keep writes down). Agents never get one, but a session of
/// a user since made an agent is refused too.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Signed, ConsoleError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(ConsoleError::SignIn);
    };
    let token_hash = auth::sha256_hex(token);
    let store = state.service.store().clone();
    blocking(move || {
        let now = now();
        let Some(session) = store.session(&token_hash)? else {
            return Err(ConsoleError::SignIn);
        };
        if session.last_seen < now - IDLE_SECS || session.created_at < now - ABSOLUTE_SECS {
            store.end_session(&token_hash)?;
            return Err(ConsoleError::SignIn);
        }
        let Some(user) = store.user(&session.user_id)? else {
            return Err(ConsoleError::SignIn);
        };
        if user.role == Role::Agent {
            store.end_session(&token_hash)?;
            return Err(ConsoleError::SignIn);
        }
        if now - session.last_seen >= 60 {
            store.touch_session(&token_hash, now)?;
        }
        Ok(Signed { user, session })
    })
    .await
}

fn csrf_matches(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    render_login(&state, lang_of(&headers), StatusCode::OK, None, "")
}

/// The login form with a fresh double-submit token (there is no session yet to hold one).
fn render_login(
    state: &AppState,
    lang: Lang,
    status: StatusCode,
    message: Option<&str>,
    user: &str,
) -> Response {
    let csrf = auth::new_token();
    let frame = Frame {
        lang,
        user: None,
        csrf: &csrf,
        here: "/console/login",
    };
    let mut response = html(status, pages::login(&frame, message, user));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, Some(3600)),
    );
    response
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

enum LoginOutcome {
    Wait(i64),
    Refused,
    Agent,
    Session(String),
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let lang = lang_of(&headers);
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !csrf_matches(expected, &form.csrf) {
        return Ok(render_login(
            &state,
            lang,
            StatusCode::FORBIDDEN,
            Some(t(lang, T::Forbidden)),
            "",
        ));
    }
    let store = state.service.store().clone();
    let user_id: String = form.user.trim().chars().take(64).collect();
    let address = ip_key(peer);
    let shown_user = user_id.clone();
    if !suivi_core::case_doc::valid_user_id(&user_id) {
        // No account has this name; counted against the address alone, with no password check
        // and no key built from it (a name must never read as another key).
        let store = store.clone();
        blocking(move || {
            let now = now();
            store.record_login_failure(&address, now, now - throttle::FAILURE_MEMORY_SECS)?;
            Ok(())
        })
        .await?;
        return Ok(render_login(
            &state,
            lang,
            StatusCode::UNAUTHORIZED,
            Some(t(lang, T::BadLogin)),
            "",
        ));
    }
    let keys = throttle::Keys::new(&user_id, &address);
    // Whether this try is checked at all, decided before it queues for a check: a try that is
    // only told to wait costs a few reads and holds no place.
    let decided = {
        let (store, keys) = (store.clone(), keys.clone());
        blocking(move || {
            let now = now();
            let counts = throttle::Counts {
                account: store.login_failures(&keys.account)?,
                address: store.login_failures(&keys.address)?,
                pair: store.login_failures(&keys.pair)?,
            };
            Ok((throttle::decide(counts, now), counts))
        })
        .await?
    };
    let before = match decided {
        (throttle::Decision::Wait(wait), _) => {
            return Ok(wait_page(&state, lang, wait, &shown_user))
        }
        (throttle::Decision::Check, counts) => counts,
    };
    // Every password check passes the gate: argon2's memory is paid per check, so only a few
    // run at once whatever arrives, and a full queue is told "busy" before any work.
    let Ok(mut check) = state.password_gate.enter().await else {
        let mut r = render_login(
            &state,
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            Some(t(lang, T::Busy)),
            "",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1));
        return Ok(r);
    };
    let outcome = blocking(move || {
        let now = now();
        let forget_before = now - throttle::FAILURE_MEMORY_SECS;
        // The try is counted before the password is checked: tries from one address at one
        // account sent at once, past the free ones, get one check between them, not one each
        // (the pair's count decides, so the others, counted in other statements, cannot
        // interleave).
        let after_pair = store.record_login_failure(&keys.pair, now, forget_before)?;
        store.record_login_failure(&keys.address, now, forget_before)?;
        store.record_login_failure(&keys.account, now, forget_before)?;
        let pair_before = throttle::current(before.pair, now);
        if after_pair.count > pair_before.count + 1 && after_pair.count > FREE_FAILURES {
            return Ok(LoginOutcome::Wait(1));
        }
        let user = store.user(&user_id)?;
        // An unknown user costs the same argon2 work as a known one: timing tells nothing.
        let stored = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| auth::dummy_password_hash().to_string());
        let password_ok = check.verify(&form.password, &stored);
        drop(check);
        let user = match user {
            Some(u) if password_ok && u.password_hash.is_some() => u,
            _ => {
                store.audit(now, &user_id, "console.login_failed", &keys.address)?;
                return Ok(LoginOutcome::Refused);
            }
        };
        // The right password: this try was no guess. The pair starts again; the address and
        // the account keep their earlier misses (a login of one's own must not wipe the count
        // of guesses at other accounts, nor give an attacker the account's budget back).
        store.clear_login_failures(&keys.pair)?;
        store.forgive_login_failure(&keys.address)?;
        store.forgive_login_failure(&keys.account)?;
        if user.role == Role::Agent {
            return Ok(LoginOutcome::Agent);
        }
        store.end_expired_sessions(now - IDLE_SECS, now - ABSOLUTE_SECS)?;
        let token = auth::new_token();
        store.add_session(&ConsoleSession {
            token_hash: auth::sha256_hex(&token),
            user_id: user.user_id.clone(),
            csrf_token: auth::new_token(),
            created_at: now,
            last_seen: now,
        })?;
        store.audit(now, &user.user_id, "console.login", &keys.address)?;
        Ok(LoginOutcome::Session(token))
    })
    .await?;
    Ok(match outcome {
        LoginOutcome::Wait(secs) => wait_page(&state, lang, secs, &shown_user),
        LoginOutcome::Refused => render_login(
            &state,
            lang,
            StatusCode::UNAUTHORIZED,
            Some(t(lang, T::BadLogin)),
            &shown_user,
        ),
        LoginOutcome::Agent => render_login(
            &state,
            lang,
            StatusCode::FORBIDDEN,
            Some(t(lang, T::AgentsUsePhones)),
            "",
        ),
        LoginOutcome::Session(token) => {
            let mut r = Redirect::to("/console/cases").into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &token, None),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, LOGIN_CSRF_COOKIE, "", Some(0)),
            );
            r
        }
    })
}

/// The sign-in page saying how long to wait, under 429 with `Retry-After`.
fn wait_page(state: &AppState, lang: Lang, secs: i64, user: &str) -> Response {
    let text = format!("{} {}.", t(lang, T::TooManyTries), wait_text(lang, secs));
    let mut r = render_login(
        state,
        lang,
        StatusCode::TOO_MANY_REQUESTS,
        Some(&text),
        user,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// A wait as a person reads it: seconds under two minutes, whole minutes (rounded up) above.
fn wait_text(lang: Lang, secs: i64) -> String {
    if secs < 120 {
        format!("{secs} {}", t(lang, T::Seconds))
    } else {
        format!("{} {}", (secs + 59) / 60, t(lang, T::Minutes))
    }
}

/// The address a login try is counted against: IPv6 by its /64, which one household or phone
/// gets whole.
fn ip_key(peer: SocketAddr) -> String {
    // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d: counted as itself.
    match peer.ip().to_canonical() {
        std::net::IpAddr::V4(ip) => format!("ip:{ip}"),
        std::net::IpAddr::V6(ip) => {
            let s = ip.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    if !csrf_matches(&signed.session.csrf_token, &form.csrf) {
        return Ok(forbidden(lang, &signed));
    }
    let store = state.service.store().clone();
    let token_hash = signed.session.token_hash.clone();
    let user_id = signed.user.user_id.clone();
    blocking(move || {
        store.end_session(&token_hash)?;
        store.audit(now(), &user_id, "console.logout", "")?;
        Ok(())
    })
    .await?;
    let mut r = Redirect::to("/console/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", Some(0)),
    );
    Ok(r)
}

/// A page saying why an action was refused, under its status.
fn refused(lang: Lang, signed: &Signed, status: StatusCode, text: &str, here: &str) -> Response {
    html(
        status,
        pages::message(&signed.frame(lang, here), status.as_str(), text),
    )
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

#[derive(Deserialize)]
struct Back {
    #[serde(default)]
    back: String,
}

/// Sets the language and returns to the page it was chosen on (a console path only: never a
/// redirect to another site).
async fn set_lang(
    State(state): State<AppState>,
    Path(lang): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    let lang = text::tag(Lang::from_tag(&lang));
    let back = if back.back.starts_with("/console/") && !back.back.starts_with("//") {
        back.back
    } else {
        "/console/cases".to_string()
    };
    let mut r = Redirect::to(&back).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, LANG_COOKIE, lang, Some(365 * 86_400)),
    );
    r
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

#[derive(Deserialize, Default)]
struct CaseloadQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    village: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    risk: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    conflicts: String,
    #[serde(default)]
    page: u64,
    /// How many cases the last bulk reassignment moved.
    #[serde(default)]
    reassigned: Option<u64>,
}

fn bounded(text: &str) -> String {
    text.trim().chars().take(FILTER_CHARS_MAX).collect()
}

fn filters_of(query: &CaseloadQuery) -> Filters {
    Filters {
        q: bounded(&query.q),
        village: bounded(&query.village),
        agent: bounded(&query.agent),
        risk: bounded(&query.risk),
        status: bounded(&query.status),
        overdue: !query.overdue.is_empty(),
        conflicts: !query.conflicts.is_empty(),
        page: query.page.min(PAGES_MAX),
    }
}

fn case_query_of(filters: &Filters, today: &str, offset: u64, limit: u64) -> CaseQuery {
    CaseQuery {
        name_terms: suivi_core::names::query_terms(&filters.q),
        village_key: Some(crate::summary::place_key(&filters.village)).filter(|v| !v.is_empty()),
        agent: Some(filters.agent.clone()).filter(|v| !v.is_empty()),
        risk_level: Some(filters.risk.clone()).filter(|v| !v.is_empty()),
        referral_status: Some(filters.status.clone())
            .filter(|v| pages::STATUSES.contains(&v.as_str())),
        due_before: filters.overdue.then(|| today.to_string()),
        conflicts_only: filters.conflicts,
        offset,
        limit,
    }
}

/// The agents a reader may reassign cases to: a supervisor's team's agents; nobody for others
/// (admins reassign with `suivi-server case reassign`).
fn reassign_choices(
    store: &dyn crate::storage::ServerStore,
    reader: &User,
) -> Result<Vec<String>, ConsoleError> {
    if reader.role != Role::Supervisor {
        return Ok(Vec::new());
    }
    Ok(store
        .team_members(&reader.team)?
        .into_iter()
        .filter(|u| u.role == Role::Agent)
        .map(|u| u.user_id)
        .collect())
}

async fn caseload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CaseloadQuery>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    let filters = filters_of(&query);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let case_query = case_query_of(&filters, &today, filters.page * PAGE_SIZE, PAGE_SIZE);
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let searched = !filters.q.is_empty();
    let (list, agents) = blocking(move || {
        let list = store.list_cases(&reader, &case_query)?;
        // Names are on the page: the access log says who saw which cases (ids, never the
        // words searched for, which are names).
        let shown: Vec<&str> = list
            .cases
            .iter()
            .map(|c| c.summary.case_id.as_str())
            .collect();
        let action = if searched {
            "console.search"
        } else {
            "console.caseload_viewed"
        };
        store.audit(now(), &reader.user_id, action, &shown.join(" "))?;
        Ok((list, reassign_choices(store.as_ref(), &reader)?))
    })
    .await?;
    let here = format!("/console/cases?{}", filters.query_string(filters.page));
    let frame = signed.frame(lang, &here);
    let forms = state.service.forms();
    let forms = &*forms;
    let Ok(identification) = forms.latest(IDENTIFICATION) else {
        return Err(ConsoleError::Storage("no identification form".into()));
    };
    Ok(html(
        StatusCode::OK,
        pages::caseload(
            &frame,
            &pages::Caseload {
                filters: &filters,
                list: &list,
                page_size: PAGE_SIZE,
                today: &today,
                identification,
                agents: &agents,
                notice: query
                    .reassigned
                    .map(|n| format!("{n} {}", t(lang, T::Reassigned))),
            },
        ),
    ))
}

#[derive(Deserialize, Default)]
struct CasePageQuery {
    #[serde(default)]
    settled: String,
    #[serde(default)]
    merged: String,
    #[serde(default)]
    noted: String,
}

/// A case merged into the one shown, read only if the reader may read it. A merged case that
/// does not load is shown as out of reach rather than failing the survivor's page.
fn merged_view(
    service: &crate::service::SyncService,
    reader: &User,
    case_id: String,
) -> Result<pages::MergedView, ConsoleError> {
    let mut view = pages::MergedView {
        case_id,
        readable: false,
        referrals: Vec::new(),
        followups: Vec::new(),
        edits_after_merge: Vec::new(),
        origins: Vec::new(),
    };
    let store = service.store();
    let access = store.case_access(std::slice::from_ref(&view.case_id))?;
    let readable = access
        .get(&view.case_id)
        .is_some_and(|a| policy::may_read(&reader.subject(), &a.ownership()));
    if !readable {
        return Ok(view);
    }
    let Some(mut doc) = service.case_document(&view.case_id)? else {
        return Ok(view);
    };
    let forms = service.forms();
    let forms = &*forms;
    let read = (|| -> suivi_core::Result<_> {
        Ok((
            doc.referrals(forms)?,
            doc.followups(forms)?,
            doc.edits_after_merge()?,
        ))
    })();
    if let Ok((referrals, followups, edits)) = read {
        view.origins = store.change_origins(&view.case_id)?;
        view.readable = true;
        view.referrals = referrals;
        view.followups = followups;
        view.edits_after_merge = edits;
    }
    Ok(view)
}

async fn case_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    Query(query): Query<CasePageQuery>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    let here = format!("/console/cases/{}", pages::urlencode(&case_id));
    let frame = signed.frame(lang, &here);
    let not_found = || {
        refused(
            lang,
            &signed,
            StatusCode::NOT_FOUND,
            t(lang, T::NotFound),
            &here,
        )
    };
    if !crate::storage::valid_case_id(&case_id) {
        return Ok(not_found());
    }
    let service = state.service.clone();
    let reader = signed.user.clone();
    let checkpoints = state.checkpoints.clone();
    let loaded = blocking(move || {
        let store = service.store();
        let access = store.case_access(std::slice::from_ref(&case_id))?;
        let Some(access) = access.get(&case_id) else {
            return Ok(None);
        };
        if !policy::may_read(&reader.subject(), &access.ownership()) {
            return Ok(None);
        }
        let Some(listed) = store.listed_case(&case_id)? else {
            return Ok(None);
        };
        // A record may name a version published moments ago (by another instance).
        service.refresh_forms();
        let doc = service.case_document(&case_id)?;
        let origins = store.change_origins(&case_id)?;
        let agents = reassign_choices(store.as_ref(), &reader)?;
        let merged_ids = doc
            .as_ref()
            .and_then(|d| d.merged_cases().ok())
            .unwrap_or_default();
        let mut merged = Vec::with_capacity(merged_ids.len());
        for id in merged_ids {
            let view = merged_view(&service, &reader, id)?;
            if view.readable {
                // Shown on this page: a view of that child's record too.
                store.audit(now(), &reader.user_id, "console.case_viewed", &view.case_id)?;
            }
            merged.push(view);
        }
        let evidence = match &checkpoints {
            Some(c) => Some(
                crate::evidence::verify_case(store.as_ref(), c, &case_id)
                    .map_err(|e| ConsoleError::Storage(e.to_string()))?,
            ),
            None => None,
        };
        store.audit(now(), &reader.user_id, "console.case_viewed", &case_id)?;
        Ok(Some((listed, doc, origins, agents, merged, evidence)))
    })
    .await?;
    let Some((listed, doc, origins, agents, merged, evidence)) = loaded else {
        return Ok(not_found());
    };
    let Some(mut doc) = doc else {
        return Ok(not_found());
    };
    let forms = state.service.forms();
    let forms = &*forms;
    let read = (|| -> suivi_core::Result<_> {
        let version = doc.identification_form_version()?;
        let ident_form = forms.get(IDENTIFICATION, version)?;
        Ok((
            ident_form,
            (
                doc.identification(forms)?,
                doc.former_identification_fields(forms)?,
            ),
            doc.referrals(forms)?,
            doc.followups(forms)?,
            doc.audit_notes()?,
            doc.conflicts_with_sources(forms)?,
            doc.merged_into()?,
        ))
    })();
    let Ok((
        ident_form,
        (identification, former_fields),
        referrals,
        followups,
        notes,
        conflicts,
        merged_into,
    )) = read
    else {
        return Err(ConsoleError::Storage("a stored case does not read".into()));
    };
    let history = doc
        .history()
        .map_err(|e| ConsoleError::Storage(e.to_string()))?;
    let page = pages::CasePage {
        listed: &listed,
        identification: &identification,
        former_fields: &former_fields,
        identification_form: ident_form,
        forms,
        notice: if !query.settled.is_empty() {
            Some(t(lang, T::Settled))
        } else if !query.merged.is_empty() {
            Some(t(lang, T::Merged))
        } else if !query.noted.is_empty() {
            Some(t(lang, T::Noted))
        } else {
            None
        },
        merged_into: merged_into.as_deref(),
        merged: &merged,
        agents: &agents,
        referrals: &referrals,
        followups: &followups,
        notes: &notes,
        conflicts: &conflicts,
        history: &history,
        origins: &origins,
        evidence: evidence.as_ref(),
    };
    Ok(html(StatusCode::OK, pages::case_page(&frame, &page)))
}

#[derive(Deserialize)]
struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    choice: String,
    #[serde(default)]
    other: String,
}

/// A console change's outcome as a page answers it: done, refused by the checks (422), out of
/// the reader's scope (404), or an error.
fn change_outcome(
    result: Result<(), crate::service::ServiceError>,
    case: &str,
    what: &str,
) -> Result<Result<(), StatusCode>, ConsoleError> {
    match result {
        Ok(()) => Ok(Ok(())),
        Err(crate::service::ServiceError::Forbidden(_)) => Ok(Err(StatusCode::NOT_FOUND)),
        Err(crate::service::ServiceError::BadRequest(why)) => {
            tracing::info!(case = %case, why = %why, "console {what} refused");
            Ok(Err(StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(e) => Err(ConsoleError::from(e)),
    }
}

/// Settles a conflict from the case page: the value kept (by its index among the concurrent
/// ones) or, for an identification field, another one typed in. Written as a console change.
async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    if !csrf_matches(&signed.session.csrf_token, &form.csrf) {
        return Ok(forbidden(lang, &signed));
    }
    let service = state.service.clone();
    let user = signed.user.clone();
    let target = case_id.clone();
    let outcome = blocking(move || {
        let path = form.path;
        let result = service.console_change(&user, &target, now(), |doc, forms, ctx| {
            let value = if form.choice == "other" {
                let field = path
                    .strip_prefix("identification.")
                    .ok_or_else(|| suivi_core::Error::InvalidInput("another value".into()))?;
                let version = doc.identification_form_version()?;
                forms
                    .get(IDENTIFICATION, version)?
                    .parse_input(field, &form.other)?
            } else {
                let index: usize = form
                    .choice
                    .parse()
                    .map_err(|_| suivi_core::Error::InvalidInput("choice".into()))?;
                doc.conflicts(forms)?
                    .into_iter()
                    .find(|c| c.path == path)
                    .and_then(|c| c.values.get(index).cloned())
                    .ok_or_else(|| suivi_core::Error::NotFound {
                        kind: "conflict",
                        id: path.clone(),
                    })?
            };
            doc.resolve_conflict(forms, &path, &value, ctx)
        });
        change_outcome(result, &target, "resolution")
    })
    .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/console/cases/{case_id}?settled=1")).into_response()),
        Err(status) => {
            let text = if status == StatusCode::NOT_FOUND {
                t(lang, T::NotFound)
            } else {
                t(lang, T::NotSettled)
            };
            Ok(refused(lang, &signed, status, text, "/console/cases"))
        }
    }
}

/// The devices a reader sees on the agents page: a supervisor its team's, an officer or admin
/// every team's (by the same scope as cases).
fn devices_in_scope(
    reader: &User,
    all: Vec<crate::storage::DeviceStatus>,
) -> Vec<crate::storage::DeviceStatus> {
    use suivi_core::policy::ReadScope;
    all.into_iter()
        .filter(|d| match ReadScope::of(reader.role) {
            ReadScope::All => true,
            ReadScope::Team => d.team == reader.team,
            ReadScope::Own => d.device.user_id == reader.user_id,
        })
        .collect()
}

/// Who may revoke a device from the console: an admin any, a supervisor its team's.
fn may_revoke(reader: &User, team: &str) -> bool {
    match reader.role {
        Role::Admin => true,
        Role::Supervisor => reader.team == team,
        Role::Agent | Role::Officer => false,
    }
}

#[derive(Deserialize, Default)]
struct AgentsQuery {
    #[serde(default)]
    revoked: String,
}

async fn agents_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AgentsQuery>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let devices = blocking(move || Ok(devices_in_scope(&reader, store.device_statuses()?))).await?;
    let frame = signed.frame(lang, "/console/agents");
    let revoker = matches!(signed.user.role, Role::Admin | Role::Supervisor);
    let notice = (!query.revoked.is_empty()).then(|| t(lang, T::RevokedNotice));
    Ok(html(
        StatusCode::OK,
        pages::agents(&frame, &devices, revoker, now(), notice),
    ))
}

/// Revokes a device of the reader's team: journalled first, as `device revoke` does; the phone
/// erases its cases at its next connection.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(device_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    if !csrf_matches(&signed.session.csrf_token, &form.csrf) {
        return Ok(forbidden(lang, &signed));
    }
    let store = state.service.store().clone();
    let journal = state.revocation_journal.clone();
    let reader = signed.user.clone();
    let revoked = blocking(move || {
        let status = store
            .device_statuses()?
            .into_iter()
            .find(|d| d.device.device_id == device_id);
        let Some(status) = status.filter(|d| may_revoke(&reader, &d.team)) else {
            return Ok(false);
        };
        let done = crate::admin::revoke(store.as_ref(), journal.as_deref(), &device_id)
            .map_err(ConsoleError::Storage)?;
        if done {
            store.audit(
                now(),
                &reader.user_id,
                "console.revoke",
                &status.device.device_id,
            )?;
        }
        Ok(true)
    })
    .await?;
    if !revoked {
        return Ok(refused(
            lang,
            &signed,
            StatusCode::NOT_FOUND,
            t(lang, T::NoDevice),
            "/console/agents",
        ));
    }
    Ok(Redirect::to("/console/agents?revoked=1").into_response())
}

/// The largest list a bulk reassignment moves at once.
pub const REASSIGN_CASES_MAX: u64 = 10_000;

#[derive(Deserialize)]
struct ReassignListForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
    #[serde(flatten)]
    filters: CaseloadQuery,
}

/// Reassigns every case the list's filters select (up to `REASSIGN_CASES_MAX`) to one agent.
async fn reassign_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ReassignListForm>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    if !csrf_matches(&signed.session.csrf_token, &form.csrf) {
        return Ok(forbidden(lang, &signed));
    }
    let filters = Filters {
        page: 0,
        ..filters_of(&form.filters)
    };
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let query = case_query_of(&filters, &today, 0, REASSIGN_CASES_MAX);
    let service = state.service.clone();
    let reader = signed.user.clone();
    let to = form.to.clone();
    let moved = blocking(move || {
        let ids: Vec<String> = service
            .store()
            .list_cases(&reader, &query)?
            .cases
            .into_iter()
            .map(|c| c.summary.case_id)
            .collect();
        match service.reassign(&reader, &ids, &to, now()) {
            Ok(moved) => Ok(Ok(moved.len())),
            Err(
                crate::service::ServiceError::BadRequest(_)
                | crate::service::ServiceError::Forbidden(_),
            ) => Ok(Err(())),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let Ok(moved) = moved else {
        return Ok(forbidden(lang, &signed));
    };
    let back = filters.query_string(0);
    let sep = if back.is_empty() { "" } else { "&" };
    Ok(Redirect::to(&format!("/console/cases?{back}{sep}reassigned={moved}")).into_response())
}

#[derive(Deserialize)]
struct ReassignForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
}

async fn reassign_case(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    Form(form): Form<ReassignForm>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    if !csrf_matches(&signed.session.csrf_token, &form.csrf) {
        return Ok(forbidden(lang, &signed));
    }
    let service = state.service.clone();
    let reader = signed.user.clone();
    let target = case_id.clone();
    let moved = blocking(move || {
        match service.reassign(&reader, std::slice::from_ref(&target), &form.to, now()) {
            Ok(moved) => Ok(moved.len()),
            Err(
                crate::service::ServiceError::BadRequest(_)
                | crate::service::ServiceError::Forbidden(_),
            ) => Ok(0),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if moved == 0 {
        return Ok(refused(
            lang,
            &signed,
            StatusCode::NOT_FOUND,
            t(lang, T::NotFound),
            "/console/cases",
        ));
    }
    Ok(Redirect::to(&format!("/console/cases/{case_id}")).into_response())
}

/// Pairs proposed on one page of duplicates.
pub const DUPLICATE_PAIRS_SHOWN: usize = 100;

#[derive(Deserialize, Default)]
struct DuplicatesQuery {
    #[serde(default)]
    marked: String,
}

async fn duplicates_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DuplicatesQuery>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let pairs = blocking(move || {
        let mut out = Vec::new();
        for (a, b) in store.duplicate_candidates(&reader, DUPLICATE_PAIRS_SHOWN)? {
            if let (Some(a), Some(b)) = (store.listed_case(&a)?, store.listed_case(&b)?) {
                out.push((a, b));
            }
        }
        let shown: Vec<&str> = out
            .iter()
            .flat_map(|(a, b)| [a.summary.case_id.as_str(), b.summary.case_id.as_str()])
            .collect();
        store.audit(
            now(),
            &reader.user_id,
            "console.duplicates_viewed",
            &shown.join(" "),
        )?;
        Ok(out)
    })
    .await?;
    let frame = signed.frame(lang, "/console/duplicates");
    let notice = (!query.marked.is_empty()).then(|| t(lang, T::MarkedDistinct));
    Ok(html(
        StatusCode::OK,
        pages::duplicates(&frame, &pairs, notice),
    ))
}

#[derive(Deserialize)]
struct DistinctForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
}

/// "Not the same child": only for two cases the reader may write.
async fn mark_distinct(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<DistinctForm>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    if !csrf_matches(&signed.session.csrf_token, &form.csrf) {
        return Ok(forbidden(lang, &signed));
    }
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let marked = blocking(move || {
        let ids = [form.a.clone(), form.b.clone()];
        if form.a == form.b || !ids.iter().all(|id| crate::storage::valid_case_id(id)) {
            return Ok(false);
        }
        let access = store.case_access(&ids)?;
        let writable = ids.iter().all(|id| {
            access.get(id).is_some_and(|a| {
                policy::write_mode(&reader.subject(), Some(&a.ownership()))
                    == Some(policy::WriteMode::Write)
            })
        });
        if !writable {
            return Ok(false);
        }
        store.mark_distinct(&form.a, &form.b, &reader.user_id, now())?;
        Ok(true)
    })
    .await?;
    if !marked {
        return Ok(refused(
            lang,
            &signed,
            StatusCode::NOT_FOUND,
            t(lang, T::NotFound),
            "/console/duplicates",
        ));
    }
    Ok(Redirect::to("/console/duplicates?marked=1").into_response())
}

#[derive(Deserialize)]
struct MergeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    survivor: String,
    #[serde(default)]
    merged: String,
}

/// "Same child": merges `merged` into `survivor` (both must be the reader's to write), then
/// shows the survivor.
async fn merge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<MergeForm>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    if !csrf_matches(&signed.session.csrf_token, &form.csrf) {
        return Ok(forbidden(lang, &signed));
    }
    let service = state.service.clone();
    let user = signed.user.clone();
    let (survivor, merged) = (form.survivor.clone(), form.merged.clone());
    let outcome = blocking(
        move || match service.merge_cases(&user, &survivor, &merged, now()) {
            Ok(()) => Ok(Ok(())),
            Err(crate::service::ServiceError::Forbidden(why))
            | Err(crate::service::ServiceError::BadRequest(why)) => {
                tracing::info!(why = %why, "console merge refused");
                Ok(Err(()))
            }
            Err(e) => Err(ConsoleError::from(e)),
        },
    )
    .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!(
            "/console/cases/{}?merged=1",
            pages::urlencode(&form.survivor)
        ))
        .into_response()),
        Err(()) => Ok(refused(
            lang,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            t(lang, T::NotMerged),
            "/console/duplicates",
        )),
    }
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

/// Rows of the access log shown per page.
const ACCESS_LOG_PAGE: usize = 100;

#[derive(Deserialize, Default)]
struct AccessLogQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    case: String,
    before: Option<u64>,
}

/// The access log, for officers and admins: who viewed, searched, exported or changed what,
/// filtered by user and by case, newest first.
async fn access_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AccessLogQuery>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    if !matches!(signed.user.role, Role::Officer | Role::Admin) {
        return Ok(forbidden(lang, &signed));
    }
    let filter = pages::AccessLogFilter {
        user: bounded(&query.user),
        case: bounded(&query.case).to_ascii_lowercase(),
    };
    // A case filter that is not a case id matches nothing, rather than every row.
    let bad_case = !filter.case.is_empty() && !crate::storage::valid_case_id(&filter.case);
    let search = AuditQuery {
        actor: (!filter.user.is_empty()).then(|| filter.user.clone()),
        case_id: (!filter.case.is_empty()).then(|| filter.case.clone()),
        action_prefix: None,
        before: query.before,
        limit: ACCESS_LOG_PAGE,
    };
    let store = state.service.store().clone();
    let rows = if bad_case {
        Vec::new()
    } else {
        blocking(move || Ok(store.audit_search(&search)?)).await?
    };
    let older = (rows.len() == ACCESS_LOG_PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let here = format!("/console/access-log?{}", filter.query_string(query.before));
    let frame = signed.frame(lang, &here);
    Ok(html(
        StatusCode::OK,
        pages::access_log(&frame, &filter, &rows, older),
    ))
}

/// Downloads the reader's caseload as CSV or JSON (`export`), streamed. The export is audited
/// before its first byte leaves.
async fn export_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    let Some((kind, format)) = export::parse(&file) else {
        let here = format!("/console/export/{}", pages::urlencode(&file));
        return Ok(refused(
            lang,
            &signed,
            StatusCode::NOT_FOUND,
            t(lang, T::NotFound),
            &here,
        ));
    };
    let store = state.service.store().clone();
    let user_id = signed.user.user_id.clone();
    blocking(move || Ok(store.audit(now(), &user_id, "console.export", &file)?)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let service = state.service.clone();
    let reader = signed.user.clone();
    tokio::task::spawn_blocking(move || {
        // A panic ends the download broken too, never as a file that looks whole.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut send = |chunk: Vec<u8>| tx.blocking_send(Ok(chunk)).is_ok();
            let mut writer = export::Writer::start(kind, format, lang, &mut send);
            match export::write_all(&service, &reader, kind, &mut writer) {
                Ok(()) => writer
                    .finish()
                    .map(|_| ())
                    .map_err(export::ExportError::from),
                Err(e) => Err(e),
            }
        }))
        .unwrap_or_else(|_| Err(export::ExportError::Service("a panic".into())));
        match result {
            Ok(()) | Err(export::ExportError::Gone) => {}
            Err(e) => {
                // The download ends broken, never as a file that looks whole.
                tracing::error!(error = %e, "export");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
            }
        }
    });
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let disposition = format!(
        "attachment; filename=\"{}\"",
        export::file_name(kind, format, &day)
    );
    let mut response =
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Longest audit note the console takes, in characters.
const NOTE_CHARS_MAX: usize = 2_000;

#[derive(Deserialize)]
struct NoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// An audit note, from the case page: a console change like any other, so the server checks it
/// as it checks a phone's (an officer's change may add notes and nothing else), and phones
/// receive it at their next sync.
async fn add_note(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    if !csrf_matches(&signed.session.csrf_token, &form.csrf) {
        return Ok(forbidden(lang, &signed));
    }
    let text = form.text.trim().to_string();
    if text.is_empty() || text.chars().count() > NOTE_CHARS_MAX {
        return Ok(refused(
            lang,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            t(lang, T::NoteRefused),
            "/console/cases",
        ));
    }
    let service = state.service.clone();
    let user = signed.user.clone();
    let target = case_id.clone();
    let outcome = blocking(move || {
        let result = service.console_change(&user, &target, now(), |doc, _, ctx| {
            doc.add_audit_note(&text, ctx)
        });
        change_outcome(result.map(|_| ()), &target, "note")
    })
    .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/console/cases/{case_id}?noted=1")).into_response()),
        Err(status) => {
            let text = if status == StatusCode::NOT_FOUND {
                t(lang, T::NotFound)
            } else {
                t(lang, T::NoteRefused)
            };
            Ok(refused(lang, &signed, status, text, "/console/cases"))
        }
    }
}

#[derive(Deserialize, Default)]
struct IndicatorsQuery {
    #[serde(default)]
    by: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl IndicatorsQuery {
    /// A month bound as YYYY-MM, anything else ignored.
    fn month(text: &str) -> String {
        let t = text.trim();
        let ok = t.len() == 7
            && t.as_bytes()[4] == b'-'
            && t.chars()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit());
        if ok {
            t.to_string()
        } else {
            String::new()
        }
    }
}

/// The reader's indicators, grouped as asked: (rows, totals, by, from, to).
async fn indicator_rows(
    state: &AppState,
    reader: &User,
    lang: Lang,
    query: &IndicatorsQuery,
) -> Result<
    (
        Vec<indicators::Row>,
        indicators::Row,
        indicators::Dimension,
        String,
        String,
    ),
    ConsoleError,
> {
    let by = indicators::Dimension::parse(&query.by);
    let (from, to) = (
        IndicatorsQuery::month(&query.from),
        IndicatorsQuery::month(&query.to),
    );
    let store = state.service.store().clone();
    let reader = reader.clone();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (cells, spellings) = blocking(move || {
        Ok((
            store.indicator_cells(&reader, &today)?,
            store.place_spellings(&reader)?,
        ))
    })
    .await?;
    let forms = state.service.forms();
    let identification = forms.latest(IDENTIFICATION).ok();
    let (rows, total) =
        indicators::rows(&cells, &spellings, by, (&from, &to), identification, lang);
    Ok((rows, total, by, from, to))
}

/// Indicators per province, commune, work sector or month, with a chart, from projections.
async fn indicators_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<IndicatorsQuery>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    let (rows, total, by, from, to) = indicator_rows(&state, &signed.user, lang, &query).await?;
    let here = format!("/console/indicators?by={}&from={from}&to={to}", by.as_str());
    let frame = signed.frame(lang, &here);
    Ok(html(
        StatusCode::OK,
        pages::indicators(&frame, by, (&from, &to), &rows, &total),
    ))
}

/// The same table as CSV.
async fn indicators_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<IndicatorsQuery>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    let (rows, total, by, _, _) = indicator_rows(&state, &signed.user, lang, &query).await?;
    let body = indicators::csv(&rows, &total, by, lang);
    let day = chrono::Utc::now().format("%Y-%m-%d");
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"suivi-indicators-{}-{day}.csv\"",
        by.as_str()
    )) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Stuck referrals shown at most.
const STUCK_SHOWN: usize = 200;

#[derive(Deserialize, Default)]
struct ReferralsQuery {
    days: Option<i64>,
}

/// The project's referrals by service, provider and status with the time spent in each
/// status, and those stuck in one status for longer than `days` (30 unless given).
async fn referrals_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ReferralsQuery>,
) -> Result<Response, ConsoleError> {
    let signed = signed_in(&state, &headers).await?;
    let lang = lang_of(&headers);
    let days = query.days.unwrap_or(30).clamp(1, 3650);
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let now = now();
    let (groups, stuck) = blocking(move || {
        let groups = store.referral_groups(&reader, now)?;
        let stuck = store.stuck_referrals(&reader, now - days * 86_400, STUCK_SHOWN)?;
        let shown: Vec<&str> = stuck.iter().map(|r| r.case_id.as_str()).collect();
        store.audit(
            now,
            &reader.user_id,
            "console.referrals_viewed",
            &shown.join(" "),
        )?;
        Ok((groups, stuck))
    })
    .await?;
    let frame = signed.frame(lang, "/console/referrals");
    Ok(html(
        StatusCode::OK,
        pages::referrals(&frame, &state.service.forms(), &groups, &stuck, days, now),
    ))
}
