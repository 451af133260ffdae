//! What the screens read: a case, its history, lists and search from the projection, ids resolved from a prefix.

use super::*;

impl Store {
    pub fn case(&self, case_id: &str) -> Result<CaseDetail> {
        let forms = self.forms()?;
        // One snapshot for the document and its summary row, though a sync may commit between
        // the two reads (the app reads on its own connection while the sync writes).
        let _snapshot = self.conn.unchecked_transaction()?;
        let mut doc = self.require_doc(case_id)?;
        let summary = self.conn.query_row(
            "SELECT * FROM cases WHERE case_id = ?1",
            [case_id],
            row_to_case,
        )?;
        Ok(CaseDetail {
            summary,
            identification_form: doc.identification_form_version()?,
            identification: doc.identification(&forms)?,
            former_fields: doc.former_identification_fields(&forms)?,
            referrals: doc.referrals(&forms)?,
            followups: doc.followups(&forms)?,
            conflicts: doc.conflicts_with_sources(&forms)?,
            audit_notes: doc.audit_notes()?,
            merged_into: doc.merged_into()?,
            merged: self.merged_cases_of(&doc)?,
            closure: doc.closure()?,
        })
    }

    pub(super) fn merged_cases_of(&self, survivor: &CaseDoc) -> Result<Vec<MergedCase>> {
        let forms = self.forms()?;
        let mut out = Vec::new();
        for case_id in survivor.merged_cases()? {
            let merged = match self.load_doc(&case_id)? {
                Some(mut doc) => MergedCase {
                    referrals: doc.referrals(&forms)?,
                    followups: doc.followups(&forms)?,
                    edits_after_merge: doc.edits_after_merge()?,
                    held: true,
                    case_id,
                },
                None => MergedCase {
                    case_id,
                    held: false,
                    referrals: Vec::new(),
                    followups: Vec::new(),
                    edits_after_merge: Vec::new(),
                },
            };
            out.push(merged);
        }
        Ok(out)
    }

    /// A case's identification as the case screen shows it, in `lang`: each value by its
    /// field's label and in words, with the form version the record follows; then the fields
    /// only an earlier version asked (`case_doc::record_in_words`).
    pub fn identification_in_words(
        &self,
        case_id: &str,
        lang: crate::forms::Lang,
    ) -> Result<Vec<crate::case_doc::ShownValue>> {
        let forms = self.forms()?;
        let doc = self.require_doc(case_id)?;
        let form = forms.get(
            crate::forms::IDENTIFICATION,
            doc.identification_form_version()?,
        )?;
        Ok(crate::case_doc::record_in_words(
            &forms,
            form,
            &doc.identification(&forms)?,
            &doc.former_identification_fields(&forms)?,
            lang,
        ))
    }

    /// A case's history told for a screen in `lang`: each change's time in `zone` to the
    /// minute, who made it (the author the server verified, else the one the change names),
    /// what happened and the values it wrote by their labels (`case_doc::story`).
    pub fn told_history(
        &self,
        case_id: &str,
        lang: crate::forms::Lang,
        zone: crate::words::Zone,
    ) -> Result<Vec<crate::case_doc::ToldEntry>> {
        let history = self.history(case_id)?;
        let forms = self.forms()?;
        let names = self.case_names(&crate::case_doc::cases_named(&history));
        let told = crate::case_doc::tell_history(&history, &forms, lang, &names);
        Ok(history
            .into_iter()
            .zip(told)
            .map(|(entry, told)| crate::case_doc::ToldEntry {
                at: zone.date_time(lang, entry.at),
                who: entry.verified.map(|v| v.user).or(entry.user),
                headline: told.headline,
                details: told.details,
            })
            .collect())
    }

    /// The child of each of these cases this phone holds, by case id (for a history naming
    /// another record), from the list's projection rows (no document is loaded); one it does
    /// not hold is left out, to be told by its id.
    pub fn case_names(&self, case_ids: &[String]) -> crate::case_doc::CaseNames {
        let Ok(mut stmt) = self
            .conn
            .prepare_cached("SELECT first_name, last_name FROM cases WHERE case_id = ?1")
        else {
            return Default::default();
        };
        case_ids
            .iter()
            .filter_map(|id| {
                let (first, last): (String, String) =
                    stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).ok()?;
                let name = format!("{first} {last}").trim().to_string();
                (!name.is_empty()).then(|| (id.clone(), name))
            })
            .collect()
    }

    pub fn history(&self, case_id: &str) -> Result<Vec<HistoryEntry>> {
        let mut doc = self.require_doc(case_id)?;
        let mut history = doc.history()?;
        for entry in &mut history {
            entry.verified = self.origin_of(&mut doc, &entry.hash)?;
        }
        Ok(history)
    }

    /// Who the server verified wrote a change (`change_origins`), or this phone itself for a
    /// change under its own actor; `None` for one nobody vouched for.
    fn origin_of(
        &self,
        doc: &mut CaseDoc,
        hash: &str,
    ) -> Result<Option<crate::case_doc::VerifiedOrigin>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, device_id, received_at FROM change_origins WHERE hash = ?1",
        )?;
        let origin = stmt
            .query_row([hash], |r| {
                Ok(crate::case_doc::VerifiedOrigin {
                    user: r.get(0)?,
                    device: r.get(1)?,
                    received_at: chrono::DateTime::from_timestamp(r.get(2)?, 0),
                })
            })
            .optional()?;
        if origin.is_some() {
            return Ok(origin);
        }
        let own_actor = self.actor()?;
        let parsed: Option<automerge::ChangeHash> = hash.parse().ok();
        let own = parsed
            .and_then(|h| doc.automerge().get_change_by_hash(&h))
            .is_some_and(|c| *c.actor_id() == own_actor);
        Ok(own.then(|| crate::case_doc::VerifiedOrigin {
            user: self.identity.user.clone(),
            device: self
                .meta("device_id")
                .ok()
                .flatten()
                .unwrap_or_else(|| self.identity.device.clone()),
            received_at: None,
        }))
    }

    /// A case's conflicts as a picker shows them, in `lang`: the field by its label, each
    /// value in words with what settles on it (`resolve_conflict`'s input), who wrote it (the
    /// author the server verified, else the one the change names), from which phone, and when
    /// (in `zone`).
    pub fn conflict_choices(
        &self,
        case_id: &str,
        lang: crate::forms::Lang,
        zone: crate::words::Zone,
    ) -> Result<Vec<ConflictChoice>> {
        let forms = self.forms()?;
        let mut doc = self.require_doc(case_id)?;
        let form = forms.get(
            crate::forms::IDENTIFICATION,
            doc.identification_form_version()?,
        )?;
        let referrals = doc.referrals(&forms)?;
        let mut choices = Vec::new();
        for conflict in doc.conflicts_with_sources(&forms)? {
            let field = conflict.path.strip_prefix("identification.");
            let parts: Vec<&str> = conflict.path.split('.').collect();
            let label = match (field, &parts[..]) {
                (Some(f), _) => form
                    .field(f)
                    .map_or_else(|| f.to_string(), |d| d.label.get(lang).to_string()),
                (None, ["referrals", id, "status"]) => {
                    let provider = referrals
                        .iter()
                        .find(|r| r.id == *id)
                        .and_then(|r| r.fields.get("provider"))
                        .map(crate::case_doc::plain)
                        .unwrap_or_default();
                    format!(
                        "{} · {provider}",
                        crate::words::w(lang, crate::words::W::Status)
                    )
                }
                (None, ["assigned_to"]) => {
                    crate::words::w(lang, crate::words::W::Agent).to_string()
                }
                (None, [key]) => crate::outcome::closure_conflict_words(lang, key, "")
                    .map_or_else(|| conflict.path.clone(), |(label, _)| label),
                _ => conflict.path.clone(),
            };
            let mut options = Vec::with_capacity(conflict.values.len());
            for (i, value) in conflict.values.iter().enumerate() {
                let source = conflict.sources.get(i);
                let origin = match source {
                    Some(s) => self.origin_of(&mut doc, &s.change)?,
                    None => None,
                };
                let words = match field {
                    Some(f) => crate::case_doc::value_text(Some(form), f, value, lang),
                    None if conflict.path.ends_with(".status") => {
                        crate::words::status_label(lang, &crate::case_doc::plain(value))
                    }
                    None => {
                        let plain = crate::case_doc::plain(value);
                        crate::outcome::closure_conflict_words(lang, &conflict.path, &plain)
                            .map_or(plain, |(_, words)| words)
                    }
                };
                options.push(ConflictOption {
                    input: crate::forms::value_as_text(value),
                    value: words,
                    verified: origin.is_some(),
                    author: origin
                        .as_ref()
                        .map(|o| o.user.clone())
                        .or_else(|| source.and_then(|s| s.user.clone())),
                    phone: origin.map(|o| o.device),
                    at: source
                        .map(|s| zone.date_time(lang, s.at))
                        .unwrap_or_default(),
                });
            }
            choices.push(ConflictChoice {
                path: conflict.path,
                label,
                options,
            });
        }
        Ok(choices)
    }

    /// Lists cases from the projection only: no document is loaded.
    pub fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>> {
        // The cases held, and the rows a first sync sent ahead of cases not held yet.
        let mut sql = format!(
            "SELECT * FROM (SELECT {LISTED}, 0 AS arriving, '' AS referral_statuses, stage,
                classification, outcome_provisional, closure, age_limit_on FROM cases
             UNION ALL SELECT {LISTED}, 1, referral_statuses, NULL, NULL, 0, NULL, NULL
             FROM arriving_cases a
             WHERE NOT EXISTS (SELECT 1 FROM case_docs d WHERE d.case_id = a.case_id)) cases
             WHERE 1 = 1"
        );
        let mut args: Vec<String> = Vec::new();
        if let Some(q) = filter
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
        {
            // Typed as stored (a part of the name), or every word's key (names::query_terms:
            // a hyphen is a space, Koulibaly is Coulibaly, "moh" is the start of Mohamed).
            args.push(like_pattern(&fold(q)));
            let mut any = format!("name_folded LIKE ?{} ESCAPE '\\'", args.len());
            let terms = crate::names::query_terms(q);
            if !terms.is_empty() {
                let mut all = Vec::with_capacity(terms.len());
                for term in terms {
                    args.push(format!("% {} %", like_escaped(&term)));
                    all.push(format!("name_terms LIKE ?{} ESCAPE '\\'", args.len()));
                }
                any = format!("{any} OR ({})", all.join(" AND "));
            }
            sql.push_str(&format!(" AND ({any})"));
        }
        if let Some(clause) = filter
            .village
            .as_deref()
            .and_then(|v| village_clause(&mut args, v))
        {
            sql.push_str(&format!(" AND {clause}"));
        }
        if let Some(risk) = &filter.risk_level {
            args.push(risk.clone());
            sql.push_str(&format!(" AND risk_level = ?{}", args.len()));
        }
        if let Some(status) = &filter.referral_status {
            args.push(status.clone());
            sql.push_str(&format!(
                " AND (EXISTS (SELECT 1 FROM referrals r WHERE r.case_id = cases.case_id AND r.status = ?{n})
                   OR (arriving = 1 AND referral_statuses LIKE '% ' || ?{n} || ' %'))",
                n = args.len()
            ));
        }
        if let Some(day) = filter.overdue_on {
            args.push(day.format("%Y-%m-%d").to_string());
            sql.push_str(&format!(" AND next_followup_due < ?{}", args.len()));
        }
        let limit = filter.limit.unwrap_or(LIST_ROWS_MAX).min(LIST_ROWS_MAX);
        sql.push_str(&format!(" ORDER BY updated_at DESC, case_id LIMIT {limit}"));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row_to_case)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn referrals_of(&self, case_id: &str) -> Result<Vec<ReferralRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT referral_id, case_id, service_type, provider, urgency, status, created_at,
                created_by, updated_at, previous_referral, next_referral
             FROM referrals WHERE case_id = ?1 ORDER BY created_at, referral_id",
        )?;
        let rows = stmt.query_map([case_id], row_to_referral)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn case_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM cases", [], |r| r.get(0))?)
    }

    /// Finds a case by its id or a unique prefix of it (at least 4 characters), as typed by hand.
    pub fn resolve_case_id(&self, prefix: &str) -> Result<String> {
        self.resolve(
            "SELECT case_id FROM case_docs WHERE case_id LIKE ?1 ESCAPE '\\' LIMIT 2",
            prefix,
            "case",
        )
        .map(|ids| ids.0)
    }

    /// Finds a referral (by id or unique prefix) and the case it belongs to.
    pub fn resolve_referral(&self, prefix: &str) -> Result<(String, String)> {
        self.resolve(
            "SELECT referral_id, case_id FROM referrals WHERE referral_id LIKE ?1 ESCAPE '\\' LIMIT 2",
            prefix,
            "referral",
        )
    }

    pub(super) fn resolve(
        &self,
        sql: &str,
        prefix: &str,
        kind: &'static str,
    ) -> Result<(String, String)> {
        let not_found = || Error::NotFound {
            kind,
            id: prefix.to_string(),
        };
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let pattern = format!("{}%", prefix.to_ascii_lowercase());
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows: Vec<(String, String)> = stmt
            .query_map([pattern], |r| {
                let first: String = r.get(0)?;
                let second: String = r.get(r.as_ref().column_count() - 1)?;
                Ok((first, second))
            })?
            .collect::<rusqlite::Result<_>>()?;
        match rows.len() {
            0 => Err(not_found()),
            1 => Ok(rows.into_iter().next().ok_or_else(not_found)?),
            _ => Err(Error::InvalidInput(format!(
                "{kind} id prefix {prefix} is ambiguous"
            ))),
        }
    }
}

/// The columns a list row reads, in the order both the held and the arriving rows give them.
const LISTED: &str = "case_id, first_name, last_name, name_folded, sex, province, commune, village,
    village_folded, work_sector, risk_level, created_at, created_by, updated_at,
    next_followup_due, referral_count, followup_count, conflict_count, name_terms, village_key";

pub(super) fn row_to_case(row: &rusqlite::Row<'_>) -> rusqlite::Result<CaseRow> {
    Ok(CaseRow {
        case_id: row.get("case_id")?,
        first_name: row.get("first_name")?,
        last_name: row.get("last_name")?,
        sex: row.get("sex")?,
        province: row.get("province")?,
        commune: row.get("commune")?,
        village: row.get("village")?,
        work_sector: row.get("work_sector")?,
        risk_level: row.get("risk_level")?,
        created_at: row.get("created_at")?,
        created_by: row.get("created_by")?,
        updated_at: row.get("updated_at")?,
        next_followup_due: row.get("next_followup_due")?,
        referral_count: row.get("referral_count")?,
        followup_count: row.get("followup_count")?,
        conflict_count: row.get("conflict_count")?,
        // Only the list reads rows the server sent ahead.
        arriving: row.get::<_, bool>("arriving").unwrap_or(false),
        stage: row.get("stage")?,
        classification: row.get("classification")?,
        outcome_provisional: row.get("outcome_provisional")?,
        closure: row.get("closure")?,
        age_limit_on: row.get("age_limit_on")?,
    })
}

/// A referral row, its columns in `referrals_of`'s order.
pub(super) fn row_to_referral(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReferralRow> {
    Ok(ReferralRow {
        referral_id: r.get(0)?,
        case_id: r.get(1)?,
        service_type: r.get(2)?,
        provider: r.get(3)?,
        urgency: r.get(4)?,
        status: r.get(5)?,
        created_at: r.get(6)?,
        created_by: r.get(7)?,
        updated_at: r.get(8)?,
        previous_referral: r.get(9)?,
        next_referral: r.get(10)?,
    })
}

/// The condition a typed village puts on `cases`: its whole name, or its beginning once it is
/// long enough to mean something (`names::PREFIX_MIN`), by place key ("douar-ouled" is "Douar
/// Ouled Ali"'s). `None` for nothing typed.
pub(super) fn village_clause(args: &mut Vec<String>, typed: &str) -> Option<String> {
    let village = crate::names::place_key(typed);
    if village.is_empty() {
        return None;
    }
    if village.chars().count() >= crate::names::PREFIX_MIN {
        args.push(format!("{}%", like_escaped(&village)));
        Some(format!(
            "cases.village_key LIKE ?{} ESCAPE '\\'",
            args.len()
        ))
    } else {
        args.push(village);
        Some(format!("cases.village_key = ?{}", args.len()))
    }
}

pub(super) fn like_pattern(text: &str) -> String {
    format!("%{}%", like_escaped(text))
}

/// `text` with LIKE's wildcards and escape character taken literally (`ESCAPE '\'`).
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
