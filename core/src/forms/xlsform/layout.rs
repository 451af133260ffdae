//! A sheet's header read: which column holds what, in which language.

use super::*;

/// A column Suivi reads; `Label` and `Title` name their language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Column {
    Type,
    Name,
    ListName,
    Label(Lang),
    Required,
    Constraint,
    Relevant,
    Appearance,
    FormId,
    Version,
    Title(Lang),
    DefaultLanguage,
}

impl Column {
    pub(super) fn header(self) -> String {
        match self {
            Column::Type => "type".into(),
            Column::Name => "name".into(),
            Column::ListName => "list_name".into(),
            Column::Label(lang) => format!("label::{}", lang_header(lang)),
            Column::Required => "required".into(),
            Column::Constraint => "constraint".into(),
            Column::Relevant => "relevant".into(),
            Column::Appearance => "appearance".into(),
            Column::FormId => "form_id".into(),
            Column::Version => "version".into(),
            Column::Title(lang) => format!("form_title::{}", lang_header(lang)),
            Column::DefaultLanguage => "default_language".into(),
        }
    }
}

/// How a column names a language: the app's three by their English names, as ODK writes them;
/// a further one by its tag (`label::bm`).
pub(super) fn lang_header(lang: Lang) -> String {
    match lang {
        Lang::Fr => LANGS[0].0.to_string(),
        Lang::En => LANGS[1].0.to_string(),
        Lang::Ar => LANGS[2].0.to_string(),
        Lang::Other(tag) => tag.as_str().to_string(),
    }
}

/// The language a header names (`French`, `fr`, `French (fr)`, `Bambara (bm)`, `bm`): one of
/// the app's three, or a further language written by its two- or three-letter tag.
pub(super) fn parse_lang(text: &str) -> Option<Lang> {
    let text = text.trim().to_lowercase();
    // `Name (code)`: the code decides, as in ODK.
    let key = match (text.rfind('('), text.strip_suffix(')')) {
        (Some(open), Some(inner)) => inner[open + 1..].trim().to_string(),
        _ => text,
    };
    let primary = key.split(['-', '_']).next().unwrap_or_default();
    match primary {
        "french" | "français" | "francais" | "fr" => Some(Lang::Fr),
        "english" | "en" => Some(Lang::En),
        "arabic" | "ar" | "العربية" => Some(Lang::Ar),
        other => LangTag::parse(other).map(Lang::Other),
    }
}

/// The language a `label::…` or `form_title::…` header names when it is not one Suivi reads.
fn unknown_language(header: &str) -> Option<&str> {
    let (prefix, language) = header.split_once("::")?;
    let prefix = prefix.trim().to_lowercase();
    (prefix == "label" || prefix == "form_title").then_some(language.trim())
}

pub(super) fn classify(sheet: &str, header: &str) -> Option<Column> {
    let header = header.trim().to_lowercase();
    let labelled = |prefix: &str| -> Option<Option<Lang>> {
        if header == prefix {
            return Some(Some(Lang::Fr));
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
pub(super) struct Layout {
    pub(super) columns: BTreeMap<u32, Result<Column, String>>,
    pub(super) present: BTreeSet<Column>,
    /// KoboToolbox's own bookkeeping columns (`$kuid`, `$autoname`...): ids its editor gives
    /// rows, nothing a form asks. A form exported from Kobo imports as it is.
    pub(super) bookkeeping: BTreeSet<u32>,
}

pub(super) fn layout(sheet: &Sheet, problems: &mut Problems) -> Layout {
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
    pub(super) fn read(
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
                    match unknown_language(header) {
                        Some(language) => format!(
                            "column `{header}`: language {} is not known by name; write its \
                             two- or three-letter code, as in `label::Bambara (bm)`",
                            quoted(language)
                        ),
                        None => format!(
                            "column `{header}` is not supported by Suivi forms; clear this cell (it holds {})",
                            quoted(text)
                        ),
                    },
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

    /// The further languages this sheet has a column of `make`'s kind for (`label::bm`).
    pub(super) fn further_languages(
        &self,
        make: fn(Lang) -> Column,
    ) -> impl Iterator<Item = LangTag> + '_ {
        self.present.iter().filter_map(move |&column| match column {
            Column::Label(Lang::Other(tag)) | Column::Title(Lang::Other(tag))
                if column == make(Lang::Other(tag)) =>
            {
                Some(tag)
            }
            _ => None,
        })
    }

    /// Reports required columns missing from row 1, once each.
    pub(super) fn require(&self, sheet: &str, columns: &[Column], problems: &mut Problems) {
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

/// A row's label: the app's three languages, a problem naming those left empty (unless their
/// whole column is missing, which is reported once for the sheet); and the further languages
/// the sheet has columns for, where the row fills them (an empty one shows the French).
pub(super) fn labels(
    values: &BTreeMap<Column, String>,
    layout: &Layout,
    make: fn(Lang) -> Column,
    what: &str,
    sheet: &str,
    row: u32,
    problems: &mut Problems,
) -> Option<Label> {
    let app = [Lang::Fr, Lang::En, Lang::Ar];
    let texts: Vec<Option<&String>> = app.iter().map(|&lang| values.get(&make(lang))).collect();
    let missing: Vec<String> = app
        .iter()
        .zip(&texts)
        .filter(|(&lang, text)| text.is_none() && layout.present.contains(&make(lang)))
        .map(|(&lang, _)| lang_header(lang))
        .collect();
    if !missing.is_empty() {
        problems.at(
            sheet,
            Some(row),
            format!("{what} is empty in {}", missing.join(", ")),
        );
    }
    let more = layout
        .further_languages(make)
        .filter_map(|tag| {
            let text = values.get(&make(Lang::Other(tag)))?;
            Some((tag.as_str().to_string(), text.clone()))
        })
        .collect();
    match (texts[0], texts[1], texts[2]) {
        (Some(fr), Some(en), Some(ar)) => Some(Label {
            fr: fr.clone(),
            en: en.clone(),
            ar: ar.clone(),
            more,
        }),
        _ => None,
    }
}

/// Field, list and form ids: what ODK accepts as an XML name, in ASCII, so ids read the same in
/// `${…}` references, JSON and URLs.
pub(super) fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Choice ids: anything without the separators a multiple answer is typed with.
pub(super) fn is_choice_name(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == ';')
}
