//! What one request and one device may spend: the operation budget, the daily allowance, the refusal rows audited per day.

use super::*;

/// What is left of `REQUEST_OPS_MAX` as a push is checked. The first case always goes through,
/// so every request makes progress.
pub(super) struct OpsBudget {
    pub(super) left: usize,
    pub(super) spent: bool,
    /// The agents of the teams this request writes to, read before deciding: a reassignment
    /// is checked against them (a list reassigned at once names one agent a thousand times).
    pub(super) agents: HashMap<String, User>,
    pub(super) teams_read: HashSet<String>,
    /// The forms the request's changes are checked with, read once for the request.
    pub(super) forms: Arc<FormRegistry>,
    /// The outcome settings the cases' projections are derived with.
    pub(super) settings: suivi_core::outcome::OutcomeSettings,
}

impl OpsBudget {
    pub(super) fn new(forms: Arc<FormRegistry>) -> OpsBudget {
        OpsBudget {
            left: REQUEST_OPS_MAX,
            spent: false,
            agents: HashMap::new(),
            teams_read: HashSet::new(),
            forms,
            settings: Default::default(),
        }
    }

    pub(super) fn take(&mut self, ops: usize) -> Result<(), (RefusalReason, String)> {
        if self.spent && ops > self.left {
            return Err((
                RefusalReason::QuotaExceeded,
                format!("{REQUEST_OPS_MAX} operations per request"),
            ));
        }
        self.left = self.left.saturating_sub(ops);
        self.spent = true;
        Ok(())
    }
}

/// What a device may still store today, spent case by case as a push is planned. Two pushes
/// from the same device at once can each see the same allowance, so a day may overshoot by at
/// most one request.
pub(super) struct Allowance {
    pub(super) quota: Quota,
    pub(super) used: Usage,
}

impl Allowance {
    pub(super) fn today(
        store: &dyn ServerStore,
        device_id: &str,
        now: i64,
    ) -> Result<Allowance, ServiceError> {
        Ok(Allowance {
            quota: store.device_quota(device_id)?.unwrap_or(DEFAULT_QUOTA),
            used: store.device_usage(device_id, now.div_euclid(86_400))?,
        })
    }

    /// Takes what `case` would store, or says which quota it would exceed.
    pub(super) fn take(&mut self, case: &AcceptedCase) -> Result<(), (RefusalReason, String)> {
        let new_cases = u64::from(case.new_case.is_some());
        let bytes: u64 = case.changes.iter().map(|(_, c)| c.len() as u64).sum();
        if self.used.new_cases + new_cases > self.quota.new_cases_per_day {
            return Err((
                RefusalReason::QuotaExceeded,
                format!("{} new cases per day", self.quota.new_cases_per_day),
            ));
        }
        if self.used.bytes + bytes > self.quota.bytes_per_day {
            return Err((
                RefusalReason::QuotaExceeded,
                format!("{} bytes per day", self.quota.bytes_per_day),
            ));
        }
        self.used.new_cases += new_cases;
        self.used.bytes += bytes;
        Ok(())
    }
}

/// Audit rows of refused pushes and docsyncs per device per day (in each instance): a device
/// refused at the rate limit all day must not fill the disk with rows (about 1.4 GB a day on
/// main at d9e481c). Past it, refusals are counted, and a row records the count each time it
/// doubles, so what was left out is known.
pub const REFUSAL_AUDITS_PER_DAY: u32 = 200;

/// Devices remembered before the counts of past days are dropped.
pub(super) const REFUSAL_AUDIT_DEVICES_MAX: usize = 10_000;

/// What one refusal's audit row gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalAudit {
    /// Written.
    Write,
    /// Left out; this many so far today, a power of two: write a row counting them.
    Count(u64),
    /// Left out, counted.
    Skip,
}

/// Per device: the day, refusal rows written, refusals left out.
#[derive(Default)]
pub(super) struct RefusalAudits(std::sync::Mutex<HashMap<String, (i64, u32, u64)>>);

impl RefusalAudits {
    pub(super) fn admit(&self, device_id: &str, now: i64) -> RefusalAudit {
        let day = now.div_euclid(86_400);
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= REFUSAL_AUDIT_DEVICES_MAX && !counts.contains_key(device_id) {
            counts.retain(|_, (d, _, _)| *d == day);
        }
        let entry = counts.entry(device_id.to_string()).or_insert((day, 0, 0));
        if entry.0 != day {
            *entry = (day, 0, 0);
        }
        if entry.1 < REFUSAL_AUDITS_PER_DAY {
            entry.1 += 1;
            return RefusalAudit::Write;
        }
        entry.2 += 1;
        if entry.2.is_power_of_two() {
            RefusalAudit::Count(entry.2)
        } else {
            RefusalAudit::Skip
        }
    }
}

/// The refusal reason a broken layout rule leads to, with its detail.
pub(super) fn refusal_of(refusal: &ChangeRefusal) -> (RefusalReason, String) {
    match refusal {
        ChangeRefusal::Malformed(why) => (RefusalReason::Malformed, (*why).to_string()),
        ChangeRefusal::DuplicateSeq => (RefusalReason::DuplicateSeq, String::new()),
        ChangeRefusal::Invalid(at) => (RefusalReason::Invalid, at.clone()),
        ChangeRefusal::WrongAuthor(at) => (RefusalReason::WrongAuthor, at.clone()),
        ChangeRefusal::IllegalTransition(at) => (RefusalReason::IllegalTransition, at.clone()),
        ChangeRefusal::NotAllowed(at) => (RefusalReason::Forbidden, at.clone()),
        ChangeRefusal::TooLarge => (
            RefusalReason::TooManyChanges,
            format!("over {} operations in the case", check::CASE_OPS_MAX),
        ),
    }
}

/// The one audit row of a push with refusals: validated case ids only (a malformed id is
/// counted, never written), at most `AUDIT_REFUSALS_LISTED_MAX` listed.
pub(super) fn refusal_audit(refused: &[Refusal]) -> String {
    let mut listed: Vec<String> = refused
        .iter()
        .filter(|r| valid_case_id(&r.case_id))
        .take(AUDIT_REFUSALS_LISTED_MAX)
        .map(|r| format!("{} {}", r.case_id, r.reason.as_str()))
        .collect();
    if refused.len() > listed.len() {
        listed.push(format!("+{} more", refused.len() - listed.len()));
    }
    listed.join(", ")
}
