//! What officers and admins read: the access log, exports, indicators and stuck referrals.

use super::*;

/// Rows of the access log shown per page.
pub(super) const ACCESS_LOG_PAGE: usize = 100;

#[derive(Deserialize, Default)]
pub(super) struct AccessLogQuery {
    #[serde(default)]
    pub(super) user: String,
    #[serde(default)]
    pub(super) case: String,
    pub(super) before: Option<u64>,
}

/// The access log, for officers and admins: who viewed, searched, exported or changed what,
/// filtered by user and by case, newest first.
pub(super) async fn access_log(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<AccessLogQuery>,
) -> Result<Response, ConsoleError> {
    if !matches!(signed.user.role, Role::Officer | Role::Admin) {
        return Ok(forbidden(lang, &signed));
    }
    let filter = pages::AccessLogFilter {
        user: bounded(&query.user),
        case: bounded(&query.case).to_ascii_lowercase(),
    };
    // A case filter that is not a case id matches nothing, rather than every row.
    let bad_case = !filter.case.is_empty() && !crate::storage::valid_case_id(&filter.case);
    let search = AuditQuery {
        actor: (!filter.user.is_empty()).then(|| filter.user.clone()),
        case_id: (!filter.case.is_empty()).then(|| filter.case.clone()),
        action_prefix: None,
        before: query.before,
        limit: ACCESS_LOG_PAGE,
    };
    let store = state.service.store().clone();
    let rows = if bad_case {
        Vec::new()
    } else {
        blocking(move || Ok(store.audit_search(&search)?)).await?
    };
    let older = (rows.len() == ACCESS_LOG_PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let here = format!("/console/access-log?{}", filter.query_string(query.before));
    let frame = signed.frame(lang, &here);
    Ok(html(
        StatusCode::OK,
        pages::access_log(&frame, &filter, &rows, older),
    ))
}

/// Downloads the reader's caseload as CSV or JSON (`export`), streamed. The export is audited
/// before its first byte leaves.
pub(super) async fn export_file(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Path(file): Path<String>,
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
    let store = state.service.store().clone();
    let user_id = signed.user.user_id.clone();
    blocking(move || Ok(store.audit(now(), &user_id, "console.export", &file)?)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let service = state.service.clone();
    let reader = signed.user.clone();
    tokio::task::spawn_blocking(move || {
        // A panic ends the download broken too, never as a file that looks whole.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut send = |chunk: Vec<u8>| tx.blocking_send(Ok(chunk)).is_ok();
            let mut writer = export::Writer::start(kind, format, lang, &mut send);
            match export::write_all(&service, &reader, kind, &mut writer) {
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
                // The download ends broken, never as a file that looks whole.
                tracing::error!(error = %e, "export");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
            }
        }
    });
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let disposition = format!(
        "attachment; filename=\"{}\"",
        export::file_name(kind, format, &day)
    );
    let mut response =
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .into_response();
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

/// The reader's indicators, grouped as asked: (rows, totals, by, from, to).
pub(super) async fn indicator_rows(
    state: &AppState,
    reader: &User,
    lang: Lang,
    query: &IndicatorsQuery,
) -> Result<
    (
        Vec<indicators::Row>,
        indicators::Row,
        indicators::Dimension,
        String,
        String,
    ),
    ConsoleError,
> {
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
            store.place_spellings(&reader)?,
        ))
    })
    .await?;
    let forms = state.service.forms();
    let identification = forms.latest(IDENTIFICATION).ok();
    let (rows, total) =
        indicators::rows(&cells, &spellings, by, (&from, &to), identification, lang);
    Ok((rows, total, by, from, to))
}

/// Indicators per province, commune, work sector or month, with a chart, from projections.
pub(super) async fn indicators_page(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<IndicatorsQuery>,
) -> Result<Response, ConsoleError> {
    let (rows, total, by, from, to) = indicator_rows(&state, &signed.user, lang, &query).await?;
    let here = format!("/console/indicators?by={}&from={from}&to={to}", by.as_str());
    let frame = signed.frame(lang, &here);
    Ok(html(
        StatusCode::OK,
        pages::indicators(&frame, by, (&from, &to), &rows, &total),
    ))
}

/// The same table as CSV.
pub(super) async fn indicators_csv(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<IndicatorsQuery>,
) -> Result<Response, ConsoleError> {
    let (rows, total, by, _, _) = indicator_rows(&state, &signed.user, lang, &query).await?;
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

/// Stuck referrals shown at most.
pub(super) const STUCK_SHOWN: usize = 200;

#[derive(Deserialize, Default)]
pub(super) struct ReferralsQuery {
    pub(super) days: Option<i64>,
}

/// The project's referrals by service, provider and status with the time spent in each
/// status, and those stuck in one status for longer than `days` (30 unless given).
pub(super) async fn referrals_page(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<ReferralsQuery>,
) -> Result<Response, ConsoleError> {
    let days = query.days.unwrap_or(30).clamp(1, 3650);
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let now = now();
    let (groups, stuck) = blocking(move || {
        let groups = store.referral_groups(&reader, now)?;
        let stuck = store.stuck_referrals(&reader, now - days * 86_400, STUCK_SHOWN)?;
        let shown: Vec<&str> = stuck.iter().map(|r| r.case_id.as_str()).collect();
        store.audit(
            now,
            &reader.user_id,
            "console.referrals_viewed",
            &shown.join(" "),
        )?;
        Ok((groups, stuck))
    })
    .await?;
    let frame = signed.frame(lang, "/console/referrals");
    Ok(html(
        StatusCode::OK,
        pages::referrals(&frame, &state.service.forms(), &groups, &stuck, days, now),
    ))
}
