//! What officers and admins read: the access log, exports, indicators and stuck referrals.

use super::*;

/// Rows of the access log shown per page.
pub(super) const ACCESS_LOG_PAGE: usize = 100;

#[derive(Deserialize, Default)]
pub(super) struct AccessLogQuery {
    #[serde(default)]
    pub(super) user: String,
    /// A case id, or a child's name to search for.
    #[serde(default)]
    pub(super) case: String,
    /// One of `pages::ACTION_KINDS`.
    #[serde(default)]
    pub(super) action: String,
    /// Days (YYYY-MM-DD), inclusive, on the project's calendar.
    #[serde(default)]
    pub(super) from: String,
    #[serde(default)]
    pub(super) to: String,
    pub(super) before: Option<u64>,
}

/// Cases a name search of the access log looks at, at most: the closest matches.
const CASES_NAMED_MAX: u64 = 20;

/// The access log, for officers and admins: who viewed, searched, exported or changed what,
/// filtered by user, by case (its id, or a child's name), by kind of action and by dates,
/// newest first.
pub(super) async fn access_log(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<AccessLogQuery>,
) -> Result<Response, ConsoleError> {
    if !matches!(signed.user.role, Role::Officer | Role::Admin) {
        return Ok(forbidden(lang, &signed));
    }
    let day = |text: &str| chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok();
    let (from, to) = (day(&query.from), day(&query.to));
    let filter = pages::AccessLogFilter {
        user: bounded(&query.user),
        case: bounded(&query.case),
        action: pages::action_kind(&query.action).map_or(String::new(), |k| k.key.to_string()),
        from: from.map_or(String::new(), |d| d.to_string()),
        to: to.map_or(String::new(), |d| d.to_string()),
    };
    let zone = state.zone;
    let search = AuditQuery {
        actor: (!filter.user.is_empty()).then(|| filter.user.clone()),
        case_ids: Vec::new(),
        action_prefixes: pages::action_kind(&filter.action)
            .map(|k| k.prefixes.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default(),
        from: from.map(|d| zone.start_of(d)),
        until: to.and_then(|d| d.succ_opt()).map(|d| zone.start_of(d)),
        before: query.before,
        limit: ACCESS_LOG_PAGE,
    };
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let case = filter.case.clone();
    let (rows, named) = blocking(move || {
        let mut search = search;
        // A case: its id, or the cases whose child bears the name (an officer's scope).
        let lowered = case.to_ascii_lowercase();
        let mut named: Vec<(String, String)> = Vec::new();
        if crate::storage::valid_case_id(&lowered) {
            search.case_ids = vec![lowered];
        } else if !case.is_empty() {
            let list = store.list_cases(
                &reader,
                &CaseQuery {
                    name_terms: suivi_core::names::query_terms(&case),
                    limit: CASES_NAMED_MAX,
                    ..CaseQuery::default()
                },
            )?;
            named = list
                .cases
                .iter()
                .map(|c| {
                    let s = &c.summary;
                    (
                        s.case_id.clone(),
                        format!("{} {}", s.first_name, s.last_name),
                    )
                })
                .collect();
            search.case_ids = named.iter().map(|(id, _)| id.clone()).collect();
            if search.case_ids.is_empty() {
                // A name no case bears matches nothing, rather than every row.
                return Ok((Vec::new(), named));
            }
        }
        let rows = store.audit_search(&search)?;
        // The child of each row about one case, so the row reads as who, not which id.
        for row in rows.iter().filter(|r| !r.action.starts_with("device.")) {
            let ids: Vec<&str> = row
                .subject
                .split(' ')
                .filter(|w| crate::storage::valid_case_id(w))
                .collect();
            if let [id] = ids[..] {
                if !named.iter().any(|(n, _)| n == id) {
                    if let Some(c) = store.listed_case(id)? {
                        let s = c.summary;
                        named.push((id.to_string(), format!("{} {}", s.first_name, s.last_name)));
                    }
                }
            }
        }
        if !named.is_empty() {
            // Children named on this page: who read them here is in the log too.
            let ids: Vec<&str> = named.iter().map(|(id, _)| id.as_str()).collect();
            store.audit(
                now(),
                &reader.user_id,
                "console.access_log_viewed",
                &ids.join(" "),
            )?;
        }
        Ok((rows, named))
    })
    .await?;
    let older = (rows.len() == ACCESS_LOG_PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let here = format!("/console/access-log?{}", filter.query_string(query.before));
    let frame = signed.frame(lang, &here);
    let named: std::collections::HashMap<String, String> = named.into_iter().collect();
    Ok(html(
        StatusCode::OK,
        pages::access_log(&frame, &filter, &rows, &named, older),
    ))
}

/// How an export writes its values; the rest of its query string is the caseload's filters.
#[derive(Deserialize, Default)]
pub(super) struct ValuesQuery {
    /// `labels` or `codes`; each format has its default.
    #[serde(default)]
    pub(super) values: String,
}

/// The caseload's filters an export was asked with (`None`: the reader's whole scope).
fn export_filter(list: &CaseloadQuery, today: &str) -> Option<CaseQuery> {
    let query = case_query_of(&filters_of(list), today, 0, 0);
    (query != CaseQuery::default()).then_some(query)
}

/// Downloads what the reader reads (narrowed by the caseload's filters when given) as Excel,
/// CSV or JSON (`export`): CSV and JSON streamed, a workbook built and then sent. The export is
/// audited before its first byte leaves.
pub(super) async fn export_file(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Path(file): Path<String>,
    Query(list): Query<CaseloadQuery>,
    Query(values): Query<ValuesQuery>,
) -> Result<Response, ConsoleError> {
    let Some((kind, format)) = export::parse(&file) else {
        let here = format!("/console/export/{}", pages::urlencode(&file));
        return Ok(refused(
            lang,
            &signed,
            StatusCode::NOT_FOUND,
            t(lang, T::NotFound),
            &here,
        ));
    };
    let today = state.zone.day_of(chrono::Utc::now()).to_string();
    let export = export::Export {
        kind,
        format,
        reading: export::Reading {
            lang,
            values: export::Values::parse(&values.values).unwrap_or(format.default_values()),
            zone: state.zone,
        },
        filter: export_filter(&list, &today),
    };
    // What was exported, never the words searched for (names).
    let subject = if export.filter.is_some() {
        format!("{file} filtered")
    } else {
        file.clone()
    };
    let store = state.service.store().clone();
    let user_id = signed.user.user_id.clone();
    blocking(move || Ok(store.audit(now(), &user_id, "console.export", &subject)?)).await?;
    let day = today;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        export::file_name(kind, format, &day)
    );
    let mut response = if format == export::Format::Xlsx {
        let service = state.service.clone();
        let reader = signed.user.clone();
        let built = blocking(move || {
            let mut book = export::xlsx::Book::new(lang, export.reading.values, &export.headers())
                .map_err(|e| ConsoleError::Storage(format!("xlsx: {e}")))?;
            match export::write_all(&service, &reader, &export, &mut book) {
                Ok(()) => {}
                Err(export::ExportError::Gone) if book.too_large => return Ok(None),
                Err(e) => return Err(ConsoleError::Storage(e.to_string())),
            }
            let columns = export.headers().len();
            book.finish(columns)
                .map(Some)
                .map_err(|e| ConsoleError::Storage(format!("xlsx: {e}")))
        })
        .await?;
        let Some(bytes) = built else {
            // Told on the list the link was on, its filters kept.
            let signed = signed.alerted(t(lang, T::ExportTooLarge));
            let page = caseload(State(state), signed, LangOf(lang), Query(list));
            return refused_inline(StatusCode::PAYLOAD_TOO_LARGE, page).await;
        };
        axum::body::Body::from(bytes).into_response()
    } else {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let service = state.service.clone();
        let reader = signed.user.clone();
        tokio::task::spawn_blocking(move || {
            // A panic ends the download broken too, never as a file that looks whole.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut send = |chunk: Vec<u8>| tx.blocking_send(Ok(chunk)).is_ok();
                let mut writer = export::Writer::start(&export, &mut send);
                match export::write_all(&service, &reader, &export, &mut writer) {
                    Ok(()) => writer
                        .finish()
                        .map(|_| ())
                        .map_err(export::ExportError::from),
                    Err(e) => Err(e),
                }
            }))
            .unwrap_or_else(|_| Err(export::ExportError::Service("a panic".into())));
            match result {
                Ok(()) | Err(export::ExportError::Gone) => {}
                Err(e) => {
                    tracing::error!(error = %e, "export");
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                }
            }
        });
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[derive(Deserialize, Default)]
pub(super) struct IndicatorsQuery {
    #[serde(default)]
    pub(super) by: String,
    #[serde(default)]
    pub(super) from: String,
    #[serde(default)]
    pub(super) to: String,
}

impl IndicatorsQuery {
    /// A month bound as YYYY-MM, anything else ignored.
    pub(super) fn month(text: &str) -> String {
        let t = text.trim();
        let ok = t.len() == 7
            && t.as_bytes()[4] == b'-'
            && t.chars()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit());
        if ok {
            t.to_string()
        } else {
            String::new()
        }
    }
}

/// The reader's indicators, grouped as asked.
pub(super) struct IndicatorTable {
    pub(super) rows: Vec<indicators::Row>,
    pub(super) total: indicators::Row,
    pub(super) by: indicators::Dimension,
    pub(super) from: String,
    pub(super) to: String,
    /// (reason code, cases), most first.
    pub(super) closed_by_reason: Vec<(String, u64)>,
}

/// The reader's indicators, grouped as asked.
pub(super) async fn indicator_rows(
    state: &AppState,
    reader: &User,
    lang: Lang,
    query: &IndicatorsQuery,
) -> Result<IndicatorTable, ConsoleError> {
    let by = indicators::Dimension::parse(&query.by);
    let (from, to) = (
        IndicatorsQuery::month(&query.from),
        IndicatorsQuery::month(&query.to),
    );
    let store = state.service.store().clone();
    let reader = reader.clone();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (cells, spellings) = blocking(move || {
        Ok((
            store.indicator_cells(&reader, &today)?,
            store.place_spellings(&reader, &["province", "commune"])?,
        ))
    })
    .await?;
    let forms = state.service.forms();
    let identification = forms.latest(IDENTIFICATION).ok();
    let (rows, total) =
        indicators::rows(&cells, &spellings, by, (&from, &to), identification, lang);
    let closed_by_reason = indicators::closed_by_reason(&cells, (&from, &to));
    Ok(IndicatorTable {
        rows,
        total,
        by,
        from,
        to,
        closed_by_reason,
    })
}

/// Indicators per province, commune, work sector or month, with a chart, from projections.
pub(super) async fn indicators_page(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<IndicatorsQuery>,
) -> Result<Response, ConsoleError> {
    let table = indicator_rows(&state, &signed.user, lang, &query).await?;
    let here = format!(
        "/console/indicators?by={}&from={}&to={}",
        table.by.as_str(),
        table.from,
        table.to
    );
    let frame = signed.frame(lang, &here);
    Ok(html(StatusCode::OK, pages::indicators(&frame, &table)))
}

/// The same table as CSV.
pub(super) async fn indicators_csv(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<IndicatorsQuery>,
) -> Result<Response, ConsoleError> {
    let IndicatorTable {
        rows, total, by, ..
    } = indicator_rows(&state, &signed.user, lang, &query).await?;
    let body = indicators::csv(&rows, &total, by, lang);
    let day = chrono::Utc::now().format("%Y-%m-%d");
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"suivi-indicators-{}-{day}.csv\"",
        by.as_str()
    )) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Stuck referrals per page.
pub(super) const STUCK_PAGE: u64 = 50;

#[derive(Deserialize, Default)]
pub(super) struct ReferralsQuery {
    pub(super) days: Option<i64>,
    #[serde(default)]
    pub(super) agent: String,
    #[serde(default)]
    pub(super) service: String,
    #[serde(default)]
    pub(super) page: u64,
}

/// The project's referrals by service, provider and status with the time spent in each
/// status, and those stuck in one status for longer than `days` (30 unless given), a page at a
/// time, of one agent or service when asked, each with its child, agent, provider and urgency.
pub(super) async fn referrals_page(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<ReferralsQuery>,
) -> Result<Response, ConsoleError> {
    let days = query.days.unwrap_or(30).clamp(1, 3650);
    let filter = pages::StuckFilter {
        days,
        agent: bounded(&query.agent),
        service: bounded(&query.service),
        page: query.page.min(PAGES_MAX),
    };
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let now = now();
    let stuck_query = crate::storage::StuckQuery {
        before: now - days * 86_400,
        agent: Some(filter.agent.clone()).filter(|a| !a.is_empty()),
        service_type: Some(filter.service.clone()).filter(|s| !s.is_empty()),
        offset: filter.page * STUCK_PAGE,
        limit: STUCK_PAGE,
    };
    let (groups, stuck, children, agents) = blocking(move || {
        let groups = store.referral_groups(&reader, now)?;
        let stuck = store.stuck_referrals(&reader, &stuck_query)?;
        // The children named on the page: their summaries, read through the reader's scope
        // (the stuck list already is).
        let mut children = std::collections::HashMap::new();
        for r in &stuck.referrals {
            if let Some(case) = store.listed_case(&r.case_id)? {
                let s = case.summary;
                children.insert(
                    r.case_id.clone(),
                    format!("{} {}", s.first_name, s.last_name),
                );
            }
        }
        let agents = pages::Choices::of(&store.place_spellings(&reader, &["agent"])?).agents;
        let shown: Vec<&str> = stuck.referrals.iter().map(|r| r.case_id.as_str()).collect();
        store.audit(
            now,
            &reader.user_id,
            "console.referrals_viewed",
            &shown.join(" "),
        )?;
        Ok((groups, stuck, children, agents))
    })
    .await?;
    let here = format!("/console/referrals?{}", filter.query_string(filter.page));
    let frame = signed.frame(lang, &here);
    Ok(html(
        StatusCode::OK,
        pages::referrals(
            &frame,
            &state.service.forms(),
            &groups,
            &pages::Stuck {
                filter: &filter,
                list: &stuck,
                children: &children,
                agents: &agents,
                page_size: STUCK_PAGE,
            },
            now,
        ),
    ))
}
