//! Every console page and export, walked in French and Arabic over a seeded project, read as a
//! person reads it: no raw field key, no document path, no 32-hex id standing alone, no
//! timestamp to the nanosecond, no English code where the forms have a label. The raw-path view
//! of a history (`details.raw`) and an id beside its name (a `code` element, a file's id column)
//! are exempt.

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::json;
use suivi_core::forms::{FormRegistry, FOLLOWUP, IDENTIFICATION, REFERRAL};
use suivi_core::Transition;
use suivi_tests::child;

use crate::console::Console;

/// The text a reader sees: scripts, styles, the raw-path view, ids shown in `code` beside their
/// names and tag attributes left out, entities read.
fn visible(html: &str) -> String {
    let mut text = html.to_string();
    for pattern in [
        r"(?s)<style.*?</style>",
        r"(?s)<script.*?</script>",
        r"(?s)<details class=.raw.*?</details>",
        r"(?s)<code[^>]*>.*?</code>",
        r"(?s)<title>.*?</title>",
        r"(?s)<option[^>]*>",
    ] {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, " ")
            .into_owned();
    }
    let text = Regex::new(r"(?s)<[^>]*>").unwrap().replace_all(&text, " ");
    text.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

/// Words a person should never read on a French or Arabic page: every field id, choice code and
/// status code the forms label, and the booleans.
fn codes(forms: &FormRegistry) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for form in [IDENTIFICATION, REFERRAL, FOLLOWUP] {
        for f in forms.versions(form) {
            for field in &f.fields {
                // An id that is the French word ("commune") reads as a word.
                if suivi_core::names::fold(field.label.get(suivi_core::Lang::Fr)) != field.id {
                    out.insert(field.id.clone());
                }
                for c in &field.choices {
                    // A code spelled as its French label (a village, "Fès") reads as a word.
                    if c.label.get(suivi_core::Lang::Fr) != c.id {
                        out.insert(c.id.clone());
                    }
                }
            }
        }
    }
    for status in [
        "draft",
        "sent",
        "accepted",
        "declined",
        "in_service",
        "completed",
        "closed",
        "transferred",
        "disputed",
        "true",
        "false",
        "supervisor",
        "officer",
    ] {
        out.insert(status.to_string());
    }
    out
}

/// What a page or file shows that a person should not read, each finding with its context.
fn findings(text: &str, codes: &BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    let checks = [
        (
            "document path",
            r"\b(identification|referrals|followups|audit_notes)\.[A-Za-z0-9_\-]+",
        ),
        ("id standing alone", r"\b[0-9a-f]{32}\b"),
        ("nanoseconds", r"\d{2}:\d{2}:\d{2}\.\d{3,}"),
        ("RFC 3339 time", r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"),
    ];
    for (what, pattern) in checks {
        for m in Regex::new(pattern).unwrap().find_iter(text) {
            found.push(format!(
                "{what} `{}`: {}",
                m.as_str(),
                context(text, m.start(), m.end())
            ));
        }
    }
    // Words of any script, a hyphenated name ("amina-phone") one word: "téléphone" holds no
    // `phone`.
    let word = Regex::new(r"[\p{L}_][\p{L}\p{N}_\-]*").unwrap();
    for m in word.find_iter(text) {
        if codes.contains(m.as_str()) {
            found.push(format!(
                "code `{}`: {}",
                m.as_str(),
                context(text, m.start(), m.end())
            ));
        }
    }
    found
}

fn context(text: &str, start: usize, end: usize) -> String {
    let from = text[..start]
        .char_indices()
        .rev()
        .nth(40)
        .map_or(0, |(i, _)| i);
    let to = text[end..]
        .char_indices()
        .nth(40)
        .map_or(text.len(), |(i, _)| end + i);
    text[from..to]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A project with something on every page: a transferred referral chain with a visit, a child
/// in service, a conflict two phones made, the same child registered twice, another team.
fn seeded() -> (suivi_tests::TestServer, Vec<String>) {
    let server = crate::audit::two_teams_and_an_officer();
    let (transferred, _, _, served) = crate::audit::a_small_project(&server);
    let mut amina = server.device("amina");
    let mut karim = server.device("karim");
    let mut fatima = server.device("fatima");
    amina.sync().unwrap();
    fatima.sync().unwrap();
    // A conflict: the agent's and the supervisor's phones change the village offline.
    for (device, village) in [(&mut amina, "Kaniko"), (&mut fatima, "Ninkina")] {
        device
            .store
            .edit_case(
                &served,
                &suivi_core::Record::from_iter([("village".to_string(), json!(village))]),
            )
            .unwrap();
    }
    amina.sync().unwrap();
    fatima.sync().unwrap();
    // The same child twice, and a referral declined with a note.
    let mut awa = child(20);
    awa.insert("child_first_name".into(), json!("Awa"));
    awa.insert("child_last_name".into(), json!("Coulibaly"));
    let first = amina.store.create_case(&awa).unwrap();
    awa.insert("child_last_name".into(), json!("Koulibaly"));
    let second = karim.store.create_case(&awa).unwrap();
    let r = amina
        .store
        .refer(&first, &suivi_tests::referral(3))
        .unwrap();
    amina
        .store
        .transition_referral(&r, Transition::Send, None, None)
        .unwrap();
    amina
        .store
        .transition_referral(&r, Transition::Decline, Some("pas de place"), None)
        .unwrap();
    amina.sync().unwrap();
    karim.sync().unwrap();
    (server, vec![transferred, served, first, second])
}

#[test]
fn every_page_and_export_reads_in_words_in_french_and_arabic() {
    let (server, cases) = seeded();
    let forms = FormRegistry::builtin();
    let codes = codes(&forms);
    let mut all = Vec::new();
    for user in ["fatima", "odile"] {
        let mut console = Console::signed_in(&server, user);
        for lang in ["fr", "ar"] {
            console.get(&format!("/console/lang/{lang}?back=/console/cases"));
            let mut paths: Vec<String> = [
                "/console/cases",
                "/console/cases?sort=due",
                "/console/cases?sort=risk&village=kad",
                "/console/cases?conflicts=1",
                "/console/agents",
                "/console/duplicates",
                "/console/referrals?days=1",
                "/console/indicators",
                "/console/indicators?by=sex",
                "/console/indicators?by=age",
                "/console/indicators?by=month",
                "/console/indicators?by=sector",
                "/console/access-log",
            ]
            .iter()
            .map(|p| p.to_string())
            .collect();
            paths.extend(cases.iter().map(|c| format!("/console/cases/{c}")));
            for path in &paths {
                let (status, page, _) = console.get(path);
                if status == reqwest::StatusCode::FORBIDDEN {
                    // A page this role may not read says so, in words.
                    all.extend(
                        findings(&visible(&page), &codes)
                            .into_iter()
                            .map(|f| format!("{user} {lang} {path}: {f}")),
                    );
                    continue;
                }
                assert_eq!(status, reqwest::StatusCode::OK, "{user} {lang} {path}");
                all.extend(
                    findings(&visible(&page), &codes)
                        .into_iter()
                        .map(|f| format!("{user} {lang} {path}: {f}")),
                );
            }
            // Files in labels, the id column (beside the child's name on every row) left out.
            for file in [
                "cases.csv",
                "referrals.csv",
                "followups.csv",
                "indicators.csv?by=commune",
            ] {
                let path = if file.starts_with("indicators") {
                    format!("/console/{file}")
                } else {
                    format!("/console/export/{file}")
                };
                let (status, bytes, _) = console.get_bytes(&path);
                assert_eq!(status, reqwest::StatusCode::OK, "{path}");
                let mut reader = csv::Reader::from_reader(&bytes[3..]);
                let headers = reader.headers().unwrap().clone();
                let ids: Vec<usize> = headers
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i == 0 && !file.starts_with("indicators"))
                    .map(|(i, _)| i)
                    .collect();
                let mut text: Vec<String> = headers.iter().map(str::to_string).collect();
                for row in reader.records() {
                    let row = row.unwrap();
                    text.extend(
                        row.iter()
                            .enumerate()
                            .filter(|(i, _)| !ids.contains(i))
                            // Referral chains name the link before by its id, beside the
                            // child's name on the same row.
                            .filter(|(_, cell)| {
                                !(cell.len() == 32 && cell.chars().all(|c| c.is_ascii_hexdigit()))
                            })
                            .map(|(_, cell)| cell.to_string()),
                    );
                }
                all.extend(
                    findings(&text.join(" | "), &codes)
                        .into_iter()
                        .map(|f| format!("{user} {lang} {path}: {f}")),
                );
            }
        }
    }
    assert!(
        all.is_empty(),
        "{} findings:\n{}",
        all.len(),
        all.join("\n")
    );

    // The reading catches what it looks for: the same file as codes, a raw history, a time
    // to the nanosecond.
    let mut odile = Console::signed_in(&server, "odile");
    let (_, codes_file, _) = odile.get("/console/export/followups.csv?values=codes");
    let caught = findings(&codes_file, &codes);
    assert!(
        caught.iter().any(|f| f.contains("`false`"))
            && caught.iter().any(|f| f.contains("`vocational_training`")),
        "{caught:?}"
    );
    for (text, what) in [
        ("referrals.cc9fa67d.status : sent", "document path"),
        ("le 2026-03-02T14:05:09.123456789Z", "nanoseconds"),
        (
            "dossier 27c471c8aa1645fe915bbc778e800bd9",
            "id standing alone",
        ),
    ] {
        assert!(
            findings(text, &codes).iter().any(|f| f.starts_with(what)),
            "{text}"
        );
    }
}
