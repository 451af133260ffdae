//! Sheets read as a form: settings, survey rows, choice lists, then the fields.

use super::*;

/// A survey row once its own cells are understood; constraints and relevance wait until every
/// field's type is known.
pub(super) struct SurveyRow {
    pub(super) number: u32,
    pub(super) id: String,
    pub(super) kind: RowKind,
    pub(super) label: Option<Label>,
    pub(super) required: bool,
    pub(super) appearance: Option<String>,
    pub(super) constraint: Option<String>,
    pub(super) relevant: Option<String>,
}

pub(super) enum RowKind {
    Plain(FieldType),
    Select { multiple: bool, list: String },
}

pub(super) struct ChoiceList {
    pub(super) first_row: u32,
    pub(super) choices: Vec<Choice>,
    /// A choice row was unreadable: the list is incomplete, so fields using it are not built.
    pub(super) broken: bool,
}

pub(super) fn interpret(sheets: &Sheets, problems: &mut Problems) -> Option<FormDefinition> {
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

pub(super) fn interpret_settings(
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
            Column::Title(Lang::Fr),
            Column::Title(Lang::En),
            Column::Title(Lang::Ar),
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
        if parse_lang(language) != Some(Lang::Fr) {
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

pub(super) fn interpret_survey(sheet: &Sheet, problems: &mut Problems) -> Vec<SurveyRow> {
    let layout = layout(sheet, problems);
    layout.require(
        SURVEY,
        &[
            Column::Type,
            Column::Name,
            Column::Label(Lang::Fr),
            Column::Label(Lang::En),
            Column::Label(Lang::Ar),
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

pub(super) fn parse_type(text: &str, row: u32, problems: &mut Problems) -> Option<RowKind> {
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

pub(super) fn interpret_choices(
    sheet: &Sheet,
    problems: &mut Problems,
) -> BTreeMap<String, ChoiceList> {
    let layout = layout(sheet, problems);
    layout.require(
        CHOICES,
        &[
            Column::ListName,
            Column::Name,
            Column::Label(Lang::Fr),
            Column::Label(Lang::En),
            Column::Label(Lang::Ar),
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
pub(super) fn is_yes_no(choices: &[Choice]) -> bool {
    let ids: BTreeSet<&str> = choices.iter().map(|c| c.id.as_str()).collect();
    choices.len() == 2 && ids == BTreeSet::from(["yes", "no"])
}

pub(super) fn build_fields(
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
pub(super) fn apply_appearance(
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
