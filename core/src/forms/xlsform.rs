//! XLSForm workbooks (the ODK/Kobo spreadsheet format) read into and written from form
//! definitions, so programme staff can author a form version in a spreadsheet they already know.
//!
//! Import is strict on purpose: a form decides what agents may record about a child, so anything
//! the definition model cannot hold (a hint, a group, an expression we cannot translate) is
//! reported with its sheet and row, never dropped. Every problem in a workbook is reported in one
//! pass, and the result passes the same checks as [`FormDefinition::from_json`].
//!
//! # Mapping
//!
//! Sheet and column names match case-insensitively; column headers are in row 1. Cell text is
//! trimmed. Completely empty rows are skipped.
//!
//! | XLSForm | Suivi definition |
//! |---|---|
//! | `settings` sheet, row 2 (required) | the form itself |
//! | `settings.form_id` | `id` |
//! | `settings.version` (a positive whole number) | `version` |
//! | `settings.form_title::French/English/Arabic` (plain `form_title` = French) | `title.fr/en/ar` |
//! | `settings.default_language` | accepted only if empty or French (Suivi's default) |
//! | `survey` sheet (required), one row per field | `fields`, in row order |
//! | `survey.name` | `id` |
//! | `survey.label::French/English/Arabic` (plain `label` = French) | `label.fr/en/ar` (all three required) |
//! | `type` `text` | `text` |
//! | `type` `text`, `appearance` `multiline` | `text` with `multiline: true` |
//! | `type` `text`, `appearance` `numbers` | `phone` |
//! | `type` `integer` / `decimal` / `date` / `geopoint` | same type |
//! | `type` `select_one L`, list `L` has exactly the choices `yes` and `no` | `boolean` (`yes` = true); the list's labels are not kept |
//! | `type` `select_one L` / `select_multiple L` | `select_one` / `select_multiple`, choices from list `L` |
//! | `choices` sheet: `list_name`, `name`, `label::…` | `choices[].id`, `choices[].label` |
//! | `required`: `yes`, `true`, `true()`, `1` / empty, `no`, `false`, `false()`, `0` | `required: true` / `false` |
//! | `constraint` `. >= N` / `. <= N` (integer, decimal) | `constraints.range.min` / `max` (whole numbers stay integers) |
//! | `constraint` `. >= date('YYYY-MM-DD')` / `. <= date(…)` (date) | `constraints.range.min` / `max` as a date string |
//! | `constraint` `string-length(.) >= N` / `<= N` (text, phone) | `constraints.length.min` / `max` |
//! | `constraint` `regex(., 'PATTERN')` (text, phone) | `constraints.pattern` (a Rust `regex`) |
//! | several constraint terms joined by `and` | all of them |
//! | `relevant` `${f} = 'x'`, `${f} = 3`, `selected(${f}, 'x')` | `relevant: {field: f, equals: …}` |
//! | `relevant` `${f} = 'yes'` / `'no'` on a boolean `f` | `equals: true` / `false` |
//! | `relevant` `${f} = 'a' or ${f} = 'b'` (or `selected(…)` terms), one field | `relevant: {field: f, any_of: [a, b]}` |
//! | `relevant` `selected(${f}, 'a')` on a select_multiple `f` | `any_of: ["a"]` (shown when `a` is among the ticked choices) |
//!
//! Strings in expressions are XPath literals: in single quotes, or in double quotes when they
//! contain a single quote; there is no escape (a pattern cannot hold both quote kinds).
//! Number bounds are inclusive, so `>` and `<` are refused rather than shifted by one.
//!
//! Reported as problems, with sheet and row: any other type (groups, repeats, notes,
//! calculations, media, metadata such as `start` or `deviceid`, `select_one_from_file`,
//! `or_other`), any other expression (`not()`, `or` in a constraint, `and` in a relevance,
//! several fields, `!=`, `>`, `<`, arithmetic), any other non-empty column (`hint`,
//! `constraint_message`, `default`, `read_only`, `calculation`, `choice_filter`, `media::…`,
//! `guidance_hint`, labels in other languages…), other appearances, other sheets of the XLSForm
//! standard with content (`external_choices`, `entities`, `osm`); sheets with other names are
//! ignored, and so are columns whose header starts with `$` (KoboToolbox's own row ids,
//! `$kuid`, `$autoname`: nothing a form asks).
//!
//! [`export`] writes exactly the columns above (survey: `type`, `name`, three labels,
//! `required`, `constraint`, `relevant`, `appearance`; choices: `list_name`, `name`, three
//! labels; settings: `form_id`, `version`, three titles). A select's list is named after its
//! field; every boolean uses one shared `yes_no` list. `export` refuses a definition that would
//! not read back unchanged (e.g. a select_one whose only choices are `yes` and `no`).
//!
//! Untrusted input is bounded before any spreadsheet parsing: the file size
//! ([`XLSFORM_BYTES_MAX`]), the bytes every zip entry really inflates to
//! ([`XLSFORM_UNZIPPED_BYTES_MAX`], counted by decompressing, since declared sizes are the
//! sender's to choose), the number of zip entries, and rows and columns per sheet; a cell's
//! text is measured before it is copied ([`XLSFORM_CELL_BYTES_MAX`], and
//! [`XLSFORM_SHEET_TEXT_BYTES_MAX`] a sheet), since cells name shared strings by index.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Cursor, Read, Seek};

use calamine::{DataRef, Reader, Xlsx};
use serde_json::Value as Json;

use super::{Bounds, Choice, Constraints, Field, FieldType, FormDefinition, Label, Relevance};

/// Largest workbook file accepted, compressed as uploaded.
pub const XLSFORM_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest total of all zip entries once inflated; a real form is a few hundred KiB.
pub const XLSFORM_UNZIPPED_BYTES_MAX: u64 = 32 * 1024 * 1024;
/// Largest spreadsheet row number with content, per sheet (the header row counts).
pub const XLSFORM_ROWS_MAX: usize = 2_000;
/// Largest number of columns with content per sheet; bounds memory with the row limit.
pub const XLSFORM_COLUMNS_MAX: usize = 64;
/// Largest number of entries in the zip; an .xlsx holds about a dozen.
pub const XLSFORM_ZIP_ENTRIES_MAX: usize = 256;
/// Longest text one cell may hold. The sheet refers to shared strings by index, so a small
/// sheet can name one long string in every cell: each is measured before it is copied.
pub const XLSFORM_CELL_BYTES_MAX: usize = 16 * 1024;
/// Largest total of the text kept from one sheet's cells.
pub const XLSFORM_SHEET_TEXT_BYTES_MAX: usize = 4 * 1024 * 1024;

/// How long a cell's text may be when quoted back in a problem message.
const QUOTED_CHARS_MAX: usize = 80;

/// One thing wrong with a workbook, where its author will find it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The sheet (`survey`, `choices`, `settings`), or empty for the file as a whole.
    pub sheet: String,
    /// The 1-based spreadsheet row as the author sees it, when the problem is on one row.
    pub row: Option<u32>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.sheet.is_empty(), self.row) {
            (true, None) => write!(f, "{}", self.message),
            (true, Some(row)) => write!(f, "row {row}: {}", self.message),
            (false, None) => write!(f, "{}: {}", self.sheet, self.message),
            (false, Some(row)) => write!(f, "{} row {row}: {}", self.sheet, self.message),
        }
    }
}

/// Everything wrong with a workbook (or with a definition that cannot be written as one).
#[derive(Debug, thiserror::Error)]
#[error("{}", lines(.problems))]
pub struct XlsFormError {
    pub problems: Vec<Problem>,
}

fn lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads an XLSForm workbook (.xlsx bytes) into a checked definition.
pub fn import(bytes: &[u8]) -> Result<FormDefinition, XlsFormError> {
    let mut problems = Problems::default();
    if bytes.len() > XLSFORM_BYTES_MAX {
        problems.file(format!(
            "the file is {} bytes; the largest accepted is {XLSFORM_BYTES_MAX} bytes",
            bytes.len()
        ));
        return Err(problems.into_error());
    }
    if let Err(problem) = check_inflated_size(bytes) {
        problems.0.push(problem);
        return Err(problems.into_error());
    }
    let Some(sheets) = read_workbook(bytes, &mut problems) else {
        return Err(problems.into_error());
    };
    let form = interpret(&sheets, &mut problems);
    match form {
        Some(form) if problems.0.is_empty() => {
            // The same checks as a JSON definition, so both ways in accept the same forms.
            if let Err(e) = form.check() {
                problems.at(SURVEY, None, e.to_string());
                return Err(problems.into_error());
            }
            Ok(form)
        }
        _ => Err(problems.into_error()),
    }
}

/// Writes a definition as an XLSForm workbook that `import` reads back to the same definition.
pub fn export(form: &FormDefinition) -> Result<Vec<u8>, XlsFormError> {
    let mut problems = Problems::default();
    let bytes = write_workbook(form, &mut problems);
    if !problems.0.is_empty() {
        return Err(problems.into_error());
    }
    let Some(bytes) = bytes else {
        return Err(problems.into_error());
    };
    // The promise is that the workbook reads back unchanged; checking it here catches every
    // case the specific checks above miss, before an author edits a lossy copy.
    match import(&bytes) {
        Ok(back) if back == *form => Ok(bytes),
        Ok(back) => {
            let differs = form
                .fields
                .iter()
                .enumerate()
                .find(|(i, field)| back.fields.get(*i) != Some(*field))
                .map(|(_, field)| format!("field `{}`", field.id))
                .unwrap_or_else(|| "the form's id, version, title or field list".into());
            problems.at(
                SURVEY,
                None,
                format!("the workbook would not read back unchanged: {differs} differs"),
            );
            Err(problems.into_error())
        }
        Err(e) => {
            for p in e.problems {
                problems.at(
                    &p.sheet,
                    None,
                    format!("the written workbook does not read back: {}", p.message),
                );
            }
            Err(problems.into_error())
        }
    }
}

const SURVEY: &str = "survey";
const CHOICES: &str = "choices";
const SETTINGS: &str = "settings";
/// Sheets of the XLSForm standard that Suivi cannot hold; sheets with other names are the
/// author's own (notes, drafts) and are ignored.
const UNSUPPORTED_SHEETS: [&str; 3] = ["external_choices", "entities", "osm"];

/// The three label languages, in `Label` order, with the names XLSForm columns use.
const LANGS: [(&str, &str); 3] = [("French", "fr"), ("English", "en"), ("Arabic", "ar")];
/// The shared list every boolean field is written with.
const YES_NO_LIST: &str = "yes_no";
const YES_NO_LABELS: [(&str, [&str; 3]); 2] =
    [("yes", ["Oui", "Yes", "نعم"]), ("no", ["Non", "No", "لا"])];

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn at(&mut self, sheet: &str, row: Option<u32>, message: impl Into<String>) {
        self.0.push(Problem {
            sheet: sheet.to_string(),
            row,
            message: message.into(),
        });
    }

    fn file(&mut self, message: impl Into<String>) {
        self.at("", None, message);
    }

    fn into_error(self) -> XlsFormError {
        XlsFormError { problems: self.0 }
    }
}

/// Quotes cell text in a message, shortened so one huge cell cannot flood the report.
fn quoted(text: &str) -> String {
    if text.chars().count() > QUOTED_CHARS_MAX {
        let head: String = text.chars().take(QUOTED_CHARS_MAX).collect();
        format!("`{head}…`")
    } else {
        format!("`{text}`")
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the file: limits, then cells.
// ---------------------------------------------------------------------------------------------

/// Inflates every entry through a counting limit, so a small file that expands to gigabytes is
/// refused before calamine builds anything from it.
fn check_inflated_size(bytes: &[u8]) -> Result<(), Problem> {
    let file_problem = |message: String| Problem {
        sheet: String::new(),
        row: None,
        message,
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        file_problem(format!(
            "the file is not an .xlsx workbook (it is not a zip archive: {e})"
        ))
    })?;
    if archive.len() > XLSFORM_ZIP_ENTRIES_MAX {
        return Err(file_problem(format!(
            "the file holds {} zip entries; an .xlsx workbook holds at most {XLSFORM_ZIP_ENTRIES_MAX}",
            archive.len()
        )));
    }
    let corrupt = |e: &dyn fmt::Display| {
        file_problem(format!("the workbook is damaged and cannot be read ({e})"))
    };
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| corrupt(&e))?;
        // One byte past the allowance is enough to know the limit is crossed.
        let allowance = XLSFORM_UNZIPPED_BYTES_MAX - total + 1;
        let inflated = std::io::copy(&mut (&mut entry).take(allowance), &mut std::io::sink())
            .map_err(|e| corrupt(&e))?;
        total += inflated;
        if total > XLSFORM_UNZIPPED_BYTES_MAX {
            return Err(file_problem(format!(
                "the workbook inflates to more than {XLSFORM_UNZIPPED_BYTES_MAX} bytes; \
                 a form needs far less (is it a zip bomb?)"
            )));
        }
    }
    Ok(())
}

/// One sheet's non-empty cells: headers by column, then data rows in order.
struct Sheet {
    name: &'static str,
    headers: BTreeMap<u32, String>,
    rows: Vec<SheetRow>,
}

struct SheetRow {
    /// 1-based, as the author sees it.
    number: u32,
    cells: BTreeMap<u32, String>,
}

struct Sheets {
    survey: Option<Sheet>,
    choices: Option<Sheet>,
    settings: Option<Sheet>,
}

/// Opens the workbook and reads the three sheets; `None` when the file cannot be read at all
/// (the problems say why) so no misleading "missing sheet" problems follow.
fn read_workbook(bytes: &[u8], problems: &mut Problems) -> Option<Sheets> {
    let mut workbook: Xlsx<_> = match Xlsx::new(Cursor::new(bytes)) {
        Ok(workbook) => workbook,
        Err(e) => {
            problems.file(format!("the file is not a readable .xlsx workbook ({e})"));
            return None;
        }
    };
    let names = workbook.sheet_names();
    let mut fatal = false;
    let mut find = |wanted: &'static str, problems: &mut Problems| -> Option<Sheet> {
        let matching: Vec<&String> = names
            .iter()
            .filter(|n| n.trim().eq_ignore_ascii_case(wanted))
            .collect();
        if matching.len() > 1 {
            problems.at(
                wanted,
                None,
                format!("{} sheets are named `{wanted}`; keep one", matching.len()),
            );
        }
        let name = matching.first()?;
        match read_sheet(&mut workbook, name, wanted, problems) {
            Ok(sheet) => Some(sheet),
            Err(()) => {
                fatal = true;
                None
            }
        }
    };
    let sheets = Sheets {
        survey: find(SURVEY, problems),
        choices: find(CHOICES, problems),
        settings: find(SETTINGS, problems),
    };
    for unsupported in UNSUPPORTED_SHEETS {
        if let Some(sheet) = find(unsupported, problems) {
            if !sheet.headers.is_empty() || !sheet.rows.is_empty() {
                problems.at(
                    unsupported,
                    None,
                    "this XLSForm sheet is not supported by Suivi forms; remove it",
                );
            }
        }
    }
    if fatal {
        None
    } else {
        Some(sheets)
    }
}

/// Streams a sheet's cells (never materialising the declared dimensions, which a hostile file
/// could set to a million rows) and keeps the non-empty ones. `Err` means the sheet could not be
/// read; the problem is recorded.
fn read_sheet<RS: Read + Seek>(
    workbook: &mut Xlsx<RS>,
    sheet_name: &str,
    name: &'static str,
    problems: &mut Problems,
) -> Result<Sheet, ()> {
    let mut reader = workbook.worksheet_cells_reader(sheet_name).map_err(|e| {
        problems.at(name, None, format!("the sheet cannot be read ({e})"));
    })?;
    let mut cells: BTreeMap<(u32, u32), String> = BTreeMap::new();
    let mut kept = 0usize;
    loop {
        let cell = match reader.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => {
                problems.at(name, None, format!("the sheet cannot be read ({e})"));
                return Err(());
            }
        };
        let (row, column) = cell.get_position();
        let long = match cell.get_value() {
            DataRef::String(t) | DataRef::DateTimeIso(t) => t.len(),
            DataRef::SharedString(t) => t.len(),
            _ => 0,
        };
        if long > XLSFORM_CELL_BYTES_MAX {
            problems.at(
                name,
                Some(row.saturating_add(1)),
                format!(
                    "cell {}{} holds more than {XLSFORM_CELL_BYTES_MAX} bytes of text, more than a form needs",
                    column_name(column),
                    row.saturating_add(1)
                ),
            );
            return Err(());
        }
        kept = kept.saturating_add(long);
        if kept > XLSFORM_SHEET_TEXT_BYTES_MAX {
            problems.at(
                name,
                Some(row.saturating_add(1)),
                format!("the sheet holds more than {XLSFORM_SHEET_TEXT_BYTES_MAX} bytes of text, more than a form needs"),
            );
            return Err(());
        }
        let text = cell_text(cell.get_value());
        if matches!(text, Ok(None)) {
            // Formatting alone does not count towards the limits.
            continue;
        }
        // Limits first, so a flood of unreadable cells cannot flood the report either.
        if row as usize >= XLSFORM_ROWS_MAX {
            problems.at(
                name,
                Some(row.saturating_add(1)),
                format!(
                    "the sheet has content beyond row {XLSFORM_ROWS_MAX}, the most a form may use"
                ),
            );
            return Err(());
        }
        if column as usize >= XLSFORM_COLUMNS_MAX {
            problems.at(
                name,
                Some(row + 1),
                format!(
                    "the sheet has content beyond column {}, the most a form may use",
                    column_name(XLSFORM_COLUMNS_MAX as u32 - 1)
                ),
            );
            return Err(());
        }
        match text {
            Ok(Some(text)) => {
                cells.insert((row, column), text);
            }
            Ok(None) => {}
            Err(why) => problems.at(
                name,
                Some(row + 1),
                format!("cell {}{}: {why}", column_name(column), row + 1),
            ),
        }
    }
    let mut sheet = Sheet {
        name,
        headers: BTreeMap::new(),
        rows: Vec::new(),
    };
    for ((row, column), text) in cells {
        if row == 0 {
            sheet.headers.insert(column, text);
            continue;
        }
        let number = row + 1;
        match sheet.rows.last_mut() {
            Some(last) if last.number == number => {
                last.cells.insert(column, text);
            }
            _ => sheet.rows.push(SheetRow {
                number,
                cells: BTreeMap::from([(column, text)]),
            }),
        }
    }
    Ok(sheet)
}

/// A cell as the text its author typed; `Ok(None)` for an empty cell.
fn cell_text(value: &DataRef<'_>) -> Result<Option<String>, String> {
    let text = match value {
        DataRef::Empty => return Ok(None),
        DataRef::String(s) | DataRef::DateTimeIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(n) => n.to_string(),
        // A number typed in a cell is stored as a float; `1.0` displays as `1`.
        DataRef::Float(n) => n.to_string(),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        DataRef::DateTime(_) | DataRef::DurationIso(_) => {
            return Err("holds a spreadsheet date or time; type it as text instead".into())
        }
        DataRef::Error(e) => return Err(format!("holds the spreadsheet error {e}")),
    };
    let text = text.trim();
    Ok(if text.is_empty() {
        None
    } else {
        Some(text.to_string())
    })
}

/// The spreadsheet letters of a 0-based column index (0 → A, 26 → AA).
fn column_name(index: u32) -> String {
    let mut n = index as u64 + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        letters.push((b'A' + rem) as char);
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

// ---------------------------------------------------------------------------------------------
// Columns.
// ---------------------------------------------------------------------------------------------

/// A column Suivi reads; the index in `Label`/`Title` is into [`LANGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Column {
    Type,
    Name,
    ListName,
    Label(usize),
    Required,
    Constraint,
    Relevant,
    Appearance,
    FormId,
    Version,
    Title(usize),
    DefaultLanguage,
}

impl Column {
    fn header(self) -> String {
        match self {
            Column::Type => "type".into(),
            Column::Name => "name".into(),
            Column::ListName => "list_name".into(),
            Column::Label(lang) => format!("label::{}", LANGS[lang].0),
            Column::Required => "required".into(),
            Column::Constraint => "constraint".into(),
            Column::Relevant => "relevant".into(),
            Column::Appearance => "appearance".into(),
            Column::FormId => "form_id".into(),
            Column::Version => "version".into(),
            Column::Title(lang) => format!("form_title::{}", LANGS[lang].0),
            Column::DefaultLanguage => "default_language".into(),
        }
    }
}

/// Which of [`LANGS`] a language written in a header (`French`, `fr`, `French (fr)`) names.
fn parse_lang(text: &str) -> Option<usize> {
    let text = text.trim().to_lowercase();
    // `Name (code)`: the code decides, as in ODK.
    let key = match (text.rfind('('), text.strip_suffix(')')) {
        (Some(open), Some(inner)) => inner[open + 1..].trim().to_string(),
        _ => text,
    };
    let primary = key.split(['-', '_']).next().unwrap_or_default();
    match primary {
        "french" | "français" | "francais" | "fr" => Some(0),
        "english" | "en" => Some(1),
        "arabic" | "ar" | "العربية" => Some(2),
        _ => None,
    }
}

fn classify(sheet: &str, header: &str) -> Option<Column> {
    let header = header.trim().to_lowercase();
    let labelled = |prefix: &str| -> Option<Option<usize>> {
        if header == prefix {
            return Some(Some(0));
        }
        header
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("::"))
            .map(parse_lang)
    };
    match sheet {
        SURVEY => match header.as_str() {
            "type" => Some(Column::Type),
            "name" => Some(Column::Name),
            "required" => Some(Column::Required),
            "constraint" => Some(Column::Constraint),
            "relevant" => Some(Column::Relevant),
            "appearance" => Some(Column::Appearance),
            _ => labelled("label").flatten().map(Column::Label),
        },
        CHOICES => match header.as_str() {
            "list_name" | "list name" => Some(Column::ListName),
            "name" => Some(Column::Name),
            _ => labelled("label").flatten().map(Column::Label),
        },
        SETTINGS => match header.as_str() {
            "form_id" => Some(Column::FormId),
            "version" => Some(Column::Version),
            "default_language" => Some(Column::DefaultLanguage),
            _ => labelled("form_title").flatten().map(Column::Title),
        },
        _ => None,
    }
}

/// A sheet's header row understood: the column each index holds, or the header Suivi cannot
/// hold (kept as written, for the message).
struct Layout {
    columns: BTreeMap<u32, Result<Column, String>>,
    present: BTreeSet<Column>,
    /// KoboToolbox's own bookkeeping columns (`$kuid`, `$autoname`...): ids its editor gives
    /// rows, nothing a form asks. A form exported from Kobo imports as it is.
    bookkeeping: BTreeSet<u32>,
}

fn layout(sheet: &Sheet, problems: &mut Problems) -> Layout {
    let mut layout = Layout {
        columns: BTreeMap::new(),
        present: BTreeSet::new(),
        bookkeeping: BTreeSet::new(),
    };
    let mut first: BTreeMap<Column, u32> = BTreeMap::new();
    for (&index, header) in &sheet.headers {
        if header.starts_with('$') {
            layout.bookkeeping.insert(index);
            continue;
        }
        match classify(sheet.name, header) {
            Some(column) => {
                if let Some(&earlier) = first.get(&column) {
                    problems.at(
                        sheet.name,
                        Some(1),
                        format!(
                            "columns {} and {} are both `{}`; keep one",
                            column_name(earlier),
                            column_name(index),
                            column.header()
                        ),
                    );
                    // The first one wins; the duplicate's cells are reported as unreadable.
                    layout.columns.insert(index, Err(header.clone()));
                    continue;
                }
                first.insert(column, index);
                layout.present.insert(column);
                layout.columns.insert(index, Ok(column));
            }
            None => {
                layout.columns.insert(index, Err(header.clone()));
            }
        }
    }
    layout
}

impl Layout {
    /// The cells of a row by the column Suivi reads; every other non-empty cell is a problem.
    fn read(
        &self,
        sheet: &'static str,
        row: &SheetRow,
        problems: &mut Problems,
    ) -> BTreeMap<Column, String> {
        let mut values = BTreeMap::new();
        for (&index, text) in &row.cells {
            if self.bookkeeping.contains(&index) {
                continue;
            }
            match self.columns.get(&index) {
                Some(Ok(column)) => {
                    values.insert(*column, text.clone());
                }
                Some(Err(header)) => problems.at(
                    sheet,
                    Some(row.number),
                    format!(
                        "column `{header}` is not supported by Suivi forms; clear this cell (it holds {})",
                        quoted(text)
                    ),
                ),
                None => problems.at(
                    sheet,
                    Some(row.number),
                    format!(
                        "cell {}{} has no column header in row 1",
                        column_name(index),
                        row.number
                    ),
                ),
            }
        }
        values
    }

    /// Reports required columns missing from row 1, once each.
    fn require(&self, sheet: &str, columns: &[Column], problems: &mut Problems) {
        for column in columns {
            if !self.present.contains(column) {
                problems.at(
                    sheet,
                    Some(1),
                    format!("column `{}` is missing", column.header()),
                );
            }
        }
    }
}

/// Three labels from a row; a problem names the languages left empty (unless their whole
/// column is missing, which is reported once for the sheet).
fn labels(
    values: &BTreeMap<Column, String>,
    layout: &Layout,
    make: fn(usize) -> Column,
    what: &str,
    sheet: &str,
    row: u32,
    problems: &mut Problems,
) -> Option<Label> {
    let texts: Vec<Option<&String>> = (0..LANGS.len())
        .map(|lang| values.get(&make(lang)))
        .collect();
    let missing: Vec<&str> = (0..LANGS.len())
        .filter(|&lang| texts[lang].is_none() && layout.present.contains(&make(lang)))
        .map(|lang| LANGS[lang].0)
        .collect();
    if !missing.is_empty() {
        problems.at(
            sheet,
            Some(row),
            format!("{what} is empty in {}", missing.join(", ")),
        );
    }
    match (texts[0], texts[1], texts[2]) {
        (Some(fr), Some(en), Some(ar)) => Some(Label {
            fr: fr.clone(),
            en: en.clone(),
            ar: ar.clone(),
        }),
        _ => None,
    }
}

/// Field, list and form ids: what ODK accepts as an XML name, in ASCII, so ids read the same in
/// `${…}` references, JSON and URLs.
fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Choice ids: anything without the separators a multiple answer is typed with.
fn is_choice_name(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == ';')
}

// ---------------------------------------------------------------------------------------------
// Interpreting the sheets.
// ---------------------------------------------------------------------------------------------

/// A survey row once its own cells are understood; constraints and relevance wait until every
/// field's type is known.
struct SurveyRow {
    number: u32,
    id: String,
    kind: RowKind,
    label: Option<Label>,
    required: bool,
    appearance: Option<String>,
    constraint: Option<String>,
    relevant: Option<String>,
}

enum RowKind {
    Plain(FieldType),
    Select { multiple: bool, list: String },
}

struct ChoiceList {
    first_row: u32,
    choices: Vec<Choice>,
    /// A choice row was unreadable: the list is incomplete, so fields using it are not built.
    broken: bool,
}

fn interpret(sheets: &Sheets, problems: &mut Problems) -> Option<FormDefinition> {
    let settings = interpret_settings(sheets.settings.as_ref(), problems);
    let rows = match &sheets.survey {
        Some(sheet) => interpret_survey(sheet, problems),
        None => {
            problems.at(SURVEY, None, "the workbook has no survey sheet");
            Vec::new()
        }
    };
    let lists = sheets
        .choices
        .as_ref()
        .map(|sheet| interpret_choices(sheet, problems));
    if sheets.survey.is_some() && rows.is_empty() && problems.0.is_empty() {
        problems.at(SURVEY, None, "the survey sheet has no fields");
    }
    let fields = build_fields(&rows, lists.as_ref(), problems);
    let (id, version, title) = settings?;
    Some(FormDefinition {
        id,
        version,
        title,
        fields,
    })
}

fn interpret_settings(
    sheet: Option<&Sheet>,
    problems: &mut Problems,
) -> Option<(String, u32, Label)> {
    let Some(sheet) = sheet else {
        problems.at(
            SETTINGS,
            None,
            "the workbook has no settings sheet (it gives form_id, version and form_title)",
        );
        return None;
    };
    let layout = layout(sheet, problems);
    layout.require(
        SETTINGS,
        &[
            Column::FormId,
            Column::Version,
            Column::Title(0),
            Column::Title(1),
            Column::Title(2),
        ],
        problems,
    );
    let mut values = BTreeMap::new();
    for row in &sheet.rows {
        let read = layout.read(SETTINGS, row, problems);
        if row.number == 2 {
            values = read;
        } else {
            problems.at(
                SETTINGS,
                Some(row.number),
                "settings are read from row 2 only; clear this row",
            );
        }
    }
    let id = match values.get(&Column::FormId) {
        Some(id) if is_name(id) => Some(id.clone()),
        Some(id) => {
            problems.at(
                SETTINGS,
                Some(2),
                format!(
                    "form_id {} is not a name (letters, digits, `_`, `-`, `.`, starting with a letter)",
                    quoted(id)
                ),
            );
            None
        }
        None => {
            if layout.present.contains(&Column::FormId) {
                problems.at(SETTINGS, Some(2), "form_id is empty");
            }
            None
        }
    };
    let version = match values.get(&Column::Version) {
        Some(text) => match text.parse::<u32>() {
            Ok(version) if version > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Some(version),
            _ => {
                problems.at(
                    SETTINGS,
                    Some(2),
                    format!(
                        "version {} is not a positive whole number (Suivi numbers form versions 1, 2, 3…)",
                        quoted(text)
                    ),
                );
                None
            }
        },
        None => {
            if layout.present.contains(&Column::Version) {
                problems.at(SETTINGS, Some(2), "version is empty");
            }
            None
        }
    };
    if let Some(language) = values.get(&Column::DefaultLanguage) {
        if parse_lang(language) != Some(0) {
            problems.at(
                SETTINGS,
                Some(2),
                format!(
                    "default_language {} is not supported: Suivi forms default to French",
                    quoted(language)
                ),
            );
        }
    }
    let title = labels(
        &values,
        &layout,
        Column::Title,
        "form_title",
        SETTINGS,
        2,
        problems,
    );
    Some((id?, version?, title?))
}

fn interpret_survey(sheet: &Sheet, problems: &mut Problems) -> Vec<SurveyRow> {
    let layout = layout(sheet, problems);
    layout.require(
        SURVEY,
        &[
            Column::Type,
            Column::Name,
            Column::Label(0),
            Column::Label(1),
            Column::Label(2),
        ],
        problems,
    );
    let mut rows = Vec::new();
    let mut first_row_of: BTreeMap<String, u32> = BTreeMap::new();
    for row in &sheet.rows {
        let values = layout.read(SURVEY, row, problems);
        let number = row.number;
        let Some(type_text) = values.get(&Column::Type) else {
            if layout.present.contains(&Column::Type) {
                problems.at(SURVEY, Some(number), "type is empty");
            }
            continue;
        };
        let Some(kind) = parse_type(type_text, number, problems) else {
            continue;
        };
        let id = match values.get(&Column::Name) {
            Some(id) if is_name(id) => id.clone(),
            Some(id) => {
                problems.at(
                    SURVEY,
                    Some(number),
                    format!(
                        "name {} is not a field name (letters, digits, `_`, `-`, `.`, starting with a letter)",
                        quoted(id)
                    ),
                );
                continue;
            }
            None => {
                if layout.present.contains(&Column::Name) {
                    problems.at(SURVEY, Some(number), "name is empty");
                }
                continue;
            }
        };
        if let Some(first) = first_row_of.get(&id) {
            problems.at(
                SURVEY,
                Some(number),
                format!("duplicate field name `{id}` (first on row {first})"),
            );
            continue;
        }
        first_row_of.insert(id.clone(), number);
        let label = labels(
            &values,
            &layout,
            Column::Label,
            "label",
            SURVEY,
            number,
            problems,
        );
        let required = match values.get(&Column::Required) {
            None => false,
            Some(text) => match text.to_lowercase().as_str() {
                "yes" | "true" | "true()" | "1" => true,
                "no" | "false" | "false()" | "0" => false,
                _ => {
                    problems.at(
                        SURVEY,
                        Some(number),
                        format!(
                            "required {} is not supported: write yes or leave it empty",
                            quoted(text)
                        ),
                    );
                    false
                }
            },
        };
        rows.push(SurveyRow {
            number,
            id,
            kind,
            label,
            required,
            appearance: values.get(&Column::Appearance).cloned(),
            constraint: values.get(&Column::Constraint).cloned(),
            relevant: values.get(&Column::Relevant).cloned(),
        });
    }
    rows
}

fn parse_type(text: &str, row: u32, problems: &mut Problems) -> Option<RowKind> {
    let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    let plain = |t| Some(RowKind::Plain(t));
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["text"] => plain(FieldType::Text),
        ["integer"] => plain(FieldType::Integer),
        ["decimal"] => plain(FieldType::Decimal),
        ["date"] => plain(FieldType::Date),
        ["geopoint"] => plain(FieldType::Geopoint),
        [select @ ("select_one" | "select_multiple"), list] => {
            // List names are case-sensitive in XLSForm: keep the author's spelling.
            let list = text.split_whitespace().nth(1).unwrap_or(list).to_string();
            Some(RowKind::Select {
                multiple: *select == "select_multiple",
                list,
            })
        }
        ["select_one" | "select_multiple", _, "or_other"] => {
            problems.at(
                SURVEY,
                Some(row),
                format!(
                    "type {}: `or_other` is not supported; add an `other` choice and a text field",
                    quoted(text)
                ),
            );
            None
        }
        ["select_one" | "select_multiple"] => {
            problems.at(
                SURVEY,
                Some(row),
                format!("type {} needs a choice list name", quoted(text)),
            );
            None
        }
        words => {
            let joined = words.join(" ").replace('_', " ");
            let why = match joined.as_str() {
                "begin group" | "end group" | "begin repeat" | "end repeat" => {
                    Some("Suivi forms are flat lists of fields, without groups or repeats")
                }
                "note" => Some("Suivi forms have no notes; put the text in a field's label"),
                "calculate" | "hidden" => Some("Suivi forms have no calculated fields"),
                "start" | "end" | "today" | "deviceid" | "subscriberid" | "simserial"
                | "phonenumber" | "username" | "email" | "audit" | "start geopoint" => {
                    Some("the app records who, when and where itself")
                }
                "image"
                | "audio"
                | "video"
                | "file"
                | "background audio"
                | "barcode"
                | "acknowledge"
                | "range"
                | "rank"
                | "time"
                | "datetime"
                | "geotrace"
                | "geoshape"
                | "trigger"
                | "xml external"
                | "csv external"
                | "select one from file"
                | "select multiple from file" => Some("Suivi forms have no field of this type"),
                _ => None,
            };
            let first = words.first().copied().unwrap_or_default();
            let why = why.or(
                if first.starts_with("select_one_from_file")
                    || first.starts_with("select_multiple_from_file")
                {
                    Some("choices must be in the choices sheet")
                } else {
                    None
                },
            );
            match why {
                Some(why) => problems.at(
                    SURVEY,
                    Some(row),
                    format!("type {} is not supported: {why}", quoted(text)),
                ),
                None => problems.at(SURVEY, Some(row), format!("unknown type {}", quoted(text))),
            }
            None
        }
    }
}

fn interpret_choices(sheet: &Sheet, problems: &mut Problems) -> BTreeMap<String, ChoiceList> {
    let layout = layout(sheet, problems);
    layout.require(
        CHOICES,
        &[
            Column::ListName,
            Column::Name,
            Column::Label(0),
            Column::Label(1),
            Column::Label(2),
        ],
        problems,
    );
    let mut lists: BTreeMap<String, ChoiceList> = BTreeMap::new();
    let mut first_row_of: BTreeMap<(String, String), u32> = BTreeMap::new();
    for row in &sheet.rows {
        let values = layout.read(CHOICES, row, problems);
        let number = row.number;
        let Some(list_name) = values.get(&Column::ListName) else {
            if layout.present.contains(&Column::ListName) {
                problems.at(CHOICES, Some(number), "list_name is empty");
            }
            continue;
        };
        let list = lists
            .entry(list_name.clone())
            .or_insert_with(|| ChoiceList {
                first_row: number,
                choices: Vec::new(),
                broken: false,
            });
        let id = match values.get(&Column::Name) {
            Some(id) if is_choice_name(id) => id.clone(),
            other => {
                if let Some(id) = other {
                    problems.at(
                        CHOICES,
                        Some(number),
                        format!(
                            "choice name {} has spaces, commas or semicolons",
                            quoted(id)
                        ),
                    );
                } else if layout.present.contains(&Column::Name) {
                    problems.at(CHOICES, Some(number), "name is empty");
                }
                list.broken = true;
                continue;
            }
        };
        let key = (list_name.clone(), id.clone());
        if let Some(first) = first_row_of.get(&key) {
            problems.at(
                CHOICES,
                Some(number),
                format!("duplicate choice `{id}` in list `{list_name}` (first on row {first})"),
            );
            list.broken = true;
            continue;
        }
        first_row_of.insert(key, number);
        match labels(
            &values,
            &layout,
            Column::Label,
            "label",
            CHOICES,
            number,
            problems,
        ) {
            Some(label) => list.choices.push(Choice { id, label }),
            None => list.broken = true,
        }
    }
    lists
}

/// Whether a list is the yes/no pair that XLSForm uses for a boolean question.
fn is_yes_no(choices: &[Choice]) -> bool {
    let ids: BTreeSet<&str> = choices.iter().map(|c| c.id.as_str()).collect();
    choices.len() == 2 && ids == BTreeSet::from(["yes", "no"])
}

fn build_fields(
    rows: &[SurveyRow],
    lists: Option<&BTreeMap<String, ChoiceList>>,
    problems: &mut Problems,
) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    let mut missing_lists_reported = false;
    for (index, row) in rows.iter().enumerate() {
        let (field_type, choices) = match &row.kind {
            RowKind::Plain(t) => (*t, Vec::new()),
            RowKind::Select { multiple, list } => {
                let Some(lists) = lists else {
                    if !missing_lists_reported {
                        problems.at(
                            CHOICES,
                            None,
                            format!(
                                "the workbook has no choices sheet, but survey row {} is a select",
                                row.number
                            ),
                        );
                        missing_lists_reported = true;
                    }
                    continue;
                };
                let Some(found) = lists.get(list) else {
                    problems.at(
                        CHOICES,
                        None,
                        format!(
                            "list `{list}` is referenced by survey row {} but missing",
                            row.number
                        ),
                    );
                    continue;
                };
                if found.broken {
                    // The list's own rows already carry the problems.
                    continue;
                }
                if found.choices.is_empty() {
                    problems.at(
                        CHOICES,
                        Some(found.first_row),
                        format!("list `{list}` has no choices"),
                    );
                    continue;
                }
                if !multiple && is_yes_no(&found.choices) {
                    (FieldType::Boolean, Vec::new())
                } else if *multiple {
                    (FieldType::SelectMultiple, found.choices.clone())
                } else {
                    (FieldType::SelectOne, found.choices.clone())
                }
            }
        };
        let (field_type, multiline) = match apply_appearance(field_type, row.appearance.as_deref())
        {
            Ok(result) => result,
            Err(message) => {
                problems.at(SURVEY, Some(row.number), message);
                (field_type, false)
            }
        };
        let constraints = match &row.constraint {
            None => Constraints::default(),
            Some(text) => parse_constraint(text, field_type).unwrap_or_else(|message| {
                problems.at(SURVEY, Some(row.number), message);
                Constraints::default()
            }),
        };
        let relevant = match &row.relevant {
            None => None,
            Some(text) => match parse_relevant(text, &fields) {
                Ok(relevance) => Some(relevance),
                Err(message) => {
                    // A relevance on a field whose own row has a problem adds only noise.
                    let on_unbuilt = rows[..index].iter().any(|earlier| {
                        !fields.iter().any(|f| f.id == earlier.id)
                            && text.contains(&format!("${{{}}}", earlier.id))
                    });
                    if !on_unbuilt {
                        problems.at(SURVEY, Some(row.number), message);
                    }
                    None
                }
            },
        };
        let Some(label) = row.label.clone() else {
            continue;
        };
        fields.push(Field {
            id: row.id.clone(),
            field_type,
            label,
            required: row.required,
            multiline,
            choices,
            constraints,
            relevant,
        });
    }
    fields
}

/// `numbers` makes a text a phone number and `multiline` a narrative; nothing else is read.
fn apply_appearance(
    field_type: FieldType,
    appearance: Option<&str>,
) -> Result<(FieldType, bool), String> {
    let Some(appearance) = appearance else {
        return Ok((field_type, false));
    };
    match (field_type, appearance.to_lowercase().as_str()) {
        (FieldType::Text, "multiline") => Ok((FieldType::Text, true)),
        (FieldType::Text, "numbers") => Ok((FieldType::Phone, false)),
        _ => Err(format!(
            "appearance {} is not supported on this type; Suivi reads `multiline` and `numbers` on text",
            quoted(appearance)
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions: a small tokenizer and the few shapes the definition model holds.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// `.`, the field's own value.
    Dot,
    /// `${name}`.
    Ref(String),
    /// A quoted string, without its quotes.
    Str(String),
    /// A number as written.
    Num(String),
    /// A function or operator word: `and`, `or`, `regex`, `string-length`, `date`, `selected`.
    Word(String),
    Open,
    Close,
    Comma,
    Op(&'static str),
}

/// `None` when the text holds something no supported expression contains (arithmetic, paths,
/// an unterminated string).
fn tokenize(text: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '>' | '<' | '!' | '=' => {
                let op = match (c, next) {
                    ('>', Some('=')) => ">=",
                    ('<', Some('=')) => "<=",
                    ('!', Some('=')) => "!=",
                    ('>', _) => ">",
                    ('<', _) => "<",
                    ('=', _) => "=",
                    _ => return None,
                };
                tokens.push(Token::Op(op));
                i += op.len();
            }
            '\'' | '"' => {
                // XPath string literals have no escapes: the string ends at the next same quote.
                let end = chars[i + 1..].iter().position(|&q| q == c)? + i + 1;
                tokens.push(Token::Str(chars[i + 1..end].iter().collect()));
                i = end + 1;
            }
            '$' if next == Some('{') => {
                let end = chars[i + 2..].iter().position(|&q| q == '}')? + i + 2;
                tokens.push(Token::Ref(chars[i + 2..end].iter().collect::<String>()));
                i = end + 1;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '.') && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    let exponent_sign =
                        (d == '-' || d == '+') && matches!(chars.get(i - 1), Some('e') | Some('E'));
                    if d.is_ascii_digit() || d == '.' || d == 'e' || d == 'E' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Num(chars[start..i].iter().collect()));
            }
            '.' => {
                if next == Some('.') {
                    return None;
                }
                tokens.push(Token::Dot);
                i += 1;
            }
            c if c.is_alphabetic() => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '-' | '_' | ':'))
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            _ => return None,
        }
    }
    Some(tokens)
}

/// Splits at top-level `and`/`or`, returning the terms and the connectives between them.
fn split_terms(tokens: &[Token]) -> (Vec<&[Token]>, Vec<String>) {
    let mut terms = Vec::new();
    let mut connectives = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Open => depth += 1,
            Token::Close => depth -= 1,
            Token::Word(w) if depth == 0 && (w == "and" || w == "or") => {
                terms.push(&tokens[start..i]);
                connectives.push(w.clone());
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&tokens[start..]);
    (terms, connectives)
}

/// An integer literal (no point, no exponent) stays a JSON integer, as in the shipped JSON.
fn integer_literal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

fn decimal_literal(text: &str) -> Option<Json> {
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Json::Number)
}

const CONSTRAINT_FORMS: &str = "Suivi reads `. >= N`, `. <= N`, `. >= date('YYYY-MM-DD')`, \
`. <= date('YYYY-MM-DD')`, `string-length(.) >= N`, `string-length(.) <= N` and \
`regex(., 'pattern')`, joined with `and`";

fn parse_constraint(text: &str, field_type: FieldType) -> Result<Constraints, String> {
    let unsupported = || {
        format!(
            "constraint {} is not supported: {CONSTRAINT_FORMS}",
            quoted(text)
        )
    };
    let tokens = tokenize(text).ok_or_else(unsupported)?;
    let (terms, connectives) = split_terms(&tokens);
    if connectives.iter().any(|c| c != "and") {
        return Err(format!(
            "constraint {}: only `and` may join terms (a field's constraints must all hold)",
            quoted(text)
        ));
    }
    let mut constraints = Constraints::default();
    let is_text = matches!(field_type, FieldType::Text | FieldType::Phone);
    let type_name = type_name(field_type);
    for term in terms {
        match term {
            [Token::Dot, Token::Op(op), value @ ..] => {
                let at_min = bound_side(op, text)?;
                let bound = match (field_type, value) {
                    (FieldType::Integer, [Token::Num(n)]) => {
                        Json::from(integer_literal(n).ok_or_else(|| {
                            format!(
                                "constraint {}: {n} is not a whole number, and the field is an integer",
                                quoted(text)
                            )
                        })?)
                    }
                    (FieldType::Decimal, [Token::Num(n)]) => match integer_literal(n) {
                        Some(i) => Json::from(i),
                        None => decimal_literal(n).ok_or_else(unsupported)?,
                    },
                    (
                        FieldType::Date,
                        [Token::Word(f), Token::Open, Token::Str(day), Token::Close],
                    ) if f == "date" => {
                        if super::validate::parse_date(day).is_none() {
                            return Err(format!(
                                "constraint {}: `{day}` is not a date written YYYY-MM-DD",
                                quoted(text)
                            ));
                        }
                        Json::String(day.clone())
                    }
                    (FieldType::Integer | FieldType::Decimal | FieldType::Date, _) => {
                        return Err(unsupported())
                    }
                    _ => {
                        return Err(format!(
                            "constraint {}: a value range does not apply to a {type_name} field",
                            quoted(text)
                        ))
                    }
                };
                let range = constraints.range.get_or_insert_with(Bounds::default);
                set_bound(range, at_min, bound, text)?;
            }
            [Token::Word(f), Token::Open, Token::Dot, Token::Close, Token::Op(op), Token::Num(n)]
                if f == "string-length" =>
            {
                if !is_text {
                    return Err(format!(
                        "constraint {}: a length does not apply to a {type_name} field",
                        quoted(text)
                    ));
                }
                let at_min = bound_side(op, text)?;
                let n: u64 = n.parse().map_err(|_| {
                    format!(
                        "constraint {}: a length must be a whole number of characters",
                        quoted(text)
                    )
                })?;
                let length = constraints.length.get_or_insert_with(Bounds::default);
                set_bound(length, at_min, Json::from(n), text)?;
            }
            [Token::Word(f), Token::Open, Token::Dot, Token::Comma, Token::Str(pattern), Token::Close]
                if f == "regex" =>
            {
                if !is_text {
                    return Err(format!(
                        "constraint {}: a pattern does not apply to a {type_name} field",
                        quoted(text)
                    ));
                }
                if constraints.pattern.is_some() {
                    return Err(format!(
                        "constraint {}: only one regex() per field",
                        quoted(text)
                    ));
                }
                regex::Regex::new(pattern).map_err(|e| {
                    format!(
                        "constraint {}: the pattern is not a valid regular expression ({e})",
                        quoted(text)
                    )
                })?;
                constraints.pattern = Some(pattern.clone());
            }
            _ => return Err(unsupported()),
        }
    }
    Ok(constraints)
}

/// Whether an operator sets a minimum (`>=`) or a maximum (`<=`); Suivi's bounds include their
/// ends, so strict comparisons are refused rather than silently shifted.
fn bound_side(op: &str, text: &str) -> Result<bool, String> {
    match op {
        ">=" => Ok(true),
        "<=" => Ok(false),
        _ => Err(format!(
            "constraint {}: only `>=` and `<=` are supported (Suivi bounds include their ends), not `{op}`",
            quoted(text)
        )),
    }
}

fn set_bound(bounds: &mut Bounds, at_min: bool, value: Json, text: &str) -> Result<(), String> {
    let slot = if at_min {
        &mut bounds.min
    } else {
        &mut bounds.max
    };
    if slot.is_some() {
        return Err(format!(
            "constraint {}: the same bound is given twice",
            quoted(text)
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn type_name(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Text => "text",
        FieldType::Integer => "integer",
        FieldType::Decimal => "decimal",
        FieldType::Date => "date",
        FieldType::Boolean => "yes/no",
        FieldType::SelectOne => "select_one",
        FieldType::SelectMultiple => "select_multiple",
        FieldType::Geopoint => "geopoint",
        FieldType::Phone => "phone",
    }
}

const RELEVANT_FORMS: &str = "Suivi reads `${field} = 'value'`, `${field} = number`, \
`selected(${field}, 'value')`, or several of these on one field joined with `or`";

/// One term of a relevance: the field it reads, the literal, and whether it was `selected()`.
struct RelevantTerm {
    field: String,
    literal: Token,
    selected: bool,
}

fn parse_relevant(text: &str, earlier: &[Field]) -> Result<Relevance, String> {
    let unsupported = || {
        format!(
            "relevant {} is not supported: {RELEVANT_FORMS}",
            quoted(text)
        )
    };
    let tokens = tokenize(text).ok_or_else(unsupported)?;
    let (terms, connectives) = split_terms(&tokens);
    if connectives.iter().any(|c| c != "or") {
        return Err(format!(
            "relevant {}: only `or` may join terms (Suivi shows a field when another field has one of several values)",
            quoted(text)
        ));
    }
    let mut parsed = Vec::new();
    for term in terms {
        parsed.push(match term {
            [Token::Ref(f), Token::Op("="), literal @ (Token::Str(_) | Token::Num(_))] => {
                RelevantTerm {
                    field: f.clone(),
                    literal: literal.clone(),
                    selected: false,
                }
            }
            [Token::Word(w), Token::Open, Token::Ref(f), Token::Comma, literal @ Token::Str(_), Token::Close]
                if w == "selected" =>
            {
                RelevantTerm {
                    field: f.clone(),
                    literal: literal.clone(),
                    selected: true,
                }
            }
            _ => return Err(unsupported()),
        });
    }
    // `split_terms` yields at least one term, and every term parsed or returned above.
    let field_id = parsed[0].field.clone();
    if parsed.iter().any(|t| t.field != field_id) {
        return Err(format!(
            "relevant {} reads several fields; Suivi reads one field per relevance",
            quoted(text)
        ));
    }
    let Some(controller) = earlier.iter().find(|f| f.id == field_id) else {
        return Err(format!(
            "relevant {} refers to `${{{field_id}}}`, which is not a field above this row",
            quoted(text)
        ));
    };
    let multiple = controller.field_type == FieldType::SelectMultiple;
    let mut values: Vec<Json> = Vec::new();
    for term in &parsed {
        let value = relevant_value(text, controller, term)?;
        if values.contains(&value) {
            return Err(format!(
                "relevant {}: the value {value} is given twice",
                quoted(text)
            ));
        }
        values.push(value);
    }
    // On a select_multiple, `selected()` means "ticked among others": only `any_of` says that.
    if values.len() == 1 && !multiple {
        Ok(Relevance {
            field: field_id,
            equals: values.pop(),
            any_of: None,
        })
    } else {
        Ok(Relevance {
            field: field_id,
            equals: None,
            any_of: Some(values),
        })
    }
}

/// The JSON value a relevance literal means for its controlling field's type.
fn relevant_value(text: &str, controller: &Field, term: &RelevantTerm) -> Result<Json, String> {
    let id = &controller.id;
    let literal_text = match &term.literal {
        Token::Str(s) | Token::Num(s) => s.clone(),
        _ => String::new(),
    };
    let is_str = matches!(term.literal, Token::Str(_));
    let bad = |why: String| format!("relevant {}: {why}", quoted(text));
    if term.selected
        && !matches!(
            controller.field_type,
            FieldType::SelectOne | FieldType::SelectMultiple | FieldType::Boolean
        )
    {
        return Err(bad(format!(
            "selected() applies to a select field, and `{id}` is a {} field",
            type_name(controller.field_type)
        )));
    }
    match controller.field_type {
        FieldType::Boolean => match (is_str, literal_text.as_str()) {
            (true, "yes") => Ok(Json::Bool(true)),
            (true, "no") => Ok(Json::Bool(false)),
            _ => Err(bad(format!(
                "`{id}` is a yes/no field: compare it with 'yes' or 'no'"
            ))),
        },
        FieldType::SelectOne | FieldType::SelectMultiple => {
            if controller.field_type == FieldType::SelectMultiple && !term.selected {
                return Err(bad(format!(
                    "`{id}` is a select_multiple field: write selected(${{{id}}}, 'value')"
                )));
            }
            if controller.choice(&literal_text).is_none() {
                return Err(bad(format!("`{literal_text}` is not a choice of `{id}`")));
            }
            Ok(Json::String(literal_text))
        }
        FieldType::Integer => match (is_str, integer_literal(&literal_text)) {
            (false, Some(n)) => Ok(Json::from(n)),
            _ => Err(bad(format!(
                "`{id}` is an integer field: compare it with a whole number"
            ))),
        },
        FieldType::Decimal => match (is_str, decimal_literal(&literal_text)) {
            // Decimal answers are stored as floats, so the expected value must be one too.
            (false, Some(n)) => Ok(n),
            _ => Err(bad(format!(
                "`{id}` is a decimal field: compare it with a number"
            ))),
        },
        FieldType::Text | FieldType::Phone | FieldType::Date => {
            if is_str {
                Ok(Json::String(literal_text))
            } else {
                Err(bad(format!(
                    "`{id}` is a {} field: put the value in quotes",
                    type_name(controller.field_type)
                )))
            }
        }
        FieldType::Geopoint => Err(bad(format!(
            "`{id}` is a geopoint field, which a relevance cannot compare"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing.
// ---------------------------------------------------------------------------------------------

/// An XPath string literal: single quotes unless the text holds one.
fn xpath_string(text: &str) -> Result<String, String> {
    match (text.contains('\''), text.contains('"')) {
        (false, _) => Ok(format!("'{text}'")),
        (true, false) => Ok(format!("\"{text}\"")),
        (true, true) => Err(format!(
            "{} holds both quote kinds, which an XLSForm expression cannot write",
            quoted(text)
        )),
    }
}

fn constraint_text(field: &Field) -> Result<Option<String>, String> {
    let c = &field.constraints;
    let mut terms = Vec::new();
    let empty = |what: &str| format!("{what} has neither min nor max");
    if let Some(range) = &c.range {
        if range.min.is_none() && range.max.is_none() {
            return Err(empty("the range"));
        }
        for (bound, op) in [(&range.min, ">="), (&range.max, "<=")] {
            let Some(bound) = bound else { continue };
            let term = match (field.field_type, bound) {
                (FieldType::Integer | FieldType::Decimal, Json::Number(n)) => format!(". {op} {n}"),
                (FieldType::Date, Json::String(day)) => {
                    format!(". {op} date({})", xpath_string(day)?)
                }
                _ => {
                    return Err(format!(
                        "a range bound {bound} on a {} field cannot be written",
                        type_name(field.field_type)
                    ))
                }
            };
            terms.push(term);
        }
    }
    if let Some(length) = &c.length {
        if length.min.is_none() && length.max.is_none() {
            return Err(empty("the length"));
        }
        for (bound, op) in [(&length.min, ">="), (&length.max, "<=")] {
            let Some(bound) = bound else { continue };
            let Some(n) = bound.as_u64() else {
                return Err(format!(
                    "a length bound {bound} is not a whole number of characters"
                ));
            };
            terms.push(format!("string-length(.) {op} {n}"));
        }
    }
    if let Some(pattern) = &c.pattern {
        terms.push(format!("regex(., {})", xpath_string(pattern)?));
    }
    Ok(if terms.is_empty() {
        None
    } else {
        Some(terms.join(" and "))
    })
}

fn relevant_text(form: &FormDefinition, field: &Field) -> Result<Option<String>, String> {
    let Some(rel) = &field.relevant else {
        return Ok(None);
    };
    let Some(controller) = form.field(&rel.field) else {
        return Err(format!("relevance on unknown field `{}`", rel.field));
    };
    let reference = format!("${{{}}}", rel.field);
    let literal = |value: &Json| -> Result<String, String> {
        match (controller.field_type, value) {
            (FieldType::Boolean, Json::Bool(b)) => Ok(if *b { "'yes'" } else { "'no'" }.into()),
            (FieldType::Boolean, _) => Err(format!("a yes/no field compared with {value}")),
            (_, Json::String(s)) => xpath_string(s),
            (_, Json::Number(n)) => Ok(n.to_string()),
            _ => Err(format!(
                "the value {value} cannot be written in an expression"
            )),
        }
    };
    let multiple = controller.field_type == FieldType::SelectMultiple;
    match (&rel.equals, &rel.any_of) {
        (Some(_), _) if multiple => Err(format!(
            "`equals` on the select_multiple field `{}` cannot be written; use any_of",
            rel.field
        )),
        (Some(value), None) => Ok(Some(format!("{reference} = {}", literal(value)?))),
        (None, Some(values)) if values.is_empty() => Err("an empty any_of".into()),
        (None, Some(values)) if values.len() == 1 && !multiple => Err(format!(
            "any_of with the single value {} reads back as equals; write equals",
            values[0]
        )),
        (None, Some(values)) => {
            let mut terms = Vec::new();
            for (i, value) in values.iter().enumerate() {
                if values[..i].contains(value) {
                    return Err(format!("any_of lists {value} twice"));
                }
                terms.push(if multiple {
                    format!("selected({reference}, {})", literal(value)?)
                } else {
                    format!("{reference} = {}", literal(value)?)
                });
            }
            Ok(Some(terms.join(" or ")))
        }
        _ => Err("a relevance needs exactly one of equals and any_of".into()),
    }
}

/// One survey row and the choice rows its list needs, as text cells in export column order.
struct WrittenField {
    survey: [String; 9],
    list: Option<(String, Vec<[String; 5]>)>,
}

fn written_field(form: &FormDefinition, field: &Field) -> Result<WrittenField, Vec<String>> {
    let mut errors = Vec::new();
    let (type_text, appearance, list) = match field.field_type {
        FieldType::Text if field.multiline => ("text".to_string(), "multiline", None),
        FieldType::Phone => ("text".to_string(), "numbers", None),
        FieldType::Boolean => (format!("select_one {YES_NO_LIST}"), "", None),
        FieldType::SelectOne | FieldType::SelectMultiple => {
            let keyword = if field.field_type == FieldType::SelectOne {
                "select_one"
            } else {
                "select_multiple"
            };
            if field.field_type == FieldType::SelectOne && is_yes_no(&field.choices) {
                errors.push(
                    "a select_one whose only choices are yes and no reads back as a yes/no \
                     field; make it boolean or add a choice"
                        .to_string(),
                );
            }
            let has_boolean = form
                .fields
                .iter()
                .any(|f| f.field_type == FieldType::Boolean);
            if field.id == YES_NO_LIST && has_boolean {
                errors.push(format!(
                    "the list name `{YES_NO_LIST}` is kept for yes/no fields; rename the field"
                ));
            }
            let rows = field
                .choices
                .iter()
                .map(|c| {
                    [
                        field.id.clone(),
                        c.id.clone(),
                        c.label.fr.clone(),
                        c.label.en.clone(),
                        c.label.ar.clone(),
                    ]
                })
                .collect();
            (
                format!("{keyword} {}", field.id),
                "",
                Some((field.id.clone(), rows)),
            )
        }
        other => (type_name(other).to_string(), "", None),
    };
    let constraint = constraint_text(field).unwrap_or_else(|e| {
        errors.push(format!("constraint: {e}"));
        None
    });
    let relevant = relevant_text(form, field).unwrap_or_else(|e| {
        errors.push(format!("relevant: {e}"));
        None
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(WrittenField {
        survey: [
            type_text,
            field.id.clone(),
            field.label.fr.clone(),
            field.label.en.clone(),
            field.label.ar.clone(),
            if field.required { "yes" } else { "" }.to_string(),
            constraint.unwrap_or_default(),
            relevant.unwrap_or_default(),
            appearance.to_string(),
        ],
        list,
    })
}

const SURVEY_COLUMNS: [Column; 9] = [
    Column::Type,
    Column::Name,
    Column::Label(0),
    Column::Label(1),
    Column::Label(2),
    Column::Required,
    Column::Constraint,
    Column::Relevant,
    Column::Appearance,
];
const CHOICE_COLUMNS: [Column; 5] = [
    Column::ListName,
    Column::Name,
    Column::Label(0),
    Column::Label(1),
    Column::Label(2),
];

/// Builds the workbook; `None` (with problems) when the definition cannot be written unchanged.
fn write_workbook(form: &FormDefinition, problems: &mut Problems) -> Option<Vec<u8>> {
    let mut survey_rows: Vec<[String; 9]> = Vec::new();
    let mut choice_rows: Vec<[String; 5]> = Vec::new();
    let mut yes_no_written = false;
    for field in &form.fields {
        match written_field(form, field) {
            Ok(written) => {
                if field.field_type == FieldType::Boolean && !yes_no_written {
                    for (id, labels) in YES_NO_LABELS {
                        choice_rows.push([
                            YES_NO_LIST.to_string(),
                            id.to_string(),
                            labels[0].to_string(),
                            labels[1].to_string(),
                            labels[2].to_string(),
                        ]);
                    }
                    yes_no_written = true;
                }
                if let Some((_, rows)) = written.list {
                    choice_rows.extend(rows);
                }
                survey_rows.push(written.survey);
            }
            Err(errors) => {
                for e in errors {
                    problems.at(SURVEY, None, format!("field `{}`: {e}", field.id));
                }
            }
        }
    }
    if !problems.0.is_empty() {
        return None;
    }
    let settings_row = [
        form.id.clone(),
        form.version.to_string(),
        form.title.fr.clone(),
        form.title.en.clone(),
        form.title.ar.clone(),
    ];
    let settings_headers = [
        Column::FormId.header(),
        Column::Version.header(),
        Column::Title(0).header(),
        Column::Title(1).header(),
        Column::Title(2).header(),
    ];
    let result = (|| -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        // A fixed creation date keeps a re-export of an unchanged form byte-identical.
        let created = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 1, 1)?;
        workbook
            .set_properties(&rust_xlsxwriter::DocProperties::new().set_creation_datetime(&created));
        let bold = rust_xlsxwriter::Format::new().set_bold();
        let headers = |columns: &[Column]| columns.iter().map(|c| c.header()).collect::<Vec<_>>();
        write_sheet(
            workbook.add_worksheet(),
            SURVEY,
            &headers(&SURVEY_COLUMNS),
            survey_rows.iter().map(|r| r.as_slice()),
            &bold,
        )?;
        write_sheet(
            workbook.add_worksheet(),
            CHOICES,
            &headers(&CHOICE_COLUMNS),
            choice_rows.iter().map(|r| r.as_slice()),
            &bold,
        )?;
        let sheet = workbook.add_worksheet();
        write_sheet(
            sheet,
            SETTINGS,
            &settings_headers,
            std::iter::empty(),
            &bold,
        )?;
        // The version is a number in the cell, as authors type it.
        sheet.write_string(1, 0, &settings_row[0])?;
        sheet.write_number(1, 1, form.version as f64)?;
        for (i, text) in settings_row.iter().enumerate().skip(2) {
            sheet.write_string(1, i as u16, text)?;
        }
        sheet.autofit();
        workbook.save_to_buffer()
    })();
    match result {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            problems.file(format!("the workbook could not be written ({e})"));
            None
        }
    }
}

fn write_sheet<'a>(
    sheet: &mut rust_xlsxwriter::Worksheet,
    name: &str,
    headers: &[String],
    rows: impl Iterator<Item = &'a [String]>,
    bold: &rust_xlsxwriter::Format,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    sheet.set_name(name)?;
    for (column, header) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, column as u16, header, bold)?;
    }
    for (index, row) in rows.enumerate() {
        for (column, text) in row.iter().enumerate() {
            if !text.is_empty() {
                sheet.write_string(index as u32 + 1, column as u16, text)?;
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofit();
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(id: &str, field_type: FieldType, choices: &[&str]) -> Field {
        let label = Label {
            fr: id.into(),
            en: id.into(),
            ar: id.into(),
        };
        Field {
            id: id.into(),
            field_type,
            label: label.clone(),
            required: false,
            multiline: false,
            choices: choices
                .iter()
                .map(|c| Choice {
                    id: (*c).into(),
                    label: label.clone(),
                })
                .collect(),
            constraints: Constraints::default(),
            relevant: None,
        }
    }

    #[test]
    fn tokens_keep_quoted_text_whole() {
        assert_eq!(
            tokenize("regex(., '^a and b$') and string-length(.) <= 5"),
            Some(vec![
                Token::Word("regex".into()),
                Token::Open,
                Token::Dot,
                Token::Comma,
                Token::Str("^a and b$".into()),
                Token::Close,
                Token::Word("and".into()),
                Token::Word("string-length".into()),
                Token::Open,
                Token::Dot,
                Token::Close,
                Token::Op("<="),
                Token::Num("5".into()),
            ])
        );
        assert_eq!(
            tokenize("${a} = -1.5e-3"),
            Some(vec![
                Token::Ref("a".into()),
                Token::Op("="),
                Token::Num("-1.5e-3".into())
            ])
        );
        assert_eq!(tokenize(". + 1"), None);
        assert_eq!(tokenize("'unterminated"), None);
    }

    #[test]
    fn constraints_keep_the_json_types_of_the_shipped_forms() {
        let c = parse_constraint(". >= 0 and . <= 17", FieldType::Integer).unwrap();
        assert_eq!(
            serde_json::to_value(&c.range).unwrap(),
            json!({"min": 0, "max": 17})
        );
        let c = parse_constraint(". >= -1 and . <= 2.5", FieldType::Decimal).unwrap();
        assert_eq!(c.range.unwrap().max, Some(json!(2.5)));
        let c = parse_constraint(". >= date('2000-01-01')", FieldType::Date).unwrap();
        assert_eq!(c.range.unwrap().min, Some(json!("2000-01-01")));
        let c = parse_constraint("regex(., \"^it's$\")", FieldType::Text).unwrap();
        assert_eq!(c.pattern.as_deref(), Some("^it's$"));
        for bad in [
            ". > 3",
            ". >= 3 or . <= 1",
            "not(. = 3)",
            ". >= 1.5",
            ". >= 1 and . >= 2",
        ] {
            assert!(parse_constraint(bad, FieldType::Integer).is_err(), "{bad}");
        }
        assert!(parse_constraint("string-length(.) <= 3", FieldType::Integer).is_err());
        assert!(parse_constraint("regex(., '(')", FieldType::Text).is_err());
    }

    #[test]
    fn relevance_reads_the_controlling_field_type() {
        let earlier = vec![
            field("b", FieldType::Boolean, &[]),
            field("s", FieldType::SelectOne, &["x", "y"]),
            field("m", FieldType::SelectMultiple, &["x", "y"]),
            field("n", FieldType::Integer, &[]),
        ];
        let rel = parse_relevant("${b} = 'no'", &earlier).unwrap();
        assert_eq!(rel.equals, Some(json!(false)));
        let rel = parse_relevant("selected(${s}, 'x')", &earlier).unwrap();
        assert_eq!(rel.equals, Some(json!("x")));
        let rel = parse_relevant("${s} = 'x' or ${s} = 'y'", &earlier).unwrap();
        assert_eq!(rel.any_of, Some(vec![json!("x"), json!("y")]));
        let rel = parse_relevant("selected(${m}, 'y')", &earlier).unwrap();
        assert_eq!(rel.any_of, Some(vec![json!("y")]));
        let rel = parse_relevant("${n} = 3", &earlier).unwrap();
        assert_eq!(rel.equals, Some(json!(3)));
        for bad in [
            "${s} = 'x' and ${n} = 3",
            "${s} = 'x' or ${n} = 3",
            "${s} != 'x'",
            "${s} = 'z'",
            "${m} = 'x'",
            "${b} = 'maybe'",
            "${later} = 'x'",
            "${n} = '3'",
        ] {
            assert!(parse_relevant(bad, &earlier).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_languages_accept_names_and_codes() {
        assert_eq!(parse_lang("French"), Some(0));
        assert_eq!(parse_lang("French (fr)"), Some(0));
        assert_eq!(parse_lang("fr"), Some(0));
        assert_eq!(parse_lang("Arabic (ar)"), Some(2));
        assert_eq!(parse_lang("en-GB"), Some(1));
        assert_eq!(parse_lang("Spanish (es)"), None);
        assert_eq!(classify(SURVEY, "Label"), Some(Column::Label(0)));
        assert_eq!(
            classify(SURVEY, "label::English (en)"),
            Some(Column::Label(1))
        );
        assert_eq!(classify(SURVEY, "hint::French"), None);
        assert_eq!(classify(CHOICES, "list name"), Some(Column::ListName));
        assert_eq!(classify(SETTINGS, "form_title"), Some(Column::Title(0)));
    }

    #[test]
    fn cells_read_as_typed() {
        assert_eq!(cell_text(&DataRef::Float(1.0)), Ok(Some("1".into())));
        assert_eq!(cell_text(&DataRef::Float(1.5)), Ok(Some("1.5".into())));
        assert_eq!(cell_text(&DataRef::String("  ".into())), Ok(None));
        assert_eq!(cell_text(&DataRef::Bool(true)), Ok(Some("TRUE".into())));
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
    }

    #[test]
    fn export_refuses_what_would_not_read_back() {
        let mut yes_no_select = field("answer", FieldType::SelectOne, &["yes", "no"]);
        yes_no_select.required = true;
        let mut single_any_of = field("t", FieldType::Text, &[]);
        single_any_of.relevant = Some(Relevance {
            field: "answer".into(),
            equals: None,
            any_of: Some(vec![json!("yes")]),
        });
        let form = FormDefinition {
            id: "t".into(),
            version: 1,
            title: yes_no_select.label.clone(),
            fields: vec![yes_no_select, single_any_of],
        };
        let err = export(&form).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems[0].message.contains("reads back as a yes/no"));
        assert!(err.problems[1].message.contains("single value"));
    }
}
