//! The caseload and a case's page, and what a supervisor does there: settle a conflict, add
//! a note, reassign.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct CaseloadQuery {
    #[serde(default)]
    pub(super) q: String,
    #[serde(default)]
    pub(super) village: String,
    #[serde(default)]
    pub(super) agent: String,
    #[serde(default)]
    pub(super) risk: String,
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) overdue: String,
    #[serde(default)]
    pub(super) conflicts: String,
    #[serde(default)]
    pub(super) sort: String,
    #[serde(default)]
    pub(super) page: u64,
    /// How many cases the last bulk reassignment moved.
    #[serde(default)]
    pub(super) reassigned: Option<u64>,
}

pub(super) fn bounded(text: &str) -> String {
    text.trim().chars().take(FILTER_CHARS_MAX).collect()
}

pub(super) fn filters_of(query: &CaseloadQuery) -> Filters {
    Filters {
        q: bounded(&query.q),
        village: bounded(&query.village),
        agent: bounded(&query.agent),
        risk: bounded(&query.risk),
        status: bounded(&query.status),
        overdue: !query.overdue.is_empty(),
        conflicts: !query.conflicts.is_empty(),
        sort: crate::storage::CaseSort::parse(&query.sort),
        page: query.page.min(PAGES_MAX),
    }
}

pub(super) fn case_query_of(filters: &Filters, today: &str, offset: u64, limit: u64) -> CaseQuery {
    CaseQuery {
        name_terms: suivi_core::names::query_terms(&filters.q),
        village_key: Some(crate::summary::place_key(&filters.village)).filter(|v| !v.is_empty()),
        agent: Some(filters.agent.clone()).filter(|v| !v.is_empty()),
        risk_level: Some(filters.risk.clone()).filter(|v| !v.is_empty()),
        referral_status: Some(filters.status.clone())
            .filter(|v| pages::STATUSES.contains(&v.as_str())),
        due_before: filters.overdue.then(|| today.to_string()),
        conflicts_only: filters.conflicts,
        sort: filters.sort,
        offset,
        limit,
    }
}

/// The agents a reader may reassign cases to: a supervisor's team's agents; nobody for others
/// (admins reassign with `suivi-server case reassign`).
pub(super) fn reassign_choices(
    store: &dyn crate::storage::ServerStore,
    reader: &User,
) -> Result<Vec<String>, ConsoleError> {
    if reader.role != Role::Supervisor {
        return Ok(Vec::new());
    }
    Ok(store
        .team_members(&reader.team)?
        .into_iter()
        .filter(|u| u.role == Role::Agent)
        .map(|u| u.user_id)
        .collect())
}

pub(super) async fn caseload(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<CaseloadQuery>,
) -> Result<Response, ConsoleError> {
    let filters = filters_of(&query);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let case_query = case_query_of(&filters, &today, filters.page * PAGE_SIZE, PAGE_SIZE);
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let searched = !filters.q.is_empty();
    let (list, agents, choices) = blocking(move || {
        let list = store.list_cases(&reader, &case_query)?;
        // The agents and villages of the reader's own cases, to choose from.
        let choices = store.place_spellings(&reader, &["agent", "village"])?;
        // Names are on the page: the access log says who saw which cases (ids, never the
        // words searched for, which are names).
        let shown: Vec<&str> = list
            .cases
            .iter()
            .map(|c| c.summary.case_id.as_str())
            .collect();
        let action = if searched {
            "console.search"
        } else {
            "console.caseload_viewed"
        };
        store.audit(now(), &reader.user_id, action, &shown.join(" "))?;
        Ok((list, reassign_choices(store.as_ref(), &reader)?, choices))
    })
    .await?;
    let here = format!("/console/cases?{}", filters.query_string(filters.page));
    let frame = signed.frame(lang, &here);
    let forms = state.service.forms();
    let forms = &*forms;
    let Ok(identification) = forms.latest(IDENTIFICATION) else {
        return Err(ConsoleError::Storage("no identification form".into()));
    };
    Ok(html(
        StatusCode::OK,
        pages::caseload(
            &frame,
            &pages::Caseload {
                filters: &filters,
                list: &list,
                page_size: PAGE_SIZE,
                today: &today,
                identification,
                agents: &agents,
                choices: &pages::Choices::of(&choices),
                notice: query
                    .reassigned
                    .map(|n| format!("{n} {}", t(lang, T::Reassigned))),
            },
        ),
    ))
}

#[derive(Deserialize, Default)]
pub(super) struct CasePageQuery {
    #[serde(default)]
    pub(super) settled: String,
    #[serde(default)]
    pub(super) merged: String,
    #[serde(default)]
    pub(super) noted: String,
    #[serde(default)]
    pub(super) unmerged: String,
    #[serde(default)]
    pub(super) decided: String,
}

/// A case merged into the one shown, read only if the reader may read it. A merged case that
/// does not load is shown as out of reach rather than failing the survivor's page.
pub(super) fn merged_view(
    service: &crate::service::SyncService,
    reader: &User,
    case_id: String,
) -> Result<pages::MergedView, ConsoleError> {
    let mut view = pages::MergedView {
        case_id,
        readable: false,
        referrals: Vec::new(),
        followups: Vec::new(),
        edits_after_merge: Vec::new(),
        origins: Vec::new(),
    };
    let store = service.store();
    let access = store.case_access(std::slice::from_ref(&view.case_id))?;
    let readable = access
        .get(&view.case_id)
        .is_some_and(|a| policy::may_read(&reader.subject(), &a.ownership()));
    if !readable {
        return Ok(view);
    }
    let Some(mut doc) = service.case_document(&view.case_id)? else {
        return Ok(view);
    };
    let forms = service.forms();
    let forms = &*forms;
    let read = (|| -> suivi_core::Result<_> {
        Ok((
            doc.referrals(forms)?,
            doc.followups(forms)?,
            doc.edits_after_merge()?,
        ))
    })();
    if let Ok((referrals, followups, edits)) = read {
        view.origins = store.change_origins(&view.case_id)?;
        view.readable = true;
        view.referrals = referrals;
        view.followups = followups;
        view.edits_after_merge = edits;
    }
    Ok(view)
}

pub(super) async fn case_page(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Path(case_id): Path<String>,
    Query(query): Query<CasePageQuery>,
) -> Result<Response, ConsoleError> {
    let here = format!("/console/cases/{}", pages::urlencode(&case_id));
    let frame = signed.frame(lang, &here);
    let not_found = || {
        refused(
            lang,
            &signed,
            StatusCode::NOT_FOUND,
            t(lang, T::NotFound),
            &here,
        )
    };
    if !crate::storage::valid_case_id(&case_id) {
        return Ok(not_found());
    }
    let service = state.service.clone();
    let reader = signed.user.clone();
    let checkpoints = state.checkpoints.clone();
    let loaded = blocking(move || {
        let store = service.store();
        let access = store.case_access(std::slice::from_ref(&case_id))?;
        let Some(access) = access.get(&case_id) else {
            return Ok(None);
        };
        if !policy::may_read(&reader.subject(), &access.ownership()) {
            return Ok(None);
        }
        let Some(listed) = store.listed_case(&case_id)? else {
            return Ok(None);
        };
        // A record may name a version published moments ago (by another instance).
        service.refresh_forms();
        let doc = service.case_document(&case_id)?;
        let origins = store.change_origins(&case_id)?;
        let agents = reassign_choices(store.as_ref(), &reader)?;
        let merged_ids = doc
            .as_ref()
            .and_then(|d| d.merged_cases().ok())
            .unwrap_or_default();
        let mut merged = Vec::with_capacity(merged_ids.len());
        for id in merged_ids {
            let view = merged_view(&service, &reader, id)?;
            if view.readable {
                // Shown on this page: a view of that child's record too.
                store.audit(now(), &reader.user_id, "console.case_viewed", &view.case_id)?;
            }
            merged.push(view);
        }
        let evidence = match &checkpoints {
            Some(c) => Some(
                crate::evidence::verify_case(store.as_ref(), c, &case_id)
                    .map_err(|e| ConsoleError::Storage(e.to_string()))?,
            ),
            None => None,
        };
        // The phones the page names, by the name each gave at enrollment.
        let mut phones = std::collections::HashMap::new();
        for origin in origins.iter().chain(merged.iter().flat_map(|m| &m.origins)) {
            if !phones.contains_key(&origin.device_id) {
                if let Some(device) = store.device(&origin.device_id)? {
                    phones.insert(origin.device_id.clone(), device.name);
                }
            }
        }
        store.audit(now(), &reader.user_id, "console.case_viewed", &case_id)?;
        let settings = service.outcome_settings();
        Ok(Some((
            listed, doc, origins, agents, merged, evidence, phones, settings,
        )))
    })
    .await?;
    let Some((listed, doc, origins, agents, merged, evidence, phones, settings)) = loaded else {
        return Ok(not_found());
    };
    let Some(mut doc) = doc else {
        return Ok(not_found());
    };
    let forms = state.service.forms();
    let forms = &*forms;
    let read = (|| -> suivi_core::Result<_> {
        let version = doc.identification_form_version()?;
        let ident_form = forms.get(IDENTIFICATION, version)?;
        Ok((
            ident_form,
            (
                doc.identification(forms)?,
                doc.former_identification_fields(forms)?,
            ),
            doc.referrals(forms)?,
            doc.followups(forms)?,
            doc.audit_notes()?,
            doc.conflicts_with_sources(forms)?,
            doc.merged_into()?,
        ))
    })();
    let Ok((
        ident_form,
        (identification, former_fields),
        referrals,
        followups,
        notes,
        conflicts,
        merged_into,
    )) = read
    else {
        return Err(ConsoleError::Storage("a stored case does not read".into()));
    };
    let history = doc
        .history()
        .map_err(|e| ConsoleError::Storage(e.to_string()))?;
    // The other records the history names (a merge's), by their child where the reader may.
    let named = suivi_core::case_doc::cases_named(&history);
    let case_names = if named.is_empty() {
        Default::default()
    } else {
        let store = state.service.store().clone();
        let reader = signed.user.clone();
        blocking(move || {
            let access = store.case_access(&named)?;
            let mut names = suivi_core::case_doc::CaseNames::new();
            for id in named {
                let readable = access
                    .get(&id)
                    .is_some_and(|a| policy::may_read(&reader.subject(), &a.ownership()));
                if let (true, Some(listed)) = (readable, store.listed_case(&id)?) {
                    let s = &listed.summary;
                    names.insert(id, format!("{} {}", s.first_name, s.last_name));
                }
            }
            Ok(names)
        })
        .await?
    };
    // A merge a supervisor may still undo: offered on the merged-away record.
    let undo_until = merged_into
        .is_some()
        .then(|| doc.merge_change())
        .flatten()
        .map(|(_, at)| at.timestamp() + suivi_core::case_doc::MERGE_UNDO_DAYS * 86_400)
        .filter(|until| {
            *until > now() && matches!(signed.user.role, Role::Supervisor | Role::Admin)
        });
    // The outcome as the server counts it: every visit it holds is verified.
    let outcome = suivi_core::outcome::derive(
        &suivi_core::outcome::facts_of(
            &identification,
            &referrals,
            &followups,
            &conflicts,
            &|_| false,
        ),
        &settings,
    );
    let aged_out = suivi_core::outcome::age_limit_on(
        &identification,
        &doc.created_at().unwrap_or_default(),
        &settings,
    )
    .is_some_and(|on| on <= state.zone.day_of(chrono::Utc::now()));
    let closure = doc
        .closure()
        .map_err(|e| ConsoleError::Storage(e.to_string()))?;
    let page = pages::CasePage {
        closure: merged_into.is_none().then_some(pages::ClosureView {
            case_id: &listed.summary.case_id,
            outcome: &outcome,
            closure: &closure,
            decides: matches!(signed.user.role, Role::Supervisor | Role::Admin),
            aged_out,
        }),
        listed: &listed,
        identification: &identification,
        former_fields: &former_fields,
        identification_form: ident_form,
        forms,
        notice: if !query.settled.is_empty() {
            Some(t(lang, T::Settled))
        } else if !query.merged.is_empty() {
            Some(t(lang, T::Merged))
        } else if !query.noted.is_empty() {
            Some(t(lang, T::Noted))
        } else if !query.unmerged.is_empty() {
            Some(t(lang, T::Unmerged))
        } else if !query.decided.is_empty() {
            Some(t(lang, T::ClosureDecided))
        } else {
            None
        },
        merged_into: merged_into.as_deref(),
        undo_until,
        merged: &merged,
        agents: &agents,
        referrals: &referrals,
        followups: &followups,
        notes: &notes,
        conflicts: &conflicts,
        history: &history,
        origins: &origins,
        phones: &phones,
        case_names: &case_names,
        evidence: evidence.as_ref(),
    };
    Ok(html(StatusCode::OK, pages::case_page(&frame, &page)))
}

#[derive(Deserialize)]
pub(super) struct ResolveForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) path: String,
    #[serde(default)]
    pub(super) choice: String,
    #[serde(default)]
    pub(super) other: String,
}

/// A console change's outcome as a page answers it: done, refused by the checks (422), out of
/// the reader's scope (404), or an error.
pub(super) fn change_outcome(
    result: Result<(), crate::service::ServiceError>,
    case: &str,
    what: &str,
) -> Result<Result<(), StatusCode>, ConsoleError> {
    match result {
        Ok(()) => Ok(Ok(())),
        Err(crate::service::ServiceError::Forbidden(_)) => Ok(Err(StatusCode::NOT_FOUND)),
        Err(crate::service::ServiceError::BadRequest(why)) => {
            tracing::info!(case = %case, why = %why, "console {what} refused");
            Ok(Err(StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(e) => Err(ConsoleError::from(e)),
    }
}

/// Settles a conflict from the case page: the value kept (by its index among the concurrent
/// ones) or, for an identification field, another one typed in. Written as a console change.
pub(super) async fn resolve(
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    CheckedForm { signed, lang, form }: CheckedForm<ResolveForm>,
) -> Result<Response, ConsoleError> {
    let service = state.service.clone();
    let user = signed.user.clone();
    let target = case_id.clone();
    let outcome = blocking(move || {
        let path = form.path;
        let result = service.console_change(&user, &target, now(), |doc, forms, ctx| {
            let value = if form.choice == "other" {
                let field = path
                    .strip_prefix("identification.")
                    .ok_or_else(|| suivi_core::Error::InvalidInput("another value".into()))?;
                let version = doc.identification_form_version()?;
                forms
                    .get(IDENTIFICATION, version)?
                    .parse_input(field, &form.other)?
            } else {
                let index: usize = form
                    .choice
                    .parse()
                    .map_err(|_| suivi_core::Error::InvalidInput("choice".into()))?;
                doc.conflicts(forms)?
                    .into_iter()
                    .find(|c| c.path == path)
                    .and_then(|c| c.values.get(index).cloned())
                    .ok_or_else(|| suivi_core::Error::NotFound {
                        kind: "conflict",
                        id: path.clone(),
                    })?
            };
            doc.resolve_conflict(forms, &path, &value, ctx)
        });
        change_outcome(result, &target, "resolution")
    })
    .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/console/cases/{case_id}?settled=1")).into_response()),
        Err(status) => case_refused(state, signed, lang, case_id, status, T::NotSettled).await,
    }
}

/// A refused change to a case, told on the case page it came from; one out of the reader's
/// scope is "not found", so an id reveals nothing.
pub(super) async fn case_refused(
    state: AppState,
    signed: Signed,
    lang: Lang,
    case_id: String,
    status: StatusCode,
    why: T,
) -> Result<Response, ConsoleError> {
    if status == StatusCode::NOT_FOUND {
        let back = format!("/console/cases/{}", pages::urlencode(&case_id));
        return Ok(refused(lang, &signed, status, t(lang, T::NotFound), &back));
    }
    let signed = signed.alerted(t(lang, why));
    let page = case_page(
        State(state),
        signed,
        LangOf(lang),
        Path(case_id),
        Query(CasePageQuery::default()),
    );
    refused_inline(status, page).await
}

/// The largest list a bulk reassignment moves at once.
pub const REASSIGN_CASES_MAX: u64 = 10_000;

#[derive(Deserialize)]
pub(super) struct ReassignListForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) to: String,
    /// `yes` once the reader has read how many cases move, and where.
    #[serde(default)]
    pub(super) confirmed: String,
    #[serde(flatten)]
    pub(super) filters: CaseloadQuery,
}

/// Reassigns every case the list's filters select (up to `REASSIGN_CASES_MAX`) to one agent.
pub(super) async fn reassign_list(
    State(state): State<AppState>,
    CheckedForm { signed, lang, form }: CheckedForm<ReassignListForm>,
) -> Result<Response, ConsoleError> {
    let filters = Filters {
        page: 0,
        ..filters_of(&form.filters)
    };
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let query = case_query_of(&filters, &today, 0, REASSIGN_CASES_MAX);
    if form.confirmed != "yes" {
        // How many cases the list selects, and to whom they would go, before anything moves.
        let store = state.service.store().clone();
        let reader = signed.user.clone();
        let counted = blocking(move || Ok(store.list_cases(&reader, &query)?.total)).await?;
        let frame = signed.frame(lang, "/console/cases");
        let effect = vec![
            format!(
                "{} {} {} {}",
                counted.min(REASSIGN_CASES_MAX),
                t(lang, T::Cases),
                suivi_core::words::arrow(lang),
                form.to
            ),
            t(lang, T::ReassignEffect).to_string(),
            t(lang, T::Audited).to_string(),
        ];
        let mut fields = filters.fields();
        fields.push(("to", form.to.clone()));
        let back = format!("/console/cases?{}", filters.query_string(0));
        return Ok(html(
            StatusCode::OK,
            pages::confirm(
                &frame,
                &pages::Confirmation {
                    detail: None,
                    title: t(lang, T::ReassignQuestion),
                    effect: &effect,
                    action: "/console/reassign",
                    fields: &fields,
                    confirm: t(lang, T::ReassignConfirm),
                    back: &back,
                },
            ),
        ));
    }
    let service = state.service.clone();
    let reader = signed.user.clone();
    let to = form.to.clone();
    let moved = blocking(move || {
        let ids: Vec<String> = service
            .store()
            .list_cases(&reader, &query)?
            .cases
            .into_iter()
            .map(|c| c.summary.case_id)
            .collect();
        match service.reassign(&reader, &ids, &to, now()) {
            Ok(moved) => Ok(Ok(moved.len())),
            Err(
                crate::service::ServiceError::BadRequest(_)
                | crate::service::ServiceError::Forbidden(_),
            ) => Ok(Err(())),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let Ok(moved) = moved else {
        // Told on the list it came from, its filters kept.
        let signed = signed.alerted(t(lang, T::Forbidden));
        let list = caseload(State(state), signed, LangOf(lang), Query(form.filters));
        return refused_inline(StatusCode::FORBIDDEN, list).await;
    };
    let back = filters.query_string(0);
    let sep = if back.is_empty() { "" } else { "&" };
    Ok(Redirect::to(&format!("/console/cases?{back}{sep}reassigned={moved}")).into_response())
}

#[derive(Deserialize)]
pub(super) struct ReassignForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) to: String,
}

pub(super) async fn reassign_case(
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    CheckedForm { signed, lang, form }: CheckedForm<ReassignForm>,
) -> Result<Response, ConsoleError> {
    let service = state.service.clone();
    let reader = signed.user.clone();
    let target = case_id.clone();
    let moved = blocking(move || {
        match service.reassign(&reader, std::slice::from_ref(&target), &form.to, now()) {
            Ok(moved) => Ok(moved.len()),
            Err(
                crate::service::ServiceError::BadRequest(_)
                | crate::service::ServiceError::Forbidden(_),
            ) => Ok(0),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if moved == 0 {
        return Ok(refused(
            lang,
            &signed,
            StatusCode::NOT_FOUND,
            t(lang, T::NotFound),
            "/console/cases",
        ));
    }
    Ok(Redirect::to(&format!("/console/cases/{case_id}")).into_response())
}

/// Longest audit note the console takes, in characters.
pub(super) const NOTE_CHARS_MAX: usize = 2_000;

#[derive(Deserialize)]
pub(super) struct NoteForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) text: String,
}

/// An audit note, from the case page: a console change like any other, so the server checks it
/// as it checks a phone's (an officer's change may add notes and nothing else), and phones
/// receive it at their next sync.
pub(super) async fn add_note(
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    CheckedForm { signed, lang, form }: CheckedForm<NoteForm>,
) -> Result<Response, ConsoleError> {
    let text = form.text.trim().to_string();
    if text.is_empty() || text.chars().count() > NOTE_CHARS_MAX {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return case_refused(state, signed, lang, case_id, status, T::NoteRefused).await;
    }
    let service = state.service.clone();
    let user = signed.user.clone();
    let target = case_id.clone();
    let outcome = blocking(move || {
        let result = service.console_change(&user, &target, now(), |doc, _, ctx| {
            doc.add_audit_note(&text, ctx)
        });
        change_outcome(result.map(|_| ()), &target, "note")
    })
    .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/console/cases/{case_id}?noted=1")).into_response()),
        Err(status) => case_refused(state, signed, lang, case_id, status, T::NoteRefused).await,
    }
}

#[derive(Deserialize)]
pub(super) struct ClosureForm {
    #[serde(default)]
    pub(super) csrf: String,
    /// `approve`, `return` or `reopen`.
    #[serde(default)]
    pub(super) decision: String,
    #[serde(default)]
    pub(super) note: String,
    #[serde(default)]
    pub(super) confirmed: String,
}

/// A supervisor's decision on a proposed closure (approve, after a confirmation; return, with
/// a note), or a closed case reopened: a console change the server checks like a phone's (a
/// supervisor of another team is refused), which phones receive at their next sync.
pub(super) async fn decide_closure(
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    CheckedForm { signed, lang, form }: CheckedForm<ClosureForm>,
) -> Result<Response, ConsoleError> {
    let here = format!("/console/cases/{}", pages::urlencode(&case_id));
    let note = form.note.trim().to_string();
    let known = matches!(form.decision.as_str(), "approve" | "return" | "reopen");
    if !known || note.chars().count() > NOTE_CHARS_MAX {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return case_refused(state, signed, lang, case_id, status, T::ClosureRefused).await;
    }
    if !matches!(signed.user.role, Role::Supervisor | Role::Admin) {
        let status = StatusCode::FORBIDDEN;
        return case_refused(state, signed, lang, case_id, status, T::ClosureRefused).await;
    }
    if form.decision == "return" && note.is_empty() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return case_refused(state, signed, lang, case_id, status, T::ReturnNeedsNote).await;
    }
    if form.decision == "approve" && form.confirmed != "yes" {
        let frame = signed.frame(lang, &here);
        let effect = vec![
            t(lang, T::ClosureLeavesLists).to_string(),
            t(lang, T::ClosureStaysReadable).to_string(),
            t(lang, T::Audited).to_string(),
        ];
        let action = format!("{here}/closure");
        return Ok(html(
            StatusCode::OK,
            pages::confirm(
                &frame,
                &pages::Confirmation {
                    detail: None,
                    title: t(lang, T::ApproveClosureQuestion),
                    effect: &effect,
                    action: &action,
                    fields: &[("decision", "approve".to_string()), ("note", note)],
                    confirm: t(lang, T::ApproveClosure),
                    back: &here,
                },
            ),
        ));
    }
    let service = state.service.clone();
    let user = signed.user.clone();
    let target = case_id.clone();
    let decision = form.decision.clone();
    let outcome = blocking(move || {
        let note = Some(note.as_str()).filter(|n| !n.is_empty());
        let result = service.console_change(&user, &target, now(), |doc, _, ctx| {
            match decision.as_str() {
                "reopen" => doc.reopen(note, ctx),
                d => doc.decide_closure(d == "approve", note, ctx),
            }
        });
        change_outcome(result, &target, "closure decision")
    })
    .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("{here}?decided=1#closure")).into_response()),
        Err(status) => case_refused(state, signed, lang, case_id, status, T::ClosureRefused).await,
    }
}

csrf_forms!(
    ResolveForm,
    ReassignListForm,
    ReassignForm,
    NoteForm,
    ClosureForm
);
