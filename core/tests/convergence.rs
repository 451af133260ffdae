//! Property test: random edit sequences on three replicas of one case, exchanged and merged in
//! random orders, converge to the same document and the same projection rows.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use automerge::ActorId;
use common::*;
use proptest::prelude::*;
use serde_json::json;
use suivi_core::case_doc::{CaseDoc, ChangeContext};
use suivi_core::forms::{FormRegistry, IDENTIFICATION};
use suivi_core::store::projection::project;
use suivi_core::Transition;

#[derive(Debug, Clone)]
enum Op {
    Edit {
        replica: usize,
        field: usize,
        value: usize,
    },
    Notes {
        replica: usize,
        text: String,
    },
    Refer {
        replica: usize,
    },
    Move {
        replica: usize,
        referral: usize,
        transition: usize,
    },
    Visit {
        replica: usize,
        day: u8,
    },
    Exchange {
        from: usize,
        to: usize,
    },
}

const REPLICAS: usize = 3;
const VILLAGES: [&str; 3] = ["Fès", "Kignan", "Souk Sebt"];
const RISKS: [&str; 4] = ["low", "medium", "high", "critical"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..REPLICAS, 0..3usize, 0..4usize).prop_map(|(replica, field, value)| Op::Edit { replica, field, value }),
        2 => (0..REPLICAS, "[a-zé ]{0,12}").prop_map(|(replica, text)| Op::Notes { replica, text }),
        1 => (0..REPLICAS).prop_map(|replica| Op::Refer { replica }),
        2 => (0..REPLICAS, 0..3usize, 0..7usize).prop_map(|(replica, referral, transition)| Op::Move { replica, referral, transition }),
        1 => (0..REPLICAS, 1..28u8).prop_map(|(replica, day)| Op::Visit { replica, day }),
        3 => (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Op::Exchange { from, to }),
    ]
}

fn exchange(docs: &mut [CaseDoc], from: usize, to: usize) {
    if from == to {
        return;
    }
    let have = docs[to].heads();
    let changes = docs[from].changes_since(&have);
    docs[to].apply_changes(&changes).unwrap();
}

fn apply(docs: &mut [CaseDoc], forms: &FormRegistry, op: &Op) {
    let ctx = |r: usize| ChangeContext::now(format!("agent-{r}"));
    match op {
        Op::Edit {
            replica,
            field,
            value,
        } => {
            let patch = match field {
                0 => json!({"village": VILLAGES[value % 3]}),
                1 => json!({"risk_level": RISKS[*value]}),
                _ => json!({"hours_per_week": *value as i64 * 10}),
            };
            docs[*replica]
                .edit_identification(forms, &record(patch), &ctx(*replica))
                .unwrap();
        }
        Op::Notes { replica, text } => {
            docs[*replica]
                .edit_identification(forms, &record(json!({"notes": text})), &ctx(*replica))
                .unwrap();
        }
        Op::Refer { replica } => {
            docs[*replica]
                .add_referral(forms, &referral("CPS Sikasso"), &ctx(*replica))
                .unwrap();
        }
        Op::Move {
            replica,
            referral,
            transition,
        } => {
            let referrals = docs[*replica].referrals(forms).unwrap();
            if let Some(r) = referrals.get(*referral) {
                let t = suivi_core::referral::ALL_TRANSITIONS[*transition];
                // Illegal moves are refused; that is part of the model, not a failure.
                let result = docs[*replica].transition_referral(
                    forms,
                    &r.id,
                    t,
                    None,
                    Some("ONG Enfance"),
                    &ctx(*replica),
                );
                if let Err(e) = result {
                    assert!(
                        matches!(e, suivi_core::Error::IllegalTransition { .. }),
                        "{e:?}"
                    );
                }
                let _ = Transition::Send;
            }
        }
        Op::Visit { replica, day } => {
            let v = visit(&format!("2026-10-{day:02}"), "2026-12-01", "medium");
            docs[*replica]
                .add_followup(forms, &v, &ctx(*replica))
                .unwrap();
        }
        Op::Exchange { from, to } => exchange(docs, *from, *to),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn replicas_converge_to_the_same_document_and_projection(
        ops in prop::collection::vec(op(), 1..40),
        merge_order in Just((0..REPLICAS).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let forms = FormRegistry::builtin();
        let form = forms.latest(IDENTIFICATION).unwrap();
        let mut origin = CaseDoc::create("c0ffee00c0ffee00c0ffee00c0ffee00", ActorId::random(), form,
            &child("Aïcha", "Traoré", "Fès"), &ChangeContext::now("agent-0")).unwrap();
        let base = origin.save();
        let mut docs: Vec<CaseDoc> = (0..REPLICAS)
            .map(|_| CaseDoc::load(&base, ActorId::random()).unwrap())
            .collect();
        for op in &ops {
            apply(&mut docs, &forms, op);
        }
        // Everyone sends to everyone, in a random order, twice round.
        for _ in 0..2 {
            for &from in &merge_order {
                for to in 0..REPLICAS {
                    exchange(&mut docs, from, to);
                }
            }
        }
        let mut heads: Vec<_> = docs.iter_mut().map(|d| { let mut h = d.heads(); h.sort(); h }).collect();
        heads.dedup();
        prop_assert_eq!(heads.len(), 1, "heads differ");
        let projections: Vec<_> = docs.iter_mut().map(|d| project(d, &forms).unwrap()).collect();
        let idents: Vec<_> = docs.iter().map(|d| d.identification(&forms).unwrap()).collect();
        let conflicts: Vec<_> = docs.iter().map(|d| d.conflicts(&forms).unwrap()).collect();
        for i in 1..REPLICAS {
            prop_assert_eq!(&projections[0], &projections[i]);
            prop_assert_eq!(&idents[0], &idents[i]);
            prop_assert_eq!(&conflicts[0], &conflicts[i]);
        }
    }
}

#[test]
fn a_same_field_edit_on_two_devices_is_kept_as_a_conflict() {
    let forms = FormRegistry::builtin();
    let form = forms.latest(IDENTIFICATION).unwrap();
    let mut origin = CaseDoc::create(
        "c0ffee00c0ffee00c0ffee00c0ffee01",
        ActorId::random(),
        form,
        &child("Aïcha", "Traoré", "Fès"),
        &ChangeContext::now("amina"),
    )
    .unwrap();
    let base = origin.save();
    let mut docs = vec![
        CaseDoc::load(&base, ActorId::random()).unwrap(),
        CaseDoc::load(&base, ActorId::random()).unwrap(),
    ];
    docs[0]
        .edit_identification(
            &forms,
            &record(json!({"village": "Kignan"})),
            &ChangeContext::now("amina"),
        )
        .unwrap();
    docs[1]
        .edit_identification(
            &forms,
            &record(json!({"village": "Misséni"})),
            &ChangeContext::now("moussa"),
        )
        .unwrap();
    exchange(&mut docs, 0, 1);
    exchange(&mut docs, 1, 0);
    let conflicts = docs[0].conflicts(&forms).unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].path, "identification.village");
    let mut values = conflicts[0].values.clone();
    values.sort_by_key(|v| v.to_string());
    assert_eq!(values, vec![json!("Kignan"), json!("Misséni")]);
    assert_eq!(docs[1].conflicts(&forms).unwrap(), conflicts);
    // A supervisor's later edit settles it, even when it keeps the value shown now.
    let shown = docs[1].identification(&forms).unwrap()["village"].clone();
    let changed = docs[1]
        .edit_identification(
            &forms,
            &record(json!({"village": shown})),
            &ChangeContext::now("sup"),
        )
        .unwrap();
    assert_eq!(changed, vec!["village"]);
    assert!(docs[1].conflicts(&forms).unwrap().is_empty());
    // The other device receives the settlement: the conflict is gone there too.
    exchange(&mut docs, 1, 0);
    assert!(
        docs[0].conflicts(&forms).unwrap().is_empty(),
        "the settled value supersedes both"
    );
}
