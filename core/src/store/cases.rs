//! A case's records written by the agent: created, edited, referred, visited, noted, reassigned, its conflicts resolved.

use super::*;

impl Store {
    /// Runs one change on one case: load, change, save and project, all or nothing.
    pub(super) fn change_case<T>(
        &mut self,
        case_id: &str,
        op: impl FnOnce(&mut CaseDoc, &FormRegistry, &ChangeContext) -> Result<T>,
    ) -> Result<T> {
        let forms = self.forms()?;
        let mut doc = self.require_doc(case_id)?;
        if let Some(into) = doc.merged_into()? {
            return Err(Error::CaseMerged {
                case_id: case_id.to_string(),
                into,
            });
        }
        let ctx = self.context();
        let out = op(&mut doc, &forms, &ctx)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Store::save_doc(&tx, &forms, case_id, &mut doc, true)?;
        tx.commit()?;
        Ok(out)
    }

    /// Records a new child; returns the case id.
    pub fn create_case(&mut self, identification: &Record) -> Result<String> {
        let forms = self.forms()?;
        let case_id = crate::clock::new_id();
        let form = forms.latest(IDENTIFICATION)?;
        let mut doc = CaseDoc::create(
            &case_id,
            self.actor()?,
            form,
            identification,
            &self.context(),
        )?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Store::save_doc(&tx, &forms, &case_id, &mut doc, true)?;
        tx.commit()?;
        Ok(case_id)
    }

    /// Edits identification fields (`null` clears one); returns the fields that changed.
    pub fn edit_case(&mut self, case_id: &str, patch: &Record) -> Result<Vec<String>> {
        self.change_case(case_id, |doc, forms, ctx| {
            doc.edit_identification(forms, patch, ctx)
        })
    }

    /// The identification form version a case follows: what its edits are read and checked
    /// with.
    pub fn case_form(&self, case_id: &str) -> Result<FormDefinition> {
        let doc = self.require_doc(case_id)?;
        let forms = self.forms()?;
        Ok(forms
            .get(IDENTIFICATION, doc.identification_form_version()?)?
            .clone())
    }

    /// Moves a case's identification to the newest active form version, as the user fills
    /// that version's new questions (`patch`); the record is checked against the new version.
    /// Until then a record stays on the version it was written with, whatever is published.
    pub fn move_case_form(&mut self, case_id: &str, patch: &Record) -> Result<Vec<String>> {
        self.change_case(case_id, |doc, forms, ctx| {
            doc.move_identification(forms, patch, ctx)
        })
    }

    pub fn refer(&mut self, case_id: &str, referral: &Record) -> Result<String> {
        self.change_case(case_id, |doc, forms, ctx| {
            doc.add_referral(forms, referral, ctx)
        })
    }

    /// Moves a referral; for `transfer`, returns the id of the next referral in the chain.
    pub fn transition_referral(
        &mut self,
        referral_id: &str,
        transition: Transition,
        note: Option<&str>,
        next_provider: Option<&str>,
    ) -> Result<Option<String>> {
        let (referral_id, case_id) = self.resolve_referral(referral_id)?;
        self.change_case(&case_id, |doc, forms, ctx| {
            doc.transition_referral(forms, &referral_id, transition, note, next_provider, ctx)
        })
    }

    pub fn add_followup(&mut self, case_id: &str, visit: &Record) -> Result<String> {
        self.change_case(case_id, |doc, forms, ctx| {
            doc.add_followup(forms, visit, ctx)
        })
    }

    pub fn add_audit_note(&mut self, case_id: &str, text: &str) -> Result<String> {
        self.change_case(case_id, |doc, _, ctx| doc.add_audit_note(text, ctx))
    }

    /// Gives a case to another agent of the team: a supervisor's reassignment, made offline if
    /// need be. The server moves the case when this reaches it (the agent's phones receive it,
    /// the former owner's hand over what they recorded, then remove it); two made at once are a
    /// conflict (`assigned_to`) for a supervisor to settle. Only a supervisor's or admin's
    /// device may; the server checks the agent.
    pub fn reassign_case(&mut self, case_id: &str, agent: &str) -> Result<bool> {
        self.require_reassigner()?;
        self.change_case(case_id, |doc, _, ctx| doc.assign_to(agent, ctx))
    }

    /// Only a supervisor's or admin's device writes `assigned_to`: anyone else's change would be
    /// refused by the server, and the case's later edits stuck behind it on this phone.
    pub(super) fn require_reassigner(&self) -> Result<()> {
        if !matches!(
            self.role()?,
            crate::policy::Role::Supervisor | crate::policy::Role::Admin
        ) {
            return Err(Error::Forbidden(
                "supervisors and admins reassign cases".into(),
            ));
        }
        Ok(())
    }

    /// Settles a conflict (a path `case(..).conflicts` lists): `input` is typed as the form
    /// takes it for an identification field (a choice id, `oui`/`true`, a date), or is one of
    /// a disputed referral's statuses. The other devices see it settled at their next sync.
    pub fn resolve_conflict(&mut self, case_id: &str, path: &str, input: &str) -> Result<()> {
        if path == "assigned_to" {
            self.require_reassigner()?;
        }
        let value = match path.strip_prefix("identification.") {
            Some(field) => {
                let doc = self.require_doc(case_id)?;
                let forms = self.forms()?;
                let form = forms.get(IDENTIFICATION, doc.identification_form_version()?)?;
                form.parse_input(field, input)?
            }
            None => Json::String(input.trim().to_string()),
        };
        self.change_case(case_id, |doc, forms, ctx| {
            doc.resolve_conflict(forms, path, &value, ctx)
        })
    }
}
