//! A case's history and its referral chain, as the case page shows them.

use super::*;

/// One step of a case's referral chain, read from what a change wrote (never from the label
/// a phone gave it).
pub(super) enum Step {
    Identified,
    Referred {
        service: String,
        provider: String,
        transferred: bool,
    },
    Moved {
        from: String,
        to: String,
    },
    Visited {
        date: String,
        services: Vec<String>,
    },
}

/// The chain's steps a history entry holds: identification, each referral (or transfer to the
/// next provider), each status move, each visit with the services it records.
pub(super) fn steps_of(e: &HistoryEntry) -> Vec<Step> {
    let mut steps = Vec::new();
    let value = |path: &str| {
        e.changes
            .iter()
            .find(|c| c.path == path)
            .and_then(|c| c.new.as_ref())
            .map(plain)
            .unwrap_or_default()
    };
    if e.changes
        .iter()
        .any(|c| c.path == "case_id" && c.old.is_none())
    {
        steps.push(Step::Identified);
    }
    for c in &e.changes {
        let parts: Vec<&str> = c.path.split('.').collect();
        match parts[..] {
            ["referrals", id, "status"] => match (&c.old, &c.new) {
                (None, Some(_)) => steps.push(Step::Referred {
                    service: value(&format!("referrals.{id}.service_type")),
                    provider: value(&format!("referrals.{id}.provider")),
                    transferred: e
                        .changes
                        .iter()
                        .any(|c| c.path == format!("referrals.{id}.previous_referral")),
                }),
                (Some(from), Some(to)) => steps.push(Step::Moved {
                    from: plain(from),
                    to: plain(to),
                }),
                _ => {}
            },
            ["followups", id, "visit_date"] if c.old.is_none() => {
                let services = e
                    .changes
                    .iter()
                    .find(|c| c.path == format!("followups.{id}.services_received"))
                    .and_then(|c| c.new.as_ref())
                    .map(|v| match v {
                        Json::Array(items) => items
                            .iter()
                            .filter_map(Json::as_str)
                            .map(str::to_string)
                            .collect(),
                        // A multiple choice reads, in history, as its ids between spaces.
                        other => plain(other)
                            .split_whitespace()
                            .map(str::to_string)
                            .collect(),
                    })
                    .unwrap_or_default();
                steps.push(Step::Visited {
                    date: plain(c.new.as_ref().unwrap_or(&Json::Null)),
                    services,
                });
            }
            _ => {}
        }
    }
    steps
}

/// The referral chain, end to end: each step with who the server verified made it, on which
/// device, the phone's time and the server's.
pub(super) fn chain_section(lang: Lang, forms: &FormRegistry, p: &CasePage<'_>) -> Markup {
    let referral_form = forms.latest(REFERRAL).ok();
    let followup_form = forms.latest(FOLLOWUP).ok();
    let steps: Vec<(Step, &HistoryEntry)> = p
        .history
        .iter()
        .flat_map(|e| steps_of(e).into_iter().map(move |s| (s, e)))
        .collect();
    html! {
        section.chain id="chain" {
            h2 { (t(lang, T::Chain)) }
            ol.steps {
                @for (step, e) in &steps {
                    li.step {
                        strong {
                            @match step {
                                Step::Identified => { (t(lang, T::Identification)) }
                                Step::Referred { service, provider, transferred } => {
                                    @if *transferred { (t(lang, T::TransferredTo)) } @else { (t(lang, T::ReferredTo)) }
                                    " " bdi { (provider) } " (" (choice_label(lang, referral_form, "service_type", service)) ")"
                                }
                                Step::Moved { from, to } => { (status_label(lang, from)) " → " (status_label(lang, to)) }
                                Step::Visited { date, services } => {
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
