//! A case's closure: an agent proposes it with a reason, a supervisor of the case's team
//! approves or returns it, anyone who writes the case may reopen it. Each step is a change of
//! its own (its author verified like any other) and an entry in `closure_steps`; the status is
//! one value at the document's root, so a proposal and a decision made at once on two phones
//! are a conflict a supervisor settles, like `assigned_to`. The server checks who moved it
//! (`check::closure`).
//!
//! The keys sit at the root, and the step log is read from every map two phones may have
//! created at once for it (a case's first proposal made on two phones offline): nothing is
//! hidden by Automerge picking one of them.

use super::*;
use crate::forms::Lang;

/// Why a case is closed, as a programme reports it.
pub const CLOSURE_REASONS: [&str; 6] = [
    "exited_stable",
    "moved_away",
    "age_limit",
    "transferred",
    "consent_withdrawn",
    "deceased",
];

/// Where a case's closure stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosureStatus {
    /// Never proposed, or reopened.
    Open,
    /// An agent asked to close it; a supervisor has not decided.
    Proposed,
    /// A supervisor sent the proposal back, with a note: the case stays open.
    Returned,
    /// A supervisor approved: the case leaves the due and overdue lists.
    Closed,
}

impl ClosureStatus {
    pub const ALL: [ClosureStatus; 4] = [
        ClosureStatus::Open,
        ClosureStatus::Proposed,
        ClosureStatus::Returned,
        ClosureStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClosureStatus::Open => "open",
            ClosureStatus::Proposed => "proposed",
            ClosureStatus::Returned => "returned",
            ClosureStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<ClosureStatus> {
        ClosureStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether `to` follows from `self` by one step: propose (from open or returned), approve
    /// or return (from proposed), reopen (from closed).
    pub fn moves_to(self, to: ClosureStatus) -> bool {
        use ClosureStatus::*;
        matches!(
            (self, to),
            (Open | Returned, Proposed) | (Proposed, Closed | Returned) | (Closed, Open)
        )
    }

    /// A supervisor's decision: only a supervisor of the case's team, or an admin, writes it.
    pub fn is_decision(self) -> bool {
        matches!(self, ClosureStatus::Closed | ClosureStatus::Returned)
    }
}

/// The steps of the closure log, as written in `closure_steps.<id>.step`.
pub const CLOSURE_STEPS: [&str; 4] = ["propose", "approve", "return", "reopen"];

/// One step of a case's closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureStep {
    pub id: String,
    /// One of `CLOSURE_STEPS`.
    pub step: String,
    /// The reason proposed (a proposal's step only).
    pub reason: Option<String>,
    pub note: Option<String>,
    pub actor: String,
    /// RFC 3339, the author's clock.
    pub at: String,
}

/// A case's closure as the document holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    /// The status Automerge shows; `disputed` says whether another was written at once.
    pub status: ClosureStatus,
    pub disputed: bool,
    /// The reason of the latest proposal.
    pub reason: Option<String>,
    /// Oldest first.
    pub steps: Vec<ClosureStep>,
}

impl Closure {
    /// Times a closed case was reopened: counted in a programme's report.
    pub fn reopenings(&self) -> usize {
        self.steps.iter().filter(|s| s.step == "reopen").count()
    }

    /// The closure as one code: its status, or `disputed` when two were written at once (what
    /// a list row keeps, and `closure_label` says).
    pub fn code(&self) -> &'static str {
        if self.disputed {
            "disputed"
        } else {
            self.status.as_str()
        }
    }

    /// Closed and settled: out of the due and overdue lists.
    pub fn is_closed(&self) -> bool {
        self.status == ClosureStatus::Closed && !self.disputed
    }
}

pub(crate) const K_CLOSURE_STATUS: &str = "closure_status";
pub(crate) const K_CLOSURE_REASON: &str = "closure_reason";
pub(crate) const K_CLOSURE_STEPS: &str = "closure_steps";
/// The keys of a closure step.
pub(crate) const CLOSURE_STEP_KEYS: [&str; 5] = ["step", "reason", "note", "actor", "at"];

impl CaseDoc {
    /// The case's closure; an open case that was never proposed has no steps.
    pub fn closure(&self) -> Result<Closure> {
        let mut statuses: Vec<String> = self
            .doc
            .get_all(ROOT, K_CLOSURE_STATUS)?
            .into_iter()
            .map(|(v, _)| value_to_plain_json(&v).to_string())
            .collect();
        // The same step taken on two phones (both proposed) is no dispute.
        statuses.sort();
        statuses.dedup();
        let status = self
            .string(&ROOT, K_CLOSURE_STATUS)?
            .and_then(|s| ClosureStatus::parse(&s))
            .unwrap_or(ClosureStatus::Open);
        // Each step with its entry's Lamport counter and actor: the order the steps were taken
        // in as the history knows it (authors' clocks disagree; a console's has no fraction of
        // a second).
        let mut steps: Vec<((u64, Vec<u8>), ClosureStep)> = Vec::new();
        for (value, log) in self.doc.get_all(ROOT, K_CLOSURE_STEPS)? {
            if !matches!(value, Value::Object(ObjType::Map)) {
                continue;
            }
            for key in self.doc.keys(&log) {
                let Some((Value::Object(ObjType::Map), entry)) = self.doc.get(&log, &key)? else {
                    continue;
                };
                let order = match &entry {
                    ObjId::Id(counter, actor, _) => (*counter, actor.to_bytes().to_vec()),
                    ObjId::Root => (0, Vec::new()),
                };
                let step = ClosureStep {
                    step: self.string(&entry, "step")?.unwrap_or_default(),
                    reason: self.string(&entry, "reason")?,
                    note: self.string(&entry, "note")?,
                    actor: self.string(&entry, "actor")?.unwrap_or_default(),
                    at: self.string(&entry, "at")?.unwrap_or_default(),
                    id: key,
                };
                steps.push((order, step));
            }
        }
        steps.sort_by(|a, b| a.0.cmp(&b.0));
        let steps: Vec<ClosureStep> = steps.into_iter().map(|(_, step)| step).collect();
        Ok(Closure {
            status,
            disputed: statuses.len() > 1,
            reason: self.string(&ROOT, K_CLOSURE_REASON)?,
            steps,
        })
    }

    /// Proposes to close the case for `reason` (one of `CLOSURE_REASONS`), offline if need be.
    pub fn propose_closure(
        &mut self,
        reason: &str,
        note: Option<&str>,
        ctx: &ChangeContext,
    ) -> Result<()> {
        if !CLOSURE_REASONS.contains(&reason) {
            return Err(Error::InvalidInput(format!("closure reason {reason}")));
        }
        self.closure_step(ClosureStatus::Proposed, "propose", Some(reason), note, ctx)
    }

    /// A supervisor's decision on a proposed closure: approved (the case is closed) or
    /// returned to the agent with a note.
    pub fn decide_closure(
        &mut self,
        approve: bool,
        note: Option<&str>,
        ctx: &ChangeContext,
    ) -> Result<()> {
        if approve {
            self.closure_step(ClosureStatus::Closed, "approve", None, note, ctx)
        } else {
            self.closure_step(ClosureStatus::Returned, "return", None, note, ctx)
        }
    }

    /// Opens a closed case again (counted in a programme's report).
    pub fn reopen(&mut self, note: Option<&str>, ctx: &ChangeContext) -> Result<()> {
        self.closure_step(ClosureStatus::Open, "reopen", None, note, ctx)
    }

    fn closure_step(
        &mut self,
        to: ClosureStatus,
        step: &str,
        reason: Option<&str>,
        note: Option<&str>,
        ctx: &ChangeContext,
    ) -> Result<()> {
        let now = self.closure()?;
        if now.disputed {
            return Err(Error::InvalidInput(
                "the closure is in conflict: a supervisor settles it first".into(),
            ));
        }
        if !now.status.moves_to(to) {
            return Err(Error::InvalidInput(format!(
                "a case whose closure is {} cannot be {}",
                now.status.as_str(),
                to.as_str()
            )));
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        let log = match self.doc.get(ROOT, K_CLOSURE_STEPS)? {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => self.doc.put_object(ROOT, K_CLOSURE_STEPS, ObjType::Map)?,
        };
        self.doc.put(ROOT, K_CLOSURE_STATUS, to.as_str())?;
        if let Some(reason) = reason {
            self.doc.put(ROOT, K_CLOSURE_REASON, reason)?;
        }
        let entry = self
            .doc
            .put_object(&log, time_key(ctx.time), ObjType::Map)?;
        self.doc.put(&entry, "step", step)?;
        if let Some(reason) = reason {
            self.doc.put(&entry, "reason", reason)?;
        }
        if let Some(note) = note {
            self.doc.put(&entry, "note", note)?;
        }
        self.doc.put(&entry, "actor", ctx.user.as_str())?;
        self.doc.put(&entry, "at", ctx.time.to_rfc3339())?;
        self.commit(ctx, &format!("case.closure.{step}"));
        Ok(())
    }
}

// --- in words: a closure as people read it, in fr, en and ar (a form's other languages read
// French); the phone, the CLI, the console and the history say it alike ---

fn pick(lang: Lang, (fr, en, ar): (&'static str, &'static str, &'static str)) -> &'static str {
    match lang {
        Lang::Fr | Lang::Other(_) => fr,
        Lang::En => en,
        Lang::Ar => ar,
    }
}

impl ClosureStatus {
    pub fn label(self, lang: Lang) -> &'static str {
        pick(
            lang,
            match self {
                ClosureStatus::Open => ("ouvert", "open", "مفتوح"),
                ClosureStatus::Proposed => ("clôture proposée", "closure proposed", "إغلاق مقترح"),
                ClosureStatus::Returned => ("clôture renvoyée", "closure returned", "إغلاق مُعاد"),
                ClosureStatus::Closed => ("clôturé", "closed", "مغلق"),
            },
        )
    }
}

/// A closure reason (`case_doc::CLOSURE_REASONS`) as the reader says it; an unknown code as
/// it is.
pub fn closure_reason_label(lang: Lang, code: &str) -> String {
    let words = match code {
        "exited_stable" => (
            "sorti du travail, situation stable",
            "exited and stable",
            "خرج من العمل ووضعه مستقر",
        ),
        "moved_away" => ("parti de la zone", "moved away", "غادر المنطقة"),
        "age_limit" => (
            "a atteint l'âge limite",
            "reached the age limit",
            "بلغ السن القصوى",
        ),
        "transferred" => (
            "transféré à un autre programme",
            "transferred to another programme",
            "نُقل إلى برنامج آخر",
        ),
        "consent_withdrawn" => ("consentement retiré", "consent withdrawn", "سُحبت الموافقة"),
        "deceased" => ("décédé", "deceased", "توفي"),
        other => return other.to_string(),
    };
    pick(lang, words).to_string()
}

/// A step of a closure's log (`case_doc::CLOSURE_STEPS`) as the reader says it.
pub fn closure_step_label(lang: Lang, step: &str) -> String {
    let words = match step {
        "propose" => ("clôture proposée", "closure proposed", "اقتُرح الإغلاق"),
        "approve" => ("clôture approuvée", "closure approved", "وُوفق على الإغلاق"),
        "return" => (
            "renvoyée à l'agent",
            "returned to the agent",
            "أُعيد إلى المرشد",
        ),
        "reopen" => ("dossier rouvert", "case reopened", "أُعيد فتح الملف"),
        other => return other.to_string(),
    };
    pick(lang, words).to_string()
}

/// A closure's status code (a list row's `closure`) as the reader says it, `disputed` too.
pub fn closure_label(lang: Lang, code: &str) -> String {
    match ClosureStatus::parse(code) {
        Some(status) => status.label(lang).to_string(),
        None if code == "disputed" => format!(
            "{} ({})",
            pick(lang, ("clôture", "closure", "الإغلاق")),
            crate::words::w(lang, crate::words::W::Disputed)
        ),
        None => code.to_string(),
    }
}

/// A closure's key in conflict (`closure_status`, `closure_reason`) as a picker names it, and
/// one of its values in words; `None` for any other path.
pub fn closure_conflict_words(lang: Lang, path: &str, value: &str) -> Option<(String, String)> {
    match path {
        "closure_status" => Some((
            pick(lang, ("Clôture", "Closure", "الإغلاق")).to_string(),
            closure_label(lang, value),
        )),
        "closure_reason" => Some((
            pick(lang, ("Motif de clôture", "Closure reason", "سبب الإغلاق")).to_string(),
            closure_reason_label(lang, value),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::FormRegistry;

    fn case() -> (CaseDoc, FormRegistry) {
        let forms = FormRegistry::builtin();
        let form = forms.latest(IDENTIFICATION).unwrap();
        let record = crate::forms::validate::tests::valid_child();
        let doc = CaseDoc::create(
            &crate::clock::new_id(),
            ActorId::random(),
            form,
            &record,
            &ChangeContext::now("amina"),
        )
        .unwrap();
        (doc, forms)
    }

    #[test]
    fn a_closure_is_proposed_approved_and_reopened_each_step_logged() {
        let (mut doc, _) = case();
        assert_eq!(doc.closure().unwrap().status, ClosureStatus::Open);
        doc.propose_closure(
            "moved_away",
            Some("family left for Bamako"),
            &ChangeContext::now("amina"),
        )
        .unwrap();
        let c = doc.closure().unwrap();
        assert_eq!(c.status, ClosureStatus::Proposed);
        assert_eq!(c.reason.as_deref(), Some("moved_away"));
        doc.decide_closure(true, None, &ChangeContext::now("fatima"))
            .unwrap();
        assert!(doc.closure().unwrap().is_closed());
        doc.reopen(Some("back in the village"), &ChangeContext::now("amina"))
            .unwrap();
        let c = doc.closure().unwrap();
        assert_eq!(c.status, ClosureStatus::Open);
        assert_eq!(c.reopenings(), 1);
        let steps: Vec<(&str, &str)> = c
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.actor.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                ("propose", "amina"),
                ("approve", "fatima"),
                ("reopen", "amina")
            ]
        );
        assert_eq!(c.steps[0].note.as_deref(), Some("family left for Bamako"));
    }

    #[test]
    fn steps_out_of_order_and_unknown_reasons_are_refused() {
        let (mut doc, _) = case();
        let ctx = ChangeContext::now("fatima");
        assert!(
            doc.decide_closure(true, None, &ctx).is_err(),
            "nothing proposed"
        );
        assert!(doc.reopen(None, &ctx).is_err(), "not closed");
        assert!(doc.propose_closure("bored", None, &ctx).is_err());
        doc.propose_closure("age_limit", None, &ctx).unwrap();
        assert!(
            doc.propose_closure("age_limit", None, &ctx).is_err(),
            "already proposed"
        );
        doc.decide_closure(false, Some("a visit first"), &ctx)
            .unwrap();
        assert_eq!(doc.closure().unwrap().status, ClosureStatus::Returned);
        // Returned, it may be proposed again.
        doc.propose_closure("age_limit", None, &ctx).unwrap();
    }

    #[test]
    fn a_proposal_and_a_decision_made_at_once_are_a_conflict() {
        let (mut phone, forms) = case();
        phone
            .propose_closure("exited_stable", None, &ChangeContext::now("amina"))
            .unwrap();
        let mut other = CaseDoc::load(&phone.save(), ActorId::random()).unwrap();
        phone
            .decide_closure(true, None, &ChangeContext::now("fatima"))
            .unwrap();
        other
            .decide_closure(false, Some("one more visit"), &ChangeContext::now("moussa"))
            .unwrap();
        phone.apply_changes(&other.changes_since(&[])).unwrap();
        let c = phone.closure().unwrap();
        assert!(c.disputed);
        assert!(
            !c.is_closed(),
            "a disputed closure keeps the case in the lists"
        );
        let conflicts = phone.conflicts(&forms).unwrap();
        let conflict = conflicts
            .iter()
            .find(|c| c.path == "closure_status")
            .expect("the closure's status is in conflict");
        assert_eq!(conflict.values.len(), 2);
        phone
            .resolve_conflict(
                &forms,
                "closure_status",
                &Json::from("closed"),
                &ChangeContext::now("fatima"),
            )
            .unwrap();
        assert!(phone.closure().unwrap().is_closed());
        assert!(phone.conflicts(&forms).unwrap().is_empty());
    }
}
