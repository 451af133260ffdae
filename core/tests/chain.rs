//! The referral chain read from a case's history: which referral moved, to which provider a
//! transfer sent the child and from which referral, which visit recorded which services.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use common::*;
use serde_json::json;
use suivi_core::case_doc::{referral_chain, ChainStep, ChangeContext};
use suivi_core::forms::FormRegistry;
use suivi_core::Transition;

#[test]
fn a_transfer_names_the_referral_it_continues_and_moves_name_their_provider() {
    let forms = FormRegistry::builtin();
    let ctx = ChangeContext::now("amina");
    let mut doc = awa_of_zegoua(&forms);
    let first = doc
        .add_referral(&forms, &referral("École de Zégoua"), &ctx)
        .unwrap();
    doc.transition_referral(&forms, &first, Transition::Send, None, None, &ctx)
        .unwrap();
    let second = doc
        .transition_referral(
            &forms,
            &first,
            Transition::Transfer,
            Some("classe passerelle"),
            Some("CAP Kignan"),
            &ctx,
        )
        .unwrap()
        .unwrap();
    let mut visit = visit("2026-03-02", "2026-04-02", "medium");
    visit.insert(
        "services_received".into(),
        json!(["school_or_bridging_class", "health"]),
    );
    let visit_id = doc.add_followup(&forms, &visit, &ctx).unwrap();

    let history = doc.history().unwrap();
    let chain = referral_chain(&history);
    let steps: Vec<&ChainStep> = chain.iter().map(|l| &l.step).collect();
    assert_eq!(steps[0], &ChainStep::Identified);
    assert_eq!(
        steps[1],
        &ChainStep::Referred {
            referral_id: first.clone(),
            service: "school_or_bridging_class".into(),
            provider: "École de Zégoua".into(),
            previous_referral: None,
        }
    );
    assert_eq!(
        steps[2],
        &ChainStep::Moved {
            referral_id: first.clone(),
            service: "school_or_bridging_class".into(),
            provider: "École de Zégoua".into(),
            from: "draft".into(),
            to: "sent".into(),
        }
    );
    // The transfer: the new referral continues the first, which moves to "transferred".
    assert!(steps[3..5].contains(&&ChainStep::Referred {
        referral_id: second.clone(),
        service: "school_or_bridging_class".into(),
        provider: "CAP Kignan".into(),
        previous_referral: Some(first.clone()),
    }));
    assert!(steps[3..5].contains(&&ChainStep::Moved {
        referral_id: first.clone(),
        service: "school_or_bridging_class".into(),
        provider: "École de Zégoua".into(),
        from: "sent".into(),
        to: "transferred".into(),
    }));
    assert_eq!(
        steps[5],
        &ChainStep::Visited {
            followup_id: visit_id,
            date: "2026-03-02".into(),
            services: vec!["school_or_bridging_class".into(), "health".into()],
        }
    );
    assert_eq!(steps.len(), 6);
    // Each step points at the history entry that made it.
    assert_eq!(chain[0].entry, 0);
    assert_eq!(chain[1].entry, 1);
    assert_eq!(chain[5].entry, history.len() - 1);
}
