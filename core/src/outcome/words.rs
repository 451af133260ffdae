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

/// `OutcomeWords` of a list row's codes; `None` for a row with no stage (listed ahead).
pub fn row_in_words(
    stage: Option<&str>,
    classification: Option<&str>,
    provisional: bool,
    closure: Option<&str>,
    lang: Lang,
) -> Option<OutcomeWords> {
    let stage = Stage::parse(stage?)?;
    let waits = matches!(closure, Some("closed" | "proposed"));
    Some(OutcomeWords {
        stage: stage.label(lang).to_string(),
        classification: classification.map(|c| classification_label(lang, c)),
        provisional,
        next_step: (!waits).then(|| stage.next_step(lang).to_string()),
        closure: closure.map(|c| closure_label(lang, c)),
    })
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
        let words = row_in_words(Some("exited"), Some("withdrawn"), false, None, Lang::En).unwrap();
        assert_eq!(words.next_step.as_deref(), Some("Propose closure"));
        assert_eq!(words.classification.as_deref(), Some("withdrawn"));
        let proposed =
            row_in_words(Some("exited"), None, true, Some("proposed"), Lang::Fr).unwrap();
        assert_eq!(
            proposed.next_step, None,
            "a proposal waits on the supervisor"
        );
        assert_eq!(proposed.closure.as_deref(), Some("clôture proposée"));
        assert_eq!(row_in_words(None, None, false, None, Lang::Fr), None);
        assert_eq!(
            closure_reasons(Lang::En)[1],
            ("moved_away".into(), "moved away".into())
        );
        assert_eq!(closure_label(Lang::Fr, "disputed"), "clôture (contesté)");
        assert_eq!(closure_reason_label(Lang::Ar, "moved_away"), "غادر المنطقة");
    }
}
