//! Outcomes and closures as people read them: a stage, a classification, a closure's status
//! and reason, and the next step, in French, English and Arabic (a form's other languages
//! read French). The same words on the phone, in the CLI and in the console.

use super::{Classification, Stage};
use crate::forms::Lang;
// A closure's words live with the closure (`case_doc::closure`), which the history tells too.
#[cfg(test)]
use crate::case_doc::ClosureStatus;
pub use crate::case_doc::{
    closure_conflict_words, closure_label, closure_reason_label, closure_step_label,
};

fn pick(lang: Lang, (fr, en, ar): (&'static str, &'static str, &'static str)) -> &'static str {
    match lang {
        Lang::Fr | Lang::Other(_) => fr,
        Lang::En => en,
        Lang::Ar => ar,
    }
}

impl Stage {
    pub fn label(self, lang: Lang) -> &'static str {
        pick(
            lang,
            match self {
                Stage::Identified => ("identifié", "identified", "مُحدَّد"),
                Stage::ReceivingServices => {
                    ("reçoit des services", "receiving services", "يتلقى خدمات")
                }
                Stage::NotWorkingAtOneVisit => (
                    "ne travaille plus (une visite)",
                    "not working at one visit",
                    "لا يعمل (زيارة واحدة)",
                ),
                Stage::Exited => ("sorti du travail", "exited", "خرج من العمل"),
                Stage::Relapsed => ("retourné au travail", "relapsed", "عاد إلى العمل"),
            },
        )
    }

    /// What the agent does next for a child at this stage (the case not closed).
    pub fn next_step(self, lang: Lang) -> &'static str {
        pick(
            lang,
            match self {
                Stage::Identified => (
                    "Orienter vers un service",
                    "Refer to a service",
                    "الإحالة إلى خدمة",
                ),
                Stage::ReceivingServices => (
                    "Faire une visite de suivi",
                    "Make a follow-up visit",
                    "القيام بزيارة متابعة",
                ),
                Stage::NotWorkingAtOneVisit => (
                    "Confirmer à la visite suivante",
                    "Confirm at the next visit",
                    "التأكيد في الزيارة التالية",
                ),
                Stage::Exited => ("Proposer la clôture", "Propose closure", "اقتراح الإغلاق"),
                Stage::Relapsed => (
                    "Orienter à nouveau et suivre",
                    "Refer again and follow up",
                    "إعادة الإحالة والمتابعة",
                ),
            },
        )
    }
}

impl Classification {
    pub fn label(self, lang: Lang) -> &'static str {
        pick(
            lang,
            match self {
                Classification::Withdrawn => ("retiré du travail", "withdrawn", "مسحوب من العمل"),
                Classification::Prevented => ("prévenu", "prevented", "تمت وقايته"),
            },
        )
    }
}

/// A stage's code as the reader says it; an unknown code as it is.
pub fn stage_label(lang: Lang, code: &str) -> String {
    Stage::parse(code).map_or_else(|| code.to_string(), |s| s.label(lang).to_string())
}

/// A classification's code as the reader says it.
pub fn classification_label(lang: Lang, code: &str) -> String {
    match code {
        "withdrawn" => Classification::Withdrawn.label(lang).to_string(),
        "prevented" => Classification::Prevented.label(lang).to_string(),
        other => other.to_string(),
    }
}

/// Every closure reason with its words, in `CLOSURE_REASONS`' order: what a picker offers.
pub fn closure_reasons(lang: Lang) -> Vec<(String, String)> {
    crate::case_doc::CLOSURE_REASONS
        .iter()
        .map(|r| (r.to_string(), closure_reason_label(lang, r)))
        .collect()
}

/// A list row's outcome in words: its stage (and classification), whether it is provisional,
/// the next step unless the case is closed or waits on a supervisor, and its closure when not
/// simply open.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutcomeWords {
    pub stage: String,
    pub classification: Option<String>,
    pub provisional: bool,
    pub next_step: Option<String>,
    pub closure: Option<String>,
}

/// A list row's outcome as stored: the codes `row_in_words` says.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowOutcome<'a> {
    pub stage: Option<&'a str>,
    pub classification: Option<&'a str>,
    pub provisional: bool,
    pub closure: Option<&'a str>,
    /// The day the child reaches the age that ends monitoring (YYYY-MM-DD).
    pub age_limit_on: Option<&'a str>,
}

/// `OutcomeWords` of a list row's codes, `today` (the reader's day) deciding whether the
/// child has reached the age limit; `None` for a row with no stage (listed ahead).
pub fn row_in_words(
    row: RowOutcome<'_>,
    today: chrono::NaiveDate,
    lang: Lang,
) -> Option<OutcomeWords> {
    let stage = Stage::parse(row.stage?)?;
    // A closure proposed, closed or in dispute waits on a supervisor, not on the agent.
    let waits = matches!(row.closure, Some("closed" | "proposed" | "disputed"));
    let aged_out = row
        .age_limit_on
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .is_some_and(|d| d <= today);
    Some(OutcomeWords {
        stage: stage.label(lang).to_string(),
        classification: row.classification.map(|c| classification_label(lang, c)),
        provisional: row.provisional,
        next_step: (!waits).then(|| next_step(stage, aged_out, lang)),
        closure: row.closure.map(|c| closure_label(lang, c)),
    })
}

/// `row_in_words` on this device's day (UTC).
pub fn row_in_words_today(row: RowOutcome<'_>, lang: Lang) -> Option<OutcomeWords> {
    row_in_words(row, crate::clock::now().date_naive(), lang)
}

/// What the agent does next: a child who reached the age limit is closed whatever the stage.
pub fn next_step(stage: Stage, aged_out: bool, lang: Lang) -> String {
    if aged_out {
        return pick(
            lang,
            (
                "Proposer la clôture : âge limite atteint",
                "Propose closure: the age limit is reached",
                "اقتراح الإغلاق: بلوغ السن القصوى",
            ),
        )
        .to_string();
    }
    stage.next_step(lang).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_in_every_language_and_never_as_its_code() {
        // English words may equal a code ("exited"); a code with `_` never reads as such.
        let read = |label: &str, code: &str, lang: &Lang| {
            assert!(!label.contains('_'), "{label}");
            if *lang != Lang::En {
                assert_ne!(label, code);
            }
        };
        for lang in [Lang::Fr, Lang::En, Lang::Ar] {
            for stage in Stage::ALL {
                read(stage.label(lang), stage.as_str(), &lang);
                assert!(!stage.next_step(lang).is_empty());
            }
            for reason in crate::case_doc::CLOSURE_REASONS {
                read(&closure_reason_label(lang, reason), reason, &lang);
            }
            for status in ClosureStatus::ALL {
                read(
                    &closure_label(lang, status.as_str()),
                    status.as_str(),
                    &lang,
                );
            }
            read(&closure_label(lang, "disputed"), "disputed", &Lang::Fr);
            read(&classification_label(lang, "prevented"), "prevented", &lang);
            for step in crate::case_doc::CLOSURE_STEPS {
                read(&closure_step_label(lang, step), step, &Lang::Fr);
            }
        }
        assert_eq!(stage_label(Lang::Fr, "exited"), "sorti du travail");
        assert_eq!(
            closure_conflict_words(Lang::Fr, "closure_status", "returned"),
            Some(("Clôture".into(), "clôture renvoyée".into()))
        );
        assert_eq!(
            closure_conflict_words(Lang::En, "closure_reason", "moved_away"),
            Some(("Closure reason".into(), "moved away".into()))
        );
        assert_eq!(
            closure_conflict_words(Lang::Fr, "assigned_to", "karim"),
            None
        );
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let exited = RowOutcome {
            stage: Some("exited"),
            classification: Some("withdrawn"),
            ..RowOutcome::default()
        };
        let words = row_in_words(exited, today, Lang::En).unwrap();
        assert_eq!(words.next_step.as_deref(), Some("Propose closure"));
        assert_eq!(words.classification.as_deref(), Some("withdrawn"));
        let proposed = RowOutcome {
            stage: Some("exited"),
            provisional: true,
            closure: Some("proposed"),
            ..RowOutcome::default()
        };
        let proposed = row_in_words(proposed, today, Lang::Fr).unwrap();
        assert_eq!(
            proposed.next_step, None,
            "a proposal waits on the supervisor"
        );
        assert_eq!(proposed.closure.as_deref(), Some("clôture proposée"));
        assert_eq!(row_in_words(RowOutcome::default(), today, Lang::Fr), None);
        // Reaching the age limit turns the next step to a closure, on that very day.
        let served = |on: &'static str| RowOutcome {
            stage: Some("receiving_services"),
            age_limit_on: Some(on),
            ..RowOutcome::default()
        };
        let step = |on| row_in_words(served(on), today, Lang::Fr).unwrap().next_step;
        assert_eq!(
            step("2026-12-07").as_deref(),
            Some("Proposer la clôture : âge limite atteint")
        );
        assert_eq!(
            step("2026-12-08").as_deref(),
            Some("Faire une visite de suivi")
        );
        assert_eq!(
            closure_reasons(Lang::En)[1],
            ("moved_away".into(), "moved away".into())
        );
        assert_eq!(closure_label(Lang::Fr, "disputed"), "clôture (contesté)");
        assert_eq!(closure_reason_label(Lang::Ar, "moved_away"), "غادر المنطقة");
    }
}
