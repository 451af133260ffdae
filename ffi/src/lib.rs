//! Suivi for Kotlin/Android: thin uniffi adapters over `suivi-core`. No logic lives here: each
//! call takes a connection, calls core, and maps the result into records Kotlin can read.
//!
//! Two connections: reads (lists, search, a case, its history) go through a read-only one and
//! never wait for a save or a sync; saves and syncs share the writer, which a sync holds only
//! while it decides or commits a page, never while it waits on the network. Every call is
//! blocking: from Kotlin, run it on `Dispatchers.IO`, never on the main thread.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use suivi_core::forms::{Lang, FOLLOWUP, IDENTIFICATION, REFERRAL};
use suivi_core::sync::{session, Cancel, HttpTransport, Transport};
use suivi_core::{Error as CoreError, Store, Transition};

uniffi::setup_scaffolding!();

/// One problem in a form: the field id and a message key (the UI picks the text).
#[derive(Debug, Clone, uniffi::Record)]
pub struct FieldProblem {
    pub field: String,
    pub key: String,
}

/// Errors Kotlin can act on, one kind per thing the app does differently. Messages carry ids,
/// keys and kinds of failure, never a child's data.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SuiviError {
    /// The data did not pass the form's checks; nothing was saved.
    #[error("validation failed on {} field(s)", problems.len())]
    Validation { problems: Vec<FieldProblem> },
    /// No such case, referral, form or store.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The database key is wrong, or the file is not a Suivi database; the file is untouched.
    /// The app offers to reset the store and enroll again.
    #[error("wrong key or not a Suivi database")]
    WrongKey,
    /// This device was revoked: its case data is wiped. It must be enrolled again.
    #[error("this device was revoked; its case data was wiped")]
    Revoked,
    /// The store has no sync credential yet: enroll first.
    #[error("not enrolled with a sync server")]
    NotEnrolled,
    /// The app is too old for the sync server: it must be updated before it syncs again.
    #[error("upgrade required")]
    UpgradeRequired,
    /// A referral cannot make this move from its status; nothing was saved.
    #[error("illegal referral transition {transition} from {from}")]
    IllegalTransition { transition: String, from: String },
    /// The server refused (an enrollment code, a case outside the caseload).
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    /// The server cannot be reached; nothing was lost, sync again later.
    #[error("offline: {reason}")]
    Offline { reason: String },
    /// The phone's storage is full; nothing of the failed step was saved.
    #[error("storage full")]
    StorageFull,
    /// The phone's storage failed.
    #[error("storage: {reason}")]
    Storage { reason: String },
    /// The sync was cancelled; every page committed before it stays.
    #[error("sync cancelled")]
    Cancelled,
    /// The case was merged into `into` (the same child registered twice): it is read-only;
    /// record on that case. Nothing was saved.
    #[error("case merged into {into}")]
    CaseMerged { into: String },
    /// Input the app passed is not acceptable (an unknown transition, a bad certificate).
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    /// A bug in Suivi (a panic), caught at the boundary: the app reports it and goes on. The
    /// panic's own message stays out: it could hold data.
    #[error("internal error")]
    Internal,
    #[error("{reason}")]
    Other { reason: String },
}

impl From<CoreError> for SuiviError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::Validation(problems) => SuiviError::Validation {
                problems: problems
                    .into_iter()
                    .map(|p| FieldProblem {
                        field: p.field,
                        key: p.key,
                    })
                    .collect(),
            },
            CoreError::NotFound { kind, id } => SuiviError::NotFound {
                what: format!("{kind} {id}"),
            },
            CoreError::UnknownForm { id, version } => SuiviError::NotFound {
                what: format!("form {id} v{version}"),
            },
            CoreError::WrongKeyOrCorrupt
            | CoreError::PlaintextDatabase
            | CoreError::ForeignDatabase => SuiviError::WrongKey,
            CoreError::DeviceRevoked => SuiviError::Revoked,
            CoreError::NotEnrolled => SuiviError::NotEnrolled,
            CoreError::UpgradeRequired => SuiviError::UpgradeRequired,
            CoreError::IllegalTransition { from, transition } => {
                SuiviError::IllegalTransition { transition, from }
            }
            CoreError::Forbidden(reason) => SuiviError::Forbidden { reason },
            CoreError::Offline(reason) => SuiviError::Offline { reason },
            CoreError::StorageFull => SuiviError::StorageFull,
            CoreError::Storage(reason) => SuiviError::Storage { reason },
            CoreError::Cancelled => SuiviError::Cancelled,
            CoreError::CaseMerged { into, .. } => SuiviError::CaseMerged { into },
            CoreError::InvalidInput(reason) => SuiviError::InvalidInput { reason },
            other => SuiviError::Other {
                reason: other.to_string(),
            },
        }
    }
}

/// Runs one call with panics contained: a bug in Rust becomes `SuiviError::Internal` for the
/// app to report, never a crash of the app (uniffi would raise its own exception with the
/// panic's message).
fn guard<T>(call: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or(Err(SuiviError::Internal))
}

type Result<T, E = SuiviError> = std::result::Result<T, E>;

/// A row of the caseload list.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseSummary {
    pub case_id: String,
    pub first_name: String,
    pub last_name: String,
    pub village: Option<String>,
    pub risk_level: Option<String>,
    pub next_followup_due: Option<String>,
    pub referral_count: i64,
    pub followup_count: i64,
    pub conflict_count: i64,
    pub updated_at: String,
}

impl From<suivi_core::store::CaseRow> for CaseSummary {
    fn from(r: suivi_core::store::CaseRow) -> Self {
        CaseSummary {
            case_id: r.case_id,
            first_name: r.first_name,
            last_name: r.last_name,
            village: r.village,
            risk_level: r.risk_level,
            next_followup_due: r.next_followup_due,
            referral_count: r.referral_count,
            followup_count: r.followup_count,
            conflict_count: r.conflict_count,
            updated_at: r.updated_at,
        }
    }
}

/// Filters for the caseload list; all optional.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct CaseQuery {
    /// Name search; case and accents do not matter.
    pub text: Option<String>,
    pub village: Option<String>,
    pub risk_level: Option<String>,
    pub referral_status: Option<String>,
    /// Only cases whose next visit was due before this day (YYYY-MM-DD).
    pub overdue_on: Option<String>,
    pub limit: Option<u32>,
}

/// One step of a referral: who moved it, when, from which status to which.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReferralStep {
    pub transition: String,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub at: String,
    pub note: Option<String>,
}

/// A referral, a link of the case's referral chain.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReferralInfo {
    pub referral_id: String,
    pub status: String,
    /// Field values as text, by field id (display them with the form's labels).
    pub fields: HashMap<String, String>,
    pub created_at: String,
    pub created_by: String,
    pub previous_referral: Option<String>,
    pub next_referral: Option<String>,
    pub steps: Vec<ReferralStep>,
}

/// A follow-up visit.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FollowUpInfo {
    pub followup_id: String,
    pub fields: HashMap<String, String>,
    pub created_at: String,
    pub created_by: String,
}

/// A field two devices set concurrently: every value kept, as JSON text, and who wrote each.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ConflictInfo {
    pub path: String,
    pub values: Vec<String>,
    /// In the order of `values`.
    pub sources: Vec<ConflictSource>,
}

/// The change that wrote one conflicting value: the user its device named, and that device's
/// clock (RFC 3339).
#[derive(Debug, Clone, uniffi::Record)]
pub struct ConflictSource {
    pub user: Option<String>,
    pub at: String,
}

/// Everything about one case, for the case screen.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseDetail {
    pub summary: CaseSummary,
    /// The identification form version the record follows: show it with `form_version`.
    pub identification_form: u32,
    pub identification: HashMap<String, String>,
    /// Fields an earlier form version asked and this record's version no longer does:
    /// shown read-only.
    pub former_fields: HashMap<String, String>,
    pub referrals: Vec<ReferralInfo>,
    pub followups: Vec<FollowUpInfo>,
    pub conflicts: Vec<ConflictInfo>,
    /// Set when changes pulled for this case failed to apply or check: what is shown is its
    /// last good state, and the reason (ids and kinds, no case data) says why. Not an error:
    /// one bad case never stops the others.
    pub quarantine_reason: Option<String>,
    /// Set on a case a supervisor merged into another (the same child registered twice): the
    /// surviving case's id. This one is read-only: edits fail with `CaseMerged`.
    pub merged_into: Option<String>,
    /// On a surviving case: the cases merged into it, with their referrals and visits.
    pub merged_cases: Vec<MergedCaseInfo>,
}

/// A case merged into the one shown.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MergedCaseInfo {
    pub case_id: String,
    /// False until this phone has received the merged case.
    pub held: bool,
    pub referrals: Vec<ReferralInfo>,
    pub followups: Vec<FollowUpInfo>,
    /// Changes recorded on the merged case without knowledge of the merge, for review (its
    /// history lists them).
    pub edits_after_merge: u32,
}

fn referral_info(r: suivi_core::case_doc::Referral) -> ReferralInfo {
    ReferralInfo {
        fields: text_fields(&r.fields),
        referral_id: r.id,
        status: r.status,
        created_at: r.created_at,
        created_by: r.created_by,
        previous_referral: r.previous_referral,
        next_referral: r.next_referral,
        steps: r
            .transitions
            .into_iter()
            .map(|t| ReferralStep {
                transition: t.transition,
                from: t.from,
                to: t.to,
                actor: t.actor,
                at: t.at,
                note: t.note,
            })
            .collect(),
    }
}

fn followup_info(f: suivi_core::case_doc::FollowUp) -> FollowUpInfo {
    FollowUpInfo {
        fields: text_fields(&f.fields),
        followup_id: f.id,
        created_at: f.created_at,
        created_by: f.created_by,
    }
}

/// One field's change in the history: old → new, as JSON text.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FieldChangeInfo {
    pub path: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// One change of a case: when, who, what.
#[derive(Debug, Clone, uniffi::Record)]
pub struct HistoryItem {
    /// The writing device's clock: shown, never trusted.
    pub at: String,
    /// The user the change names.
    pub user: Option<String>,
    pub action: Option<String>,
    pub changes: Vec<FieldChangeInfo>,
    /// Who the server verified pushed it (None: not verified).
    pub verified_user: Option<String>,
    pub verified_device: Option<String>,
    /// When the server received it (RFC 3339; None for this device's own changes).
    pub received_at: Option<String>,
}

/// A choice of a select field, labelled in the requested language.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ChoiceInfo {
    pub id: String,
    pub label: String,
}

/// A field of a form, labelled in the requested language: enough to render it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FieldInfo {
    pub id: String,
    /// text, integer, decimal, date, boolean, select_one, select_multiple, geopoint, phone
    pub field_type: String,
    pub label: String,
    pub required: bool,
    pub multiline: bool,
    pub choices: Vec<ChoiceInfo>,
}

/// A form definition, as data: a new version needs no app release.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FormInfo {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub right_to_left: bool,
    pub fields: Vec<FieldInfo>,
}

/// A form version this phone holds (built in, or received from the server at sync).
#[derive(Debug, Clone, uniffi::Record)]
pub struct FormVersionInfo {
    pub id: String,
    pub version: u32,
    pub title: String,
    /// Takes no new records; its records still open and check with it.
    pub retired: bool,
}

/// A form version as the app renders it, labelled in `lang`.
fn form_info(form: &suivi_core::forms::FormDefinition, lang: Lang) -> FormInfo {
    FormInfo {
        id: form.id.clone(),
        version: form.version,
        title: form.title.get(lang).to_string(),
        right_to_left: lang == Lang::Ar,
        fields: form
            .fields
            .iter()
            .map(|f| FieldInfo {
                id: f.id.clone(),
                field_type: f.field_type.name().to_string(),
                label: f.label.get(lang).to_string(),
                required: f.required,
                multiline: f.multiline,
                choices: f
                    .choices
                    .iter()
                    .map(|c| ChoiceInfo {
                        id: c.id.clone(),
                        label: c.label.get(lang).to_string(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// What a sync did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncSummary {
    pub cases_up: u64,
    pub cases_down: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub round_trips: u64,
    /// Cases holding a conflict after this sync.
    pub conflicts: u64,
    /// Cases the server refused (outside this device's caseload).
    pub refused: u64,
    /// Cases erased on the server (consent withdrawn) and deleted from this phone.
    pub erased: u64,
    /// Pulled cases set aside because they failed to apply or check; the rest went on.
    pub quarantined: u64,
    /// Form versions received from the server (new versions and retirements).
    pub forms_received: u64,
    /// Form versions the server sent that failed their checks here, each with why.
    pub forms_refused: Vec<String>,
    pub duration_ms: u64,
}

/// A pulled case set aside (it failed to apply or check), readable in its last good state.
#[derive(Debug, Clone, uniffi::Record)]
pub struct QuarantinedCase {
    pub case_id: String,
    pub reason: String,
}

/// Cancels a running sync from another thread (a Cancel button, a coroutine's cancellation).
#[derive(uniffi::Object, Default)]
pub struct SyncCancel {
    inner: Cancel,
}

#[uniffi::export]
impl SyncCancel {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(SyncCancel::default())
    }

    /// Stops the sync at once if it waits on the network, else before its next request.
    pub fn cancel(&self) {
        self.inner.cancel();
    }
}

/// Progress while a sync runs.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncProgress {
    pub round_trips: u64,
    pub cases_down: u64,
    pub bytes_down: u64,
    pub more: bool,
}

/// Receives sync progress, on the syncing thread, with no lock held: post it to the UI thread.
#[uniffi::export(callback_interface)]
pub trait SyncListener: Send + Sync {
    /// Called after each committed page.
    fn on_progress(&self, progress: SyncProgress);
}

/// The device after enrollment.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EnrollmentInfo {
    pub device_id: String,
    pub user: String,
    pub role: String,
}

fn text_fields(record: &suivi_core::Record) -> HashMap<String, String> {
    record
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect()
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The encrypted case store of this device.
#[derive(uniffi::Object)]
pub struct CaseStore {
    /// Saves, syncs and enrollment.
    writer: Mutex<Store>,
    /// Lists, search, case screens: a read-only connection that never waits for the writer.
    reader: Mutex<Store>,
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    // A panic while holding the lock left SQLite consistent (its transaction rolled back), so
    // the store stays usable.
    store.lock().unwrap_or_else(|p| p.into_inner())
}

impl CaseStore {
    fn with(writer: Store, path: &str, key: &str) -> Result<Arc<Self>> {
        let reader = Store::open_reader(Path::new(path), key)?;
        Ok(Arc::new(CaseStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        }))
    }

    fn writer(&self) -> MutexGuard<'_, Store> {
        lock(&self.writer)
    }

    fn reader(&self) -> MutexGuard<'_, Store> {
        lock(&self.reader)
    }
}

/// Deletes a store's files: the reset before enrolling again, after a revocation or when the
/// database key is lost. Close every `CaseStore` on it first. Unsynced work is lost: ask first.
#[uniffi::export]
pub fn remove_store(path: String) -> Result<()> {
    guard(|| Ok(Store::remove_files(Path::new(&path))?))
}

#[uniffi::export]
impl CaseStore {
    /// Creates a store for a user without enrolling it (offline use and tests; the app
    /// enrolls with `enroll_new`). `key` comes from the Android Keystore.
    #[uniffi::constructor]
    pub fn create(path: String, key: String, user: String, device: String) -> Result<Arc<Self>> {
        guard(|| {
            let store = Store::create(Path::new(&path), &key, &user, &device)?;
            CaseStore::with(store, &path, &key)
        })
    }

    /// Creates the store for `user` and enrolls it with a one-time code, trusting `ca_pem` (a
    /// project's own certificate authority, PEM) for this request and every sync after it. On
    /// any failure no store is left behind, so the app can try again. Blocking: network.
    #[uniffi::constructor]
    pub fn enroll_new(
        path: String,
        key: String,
        user: String,
        device: String,
        server_url: String,
        code: String,
        ca_pem: Option<String>,
    ) -> Result<Arc<Self>> {
        guard(|| {
            let (store, _) = Store::create_enrolled(
                Path::new(&path),
                &key,
                &user,
                &device,
                &server_url,
                &code,
                ca_pem.as_deref(),
            )?;
            CaseStore::with(store, &path, &key)
        })
    }

    /// Opens the store; a wrong key is `SuiviError.WrongKey` and changes nothing.
    #[uniffi::constructor]
    pub fn open(path: String, key: String) -> Result<Arc<Self>> {
        guard(|| {
            let store = Store::open(Path::new(&path), &key)?;
            CaseStore::with(store, &path, &key)
        })
    }

    /// The user this store belongs to.
    pub fn user(&self) -> String {
        self.reader().identity().user.clone()
    }

    /// A form by id ("identification", "referral", "followup"), labelled in `lang` (fr, en, ar):
    /// the newest version not retired, the one new records are written with.
    pub fn form(&self, form_id: String, lang: String) -> Result<FormInfo> {
        guard(|| {
            let forms = self.reader().forms()?;
            Ok(form_info(forms.latest(&form_id)?, Lang::from_tag(&lang)))
        })
    }

    /// One version of a form: a record is shown and edited with the version it names
    /// (`CaseDetail.identification_form`, `ReferralInfo.form_version`...).
    pub fn form_version(&self, form_id: String, version: u32, lang: String) -> Result<FormInfo> {
        guard(|| {
            let forms = self.reader().forms()?;
            Ok(form_info(
                forms.get(&form_id, version)?,
                Lang::from_tag(&lang),
            ))
        })
    }

    /// Every form version this phone holds, built in or received from the server at sync:
    /// a version published on the server shows here after the next sync, with no app update.
    pub fn forms(&self, lang: String) -> Result<Vec<FormVersionInfo>> {
        guard(|| {
            let forms = self.reader().forms()?;
            let lang = Lang::from_tag(&lang);
            Ok(forms
                .all()
                .map(|f| FormVersionInfo {
                    id: f.id.clone(),
                    version: f.version,
                    title: f.title.get(lang).to_string(),
                    retired: forms.is_retired(&f.id, f.version),
                })
                .collect())
        })
    }

    /// The fields a form screen shows given what was entered so far (relevance rules).
    pub fn visible_fields(
        &self,
        form_id: String,
        inputs: HashMap<String, String>,
    ) -> Result<Vec<String>> {
        guard(|| {
            let store = self.reader();
            let forms = store.forms()?;
            Ok(forms.latest(&form_id)?.visible_fields_from_inputs(&inputs))
        })
    }

    /// The same for one version of a form: a record edited in the version it names.
    pub fn visible_fields_in_version(
        &self,
        form_id: String,
        version: u32,
        inputs: HashMap<String, String>,
    ) -> Result<Vec<String>> {
        guard(|| {
            let forms = self.reader().forms()?;
            Ok(forms
                .get(&form_id, version)?
                .visible_fields_from_inputs(&inputs))
        })
    }

    /// Records a new child from the identification form's text inputs; returns the case id.
    pub fn create_case(&self, inputs: HashMap<String, String>) -> Result<String> {
        guard(|| {
            let mut store = self.writer();
            let record = store
                .forms()?
                .latest(IDENTIFICATION)?
                .record_from_inputs(&inputs)?;
            Ok(store.create_case(&record)?)
        })
    }

    /// Changes identification fields (an empty input clears the field); returns what changed.
    /// The app's name and version, reported at each sync for the supervisor's console (say
    /// "suivi-android 1.4.0"); kept in the store.
    pub fn set_app_version(&self, version: String) -> Result<()> {
        guard(|| Ok(self.writer().set_app_version(&version)?))
    }

    /// The app version the next sync reports.
    pub fn app_version(&self) -> Result<String> {
        guard(|| Ok(self.reader().app_version()?))
    }

    /// Settles a conflict (a `ConflictInfo.path`) with a value typed as the form takes it, or
    /// one of a disputed referral's statuses; the other devices see it settled after syncing.
    pub fn resolve_conflict(&self, case_id: String, path: String, value: String) -> Result<()> {
        guard(|| Ok(self.writer().resolve_conflict(&case_id, &path, &value)?))
    }

    pub fn edit_case(
        &self,
        case_id: String,
        inputs: HashMap<String, String>,
    ) -> Result<Vec<String>> {
        guard(|| {
            let mut store = self.writer();
            // Read with the version the record follows, not the newest.
            let record = store.case_form(&case_id)?.record_from_inputs(&inputs)?;
            Ok(store.edit_case(&case_id, &record)?)
        })
    }

    /// Moves a case to the newest identification form version, with that version's new
    /// answers (`inputs`, read by the new version): the record is then checked against it.
    /// Fields it no longer asks stay, read-only (`CaseDetail.former_fields`).
    pub fn move_case_form(
        &self,
        case_id: String,
        inputs: HashMap<String, String>,
    ) -> Result<Vec<String>> {
        guard(|| {
            let mut store = self.writer();
            let record = store
                .forms()?
                .latest(IDENTIFICATION)?
                .record_from_inputs(&inputs)?;
            Ok(store.move_case_form(&case_id, &record)?)
        })
    }

    /// Gives a case to another agent of the team (a supervisor's phone, offline if need be):
    /// the server moves it at the next sync. False if it was already given to that agent.
    pub fn reassign_case(&self, case_id: String, agent: String) -> Result<bool> {
        guard(|| Ok(self.writer().reassign_case(&case_id, &agent)?))
    }

    /// Refers the child to a service; returns the referral id.
    pub fn refer(&self, case_id: String, inputs: HashMap<String, String>) -> Result<String> {
        guard(|| {
            let mut store = self.writer();
            let record = store
                .forms()?
                .latest(REFERRAL)?
                .record_from_inputs(&inputs)?;
            Ok(store.refer(&case_id, &record)?)
        })
    }

    /// Moves a referral (send, accept, decline, start, complete, close, transfer); a transfer
    /// names the next provider and returns the next referral's id.
    pub fn move_referral(
        &self,
        referral_id: String,
        transition: String,
        note: Option<String>,
        next_provider: Option<String>,
    ) -> Result<Option<String>> {
        guard(|| {
            let transition = Transition::parse(&transition)?;
            Ok(self.writer().transition_referral(
                &referral_id,
                transition,
                note.as_deref(),
                next_provider.as_deref(),
            )?)
        })
    }

    /// Records a follow-up visit; returns its id.
    pub fn add_followup(&self, case_id: String, inputs: HashMap<String, String>) -> Result<String> {
        guard(|| {
            let mut store = self.writer();
            let record = store
                .forms()?
                .latest(FOLLOWUP)?
                .record_from_inputs(&inputs)?;
            Ok(store.add_followup(&case_id, &record)?)
        })
    }

    /// The caseload list, from the projections (no document is loaded).
    pub fn list_cases(&self, query: CaseQuery) -> Result<Vec<CaseSummary>> {
        guard(|| {
            let filter = suivi_core::CaseFilter {
                query: query.text,
                village: query.village,
                risk_level: query.risk_level,
                referral_status: query.referral_status,
                overdue_on: query
                    .overdue_on
                    .map(|d| {
                        suivi_core::store::parse_date(&d).ok_or_else(|| SuiviError::Validation {
                            problems: vec![FieldProblem {
                                field: "overdue_on".into(),
                                key: "type.date".into(),
                            }],
                        })
                    })
                    .transpose()?,
                limit: query.limit.map(|l| l as usize),
            };
            Ok(self
                .reader()
                .list_cases(&filter)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Everything about one case: identification, referral chain, visits, conflicts.
    pub fn case_detail(&self, case_id: String) -> Result<CaseDetail> {
        guard(|| {
            let reader = self.reader();
            let d = reader.case(&case_id)?;
            let quarantine_reason = reader
                .quarantined_cases()?
                .into_iter()
                .find(|q| q.case_id == case_id)
                .map(|q| q.reason);
            Ok(CaseDetail {
                quarantine_reason,
                summary: d.summary.into(),
                identification_form: d.identification_form,
                identification: text_fields(&d.identification),
                former_fields: text_fields(&d.former_fields),
                referrals: d.referrals.into_iter().map(referral_info).collect(),
                followups: d.followups.into_iter().map(followup_info).collect(),
                merged_into: d.merged_into,
                merged_cases: d
                    .merged
                    .into_iter()
                    .map(|m| MergedCaseInfo {
                        case_id: m.case_id,
                        held: m.held,
                        referrals: m.referrals.into_iter().map(referral_info).collect(),
                        followups: m.followups.into_iter().map(followup_info).collect(),
                        edits_after_merge: m.edits_after_merge.len() as u32,
                    })
                    .collect(),
                conflicts: d
                    .conflicts
                    .into_iter()
                    .map(|c| ConflictInfo {
                        path: c.path,
                        values: c.values.iter().map(ToString::to_string).collect(),
                        sources: c
                            .sources
                            .into_iter()
                            .map(|s| ConflictSource {
                                user: s.user,
                                at: s.at.to_rfc3339(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
        })
    }

    /// Who changed what in a case, and when.
    pub fn history(&self, case_id: String) -> Result<Vec<HistoryItem>> {
        guard(|| {
            let to_text = |v: Option<serde_json::Value>| v.map(|v| v.to_string());
            Ok(self
                .reader()
                .history(&case_id)?
                .into_iter()
                .map(|h| HistoryItem {
                    at: h.at.to_rfc3339(),
                    user: h.user,
                    action: h.action,
                    verified_user: h.verified.as_ref().map(|v| v.user.clone()),
                    verified_device: h.verified.as_ref().map(|v| v.device.clone()),
                    received_at: h
                        .verified
                        .as_ref()
                        .and_then(|v| v.received_at)
                        .map(|t| t.to_rfc3339()),
                    changes: h
                        .changes
                        .into_iter()
                        .map(|c| FieldChangeInfo {
                            path: c.path,
                            old_value: to_text(c.old),
                            new_value: to_text(c.new),
                        })
                        .collect(),
                })
                .collect())
        })
    }

    /// Cases holding a conflict, for the conflicts badge.
    pub fn conflicted_case_count(&self) -> Result<u64> {
        guard(|| {
            let rows = self
                .reader()
                .list_cases(&suivi_core::CaseFilter::default())?;
            Ok(to_u64(rows.iter().filter(|r| r.conflict_count > 0).count()))
        })
    }

    /// Enrolls this store with a sync server using a one-time code from an admin, trusting
    /// `ca_pem` (a project's own certificate authority, PEM) for this request and every sync
    /// after it. The store is free for reads and saves while the request is on the network.
    pub fn enroll(
        &self,
        server_url: String,
        code: String,
        ca_pem: Option<String>,
    ) -> Result<EnrollmentInfo> {
        guard(|| {
            let transport = HttpTransport::with_root_certificate(
                &server_url,
                ca_pem.as_deref().map(str::as_bytes),
            )?;
            let body = self.writer().enrollment_request(&code)?;
            let reply = transport.post("/v1/enroll", "application/json", body, None)?;
            let mut store = self.writer();
            if let Some(pem) = &ca_pem {
                store.set_server_ca(pem)?;
            }
            let e = store.finish_enrollment(&server_url, &reply)?;
            Ok(EnrollmentInfo {
                device_id: e.device_id,
                user: e.user,
                role: e.role,
            })
        })
    }

    /// This device's enrollment; `None` before enrolling, or after a revocation's wipe.
    pub fn enrollment(&self) -> Result<Option<EnrollmentInfo>> {
        guard(|| {
            Ok(self.reader().enrollment()?.map(|e| EnrollmentInfo {
                device_id: e.device_id,
                user: e.user,
                role: e.role,
            }))
        })
    }

    /// Trusts a project's own certificate authority (PEM) for this store's server.
    pub fn set_server_ca(&self, ca_pem: String) -> Result<()> {
        guard(|| Ok(self.writer().set_server_ca(&ca_pem)?))
    }

    /// Syncs the caseload. Being offline is `SuiviError.Offline` and loses nothing; `cancel`
    /// stops it (`SuiviError.Cancelled`), keeping every page committed before. Reads and saves
    /// on other threads go on meanwhile. `listener` is called with no lock held.
    pub fn sync(
        &self,
        listener: Option<Box<dyn SyncListener>>,
        cancel: Option<Arc<SyncCancel>>,
    ) -> Result<SyncSummary> {
        guard(|| {
            let transport = self.writer().transport()?;
            let cancel = cancel.map(|c| c.inner.clone()).unwrap_or_default();
            let mut handle = &self.writer;
            let report = session::run(
                &mut handle,
                &transport,
                &mut |p| {
                    if let Some(l) = &listener {
                        l.on_progress(SyncProgress {
                            round_trips: to_u64(p.round_trips),
                            cases_down: to_u64(p.cases_down),
                            bytes_down: to_u64(p.bytes_down),
                            more: p.more,
                        });
                    }
                },
                &cancel,
            )?;
            Ok(SyncSummary {
                cases_up: to_u64(report.cases_up),
                cases_down: to_u64(report.cases_down),
                bytes_up: to_u64(report.bytes_up),
                bytes_down: to_u64(report.bytes_down),
                round_trips: to_u64(report.round_trips),
                conflicts: to_u64(report.conflicts),
                refused: to_u64(report.refused.len()),
                erased: to_u64(report.erased),
                quarantined: to_u64(report.quarantined.len()),
                forms_received: to_u64(report.forms_received),
                forms_refused: report.forms_refused,
                duration_ms: report.duration_ms,
            })
        })
    }

    /// Pulled cases set aside, with why (a reason, no case data).
    pub fn quarantined_cases(&self) -> Result<Vec<QuarantinedCase>> {
        guard(|| {
            Ok(self
                .reader()
                .quarantined_cases()?
                .into_iter()
                .map(|q| QuarantinedCase {
                    case_id: q.case_id,
                    reason: q.reason,
                })
                .collect())
        })
    }

    /// Cases with changes the server has not acknowledged: what a reset would lose. The app
    /// keeps this number (no case data) outside the encrypted store, for the day the key is
    /// lost and the store cannot be opened to count.
    pub fn unsynced_case_count(&self) -> Result<u64> {
        guard(|| Ok(u64::try_from(self.reader().unsynced_case_count()?).unwrap_or(0)))
    }

    /// Whether a revoked device's case data was wiped (the app then offers to enroll again).
    pub fn is_wiped(&self) -> Result<bool> {
        guard(|| Ok(self.reader().is_wiped()?))
    }

    /// When the last sync completed (RFC 3339), if ever.
    pub fn last_sync(&self) -> Result<Option<String>> {
        guard(|| Ok(self.reader().last_sync()?))
    }
}
