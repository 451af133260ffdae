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

use super::{
    Bounds, Choice, Constraints, Field, FieldType, FormDefinition, Label, Lang, LangTag, Relevance,
};
mod expressions;
mod interpret;
mod layout;
mod workbook;
mod write;
use expressions::*;
use interpret::*;
use layout::*;
use workbook::*;
use write::*;

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
    // calamine panics on some damaged files (an arithmetic overflow on a sheet's declared
    // dimension, found by the damaged-workbook test): contained, and told as unreadable.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_workbook(bytes, &mut problems)
    }));
    let Ok(Some(sheets)) = read else {
        if read.is_err() {
            problems.file("the file is not a readable .xlsx workbook (it is damaged)".to_string());
        }
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

// ---------------------------------------------------------------------------------------------
// Columns.
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Interpreting the sheets.
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Expressions: a small tokenizer and the few shapes the definition model holds.
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Writing.
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(id: &str, field_type: FieldType, choices: &[&str]) -> Field {
        let label = Label::new(id, id, id);
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
        assert_eq!(parse_lang("French"), Some(Lang::Fr));
        assert_eq!(parse_lang("French (fr)"), Some(Lang::Fr));
        assert_eq!(parse_lang("fr"), Some(Lang::Fr));
        assert_eq!(parse_lang("Arabic (ar)"), Some(Lang::Ar));
        assert_eq!(parse_lang("en-GB"), Some(Lang::En));
        let bm = LangTag::parse("bm").map(Lang::Other);
        assert_eq!(parse_lang("Bambara (bm)"), bm);
        assert_eq!(parse_lang("bm"), bm);
        assert_eq!(
            parse_lang("Bambara"),
            None,
            "a language by name needs its code"
        );
        assert_eq!(classify(SURVEY, "Label"), Some(Column::Label(Lang::Fr)));
        assert_eq!(
            classify(SURVEY, "label::English (en)"),
            Some(Column::Label(Lang::En))
        );
        assert_eq!(classify(SURVEY, "hint::French"), None);
        assert_eq!(classify(CHOICES, "list name"), Some(Column::ListName));
        assert_eq!(
            classify(SETTINGS, "form_title"),
            Some(Column::Title(Lang::Fr))
        );
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
