//! Exports of the reader's caseload: cases, referrals (one row per link of a referral chain)
//! and follow-ups, as CSV or JSON, streamed. The reader's scope is walked a page of cases at a
//! time (`ServerStore::scoped_cases`); referrals and follow-ups load one case document at a
//! time. Rows go out in chunks through a small bounded channel, so an export of 100,000 cases
//! holds a page of cases and a chunk of text, never the project; a client that goes away stops
//! the walk.
//!
//! CSV is UTF-8 with a byte-order mark (a spreadsheet then opens accents and Arabic intact),
//! headers in the console's language; any cell a spreadsheet would read as a formula (one that
//! begins with `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`. JSON is an
//! array of objects keyed by the columns' stable English names, values as recorded.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};
use suivi_core::case_doc::{FollowUp, Referral};
use suivi_core::{CaseDoc, Lang};

use crate::service::SyncService;
use crate::storage::{ListedCase, StorageError, User};

/// Cases read from the store per query.
const CASES_PER_PAGE: usize = 500;
/// Bytes gathered before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cases,
    Referrals,
    FollowUps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cases => "cases",
            Kind::Referrals => "referrals",
            Kind::FollowUps => "followups",
        }
    }

    /// Each column: its stable key (JSON), and its header in French, English and Arabic.
    fn columns(self) -> &'static [(&'static str, [&'static str; 3])] {
        match self {
            Kind::Cases => CASE_COLUMNS,
            Kind::Referrals => REFERRAL_COLUMNS,
            Kind::FollowUps => FOLLOWUP_COLUMNS,
        }
    }
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// `cases.csv`, `referrals.json`…
pub fn parse(file: &str) -> Option<(Kind, Format)> {
    let (name, extension) = file.rsplit_once('.')?;
    let kind = [Kind::Cases, Kind::Referrals, Kind::FollowUps]
        .into_iter()
        .find(|k| k.name() == name)?;
    let format = match extension {
        "csv" => Format::Csv,
        "json" => Format::Json,
        _ => return None,
    };
    Some((kind, format))
}

pub fn file_name(kind: Kind, format: Format, day: &str) -> String {
    let extension = match format {
        Format::Csv => "csv",
        Format::Json => "json",
    };
    format!("suivi-{}-{day}.{extension}", kind.name())
}

const CASE_COLUMNS: &[(&str, [&str; 3])] = &[
    ("case_id", ["Dossier", "Case", "الملف"]),
    ("first_name", ["Prénom", "First name", "الاسم"]),
    ("last_name", ["Nom", "Last name", "النسب"]),
    ("sex", ["Sexe", "Sex", "الجنس"]),
    (
        "birth_year",
        ["Année de naissance", "Birth year", "سنة الميلاد"],
    ),
    ("province", ["Province", "Province", "الإقليم"]),
    ("commune", ["Commune", "Commune", "الجماعة"]),
    ("village", ["Village", "Village", "الدوار"]),
    (
        "work_sector",
        ["Secteur de travail", "Work sector", "قطاع العمل"],
    ),
    ("risk_level", ["Risque", "Risk", "الخطر"]),
    ("agent", ["Agent", "Agent", "العون"]),
    ("team", ["Équipe", "Team", "الفريق"]),
    ("referrals", ["Orientations", "Referrals", "الإحالات"]),
    (
        "referral_statuses",
        [
            "Statuts des orientations",
            "Referral statuses",
            "حالات الإحالات",
        ],
    ),
    ("followups", ["Suivis", "Follow-ups", "المتابعات"]),
    (
        "next_followup_due",
        ["Prochain suivi", "Next follow-up", "المتابعة القادمة"],
    ),
    ("merged_into", ["Fusionné dans", "Merged into", "مدمج في"]),
    (
        "updated_at",
        ["Mis à jour (UTC)", "Updated (UTC)", "آخر تحديث (UTC)"],
    ),
];

const REFERRAL_COLUMNS: &[(&str, [&str; 3])] = &[
    ("case_id", ["Dossier", "Case", "الملف"]),
    ("referral_id", ["Orientation", "Referral", "الإحالة"]),
    ("link", ["Maillon", "Link", "الحلقة"]),
    (
        "previous_referral",
        [
            "Orientation précédente",
            "Previous referral",
            "الإحالة السابقة",
        ],
    ),
    ("service_type", ["Service", "Service", "الخدمة"]),
    ("provider", ["Prestataire", "Provider", "مقدم الخدمة"]),
    ("urgency", ["Urgence", "Urgency", "الاستعجال"]),
    ("status", ["Statut", "Status", "الحالة"]),
    ("referred_at", ["Orienté le", "Referred at", "تاريخ الإحالة"]),
    ("referred_by", ["Orienté par", "Referred by", "أحال"]),
    ("sent_at", ["Envoyée le", "Sent at", "أُرسلت في"]),
    ("accepted_at", ["Acceptée le", "Accepted at", "قُبلت في"]),
    ("declined_at", ["Refusée le", "Declined at", "رُفضت في"]),
    (
        "in_service_at",
        ["Prise en charge le", "In service at", "بدء الخدمة في"],
    ),
    ("completed_at", ["Terminée le", "Completed at", "اكتملت في"]),
    (
        "transferred_at",
        ["Transférée le", "Transferred at", "حُوّلت في"],
    ),
    ("closed_at", ["Clôturée le", "Closed at", "أُغلقت في"]),
    (
        "form_version",
        ["Version du formulaire", "Form version", "نسخة الاستمارة"],
    ),
];

const FOLLOWUP_COLUMNS: &[(&str, [&str; 3])] = &[
    ("case_id", ["Dossier", "Case", "الملف"]),
    ("followup_id", ["Suivi", "Follow-up", "المتابعة"]),
    (
        "visit_date",
        ["Date de visite", "Visit date", "تاريخ الزيارة"],
    ),
    (
        "visit_type",
        ["Type de visite", "Visit type", "نوع الزيارة"],
    ),
    ("attends_school", ["Scolarisé", "Attends school", "متمدرس"]),
    (
        "still_working",
        ["Travaille encore", "Still working", "لا يزال يعمل"],
    ),
    (
        "hazardous_work_seen",
        [
            "Travail dangereux constaté",
            "Hazardous work seen",
            "عمل خطير ملاحظ",
        ],
    ),
    (
        "services_received",
        ["Services reçus", "Services received", "الخدمات المتلقاة"],
    ),
    (
        "risk_level_now",
        ["Risque actuel", "Risk now", "الخطر الحالي"],
    ),
    (
        "next_visit_due",
        ["Prochaine visite", "Next visit", "الزيارة القادمة"],
    ),
    ("notes", ["Notes", "Notes", "ملاحظات"]),
    ("recorded_at", ["Enregistré le", "Recorded at", "سُجّل في"]),
    ("recorded_by", ["Enregistré par", "Recorded by", "سجّله"]),
    (
        "form_version",
        ["Version du formulaire", "Form version", "نسخة الاستمارة"],
    ),
];

/// Characters that make a spreadsheet read a cell as a formula when they start it.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
/// Characters where a spreadsheet may start a new cell inside what we wrote as one: the two
/// separators of CSV dialects (`,`, and `;` where the decimal mark is a comma, as in French),
/// tabs, and line ends (a reader in another dialect may not see our quotes).
const CELL_BREAKS: [char; 5] = [',', ';', '\t', '\n', '\r'];

/// A cell made inert for spreadsheets in any dialect: wherever a cell could start (the start,
/// and after any separator or line end inside the text), a `'` goes before a character that
/// would start a formula, past any quotes or spaces before it. So `ok;=cmd` becomes
/// `ok;'=cmd`, which a French-locale spreadsheet splitting on `;` reads as text.
pub fn neutralised(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut at_start = true;
    for (i, c) in text.char_indices() {
        if at_start && (c == '"' || c == ' ') {
            continue;
        }
        if at_start && FORMULA_STARTS.contains(&c) {
            out.push_str(&text[copied..i]);
            out.push('\'');
            copied = i;
        }
        at_start = CELL_BREAKS.contains(&c);
    }
    if copied == 0 && out.is_empty() {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// One row: a value per column, in column order (`Json::Null` for none).
type Row = Vec<Json>;

fn text(value: Option<&str>) -> Json {
    value.map_or(Json::Null, |v| Json::String(v.to_string()))
}

fn case_row(c: &ListedCase) -> Row {
    let s = &c.summary;
    let updated = chrono::DateTime::from_timestamp(c.updated_at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string());
    vec![
        Json::String(s.case_id.clone()),
        Json::String(s.first_name.clone()),
        Json::String(s.last_name.clone()),
        text(s.sex.as_deref()),
        s.birth_year.map_or(Json::Null, Json::from),
        text(s.province.as_deref()),
        text(s.commune.as_deref()),
        text(s.village.as_deref()),
        text(s.work_sector.as_deref()),
        text(s.risk_level.as_deref()),
        Json::String(c.created_by.clone()),
        Json::String(c.team.clone()),
        Json::from(s.referral_count),
        Json::String(s.referral_statuses.join(" ")),
        Json::from(s.followup_count),
        text(s.next_followup_due.as_deref()),
        text(s.merged_into.as_deref()),
        text(updated.as_deref()),
    ]
}

/// The referrals of a case, each chain in order from its first link.
fn referral_rows(case_id: &str, referrals: &[Referral]) -> Vec<Row> {
    let by_id: std::collections::HashMap<&str, &Referral> =
        referrals.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut rows = Vec::with_capacity(referrals.len());
    let mut written: std::collections::HashSet<&str> = std::collections::HashSet::new();
    // Each chain from its first link; then whatever no chain reached (two transfers of one
    // referral made offline, a loop in hostile data), each once, from where it stands.
    let firsts = referrals.iter().filter(|r| {
        r.previous_referral
            .as_deref()
            .is_none_or(|p| !by_id.contains_key(p))
    });
    let starts: Vec<&Referral> = firsts.chain(referrals.iter()).collect();
    for first in starts {
        let mut link = 1u32;
        let mut at = Some(first);
        while let Some(r) = at.filter(|r| written.insert(r.id.as_str())) {
            let reached = |status: &str| {
                r.transitions
                    .iter()
                    .find(|t| t.to == status)
                    .map(|t| Json::String(t.at.clone()))
                    .unwrap_or(Json::Null)
            };
            let field = |id: &str| r.fields.get(id).cloned().unwrap_or(Json::Null);
            rows.push(vec![
                Json::String(case_id.to_string()),
                Json::String(r.id.clone()),
                Json::from(link),
                text(r.previous_referral.as_deref()),
                field("service_type"),
                field("provider"),
                field("urgency"),
                Json::String(r.status.clone()),
                Json::String(r.created_at.clone()),
                Json::String(r.created_by.clone()),
                reached("sent"),
                reached("accepted"),
                reached("declined"),
                reached("in_service"),
                reached("completed"),
                reached("transferred"),
                reached("closed"),
                Json::from(r.form_version),
            ]);
            link += 1;
            at = r
                .next_referral
                .as_deref()
                .and_then(|n| by_id.get(n).copied());
        }
    }
    rows
}

fn followup_rows(case_id: &str, followups: &[FollowUp]) -> Vec<Row> {
    followups
        .iter()
        .map(|f| {
            let field = |id: &str| f.fields.get(id).cloned().unwrap_or(Json::Null);
            vec![
                Json::String(case_id.to_string()),
                Json::String(f.id.clone()),
                field("visit_date"),
                field("visit_type"),
                field("attends_school"),
                field("still_working"),
                field("hazardous_work_seen"),
                field("services_received"),
                field("risk_level_now"),
                field("next_visit_due"),
                field("notes"),
                Json::String(f.created_at.clone()),
                Json::String(f.created_by.clone()),
                Json::from(f.form_version),
            ]
        })
        .collect()
}

/// A value as one CSV cell: lists joined by `;`, booleans as true/false, neutralised.
fn csv_cell(value: &Json) -> String {
    let plain = match value {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        Json::Array(items) => items
            .iter()
            .map(|i| match i {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(";"),
        other => other.to_string(),
    };
    neutralised(&plain).into_owned()
}

/// The bytes the CSV writer produced, taken from it chunk by chunk.
#[derive(Clone, Default)]
struct Sink(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes rows as they come, in chunks of about `CHUNK_BYTES`.
pub struct Writer<'a> {
    kind: Kind,
    format: Format,
    csv: csv::Writer<Sink>,
    sink: Sink,
    json: Vec<u8>,
    rows: u64,
    send: &'a mut dyn FnMut(Vec<u8>) -> bool,
}

/// The client went away: stop.
#[derive(Debug)]
pub struct Gone;

impl<'a> Writer<'a> {
    pub fn start(
        kind: Kind,
        format: Format,
        lang: Lang,
        send: &'a mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Writer<'a> {
        let sink = Sink::default();
        let mut w = Writer {
            kind,
            format,
            csv: csv::Writer::from_writer(sink.clone()),
            sink,
            json: Vec::with_capacity(CHUNK_BYTES),
            rows: 0,
            send,
        };
        match format {
            Format::Csv => {
                let i = match lang {
                    Lang::Fr => 0,
                    Lang::En => 1,
                    Lang::Ar => 2,
                };
                w.sink
                    .0
                    .borrow_mut()
                    .extend_from_slice("\u{feff}".as_bytes());
                let headers: Vec<&str> = kind.columns().iter().map(|(_, h)| h[i]).collect();
                // Writing to memory cannot fail.
                let _ = w.csv.write_record(headers);
            }
            Format::Json => w.json.push(b'['),
        }
        w
    }

    fn row(&mut self, row: Row) -> Result<(), Gone> {
        match self.format {
            Format::Csv => {
                let _ = self.csv.write_record(row.iter().map(csv_cell));
            }
            Format::Json => {
                let object: Map<String, Json> = self
                    .kind
                    .columns()
                    .iter()
                    .map(|(key, _)| key.to_string())
                    .zip(row)
                    .collect();
                if self.rows > 0 {
                    self.json.push(b',');
                }
                self.json.push(b'\n');
                let _ = serde_json::to_writer(&mut self.json, &object);
            }
        }
        self.rows += 1;
        let _ = self.csv.flush();
        if self.buffered() >= CHUNK_BYTES {
            self.send_buffered()?;
        }
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.sink.0.borrow().len() + self.json.len()
    }

    fn send_buffered(&mut self) -> Result<(), Gone> {
        let _ = self.csv.flush();
        let mut chunk = std::mem::take(&mut *self.sink.0.borrow_mut());
        chunk.append(&mut self.json);
        if chunk.is_empty() || (self.send)(chunk) {
            Ok(())
        } else {
            Err(Gone)
        }
    }

    /// Ends the file; returns the rows written.
    pub fn finish(mut self) -> Result<u64, Gone> {
        if self.format == Format::Json {
            self.json.extend_from_slice(b"\n]\n");
        }
        self.send_buffered()?;
        Ok(self.rows)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Service(String),
    #[error("the client went away")]
    Gone,
}

impl From<Gone> for ExportError {
    fn from(_: Gone) -> Self {
        ExportError::Gone
    }
}

/// Walks `reader`'s scope and writes every row of `kind`. A case whose document does not read
/// is skipped (it is listed by `suivi-server case check`), never the end of the export.
pub fn write_all(
    service: &SyncService,
    reader: &User,
    kind: Kind,
    writer: &mut Writer<'_>,
) -> Result<(), ExportError> {
    let store = service.store();
    let forms = service.forms();
    let forms = &*forms;
    let mut after = String::new();
    loop {
        let page = store.scoped_cases(reader, &after, CASES_PER_PAGE)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.summary.case_id.clone();
        for case in &page {
            let case_id = &case.summary.case_id;
            let rows = match kind {
                Kind::Cases => vec![case_row(case)],
                Kind::Referrals | Kind::FollowUps => {
                    let doc: Option<CaseDoc> = service
                        .case_document(case_id)
                        .map_err(|e| ExportError::Service(e.to_string()))?;
                    let Some(doc) = doc else { continue };
                    let read = match kind {
                        Kind::Referrals => doc.referrals(forms).map(|r| referral_rows(case_id, &r)),
                        _ => doc.followups(forms).map(|f| followup_rows(case_id, &f)),
                    };
                    match read {
                        Ok(rows) => rows,
                        Err(e) => {
                            tracing::warn!(case = %case_id, error = %e, "export: a case does not read");
                            continue;
                        }
                    }
                }
            };
            for row in rows {
                writer.row(row)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_compute_are_made_text() {
        for hostile in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)"] {
            assert_eq!(neutralised(hostile), format!("'{hostile}"));
        }
        // A tab or carriage return starts a formula, and also a cell of its own after it.
        assert_eq!(neutralised("\t=1"), "'\t'=1");
        assert_eq!(neutralised("\r=1"), "'\r'=1");
        for plain in ["Aïcha", "عائشة", "1990", "Kadiolo - centre", "", "a;b, c"] {
            assert_eq!(neutralised(plain), plain);
        }
        // Wherever a separator could split the cell, in any dialect.
        for (hostile, inert) in [
            ("ok;=cmd|' /C calc'!A0", "ok;'=cmd|' /C calc'!A0"),
            ("a, +1", "a, '+1"),
            ("x\t-2", "x\t'-2"),
            ("note\n@SUM(1)", "note\n'@SUM(1)"),
            ("\"=1", "\"'=1"),
            ("v;\"\" =1", "v;\"\" '=1"),
            ("\t\t", "'\t'\t"),
            ("=1;=2", "'=1;'=2"),
        ] {
            assert_eq!(neutralised(hostile), inert, "{hostile:?}");
        }
        assert_eq!(csv_cell(&serde_json::json!(["=cmd", "b"])), "'=cmd;b");
        assert_eq!(csv_cell(&serde_json::json!(["a", "-b"])), "a;'-b");
        assert_eq!(csv_cell(&serde_json::json!(true)), "true");
        assert_eq!(csv_cell(&Json::Null), "");
    }

    fn link(id: &str, previous: Option<&str>, next: Option<&str>) -> Referral {
        Referral {
            id: id.into(),
            status: "sent".into(),
            form_version: 1,
            fields: suivi_core::Record::new(),
            created_at: String::new(),
            created_by: "amina".into(),
            previous_referral: previous.map(str::to_string),
            next_referral: next.map(str::to_string),
            transitions: Vec::new(),
        }
    }

    #[test]
    fn every_referral_is_one_row_even_off_its_chain_or_in_a_loop() {
        let ids = |rows: Vec<Row>| -> Vec<(String, u32)> {
            rows.iter()
                .map(|r| {
                    (
                        r[1].as_str().unwrap().to_string(),
                        r[2].as_u64().unwrap() as u32,
                    )
                })
                .collect()
        };
        // a → b, and c also follows a (two transfers made offline): c is written once.
        let chain = [
            link("c", Some("a"), None),
            link("a", None, Some("b")),
            link("b", Some("a"), None),
        ];
        assert_eq!(
            ids(referral_rows("k", &chain)),
            [("a".into(), 1), ("b".into(), 2), ("c".into(), 1)]
        );
        // A loop: each once.
        let looped = [
            link("x", Some("y"), Some("y")),
            link("y", Some("x"), Some("x")),
        ];
        assert_eq!(
            ids(referral_rows("k", &looped)),
            [("x".into(), 1), ("y".into(), 2)]
        );
    }

    #[test]
    fn files_are_named_by_kind_and_format() {
        assert_eq!(parse("cases.csv"), Some((Kind::Cases, Format::Csv)));
        assert_eq!(
            parse("followups.json"),
            Some((Kind::FollowUps, Format::Json))
        );
        assert_eq!(parse("cases.xlsx"), None);
        assert_eq!(parse("users.csv"), None);
        assert_eq!(
            file_name(Kind::Referrals, Format::Csv, "2026-12-03"),
            "suivi-referrals-2026-12-03.csv"
        );
    }

    #[test]
    fn json_is_one_array_and_csv_starts_with_a_byte_order_mark_and_headers() {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut send = |c: Vec<u8>| {
            chunks.push(c);
            true
        };
        let mut w = Writer::start(Kind::FollowUps, Format::Json, Lang::En, &mut send);
        for n in 0..3 {
            w.row(vec![Json::from(n); FOLLOWUP_COLUMNS.len()]).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 3);
        let all: Vec<u8> = chunks.concat();
        let parsed: Vec<Map<String, Json>> = serde_json::from_slice(&all).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[2]["case_id"], Json::from(2));

        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut send = |c: Vec<u8>| {
            chunks.push(c);
            true
        };
        let w = Writer::start(Kind::Cases, Format::Csv, Lang::Ar, &mut send);
        assert_eq!(w.finish().unwrap(), 0);
        let text = String::from_utf8(chunks.concat()).unwrap();
        assert!(text.starts_with("\u{feff}الملف,الاسم,"), "{text}");

        let mut refused = |_: Vec<u8>| false;
        let w = Writer::start(Kind::Cases, Format::Csv, Lang::Fr, &mut refused);
        assert!(w.finish().is_err(), "a client gone stops the export");
    }
}
