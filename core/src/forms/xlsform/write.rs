//! Writing a form back as a workbook.

use super::*;

/// One survey row and the choice rows its list needs, as text cells in export column order.
pub(super) struct WrittenField {
    pub(super) survey: Vec<String>,
    pub(super) list: Option<(String, Vec<Vec<String>>)>,
}

/// The further languages a form's labels carry anywhere, in tag order: one column each.
fn further_languages(form: &FormDefinition) -> Vec<LangTag> {
    let labels = std::iter::once(&form.title).chain(form.fields.iter().flat_map(|field| {
        std::iter::once(&field.label).chain(field.choices.iter().map(|c| &c.label))
    }));
    let tags: BTreeSet<LangTag> = labels
        .flat_map(|label| label.more.keys())
        .filter_map(|tag| LangTag::parse(tag))
        .collect();
    tags.into_iter().collect()
}

/// A label's cells: French, English, Arabic, then each further language (empty where this label
/// lacks it, which reads back as lacking it).
fn label_cells(label: &Label, further: &[LangTag]) -> Vec<String> {
    [&label.fr, &label.en, &label.ar]
        .into_iter()
        .cloned()
        .chain(
            further
                .iter()
                .map(|tag| label.more.get(tag.as_str()).cloned().unwrap_or_default()),
        )
        .collect()
}

/// The label columns of a sheet: the app's three languages, then the further ones.
fn label_columns(make: fn(Lang) -> Column, further: &[LangTag]) -> Vec<Column> {
    [Lang::Fr, Lang::En, Lang::Ar]
        .into_iter()
        .chain(further.iter().map(|&tag| Lang::Other(tag)))
        .map(make)
        .collect()
}

pub(super) fn written_field(
    form: &FormDefinition,
    field: &Field,
    further: &[LangTag],
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
                    [field.id.clone(), c.id.clone()]
                        .into_iter()
                        .chain(label_cells(&c.label, further))
                        .collect()
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
        survey: [type_text, field.id.clone()]
            .into_iter()
            .chain(label_cells(&field.label, further))
            .chain([
                if field.required { "yes" } else { "" }.to_string(),
                constraint.unwrap_or_default(),
                relevant.unwrap_or_default(),
                appearance.to_string(),
            ])
            .collect(),
        list,
    })
}

/// The survey sheet's columns, in the order a workbook is written.
pub(super) fn survey_columns(further: &[LangTag]) -> Vec<Column> {
    [Column::Type, Column::Name]
        .into_iter()
        .chain(label_columns(Column::Label, further))
        .chain([
            Column::Required,
            Column::Constraint,
            Column::Relevant,
            Column::Appearance,
        ])
        .collect()
}

/// The choices sheet's columns, in the order a workbook is written.
pub(super) fn choice_columns(further: &[LangTag]) -> Vec<Column> {
    [Column::ListName, Column::Name]
        .into_iter()
        .chain(label_columns(Column::Label, further))
        .collect()
}

/// Builds the workbook; `None` (with problems) when the definition cannot be written unchanged.
pub(super) fn write_workbook(form: &FormDefinition, problems: &mut Problems) -> Option<Vec<u8>> {
    let further = further_languages(form);
    let mut survey_rows: Vec<Vec<String>> = Vec::new();
    let mut choice_rows: Vec<Vec<String>> = Vec::new();
    let mut yes_no_written = false;
    for field in &form.fields {
        match written_field(form, field, &further) {
            Ok(written) => {
                if field.field_type == FieldType::Boolean && !yes_no_written {
                    for (id, labels) in YES_NO_LABELS {
                        let label = Label::new(labels[0], labels[1], labels[2]);
                        choice_rows.push(
                            [YES_NO_LIST.to_string(), id.to_string()]
                                .into_iter()
                                .chain(label_cells(&label, &further))
                                .collect(),
                        );
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
    let settings_row: Vec<String> = [form.id.clone(), form.version.to_string()]
        .into_iter()
        .chain(label_cells(&form.title, &further))
        .collect();
    let settings_headers: Vec<String> = [Column::FormId, Column::Version]
        .into_iter()
        .chain(label_columns(Column::Title, &further))
        .map(Column::header)
        .collect();
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
            &headers(&survey_columns(&further)),
            survey_rows.iter().map(|r| r.as_slice()),
            &bold,
        )?;
        write_sheet(
            workbook.add_worksheet(),
            CHOICES,
            &headers(&choice_columns(&further)),
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
