//! Referrals and their transitions, follow-up visits, an officer's audit notes.

use super::*;

impl CaseDoc {
    pub fn add_referral(
        &mut self,
        forms: &FormRegistry,
        record: &Record,
        ctx: &ChangeContext,
    ) -> Result<String> {
        let form = forms.latest(REFERRAL)?;
        form.validate(record)?;
        let id = new_id();
        self.put_referral(&id, form, record, ctx, None)?;
        self.commit(ctx, "referral.create");
        Ok(id)
    }

    pub(super) fn put_referral(
        &mut self,
        id: &str,
        form: &FormDefinition,
        record: &Record,
        ctx: &ChangeContext,
        previous: Option<&str>,
    ) -> Result<ObjId> {
        let referrals = self.map(&ROOT, K_REFERRALS)?;
        let obj = self.doc.put_object(&referrals, id, ObjType::Map)?;
        self.doc
            .put(&obj, K_FORM_VERSION, i64::from(form.version))?;
        self.doc
            .put(&obj, K_STATUS, ReferralStatus::Draft.as_str())?;
        self.doc.put(&obj, K_CREATED_AT, ctx.time.to_rfc3339())?;
        self.doc.put(&obj, K_CREATED_BY, ctx.user.as_str())?;
        if let Some(previous) = previous {
            self.doc.put(&obj, K_PREVIOUS, previous)?;
        }
        self.doc.put_object(&obj, K_TRANSITIONS, ObjType::Map)?;
        self.write_fields(&obj, form, &Record::new(), record)?;
        Ok(obj)
    }

    pub(super) fn record_transition(
        &mut self,
        referral: &ObjId,
        transition: Transition,
        from: ReferralStatus,
        to: ReferralStatus,
        note: Option<&str>,
        ctx: &ChangeContext,
    ) -> Result<()> {
        self.doc.put(referral, K_STATUS, to.as_str())?;
        let log = self.map(referral, K_TRANSITIONS)?;
        let entry = self
            .doc
            .put_object(&log, time_key(ctx.time), ObjType::Map)?;
        self.doc.put(&entry, "transition", transition.as_str())?;
        self.doc.put(&entry, "from", from.as_str())?;
        self.doc.put(&entry, "to", to.as_str())?;
        self.doc.put(&entry, "actor", ctx.user.as_str())?;
        self.doc.put(&entry, "at", ctx.time.to_rfc3339())?;
        if let Some(note) = note {
            self.doc.put(&entry, "note", note)?;
        }
        Ok(())
    }

    /// Moves a referral through its status machine. `transfer` needs the next provider and
    /// returns the id of the new referral that continues the chain.
    pub fn transition_referral(
        &mut self,
        forms: &FormRegistry,
        referral_id: &str,
        transition: Transition,
        note: Option<&str>,
        next_provider: Option<&str>,
        ctx: &ChangeContext,
    ) -> Result<Option<String>> {
        let referrals = self.map(&ROOT, K_REFERRALS)?;
        let obj = self
            .map(&referrals, referral_id)
            .map_err(|_| Error::NotFound {
                kind: "referral",
                id: referral_id.to_string(),
            })?;
        let from = ReferralStatus::parse(&self.string(&obj, K_STATUS)?.unwrap_or_default())
            .map_err(|_| Error::Document("bad referral status".into()))?;
        let to = from.apply(transition)?;
        let mut next_id = None;
        if transition == Transition::Transfer {
            let provider = next_provider
                .filter(|p| !p.trim().is_empty())
                .ok_or_else(|| {
                    Error::Validation(vec![crate::error::FieldError::new("provider", "required")])
                })?;
            let form = forms.get(REFERRAL, self.version(&obj, K_FORM_VERSION)?)?;
            let mut record = self.read_fields(&obj, form)?;
            record.insert("provider".into(), Json::String(provider.to_string()));
            form.validate(&record)?;
            let id = new_id();
            let next = self.put_referral(&id, form, &record, ctx, Some(referral_id))?;
            // The next link starts as sent: transferring is the act of referring onward.
            self.record_transition(
                &next,
                Transition::Send,
                ReferralStatus::Draft,
                ReferralStatus::Sent,
                note,
                ctx,
            )?;
            self.doc.put(&obj, K_NEXT, id.as_str())?;
            next_id = Some(id);
        }
        self.record_transition(&obj, transition, from, to, note, ctx)?;
        self.commit(ctx, &format!("referral.{}", transition.as_str()));
        Ok(next_id)
    }

    pub fn referrals(&self, forms: &FormRegistry) -> Result<Vec<Referral>> {
        let referrals = self.map(&ROOT, K_REFERRALS)?;
        let mut out = Vec::new();
        for item in self.doc.map_range(&referrals, ..) {
            let id = item.key.to_string();
            let obj = item.id();
            let form = forms.get(REFERRAL, self.version(&obj, K_FORM_VERSION)?)?;
            let log = self.map(&obj, K_TRANSITIONS)?;
            let mut transitions = Vec::new();
            for entry in self.doc.map_range(&log, ..) {
                let e = entry.id();
                let get = |k: &str| self.string(&e, k).map(Option::unwrap_or_default);
                transitions.push(TransitionRecord {
                    transition: get("transition")?,
                    from: get("from")?,
                    to: get("to")?,
                    actor: get("actor")?,
                    at: get("at")?,
                    note: self.string(&e, "note")?,
                });
            }
            out.push(Referral {
                status: self.string(&obj, K_STATUS)?.unwrap_or_default(),
                form_version: self.version(&obj, K_FORM_VERSION)?,
                fields: self.read_fields(&obj, form)?,
                created_at: self.string(&obj, K_CREATED_AT)?.unwrap_or_default(),
                created_by: self.string(&obj, K_CREATED_BY)?.unwrap_or_default(),
                previous_referral: self.string(&obj, K_PREVIOUS)?,
                next_referral: self.string(&obj, K_NEXT)?,
                transitions,
                id,
            });
        }
        out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(out)
    }

    pub fn add_followup(
        &mut self,
        forms: &FormRegistry,
        record: &Record,
        ctx: &ChangeContext,
    ) -> Result<String> {
        let form = forms.latest(FOLLOWUP)?;
        form.validate(record)?;
        let followups = self.map(&ROOT, K_FOLLOWUPS)?;
        let id = new_id();
        let obj = self.doc.put_object(&followups, id.as_str(), ObjType::Map)?;
        self.doc
            .put(&obj, K_FORM_VERSION, i64::from(form.version))?;
        self.doc.put(&obj, K_CREATED_AT, ctx.time.to_rfc3339())?;
        self.doc.put(&obj, K_CREATED_BY, ctx.user.as_str())?;
        self.write_fields(&obj, form, &Record::new(), record)?;
        self.commit(ctx, "followup.create");
        Ok(id)
    }

    /// Follow-up visits, oldest visit first.
    pub fn followups(&self, forms: &FormRegistry) -> Result<Vec<FollowUp>> {
        let followups = self.map(&ROOT, K_FOLLOWUPS)?;
        let mut out = Vec::new();
        for item in self.doc.map_range(&followups, ..) {
            let obj = item.id();
            let version = self.version(&obj, K_FORM_VERSION)?;
            let form = forms.get(FOLLOWUP, version)?;
            out.push(FollowUp {
                id: item.key.to_string(),
                form_version: version,
                fields: self.read_fields(&obj, form)?,
                created_at: self.string(&obj, K_CREATED_AT)?.unwrap_or_default(),
                created_by: self.string(&obj, K_CREATED_BY)?.unwrap_or_default(),
            });
        }
        let visit_date = |f: &FollowUp| {
            f.fields
                .get("visit_date")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string()
        };
        out.sort_by(|a, b| {
            (visit_date(a), &a.created_at, &a.id).cmp(&(visit_date(b), &b.created_at, &b.id))
        });
        Ok(out)
    }

    /// A project officer's note on a case: the only thing an officer writes.
    pub fn add_audit_note(&mut self, text: &str, ctx: &ChangeContext) -> Result<String> {
        let notes = self.map(&ROOT, K_AUDIT_NOTES)?;
        let id = time_key(ctx.time);
        let obj = self.doc.put_object(&notes, id.as_str(), ObjType::Map)?;
        self.doc.put(&obj, "text", text)?;
        self.doc.put(&obj, "author", ctx.user.as_str())?;
        self.doc.put(&obj, "at", ctx.time.to_rfc3339())?;
        self.commit(ctx, "audit.note");
        Ok(id)
    }

    pub fn audit_notes(&self) -> Result<Vec<AuditNote>> {
        let notes = self.map(&ROOT, K_AUDIT_NOTES)?;
        let mut out = Vec::new();
        for item in self.doc.map_range(&notes, ..) {
            let obj = item.id();
            out.push(AuditNote {
                id: item.key.to_string(),
                text: self.string(&obj, "text")?.unwrap_or_default(),
                author: self.string(&obj, "author")?.unwrap_or_default(),
                at: self.string(&obj, "at")?.unwrap_or_default(),
            });
        }
        Ok(out)
    }
}
