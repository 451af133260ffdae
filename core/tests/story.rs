//! A case's history told in the reader's words: what an officer reads instead of document
//! paths, checked in French, English and Arabic.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use common::*;
use suivi_core::case_doc::{tell_history, ChangeContext, Told};
use suivi_core::forms::{FormRegistry, Lang};
use suivi_core::Transition;

/// Awa's case: identified, her village corrected, referred to a school, the referral sent, then
/// refused with a note and transferred to a vocational centre, a visit, an audit note.
fn awas_story(lang: Lang) -> Vec<Told> {
    let forms = FormRegistry::builtin();
    let ctx = ChangeContext::now("amina");
    let mut doc = awa_of_zegoua(&forms);
    doc.edit_identification(
        &forms,
        &record(serde_json::json!({"village": "Kignan", "works": false})),
        &ctx,
    )
    .unwrap();
    let school = doc
        .add_referral(&forms, &referral("École de Zégoua"), &ctx)
        .unwrap();
    doc.transition_referral(&forms, &school, Transition::Send, None, None, &ctx)
        .unwrap();
    doc.transition_referral(
        &forms,
        &school,
        Transition::Decline,
        Some("pas de place"),
        None,
        &ctx,
    )
    .unwrap();
    doc.transition_referral(
        &forms,
        &school,
        Transition::Transfer,
        Some("classe passerelle"),
        Some("CAP Kignan"),
        &ctx,
    )
    .unwrap();
    doc.add_followup(&forms, &visit("2026-03-02", "2026-04-02", "medium"), &ctx)
        .unwrap();
    doc.add_audit_note("Chaîne vérifiée avec le CAP", &ChangeContext::now("omar"))
        .unwrap();
    tell_history(&doc.history().unwrap(), &forms, lang, &Default::default())
}

fn headlines(story: &[Told]) -> Vec<&str> {
    story.iter().map(|t| t.headline.as_str()).collect()
}

#[test]
fn an_officer_reads_what_happened_in_french() {
    let story = awas_story(Lang::Fr);
    assert_eq!(
        headlines(&story),
        [
            "Enfant identifié : Awa Sangaré",
            "Identification modifiée",
            "Orientation préparée vers École de Zégoua (Scolarisation ou classe passerelle)",
            "Orientation vers École de Zégoua (Scolarisation ou classe passerelle) — brouillon → envoyée",
            "Orientation vers École de Zégoua (Scolarisation ou classe passerelle) — envoyée → refusée « pas de place »",
            "Orientation vers École de Zégoua (Scolarisation ou classe passerelle) — refusée → transférée « classe passerelle » · Transférée vers CAP Kignan (Scolarisation ou classe passerelle) « classe passerelle »",
            "Visite de suivi du 2 mars 2026",
            "Note d'audit : « Chaîne vérifiée avec le CAP »",
        ]
    );
    // A field changed reads with its label and its values as the form says them.
    // "Works: no" clears what only a working child is asked: said so.
    assert_eq!(
        story[1].details,
        [
            "Conditions dangereuses observées : Mercure, Travail souterrain (puits, galeries) → effacé",
            "Heures de travail par semaine : 30 → effacé",
            "Village / douar / quartier : Zégoua → Kignan",
            "Secteur d'activité : Orpaillage → effacé",
            "L'enfant travaille-t-il actuellement ? : oui → non"
        ]
    );
    let visit = &story[6].details;
    assert!(
        visit
            .iter()
            .any(|d| d == "Date prévue de la prochaine visite : 2 avril 2026"),
        "{visit:?}"
    );
}

#[test]
fn nothing_told_is_a_key_a_path_or_a_code() {
    for lang in [Lang::Fr, Lang::En, Lang::Ar] {
        for told in awas_story(lang) {
            for line in std::iter::once(&told.headline).chain(&told.details) {
                for raw in [
                    "referrals.",
                    "followups.",
                    "identification.",
                    "referral.",
                    "school_or_bridging_class",
                    "true",
                    "false",
                    "_",
                    "T00:",
                ] {
                    assert!(!line.contains(raw), "{lang:?}: {raw} in {line}");
                }
                // A status's code is its English word: other languages never show it.
                if lang != Lang::En {
                    let words: Vec<&str> = line
                        .split(|c: char| !c.is_alphanumeric() && c != '_')
                        .collect();
                    for code in ["declined", "sent", "transferred", "draft"] {
                        assert!(!words.contains(&code), "{lang:?}: {code} in {line}");
                    }
                }
            }
        }
    }
    let arabic = awas_story(Lang::Ar);
    assert!(
        arabic[4].headline.contains("مُرسلة ← مرفوضة"),
        "statuses in Arabic, the arrow pointing the way the line reads: {}",
        arabic[4].headline
    );
    assert_eq!(
        awas_story(Lang::En)[6].headline,
        "Follow-up visit of 2 March 2026"
    );
}
