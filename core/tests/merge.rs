//! Merging two records of the same child: only the console (a supervisor or admin) writes the
//! links; the merged-away case is read-only from then on, yet a change made without knowledge of
//! the merge (a phone offline) is accepted and listed for review; the links name other cases.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, ReadDoc, ROOT};
use common::*;
use suivi_core::case_doc::check::{Author, ChangeRefusal};
use suivi_core::case_doc::{CaseDoc, ChangeContext};
use suivi_core::forms::{FormRegistry, IDENTIFICATION};
use suivi_core::Error;

const AWAY: &str = "0123456789abcdef0123456789abcdef";
const SURVIVOR: &str = "fedcba9876543210fedcba9876543210";

/// A push of `doc`'s changes by `user`: from the console (`console`, a supervisor there, who
/// links cases and reassigns) or from a phone.
fn server_takes(
    server: &mut CaseDoc,
    doc: &mut CaseDoc,
    user: &str,
    console: bool,
    forms: &FormRegistry,
) -> Result<(), ChangeRefusal> {
    let author = Author {
        links_cases: console,
        ..phone_author(user, console)
    };
    server_accepts(server, doc, author, forms)
}

/// Karim's case as the server holds it, and his phone's copy.
fn karims_case(forms: &FormRegistry) -> (CaseDoc, CaseDoc) {
    let form = forms.latest(IDENTIFICATION).unwrap();
    let phone = CaseDoc::create(
        AWAY,
        ActorId::random(),
        form,
        &child("Muhammad", "El Idrissi", "Kignan"),
        &ChangeContext::now("karim"),
    )
    .unwrap();
    let mut phone = phone;
    let mut server = CaseDoc::load(&phone.save(), ActorId::random()).unwrap();
    sync_docs(&mut phone, &mut server);
    (server, phone)
}

#[test]
fn only_the_console_links_cases_and_a_link_names_another_case() {
    let forms = FormRegistry::builtin();
    let (mut server, mut phone) = karims_case(&forms);
    // A phone writing the link itself, even through the API, is refused.
    phone
        .merge_into(SURVIVOR, &ChangeContext::now("karim"))
        .unwrap();
    assert_eq!(
        server_takes(&mut server, &mut phone, "karim", false, &forms),
        Err(ChangeRefusal::NotAllowed("merged_into".into()))
    );
    // The console's own write passes; a link to the case itself, or to no case id, does not.
    for bad in [AWAY, "not-a-case"] {
        let mut console = CaseDoc::load(&server.save(), ActorId::random()).unwrap();
        console.automerge().put(ROOT, "merged_into", bad).unwrap();
        console.automerge().commit_with(
            automerge::transaction::CommitOptions::default()
                .with_message(r#"{"user":"fatima","action":"case.merge_away"}"#),
        );
        assert_eq!(
            server_takes(&mut server, &mut console, "fatima", true, &forms),
            Err(ChangeRefusal::Invalid("merged_into".into())),
            "{bad}"
        );
    }
    let mut console = CaseDoc::load(&server.save(), ActorId::random()).unwrap();
    console
        .merge_into(SURVIVOR, &ChangeContext::now("fatima"))
        .unwrap();
    server_takes(&mut server, &mut console, "fatima", true, &forms).unwrap();
    assert_eq!(server.merged_into().unwrap().as_deref(), Some(SURVIVOR));
    // Merged once, never again; and a merged-away case survives nothing.
    let ctx = ChangeContext::now("fatima");
    assert!(matches!(
        console.merge_into(SURVIVOR, &ctx),
        Err(Error::CaseMerged { .. })
    ));
    assert!(matches!(
        console.link_merged_case(SURVIVOR, &ctx),
        Err(Error::CaseMerged { .. })
    ));
}

#[test]
fn an_edit_made_offline_is_kept_for_review_and_one_made_after_seeing_the_merge_is_refused() {
    let forms = FormRegistry::builtin();
    let (mut server, mut phone) = karims_case(&forms);
    // Offline, Karim records a visit; meanwhile Fatima merges the case in the console.
    phone
        .add_followup(
            &forms,
            &visit("2026-11-02", "2026-12-02", "medium"),
            &ChangeContext::now("karim"),
        )
        .unwrap();
    let mut console = CaseDoc::load(&server.save(), ActorId::random()).unwrap();
    console
        .merge_into(SURVIVOR, &ChangeContext::now("fatima"))
        .unwrap();
    server_takes(&mut server, &mut console, "fatima", true, &forms).unwrap();
    assert!(server.edits_after_merge().unwrap().is_empty());

    // His visit did not know of the merge: accepted, and listed for review, whatever its
    // commit message calls itself.
    server_takes(&mut server, &mut phone, "karim", false, &forms).unwrap();
    let ident = match phone.automerge().get(ROOT, "identification").unwrap() {
        Some((_, id)) => id,
        None => panic!("an identification map"),
    };
    phone.automerge().put(&ident, "village", "Kaniko").unwrap();
    phone.automerge().commit_with(
        automerge::transaction::CommitOptions::default()
            .with_message(r#"{"user":"karim","action":"case.merge_away"}"#),
    );
    server_takes(&mut server, &mut phone, "karim", false, &forms).unwrap();
    // The console's own later change is no edit to review.
    let mut console = CaseDoc::load(&server.save(), ActorId::random()).unwrap();
    console
        .assign_to("salif", &ChangeContext::now("fatima"))
        .unwrap();
    server_takes(&mut server, &mut console, "fatima", true, &forms).unwrap();
    let review = server.edits_after_merge().unwrap();
    let actions: Vec<_> = review.iter().map(|h| h.action.as_deref()).collect();
    assert_eq!(
        actions,
        vec![Some("followup.create"), Some("case.merge_away")],
        "the phone's two changes, not the console's"
    );
    assert_eq!(server.followups(&forms).unwrap().len(), 1);

    // Once his phone has the merge, anything it writes on the case is refused.
    sync_docs(&mut server, &mut phone);
    assert_eq!(phone.merged_into().unwrap().as_deref(), Some(SURVIVOR));
    phone
        .add_followup(
            &forms,
            &visit("2026-11-09", "2026-12-09", "low"),
            &ChangeContext::now("karim"),
        )
        .unwrap();
    assert_eq!(
        server_takes(&mut server, &mut phone, "karim", false, &forms),
        Err(ChangeRefusal::NotAllowed("merged_into".into()))
    );
}

#[test]
fn a_survivor_lists_its_merged_cases_in_merge_order() {
    let forms = FormRegistry::builtin();
    let form = forms.latest(IDENTIFICATION).unwrap();
    let mut survivor = CaseDoc::create(
        SURVIVOR,
        ActorId::random(),
        form,
        &child("Mohamed", "El-Idrissi", "Kignan"),
        &ChangeContext::now("amina"),
    )
    .unwrap();
    let at = |s: &str| ChangeContext {
        user: "fatima".into(),
        time: s.parse().unwrap(),
    };
    survivor
        .link_merged_case(AWAY, &at("2026-11-03T10:00:00Z"))
        .unwrap();
    let older = "00000000000000000000000000000001";
    survivor
        .link_merged_case(older, &at("2026-11-04T10:00:00Z"))
        .unwrap();
    assert_eq!(survivor.merged_cases().unwrap(), vec![AWAY, older]);
    assert!(matches!(
        survivor.link_merged_case(SURVIVOR, &at("2026-11-05T10:00:00Z")),
        Err(Error::InvalidInput(_))
    ));
}

/// Undoing a merge: only the console removes the links (a phone removing `merged_into` itself
/// is refused); once undone the record is its own again and a phone's next edit is accepted;
/// the story says so in words.
#[test]
fn only_the_console_undoes_a_merge_and_the_record_is_editable_again() {
    let forms = FormRegistry::builtin();
    let (mut server, mut phone) = karims_case(&forms);
    let mut console = CaseDoc::load(&server.save(), ActorId::random()).unwrap();
    console
        .merge_into(SURVIVOR, &ChangeContext::now("fatima"))
        .unwrap();
    server_takes(&mut server, &mut console, "fatima", true, &forms).unwrap();
    sync_docs(&mut server, &mut phone);

    // Karim's phone cannot free the record by deleting the link itself.
    let mut forged = CaseDoc::load(&phone.save(), ActorId::random()).unwrap();
    forged.automerge().delete(ROOT, "merged_into").unwrap();
    forged.automerge().commit_with(
        automerge::transaction::CommitOptions::default()
            .with_message(r#"{"user":"karim","action":"case.unmerge_away"}"#),
    );
    let mut held = CaseDoc::load(&server.save(), ActorId::random()).unwrap();
    assert_eq!(
        server_takes(&mut held, &mut forged, "karim", false, &forms),
        Err(ChangeRefusal::NotAllowed("merged_into".into()))
    );

    // The console's undo passes; the phone takes it and may edit the record again.
    let mut console = CaseDoc::load(&server.save(), ActorId::random()).unwrap();
    assert_eq!(
        console.unmerge(&ChangeContext::now("fatima")).unwrap(),
        SURVIVOR
    );
    server_takes(&mut server, &mut console, "fatima", true, &forms).unwrap();
    assert_eq!(server.merged_into().unwrap(), None);
    sync_docs(&mut server, &mut phone);
    assert_eq!(phone.merged_into().unwrap(), None);
    phone
        .add_followup(
            &forms,
            &visit("2026-11-16", "2026-12-16", "low"),
            &ChangeContext::now("karim"),
        )
        .unwrap();
    server_takes(&mut server, &mut phone, "karim", false, &forms).unwrap();
    assert!(matches!(
        console.unmerge(&ChangeContext::now("fatima")),
        Err(Error::InvalidInput(_))
    ));
    let told = suivi_core::case_doc::tell_history(
        &server.history().unwrap(),
        &forms,
        suivi_core::Lang::Fr,
        &Default::default(),
    );
    let history = server.history().unwrap();
    let named = suivi_core::case_doc::cases_named(&history);
    assert_eq!(
        named,
        vec![SURVIVOR.to_string()],
        "the other record it names"
    );
    assert!(
        told.iter()
            .any(|e| e.headline == format!("Fusion annulée : dossier séparé de {SURVIVOR}")),
        "unknown to the reader, told by its id: {told:?}"
    );
    let names = [(SURVIVOR.to_string(), "Awa Traoré".to_string())].into();
    let told = suivi_core::case_doc::tell_history(&history, &forms, suivi_core::Lang::Fr, &names);
    assert!(
        told.iter().any(|e| e.headline
            == format!(
                "Fusion annulée : dossier séparé de Awa Traoré ({})",
                &SURVIVOR[..8]
            )),
        "known, told by its child: {told:?}"
    );

    // A survivor's link goes the same way.
    let (mut survivor_server, _) = karims_case(&forms);
    let mut console = CaseDoc::load(&survivor_server.save(), ActorId::random()).unwrap();
    console
        .link_merged_case(SURVIVOR, &ChangeContext::now("fatima"))
        .unwrap();
    server_takes(&mut survivor_server, &mut console, "fatima", true, &forms).unwrap();
    assert!(console
        .unlink_merged_case(SURVIVOR, &ChangeContext::now("fatima"))
        .unwrap());
    server_takes(&mut survivor_server, &mut console, "fatima", true, &forms).unwrap();
    assert!(survivor_server.merged_cases().unwrap().is_empty());
    assert!(!console
        .unlink_merged_case(SURVIVOR, &ChangeContext::now("fatima"))
        .unwrap());
}
