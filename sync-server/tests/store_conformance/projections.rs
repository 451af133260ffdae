//! Case summaries, lists, indicators, referral views and duplicates.

use crate::*;

/// The officer's indicators and referral views read the projections written with each push:
/// grouped, scoped to the reader, the merged-away case left out, spellings of one place kept
/// apart under its key, time in each status counted, stuck referrals oldest first, and all of
/// a case gone with its erasure.
pub fn indicators_and_referral_views_read_the_projections(s: Subject) {
    use suivi_server::storage::{CaseIndicators, ReferralSummary};
    let store = s.store.as_ref();
    team(store);
    agent_with_device(store, "moussa", "souk-sebt");
    const DAY: i64 = 86_400;
    let write =
        |n: usize, commune: &str, counted: bool, referrals: Vec<ReferralSummary>, service: bool| {
            let summary = CaseSummary {
                case_id: case_id(n),
                first_name: format!("Child{n}"),
                birth_year: Some(2014 - n as i32),
                next_followup_due: Some(
                    if n.is_multiple_of(2) {
                        "2026-01-01"
                    } else {
                        "2027-01-01"
                    }
                    .into(),
                ),
                ..Default::default()
            };
            SummaryWrite {
                summary,
                change_count: 1,
                indicators: CaseIndicators {
                    counted,
                    identified_on: Some(format!("2026-0{}-15", 1 + n % 2)),
                    province: Some("Sikasso".into()),
                    province_key: Some("sikasso".into()),
                    commune: Some(commune.into()),
                    commune_key: Some(suivi_server::summary::place_key(commune)),
                    sector: Some("cotton".into()),
                    sex: Some(if n == 1 { "male" } else { "female" }.into()),
                    referred: !referrals.is_empty(),
                    service,
                    stopped_working: Some(service),
                    days_to_service: service.then_some(10 * n as i64),
                    // Case 2 exited (withdrawn) and was closed; case 3 was reopened once and
                    // has a closure proposed; every case made two visits, one on time.
                    stage: if service { "exited" } else { "identified" }.into(),
                    classification: service.then(|| "withdrawn".into()),
                    closure: match n {
                        2 => Some("closed".into()),
                        3 => Some("proposed".into()),
                        _ => None,
                    },
                    closed_reason: (n == 2).then(|| "moved_away".into()),
                    reopenings: i64::from(n == 3),
                    visits_scheduled: 2,
                    visits_on_time: 1,
                    ..Default::default()
                },
                referrals,
                ..SummaryWrite::default()
            }
        };
    let referral = |id: &str, status: &str, since: i64, secs_sent: Option<i64>| ReferralSummary {
        referral_id: id.into(),
        service_type: Some("health".into()),
        urgency: Some("priority".into()),
        provider: Some("CSCOM Misséni".into()),
        provider_key: Some("cscom misseni".into()),
        status: status.into(),
        created_at: Some(NOW - 30 * DAY),
        status_since: Some(since),
        secs_in: [None, secs_sent, None, None, None],
    };
    let cases = [
        write(
            1,
            "Kadiolo",
            true,
            vec![referral("r1", "sent", NOW - 20 * DAY, None)],
            false,
        ),
        write(
            2,
            "kadiolo",
            true,
            vec![referral("r2", "in_service", NOW - 2 * DAY, Some(3 * DAY))],
            true,
        ),
        write(3, "Misséni", true, vec![], false),
        // Merged into another: not counted again.
        write(4, "Kadiolo", false, vec![], false),
    ];
    // What exports read: case 1's referral and visit, as core reads them.
    let records = suivi_server::storage::CaseRecords {
        referrals: vec![suivi_core::case_doc::Referral {
            id: "r1".into(),
            status: "sent".into(),
            form_version: 1,
            fields: serde_json::from_value(serde_json::json!({"provider": "CSCOM Misséni"}))
                .unwrap(),
            created_at: "2026-01-15T09:00:00Z".into(),
            created_by: "amina".into(),
            previous_referral: None,
            next_referral: None,
            transitions: Vec::new(),
        }],
        followups: vec![suivi_core::case_doc::FollowUp {
            id: "f1".into(),
            form_version: 1,
            fields: serde_json::from_value(serde_json::json!({"notes": "Vu à l'école"})).unwrap(),
            created_at: "2026-02-01T10:00:00Z".into(),
            created_by: "amina".into(),
        }],
    };
    for (n, mut w) in cases.into_iter().enumerate() {
        if n == 0 {
            w.records = records.clone();
        }
        let mut accepted = case(&case_id(n + 1), Some("amina"), 1, 8);
        accepted.summary = Some(w);
        store
            .store_changes("dev-amina", &[accepted], None, NOW)
            .unwrap();
    }
    // Another team's case, out of Fatima's scope.
    let mut other = case(&case_id(9), Some("moussa"), 1, 8);
    other.new_case = Some(("moussa".into(), "souk-sebt".into()));
    other.summary = Some(write(9, "Zégoua", true, vec![], true));
    store
        .store_changes("dev-moussa", &[other], None, NOW)
        .unwrap();

    let fatima = user("fatima", Role::Supervisor, "sikasso");
    let omar = user("omar", Role::Officer, "project");
    let cells = store.indicator_cells(&fatima, "2026-06-01").unwrap();
    let total = |f: &dyn Fn(&suivi_server::storage::IndicatorCell) -> u64| -> u64 {
        cells.iter().map(f).sum()
    };
    assert_eq!(
        total(&|c| c.cases),
        3,
        "the merged-away case is not counted"
    );
    assert_eq!(total(&|c| c.referred), 2);
    assert_eq!(total(&|c| c.service), 1);
    assert_eq!(total(&|c| c.stopped_working), 1);
    assert_eq!(
        total(&|c| c.overdue),
        1,
        "case 2's follow-up was due 2026-01-01"
    );
    let kadiolo: u64 = cells
        .iter()
        .filter(|c| c.commune_key.as_deref() == Some("kadiolo"))
        .map(|c| c.cases)
        .sum();
    assert_eq!(kadiolo, 2, "two spellings, one commune");
    // Sex, age at identification (2026 less the birth year), agent and team.
    let by = |f: &dyn Fn(&suivi_server::storage::IndicatorCell) -> bool| -> u64 {
        cells.iter().filter(|c| f(c)).map(|c| c.cases).sum()
    };
    assert_eq!(by(&|c| c.sex.as_deref() == Some("female")), 2);
    assert_eq!(by(&|c| c.sex.as_deref() == Some("male")), 1);
    assert_eq!(by(&|c| c.age == Some(13)), 1, "case 1: born 2013");
    assert_eq!(by(&|c| c.age == Some(15)), 1, "case 3: born 2011");
    assert_eq!(by(&|c| c.agent == "amina" && c.team == "sikasso"), 3);
    // Outcomes and closures, summed the same on every store.
    assert_eq!(
        (
            total(&|c| c.withdrawn),
            total(&|c| c.exited),
            total(&|c| c.prevented),
            total(&|c| c.relapsed)
        ),
        (1, 1, 0, 0)
    );
    assert_eq!(by(&|c| c.closed_reason.as_deref() == Some("moved_away")), 1);
    assert_eq!((total(&|c| c.proposed), total(&|c| c.reopened)), (1, 1));
    assert_eq!(
        (total(&|c| c.visits_scheduled), total(&|c| c.visits_on_time)),
        (6, 3)
    );
    assert!(cells
        .iter()
        .any(|c| c.month == "2026-01" && c.days_to_service == Some(20)));
    assert_eq!(
        store
            .indicator_cells(&omar, "2026-06-01")
            .unwrap()
            .iter()
            .map(|c| c.cases)
            .sum::<u64>(),
        4,
        "an officer reads the whole project"
    );
    let spellings = store
        .place_spellings(&fatima, &["province", "commune", "agent", "nonsense"])
        .unwrap();
    assert!(spellings
        .iter()
        .any(|s| s.kind == "agent" && s.key == "amina" && s.cases == 3));
    assert!(spellings.iter().all(|s| s.kind != "nonsense"));
    let kadiolo: Vec<(&str, u64)> = spellings
        .iter()
        .filter(|s| s.kind == "commune" && s.key == "kadiolo")
        .map(|s| (s.spelling.as_str(), s.cases))
        .collect();
    assert_eq!(kadiolo, [("Kadiolo", 1), ("kadiolo", 1)]);

    let groups = store.referral_groups(&fatima, NOW).unwrap();
    assert_eq!(groups.len(), 2);
    let sent = groups.iter().find(|g| g.status == "sent").unwrap();
    assert_eq!(sent.referrals, 1);
    assert_eq!(sent.provider.as_deref(), Some("CSCOM Misséni"));
    assert_eq!(
        sent.time_in[1],
        (20 * DAY, 1),
        "still sent: counted up to now"
    );
    let in_service = groups.iter().find(|g| g.status == "in_service").unwrap();
    assert_eq!(
        in_service.time_in[1],
        (3 * DAY, 1),
        "three days sent before"
    );
    assert_eq!(in_service.time_in[4], (2 * DAY, 1));

    let stuck = |before: i64, agent: Option<&str>, service: Option<&str>, offset: u64| {
        store
            .stuck_referrals(
                &fatima,
                &suivi_server::storage::StuckQuery {
                    before,
                    agent: agent.map(str::to_string),
                    service_type: service.map(str::to_string),
                    offset,
                    limit: 1,
                },
            )
            .unwrap()
    };
    let ids = |list: &suivi_server::storage::StuckList| -> Vec<String> {
        list.referrals
            .iter()
            .map(|r| r.referral_id.clone())
            .collect()
    };
    let old = stuck(NOW - 14 * DAY, None, None, 0);
    assert_eq!((ids(&old), old.total), (vec!["r1".to_string()], 1));
    let r1 = &old.referrals[0];
    assert_eq!(r1.case_id, case_id(1));
    assert_eq!(
        (r1.agent.as_str(), r1.urgency.as_deref()),
        ("amina", Some("priority"))
    );
    assert_eq!(stuck(NOW - 30 * DAY, None, None, 0).total, 0);
    // Every referral not done since before now, a page of one at a time, oldest first.
    let all = stuck(NOW, None, None, 0);
    assert_eq!((ids(&all), all.total), (vec!["r1".to_string()], 2));
    assert_eq!(ids(&stuck(NOW, None, None, 1)), ["r2"]);
    assert!(stuck(NOW, None, None, 2).referrals.is_empty());
    assert_eq!(
        stuck(NOW, Some("Amina"), None, 0).total,
        2,
        "an agent in any case"
    );
    assert_eq!(stuck(NOW, Some("karim"), None, 0).total, 0);
    assert_eq!(stuck(NOW, None, Some("health"), 0).total, 2);
    assert_eq!(
        stuck(NOW, None, Some("school_or_bridging_class"), 0).total,
        0
    );

    let held = store
        .case_records(&[case_id(1), case_id(3), "0".repeat(32)])
        .unwrap();
    let held: std::collections::HashMap<_, _> = held.into_iter().collect();
    assert_eq!(held[&case_id(1)], records);
    assert_eq!(
        held[&case_id(3)],
        Default::default(),
        "a case without records"
    );
    assert_eq!(held.len(), 2, "a case not held is not listed");

    store.erase_case(&case_id(1), NOW).unwrap();
    assert!(
        store.case_records(&[case_id(1)]).unwrap().is_empty(),
        "erased with the case"
    );
    assert!(stuck(NOW, None, None, 0)
        .referrals
        .iter()
        .all(|r| r.case_id != case_id(1)));
    assert_eq!(
        store
            .indicator_cells(&fatima, "2026-06-01")
            .unwrap()
            .iter()
            .map(|c| c.cases)
            .sum::<u64>(),
        2
    );
    // A case with two referrals: both kept.
    let mut two = case(&case_id(5), Some("amina"), 1, 8);
    two.summary = Some(write(
        5,
        "Kadiolo",
        true,
        vec![
            referral("r5a", "closed", NOW - DAY, None),
            referral("r5b", "closed", NOW - DAY, None),
        ],
        false,
    ));
    store.store_changes("dev-amina", &[two], None, NOW).unwrap();
    let closed = store
        .referral_groups(&fatima, NOW)
        .unwrap()
        .into_iter()
        .find(|g| g.status == "closed")
        .unwrap();
    assert_eq!(closed.referrals, 2);
}

/// The ids `list_cases` finds for `query`; and the same as an export finds them, walking the
/// reader's scope with `CaseQuery::matches`.
fn listed_ids(store: &dyn ServerStore, reader: &User, query: CaseQuery) -> Vec<String> {
    let kept: Vec<String> = store
        .scoped_cases(reader, "", 1000)
        .unwrap()
        .into_iter()
        .filter(|c| query.matches(c))
        .map(|c| c.summary.case_id)
        .collect();
    let list = store
        .list_cases(
            reader,
            &CaseQuery {
                limit: 100,
                ..query
            },
        )
        .unwrap();
    let mut ids: Vec<String> = list
        .cases
        .iter()
        .map(|c| c.summary.case_id.clone())
        .collect();
    assert_eq!(ids.len() as u64, list.total, "one page holds them all");
    ids.sort();
    assert_eq!(kept, ids, "an export's filter keeps what the list shows");
    ids
}

/// The console's projections: written with the push that changed the case, listed by the
/// reader's scope, filtered and searched, removed by erasure.
pub fn case_summaries_are_listed_by_scope_filtered_and_erased(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    store
        .add_user(&user("ali", Role::Supervisor, "souk-sebt"), NOW)
        .unwrap();
    agent_with_device(store, "moussa", "souk-sebt");
    let batch = [
        summarized(1, "amina", 2, |s| {
            s.first_name = "Mohammed".into();
            s.last_name = "El-Idrissi".into();
            s.risk_level = Some("high".into());
            s.referral_statuses = vec!["accepted".into(), "sent".into()];
            s.next_followup_due = Some("2026-01-10".into());
        }),
        summarized(2, "amina", 1, |s| {
            s.first_name = "Aïcha".into();
            s.village = Some("Aït Ourir".into());
            s.conflict_count = 2;
            s.referral_statuses = vec!["disputed".into(), "in_service".into()];
        }),
        summarized(3, "karim", 1, |s| {
            s.first_name = "Muhammad".into();
            s.risk_level = Some("low".into());
            s.next_followup_due = Some("2026-03-01".into());
        }),
    ];
    store
        .store_changes("dev-amina", &batch[..2], None, NOW)
        .unwrap();
    store
        .store_changes("dev-karim", &batch[2..], None, NOW + 5)
        .unwrap();
    let elsewhere = summarized(4, "moussa", 1, |s| s.first_name = "Mohamed".into());
    let elsewhere = AcceptedCase {
        new_case: Some(("moussa".into(), "souk-sebt".into())),
        ..elsewhere
    };
    store
        .store_changes("dev-moussa", &[elsewhere], None, NOW)
        .unwrap();

    let fatima = user("fatima", Role::Supervisor, "sikasso");
    let amina = user("amina", Role::Agent, "sikasso");
    let ali = user("ali", Role::Supervisor, "souk-sebt");
    let omar = user("omar", Role::Officer, "project");
    let all = CaseQuery::default();
    let ids = |ns: &[usize]| ns.iter().map(|n| case_id(*n)).collect::<Vec<_>>();
    assert_eq!(listed_ids(store, &fatima, all.clone()), ids(&[1, 2, 3]));
    assert_eq!(listed_ids(store, &amina, all.clone()), ids(&[1, 2]));
    assert_eq!(listed_ids(store, &ali, all.clone()), ids(&[4]));
    assert_eq!(listed_ids(store, &omar, all.clone()), ids(&[1, 2, 3, 4]));

    // Newest first: Karim's push came last.
    let page = store
        .list_cases(
            &fatima,
            &CaseQuery {
                limit: 2,
                ..all.clone()
            },
        )
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.cases.len(), 2);
    assert_eq!(page.cases[0].summary.case_id, case_id(3));
    assert_eq!(page.cases[0].created_by, "karim");
    assert_eq!(page.cases[0].team, "sikasso");
    assert_eq!(page.cases[0].updated_at, NOW + 5);
    let rest = store
        .list_cases(
            &fatima,
            &CaseQuery {
                limit: 2,
                offset: 2,
                ..all.clone()
            },
        )
        .unwrap();
    assert_eq!((rest.total, rest.cases.len()), (3, 1));

    let q = |shape: fn(&mut CaseQuery)| {
        let mut query = CaseQuery::default();
        shape(&mut query);
        query
    };
    // Transliterations: Mohamed finds Mohammed and Muhammad; a prefix from three letters.
    for text in ["Mohamed", "muhamad", "moh"] {
        let query = CaseQuery {
            name_terms: suivi_core::names::query_terms(text),
            ..Default::default()
        };
        assert_eq!(listed_ids(store, &fatima, query), ids(&[1, 3]), "{text}");
    }
    let query = CaseQuery {
        name_terms: suivi_core::names::query_terms("mohamed el idrissi"),
        ..Default::default()
    };
    assert_eq!(listed_ids(store, &fatima, query), ids(&[1]));
    let query = CaseQuery {
        village_key: Some(suivi_server::summary::place_key("ait-ourir")),
        ..Default::default()
    };
    assert_eq!(listed_ids(store, &fatima, query), ids(&[2]));
    assert_eq!(
        listed_ids(store, &fatima, q(|q| q.agent = Some("karim".into()))),
        ids(&[3])
    );
    assert_eq!(
        listed_ids(store, &fatima, q(|q| q.agent = Some("Karim".into()))),
        ids(&[3]),
        "an agent in any case"
    );
    // A village by its beginning, from three letters; a shorter one only whole.
    for (typed, expected) in [
        ("kan", ids(&[1, 3])),
        ("KANIKO", ids(&[1, 3])),
        ("ait o", ids(&[2])),
        ("Aït-Our", ids(&[2])),
        ("ka", vec![]),
        ("niko", vec![]),
    ] {
        let query = CaseQuery {
            village_key: Some(suivi_server::summary::place_key(typed)),
            ..Default::default()
        };
        assert_eq!(listed_ids(store, &fatima, query), expected, "{typed}");
    }
    // Orders: last change first; the most overdue visit first (none due last); the highest
    // risk first. Each as `CaseSort::key` orders the cases, page by page.
    use suivi_server::storage::CaseSort;
    for (sort, expected) in [
        (CaseSort::Updated, ids(&[3, 1, 2])),
        (CaseSort::Due, ids(&[1, 3, 2])),
        (CaseSort::Risk, ids(&[1, 3, 2])),
    ] {
        let mut ordered = Vec::new();
        for offset in 0..3 {
            let page = store
                .list_cases(
                    &fatima,
                    &CaseQuery {
                        sort,
                        offset,
                        limit: 1,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert_eq!(page.total, 3);
            ordered.extend(page.cases.into_iter().map(|c| c.summary.case_id));
        }
        assert_eq!(ordered, expected, "{sort:?}");
        let mut by_key = store.scoped_cases(&fatima, "", 100).unwrap();
        by_key.sort_by_key(|c| (sort.key(c), c.summary.case_id.clone()));
        let by_key: Vec<String> = by_key.into_iter().map(|c| c.summary.case_id).collect();
        assert_eq!(by_key, expected, "{sort:?}: the key the stores sort by");
    }
    assert_eq!(
        listed_ids(store, &fatima, q(|q| q.risk_level = Some("high".into()))),
        ids(&[1])
    );
    assert_eq!(
        listed_ids(
            store,
            &fatima,
            q(|q| q.referral_status = Some("sent".into()))
        ),
        ids(&[1])
    );
    // A status is matched whole: "service" is not "in_service".
    assert!(listed_ids(
        store,
        &fatima,
        q(|q| q.referral_status = Some("service".into()))
    )
    .is_empty());
    assert_eq!(
        listed_ids(
            store,
            &fatima,
            q(|q| q.referral_status = Some("disputed".into()))
        ),
        ids(&[2])
    );
    assert_eq!(
        listed_ids(
            store,
            &fatima,
            q(|q| q.due_before = Some("2026-02-01".into()))
        ),
        ids(&[1])
    );
    assert_eq!(
        listed_ids(store, &fatima, q(|q| q.conflicts_only = true)),
        ids(&[2])
    );
    // Criteria add up, and never widen the scope.
    assert!(listed_ids(
        store,
        &ali,
        CaseQuery {
            name_terms: suivi_core::names::query_terms("mohammed"),
            ..Default::default()
        }
    )
    .iter()
    .all(|id| *id == case_id(4)));

    let listed = store.listed_case(&case_id(1)).unwrap().unwrap();
    assert_eq!(listed.summary.last_name, "El-Idrissi");
    assert_eq!(listed.summary.referral_statuses, vec!["accepted", "sent"]);
    let origins = store.change_origins(&case_id(1)).unwrap();
    assert_eq!(origins.len(), 2);
    assert!(origins
        .iter()
        .all(|o| o.user_id == "amina" && o.device_id == "dev-amina" && o.received_at == NOW));

    assert!(store.erase_case(&case_id(1), NOW).unwrap());
    assert!(store.listed_case(&case_id(1)).unwrap().is_none());
    let query = CaseQuery {
        name_terms: suivi_core::names::query_terms("idrissi"),
        ..Default::default()
    };
    assert!(listed_ids(store, &omar, query).is_empty());
    assert!(store.summaries_to_refresh(10).unwrap().is_empty());
}

/// A summary computed from fewer changes than the store holds (another push to the case
/// committed in between) is kept but marked stale, and listed for a refresh; a refresh from
/// every change clears it. Cases stored with no summary are listed for a refresh too.
pub fn a_summary_behind_its_case_is_marked_stale(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    store
        .store_changes("dev-amina", &[summarized(1, "amina", 2, |_| {})], None, NOW)
        .unwrap();
    assert!(store.summaries_to_refresh(10).unwrap().is_empty());
    // Karim's push of one more change, summarized from the two it knew of plus its own: 3.
    // Amina's, racing it, summarized from 2 + 1 = 3 as well, but the case now holds 4.
    let mut karim = summarized(1, "amina", 3, |s| s.first_name = "Karim's view".into());
    karim.new_case = None;
    karim.changes = vec![("k-1".into(), vec![1])];
    store
        .store_changes("dev-karim", &[karim], None, NOW + 1)
        .unwrap();
    let mut amina = summarized(1, "amina", 3, |s| s.first_name = "Amina's view".into());
    amina.new_case = None;
    amina.changes = vec![("a-1".into(), vec![2])];
    store
        .store_changes("dev-amina", &[amina], None, NOW + 2)
        .unwrap();
    assert_eq!(store.summaries_to_refresh(10).unwrap(), vec![case_id(1)]);
    // Still listed meanwhile, with the newest time.
    let listed = store.listed_case(&case_id(1)).unwrap().unwrap();
    assert_eq!(listed.updated_at, NOW + 2);
    let refreshed = match summarized(1, "amina", 4, |s| s.first_name = "Both".into()).summary {
        Some(s) => s,
        None => unreachable!(),
    };
    store.write_summaries(&[refreshed]).unwrap();
    assert!(store.summaries_to_refresh(10).unwrap().is_empty());
    assert_eq!(
        store
            .listed_case(&case_id(1))
            .unwrap()
            .unwrap()
            .summary
            .first_name,
        "Both"
    );
    // A computation from fewer changes, finishing late, never overwrites a newer one.
    let late = match summarized(1, "amina", 3, |s| s.first_name = "Late".into()).summary {
        Some(s) => s,
        None => unreachable!(),
    };
    store.write_summaries(&[late]).unwrap();
    assert_eq!(
        store
            .listed_case(&case_id(1))
            .unwrap()
            .unwrap()
            .summary
            .first_name,
        "Both"
    );
    // A case stored without a summary (before projections existed) waits for one.
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(2), Some("amina"), 1, 8)],
            None,
            NOW,
        )
        .unwrap();
    assert_eq!(store.summaries_to_refresh(10).unwrap(), vec![case_id(2)]);
    // A summary for a case the server does not hold is not written.
    let ghost = summarized(9, "amina", 1, |_| {}).summary.unwrap();
    store.write_summaries(&[ghost]).unwrap();
    assert!(store.listed_case(&case_id(9)).unwrap().is_none());
}

/// Duplicate candidates: the same name however spelled, the same commune, birth years at most a
/// year apart, in the reader's scope; a pair marked as two children is no longer proposed.
pub fn duplicate_candidates_by_name_commune_and_birth_year(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    agent_with_device(store, "moussa", "souk-sebt");
    let child = |n: usize, first: &str, last: &str, commune: &str, year: i32| {
        let (first, last, commune) = (first.to_string(), last.to_string(), commune.to_string());
        summarized(n, "amina", 1, move |s| {
            s.first_name = first;
            s.last_name = last;
            s.commune = Some(commune);
            s.birth_year = Some(year);
        })
    };
    let batch = [
        child(1, "Mohamed", "El-Idrissi", "Kadiolo", 2014),
        child(2, "Muhammad", "El Idrissi", "kadiolo", 2015),
        child(3, "Mohammed", "El Idrissi", "Kadiolo", 2010), // four years apart
        child(4, "Mohamed", "El-Idrissi", "Zégoua", 2014),   // another commune
        child(5, "Aminata", "Traoré", "Kadiolo", 2014),
    ];
    store.store_changes("dev-amina", &batch, None, NOW).unwrap();
    let mut elsewhere = child(6, "Mohamed", "El Idrissi", "Kadiolo", 2014);
    elsewhere.new_case = Some(("moussa".into(), "souk-sebt".into()));
    store
        .store_changes("dev-moussa", &[elsewhere], None, NOW)
        .unwrap();

    let fatima = user("fatima", Role::Supervisor, "sikasso");
    let omar = user("omar", Role::Officer, "project");
    assert_eq!(
        store.duplicate_candidates(&fatima, 10).unwrap(),
        vec![(case_id(1), case_id(2))]
    );
    // The officer reads every team: the other team's registration joins the pairs.
    let officer_pairs = store.duplicate_candidates(&omar, 10).unwrap();
    assert!(
        officer_pairs.contains(&(case_id(1), case_id(6))),
        "{officer_pairs:?}"
    );
    assert!(officer_pairs.contains(&(case_id(2), case_id(6))));
    assert_eq!(officer_pairs.len(), 3);
    store
        .mark_distinct(&case_id(2), &case_id(1), "fatima", NOW)
        .unwrap();
    store
        .mark_distinct(&case_id(1), &case_id(2), "fatima", NOW)
        .unwrap();
    assert!(store.duplicate_candidates(&fatima, 10).unwrap().is_empty());
    let marks: Vec<_> = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "case.not_duplicate")
        .collect();
    assert_eq!(marks.len(), 1, "marked once");
    assert_eq!(marks[0].subject, format!("{} {}", case_id(1), case_id(2)));
}
