//! A case's history: who changed what, when, change by change.

use super::*;

impl CaseDoc {
    /// Every change in causal order: when, who, what, and each field's old → new value.
    pub fn history(&mut self) -> Result<Vec<HistoryEntry>> {
        let changes: Vec<Change> = self.doc.get_changes(&[]);
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            let deps: Vec<ChangeHash> = change.deps().to_vec();
            let hash = change.hash();
            let meta: Option<CommitMeta> =
                change.message().and_then(|m| serde_json::from_str(m).ok());
            let patches = self.doc.diff(&deps, &[hash]);
            let mut fields = Vec::new();
            let mut texts_seen: Vec<ObjId> = Vec::new();
            for patch in patches {
                let mut path: Vec<String> = patch.path.iter().map(|(_, p)| prop_text(p)).collect();
                let (key, new) = match patch.action {
                    PatchAction::PutMap { key, value, .. }
                        if !matches!(value.0, Value::Object(_)) =>
                    {
                        (key, Some(value_to_plain_json(&value.0)))
                    }
                    PatchAction::DeleteMap { key } => (key, None),
                    PatchAction::SpliceText { .. } | PatchAction::DeleteSeq { .. } => {
                        if texts_seen.contains(&patch.obj) {
                            continue;
                        }
                        texts_seen.push(patch.obj.clone());
                        let old = if deps.is_empty() {
                            None
                        } else {
                            self.doc
                                .text_at(&patch.obj, &deps)
                                .ok()
                                .filter(|t| !t.is_empty())
                        };
                        let new = self.doc.text_at(&patch.obj, &[hash]).ok();
                        fields.push(FieldChange {
                            path: path.join("."),
                            old: old.map(Json::String),
                            new: new.map(Json::String),
                        });
                        continue;
                    }
                    _ => continue,
                };
                let old = self
                    .doc
                    .get_at(&patch.obj, key.as_str(), &deps)?
                    .map(|(v, _)| value_to_plain_json(&v));
                path.push(key);
                fields.push(FieldChange {
                    path: path.join("."),
                    old,
                    new,
                });
            }
            out.push(HistoryEntry {
                hash: hash.to_string(),
                at: Utc
                    .timestamp_opt(change.timestamp(), 0)
                    .single()
                    .unwrap_or_default(),
                user: meta.as_ref().map(|m| m.user.clone()),
                action: meta.map(|m| m.action),
                changes: fields,
                verified: None,
            });
        }
        Ok(out)
    }

    /// The newest change time: when the case was last touched.
    pub fn last_change_time(&mut self) -> Option<DateTime<Utc>> {
        let heads = self.doc.get_heads();
        heads
            .iter()
            .filter_map(|h| self.doc.get_change_meta_by_hash(h).map(|m| m.timestamp))
            .max()
            .and_then(|t| Utc.timestamp_opt(t, 0).single())
    }
}
