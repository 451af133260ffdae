//! A device's sync: its push admitted, then a page of its caseload's feed.

use super::*;
use crate::storage::{CaseQuery, CaseSort};

impl SyncService {
    /// One sync request answered whole: a page for a device before version 8, the whole
    /// stream of pages (up to `STREAM_PAGES_MAX`) for a later one. The HTTP layer streams
    /// instead (`sync_first`, then `next_page` as the phone reads); this serves in-process
    /// callers (the deterministic simulation, fuzzing, tests).
    pub fn sync(
        &self,
        device: &AuthedDevice,
        body: &[u8],
        now: i64,
    ) -> Result<(Vec<u8>, SyncStats), ServiceError> {
        use protocol::stream::FrameKind;
        let SyncFirst {
            page,
            mut stats,
            stream,
        } = self.sync_first(device, body, now)?;
        let Some(StreamStart { rows, mut position }) = stream else {
            return Ok((page, stats));
        };
        let mut frames: Vec<(FrameKind, Vec<u8>)> =
            rows.into_iter().map(|r| (FrameKind::Rows, r)).collect();
        frames.push((FrameKind::Page, page));
        let mut pages = 1;
        while position.more && pages < STREAM_PAGES_MAX {
            let (page, pulled, next) = self.next_page(device, &position)?;
            if !next.moved_from(&position) {
                break;
            }
            frames.push((FrameKind::Page, page));
            pages += 1;
            stats.changes_pulled += pulled;
            position = next;
        }
        Ok((protocol::stream::stream_of(&frames), stats))
    }

    /// Stores what the device may push and builds the first page of the answer; for a device
    /// of version 8 on, also where the stream's next page starts (`next_page`).
    pub fn sync_first(
        &self,
        device: &AuthedDevice,
        body: &[u8],
        now: i64,
    ) -> Result<SyncFirst, ServiceError> {
        check_version(body)?;
        let request: SyncRequest =
            protocol::decode_request(body).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if request.push.len() > protocol::PUSH_CASES_MAX {
            return Err(ServiceError::BadRequest(format!(
                "more than {} cases in one push",
                protocol::PUSH_CASES_MAX
            )));
        }
        let cursor = match self.store.check_cursor(request.cursor, &request.mark)? {
            CursorCheck::Matches => Some(request.cursor),
            CursorCheck::Reset => {
                // A phone read another history up to its cursor than the feed now holds (a
                // restore from a backup, or a history rewritten): kept as evidence for
                // `verify`, by position and mark only.
                if request.cursor > 0 && !request.mark.is_empty() {
                    self.store.audit(
                        now,
                        &device.device.device_id,
                        crate::evidence::HISTORY_DIFFERS,
                        &format!("{} {}", request.cursor, hex::encode(&request.mark)),
                    )?;
                }
                None
            }
            CursorCheck::Invalid => {
                return Err(ServiceError::BadRequest("cursor beyond the feed".into()))
            }
        };
        // A phone that has seen erasures or removals this store does not hold was served a
        // history since lost (a restore from an older backup), even where its feed cursor
        // still matches: it starts again from the beginning, erasures and removals too, so a
        // case it removed on a removal the store forgot comes back to it.
        let (erasures_head, removals_head) = self.store.lifecycle_heads()?;
        let lifecycle_lost = request.erasures_seen > erasures_head
            || (request.version >= 4 && request.removals_seen > removals_head);
        let (cursor, erasures_seen, removals_seen) = if lifecycle_lost {
            (None, 0, 0)
        } else {
            (cursor, request.erasures_seen, request.removals_seen)
        };
        // Read, decide and write as one admission, decided again if a case it read was written
        // meanwhile. The refusal audit is counted once per decision that refuses (a retried one
        // may count twice in a day: the cap is a bound, not a tally).
        let (plan, stored) = self.admitting(|| {
            let plan = self.plan_push(device, &request.push, now)?;
            let audit = if plan.refused.is_empty() {
                None
            } else {
                match self.refusal_audits.admit(&device.device.device_id, now) {
                    RefusalAudit::Write => Some(("push.refused", refusal_audit(&plan.refused))),
                    RefusalAudit::Count(n) => Some((
                        "push.refused_unlisted",
                        format!("{n} refusals today past {REFUSAL_AUDITS_PER_DAY} rows"),
                    )),
                    RefusalAudit::Skip => None,
                }
            };
            let stored = self.write_admitted(
                device,
                &plan.admitted,
                audit
                    .as_ref()
                    .map(|(action, subject)| (*action, subject.as_str())),
                now,
            )?;
            Ok((plan, stored))
        })?;
        let pushed_nothing = request.push.is_empty();
        let PushPlan {
            accepted, refused, ..
        } = plan;
        // What the device said, for its supervisor: the cases still waiting on it are those it
        // counted less the ones this push settled (accepted, or already held).
        let (app_version, waiting) = if request.version >= 4 {
            let version: String = request
                .report
                .app_version
                .chars()
                .take(protocol::APP_VERSION_CHARS_MAX)
                .collect();
            let settled = accepted.len() as u64;
            (
                Some(version),
                Some(request.report.waiting_cases.saturating_sub(settled)),
            )
        } else {
            (None, None)
        };
        self.store.record_device_sync(
            &device.device.device_id,
            now,
            app_version.as_deref(),
            waiting,
        )?;
        self.record_forgeries(device, &request.forgeries, now)?;
        // Newer outcome settings travel in the first page (version 9 on).
        let settings = Some(self.outcome_settings()).filter(|s| {
            request.version >= protocol::OUTCOMES_SINCE && s.version > request.settings_seen
        });
        let (body, pulled, position) = self.pull_page(
            device,
            request.version,
            cursor,
            (erasures_seen, removals_seen, request.forms_seen),
            (accepted, refused.clone()),
            settings,
        )?;
        let stream = if request.version >= protocol::stream::STREAM_VERSION {
            // A new phone (it holds nothing of this feed and pushes nothing) gets its list rows
            // first. A phone pushing its own cases at its first sync is an agent who recorded
            // before syncing: its list is already its own, and its caseload small.
            let rows = if cursor.unwrap_or(0) == 0 && pushed_nothing {
                self.caseload_rows(device)?
            } else {
                Vec::new()
            };
            Some(StreamStart { rows, position })
        } else {
            None
        };
        Ok(SyncFirst {
            page: body,
            stats: SyncStats {
                changes_stored: stored,
                cases_refused: refused.len(),
                changes_pulled: pulled,
            },
            stream,
        })
    }

    /// Cases a phone asks for by id (`/v1/cases`): those listed ahead whose histories it has
    /// not received yet. Each case the user may read, not erased nor set aside, comes whole
    /// (as a document when smaller, with its changes' verified authors); one it may not read
    /// is left out, as the feed leaves it out.
    pub fn fetch_cases(&self, device: &AuthedDevice, body: &[u8]) -> Result<Vec<u8>, ServiceError> {
        check_version(body)?;
        let request: protocol::CasesRequest =
            protocol::decode(body).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if request.case_ids.len() > protocol::FETCH_CASES_MAX
            || !request.case_ids.iter().all(|id| valid_case_id(id))
        {
            return Err(ServiceError::BadRequest(format!(
                "at most {} valid case ids",
                protocol::FETCH_CASES_MAX
            )));
        }
        let access = self.store.case_access(&request.case_ids)?;
        let subject = device.user.subject();
        let mut users: HashMap<String, Option<String>> = HashMap::new();
        let mut rows = Vec::new();
        for case_id in &request.case_ids {
            let readable = access
                .get(case_id)
                .is_some_and(|a| policy::may_read(&subject, &a.ownership()));
            if !readable
                || rows.iter().any(|r: &FeedRow| &r.case_id == case_id)
                || self.store.is_erased(case_id)?
                || self.store.is_quarantined(case_id)?
            {
                continue;
            }
            for change in self.store.case_stored_changes(case_id)? {
                if !change.in_feed {
                    continue;
                }
                let user = match users.get(&change.origin_device) {
                    Some(user) => user.clone(),
                    None => {
                        let user = self.store.device(&change.origin_device)?.map(|d| d.user_id);
                        users.insert(change.origin_device.clone(), user.clone());
                        user
                    }
                };
                rows.push(FeedRow {
                    seq: change.id,
                    case_id: change.case_id,
                    data: change.data,
                    user_id: user.unwrap_or_default(),
                    device_id: change.origin_device,
                    received_at: change.received_at,
                });
            }
        }
        let (authors, pull) = group_by_case(&rows);
        let (pull, documents) = as_documents(&pull, &mut HashMap::new());
        protocol::encode(&SyncResponse {
            version: PROTOCOL_VERSION,
            authors,
            pull,
            documents,
            ..SyncResponse::nothing_new(0, 0)
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The list rows of everything the device's user may read, the most pressing first (a
    /// visit overdue, then due soonest), as `CaseRows` frames of `ROWS_PER_FRAME_MAX` rows.
    /// From the console's projections: the same scope as the console's list of this user.
    pub fn caseload_rows(&self, device: &AuthedDevice) -> Result<Vec<Vec<u8>>, ServiceError> {
        let mut listed = Vec::new();
        let total = loop {
            let query = CaseQuery {
                sort: CaseSort::Due,
                offset: listed.len() as u64,
                limit: protocol::ROWS_PER_FRAME_MAX as u64,
                ..CaseQuery::default()
            };
            let page = self.store.list_cases(&device.user, &query)?;
            let got = page.cases.len();
            listed.extend(page.cases.into_iter().map(case_row));
            if got == 0 || listed.len() as u64 >= page.total {
                // Cases stored between two reads may make the count move: the rows sent count.
                break page.total.max(listed.len() as u64);
            }
        };
        listed
            .chunks(protocol::ROWS_PER_FRAME_MAX)
            .map(|rows| {
                protocol::encode(&protocol::CaseRows {
                    version: PROTOCOL_VERSION,
                    total,
                    rows: rows.to_vec(),
                })
                .map_err(|e| ServiceError::Internal(e.to_string()))
            })
            .collect()
    }

    /// The page after `position` in a stream: a short read of its own (the HTTP layer takes a
    /// sync slot for it alone, so a slow reader holds none while the stream drains). The
    /// device's access is read again, so a case reassigned meanwhile stops at once.
    pub fn next_page(
        &self,
        device: &AuthedDevice,
        position: &StreamPosition,
    ) -> Result<(Vec<u8>, usize, StreamPosition), ServiceError> {
        self.pull_page(
            device,
            position.version,
            Some(position.cursor),
            (position.erasures, position.removals, position.forms),
            (Vec::new(), Vec::new()),
            None,
        )
    }

    /// The next page of the device's caseload after `cursor` (from the start when `None`: the
    /// device's cursor does not match this feed), at most `PULL_PAGE_BYTES_MAX` compressed.
    /// The response to a sync request of `version`: a version 3 device gets a version 3
    /// response (the same layout, read without the removals appended at its end).
    pub(super) fn pull_page(
        &self,
        device: &AuthedDevice,
        version: u16,
        cursor: Option<u64>,
        (erasures_seen, removals_seen, forms_seen): (u64, u64, u64),
        (accepted, refused): (Vec<String>, Vec<Refusal>),
        settings: Option<suivi_core::outcome::OutcomeSettings>,
    ) -> Result<(Vec<u8>, usize, StreamPosition), ServiceError> {
        let from = cursor.unwrap_or(0);
        // The cases first, then the forms: a case in this page was pushed by a phone that held
        // its form version, which was published (committed) before, so the forms read after
        // the page include every version its cases use. A version 4 device is sent no forms
        // and keeps the ones it has.
        let page = self
            .store
            .feed_page(&device.viewer(), from, PULL_PAGE_RAW_BYTES_MAX)?;
        let published = if version >= 5 {
            self.store
                .forms_after(forms_seen, crate::forms::FORMS_PER_RESPONSE_MAX)?
        } else {
            Vec::new()
        };
        let forms_cursor = published.last().map_or(forms_seen, |f| f.seq);
        let more_forms = published.len() == crate::forms::FORMS_PER_RESPONSE_MAX;
        let forms: Vec<protocol::FormUpdate> = published
            .into_iter()
            // Every device ships the built-in versions: only their retirement is news.
            .filter(|f| f.published_by != crate::forms::BUILT_IN || f.retired_at.is_some())
            .map(|f| protocol::FormUpdate {
                definition: f.definition,
                retired: f.retired_at.is_some(),
            })
            .collect();
        // More forms wait than one response holds: no case travels until they all have, so
        // none arrives before its version.
        let (mut rows, page_cursor, page_more) = if more_forms {
            (Vec::new(), from, true)
        } else {
            (page.rows, page.cursor, page.more)
        };
        // The device's own changes in this page's range, listed back to it (version 6 on) so it
        // can witness one it never wrote. More than a page lists: the page ends at the last.
        let (mut page_cursor, mut page_more) = (page_cursor, page_more);
        let mut own = if version >= 6 {
            self.store.own_feed_rows(
                &device.device.device_id,
                from,
                page_cursor,
                OWN_CHANGES_PER_PAGE_MAX + 1,
            )?
        } else {
            Vec::new()
        };
        if own.len() > OWN_CHANGES_PER_PAGE_MAX {
            own.truncate(OWN_CHANGES_PER_PAGE_MAX);
            let cut = own.last().map_or(from, |(seq, _, _)| *seq);
            rows.retain(|r| r.seq <= cut);
            page_cursor = cut;
            page_more = true;
        }
        let erasures = self
            .store
            .erasures_after(erasures_seen, crate::erasure::ERASURES_PER_PAGE)?;
        let erasures_cursor = erasures.last().map_or(erasures_seen, |(seq, _)| *seq);
        let erasures_listed = erasures.len();
        // Only erasures the audit log recorded are announced: one added to the database by
        // hand would have every phone delete a live child's case.
        let mut erased = Vec::with_capacity(erasures.len());
        for (_, case_id) in erasures {
            if self.erasure_proven(&case_id)? {
                erased.push(case_id);
            }
        }
        let removals = if version >= 4 {
            self.store.removals_after(
                &device.user.user_id,
                removals_seen,
                crate::erasure::ERASURES_PER_PAGE,
            )?
        } else {
            Vec::new()
        };
        let removals_cursor = removals.last().map_or(removals_seen, |(seq, _)| *seq);
        let removals_full = removals.len() == crate::erasure::ERASURES_PER_PAGE;
        let removed = self.still_removed(&device.user, removals)?;
        let mut response = SyncResponse {
            version: version.min(PROTOCOL_VERSION),
            accepted,
            refused,
            authors: Vec::new(),
            pull: Vec::new(),
            cursor: page_cursor,
            mark: serde_bytes::ByteBuf::new(),
            more: page_more
                || erasures_listed == crate::erasure::ERASURES_PER_PAGE
                || removals_full
                || more_forms,
            reset: cursor.is_none(),
            erasures_cursor,
            erased,
            removals_cursor,
            removed,
            forms,
            forms_cursor,
            own: Vec::new(),
            documents: Vec::new(),
            settings: settings.into_iter().collect(),
        };
        // A case's document, built once per page even when the page is trimmed and weighed
        // again (keyed by how many of its changes the page holds).
        let mut built: BuiltDocuments = HashMap::new();
        loop {
            response.own = own
                .iter()
                .filter(|(seq, _, _)| *seq <= response.cursor)
                .map(|(_, case_id, hash)| protocol::OwnChange {
                    case_id: case_id.clone(),
                    hash: hash.clone(),
                })
                .collect();
            let (authors, pull) = group_by_case(&rows);
            response.authors = authors;
            response.pull = pull;
            response.documents = Vec::new();
            response.mark = serde_bytes::ByteBuf::from(self.store.feed_mark(response.cursor)?);
            let mut body =
                protocol::encode(&response).map_err(|e| ServiceError::Internal(e.to_string()))?;
            // Version 7 on: the cases whose whole history the page holds as documents, kept
            // when the page compresses smaller so (PROTOCOL.md, "Version 7").
            if version >= 7 {
                let (pull, documents) = as_documents(&response.pull, &mut built);
                if !documents.is_empty() {
                    let changes = std::mem::replace(&mut response.pull, pull);
                    response.documents = documents;
                    let compact = protocol::encode(&response)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    if compact.len() < body.len() {
                        body = compact;
                    } else {
                        response.pull = changes;
                        response.documents = Vec::new();
                    }
                }
            }
            if body.len() <= protocol::PULL_PAGE_BYTES_MAX || rows.len() <= 1 {
                let position = StreamPosition {
                    version,
                    cursor: response.cursor,
                    erasures: response.erasures_cursor,
                    removals: response.removals_cursor,
                    forms: response.forms_cursor,
                    more: response.more,
                };
                return Ok((body, rows.len(), position));
            }
            // Too big once compressed: keep a proportional share of the rows and try again.
            let keep = (rows.len() * protocol::PULL_PAGE_BYTES_MAX * 9 / 10 / body.len())
                .clamp(1, rows.len() - 1);
            rows.truncate(keep);
            response.cursor = rows.last().map(|r| r.seq).unwrap_or(from);
            response.more = true;
        }
    }
}

/// What a sync request's first answer holds: the page (the whole reply before version 8) and,
/// for a stream, what comes before and after it.
pub struct SyncFirst {
    pub page: Vec<u8>,
    pub stats: SyncStats,
    pub stream: Option<StreamStart>,
}

/// A stream's start: the list rows sent before the first page (at a first sync), and where the
/// page after the first starts.
pub struct StreamStart {
    pub rows: Vec<Vec<u8>>,
    pub position: StreamPosition,
}

/// A listed case as the phone's list row.
fn case_row(c: crate::storage::ListedCase) -> protocol::CaseRow {
    let s = c.summary;
    protocol::CaseRow {
        case_id: s.case_id,
        first_name: s.first_name,
        last_name: s.last_name,
        sex: s.sex,
        province: s.province,
        commune: s.commune,
        village: s.village,
        work_sector: s.work_sector,
        risk_level: s.risk_level,
        referral_statuses: s.referral_statuses,
        next_followup_due: s.next_followup_due,
        referral_count: s.referral_count,
        followup_count: s.followup_count,
        conflict_count: s.conflict_count,
        updated_at: c.updated_at,
    }
}

/// Pages in one stream: the rest waits for the phone's next request (a 10,000-case caseload
/// is about 30 pages).
pub const STREAM_PAGES_MAX: usize = 200;

/// Where a stream's next page starts: the positions the page before it left the device at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPosition {
    pub version: u16,
    pub cursor: u64,
    pub erasures: u64,
    pub removals: u64,
    pub forms: u64,
    /// The page before said more was waiting.
    pub more: bool,
}

impl StreamPosition {
    /// Whether a page moved a cursor past `before`: one that did not would be sent again and
    /// again, so the stream ends there (the phone asks again).
    pub fn moved_from(&self, before: &StreamPosition) -> bool {
        (self.cursor, self.erasures, self.removals, self.forms)
            != (
                before.cursor,
                before.erasures,
                before.removals,
                before.forms,
            )
    }
}

/// What one sync did, for the structured log (counts only: no case data).
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncStats {
    pub changes_stored: usize,
    pub cases_refused: usize,
    pub changes_pulled: usize,
}

/// Documents built for one page, by the place of a run of one case's changes in the page and
/// how many changes it holds: the document and its origins' order, or `None` when those
/// changes are not a whole history. A trimmed page keeps a prefix of its rows, so a run at the
/// same place with as many changes is the same run; a case may have several runs in a page
/// (its rows need not follow each other), so the case id alone would mix them up.
type BuiltDocuments = HashMap<(usize, usize), Option<(Vec<u8>, Vec<usize>)>>;

/// The page's cases whose changes are a whole history, as documents (the others stay
/// changes), with each change's origin in the document's order.
fn as_documents(
    pull: &[PulledCase],
    built: &mut BuiltDocuments,
) -> (Vec<PulledCase>, Vec<protocol::PulledDocument>) {
    let mut changes = Vec::new();
    let mut documents = Vec::new();
    for (place, case) in pull.iter().enumerate() {
        let document = built.entry((place, case.changes.len())).or_insert_with(|| {
            let raw: Vec<Vec<u8>> = case.changes.iter().map(|c| c.data.to_vec()).collect();
            suivi_core::case_doc::check::document_of_changes(&raw)
        });
        match document {
            Some((bytes, order)) => {
                let mut last = 0i64;
                let origins = order
                    .iter()
                    .map(|&i| {
                        let change = &case.changes[i];
                        let origin = protocol::ChangeOrigin {
                            author: change.author,
                            received_after: change.received_at.saturating_sub(last),
                        };
                        last = change.received_at;
                        origin
                    })
                    .collect();
                documents.push(protocol::PulledDocument {
                    case_id: case.case_id.clone(),
                    document: serde_bytes::ByteBuf::from(bytes.clone()),
                    origins,
                });
            }
            None => changes.push(case.clone()),
        }
    }
    (changes, documents)
}

/// Groups consecutive rows of one case, and lists each row's verified author once per page.
pub(super) fn group_by_case(rows: &[FeedRow]) -> (Vec<protocol::Author>, Vec<PulledCase>) {
    let mut authors: Vec<protocol::Author> = Vec::new();
    let mut index: HashMap<(&str, &str), u32> = HashMap::new();
    let mut out: Vec<PulledCase> = Vec::new();
    for row in rows {
        let author = *index
            .entry((row.user_id.as_str(), row.device_id.as_str()))
            .or_insert_with(|| {
                authors.push(protocol::Author {
                    user: row.user_id.clone(),
                    device: row.device_id.clone(),
                });
                (authors.len() - 1) as u32
            });
        let change = PulledChange {
            data: serde_bytes::ByteBuf::from(row.data.clone()),
            author,
            received_at: row.received_at,
        };
        match out.last_mut() {
            Some(last) if last.case_id == row.case_id => last.changes.push(change),
            _ => out.push(PulledCase {
                case_id: row.case_id.clone(),
                changes: vec![change],
            }),
        }
    }
    (authors, out)
}

impl SyncService {
    /// The listed removals a user's phones must still act on: a case the user reads again
    /// since it moved away (assigned to them, merged into a case of theirs, moved back) stays
    /// on the phone. Without this, a phone offline through both the move and the new grant
    /// would take the case in and then delete it in one page, and never be sent it again.
    fn still_removed(
        &self,
        user: &User,
        removals: Vec<(u64, String)>,
    ) -> Result<Vec<String>, ServiceError> {
        let ids: Vec<String> = removals.into_iter().map(|(_, id)| id).collect();
        if ids.is_empty() {
            return Ok(ids);
        }
        let access = self.store.case_access(&ids)?;
        Ok(ids
            .into_iter()
            .filter(|id| {
                !access
                    .get(id)
                    .is_some_and(|a| policy::may_read(&user.subject(), &a.ownership()))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suivi_core::forms::{FormRegistry, IDENTIFICATION};
    use suivi_core::{CaseDoc, ChangeContext};

    fn pulled(case_id: &str, changes: &[Vec<u8>]) -> PulledCase {
        PulledCase {
            case_id: case_id.into(),
            changes: changes
                .iter()
                .map(|c| PulledChange {
                    data: serde_bytes::ByteBuf::from(c.clone()),
                    author: 0,
                    received_at: 1_800_000_000,
                })
                .collect(),
        }
    }

    /// Found by the deterministic simulation (seed 29): a case's rows need not follow each
    /// other in a page, so it may have two runs of one change each; the second, an edit, is not
    /// a whole history and must travel as a change, not as the first run's document again.
    #[test]
    fn two_runs_of_one_case_in_a_page_are_weighed_apart() {
        let forms = FormRegistry::builtin();
        let ctx = ChangeContext::now("amina");
        let record = serde_json::from_value(serde_json::json!({
            "child_first_name": "Awa", "child_last_name": "Koné", "sex": "female",
            "dob_known": false, "estimated_age": 12, "province": "Sikasso",
            "commune": "Kadiolo", "village": "Zégoua", "school_status": "never_enrolled",
            "works": false, "risk_level": "high", "consent_to_share": true
        }))
        .unwrap();
        let case = "c0ffee00c0ffee00c0ffee00c0ffee00";
        let mut doc = CaseDoc::create(
            case,
            automerge::ActorId::from(vec![3u8; 16]),
            forms.latest(IDENTIFICATION).unwrap(),
            &record,
            &ctx,
        )
        .unwrap();
        let created = doc.changes_since(&[]);
        let heads = doc.heads();
        let patch = serde_json::from_value(serde_json::json!({"village": "Kadiolo"})).unwrap();
        doc.edit_identification(&forms, &patch, &ctx).unwrap();
        let edit = doc.changes_since(&heads);
        let page = [
            pulled(case, &created),
            pulled("other", &created),
            pulled(case, &edit),
        ];
        let (changes, documents) = as_documents(&page, &mut HashMap::new());
        assert_eq!(documents.len(), 2, "the two whole histories");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].case_id, case);
        assert_eq!(changes[0].changes[0].data.as_slice(), edit[0].as_slice());
    }
}
