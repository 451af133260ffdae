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

mod cells;
pub mod xlsx;

use std::borrow::Cow;

use serde_json::{Map, Value as Json};
use suivi_core::case_doc::{FollowUp, Referral};
use suivi_core::forms::{FormDefinition, FormRegistry, FOLLOWUP, IDENTIFICATION, REFERRAL};
use suivi_core::Lang;

pub use cells::{Cell, Reading, Values};

use crate::service::SyncService;
use crate::storage::{CaseQuery, CaseRecords, ListedCase, StorageError, User};

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
    Xlsx,
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
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Xlsx => "xlsx",
        }
    }

    /// What a file holds unless asked: labels for a spreadsheet, codes for a program.
    pub fn default_values(self) -> Values {
        match self {
            Format::Csv | Format::Xlsx => Values::Labels,
            Format::Json => Values::Codes,
        }
    }
}

/// `cases.csv`, `referrals.json`…
pub fn parse(file: &str) -> Option<(Kind, Format)> {
    let (name, extension) = file.rsplit_once('.')?;
    let kind = [Kind::Cases, Kind::Referrals, Kind::FollowUps]
        .into_iter()
        .find(|k| k.name() == name)?;
    let format = [Format::Csv, Format::Json, Format::Xlsx]
        .into_iter()
        .find(|f| f.extension() == extension)?;
    Some((kind, format))
}

pub fn file_name(kind: Kind, format: Format, day: &str) -> String {
    format!("suivi-{}-{day}.{}", kind.name(), format.extension())
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
    ("updated_at", ["Mis à jour", "Updated", "آخر تحديث"]),
];

/// Who the child is and whose case it is, on every referral and follow-up row.
const CHILD_COLUMNS: [(&str, [&str; 3]); 3] = [
    ("case_id", ["Dossier", "Case", "الملف"]),
    ("child", ["Enfant", "Child", "الطفل"]),
    ("agent", ["Agent", "Agent", "العون"]),
];

const REFERRAL_COLUMNS: &[(&str, [&str; 3])] = &[
    CHILD_COLUMNS[0],
    CHILD_COLUMNS[1],
    CHILD_COLUMNS[2],
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
    CHILD_COLUMNS[0],
    CHILD_COLUMNS[1],
    CHILD_COLUMNS[2],
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

/// One row: a cell per column, in column order.
type Row = Vec<Cell>;

/// What an export holds and how it reads: one request's choices.
#[derive(Debug, Clone)]
pub struct Export {
    pub kind: Kind,
    pub format: Format,
    pub reading: Reading,
    /// The caseload page's filters, when the export was asked from a filtered list.
    pub filter: Option<CaseQuery>,
}

impl Export {
    pub fn headers(&self) -> Vec<&'static str> {
        let i = match self.reading.lang {
            Lang::Fr | Lang::Other(_) => 0,
            Lang::En => 1,
            Lang::Ar => 2,
        };
        self.kind.columns().iter().map(|(_, h)| h[i]).collect()
    }
}

/// The forms a row's values are read by: each record's own version, the identification's
/// latest for the case's fields (a summary keeps no version).
struct Forms<'a>(&'a FormRegistry);

impl Forms<'_> {
    fn of(&self, form: &str, version: u32) -> Option<&FormDefinition> {
        self.0
            .get(form, version)
            .or_else(|_| self.0.latest(form))
            .ok()
    }
}

/// A case's row; `ident` is the identification form its choices are read by (the latest: a
/// summary keeps no version).
fn case_row(c: &ListedCase, ident: Option<&FormDefinition>, r: &Reading) -> Row {
    let s = &c.summary;
    let choice = |field: &str, value: &Option<String>| {
        r.value(
            ident,
            field,
            value.as_ref().map(|v| Json::String(v.clone())).as_ref(),
        )
    };
    vec![
        Cell::text(&s.case_id),
        Cell::text(&s.first_name),
        Cell::text(&s.last_name),
        choice("sex", &s.sex),
        s.birth_year
            .map_or(Cell::Empty, |y| Cell::Int(i64::from(y))),
        Cell::maybe(s.province.as_deref()),
        Cell::maybe(s.commune.as_deref()),
        Cell::maybe(s.village.as_deref()),
        choice("work_sector", &s.work_sector),
        choice("risk_level", &s.risk_level),
        Cell::text(&c.created_by),
        Cell::text(&c.team),
        Cell::Int(i64::from(s.referral_count)),
        Cell::List(s.referral_statuses.iter().map(|st| r.status(st)).collect()),
        Cell::Int(i64::from(s.followup_count)),
        r.day(s.next_followup_due.as_deref()),
        Cell::maybe(s.merged_into.as_deref()),
        r.unix(c.updated_at),
    ]
}

/// The case's id, the child's name and the case's agent: the first cells of its records' rows.
fn child_cells(c: &ListedCase) -> [Cell; 3] {
    let s = &c.summary;
    let name = format!("{} {}", s.first_name, s.last_name);
    [
        Cell::text(&s.case_id),
        Cell::text(name.trim()),
        Cell::text(&c.created_by),
    ]
}

/// The referrals of a case, each chain in order from its first link.
fn referral_rows(
    case: &ListedCase,
    referrals: &[Referral],
    forms: &Forms<'_>,
    r: &Reading,
) -> Vec<Row> {
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
        let mut link = 1i64;
        let mut at = Some(first);
        while let Some(referral) = at.filter(|x| written.insert(x.id.as_str())) {
            let form = forms.of(REFERRAL, referral.form_version);
            let reached = |status: &str| {
                referral
                    .transitions
                    .iter()
                    .find(|t| t.to == status)
                    .map_or(Cell::Empty, |t| r.moment(&t.at))
            };
            let field = |id: &str| r.value(form, id, referral.fields.get(id));
            let mut row: Row = child_cells(case).into();
            row.extend([
                Cell::text(&referral.id),
                Cell::Int(link),
                Cell::maybe(referral.previous_referral.as_deref()),
                field("service_type"),
                field("provider"),
                field("urgency"),
                Cell::Text(r.status(&referral.status)),
                r.moment(&referral.created_at),
                Cell::text(&referral.created_by),
                reached("sent"),
                reached("accepted"),
                reached("declined"),
                reached("in_service"),
                reached("completed"),
                reached("transferred"),
                reached("closed"),
                Cell::Int(i64::from(referral.form_version)),
            ]);
            rows.push(row);
            link += 1;
            at = referral
                .next_referral
                .as_deref()
                .and_then(|n| by_id.get(n).copied());
        }
    }
    rows
}

fn followup_rows(
    case: &ListedCase,
    followups: &[FollowUp],
    forms: &Forms<'_>,
    r: &Reading,
) -> Vec<Row> {
    followups
        .iter()
        .map(|f| {
            let form = forms.of(FOLLOWUP, f.form_version);
            let field = |id: &str| r.value(form, id, f.fields.get(id));
            let mut row: Row = child_cells(case).into();
            row.extend([
                Cell::text(&f.id),
                field("visit_date"),
                field("visit_type"),
                field("attends_school"),
                field("still_working"),
                field("hazardous_work_seen"),
                field("services_received"),
                field("risk_level_now"),
                field("next_visit_due"),
                field("notes"),
                r.moment(&f.created_at),
                Cell::text(&f.created_by),
                Cell::Int(i64::from(f.form_version)),
            ]);
            row
        })
        .collect()
}

/// Where rows go: a file streamed as it is written (CSV, JSON) or a workbook (`xlsx::Book`).
pub trait Sheet {
    /// `Err(Gone)`: stop (the client went away, or the sheet is full).
    fn row(&mut self, cells: Row) -> Result<(), Gone>;
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

/// Writes CSV or JSON rows as they come, in chunks of about `CHUNK_BYTES`.
pub struct Writer<'a> {
    kind: Kind,
    format: Format,
    values: Values,
    csv: csv::Writer<Sink>,
    sink: Sink,
    json: Vec<u8>,
    rows: u64,
    send: &'a mut dyn FnMut(Vec<u8>) -> bool,
}

/// The client went away (or an `.xlsx` sheet is full): stop.
#[derive(Debug)]
pub struct Gone;

impl<'a> Writer<'a> {
    pub fn start(export: &Export, send: &'a mut dyn FnMut(Vec<u8>) -> bool) -> Writer<'a> {
        let sink = Sink::default();
        let mut w = Writer {
            kind: export.kind,
            format: export.format,
            values: export.reading.values,
            csv: csv::Writer::from_writer(sink.clone()),
            sink,
            json: Vec::with_capacity(CHUNK_BYTES),
            rows: 0,
            send,
        };
        match export.format {
            Format::Csv | Format::Xlsx => {
                w.sink
                    .0
                    .borrow_mut()
                    .extend_from_slice("\u{feff}".as_bytes());
                // Writing to memory cannot fail.
                let _ = w.csv.write_record(export.headers());
            }
            Format::Json => w.json.push(b'['),
        }
        w
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

impl Sheet for Writer<'_> {
    fn row(&mut self, row: Row) -> Result<(), Gone> {
        match self.format {
            Format::Csv | Format::Xlsx => {
                let values = self.values;
                let _ = self.csv.write_record(row.iter().map(|c| c.csv(values)));
            }
            Format::Json => {
                let object: Map<String, Json> = self
                    .kind
                    .columns()
                    .iter()
                    .map(|(key, _)| key.to_string())
                    .zip(row.iter().map(Cell::json))
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

/// Walks `reader`'s scope (the cases the export's filter keeps) and writes every row of its
/// kind. Referrals and follow-ups come from their projection (`case_records`), a page of cases
/// at a time; a case without one (a document that does not read, listed by `suivi-server case
/// check`) is skipped, never the end of the export.
pub fn write_all(
    service: &SyncService,
    reader: &User,
    export: &Export,
    sheet: &mut dyn Sheet,
) -> Result<(), ExportError> {
    let store = service.store();
    let registry = service.forms();
    let forms = Forms(&registry);
    let r = &export.reading;
    let ident = registry.latest(IDENTIFICATION).ok();
    let mut after = String::new();
    loop {
        let page = store.scoped_cases(reader, &after, CASES_PER_PAGE)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.summary.case_id.clone();
        let kept: Vec<&ListedCase> = page
            .iter()
            .filter(|c| export.filter.as_ref().is_none_or(|q| q.matches(c)))
            .collect();
        if export.kind == Kind::Cases {
            for case in kept {
                sheet.row(case_row(case, ident, r))?;
            }
            continue;
        }
        let ids: Vec<String> = kept.iter().map(|c| c.summary.case_id.clone()).collect();
        let mut records: std::collections::HashMap<String, CaseRecords> =
            store.case_records(&ids)?.into_iter().collect();
        for case in kept {
            let Some(held) = records.remove(&case.summary.case_id) else {
                continue;
            };
            let rows = match export.kind {
                Kind::Referrals => referral_rows(case, &held.referrals, &forms, r),
                _ => followup_rows(case, &held.followups, &forms, r),
            };
            for row in rows {
                sheet.row(row)?;
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
        let list = |items: &[&str]| Cell::List(items.iter().map(|i| i.to_string()).collect());
        assert_eq!(list(&["=cmd", "b"]).csv(Values::Codes), "'=cmd;b");
        assert_eq!(list(&["a", "-b"]).csv(Values::Codes), "a;'-b");
        assert_eq!(Cell::Bool(true).csv(Values::Codes), "true");
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
        let registry = FormRegistry::builtin();
        let forms = Forms(&registry);
        let reading = Reading {
            lang: Lang::En,
            values: Values::Codes,
            zone: Default::default(),
        };
        let case = ListedCase {
            summary: Default::default(),
            created_by: "amina".into(),
            team: "sikasso".into(),
            updated_at: 0,
        };
        let ids = |chain: &[Referral]| -> Vec<(String, i64)> {
            referral_rows(&case, chain, &forms, &reading)
                .iter()
                .map(|r| match (&r[3], &r[4]) {
                    (Cell::Text(id), Cell::Int(link)) => (id.clone(), *link),
                    other => panic!("{other:?}"),
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
            ids(&chain),
            [("a".into(), 1), ("b".into(), 2), ("c".into(), 1)]
        );
        // A loop: each once.
        let looped = [
            link("x", Some("y"), Some("y")),
            link("y", Some("x"), Some("x")),
        ];
        assert_eq!(ids(&looped), [("x".into(), 1), ("y".into(), 2)]);
    }

    #[test]
    fn files_are_named_by_kind_and_format() {
        assert_eq!(parse("cases.csv"), Some((Kind::Cases, Format::Csv)));
        assert_eq!(
            parse("followups.json"),
            Some((Kind::FollowUps, Format::Json))
        );
        assert_eq!(parse("cases.xlsx"), Some((Kind::Cases, Format::Xlsx)));
        assert_eq!(parse("cases.xls"), None);
        assert_eq!(parse("users.csv"), None);
        assert_eq!(
            file_name(Kind::Referrals, Format::Csv, "2026-12-03"),
            "suivi-referrals-2026-12-03.csv"
        );
    }

    fn export(kind: Kind, format: Format, lang: Lang) -> Export {
        Export {
            kind,
            format,
            reading: Reading {
                lang,
                values: format.default_values(),
                zone: Default::default(),
            },
            filter: None,
        }
    }

    #[test]
    fn json_is_one_array_and_csv_starts_with_a_byte_order_mark_and_headers() {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut send = |c: Vec<u8>| {
            chunks.push(c);
            true
        };
        let mut w = Writer::start(&export(Kind::FollowUps, Format::Json, Lang::En), &mut send);
        for n in 0..3 {
            w.row(vec![Cell::Int(n); FOLLOWUP_COLUMNS.len()]).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 3);
        let all: Vec<u8> = chunks.concat();
        let parsed: Vec<Map<String, Json>> = serde_json::from_slice(&all).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[2]["case_id"], Json::from(2));
        assert_eq!(parsed[2]["child"], Json::from(2));

        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut send = |c: Vec<u8>| {
            chunks.push(c);
            true
        };
        let w = Writer::start(&export(Kind::Cases, Format::Csv, Lang::Ar), &mut send);
        assert_eq!(w.finish().unwrap(), 0);
        let text = String::from_utf8(chunks.concat()).unwrap();
        assert!(text.starts_with("\u{feff}الملف,الاسم,"), "{text}");

        let mut refused = |_: Vec<u8>| false;
        let w = Writer::start(&export(Kind::Cases, Format::Csv, Lang::Fr), &mut refused);
        assert!(w.finish().is_err(), "a client gone stops the export");
    }
}
