//! The officer's pages: the access log, indicators, referral views.

use super::*;

/// The access log's filters, as typed.
pub struct AccessLogFilter {
    pub user: String,
    /// A case id or a child's name.
    pub case: String,
    /// An `ACTION_KINDS` key, or empty for any.
    pub action: String,
    /// Days (YYYY-MM-DD), or empty.
    pub from: String,
    pub to: String,
}

impl AccessLogFilter {
    pub fn query_string(&self, before: Option<u64>) -> String {
        let mut parts = vec![
            format!("user={}", urlencode(&self.user)),
            format!("case={}", urlencode(&self.case)),
        ];
        for (k, v) in [
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        if let Some(before) = before {
            parts.push(format!("before={before}"));
        }
        parts.join("&")
    }
}

/// A kind of action the access log is filtered by: the actions' prefixes it covers.
pub struct ActionKind {
    pub key: &'static str,
    pub label: T,
    pub prefixes: &'static [&'static str],
}

pub const ACTION_KINDS: [ActionKind; 6] = [
    ActionKind {
        key: "viewed",
        label: T::ActionsViewed,
        prefixes: &[
            "console.caseload_viewed",
            "console.case_viewed",
            "console.referrals_viewed",
            "console.report_viewed",
            "console.duplicates_viewed",
            "console.access_log_viewed",
            "console.search",
        ],
    },
    ActionKind {
        key: "export",
        label: T::ActionsExported,
        prefixes: &["console.export", "indicators.exported"],
    },
    ActionKind {
        key: "changed",
        label: T::ActionsChanged,
        prefixes: &["console.change", "console.merge", "case."],
    },
    ActionKind {
        key: "phones",
        label: T::ActionsPhones,
        prefixes: &["device.", "console.revoke"],
    },
    ActionKind {
        key: "sign-in",
        label: T::ActionsSignIn,
        prefixes: &["console.login", "console.logout"],
    },
    ActionKind {
        key: "accounts",
        label: T::ActionsAccounts,
        prefixes: &["user.", "form.", "server.", "outcome_settings."],
    },
];

pub fn action_kind(key: &str) -> Option<&'static ActionKind> {
    ACTION_KINDS.iter().find(|k| k.key == key)
}

/// An action as the reader says it; one this version does not know, as recorded.
pub fn action_label(lang: Lang, action: &str) -> String {
    let (fr, en, ar) = match action {
        "console.caseload_viewed" => (
            "a consulté la liste",
            "viewed the caseload",
            "اطلع على القائمة",
        ),
        "console.case_viewed" => ("a consulté un dossier", "viewed a case", "اطلع على ملف"),
        "console.referrals_viewed" => (
            "a consulté les orientations",
            "viewed the referrals",
            "اطلع على الإحالات",
        ),
        "console.report_viewed" => (
            "a consulté le rapport du programme",
            "viewed the programme report",
            "اطلع على تقرير البرنامج",
        ),
        "console.duplicates_viewed" => (
            "a consulté les doublons",
            "viewed the duplicates",
            "اطلع على الملفات المكررة",
        ),
        "console.search" => ("a cherché un nom", "searched a name", "بحث عن اسم"),
        "console.access_log_viewed" => (
            "a consulté le journal",
            "read the access log",
            "اطلع على السجل",
        ),
        "console.export" => ("a exporté", "exported", "صدّر"),
        "console.change" => ("a modifié un dossier", "changed a case", "عدّل ملفا"),
        "console.merge" => (
            "a fusionné deux dossiers",
            "merged two records",
            "دمج سجلين",
        ),
        "console.revoke" => ("a révoqué un téléphone", "revoked a phone", "ألغى هاتفا"),
        "console.login" => ("s'est connecté", "signed in", "سجّل الدخول"),
        "console.login_failed" => ("connexion refusée", "sign-in refused", "رُفض تسجيل الدخول"),
        "console.logout" => ("s'est déconnecté", "signed out", "سجّل الخروج"),
        "case.reassign" => (
            "a réattribué un dossier",
            "reassigned a case",
            "أعاد إسناد ملف",
        ),
        "case.assign" => ("a attribué un dossier", "assigned a case", "أسند ملفا"),
        "case.erased" => ("a effacé un dossier", "erased a case", "محا ملفا"),
        "case.quarantine" => ("a mis un dossier à l'écart", "set a case aside", "عزل ملفا"),
        "case.not_duplicate" => (
            "a marqué deux enfants distincts",
            "marked two children apart",
            "ميّز بين طفلين",
        ),
        "device.enroll" => ("a enrôlé un téléphone", "enrolled a phone", "سجّل هاتفا"),
        "device.revoke" => ("a révoqué un téléphone", "revoked a phone", "ألغى هاتفا"),
        "device.wiped" => ("téléphone effacé", "phone wiped", "مُسح الهاتف"),
        "device.console" => (
            "appareil de console créé",
            "console device made",
            "أُنشئ جهاز الوحدة",
        ),
        "user.add" => ("a ajouté un compte", "added an account", "أضاف حسابا"),
        "user.password" => (
            "a changé un mot de passe",
            "changed a password",
            "غيّر كلمة مرور",
        ),
        "form.publish" => ("a publié un formulaire", "published a form", "نشر استمارة"),
        "indicators.exported" => (
            "a exporté les indicateurs",
            "exported the indicators",
            "صدّر المؤشرات",
        ),
        "outcome_settings.publish" => (
            "a publié les règles de devenir",
            "published the outcome rules",
            "نشر قواعد المآل",
        ),
        "form.retire" => ("a retiré un formulaire", "retired a form", "سحب استمارة"),
        _ => return action.to_string(),
    };
    match lang {
        Lang::Fr | Lang::Other(_) => fr,
        Lang::En => en,
        Lang::Ar => ar,
    }
    .to_string()
}

/// An export's subject (`referrals.csv filtered`) in words: "Orientations · CSV · filtré".
fn export_subject(lang: Lang, subject: &str) -> String {
    let (file, filtered) = match subject.strip_suffix(" filtered") {
        Some(file) => (file, true),
        None => (subject, false),
    };
    let Some((kind, extension)) = file.split_once('.') else {
        return subject.to_string();
    };
    let kind = match kind {
        "cases" => t(lang, T::Cases),
        "referrals" => t(lang, T::Referrals),
        "followups" => t(lang, T::FollowUps),
        other => other,
    };
    let mut words = vec![kind.to_string(), extension.to_uppercase()];
    if filtered {
        words.push(t(lang, T::Filtered).to_string());
    }
    words.join(" · ")
}

/// Cases a folded row lists when opened; the rest are counted (the case filter finds them).
const SUBJECT_IDS_OPENED: usize = 10;

/// Ids a row names beyond which its subject is folded into a count.
const SUBJECT_IDS_SHOWN: usize = 3;

pub fn access_log(
    frame: &Frame<'_>,
    filter: &AccessLogFilter,
    rows: &[AuditRow],
    named: &std::collections::HashMap<String, String>,
    older: Option<u64>,
) -> Markup {
    let lang = frame.lang;
    let case_link = |id: &str| {
        html! {
            @match named.get(id) {
                Some(name) => a href={ "/console/cases/" (id) } { bdi { (name) } },
                None => a href={ "/console/cases/" (id) } { code dir="ltr" { (id.get(..8).unwrap_or(id)) "…" } },
            }
        }
    };
    page(
        frame,
        t(lang, T::AccessLog),
        html! {
            h1 { (t(lang, T::AccessLog)) }
            p.meta { (t(lang, T::AccessLogHint)) }
            form.filters method="get" action="/console/access-log" {
                label { (t(lang, T::User)) " " input type="text" name="user" value=(filter.user) maxlength="100"; }
                label { (t(lang, T::CaseOrName)) " " input type="search" name="case" value=(filter.case) maxlength="100"; }
                label { (t(lang, T::Action))
                    select name="action" {
                        option value="" { (t(lang, T::Any)) }
                        @for k in &ACTION_KINDS { option value=(k.key) selected[filter.action == k.key] { (t(lang, k.label)) } }
                    }
                }
                label { (t(lang, T::From)) " " input type="date" name="from" value=(filter.from) dir="ltr"; }
                label { (t(lang, T::To)) " " input type="date" name="to" value=(filter.to) dir="ltr"; }
                button type="submit" { (t(lang, T::Filter)) }
            }
            @if rows.is_empty() {
                p { (t(lang, T::NoRows)) }
            } @else {
                table.cases.access-log {
                    thead { tr { th { (t(lang, T::When)) } th { (t(lang, T::Who)) } th { (t(lang, T::Action)) } th { (t(lang, T::Subject)) } } }
                    tbody {
                        @for r in rows {
                            // A device's binding names its actor (32 hex digits too), not a case.
                            @let cases_named = !r.action.starts_with("device.");
                            @let ids: Vec<&str> = r.subject.split(' ').filter(|w| cases_named && crate::storage::valid_case_id(w)).collect();
                            tr {
                                td.name { (frame.zone.date_time(lang, utc(r.at))) }
                                td data-label=(t(lang, T::Who)) { (r.actor) }
                                td data-label=(t(lang, T::Action)) { (action_label(lang, &r.action)) }
                                td.subject data-label=(t(lang, T::Subject)) {
                                    @if r.action == "console.export" {
                                        (export_subject(lang, &r.subject))
                                    } @else if !cases_named {
                                        // A device's binding: the device, not the key it signs with.
                                        code dir="ltr" { (crate::storage::parse_device_binding(&r.subject).0) }
                                    } @else if ids.len() > SUBJECT_IDS_SHOWN {
                                        // A list viewed: one line with its count, the cases a click away.
                                        details {
                                            summary { (ids.len()) " " (t(lang, T::Cases)) }
                                            @for id in ids.iter().take(SUBJECT_IDS_OPENED) { (case_link(id)) " " }
                                            @if ids.len() > SUBJECT_IDS_OPENED { "+" (ids.len() - SUBJECT_IDS_OPENED) }
                                        }
                                    } @else {
                                        @for (i, word) in r.subject.split(' ').enumerate() {
                                            @if i > 0 { " " }
                                            @if cases_named && crate::storage::valid_case_id(word) {
                                                (case_link(word))
                                            } @else {
                                                bdi { (word) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(before) = older {
                p { a rel="next" href={ "/console/access-log?" (filter.query_string(Some(before))) } { (t(lang, T::Older)) } }
            }
        },
    )
}

pub fn indicators(frame: &Frame<'_>, table: &crate::console::officer::IndicatorTable) -> Markup {
    use crate::console::indicators::{chart, columns, Dimension};
    let lang = frame.lang;
    let (by, from, to) = (table.by, table.from.as_str(), table.to.as_str());
    let (rows, total) = (&table.rows, &table.total);
    let query = format!(
        "by={}&from={}&to={}",
        by.as_str(),
        urlencode(from),
        urlencode(to)
    );
    let columns = columns(lang);
    page(
        frame,
        t(lang, T::Indicators),
        html! {
            h1 { (t(lang, T::Indicators)) }
            form.filters method="get" action="/console/indicators" {
                label { (t(lang, T::GroupBy)) " "
                    select name="by" {
                        @for d in Dimension::ALL { option value=(d.as_str()) selected[d == by] { (d.label(lang)) } }
                    }
                }
                label { (t(lang, T::From)) " " input type="month" name="from" value=(from) dir="ltr"; }
                label { (t(lang, T::To)) " " input type="month" name="to" value=(to) dir="ltr"; }
                button type="submit" { (t(lang, T::Filter)) }
            }
            p { a download href={ "/console/indicators.csv?" (query) } { (t(lang, T::Download)) } }
            (chart(rows, by, lang))
            div.scroll {
                table.indicators {
                    thead { tr {
                        th { (by.label(lang)) }
                        @for (h, _) in &columns { th { (h) } }
                    } }
                    tbody {
                        @for row in rows {
                            tr {
                                td {
                                    bdi { (row.label) }
                                    @if row.spellings.len() > 1 {
                                        br; small.spellings { (t(lang, T::SpellingsGrouped)) " : "
                                            (row.spellings.iter().map(|(s, n)| format!("{s} ({n})")).collect::<Vec<_>>().join(" · ")) }
                                    }
                                }
                                @for (_, value) in &columns { td.num { (value(row)) } }
                            }
                        }
                    }
                    tfoot { tr {
                        th { (total.label) }
                        @for (_, value) in &columns { td.num { (value(total)) } }
                    } }
                }
            }
            (closed_by_reason(lang, &table.closed_by_reason))
        },
    )
}

/// The stuck referrals' filters, as given in the query string.
#[derive(Debug, Clone, Default)]
pub struct StuckFilter {
    pub days: i64,
    pub agent: String,
    pub service: String,
    pub page: u64,
}

impl StuckFilter {
    pub fn query_string(&self, page: u64) -> String {
        let mut parts = vec![format!("days={}", self.days)];
        if !self.agent.is_empty() {
            parts.push(format!("agent={}", urlencode(&self.agent)));
        }
        if !self.service.is_empty() {
            parts.push(format!("service={}", urlencode(&self.service)));
        }
        if page > 0 {
            parts.push(format!("page={page}"));
        }
        parts.join("&")
    }
}

/// A page of stuck referrals and what names them.
pub struct Stuck<'a> {
    pub filter: &'a StuckFilter,
    pub list: &'a crate::storage::StuckList,
    /// Each listed case's child, by case id.
    pub children: &'a std::collections::HashMap<String, String>,
    /// The agents of the reader's cases, to choose from.
    pub agents: &'a [String],
    pub page_size: u64,
}

pub fn referrals(
    frame: &Frame<'_>,
    forms: &FormRegistry,
    groups: &[crate::storage::ReferralGroup],
    stuck: &Stuck<'_>,
    now: i64,
) -> Markup {
    use crate::storage::TIMED_STATUSES;
    let lang = frame.lang;
    let form = forms.latest(REFERRAL).ok();
    let service = |s: &Option<String>| {
        s.as_deref()
            .map(|id| choice_label(lang, form, "service_type", id))
            .unwrap_or_default()
    };
    let average = |(secs, n): (i64, u64)| {
        if n == 0 {
            String::new()
        } else {
            format!("{:.1}", secs as f64 / n as f64 / 86_400.0)
        }
    };
    page(
        frame,
        t(lang, T::ReferralViews),
        html! {
            h1 { (t(lang, T::ReferralViews)) }
            div.scroll {
                table.referral-groups {
                    thead { tr {
                        th { (t(lang, T::Service)) } th { (t(lang, T::Provider)) } th { (t(lang, T::Status)) } th { (t(lang, T::Referrals)) }
                        @for (status, _) in TIMED_STATUSES { th { (t(lang, T::DaysIn)) " " (status_label(lang, status)) } }
                    } }
                    tbody {
                        @for g in groups {
                            tr {
                                td { (service(&g.service_type)) }
                                td { bdi { (g.provider.as_deref().unwrap_or_default()) } }
                                td { span class={ "status status-" (css_word(&g.status)) } { (status_label(lang, &g.status)) } }
                                td.num { (g.referrals) }
                                @for slot in g.time_in { td.num { (average(slot)) } }
                            }
                        }
                    }
                }
            }
            h2 id="stuck" { (t(lang, T::Stuck)) }
            @let f = stuck.filter;
            form.filters method="get" action="/console/referrals#stuck" {
                label { (t(lang, T::StuckFor)) " " input type="number" name="days" min="1" max="3650" value=(f.days); " " (t(lang, T::Days)) }
                label { (t(lang, T::Agent))
                    select name="agent" {
                        option value="" { (t(lang, T::Any)) }
                        @for a in stuck.agents { option value=(a) selected[f.agent.eq_ignore_ascii_case(a)] { (a) } }
                    }
                }
                label { (t(lang, T::Service))
                    select name="service" {
                        option value="" { (t(lang, T::Any)) }
                        @if let Some(field) = form.and_then(|f| f.field("service_type")) {
                            @for c in &field.choices { option value=(c.id) selected[f.service == c.id] { (c.label.get(lang)) } }
                        }
                    }
                }
                button type="submit" { (t(lang, T::Filter)) }
            }
            @let rows = &stuck.list.referrals;
            p.count { (super::caseload::range_of(lang, f.page * stuck.page_size, rows.len() as u64, stuck.list.total, t(lang, T::Referrals))) }
            @if rows.is_empty() {
                p { (t(lang, T::NoRows)) }
            } @else {
                table.cases.stuck {
                    thead { tr {
                        th { (t(lang, T::Child)) } th { (t(lang, T::Agent)) } th { (t(lang, T::Service)) }
                        th { (t(lang, T::Provider)) } th { (t(lang, T::Urgency)) } th { (t(lang, T::Status)) } th { (t(lang, T::Days)) }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                td.name { a href={ "/console/cases/" (r.case_id) "#chain" } {
                                    @match stuck.children.get(&r.case_id) {
                                        Some(name) => bdi { (name) },
                                        None => code { (r.case_id.get(..8).unwrap_or(&r.case_id)) },
                                    }
                                } }
                                td data-label=(t(lang, T::Agent)) { (r.agent) }
                                td data-label=(t(lang, T::Service)) { (service(&r.service_type)) }
                                td data-label=(t(lang, T::Provider)) { bdi { (r.provider.as_deref().unwrap_or_default()) } }
                                td data-label=(t(lang, T::Urgency)) { (r.urgency.as_deref().map(|u| choice_label(lang, form, "urgency", u)).unwrap_or_default()) }
                                td data-label=(t(lang, T::Status)) { span class={ "status status-" (css_word(&r.status)) } { (status_label(lang, &r.status)) } }
                                td.num data-label=(t(lang, T::Days)) { ((now - r.status_since) / 86_400) }
                            }
                        }
                    }
                }
            }
            (super::caseload::pager(lang, f.page, stuck.page_size, stuck.list.total, &|page| {
                format!("/console/referrals?{}#stuck", f.query_string(page))
            }))
        },
    )
}

/// Cases closed, by reason, in the reader's words.
pub fn closed_by_reason(lang: Lang, closed: &[(String, u64)]) -> Markup {
    html! {
        h2 { (t(lang, T::ClosedByReason)) }
        @if closed.is_empty() {
            p { (t(lang, T::NoneYet)) }
        } @else {
            table.closed-by-reason {
                thead { tr { th { (t(lang, T::Reason)) } th { (t(lang, T::ClosedCases)) } } }
                tbody {
                    @for (reason, cases) in closed {
                        tr {
                            td { (suivi_core::outcome::closure_reason_label(lang, reason)) }
                            td.num { (cases) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StuckList, StuckReferral};

    /// A stuck referral reads as who and what: the child's name (never the case id), the
    /// agent, the service and urgency in words, how long, and where it stands in the list.
    #[test]
    fn stuck_referrals_name_the_child_the_agent_and_the_urgency() {
        let case_id = "27c471c8aa1645fe915bbc778e800bd9".to_string();
        let list = StuckList {
            referrals: vec![StuckReferral {
                case_id: case_id.clone(),
                referral_id: "r1".into(),
                service_type: Some("health".into()),
                provider: Some("CSCOM Misséni".into()),
                urgency: Some("priority".into()),
                status: "sent".into(),
                status_since: 1_000_000 - 40 * 86_400,
                agent: "amina".into(),
            }],
            total: 120,
        };
        let filter = StuckFilter {
            days: 30,
            page: 1,
            ..Default::default()
        };
        let children = [(case_id.clone(), "Awa Coulibaly".to_string())].into();
        let frame = Frame {
            lang: Lang::Fr,
            zone: Zone::default(),
            user: None,
            csrf: "",
            here: "/console/referrals",
            alert: None,
        };
        let page = referrals(
            &frame,
            &FormRegistry::builtin(),
            &[],
            &Stuck {
                filter: &filter,
                list: &list,
                children: &children,
                agents: &["amina".into()],
                page_size: 50,
            },
            1_000_000,
        )
        .into_string();
        for words in [
            "Awa Coulibaly",
            "amina",
            "Santé",
            "Prioritaire",
            "envoyée",
            ">40<",
        ] {
            assert!(page.contains(words), "{words}: {page}");
        }
        assert!(page.contains("51–51 sur 120 Orientations"), "{page}");
        assert!(
            !page.contains(&format!(">{case_id}<")),
            "the case id is the link, not the words"
        );
        assert!(page.contains("days=30&amp;page=2#stuck"), "the next page");
    }

    /// A list viewed is one line with its count (the cases a click away); a row about one case
    /// names its child; a device's binding links no case; actions read as words.
    #[test]
    fn the_access_log_folds_lists_and_names_single_cases() {
        let id = |n: u32| format!("{n:032x}");
        let row = |id_: u64, action: &str, subject: String| AuditRow {
            id: id_,
            at: 1_777_852_800,
            actor: "fatima".into(),
            action: action.into(),
            subject,
            mark: Vec::new(),
        };
        let list: Vec<String> = (1..=50).map(id).collect();
        let rows = [
            row(3, "console.caseload_viewed", list.join(" ")),
            row(2, "console.case_viewed", id(7)),
            row(1, "device.enroll", format!("dev-1 actor {}", id(900))),
        ];
        let named = [(id(7), "Awa Coulibaly".to_string())].into();
        let frame = Frame {
            lang: Lang::Fr,
            zone: Zone::default(),
            user: None,
            csrf: "",
            here: "/console/access-log",
            alert: None,
        };
        let filter = AccessLogFilter {
            user: String::new(),
            case: String::new(),
            action: String::new(),
            from: String::new(),
            to: String::new(),
        };
        let page = access_log(&frame, &filter, &rows, &named, None).into_string();
        assert!(page.contains("<summary>50 dossiers</summary>"), "{page}");
        assert!(page.contains("+40"), "ten listed, the rest counted");
        assert!(page.contains("a consulté la liste") && page.contains("a consulté un dossier"));
        assert!(page.contains("<bdi>Awa Coulibaly</bdi>"));
        assert!(page.contains("a enrôlé un téléphone"));
        assert!(
            !page.contains(&format!("/console/cases/{}", id(900))),
            "an actor is not a case"
        );
        assert!(page.contains("4 mai 2026 à 00:00"), "{page}");
    }
}
