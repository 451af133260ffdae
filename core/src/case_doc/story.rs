//! A case's history told in the reader's words: each change as one line of what happened (a
//! child identified, a referral sent or refused with its note, a visit, a field changed), with
//! the labels of the form version the record uses, the referral's service and provider,
//! statuses, choices and booleans in the reader's language, dates as people write them. The
//! console, the `suivi history` command and the app tell it the same way; the raw paths stay in
//! `HistoryEntry` for whoever needs them.

use std::collections::HashMap;

use super::*;
use crate::forms::Lang;
use crate::words::{self, w, W};

/// One history entry, told: what happened, and each value it wrote, as "label: old → new".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Told {
    pub headline: String,
    pub details: Vec<String>,
}

/// A history entry told for a screen: when (in the reader's zone, to the minute), who, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToldEntry {
    pub at: String,
    pub who: Option<String>,
    pub headline: String,
    pub details: Vec<String>,
}

/// What the story remembers from earlier entries: the form version the identification uses,
/// what each referral is (its service and provider) and each visit's form version.
struct Remembered {
    service: String,
    provider: String,
    version: u32,
}

/// Tells a history entry by entry, in its order (a referral is named from the entry that
/// created it).
pub struct Storyteller<'a> {
    forms: &'a FormRegistry,
    lang: Lang,
    /// The child of each other case the history names (a merge's other record), by case id.
    names: &'a CaseNames,
    identification_version: u32,
    referrals: HashMap<String, Remembered>,
    followup_versions: HashMap<String, u32>,
}

/// Children's names by case id, for the other records a history names.
pub type CaseNames = HashMap<String, String>;

/// Every entry of a history, told; `names` gives the child of each other case it names (see
/// `cases_named`), and a case not in it is told by its id.
pub fn tell_history(
    history: &[HistoryEntry],
    forms: &FormRegistry,
    lang: Lang,
    names: &CaseNames,
) -> Vec<Told> {
    let mut teller = Storyteller::new(forms, lang, names);
    history.iter().map(|e| teller.tell(e)).collect()
}

/// The other cases a history names (the record a merge folded this one into, or separated it
/// from), for the caller to look their children up where the reader may read them.
pub fn cases_named(history: &[HistoryEntry]) -> Vec<String> {
    let mut ids: Vec<String> = history
        .iter()
        .flat_map(|e| &e.changes)
        .filter(|c| c.path == K_MERGED_INTO)
        .flat_map(|c| [&c.old, &c.new])
        .filter_map(|v| v.as_ref().and_then(Json::as_str).map(str::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

impl<'a> Storyteller<'a> {
    pub fn new(forms: &'a FormRegistry, lang: Lang, names: &'a CaseNames) -> Self {
        Storyteller {
            forms,
            lang,
            names,
            identification_version: 1,
            referrals: HashMap::new(),
            followup_versions: HashMap::new(),
        }
    }

    pub fn tell(&mut self, entry: &HistoryEntry) -> Told {
        let lang = self.lang;
        let new_of = |path: &str| {
            entry
                .changes
                .iter()
                .find(|c| c.path == path)
                .and_then(|c| c.new.as_ref())
        };
        // What this entry makes known first: the versions and the referrals it creates.
        if let Some(v) = new_of(K_IDENTIFICATION_FORM).and_then(Json::as_u64) {
            self.identification_version = v as u32;
        }
        for c in &entry.changes {
            let parts: Vec<&str> = c.path.split('.').collect();
            match parts[..] {
                [K_REFERRALS, id, K_FORM_VERSION] => {
                    let version = c.new.as_ref().and_then(Json::as_u64).unwrap_or(1) as u32;
                    let text = |field: &str| {
                        new_of(&format!("{K_REFERRALS}.{id}.{field}"))
                            .map(plain)
                            .unwrap_or_default()
                    };
                    self.referrals.insert(
                        id.to_string(),
                        Remembered {
                            service: text("service_type"),
                            provider: text("provider"),
                            version,
                        },
                    );
                }
                [K_FOLLOWUPS, id, K_FORM_VERSION] => {
                    let version = c.new.as_ref().and_then(Json::as_u64).unwrap_or(1) as u32;
                    self.followup_versions.insert(id.to_string(), version);
                }
                _ => {}
            }
        }
        let mut headlines: Vec<String> = Vec::new();
        let mut details: Vec<String> = Vec::new();
        let action = entry.action.as_deref().unwrap_or_default();
        for c in &entry.changes {
            let parts: Vec<&str> = c.path.split('.').collect();
            match parts[..] {
                [K_IDENTIFICATION, field] => {
                    let form = self
                        .forms
                        .get(IDENTIFICATION, self.identification_version)
                        .ok();
                    details.push(self.field_line(form, field, c));
                }
                [K_REFERRALS, id, K_STATUS] => headlines.push(self.referral_move(entry, id, c)),
                [K_REFERRALS, id, field] if !RECORD_BOOKKEEPING.contains(&field) => {
                    let form = self
                        .referrals
                        .get(id)
                        .and_then(|r| self.forms.get(REFERRAL, r.version).ok());
                    details.push(self.field_line(form, field, c));
                }
                [K_FOLLOWUPS, id, field] if !RECORD_BOOKKEEPING.contains(&field) => {
                    let version = self.followup_versions.get(id).copied().unwrap_or(1);
                    let form = self.forms.get(FOLLOWUP, version).ok();
                    if field == "visit_date" && c.old.is_none() {
                        let day = c.new.as_ref().map(plain).unwrap_or_default();
                        headlines.push(format!(
                            "{} {}",
                            w(lang, W::FollowUp),
                            words::date_text(lang, &day)
                        ));
                    } else {
                        details.push(self.field_line(form, field, c));
                    }
                }
                [K_AUDIT_NOTES, _, "text"] => {
                    let text = c.new.as_ref().map(plain).unwrap_or_default();
                    headlines.push(format!(
                        "{}{}{}",
                        w(lang, W::AuditNote),
                        words::colon(lang),
                        words::quoted(lang, &text)
                    ));
                }
                [K_ASSIGNED_TO] => {
                    let to = c.new.as_ref().map(plain).unwrap_or_default();
                    headlines.push(format!("{} {to}", w(lang, W::Reassigned)));
                }
                // A closure's step, read from the entry it wrote: what, for which reason, with
                // which note.
                [K_CLOSURE_STEPS, id, "step"] => {
                    let step = c.new.as_ref().map(plain).unwrap_or_default();
                    let mut line = closure_step_label(lang, &step);
                    if let Some(reason) = new_of(&format!("{K_CLOSURE_STEPS}.{id}.reason")) {
                        line.push_str(words::colon(lang));
                        line.push_str(&closure_reason_label(lang, &plain(reason)));
                    }
                    if let Some(note) = new_of(&format!("{K_CLOSURE_STEPS}.{id}.note")) {
                        line.push(' ');
                        line.push_str(&words::quoted(lang, &plain(note)));
                    }
                    headlines.push(line);
                }
                [key @ (K_CLOSURE_STATUS | K_CLOSURE_REASON)] => {
                    let say = |v: &Option<Json>| {
                        v.as_ref()
                            .and_then(|v| closure_conflict_words(lang, key, &plain(v)))
                            .map(|(_, words)| words)
                            .unwrap_or_default()
                    };
                    let label = closure_conflict_words(lang, key, "")
                        .map(|(label, _)| label)
                        .unwrap_or_default();
                    details.push(match &c.old {
                        Some(_) => format!(
                            "{label}{}{} {} {}",
                            words::colon(lang),
                            say(&c.old),
                            words::arrow(lang),
                            say(&c.new)
                        ),
                        None => format!("{label}{}{}", words::colon(lang), say(&c.new)),
                    });
                }
                [K_MERGED_INTO] => match (&c.old, &c.new) {
                    (Some(from), None) => {
                        let from = self.case_named(&plain(from));
                        headlines.push(format!("{} {from}", w(lang, W::MergeUndone)));
                    }
                    _ => {
                        let into = self.case_named(&c.new.as_ref().map(plain).unwrap_or_default());
                        headlines.push(format!("{} {into}", w(lang, W::MergedInto)));
                    }
                },
                _ => {}
            }
        }
        if headlines.is_empty() {
            headlines.push(match action {
                "case.create" => {
                    let name = ["child_first_name", "child_last_name"]
                        .iter()
                        .filter_map(|f| new_of(&format!("{K_IDENTIFICATION}.{f}")).map(plain))
                        .collect::<Vec<_>>()
                        .join(" ");
                    format!(
                        "{}{}{name}",
                        w(lang, W::ChildIdentified),
                        words::colon(lang)
                    )
                }
                "case.edit" => w(lang, W::IdentificationEdited).to_string(),
                "case.form_move" => {
                    format!("{} {}", w(lang, W::FormMoved), self.identification_version)
                }
                "case.merge" => w(lang, W::MergedHere).to_string(),
                "conflict.resolve" => w(lang, W::ConflictSettled).to_string(),
                _ => w(lang, W::Changed).to_string(),
            });
        }
        if action == "case.create" {
            // The creation's fields are the identification itself: the page shows it whole.
            details.clear();
        }
        Told {
            headline: headlines.join(" · "),
            details,
        }
    }

    /// Another case as a person knows it: its child's name, with the start of its id to tell
    /// two namesakes apart; its id alone when the reader may not know the child.
    fn case_named(&self, case_id: &str) -> String {
        match self.names.get(case_id) {
            Some(name) => {
                let short: String = case_id.chars().take(8).collect();
                format!("{name} ({short})")
            }
            None => case_id.to_string(),
        }
    }

    /// A referral's status moved (or a new one began): which referral, its provider and
    /// service, the move in words, and the note its transition carries.
    fn referral_move(&self, entry: &HistoryEntry, id: &str, change: &FieldChange) -> String {
        let lang = self.lang;
        let (provider, service) = match self.referrals.get(id) {
            Some(r) => {
                let form = self.forms.get(REFERRAL, r.version).ok();
                (
                    r.provider.clone(),
                    choice_text(form, "service_type", &r.service, lang),
                )
            }
            None => (w(lang, W::Unknown).to_string(), String::new()),
        };
        let named = if service.is_empty() {
            provider
        } else {
            format!("{provider} ({service})")
        };
        let note = entry
            .changes
            .iter()
            .find(|c| {
                c.path
                    .starts_with(&format!("{K_REFERRALS}.{id}.{K_TRANSITIONS}."))
                    && c.path.ends_with(".note")
            })
            .and_then(|c| c.new.as_ref())
            .map(|n| format!(" {}", words::quoted(lang, &plain(n))))
            .unwrap_or_default();
        let to = change.new.as_ref().map(plain).unwrap_or_default();
        match &change.old {
            None => {
                let transferred = entry
                    .changes
                    .iter()
                    .any(|c| c.path == format!("{K_REFERRALS}.{id}.{K_PREVIOUS}"));
                if transferred {
                    format!("{} {named}{note}", w(lang, W::TransferredTo))
                } else if to == ReferralStatus::Draft.as_str() {
                    format!("{} {named}", w(lang, W::ReferralCreated))
                } else {
                    format!(
                        "{} {named} — {}{note}",
                        w(lang, W::Referral),
                        words::status_label(lang, &to)
                    )
                }
            }
            Some(from) => format!(
                "{} {named} — {} {} {}{note}",
                w(lang, W::Referral),
                words::status_label(lang, &plain(from)),
                words::arrow(lang),
                words::status_label(lang, &to)
            ),
        }
    }

    /// "Label : old → new", the label and values as the form version says them.
    fn field_line(&self, form: Option<&FormDefinition>, field: &str, c: &FieldChange) -> String {
        let lang = self.lang;
        let label = form
            .and_then(|f| f.field(field))
            .map(|f| f.label.get(lang).to_string())
            .unwrap_or_else(|| field.to_string());
        let value = |v: &Option<Json>| v.as_ref().map(|v| value_text(form, field, v, lang));
        let colon = words::colon(lang);
        let arrow = words::arrow(lang);
        match (value(&c.old), value(&c.new)) {
            (Some(old), Some(new)) => format!("{label}{colon}{old} {arrow} {new}"),
            (None, Some(new)) => format!("{label}{colon}{new}"),
            (Some(old), None) => format!("{label}{colon}{old} {arrow} {}", w(lang, W::Cleared)),
            (None, None) => label,
        }
    }
}

/// One value of a record as a screen shows it: its field's label and the value in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownValue {
    pub field: String,
    pub label: String,
    pub value: String,
    /// Asked by an earlier version only: shown as recorded, read-only.
    pub former: bool,
}

/// A record's values in its form version's order, by their labels and in words (choices by
/// label, yes or no, dates as people write them); then the fields only an earlier version of
/// the form asked (`former`), labelled by the newest version that asked each.
pub fn record_in_words(
    forms: &FormRegistry,
    form: &FormDefinition,
    record: &Record,
    former: &Record,
    lang: Lang,
) -> Vec<ShownValue> {
    let mut shown: Vec<ShownValue> = form
        .fields
        .iter()
        .filter_map(|f| {
            let value = record.get(&f.id).filter(|v| !v.is_null())?;
            Some(ShownValue {
                field: f.id.clone(),
                label: f.label.get(lang).to_string(),
                value: value_text(Some(form), &f.id, value, lang),
                former: false,
            })
        })
        .collect();
    for (id, value) in former.iter().filter(|(_, v)| !v.is_null()) {
        let asked_by = forms
            .versions(&form.id)
            .rev()
            .find(|f| f.field(id).is_some());
        shown.push(ShownValue {
            field: id.clone(),
            label: asked_by
                .and_then(|f| f.field(id))
                .map_or_else(|| id.clone(), |f| f.label.get(lang).to_string()),
            value: value_text(asked_by, id, value, lang),
            former: true,
        });
    }
    shown
}

/// A choice's label in the form version, or the code if the version lacks it.
fn choice_text(form: Option<&FormDefinition>, field: &str, code: &str, lang: Lang) -> String {
    form.and_then(|f| f.field(field))
        .and_then(|f| f.choice(code))
        .map(|c| c.label.get(lang).to_string())
        .unwrap_or_else(|| code.to_string())
}

/// A stored value as the reader reads it: choices by label (a multiple choice reads in
/// history as its codes between spaces), yes or no, dates in words.
pub fn value_text(form: Option<&FormDefinition>, field: &str, value: &Json, lang: Lang) -> String {
    let kind = form.and_then(|f| f.field(field)).map(|f| f.field_type);
    match (kind, value) {
        (Some(FieldType::SelectOne), Json::String(code)) => choice_text(form, field, code, lang),
        (Some(FieldType::SelectMultiple), Json::Array(codes)) => codes
            .iter()
            .filter_map(Json::as_str)
            .map(|code| choice_text(form, field, code, lang))
            .collect::<Vec<_>>()
            .join(", "),
        (Some(FieldType::SelectMultiple), Json::String(codes)) => codes
            .split_whitespace()
            .map(|code| choice_text(form, field, code, lang))
            .collect::<Vec<_>>()
            .join(", "),
        (_, Json::Bool(b)) => words::yes_no(lang, *b).to_string(),
        (Some(FieldType::Boolean), Json::String(s)) if s == "true" || s == "false" => {
            words::yes_no(lang, s == "true").to_string()
        }
        (Some(FieldType::Date), Json::String(day)) => words::date_text(lang, day),
        (_, other) => plain(other),
    }
}
