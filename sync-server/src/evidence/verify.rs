//! verify: every chain walked from its start, every stored change checked against its origin and binding.

use super::*;

/// Rows read per query while walking a chain.
pub(super) const PAGE: usize = 2_000;

/// A device's binding as the chained audit log holds it: who enrolled it, and with which actor
/// (`None` for rows written before bindings named the actor).
pub(super) struct Binding {
    pub(super) user: String,
    pub(super) actor: Option<String>,
}

/// A device held to its binding: `Ok(true)` when its user and actor are the ones bound,
/// `Ok(false)` when only its user could be checked (bound before bindings named the actor, or
/// a console device made before they were audited, whose id names its user).
pub(super) fn check_binding(
    device: &crate::storage::Device,
    binding: Option<&Binding>,
) -> Result<bool, Problem> {
    let problem = |why: String| Problem::DeviceBinding {
        device: device.device_id.clone(),
        why,
    };
    match binding {
        Some(b) if b.user != device.user_id => Err(problem(format!(
            "it is bound to user {}, but {} enrolled it",
            device.user_id, b.user
        ))),
        Some(Binding {
            actor: Some(actor), ..
        }) if *actor != device.actor => Err(problem(format!(
            "its actor is {}, but it was enrolled with {actor}",
            device.actor
        ))),
        Some(b) => Ok(b.actor.is_some()),
        None if device.device_id == crate::storage::console_device_id(&device.user_id) => Ok(false),
        None => Err(problem("no enrollment of it is in the audit log".into())),
    }
}

/// The binding of one device, from the audit log's rows that name it.
pub(super) fn binding_of(
    store: &dyn ServerStore,
    device_id: &str,
) -> Result<Option<Binding>, EvidenceError> {
    let rows = store.audit_search(&crate::storage::AuditQuery {
        actor: None,
        case_ids: vec![device_id.to_string()],
        action_prefixes: vec!["device.".into()],
        limit: 1_000,
        ..Default::default()
    })?;
    // Oldest first: the first binding is the one that counts.
    Ok(rows
        .iter()
        .rev()
        .filter(|r| r.action == "device.enroll" || r.action == CONSOLE_DEVICE_ACTION)
        .find_map(|r| {
            let (device, actor) = parse_device_binding(&r.subject);
            (device == device_id).then(|| Binding {
                user: r.actor.clone(),
                actor: actor.map(str::to_string),
            })
        }))
}

/// Checks one stored change: its bytes hash to its stored hash, its actor is its device's.
/// What `check_change` found, and the change's dependencies when its bytes are a change.
pub(super) struct Checked {
    pub(super) problem: Option<Problem>,
    pub(super) deps: Vec<automerge::ChangeHash>,
}

/// Checks a change, and keeps its dependencies for `DependencyCheck`.
pub(super) fn check_change_deps(change: &StoredChange) -> Checked {
    let deps = Change::from_bytes(change.data.clone())
        .map(|c| c.deps().to_vec())
        .unwrap_or_default();
    Checked {
        problem: check_change(change),
        deps,
    }
}

/// A case's changes depend only on changes of the same case: one moved here from another case
/// (its case id rewritten in the database), or a case missing a change another depends on,
/// shows as a dependency the case does not hold.
#[derive(Default)]
pub(super) struct DependencyCheck {
    pub(super) held: std::collections::HashMap<String, std::collections::HashSet<String>>,
    pub(super) deps: Vec<(String, String, Vec<automerge::ChangeHash>)>,
}

impl DependencyCheck {
    pub(super) fn add(&mut self, change: &StoredChange, deps: Vec<automerge::ChangeHash>) {
        self.held
            .entry(change.case_id.clone())
            .or_default()
            .insert(change.hash.clone());
        if !deps.is_empty() {
            self.deps
                .push((change.case_id.clone(), change.hash.clone(), deps));
        }
    }

    pub(super) fn problems(self) -> impl Iterator<Item = Problem> {
        let held = self.held;
        self.deps
            .into_iter()
            .filter_map(move |(case_id, hash, deps)| {
                let of_case = held.get(&case_id);
                deps.iter()
                    .any(|d| !of_case.is_some_and(|h| h.contains(&d.to_string())))
                    .then_some(Problem::ChangeOutsideItsCase { case_id, hash })
            })
    }
}

pub(super) fn check_change(change: &StoredChange) -> Option<Problem> {
    let bytes_problem = |why: String| Problem::ChangeBytes {
        case_id: change.case_id.clone(),
        hash: change.hash.clone(),
        why,
    };
    let parsed = match Change::from_bytes(change.data.clone()) {
        Ok(parsed) => parsed,
        Err(_) => return Some(bytes_problem("its stored bytes are not a change".into())),
    };
    let hash = parsed.hash().to_string();
    if hash != change.hash {
        return Some(bytes_problem(format!(
            "its stored bytes are change {hash}, not the one stored under this hash"
        )));
    }
    if change.origin_actor.as_deref() != Some(parsed.actor_id().to_hex_string().as_str()) {
        return Some(Problem::ChangeAuthor {
            case_id: change.case_id.clone(),
            hash: change.hash.clone(),
            device: change.origin_device.clone(),
        });
    }
    if !change.in_feed {
        return Some(Problem::ChangeOutsideFeed {
            case_id: change.case_id.clone(),
            hash: change.hash.clone(),
        });
    }
    None
}

/// A walk along the feed: each row's stored mark checked against the row before it (which
/// finds the row an editor changed without rewriting the marks after it), and the chain
/// recomputed from the changes alone (which a checkpoint is compared with).
pub(super) struct FeedWalk {
    pub(super) stored_previous: Vec<u8>,
    pub(super) recomputed: Vec<u8>,
    pub(super) seq: u64,
    /// Erased rows whose mark was taken on trust.
    pub(super) legacy_erased: u64,
    /// The marks' formula: from a recorded row on, each covers its case id.
    pub(super) marks: FeedMarks,
}

impl FeedWalk {
    pub(super) fn from(seq: u64, mark: Vec<u8>, marks: FeedMarks) -> FeedWalk {
        FeedWalk {
            stored_previous: mark.clone(),
            recomputed: mark,
            seq,
            legacy_erased: 0,
            marks,
        }
    }

    /// One row. `is_erased` says whether a case was erased (for rows kept as erased).
    pub(super) fn step(
        &mut self,
        link: &FeedLink,
        is_erased: &dyn Fn(&str) -> bool,
        problems: &mut Vec<Problem>,
    ) {
        self.seq = link.seq;
        match (&link.change, link.erased) {
            // Erased before erasures kept what its mark covers: the chain goes on from its
            // mark, taken on trust (counted, and printed by `verify`).
            (None, _) => {
                self.legacy_erased += 1;
                self.recomputed = link.mark.clone();
            }
            (Some(change), erased) => match &change.hash {
                None => {
                    if erased {
                        self.legacy_erased += 1;
                    } else {
                        problems.push(Problem::FeedRowWithoutChange {
                            seq: link.seq,
                            case_id: change.case_id.clone(),
                        });
                    }
                    self.recomputed = link.mark.clone();
                }
                Some(hash) => {
                    if erased && !is_erased(&change.case_id) {
                        problems.push(Problem::ErasedRowOfLiveCase {
                            seq: link.seq,
                            case_id: change.case_id.clone(),
                        });
                    }
                    let audience = change.audience.as_deref();
                    let case = change.case_id.as_str();
                    let expected =
                        self.marks
                            .next(&self.stored_previous, link.seq, hash, audience, case);
                    if expected != link.mark {
                        problems.push(Problem::FeedLink {
                            seq: link.seq,
                            case_id: Some(change.case_id.clone()),
                        });
                    }
                    self.recomputed =
                        self.marks
                            .next(&self.recomputed, link.seq, hash, audience, case);
                }
            },
        }
        self.stored_previous = link.mark.clone();
    }
}

/// The same for the audit log.
pub(super) struct AuditWalk {
    pub(super) stored_previous: Vec<u8>,
    pub(super) recomputed: Vec<u8>,
}

/// Verifies the whole store against the checkpoint journal at `journal`.
pub fn verify(store: &dyn ServerStore, journal: &Path) -> Result<Report, EvidenceError> {
    verify_with_erasures(store, journal, None)
}

/// `verify`, and each erasure the database holds also held to this host's erasure journal
/// (`<data>.erasures`): one it lacks is noted (made on another host sharing the database, or
/// added to the database by hand).
pub fn verify_with_erasures(
    store: &dyn ServerStore,
    journal: &Path,
    erasure_journal: Option<&Path>,
) -> Result<Report, EvidenceError> {
    let (checkpoints, unreadable) = read_journal(journal)?;
    let mut report = Report {
        checkpoints: checkpoints.len(),
        last_checkpoint: checkpoints.last().cloned(),
        unreadable_journal_lines: unreadable,
        ..Report::default()
    };
    let problems = &mut report.problems;

    // The changes: bytes, authors, and each held by a feed row.
    let mut after = 0;
    let mut dependencies = DependencyCheck::default();
    loop {
        let page = store.stored_changes(after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        report.changes += page.len() as u64;
        for change in &page {
            let checked = check_change_deps(change);
            problems.extend(checked.problem);
            dependencies.add(change, checked.deps);
        }
    }
    problems.extend(dependencies.problems());
    let mut erased = std::collections::HashSet::new();
    let mut after = 0;
    loop {
        let page = store.erasures_after(after, PAGE)?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        erased.extend(page.into_iter().map(|(_, case_id)| case_id));
    }
    if let Some(path) = erasure_journal {
        let journalled: std::collections::HashSet<String> = crate::journal::entries(path)?
            .into_iter()
            .map(|(case_id, _)| case_id.to_ascii_lowercase())
            .collect();
        let mut missing: Vec<String> = erased
            .iter()
            .filter(|c| !journalled.contains(*c))
            .cloned()
            .collect();
        missing.sort();
        report.erasures_outside_journal = missing;
    }

    // The feed: each link, and the recomputed chain at each checkpointed position.
    let mut wanted: BTreeMap<u64, Vec<&Checkpoint>> = BTreeMap::new();
    for c in &checkpoints {
        wanted.entry(c.heads.feed_seq).or_default().push(c);
    }
    let mut walk = FeedWalk::from(0, Vec::new(), store.feed_marks()?);
    let mut recomputed_at: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    if wanted.contains_key(&0) {
        recomputed_at.insert(0, Vec::new());
    }
    loop {
        let page = store.feed_links(walk.seq, PAGE)?;
        if page.is_empty() {
            break;
        }
        for link in &page {
            walk.step(link, &|case| erased.contains(case), problems);
            // Rows of erased cases in either form: kept as erased with what their marks cover,
            // or (before that) with their mark alone.
            if link.change.is_none() || link.erased {
                report.erased_rows += 1;
            } else {
                report.feed_rows += 1;
            }
            if wanted.contains_key(&link.seq) {
                recomputed_at.insert(link.seq, walk.recomputed.clone());
            }
        }
    }
    let feed_end = walk.seq;
    report.legacy_erased_rows = walk.legacy_erased;
    for (seq, marks) in &wanted {
        for c in marks {
            let why = match recomputed_at.get(seq) {
                None if *seq > feed_end => {
                    format!("the feed now ends at row {feed_end}: rows after it were deleted")
                }
                None => "that row is gone".to_string(),
                Some(mark) if *mark != c.heads.feed_mark => {
                    "the stored history up to there is not the one checkpointed".to_string()
                }
                Some(_) => continue,
            };
            problems.push(Problem::FeedCheckpoint {
                at: c.at,
                seq: *seq,
                why,
            });
        }
    }

    // The audit log, the same way.
    let mut wanted: BTreeMap<u64, Vec<&Checkpoint>> = BTreeMap::new();
    for c in &checkpoints {
        wanted.entry(c.heads.audit_id).or_default().push(c);
    }
    let mut walk = AuditWalk {
        stored_previous: Vec::new(),
        recomputed: Vec::new(),
    };
    let mut recomputed_at: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    if wanted.contains_key(&0) {
        recomputed_at.insert(0, Vec::new());
    }
    let mut bindings: std::collections::HashMap<String, Binding> = Default::default();
    let mut erasures_audited: std::collections::HashSet<String> = Default::default();
    let mut forgery_reports: Vec<(String, Problem)> = Vec::new();
    let mut forgeries_reviewed: std::collections::HashSet<String> = Default::default();
    let mut after = 0;
    loop {
        let page = store.audit_log(after, PAGE)?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            after = row.id;
            report.audit_rows += 1;
            if row.action == "device.enroll" || row.action == CONSOLE_DEVICE_ACTION {
                let (device, actor) = parse_device_binding(&row.subject);
                bindings
                    .entry(device.to_string())
                    .or_insert_with(|| Binding {
                        user: row.actor.clone(),
                        actor: actor.map(str::to_string),
                    });
            }
            if row.action == FORGERY_REPORTED {
                let (case_id, hash) = row.subject.split_once(' ').unwrap_or((&row.subject, ""));
                forgery_reports.push((
                    row.subject.clone(),
                    Problem::ForgeryReported {
                        device: row.actor.clone(),
                        case_id: case_id.to_string(),
                        hash: hash.to_string(),
                    },
                ));
            }
            if row.action == FORGERY_REVIEWED {
                forgeries_reviewed.insert(row.subject.clone());
            }
            if row.action == ERASURE_ACTION {
                erasures_audited.insert(row.subject.clone());
            }
            if row.action == HISTORY_DIFFERS {
                let seq = row
                    .subject
                    .split(' ')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                report
                    .device_witnesses
                    .push((row.id, row.actor.clone(), seq, row.at));
            }
            let mark = |previous: &[u8]| {
                next_audit_mark(
                    previous,
                    row.id,
                    row.at,
                    &row.actor,
                    &row.action,
                    &row.subject,
                )
            };
            if mark(&walk.stored_previous) != row.mark {
                problems.push(Problem::AuditLink { id: row.id });
            }
            walk.recomputed = mark(&walk.recomputed);
            walk.stored_previous = row.mark.clone();
            if wanted.contains_key(&row.id) {
                recomputed_at.insert(row.id, walk.recomputed.clone());
            }
        }
    }
    // Every device held to its binding in the chained log: a device rebound in the database to
    // another user or actor re-attributes all its history.
    // A phone's forgery report is a finding until an officer or admin reviewed it.
    for (subject, problem) in forgery_reports {
        if forgeries_reviewed.contains(&subject) {
            report.reviewed_forgeries.push(problem.to_string());
        } else {
            problems.push(problem);
        }
    }
    // Every erasure the database holds was audited, in the chained log, when it was made: an
    // erasure added by hand would delete a live child's case from every phone.
    let mut unaudited: Vec<&String> = erased
        .iter()
        .filter(|c| !erasures_audited.contains(*c))
        .collect();
    unaudited.sort();
    report.problems.extend(
        unaudited
            .into_iter()
            .map(|case_id| Problem::ErasureNotAudited {
                case_id: case_id.clone(),
            }),
    );
    let problems = &mut report.problems;
    for device in store.devices()? {
        match check_binding(&device, bindings.get(&device.device_id)) {
            Ok(true) => {}
            Ok(false) => report.legacy_bindings += 1,
            Err(problem) => problems.push(problem),
        }
    }
    for (id, marks) in &wanted {
        for c in marks {
            let why = match recomputed_at.get(id) {
                None if *id > after => {
                    format!("the log now ends at row {after}: rows after it were deleted")
                }
                None => "that row was deleted".to_string(),
                Some(mark) if *mark != c.heads.audit_mark => {
                    "the stored log up to there is not the one checkpointed".to_string()
                }
                Some(_) => continue,
            };
            problems.push(Problem::AuditCheckpoint {
                at: c.at,
                id: *id,
                why,
            });
        }
    }
    Ok(report)
}
