//! The encrypted case store of this device, and every call the app makes on it.

use super::*;

/// The encrypted case store of this device.
#[derive(uniffi::Object)]
pub struct CaseStore {
    /// Saves, syncs and enrollment.
    pub(super) writer: Mutex<Store>,
    /// Lists, search, case screens: a read-only connection that never waits for the writer.
    pub(super) reader: Mutex<Store>,
}

pub(super) fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    // A panic while holding the lock left SQLite consistent (its transaction rolled back), so
    // the store stays usable.
    store.lock().unwrap_or_else(|p| p.into_inner())
}

impl CaseStore {
    pub(super) fn with(writer: Store, path: &str, key: &str) -> Result<Arc<Self>> {
        let reader = Store::open_reader(Path::new(path), key)?;
        Ok(Arc::new(CaseStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        }))
    }

    pub(super) fn writer(&self) -> MutexGuard<'_, Store> {
        lock(&self.writer)
    }

    pub(super) fn reader(&self) -> MutexGuard<'_, Store> {
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
            let forms = self.reader().forms()?;
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
            let record = store.new_record(IDENTIFICATION, &inputs)?;
            Ok(store.create_case(&record)?)
        })
    }

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

    /// Changes identification fields (an empty input clears the field); returns what changed.
    /// The inputs are read with the form version the case's record follows, not the newest.
    pub fn edit_case(
        &self,
        case_id: String,
        inputs: HashMap<String, String>,
    ) -> Result<Vec<String>> {
        guard(|| {
            let mut store = self.writer();
            let record = store.case_record(&case_id, &inputs)?;
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
            let record = store.new_record(IDENTIFICATION, &inputs)?;
            Ok(store.move_case_form(&case_id, &record)?)
        })
    }

    /// Gives a case to another agent of the team (a supervisor's phone, offline if need be):
    /// the server moves it at the next sync. False if it was already given to that agent.
    pub fn reassign_case(&self, case_id: String, agent: String) -> Result<bool> {
        guard(|| Ok(self.writer().reassign_case(&case_id, &agent)?))
    }

    /// Proposes to close a case for `reason` (a `closureReasons` code), offline if need be: a
    /// supervisor approves or returns it.
    pub fn propose_closure(
        &self,
        case_id: String,
        reason: String,
        note: Option<String>,
    ) -> Result<()> {
        guard(|| {
            Ok(self
                .writer()
                .propose_closure(&case_id, &reason, note.as_deref())?)
        })
    }

    /// A supervisor's decision on a proposed closure (a supervisor's phone, offline if need
    /// be): approved, or returned to the agent with a note.
    pub fn decide_closure(
        &self,
        case_id: String,
        approve: bool,
        note: Option<String>,
    ) -> Result<()> {
        guard(|| {
            Ok(self
                .writer()
                .decide_closure(&case_id, approve, note.as_deref())?)
        })
    }

    /// Opens a closed case again (counted in the programme's report).
    pub fn reopen_case(&self, case_id: String, note: Option<String>) -> Result<()> {
        guard(|| Ok(self.writer().reopen_case(&case_id, note.as_deref())?))
    }

    /// A case's closure in the reader's words (`lang`), times in `time_zone` (an IANA name
    /// such as Africa/Bamako): its steps, and what this phone's user may do next.
    pub fn closure(&self, case_id: String, lang: String, time_zone: String) -> Result<ClosureInfo> {
        guard(|| {
            let zone = suivi_core::words::Zone::parse(&time_zone)?;
            Ok(self
                .reader()
                .closure_in_words(&case_id, Lang::from_tag(&lang), zone)?
                .into())
        })
    }

    /// Refers the child to a service; returns the referral id.
    pub fn refer(&self, case_id: String, inputs: HashMap<String, String>) -> Result<String> {
        guard(|| {
            let mut store = self.writer();
            let record = store.new_record(REFERRAL, &inputs)?;
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
            let record = store.new_record(FOLLOWUP, &inputs)?;
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
                    .map(|d| date_input("overdue_on", &d))
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

    /// What the agent has to do on `today` (the phone's day, YYYY-MM-DD), narrowed by risk
    /// level and village (by its beginning) as the caseload is.
    pub fn todo(
        &self,
        today: String,
        risk_level: Option<String>,
        village: Option<String>,
    ) -> Result<TodoInfo> {
        guard(|| {
            let today = date_input("today", &today)?;
            let filter = suivi_core::TodoFilter {
                risk_level,
                village,
            };
            Ok(self.reader().todo(today, &filter)?.into())
        })
    }

    /// A case's identification in the reader's words (`lang`: fr, en, ar), in its form
    /// version's order, then the fields only an earlier version asked.
    pub fn identification_in_words(
        &self,
        case_id: String,
        lang: String,
    ) -> Result<Vec<ShownValue>> {
        guard(|| {
            let shown = self
                .reader()
                .identification_in_words(&case_id, Lang::from_tag(&lang))?;
            Ok(shown
                .into_iter()
                .map(|s| ShownValue {
                    field: s.field,
                    label: s.label,
                    value: s.value,
                    former: s.former,
                })
                .collect())
        })
    }

    /// Keeps a form's answers as typed (`case_id`: the case it adds to, none for a new case),
    /// in the encrypted store: restored after Android kills the app, gone with the case.
    pub fn save_draft(
        &self,
        form_id: String,
        case_id: Option<String>,
        inputs: HashMap<String, String>,
    ) -> Result<()> {
        guard(|| {
            let inputs = inputs.into_iter().collect();
            Ok(self
                .writer()
                .save_draft(&form_id, case_id.as_deref(), &inputs)?)
        })
    }

    /// The draft of a form for a case (none: a new case), if one was kept.
    pub fn draft(&self, form_id: String, case_id: Option<String>) -> Result<Option<DraftInfo>> {
        guard(|| {
            Ok(self
                .reader()
                .draft(&form_id, case_id.as_deref())?
                .map(Into::into))
        })
    }

    /// Every draft kept, the latest first.
    pub fn drafts(&self) -> Result<Vec<DraftInfo>> {
        guard(|| {
            Ok(self
                .reader()
                .drafts()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Throws a draft away; whether there was one.
    pub fn discard_draft(&self, form_id: String, case_id: Option<String>) -> Result<bool> {
        guard(|| Ok(self.writer().discard_draft(&form_id, case_id.as_deref())?))
    }

    /// Everything about one case: identification, referral chain, visits, conflicts.
    pub fn case_detail(&self, case_id: String) -> Result<CaseDetail> {
        guard(|| {
            let reader = self.reader();
            let d = reader.case(&case_id)?;
            let quarantine_reason = reader.quarantine_reason(&case_id)?;
            Ok(CaseDetail {
                quarantine_reason,
                summary: d.summary.into(),
                identification_form: d.identification_form,
                identification: record_as_text(&d.identification),
                former_fields: record_as_text(&d.former_fields),
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

    /// A case's history in the reader's words: `lang` a language tag (`fr`, `en`, `ar`),
    /// `time_zone` an IANA name (the phone's own, `Africa/Bamako`).
    pub fn story(&self, case_id: String, lang: String, time_zone: String) -> Result<Vec<ToldItem>> {
        guard(|| {
            let zone = suivi_core::words::Zone::parse(&time_zone)?;
            let told =
                self.reader()
                    .told_history(&case_id, suivi_core::Lang::from_tag(&lang), zone)?;
            Ok(told.into_iter().map(ToldItem::from).collect())
        })
    }

    /// A case's conflicts for the picker, in the reader's words (`lang`), times on
    /// `time_zone`'s clock: each value labelled, with its author, phone and time.
    pub fn conflict_choices(
        &self,
        case_id: String,
        lang: String,
        time_zone: String,
    ) -> Result<Vec<ConflictChoice>> {
        guard(|| {
            let zone = suivi_core::words::Zone::parse(&time_zone)?;
            let choices = self.reader().conflict_choices(
                &case_id,
                suivi_core::Lang::from_tag(&lang),
                zone,
            )?;
            Ok(choices.into_iter().map(Into::into).collect())
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
        guard(|| Ok(self.reader().conflicted_case_count()?))
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
            let mut handle = &self.writer;
            let e = suivi_core::sync::enroll(&mut handle, &server_url, &code, ca_pem.as_deref())?;
            Ok(e.into())
        })
    }

    /// This device's enrollment; `None` before enrolling, or after a revocation's wipe.
    pub fn enrollment(&self) -> Result<Option<EnrollmentInfo>> {
        guard(|| Ok(self.reader().enrollment()?.map(Into::into)))
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
                &mut |p| listener.iter().for_each(|l| l.on_progress(p.into())),
                &cancel,
            )?;
            Ok(report.into())
        })
    }

    /// Fetches a case listed ahead of its history (a first sync still running, the row marked
    /// `arriving`) so it opens at once; `case_detail` then reads it. Offline is
    /// `SuiviError.Offline`, and the case keeps arriving with the sync.
    pub fn fetch_case(&self, case_id: String) -> Result<()> {
        guard(|| {
            let transport = self.writer().transport()?;
            let mut handle = &self.writer;
            suivi_core::sync::fetch_cases(&mut handle, &transport, &[case_id])?;
            Ok(())
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
    /// Cases whose own changes the server refused (they stay on the phone, with them), for the
    /// agent to read after a sync.
    pub fn refused_cases(&self) -> Result<Vec<RefusedCase>> {
        guard(|| {
            Ok(self
                .reader()
                .refused_cases()?
                .into_iter()
                .map(|r| RefusedCase {
                    reason: r
                        .reason
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                    case_id: r.case_id,
                })
                .collect())
        })
    }

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
