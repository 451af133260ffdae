//! Reading a workbook: the zip's bounds checked before inflating, each sheet's rows and cells as text.

use super::*;

/// Inflates every entry through a counting limit, so a small file that expands to gigabytes is
/// refused before calamine builds anything from it.
pub(super) fn check_inflated_size(bytes: &[u8]) -> Result<(), Problem> {
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
pub(super) struct Sheet {
    pub(super) name: &'static str,
    pub(super) headers: BTreeMap<u32, String>,
    pub(super) rows: Vec<SheetRow>,
}

pub(super) struct SheetRow {
    /// 1-based, as the author sees it.
    pub(super) number: u32,
    pub(super) cells: BTreeMap<u32, String>,
}

pub(super) struct Sheets {
    pub(super) survey: Option<Sheet>,
    pub(super) choices: Option<Sheet>,
    pub(super) settings: Option<Sheet>,
}

/// Opens the workbook and reads the three sheets; `None` when the file cannot be read at all
/// (the problems say why) so no misleading "missing sheet" problems follow.
pub(super) fn read_workbook(bytes: &[u8], problems: &mut Problems) -> Option<Sheets> {
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
pub(super) fn read_sheet<RS: Read + Seek>(
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
pub(super) fn cell_text(value: &DataRef<'_>) -> Result<Option<String>, String> {
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
pub(super) fn column_name(index: u32) -> String {
    let mut n = index as u64 + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        letters.push((b'A' + rem) as char);
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}
