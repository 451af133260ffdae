//! One sync, its decisions apart from its I/O. `SyncSession` decides which request goes next
//! and what each reply means, committing pulled pages into the store; `run` is the thin driver
//! that sends the requests. The driver holds the store only while the session reads or commits
//! (one short write transaction per page), never while a request is on the network: an app's
//! saves go on during a minutes-long sync on 2G, and its reads use their own connection.

use std::collections::HashSet;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use automerge::sync::{Message, State, SyncDoc};
use automerge::ChangeHash;

use crate::case_doc::CaseDoc;
use crate::error::{Error, Result};
use crate::protocol::stream::{self, Frame, FrameKind};
use crate::protocol::{
    self, CaseChanges, DocSyncRequest, DocSyncResponse, ErrorBody, Refusal, RefusalReason,
    SyncRequest, SyncResponse, CONTENT_TYPE, PROTOCOL_VERSION, PROTOCOL_VERSION_MIN,
};
use crate::store::sync_state::{
    refusal_text, Pushed, META_LAST_SYNC, META_SERVER_SPEAKS, META_TOKEN,
};
use crate::store::{Store, SyncState};
use crate::store::{SyncProgress, SyncReport};
use crate::transport::status_error;
use crate::transport::{Cancel, Credentials, HttpReply, Transport};

pub use super::incoming::{Finished, Incoming, FRAME_TIMEOUT};

/// Why a case is set aside when the server's history of it cannot join this phone's.
pub const HISTORIES_DIFFER: &str =
    "the server's history of this case conflicts with this phone's: set aside, kept";

/// Where to ask the forms feed from: after the last position committed, or from the start when
/// another app version refused a form (an updated app may read what an older one could not;
/// the cases that use it wait in quarantine until then) or when the forms held were read by an
/// older reading (one that dropped labels in further languages).
fn forms_seen(store: &Store) -> Result<u64> {
    if store.meta(crate::store::META_FORMS_READ_AS)?.as_deref() != Some(crate::store::FORMS_READ_AS)
    {
        return Ok(0);
    }
    if let Some(refused_by) = store.meta(crate::store::META_FORMS_REFUSED_BY)? {
        if refused_by != store.app_version()? {
            return Ok(0);
        }
    }
    match store.meta(crate::store::META_FORMS)? {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| Error::Storage(format!("the forms cursor {text:?} is not a number"))),
    }
}

/// Forgery reports sent in one request (the server reads at most 16 per request).
const FORGERY_REPORTS_PER_REQUEST: usize = 16;
/// Round trips of the per-document fallback before giving up on a case for this sync.
pub const DOC_SYNC_ROUNDS_MAX: usize = 8;
/// Round trips of one sync: enough for a 10,000-case first sync in 64 KB pages.
pub const SYNC_ROUND_TRIPS_MAX: usize = 10_000;
/// Round trips in a row that move nothing (no cursor moved, nothing acknowledged, pulled,
/// erased, removed or published) before a sync stops with an error: a server that never
/// acknowledges and answers empty pages must not keep a phone's radio busy.
pub const STALLED_ROUND_TRIPS_MAX: usize = 3;

/// Pages of one sync, in any number of requests or streams: a server that streams page after
/// page, each moving a cursor, must still end.
pub const SYNC_PAGES_MAX: usize = 10_000;
pub use crate::store::SERVER_SPEAKS_TTL_SECS;
/// List rows a phone takes ahead of their cases: the largest caseload a phone is meant to hold.
pub const LIST_ROWS_AHEAD_MAX: usize = 100_000;

fn stalled() -> Error {
    Error::Protocol(format!(
        "the server moved nothing in {STALLED_ROUND_TRIPS_MAX} round trips in a row \
         (no acknowledgement, no page): sync stopped, nothing lost"
    ))
}

/// Whether a page reply moved anything: one of the cursors, an acknowledgement or refusal of
/// what was pushed, or a reset. A page sent again at the same cursor moves nothing.
fn moved_something(response: &SyncResponse, cursor_sent: u64, cursors: (u64, u64, u64)) -> bool {
    response.cursor != cursor_sent
        || (
            response.erasures_cursor,
            response.removals_cursor,
            response.forms_cursor,
        ) != cursors
        || response.reset
        || !response.accepted.is_empty()
        || !response.refused.is_empty()
}

/// The store, held for one step of a sync: borrowed whole (the CLI) or locked (an app, whose
/// other threads save between steps).
pub enum StoreGuard<'a> {
    Borrowed(&'a mut Store),
    Locked(MutexGuard<'a, Store>),
}

impl Deref for StoreGuard<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        match self {
            StoreGuard::Borrowed(s) => s,
            StoreGuard::Locked(s) => s,
        }
    }
}

impl DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        match self {
            StoreGuard::Borrowed(s) => s,
            StoreGuard::Locked(s) => s,
        }
    }
}

/// Gives the driver the store for one step at a time.
pub trait LockStore {
    fn lock_store(&mut self) -> StoreGuard<'_>;
}

impl LockStore for &mut Store {
    fn lock_store(&mut self) -> StoreGuard<'_> {
        StoreGuard::Borrowed(self)
    }
}

impl LockStore for &Mutex<Store> {
    fn lock_store(&mut self) -> StoreGuard<'_> {
        // A panic while the store was held left SQLite consistent (its transaction rolled back).
        StoreGuard::Locked(self.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A request the session wants sent.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// What a reply led to.
#[derive(Debug)]
pub enum Step {
    /// A page was committed: report progress, then ask for the next request.
    Progress(SyncProgress),
    /// Nothing to report; ask for the next request.
    Continue,
    /// The server revoked this device and its case data is wiped: send this confirmation,
    /// then call `on_wipe_confirmed`.
    ConfirmWipe(Outgoing),
}

/// Automerge's own sync protocol for one case, when device and server disagree on what the
/// other holds. Runs on a copy of the document; the store gets what the server sent at the end.
struct DocSync {
    case_id: String,
    doc: CaseDoc,
    loaded_heads: Vec<ChangeHash>,
    state: State,
    server_done: bool,
    rounds: usize,
    converged: bool,
}

enum Phase {
    /// Batched round trips: push pending cases, pull a page of the caseload.
    Pages,
    /// The per-document fallback for the cases the server could not take in a batch.
    Fallback,
    Done,
}

pub struct SyncSession {
    started: Instant,
    credentials: Credentials,
    report: SyncReport,
    /// Cases for the per-document fallback, after the pages.
    fallback: Vec<String>,
    /// Cases refused for now (a quota): pending still, pushed again at the next sync.
    later: Vec<String>,
    conflicted: HashSet<String>,
    /// What the request in flight pushed.
    pushed: Vec<Pushed>,
    phase: Phase,
    doc_sync: Option<DocSync>,
    /// The forgery reports the page request in flight carries.
    forgeries_sent: Vec<protocol::ForgeryReport>,
    /// Where the page request in flight said this phone stands: the feed, erasures,
    /// removals and forms cursors.
    cursor_sent: u64,
    cursors_sent: (u64, u64, u64),
    /// Page round trips in a row that moved nothing.
    stalled: usize,
    /// Whether the request in flight left cases to push (known from the page that
    /// acknowledged its push).
    more_to_push: bool,
    /// Where the last page committed left the cursors: a stream's next page is weighed
    /// against them.
    page_cursors: (u64, (u64, u64, u64)),
    /// List rows received ahead of their cases.
    rows_seen: usize,
    /// The version requests are sent in: this build's, or an older server's it also speaks.
    version: u16,
}

impl SyncSession {
    pub fn start(store: &Store) -> Result<SyncSession> {
        // A server that said today it speaks an older version is asked in it straight away.
        let version = store
            .server_speaks()?
            .filter(|v| protocol::PROTOCOL_VERSIONS_SPOKEN.contains(v))
            .unwrap_or(PROTOCOL_VERSION);
        Ok(SyncSession {
            started: Instant::now(),
            credentials: store.credentials()?,
            report: SyncReport::default(),
            fallback: Vec::new(),
            later: Vec::new(),
            conflicted: HashSet::new(),
            pushed: Vec::new(),
            phase: Phase::Pages,
            doc_sync: None,
            forgeries_sent: Vec::new(),
            cursor_sent: 0,
            cursors_sent: (0, 0, 0),
            stalled: 0,
            more_to_push: false,
            page_cursors: (0, (0, 0, 0)),
            rows_seen: 0,
            version,
        })
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The next request to send, or `None` when the sync is complete (then call `finish`).
    pub fn next_request(&mut self, store: &mut Store) -> Result<Option<Outgoing>> {
        loop {
            match self.phase {
                Phase::Pages if self.report.round_trips < SYNC_ROUND_TRIPS_MAX => {
                    return self.page_request(store).map(Some)
                }
                Phase::Pages => self.phase = Phase::Fallback,
                Phase::Fallback => {
                    if let Some(out) = self.doc_sync_request(store)? {
                        return Ok(Some(out));
                    }
                    if self.fallback.is_empty() {
                        self.phase = Phase::Done;
                    } else {
                        let case_id = self.fallback.remove(0);
                        self.doc_sync = load_doc_sync(store, case_id)?;
                    }
                }
                Phase::Done => return Ok(None),
            }
        }
    }

    fn page_request(&mut self, store: &Store) -> Result<Outgoing> {
        let skip = skip_after(&self.fallback, &self.later);
        self.pushed = store.collect_push(&skip)?;
        self.more_to_push = false;
        let positions = store.positions(&mut self.report.restarted)?;
        let mark = positions.mark;
        self.cursor_sent = positions.cursor;
        let request = SyncRequest {
            version: self.version,
            cursor: self.cursor_sent,
            mark: serde_bytes::ByteBuf::from(mark),
            push: self
                .pushed
                .iter()
                .map(|p| CaseChanges {
                    case_id: p.case_id.clone(),
                    changes: p
                        .changes
                        .iter()
                        .cloned()
                        .map(serde_bytes::ByteBuf::from)
                        .collect(),
                })
                .collect(),
            erasures_seen: positions.erasures_seen,
            removals_seen: positions.removals_seen,
            forms_seen: forms_seen(store)?,
            forgeries: {
                self.forgeries_sent = store.unreported_forgeries(FORGERY_REPORTS_PER_REQUEST)?;
                self.forgeries_sent.clone()
            },
            report: protocol::DeviceReport {
                app_version: store.app_version()?,
                waiting_cases: u64::try_from(store.unsynced_case_count()?).unwrap_or(0),
            },
            settings_seen: store.outcome_settings()?.version,
        };
        self.cursors_sent = (
            request.erasures_seen,
            request.removals_seen,
            request.forms_seen,
        );
        let body = protocol::encode(&request)?;
        self.report.bytes_up += body.len();
        self.report.round_trips += 1;
        Ok(Outgoing {
            path: "/v1/sync",
            content_type: CONTENT_TYPE,
            body,
        })
    }

    /// The next message of the case in the fallback, or `None` once it is finished (saved).
    fn doc_sync_request(&mut self, store: &mut Store) -> Result<Option<Outgoing>> {
        let Some(ds) = &mut self.doc_sync else {
            return Ok(None);
        };
        if !ds.converged && ds.rounds < DOC_SYNC_ROUNDS_MAX {
            let outgoing = ds
                .doc
                .automerge()
                .sync()
                .generate_sync_message(&mut ds.state);
            if outgoing.is_some() || !ds.server_done {
                ds.rounds += 1;
                let request = DocSyncRequest {
                    version: self.version,
                    case_id: ds.case_id.clone(),
                    message: serde_bytes::ByteBuf::from(
                        outgoing.map(Message::encode).unwrap_or_default(),
                    ),
                };
                let body = protocol::encode(&request)?;
                self.report.bytes_up += body.len();
                self.report.round_trips += 1;
                return Ok(Some(Outgoing {
                    path: "/v1/docsync",
                    content_type: CONTENT_TYPE,
                    body,
                }));
            }
            ds.converged = true;
        }
        let ds = self.doc_sync.take().expect("checked above");
        finish_doc_sync(store, ds)?;
        self.report.fallbacks += 1;
        Ok(None)
    }

    /// Reads a whole reply to the last request, committing what it brings: a stream's pages
    /// one by one (what came whole before a cut stays committed), or one body.
    pub fn on_reply(&mut self, store: &mut Store, reply: HttpReply) -> Result<Step> {
        if reply.status == 200 && self.doc_sync.is_none() && stream::is_stream(&reply.body) {
            let mut incoming = Incoming::default();
            incoming.feed(200, &reply.body)?;
            let mut step = Step::Continue;
            while let Some(frame) = incoming.next_frame()? {
                step = self.on_frame(store, frame)?;
            }
            if let Finished::Stream(frames) = incoming.finish()? {
                self.on_stream_end(frames)?;
            }
            return Ok(step);
        }
        self.report.bytes_down += reply.body.len();
        if reply.status != 200 {
            return self.error_reply(store, &reply);
        }
        if self.doc_sync.is_some() {
            self.on_doc_sync_reply(store, &reply)?;
            return Ok(Step::Continue);
        }
        self.on_page(store, &reply.body)
    }

    /// Commits one frame of a streamed reply (version 8): a page, as a single reply carries,
    /// or list rows sent ahead of their cases. A kind this build does not know is skipped.
    pub fn on_frame(&mut self, store: &mut Store, frame: Frame) -> Result<Step> {
        self.report.bytes_down += frame.body.len() + 5;
        if frame.is(FrameKind::Rows) {
            return self.on_rows(store, &frame.body);
        }
        if !frame.is(FrameKind::Page) {
            return Ok(Step::Continue);
        }
        let frame = frame.body;
        if self.report.pages >= SYNC_PAGES_MAX {
            return Err(Error::Protocol(format!(
                "the server sent more than {SYNC_PAGES_MAX} pages in one sync: stopped, \
                 what came is kept"
            )));
        }
        let step = self.on_page(store, &frame)?;
        // The next frame is weighed against this one, as a next request would be.
        (self.cursor_sent, self.cursors_sent) = self.page_cursors;
        Ok(step)
    }

    /// Lists the rows a first sync sends ahead of the cases (version 8): the list and search
    /// work from them while the histories arrive. A frame with a row whose id is not a case
    /// id, rows beyond the caseload announced, or more rows than `LIST_ROWS_AHEAD_MAX`, are
    /// refused.
    fn on_rows(&mut self, store: &mut Store, body: &[u8]) -> Result<Step> {
        let rows: protocol::CaseRows = protocol::decode(body)?;
        if let Some(bad) = rows
            .rows
            .iter()
            .find(|r| !crate::case_doc::is_case_id(&r.case_id))
        {
            return Err(Error::Protocol(format!(
                "a list row for {:?}, not a case id",
                bad.case_id.chars().take(40).collect::<String>()
            )));
        }
        let seen = self.rows_seen + rows.rows.len();
        if rows.total > LIST_ROWS_AHEAD_MAX as u64 || seen as u64 > rows.total {
            return Err(Error::Protocol(format!(
                "the server sent {seen} list rows of a caseload of {}",
                rows.total
            )));
        }
        self.rows_seen = seen;
        self.report.caseload = usize::try_from(rows.total).unwrap_or(usize::MAX);
        self.report.listed += store.list_arriving(&rows.rows)?;
        if seen as u64 == rows.total && self.report.list_usable_ms.is_none() {
            self.report.list_usable_ms = Some(self.elapsed_ms());
        }
        Ok(Step::Progress(self.progress(true)))
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn progress(&self, more: bool) -> SyncProgress {
        SyncProgress {
            round_trips: self.report.round_trips,
            pages: self.report.pages,
            cases_down: self.report.cases_down,
            changes_down: self.report.changes_down,
            bytes_down: self.report.bytes_down,
            caseload: self.report.caseload,
            listed: self.report.listed,
            more,
        }
    }

    /// After a stream's end marker: its magic and marker counted; a stream of no page moved
    /// nothing.
    pub fn on_stream_end(&mut self, frames: usize) -> Result<()> {
        self.report.bytes_down += stream::STREAM_MAGIC.len() + stream::STREAM_END.len();
        if frames == 0 {
            self.stalled += 1;
            if self.stalled >= STALLED_ROUND_TRIPS_MAX {
                return Err(stalled());
            }
        }
        Ok(())
    }

    /// Commits one page: the reply to a request, or a frame of a stream.
    fn on_page(&mut self, store: &mut Store, body: &[u8]) -> Result<Step> {
        let response: SyncResponse = protocol::decode_response(body)?;
        // Responses did not change in version 4: a version 3 server's are read as they are.
        if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION).contains(&response.version) {
            return Err(Error::Protocol(format!(
                "server speaks version {}",
                response.version
            )));
        }
        // A stream's first page acknowledges the push; the pages after it acknowledge nothing.
        let pushed = std::mem::take(&mut self.pushed);
        // A server of version 6 or later read the forgery reports this request carried.
        let sent = std::mem::take(&mut self.forgeries_sent);
        if response.version >= 6 {
            store.forgeries_reported(&sent)?;
        }
        let plan =
            crate::store::sync_state::plan_page(&pushed, &response, self.report.server_reset);
        add_once(&mut self.fallback, &plan.fallback);
        add_once(&mut self.later, &plan.later);
        for (case_id, conflicts) in store.commit_page(&plan, &mut self.report)? {
            if conflicts {
                self.conflicted.insert(case_id);
            } else {
                self.conflicted.remove(&case_id);
            }
        }
        // Whether this request left cases to push: decided on the page that acknowledged
        // the push, kept for the stream's later pages.
        if !pushed.is_empty() || response.reset {
            self.more_to_push = store.has_pending(&skip_after(&self.fallback, &self.later))?;
        }
        self.page_cursors = (
            response.cursor,
            (
                response.erasures_cursor,
                response.removals_cursor,
                response.forms_cursor,
            ),
        );
        if !response.more && !self.more_to_push {
            self.phase = Phase::Fallback;
        } else if moved_something(&response, self.cursor_sent, self.cursors_sent) {
            self.stalled = 0;
        } else {
            self.stalled += 1;
            if self.stalled >= STALLED_ROUND_TRIPS_MAX {
                return Err(stalled());
            }
        }
        Ok(Step::Progress(self.progress(response.more)))
    }

    fn on_doc_sync_reply(&mut self, store: &mut Store, reply: &HttpReply) -> Result<()> {
        let response: DocSyncResponse = protocol::decode(&reply.body)?;
        let ds = self
            .doc_sync
            .as_mut()
            .expect("a fallback case is in flight");
        if let Some(refusal) = response.refused {
            let case_id = ds.case_id.clone();
            self.doc_sync = None;
            if refusal.reason == RefusalReason::Erased {
                if store.erase_case_locally(&case_id)? {
                    self.report.erased += 1;
                }
            } else {
                // A retryable refusal leaves the case pending for the next sync (after a
                // restore, so does another device's lost change, as in `commit_page`).
                let dirty = if refusal.reason.is_retryable()
                    || (self.report.server_reset && refusal.reason == RefusalReason::WrongActor)
                {
                    SyncState::Pending
                } else {
                    SyncState::Refused
                };
                store.set_refused(&case_id, dirty, &refusal_text(&refusal))?;
            }
            self.report
                .refused
                .push(Refusal::new(&case_id, refusal.reason, &refusal.detail));
            return Ok(());
        }
        match response.message {
            Some(bytes) => {
                let message = Message::decode(&bytes)
                    .map_err(|e| Error::Protocol(format!("sync message: {e}")))?;
                let mut server_heads = message.heads.clone();
                let automerge = ds.doc.automerge();
                let state = &mut ds.state;
                let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    automerge.sync().receive_sync_message(state, message)
                }));
                if !matches!(applied, Ok(Ok(()))) {
                    // The server's history of this case cannot join this phone's (one actor's
                    // change numbered twice: a server restored from an older backup writes its
                    // console's changes again). Set aside with why, unsynced, kept; the sync
                    // goes on with the other cases.
                    let case_id = ds.case_id.clone();
                    self.doc_sync = None;
                    store.set_refused(&case_id, SyncState::Refused, HISTORIES_DIFFER)?;
                    self.report.refused.push(Refusal::new(
                        &case_id,
                        RefusalReason::Quarantined,
                        HISTORIES_DIFFER,
                    ));
                    return Ok(());
                }
                // Plain change chunks only (message version 1): the server refuses whole
                // documents, whose compressed columns it cannot bound.
                ds.state.their_capabilities = None;
                // The server answers afresh each round; once its heads are ours, both sides
                // hold the same changes.
                let mut ours = ds.doc.heads();
                server_heads.sort();
                ours.sort();
                ds.converged = server_heads == ours;
                ds.server_done = false;
            }
            None => ds.server_done = true,
        }
        Ok(())
    }

    /// An error reply as a typed error. A revoked device wipes its case data first, as the
    /// server asks, and then confirms the wipe.
    fn error_reply(&mut self, store: &mut Store, reply: &HttpReply) -> Result<Step> {
        // A server older than this build: ask again in the version it speaks, if this build
        // speaks it too. Nothing was stored (the version is checked before anything else).
        if let Some(spoken) = protocol::version_spoken_by_server(reply.status, &reply.body) {
            if spoken < self.version && protocol::PROTOCOL_VERSIONS_SPOKEN.contains(&spoken) {
                self.version = spoken;
                store.set_meta(
                    META_SERVER_SPEAKS,
                    &format!("{spoken} {}", chrono::Utc::now().timestamp()),
                )?;
                return Ok(Step::Continue);
            }
        }
        let body: Option<ErrorBody> = serde_json::from_slice(&reply.body).ok();
        if reply.status == 401 && body.as_ref().is_some_and(|b| b.wipe) {
            store.wipe_case_data()?;
            return Ok(Step::ConfirmWipe(Outgoing {
                path: "/v1/wipe-confirm",
                content_type: "application/json",
                body: b"{}".to_vec(),
            }));
        }
        Err(status_error(reply))
    }

    /// After the wipe confirmation was sent: the credential is dropped only once the server has
    /// the confirmation (if it is lost, the next sync is told to wipe again, finds nothing, and
    /// confirms again). Always ends the sync with `DeviceRevoked`.
    pub fn on_wipe_confirmed(&mut self, store: &mut Store, confirmed: bool) -> Error {
        if confirmed {
            if let Err(e) = store.delete_meta(META_TOKEN) {
                return e;
            }
        }
        Error::DeviceRevoked
    }

    /// Closes the sync: its report, and the time of this last complete sync.
    pub fn finish(mut self, store: &mut Store) -> Result<SyncReport> {
        self.report.conflicts = self.conflicted.len();
        self.report.duration_ms = self.elapsed_ms();
        // Without rows ahead, the list is whole when the sync is.
        self.report
            .list_usable_ms
            .get_or_insert(self.report.duration_ms);
        // Every case that was coming has come; a row whose case did not is not shown.
        store.clear_arriving()?;
        store.set_meta(META_LAST_SYNC, &chrono::Utc::now().to_rfc3339())?;
        Ok(self.report)
    }
}

fn load_doc_sync(store: &Store, case_id: String) -> Result<Option<DocSync>> {
    Ok(store.load_doc(&case_id)?.map(|mut doc| DocSync {
        loaded_heads: doc.heads(),
        case_id,
        doc,
        state: State::new(),
        server_done: false,
        rounds: 0,
        converged: false,
    }))
}

/// Gives the store what the server sent during the fallback; the case is marked synced only
/// if the exchange converged.
fn finish_doc_sync(store: &mut Store, mut ds: DocSync) -> Result<()> {
    let received: Vec<Vec<u8>> = ds
        .doc
        .automerge()
        .get_changes(&ds.loaded_heads)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let synced = ds.converged.then(|| ds.doc.heads());
    store.commit_doc_sync(&ds.case_id, &received, synced)
}

/// Runs a whole sync. The store is held for each decision and commit, never across a request.
/// `progress` is called after each committed page, with the store released.
pub fn run(
    handle: &mut dyn LockStore,
    transport: &dyn Transport,
    progress: &mut dyn FnMut(&SyncProgress),
    cancel: &Cancel,
) -> Result<SyncReport> {
    // A case an older app set aside may pass this build's checks: taken in before the round.
    // Best effort: a case still failing stays aside; a full, failing or unreadable store stops
    // the sync, as it stops a page's commit (it would stop the round anyway).
    if let Err(e @ (Error::StorageFull | Error::Storage(_) | Error::WrongKeyOrCorrupt)) =
        handle.lock_store().retry_quarantined()
    {
        return Err(e);
    }
    let mut session = SyncSession::start(&handle.lock_store())?;
    let credentials = session.credentials().clone();
    loop {
        cancel.check()?;
        let Some(out) = session.next_request(&mut handle.lock_store())? else {
            break;
        };
        // A stream's pages are committed as they arrive, each under the store's lock alone.
        let mut incoming = Incoming::default();
        transport.post_streamed(
            out.path,
            out.content_type,
            out.body,
            Some(&credentials),
            cancel,
            &mut |status, bytes| {
                incoming.feed(status, bytes)?;
                while let Some(frame) = incoming.next_frame()? {
                    if let Step::Progress(p) = session.on_frame(&mut handle.lock_store(), frame)? {
                        progress(&p);
                    }
                }
                Ok(())
            },
        )?;
        let step = match incoming.finish()? {
            Finished::Stream(frames) => {
                session.on_stream_end(frames)?;
                Step::Continue
            }
            Finished::Whole(reply) => session.on_reply(&mut handle.lock_store(), reply)?,
        };
        match step {
            Step::Progress(p) => progress(&p),
            Step::Continue => {}
            Step::ConfirmWipe(out) => {
                let confirmed = transport
                    .post(out.path, out.content_type, out.body, Some(&credentials))
                    .is_ok_and(|r| r.status == 204);
                return Err(session.on_wipe_confirmed(&mut handle.lock_store(), confirmed));
            }
        }
    }
    let report = session.finish(&mut handle.lock_store())?;
    Ok(report)
}

impl Store {
    /// Syncs the whole caseload: pushes every local change and pulls every page (the CLI's
    /// way: the store is held throughout; an app uses `run` with a locked store).
    pub fn sync(
        &mut self,
        transport: &dyn Transport,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncReport> {
        let mut store = self;
        run(&mut store, transport, progress, &Cancel::default())
    }
}

/// Adds the cases not listed yet, in order.
fn add_once(list: &mut Vec<String>, cases: &[String]) {
    for case_id in cases {
        if !list.contains(case_id) {
            list.push(case_id.clone());
        }
    }
}

fn skip_after(fallback: &[String], later: &[String]) -> Vec<String> {
    fallback.iter().chain(later).cloned().collect()
}
