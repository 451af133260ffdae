//! The records a case screen, a list and a history read.

use super::*;

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
    /// Listed from the row a first sync sent ahead; the case itself is on its way: read-only.
    pub arriving: bool,
    /// The child's stage and closure as codes (`outcomeInWords` says them).
    pub stage: Option<String>,
    pub classification: Option<String>,
    pub outcome_provisional: bool,
    pub closure: Option<String>,
    /// The day the child reaches the programme's age limit (YYYY-MM-DD), when known.
    pub age_limit_on: Option<String>,
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
            arriving: r.arriving,
            stage: r.stage,
            classification: r.classification,
            outcome_provisional: r.outcome_provisional,
            closure: r.closure,
            age_limit_on: r.age_limit_on,
        }
    }
}

/// A referral waiting on the agent (a draft to send, a declined one to transfer or close).
#[derive(Debug, Clone, uniffi::Record)]
pub struct WaitingReferral {
    pub case: CaseSummary,
    pub referral_id: String,
    pub status: String,
    pub service_type: Option<String>,
    pub provider: Option<String>,
    pub urgency: Option<String>,
    pub updated_at: String,
}

/// What the agent has to do: visits overdue or due within a week (most overdue first),
/// referrals waiting on the agent (oldest first), cases in conflict.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TodoInfo {
    pub visits: Vec<CaseSummary>,
    pub referrals: Vec<WaitingReferral>,
    pub conflicts: Vec<CaseSummary>,
}

impl From<suivi_core::Todo> for TodoInfo {
    fn from(t: suivi_core::Todo) -> Self {
        TodoInfo {
            visits: t.visits.into_iter().map(Into::into).collect(),
            referrals: t
                .referrals
                .into_iter()
                .map(|(case, r)| WaitingReferral {
                    case: case.into(),
                    referral_id: r.referral_id,
                    status: r.status,
                    service_type: r.service_type,
                    provider: r.provider,
                    urgency: r.urgency,
                    updated_at: r.updated_at,
                })
                .collect(),
            conflicts: t.conflicts.into_iter().map(Into::into).collect(),
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
    /// The referral form version its fields follow (label them with that version).
    pub form_version: u32,
    /// Field values as text, by field id (display them with the form's labels).
    pub fields: HashMap<String, String>,
    pub created_at: String,
    pub created_by: String,
    pub previous_referral: Option<String>,
    pub next_referral: Option<String>,
    pub steps: Vec<ReferralStep>,
}

/// A form's answers as typed, kept until saved or discarded.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DraftInfo {
    pub form_id: String,
    /// The case it adds to; none for a new case.
    pub case_id: Option<String>,
    pub inputs: HashMap<String, String>,
    pub updated_at: String,
}

impl From<suivi_core::store::Draft> for DraftInfo {
    fn from(d: suivi_core::store::Draft) -> Self {
        DraftInfo {
            form_id: d.form_id,
            case_id: d.case_id,
            inputs: d.inputs.into_iter().collect(),
            updated_at: d.updated_at,
        }
    }
}

/// One identification value as the case screen shows it: the field's label, the value in
/// words (choices by label, yes or no, dates written out).
#[derive(Debug, Clone, uniffi::Record)]
pub struct ShownValue {
    pub field: String,
    pub label: String,
    pub value: String,
    /// Asked by an earlier version of the form only: shown as recorded, read-only.
    pub former: bool,
}

/// A conflict as the picker shows it: the field by its label, each value to keep.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ConflictChoice {
    /// What `resolveConflict` settles.
    pub path: String,
    pub label: String,
    pub options: Vec<ConflictOption>,
}

/// One of a conflict's values: in words, what settles on it, who wrote it, from which phone,
/// when.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ConflictOption {
    /// Pass it to `resolveConflict` to keep this value.
    pub input: String,
    pub value: String,
    pub author: Option<String>,
    /// The server vouched for the author and the phone.
    pub verified: bool,
    pub phone: Option<String>,
    pub at: String,
}

impl From<suivi_core::store::ConflictChoice> for ConflictChoice {
    fn from(c: suivi_core::store::ConflictChoice) -> Self {
        ConflictChoice {
            path: c.path,
            label: c.label,
            options: c
                .options
                .into_iter()
                .map(|o| ConflictOption {
                    input: o.input,
                    value: o.value,
                    author: o.author,
                    verified: o.verified,
                    phone: o.phone,
                    at: o.at,
                })
                .collect(),
        }
    }
}

/// A move a referral's status allows, as a button offers it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReferralMove {
    /// What `moveReferral` takes: send, accept, decline, start, complete, close, transfer.
    pub transition: String,
    /// The move in the reader's language.
    pub label: String,
    /// A transfer names the next provider.
    pub names_provider: bool,
}

/// The moves a referral in `status` allows (core's rules), labelled in `lang`; none for a
/// finished referral, or for a status two phones set at once (settle that first).
#[uniffi::export]
pub fn referral_moves(status: String, lang: String) -> Vec<ReferralMove> {
    let lang = Lang::from_tag(&lang);
    suivi_core::ReferralStatus::parse(&status)
        .map(|s| s.moves())
        .unwrap_or_default()
        .into_iter()
        .map(|t| ReferralMove {
            transition: t.as_str().to_string(),
            label: t.label(lang).to_string(),
            names_provider: t == Transition::Transfer,
        })
        .collect()
}

/// A case's outcome as its row and screen say it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct OutcomeInWords {
    pub stage: String,
    pub classification: Option<String>,
    /// A visit this phone has not had acknowledged counted.
    pub provisional: bool,
    /// What the agent does next; none for a closed case or one waiting on a supervisor.
    pub next_step: Option<String>,
    pub closure: Option<String>,
}

/// A list row's outcome in `lang` (core's words); none for a row listed ahead of its case.
#[uniffi::export]
pub fn outcome_in_words(case: CaseSummary, lang: String) -> Option<OutcomeInWords> {
    let row = suivi_core::outcome::RowOutcome {
        stage: case.stage.as_deref(),
        classification: case.classification.as_deref(),
        provisional: case.outcome_provisional,
        closure: case.closure.as_deref(),
        age_limit_on: case.age_limit_on.as_deref(),
    };
    suivi_core::outcome::row_in_words_today(row, Lang::from_tag(&lang)).map(|w| OutcomeInWords {
        stage: w.stage,
        classification: w.classification,
        provisional: w.provisional,
        next_step: w.next_step,
        closure: w.closure,
    })
}

/// A reason a closure is proposed for: its code and its words.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ClosureReason {
    pub code: String,
    pub label: String,
}

/// The reasons a case may be closed for, in `lang`, as a picker offers them.
#[uniffi::export]
pub fn closure_reasons(lang: String) -> Vec<ClosureReason> {
    suivi_core::outcome::closure_reasons(Lang::from_tag(&lang))
        .into_iter()
        .map(|(code, label)| ClosureReason { code, label })
        .collect()
}

/// A case's closure as its screen shows it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ClosureInfo {
    /// `open`, `proposed`, `returned`, `closed` or `disputed`.
    pub status: String,
    pub label: String,
    pub reason: Option<String>,
    pub steps: Vec<ClosureStepInfo>,
    pub may_propose: bool,
    pub may_decide: bool,
    pub may_reopen: bool,
}

/// One step of a closure, in words.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ClosureStepInfo {
    pub step: String,
    pub actor: String,
    pub at: String,
    pub reason: Option<String>,
    pub note: Option<String>,
}

impl From<suivi_core::store::ClosureWords> for ClosureInfo {
    fn from(c: suivi_core::store::ClosureWords) -> Self {
        ClosureInfo {
            status: c.status,
            label: c.label,
            reason: c.reason,
            steps: c
                .steps
                .into_iter()
                .map(|s| ClosureStepInfo {
                    step: s.step,
                    actor: s.actor,
                    at: s.at,
                    reason: s.reason,
                    note: s.note,
                })
                .collect(),
            may_propose: c.may_propose,
            may_decide: c.may_decide,
            may_reopen: c.may_reopen,
        }
    }
}

/// A stored day (`2026-03-02`, or the day of a stored time) as the reader writes it in `lang`:
/// "2 mars 2026", "2 March 2026", "2 مارس 2026"; anything else as it is.
#[uniffi::export]
pub fn date_in_words(text: String, lang: String) -> String {
    let day = text.get(..10).unwrap_or(&text);
    suivi_core::words::date_text(Lang::from_tag(&lang), day)
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

pub(super) fn referral_info(r: suivi_core::case_doc::Referral) -> ReferralInfo {
    ReferralInfo {
        fields: record_as_text(&r.fields),
        referral_id: r.id,
        status: r.status,
        form_version: r.form_version,
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

pub(super) fn followup_info(f: suivi_core::case_doc::FollowUp) -> FollowUpInfo {
    FollowUpInfo {
        fields: record_as_text(&f.fields),
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

/// One change of a case told in the reader's words (`CaseStore::story`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct ToldItem {
    /// When, in the time zone asked for, to the minute, as the reader writes a date.
    pub at: String,
    /// Who made it: the author the server verified, else the one the change names.
    pub who: Option<String>,
    /// What happened, one line.
    pub headline: String,
    /// Each value it wrote, as "label: old → new".
    pub details: Vec<String>,
}

impl From<suivi_core::case_doc::ToldEntry> for ToldItem {
    fn from(t: suivi_core::case_doc::ToldEntry) -> Self {
        ToldItem {
            at: t.at,
            who: t.who,
            headline: t.headline,
            details: t.details,
        }
    }
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
