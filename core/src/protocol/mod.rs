//! The sync wire format, shared by the client and the server. One HTTP round trip carries a
//! batch: the device's new changes for many cases up, and a page of other devices' changes
//! down. Messages are postcard-encoded and zstd-compressed as a whole, so the Automerge change
//! chunks of all documents compress together. See PROTOCOL.md.

use std::cell::Cell;
use std::io::Read;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

mod older;
pub mod stream;
#[cfg(test)]
use older::*;
pub use older::{decode_request, decode_response};

/// The version this build speaks. Version 2: refusal codes with a detail, pulled changes with
/// their verified author and receive time, the feed mark. Version 3: erasures (the request's
/// `erasures_seen`, the response's `erased` and `erasures_cursor`, refusal `Erased`). Version
/// 4: the request's `report` (the app's version and the cases waiting on the device, for the
/// supervisor's console) and `removals_seen`; the response's `removed` and `removals_cursor`
/// (cases reassigned away from the device's user). Version 5: the request's `forms_seen`, the
/// response's `forms` and `forms_cursor` (form versions published from the server). Version 6:
/// the response's `own` (the changes the feed holds under this device since its cursor, so the
/// phone can witness one it never wrote) and the request's `forgeries` (those it found).
/// Version 7: the response's `documents` (a case whose whole history a page holds, sent as one
/// document when the page is smaller so). Version 8: the same request, answered by a stream of
/// pages (`stream`), each committed as it arrives; the messages' layouts are version 7's.
/// Version 9: the request's `settings_seen` and the response's `settings` (a programme's
/// outcome settings, published from the server like forms); case documents may hold a
/// closure (`closure_status`, `closure_reason`, `closure_steps`), which an older app sets
/// aside in quarantine until it is updated, losing nothing.
pub const PROTOCOL_VERSION: u16 = 9;
/// The version outcome settings travel from, and servers check closures from.
pub const OUTCOMES_SINCE: u16 = 9;
/// The oldest version a server still answers; an older device is told "upgrade required". A
/// version 2 app cannot honour an erasure, so it must upgrade before it syncs again; a version
/// 3 app syncs as before and its supervisor sees no app version.
pub const PROTOCOL_VERSION_MIN: u16 = 3;
/// The versions this build speaks to a server: from version 6 the request's layout is this
/// build's, and it reads every response from version 3 on. A server older than this build says
/// so ("protocol version 8 is newer than this server's 7", HTTP 400), and the phone asks again
/// in the server's version (`SyncSession`), so a phone updated before its server keeps syncing.
pub const PROTOCOL_VERSIONS_SPOKEN: std::ops::RangeInclusive<u16> = 6..=PROTOCOL_VERSION;

/// The version a server older than the phone says it speaks, from its refusal of a newer one.
pub fn version_spoken_by_server(status: u16, body: &[u8]) -> Option<u16> {
    if status != 400 {
        return None;
    }
    let body: ErrorBody = serde_json::from_slice(body).ok()?;
    let (_, tail) = body.message.split_once("newer than this server's ")?;
    tail.trim().parse().ok()
}

/// Characters of a reported app version the server keeps.
pub const APP_VERSION_CHARS_MAX: usize = 64;
pub const CONTENT_TYPE: &str = "application/x-suivi-sync";
/// The HTTP status and error code that tell a device its app is too old for the server.
pub const UPGRADE_REQUIRED_STATUS: u16 = 426;
pub const UPGRADE_REQUIRED: &str = "upgrade_required";

/// Largest compressed request or response body accepted.
pub const SYNC_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest body once decompressed: a push gathers at most 2 MiB of changes and a page about
/// 1 MiB, so this leaves room and no more (a compression-bomb guard).
pub const SYNC_BODY_DECOMPRESSED_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Items (cases, changes, authors, refusals) in one decoded message, all lists together: every
/// list is counted while it is decoded, so a body that lists millions of empty changes is
/// refused before they are allocated.
pub const MESSAGE_ITEMS_MAX: usize = 50_000;
/// Cases in one push.
pub const PUSH_CASES_MAX: usize = 500;
/// Changes for one case in one push.
pub const PUSH_CHANGES_PER_CASE_MAX: usize = 10_000;
/// Compressed changes in one pull page: a cut sync wastes at most this much.
pub const PULL_PAGE_BYTES_MAX: usize = 64 * 1024;
/// Characters of a refusal's detail (a field path and a message key), echoed back bounded.
pub const REFUSAL_DETAIL_CHARS_MAX: usize = 120;
/// The zstd level: a phone's CPU is cheap next to a 2G link's bytes.
pub const ZSTD_LEVEL: i32 = 9;

thread_local! {
    /// Items the message being decoded may still hold (see `MESSAGE_ITEMS_MAX`).
    static ITEMS_LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Set when a list went over the budget, so `decode` can say so (postcard keeps only a
    /// generic message for errors raised inside serde).
    static OVER_BUDGET: Cell<bool> = const { Cell::new(false) };
}

fn over_budget<E: serde::de::Error>() -> E {
    OVER_BUDGET.with(|c| c.set(true));
    E::custom("too many items in one message")
}

/// Decodes a list while counting its items against the message's budget; never sizes an
/// allocation from the count the sender wrote.
fn bounded<'de, D, T>(deserializer: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Vec<T>, A::Error> {
            // Postcard states the length first: refuse a list longer than the budget before
            // decoding any of it, and count each item as it comes.
            let left = ITEMS_LEFT.with(Cell::get);
            if seq.size_hint().is_some_and(|n| n > left) {
                return Err(over_budget());
            }
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                let left = ITEMS_LEFT.with(Cell::get);
                if left == 0 {
                    return Err(over_budget());
                }
                ITEMS_LEFT.with(|c| c.set(left - 1));
                out.push(item);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_seq(Bounded(std::marker::PhantomData))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseChanges {
    pub case_id: String,
    /// Raw Automerge change chunks, in causal order.
    #[serde(deserialize_with = "bounded")]
    pub changes: Vec<serde_bytes::ByteBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub version: u16,
    /// The last feed position this device committed; the server sends what follows it.
    pub cursor: u64,
    /// The feed mark the server sent with that cursor (empty at first): a server whose feed
    /// does not hold the same history up to the cursor was replaced or restored.
    pub mark: serde_bytes::ByteBuf,
    #[serde(deserialize_with = "bounded")]
    pub push: Vec<CaseChanges>,
    /// The last erasure this device applied (0 at first): the server lists the ones after it.
    pub erasures_seen: u64,
    /// What the device says about itself (version 4 on; empty from a version 3 device).
    pub report: DeviceReport,
    /// The last removal this device applied (0 at first): the server lists its user's after it.
    pub removals_seen: u64,
    /// The last position of the server's forms feed this device applied (0 at first; version
    /// 5 on): the server sends the form versions published or retired after it.
    pub forms_seen: u64,
    /// Changes the server holds under this device that it never wrote (version 6 on): each is
    /// a forgery in the server's database, which records it and sets its case aside.
    #[serde(deserialize_with = "bounded")]
    pub forgeries: Vec<ForgeryReport>,
    /// The version of the programme's outcome settings this device holds (0: none received;
    /// version 9 on): the server sends newer ones.
    pub settings_seen: u32,
}

/// A change the feed holds under a device that the device never wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeryReport {
    pub case_id: String,
    /// The change's hash, hex.
    pub hash: String,
}

/// A change the feed holds under the requesting device, listed back to it (version 6 on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnChange {
    pub case_id: String,
    /// The change's hash, hex.
    pub hash: String,
}

impl SyncRequest {
    /// A request of this version from `cursor`, with no feed mark and nothing seen of
    /// erasures, removals or forms, pushing `push` (tests build other requests from it:
    /// `SyncRequest { version: 3, ..SyncRequest::pushing(0, vec![]) }`).
    pub fn pushing(cursor: u64, push: Vec<CaseChanges>) -> SyncRequest {
        SyncRequest {
            version: PROTOCOL_VERSION,
            cursor,
            mark: Default::default(),
            push,
            erasures_seen: 0,
            report: Default::default(),
            removals_seen: 0,
            forms_seen: 0,
            forgeries: Vec::new(),
            settings_seen: 0,
        }
    }
}

/// What a device says about itself in each sync request, shown to its supervisor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// The app's name and version, as the app gives it.
    pub app_version: String,
    /// Cases holding changes the server has not acknowledged, counted when the request was
    /// built (those it carries included). A device keeps a flag per case, not a count of
    /// changes: one case's changes travel together.
    pub waiting_cases: u64,
}

impl SyncResponse {
    /// A page with nothing in it, ending at `cursor` (with an empty mark) and at `forms_cursor`
    /// in the forms feed: what a server answers a device that is up to date, and what tests
    /// build pages from (`SyncResponse { pull, ..SyncResponse::nothing_new(1, 0) }`).
    pub fn nothing_new(cursor: u64, forms_cursor: u64) -> SyncResponse {
        SyncResponse {
            version: PROTOCOL_VERSION,
            accepted: Vec::new(),
            refused: Vec::new(),
            authors: Vec::new(),
            pull: Vec::new(),
            cursor,
            mark: Default::default(),
            more: false,
            reset: false,
            erased: Vec::new(),
            erasures_cursor: 0,
            removed: Vec::new(),
            removals_cursor: 0,
            forms: Vec::new(),
            forms_cursor,
            own: Vec::new(),
            documents: Vec::new(),
            settings: Vec::new(),
        }
    }
}

/// Why the server refused a case. Travels as a number: a reason added by a newer server reads
/// as `Other` on an older device instead of failing to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The device's user may not write this case.
    Forbidden,
    /// A new change was not authored by the pushing device's actor.
    WrongActor,
    /// A change depends on changes the server does not have: run the fallback for this case.
    MissingDeps,
    /// A change chunk does not decode, is compressed, too large, or does not apply.
    Malformed,
    /// Too many changes for one case in one request.
    TooManyChanges,
    /// The case document would lack the structure or values its forms require.
    Invalid,
    /// A user field or the commit message names someone other than the device's user.
    WrongAuthor,
    /// A referral status moved in a way its status machine does not allow.
    IllegalTransition,
    /// A different change with the same actor and sequence number is already held.
    DuplicateSeq,
    /// The device's daily quota of new cases or bytes is used up; retry tomorrow.
    QuotaExceeded,
    /// The server set this case aside (its stored history failed validation).
    Quarantined,
    /// The case was erased (consent withdrawn): the device deletes it, history included.
    Erased,
    /// A reason this build does not know.
    Other,
}

const REFUSAL_CODES: [(RefusalReason, u16); 13] = [
    (RefusalReason::Forbidden, 0),
    (RefusalReason::WrongActor, 1),
    (RefusalReason::MissingDeps, 2),
    (RefusalReason::Malformed, 3),
    (RefusalReason::TooManyChanges, 4),
    (RefusalReason::Invalid, 5),
    (RefusalReason::WrongAuthor, 6),
    (RefusalReason::IllegalTransition, 7),
    (RefusalReason::DuplicateSeq, 8),
    (RefusalReason::QuotaExceeded, 9),
    (RefusalReason::Quarantined, 10),
    (RefusalReason::Erased, 11),
    (RefusalReason::Other, 0xffff),
];

impl RefusalReason {
    pub fn code(self) -> u16 {
        REFUSAL_CODES
            .iter()
            .find(|(r, _)| *r == self)
            .map_or(0xffff, |(_, c)| *c)
    }

    pub fn from_code(code: u16) -> RefusalReason {
        REFUSAL_CODES
            .iter()
            .find(|(_, c)| *c == code)
            .map_or(RefusalReason::Other, |(r, _)| *r)
    }

    /// A refusal that says "not now" rather than "never": the device keeps the changes pending
    /// and pushes them again at a later sync.
    pub fn is_retryable(self) -> bool {
        matches!(self, RefusalReason::QuotaExceeded)
    }

    /// A stable name for logs, the CLI's JSON and the bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Forbidden => "forbidden",
            RefusalReason::WrongActor => "wrong_actor",
            RefusalReason::MissingDeps => "missing_deps",
            RefusalReason::Malformed => "malformed",
            RefusalReason::TooManyChanges => "too_many_changes",
            RefusalReason::Invalid => "invalid",
            RefusalReason::WrongAuthor => "wrong_author",
            RefusalReason::IllegalTransition => "illegal_transition",
            RefusalReason::DuplicateSeq => "duplicate_seq",
            RefusalReason::QuotaExceeded => "quota_exceeded",
            RefusalReason::Quarantined => "quarantined",
            RefusalReason::Erased => "erased",
            RefusalReason::Other => "other",
        }
    }
}

impl Serialize for RefusalReason {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for RefusalReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        u16::deserialize(d).map(RefusalReason::from_code)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub case_id: String,
    pub reason: RefusalReason,
    /// Where and why, briefly (a field path and a message key; never a value), at most
    /// `REFUSAL_DETAIL_CHARS_MAX` characters.
    pub detail: String,
}

impl Refusal {
    pub fn new(case_id: &str, reason: RefusalReason, detail: &str) -> Refusal {
        Refusal {
            case_id: case_id.to_string(),
            reason,
            detail: detail.chars().take(REFUSAL_DETAIL_CHARS_MAX).collect(),
        }
    }
}

/// Who the server verified as the author of pulled changes: the user and device of the
/// credential that pushed them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Author {
    pub user: String,
    pub device: String,
}

/// One pulled change with what the server verified about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledChange {
    pub data: serde_bytes::ByteBuf,
    /// Index into `SyncResponse::authors`.
    pub author: u32,
    /// When the server received it (Unix seconds, the server's clock).
    pub received_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledCase {
    pub case_id: String,
    #[serde(deserialize_with = "bounded")]
    pub changes: Vec<PulledChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub version: u16,
    /// Cases whose pushed changes are stored (or were already).
    #[serde(deserialize_with = "bounded")]
    pub accepted: Vec<String>,
    /// Cases refused, with why; nothing of theirs was stored.
    #[serde(deserialize_with = "bounded")]
    pub refused: Vec<Refusal>,
    /// The authors the pulled changes refer to, each once per page.
    #[serde(deserialize_with = "bounded")]
    pub authors: Vec<Author>,
    /// Changes for the device's caseload that follow its cursor, in feed order.
    #[serde(deserialize_with = "bounded")]
    pub pull: Vec<PulledCase>,
    /// The feed position this page ends at; the device stores it with the page.
    pub cursor: u64,
    /// The feed mark at `cursor`, to send back with it.
    pub mark: serde_bytes::ByteBuf,
    /// Another page is waiting.
    pub more: bool,
    /// The device's cursor and mark do not match this server's feed (it was replaced or
    /// restored from a backup): this page starts from the beginning, and the device pushes
    /// every case again.
    pub reset: bool,
    /// Cases erased since the request's `erasures_seen` (any caseload: ids say nothing): the
    /// device deletes each, history included, and never pushes it again.
    #[serde(deserialize_with = "bounded")]
    pub erased: Vec<String>,
    /// The last erasure listed (or the request's `erasures_seen`), to send back next time.
    pub erasures_cursor: u64,
    /// Cases reassigned away from the device's user since the request's `removals_seen`: the
    /// device deletes each once the server holds everything it recorded (version 4 on).
    #[serde(deserialize_with = "bounded")]
    pub removed: Vec<String>,
    /// The last removal listed (or the request's `removals_seen`), to send back next time.
    pub removals_cursor: u64,
    /// Form versions published or retired after the request's `forms_seen` (version 5 on):
    /// the device checks and keeps them before the pulled cases, which may use them.
    #[serde(deserialize_with = "bounded")]
    pub forms: Vec<FormUpdate>,
    /// The forms feed position the listed forms end at, to send back next time.
    pub forms_cursor: u64,
    /// The changes the feed holds under the requesting device between its cursor and this
    /// page's (version 6 on): the device checks it wrote each (`ForgeryReport` if not).
    #[serde(deserialize_with = "bounded")]
    pub own: Vec<OwnChange>,
    /// Cases whose whole history this page holds, each as one document instead of its changes
    /// in `pull` (version 7 on; never to an older device). A case is in one list or the other.
    #[serde(deserialize_with = "bounded")]
    pub documents: Vec<PulledDocument>,
    /// The programme's outcome settings when newer than the request's `settings_seen` (at
    /// most one; version 9 on): the device checks and keeps them, and derives its cases'
    /// outcomes with them.
    #[serde(deserialize_with = "bounded")]
    pub settings: Vec<crate::outcome::OutcomeSettings>,
}

/// One case's whole history as one document: Automerge's document format without its own
/// column compression, so the message's zstd compresses across cases (version 7 on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledDocument {
    pub case_id: String,
    pub document: serde_bytes::ByteBuf,
    /// What the server verified about each change, in the order the document lists them
    /// once loaded (the same bytes always load in the same order).
    #[serde(deserialize_with = "bounded")]
    pub origins: Vec<ChangeOrigin>,
}

/// A case's list row as the server projects it, sent ahead of the histories at a first sync
/// (version 8) so the phone's list and search work while they arrive. What the list shows and
/// filters on, nothing more: no date of birth, no notes, no answers of visits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRow {
    pub case_id: String,
    pub first_name: String,
    pub last_name: String,
    pub sex: Option<String>,
    pub province: Option<String>,
    pub commune: Option<String>,
    pub village: Option<String>,
    pub work_sector: Option<String>,
    pub risk_level: Option<String>,
    /// The statuses its referrals are in, without repeats.
    #[serde(deserialize_with = "bounded")]
    pub referral_statuses: Vec<String>,
    /// The next visit due (YYYY-MM-DD).
    pub next_followup_due: Option<String>,
    pub referral_count: u32,
    pub followup_count: u32,
    pub conflict_count: u32,
    /// When the server last stored a change of it (Unix seconds).
    pub updated_at: i64,
}

/// The list rows of a caseload, in the order they are worth having first (a visit overdue,
/// then due soonest); `total` rows in all, over as many frames as they take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRows {
    pub version: u16,
    pub total: u64,
    #[serde(deserialize_with = "bounded")]
    pub rows: Vec<CaseRow>,
}

/// Cases a phone asks for by id (`POST /v1/cases`, version 8): cases listed ahead whose
/// histories have not come yet, so the one an agent opens need not wait for the stream. The
/// answer is a page (`SyncResponse`) holding those the user may read, whole; none of its
/// positions means anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasesRequest {
    pub version: u16,
    #[serde(deserialize_with = "bounded")]
    pub case_ids: Vec<String>,
}

/// Cases in one `CasesRequest`.
pub const FETCH_CASES_MAX: usize = 16;

/// Rows in one frame: a 10,000-case caseload's list comes in two frames.
pub const ROWS_PER_FRAME_MAX: usize = 5_000;

/// What the server verified about one change of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeOrigin {
    /// Index into `SyncResponse::authors`.
    pub author: u32,
    /// When the server received it, in seconds after the previous origin's time (the first
    /// one's, after 0): small numbers, which compress.
    pub received_after: i64,
}

impl PulledDocument {
    /// Each change's reception time (Unix seconds), from the deltas.
    pub fn received_at(&self) -> impl Iterator<Item = i64> + '_ {
        self.origins.iter().scan(0i64, |at, o| {
            *at = at.saturating_add(o.received_after);
            Some(*at)
        })
    }
}

/// A form version as the server publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormUpdate {
    /// The definition as JSON, checked by the device before it is used.
    pub definition: String,
    /// The version takes no new records.
    pub retired: bool,
}

/// Fallback for one case when device and server disagree on what the other has: Automerge's
/// own sync protocol, one message each way per round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSyncRequest {
    pub version: u16,
    pub case_id: String,
    pub message: serde_bytes::ByteBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSyncResponse {
    pub version: u16,
    pub message: Option<serde_bytes::ByteBuf>,
    pub refused: Option<Refusal>,
}

/// The version a message says it speaks: its first field, read before anything else, so a
/// server can tell an old device "upgrade required" instead of failing to decode its body.
pub fn peek_version(body: &[u8]) -> Result<u16> {
    let raw = inflate(body, 16, false)?;
    postcard::take_from_bytes::<u16>(&raw)
        .map(|(v, _)| v)
        .map_err(|e| Error::Protocol(format!("decode: {e}")))
}

/// Inflates a body, growing with what it really holds. `whole`: the entire message, refused
/// beyond `limit`; otherwise only its first `limit` bytes are wanted.
fn inflate(body: &[u8], limit: usize, whole: bool) -> Result<Vec<u8>> {
    if body.len() > SYNC_BODY_BYTES_MAX {
        return Err(Error::Protocol("body too large".into()));
    }
    let decoder = zstd::stream::read::Decoder::new(body)
        .map_err(|e| Error::Protocol(format!("decompress: {e}")))?;
    let mut raw = Vec::new();
    match decoder.take(limit as u64 + 1).read_to_end(&mut raw) {
        Ok(n) if whole && n > limit => {
            Err(Error::Protocol("body inflates beyond the limit".into()))
        }
        Ok(_) => Ok(raw),
        Err(_) if !whole && !raw.is_empty() => Ok(raw),
        Err(e) => Err(Error::Protocol(format!("decompress: {e}"))),
    }
}

/// Encodes a message: postcard, then zstd over the whole batch.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>> {
    let raw = postcard::to_stdvec(message).map_err(|e| Error::Protocol(format!("encode: {e}")))?;
    zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(|e| Error::Protocol(format!("compress: {e}")))
}

/// Decodes a message, refusing oversized, truncated or malformed bodies, bodies that inflate
/// beyond `SYNC_BODY_DECOMPRESSED_BYTES_MAX`, and bodies listing more than `MESSAGE_ITEMS_MAX`
/// items, with a typed error. Bytes after the message are ignored: a newer peer may append
/// fields at the end.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    let raw = inflate(body, SYNC_BODY_DECOMPRESSED_BYTES_MAX, true)?;
    ITEMS_LEFT.with(|c| c.set(MESSAGE_ITEMS_MAX));
    OVER_BUDGET.with(|c| c.set(false));
    let decoded = postcard::take_from_bytes(&raw).map(|(value, _rest)| value);
    ITEMS_LEFT.with(|c| c.set(usize::MAX));
    decoded.map_err(|e| {
        if OVER_BUDGET.with(Cell::get) {
            Error::Protocol(format!(
                "decode: more than {MESSAGE_ITEMS_MAX} items in one message"
            ))
        } else {
            Error::Protocol(format!("decode: {e}"))
        }
    })
}

/// The size of a message's changes alone, zstd-compressed: the floor that bytes on the wire
/// are compared with.
pub fn compressed_changes_size(changes: &[&[u8]]) -> usize {
    let joined: Vec<u8> = changes.iter().flat_map(|c| c.iter().copied()).collect();
    zstd::bulk::compress(&joined, ZSTD_LEVEL)
        .map(|c| c.len())
        .unwrap_or(joined.len())
}

/// `POST /v1/enroll` (JSON): a one-time code from an admin turns into a device credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub code: String,
    /// The user this device's store belongs to: a code issued for someone else is refused
    /// and stays unused.
    pub user: String,
    /// The device's Automerge actor id (hex): every change it pushes must carry it.
    pub actor: String,
    pub device_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: String,
    pub token: String,
    pub user: String,
    pub role: String,
}

/// The JSON body of every error response. `wipe` tells a revoked device to erase its case data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default)]
    pub wipe: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(push: Vec<CaseChanges>) -> SyncRequest {
        SyncRequest {
            mark: serde_bytes::ByteBuf::from(vec![7; 32]),
            ..SyncRequest::pushing(42, push)
        }
    }

    #[test]
    fn a_version_3_request_decodes_with_an_empty_report_and_a_version_4_one_keeps_it() {
        #[derive(Serialize)]
        struct V3 {
            version: u16,
            cursor: u64,
            mark: serde_bytes::ByteBuf,
            push: Vec<CaseChanges>,
            erasures_seen: u64,
        }
        let body = encode(&V3 {
            version: 3,
            cursor: 9,
            mark: serde_bytes::ByteBuf::from(vec![1; 32]),
            push: vec![],
            erasures_seen: 2,
        })
        .unwrap();
        let old = decode_request(&body).unwrap();
        assert_eq!((old.version, old.cursor, old.erasures_seen), (3, 9, 2));
        assert_eq!(old.report, DeviceReport::default());
        let mut new = request(vec![]);
        new.report = DeviceReport {
            app_version: "suivi-android 1.4.0".into(),
            waiting_cases: 3,
        };
        let body = encode(&new).unwrap();
        assert_eq!(decode_request(&body).unwrap(), new);
        // A server that only knows version 3 reads the same body, the report as trailing bytes.
        let read_by_older: SyncRequestV3 = decode(&body).unwrap();
        assert_eq!(read_by_older.cursor, 42);
    }

    /// Version 5 appends the forms feed to both messages: a version 4 device's request reads
    /// as having seen no forms, and a version 4 server's response as bringing none; a version
    /// 4 reader of version 5 messages takes the forms for trailing bytes.
    #[test]
    fn version_4_messages_read_as_version_5_without_forms_and_back() {
        let mut v5 = request(vec![]);
        v5.forms_seen = 7;
        let body = encode(&v5).unwrap();
        assert_eq!(decode_request(&body).unwrap(), v5);
        let read_by_v4: SyncRequestV4 = decode(&body).unwrap();
        assert_eq!(read_by_v4.cursor, 42);
        let mut v4 = v5.clone();
        v4.version = 4;
        v4.forms_seen = 0;
        let raw = postcard::to_stdvec(&v4).unwrap();
        // A version 4 body is a version 9 one without its last three fields (`forms_seen`, a
        // varint 0, `forgeries`, an empty list, and `settings_seen`, 0: a byte each).
        let body = zstd::bulk::compress(&raw[..raw.len() - 3], 3).unwrap();
        assert_eq!(decode_request(&body).unwrap(), v4);

        let response = SyncResponse {
            version: 4,
            accepted: vec![],
            refused: vec![],
            authors: vec![],
            pull: vec![],
            cursor: 9,
            mark: serde_bytes::ByteBuf::new(),
            more: false,
            reset: false,
            erased: vec![],
            erasures_cursor: 0,
            removed: vec!["r".into()],
            removals_cursor: 5,
            forms: vec![],
            forms_cursor: 0,
            own: vec![],
            documents: vec![],
            settings: vec![],
        };
        let raw = postcard::to_stdvec(&response).unwrap();
        // Without its last four fields (`forms_cursor` 0, `own`, `documents` and `settings`,
        // each an empty list): four bytes.
        let body = zstd::bulk::compress(&raw[..raw.len() - 4], 3).unwrap();
        assert_eq!(decode_response(&body).unwrap(), response);
        let mut v5 = response.clone();
        v5.version = 5;
        v5.forms = vec![FormUpdate {
            definition: "{\"id\":\"referral\"}".into(),
            retired: true,
        }];
        v5.forms_cursor = 12;
        let body = encode(&v5).unwrap();
        assert_eq!(decode_response(&body).unwrap(), v5);
        let read_by_v4: SyncResponseV4 = decode(&body).unwrap();
        assert_eq!(read_by_v4.removals_cursor, 5);
    }

    /// Version 6 appends the device's own changes to the response and its forgery reports to
    /// the request: a version 5 phone's request reads as reporting none, a version 5 server's
    /// response as listing none, and a version 5 reader takes them for trailing bytes.
    /// A version 7 response carries documents at its end: a version 6 server's response reads
    /// as holding none, and a version 6 reader would take them for trailing bytes (a server
    /// never sends them to it).
    #[test]
    fn version_6_responses_read_as_version_7_without_documents() {
        let document = PulledDocument {
            case_id: "d".repeat(32),
            document: serde_bytes::ByteBuf::from(vec![1, 2, 3]),
            origins: vec![
                ChangeOrigin {
                    author: 0,
                    received_after: 1_800_000_000,
                },
                ChangeOrigin {
                    author: 1,
                    received_after: 4,
                },
            ],
        };
        assert_eq!(
            document.received_at().collect::<Vec<_>>(),
            [1_800_000_000, 1_800_000_004]
        );
        let v7 = SyncResponse {
            documents: vec![document],
            ..SyncResponse::nothing_new(9, 3)
        };
        let body = encode(&v7).unwrap();
        assert_eq!(decode_response(&body).unwrap(), v7);
        let read_by_v6: SyncResponseV6 = decode(&body).unwrap();
        assert_eq!(read_by_v6.cursor, 9);
        let v6 = SyncResponse {
            version: 6,
            documents: vec![],
            ..v7.clone()
        };
        let raw = postcard::to_stdvec(&v6).unwrap();
        // Without `documents` and `settings` (empty lists): two bytes.
        let body = zstd::bulk::compress(&raw[..raw.len() - 2], 3).unwrap();
        assert_eq!(decode_response(&body).unwrap(), v6);
    }

    #[test]
    fn version_5_messages_read_as_version_6_without_witnesses_and_back() {
        let mut v6 = request(vec![]);
        v6.forms_seen = 7;
        v6.forgeries = vec![ForgeryReport {
            case_id: "c".repeat(32),
            hash: "a".repeat(64),
        }];
        let body = encode(&v6).unwrap();
        assert_eq!(decode_request(&body).unwrap(), v6);
        let read_by_v5: SyncRequestV5 = decode(&body).unwrap();
        assert_eq!(read_by_v5.forms_seen, 7);
        let mut v5 = v6.clone();
        v5.version = 5;
        v5.forgeries = vec![];
        let raw = postcard::to_stdvec(&v5).unwrap();
        // Without `forgeries` (an empty list) and `settings_seen` (0): two bytes.
        let body = zstd::bulk::compress(&raw[..raw.len() - 2], 3).unwrap();
        assert_eq!(decode_request(&body).unwrap(), v5);

        let response = SyncResponse {
            own: vec![OwnChange {
                case_id: "c".repeat(32),
                hash: "b".repeat(64),
            }],
            ..SyncResponse {
                version: 6,
                accepted: vec![],
                refused: vec![],
                authors: vec![],
                pull: vec![],
                cursor: 9,
                mark: serde_bytes::ByteBuf::new(),
                more: false,
                reset: false,
                erased: vec![],
                erasures_cursor: 0,
                removed: vec![],
                removals_cursor: 0,
                forms: vec![],
                forms_cursor: 3,
                own: vec![],
                documents: vec![],
                settings: vec![],
            }
        };
        let body = encode(&response).unwrap();
        assert_eq!(decode_response(&body).unwrap(), response);
        let read_by_v5: SyncResponseV5 = decode(&body).unwrap();
        assert_eq!(read_by_v5.forms_cursor, 3);
        let mut v5 = response.clone();
        v5.version = 5;
        v5.own = vec![];
        let raw = postcard::to_stdvec(&v5).unwrap();
        // Without `own`, `documents` and `settings` (empty lists): three bytes.
        let body = zstd::bulk::compress(&raw[..raw.len() - 3], 3).unwrap();
        assert_eq!(decode_response(&body).unwrap(), v5);
    }

    /// Version 9 appends the outcome settings held to the request and newer ones to the
    /// response: a version 8 phone's request reads as holding none, a version 8 server's
    /// response as sending none, and a version 8 reader takes them for trailing bytes.
    #[test]
    fn version_8_messages_read_as_version_9_without_settings_and_back() {
        let mut v9 = request(vec![]);
        v9.settings_seen = 3;
        let body = encode(&v9).unwrap();
        assert_eq!(decode_request(&body).unwrap(), v9);
        let read_by_v8: SyncRequestV8 = decode(&body).unwrap();
        assert_eq!(read_by_v8.forms_seen, v9.forms_seen);
        let mut v8 = v9.clone();
        v8.version = 8;
        v8.settings_seen = 0;
        let raw = postcard::to_stdvec(&v8).unwrap();
        let body = zstd::bulk::compress(&raw[..raw.len() - 1], 3).unwrap();
        assert_eq!(decode_request(&body).unwrap(), v8);

        let settings = crate::outcome::OutcomeSettings {
            version: 4,
            exit_visits: 3,
            ..Default::default()
        };
        let v9 = SyncResponse {
            settings: vec![settings],
            ..SyncResponse::nothing_new(9, 3)
        };
        let body = encode(&v9).unwrap();
        assert_eq!(decode_response(&body).unwrap(), v9);
        let read_by_v8: SyncResponseV8 = decode(&body).unwrap();
        assert_eq!(read_by_v8.cursor, 9);
        let v8 = SyncResponse {
            version: 8,
            settings: vec![],
            ..v9.clone()
        };
        let raw = postcard::to_stdvec(&v8).unwrap();
        let body = zstd::bulk::compress(&raw[..raw.len() - 1], 3).unwrap();
        assert_eq!(decode_response(&body).unwrap(), v8);
    }

    #[test]
    fn messages_round_trip() {
        let request = request(vec![CaseChanges {
            case_id: "abc".into(),
            changes: vec![serde_bytes::ByteBuf::from(vec![1, 2, 3])],
        }]);
        let body = encode(&request).unwrap();
        assert_eq!(decode::<SyncRequest>(&body).unwrap(), request);
        assert_eq!(peek_version(&body).unwrap(), PROTOCOL_VERSION);
    }

    #[test]
    fn truncated_garbage_and_bombs_are_typed_errors() {
        let body = encode(&request(vec![])).unwrap();
        assert!(matches!(
            decode::<SyncRequest>(&body[..body.len() / 2]),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            decode::<SyncRequest>(b"not zstd at all"),
            Err(Error::Protocol(_))
        ));
        assert!(peek_version(b"not zstd at all").is_err());
        // Valid zstd, invalid postcard.
        let junk = zstd::bulk::compress(&[0xff; 64], 1).unwrap();
        assert!(matches!(
            decode::<SyncRequest>(&junk),
            Err(Error::Protocol(_))
        ));
        // 100 MB of zeros compresses to almost nothing: refused once it passes the limit.
        let bomb = zstd::bulk::compress(&vec![0u8; 100 * 1024 * 1024], 1).unwrap();
        assert!(bomb.len() < SYNC_BODY_BYTES_MAX);
        assert!(matches!(
            decode::<SyncRequest>(&bomb),
            Err(Error::Protocol(_))
        ));
    }

    /// A ~1 KB body that lists millions of empty changes: refused while counting, before
    /// millions of buffers exist.
    #[test]
    fn a_body_listing_millions_of_items_is_refused_while_decoding() {
        let mut raw = postcard::to_stdvec(&PROTOCOL_VERSION).unwrap();
        raw.push(0); // cursor
        raw.push(0); // empty mark
        raw.push(1); // one case
        raw.extend(postcard::to_stdvec("c").unwrap());
        raw.extend([0x80, 0xad, 0xe2, 0x04]); // 10,000,000 changes
        raw.resize(raw.len() + 6_000_000, 0); // each an empty change
        let body = zstd::bulk::compress(&raw, 19).unwrap();
        assert!(body.len() < 2048, "{} bytes", body.len());
        let err = decode::<SyncRequest>(&body).unwrap_err();
        assert!(err.to_string().contains("items in one message"), "{err}");
        // The budget is per message: the next decode starts afresh.
        let fine = encode(&request(vec![])).unwrap();
        assert!(decode::<SyncRequest>(&fine).is_ok());
    }

    #[test]
    fn a_newer_peer_can_append_fields_and_reasons() {
        let response = SyncResponse {
            version: PROTOCOL_VERSION,
            accepted: vec!["a".into()],
            refused: vec![Refusal::new(
                "b",
                RefusalReason::Invalid,
                "identification.sex: type.choice",
            )],
            authors: vec![Author {
                user: "amina".into(),
                device: "dev-1".into(),
            }],
            pull: vec![PulledCase {
                case_id: "c".into(),
                changes: vec![PulledChange {
                    data: serde_bytes::ByteBuf::from(vec![1]),
                    author: 0,
                    received_at: 1_700_000_000,
                }],
            }],
            cursor: 9,
            mark: serde_bytes::ByteBuf::from(vec![1; 32]),
            more: false,
            reset: false,
            erased: Vec::new(),
            erasures_cursor: 0,
            removed: Vec::new(),
            removals_cursor: 0,
            forms: vec![FormUpdate {
                definition: "{}".into(),
                retired: false,
            }],
            forms_cursor: 3,
            own: vec![],
            documents: vec![],
            settings: vec![],
        };
        // A field appended at the end by a newer server is ignored.
        let mut raw = postcard::to_stdvec(&response).unwrap();
        raw.extend([3, b'n', b'e', b'w']);
        let body = zstd::bulk::compress(&raw, 3).unwrap();
        assert_eq!(decode::<SyncResponse>(&body).unwrap(), response);
        // A refusal reason this build does not know reads as Other.
        let unknown: RefusalReason =
            postcard::from_bytes(&postcard::to_stdvec(&77u16).unwrap()).unwrap();
        assert_eq!(unknown, RefusalReason::Other);
        for (reason, code) in REFUSAL_CODES {
            assert_eq!(RefusalReason::from_code(code), reason);
        }
        let long = Refusal::new("b", RefusalReason::Invalid, &"x".repeat(10_000));
        assert_eq!(long.detail.chars().count(), REFUSAL_DETAIL_CHARS_MAX);
    }
}
