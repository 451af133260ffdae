//! Who a case is assigned to, and cases merged into one another.

use super::*;

impl CaseDoc {
    /// The agent the case was last given to by a supervisor (the value Automerge shows when two
    /// reassignments were made at once: `conflicts` lists both until one is kept). `None` for a
    /// case never reassigned through its document.
    pub fn assigned_to(&self) -> Result<Option<String>> {
        self.string(&ROOT, K_ASSIGNED_TO)
    }

    /// Gives the case to `agent`: a supervisor's reassignment, written offline if need be. The
    /// server checks the agent is of the case's team and moves ownership when it receives this.
    /// Nothing is written if the case is already given to `agent` without dispute.
    pub fn assign_to(&mut self, agent: &str, ctx: &ChangeContext) -> Result<bool> {
        if !valid_user_id(agent) {
            return Err(Error::InvalidInput("agent".into()));
        }
        let current = self.doc.get_all(ROOT, K_ASSIGNED_TO)?;
        let settled = current.len() == 1
            && matches!(&current[0].0, Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Str(a) if a.as_str() == agent));
        if settled {
            return Ok(false);
        }
        self.doc.put(ROOT, K_ASSIGNED_TO, agent)?;
        self.commit(ctx, "case.reassign");
        Ok(true)
    }

    /// The case this one was merged into, if a supervisor merged it away (the same child
    /// registered twice). A merged-away case is read-only: `Store` refuses edits and the
    /// server refuses changes made after the merge was seen.
    pub fn merged_into(&self) -> Result<Option<String>> {
        self.string(&ROOT, K_MERGED_INTO)
    }

    /// The cases merged into this one, oldest merge first.
    pub fn merged_cases(&self) -> Result<Vec<String>> {
        let Some((Value::Object(ObjType::Map), merged)) = self.doc.get(ROOT, K_MERGED_CASES)?
        else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for key in self.doc.keys(&merged) {
            let at = self.string(&merged, &key)?.unwrap_or_default();
            out.push((at, key));
        }
        out.sort();
        Ok(out.into_iter().map(|(_, id)| id).collect())
    }

    /// Marks this case as merged into `survivor` (written by the server for a supervisor in the
    /// console; the survivor gets `link_merged_case` in the same step).
    pub fn merge_into(&mut self, survivor: &str, ctx: &ChangeContext) -> Result<()> {
        let case_id = self.case_id()?;
        if survivor == case_id || !is_case_id(survivor) {
            return Err(Error::InvalidInput("survivor case".into()));
        }
        if let Some(into) = self.merged_into()? {
            return Err(Error::CaseMerged { case_id, into });
        }
        self.doc.put(ROOT, K_MERGED_INTO, survivor)?;
        self.commit(ctx, "case.merge_away");
        Ok(())
    }

    /// Links a merged-away case to this one, the survivor: its referrals and visits are shown
    /// here from then on.
    pub fn link_merged_case(&mut self, merged: &str, ctx: &ChangeContext) -> Result<()> {
        let case_id = self.case_id()?;
        if let Some(into) = self.merged_into()? {
            return Err(Error::CaseMerged { case_id, into });
        }
        if merged == case_id || !is_case_id(merged) {
            return Err(Error::InvalidInput("merged case".into()));
        }
        let map = match self.doc.get(ROOT, K_MERGED_CASES)? {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => self.doc.put_object(ROOT, K_MERGED_CASES, ObjType::Map)?,
        };
        self.doc.put(&map, merged, ctx.time.to_rfc3339())?;
        self.commit(ctx, "case.merge");
        Ok(())
    }

    /// Separates a merged-away case from its survivor again (a supervisor's undo in the
    /// console, within `MERGE_UNDO_DAYS`; the survivor gets `unlink_merged_case` in the same
    /// step). Nothing recorded in either case is touched: the case is its own again and may be
    /// edited. Returns the survivor it was merged into.
    pub fn unmerge(&mut self, ctx: &ChangeContext) -> Result<String> {
        let case_id = self.case_id()?;
        let Some(into) = self.merged_into()? else {
            return Err(Error::InvalidInput(format!("case {case_id} is not merged")));
        };
        self.doc.delete(ROOT, K_MERGED_INTO)?;
        self.commit(ctx, "case.unmerge_away");
        Ok(into)
    }

    /// Removes a merged-away case's link from this survivor (the undo of `link_merged_case`).
    /// `false` if it was not linked.
    pub fn unlink_merged_case(&mut self, merged: &str, ctx: &ChangeContext) -> Result<bool> {
        let Some((Value::Object(ObjType::Map), map)) = self.doc.get(ROOT, K_MERGED_CASES)? else {
            return Ok(false);
        };
        if self.doc.get(&map, merged)?.is_none() {
            return Ok(false);
        }
        self.doc.delete(&map, merged)?;
        self.commit(ctx, "case.unmerge");
        Ok(true)
    }

    /// On a merged-away case: the change that put `merged_into` (the merge), and its time (the
    /// server's clock: only the console writes it).
    pub fn merge_change(&mut self) -> Option<(ChangeHash, DateTime<Utc>)> {
        merge_change(&mut self.doc)
    }

    /// On a merged-away case: the changes recorded without knowledge of the merge (on a phone
    /// still offline when it happened): neither before the merge nor after it. They are kept,
    /// and shown on the survivor for a supervisor to review. Empty for a case not merged away.
    pub fn edits_after_merge(&mut self) -> Result<Vec<HistoryEntry>> {
        let Some((merge, _)) = self.merge_change() else {
            return Ok(Vec::new());
        };
        // Changes the merge does not precede, in causal order; those that follow it are its
        // descendants (the console's own, later).
        let mut after_merge = std::collections::HashSet::from([merge]);
        let mut concurrent = std::collections::HashSet::new();
        for change in self.doc.get_changes(&[merge]) {
            if change.hash() == merge {
                continue;
            }
            if change.deps().iter().any(|d| after_merge.contains(d)) {
                after_merge.insert(change.hash());
            } else {
                concurrent.insert(change.hash().to_string());
            }
        }
        Ok(self
            .history()?
            .into_iter()
            .filter(|h| concurrent.contains(&h.hash))
            .collect())
    }
}

/// The change that put a merged-away case's `merged_into`, and its time.
pub(crate) fn merge_change(doc: &mut AutoCommit) -> Option<(ChangeHash, DateTime<Utc>)> {
    let (_, op) = doc.get(ROOT, K_MERGED_INTO).ok()??;
    let changes: Vec<Change> = doc.get_changes(&[]);
    let change = change_of(&changes, &op)?;
    Some((
        change.hash(),
        Utc.timestamp_opt(change.timestamp(), 0).single()?,
    ))
}

/// The agent a document gives its case to, if exactly one (two reassignments made at once
/// wait for a supervisor to keep one).
pub fn single_assignee(doc: &AutoCommit) -> Option<String> {
    let mut all = doc.get_all(ROOT, K_ASSIGNED_TO).ok()?;
    match (all.pop(), all.is_empty()) {
        (Some((Value::Scalar(s), _)), true) => match s.as_ref() {
            ScalarValue::Str(a) => Some(a.to_string()),
            _ => None,
        },
        _ => None,
    }
}
