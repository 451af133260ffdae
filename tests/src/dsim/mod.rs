//! The deterministic simulation: one seed decides everything, and replays exactly.
//!
//! A server (`SyncService` over a SQLite store, called in-process) and five phones of two
//! teams (`Store`s driven by `sync::session::run` through an in-process link) take turns in one
//! thread: no socket, no thread racing another. The seed picks each step: a phone records
//! (a case, an edit of a field others edit too, a referral and its moves, a visit), syncs, or
//! restarts; the link loses a request or its reply, delays a request (delivered later, out of
//! order) or delivers it twice; the server restarts, is backed up, or is restored from its last
//! backup; a supervisor reassigns a case or merges two; an admin erases one. The clock, case
//! and record ids and Automerge actors come from the seed (`suivi_core::clock::simulated`).
//!
//! Crash model: a phone's or the server's restart keeps what its SQLite committed (every
//! commit is synchronous, and nothing runs between two steps); a restore brings back the
//! server's files as the backup took them, and the erasure journal is replayed, as the server
//! does when it opens.
//!
//! After the run the link stops failing and every phone syncs until nothing is pending. Then:
//! every record a phone recorded is on the server, unless its case was erased or the server
//! refused it with a reason the phone shows; every phone holds each case as the server does
//! (the same heads); every phone holds exactly the caseload the access policy grants its user.

mod checks;
mod link;
mod server;
use link::*;
use server::*;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use suivi_core::clock::simulated;
use suivi_core::policy::ReadScope;
use suivi_core::protocol::EnrollRequest;
use suivi_core::sync::session::run;
use suivi_core::sync::{Cancel, Credentials, HttpReply, Transport};
use suivi_core::{CaseFilter, Error, Record, Store, Transition};
use suivi_server::auth::CodeKey;
use suivi_server::service::SyncService;
use suivi_server::storage::prelude::*;
use suivi_server::storage::{Role, User};
use suivi_server::SqliteStore;

/// A raw SQLCipher key: no passphrase derivation, so a seed is cheap.
const KEY: &str = "x'5355495649204453494d20534545442053554956492044534d494d2053454544'";
/// The simulated clock's start (Unix seconds).
const START: i64 = 1_800_000_000;
const CODES: [u8; 32] = [7; 32];
/// The last steps a failure shows.
const LOG_LINES: usize = 400;

/// What the runs saw, summed over seeds.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub seeds: u64,
    pub steps: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub records_checked: u64,
    pub records_refused: u64,
    pub lost: u64,
    /// Records of cases a restore took back to before them, missing on the server after
    /// the quiet end (a known limit: RELIABILITY.md).
    pub lost_to_restores: u64,
    /// Cases a restore took back to before something happened to them, held by a phone
    /// beyond its caseload, missing from it, or held otherwise than on the server (a known
    /// limit: RELIABILITY.md).
    pub caseload_gaps_after_restores: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.seeds += other.seeds;
        self.steps += other.steps;
        for (k, v) in &other.faults {
            *self.faults.entry(k).or_default() += v;
        }
        self.records_checked += other.records_checked;
        self.records_refused += other.records_refused;
        self.lost += other.lost;
        self.lost_to_restores += other.lost_to_restores;
        self.caseload_gaps_after_restores += other.caseload_gaps_after_restores;
    }
}

/// A seed whose run broke an invariant or failed: replay it with `suivi-dsim --seed N`.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub what: String,
    /// The run's last steps, oldest first.
    pub log: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {} failed: {}", self.seed, self.what)?;
        writeln!(
            f,
            "replay: cargo run -p suivi-tests --bin suivi-dsim -- --seed {}",
            self.seed
        )?;
        for line in &self.log {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// Runs seeds `seeds` of `steps` steps each, in `scratch` (a tmpfs is fastest), and sums what
/// they saw; stops at the first failing seed.
pub fn run_seeds(
    seeds: std::ops::Range<u64>,
    steps: usize,
    scratch: &Path,
) -> Result<Tally, Failure> {
    let mut tally = Tally::default();
    for seed in seeds {
        tally.add(&run_seed(seed, steps, scratch)?);
    }
    Ok(tally)
}

/// One seed's run, from a fresh server and fresh phones.
pub fn run_seed(seed: u64, steps: usize, scratch: &Path) -> Result<Tally, Failure> {
    trace_seed(seed, steps, scratch).map(|(tally, _)| tally)
}

/// One seed's run and its log, step by step (ids and outcomes): two runs of a seed give the
/// same.
pub fn trace_seed(
    seed: u64,
    steps: usize,
    scratch: &Path,
) -> Result<(Tally, Vec<String>), Failure> {
    let dir = tempfile::tempdir_in(scratch).map_err(|e| Failure {
        seed,
        what: format!("scratch directory: {e}"),
        log: Vec::new(),
    })?;
    let _clock = simulated::start(seed, START);
    let mut world = World::new(seed, dir.path()).map_err(|what| Failure {
        seed,
        what,
        log: Vec::new(),
    })?;
    let outcome = world.run(steps).and_then(|()| world.check());
    outcome.map_err(|what| Failure {
        seed,
        what,
        log: world.log.iter().cloned().collect(),
    })?;
    let log = world.log.iter().cloned().collect();
    Ok((world.tally.into_inner(), log))
}

/// A small deterministic generator (SplitMix64): the seed's one source of choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }
}

struct Phone {
    user: User,
    path: PathBuf,
    /// `None` while the phone is off (between a crash and its restart).
    store: Option<Store>,
}

struct World {
    dir: PathBuf,
    rng: RefCell<Rng>,
    /// `None` while its files are replaced (a restore).
    server: RefCell<Option<Server>>,
    phones: Vec<Phone>,
    users: Vec<User>,
    /// Whether the link fails requests (off for the quiet end).
    faulty: Cell<bool>,
    delayed: RefCell<VecDeque<Delayed>>,
    /// The last backup, and the step it was taken at.
    backup: Option<(PathBuf, usize)>,
    /// Every record a phone recorded: (case, record id or the case id itself, phone, step).
    recorded: Vec<(String, String, usize, usize)>,
    /// Each restore: the step its backup was taken at, and the step it was restored at.
    restores: Vec<(usize, usize)>,
    /// The steps at which something happened to each case (recorded, reassigned, merged).
    events: BTreeMap<String, Vec<usize>>,
    step: usize,
    erased: BTreeSet<String>,
    tally: RefCell<Tally>,
    log: VecDeque<String>,
}

const VILLAGES: [&str; 4] = ["Kignan", "Ninkina", "Misséni", "Zégoua"];

fn child(n: u64, village: &str) -> Record {
    serde_json::from_value(json!({
        "child_first_name": format!("Enfant{n}"), "child_last_name": "Diarra", "sex": "female",
        "dob_known": false, "estimated_age": 9 + (n % 6), "province": "Sikasso",
        "commune": "Kignan", "village": village, "school_status": "dropped_out",
        "school_level": "primary", "works": true, "work_sector": "cotton",
        "hazardous_conditions": ["pesticides"], "hours_per_week": 20, "risk_level": "high",
        "consent_to_share": true
    }))
    .expect("a record")
}

fn referral(provider: &str) -> Record {
    serde_json::from_value(json!({
        "service_type": "school_or_bridging_class", "provider": provider,
        "reason": "Déscolarisée", "urgency": "priority", "consent": true
    }))
    .expect("a record")
}

fn visit() -> Record {
    serde_json::from_value(json!({
        "visit_date": "2027-01-15", "visit_type": "home", "attends_school": "yes",
        "still_working": false, "risk_level_now": "medium", "next_visit_due": "2027-02-15"
    }))
    .expect("a record")
}

impl World {
    fn new(seed: u64, dir: &Path) -> Result<World, String> {
        let users = vec![
            user("amina", Role::Agent, "souk-sebt"),
            user("karim", Role::Agent, "souk-sebt"),
            user("fatima", Role::Supervisor, "souk-sebt"),
            user("moussa", Role::Agent, "sikasso"),
        ];
        let store = SqliteStore::open(&dir.join("server.db"), None).map_err(|e| e.to_string())?;
        for u in &users {
            store.add_user(u, START).map_err(|e| e.to_string())?;
        }
        let server = Server::open(dir)?;
        let mut world = World {
            dir: dir.to_path_buf(),
            rng: RefCell::new(Rng(seed ^ 0x5EED_5EED)),
            server: RefCell::new(Some(server)),
            phones: Vec::new(),
            users: users.clone(),
            faulty: Cell::new(false),
            delayed: RefCell::new(VecDeque::new()),
            backup: None,
            recorded: Vec::new(),
            restores: Vec::new(),
            events: BTreeMap::new(),
            step: 0,
            erased: BTreeSet::new(),
            tally: RefCell::new(Tally {
                seeds: 1,
                ..Tally::default()
            }),
            log: VecDeque::new(),
        };
        // Amina has two phones: one user, two devices.
        for (n, u) in ["amina", "amina", "karim", "fatima", "moussa"]
            .iter()
            .enumerate()
        {
            let user = users
                .iter()
                .find(|x| x.user_id == *u)
                .cloned()
                .ok_or("user")?;
            world.enroll(n, user)?;
        }
        world.faulty.set(true);
        Ok(world)
    }

    fn enroll(&mut self, n: usize, user: User) -> Result<(), String> {
        let code = format!("code-{n}");
        let service = self.service()?;
        service
            .store()
            .add_enrollment_code(
                &CodeKey::new(CODES.to_vec()).code_hash(&suivi_server::auth::normalise_code(&code)),
                &user.user_id,
                i64::MAX,
            )
            .map_err(|e| e.to_string())?;
        let path = self.dir.join(format!("phone-{n}.db"));
        let mut store = Store::create(&path, KEY, &user.user_id, &format!("phone-{n}"))
            .map_err(|e| e.to_string())?;
        store
            .enroll(&Link { world: self }, "sim://server", &code)
            .map_err(|e| format!("enroll phone {n}: {e}"))?;
        self.phones.push(Phone {
            user,
            path,
            store: Some(store),
        });
        Ok(())
    }

    fn note(&mut self, line: String) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    fn fault(&self, what: &'static str) {
        *self.tally.borrow_mut().faults.entry(what).or_default() += 1;
    }

    fn below(&self, n: usize) -> usize {
        self.rng.borrow_mut().below(n)
    }

    fn run(&mut self, steps: usize) -> Result<(), String> {
        for step in 0..steps {
            self.step = step;
            self.tally.borrow_mut().steps += 1;
            self.note(format!("step {step}"));
            simulated::advance(1 + self.below(120) as i64);
            let phone = self.below(self.phones.len());
            let roll = self.below(100);
            match roll {
                0..=39 => self.record(phone)?,
                40..=64 => self.sync(phone, &format!("step {step}"))?,
                65..=69 => self.deliver_delayed(false)?,
                70..=72 => self.restart_phone(phone)?,
                73..=74 => self.restart_server()?,
                75..=77 => self.take_backup()?,
                78 => self.restore()?,
                79..=82 => self.reassign()?,
                83 => self.merge()?,
                84 => self.erase()?,
                _ => simulated::advance(3_600 * (1 + self.below(12) as i64)),
            }
        }
        Ok(())
    }

    fn store_of(&mut self, phone: usize) -> Result<&mut Store, String> {
        let p = &mut self.phones[phone];
        if p.store.is_none() {
            p.store = Some(Store::open(&p.path, KEY).map_err(|e| format!("reopen: {e}"))?);
        }
        p.store.as_mut().ok_or_else(|| "no store".to_string())
    }

    fn held_cases(&mut self, phone: usize) -> Result<Vec<String>, String> {
        let store = self.store_of(phone)?;
        let rows = store
            .list_cases(&CaseFilter::default())
            .map_err(|e| e.to_string())?;
        // Rows a cut first sync listed ahead are not held: nothing can be recorded on them.
        Ok(rows
            .into_iter()
            .filter(|r| !r.arriving)
            .map(|r| r.case_id)
            .collect())
    }

    /// A phone records something, offline.
    fn record(&mut self, phone: usize) -> Result<(), String> {
        let held = self.held_cases(phone)?;
        let role = self.phones[phone].user.role;
        let kind = self.below(5);
        let n = self.rng.borrow_mut().next();
        let village = VILLAGES[self.below(VILLAGES.len())];
        let case = self.rng.borrow_mut().pick(&held).cloned();
        let user = self.phones[phone].user.user_id.clone();
        let store = self.store_of(phone)?;
        let saved: Result<Option<(String, String)>, Error> = match (kind, case) {
            (0, _) | (_, None) if role == Role::Agent || held.len() < 3 => store
                .create_case(&child(n % 1000, village))
                .map(|id| Some((id.clone(), id))),
            (1, Some(case)) => store
                .edit_case(
                    &case,
                    &serde_json::from_value(json!({"village": village})).expect("patch"),
                )
                .map(|_| Some((case.clone(), case))),
            (2, Some(case)) => store
                .refer(&case, &referral(village))
                .map(|id| Some((case, id))),
            (3, Some(case)) => {
                let detail = store.case(&case);
                match detail {
                    Ok(d) => match d.referrals.first() {
                        Some(r) => {
                            let t = [Transition::Send, Transition::Accept, Transition::Start]
                                [(n % 3) as usize];
                            // An illegal move for its status is refused locally: nothing saved.
                            match store.transition_referral(&r.id, t, None, None) {
                                Ok(_) => Ok(Some((case, r.id.clone()))),
                                Err(Error::IllegalTransition { .. }) => Ok(None),
                                Err(e) => Err(e),
                            }
                        }
                        None => Ok(None),
                    },
                    Err(e) => Err(e),
                }
            }
            (_, Some(case)) => store
                .add_followup(&case, &visit())
                .map(|id| Some((case, id))),
            _ => Ok(None),
        };
        match saved {
            Ok(Some((case, record))) => {
                self.note(format!(
                    "{user} on phone {phone} records {record} in {case}"
                ));
                self.events.entry(case.clone()).or_default().push(self.step);
                self.recorded.push((case, record, phone, self.step));
                Ok(())
            }
            Ok(None) => Ok(()),
            // A case merged away or set aside takes no new record: refused here, nothing saved.
            Err(
                Error::Validation(_)
                | Error::NotFound { .. }
                | Error::InvalidInput(_)
                | Error::CaseMerged { .. },
            ) => Ok(()),
            Err(e) => Err(format!("phone {phone} could not save: {e}")),
        }
    }

    fn sync(&mut self, phone: usize, step: &str) -> Result<(), String> {
        // Cases held before the sync count as acknowledged by it too: a removal may take them.
        let before = self.held_cases(phone)?;
        let mut store = self.phones[phone].store.take().ok_or("no store")?;
        let outcome = {
            let link = Link { world: self };
            let mut handle = &mut store;
            run(&mut handle, &link, &mut |_| {}, &Cancel::default())
        };
        self.phones[phone].store = Some(store);
        match outcome {
            Ok(report) => {
                // What this sync acknowledged is on the server from this step on: a restore to
                // a backup taken before it rolls it back.
                if self.faulty.get() {
                    let after = self.held_cases(phone)?;
                    for case in before.into_iter().chain(after) {
                        self.events.entry(case).or_default().push(self.step);
                    }
                }
                self.note(format!(
                    "{step}: phone {phone} synced: up {} down {} refused {} quarantined {} removed {}{}",
                    report.cases_up,
                    report.cases_down,
                    report.refused.len(),
                    report.quarantined.len(),
                    report.removed,
                    if report.server_reset { " (reset)" } else { "" }
                ));
                Ok(())
            }
            Err(Error::Offline(_)) => {
                self.note(format!("{step}: phone {phone} offline"));
                Ok(())
            }
            Err(e) => Err(format!("{step}: phone {phone}'s sync failed: {e}")),
        }
    }

    fn deliver_delayed(&mut self, all: bool) -> Result<(), String> {
        loop {
            let next = {
                let mut queue = self.delayed.borrow_mut();
                if queue.is_empty() {
                    return Ok(());
                }
                // Out of order: any held request may arrive first.
                let i = self.below(queue.len());
                queue.remove(i)
            };
            if let Some(d) = next {
                self.deliver(&d.path, &d.body, d.credentials.as_ref())?;
                self.note(format!("a delayed {} reaches the server", d.path));
            }
            if !all {
                return Ok(());
            }
        }
    }

    fn restart_phone(&mut self, phone: usize) -> Result<(), String> {
        self.phones[phone].store = None;
        self.fault("phone restarts");
        self.note(format!("phone {phone} restarts"));
        Ok(())
    }
}

fn user(id: &str, role: Role, team: &str) -> User {
    User::new(id, role, team)
}

/// Steps in one seed's run, unless told otherwise.
pub const STEPS: usize = 60;

/// `A..B` read as a range of seeds.
pub fn parse_seeds(text: &str) -> Option<std::ops::Range<u64>> {
    let (a, b) = text.split_once("..")?;
    Some(a.trim().parse().ok()?..b.trim().parse().ok()?)
}

/// The seeds a run covers, from `SUIVI_DSIM_SEEDS` (`A..B`) or the default.
pub fn seeds_from_env(default: std::ops::Range<u64>) -> std::ops::Range<u64> {
    std::env::var("SUIVI_DSIM_SEEDS")
        .ok()
        .and_then(|text| parse_seeds(&text))
        .unwrap_or(default)
}

/// A run's figures in words.
pub fn report(tally: &Tally, seconds: f64) -> String {
    let faults: Vec<String> = tally
        .faults
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    format!(
        "{} seeds, {} steps in {:.1} s ({:.0} seeds a minute); faults: {}; records checked {}, refused and shown {}, lost {}, lost to a restore from an older backup {}, caseload gaps after a restore {}",
        tally.seeds,
        tally.steps,
        seconds,
        tally.seeds as f64 * 60.0 / seconds.max(1e-9),
        faults.join(", "),
        tally.records_checked,
        tally.records_refused,
        tally.lost,
        tally.lost_to_restores,
        tally.caseload_gaps_after_restores
    )
}
