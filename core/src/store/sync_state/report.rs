//! What a sync tells its caller: the report of a finished sync, its progress as it goes, and
//! an HTTP status read as a typed error.

use serde::Serialize;

use crate::protocol::Refusal;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SyncReport {
    pub cases_up: usize,
    pub cases_down: usize,
    pub changes_up: usize,
    pub changes_down: usize,
    /// Cases received as one document (version 7 on) rather than as their changes.
    pub documents_down: usize,
    /// Request and response bodies, compressed, as sent.
    pub bytes_up: usize,
    pub bytes_down: usize,
    pub round_trips: usize,
    pub pages: usize,
    /// Cases in the caseload, as the rows a first sync sends ahead announced (0 without).
    pub caseload: usize,
    /// Rows listed ahead of their cases (read-only until each case arrives).
    pub listed: usize,
    /// When the list had every case of the caseload: when the rows ahead were all listed, or
    /// when the sync completed.
    pub list_usable_ms: Option<u64>,
    /// Cases that hold a conflict (concurrent values of one field) after this sync.
    pub conflicts: usize,
    pub refused: Vec<Refusal>,
    /// Pulled cases set aside because they failed to apply, load or project; the rest of the
    /// page went on.
    pub quarantined: Vec<QuarantinedCase>,
    /// Cases synced with the per-document fallback.
    pub fallbacks: usize,
    /// The server had lost data (restored from a backup) and this device pushed its cases again.
    pub server_reset: bool,
    /// Cases erased on the server (consent withdrawn) and deleted here, history included.
    pub erased: usize,
    /// Cases removed from this phone: reassigned to another agent, or refused by the server as
    /// never granted to this user while holding nothing this phone wrote.
    pub removed: usize,
    /// Form versions received from the server (new versions and retirements), kept here.
    pub forms_received: usize,
    /// Positions the store held that did not read, restarted from the beginning (see
    /// `Store::positions`): "feed cursor", "erasures cursor", "removals cursor".
    pub restarted: Vec<String>,
    /// Changes the server holds under this phone's name that it never wrote, found at this
    /// sync (each reported to the server, which sets its case aside).
    pub forgeries: usize,
    /// Form versions the server sent that this device refused, each with why: their records
    /// wait in quarantine until a good definition comes.
    pub forms_refused: Vec<String>,
    /// Outcome settings the server sent that this app refused, with why (the ones held stay).
    pub settings_refused: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QuarantinedCase {
    pub case_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncProgress {
    pub round_trips: usize,
    /// Pages committed so far (a stream's frames, or one per round trip).
    pub pages: usize,
    pub cases_down: usize,
    pub changes_down: usize,
    pub bytes_down: usize,
    /// The caseload's size once its rows ahead came (0 before, or without), and the rows
    /// listed: "312 of 1,000 cases arrived".
    pub caseload: usize,
    pub listed: usize,
    pub more: bool,
}
