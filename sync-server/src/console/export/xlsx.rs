//! An export as an `.xlsx` workbook (rust_xlsxwriter): typed cells (numbers, booleans, dates
//! and times as dates), headers frozen and filterable, right to left in Arabic. Text is
//! written as text cells, so nothing in it is ever a formula; it is neutralised all the same,
//! as in CSV, for whoever copies a cell into another sheet or saves the sheet as CSV.
//!
//! A workbook is built in memory (the library's constant-memory mode writes the rows to a
//! temporary file, which would put children's names on disk in clear): past `ROWS_MAX` rows
//! the export is refused and CSV, which streams, is offered instead.

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};
use suivi_core::Lang;

use super::cells::{Cell, Values};
use super::{neutralised, Gone, Sheet};

/// Rows an `.xlsx` export holds at most (a workbook is built in memory).
pub const ROWS_MAX: u32 = 60_000;

pub struct Book {
    workbook: Workbook,
    values: Values,
    day: Format,
    moment: Format,
    rows: u32,
    /// Rows past `ROWS_MAX` were offered: the book is not whole.
    pub too_large: bool,
}

impl Book {
    pub fn new(lang: Lang, values: Values, headers: &[&str]) -> Result<Book, XlsxError> {
        let mut workbook = Workbook::new();
        let bold = Format::new().set_bold();
        let sheet = workbook.add_worksheet();
        sheet.set_name("Suivi")?;
        if lang == Lang::Ar {
            sheet.set_right_to_left(true);
        }
        for (col, header) in headers.iter().enumerate() {
            let col = col as u16;
            sheet.write_string_with_format(0, col, *header, &bold)?;
            sheet.set_column_width(col, 16)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        Ok(Book {
            workbook,
            values,
            day: Format::new().set_num_format("yyyy-mm-dd"),
            moment: Format::new().set_num_format("yyyy-mm-dd hh:mm"),
            rows: 0,
            too_large: false,
        })
    }

    fn sheet(&mut self) -> Result<&mut Worksheet, XlsxError> {
        self.workbook.worksheet_from_index(0)
    }

    /// The finished file; the header row filterable over every row written.
    pub fn finish(mut self, columns: usize) -> Result<Vec<u8>, XlsxError> {
        let last_row = self.rows;
        let last_col = columns.saturating_sub(1) as u16;
        self.sheet()?.autofilter(0, 0, last_row, last_col)?;
        self.workbook.save_to_buffer()
    }

    /// Writes one row; a cell the library refuses (a date before 1900) is left empty, never
    /// the row.
    fn write(&mut self, cells: &[Cell]) -> Result<(), XlsxError> {
        let row = self.rows + 1;
        let (day, moment, values) = (self.day.clone(), self.moment.clone(), self.values);
        let sheet = self.sheet()?;
        for (col, cell) in cells.iter().enumerate() {
            if let Err(e) = write_cell(sheet, (row, col as u16), cell, (&day, &moment), values) {
                tracing::warn!(error = %e, "xlsx export: a cell is left empty");
            }
        }
        self.rows = row;
        Ok(())
    }
}

fn write_cell(
    sheet: &mut Worksheet,
    (row, col): (u32, u16),
    cell: &Cell,
    (day, moment): (&Format, &Format),
    values: Values,
) -> Result<(), XlsxError> {
    use chrono::{Datelike, Timelike};
    match cell {
        Cell::Empty => {}
        Cell::Text(text) => {
            sheet.write_string(row, col, neutralised(text))?;
        }
        Cell::Int(n) => {
            sheet.write_number(row, col, *n as f64)?;
        }
        Cell::Number(n) => {
            sheet.write_number(row, col, *n)?;
        }
        Cell::Bool(b) => {
            sheet.write_boolean(row, col, *b)?;
        }
        Cell::Day(d) => {
            let date = ExcelDateTime::from_ymd(year(d.year())?, d.month() as u8, d.day() as u8)?;
            sheet.write_datetime_with_format(row, col, date, day)?;
        }
        Cell::Moment(t) => {
            let at = ExcelDateTime::from_ymd(year(t.year())?, t.month() as u8, t.day() as u8)?
                .and_hms(t.hour() as u16, t.minute() as u8, t.second())?;
            sheet.write_datetime_with_format(row, col, at, moment)?;
        }
        Cell::List(_) => {
            sheet.write_string(row, col, cell.csv(values))?;
        }
    }
    Ok(())
}

fn year(y: i32) -> Result<u16, XlsxError> {
    u16::try_from(y).map_err(|_| XlsxError::DateTimeRangeError(format!("year {y}")))
}

impl Sheet for Book {
    fn row(&mut self, cells: Vec<Cell>) -> Result<(), Gone> {
        if self.rows >= ROWS_MAX {
            self.too_large = true;
            return Err(Gone);
        }
        if let Err(e) = self.write(&cells) {
            // The sheet itself is missing: a bug, and the file would not be whole.
            tracing::error!(error = %e, "xlsx export");
            return Err(Gone);
        }
        Ok(())
    }
}
