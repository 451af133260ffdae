//! Shared fixtures for the core integration tests.
#![allow(dead_code)]

use serde_json::json;
use suivi_core::{Record, Store};

pub const KEY: &str = "correct horse battery staple";

pub fn record(value: serde_json::Value) -> Record {
    serde_json::from_value(value).expect("a JSON object")
}

pub fn child(first: &str, last: &str, village: &str) -> Record {
    record(json!({
        "child_first_name": first, "child_last_name": last, "sex": "female",
        "dob_known": false, "estimated_age": 12, "province": "Sikasso", "commune": "Kignan",
        "village": village, "school_status": "dropped_out", "school_level": "primary",
        "works": true, "work_sector": "artisanal_gold_mining",
        "hazardous_conditions": ["mercury", "underground_work"], "hours_per_week": 30,
        "risk_level": "high", "consent_to_share": true,
        "notes": "Travaille au site d'orpaillage avec son oncle."
    }))
}

/// Awa's case (of Zégoua) as Amina's phone creates it, under a fresh actor.
pub fn awa_of_zegoua(forms: &suivi_core::FormRegistry) -> suivi_core::CaseDoc {
    suivi_core::CaseDoc::create(
        "0123456789abcdef0123456789abcdef",
        automerge::ActorId::random(),
        forms.latest(suivi_core::forms::IDENTIFICATION).unwrap(),
        &child("Awa", "Sangaré", "Zégoua"),
        &suivi_core::ChangeContext::now("amina"),
    )
    .unwrap()
}

pub fn referral(provider: &str) -> Record {
    record(json!({
        "service_type": "school_or_bridging_class", "provider": provider,
        "reason": "Déscolarisée, travaille sur un site minier", "urgency": "priority", "consent": true
    }))
}

pub fn visit(date: &str, due: &str, risk: &str) -> Record {
    record(json!({
        "visit_date": date, "visit_type": "home", "attends_school": "yes",
        "still_working": false, "risk_level_now": risk, "next_visit_due": due
    }))
}

pub fn new_store(dir: &tempfile::TempDir) -> Store {
    Store::create(&dir.path().join("suivi.db"), KEY, "amina", "phone-1").expect("create store")
}

/// Sends `from`'s changes that `to` lacks: two replicas of a case meeting.
pub fn sync_docs(from: &mut suivi_core::CaseDoc, to: &mut suivi_core::CaseDoc) {
    let have = to.heads();
    let changes = from.changes_since(&have);
    to.apply_changes(&changes).expect("apply");
}

/// What the server decides about the changes of `doc` that its copy `server` lacks, pushed by
/// `author`: its copy rebuilt from what it stores, the changes checked on it, and stored (synced
/// into `server`) only if accepted.
pub fn server_accepts(
    server: &mut suivi_core::CaseDoc,
    doc: &mut suivi_core::CaseDoc,
    author: suivi_core::case_doc::check::Author<'_>,
    forms: &suivi_core::FormRegistry,
) -> Result<(), suivi_core::case_doc::check::ChangeRefusal> {
    let case_id = server.case_id().expect("a case id");
    let stored: Vec<automerge::Change> = server.automerge().get_changes(&[]);
    let fresh: Vec<automerge::Change> = doc
        .changes_since(&server.heads())
        .into_iter()
        .map(|raw| automerge::Change::from_bytes(raw).expect("a change"))
        .collect();
    let mut check =
        suivi_core::case_doc::check::CaseCheck::load(&case_id, stored).expect("stored case");
    check.apply(fresh, author, forms)?;
    sync_docs(doc, server);
    Ok(())
}

/// An agent or supervisor pushing from a phone: no merge links, and reassignments only when
/// `reassigns` (a supervisor).
pub fn phone_author(user: &str, reassigns: bool) -> suivi_core::case_doc::check::Author<'_> {
    suivi_core::case_doc::check::Author {
        user,
        audit_notes_only: false,
        links_cases: false,
        supervises: reassigns,
    }
}
