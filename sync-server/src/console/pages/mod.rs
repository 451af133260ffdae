//! The console's pages, rendered on the server with maud: every value typed on a phone goes
//! through maud's escaping (`(value)`), never `PreEscaped`, so a name holding HTML shows as text.

use chrono::{TimeZone, Utc};
use maud::{html, Markup, DOCTYPE};
use serde_json::Value as Json;
use suivi_core::case_doc::{Conflict, FollowUp, HistoryEntry, Referral};
use suivi_core::forms::{
    FieldType, FormDefinition, FormRegistry, FOLLOWUP, IDENTIFICATION, REFERRAL,
};
use suivi_core::words::Zone;
use suivi_core::{Lang, Record};

use super::text::{dir, t, tag, T};
use crate::evidence::CaseEvidence;
use crate::storage::{AuditRow, CaseList, CaseSort, ChangeOrigin, ListedCase, Role, User};
mod case;
mod caseload;
mod closure;
mod confirm;
mod history;
mod officer;
mod report;
mod team;
pub use case::*;
pub use caseload::*;
pub use closure::*;
pub use confirm::*;
use history::*;
pub use officer::*;
pub use report::*;
pub use team::*;

/// What every signed-in page shows in its header.
pub struct Frame<'a> {
    pub lang: Lang,
    /// The project's time zone, for the times the page shows.
    pub zone: Zone,
    pub user: Option<&'a User>,
    pub csrf: &'a str,
    /// This page's path and query, for the language links to come back to.
    pub here: &'a str,
    /// Why the action just tried was refused, told at the top of the page it came from.
    pub alert: Option<&'a str>,
}

pub fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let lang = frame.lang;
    html! {
        (DOCTYPE)
        html lang=(tag(lang)) dir=(dir(lang)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t(lang, T::Title)) }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header {
                    a.brand href="/console/cases" { "Suivi" }
                    @if frame.user.is_some() {
                        a href="/console/cases?conflicts=1" { (t(lang, T::Conflicts)) }
                        a href="/console/duplicates" { (t(lang, T::Duplicates)) }
                        a href="/console/agents" { (t(lang, T::Agents)) }
                    }
                    @if frame.user.is_some() {
                        a href="/console/referrals" { (t(lang, T::ReferralViews)) }
                        a href="/console/indicators" { (t(lang, T::Indicators)) }
                        a href="/console/report" { (t(lang, T::Report)) }
                    }
                    @if frame.user.is_some_and(|u| matches!(u.role, Role::Officer | Role::Admin)) {
                        a href="/console/access-log" { (t(lang, T::AccessLog)) }
                    }
                    nav.langs aria-label=(t(lang, T::Language)) {
                        @for (l, name) in [(Lang::Fr, "Français"), (Lang::En, "English"), (Lang::Ar, "العربية")] {
                            @if l == lang {
                                span.current lang=(tag(l)) { (name) }
                            } @else {
                                a lang=(tag(l)) href={ "/console/lang/" (tag(l)) "?back=" (urlencode(frame.here)) } { (name) }
                            }
                        }
                    }
                    @if let Some(user) = frame.user {
                        span.who { (user.user_id) " · " (role_label(lang, user.role)) " · " (t(lang, T::Team)) " " (user.team) }
                        form.logout method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(frame.csrf);
                            button type="submit" { (t(lang, T::SignOut)) }
                        }
                    }
                }
                main {
                    @if let Some(alert) = frame.alert { p.error role="alert" { (alert) } }
                    (body)
                }
            }
        }
    }
}

pub fn login(frame: &Frame<'_>, message: Option<&str>, user: &str) -> Markup {
    let lang = frame.lang;
    page(
        frame,
        t(lang, T::SignIn),
        html! {
            h1 { (t(lang, T::SignIn)) }
            @if let Some(message) = message {
                p.error role="alert" { (message) }
            }
            form.login method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(frame.csrf);
                label { (t(lang, T::User)) input name="user" autocomplete="username" required value=(user); }
                label { (t(lang, T::Password)) input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { (t(lang, T::SignIn)) }
            }
        },
    )
}

/// A refusal on the page it came from: what happened, and the way back.
pub fn message_back(
    frame: &Frame<'_>,
    title: &str,
    text: &str,
    (back, label): (&str, &str),
) -> Markup {
    page(
        frame,
        title,
        html! {
            h1 { (title) }
            p.error role="alert" { (text) }
            p { a.back href=(back) { (label) } }
        },
    )
}

pub use suivi_core::case_doc::plain;

pub use suivi_core::words::status_label;

/// A role as the reader says it.
pub fn role_label(lang: Lang, role: Role) -> &'static str {
    let (fr, en, ar) = match role {
        Role::Agent => ("agent", "agent", "عون"),
        Role::Supervisor => ("superviseur", "supervisor", "مشرف"),
        Role::Officer => ("chargé de projet", "project officer", "مسؤول المشروع"),
        Role::Admin => ("administrateur", "administrator", "مدير النظام"),
    };
    match lang {
        Lang::Fr | Lang::Other(_) => fr,
        Lang::En => en,
        Lang::Ar => ar,
    }
}

/// A class name from a known word: anything else becomes `other`, so phone data never shapes
/// the markup beyond text.
fn css_word(word: &str) -> &str {
    if !word.is_empty()
        && word.len() <= 24
        && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    {
        word
    } else {
        "other"
    }
}

/// A stored Unix time as a moment (the epoch for one out of range).
pub(super) fn utc(unix: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).single().unwrap_or_default()
}

/// A server time, left to right in an Arabic page too.
fn when(unix: i64) -> Markup {
    let text = utc(unix).format("%Y-%m-%d %H:%M UTC").to_string();
    html! { span dir="ltr" { (text) } }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The stylesheet, embedded in the binary (no CDN: district offices are offline often).
pub const STYLESHEET: &str = include_str!("../console.css");
