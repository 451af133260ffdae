//! The supervisor's team pages: possible duplicates, agents and their devices.

use super::*;
use crate::console::overview::{AgentRow, SortBy, Waiting};

/// Pairs of cases that may be one child registered twice, side by side, each with a form to
/// say they are two children.
pub fn duplicates(
    frame: &Frame<'_>,
    pairs: &[(ListedCase, ListedCase)],
    may_act: bool,
    notice: Option<&str>,
) -> Markup {
    let lang = frame.lang;
    let side = |c: &ListedCase| {
        let s = &c.summary;
        html! {
            td {
                a.case href={ "/console/cases/" (s.case_id) } { bdi { (s.first_name) " " (s.last_name) } }
                br;
                bdi { (s.village.as_deref().unwrap_or_default()) ", " (s.commune.as_deref().unwrap_or_default()) }
                @if let Some(y) = s.birth_year { " · " (t(lang, T::BirthYear)) " " (y) }
                br;
                (t(lang, T::Agent)) " " (c.created_by) " · " (frame.zone.date_time(lang, utc(c.updated_at)))
            }
        }
    };
    page(
        frame,
        t(lang, T::Duplicates),
        html! {
            h1 { (t(lang, T::Duplicates)) }
            p.meta { (t(lang, T::DuplicatesHint)) }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            @if pairs.is_empty() {
                p { (t(lang, T::NoDuplicates)) }
            } @else {
                table.cases.duplicates {
                    tbody {
                        @for (a, b) in pairs {
                            tr {
                                (side(a)) (side(b))
                                @if !may_act {
                                    td { p.meta { (t(lang, T::OnlySupervisorsMerge)) } }
                                } @else {
                                td {
                                    @for (keep, away) in [(a, b), (b, a)] {
                                        form.merge method="post" action="/console/duplicates/merge" {
                                            input type="hidden" name="csrf" value=(frame.csrf);
                                            input type="hidden" name="survivor" value=(keep.summary.case_id);
                                            input type="hidden" name="merged" value=(away.summary.case_id);
                                            button type="submit" {
                                                (t(lang, T::MergeKeep)) " : " bdi { (keep.summary.first_name) " " (keep.summary.last_name) }
                                                " (" (keep.created_by) ", " (frame.zone.day(lang, utc(keep.updated_at))) ", "
                                                (keep.summary.referral_count) " " (t(lang, T::Referrals)) ")"
                                            }
                                        }
                                    }
                                    form.distinct method="post" action="/console/duplicates/distinct" {
                                        input type="hidden" name="csrf" value=(frame.csrf);
                                        input type="hidden" name="a" value=(a.summary.case_id);
                                        input type="hidden" name="b" value=(b.summary.case_id);
                                        button type="submit" { (t(lang, T::NotSameChild)) }
                                    }
                                }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// What a phone truthfully says of the work waiting on it: a count always with the time it was
/// reported, "unknown since" once the phone has been silent too long, never a bare 0.
pub fn waiting_text(frame: &Frame<'_>, waiting: &Waiting) -> Markup {
    let lang = frame.lang;
    let count =
        |c: &Option<u64>| c.map_or_else(|| t(lang, T::OldApp).to_string(), |n| n.to_string());
    html! {
        @match waiting {
            Waiting::Never => { (t(lang, T::Never)) }
            Waiting::Revoked => { (t(lang, T::Revoked)) }
            Waiting::Reported { count: Some(n), at } => {
                (n) " " (t(lang, T::WaitingAsOf)) " " bdi { (frame.zone.date_time(lang, utc(*at))) }
            }
            Waiting::Reported { count: None, at } => {
                (t(lang, T::OldApp)) " · " bdi { (frame.zone.date_time(lang, utc(*at))) }
            }
            Waiting::UnknownSince { count: c, at } => {
                span.overdue { (t(lang, T::UnknownSince)) " " bdi { (frame.zone.day(lang, utc(*at))) } }
                " (" (count(c)) " " (t(lang, T::AtTheTime)) ")"
            }
        }
    }
}

/// What revoking a phone does, for the confirmation: it wipes, and what is lost with it, as
/// truthfully as its last report allows.
pub fn revoke_effect(
    frame: &Frame<'_>,
    device: &crate::storage::DeviceStatus,
    now: i64,
) -> Vec<String> {
    let lang = frame.lang;
    let at = |unix: i64| frame.zone.date_time(lang, utc(unix));
    let mut lines = vec![t(lang, T::RevokeWipes).to_string()];
    match Waiting::of(device, now) {
        Waiting::Reported {
            count: Some(0),
            at: when,
        } => lines.push(format!(
            "{} {}.",
            t(lang, T::RevokeNothingReported),
            at(when)
        )),
        Waiting::Reported {
            count: Some(n),
            at: when,
        } => lines.push(format!(
            "{n} {} {}.",
            t(lang, T::RevokeLosesReported),
            at(when)
        )),
        Waiting::Reported {
            count: None,
            at: when,
        } => lines.push(format!("{} · {}", t(lang, T::OldApp), at(when))),
        Waiting::UnknownSince { count, at: when } => lines.push(format!(
            "{} {} ({} {}).",
            t(lang, T::RevokeLosesUnknown),
            frame.zone.day(lang, utc(when)),
            count.map_or_else(|| "?".to_string(), |n| n.to_string()),
            t(lang, T::AtTheTime)
        )),
        Waiting::Never => lines.push(t(lang, T::RevokeLosesNever).to_string()),
        Waiting::Revoked => {}
    }
    lines.push(t(lang, T::NotUndone).to_string());
    lines.push(t(lang, T::Audited).to_string());
    lines
}

/// What a merge does, for the confirmation: the record kept and the one folded into it, each
/// by its child, agent, place and last change.
pub fn merge_effect(frame: &Frame<'_>, kept: &ListedCase, folded: &ListedCase) -> Vec<String> {
    let lang = frame.lang;
    let describe = |c: &ListedCase| {
        let s = &c.summary;
        format!(
            "{} {} — {}, {} · {}",
            s.first_name,
            s.last_name,
            c.created_by,
            s.village.as_deref().unwrap_or("?"),
            frame.zone.date_time(lang, utc(c.updated_at))
        )
    };
    vec![
        format!(
            "{}{}{}",
            t(lang, T::MergeKeeps),
            suivi_core::words::colon(lang),
            describe(kept)
        ),
        format!(
            "{}{}{}",
            t(lang, T::MergeFolds),
            suivi_core::words::colon(lang),
            describe(folded)
        ),
        t(lang, T::Audited).to_string(),
    ]
}

/// One record of a merge as the side-by-side view reads it.
#[derive(Debug, Clone, Default)]
pub struct MergeSide {
    pub identification: Record,
    pub form_version: Option<u32>,
    pub referrals: Vec<Referral>,
    pub followups: Vec<FollowUp>,
}

impl MergeSide {
    /// What a case document holds, as far as it reads (a part that does not read is left empty:
    /// the page still shows the other).
    pub fn read(doc: &suivi_core::CaseDoc, forms: &FormRegistry) -> MergeSide {
        MergeSide {
            identification: doc.identification(forms).unwrap_or_default(),
            form_version: doc.identification_form_version().ok(),
            referrals: doc.referrals(forms).unwrap_or_default(),
            followups: doc.followups(forms).unwrap_or_default(),
        }
    }
}

/// Both records of a merge side by side: every identification field each holds, in the
/// reader's words, a row marked where they differ; then each one's agent, last change,
/// referrals and visits. The record kept is on the reading side's first column.
pub fn merge_sides(
    frame: &Frame<'_>,
    forms: &FormRegistry,
    sides: [(&ListedCase, &MergeSide); 2],
) -> Markup {
    let lang = frame.lang;
    let form = sides
        .iter()
        .find_map(|(_, r)| {
            r.form_version
                .and_then(|v| forms.get(IDENTIFICATION, v).ok())
        })
        .or_else(|| forms.latest(IDENTIFICATION).ok());
    let fields: Vec<&suivi_core::forms::Field> = form
        .map(|f| {
            f.fields
                .iter()
                .filter(|field| {
                    sides
                        .iter()
                        .any(|(_, r)| r.identification.contains_key(&field.id))
                })
                .collect()
        })
        .unwrap_or_default();
    let value = |r: &MergeSide, field: &suivi_core::forms::Field| -> String {
        r.identification
            .get(&field.id)
            .map(|v| shown_value(lang, field, v))
            .unwrap_or_default()
    };
    let referrals = |r: &MergeSide| -> String {
        let referral_form = forms.latest(REFERRAL).ok();
        let each: Vec<String> = r
            .referrals
            .iter()
            .map(|x| {
                let service = x
                    .fields
                    .get("service_type")
                    .and_then(Json::as_str)
                    .map(|s| choice_label(lang, referral_form, "service_type", s))
                    .unwrap_or_default();
                format!("{service} ({})", status_label(lang, &x.status))
            })
            .collect();
        format!("{} — {}", r.referrals.len(), each.join(", "))
    };
    let (k, f) = (sides[0], sides[1]);
    html! {
        div.scroll {
            table.merge-sides {
                thead { tr {
                    th {}
                    th { (t(lang, T::MergeKeeps)) }
                    th { (t(lang, T::MergedAway)) }
                } }
                tbody {
                    @for field in &fields {
                        @let (a, b) = (value(k.1, field), value(f.1, field));
                        tr class=[(a != b).then_some("differs")] {
                            th { (field.label.get(lang)) @if a != b { " " span.differs-mark title=(t(lang, T::Differs)) { "≠" } } }
                            td { bdi { (a) } }
                            td { bdi { (b) } }
                        }
                    }
                    tr { th { (t(lang, T::Agent)) } td { (k.0.created_by) } td { (f.0.created_by) } }
                    tr { th { (t(lang, T::Updated)) }
                        td { (frame.zone.date_time(lang, utc(k.0.updated_at))) }
                        td { (frame.zone.date_time(lang, utc(f.0.updated_at))) } }
                    tr { th { (t(lang, T::Referrals)) } td { (referrals(k.1)) } td { (referrals(f.1)) } }
                    tr { th { (t(lang, T::FollowUps)) } td { (k.1.followups.len()) } td { (f.1.followups.len()) } }
                }
            }
        }
    }
}

/// The agents of the reader's scope, one row each, sortable by the column headers, each with
/// its phones; then every device, with a revoke button where the reader may.
pub fn agents(
    frame: &Frame<'_>,
    rows: &[AgentRow],
    sort: SortBy,
    devices: &[crate::storage::DeviceStatus],
    may_revoke: bool,
    now: i64,
    notice: Option<&str>,
) -> Markup {
    let lang = frame.lang;
    let header = |by: SortBy, label: &str| {
        html! {
            th aria-sort=[(by == sort).then_some("descending")] {
                a href={ "/console/agents?sort=" (by.name()) } { (label) }
            }
        }
    };
    page(
        frame,
        t(lang, T::Agents),
        html! {
            h1 { (t(lang, T::Agents)) }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            h2 { (t(lang, T::AgentOverview)) }
            table.cases.agents {
                thead { tr {
                    (header(SortBy::Agent, t(lang, T::Agent)))
                    (header(SortBy::Cases, t(lang, T::CasesHeld)))
                    (header(SortBy::Overdue, t(lang, T::FollowUpsOverdue)))
                    (header(SortBy::Conflicts, t(lang, T::Conflicts)))
                    (header(SortBy::Stuck, t(lang, T::Stuck)))
                    (header(SortBy::LastContact, t(lang, T::LastContact)))
                    th { (t(lang, T::Phones)) }
                } }
                tbody {
                    @for r in rows {
                        tr class=[r.silent().then_some("stale")] {
                            td.name data-label=(t(lang, T::Agent)) { bdi { (r.agent) } " · " bdi { (r.team) } }
                            td.num data-label=(t(lang, T::CasesHeld)) { (r.cases) }
                            td.num data-label=(t(lang, T::FollowUpsOverdue)) { (r.overdue) }
                            td.num data-label=(t(lang, T::Conflicts)) { (r.conflicts) }
                            td.num data-label=(t(lang, T::Stuck)) { (r.stuck) }
                            td data-label=(t(lang, T::LastContact)) {
                                @match r.last_contact { Some(at) => bdi { (frame.zone.date_time(lang, utc(at))) }, None => (t(lang, T::Never)) }
                                @if r.silent() { " " span.overdue { (t(lang, T::SilentAgent)) } }
                            }
                            td data-label=(t(lang, T::Phones)) { ul.phones { @for (d, waiting) in &r.phones {
                                li { bdi { (d.device.name) } " : " (waiting_text(frame, waiting)) }
                            } } }
                        }
                    }
                }
            }
            h2 { (t(lang, T::Devices)) }
            table.cases.devices {
                thead { tr {
                    th { (t(lang, T::Agent)) } th { (t(lang, T::Team)) } th { (t(lang, T::Devices)) }
                    th { (t(lang, T::LastSync)) } th { (t(lang, T::AppVersion)) } th { (t(lang, T::Waiting)) } th {}
                } }
                tbody {
                    @for d in devices {
                        @let waiting = Waiting::of(d, now);
                        @let stale = matches!(waiting, Waiting::UnknownSince { .. } | Waiting::Never);
                        tr class=[stale.then_some("stale")] {
                            td.name data-label=(t(lang, T::Agent)) { (d.device.user_id) " · " (role_label(lang, d.role)) }
                            td data-label=(t(lang, T::Team)) { (d.team) }
                            td data-label=(t(lang, T::Devices)) { bdi { (d.device.name) } " " code dir="ltr" { (d.device.device_id) } }
                            td data-label=(t(lang, T::LastSync)) {
                                @match d.last_sync_at { Some(at) => bdi { (frame.zone.date_time(lang, utc(at))) }, None => (t(lang, T::Never)) }
                                @if stale { " " span.overdue { (t(lang, T::Stale)) } }
                            }
                            td data-label=(t(lang, T::AppVersion)) { @match (&d.app_version, d.last_sync_at) {
                                (Some(v), _) => bdi { (v) },
                                (None, Some(_)) => (t(lang, T::OldApp)),
                                (None, None) => "—",
                            } }
                            td data-label=(t(lang, T::Waiting)) { (waiting_text(frame, &waiting)) }
                            td {
                                @if d.device.wiped { (t(lang, T::Wiped)) }
                                @else if d.device.revoked { (t(lang, T::Revoked)) }
                                @else if may_revoke {
                                    form.revoke method="post" action={ "/console/devices/" (d.device.device_id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(frame.csrf);
                                        button type="submit" { (t(lang, T::Revoke)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
