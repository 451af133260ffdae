//! Writing a form back as a workbook.

use super::*;

/// One survey row and the choice rows its list needs, as text cells in export column order.
pub(super) struct WrittenField {
    pub(super) survey: [String; 9],
    pub(super) list: Option<(String, Vec<[String; 5]>)>,
}

pub(super) fn written_field(
    form: &FormDefinition,
    field: &Field,
) -> Result<WrittenField, Vec<String>> {
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

pub(super) const SURVEY_COLUMNS: [Column; 9] = [
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

pub(super) const CHOICE_COLUMNS: [Column; 5] = [
    Column::ListName,
    Column::Name,
    Column::Label(0),
    Column::Label(1),
    Column::Label(2),
];

/// Builds the workbook; `None` (with problems) when the definition cannot be written unchanged.
pub(super) fn write_workbook(form: &FormDefinition, problems: &mut Problems) -> Option<Vec<u8>> {
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

pub(super) fn write_sheet<'a>(
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
