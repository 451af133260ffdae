//! SQLCipher's one-time start, finished before any connection is opened.
//!
//! SQLite runs SQLCipher's start-up hook (`SQLITE_EXTRA_INIT`) after it has marked itself
//! initialised and released its own lock. A second thread that opens a connection in that
//! window skips the start, and its `PRAGMA key` fails with "An error occurred with PRAGMA key
//! or rekey": seen in CI when a test binary's first threads opened stores at once, and a phone
//! opening its writer and reader together at launch could hit it too. Every opener in the
//! workspace calls [`initialise`] first; the first caller runs the start and the others wait
//! for it to finish.

use std::sync::OnceLock;

static START: OnceLock<Result<(), String>> = OnceLock::new();

/// Runs SQLite's and SQLCipher's start once per process and waits for it to finish; every
/// later call returns the first call's outcome at once.
pub fn initialise() -> rusqlite::Result<()> {
    // Opening a connection runs the start in this thread, hook included, before it returns;
    // the `OnceLock` keeps every other caller waiting until then.
    let outcome = START.get_or_init(|| {
        rusqlite::Connection::open_in_memory()
            .map(drop)
            .map_err(|e| e.to_string())
    });
    outcome.clone().map_err(|message| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!("SQLCipher did not start: {message}")),
        )
    })
}
