//! A case's history and its referral chain (read by core), as the case page shows them.

use super::*;
use std::collections::HashMap;

use suivi_core::case_doc::{referral_chain, tell_history, ChainStep, Told};

/// The referral chain, end to end: each step with who the server verified made it, on which
/// device, the phone's time and the server's.
pub(super) fn chain_section(
    prov: &Provenance<'_>,
    forms: &FormRegistry,
    p: &CasePage<'_>,
) -> Markup {
    let lang = prov.lang;
    let referral_form = forms.latest(REFERRAL).ok();
    let followup_form = forms.latest(FOLLOWUP).ok();
    let steps: Vec<(ChainStep, &HistoryEntry)> = referral_chain(p.history)
        .into_iter()
        .map(|link| (link.step, &p.history[link.entry]))
        .collect();
    html! {
        section.chain id="chain" {
            h2 { (t(lang, T::Chain)) }
            ol.steps {
                @for (step, e) in &steps {
                    li.step {
                        strong {
                            @match step {
                                ChainStep::Identified => { (t(lang, T::Identification)) }
                                ChainStep::Referred { service, provider, previous_referral, .. } => {
                                    @if previous_referral.is_some() { (t(lang, T::TransferredTo)) } @else { (t(lang, T::ReferredTo)) }
                                    " " bdi { (provider) } " (" (choice_label(lang, referral_form, "service_type", service)) ")"
                                }
                                ChainStep::Moved { from, to, .. } => { (status_label(lang, from)) " " (suivi_core::words::arrow(lang)) " " (status_label(lang, to)) }
                                ChainStep::Visited { date, services, .. } => {
                                    (t(lang, T::Visit)) " " (suivi_core::words::date_text(lang, date))
                                    @if !services.is_empty() {
                                        " · " (t(lang, T::ServicesReceived)) " : "
                                        (services.iter().map(|s| choice_label(lang, followup_form, "services_received", s)).collect::<Vec<_>>().join(", "))
                                    }
                                }
                            }
                        }
                        " · " (origin_line(prov, e))
                    }
                }
            }
        }
    }
}

/// What a history line says besides the entry: the reader's language and zone, who the
/// server verified made each change, and the phones' names.
pub struct Provenance<'a> {
    pub lang: Lang,
    pub zone: Zone,
    pub origins: &'a [ChangeOrigin],
    /// Device id → the name its phone gave at enrollment.
    pub phones: &'a HashMap<String, String>,
    /// Case id → its child's name, for the other records a history names.
    pub cases: &'a suivi_core::case_doc::CaseNames,
}

impl Provenance<'_> {
    /// A moment in the reader's words and the project's zone, isolated in an Arabic line.
    pub fn when(&self, at: chrono::DateTime<Utc>) -> Markup {
        html! { bdi { (self.zone.date_time(self.lang, at)) } }
    }

    /// A phone by its name, its id beside it.
    pub fn phone(&self, device_id: &str) -> Markup {
        html! {
            @match self.phones.get(device_id) {
                Some(name) => { bdi { (name) } " (" code { (device_id) } ")" }
                None => { code { (device_id) } }
            }
        }
    }
}

/// Who the server verified made a change (user, phone or console, when received), and the
/// phone's own time for it.
pub(super) fn origin_line(p: &Provenance<'_>, e: &HistoryEntry) -> Markup {
    let lang = p.lang;
    let origin = p.origins.iter().find(|o| o.hash == e.hash);
    html! {
        @match origin {
            Some(o) => {
                span.verified title=(t(lang, T::Verified)) { "✔ " (t(lang, T::Verified)) ": " bdi { (o.user_id) } } " · "
                @if o.device_id == crate::storage::console_device_id(&o.user_id) {
                    strong.console { (t(lang, T::InTheConsole)) } " · "
                } @else {
                    (t(lang, T::Device)) " " (p.phone(&o.device_id)) " · "
                }
                (t(lang, T::ReceivedAt)) " " (p.when(utc(o.received_at))) " · "
            }
            None => { span.unverified { (t(lang, T::NotVerified)) } " · " bdi { (e.user.as_deref().unwrap_or("?")) } " · " }
        }
        (t(lang, T::DeviceTime)) " " (p.when(e.at))
    }
}

/// One change as the reader reads it: what happened, the values it wrote by their labels, who
/// made it; the document paths one click away.
pub(super) fn history_entry(p: &Provenance<'_>, e: &HistoryEntry, told: &Told) -> Markup {
    let lang = p.lang;
    html! {
        li {
            p {
                strong.told { bdi { (told.headline) } } " · "
                (origin_line(p, e))
            }
            @if !told.details.is_empty() {
                ul.fields { @for d in &told.details { li { bdi { (d) } } } }
            }
            @if !e.changes.is_empty() {
                details.raw {
                    summary { (t(lang, T::RawPaths)) " (" (e.action.as_deref().unwrap_or("?")) ")" }
                    ul { @for c in &e.changes {
                        li dir="ltr" { code { (c.path) } ": " (c.old.as_ref().map(plain).unwrap_or_default()) " → " (c.new.as_ref().map(plain).unwrap_or_default()) }
                    } }
                }
            }
        }
    }
}

/// A history, each entry told in the reader's words.
pub(super) fn history_list(
    p: &Provenance<'_>,
    forms: &FormRegistry,
    history: &[HistoryEntry],
) -> Markup {
    let told = tell_history(history, forms, p.lang, p.cases);
    html! {
        ol { @for (e, told) in history.iter().zip(&told) { (history_entry(p, e, told)) } }
    }
}
