//! The XPath that Suivi reads and writes: constraints and relevance, both ways.

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
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
pub(super) fn tokenize(text: &str) -> Option<Vec<Token>> {
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
pub(super) fn split_terms(tokens: &[Token]) -> (Vec<&[Token]>, Vec<String>) {
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
pub(super) fn integer_literal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

pub(super) fn decimal_literal(text: &str) -> Option<Json> {
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Json::Number)
}

pub(super) const CONSTRAINT_FORMS: &str =
    "Suivi reads `. >= N`, `. <= N`, `. >= date('YYYY-MM-DD')`, \
`. <= date('YYYY-MM-DD')`, `string-length(.) >= N`, `string-length(.) <= N` and \
`regex(., 'pattern')`, joined with `and`";

pub(super) fn parse_constraint(text: &str, field_type: FieldType) -> Result<Constraints, String> {
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
                        if super::super::validate::parse_date(day).is_none() {
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
pub(super) fn bound_side(op: &str, text: &str) -> Result<bool, String> {
    match op {
        ">=" => Ok(true),
        "<=" => Ok(false),
        _ => Err(format!(
            "constraint {}: only `>=` and `<=` are supported (Suivi bounds include their ends), not `{op}`",
            quoted(text)
        )),
    }
}

pub(super) fn set_bound(
    bounds: &mut Bounds,
    at_min: bool,
    value: Json,
    text: &str,
) -> Result<(), String> {
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

pub(super) fn type_name(field_type: FieldType) -> &'static str {
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

pub(super) const RELEVANT_FORMS: &str = "Suivi reads `${field} = 'value'`, `${field} = number`, \
`selected(${field}, 'value')`, or several of these on one field joined with `or`";

/// One term of a relevance: the field it reads, the literal, and whether it was `selected()`.
pub(super) struct RelevantTerm {
    pub(super) field: String,
    pub(super) literal: Token,
    pub(super) selected: bool,
}

pub(super) fn parse_relevant(text: &str, earlier: &[Field]) -> Result<Relevance, String> {
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
pub(super) fn relevant_value(
    text: &str,
    controller: &Field,
    term: &RelevantTerm,
) -> Result<Json, String> {
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

/// An XPath string literal: single quotes unless the text holds one.
pub(super) fn xpath_string(text: &str) -> Result<String, String> {
    match (text.contains('\''), text.contains('"')) {
        (false, _) => Ok(format!("'{text}'")),
        (true, false) => Ok(format!("\"{text}\"")),
        (true, true) => Err(format!(
            "{} holds both quote kinds, which an XLSForm expression cannot write",
            quoted(text)
        )),
    }
}

pub(super) fn constraint_text(field: &Field) -> Result<Option<String>, String> {
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

pub(super) fn relevant_text(
    form: &FormDefinition,
    field: &Field,
) -> Result<Option<String>, String> {
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
