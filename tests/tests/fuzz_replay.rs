//! Every fuzz target on stable: the seeds (valid inputs built here), every file of its corpus
//! (`tests/fuzz/corpus/<target>`) and every crash the fuzzer ever found
//! (`tests/fuzz/regressions/<target>`, each also a named test below). Fuzzing itself is
//! `tests/fuzz/run.sh` (nightly, cargo fuzz); see RELIABILITY.md.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::path::{Path, PathBuf};

use automerge::ActorId;
use serde_json::json;
use suivi_core::forms::{FormRegistry, IDENTIFICATION};
use suivi_core::sync::protocol::{self, SyncRequest};
use suivi_core::{CaseDoc, ChangeContext};
use suivi_tests::fuzz::{FUZZ_ACTOR, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// A real case by the fuzz device's actor: its changes, as the device would push them.
fn case_changes() -> (String, Vec<Vec<u8>>) {
    let forms = FormRegistry::builtin();
    let form = forms.latest(IDENTIFICATION).unwrap();
    let case_id = "c0ffee00c0ffee00c0ffee00c0ffee00".to_string();
    let ctx = ChangeContext::now("amina");
    let mut doc = CaseDoc::create(
        &case_id,
        ActorId::from(hex::decode(FUZZ_ACTOR).unwrap()),
        form,
        &suivi_tests::child(3),
        &ctx,
    )
    .unwrap();
    doc.add_referral(&forms, &suivi_tests::referral(1), &ctx)
        .unwrap();
    doc.add_followup(&forms, &suivi_tests::visit(2), &ctx)
        .unwrap();
    let changes = doc.changes_since(&[]);
    (case_id, changes)
}

/// Valid inputs for each target, the starting points the fuzzer mutates.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (case_id, changes) = case_changes();
    let request = SyncRequest {
        version: protocol::PROTOCOL_VERSION,
        ..SyncRequest::pushing(
            0,
            vec![suivi_tests::case_changes(&case_id, changes.clone())],
        )
    };
    // Postcard as is: the targets also try each input zstd-compressed.
    let push = postcard::to_stdvec(&request).unwrap();
    let page = postcard::to_stdvec(&protocol::SyncResponse {
        version: protocol::PROTOCOL_VERSION,
        accepted: vec![],
        refused: vec![protocol::Refusal::new(
            &case_id,
            protocol::RefusalReason::Invalid,
            "identification.village",
        )],
        authors: vec![protocol::Author {
            user: "fatima".into(),
            device: "dev-2".into(),
        }],
        pull: vec![protocol::PulledCase {
            case_id: case_id.clone(),
            changes: changes
                .iter()
                .map(|c| protocol::PulledChange {
                    data: serde_bytes::ByteBuf::from(c.clone()),
                    author: 0,
                    received_at: 1_800_000_000,
                })
                .collect(),
        }],
        mark: serde_bytes::ByteBuf::from(vec![7; 32]),
        ..suivi_tests::fuzz::nothing_new(3, 0)
    })
    .unwrap();
    let mut chunks = Vec::new();
    for c in &changes {
        chunks.extend((c.len() as u16).to_le_bytes());
        chunks.extend(c);
    }
    let record = serde_json::to_vec(&suivi_tests::child(4)).unwrap();
    let import = serde_json::to_vec(&json!([
        {"child_first_name": "Awa", "child_last_name": "Traoré", "sex": "female",
         "dob_known": "non", "estimated_age": "12", "province": "Sikasso", "commune": "Kadiolo",
         "village": "Zégoua", "school_status": "never_enrolled", "works": "oui",
         "work_sector": "cotton", "risk_level": "high", "consent_to_share": "oui"}
    ]))
    .unwrap();
    let (document, _) =
        suivi_core::case_doc::check::document_of_changes(&changes).expect("a whole history");
    let rows = protocol::encode(&protocol::CaseRows {
        version: protocol::PROTOCOL_VERSION,
        total: 1,
        rows: vec![protocol::CaseRow {
            case_id: case_id.clone(),
            first_name: "Awa".into(),
            last_name: "Traoré".into(),
            sex: Some("female".into()),
            province: None,
            commune: Some("Kadiolo".into()),
            village: Some("Zégoua".into()),
            work_sector: Some("cotton".into()),
            risk_level: Some("high".into()),
            referral_statuses: vec!["sent".into()],
            next_followup_due: Some("2026-11-02".into()),
            referral_count: 1,
            followup_count: 1,
            conflict_count: 0,
            updated_at: 1_800_000_000,
        }],
    })
    .unwrap();
    let stream = protocol::stream::stream_of(&[
        (protocol::stream::FrameKind::Rows, rows),
        (
            protocol::stream::FrameKind::Page,
            zstd::bulk::compress(&page, 3).unwrap(),
        ),
    ]);
    vec![
        ("protocol_decode", push.clone()),
        ("protocol_decode", page.clone()),
        ("server_push", push),
        ("device_page", page),
        ("case_changes", chunks),
        ("form_values", record),
        ("json_import", import),
        ("case_document", document),
        // Version 8: a stream of list rows and a page, as a first sync gets it.
        ("device_page", stream),
    ]
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

#[test]
fn every_seed_corpus_file_and_past_crash_replays_without_a_panic() {
    let seeds = seeds();
    for (name, target) in TARGETS {
        let mut inputs = 0;
        for (_, seed) in seeds.iter().filter(|(n, _)| *n == name) {
            target(seed);
            inputs += 1;
        }
        for dir in ["corpus", "regressions"] {
            for file in files(&fuzz_dir().join(dir).join(name)) {
                target(&std::fs::read(&file).unwrap());
                inputs += 1;
            }
        }
        println!("{name}: {inputs} inputs replayed");
        assert!(inputs > 0, "{name} has no seed");
    }
}

/// Writes the seeds into each target's corpus: `cargo test -p suivi-tests --test fuzz_replay
/// -- --ignored write_seeds`, before a first fuzzing run.
#[test]
#[ignore]
fn write_seeds() {
    for (n, (name, seed)) in seeds().into_iter().enumerate() {
        let dir = fuzz_dir().join("corpus").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{n}")), seed).unwrap();
    }
}

#[test]
fn the_seeds_reach_deep_paths() {
    // A seed that stopped at the first check would leave the fuzzer far from the interesting
    // code: the push seed is stored by the server, the page seed is committed by the device.
    let (case_id, changes) = case_changes();
    assert_eq!(changes.len(), 3);
    let parsed: Vec<_> = changes
        .iter()
        .map(|c| suivi_core::case_doc::check::parse_change(c).unwrap())
        .collect();
    let mut copy = suivi_core::case_doc::check::CaseCheck::load(&case_id, vec![]).unwrap();
    copy.apply(
        parsed,
        suivi_core::case_doc::check::Author {
            user: "amina",
            audit_notes_only: false,
            links_cases: false,
            supervises: false,
        },
        &FormRegistry::builtin(),
    )
    .unwrap();
}

fn regression(target: &str, name: &str) -> Vec<u8> {
    std::fs::read(fuzz_dir().join("regressions").join(target).join(name)).unwrap()
}

/// Found by `device_page` (2026-11-24): a page whose pulled change makes Automerge 0.12 panic
/// while importing it (`op_set2/change/batch.rs`, an actor index it does not have). The panic
/// is contained: the case is set aside, the sync completes and the store still reads.
#[test]
fn a_pulled_change_that_makes_automerge_panic_is_quarantined_not_a_crash() {
    let page = regression("device_page", "automerge-panics-importing-a-pulled-change");
    let mut quarantined = 0;
    for body in [page.clone(), zstd::bulk::compress(&page, 1).unwrap()] {
        let dir = tempfile::tempdir().unwrap();
        let mut phone =
            suivi_core::Store::create(&dir.path().join("p.db"), "k", "amina", "phone").unwrap();
        let server = suivi_tests::fuzz::HostileServer::new(body);
        phone.enroll(&server, "http://hostile", "CODE").unwrap();
        if let Ok(report) = phone.sync(&server, &mut |_| {}) {
            quarantined += report.quarantined.len();
        }
        phone
            .list_cases(&suivi_core::CaseFilter::default())
            .unwrap();
    }
    assert!(quarantined > 0, "the case that panicked was set aside");
}

/// What the server's case check says about a `case_changes` input: the refusal from loading
/// its first half as stored history or applying the rest as a push.
fn case_changes_refusal(name: &str) -> suivi_core::case_doc::check::ChangeRefusal {
    use suivi_core::case_doc::check::{self, CaseCheck};
    let data = regression("case_changes", name);
    let parsed: Vec<_> = suivi_tests::fuzz::chunks(&data)
        .into_iter()
        .filter_map(|c| check::parse_change(c).ok())
        .collect();
    let (stored, pushed) = parsed.split_at(parsed.len() / 2);
    match CaseCheck::load("c0ffee00c0ffee00c0ffee00c0ffee00", stored.to_vec()) {
        Err(refusal) => refusal,
        Ok(mut copy) => copy
            .apply(
                pushed.to_vec(),
                check::Author {
                    user: "amina",
                    audit_notes_only: false,
                    links_cases: false,
                    supervises: false,
                },
                &FormRegistry::builtin(),
            )
            .unwrap_err(),
    }
}

/// Found by `case_changes` (2026-11-24): change chunks that each parse, but whose history makes
/// Automerge 0.12 panic while loading it ("Obj … Missing from Index"). Refused as malformed.
#[test]
fn a_history_that_makes_automerge_panic_is_refused_as_malformed() {
    let refusal = case_changes_refusal("automerge-panics-loading-a-stored-history");
    assert!(
        matches!(refusal, suivi_core::case_doc::check::ChangeRefusal::Malformed(why) if why.contains("panicked")),
        "{refusal:?}"
    );
}

/// Found by `case_changes` (2026-11-24), a real bug: Automerge 0.12 panics looking up a change
/// by hash in a history a hostile peer built (`get_change_by_hash`, an unwrap on a missing
/// dependency), and that lookup ran outside `catch_unwind`: a push could end in a panic (a 500
/// from the server). Now contained and refused.
#[test]
fn a_dependency_lookup_that_makes_automerge_panic_is_refused_as_malformed() {
    let refusal = case_changes_refusal("automerge-panics-looking-up-a-dependency");
    assert!(
        matches!(refusal, suivi_core::case_doc::check::ChangeRefusal::Malformed(why) if why.contains("panicked")),
        "{refusal:?}"
    );
}

/// Found by `case_changes` (2026-11-25), a real bug: a change ending a text mark on a map key
/// makes Automerge 0.12 panic while applying it, then panic again in a destructor while
/// unwinding, which aborts the process: `catch_unwind` cannot contain it, so a hostile device
/// could abort the server (and a hostile server the app). Suivi never writes marks: such a change
/// is now refused when it is parsed, before Automerge applies anything.
#[test]
fn a_change_that_makes_automerge_abort_is_refused_before_it_is_applied() {
    use suivi_core::case_doc::check::{self, ChangeRefusal};
    let data = regression(
        "case_changes",
        "automerge-aborts-undoing-a-text-mark-on-a-map",
    );
    let refusals: Vec<_> = suivi_tests::fuzz::chunks(&data)
        .into_iter()
        .filter_map(|c| check::parse_change(c).err())
        .collect();
    assert!(
        refusals.contains(&ChangeRefusal::Malformed("text marks")),
        "{refusals:?}"
    );
    // Nothing of it is left to apply: the whole input replays without reaching Automerge.
    suivi_tests::fuzz::case_changes(&data);
}
