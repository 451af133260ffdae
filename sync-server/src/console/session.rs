//! Signing in and out, the session a request carries (`Signed`), the reader's language, and
//! the CSRF check every form passes.

use super::*;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The reader's language, from its cookie (French when none): an extractor.
pub(super) struct LangOf(pub(super) Lang);

impl<S: Send + Sync> FromRequestParts<S> for LangOf {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(LangOf(lang_of(&parts.headers)))
    }
}

/// A page needs a live session: without one, the request is sent to sign in.
impl FromRequestParts<AppState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        signed_in(state, &parts.headers).await
    }
}

/// A form that carries the session's CSRF token.
pub(super) trait CsrfToken {
    fn csrf(&self) -> &str;
}

/// A signed-in user's form whose CSRF token is the session's own: the session is checked
/// first (no session: sign in), then the form is read, then its token compared in constant
/// time (a forged or tokenless form gets the "forbidden" page and changes nothing).
pub(super) struct CheckedForm<T> {
    pub(super) signed: Signed,
    pub(super) lang: Lang,
    pub(super) form: T,
}

impl<T> FromRequest<AppState> for CheckedForm<T>
where
    T: DeserializeOwned + CsrfToken + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let lang = lang_of(&parts.headers);
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !csrf_matches(&signed.session.csrf_token, form.csrf()) {
            return Err(forbidden(lang, &signed));
        }
        Ok(CheckedForm { signed, lang, form })
    }
}

/// The forms the console posts, each with its CSRF token.
macro_rules! csrf_forms {
    ($($form:ty),* $(,)?) => {
        $(impl CsrfToken for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}
pub(super) use csrf_forms;

/// A signed-in console user.
pub(super) struct Signed {
    pub(super) user: User,
    pub(super) session: ConsoleSession,
    pub(super) zone: suivi_core::words::Zone,
    /// A refusal to tell inline on the page rendered next (see `refused_inline`).
    pub(super) alert: Option<&'static str>,
}

impl Signed {
    /// This user, with a refusal for the page rendered next to show at its top.
    pub(super) fn alerted(self, text: &'static str) -> Self {
        Signed {
            alert: Some(text),
            ..self
        }
    }

    /// The page frame for this user, on page `here`.
    pub(super) fn frame<'a>(&'a self, lang: Lang, here: &'a str) -> Frame<'a> {
        Frame {
            lang,
            zone: self.zone,
            user: Some(&self.user),
            csrf: &self.session.csrf_token,
            here,
            alert: self.alert,
        }
    }
}

/// The session the cookie names, if it is live: expired ones are ended here, and a live one is
/// touched (at most once a minute, to keep writes down). Agents never get one, but a session of
/// a user since made an agent is refused too.
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Signed, ConsoleError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(ConsoleError::SignIn);
    };
    let token_hash = auth::sha256_hex(token);
    let store = state.service.store().clone();
    let zone = state.zone;
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
        Ok(Signed {
            user,
            session,
            zone,
            alert: None,
        })
    })
    .await
}

pub(super) fn csrf_matches(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

pub(super) async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    render_login(&state, lang_of(&headers), StatusCode::OK, None, "")
}

/// The login form with a fresh double-submit token (there is no session yet to hold one).
pub(super) fn render_login(
    state: &AppState,
    lang: Lang,
    status: StatusCode,
    message: Option<&str>,
    user: &str,
) -> Response {
    let csrf = auth::new_token();
    let frame = Frame {
        lang,
        zone: state.zone,
        user: None,
        csrf: &csrf,
        here: "/console/login",
        alert: None,
    };
    let mut response = html(status, pages::login(&frame, message, user));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, Some(3600)),
    );
    response
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) user: String,
    #[serde(default)]
    pub(super) password: String,
}

pub(super) enum LoginOutcome {
    Wait(i64),
    Refused,
    Agent,
    Session(String),
}

pub(super) async fn login(
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
pub(super) fn wait_page(state: &AppState, lang: Lang, secs: i64, user: &str) -> Response {
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
pub(super) fn wait_text(lang: Lang, secs: i64) -> String {
    if secs < 120 {
        format!("{secs} {}", t(lang, T::Seconds))
    } else {
        format!("{} {}", (secs + 59) / 60, t(lang, T::Minutes))
    }
}

/// The address a login try is counted against: IPv6 by its /64, which one household or phone
/// gets whole.
pub(super) fn ip_key(peer: SocketAddr) -> String {
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
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

/// A form for an action that wipes, moves or merges: without `confirmed=yes` it shows what the
/// action would do, and does nothing.
#[derive(Deserialize)]
pub(super) struct ConfirmForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) confirmed: String,
}

impl ConfirmForm {
    pub(super) fn confirmed(&self) -> bool {
        self.confirmed == "yes"
    }
}

pub(super) async fn logout(
    State(state): State<AppState>,
    CheckedForm { signed, .. }: CheckedForm<CsrfForm>,
) -> Result<Response, ConsoleError> {
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

#[derive(Deserialize)]
pub(super) struct Back {
    #[serde(default)]
    pub(super) back: String,
}

/// Sets the language and returns to the page it was chosen on (a console path only: never a
/// redirect to another site).
pub(super) async fn set_lang(
    State(state): State<AppState>,
    Path(lang): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    let lang = text::tag(Lang::from_tag(&lang).app());
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

csrf_forms!(CsrfForm, ConfirmForm);
