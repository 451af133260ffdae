//! The team's agents and phones (the overview, sync health, revocation) and possible duplicates
//! (kept apart, merged).

use super::*;
use crate::console::overview::{agent_rows, SortBy, STUCK_DAYS};
use crate::storage::ListedCase;

/// The devices a reader sees on the agents page: a supervisor its team's, an officer or admin
/// every team's (by the same scope as cases).
pub(super) fn devices_in_scope(
    reader: &User,
    all: Vec<crate::storage::DeviceStatus>,
) -> Vec<crate::storage::DeviceStatus> {
    use suivi_core::policy::ReadScope;
    all.into_iter()
        .filter(|d| match ReadScope::of(reader.role) {
            ReadScope::All => true,
            ReadScope::Team => d.team == reader.team,
            ReadScope::Own => d.device.user_id == reader.user_id,
        })
        .collect()
}

/// Who may revoke a device from the console: an admin any, a supervisor its team's.
pub(super) fn may_revoke(reader: &User, team: &str) -> bool {
    match reader.role {
        Role::Admin => true,
        Role::Supervisor => reader.team == team,
        Role::Agent | Role::Officer => false,
    }
}

#[derive(Deserialize, Default)]
pub(super) struct AgentsQuery {
    #[serde(default)]
    pub(super) revoked: String,
    #[serde(default)]
    pub(super) sort: String,
}

pub(super) async fn agents_page(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<AgentsQuery>,
) -> Result<Response, ConsoleError> {
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let sort = SortBy::parse(&query.sort);
    let now = now();
    let today = state.zone.day_of(pages::utc(now)).to_string();
    let (rows, devices) = blocking(move || {
        let devices = devices_in_scope(&reader, store.device_statuses()?);
        // The reader's whole scope, a page at a time, read from the projections.
        let mut cases = Vec::new();
        loop {
            let after = cases
                .last()
                .map_or(String::new(), |c: &ListedCase| c.summary.case_id.clone());
            let page = store.scoped_cases(&reader, &after, 1000)?;
            if page.is_empty() {
                break;
            }
            cases.extend(page);
        }
        let stuck = store
            .stuck_referrals(
                &reader,
                &crate::storage::StuckQuery {
                    before: now - STUCK_DAYS * 86_400,
                    limit: u64::MAX,
                    ..Default::default()
                },
            )?
            .referrals;
        let rows = agent_rows(&cases, &stuck, &devices, &today, now, sort);
        Ok((rows, devices))
    })
    .await?;
    let frame = signed.frame(lang, "/console/agents");
    let revoker = matches!(signed.user.role, Role::Admin | Role::Supervisor);
    let notice = (!query.revoked.is_empty()).then(|| t(lang, T::RevokedNotice));
    Ok(html(
        StatusCode::OK,
        pages::agents(&frame, &rows, sort, &devices, revoker, now, notice),
    ))
}

/// Revokes a device of the reader's team: journalled first, as `device revoke` does; the phone
/// erases its cases at its next connection.
pub(super) async fn revoke(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    CheckedForm { signed, lang, form }: CheckedForm<ConfirmForm>,
) -> Result<Response, ConsoleError> {
    if !form.confirmed() {
        // What the revocation would do, said before anything is done.
        let store = state.service.store().clone();
        let reader = signed.user.clone();
        let id = device_id.clone();
        let status = blocking(move || revocable(store.as_ref(), &reader, &id)).await?;
        let Some(status) = status else {
            return refused_on(
                agents_page,
                state,
                signed,
                lang,
                StatusCode::NOT_FOUND,
                T::NoDevice,
            )
            .await;
        };
        let frame = signed.frame(lang, "/console/agents");
        let effect = pages::revoke_effect(&frame, &status, now());
        let title = format!(
            "{} {} ({})",
            t(lang, T::RevokeQuestion),
            status.device.name,
            status.device.user_id
        );
        let action = format!("/console/devices/{}/revoke", pages::urlencode(&device_id));
        return Ok(html(
            StatusCode::OK,
            pages::confirm(
                &frame,
                &pages::Confirmation {
                    detail: None,
                    title: &title,
                    effect: &effect,
                    action: &action,
                    fields: &[],
                    confirm: t(lang, T::RevokeConfirm),
                    back: "/console/agents",
                },
            ),
        ));
    }
    let store = state.service.store().clone();
    let journal = state.revocation_journal.clone();
    let reader = signed.user.clone();
    let revoked = blocking(move || {
        let Some(status) = revocable(store.as_ref(), &reader, &device_id)? else {
            return Ok(false);
        };
        let done = crate::admin::revoke(store.as_ref(), journal.as_deref(), &device_id)
            .map_err(ConsoleError::Storage)?;
        if done {
            store.audit(
                now(),
                &reader.user_id,
                "console.revoke",
                &status.device.device_id,
            )?;
        }
        Ok(true)
    })
    .await?;
    if !revoked {
        return refused_on(
            agents_page,
            state,
            signed,
            lang,
            StatusCode::NOT_FOUND,
            T::NoDevice,
        )
        .await;
    }
    Ok(Redirect::to("/console/agents?revoked=1").into_response())
}

/// A refusal told on the list page the action started from (`agents_page` for revocations,
/// `duplicates_page` for merges and "not the same child"), in its first view.
async fn refused_on<Q: Default, Page>(
    page: impl FnOnce(State<AppState>, Signed, LangOf, Query<Q>) -> Page,
    state: AppState,
    signed: Signed,
    lang: Lang,
    status: StatusCode,
    why: T,
) -> Result<Response, ConsoleError>
where
    Page: std::future::Future<Output = Result<Response, ConsoleError>>,
{
    let signed = signed.alerted(t(lang, why));
    let shown = page(State(state), signed, LangOf(lang), Query(Q::default()));
    refused_inline(status, shown).await
}

/// The device `device_id`, if `reader` may revoke it (else, as for one that does not exist,
/// nothing).
fn revocable(
    store: &dyn crate::storage::ServerStore,
    reader: &User,
    device_id: &str,
) -> Result<Option<crate::storage::DeviceStatus>, ConsoleError> {
    Ok(store
        .device_statuses()?
        .into_iter()
        .find(|d| d.device.device_id == device_id)
        .filter(|d| may_revoke(reader, &d.team)))
}

/// Pairs proposed on one page of duplicates.
pub const DUPLICATE_PAIRS_SHOWN: usize = 100;

#[derive(Deserialize, Default)]
pub(super) struct DuplicatesQuery {
    #[serde(default)]
    pub(super) marked: String,
}

pub(super) async fn duplicates_page(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<DuplicatesQuery>,
) -> Result<Response, ConsoleError> {
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let pairs = blocking(move || {
        let mut out = Vec::new();
        for (a, b) in store.duplicate_candidates(&reader, DUPLICATE_PAIRS_SHOWN)? {
            if let (Some(a), Some(b)) = (store.listed_case(&a)?, store.listed_case(&b)?) {
                out.push((a, b));
            }
        }
        let shown: Vec<&str> = out
            .iter()
            .flat_map(|(a, b)| [a.summary.case_id.as_str(), b.summary.case_id.as_str()])
            .collect();
        store.audit(
            now(),
            &reader.user_id,
            "console.duplicates_viewed",
            &shown.join(" "),
        )?;
        Ok(out)
    })
    .await?;
    let frame = signed.frame(lang, "/console/duplicates");
    let notice = (!query.marked.is_empty()).then(|| t(lang, T::MarkedDistinct));
    Ok(html(
        StatusCode::OK,
        pages::duplicates(
            &frame,
            &pairs,
            // An officer audits duplicates; only a supervisor or an admin merges or keeps apart.
            matches!(signed.user.role, Role::Supervisor | Role::Admin),
            notice,
        ),
    ))
}

#[derive(Deserialize)]
pub(super) struct DistinctForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) a: String,
    #[serde(default)]
    pub(super) b: String,
}

/// "Not the same child": only for two cases the reader may write.
pub(super) async fn mark_distinct(
    State(state): State<AppState>,
    CheckedForm { signed, lang, form }: CheckedForm<DistinctForm>,
) -> Result<Response, ConsoleError> {
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let marked = blocking(move || {
        let ids = [form.a.clone(), form.b.clone()];
        if form.a == form.b || !ids.iter().all(|id| crate::storage::valid_case_id(id)) {
            return Ok(false);
        }
        let access = store.case_access(&ids)?;
        let writable = ids.iter().all(|id| {
            access.get(id).is_some_and(|a| {
                policy::write_mode(&reader.subject(), Some(&a.ownership()))
                    == Some(policy::WriteMode::Write)
            })
        });
        if !writable {
            return Ok(false);
        }
        store.mark_distinct(&form.a, &form.b, &reader.user_id, now())?;
        Ok(true)
    })
    .await?;
    if !marked {
        return refused_on(
            duplicates_page,
            state,
            signed,
            lang,
            StatusCode::NOT_FOUND,
            T::NotFound,
        )
        .await;
    }
    Ok(Redirect::to("/console/duplicates?marked=1").into_response())
}

#[derive(Deserialize)]
pub(super) struct MergeForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) survivor: String,
    #[serde(default)]
    pub(super) merged: String,
    /// `yes` once the reader has read what the merge does.
    #[serde(default)]
    pub(super) confirmed: String,
}

/// The two records side by side before a merge: which is kept, which is folded into it, and
/// what that does on every phone.
async fn merge_confirmation(
    state: AppState,
    signed: Signed,
    lang: Lang,
    form: &MergeForm,
) -> Result<Response, ConsoleError> {
    let service = state.service.clone();
    let reader = signed.user.clone();
    let ids = [form.survivor.clone(), form.merged.clone()];
    let both = blocking(move || {
        let store = service.store();
        let forms = service.forms();
        let access = store.case_access(&ids)?;
        let mut both = Vec::new();
        for id in &ids {
            let readable = access
                .get(id)
                .is_some_and(|a| policy::may_read(&reader.subject(), &a.ownership()));
            match store.listed_case(id)? {
                Some(listed) if readable => {
                    // The record itself, to set beside the other: identification, referrals, visits.
                    let record = service
                        .case_document(id)?
                        .map(|doc| pages::MergeSide::read(&doc, &forms))
                        .unwrap_or_default();
                    both.push((listed, record));
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(both))
    })
    .await?;
    let Some([(kept, kept_record), (folded, folded_record)]) = both
        .map(<[(ListedCase, pages::MergeSide); 2]>::try_from)
        .and_then(Result::ok)
    else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return refused_on(duplicates_page, state, signed, lang, status, T::NotMerged).await;
    };
    let frame = signed.frame(lang, "/console/duplicates");
    let effect = pages::merge_effect(&frame, &kept, &folded);
    let confirm = format!(
        "{} {} {}",
        t(lang, T::MergeConfirm),
        kept.summary.first_name,
        kept.summary.last_name
    );
    let fields = [
        ("survivor", form.survivor.clone()),
        ("merged", form.merged.clone()),
    ];
    Ok(html(
        StatusCode::OK,
        pages::confirm(
            &frame,
            &pages::Confirmation {
                detail: Some(pages::merge_sides(
                    &frame,
                    &state.service.forms(),
                    [(&kept, &kept_record), (&folded, &folded_record)],
                )),
                title: t(lang, T::MergeQuestion),
                effect: &effect,
                action: "/console/duplicates/merge",
                fields: &fields,
                confirm: &confirm,
                back: "/console/duplicates",
            },
        ),
    ))
}

/// "Same child": merges `merged` into `survivor` (both must be the reader's to write), then
/// shows the survivor.
pub(super) async fn merge(
    State(state): State<AppState>,
    CheckedForm { signed, lang, form }: CheckedForm<MergeForm>,
) -> Result<Response, ConsoleError> {
    if form.confirmed != "yes" {
        return merge_confirmation(state, signed, lang, &form).await;
    }
    let service = state.service.clone();
    let user = signed.user.clone();
    let (survivor, merged) = (form.survivor.clone(), form.merged.clone());
    let outcome = blocking(move || {
        refusal_apart(
            service.merge_cases(&user, &survivor, &merged, now()),
            "merge",
        )
    })
    .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!(
            "/console/cases/{}?merged=1",
            pages::urlencode(&form.survivor)
        ))
        .into_response()),
        Err(()) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            refused_on(duplicates_page, state, signed, lang, status, T::NotMerged).await
        }
    }
}

csrf_forms!(DistinctForm, MergeForm);

/// Undoes a merge made by mistake, within `MERGE_UNDO_DAYS`: first what it will do, then, once
/// confirmed, the two records separated again (`SyncService::unmerge_case`).
pub(super) async fn unmerge(
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    CheckedForm { signed, lang, form }: CheckedForm<ConfirmForm>,
) -> Result<Response, ConsoleError> {
    let here = format!("/console/cases/{}", pages::urlencode(&case_id));
    if !matches!(signed.user.role, Role::Supervisor | Role::Admin) {
        let status = StatusCode::FORBIDDEN;
        return case_refused(
            state,
            signed,
            lang,
            case_id,
            status,
            T::OnlySupervisorsMerge,
        )
        .await;
    }
    if !form.confirmed() {
        let frame = signed.frame(lang, &here);
        let effect = vec![
            t(lang, T::UnmergeSeparates).to_string(),
            t(lang, T::UnmergeKeeps).to_string(),
            t(lang, T::Audited).to_string(),
        ];
        let action = format!("{here}/unmerge");
        return Ok(html(
            StatusCode::OK,
            pages::confirm(
                &frame,
                &pages::Confirmation {
                    detail: None,
                    title: t(lang, T::UnmergeQuestion),
                    effect: &effect,
                    action: &action,
                    fields: &[],
                    confirm: t(lang, T::Unmerge),
                    back: &here,
                },
            ),
        ));
    }
    let service = state.service.clone();
    let user = signed.user.clone();
    let id = case_id.clone();
    let outcome = blocking(move || {
        refusal_apart(
            service.unmerge_case(&user, &id, now()).map(|_| ()),
            "unmerge",
        )
    })
    .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("{here}?unmerged=1")).into_response()),
        Err(()) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            case_refused(state, signed, lang, case_id, status, T::NotUnmerged).await
        }
    }
}

/// A console action's outcome with a refusal set apart from a fault: a refusal (forbidden, or
/// a request that cannot be done) is logged and told to the person in words; a fault is a 500.
fn refusal_apart(
    result: Result<(), crate::service::ServiceError>,
    action: &str,
) -> Result<Result<(), ()>, ConsoleError> {
    match result {
        Ok(()) => Ok(Ok(())),
        Err(crate::service::ServiceError::Forbidden(why))
        | Err(crate::service::ServiceError::BadRequest(why)) => {
            tracing::info!(why = %why, action, "console action refused");
            Ok(Err(()))
        }
        Err(e) => Err(ConsoleError::from(e)),
    }
}
