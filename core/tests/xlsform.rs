//! XLSForm import and export: the shipped workbooks read back as the shipped JSON, every
//! built-in form survives export then import, and bad workbooks are refused with the sheet and
//! row their author must fix.
//!
//! Run with `cargo test -p suivi-core --features xlsform --test xlsform`.
//!
//! To regenerate `core/forms/*.v1.xlsx` after changing a shipped JSON definition, run
//! `SUIVI_WRITE_XLSFORMS=1 cargo test -p suivi-core --features xlsform --test xlsform shipped`;
//! the test writes the workbooks with `export`, then checks them as usual.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use suivi_core::forms::xlsform::{
    export, import, Problem, XlsFormError, XLSFORM_BYTES_MAX, XLSFORM_CELL_BYTES_MAX,
    XLSFORM_COLUMNS_MAX, XLSFORM_ROWS_MAX,
};
use suivi_core::forms::{FormDefinition, Lang};

const BUILTIN: [&str; 3] = ["identification", "referral", "followup"];

fn forms_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("forms")
}

fn shipped_json(name: &str) -> FormDefinition {
    let text = std::fs::read_to_string(forms_dir().join(format!("{name}.v1.json"))).unwrap();
    FormDefinition::from_json(&text).unwrap()
}

#[test]
fn shipped_workbooks_read_back_as_the_shipped_json() {
    let write = std::env::var("SUIVI_WRITE_XLSFORMS").is_ok_and(|v| v == "1");
    for name in BUILTIN {
        let path = forms_dir().join(format!("{name}.v1.xlsx"));
        let expected = shipped_json(name);
        if write {
            std::fs::write(&path, export(&expected).unwrap()).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (generate it with SUIVI_WRITE_XLSFORMS=1)",
                path.display()
            )
        });
        let imported = import(&bytes).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert_eq!(imported, expected, "{name}");
    }
}

#[test]
fn every_builtin_form_survives_export_then_import() {
    for name in BUILTIN {
        let form = shipped_json(name);
        let bytes = export(&form).unwrap();
        assert_eq!(import(&bytes).unwrap(), form, "{name}");
        // A fixed creation date: exporting twice gives the same file.
        assert_eq!(export(&form).unwrap(), bytes, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built workbooks.
// ---------------------------------------------------------------------------------------------

type Rows<'a> = Vec<Vec<&'a str>>;

/// A workbook of text cells; empty strings leave the cell empty.
fn workbook(sheets: &[(&str, &Rows)]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (name, rows) in sheets {
        let sheet = book.add_worksheet();
        sheet.set_name(*name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, text) in row.iter().enumerate() {
                if !text.is_empty() {
                    sheet.write_string(r as u32, c as u16, *text).unwrap();
                }
            }
        }
    }
    book.save_to_buffer().unwrap()
}

const SURVEY_HEADER: [&str; 9] = [
    "type",
    "name",
    "label::French",
    "label::English",
    "label::Arabic",
    "required",
    "constraint",
    "relevant",
    "appearance",
];

fn settings() -> Rows<'static> {
    vec![
        vec![
            "form_id",
            "version",
            "form_title::French",
            "form_title::English",
            "form_title::Arabic",
        ],
        vec!["visit", "2", "Visite", "Visit", "زيارة"],
    ]
}

fn choices() -> Rows<'static> {
    vec![
        vec![
            "list_name",
            "name",
            "label::French",
            "label::English",
            "label::Arabic",
        ],
        vec!["yn", "yes", "Oui", "Yes", "نعم"],
        vec!["yn", "no", "Non", "No", "لا"],
        vec!["place", "home", "Maison", "Home", "منزل"],
        vec!["place", "school", "École", "School", "مدرسة"],
        vec!["place", "field", "Champ", "Field", "حقل"],
    ]
}

/// A survey of a header and the given rows, each a field with labels in three languages.
fn survey<'a>(rows: &[[&'a str; 9]]) -> Rows<'a> {
    std::iter::once(SURVEY_HEADER.to_vec())
        .chain(rows.iter().map(|r| r.to_vec()))
        .collect()
}

fn row<'a>(field_type: &'a str, name: &'a str) -> [&'a str; 9] {
    [field_type, name, "fr", "en", "ar", "", "", "", ""]
}

fn import_sheets(
    survey: &Rows,
    choices: &Rows,
    settings: &Rows,
) -> Result<FormDefinition, XlsFormError> {
    import(&workbook(&[
        ("survey", survey),
        ("choices", choices),
        ("settings", settings),
    ]))
}

fn problems_of(result: Result<FormDefinition, XlsFormError>) -> Vec<Problem> {
    match result {
        Ok(form) => panic!("expected problems, imported {form:?}"),
        Err(e) => e.problems,
    }
}

/// Asserts a problem on this sheet and row whose message holds `fragment`.
fn assert_problem(problems: &[Problem], sheet: &str, row: Option<u32>, fragment: &str) {
    assert!(
        problems
            .iter()
            .any(|p| p.sheet == sheet && p.row == row && p.message.contains(fragment)),
        "no problem on {sheet:?} row {row:?} containing {fragment:?} in:\n{}",
        problems
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_sheet_using_every_mapping_imports_to_the_expected_definition() {
    let survey = survey(&[
        // Row 2: a boolean, from a select_one on a yes/no list.
        [
            "select_one yn",
            "consent",
            "Accord",
            "Consent",
            "موافقة",
            "yes",
            "",
            "",
            "",
        ],
        // Row 3: a phone, with a pattern.
        [
            "text",
            "phone",
            "Tél",
            "Phone",
            "هاتف",
            "",
            "regex(., '^\\+?[0-9]{8,15}$')",
            "${consent} = 'yes'",
            "numbers",
        ],
        // Row 4: a narrative with a length.
        [
            "text",
            "notes",
            "Notes",
            "Notes",
            "ملاحظات",
            "FALSE()",
            "string-length(.) >= 1 and string-length(.) <= 500",
            "",
            "multiline",
        ],
        // Row 5: a date with a lower bound.
        [
            "date",
            "visit_date",
            "Date",
            "Date",
            "تاريخ",
            "TRUE()",
            ". >= date('2020-01-01')",
            "",
            "",
        ],
        // Row 6: decimal bounds, one whole and one not.
        [
            "decimal",
            "weight",
            "Poids",
            "Weight",
            "وزن",
            "",
            ". >= 0 and . <= 150.5",
            "${consent} = 'no'",
            "",
        ],
        // Row 7, 8: a select_one and a relevance on any of two of its choices.
        [
            "select_one place",
            "place",
            "Lieu",
            "Place",
            "مكان",
            "1",
            "",
            "",
            "",
        ],
        [
            "integer",
            "hours",
            "Heures",
            "Hours",
            "ساعات",
            "",
            ". >= 0 and . <= 112",
            "${place} = 'school' or ${place} = 'field'",
            "",
        ],
        // Row 9, 10: a select_multiple and a relevance with selected().
        [
            "select_multiple place",
            "places",
            "Lieux",
            "Places",
            "أماكن",
            "",
            "",
            "",
            "",
        ],
        [
            "text",
            "school_name",
            "École",
            "School",
            "مدرسة",
            "",
            "",
            "selected(${places}, 'school') or selected(${places}, 'field')",
            "",
        ],
        // Row 11: a text comparing with selected() on a select_one, and a geopoint.
        [
            "geopoint",
            "gps",
            "GPS",
            "GPS",
            "GPS",
            "",
            "",
            "selected(${place}, 'home')",
            "",
        ],
    ]);
    let form = import_sheets(&survey, &choices(), &settings()).unwrap_or_else(|e| panic!("{e}"));
    let label = |fr: &str, en: &str, ar: &str| serde_json::json!({"fr": fr, "en": en, "ar": ar});
    let place_choices = serde_json::json!([
        {"id": "home", "label": label("Maison", "Home", "منزل")},
        {"id": "school", "label": label("École", "School", "مدرسة")},
        {"id": "field", "label": label("Champ", "Field", "حقل")},
    ]);
    let expected = serde_json::json!({
        "id": "visit", "version": 2, "title": label("Visite", "Visit", "زيارة"),
        "fields": [
            {"id": "consent", "type": "boolean", "label": label("Accord", "Consent", "موافقة"),
             "required": true},
            {"id": "phone", "type": "phone", "label": label("Tél", "Phone", "هاتف"),
             "constraints": {"pattern": "^\\+?[0-9]{8,15}$"},
             "relevant": {"field": "consent", "equals": true}},
            {"id": "notes", "type": "text", "label": label("Notes", "Notes", "ملاحظات"),
             "multiline": true, "constraints": {"length": {"min": 1, "max": 500}}},
            {"id": "visit_date", "type": "date", "label": label("Date", "Date", "تاريخ"),
             "required": true, "constraints": {"range": {"min": "2020-01-01"}}},
            {"id": "weight", "type": "decimal", "label": label("Poids", "Weight", "وزن"),
             "constraints": {"range": {"min": 0, "max": 150.5}},
             "relevant": {"field": "consent", "equals": false}},
            {"id": "place", "type": "select_one", "label": label("Lieu", "Place", "مكان"),
             "required": true, "choices": place_choices},
            {"id": "hours", "type": "integer", "label": label("Heures", "Hours", "ساعات"),
             "constraints": {"range": {"min": 0, "max": 112}},
             "relevant": {"field": "place", "any_of": ["school", "field"]}},
            {"id": "places", "type": "select_multiple", "label": label("Lieux", "Places", "أماكن"),
             "choices": place_choices},
            {"id": "school_name", "type": "text", "label": label("École", "School", "مدرسة"),
             "relevant": {"field": "places", "any_of": ["school", "field"]}},
            {"id": "gps", "type": "geopoint", "label": label("GPS", "GPS", "GPS"),
             "relevant": {"field": "place", "equals": "home"}},
        ]
    });
    let expected = FormDefinition::from_json(&expected.to_string()).unwrap();
    assert_eq!(form, expected);
    // And back out and in again unchanged.
    assert_eq!(import(&export(&form).unwrap()).unwrap(), expected);
}

#[test]
fn header_spellings_of_odk_and_kobo_are_read() {
    let survey = vec![
        vec![
            "Type",
            "NAME",
            "label",
            "Label::English (en)",
            "label::Arabic (ar)",
        ],
        vec!["text", "a", "A", "A", "أ"],
    ];
    let choices = vec![vec![
        "list name",
        "name",
        "label::fr",
        "label::en",
        "label::ar",
    ]];
    let settings = vec![
        vec![
            "form_id",
            "version",
            "form_title",
            "form_title::en",
            "form_title::ar",
            "default_language",
        ],
        vec!["f", "7", "F", "F", "ف", "French (fr)"],
    ];
    let bytes = workbook(&[
        ("Survey", &survey),
        ("CHOICES", &choices),
        ("Settings", &settings),
    ]);
    let form = import(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(form.id, "f");
    assert_eq!(form.version, 7);
    assert_eq!(form.fields[0].label.en, "A");
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let survey = survey(&[
        row("colour", "a"),
        row("text", "b"),
        row("text", "b"),
        row("select_one nowhere", "c"),
    ]);
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert_problem(&problems, "survey", Some(2), "unknown type `colour`");
    assert_problem(
        &problems,
        "survey",
        Some(4),
        "duplicate field name `b` (first on row 3)",
    );
    assert_problem(
        &problems,
        "choices",
        None,
        "list `nowhere` is referenced by survey row 5 but missing",
    );
    let text = XlsFormError { problems }.to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("survey row 2: unknown type"), "{text}");
}

#[test]
fn an_unknown_type_is_refused() {
    let survey = survey(&[row("text", "a"), row("colour", "b")]);
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_problem(&problems, "survey", Some(3), "unknown type `colour`");
}

#[test]
fn duplicate_field_names_are_refused() {
    let survey = survey(&[row("text", "a"), row("integer", "a")]);
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_problem(&problems, "survey", Some(3), "duplicate field name `a`");
}

#[test]
fn duplicate_choice_names_are_refused() {
    let mut choices = choices();
    choices.push(vec!["place", "school", "Encore", "Again", "مرة"]);
    let survey = survey(&[row("select_one place", "a")]);
    let problems = problems_of(import_sheets(&survey, &choices, &settings()));
    assert_problem(
        &problems,
        "choices",
        Some(7),
        "duplicate choice `school` in list `place`",
    );
}

#[test]
fn a_missing_choice_list_is_refused() {
    let survey = survey(&[row("text", "a"), row("select_multiple colours", "b")]);
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_problem(
        &problems,
        "choices",
        None,
        "list `colours` is referenced by survey row 3 but missing",
    );
}

#[test]
fn unsupported_relevance_is_refused() {
    let mut relevant_and = row("text", "b");
    relevant_and[7] = "${a} = 'school' and ${a} = 'home'";
    let mut relevant_other = row("text", "c");
    relevant_other[7] = "${a} != 'home'";
    let mut relevant_unknown = row("text", "d");
    relevant_unknown[7] = "${z} = 'home'";
    let survey = survey(&[
        row("select_one place", "a"),
        relevant_and,
        relevant_other,
        relevant_unknown,
    ]);
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_problem(
        &problems,
        "survey",
        Some(3),
        "relevant `${a} = 'school' and ${a} = 'home'`: only `or`",
    );
    assert_problem(
        &problems,
        "survey",
        Some(4),
        "relevant `${a} != 'home'` is not supported",
    );
    assert_problem(&problems, "survey", Some(5), "not a field above this row");
}

#[test]
fn unsupported_constraints_are_refused() {
    let mut strict = row("integer", "a");
    strict[6] = ". > 3";
    let mut function = row("integer", "b");
    function[6] = "not(. = 3)";
    let survey = survey(&[strict, function]);
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_problem(
        &problems,
        "survey",
        Some(2),
        "only `>=` and `<=` are supported",
    );
    assert_problem(
        &problems,
        "survey",
        Some(3),
        "constraint `not(. = 3)` is not supported",
    );
}

#[test]
fn a_column_suivi_cannot_hold_is_refused_where_it_has_content() {
    let mut survey = survey(&[row("text", "a"), row("text", "b")]);
    survey[0].push("hint::French");
    survey[2].push("Écrire en majuscules");
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_problem(
        &problems,
        "survey",
        Some(3),
        "column `hint::French` is not supported",
    );
}

#[test]
fn group_rows_are_refused() {
    let survey = survey(&[
        ["begin group", "g", "G", "G", "G", "", "", "", ""],
        row("text", "a"),
        ["end group", "", "", "", "", "", "", "", ""],
    ]);
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_problem(&problems, "survey", Some(2), "without groups or repeats");
    assert_problem(&problems, "survey", Some(4), "without groups or repeats");
}

#[test]
fn a_missing_arabic_label_is_refused() {
    let mut no_arabic = row("text", "b");
    no_arabic[4] = "";
    let survey = survey(&[row("text", "a"), no_arabic]);
    let mut choices = choices();
    choices[4][4] = "";
    let problems = problems_of(import_sheets(&survey, &choices, &settings()));
    assert_problem(&problems, "survey", Some(3), "label is empty in Arabic");
    assert_problem(&problems, "choices", Some(5), "label is empty in Arabic");
}

#[test]
fn a_version_that_is_not_a_positive_whole_number_is_refused() {
    for bad in ["1.2", "0", "v1", "-3"] {
        let mut settings = settings();
        settings[1][1] = bad;
        let survey = survey(&[row("text", "a")]);
        let problems = problems_of(import_sheets(&survey, &choices(), &settings));
        assert_problem(
            &problems,
            "settings",
            Some(2),
            "is not a positive whole number",
        );
    }
}

#[test]
fn a_file_that_is_not_a_zip_is_refused() {
    let problems = problems_of(import(b"form_id,version\nvisit,1\n"));
    assert_problem(&problems, "", None, "not a zip archive");
}

#[test]
fn a_zip_that_is_not_a_workbook_is_refused() {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("readme.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"hello").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let problems = problems_of(import(&bytes));
    assert_problem(&problems, "", None, "not a readable .xlsx workbook");
}

#[test]
fn an_oversized_file_is_refused_before_parsing() {
    let problems = problems_of(import(&vec![0u8; XLSFORM_BYTES_MAX + 1]));
    assert_eq!(problems.len(), 1);
    assert_problem(&problems, "", None, "the largest accepted is");
}

#[test]
fn a_zip_bomb_is_refused_quickly() {
    // 40 MiB of zeros deflates to about 40 KiB: small enough to pass the file size limit.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
    let chunk = vec![0u8; 1024 * 1024];
    for _ in 0..40 {
        zip.write_all(&chunk).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    assert!(bytes.len() < XLSFORM_BYTES_MAX, "{}", bytes.len());
    let started = Instant::now();
    let problems = problems_of(import(&bytes));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_problem(&problems, "", None, "inflates to more than");
}

/// The sheet names shared strings by index: one long string named by every cell would be
/// copied into each. A cell's text is measured before it is copied, and so is the sheet's total.
#[test]
fn long_shared_strings_are_refused_before_they_are_copied() {
    let long = "x".repeat(XLSFORM_CELL_BYTES_MAX + 1);
    let mut rows = survey(&[row("text", "a")]);
    rows[1][2] = long.as_str();
    let problems = problems_of(import_sheets(&rows, &choices(), &settings()));
    assert_problem(
        &problems,
        "survey",
        Some(2),
        "more than 16384 bytes of text",
    );

    let kilobyte = "y".repeat(1024);
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("survey").unwrap();
    for r in 0..100u32 {
        for c in 0..XLSFORM_COLUMNS_MAX as u16 {
            sheet.write_string(r, c, &kilobyte).unwrap();
        }
    }
    let bytes = book.save_to_buffer().unwrap();
    assert!(
        bytes.len() < 64 * 1024,
        "one shared string: {}",
        bytes.len()
    );
    let problems = problems_of(import(&bytes));
    assert!(
        problems.iter().any(|p| p.sheet == "survey"
            && p.message
                .contains("4194304 bytes of text, more than a form needs")),
        "{problems:?}"
    );
}

/// A form exported from KoboToolbox carries its editor's row ids (`$kuid`, `$autoname`): they
/// are read past, the rest imports as it would without them.
#[test]
fn kobo_bookkeeping_columns_are_read_past() {
    let plain = import_sheets(&survey(&[row("text", "a")]), &choices(), &settings()).unwrap();
    let mut rows = survey(&[row("text", "a")]);
    rows[0].push("$kuid");
    rows[0].push("$autoname");
    rows[1].push("xk29Ab");
    rows[1].push("a");
    assert_eq!(
        import_sheets(&rows, &choices(), &settings()).unwrap(),
        plain
    );
    // Any other column Suivi cannot hold is still reported.
    let mut rows = survey(&[row("text", "a")]);
    rows[0].push("hint");
    rows[1].push("Demandez au parent");
    let problems = problems_of(import_sheets(&rows, &choices(), &settings()));
    assert_problem(
        &problems,
        "survey",
        Some(2),
        "column `hint` is not supported",
    );
}

#[test]
fn too_many_rows_are_refused() {
    let names: Vec<String> = (0..XLSFORM_ROWS_MAX).map(|i| format!("f{i}")).collect();
    let rows: Vec<[&str; 9]> = names.iter().map(|n| row("text", n)).collect();
    // A header and 2,000 fields: the last field is on row 2,001.
    let survey = survey(&rows);
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_problem(
        &problems,
        "survey",
        Some(XLSFORM_ROWS_MAX as u32 + 1),
        "content beyond row 2000",
    );
    // One row fewer is accepted.
    let survey = self::survey(&rows[..XLSFORM_ROWS_MAX - 1]);
    assert_eq!(
        import_sheets(&survey, &choices(), &settings())
            .unwrap()
            .fields
            .len(),
        XLSFORM_ROWS_MAX - 1
    );
}

#[test]
fn missing_sheets_are_named() {
    let survey = survey(&[row("select_one place", "a")]);
    let problems = problems_of(import(&workbook(&[("survey", &survey)])));
    assert_problem(&problems, "settings", None, "no settings sheet");
    assert_problem(&problems, "choices", None, "no choices sheet");
}

#[test]
fn export_refuses_a_definition_it_cannot_write_unchanged() {
    let mut form = shipped_json("referral");
    form.fields[0].choices.truncate(2);
    form.fields[0].choices[0].id = "yes".into();
    form.fields[0].choices[1].id = "no".into();
    let problems = export(&form).unwrap_err().problems;
    assert_problem(
        &problems,
        "survey",
        None,
        "field `service_type`: a select_one whose only choices are yes and no",
    );
}

/// Rewrites a workbook with one entry's inflated bytes changed, so the damage reaches the XML
/// parser instead of stopping at the zip checksum.
fn with_damaged_entry(bytes: &[u8], rng: &mut impl rand::Rng) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let target = rng.gen_range(0..archive.len());
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        if index == target && !content.is_empty() {
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..content.len());
                match rng.gen_range(0..3) {
                    0 => content[at] = rng.gen(),
                    1 => {
                        content.remove(at);
                    }
                    _ => content.insert(at, b"<>\"'=/0123456789"[rng.gen_range(0..16)]),
                }
            }
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&content).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn damaged_workbooks_are_refused_without_panicking() {
    use rand::Rng;
    let seed: u64 = std::env::var("SUIVI_XLSFORM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let iterations: usize = std::env::var("SUIVI_XLSFORM_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    damaged_workbooks_from(seed, iterations);
}

/// A seed whose damage made calamine panic (a subtraction overflowing on a sheet's declared
/// dimension; found by the test above on 2026-12-07): the import now tells it unreadable.
#[test]
fn a_workbook_that_made_calamine_panic_is_refused() {
    damaged_workbooks_from(11_244_833_287_127_347_972, 100);
}

fn damaged_workbooks_from(seed: u64, iterations: usize) {
    use rand::{Rng, SeedableRng};
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let original = export(&shipped_json("followup")).unwrap();
    for _ in 0..iterations {
        let damaged = if rng.gen_bool(0.8) {
            with_damaged_entry(&original, &mut rng)
        } else {
            let mut bytes = original.clone();
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.gen();
            bytes
        };
        let outcome = std::panic::catch_unwind(|| import(&damaged));
        assert!(outcome.is_ok(), "import panicked; seed {seed}");
    }
}

/// Bambara for Sikasso: a `label::Bambara (bm)` column on the survey and choices sheets and a
/// `form_title::bm` in settings carry a fourth language; an empty cell in it shows the French.
#[test]
fn a_further_language_column_is_read_and_written_back() {
    let survey = vec![
        vec![
            "type",
            "name",
            "label::French",
            "label::English",
            "label::Arabic",
            "label::Bambara (bm)",
            "required",
        ],
        vec![
            "select_one place",
            "where",
            "Lieu",
            "Place",
            "مكان",
            "Yɔrɔ",
            "yes",
        ],
        vec!["text", "note", "Note", "Note", "ملاحظة", "", ""],
    ];
    let choices = vec![
        vec![
            "list_name",
            "name",
            "label::French",
            "label::English",
            "label::Arabic",
            "label::bm",
        ],
        vec!["place", "home", "Maison", "Home", "منزل", "So"],
        vec!["place", "field", "Champ", "Field", "حقل", "Foro"],
        vec!["place", "school", "École", "School", "مدرسة", ""],
    ];
    let settings = vec![
        vec![
            "form_id",
            "version",
            "form_title::French",
            "form_title::English",
            "form_title::Arabic",
            "form_title::bm",
        ],
        vec!["visit", "2", "Visite", "Visit", "زيارة", "Taama"],
    ];
    let form = import_sheets(&survey, &choices, &settings).unwrap_or_else(|e| panic!("{e}"));
    let bm = Lang::from_tag("bm");
    assert_eq!(form.title.get(bm), "Taama");
    let place = form.field("where").unwrap();
    assert_eq!(place.label.get(bm), "Yɔrɔ");
    let labels: Vec<&str> = place.choices.iter().map(|c| c.label.get(bm)).collect();
    assert_eq!(labels, ["So", "Foro", "École"]);
    assert!(
        place.choices[2].label.more.is_empty(),
        "an empty cell is no label"
    );
    assert_eq!(form.field("note").unwrap().label.get(bm), "Note");
    assert_eq!(place.label.get(Lang::Ar), "مكان");

    // Written out with a `label::bm` column beside the three, and read back unchanged.
    let written = export(&form).unwrap();
    assert_eq!(import(&written).unwrap(), form);
}

#[test]
fn a_language_named_without_its_code_is_refused_with_the_way_to_write_it() {
    let mut survey = survey(&[row("text", "a")]);
    survey[0].push("label::Bambara");
    survey[1].push("A");
    let problems = problems_of(import_sheets(&survey, &choices(), &settings()));
    assert_problem(
        &problems,
        "survey",
        Some(2),
        "language `Bambara` is not known by name; write its two- or three-letter code, as in `label::Bambara (bm)`",
    );
}
