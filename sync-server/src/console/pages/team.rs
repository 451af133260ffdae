//! The supervisor's team pages: possible duplicates, agents and their devices.

use super::*;

/// Pairs of cases that may be one child registered twice, side by side, each with a form to
/// say they are two children.
pub fn duplicates(
    frame: &Frame<'_>,
    pairs: &[(ListedCase, ListedCase)],
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
                (t(lang, T::Agent)) " " (c.created_by) " · " (when(c.updated_at))
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
                                td {
                                    @for (keep, away) in [(a, b), (b, a)] {
                                        form.merge method="post" action="/console/duplicates/merge" {
                                            input type="hidden" name="csrf" value=(frame.csrf);
                                            input type="hidden" name="survivor" value=(keep.summary.case_id);
                                            input type="hidden" name="merged" value=(away.summary.case_id);
                                            button type="submit" { (t(lang, T::MergeKeep)) " : " bdi { (keep.summary.first_name) " " (keep.summary.last_name) } " (" (keep.created_by) ")" }
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
        },
    )
}

/// Days without a sync after which a device is flagged.
pub const STALE_DAYS: i64 = 7;

/// The agents and devices of the reader's scope: last sync, app version, cases waiting on the
/// device, flagged after `STALE_DAYS` without a sync; a revoke button where the reader may.
pub fn agents(
    frame: &Frame<'_>,
    devices: &[crate::storage::DeviceStatus],
    may_revoke: bool,
    now: i64,
    notice: Option<&str>,
) -> Markup {
    let lang = frame.lang;
    page(
        frame,
        t(lang, T::Agents),
        html! {
            h1 { (t(lang, T::Agents)) }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            table.cases.devices {
                thead { tr {
                    th { (t(lang, T::Agent)) } th { (t(lang, T::Team)) } th { (t(lang, T::Devices)) }
                    th { (t(lang, T::LastSync)) } th { (t(lang, T::AppVersion)) } th { (t(lang, T::Waiting)) } th {}
                } }
                tbody {
                    @for d in devices {
                        @let stale = d.last_sync_at.is_none_or(|at| at < now - STALE_DAYS * 86_400);
                        tr class=[(stale && !d.device.revoked).then_some("stale")] {
                            td { (d.device.user_id) " · " (d.role.as_str()) }
                            td { (d.team) }
                            td { bdi { (d.device.name) } " " code { (d.device.device_id) } }
                            td {
                                @match d.last_sync_at { Some(at) => (when(at)), None => (t(lang, T::Never)) }
                                @if stale && !d.device.revoked { " " span.overdue { (t(lang, T::Stale)) } }
                            }
                            td { @match (&d.app_version, d.last_sync_at) {
                                (Some(v), _) => bdi { (v) },
                                (None, Some(_)) => (t(lang, T::OldApp)),
                                (None, None) => "—",
                            } }
                            td { @if let Some(w) = d.waiting_cases { (w) } }
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
