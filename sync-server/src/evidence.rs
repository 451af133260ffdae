//! Tamper evidence: proof that the stored history is the history the server accepted.
//!
//! Recomputing hashes inside the database proves nothing against someone who can edit it: they
//! rewrite a change and its stored hash, and every mark after it, together. What such an editor
//! cannot rewrite is kept outside the database:
//!
//! - **Checkpoints.** The feed and the audit log are each a hash chain (`next_feed_mark`,
//!   `next_audit_mark`). The serving server appends where both chains stand (position and mark)
//!   to a journal beside the data directory, `<data>.checkpoints`, every minute that they moved
//!   and when it stops. Keep that file where the database's editors cannot write (another host,
//!   an append-only mount). A history rewritten before a checkpoint no longer ends in the mark
//!   the checkpoint holds; rows deleted before it leave the chain shorter than the checkpoint.
//! - **Devices.** Each phone holds the feed mark of its cursor and sends it back at every sync;
//!   a server whose feed up to there differs tells the phone so (`CursorCheck`), and writes an
//!   audit row (`HISTORY_DIFFERS`) that `verify` reports.
//! - **The changes themselves.** An Automerge change's hash is computed from its bytes, and its
//!   actor is inside them: the stored hash and the device it is said to come from must agree.
//!
//! `verify` checks all of it for the whole store (`suivi-server verify`); `verify_case` checks
//! one case, for the console. What was written after the last checkpoint is covered by the
//! chains' links only: an editor who rewrites it whole, marks included, is seen at the next
//! checkpoint's verification if not before. That window is the checkpoint interval.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use automerge::Change;

use crate::journal::{self, JournalError};
use crate::storage::{
    next_audit_mark, parse_device_binding, ChainHeads, FeedLink, FeedMarks, ServerStore,
    StorageError, StoredChange, CONSOLE_DEVICE_ACTION,
};

/// The audit action of a phone whose feed mark no longer matches the server's feed at its
/// cursor: it read another history up to there.
pub const HISTORY_DIFFERS: &str = "device.history_differs";
/// The audit action of a phone's witness: a change stored under its name that it never wrote
/// (subject `<case> <hash>`), reported at a sync (protocol 6).
pub const FORGERY_REPORTED: &str = "device.forgery_reported";
/// The audit action of an officer's or admin's review of such a report (`case
/// forgery-reviewed`): `verify` then lists the report as a note.
pub const FORGERY_REVIEWED: &str = "case.forgery_reviewed";
/// The audit action of an erasure, written in the transaction that makes it.
pub const ERASURE_ACTION: &str = "case.erased";

/// How often the serving server journals the chains' heads (when they moved).
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Rows read per query while walking a chain.
const PAGE: usize = 2_000;

/// The checkpoint journal beside a data directory: `<data>.checkpoints`.
pub fn journal_path(data_dir: &Path) -> PathBuf {
    journal::path_beside(data_dir, "checkpoints")
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Where both chains stood at a time, as journalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub at: i64,
    pub heads: ChainHeads,
}

impl Checkpoint {
    /// `<at> feed <seq> <mark> audit <id> <mark>`, marks in hex.
    fn line(&self) -> String {
        format!(
            "{} feed {} {} audit {} {}",
            self.at,
            self.heads.feed_seq,
            hex::encode(&self.heads.feed_mark),
            self.heads.audit_id,
            hex::encode(&self.heads.audit_mark)
        )
    }

    fn parse(line: &str) -> Option<Checkpoint> {
        let parts: Vec<&str> = line.split(' ').collect();
        let [at, "feed", feed_seq, feed_mark, "audit", audit_id, audit_mark] = parts[..] else {
            return None;
        };
        Some(Checkpoint {
            at: at.parse().ok()?,
            heads: ChainHeads {
                feed_seq: feed_seq.parse().ok()?,
                feed_mark: hex::decode(feed_mark).ok()?,
                audit_id: audit_id.parse().ok()?,
                audit_mark: hex::decode(audit_mark).ok()?,
            },
        })
    }
}

/// Every checkpoint of a journal, oldest first (none if it does not exist), and the numbers of
/// the lines that could not be read. A torn last line (a crash while appending) is skipped
/// without complaint: that checkpoint was never complete.
pub fn read_journal(path: &Path) -> Result<(Vec<Checkpoint>, Vec<usize>), JournalError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(JournalError {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut checkpoints = Vec::with_capacity(lines.len());
    let mut unreadable = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match Checkpoint::parse(line) {
            Some(c) => checkpoints.push(c),
            None if i + 1 == lines.len() && !complete => {}
            None => unreadable.push(i + 1),
        }
    }
    Ok((checkpoints, unreadable))
}

/// The serving server's checkpoint journal, and the checkpoints written so far (kept in memory
/// for the console's per-case verification).
pub struct Checkpointer {
    path: PathBuf,
    written: Mutex<Vec<Checkpoint>>,
}

impl Checkpointer {
    /// Opens the journal at `path` (made at the first checkpoint).
    pub fn open(path: &Path) -> Result<Checkpointer, JournalError> {
        let (written, _) = read_journal(path)?;
        Ok(Checkpointer {
            path: path.to_path_buf(),
            written: Mutex::new(written),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Journals where both chains stand now, if they moved since the last checkpoint; waits
    /// until the line is on disk. Returns the checkpoint written.
    pub fn checkpoint(
        &self,
        store: &dyn ServerStore,
        now: i64,
    ) -> Result<Option<Checkpoint>, EvidenceError> {
        let heads = store.chain_heads()?;
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = written.last() {
            if last.heads == heads {
                return Ok(None);
            }
            if heads.feed_seq < last.heads.feed_seq || heads.audit_id < last.heads.audit_id {
                // Journalled anyway: `verify` says what went missing.
                tracing::error!(
                    feed = heads.feed_seq,
                    audit = heads.audit_id,
                    was_feed = last.heads.feed_seq,
                    was_audit = last.heads.audit_id,
                    "the feed or the audit log is shorter than at the last checkpoint: rows deleted, or a restore"
                );
            }
        }
        let checkpoint = Checkpoint { at: now, heads };
        journal::append_line(&self.path, &checkpoint.line())?;
        written.push(checkpoint.clone());
        Ok(Some(checkpoint))
    }

    /// The checkpoints written so far, oldest first.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The last checkpoint before feed row `first`, and the first at or after row `last`.
    fn around(&self, first: u64, last: u64) -> (Option<Checkpoint>, Option<Checkpoint>) {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let before = written
            .iter()
            .filter(|c| c.heads.feed_seq < first)
            .max_by_key(|c| c.heads.feed_seq)
            .cloned();
        let after = written
            .iter()
            .filter(|c| c.heads.feed_seq >= last)
            .min_by_key(|c| c.heads.feed_seq)
            .cloned();
        (before, after)
    }
}

/// A device's binding as the chained audit log holds it: who enrolled it, and with which actor
/// (`None` for rows written before bindings named the actor).
struct Binding {
    user: String,
    actor: Option<String>,
}

/// A device held to its binding: `Ok(true)` when its user and actor are the ones bound,
/// `Ok(false)` when only its user could be checked (bound before bindings named the actor, or
/// a console device made before they were audited, whose id names its user).
fn check_binding(
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
fn binding_of(store: &dyn ServerStore, device_id: &str) -> Result<Option<Binding>, EvidenceError> {
    let rows = store.audit_search(&crate::storage::AuditQuery {
        actor: None,
        case_id: Some(device_id.to_string()),
        action_prefix: Some("device.".into()),
        before: None,
        limit: 1_000,
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

/// Something the stored history does not prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A change's bytes are not a change, or hash to another hash than the one stored.
    ChangeBytes {
        case_id: String,
        hash: String,
        why: String,
    },
    /// A change says it comes from a device whose actor did not write it.
    ChangeAuthor {
        case_id: String,
        hash: String,
        device: String,
    },
    /// A change no feed row of its case holds: it did not come through a push.
    ChangeOutsideFeed { case_id: String, hash: String },
    /// A change depends on changes its case does not hold: moved from another case, or a
    /// change before it deleted.
    ChangeOutsideItsCase { case_id: String, hash: String },
    /// A feed row marked as erased whose case was never erased.
    ErasedRowOfLiveCase { seq: u64, case_id: String },
    /// A feed row whose change is gone.
    FeedRowWithoutChange { seq: u64, case_id: String },
    /// A feed row's mark does not follow from the row before it and its change.
    FeedLink { seq: u64, case_id: Option<String> },
    /// The feed up to a checkpoint is not what it was when the checkpoint was written.
    FeedCheckpoint { at: i64, seq: u64, why: String },
    /// An audit row's mark does not follow from the row before it: it, or a row before it,
    /// was edited or deleted.
    AuditLink { id: u64 },
    /// The audit log up to a checkpoint is not what it was.
    AuditCheckpoint { at: i64, id: u64, why: String },
    /// A device's user or actor is not the one its enrollment, in the chained audit log,
    /// bound it to.
    DeviceBinding { device: String, why: String },
    /// The database holds an erasure of a case that the audit log never recorded.
    ErasureNotAudited { case_id: String },
    /// A phone found a change stored under its name that it never wrote.
    ForgeryReported {
        device: String,
        case_id: String,
        hash: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |at: i64| {
            chrono::DateTime::from_timestamp(at, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| at.to_string())
        };
        match self {
            Problem::ChangeBytes { case_id, hash, why } => {
                write!(f, "case {case_id}: change {hash}: {why}")
            }
            Problem::ChangeAuthor {
                case_id,
                hash,
                device,
            } => write!(
                f,
                "case {case_id}: change {hash} is said to come from device {device}, which did not write it"
            ),
            Problem::ChangeOutsideFeed { case_id, hash } => write!(
                f,
                "case {case_id}: change {hash} is in no feed row of its case: it was not accepted through a push"
            ),
            Problem::ChangeOutsideItsCase { case_id, hash } => write!(
                f,
                "case {case_id}: change {hash} depends on changes this case does not hold (moved from another case, or a change before it deleted)"
            ),
            Problem::ErasedRowOfLiveCase { seq, case_id } => write!(
                f,
                "feed row {seq} is kept as erased, but case {case_id} was never erased"
            ),
            Problem::FeedRowWithoutChange { seq, case_id } => {
                write!(f, "feed row {seq} (case {case_id}): its change is gone")
            }
            Problem::FeedLink { seq, case_id } => write!(
                f,
                "feed row {seq}{}: its mark does not follow from the row before it and its change (edited, or a row before it deleted)",
                case_id
                    .as_ref()
                    .map(|c| format!(" (case {c})"))
                    .unwrap_or_else(|| " (erased case)".into())
            ),
            Problem::FeedCheckpoint { at, seq, why } => write!(
                f,
                "feed up to row {seq}, checkpointed at {}: {why}",
                time(*at)
            ),
            Problem::AuditLink { id } => write!(
                f,
                "audit row {id}: its mark does not follow from the row before it (it was edited, or a row before it deleted)"
            ),
            Problem::ForgeryReported {
                device,
                case_id,
                hash,
            } => write!(
                f,
                "case {case_id}: device {device} reported change {hash}, stored under its name, as one it never wrote (the case is set aside)"
            ),
            Problem::ErasureNotAudited { case_id } => write!(
                f,
                "case {case_id} is held as erased, but no erasure of it is in the audit log (every phone would delete it)"
            ),
            Problem::DeviceBinding { device, why } => write!(
                f,
                "device {device}: {why} (its history would be shown as someone else's)"
            ),
            Problem::AuditCheckpoint { at, id, why } => write!(
                f,
                "audit log up to row {id}, checkpointed at {}: {why}",
                time(*at)
            ),
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub feed_rows: u64,
    pub erased_rows: u64,
    pub changes: u64,
    pub audit_rows: u64,
    pub checkpoints: usize,
    pub last_checkpoint: Option<Checkpoint>,
    pub problems: Vec<Problem>,
    /// Phones that found, at a sync, that the feed up to their cursor was not the history they
    /// had read: (audit row, device, feed row, when). A restore from a backup does this too,
    /// so these are reported beside the findings, not as findings.
    pub device_witnesses: Vec<(u64, String, u64, i64)>,
    /// Feed rows erased before erasures kept what their marks cover: the chain is taken on
    /// trust across them.
    pub legacy_erased_rows: u64,
    /// Devices bound before bindings named the actor (or console devices made before they were
    /// audited): their user is held to the log, their actor taken on trust.
    pub legacy_bindings: u64,
    /// Erasures the database holds that this host's erasure journal does not (when given):
    /// made on another host sharing the database, or added by hand (then also not audited).
    pub erasures_outside_journal: Vec<String>,
    /// Phones' forgery reports an officer or admin reviewed (`case forgery-reviewed`).
    pub reviewed_forgeries: Vec<String>,
    /// Lines of the journal that do not read as a checkpoint (one torn by a crash while it was
    /// written): those checkpoints are lost, which proves nothing against the database.
    pub unreadable_journal_lines: Vec<usize>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks one stored change: its bytes hash to its stored hash, its actor is its device's.
/// What `check_change` found, and the change's dependencies when its bytes are a change.
struct Checked {
    problem: Option<Problem>,
    deps: Vec<automerge::ChangeHash>,
}

/// Checks a change, and keeps its dependencies for `DependencyCheck`.
fn check_change_deps(change: &StoredChange) -> Checked {
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
struct DependencyCheck {
    held: std::collections::HashMap<String, std::collections::HashSet<String>>,
    deps: Vec<(String, String, Vec<automerge::ChangeHash>)>,
}

impl DependencyCheck {
    fn add(&mut self, change: &StoredChange, deps: Vec<automerge::ChangeHash>) {
        self.held
            .entry(change.case_id.clone())
            .or_default()
            .insert(change.hash.clone());
        if !deps.is_empty() {
            self.deps
                .push((change.case_id.clone(), change.hash.clone(), deps));
        }
    }

    fn problems(self) -> impl Iterator<Item = Problem> {
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

fn check_change(change: &StoredChange) -> Option<Problem> {
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
struct FeedWalk {
    stored_previous: Vec<u8>,
    recomputed: Vec<u8>,
    seq: u64,
    /// Erased rows whose mark was taken on trust.
    legacy_erased: u64,
    /// The marks' formula: from a recorded row on, each covers its case id.
    marks: FeedMarks,
}

impl FeedWalk {
    fn from(seq: u64, mark: Vec<u8>, marks: FeedMarks) -> FeedWalk {
        FeedWalk {
            stored_previous: mark.clone(),
            recomputed: mark,
            seq,
            legacy_erased: 0,
            marks,
        }
    }

    /// One row. `is_erased` says whether a case was erased (for rows kept as erased).
    fn step(
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
struct AuditWalk {
    stored_previous: Vec<u8>,
    recomputed: Vec<u8>,
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

/// What the console says of one case's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEvidence {
    /// Every change checks, and the feed through the case's last row is the one checkpointed
    /// at `checkpoint_at`.
    Verified { changes: usize, checkpoint_at: i64 },
    /// Every change checks, and the chain links hold, but the case's last rows are newer than
    /// the last checkpoint: verified at the next one.
    NotYetCheckpointed { changes: usize },
    /// Something does not check.
    NotVerified { problems: Vec<Problem> },
}

/// Verifies one case: its changes, and the feed from the checkpoint before its first row to
/// the first checkpoint after its last (compared with that checkpoint's mark).
pub fn verify_case(
    store: &dyn ServerStore,
    checkpoints: &Checkpointer,
    case_id: &str,
) -> Result<CaseEvidence, EvidenceError> {
    let changes = store.case_stored_changes(case_id)?;
    let mut problems = Vec::new();
    let mut dependencies = DependencyCheck::default();
    for change in &changes {
        let checked = check_change_deps(change);
        problems.extend(checked.problem);
        dependencies.add(change, checked.deps);
    }
    problems.extend(dependencies.problems());
    // A phone's witness against one of this case's changes.
    let reports = store.audit_search(&crate::storage::AuditQuery {
        actor: None,
        case_id: Some(case_id.to_string()),
        action_prefix: Some(FORGERY_REPORTED.into()),
        before: None,
        limit: 100,
    })?;
    for row in reports {
        if let Some((case, hash)) = row.subject.split_once(' ') {
            if case == case_id && !store.audit_row_exists(FORGERY_REVIEWED, &row.subject)? {
                problems.push(Problem::ForgeryReported {
                    device: row.actor.clone(),
                    case_id: case.to_string(),
                    hash: hash.to_string(),
                });
            }
        }
    }
    // The devices the case's changes are said to come from, held to their bindings: a device
    // rebound to another user would show its work as theirs.
    let mut devices: Vec<&str> = changes.iter().map(|c| c.origin_device.as_str()).collect();
    devices.sort_unstable();
    devices.dedup();
    for device_id in devices {
        if let Some(device) = store.device(device_id)? {
            if let Err(problem) = check_binding(&device, binding_of(store, device_id)?.as_ref()) {
                problems.push(problem);
            }
        }
    }
    let Some((first, last)) = store.case_feed_span(case_id)? else {
        return Ok(if problems.is_empty() {
            CaseEvidence::NotYetCheckpointed { changes: 0 }
        } else {
            CaseEvidence::NotVerified { problems }
        });
    };
    // Start from the journalled mark just before the case's first row: trusted, it is outside
    // the database. The stored mark there must be the same.
    let (start, end) = checkpoints.around(first, last);
    let end = end.as_ref();
    let marks = store.feed_marks()?;
    let mut walk = match start {
        Some(c) => {
            let stored = store.feed_mark(c.heads.feed_seq)?;
            if stored != c.heads.feed_mark {
                problems.push(Problem::FeedCheckpoint {
                    at: c.at,
                    seq: c.heads.feed_seq,
                    why: "the stored history up to there is not the one checkpointed".into(),
                });
            }
            FeedWalk {
                stored_previous: stored,
                recomputed: c.heads.feed_mark.clone(),
                seq: c.heads.feed_seq,
                legacy_erased: 0,
                marks,
            }
        }
        None => FeedWalk::from(0, Vec::new(), marks),
    };
    let stop = end.map_or(u64::MAX, |c| c.heads.feed_seq);
    'walk: loop {
        let page = store.feed_links(walk.seq, PAGE)?;
        if page.is_empty() {
            break;
        }
        for link in &page {
            if link.seq > stop {
                break 'walk;
            }
            // Rows of other cases are only links here: their changes are checked in their
            // own case's verification, and by `verify`.
            walk.step(
                link,
                &|case| store.is_erased(case).unwrap_or(false),
                &mut problems,
            );
        }
    }
    if let Some(c) = end {
        if walk.seq < c.heads.feed_seq {
            problems.push(Problem::FeedCheckpoint {
                at: c.at,
                seq: c.heads.feed_seq,
                why: format!(
                    "the feed now ends at row {}: rows after it were deleted",
                    walk.seq
                ),
            });
        } else if walk.recomputed != c.heads.feed_mark {
            problems.push(Problem::FeedCheckpoint {
                at: c.at,
                seq: c.heads.feed_seq,
                why: "the stored history up to there is not the one checkpointed".into(),
            });
        }
    }
    Ok(match (problems.is_empty(), end) {
        (false, _) => CaseEvidence::NotVerified { problems },
        (true, Some(c)) => CaseEvidence::Verified {
            changes: changes.len(),
            checkpoint_at: c.at,
        },
        (true, None) => CaseEvidence::NotYetCheckpointed {
            changes: changes.len(),
        },
    })
}

/// Journals a checkpoint every `every` while the server serves.
pub async fn checkpoint_every(
    store: std::sync::Arc<dyn ServerStore>,
    checkpointer: std::sync::Arc<Checkpointer>,
    every: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let (store, checkpointer) = (store.clone(), checkpointer.clone());
        let written = tokio::task::spawn_blocking(move || {
            checkpointer.checkpoint(store.as_ref(), chrono::Utc::now().timestamp())
        })
        .await;
        match written {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "checkpoint"),
            Err(e) => tracing::error!(error = %e, "checkpoint task"),
        }
    }
}
