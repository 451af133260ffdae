//! A case's history and its referral chain (read by core), as the case page shows them.

use super::*;
use suivi_core::case_doc::{referral_chain, ChainStep};

/// The referral chain, end to end: each step with who the server verified made it, on which
/// device, the phone's time and the server's.
pub(super) fn chain_section(lang: Lang, forms: &FormRegistry, p: &CasePage<'_>) -> Markup {
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
                                ChainStep::Moved { from, to, .. } => { (status_label(lang, from)) " → " (status_label(lang, to)) }
                                ChainStep::Visited { date, services, .. } => {
                                    (t(lang, T::Visit)) " " span dir="ltr" { (date) }
                                    @if !services.is_empty() {
                                        " · " (t(lang, T::ServicesReceived)) " : "
                                        (services.iter().map(|s| choice_label(lang, followup_form, "services_received", s)).collect::<Vec<_>>().join(", "))
                                    }
                                }
                            }
                        }
                        " · " (origin_line(lang, e, p.origins))
                    }
                }
            }
        }
    }
}

/// Who the server verified made a change (user, device or console, when received), and the
/// phone's own time for it.
pub(super) fn origin_line(lang: Lang, e: &HistoryEntry, origins: &[ChangeOrigin]) -> Markup {
    let origin = origins.iter().find(|o| o.hash == e.hash);
    html! {
        @match origin {
            Some(o) => {
                span.verified title=(t(lang, T::Verified)) { "✔ " (t(lang, T::Verified)) ": " (o.user_id) } " · "
                @if o.device_id == crate::storage::console_device_id(&o.user_id) {
                    strong.console { (t(lang, T::InTheConsole)) } " · "
                } @else {
                    (t(lang, T::Device)) " " code { (o.device_id) } " · "
                }
                (t(lang, T::ReceivedAt)) " " (when(o.received_at)) " · "
            }
            None => { span.unverified { (t(lang, T::NotVerified)) } " · " (e.user.as_deref().unwrap_or("?")) " · " }
        }
        (t(lang, T::DeviceTime)) " " span dir="ltr" { (e.at.format("%Y-%m-%d %H:%M UTC")) }
    }
}

pub(super) fn history_entry(lang: Lang, e: &HistoryEntry, origins: &[ChangeOrigin]) -> Markup {
    html! {
        li {
            p {
                strong { (e.action.as_deref().unwrap_or("?")) } " · "
                (origin_line(lang, e, origins))
            }
            @if !e.changes.is_empty() {
                ul.fields { @for c in &e.changes {
                    li { code { (c.path) } ": " (c.old.as_ref().map(plain).unwrap_or_default()) " → " (c.new.as_ref().map(plain).unwrap_or_default()) }
                } }
            }
        }
    }
}
